"""The Filters, Activations and Preprocessing panes of the Inspect screen.

Each pane gets the loaded target (`set_target`), follows the layer selected in the layer
table (`follow_layer`), pages with `[`/`]` (`page`) and steps with `,`/`.` (`step`). Heavy work
(h5py, onnxruntime, numpy) runs in thread workers that post the pane's own messages; widgets
change only in the handlers, on the UI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Select, Static

from tui.screens.inspect_target import LoadedTarget, Samples
from tui.widgets.activations import FeatureMaps, render_top5
from tui.widgets.filters import FilterGrid, render_colour_scale, render_filter_stats, scale_for
from tui.widgets.histogram import render_histograms, render_range_line
from tui.widgets.layer_table import display_name
from tui.widgets.pixels import HalfBlockImage

if TYPE_CHECKING:
    import numpy as np

    from export.activations import ActivationProbe

GRID_ROWS = 3  # rows of filter patches per page


class FiltersPane(Vertical):
    """A convolution's kernels as colour patches, a page at a time, with per-filter statistics."""

    DEFAULT_CSS = """
    FiltersPane { height: 1fr; }
    FiltersPane .pane-controls { height: auto; }
    FiltersPane #filters-layer { width: 60; }
    FiltersPane #filters-info { width: 1fr; padding: 1 1 0 1; }
    FiltersPane #filters-scroll { height: 1fr; padding: 0 1; }
    FiltersPane #filters-scale { margin: 1 0 0 0; }
    FiltersPane #filters-stats { margin: 1 0 0 0; }
    """

    class KernelLoaded(Message):
        """A kernel was read (K×K×Cin×Cout)."""

        def __init__(self, layer: str, kernel: np.ndarray) -> None:
            super().__init__()
            self.layer = layer
            self.kernel = kernel

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target: LoadedTarget | None = None
        self.kernel: np.ndarray | None = None
        self.layer_name: str | None = None
        self.page_index = 0
        self.channel = 0
        self.report: dict[str, Any] | None = None
        self._conv_names: list[str] = []

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-controls"):
            yield Select[str]([], prompt="convolution", id="filters-layer", type_to_search=False)
            yield Static("", id="filters-info")
        with VerticalScroll(id="filters-scroll"):
            yield FilterGrid(id="filter-grid")
            yield Static("", id="filters-scale")
            yield Static("", id="filters-stats")

    @property
    def grid(self) -> FilterGrid:
        return self.query_one("#filter-grid", FilterGrid)

    @property
    def layer_select(self) -> Select[str]:
        return self.query_one("#filters-layer", Select)

    def set_target(self, target: LoadedTarget) -> None:
        from engine.inspect import conv_layers

        self.target = target
        self.kernel = None
        self._conv_names = conv_layers(target.summary)
        if not self._conv_names:
            self.layer_select.set_options([])
            self._info("This model has no convolutions (an MLP sees pixels, not patches).")
            self.grid.show(None)
            return
        onnx = target.summary.get("format") == "onnx"
        self.layer_select.set_options(
            [
                (display_name({"name": n, "format": "onnx"}) if onnx else n, n)
                for n in self._conv_names
            ]
        )
        self.layer_select.value = self._conv_names[0]

    def follow_layer(self, row: dict[str, Any]) -> None:
        name = str(row.get("name"))
        if name in self._conv_names and self.layer_select.value != name:
            self.layer_select.value = name

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "filters-layer" or event.value is Select.NULL:
            return
        event.stop()
        self._info(f"reading {event.value} …")
        self._load_kernel(str(event.value))

    def _source(self) -> Path | None:
        if self.target is None:
            return None
        if self.target.summary.get("format") == "onnx":
            return self.target.onnx_path
        return self.target.keras_path

    @work(
        thread=True,
        exclusive=True,
        group="inspect-filters",
        description="read the kernel",
        exit_on_error=False,
    )
    def _load_kernel(self, layer: str) -> None:
        from export.onnx_layers import load_kernel

        source = self._source()
        if source is None:
            raise ValueError("no model file to read kernels from (this run has no model.keras)")
        self.post_message(self.KernelLoaded(layer, load_kernel(source, layer)))

    def on_filters_pane_kernel_loaded(self, message: KernelLoaded) -> None:
        self.layer_name, self.kernel = message.layer, message.kernel
        self.page_index, self.channel = 0, 0
        self.redraw()

    def per_page(self) -> int:
        if self.kernel is None:
            return 1
        kh, kw = self.kernel.shape[:2]
        s = scale_for(max(kh, kw))
        cell_w = max(kw * s, 5) + 1
        width = self.grid.size.width or 100
        return max(1, width // cell_w) * GRID_ROWS

    def redraw(self) -> None:
        from engine.inspect import filter_report

        if self.kernel is None:
            return
        kh, kw, cin, cout = self.kernel.shape
        per_page = self.per_page()
        pages = max(1, -(-cout // per_page))
        self.page_index = max(0, min(self.page_index, pages - 1))
        self.channel = max(0, min(self.channel, cin - 1))
        report = filter_report(
            self.kernel,
            layer=self.layer_name or "",
            start=self.page_index * per_page,
            count=per_page,
            channel=self.channel if cin != 3 else 0,
        )
        self.report = report
        self.grid.show(report)
        self.query_one("#filters-scale", Static).update(render_colour_scale(report))
        self.query_one("#filters-stats", Static).update(render_filter_stats(report))
        lo, hi = report["range"]
        what = (
            "RGB patches"
            if report["mode"] == "rgb"
            else f"input channel {self.channel + 1}/{cin} (, .)"
        )
        self._info(
            f"{cout} filters of {kh}×{kw}×{cin} = {kh * kw * cin:,} weights · showing {lo}–{hi - 1} "
            f"· page {self.page_index + 1}/{pages} ([ ]) · {what}"
        )

    def page(self, delta: int) -> None:
        self.page_index += delta
        self.redraw()

    def step(self, delta: int) -> None:
        if self.kernel is not None and self.kernel.shape[2] != 3:
            self.channel = (self.channel + delta) % self.kernel.shape[2]
            self.redraw()

    def on_resize(self) -> None:
        if self.kernel is not None:
            self.redraw()

    def _info(self, text: str) -> None:
        self.query_one("#filters-info", Static).update(text)


class ActivationsPane(Vertical):
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
            yield Button("Export to ONNX  x", id="act-export", variant="primary")
            yield Select[str]([], prompt="tensor", id="act-layer", type_to_search=False)
            yield Input(placeholder="data source", id="act-data")
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
            self._info(
                "Activations are computed with onnxruntime on the exported model, and this "
                + (
                    "run has no ONNX export yet: press x (or the button) to run `engine export`."
                    if self.can_export()
                    else "is not an ONNX file: export it first with `engine export FILE.keras`."
                )
            )
            self.maps.show(None, message="")
            return
        export_button.display = False
        self._info(f"reading {target.onnx_path.name} …")
        self._open_probe(target.onnx_path)

    @work(
        thread=True,
        exclusive=True,
        group="inspect-activations-open",
        description="open the ONNX model",
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
            f"{len(probe.tensors)} tensors · input {probe.input.shape if probe.input else '?'} "
            f"· preprocessing {probe.preprocessing_name()} · , . image · [ ] maps page"
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
        description="run the image through onnxruntime",
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
            f"image {self.outputs_index + 1}/{len(samples.images)} ({samples.source})\n",
            style="dim",
        )
        caption.append("true ")
        caption.append(true_name, style="bold green")
        caption.append(" · predicted ")
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
        stats.append(f"  {info.op} · {maps.shape[0]} maps of {maps.shape[1]}×{maps.shape[2]}")
        stats.append(
            f" · channels {start}–{start + len(page) - 1} · page {self.map_page + 1}/{pages}\n"
        )
        stats.append(
            f"range {float(maps.min()):.3g}..{float(maps.max()):.3g} · mean {float(maps.mean()):.3g} · "
            f"{zeros:.0f} % zeros · each map coloured over its own range (↑ = its peak)",
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
            self.app.notify("Nothing to export: this is not a run without an ONNX file.")
            return
        self.query_one("#act-export", Button).disabled = True
        self._info(
            f"exporting {self.target.path.name} to ONNX (engine export; a minute for big models) …"
        )
        self._export(self.target.path)

    @work(
        thread=True,
        exclusive=True,
        group="inspect-export",
        description="export to ONNX",
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
            raise ValueError("engine export finished but no .onnx file is in the run folder")
        self.post_message(self.ExportFinished(path))

    def on_activations_pane_export_finished(self, message: ExportFinished) -> None:
        self.query_one("#act-export", Button).disabled = False
        reload = getattr(self.screen, "reload", None)
        if reload is not None:
            reload()

    def _info(self, text: str) -> None:
        self.query_one("#act-info", Static).update(text)


PREPROCESSING_CHOICES = [
    ("MobileNetV2  — 'tf': [-1, 1]", "MobileNetV2"),
    ("ResNet50/101/152 — 'caffe': BGR − mean", "ResNet50"),
    ("VGG16/19 — 'caffe': BGR − mean", "VGG16"),
    ("EfficientNetB0/B3 — raw [0, 255]", "EfficientNetB0"),
    ("MobileNetV3Large — raw [0, 255]", "MobileNetV3Large"),
    ("simple CNN / MLP — x/255", "unit"),
]


class PreprocessingPane(Vertical):
    """What each backbone's preprocessing does to a real batch, and what the x/255 mistake cost."""

    DEFAULT_CSS = """
    PreprocessingPane { height: 1fr; }
    PreprocessingPane .pane-controls { height: auto; }
    PreprocessingPane #prep-backbone { width: 48; }
    PreprocessingPane #prep-data { width: 28; }
    PreprocessingPane #prep-scroll { height: 1fr; padding: 0 1; }
    PreprocessingPane #prep-hists { height: auto; }
    PreprocessingPane .prep-hist { width: auto; margin: 0 3 0 0; }
    PreprocessingPane #prep-spec, PreprocessingPane #prep-range, PreprocessingPane #prep-acc { margin: 1 0 0 0; }
    """

    class StatsReady(Message):
        """Histograms of the batch for one preprocessing, and the runs' accuracies."""

        def __init__(self, choice: str, stats: dict[str, Any], results: dict[str, Any]) -> None:
            super().__init__()
            self.choice = choice
            self.stats = stats
            self.results = results

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target: LoadedTarget | None = None
        self.samples: Samples | None = None
        self.stats: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-controls"):
            yield Select[str](
                PREPROCESSING_CHOICES, allow_blank=False, value="MobileNetV2", id="prep-backbone"
            )
            yield Input(value="synthetic", placeholder="data source", id="prep-data")
        with VerticalScroll(id="prep-scroll"):
            yield Static("", id="prep-spec")
            yield Static("", id="prep-range")
            with Horizontal(id="prep-hists"):
                yield Static("", classes="prep-hist", id="prep-before")
                yield Static("", classes="prep-hist", id="prep-mistake")
                yield Static("", classes="prep-hist", id="prep-after")
            yield Static("", id="prep-acc")

    def set_target(self, target: LoadedTarget) -> None:
        self.target = target
        choice = self._choice_for(target)
        self.query_one("#prep-data", Input).value = target.data_source or "synthetic"
        select = self.query_one("#prep-backbone", Select)
        if select.value != choice:
            select.value = choice
        self._request_samples()
        self._describe(choice)

    @staticmethod
    def _choice_for(target: LoadedTarget) -> str:
        from engine.backbones import get_backbone
        from engine.registry import UnknownName

        backbone = target.backbone
        if not backbone:
            return "unit"
        try:
            spec = get_backbone(backbone)
        except UnknownName:
            return "unit"
        values = [v for _, v in PREPROCESSING_CHOICES]
        if spec.name in values:
            return spec.name
        family = {
            "resnet": "ResNet50",
            "vgg16": "VGG16",
            "vgg19": "VGG16",
            "efficientnet": "EfficientNetB0",
        }
        return family.get(spec.preprocessing, "MobileNetV2")

    def _request_samples(self) -> None:
        source = self.query_one("#prep-data", Input).value.strip() or "synthetic"
        request = getattr(self.screen, "request_samples", None)
        if request is not None:
            request(source)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "prep-data":
            event.stop()
            self.samples = None
            self._request_samples()

    def samples_ready(self, samples: Samples) -> None:
        if samples.source != (self.query_one("#prep-data", Input).value.strip() or "synthetic"):
            return
        self.samples = samples
        self._compute()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "prep-backbone" or event.value is Select.NULL:
            return
        event.stop()
        self._describe(str(event.value))
        self._compute()

    def _choice(self) -> str:
        value = self.query_one("#prep-backbone", Select).value
        return "unit" if value is Select.NULL else str(value)

    def _compute(self) -> None:
        if self.samples is None:
            return
        runs_root = self.target.runs_root if self.target else None
        self._stats_worker(self._choice(), self.samples.images, runs_root)

    @work(
        thread=True,
        exclusive=True,
        group="inspect-preprocessing",
        description="histogram the batch",
        exit_on_error=False,
    )
    def _stats_worker(self, choice: str, images: np.ndarray, runs_root: Path | None) -> None:
        from engine.backbones import get_backbone
        from engine.inspect import preprocess_stats, preprocessing_results

        name = "unit" if choice == "unit" else get_backbone(choice).preprocessing
        stats = preprocess_stats(images, name)
        self.post_message(self.StatsReady(choice, stats, preprocessing_results(runs_root)))

    def _describe(self, choice: str) -> None:
        from engine.backbones import get_backbone
        from engine.preprocessing import get_preprocessing

        if choice == "unit":
            spec = get_preprocessing("unit")
            who = "the simple CNN and the MLP (trained from scratch)"
        else:
            backbone = get_backbone(choice)
            spec = backbone.preprocess
            who = f"{backbone.family} backbones ({spec.keras_module}.preprocess_input)"
        lo, hi = spec.output_range
        text = Text()
        text.append(f"{spec.name}", style="bold")
        text.append(f" — used by {who}\n")
        text.append("does:      ", style="dim")
        text.append(f"{spec.formula}\n")
        text.append("in words:  ", style="dim")
        text.append(f"{spec.description}\n")
        text.append("produces:  ", style="dim")
        text.append(
            f"[{lo:g}, {hi:g}] from pixels in [0, 255] — the range the pretrained weights were trained on"
        )
        self.query_one("#prep-spec", Static).update(text)

    def on_preprocessing_pane_stats_ready(self, message: StatsReady) -> None:
        if message.choice != self._choice():
            return
        stats = self.stats = message.stats
        lo, hi = stats["expected_range"]
        if "mistake" in stats:
            self.query_one("#prep-range", Static).update(
                render_range_line((lo, hi), tuple(stats["mistake"]["range"]), width=50)  # type: ignore[arg-type]
            )
        else:
            self.query_one("#prep-range", Static).update(
                Text(
                    "x/255 is this model's own preprocessing: it was trained from scratch on it.",
                    style="dim",
                )
            )
        n = stats["count"]
        self.query_one("#prep-before", Static).update(
            render_histograms(stats["before"], f"raw pixels ({n} images)")
        )
        mistake = stats.get("mistake")
        self.query_one("#prep-mistake", Static).update(
            render_histograms(mistake, "x/255 — the mistake") if mistake else ""
        )
        self.query_one("#prep-mistake", Static).display = mistake is not None
        self.query_one("#prep-after", Static).update(
            render_histograms(stats["after"], f"{stats['preprocessing']['name']} — right")
        )
        self.query_one("#prep-acc", Static).update(
            self._accuracy_text(
                message.choice, message.results, self.target.backbone if self.target else None
            )
        )

    @staticmethod
    def _accuracy_text(choice: str, results: dict[str, Any], own: str | None = None) -> Text:
        from engine.inspect import ASSIGNMENT_PREPROCESSING
        from tui.widgets.charts import Bar, render_bar_chart

        text = Text()
        text.append("test accuracy, x/255 vs own preprocessing\n", style="bold")
        if choice == "unit":
            text.append(
                "(no backbone: x/255 is right for a model trained from scratch)\n", style="dim"
            )
            return text
        bars: list[Bar] = []
        ref = ASSIGNMENT_PREPROCESSING.get(choice)
        if ref:
            approx = "~" if ref.get("approx_before") else ""
            bars.append(
                Bar("assignment x/255", ref["before"] * 100, color="#ff5f5f", note=f"{approx}")
            )
            bars.append(Bar("assignment own", ref["after"] * 100, color="#5fd75f"))
        mine = results.get(choice)
        if not mine and own and own != choice and own in results:
            # This run's backbone shares the family's preprocessing (ResNet152 for ResNet50).
            from engine.backbones import get_backbone

            if get_backbone(own).preprocessing == get_backbone(choice).preprocessing:
                mine = results[own]
        if mine:
            note = "random init" if mine.get("random_init") else ""
            if mine.get("before") is not None:
                bars.append(Bar("your run x/255", mine["before"] * 100, color="#d75f5f", note=note))
            if mine.get("after") is not None:
                bars.append(Bar("your run own", mine["after"] * 100, color="#5faf5f", note=note))
        if not bars:
            text.append("no runs on disk yet: try the `preprocessing` experiment", style="dim")
            return text
        text.append(
            render_bar_chart(
                bars, 70, max_value=100.0, value_format=lambda v: f"{v:5.1f} %", label_width=18
            )
        )
        if not mine:
            text.append(
                "\nno runs of yours for this backbone yet: the `preprocessing` experiment makes both",
                style="dim",
            )
        return text
