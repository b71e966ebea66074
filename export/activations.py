"""Feature maps at any tensor of an ONNX model, computed with onnxruntime (CPU), plus top-5.

`ActivationProbe(path)` reads the graph once, infers shapes, works out the layout of every
4-D tensor (ONNX convolutions are NCHW, tf2onnx graphs take NHWC images and transpose), and
runs one session whose outputs include every tensor the user may want to look at. It never
imports TensorFlow; onnx and onnxruntime are imported when a probe is made (~0.3 s).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CnnlabError

# Ops whose outputs are worth showing as feature maps (others — Shape, Cast, Gather, ... — are
# plumbing). Any op still works by name through `probe.run`.
VISIBLE_OPS = {
    "Conv",
    "ConvTranspose",
    "Relu",
    "LeakyRelu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Mul",
    "Add",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "Concat",
    "MatMul",
    "Gemm",
    "Softmax",
    "ReduceMean",
    "Resize",
}
_NCHW_OPS = {
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "InstanceNormalization",
    "LRN",
}


@dataclass
class TensorInfo:
    """One tensor of the graph that can be probed."""

    name: str
    node: str
    op: str
    shape: list[int | None] | None
    layout: str | None  # "NCHW", "NHWC", "NC", or None when unknown

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "node": self.node,
            "op": self.op,
            "shape": self.shape,
            "layout": self.layout,
        }


@dataclass
class ModelInput:
    """What the model's single input wants."""

    name: str
    shape: list[int | None]
    dtype: str  # "float32" or "uint8"
    layout: str  # "NHWC" or "NCHW"
    size: tuple[int, int]  # (H, W)


