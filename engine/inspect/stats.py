"""What the Filters and Preprocessing panes draw: per-filter statistics and per-channel
histograms before and after a backbone's preprocessing (numpy only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import CnnlabError

if TYPE_CHECKING:
    import numpy as np


def filter_report(
    kernel: np.ndarray,
    *,
    layer: str = "",
    start: int = 0,
    count: int | None = None,
    channel: int = 0,
    values: bool = True,
) -> dict[str, Any]:
    """What the Filters pane draws: per-filter statistics and (optionally) the kernels.

    `mode` is "rgb" for a first layer (Cin = 3: each filter is a colour patch), else
    "channel" (one input channel of each filter, `channel`). Values are K×K (×3 for rgb).
    """
    import numpy as np

    kh, kw, cin, cout = kernel.shape
    count = cout if count is None else count
    start = max(0, min(start, cout))
    stop = min(cout, start + max(count, 0))
    mode = "rgb" if cin == 3 else "channel"
    if mode == "channel" and not 0 <= channel < cin:
        raise CnnlabError(f"channel {channel} out of range: this layer has {cin} input channels")
    limit = float(np.abs(kernel).max()) if kernel.size else 0.0
    filters = []
    for f in range(start, stop):
        w = kernel[..., f]
        entry: dict[str, Any] = {
            "index": f,
            "min": round(float(w.min()), 6),
            "max": round(float(w.max()), 6),
            "mean": round(float(w.mean()), 6),
            "std": round(float(w.std()), 6),
            "l2": round(float(np.sqrt((w.astype(np.float64) ** 2).sum())), 6),
        }
        if values:
            patch = w if mode == "rgb" else w[:, :, channel]
            entry["values"] = np.round(patch.astype(np.float64), 6).tolist()
        filters.append(entry)
    return {
        "layer": layer,
        "kernel_shape": [kh, kw, cin, cout],
        "mode": mode,
        "channel": channel if mode == "channel" else None,
        "filters_total": cout,
        "range": [start, stop],
        "abs_max": round(limit, 6),
        "weights_per_filter": kh * kw * cin,
        "filters": filters,
    }


def preprocess_stats(images: np.ndarray, preprocessing: str, *, bins: int = 24) -> dict[str, Any]:
    """Per-channel histograms of a uint8 RGB batch before and after a preprocessing.

    `after` is binned over the range the preprocessing produces (what the backbone expects);
    `mistake` is the same batch as x/255, the classic error, binned over [0, 1]. Channel names
    follow the data: "caffe" preprocessing swaps RGB to BGR, so its channels are B, G, R.
    """
    import numpy as np

    from engine.preprocessing import get_preprocessing

    spec = get_preprocessing(preprocessing)
    raw = np.asarray(images)
    rgb = ["R", "G", "B"]
    after_names = ["B", "G", "R"] if spec.mode == "caffe" else rgb
    lo, hi = (float(v) for v in spec.output_range)
    result: dict[str, Any] = {
        "preprocessing": spec.to_dict(),
        "expected_range": [lo, hi],
        "count": int(raw.shape[0]) if raw.ndim == 4 else 1,
        "before": _channel_hists(raw.astype(np.float32), rgb, bins, (0.0, 255.0)),
        "after": _channel_hists(spec.apply(raw), after_names, bins, (lo, hi)),
    }
    if spec.mode != "unit":
        unit = get_preprocessing("unit")
        result["mistake"] = _channel_hists(unit.apply(raw), rgb, bins, (0.0, 1.0))
    return result


def _channel_hists(
    x: np.ndarray, names: list[str], bins: int, value_range: tuple[float, float] | None
) -> dict[str, Any]:
    import numpy as np

    lo = float(x.min()) if value_range is None else value_range[0]
    hi = float(x.max()) if value_range is None else value_range[1]
    if hi <= lo:
        hi = lo + 1.0
    channels = []
    for c, name in enumerate(names):
        v = x[..., c].reshape(-1)
        counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
        channels.append(
            {
                "name": name,
                "min": round(float(v.min()), 4),
                "max": round(float(v.max()), 4),
                "mean": round(float(v.mean()), 4),
                "std": round(float(v.std()), 4),
                "counts": counts.astype(int).tolist(),
                "edges": [round(float(e), 4) for e in edges],
            }
        )
    return {
        "min": round(float(x.min()), 4),
        "max": round(float(x.max()), 4),
        "range": [round(lo, 4), round(hi, 4)],
        "channels": channels,
    }
