"""An ONNX file as a layer table (what `engine inspect X.onnx` and the Layers pane show), and
each node's arithmetic spelled out with its real numbers.

The table is a view of `export.onnx_analysis.analyze_onnx`, so its totals are the ones
`engine onnx-info` prints. Rows have the keys of the Keras table (`engine.inspect`), `type` is
the op type, `trainable` is None (an ONNX file has no notion of it) and `weights` lists the
constant inputs (initializers and tensors computed from constants). Node explainers are a
registry keyed by op type, on the skeleton the Keras explainers use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import CnnlabError
from engine.i18n import N_, Phrase
from engine.inspect.arithmetic import explain_layer, explanation, fmt, shape_text, weight_shape
from export.onnx_analysis import MAC_CONVENTION, analyze_onnx

if TYPE_CHECKING:
    import numpy as np

Row = dict[str, Any]
NodeExplainer = Callable[[Row, dict[str, Any], list[str]], bool]
NODE_EXPLAINERS: dict[str, NodeExplainer] = {}

# Nodes that compute shapes rather than features; dimmed in the table.
ONNX_PLUMBING = {
    "Shape", "Gather", "Cast", "Slice", "Unsqueeze", "Squeeze", "Constant", "ConstantOfShape",
    "Identity", "Range", "Expand",
}  # fmt: skip


def node_explainer(*ops: str) -> Callable[[NodeExplainer], NodeExplainer]:
    """Register an ONNX node explainer (returns False when the row lacks what it needs)."""

    def register(fn: NodeExplainer) -> NodeExplainer:
        for op in ops:
            NODE_EXPLAINERS[op] = fn
        return fn

    return register


# ------------------------------------------------------------------------------ the table
def summarize_onnx(path: str | Path, *, dims: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The layer table of an ONNX file: one row per graph input and per node."""
    a = analyze_onnx(path, dims=dims, initializer_stats=False)
    constants = {name for n in a.nodes for name in n.weights}
    producer: dict[str, str] = {}
    rows: list[Row] = []
    for i, io in enumerate(a.inputs):
        producer[io["name"]] = io["name"]
        rows.append(
            {
                "name": io["name"], "type": "Input", "output_shape": io["shape"],
                "input_shape": None, "params": 0, "trainable_params": None, "trainable": None,
                "macs": 0, "mac_status": "no MACs", "config": {}, "inbound": [], "weights": [],
                "outputs": [io["name"]], "index": i,
            }
        )  # fmt: skip
    seen: set[str] = set()
    for node in a.nodes:
        name = node.name or (node.outputs[0] if node.outputs else node.op_type)
        if name in seen:  # node names are optional and may repeat
            name = f"{name}#{len(rows)}"
        seen.add(name)
        data_inputs = [i for i in node.inputs if i and i not in constants]
        rows.append(
            {
                "name": name,
                "type": node.op_type,
                "output_shape": node.output_shapes[0] if node.output_shapes else None,
                "input_shape": a.shapes.get(data_inputs[0]) if data_inputs else None,
                "params": node.params,
                "trainable_params": None,
                "trainable": None,
                "macs": node.macs,
                "mac_status": node.mac_status,
                "config": _simple_attrs(node.attributes),
                "inbound": [producer[i] for i in data_inputs if i in producer],
                "weights": [
                    {"name": w, "shape": a.shapes.get(w), "trainable": None} for w in node.weights
                ],
                "inputs": node.inputs,
                "outputs": node.outputs,
                "format": "onnx",
            }
        )
        for out in node.outputs:
            producer[out] = name
    model = a.model
    t = a.totals
    return {
        "model": model.graph.name or a.path.stem,
        "format": "onnx",
        "path": str(a.path),
        "opset": max(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None
        ),
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [{"name": io["name"], "shape": io["shape"]} for io in a.inputs],
        "outputs": [{"name": io["name"], "shape": io["shape"]} for io in a.outputs],
        "metadata": {p.key: p.value for p in model.metadata_props},
        "layers": rows,
        "warnings": a.warnings,
        "totals": {
            "total": t["params"],
            "stored": t["params_stored"],
            "generated": t["params_generated"],
            "trainable": None,
            "frozen": None,
            "macs": t["macs"],
            "not_counted": t["not_counted"],
            "batch": t["batch"],
            "macs_note": MAC_CONVENTION,
            "layers": len(rows),
        },
    }