@dataclass
class ActivationProbe:
    """A loaded ONNX model ready to show the tensors one image produces."""

    path: Path
    tensors: list[TensorInfo] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    input: ModelInput | None = None
    output_name: str = ""
    _session: Any = None
    _model: Any = None

    @classmethod
    def open(cls, path: Path | str) -> ActivationProbe:
        """Read the graph (onnx + shape inference); the session is made on first use."""
        import onnx

        path = Path(path)
        if not path.is_file():
            raise CnnlabError(f"{path}: no such ONNX file")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf errors have no common base class
            raise CnnlabError(f"{path}: not a readable ONNX model ({exc})") from None
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # unknown ops: keep going without inferred shapes
            inferred = model
        probe = cls(path=path)
        probe._model = model
        probe.metadata = {p.key: p.value for p in model.metadata_props}
        probe._analyse(inferred)
        return probe

    # -- graph analysis
    def _analyse(self, model: Any) -> None:
        graph = model.graph
        initializers = {i.name for i in graph.initializer}
        shapes: dict[str, list[int | None] | None] = {}
        for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
            shapes[vi.name] = _vi_shape(vi)
        real_inputs = [i for i in graph.input if i.name not in initializers]
        if len(real_inputs) != 1:
            raise CnnlabError(
                f"{self.path}: expected one image input, found {len(real_inputs)} "
                f"({', '.join(i.name for i in real_inputs)})"
            )
        inp = real_inputs[0]
        ishape = shapes.get(inp.name) or []
        elem = inp.type.tensor_type.elem_type
        dtype = "uint8" if elem == 2 else "float32"  # TensorProto.UINT8 == 2
        if len(ishape) != 4:
            raise CnnlabError(
                f"{self.path}: input {inp.name} is not an image batch (shape {ishape})"
            )
        in_layout = self.metadata.get("cnnlab.input_layout") or _guess_input_layout(
            ishape, graph, inp.name
        )
        if in_layout == "NHWC":
            size = (int(ishape[1] or 32), int(ishape[2] or 32))
        else:
            size = (int(ishape[2] or 32), int(ishape[3] or 32))
        self.input = ModelInput(inp.name, ishape, dtype, in_layout, size)
        self.output_name = graph.output[0].name

        layouts: dict[str, str | None] = {inp.name: in_layout}
        for node in graph.node:
            in_layouts = [layouts.get(i) for i in node.input if i]
            for out in node.output:
                shape = shapes.get(out)
                layouts[out] = _node_layout(node, in_layouts, shape)
            if node.op_type not in VISIBLE_OPS:
                continue
            for out in node.output[:1]:
                shape = shapes.get(out)
                if shape is not None and len(shape) < 2:
                    continue  # shape arithmetic, not features
                self.tensors.append(
                    TensorInfo(
                        name=out,
                        node=node.name or out,
                        op=node.op_type,
                        shape=shape,
                        layout=layouts.get(out),
                    )
                )

    def find(self, name: str) -> TensorInfo:
        """A probe-able tensor by tensor name, node name, or a unique substring of either."""
        for t in self.tensors:
            if name in (t.name, t.node):
                return t
        matches = [t for t in self.tensors if name in t.name or name in t.node]
        if len(matches) == 1:
            return matches[0]
        # A Keras layer name: tf2onnx names nodes <model>/<layer>_<n>/<op>
        keras_like = [t for t in self.tensors if _keras_layer_of(t.node) == name]
        if keras_like:
            return keras_like[-1]  # the layer's last op (after its activation)
        if matches:
            raise CnnlabError(
                f"{name!r} matches {len(matches)} tensors: "
                + ", ".join(t.node for t in matches[:5])
                + ("…" if len(matches) > 5 else "")
            )
        raise CnnlabError(f"no tensor {name!r} in {self.path.name}")

    # -- inference
    def _ensure_session(self) -> Any:
        if self._session is not None:
            return self._session
        import onnx
        import onnxruntime as ort

        model = onnx.ModelProto()
        model.CopyFrom(self._model)
        existing = {o.name for o in model.graph.output}
        for t in self.tensors:
            if t.name not in existing:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(t.name))
                existing.add(t.name)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Keep every requested tensor: fusing Conv+Relu would still keep both outputs, but
        # basic optimisations are enough for one image and keep the names intact.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        try:
            self._session = ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise CnnlabError(f"{self.path.name}: onnxruntime cannot load it ({exc})") from None
        return self._session

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """One uint8 RGB image (H×W×3) → the model's input batch (resized, preprocessed, laid out)."""
        assert self.input is not None
        img = np.asarray(image)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        h, w = self.input.size
        if img.shape[:2] != (h, w):
            rows = (np.arange(h) * img.shape[0] / h).astype(int)
            cols = (np.arange(w) * img.shape[1] / w).astype(int)
            img = img[rows][:, cols]
        if self.input.dtype == "uint8":
            x = img.astype(np.uint8)
        else:
            x = self.preprocessing_spec().apply(img).astype(np.float32)
        x = x[None]
        if self.input.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x)

    def preprocessing_name(self) -> str:
        """The preprocessing the file says it expects (metadata), else x/255."""
        for key in ("preprocessing", "cnnlab.preprocessing", "preprocess"):
            value = self.metadata.get(key)
            if value:
                try:
                    parsed = json.loads(value)
                except ValueError:
                    return value
                if isinstance(parsed, dict):
                    return str(parsed.get("name") or parsed.get("mode") or "unit")
                return str(parsed)
        return "unit"

    def preprocessing_spec(self) -> Any:
        from engine.preprocessing import PREPROCESSING, get_preprocessing

        name = self.preprocessing_name()
        if name in PREPROCESSING:
            return get_preprocessing(name)
        for spec_name, spec in PREPROCESSING.items():  # a bare mode ("tf", "caffe", ...)
            if spec.mode == name:
                return get_preprocessing(spec_name)
        return get_preprocessing("unit")

    def class_names(self) -> list[str]:
        for key in ("class_names", "classes", "cnnlab.classes", "labels"):
            value = self.metadata.get(key)
            if value:
                try:
                    parsed = json.loads(value)
                except ValueError:
                    parsed = [c.strip() for c in value.split(",")]
                if isinstance(parsed, list):
                    return [str(c) for c in parsed]
        return []

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Every probe-able tensor (and the output) for one uint8 RGB image."""
        session = self._ensure_session()
        assert self.input is not None
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, {self.input.name: self.prepare(image)})
        return dict(zip(names, values, strict=True))

    def probabilities(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The output as probabilities (softmax applied if the graph ends in logits)."""
        out = np.asarray(outputs[self.output_name], dtype=np.float64).reshape(-1)
        if out.size and (out.min() < 0 or abs(out.sum() - 1.0) > 1e-3):
            e = np.exp(out - out.max())
            out = e / e.sum()
        return out


def feature_maps(value: np.ndarray, layout: str | None) -> np.ndarray:
    """A tensor of one image as C×H×W maps (2-D tensors become C×1×1)."""
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 4:
        arr = arr[0]
        if layout == "NHWC":
            arr = arr.transpose(2, 0, 1)
        return arr
    if arr.ndim == 3:  # N×L×C (1-D conv / tokens): channels first
        return arr[0].T[:, None, :]
    flat = arr.reshape(-1)
    return flat[:, None, None]


def top_k(probs: np.ndarray, classes: list[str], k: int = 5) -> list[dict[str, Any]]:
    """The k most probable classes, most probable first."""
    order = np.argsort(-probs)[:k]
    return [
        {
            "index": int(i),
            "class": classes[int(i)] if int(i) < len(classes) else str(int(i)),
            "probability": round(float(probs[int(i)]), 6),
        }
        for i in order
    ]


