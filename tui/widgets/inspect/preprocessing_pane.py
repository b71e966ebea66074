"""The Preprocessing pane: what each backbone's preprocessing does to a real batch, and what
the x/255 mistake cost (the assignment's figures beside the runs' own)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Select, Static

from tui.i18n import N_, _, formatted, number
from tui.screens.inspect_target import LoadedTarget, Samples
from tui.widgets.histogram import render_histograms, render_range_line

if TYPE_CHECKING:
    import numpy as np


from tui.widgets.inspect.base import InspectPane

# (label, backbone): the labels are translated when the Select is built.
PREPROCESSING_CHOICES = [
    ("MobileNetV2  — 'tf': [-1, 1]", "MobileNetV2"),
    (N_("ResNet50/101/152 — 'caffe': BGR − mean"), "ResNet50"),
    (N_("VGG16/19 — 'caffe': BGR − mean"), "VGG16"),
    (N_("EfficientNetB0/B3 — raw [0, 255]"), "EfficientNetB0"),
    (N_("MobileNetV3Large — raw [0, 255]"), "MobileNetV3Large"),
    (N_("simple CNN / MLP — x/255"), "unit"),
]


class PreprocessingPane(InspectPane):
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
                [(_(label), value) for label, value in PREPROCESSING_CHOICES],
                allow_blank=False,
                value="MobileNetV2",
                id="prep-backbone",
            )
            yield Input(value="synthetic", placeholder=_("data source"), id="prep-data")
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
        description=N_("histogram the batch"),
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
            who = _("the simple CNN and the MLP (trained from scratch)")
        else:
            backbone = get_backbone(choice)
            spec = backbone.preprocess
            who = _("{family} backbones ({function})").format(
                family=backbone.family, function=f"{spec.keras_module}.preprocess_input"
            )
        lo, hi = spec.output_range
        text = Text()
        text.append(f"{spec.name}", style="bold")
        text.append(" — " + _("used by {who}").format(who=who) + "\n")
        text.append(_("does:").ljust(11), style="dim")
        text.append(_(spec.formula) + "\n")
        text.append(_("in words:").ljust(11), style="dim")
        text.append(_(spec.description) + "\n")
        text.append(_("produces:").ljust(11), style="dim")
        text.append(
            f"[{formatted(lo, 'g')}, {formatted(hi, 'g')}] "
            + _("from pixels in [0, 255] — the range the pretrained weights were trained on")
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
                    _(
                        "x/255 is this model's own preprocessing: it was trained from scratch on it."
                    ),
                    style="dim",
                )
            )
        n = stats["count"]
        self.query_one("#prep-before", Static).update(
            render_histograms(stats["before"], _("raw pixels ({n} images)").format(n=n))
        )
        mistake = stats.get("mistake")
        self.query_one("#prep-mistake", Static).update(
            render_histograms(mistake, _("x/255 — the mistake")) if mistake else ""
        )
        self.query_one("#prep-mistake", Static).display = mistake is not None
        self.query_one("#prep-after", Static).update(
            render_histograms(
                stats["after"], _("{name} — right").format(name=stats["preprocessing"]["name"])
            )
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
        text.append(_("test accuracy, x/255 vs own preprocessing") + "\n", style="bold")
        if choice == "unit":
            text.append(
                _("(no backbone: x/255 is right for a model trained from scratch)") + "\n",
                style="dim",
            )
            return text
        bars: list[Bar] = []
        ref = ASSIGNMENT_PREPROCESSING.get(choice)
        if ref:
            approx = "~" if ref.get("approx_before") else ""
            bars.append(
                Bar(_("assignment x/255"), ref["before"] * 100, color="#ff5f5f", note=f"{approx}")
            )
            bars.append(Bar(_("assignment own"), ref["after"] * 100, color="#5fd75f"))
        mine = results.get(choice)
        if not mine and own and own != choice and own in results:
            # This run's backbone shares the family's preprocessing (ResNet152 for ResNet50).
            from engine.backbones import get_backbone

            if get_backbone(own).preprocessing == get_backbone(choice).preprocessing:
                mine = results[own]
        if mine:
            note = _("random init") if mine.get("random_init") else ""
            if mine.get("before") is not None:
                mine_before = _("your run x/255")
                bars.append(Bar(mine_before, mine["before"] * 100, color="#d75f5f", note=note))
            if mine.get("after") is not None:
                mine_after = _("your run own")
                bars.append(Bar(mine_after, mine["after"] * 100, color="#5faf5f", note=note))
        if not bars:
            text.append(_("no runs on disk yet: try the `preprocessing` experiment"), style="dim")
            return text
        text.append(
            render_bar_chart(
                bars,
                70,
                max_value=100.0,
                value_format=lambda v: f"{number(v, 1):>5} %",
                label_width=18,
            )
        )
        if not mine:
            text.append(
                "\n"
                + _(
                    "no runs of yours for this backbone yet: the `preprocessing` experiment "
                    "makes both"
                ),
                style="dim",
            )
        return text
