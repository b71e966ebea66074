"""The report's content as a list of blocks (headings, paragraphs, tables, figures).

Markdown and HTML render the same blocks, so both formats always say the same thing. Every table
and caption marks random-initialised runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.i18n import Language
from engine.records import CompareRow, PreprocessingRow
from engine.report import figures
from engine.report.assemble import ReportData, ReportRun
from engine.report.lessons import build_report_lessons
from engine.report.model_lessons import Span, model_lessons


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str
    # Emphasised runs of the same text (lessons); when set, renderers use these instead of `text`.
    spans: list[Span] | None = None


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    # Columns whose cells are numbers: right-aligned.
    numeric: set[int] = field(default_factory=set)


@dataclass
class Image:
    name: str  # file name, e.g. "20260101-...-curves.png"
    caption: str
    png: bytes


Block = Heading | Paragraph | Table | Image

FigureFn = Callable[[ReportRun, Language], "bytes | None"]


def _model_cell(name: str, random_init: bool, lang: Language) -> str:
    # Outside the f-string: pybabel on Python 3.11 does not look inside f-strings.
    marker = lang._("random init")
    return f"{name} ({marker})" if random_init else name


def _points(value: Any, lang: Language) -> str:
    return lang.number(float(value), 1) if value is not None else "–"


def _int(value: Any, lang: Language) -> str:
    return lang.integer(int(value)) if value is not None else "–"


def experiment_table(data: ReportData, lang: Language) -> Table:
    _ = lang._
    headers = [
        _("Run"),
        _("Experiment"),
        _("Model"),
        _("Parameters"),
        _("Trainable"),
        _("Train accuracy"),
        _("Validation accuracy"),
        _("Test accuracy"),
        _("Gap (points)"),
        _("Epochs"),
        _("Status"),
    ]
    rows = []
    for run in data.trained:
        m, params = run.metrics, run.params
        rows.append(
            [
                run.id,
                run.experiment,
                _model_cell(run.model_name, run.random_init, lang),
                _int(params.total if params else None, lang),
                _int(params.trainable if params else None, lang),
                lang.percent(m.train_accuracy),
                lang.percent(m.val_accuracy),
                lang.percent(m.test_accuracy),
                _points(m.overfit_gap, lang),
                _int(m.epochs_run, lang),
                _(run.status),
            ]
        )
    return Table(headers, rows, numeric=set(range(3, 10)))


def ranking_table(rows: list[CompareRow], data: ReportData, lang: Language) -> Table:
    """A ranking as a compare parent wrote it; MACs read from each child's summary.json."""
    _ = lang._
    headers = [
        _("Rank"),
        _("Backbone"),
        _("Test accuracy"),
        _("Parameters (M)"),
        _("Efficiency (points per M parameters)"),
        _("MACs per image (M)"),
        _("Run"),
    ]
    cells = []
    for row in rows:
        child = data.find(row.run_id)
        macs = child.macs if child else None
        cells.append(
            [
                str(row.rank) if row.rank is not None else "–",
                _model_cell(row.backbone, row.random_init, lang),
                lang.percent(row.test_accuracy),
                lang.number(row.params_m, 2) if row.params_m else "–",
                lang.number(row.efficiency * 100, 1) if row.efficiency is not None else "–",
                lang.number(macs / 1e6, 1) if macs else "–",
                row.run_id or "–",
            ]
        )
    return Table(headers, cells, numeric={0, 2, 3, 4, 5})


