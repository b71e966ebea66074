"""Keras → ONNX: convert with tf2onnx, bake preprocessing, stamp metadata, check parity.

Why `tf2onnx.convert.from_keras` on a Functional model: on Keras 3 it fails on Sequential models
(KeyError 'keras_tensor_N'), so those are wrapped in a Functional model first; `from_function`
and Keras' own `model.export(format="onnx")` turn constants captured by the graph (EfficientNet's
Normalization mean and variance) into extra graph inputs that onnxruntime refuses to run, while
`from_keras` drops captured tensors from the inputs. Every export is then checked: `onnx.checker`,
exactly one input named `image` with a dynamic batch dimension, one output `probabilities`.

The file is written atomically, and only after parity with Keras passed (or was waived), so a
failed export leaves nothing behind. TensorFlow, tf2onnx and onnxruntime are imported lazily.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import __version__
from engine.errors import CnnlabError, UsageError, first_line
from engine.preprocessing import CAFFE_MEAN_BGR, PreprocessSpec, get_preprocessing
from engine.records import OnnxExport, OnnxRecord
from engine.runs import Run, RunStore, atomic_path, now_iso
from export.checks import (
    DEFAULT_PARITY_SAMPLES,
    DEFAULT_TOLERANCE,
    ExportError,
    Parity,
    ParityError,
    check_exported,
    compare_outputs,
    graph_dims,
    parity_sample,
    run_onnx,
)
from export.onnx_metadata import (
    BATCH_DIM,
    INPUT_NAME,
    OUTPUT_NAME,
    build_metadata,
    set_metadata,
)

DEFAULT_OPSET = 17  # tf2onnx 1.17 writes opsets up to 18; 17 runs on every onnxruntime since 1.14
MIN_OPSET, MAX_OPSET = 13, 18


@dataclass
class ExportResult:
    """What one export produced; `to_record()` is the entry stored in run.json."""

    path: Path
    opset: int
    with_preprocessing: bool
    input: dict[str, Any]
    output: dict[str, Any]
    preprocessing: str
    parity: Parity | None
    export_time: float  # seconds in tf2onnx
    parity_time: float
    size_bytes: int
    sha256: str
    nodes: int
    metadata: dict[str, str]
    run_id: str | None = None
    run_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    def to_record(self, run_dir: Path | None = None) -> dict[str, Any]:
        """The run.json entry; `path` is relative to the run folder when the file is inside it."""
        run_dir = run_dir or self.run_dir
        path = self.path.resolve()
        rel: str = str(path)
        if run_dir is not None:
            try:
                rel = str(path.relative_to(run_dir.resolve()))
            except ValueError:
                pass
        return {
            "path": rel,
            "file": str(path),
            "created": now_iso(),
            "opset": self.opset,
            "with_preprocessing": self.with_preprocessing,
            "input": self.input,
            "output": self.output,
            "preprocessing": self.preprocessing,
            "parity": self.parity.to_dict() if self.parity else None,
            "export_time": self.export_time,
            "parity_time": self.parity_time,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "nodes": self.nodes,
            "converter": f"tf2onnx {_tf2onnx_version()}",
            "notes": list(self.notes),
        }


def _tf2onnx_version() -> str:
    try:
        from importlib.metadata import version

        return version("tf2onnx")
    except Exception:  # pragma: no cover - metadata missing
        return "unknown"


# ------------------------------------------------------------------------------ Keras side
def load_keras_model(path: Path) -> Any:
    """Load a saved Keras model for inference (no optimizer state)."""
    import keras

    if not Path(path).is_file():
        raise ExportError(f"{path}: no such model file")
    from engine.inspect import read_keras_config

    read_keras_config(Path(path))  # not a .keras archive: say so (Keras says "File not found")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ExportError(
            f"{path}: Keras could not load the model ({type(exc).__name__}: {first_line(exc)})"
        ) from None


def as_functional(model: Any) -> Any:
    """A Functional model computing the same thing; Sequential and subclassed ones are wrapped.

    tf2onnx's from_keras cannot read a Keras 3 Sequential model's graph, but converts a
    Functional model that calls it as a layer.
    """
    import keras

    if not _is_functional(model):
        try:
            shape = tuple(model.inputs[0].shape[1:])
        except (AttributeError, IndexError, TypeError, ValueError):
            shape = None
        if not shape:
            raise ExportError("the model has no known input shape; build it on an input first")
        inputs = keras.Input(shape=shape, name=INPUT_NAME)
        return keras.Model(inputs, model(inputs), name=f"{model.name}_functional")
    return model


def _is_functional(model: Any) -> bool:
    """True for a Functional model (not Sequential, not subclassed)."""
    import keras

    if isinstance(model, keras.Sequential):
        return False
    try:
        from keras.src.models.functional import Functional
    except ImportError:  # pragma: no cover - Keras internals moved
        return type(model) is keras.Model
    return isinstance(model, Functional)


def keras_predict(model: Any, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """Keras' output for x (already preprocessed), as float32 numpy; at the batch size measured
    on this machine unless one is given."""
    from engine.batching import keras_inference_batch

    if batch_size is None:
        batch_size = keras_inference_batch(model, x).batch
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


# ------------------------------------------------------------------------------ conversion
@contextmanager
def _quiet_tf2onnx(notes: list[str]) -> Iterator[None]:
    """Keep tf2onnx's INFO lines and optimizer tracebacks off the screen; keep one-line notes."""

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                message = record.getMessage().splitlines()[0] if record.getMessage() else ""
                if message and f"tf2onnx: {message}" not in notes:
                    notes.append(f"tf2onnx: {message}")

    logger = logging.getLogger("tf2onnx")
    old_level, old_propagate = logger.level, logger.propagate
    handler = Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def keras_to_onnx(model: Any, *, opset: int = DEFAULT_OPSET) -> tuple[Any, list[str]]:
    """Convert a Keras model to an ONNX ModelProto: input `image` (float32 NHWC, dynamic batch),
    output `probabilities`. Returns (proto, notes)."""
    import tensorflow as tf
    import tf2onnx

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(
            f"opset {opset}: tf2onnx {_tf2onnx_version()} writes opsets {MIN_OPSET}..{MAX_OPSET}"
        )
    functional = as_functional(model)
    if len(functional.inputs) != 1 or len(functional.outputs) != 1:
        raise ExportError(
            f"cnnlab exports single-input, single-output models; this one has "
            f"{len(functional.inputs)} inputs and {len(functional.outputs)} outputs"
        )
    shape = tuple(functional.inputs[0].shape[1:])
    if len(shape) != 3 or any(d is None for d in shape):
        raise ExportError(f"expected an image input (height, width, channels), got {shape}")
    spec = [tf.TensorSpec((None, *shape), tf.float32, name=INPUT_NAME)]
    notes: list[str] = []
    with _quiet_tf2onnx(notes):
        try:
            proto, _ = tf2onnx.convert.from_keras(functional, input_signature=spec, opset=opset)
        except CnnlabError:
            raise
        except Exception as exc:
            raise ExportError(
                f"tf2onnx could not convert the model: {type(exc).__name__}: {first_line(exc)}"
            ) from None
    _name_io(proto)
    if any("optimize_transpose" in n for n in notes):
        # Seen on MobileNetV3: tf2onnx's transpose optimizer trips on Adds of scalar constants
        # (hard-sigmoid's x + 3) and gives up; the graph is still correct.
        count = sum(1 for node in proto.graph.node if node.op_type == "Transpose")
        notes.append(
            f"the file keeps {count} Transpose nodes (tf2onnx's transpose optimizer gave up); "
            "onnxruntime's own optimiser removes them when a session loads it"
        )
    return proto, notes