def _simple_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes worth showing in a row: scalars and lists of scalars."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, str) and value.startswith("<"):
            continue  # subgraph or tensor placeholder
        if isinstance(value, list) and not all(isinstance(v, (int, float, str)) for v in value):
            continue
        out[key] = value
    return out


# ------------------------------------------------------------------------------ arithmetic
def explain(row: Row) -> dict[str, Any]:
    """The arithmetic of any table row: ONNX nodes here, Keras layers in engine.inspect."""
    return explain_onnx_node(row) if row.get("format") == "onnx" else explain_layer(row)


def explain_onnx_node(row: Row) -> dict[str, Any]:
    """The arithmetic of one ONNX node (registered ops), with its real numbers."""
    op = str(row.get("type"))
    result, lines = explanation(row)
    explainer = NODE_EXPLAINERS.get(op)
    if explainer is None or not explainer(row, result, lines):
        cfg = row.get("config") or {}
        template = N_("{op}: output {shape}, {params:,} parameters in constants")
        shape, params = shape_text(row.get("output_shape")), int(row.get("params") or 0)
        lines.append(Phrase(template, op=op, shape=shape, params=params))
        for wt in row.get("weights") or []:
            lines.append(f"  {wt['name']}: {shape_text(wt['shape'])}")
        if cfg:
            attributes = ", ".join(f"{k}={v}" for k, v in list(cfg.items())[:6])
            lines.append(Phrase(N_("attributes: {attributes}"), attributes=attributes))
    if row.get("macs") is None and row.get("mac_status") in ("not counted", "shape unknown"):
        status = Phrase(str(row["mac_status"]))  # one of MAC_STATUSES
        convention = Phrase(MAC_CONVENTION)
        lines.append(
            Phrase(N_("MACs: {status} ({convention})"), status=status, convention=convention)
        )
    return result


# The MAC statuses an explanation names, marked for translation.
MAC_STATUSES = (N_("not counted"), N_("shape unknown"))


def _int(d: Any) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


