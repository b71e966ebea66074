"""The metadata_props that make an exported file self-describing: cnnlab's names for the
input and output, the classes, the preprocessing and the run it came from (all strings)."""

from __future__ import annotations

import json
from typing import Any

from engine import __version__
from engine.preprocessing import PreprocessSpec

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
BATCH_DIM = "batch"
META_PREFIX = "cnnlab."


def build_metadata(
    *,
    classes: list[str],
    image_shape: tuple[int, ...] | list[int],
    spec: PreprocessSpec,
    baked: bool,
    source_run: str | None,
    model_info: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The `metadata_props` that make the file self-describing (all values are strings)."""
    model_info = model_info or {}
    h, w, c = (int(v) for v in image_shape)
    meta = {
        "classes": json.dumps(list(classes)),
        "num_classes": str(len(classes)),
        "input_name": INPUT_NAME,
        "input_layout": "NHWC",
        "input_shape": json.dumps([h, w, c]),
        "input_size": str(h) if h == w else f"{h}x{w}",
        "input_dtype": "uint8" if baked else "float32",
        "input_range": json.dumps([0.0, 255.0] if baked else list(spec.output_range)),
        "output_name": OUTPUT_NAME,
        "output": "probabilities (softmax)",
        "preprocessing": spec.name,
        "preprocessing_mode": spec.mode,
        "preprocessing_formula": spec.formula,
        "preprocessing_range": json.dumps(list(spec.output_range)),
        "preprocessing_baked": "true" if baked else "false",
        "source_run": source_run or "",
        "model": str(model_info.get("name") or ""),
        "backbone": str(model_info.get("backbone") or ""),
        "model_input_size": str(model_info.get("input_size") or h),
        "weights": str(model_info.get("weights") or ""),
        "random_init": "true" if model_info.get("random_init") else "false",
        "version": __version__,
    }
    return {META_PREFIX + k: v for k, v in meta.items()}


def set_metadata(proto: Any, metadata: dict[str, str]) -> None:
    """Replace cnnlab's metadata_props (other keys are kept)."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    for key, value in [*keep, *metadata.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(source: Any) -> dict[str, str]:
    """All metadata_props of a ModelProto or file, as a plain dict."""
    import onnx

    proto = (
        source
        if hasattr(source, "metadata_props")
        else onnx.load(str(source), load_external_data=False)
    )
    return {p.key: p.value for p in proto.metadata_props}


def cnnlab_metadata(metadata: dict[str, str]) -> dict[str, Any]:
    """cnnlab's keys decoded to Python values (classes as a list, ranges as floats, ...)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if not key.startswith(META_PREFIX):
            continue
        name = key[len(META_PREFIX) :]
        if name in ("classes", "input_shape", "input_range", "preprocessing_range"):
            try:
                out[name] = json.loads(value)
            except json.JSONDecodeError:
                out[name] = value
        elif name in ("preprocessing_baked", "random_init"):
            out[name] = value == "true"
        elif name == "num_classes" and value.isdigit():
            out[name] = int(value)
        else:
            out[name] = value
    return out
