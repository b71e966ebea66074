"""The report's figures as PNG bytes, drawn with matplotlib's Agg renderer (no display needed).

Each function takes one run and returns PNG bytes, or None when the run lacks what the figure
needs (no history, no confusion matrix, no model file). matplotlib is imported here, lazily,
through `Figure` directly: no pyplot, so no global state and no GUI backend.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from engine.i18n import Language
from engine.report.assemble import ReportRun

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="tight")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No Software/date metadata: the same runs draw byte-identical files.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _comma_axis(ax: Any, lang: Language) -> None:
    """Tick labels with the locale's decimal separator."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: lang.number(v, 2)))


def curves(run: ReportRun, lang: Language) -> bytes | None:
    """Accuracy and loss per epoch, training and validation, with phase changes marked."""
    history = run.record.history
    if not history:
        return None
    _ = lang._
    epochs = list(range(1, len(history) + 1))
    figure = _new_figure(9, 3.4)
    axes = figure.subplots(1, 2)
    series = (
        (_("Accuracy"), [h.accuracy for h in history], [h.val_accuracy for h in history]),
        (_("Loss"), [h.loss for h in history], [h.val_loss for h in history]),
    )
    for ax, (title, train, val) in zip(axes, series, strict=True):
        for values, label in ((train, _("training")), (val, _("validation"))):
            points = [(e, v) for e, v in zip(epochs, values, strict=True) if v is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label)
        for i in range(1, len(history)):
            if history[i].phase != history[i - 1].phase:
                ax.axvline(i + 0.5, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel(_("epoch"))
        ax.grid(alpha=0.3)
        _comma_axis(ax, lang)
        ax.legend()
    return _png(figure)


def confusion(run: ReportRun, lang: Language) -> bytes | None:
    """The test confusion matrix, rows true class, columns predicted, counts written in."""
    import numpy as np

    matrix = run.metrics.confusion_matrix
    if not matrix:
        return None
    cm = np.asarray(matrix)
    data = run.record.data
    classes = list((data.classes if data else None) or range(len(cm)))
    _ = lang._
    figure = _new_figure(6, 5.2)
    ax = figure.subplots()
    image = ax.imshow(cm, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ticks = range(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(c) for c in classes])
    ax.set_xlabel(_("predicted class"))
    ax.set_ylabel(_("true class"))
    if len(classes) <= 12:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                colour = "white" if cm[i, j] > threshold else "black"
                ax.text(
                    j, i, str(int(cm[i, j])), ha="center", va="center", color=colour, fontsize=7
                )
    return _png(figure)


def per_class(run: ReportRun, lang: Language) -> bytes | None:
    """Test accuracy of each class as horizontal bars, with the overall accuracy marked."""
    accuracy = run.metrics.per_class_accuracy
    if not accuracy:
        return None
    from matplotlib.ticker import FuncFormatter

    _ = lang._
    names = list(accuracy)
    values = [float(accuracy[n] or 0.0) * 100 for n in names]
    figure = _new_figure(6, 0.32 * len(names) + 1.2)
    ax = figure.subplots()
    ax.barh(names, values, color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(_("test accuracy (%)"))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: lang.number(v, 0)))
    overall = run.metrics.test_accuracy
    if overall is not None:
        ax.axvline(overall * 100, color="tab:red", linestyle="--", linewidth=1)
    for y, v in enumerate(values):
        ax.text(min(v + 1, 92), y, lang.number(v, 1), va="center", fontsize=7)
    return _png(figure)


def first_layer_filters(run: ReportRun, lang: Language) -> bytes | None:
    """The first convolution's filters as a grid of small images (colour patches for RGB input)."""
    import numpy as np

    from engine.errors import CnnlabError
    from engine.inspect import conv_layers, load_kernel
    from engine.runs import read_json

    if not (run.path / "model.keras").is_file() or not (run.path / "summary.json").is_file():
        return None
    try:
        names = conv_layers(read_json(run.path / "summary.json"))
        if not names:
            return None
        kernel = load_kernel(run.path, names[0])
    except (CnnlabError, OSError, KeyError, ValueError):
        return None  # a model file the reader cannot take apart: no grid rather than no report
    kh, kw, cin, cout = kernel.shape
    count = min(cout, 64)
    columns = min(count, 8)
    rows = -(-count // columns)
    figure = _new_figure(columns * 0.8 + 0.4, rows * 0.8 + 0.6)
    figure.suptitle(
        lang._("{layer}: {count} of {total} filters, {k}×{k}").format(
            layer=names[0], count=count, total=cout, k=kh
        ),
        fontsize=9,
    )
    grid = figure.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(grid.flat):
        ax.set_axis_off()
        if index >= count:
            continue
        patch = kernel[..., index]
        if cin == 3:  # each filter on its own scale, so weak filters still show their pattern
            low, high = float(patch.min()), float(patch.max())
            ax.imshow((patch - low) / (high - low or 1.0), interpolation="nearest")
        else:
            ax.imshow(np.asarray(patch[:, :, 0]), cmap="gray", interpolation="nearest")
    return _png(figure)
