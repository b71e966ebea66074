"""The model inspector's layer table, freeze map and per-layer arithmetic.

Works from a summary dict (summary.json of a Keras run, or the node table of an ONNX file):
no TensorFlow, no ONNX import here.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Static

from engine.inspect import shape_text
from export.onnx_layers import explain
from tui.i18n import _, integer, number, phrase

# Layer types whose rows are dimmed: they reshape or normalise but hold no structure to learn.
_PLUMBING = {
    "InputLayer",
    "Flatten",
    "Reshape",
    "Dropout",
    "Activation",
    "ReLU",
    "Add",
    "Concatenate",
}


def fmt_int(n: Any) -> str:
    """12,810 — or an en dash for nothing."""
    try:
        value = int(n)
    except (TypeError, ValueError):
        return "–"
    return integer(value)


def fmt_macs(n: Any) -> str:
    try:
        value = int(n)
    except (TypeError, ValueError):
        return "–"
    if value == 0:
        return "·"
    if value >= 1_000_000_000:
        return f"{number(value / 1e9, 2)} G"
    if value >= 1_000_000:
        return f"{number(value / 1e6, 2)} M"
    if value >= 1_000:
        return f"{number(value / 1e3, 1)} k"
    return str(value)


def phase_trainable_sets(
    phases: list[dict[str, Any]] | None, layers: list[dict[str, Any]]
) -> list[tuple[str, set[str] | None]]:
    """(phase name, names of the layers that train in it) for each phase of a run.

    A phase without `trainable_layers` gets None (unknown), except the last one, which is the
    state the model was saved in: the table's own trainable counts. A run without phases gets
    one pseudo-phase, "final", from those counts.
    """
    final = {str(r["name"]) for r in layers if int(r.get("trainable_params") or 0) > 0}
    result: list[tuple[str, set[str] | None]] = []
    phases = list(phases or [])
    for i, phase in enumerate(phases):
        names = phase.get("trainable_layers")
        last = i == len(phases) - 1
        if isinstance(names, list):
            # The saved model is in the last phase's state: its trainable layers train then,
            # even if the phase record lists only the layers it unfroze.
            result.append((str(phase.get("name", "?")), set(names) | (final if last else set())))
        elif last:
            result.append((str(phase.get("name", "?")), final))
        else:
            result.append((str(phase.get("name", "?")), None))
    if not result:
        result.append(("final", final))
    return result


class LayerTable(DataTable[Any]):
    """One row per layer: name, type, output shape, parameters, MACs, and train/frozen per phase."""

    DEFAULT_CSS = """
    LayerTable { height: 1fr; }
    """

    # Home/End jump to the first/last layer (DataTable only scrolls on them).
    BINDINGS = [
        Binding("home", "scroll_top", "First layer", show=False),
        Binding("end", "scroll_bottom", "Last layer", show=False),
    ]

    class LayerSelected(Message):
        """The highlighted layer changed (cursor moved or row clicked)."""

        def __init__(self, table: LayerTable, row: dict[str, Any]) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> LayerTable:
            return self.table

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.rows_data: list[dict[str, Any]] = []
        self.phases: list[tuple[str, set[str] | None]] = []

    def show(self, summary: dict[str, Any], phases: list[dict[str, Any]] | None = None) -> None:
        """Fill the table from a summary (and a run's phases for the freeze map)."""
        self.clear(columns=True)
        layers = list(summary.get("layers", []))
        self.rows_data = layers
        self.phases = phase_trainable_sets(phases, layers)
        self.add_column(_("layer"), key="name")
        self.add_column(_("type"), key="type")
        self.add_column(_("output"), key="shape")
        self.add_column(_("params"), key="params")
        self.add_column("MACs", key="macs")
        if summary.get("format") != "onnx":
            self.add_column(_("trains"), key="trains")
        rows = []
        for row in layers:
            dim = row.get("type") in _PLUMBING
            style = "dim" if dim else ""
            name = display_name(row)
            kind = str(row.get("type", "?"))
            cells: list[Any] = [
                Text(name if len(name) <= 21 else name[:20] + "…", style=style),
                Text(SHORT_TYPES.get(kind, kind), style=style),
                Text(compact_shape(row.get("output_shape")), style=style),
                Text(fmt_int(row.get("params")), justify="right"),
                Text(
                    fmt_macs(row.get("macs")),
                    justify="right",
                    style="dim" if not row.get("macs") else "",
                ),
            ]
            if summary.get("format") != "onnx":
                cells.append(
                    _trains_cell(str(row.get("name")), int(row.get("params") or 0), self.phases)
                )
            rows.append(cells)
        self.add_rows(rows)
        if layers:
            self.move_cursor(row=0)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self.rows_data):
            self.post_message(self.LayerSelected(self, self.rows_data[event.cursor_row]))

    def select_layer(self, name: str) -> bool:
        """Move the cursor to the layer called `name`; False when there is none."""
        for i, row in enumerate(self.rows_data):
            if row.get("name") == name:
                self.move_cursor(row=i)
                return True
        return False