def _rename_tensor(graph: Any, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for coll in (graph.input, graph.output, graph.value_info):
        for vi in coll:
            if vi.name == old:
                vi.name = new


def _name_io(proto: Any) -> None:
    """Input `image`, output `probabilities`, batch dimension named `batch` on both."""
    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializers]
    if len(real_inputs) != 1:
        names = ", ".join(i.name for i in real_inputs)
        raise ExportError(
            f"the converted graph has {len(real_inputs)} inputs ({names}); expected one image input"
        )
    _rename_tensor(graph, real_inputs[0].name, INPUT_NAME)
    if len(graph.output) != 1:
        raise ExportError(f"the converted graph has {len(graph.output)} outputs; expected one")
    _rename_tensor(graph, graph.output[0].name, OUTPUT_NAME)
    for vi in (graph.input[0], graph.output[0]):
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_param = BATCH_DIM


def bake_preprocessing(proto: Any, spec: PreprocessSpec) -> Any:
    """Prepend `spec` to the graph: the new input `image` takes uint8 RGB pixels (NHWC).

    The nodes re-state engine.preprocessing's numpy formulas with the same float32 operations
    (Div by 255 rather than Mul by 1/255), so the baked file equals preprocess-then-model.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    inner = f"{INPUT_NAME}_preprocessed"
    (image,) = [vi for vi in graph.input if vi.name == INPUT_NAME]
    _rename_tensor(graph, INPUT_NAME, inner)  # the float consumers now read `inner` ...
    image.name = INPUT_NAME  # ... while the graph input keeps its name and becomes uint8
    image.type.tensor_type.elem_type = TensorProto.UINT8

    def const(name: str, value: Any, dtype: Any = np.float32) -> str:
        full = f"cnnlab_const_{name}"
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), full))
        return full

    floats = f"{INPUT_NAME}_float"
    nodes = [
        helper.make_node(
            "Cast", [INPUT_NAME], [floats], to=TensorProto.FLOAT, name="cnnlab_pre_cast"
        )
    ]
    if spec.mode == "unit":
        nodes.append(
            helper.make_node("Div", [floats, const("255", 255.0)], [inner], name="cnnlab_pre_div")
        )
    elif spec.mode == "tf":
        nodes.append(
            helper.make_node(
                "Div", [floats, const("127_5", 127.5)], ["cnnlab_pre_scaled"], name="cnnlab_pre_div"
            )
        )
        nodes.append(
            helper.make_node(
                "Sub", ["cnnlab_pre_scaled", const("one", 1.0)], [inner], name="cnnlab_pre_sub"
            )
        )
    elif spec.mode == "caffe":
        nodes.append(
            helper.make_node(
                "Gather",
                [floats, const("bgr", [2, 1, 0], np.int64)],
                ["cnnlab_pre_bgr"],
                axis=3,
                name="cnnlab_pre_rgb_to_bgr",
            )
        )
        nodes.append(
            helper.make_node(
                "Sub",
                ["cnnlab_pre_bgr", const("mean_bgr", CAFFE_MEAN_BGR)],
                [inner],
                name="cnnlab_pre_sub_mean",
            )
        )
    elif spec.mode == "raw":
        nodes.append(helper.make_node("Identity", [floats], [inner], name="cnnlab_pre_identity"))
    else:
        raise ExportError(f"cannot bake preprocessing mode {spec.mode!r}")
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    return proto


# ------------------------------------------------------------------------------ export
def export_keras_model(
    model: Any,
    output: Path,
    *,
    spec: PreprocessSpec,
    classes: list[str],
    images: np.ndarray | None,
    opset: int = DEFAULT_OPSET,
    with_preprocessing: bool = False,
    parity_check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    source_run: str | None = None,
    model_info: dict[str, Any] | None = None,
) -> ExportResult:
    """Convert, bake, stamp, check and (after parity) atomically write `output`.

    `images` are raw uint8 RGB test images (NHWC) for the parity check; None skips it.
    Raises ParityError (and writes nothing) when the outputs differ beyond `tolerance`.
    """
    from export.providers import create_session

    if tolerance < 0:
        raise UsageError("tolerance must be zero or more")
    image_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    t0 = time.perf_counter()
    proto, notes = keras_to_onnx(model, opset=opset)
    export_time = round(time.perf_counter() - t0, 3)
    if with_preprocessing:
        bake_preprocessing(proto, spec)
    proto.doc_string = (
        f"cnnlab {__version__} export"
        + (f" of run {source_run}" if source_run else "")
        + f": input '{INPUT_NAME}' "
        + (
            "uint8 RGB pixels 0..255 (preprocessing baked in)"
            if with_preprocessing
            else f"float32, preprocessed with {spec.name} ({spec.formula})"
        )
        + f", NHWC; output '{OUTPUT_NAME}' over {len(classes)} classes."
    )
    metadata = build_metadata(
        classes=classes,
        image_shape=image_shape,
        spec=spec,
        baked=with_preprocessing,
        source_run=source_run,
        model_info=model_info,
    )
    set_metadata(proto, metadata)
    num_out = int(model.outputs[0].shape[-1]) if model.outputs[0].shape[-1] is not None else None
    if classes and num_out is not None and num_out != len(classes):
        raise ExportError(
            f"the model has {num_out} outputs but the data has {len(classes)} classes"
        )
    check_exported(proto, image_shape=image_shape, baked=with_preprocessing, num_classes=num_out)
    blob = proto.SerializeToString()
    parity: Parity | None = None
    parity_time = 0.0
    output = Path(output)
    with atomic_path(output) as tmp:
        tmp.write_bytes(blob)
        if parity_check and images is not None and len(images):
            t1 = time.perf_counter()
            raw = np.asarray(images)
            keras_out = keras_predict(model, spec.apply(raw))
            session = create_session(tmp, "cpu").session
            feed = raw.astype(np.uint8) if with_preprocessing else spec.apply(raw)
            onnx_out = run_onnx(session, feed, model=proto, key=hashlib.sha256(blob).hexdigest())
            parity = compare_outputs(keras_out, onnx_out, tolerance)
            parity_time = round(time.perf_counter() - t1, 3)
            if not parity.passed:
                raise ParityError(
                    f"parity check failed: max abs difference {parity.max_abs_diff:.3g} > tolerance {tolerance:g} "
                    f"on {parity.n} images (top-1 agreement {parity.top1_agreement:.2%}); nothing written. "
                    "Use --tolerance to accept it or --no-parity-check to skip the check"
                )
        elif parity_check:
            notes.append("parity not checked: no images")
        else:
            notes.append("parity check skipped (--no-parity-check)")
    graph = proto.graph
    in_dims = graph_dims(graph.input[0].type.tensor_type.shape.dim)
    return ExportResult(
        path=output,
        opset=opset,
        with_preprocessing=with_preprocessing,
        input={
            "name": INPUT_NAME,
            "dtype": "uint8" if with_preprocessing else "float32",
            "shape": in_dims,
            "layout": "NHWC",
        },
        output={
            "name": OUTPUT_NAME,
            "shape": graph_dims(graph.output[0].type.tensor_type.shape.dim),
        },
        preprocessing=spec.name,
        parity=parity,
        export_time=export_time,
        parity_time=parity_time,
        size_bytes=len(blob),
        sha256=hashlib.sha256(blob).hexdigest(),
        nodes=len(graph.node),
        metadata=metadata,
        run_id=source_run,
        notes=notes,
    )


def default_output(run: Run | None, model_path: Path, with_preprocessing: bool) -> Path:
    """`<run>/model.onnx`, or `model.uint8.onnx` with preprocessing baked in."""
    stem = "model.uint8.onnx" if with_preprocessing else "model.onnx"
    if run is not None:
        return run.path / stem
    suffix = ".uint8.onnx" if with_preprocessing else ".onnx"
    return model_path.with_name(model_path.stem + suffix)


def resolve_target(
    target: str | Path, runs_root: Path | str | None = None
) -> tuple[Run | None, Path]:
    """RUN_OR_MODEL → (run or None, path of the .keras file)."""
    path = Path(target)
    if path.is_file() and path.suffix == ".keras":
        if (path.parent / "run.json").is_file():
            return RunStore(runs_root).open(path.parent), path
        return None, path
    if path.is_file():
        raise UsageError(f"{path}: expected a run id, a run folder or a .keras file")
    if path.suffix == ".keras" and not (path / "run.json").exists():
        raise ExportError(
            f"{path}: {'is a folder, not a file' if path.is_dir() else 'no such file'}"
        )
    run = RunStore(runs_root).open(target)
    return run, run.model_path


def load_run_images(run: Run, n: int = DEFAULT_PARITY_SAMPLES) -> tuple[np.ndarray, list[str]]:
    """Test images (uint8) and class names of the run's data, reloaded as the run loaded them."""
    from engine.data import config_of_run, dataset_for

    config = run.record.get("config") or {}
    source = config.get("data") or (run.record.get("data") or {}).get("source")
    if not source:
        raise ExportError(f"run {run.id} does not say which data it used; pass --data SOURCE")
    data = dataset_for(config_of_run(run.record))
    return parity_sample(np.asarray(data.x_test), n), list(data.classes)


