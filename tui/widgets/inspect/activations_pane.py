"""The Activations pane: one test image through the exported ONNX model (onnxruntime in a
thread worker), feature maps at a tensor, and the top-5."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Select, Static

from tui.i18n import N_, _, number, significant
from tui.screens.inspect_target import LoadedTarget, Samples
from tui.widgets.activations import FeatureMaps, render_top5
from tui.widgets.pixels import HalfBlockImage

if TYPE_CHECKING:
    import numpy as np

    from export.activations import ActivationProbe

from tui.widgets.inspect.base import InspectPane


class ActivationsPane(InspectPane):
    """One test image through the exported ONNX model: feature maps at a tensor, and the top-5."""

    DEFAULT_CSS = """
    ActivationsPane { height: 1fr; }
    ActivationsPane .pane-controls { height: auto; }
    ActivationsPane #act-layer { width: 1fr; max-width: 64; }
    ActivationsPane #act-data { width: 24; }
    ActivationsPane #act-export { display: none; }
    ActivationsPane #act-info { padding: 0 1; height: auto; }
    ActivationsPane #act-left { width: 40; padding: 0 1; }
    ActivationsPane #act-right { width: 1fr; padding: 0 1; }
    """

    class ProbeReady(Message):
        """The ONNX file was read and can be probed."""

        def __init__(self, probe: ActivationProbe) -> None:
            super().__init__()
            self.probe = probe

    class Computed(Message):
        """Every tensor's value for one image."""

        def __init__(self, index: int, outputs: dict[str, Any]) -> None:
            super().__init__()
            self.index = index
            self.outputs = outputs

    class ExportFinished(Message):
        """`engine export` made an ONNX file for the run."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target: LoadedTarget | None = None
        self.probe: ActivationProbe | None = None
        self.samples: Samples | None = None
        self.index = 0
        self.outputs: dict[str, Any] | None = None
        self.outputs_index = -1
        self.tensor: str | None = None
        self.map_page = 0
        self._wanted_layer: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-controls"):
            yield Button(_("Export to ONNX  x"), id="act-export", variant="primary")
            yield Select[str]([], prompt=_("tensor"), id="act-layer", type_to_search=False)
            yield Input(placeholder=_("data source"), id="act-data")
        yield Static("", id="act-info")
        with Horizontal():
            with Vertical(id="act-left"):
                yield Static("", id="act-image")
                yield Static("", id="act-top5")
            with VerticalScroll(id="act-right"):
                yield Static("", id="act-stats")
                yield FeatureMaps(id="act-maps")

    @property
    def maps(self) -> FeatureMaps:
        return self.query_one("#act-maps", FeatureMaps)

    def set_target(self, target: LoadedTarget) -> None:
        self.target = target
        self.probe = None
        self.outputs = None
        self.outputs_index = -1
        source = target.data_source or "synthetic"
        self.query_one("#act-data", Input).value = source
        export_button = self.query_one("#act-export", Button)
        self.query_one("#act-layer", Select).display = target.onnx_path is not None
        if target.onnx_path is None:
            export_button.display = self.can_export()
            if self.can_export():
                why = _(
                    "Activations are computed with onnxruntime on the exported model, and this "
                    "run has no ONNX export yet: press x (or the button) to run `engine export`."
                )
            else:
                why = _(
                    "Activations are computed with onnxruntime on the exported model, and this "
                    "is not an ONNX file: export it first with `engine export FILE.keras`."
                )
            self._info(why)
            self.maps.show(None, message="")
            return
        export_button.display = False
        self._info(_("reading {name} …").format(name=target.onnx_path.name))
        self._open_probe(target.onnx_path)

    @work(
        thread=True,
        exclusive=True,
        group="inspect-activations-open",
        description=N_("open the ONNX model"),
        exit_on_error=False,
    )
    def _open_probe(self, path: Path) -> None:
        from export.activations import ActivationProbe

        self.post_message(self.ProbeReady(ActivationProbe.open(path)))

    def on_activations_pane_probe_ready(self, message: ProbeReady) -> None:
        probe = self.probe = message.probe
        options = []
        for t in probe.tensors:
            # tf2onnx names are <model>/<backbone>/<layer>/<op>: the last two say enough.
            node = "/".join(t.node.split("/")[-2:])
            node = node if len(node) <= 34 else "…" + node[-33:]
            shape = "×".join("N" if d is None else str(d) for d in (t.shape or [])[1:])
            options.append((f"{node}  {shape}", t.name))
        select = self.query_one("#act-layer", Select)
        select.set_options(options)
        default = self._default_tensor()
        if default:
            select.value = default
        self._info(
            _(
                "{n} tensors · input {shape} · preprocessing {preprocessing} "
                "· , . image · [ ] maps page"
            ).format(
                n=len(probe.tensors),
                shape=probe.input.shape if probe.input else "?",
                preprocessing=probe.preprocessing_name(),
            )
        )
        self._request_samples()

    def _default_tensor(self) -> str | None:
        probe = self.probe
        if probe is None or not probe.tensors:
            return None
        if self._wanted_layer:
            found = self._tensor_for(self._wanted_layer)
            if found:
                return found
        convs = [
            t
            for t in probe.tensors
            if t.op in ("Relu", "Conv", "Clip") and t.layout in ("NCHW", "NHWC")
        ]
        return (convs[0] if convs else probe.tensors[0]).name

    def _tensor_for(self, layer: str) -> str | None:
        from export.activations import keras_layer_tensors

        if self.probe is None:
            return None
        for t in self.probe.tensors:
            if layer in (t.node, t.name):
                return t.name
        matches = keras_layer_tensors(self.probe, layer)
        return matches[-1].name if matches else None

    def follow_layer(self, row: dict[str, Any]) -> None:
        name = str(row.get("name"))
        self._wanted_layer = name
        found = self._tensor_for(name)
        if found:
            self.query_one("#act-layer", Select).value = found

    def _request_samples(self) -> None:
        source = self.query_one("#act-data", Input).value.strip() or "synthetic"
        request = getattr(self.screen, "request_samples", None)
        if request is not None:
            request(source)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "act-data":
            event.stop()
            self.samples = None
            self._request_samples()

    def samples_ready(self, samples: Samples) -> None:
        wanted = self.query_one("#act-data", Input).value.strip() or "synthetic"
        if samples.source != wanted:
            return
        self.samples = samples
        self.index = min(self.index, len(samples.images) - 1)
        self._compute()

    def _compute(self) -> None:
        if self.probe is None or self.samples is None or not len(self.samples.images):
            return
        self._run_probe(self.index, self.samples.images[self.index])

    @work(
        thread=True,
        exclusive=True,
        group="inspect-activations",
        description=N_("run the image through onnxruntime"),
        exit_on_error=False,
    )
    def _run_probe(self, index: int, image: np.ndarray) -> None:
        assert self.probe is not None
        self.post_message(self.Computed(index, self.probe.run(image)))

    def on_activations_pane_computed(self, message: Computed) -> None:
        self.outputs, self.outputs_index = message.outputs, message.index
        self.redraw()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "act-layer" or event.value is Select.NULL:
            return
        event.stop()
        self.tensor = str(event.value)
        self.map_page = 0
        self.redraw()

    def per_page(self, maps_shape: tuple[int, ...]) -> int:
        from tui.widgets.activations import map_size

        c, h, w = maps_shape
        if h == 1 and w == 1:
            return c
        width = self.maps.size.width or 70
        return max(1, width // (map_size(h, w) + 1)) * 3

    def redraw(self) -> None:
        from export.activations import feature_maps, top_k

        probe, samples, outputs = self.probe, self.samples, self.outputs
        if probe is None or samples is None or outputs is None or self.tensor is None:
            return
        classes = probe.class_names() or samples.classes
        image = samples.images[self.outputs_index]
        label = int(samples.labels[self.outputs_index])
        probs = probe.probabilities(outputs)
        top = top_k(probs, classes)
        true_name = classes[label] if label < len(classes) else str(label)
        mark = "✓" if top and top[0]["index"] == label else "✗"
        caption = Text()
        caption.append(
            _("image {n}/{total} ({source})").format(
                n=self.outputs_index + 1, total=len(samples.images), source=samples.source
            )
            + "\n",
            style="dim",
        )
        caption.append(_("true") + " ")
        caption.append(true_name, style="bold green")
        caption.append(" · " + _("predicted") + " ")
        caption.append(
            f"{top[0]['class'] if top else '?'} {mark}",
            style="bold " + ("green" if mark == "✓" else "red"),
        )
        from rich.console import Group

        # 32×32 pixels take 16 rows: on a short terminal draw the image at half size.
        side = 32 if self.size.height >= 34 else 16
        self.query_one("#act-image", Static).update(
            Group(HalfBlockImage(image, width=side), caption)
        )
        self.query_one("#act-top5", Static).update(
            Group(Text("\ntop-5", style="bold"), render_top5(top, label, width=38))
        )
        info = next((t for t in probe.tensors if t.name == self.tensor), None)
        if info is None or self.tensor not in outputs:
            return
        maps = feature_maps(outputs[self.tensor], info.layout)
        per_page = self.per_page(maps.shape)
        pages = max(1, -(-maps.shape[0] // per_page))
        self.map_page = max(0, min(self.map_page, pages - 1))
        start = self.map_page * per_page
        page = maps[start : start + per_page]
        zeros = float((maps == 0).mean()) * 100
        stats = Text()
        stats.append("/".join(info.node.split("/")[-2:]), style="bold")
        stats.append(
            f"  {info.op} · "
            + _("{n} maps of {size}").format(
                n=maps.shape[0], size=f"{maps.shape[1]}×{maps.shape[2]}"
            )
        )
        stats.append(
            " · "
            + _("channels {first}–{last} · page {page}/{pages}").format(
                first=start, last=start + len(page) - 1, page=self.map_page + 1, pages=pages
            )
            + "\n"
        )
        stats.append(
            _(
                "range {low}..{high} · mean {mean} · {zeros} % zeros "
                "· each map coloured over its own range (↑ = its peak)"
            ).format(
                low=significant(float(maps.min()), 3),
                high=significant(float(maps.max()), 3),
                mean=significant(float(maps.mean()), 3),
                zeros=number(zeros, 0),
            ),
            style="dim",
        )
        self.query_one("#act-stats", Static).update(stats)
        self.maps.show(page, start)

    def page(self, delta: int) -> None:
        self.map_page += delta
        self.redraw()

    def step(self, delta: int) -> None:
        if self.samples is None or not len(self.samples.images):
            return
        self.index = (self.index + delta) % len(self.samples.images)
        self._compute()

    def on_resize(self) -> None:
        self.redraw()

    def can_export(self) -> bool:
        """A run with a Keras model and no ONNX file yet."""
        t = self.target
        return (
            t is not None and t.kind == "run" and t.keras_path is not None and t.onnx_path is None
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "act-export":
            return
        event.stop()
        self.export()

    def export(self) -> None:
        """Run `engine export` on this run (a child process: tf2onnx needs TensorFlow)."""
        if self.target is None or not self.can_export():
            self.app.notify(_("Nothing to export: this is not a run without an ONNX file."))
            return
        self.query_one("#act-export", Button).disabled = True
        self._info(
            _("exporting {name} to ONNX (engine export; a minute for big models) …").format(
                name=self.target.path.name
            )
        )
        self._export(self.target.path)

    @work(
        thread=True,
        exclusive=True,
        group="inspect-export",
        description=N_("export to ONNX"),
        exit_on_error=False,
    )
    def _export(self, run_dir: Path) -> None:
        from engine.inspect import run_onnx_path
        from tui.screens.inspect_target import engine_command, run_engine_json

        run_engine_json(engine_command(self.app), ["export", str(run_dir), "--json"], timeout=1800)
        import json

        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        path = run_onnx_path(run_dir, record)
        if path is None:
            raise ValueError(_("engine export finished but no .onnx file is in the run folder"))
        self.post_message(self.ExportFinished(path))

    def on_activations_pane_export_finished(self, message: ExportFinished) -> None:
        self.query_one("#act-export", Button).disabled = False
        reload = getattr(self.screen, "reload", None)
        if reload is not None:
            reload()

    def _info(self, text: str) -> None:
        self.query_one("#act-info", Static).update(text)