@node_explainer("Conv")
def _explain_conv(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    cfg, inp, out = row.get("config") or {}, row.get("input_shape"), row.get("output_shape")
    w = weight_shape(row, 1)
    if not (w and len(w) == 4 and isinstance(inp, list) and len(inp) == 4):
        return False
    cout, cin_g, kh, kw = w
    group = int(cfg.get("group", 1))
    sh, sw = (list(cfg.get("strides") or [1, 1]) + [1, 1])[:2]
    dh, dw = (list(cfg.get("dilations") or [1, 1]) + [1, 1])[:2]
    pads = list(cfg.get("pads") or [0, 0, 0, 0])
    auto_pad = str(cfg.get("auto_pad", "NOTSET"))
    c, h, wd = inp[1], _int(inp[2]), _int(inp[3])
    has_bias = weight_shape(row, 2) is not None
    template = N_("input {c}×{h}×{w} (NCHW), kernel {kh}×{kw}, stride {sh}×{sw}, pads {pads}")
    geometry = Phrase(template, c=c, h=inp[2], w=inp[3], kh=kh, kw=kw, sh=sh, sw=sw, pads=str(pads))
    grouped = Phrase(N_(", group {group}"), group=group) if group > 1 else ""
    padded = Phrase(N_(", auto_pad {mode}"), mode=auto_pad) if auto_pad != "NOTSET" else ""
    lines.append(Phrase("{geometry}{group}{pad}", geometry=geometry, group=grouped, pad=padded))
    if h and wd and auto_pad == "NOTSET":
        computed: list[int] = []
        for label, size, k, s, d, p0, p1 in (
            (N_("height"), h, kh, sh, dh, pads[0], pads[2]),
            (N_("width"), wd, kw, sw, dw, pads[1], pads[3]),
        ):
            k_eff = (k - 1) * d + 1
            o = (size + p0 + p1 - k_eff) // s + 1
            computed.append(o)
            template = "{label}: (W − K + P_begin + P_end)/S + 1 = ({size} − {k} + {p0} + {p1})/{s} + 1 = {o}"
            values = dict(size=size, k=k_eff, p0=p0, p1=p1, s=s, o=o)
            lines.append(Phrase(template, label=Phrase(label), **values))
        result["computed_output_shape"] = [cout, *computed]
        result["checks"]["output_shape"] = isinstance(out, list) and list(out[1:]) == [
            cout,
            *computed,
        ]
    value = cout * cin_g * kh * kw + (cout if has_bias else 0)
    formula = f"{kh}·{kw}·{cin_g}·{cout}" + (f" + {cout}" if has_bias else "")
    if has_bias:
        template = N_("parameters = K·K·(Cin/group)·Cout + Cout (bias) = {formula} = {value:,}")
    else:
        template = N_("parameters = K·K·(Cin/group)·Cout = {formula} = {value:,}")
    lines.append(Phrase(template, formula=formula, value=value))
    if group > 1 and group == c:
        template = N_("depthwise: group = Cin = {c}, one {kh}×{kw} filter per channel")
        lines.append(Phrase(template, c=c, kh=kh, kw=kw))
    macs = row.get("macs")
    if macs is not None and isinstance(out, list) and len(out) == 4 and out[2] and out[3]:
        macs_formula = f"{out[2]}·{out[3]}·{kh}·{kw}·{cin_g}·{cout}"
        template = N_("MACs per sample = Hout·Wout·K·K·Cin/group·Cout = {formula} = {macs:,}")
        lines.append(Phrase(template, formula=macs_formula, macs=int(macs)))
        result["macs"] = {"formula": macs_formula, "value": int(macs)}
    reported = int(row.get("params") or 0)
    result["params"] = {"formula": formula, "value": value, "reported": reported}
    result["checks"]["params"] = value == reported
    return True


@node_explainer("Gemm", "MatMul")
def _explain_dense(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    op, cfg = str(row.get("type")), row.get("config") or {}
    w = weight_shape(row, 1)
    if not (w and len(w) == 2):
        return False
    trans_b = op == "Gemm" and int(cfg.get("transB", 0)) == 1
    fan_in, units = (w[1], w[0]) if trans_b else (w[0], w[1])
    has_bias = op == "Gemm" and weight_shape(row, 2) is not None
    value = fan_in * units + (units if has_bias else 0)
    formula = f"{fmt(fan_in)}·{fmt(units)}" + (f" + {fmt(units)}" if has_bias else "")
    shown = Phrase(
        "{fan_in:,}·{units:,} + {units:,}" if has_bias else "{fan_in:,}·{units:,}",
        fan_in=fan_in,
        units=units,
    )
    template = N_("{fan_in:,} inputs → {units:,} outputs (a dense layer)")
    lines.append(Phrase(template, fan_in=fan_in, units=units))
    lines.append(Phrase(N_("parameters = {formula} = {value:,}"), formula=shown, value=value))
    if op == "MatMul":
        lines.append(Phrase(N_("(a bias, if any, is a separate Add node)")))
    macs = int(row.get("macs") or 0)
    lines.append(Phrase(N_("MACs per sample = {macs:,}"), macs=macs))
    reported = int(row.get("params") or 0)
    result["params"] = {"formula": formula, "value": value, "reported": reported}
    result["checks"]["params"] = value == reported
    return True


@node_explainer("MaxPool", "AveragePool")
def _explain_pool(row: Row, result: dict[str, Any], lines: list[str]) -> bool:
    cfg, inp = row.get("config") or {}, row.get("input_shape")
    if not (isinstance(inp, list) and len(inp) == 4):
        return False
    window = list(cfg.get("kernel_shape") or [1, 1])
    step = list(cfg.get("strides") or [1, 1])
    pads = list(cfg.get("pads") or [0, 0, 0, 0])
    template = N_("input {c}×{h}×{w} (NCHW), window {kh}×{kw}, stride {sh}×{sw}")
    values = dict(c=inp[1], h=inp[2], w=inp[3], kh=window[0], kw=window[1])
    lines.append(Phrase(template, **values, sh=step[0], sw=step[1]))
    h = _int(inp[2])
    if h:
        o = (h + pads[0] + pads[2] - window[0]) // step[0] + 1
        template = N_("height: ({h} − {k} + {p0} + {p1})/{s} + 1 = {o}")
        lines.append(Phrase(template, h=h, k=window[0], p0=pads[0], p1=pads[2], s=step[0], o=o))
    lines.append(Phrase(N_("parameters = 0")))
    return True


# ------------------------------------------------------------------------------ kernels
def onnx_conv_kernel(path: Path, node_name: str) -> np.ndarray:
    """A Conv node's stored weights, as K×K×Cin×Cout (Keras' layout)."""
    import numpy as np
    from onnx import numpy_helper

    from export.onnx_file import load_onnx

    model, _, _ = load_onnx(path)
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        name = node.name or (node.output[0] if node.output else "")
        if name != node_name and node_name not in node.output:
            continue
        if node.op_type not in ("Conv", "ConvTranspose") or len(node.input) < 2:
            raise CnnlabError(f"{node_name} is a {node.op_type}, not a convolution")
        weight = node.input[1]
        if weight in inits:
            w = np.asarray(numpy_helper.to_array(inits[weight]), dtype=np.float32)
        else:
            w = np.asarray(_computed_constant(model, weight, node_name), dtype=np.float32)
        if w.ndim != 4:
            raise CnnlabError(f"{node_name}: weights of shape {list(w.shape)} are not 2-D kernels")
        if node.op_type == "ConvTranspose":  # (Cin, Cout, kH, kW)
            return w.transpose(2, 3, 0, 1)
        return w.transpose(2, 3, 1, 0)  # (Cout, Cin, kH, kW) → (kH, kW, Cin, Cout)
    raise CnnlabError(f"no node {node_name!r} in {Path(path).name}")


def _computed_constant(model: Any, name: str, node_name: str) -> Any:
    """A weight the graph computes from constants (ConstantOfShape...), evaluated with onnx's
    reference runtime on just the nodes that make it."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    producers = {out: n for n in model.graph.node for out in n.output}
    known = {i.name for i in model.graph.initializer}
    needed: list[Any] = []
    stack = [name]
    while stack:
        tensor = stack.pop()
        if tensor in known or not tensor:
            continue
        node = producers.get(tensor)
        if node is None:  # an activation: not a weight after all
            raise CnnlabError(f"{node_name}: its weights depend on the input, not on constants")
        known.update(node.output)
        needed.append(node)
        stack.extend(node.input)
    order = {id(n): i for i, n in enumerate(model.graph.node)}
    needed.sort(key=lambda n: order[id(n)])
    graph = onnx.helper.make_graph(
        needed,
        "weight",
        [],
        [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)],
        initializer=list(model.graph.initializer),
    )
    small = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    small.ir_version = max(model.ir_version, 4)  # initializers need not be graph inputs
    try:
        (value,) = ReferenceEvaluator(small).run(None, {})
    except Exception as exc:  # an op the reference runtime lacks
        raise CnnlabError(f"{node_name}: could not compute its weights ({exc})") from None
    return value


def load_kernel(source: Path, layer: str) -> np.ndarray:
    """A convolution's kernel as K×K×Cin×Cout from a run folder, .keras or .onnx file."""
    from engine.inspect.keras_weights import load_kernel as load_keras_kernel

    if Path(source).suffix == ".onnx":
        return onnx_conv_kernel(Path(source), layer)
    return load_keras_kernel(Path(source), layer)
