"""`onnx-info` on files cnnlab did not make: a graph built by hand with onnx.helper, whose
shapes, parameter and MAC counts are worked out below, and corrupt or malicious files.

No TensorFlow here; these tests take well under a second each.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnlab.cli import main
from export.info import OnnxFileError, onnx_info


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def handmade_model() -> onnx.ModelProto:
    """x [N,3,8,8] → Conv 3→4 3×3 pad 1 (+bias) → Relu → depthwise Conv 3×3 stride 2 pad 1
    → Flatten → Gemm 64→10 (+bias) → MatMul 10→5 → Reshape [-1,5] → Softmax.

    By hand, per image (N = 1):
      conv1:  W 4·3·3·3 = 108, B 4 → 112 params; out 4·8·8 = 256 values × (3·3·3 = 27) = 6,912 MACs
      dw:     W 4·1·3·3 = 36 params; out 4·4·4 = 64 values × (1·3·3 = 9) = 576 MACs
      gemm:   W 64·10 = 640, C 10 → 650 params; 10 outputs × 64 = 640 MACs
      matmul: W 10·5 = 50 params; 5 outputs × 10 = 50 MACs
      total: 848 params (the int64 reshape target is not a parameter), 8,178 MACs
    """
    rng = np.random.default_rng(0)
    w1 = np.arange(108, dtype=np.float32).reshape(4, 3, 3, 3) / 100.0  # min 0, max 1.07
    b1 = np.array([1.0, -1.0, 0.5, 0.0], np.float32)
    wdw = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    wg = rng.standard_normal((64, 10)).astype(np.float32)
    bg = np.zeros(10, np.float32)
    wm = rng.standard_normal((10, 5)).astype(np.float32)
    shape = np.array([-1, 5], np.int64)
    nodes = [
        helper.make_node(
            "Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node(
            "Conv",
            ["r1", "wdw"],
            ["c2"],
            name="dw",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[2, 2],
            group=4,
        ),
        helper.make_node("Flatten", ["c2"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["g"], name="gemm"),
        helper.make_node("MatMul", ["g", "wm"], ["m"], name="matmul"),
        helper.make_node("Reshape", ["m", "shape"], ["rs"], name="reshape"),
        helper.make_node("Softmax", ["rs"], ["y"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "handmade",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        initializer=[
            _init("w1", w1),
            _init("b1", b1),
            _init("wdw", wdw),
            _init("wg", wg),
            _init("bg", bg),
            _init("wm", wm),
            _init("shape", shape),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="handmade"
    )
    model.producer_version = "0.9"
    model.ir_version = 8
    helper.set_model_props(model, {"author": "a test", "cnnlab.classes": json.dumps(list("abcde"))})
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def handmade(tmp_path: Path) -> Path:
    path = tmp_path / "handmade.onnx"
    onnx.save(handmade_model(), path)
    return path


def _node(info: dict, name: str) -> dict:
    (node,) = [n for n in info["nodes"] if n["name"] == name]
    return node


def test_handmade_shapes_params_and_macs(handmade: Path) -> None:
    info = onnx_info(handmade)
    assert info["opset"] == {"ai.onnx": 17}
    assert info["producer"] == {"name": "handmade", "version": "0.9"}
    assert info["inputs"] == [{"name": "x", "dtype": "float", "shape": ["N", 3, 8, 8]}]
    assert info["outputs"] == [{"name": "y", "dtype": "float", "shape": ["N", 5]}]

    expected = {  # name: (output shape, params, MACs)
        "conv1": (["N", 4, 8, 8], 112, 6912),
        "relu1": (["N", 4, 8, 8], 0, None),
        "dw": (["N", 4, 4, 4], 36, 576),
        "flatten": (["N", 64], 0, None),
        "gemm": (["N", 10], 650, 640),
        "matmul": (["N", 5], 50, 50),
        "softmax": (["N", 5], 0, None),
    }
    for name, (shape, params, macs) in expected.items():
        node = _node(info, name)
        assert node["output_shapes"] == [shape], name
        assert node["params"] == params, name
        assert node["macs"] == macs, name
    assert _node(info, "conv1")["attributes"]["pads"] == [1, 1, 1, 1]

    totals = info["totals"]
    assert totals["params"] == 848
    assert totals["macs"] == 6912 + 576 + 640 + 50 == 8178
    assert totals["flops"] == 2 * 8178
    assert totals["nodes"] == 8
    assert totals["initializers"] == 7
    assert totals["initializer_elements"] == 848 + 2
    assert totals["macs_by_op"] == {"Conv": 7488, "Gemm": 640, "MatMul": 50}
    assert info["op_histogram"] == {
        "Conv": 2,
        "Relu": 1,
        "Flatten": 1,
        "Gemm": 1,
        "MatMul": 1,
        "Reshape": 1,
        "Softmax": 1,
    }


def test_handmade_initializer_stats_and_metadata(handmade: Path) -> None:
    info = onnx_info(handmade)
    (w1,) = [i for i in info["initializers"] if i["name"] == "w1"]
    assert w1["shape"] == [4, 3, 3, 3] and w1["size"] == 108 and w1["param"]
    assert w1["min"] == 0.0
    assert w1["max"] == pytest.approx(1.07)
    assert w1["mean"] == pytest.approx(0.535)
    assert w1["std"] == pytest.approx(np.arange(108).std() / 100.0)
    (shape,) = [i for i in info["initializers"] if i["name"] == "shape"]
    assert shape["dtype"] == "int64" and not shape["param"]
    assert info["initializer_stats"]["count"] == 848
    assert info["initializer_stats"]["zeros"] == 10 + 1 + 1  # bg, w1[0] and b1[3]
    assert info["metadata"]["author"] == "a test"
    assert info["cnnlab"]["classes"] == list("abcde")
    assert info["warnings"] == []
    json.dumps(info)  # plain JSON all the way down


def test_cli_json_is_the_python_api(handmade: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["onnx-info", str(handmade), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(onnx_info(handmade)))
    assert main(["onnx-info", str(handmade)]) == 0
    out = capsys.readouterr().out
    assert "[N, 4, 8, 8]" in out and "6,912" in out and "params 848" in out


# ------------------------------------------------------------------------------ bad files
@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty file"),
        (b"hello, I am a text file\n", "not an ONNX model"),
        (bytes(range(256)) * 8, "not an ONNX model"),
    ],
)
def test_not_onnx(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(OnnxFileError, match=words):
        onnx_info(path)


def test_truncated(tmp_path: Path, handmade: Path) -> None:
    data = handmade.read_bytes()
    for cut in (len(data) // 2, len(data) - 7, 40):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(OnnxFileError):
            onnx_info(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OnnxFileError, match="no such file"):
        onnx_info(tmp_path / "nope.onnx")


def test_cli_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x08\x07\x12\x03abc" + b"\xff" * 50)
    assert main(["onnx-info", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1 and "junk.onnx" in err


def _single_op_model(
    op: str, domain: str = "", opsets: tuple[tuple[str, int], ...] = (("", 17),)
) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], domain=domain, name="mystery")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    return model


def test_unknown_op_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "unknown.onnx"
    onnx.save(_single_op_model("FrobnicateV2"), path)
    with pytest.raises(OnnxFileError, match="unknown op 'FrobnicateV2'.*opset 17"):
        onnx_info(path)
    # An op from a newer opset than the file declares is unknown too.
    onnx.save(_single_op_model("Gelu"), path)
    with pytest.raises(OnnxFileError, match="unknown op 'Gelu'"):
        onnx_info(path)


def test_undeclared_domain_is_an_error_declared_custom_domain_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "custom.onnx"
    onnx.save(_single_op_model("Magic", domain="com.example"), path)
    with pytest.raises(OnnxFileError, match="com.example"):
        onnx_info(path)
    onnx.save(
        _single_op_model("Magic", domain="com.example", opsets=(("", 17), ("com.example", 1))), path
    )
    info = onnx_info(path)
    assert info["op_histogram"] == {"com.example.Magic": 1}
    assert any("custom op Magic" in w for w in info["warnings"])


# ------------------------------------------------------------------------------ external data
def _save_external(model: onnx.ModelProto, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(
        model,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    return path


def _set_location(path: Path, location: str) -> None:
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(model, path)


def test_external_data_is_loaded(tmp_path: Path) -> None:
    path = _save_external(handmade_model(), tmp_path / "m")
    info = onnx_info(path)
    assert info["totals"]["params"] == 848 and info["totals"]["macs"] == 8178
    assert [e["location"] for e in info["external_data"]] == ["weights.bin"]


def test_missing_external_data(tmp_path: Path) -> None:
    path = _save_external(handmade_model(), tmp_path / "m")
    (path.parent / "weights.bin").unlink()
    with pytest.raises(OnnxFileError, match="external data file 'weights.bin' is missing"):
        onnx_info(path)


def test_truncated_external_data(tmp_path: Path) -> None:
    path = _save_external(handmade_model(), tmp_path / "m")
    weights = path.parent / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(OnnxFileError, match="truncated"):
        onnx_info(path)


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin", "/etc/passwd"])
def test_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    path = _save_external(handmade_model(), tmp_path / "m")
    (tmp_path / "secret.bin").write_bytes(
        (path.parent / "weights.bin").read_bytes()
    )  # exists, and still refused
    _set_location(path, location)
    with pytest.raises(OnnxFileError, match="refused"):
        onnx_info(path)


def test_external_data_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    path = _save_external(handmade_model(), tmp_path / "m")
    outside = tmp_path / "outside.bin"
    os.replace(path.parent / "weights.bin", outside)
    (path.parent / "weights.bin").symlink_to(outside)
    with pytest.raises(OnnxFileError, match="outside the model's folder"):
        onnx_info(path)


def test_onnxruntime_optimised_file_with_fused_ops(handmade: Path, tmp_path: Path) -> None:
    """A file another tool wrote: onnxruntime's own optimised graph, with com.microsoft ops."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(handmade), options, providers=["CPUExecutionProvider"])
    info = onnx_info(tmp_path / "optimised.onnx")
    assert "com.microsoft.FusedConv" in info["op_histogram"]  # Conv + Relu fused
    assert info["totals"]["params"] == 848
    assert info["totals"]["macs"] == 8178
    assert any("FusedConv" in w for w in info["warnings"])
