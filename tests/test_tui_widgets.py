"""Unit tests of the TUI's pure parts: charts, half-block pixels, live progress/ETA, form checks."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from engine.records import ModelInfo, RunRecord, event_from_json
from tui.widgets.charts import (
    Bar,
    Series,
    heat_color,
    heatmap_table,
    history_series,
    render_bar_chart,
    render_line_chart,
)
from tui.widgets.monitor import LiveState, progress_text, text_bar
from tui.widgets.pixels import HalfBlockImage, apply_colormap, resize, to_rgb
from tui.widgets.run_info import created_label, pct, run_title, seconds
from tui.widgets.settings_form import field_error, format_value


def test_line_chart_fills_its_box_with_braille_and_axes() -> None:
    text = render_line_chart(
        [Series("train", [(1, 0.2), (2, 0.5), (3, 0.9)]), Series("val", [(1, 0.3), (3, 0.6)])],
        40,
        10,
        x_range=(1, 10),
        y_range=(0.0, 1.0),
        x_label="epoch",
    )
    lines = text.plain.split("\n")
    assert len(lines) == 10
    assert lines[0].startswith("━━ train")
    assert lines[1].startswith("1.00 ┤") and lines[-2].startswith("   0 ┤")
    assert "epoch" in lines[-1] and lines[-1].rstrip().endswith("10")
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in text.plain)
    assert max(len(line) for line in lines) <= 40


def test_line_chart_without_points_says_so() -> None:
    assert "no data yet" in render_line_chart([Series("a", [])], 30, 6).plain


def test_bar_chart_scales_to_the_max() -> None:
    text = render_bar_chart(
        [Bar("ResNet50", 0.66, note="⚠"), Bar("MobileNetV2", 0.33)], 40, max_value=0.66
    )
    full, half = text.plain.split("\n")
    assert full.count("█") == 2 * half.count("█") or abs(full.count("█") - 2 * half.count("█")) <= 1
    assert full.endswith("0.66 ⚠") and half.rstrip().endswith("0.33")


def test_heatmap_colours_follow_the_row_share() -> None:
    assert heat_color(0.0) != heat_color(1.0)
    console = Console(width=120, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(heatmap_table([[9, 1], [5, 5]], ["cat", "dog"]))
    out = console.export_text()
    assert "90%" in out and "50%" in out


def test_history_series_numbers_epochs_across_phases() -> None:
    history = [
        {"phase": "frozen", "accuracy": 0.5, "val_accuracy": 0.4, "loss": 1.0, "val_loss": 1.2},
        {"phase": "finetune", "accuracy": 0.7, "val_accuracy": 0.5, "loss": 0.8, "val_loss": 1.1},
    ]
    data = history_series(history)
    assert data.accuracy[1].points == [(1.0, 0.4), (2.0, 0.5)]
    assert data.x_max == 2.0


def test_half_block_image_draws_two_pixel_rows_per_line() -> None:
    image = np.zeros((4, 2, 3), dtype=np.uint8)
    image[0] = (255, 0, 0)
    image[1] = (0, 0, 255)
    segments = list(HalfBlockImage(image).segments())
    cells = [s for s in segments if s.text == "▀"]
    assert len(cells) == 4  # 2 columns × 2 text rows
    assert cells[0].style.color.triplet == (255, 0, 0)
    assert cells[0].style.bgcolor.triplet == (0, 0, 255)


def test_resize_and_colormaps() -> None:
    img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert resize(img, 2, 2).tolist() == [[2, 4], [10, 12]]  # block means, rounded
    rgb = apply_colormap(np.array([[-1.0, 0.0, 1.0]]), cmap="diverging")
    assert rgb.shape == (1, 3, 3) and tuple(rgb[0, 1]) == (247, 247, 247)
    assert to_rgb(np.ones((2, 2))).dtype == np.uint8


def events(*items: dict[str, object]) -> LiveState:
    state = LiveState()
    for item in items:
        state.apply(event_from_json(item))
    return state


def test_eta_from_event_times() -> None:
    state = events(
        {
            "event": "run_started",
            "time": 0.0,
            "run_id": "r",
            "run_dir": "runs/r",
            "experiment": "simple-cnn",
            "config": {},
        },
        {"event": "phase_started", "time": 0.0, "phase": "train", "epochs": 3, "steps": 10},
        {
            "event": "batch_progress",
            "time": 5.0,
            "phase": "train",
            "epoch": 1,
            "epochs": 3,
            "step": 5,
            "steps": 10,
        },
    )
    # 1 s per batch: 5 batches left in this epoch + 2 epochs of 10.
    assert state.eta() == pytest.approx(25.0)
    state.apply(
        event_from_json(
            {
                "event": "epoch_end",
                "time": 12.0,
                "phase": "train",
                "epoch": 1,
                "epochs": 3,
                "metrics": {"loss": 1.0, "accuracy": 0.5},
                "epoch_time": 12.0,
            }
        )
    )
    assert state.eta() == pytest.approx(24.0)  # two epochs of 12 s
    text = progress_text(state, 100).plain
    assert "epoch 1/3" in text and "ETA 24.0 s" in text


def test_finetune_continues_the_epoch_axis() -> None:
    state = events(
        {
            "event": "run_started",
            "time": 0.0,
            "run_id": "r",
            "run_dir": "runs/r",
            "experiment": "finetune",
            "config": {"model": "transfer", "backbone": "MobileNetV2", "weights": "none"},
            "model": {"name": "transfer", "backbone": "MobileNetV2", "random_init": True},
        },
        {"event": "phase_started", "time": 0.0, "phase": "frozen", "epochs": 2, "steps": 4},
        {
            "event": "epoch_end",
            "time": 1.0,
            "phase": "frozen",
            "epoch": 1,
            "epochs": 2,
            "metrics": {"accuracy": 0.5, "val_accuracy": 0.4},
            "epoch_time": 1.0,
        },
        {
            "event": "epoch_end",
            "time": 2.0,
            "phase": "frozen",
            "epoch": 2,
            "epochs": 2,
            "metrics": {"accuracy": 0.6, "val_accuracy": 0.45},
            "epoch_time": 1.0,
        },
        {"event": "phase_started", "time": 2.0, "phase": "finetune", "epochs": 3, "steps": 4},
    )
    assert state.model_label == "MobileNetV2" and state.random_init
    acc, _, x_range = state.series()
    assert x_range == (1.0, 5.0)  # 2 frozen + 3 fine-tuning epochs on one axis
    assert acc[1].points == [(1.0, 0.4), (2.0, 0.45)]


def test_small_formatters() -> None:
    assert text_bar(0.5, 4) == "██░░"
    assert pct(0.6937) == "69.37 %" and pct(None) == "–"
    assert seconds(75) == "1m 15s" and seconds(3.21) == "3.2 s"
    record = RunRecord(
        id="20260101-120000-transfer-cccc",
        experiment="transfer",
        model=ModelInfo(name="transfer", backbone="VGG16"),
    )
    assert run_title(record) == "transfer · VGG16 · 0101-1200"
    assert created_label(record) == "2026-01-01 12:00"


def test_form_checks_use_the_engines_reasons() -> None:
    assert field_error("epochs", 0) == "epochs: 0 is below the minimum 1"
    assert field_error("epochs", 5) is None
    assert field_error("optimizer", "lbfgs").startswith("optimizer: 'lbfgs' is not one of")
    assert (
        format_value([512, 256]) == "512,256"
        and format_value(True) == "yes"
        and format_value(None) == ""
    )
