"""The variants of one fp32 model, by name: how each is built and written.

Each builder writes one file to a temp path (the caller renames it into place only when the
build succeeded, so a failure leaves nothing half-written) and returns what it did, for the
record. onnx and onnxruntime are imported inside the builders.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UsageError, first_line
from engine.runs import atomic_path
from export.deploy.source import DeployError, TrainingImageReader

CALIBRATE_METHODS = ("minmax", "entropy", "percentile")
OPTIMIZATION_LEVELS = ("basic", "extended", "all")
# Basic rewrites are provider-independent; extended/all add CPU-only fused ops (and, for all,
# a CPU-specific NCHWc layout), so the saved fp32 file would no longer run on TensorRT or CUDA.
DEFAULT_OPTIMIZATION = "basic"
VARIANT_KEY = "cnnlab.variant"


class QuantizationError(DeployError):
    """onnxruntime's quantizer refused the model, or found nothing it can quantize."""


@dataclass
class BuildOptions:
    """Everything a builder may need; each takes what it uses."""

    optimization: str = DEFAULT_OPTIMIZATION
    calibrate_method: str = "minmax"
    exclude: list[str] = field(default_factory=list)
    reader: TrainingImageReader | None = None
    # uint8 activations with int8 weights (U8S8) is onnxruntime's fast path on x86 CPUs (and
    # its recommendation for CPU targets); S8S8 is what TensorRT needs.
    activation_type: str = "uint8"
    reduce_range: bool = False


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    build: Callable[[Path, Path, BuildOptions], dict[str, Any]]
    needs_calibration: bool = False


VARIANTS: dict[str, Variant] = {}


def register_variant(
    name: str, description: str, *, needs_calibration: bool = False
) -> Callable[[Callable[[Path, Path, BuildOptions], dict[str, Any]]], Any]:
    def decorate(fn: Callable[[Path, Path, BuildOptions], dict[str, Any]]) -> Any:
        VARIANTS[name] = Variant(name, description, fn, needs_calibration)
        return fn

    return decorate


def parse_variants(text: str) -> list[str]:
    """`fp32,int8` → ["fp32", "int8"], in the order given; unknown names are a usage error."""
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise UsageError(
            f"unknown variant {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(VARIANTS)}"
        )
    return list(dict.fromkeys(names))


def op_types(path: Path) -> dict[str, int]:
    """Op histogram of a file (the evidence a variant is what it claims to be)."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


# ------------------------------------------------------------------------------ fp32
@register_variant("fp32", "onnxruntime's offline graph optimization, saved")
def build_fp32(source: Path, out: Path, options: BuildOptions) -> dict[str, Any]:
    from export.providers import create_session, session_options

    if options.optimization not in OPTIMIZATION_LEVELS:
        raise UsageError(
            f"optimization level {options.optimization!r}: choose one of {', '.join(OPTIMIZATION_LEVELS)}"
        )
    session_opts = session_options(graph_optimization=options.optimization)
    session_opts.optimized_model_filepath = str(out)
    create_session(source, "cpu", options=session_opts)
    return {"optimization_level": options.optimization, "optimized_for": "cpu"}


# ------------------------------------------------------------------------------ fp16
@register_variant("fp16", "float16 weights and compute, float32 inputs/outputs (for GPUs)")
def build_fp16(source: Path, out: Path, options: BuildOptions) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns about every value clamped to fp16
            converted = convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:
        raise DeployError(f"fp16 conversion failed: {first_line(exc)}") from None
    onnx.save(converted, str(out))
    return {"keep_io_types": True, "meant_for": "GPU providers (cuda, tensorrt)"}


# ------------------------------------------------------------------------------ int8
def preprocess_for_quantization(source: Path, workdir: Path) -> Path:
    """onnxruntime's quant_pre_process (shape inference + basic optimization) into workdir."""
    from onnxruntime.quantization import quant_pre_process

    out = workdir / "preprocessed.onnx"
    try:
        quant_pre_process(str(source), str(out))
    except Exception as exc:
        raise QuantizationError(
            f"cannot prepare the model for quantization: {first_line(exc)}"
        ) from None
    return out


def check_exclusions(model: Path, exclude: list[str]) -> None:
    """Every --exclude name must be a node of the model being quantized."""
    import difflib

    import onnx

    if not exclude:
        return
    names = [n.name for n in onnx.load(str(model), load_external_data=False).graph.node]
    for name in exclude:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            raise UsageError(
                f"--exclude {name!r}: no such node"
                + (f" (did you mean {', '.join(close)}?)" if close else "")
                + "; `engine deploy ... --layer-error` lists node names"
            )


