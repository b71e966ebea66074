"""The lessons as plain translatable text, with the numbers of the user's own runs.

A pure function of the report's data: no TUI, no rich. Each lesson is (title, paragraph) and only
appears when the runs hold what it needs (a CNN and an MLP for the first, a before/after table for
the preprocessing one, ...). Reference figures are the assignment's, for comparison.
"""

from __future__ import annotations

from engine.i18n import Language
from engine.report.assemble import ReportData, ReportRun


def _best(runs: list[ReportRun], model: str) -> ReportRun | None:
    scored = [
        r for r in runs if r.model and r.model.name == model and r.metrics.test_accuracy is not None
    ]
    return max(scored, key=lambda r: r.metrics.test_accuracy or 0.0, default=None)


def _total(run: ReportRun) -> int:
    return run.params.total if run.params else 0


def _random_note(lang: Language, runs: list[ReportRun] | bool) -> str:
    flagged = runs if isinstance(runs, bool) else any(r.random_init for r in runs)
    if not flagged:
        return ""
    return " " + lang._(
        "These runs used random initialisation instead of ImageNet weights, so they say little "
        "about transfer learning itself."
    )


def build_report_lessons(data: ReportData, lang: Language) -> list[tuple[str, str]]:
    """(title, text) for each lesson the runs can illustrate."""
    _ = lang._
    lessons: list[tuple[str, str]] = []
    trained = data.trained

    cnn, mlp = _best(trained, "simple_cnn"), _best(trained, "mlp")
    if cnn and mlp:
        a_cnn, a_mlp = cnn.metrics.test_accuracy or 0.0, mlp.metrics.test_accuracy or 0.0
        text = _(
            "Your simple CNN reached a test accuracy of {cnn} with {p_cnn} parameters; the MLP "
            "reached {mlp} with {p_mlp}: a difference of {diff} points."
        ).format(
            cnn=lang.percent(a_cnn),
            mlp=lang.percent(a_mlp),
            p_cnn=lang.integer(_total(cnn)),
            p_mlp=lang.integer(_total(mlp)),
            diff=lang.number((a_cnn - a_mlp) * 100, 1),
        )
        text += " " + _(
            "A convolutional layer reuses each small filter at every position of the image "
            "(parameter sharing), so it keeps the spatial structure and recognises a pattern "
            "wherever it appears; the MLP flattens the image and must learn every position apart. "
            "In the assignment: {ref_cnn} for the CNN against {ref_mlp} for the best MLP."
        ).format(ref_cnn=lang.percent(0.6937), ref_mlp=lang.percent(0.562, 1))
        lessons.append((_("Why CNNs beat MLPs"), text))

    gaps = [r for r in trained if r.metrics.overfit_gap is not None]
    if gaps:
        worst = max(gaps, key=lambda r: r.metrics.overfit_gap or 0.0)
        text = _(
            "The largest gap between training and validation accuracy is {gap} points, in run "
            "{run} ({model}): {train} on the training data against {val} on validation."
        ).format(
            gap=lang.number(worst.metrics.overfit_gap or 0.0, 1),
            run=worst.id,
            model=worst.model_name,
            train=lang.percent(worst.metrics.train_accuracy),
            val=lang.percent(worst.metrics.val_accuracy),
        )
        text += " " + _(
            "A large gap is overfitting: the model memorises the training images instead of "
            "learning what generalises. EarlyStopping, dropout, data augmentation and fewer "
            "trainable parameters reduce it; the assignment saw {ref_cnn} points for the CNN and "
            "{ref_transfer} for frozen MobileNetV2."
        ).format(ref_cnn=lang.number(14.2, 1), ref_transfer=lang.number(44.5, 1))
        lessons.append(
            (_("Overfitting: the train–validation gap"), text + _random_note(lang, [worst]))
        )

    rows = [
        row
        for parent in data.parents("preprocessing")
        for row in parent.record.preprocessing_rows
        if row.delta_points is not None  # both before and after
    ]
    if rows:
        biggest = max(rows, key=lambda r: r.delta_points or 0.0)
        text = _(
            "{backbone} fed x/255 reached {before}; with its own preprocessing ({prep}) it reached "
            "{after}, a change of {diff} points."
        ).format(
            backbone=biggest.backbone,
            before=lang.percent(biggest.before),
            after=lang.percent(biggest.after),
            prep=biggest.preprocessing,
            diff=lang.number(biggest.delta_points or 0.0, 1),
        )
        text += " " + _(
            "Pretrained weights only work on inputs in the range and statistics they were trained "
            "on: the right preprocessing matters more than the architecture. In the assignment, "
            "ResNet50 went from {ref_before} to {ref_after}."
        ).format(ref_before=lang.percent(0.2702), ref_after=lang.percent(0.6601))
        flagged = any(r.random_init for r in rows)
        lessons.append(
            (
                _("Preprocessing matters more than the architecture"),
                text + _random_note(lang, flagged),
            )
        )

    transfer = [r for r in trained if r.model and r.model.backbone and _total(r)]
    if transfer:
        run = transfer[-1]
        total = _total(run)
        trainable = run.params.trainable if run.params else 0
        text = _(
            "In run {run} ({model}), {trainable} of {total} parameters are trained ({share}); the "
            "{frozen} parameters of the frozen layers only compute features."
        ).format(
            run=run.id,
            model=run.model_name,
            trainable=lang.integer(trainable),
            total=lang.integer(total),
            share=lang.percent(trainable / total),
            frozen=lang.integer(total - trainable),
        )
        finetune = next((p for p in run.record.phases if p.name == "finetune"), None)
        if finetune:
            text += " " + _(
                "Fine-tuning then unfroze {layers} layers: {trainable} trainable parameters, at a "
                "low learning rate so the pretrained features are adjusted, not destroyed."
            ).format(
                layers=len(finetune.trainable_layers),
                trainable=lang.integer(finetune.trainable),
            )
        lessons.append((_("Frozen layers and fine-tuning"), text + _random_note(lang, [run])))

    ranking = [
        row
        for parent in data.parents("compare")
        for row in parent.record.compare_rows
        if row.test_accuracy is not None and row.efficiency
    ]
    if ranking:
        top = min(ranking, key=lambda r: r.rank or 0)
        lean = max(ranking, key=lambda r: r.efficiency or 0.0)
        text = _(
            "The most accurate backbone was {top} ({acc}); the most efficient was {lean}, with "
            "{eff} accuracy points per million parameters."
        ).format(
            top=top.backbone,
            acc=lang.percent(top.test_accuracy),
            lean=lean.backbone,
            eff=lang.number((lean.efficiency or 0.0) * 100, 1),
        )
        text += " " + _(
            "A bigger network is not always better on 32×32 images: what counts is accuracy for "
            "the parameters and operations paid."
        )
        flagged = any(r.random_init for r in ranking)
        lessons.append((_("Accuracy against size"), text + _random_note(lang, flagged)))
    return lessons