def _trains_cell(name: str, params: int, phases: list[tuple[str, set[str] | None]]) -> Text:
    """In which phases a layer trains: "all", "frozen", or the phase names ("finetune")."""
    if params == 0:
        return Text("·", style="dim")
    known = [(p, t) for p, t in phases if t is not None]
    if not known:
        return Text("?", style="dim")
    training = [p for p, t in known if name in t]
    if not training:
        return Text("no", style="blue")
    if len(training) == len(known):
        return Text("yes", style="bold green")
    return Text("+".join(PHASE_LABELS.get(p, p) for p in training), style="bold green")


# "frozen" is the phase that trains the head on a frozen base: say so, not "frozen" in green.
PHASE_LABELS = {"frozen": "head", "finetune": "finetune"}


# Short names so the table fits beside the arithmetic at 120 columns.
SHORT_TYPES = {
    "BatchNormalization": "BatchNorm",
    "MaxPooling2D": "MaxPool2D",
    "AveragePooling2D": "AvgPool2D",
    "GlobalAveragePooling2D": "GlobalAvgPool",
    "GlobalMaxPooling2D": "GlobalMaxPool",
    "DepthwiseConv2D": "DWConv2D",
    "SeparableConv2D": "SepConv2D",
    "ZeroPadding2D": "ZeroPad2D",
    "BatchNormalization_": "BatchNorm",
}


def display_name(row: dict[str, Any]) -> str:
    """A row's name for the table: ONNX node names from tf2onnx repeat the model's scopes
    (`model_1/backbone_1/block_3/conv`), so only the last two parts are shown."""
    name = str(row.get("name", "?"))
    if row.get("format") == "onnx" and name.count("/") > 1:
        return "/".join(name.split("/")[-2:])
    return name


def compact_shape(shape: Any) -> str:
    """`16×16×64` for (None, 16, 16, 64): the batch axis is always N, so it is left out."""
    if isinstance(shape, list) and shape and not isinstance(shape[0], list):
        dims = shape[1:] if shape[0] is None or len(shape) > 1 else shape
        return "×".join("?" if d is None else str(d) for d in dims) or "scalar"
    return shape_text(shape)


class FreezeMap(Static):
    """Every layer with parameters as one cell, per phase: green trains, blue is frozen.

    A ResNet152 has ~500 layers: one row of cells per phase, wrapped, shows the whole model at
    a glance (the fine-tuned top is the green tail).
    """

    DEFAULT_CSS = """
    FreezeMap { height: auto; padding: 0 1; }
    """

    def show(self, summary: dict[str, Any], phases: list[dict[str, Any]] | None = None) -> None:
        layers = [r for r in summary.get("layers", []) if int(r.get("params") or 0) > 0]
        text = Text()
        text.append(_("freeze map"), style="bold")
        text.append(" (" + _("{count} layers with weights").format(count=len(layers)) + "; ")
        text.append("■", style="green")
        text.append(" " + _("trains") + "  ")
        text.append("■", style="blue")
        text.append(" " + _("frozen") + ")\n")
        for name, trainable in phase_trainable_sets(phases, summary.get("layers", [])):
            n_train = 0
            if trainable is not None:
                n_train = sum(1 for r in layers if r.get("name") in trainable)
            text.append(f"{name:>8} ", style="bold")
            for r in layers:
                if trainable is None:
                    text.append("▪", style="dim")
                elif r.get("name") in trainable:
                    text.append("■", style="green")
                else:
                    text.append("■", style="blue")
            if trainable is not None:
                params = sum(
                    int(r.get("trainable_params") or r.get("params") or 0)
                    for r in layers
                    if r.get("name") in trainable
                )
                if n_train == 1:
                    trains = _("{n} layer, {params} params train")
                else:
                    trains = _("{n} layers, {params} params train")
                text.append("  " + trains.format(n=n_train, params=integer(params)), style="dim")
            text.append("\n")
        self.update(text)


class ArithmeticView(Static):
    """The selected layer's arithmetic, spelled out with its real numbers."""

    DEFAULT_CSS = """
    ArithmeticView { height: auto; padding: 0 1; }
    """

    def show(self, row: dict[str, Any] | None) -> None:
        if row is None:
            self.update(_("Select a layer to see its arithmetic."))
            return
        explained = explain(row)
        text = Text()
        text.append(display_name(row), style="bold")
        text.append(f"  {row.get('type')}\n", style="italic")
        inbound = row.get("inbound") or []
        if inbound:
            text.append(
                _("inputs:")
                + " "
                + ", ".join(
                    display_name({"name": i, "format": row.get("format")}) for i in inbound[:4]
                )
                + ("…" if len(inbound) > 4 else "")
                + "\n",
                style="dim",
            )
        for line in explained["lines"]:
            text.append(phrase(line) + "\n")
        checks = explained.get("checks") or {}
        for what, ok in checks.items():
            if ok:
                if what == "params":
                    agrees = _("✓ {what} match the model's own count")
                else:
                    agrees = _("✓ {what} matches the model")
                text.append(agrees.format(what=_(what)) + "\n", style="green")
            else:
                reported = integer(explained["params"]["reported"])
                differs = _("✗ {what} differs from the model (reported {reported})")
                text.append(differs.format(what=_(what), reported=reported) + "\n", style="red")
        cfg = row.get("config") or {}
        if cfg:
            text.append(_("config:") + " ", style="dim")
            text.append(
                ", ".join(f"{k}={v}" for k, v in cfg.items() if k != "data_format"), style="dim"
            )
        self.update(text)