def quantized_weights(path: Path) -> int:
    """How many weight tensors a model stores in integers: DequantizeLinear nodes reading an
    initializer (QDQ), or the integer weights of ConvInteger/MatMulInteger (dynamic)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    weight_input = {"DequantizeLinear": 0, "ConvInteger": 1, "MatMulInteger": 1}
    return sum(
        1
        for n in graph.node
        if n.op_type in weight_input and n.input[weight_input[n.op_type]] in initializers
    )


def _require_quantized(path: Path, source_ops: dict[str, int]) -> None:
    # Activations alone may get Q/DQ pairs (around a Softmax, say), which only costs time:
    # quantization is worth a variant when weights became int8.
    if not quantized_weights(path):
        raise QuantizationError(
            "nothing in this model can be quantized: none of its ops "
            f"({', '.join(source_ops)}) has weights onnxruntime's quantizer handles "
            "(Conv, Gemm, MatMul, ...)"
        )


def _quant_type(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[name]


@register_variant(
    "int8", "static int8, QDQ format, per-channel weights, calibrated", needs_calibration=True
)
def build_int8(source: Path, out: Path, options: BuildOptions) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    if options.reader is None:
        raise UsageError("int8 static needs calibration images: pass --data SOURCE")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if options.calibrate_method not in methods:
        raise UsageError(
            f"calibration method {options.calibrate_method!r}: choose one of {', '.join(methods)}"
        )
    with tempfile.TemporaryDirectory(prefix="cnnlab-quant-") as tmp:
        prepared = preprocess_for_quantization(source, Path(tmp))
        check_exclusions(prepared, options.exclude)
        options.reader.rewind()
        try:
            quantize_static(
                str(prepared),
                str(out),
                options.reader,  # type: ignore[arg-type]  # duck-typed CalibrationDataReader
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=options.reduce_range,
                activation_type=_quant_type(options.activation_type),
                weight_type=_quant_type("int8"),
                nodes_to_exclude=list(options.exclude),
                calibrate_method=methods[options.calibrate_method],
            )
        except (UsageError, DeployError):
            raise
        except Exception as exc:
            raise QuantizationError(f"onnxruntime could not quantize: {first_line(exc)}") from None
        _require_quantized(out, op_types(prepared))
    return {
        "format": "QDQ",
        "per_channel": True,
        "calibrate_method": options.calibrate_method,
        "calibration": options.reader.describe(),
        "activation_type": options.activation_type,
        "weight_type": "int8",
        "reduce_range": options.reduce_range,
        "excluded_nodes": list(options.exclude),
    }


@register_variant("int8-dynamic", "dynamic int8: weights int8, activations quantized per batch")
def build_int8_dynamic(source: Path, out: Path, options: BuildOptions) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="cnnlab-quant-") as tmp:
        prepared = preprocess_for_quantization(source, Path(tmp))
        check_exclusions(prepared, options.exclude)
        try:
            # onnxruntime's CPU ConvInteger only takes uint8 weights; int8 would not load.
            quantize_dynamic(
                str(prepared),
                str(out),
                per_channel=True,
                reduce_range=options.reduce_range,
                weight_type=QuantType.QUInt8,
                nodes_to_exclude=list(options.exclude),
            )
        except Exception as exc:
            raise QuantizationError(f"onnxruntime could not quantize: {first_line(exc)}") from None
        _require_quantized(out, op_types(prepared))
    return {
        "per_channel": True,
        "weight_type": "uint8",
        "reduce_range": options.reduce_range,
        "excluded_nodes": list(options.exclude),
    }


# ------------------------------------------------------------------------------ writing
def write_variant(
    name: str, source: Path, dest: Path, options: BuildOptions, metadata: dict[str, str]
) -> dict[str, Any]:
    """Build variant `name` of `source` into `dest` atomically, stamped with the source's
    metadata (so `engine eval` can feed it) plus `cnnlab.variant`."""
    import onnx

    from export.onnx_metadata import set_metadata

    variant = VARIANTS[name]
    with atomic_path(dest) as tmp:
        build = variant.build(source, tmp, options)
        proto = onnx.load(str(tmp))
        set_metadata(proto, {**metadata, VARIANT_KEY: name})
        onnx.save(proto, str(tmp))
    return {
        "variant": name,
        "description": variant.description,
        "size_bytes": dest.stat().st_size,
        "ops": op_types(dest),
        "build": build,
    }
