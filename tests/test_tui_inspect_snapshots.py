"""Snapshot tests (pytest-textual-snapshot) of the filter grid and the preprocessing histograms.

Both apps draw fixed, generated data (no workers, no clocks), so the pictures are deterministic.
Update after an intended change with `pytest tests/test_tui_inspect_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from engine.inspect import filter_report, preprocess_stats
from tui.widgets.filters import FilterGrid, render_colour_scale, render_filter_stats
from tui.widgets.histogram import render_histograms, render_range_line


def first_layer_kernel() -> np.ndarray:
    """16 RGB 3×3 filters: oriented edges and colour blobs, like a trained first layer."""
    k = np.zeros((3, 3, 3, 16), dtype=np.float32)
    ramp = np.array([-1.0, 0.0, 1.0], dtype=np.float32)
    for f in range(16):
        angle = f * np.pi / 8
        edge = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
        for c in range(3):
            k[:, :, c, f] = edge * (0.3 + 0.2 * ((f + c) % 3)) + 0.1 * (c - 1) * (f % 4 - 1.5)
    return k


def deep_kernel() -> np.ndarray:
    """12 filters of 5×5×8 with signed, smooth patterns (one input channel is drawn)."""
    y, x = np.mgrid[-2:3, -2:3].astype(np.float32)
    k = np.zeros((5, 5, 8, 12), dtype=np.float32)
    for f in range(12):
        for c in range(8):
            k[:, :, c, f] = np.sin(0.7 * x * (1 + f % 3) + 0.5 * y * (c + 1) + f) * (
                0.05 + 0.01 * f
            )
    return k


class FilterGridApp(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            for kernel, channel in ((first_layer_kernel(), 0), (deep_kernel(), 2)):
                report = filter_report(kernel, layer="conv", channel=channel)
                grid = FilterGrid()
                grid.show(report)
                yield grid
                yield Static(render_colour_scale(report))
                yield Static(render_filter_stats(report, limit=3))


def batch() -> np.ndarray:
    """16 32×32 images: gradients and stripes, deterministic."""
    y, x = np.mgrid[0:32, 0:32]
    images = np.zeros((16, 32, 32, 3), dtype=np.uint8)
    for i in range(16):
        images[i, ..., 0] = (x * 8 + i * 9) % 256
        images[i, ..., 1] = (y * 4 + i * 13) % 256
        images[i, ..., 2] = ((x + y) * 4 * (i % 3 + 1)) % 256
    return images


class HistogramApp(App[None]):
    def compose(self) -> ComposeResult:
        stats: dict[str, Any] = preprocess_stats(batch(), "resnet", bins=20)
        lo, hi = stats["expected_range"]
        yield Static(Text("ResNet50: caffe preprocessing vs the x/255 mistake", style="bold"))
        yield Static(render_range_line((lo, hi), tuple(stats["mistake"]["range"]), width=50))  # type: ignore[arg-type]
        with Horizontal():
            yield Static(render_histograms(stats["before"], "raw pixels"))
            yield Static(render_histograms(stats["mistake"], "x/255 — the mistake"))
            yield Static(render_histograms(stats["after"], "resnet — right"))

    CSS = """
    Horizontal { height: auto; }
    Horizontal > Static { width: auto; margin: 0 2 0 0; }
    """


def test_filter_grid_snapshot(snap_compare: Any) -> None:
    assert snap_compare(FilterGridApp(), terminal_size=(100, 40))


def test_preprocessing_histograms_snapshot(snap_compare: Any) -> None:
    assert snap_compare(HistogramApp(), terminal_size=(100, 24))
