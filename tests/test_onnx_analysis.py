"""The one ONNX analysis on graphs other tools make, built with onnx.helper; every figure below
is counted by hand in the docstring or comment beside it.

Foreign-graph shapes covered: in-graph weights (ConstantOfShape, Identity/Cast of constants),
initializers listed as graph inputs (IR 3, opset 9), a fixed batch of 2, ConvTranspose (plain
and grouped), bias-free MatMul with a constant or an activation operand, Gemm without C,
Conv1d with dilation, Conv3d, depthwise convolution, symbolic spatial dims fixed by `--dim`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnlab.cli import main
from engine.errors import CnnlabError
from export.info import onnx_info
from export.onnx_analysis import analyze_onnx
from export.onnx_graph import parse_dims
from export.onnx_layers import explain, summarize_onnx

F = TensorProto.FLOAT


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _save(
    path: Path,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: list[TensorProto] = (),  # type: ignore[assignment]
    *,
    opset: int = 17,
    ir: int = 8,
) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir
    onnx.save(model, path)
    return path


def _vi(name: str, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, F, shape)


def _node(info: dict, name: str) -> dict:
    (node,) = [n for n in info["nodes"] if n["name"] == name]
    return node


def _ort_runs(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return list(session.run(None, feeds))


# ------------------------------------------------------------------------------ graphs
def model_zoo_style(tmp_path: Path) -> Path:
    """Caffe2-converted style: IR 3, opset 9, every initializer also a graph input, the conv
    weight made in the graph by ConstantOfShape, the dense weight stored as float16 and Cast.

    x [1,3,8,8] → Conv(W = ConstantOfShape([4,3,3,3], 0.1), B) pad 1 → Relu → Flatten
    → MatMul(Cast(fc_w16) [256,10]), no bias.
      conv:   out 4·8·8 = 256 values × 3·3·3 = 27 → 6,912 MACs; W 108 generated, B 4 stored
      matmul: 10 outputs × 256 → 2,560 MACs; fc_w16 2,560 stored (the Cast is the same data)
      params: stored 4 + 2,560 = 2,564; generated 108; total 2,672 (the int64 shape is not one)
    """
    shape = helper.make_tensor("w_shape", TensorProto.INT64, [4], [4, 3, 3, 3])
    fill = helper.make_tensor("fill", F, [1], [0.1])
    nodes = [
        helper.make_node("Constant", [], ["w_shape"], name="shape", value=shape),
        helper.make_node("ConstantOfShape", ["w_shape"], ["W"], name="make_w", value=fill),
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
        helper.make_node("Cast", ["fc_w16"], ["fc_w"], name="cast", to=F),
        helper.make_node("MatMul", ["f", "fc_w"], ["y"], name="fc"),
    ]
    b = np.arange(4, dtype=np.float32)
    fc = np.full((256, 10), 0.01, np.float16)
    inputs = [
        _vi("x", [1, 3, 8, 8]),
        _vi("B", [4]),
        helper.make_tensor_value_info("fc_w16", TensorProto.FLOAT16, [256, 10]),
    ]
    return _save(
        tmp_path / "zoo.onnx",
        nodes,
        inputs,
        [_vi("y", [1, 10])],
        [_init("B", b), _init("fc_w16", fc)],
        opset=9,
        ir=3,
    )


def batch_two(tmp_path: Path) -> Path:
    """PyTorch-converted style, fixed batch 2: x [2,3,8,8] → Conv 3→4 3×3 pad 1 (+B)
    → Flatten → Gemm 256→10 with transB and no C.
      conv: one pass 2·4·8·8·27 = 13,824 MACs → 6,912 per sample; params 108 + 4
      gemm: one pass 2·10·256 = 5,120 → 2,560 per sample; params 2,560
      per sample 9,472; params 2,672
    """
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="gemm", transB=1),
    ]
    inits = [
        _init("W", np.ones((4, 3, 3, 3), np.float32)),
        _init("B", np.zeros(4, np.float32)),
        _init("fc", np.ones((10, 256), np.float32)),
    ]
    return _save(
        tmp_path / "batch2.onnx", nodes, [_vi("x", [2, 3, 8, 8])], [_vi("y", [2, 10])], inits
    )


def conv_transpose(tmp_path: Path) -> Path:
    """x [1,4,4,4] → ConvTranspose W [4,2,3,3] stride 2 → [1,2,9,9] ((4−1)·2 + 3 = 9)
    → ConvTranspose W [2,1,3,3] group 2 → [1,2,11,11].
      up:  every one of the 4·4·4 = 64 inputs feeds 2 output channels × 9 taps → 1,152 MACs
      up2: 2·9·9 = 162 inputs × 1 (M/group) × 9 → 1,458 MACs
      params 72 + 18 = 90
    """
    nodes = [
        helper.make_node("ConvTranspose", ["x", "W"], ["u"], name="up", strides=[2, 2]),
        helper.make_node("ConvTranspose", ["u", "W2"], ["y"], name="up2", group=2),
    ]
    inits = [
        _init("W", np.ones((4, 2, 3, 3), np.float32)),
        _init("W2", np.ones((2, 1, 3, 3), np.float32)),
    ]
    return _save(
        tmp_path / "convt.onnx", nodes, [_vi("x", [1, 4, 4, 4])], [_vi("y", [1, 2, 11, 11])], inits
    )


def matmuls(tmp_path: Path) -> Path:
    """x ["N",5,8]: attention-style MatMul(x, Transpose(x)) [N,5,5] (both operands activations)
    → MatMul with a constant [5,3], no bias → [N,5,3] → Add 1.
      scores: 5·5 outputs × 8 = 200 MACs; proj: 5·3 outputs × 5 = 75 MACs; total 275
      params 15 (+1 for the Add's constant); Add is not counted
    """
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], name="t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "xt"], ["s"], name="scores"),
        helper.make_node("MatMul", ["s", "P"], ["p"], name="proj"),
        helper.make_node("Add", ["p", "one"], ["y"], name="add"),
    ]
    inits = [_init("P", np.ones((5, 3), np.float32)), _init("one", np.ones(1, np.float32))]
    return _save(
        tmp_path / "mm.onnx", nodes, [_vi("x", ["N", 5, 8])], [_vi("y", ["N", 5, 3])], inits
    )


def convs_1d_3d_depthwise(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Conv1d: x [1,2,10], W [4,2,3], dilation 2 → length 10 − 4 = 6; 4·6 × 2·3 = 144 MACs.
    Conv3d: x [1,2,4,6,6], W [3,2,3,3,3] pad 1 → [1,3,4,6,6]; 3·4·6·6 = 432 × 2·27 = 23,328.
    Depthwise: x [1,8,6,6], W [8,1,3,3] group 8 pad 1 → [1,8,6,6]; 8·36 × 9 = 2,592; 72 params.
    """
    c1 = _save(
        tmp_path / "conv1d.onnx",
        [helper.make_node("Conv", ["x", "W"], ["y"], name="conv1d", dilations=[2])],
        [_vi("x", [1, 2, 10])],
        [_vi("y", [1, 4, 6])],
        [_init("W", np.ones((4, 2, 3), np.float32))],
    )
    c3 = _save(
        tmp_path / "conv3d.onnx",
        [helper.make_node("Conv", ["x", "W"], ["y"], name="conv3d", pads=[1] * 6)],
        [_vi("x", [1, 2, 4, 6, 6])],
        [_vi("y", [1, 3, 4, 6, 6])],
        [_init("W", np.ones((3, 2, 3, 3, 3), np.float32))],
    )
    dw = _save(
        tmp_path / "dw.onnx",
        [helper.make_node("Conv", ["x", "W"], ["y"], name="dw", group=8, pads=[1, 1, 1, 1])],
        [_vi("x", [1, 8, 6, 6])],
        [_vi("y", [1, 8, 6, 6])],
        [_init("W", np.ones((8, 1, 3, 3), np.float32))],
    )
    return c1, c3, dw


# ------------------------------------------------------------------------------ tests
def test_in_graph_weights_and_ir3_initializers_as_inputs(tmp_path: Path) -> None:
    path = model_zoo_style(tmp_path)
    (y,) = _ort_runs(path, {"x": np.ones((1, 3, 8, 8), np.float32)})  # onnxruntime runs it
    assert y.shape == (1, 10)
    info = onnx_info(path)
    assert [i["name"] for i in info["inputs"]] == ["x"]  # B and fc_w16 are weights
    assert _node(info, "conv")["macs"] == 6912 and _node(info, "conv")["params"] == 112
    assert _node(info, "fc")["macs"] == 2560 and _node(info, "fc")["params"] == 2560
    assert _node(info, "make_w")["mac_status"] == "constant"
    assert _node(info, "cast")["params"] == 0  # its output is counted once, at fc
    assert sum(n["params"] for n in info["nodes"]) == 2672
    t = info["totals"]
    assert t["macs"] == 6912 + 2560 == 9472
    assert (t["params_stored"], t["params_generated"], t["params"]) == (2564, 108, 2672)
    assert t["not_counted"] == {"Relu": 1}
    assert [g["name"] for g in info["generated_weights"]] == ["W"]


def test_ir3_initializers_missing_from_inputs_load_with_a_warning(tmp_path: Path) -> None:
    """The checker's "initializer but not in graph input" (IR < 4) is a warning, not a refusal."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["y"], name="conv")]
    path = _save(
        tmp_path / "ir3.onnx",
        nodes,
        [_vi("x", [1, 1, 3, 3])],
        [_vi("y", [1, 1, 1, 1])],
        [_init("W", np.ones((1, 1, 3, 3), np.float32))],
        opset=9,
        ir=3,
    )
    info = onnx_info(path)
    assert info["totals"]["macs"] == 9 and info["totals"]["params"] == 9
    assert any("onnx checker" in w for w in info["warnings"])


def test_batch_two_counts_per_sample(tmp_path: Path) -> None:
    info = onnx_info(batch_two(tmp_path))
    assert info["inputs"][0]["shape"] == [2, 3, 8, 8]
    assert _node(info, "conv")["macs"] == 6912
    assert _node(info, "gemm")["macs"] == 2560
    t = info["totals"]
    assert t["macs"] == 9472 and t["batch"] == 2 and t["params"] == 2672
    assert "per sample" in t["macs_note"]


def test_conv_transpose_plain_and_grouped(tmp_path: Path) -> None:
    info = onnx_info(conv_transpose(tmp_path))
    assert _node(info, "up")["output_shapes"] == [[1, 2, 9, 9]]
    assert _node(info, "up")["macs"] == 1152
    assert _node(info, "up2")["macs"] == 1458
    assert info["totals"]["macs"] == 2610 and info["totals"]["params"] == 90


def test_bias_free_matmul_with_constant_or_activation_operand(tmp_path: Path) -> None:
    info = onnx_info(matmuls(tmp_path))
    assert _node(info, "scores")["macs"] == 200 and _node(info, "scores")["params"] == 0
    assert _node(info, "proj")["macs"] == 75 and _node(info, "proj")["params"] == 15
    assert info["totals"]["macs"] == 275
    assert info["totals"]["not_counted"] == {"Add": 1}
    assert _node(info, "add")["macs"] is None and _node(info, "add")["mac_status"] == "not counted"
    assert _node(info, "t")["mac_status"] == "no MACs"
    assert info["totals"]["batch"] == "N"


def test_conv1d_dilated_conv3d_and_depthwise(tmp_path: Path) -> None:
    c1, c3, dw = convs_1d_3d_depthwise(tmp_path)
    assert onnx_info(c1)["totals"]["macs"] == 144
    assert onnx_info(c3)["totals"]["macs"] == 23328
    info = onnx_info(dw)
    assert info["totals"]["macs"] == 2592 and info["totals"]["params"] == 72
    row = summarize_onnx(dw)["layers"][1]
    lines = explain(row)["lines"]
    assert any("depthwise: group = Cin = 8" in line for line in lines)
    assert explain(row)["macs"]["value"] == 2592


def test_symbolic_dims_kept_and_fixed_with_dim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """x ["N",3,"H","W"] → Conv 3→4 3×3 pad 1. Free H, W count as 1: 4·1·1 × 27 = 108 MACs;
    with H = W = 8: 4·8·8 × 27 = 6,912."""
    path = _save(
        tmp_path / "sym.onnx",
        [helper.make_node("Conv", ["x", "W"], ["y"], name="conv", pads=[1, 1, 1, 1])],
        [_vi("x", ["N", 3, "H", "W"])],
        [_vi("y", ["N", 4, "H", "W"])],
        [_init("W", np.ones((4, 3, 3, 3), np.float32))],
    )
    free = onnx_info(path)
    assert _node(free, "conv")["output_shapes"] == [["N", 4, "H", "W"]]
    assert free["totals"]["macs"] == 108
    fixed = onnx_info(path, dims={"H": 8, "W": 8})
    assert _node(fixed, "conv")["output_shapes"] == [["N", 4, 8, 8]]
    assert fixed["totals"]["macs"] == 6912 and fixed["totals"]["dims"] == {"H": 8, "W": 8}
    assert main(["onnx-info", str(path), "--dim", "H=8", "--dim", "W=8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["macs"] == 6912
    assert main(["inspect", str(path), "--dim", "H=8", "--dim", "W=8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["macs"] == 6912
    with pytest.raises(CnnlabError, match="no dimension named 'Q'.*H, N, W"):
        analyze_onnx(path, dims={"Q": 1})
    with pytest.raises(CnnlabError, match="NAME=SIZE"):
        parse_dims(["H8"])
    assert main(["onnx-info", str(path), "--dim", "Q=1"]) == 1
    assert "no dimension named 'Q'" in capsys.readouterr().err


GRAPHS = {
    "zoo": model_zoo_style,
    "batch2": batch_two,
    "convt": conv_transpose,
    "matmul": matmuls,
    "conv3d": lambda p: convs_1d_3d_depthwise(p)[1],
}


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_inspect_and_onnx_info_show_identical_totals(
    tmp_path: Path, graph: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Layers pane / `engine inspect` path and the ONNX pane / `engine onnx-info` path."""
    path = GRAPHS[graph](tmp_path)
    assert main(["inspect", str(path), "--json"]) == 0
    inspected = json.loads(capsys.readouterr().out)
    assert main(["onnx-info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert inspected["totals"]["macs"] == info["totals"]["macs"]
    assert inspected["totals"]["total"] == info["totals"]["params"]
    assert inspected["totals"]["not_counted"] == info["totals"]["not_counted"]
    assert inspected["totals"]["batch"] == info["totals"]["batch"]
    rows = [r for r in inspected["layers"] if r["type"] != "Input"]
    assert sum(r["macs"] or 0 for r in rows) == info["totals"]["macs"]
    # The text outputs state the convention.
    assert main(["inspect", str(path)]) == 0
    assert "per sample (batch 1" in capsys.readouterr().out
    assert main(["onnx-info", str(path)]) == 0
    assert "per sample (batch 1" in capsys.readouterr().out


def test_analysis_modules_import_light() -> None:
    """The analysis, its views and the inspect commands load neither onnx nor onnxruntime,
    TensorFlow or textual until a file is read; engine.inspect imports nothing from export."""
    import subprocess
    import sys

    code = (
        "import sys, engine.inspect\n"
        "assert not [m for m in sys.modules if m.startswith('export')], 'engine imports export'\n"
        "import export.onnx_analysis, export.onnx_layers, export.info, export.inspect_cli\n"
        "heavy = ('onnx', 'onnxruntime', 'tensorflow', 'keras', 'textual', 'tui')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_each_weight_counted_once_and_unread_initializers_named(tmp_path: Path) -> None:
    """x [1,2,4,4] → Conv(W) and Conv(Identity(W)) share W [2,2,1,1] = 4 values → Add
    → Conv(Mul(V, s)) with V [2,2,1,1] and s [1] folded into a generated 4-value weight.
      params: W 4 once (stored) + Mul output 4 (generated) = 8; V and s are read only by the
      fold, so not by a pass; "dead" [3] is read by nothing (a warning).
      MACs: three 1×1 convs, 2·4·4 outputs × 2 = 64 each → 192.
    """
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["a"], name="c1"),
        helper.make_node("Identity", ["W"], ["W_copy"], name="copy"),
        helper.make_node("Conv", ["x", "W_copy"], ["b"], name="c2"),
        helper.make_node("Add", ["a", "b"], ["s_"], name="add"),
        helper.make_node("Mul", ["V", "s"], ["Vs"], name="scale"),
        helper.make_node("Conv", ["s_", "Vs"], ["y"], name="c3"),
    ]
    inits = [
        _init("W", np.ones((2, 2, 1, 1), np.float32)),
        _init("V", np.ones((2, 2, 1, 1), np.float32)),
        _init("s", np.full(1, 2.0, np.float32)),
        _init("dead", np.zeros(3, np.float32)),
    ]
    path = _save(
        tmp_path / "shared.onnx", nodes, [_vi("x", [1, 2, 4, 4])], [_vi("y", [1, 2, 4, 4])], inits
    )
    info = onnx_info(path)
    t = info["totals"]
    assert (t["params_stored"], t["params_generated"], t["params"]) == (4, 4, 8)
    assert t["macs"] == 192
    assert _node(info, "scale")["mac_status"] == "constant"
    assert any("read by no computing node" in w and "dead" in w for w in info["warnings"])


def _ort_datasets() -> list[Path]:
    import onnxruntime

    return sorted((Path(onnxruntime.__file__).parent / "datasets").glob("*.onnx"))


@pytest.mark.parametrize("path", _ort_datasets(), ids=lambda p: p.name)
def test_files_onnxruntime_ships_load_on_both_paths(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """onnxruntime's own sample files (IR 3; mul_1.onnx keeps W out of the graph inputs, which
    onnx's checker rejects) load, and inspect and onnx-info agree on them."""
    info = onnx_info(path)
    if path.name == "mul_1.onnx":
        assert any("not in graph input" in w for w in info["warnings"])
        assert info["totals"]["params"] == 6 and info["totals"]["not_counted"] == {"Mul": 1}
    assert main(["inspect", str(path), "--json"]) == 0
    inspected = json.loads(capsys.readouterr().out)
    assert inspected["totals"]["macs"] == info["totals"]["macs"]
    assert inspected["totals"]["total"] == info["totals"]["params"]
    assert inspected["totals"]["not_counted"] == info["totals"]["not_counted"]


def test_filters_read_a_kernel_the_graph_computes(tmp_path: Path) -> None:
    """The model-zoo conv's W = ConstantOfShape([4,3,3,3], 0.1): 4 filters of 3×3×3, all 0.1."""
    from engine.inspect import conv_layers
    from export.onnx_layers import load_kernel

    path = model_zoo_style(tmp_path)
    assert conv_layers(summarize_onnx(path)) == ["conv"]
    kernel = load_kernel(path, "conv")
    assert kernel.shape == (3, 3, 3, 4)
    assert np.allclose(kernel, 0.1)