def load_source_images(
    source: str, n: int = DEFAULT_PARITY_SAMPLES
) -> tuple[np.ndarray, list[str]]:
    """Test images and classes of any data source (for models exported without a run)."""
    from engine.data import load_dataset

    data = load_dataset(source)
    return parity_sample(np.asarray(data.x_test), n), list(data.classes)


def export(
    target: str | Path,
    *,
    runs_root: Path | str | None = None,
    output: Path | None = None,
    opset: int = DEFAULT_OPSET,
    with_preprocessing: bool = False,
    parity_check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    parity_samples: int = DEFAULT_PARITY_SAMPLES,
    data: str | None = None,
    preprocessing: str | None = None,
    images: np.ndarray | None = None,
    classes: list[str] | None = None,
    model: Any = None,
) -> ExportResult:
    """Export a run's model (or a bare .keras file) to ONNX and record it in the run.

    Parity images come from `images` if given, else `data`, else the run's own data. A bare
    .keras file needs `data` for parity, and `preprocessing` (default unit) to describe itself.
    """
    run, model_path = resolve_target(target, runs_root)
    record = run.record if run else {}
    model_info = dict(record.get("model") or {})
    prep_name = preprocessing or model_info.get("preprocessing") or "unit"
    try:
        spec = get_preprocessing(prep_name)
    except KeyError as exc:
        raise UsageError(str(exc)) from None
    if model is None:
        if run is not None and not model_path.is_file():
            children = run.record.get("children") or []
            if children:
                raise UsageError(
                    f"run {run.id} is a parent run without a model; export one of its children: "
                    + ", ".join(map(str, children[:9]))
                )
            raise ExportError(f"run {run.id} has no model.keras to export (status: {run.status})")
        model = load_keras_model(model_path)
    if images is None and parity_check:
        if data:
            images, data_classes = load_source_images(data, parity_samples)
        elif run is not None:
            images, data_classes = load_run_images(run, parity_samples)
        else:
            raise UsageError(
                "a bare .keras file needs --data SOURCE for the parity check (or --no-parity-check)"
            )
        classes = classes or data_classes
    elif images is not None:
        images = parity_sample(np.asarray(images), parity_samples)
    if not classes:
        classes = list((record.get("data") or {}).get("classes") or [])
    if not classes:
        n_out = int(model.outputs[0].shape[-1])
        classes = [f"class_{i}" for i in range(n_out)]
    out_path = Path(output) if output else default_output(run, model_path, with_preprocessing)
    result = export_keras_model(
        model,
        out_path,
        spec=spec,
        classes=classes,
        images=images,
        opset=opset,
        with_preprocessing=with_preprocessing,
        parity_check=parity_check,
        tolerance=tolerance,
        source_run=run.id if run else None,
        model_info=model_info,
    )
    if run is not None:
        result.run_dir = run.path
        record_export(run, result)
    return result


def record_export(run: Run, result: ExportResult) -> None:
    """Add (or replace, by path) this export in run.json's `onnx.exports`, atomically."""
    fresh = RunStore(run.path.parent).open(run.path)  # re-read: someone may have written since
    entry = OnnxExport.from_json(result.to_record(fresh.path))
    fresh.update(onnx=(fresh.info.onnx or OnnxRecord()).with_export(entry))
    run.record = fresh.record
