"""The model's own params and MACs beside the published figures of its backbone, with the reasons
they differ (BatchNorm statistics, ResNet v1 vs v1.5, the head, the input size).

The published figures live in one data file, `published_backbones.json`, each with its source.
Works on a layer table (summary.json or `summarize_keras_model`), so no TensorFlow is needed.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

PUBLISHED_FILE = Path(__file__).with_name("published_backbones.json")


@cache
def published() -> dict[str, Any]:
    """The data file: {"sources": {key: citation}, "backbones": {name: figures}}."""
    data: dict[str, Any] = json.loads(PUBLISHED_FILE.read_text(encoding="utf-8"))
    return data


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def detect_backbone(summary: dict[str, Any]) -> str | None:
    """The backbone of a layer table, from the nested model's (or the model's) Keras name:
    `mobilenetv2_1.00_224` → MobileNetV2 (longest matching name wins: ResNet101 over ResNet10…)."""
    names = {str(row["parent"]) for row in summary.get("layers", []) if row.get("parent")}
    names.add(str(summary.get("model") or ""))
    known = sorted(published()["backbones"], key=len, reverse=True)
    for candidate in names:
        for backbone in known:
            if _key(candidate).startswith(_key(backbone)):
                return backbone
    return None


def _input_size(summary: dict[str, Any]) -> int | None:
    for entry in summary.get("inputs") or []:
        shape = entry.get("shape") or []
        if len(shape) == 4 and isinstance(shape[1], int):
            return int(shape[1])
    return None


def _own_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """Totals, split into backbone and head, and the BatchNorm statistics among them."""
    layers = summary.get("layers", [])
    nested = any(row.get("parent") for row in layers)
    backbone = [r for r in layers if r.get("parent")] if nested else layers
    head = [r for r in layers if not r.get("parent")] if nested else []
    bn = [r for r in backbone if r.get("type") == "BatchNormalization"]
    # moving_mean and moving_variance: the two non-trainable vectors of each BatchNormalization.
    bn_stats = sum(int(r.get("params") or 0) - int(r.get("trainable_params") or 0) for r in bn)
    return {
        "params": int((summary.get("totals") or {}).get("total") or 0),
        "macs": int((summary.get("totals") or {}).get("macs") or 0),
        "backbone_params": sum(int(r.get("params") or 0) for r in backbone),
        "backbone_macs": sum(int(r.get("macs") or 0) for r in backbone),
        "head_params": sum(int(r.get("params") or 0) for r in head),
        "head_layers": [str(r["name"]) for r in head if int(r.get("params") or 0)],
        "batchnorm_stats": bn_stats,
        "batchnorm_layers": len(bn),
    }


def reference_check(
    summary: dict[str, Any], backbone: str | None = None, input_size: int | None = None
) -> dict[str, Any] | None:
    """Published vs own figures and one explanation per difference; None for a model that is
    none of the nine backbones (nor built on one)."""
    backbone = backbone or detect_backbone(summary)
    figures = published()["backbones"].get(backbone or "")
    if figures is None:
        return None
    sources = published()["sources"]
    own = _own_counts(summary)
    size = input_size or _input_size(summary)
    ref_size = int(figures["input_size"])
    notop_params = figures["keras_params"] - figures["top_params"]
    notop_macs = figures["macs"] - figures["top_macs"]
    # A bare backbone built with include_top=True has the ImageNet classifier inside itself.
    with_top = not own["head_params"] and own["backbone_params"] == figures["keras_params"]
    own_notop = own["backbone_params"] - (figures["top_params"] if with_top else 0)
    reasons: list[dict[str, str]] = []

    reasons.append(
        {
            "cause": "batchnorm",
            "text": f"Keras counts each BatchNormalization's moving mean and variance as (non-trainable) "
            f"parameters: {own['batchnorm_stats']:,} here, in {own['batchnorm_layers']} layers "
            f"(without them: {own['params'] - own['batchnorm_stats']:,}). The Keras "
            f"table ({figures['keras_params']:,}) includes them; papers count learned weights only"
            + (f" ({figures['paper_params'] / 1e6:.1f}M)" if figures.get("paper_params") else "")
            + ".",
        }
        if own["batchnorm_layers"]
        else {
            "cause": "batchnorm",
            "text": "This ONNX file has BatchNorm folded into the convolutions before it: its statistics "
            "are not stored, so it holds fewer numbers than the Keras count "
            f"({figures['keras_params']:,}), which includes them.",
        }
        if summary.get("format") == "onnx"
        else {
            "cause": "batchnorm",
            "text": f"{backbone} has no BatchNormalization: no statistics are counted as parameters.",
        }
    )
    if figures.get("resnet_version"):
        reasons.append(
            {
                "cause": "resnet_version",
                "text": f"Keras' {backbone} is ResNet v1 (stride 2 in the first 1×1 convolution of a "
                "downsampling block), as in He et al.: its MACs are the paper's. ResNet v1.5 "
                "(torchvision, NVIDIA) strides the 3×3 instead: same parameters, about 8% more MACs "
                "(ResNet50: 4.1 G vs 3.8 G). Keras' convolutions also carry biases the paper's do not.",
            }
        )
    same_backbone = own_notop == notop_params
    reasons.append(
        {
            "cause": "head",
            "text": f"The published figures include the 1000-class ImageNet classifier (include_top): "
            f"{figures['top_params']:,} parameters, {figures['top_macs']:,} MACs. Without it {backbone} has "
            f"{notop_params:,} parameters; this model's backbone has {own_notop:,}"
            + (" (the same)" if same_backbone else f" ({own_notop - notop_params:+,})")
            + (
                f", and its own head ({', '.join(own['head_layers'])}) adds {own['head_params']:,}."
                if own["head_params"]
                else "."
            ),
        }
    )
    if size:
        scale = (size / ref_size) ** 2
        expected = round(notop_macs * scale)
        own_macs = own["backbone_macs"] - (figures["top_macs"] if with_top else 0)
        reasons.append(
            {
                "cause": "input_size",
                "text": f"MACs scale with H×W: published at {ref_size}×{ref_size}, this model takes "
                f"{size}×{size} ({scale:.3g}× the pixels): expect about {expected:,} backbone MACs, "
                f"counted {own_macs:,}"
                + (
                    " (feature maps round up at small sizes, so the ratio is not exact)."
                    if size < ref_size
                    else "."
                ),
            }
        )
    return {
        "backbone": backbone,
        "published": {
            **figures,
            "params_source_text": sources.get(figures["params_source"]),
            "macs_source_text": sources.get(figures["macs_source"]),
            "keras_source_text": sources["keras"],
        },
        "model": {**own, "input_size": size, "includes_imagenet_top": with_top},
        "differences": reasons,
    }