def preprocessing_table(rows: list[PreprocessingRow], lang: Language) -> Table:
    """A preprocessing parent's before/after table as it wrote it."""
    _ = lang._
    headers = [
        _("Backbone"),
        _("Its preprocessing"),
        _("Before: x/255"),
        _("After: its own"),
        _("Change (points)"),
    ]
    cells = []
    for row in rows:
        change = row.delta_points
        cells.append(
            [
                _model_cell(row.backbone, row.random_init, lang),
                row.preprocessing or "–",
                lang.percent(row.before),
                lang.percent(row.after),
                (("+" if change > 0 else "") + lang.number(change, 1))
                if change is not None
                else "–",
            ]
        )
    return Table(headers, cells, numeric={2, 3, 4})


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here (it is translated where shown)."""
    return message


FIGURES: tuple[tuple[str, str, FigureFn], ...] = (
    ("curves", N_("Accuracy and loss per epoch"), figures.curves),
    ("confusion", N_("Confusion matrix on the test set"), figures.confusion),
    ("per-class", N_("Test accuracy per class"), figures.per_class),
    ("filters", N_("First-layer filters"), figures.first_layer_filters),
)


def _run_section(run: ReportRun, lang: Language) -> list[Block]:
    _ = lang._
    label = _model_cell(run.model_name, run.random_init, lang)
    blocks: list[Block] = [Heading(3, f"{label} — {run.id}")]
    facts = [
        _("Experiment: {experiment}.").format(experiment=run.record.title or run.experiment),
        _("Status: {status}.").format(status=_(run.status)),
    ]
    source = run.record.data.source if run.record.data else None
    if source:
        facts.append(_("Data: {source}.").format(source=source))
    if run.random_init:
        facts.append(_("Backbone weights: random initialisation, not ImageNet."))
    if run.record.error:
        facts.append(_("Error: {error}").format(error=run.record.error))
    blocks.append(Paragraph(" ".join(facts)))
    for key, title, draw in FIGURES:
        png = draw(run, lang)
        if png is not None:
            caption = " — ".join((_(title), f"{label}, {run.id}"))
            blocks.append(Image(f"{run.id}-{key}.png", caption, png))
    return blocks


# Run statuses are translated where shown (`_(run.status)`); listed here so pybabel sees them.
_STATUSES = (N_("finished"), N_("failed"), N_("cancelled"), N_("running"), N_("died"))


def _lesson_models(data: ReportData) -> list[tuple[ReportRun, dict[str, Any]]]:
    """The models whose own lessons the report tells: the best simple CNN and the newest
    transfer run, each with a readable summary.json."""
    from engine.errors import RunError
    from engine.runs import read_json

    def with_summary(run: ReportRun | None) -> tuple[ReportRun, dict[str, Any]] | None:
        if run is None or not (run.path / "summary.json").is_file():
            return None
        try:
            summary = read_json(run.path / "summary.json")
        except RunError:
            return None
        return (run, summary) if isinstance(summary, dict) and summary.get("layers") else None

    finished = [r for r in data.trained if r.metrics.test_accuracy is not None]
    cnns = [r for r in finished if r.model and r.model.name == "simple_cnn"]
    best_cnn = max(cnns, key=lambda r: r.metrics.test_accuracy or 0.0, default=None)
    transfer = [r for r in finished if r.model and r.model.backbone]
    picked = [with_summary(best_cnn), with_summary(transfer[-1] if transfer else None)]
    return [p for p in picked if p is not None]


def build_document(data: ReportData, lang: Language) -> list[Block]:
    """Every block of the report, in reading order."""
    _ = lang._
    blocks: list[Block] = [Heading(1, _("cnnlab report"))]
    count = len(data.runs)
    blocks.append(Paragraph(lang.ngettext("{n} run.", "{n} runs.", count).format(n=count)))
    if data.trained:
        blocks += [Heading(2, _("Experiments")), experiment_table(data, lang)]
    for parent in data.parents("compare"):
        blocks += [
            Heading(2, _("Backbone ranking")),
            Paragraph(
                _(
                    "From run {run}: test accuracy, size and cost of each pretrained backbone."
                ).format(run=parent.id)
            ),
            ranking_table(parent.record.compare_rows, data, lang),
        ]
    for parent in data.parents("preprocessing"):
        blocks += [
            Heading(2, _("Preprocessing: before and after")),
            Paragraph(
                _("From run {run}: each backbone fed x/255, then its own preprocessing.").format(
                    run=parent.id
                )
            ),
            preprocessing_table(parent.record.preprocessing_rows, lang),
        ]
    lessons = build_report_lessons(data, lang)
    models = _lesson_models(data)
    if lessons or models:
        blocks.append(Heading(2, _("Lessons")))
        for title, text in lessons:
            blocks += [Heading(3, title), Paragraph(text)]
    for run, summary in models:
        label = _model_cell(run.model_name, run.random_init, lang)
        blocks.append(
            Heading(3, _("Your model {model}, run {run}").format(model=label, run=run.id))
        )
        for lesson in model_lessons(summary, run.record, None, lang):
            # The runs' own preprocessing and frozen-layer lessons above cover those two.
            if lesson.key not in ("preprocessing", "frozen"):
                blocks += [Heading(4, lesson.title), Paragraph(lesson.text, lesson.spans)]
    if data.trained:
        blocks.append(Heading(2, _("Runs")))
        for run in data.trained:
            blocks += _run_section(run, lang)
    if data.corrupt:
        blocks.append(Heading(2, _("Unreadable runs")))
        blocks.append(
            Table(
                [_("Folder"), _("Problem")],
                [[str(c.path.name), c.reason] for c in data.corrupt],
            )
        )
    return blocks