def map_stats(maps: np.ndarray) -> list[dict[str, Any]]:
    """Per-channel min, max, mean and the fraction of zeros (dead ReLU units show up as 1.0)."""
    flat = maps.reshape(maps.shape[0], -1)
    return [
        {
            "channel": int(c),
            "min": round(float(row.min()), 6),
            "max": round(float(row.max()), 6),
            "mean": round(float(row.mean()), 6),
            "zeros": round(float((row == 0).mean()), 4),
        }
        for c, row in enumerate(flat)
    ]


def activation_report(
    probe: ActivationProbe,
    image: np.ndarray,
    tensor: str,
    *,
    label: int | None = None,
    classes: list[str] | None = None,
    channels: tuple[int, int] | None = (0, 64),
    values: bool = True,
) -> dict[str, Any]:
    """Everything the Activations pane shows for one image at one tensor, JSON-able."""
    info = probe.find(tensor)
    outputs = probe.run(image)
    probs = probe.probabilities(outputs)
    names = classes or probe.class_names()
    maps = feature_maps(outputs[info.name], info.layout)
    start, stop = channels or (0, maps.shape[0])
    start = max(0, min(start, maps.shape[0]))
    stop = max(start, min(stop, maps.shape[0]))
    stats = map_stats(maps)
    top = top_k(probs, names)
    report: dict[str, Any] = {
        "model": str(probe.path),
        "tensor": info.to_dict(),
        "maps_shape": list(maps.shape),
        "channels": [start, stop],
        "preprocessing": probe.preprocessing_name(),
        "image": {
            "label": label,
            "class": names[label] if label is not None and label < len(names) else None,
            "shape": list(np.asarray(image).shape),
        },
        "prediction": {
            "top5": top,
            "predicted": top[0]["class"] if top else None,
            "correct": (top[0]["index"] == label) if (top and label is not None) else None,
        },
        "stats": stats[start:stop],
    }
    if values:
        report["maps"] = [
            [[round(float(v), 5) for v in row] for row in maps[c]] for c in range(start, stop)
        ]
    return report


# -- helpers ----------------------------------------------------------------------------------


def _vi_shape(vi: Any) -> list[int | None] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims: list[int | None] = []
    for d in t.shape.dim:
        dims.append(int(d.dim_value) if d.HasField("dim_value") else None)
    return dims


def _guess_input_layout(shape: list[int | None], graph: Any, name: str) -> str:
    """NHWC or NCHW: from what consumes the input first, else from which axis looks like colour."""
    for node in graph.node:
        if name not in node.input:
            continue
        if node.op_type == "Transpose":
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            if perm == [0, 3, 1, 2]:
                return "NHWC"
        if node.op_type in _NCHW_OPS:
            return "NCHW"
        break
    if shape[-1] in (1, 3, 4) and shape[1] not in (1, 3, 4):
        return "NHWC"
    if shape[1] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
        return "NCHW"
    return "NHWC"  # Keras' (and so cnnlab's) convention


def _node_layout(
    node: Any, in_layouts: list[str | None], shape: list[int | None] | None
) -> str | None:
    rank = len(shape) if shape is not None else None
    op = node.op_type
    if op in _NCHW_OPS:
        return "NCHW"
    if op == "Transpose":
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        src = in_layouts[0] if in_layouts else None
        if perm and src and len(perm) == len(src):
            return "".join(src[p] for p in perm)
        return None
    if rank == 2:
        return "NC"
    if rank == 4 or rank is None:
        for lay in in_layouts:
            if lay in ("NCHW", "NHWC"):
                return lay
    return None


def _keras_layer_of(node_name: str) -> str | None:
    """`simple_cnn_1/conv2d_1/Relu` → `conv2d` (tf2onnx adds `_1` to every name it copies)."""
    parts = node_name.split("/")
    if len(parts) < 3:
        return None
    layer = parts[-2]
    head, _, tail = layer.rpartition("_")
    return head if tail.isdigit() and head else layer


def keras_layer_tensors(probe: ActivationProbe, layer: str) -> list[TensorInfo]:
    """The probe-able tensors that come from one Keras layer of a tf2onnx export."""
    return [t for t in probe.tensors if _keras_layer_of(t.node) == layer]


def grid_shape(n: int, columns: int) -> tuple[int, int]:
    """Rows and columns to lay out n maps at most `columns` wide."""
    cols = max(1, min(columns, n))
    return math.ceil(n / cols), cols
