"""`engine diff A B` on hand-built graphs (no TensorFlow): fp32 against its int8 variant, two
different models, renamed nodes, runs compared by their layer tables, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto, helper
from test_deploy import FAST, make_run

from cnnlab.cli import main
from engine.errors import UsageError
from engine.runs import Run, RunStore
from export.deploy.lab import deploy
from export.diff import diff_models
from export.onnx_file import OnnxFileError


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    run = make_run(tmp_path_factory.mktemp("runs"))
    deploy(run.id, runs_root=run.path.parent, variants="int8", calibration=32, **FAST)
    return run, run.path / "deploy" / "int8.onnx"


def _five_classes(source: Path, dest: Path) -> Path:
    """The same conv net with a 5-class head (a different model)."""
    model = onnx.load(str(source))
    graph = model.graph
    for init in graph.initializer:
        if init.name in ("w3", "b3"):
            array = onnx.numpy_helper.to_array(init)[..., :5]
            init.CopyFrom(onnx.numpy_helper.from_array(array.copy(), init.name))
    graph.output[0].CopyFrom(
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 5])
    )
    onnx.save(model, str(dest))
    return dest


def test_fp32_against_int8_groups_quantization_nodes(quantized: tuple[Run, Path]) -> None:
    run, int8 = quantized
    result = diff_models(run.id, int8, runs_root=run.path.parent, images=40)
    a, b = result["a"], result["b"]
    assert a["run_id"] == run.id and a["quantization_nodes"] == {}
    assert b["quantization_nodes"]["QuantizeLinear"] > 0
    assert b["quantization_nodes"]["DequantizeLinear"] > 0
    listed = [r["op"] for r in result["layers"]["added"] + result["layers"]["removed"]]
    assert not {"QuantizeLinear", "DequantizeLinear"} & set(listed)
    # The compute nodes keep their names: Conv, Gemm and the rest pair up.
    assert result["layers"]["same"] >= 6
    folded = [n for n in result["notes"] if "folded into the quantization ranges" in n]
    assert all(r["op"] == "Relu" for r in result["layers"]["removed"])
    assert bool(folded) == bool(result["layers"]["removed"])
    assert a["macs"] == b["macs"] > 0 and a["params"] > 0 and b["params"] > 0
    out = result["outputs"]
    assert out["available"] and out["images"] == 40
    assert 0.5 <= out["agreement"] <= 1.0 and 0 <= out["max_abs_dprob"] < 1


def test_two_different_models(quantized: tuple[Run, Path], tmp_path: Path) -> None:
    run, _ = quantized
    other = _five_classes(run.path / "model.onnx", tmp_path / "five.onnx")
    result = diff_models(run.id, other, runs_root=run.path.parent, images=8)
    changed = {c["a"]: c["changes"] for c in result["layers"]["changed"]}
    assert changed["dense"]["shape"] == [["batch", 10], ["batch", 5]]
    assert changed["dense"]["params"] == [330, 165]
    assert result["a"]["params"] - result["b"]["params"] == 165
    assert not result["outputs"]["available"]
    assert "10 vs 5 classes" in result["outputs"]["reason"]


def test_renamed_nodes_pair_by_op_sequence(quantized: tuple[Run, Path], tmp_path: Path) -> None:
    run, _ = quantized
    model = onnx.load(str(run.path / "model.onnx"))
    for node in model.graph.node:
        node.name = f"renamed_{node.name}"
    onnx.save(model, str(tmp_path / "renamed.onnx"))
    result = diff_models(
        run.path / "model.onnx", tmp_path / "renamed.onnx", data="synthetic:200", images=8
    )
    layers = result["layers"]
    assert layers["added"] == [] and layers["removed"] == []
    assert {c["matched_by"] for c in layers["changed"]} == {"position"}
    assert all(c["changes"] == {} for c in layers["changed"])
    assert len(layers["changed"]) == len(model.graph.node)
    assert result["outputs"]["agreement"] == 1.0 and result["outputs"]["max_abs_dprob"] == 0.0


def _summary_run(root: Path, dense_units: int) -> Run:
    run = RunStore(root).create("simple-cnn", config={"data": "synthetic:200"})
    layers: list[dict[str, Any]] = [
        {
            "name": "conv",
            "type": "Conv2D",
            "output_shape": [None, 30, 30, 8],
            "params": 224,
            "macs": 194400,
        },
        {
            "name": "gap",
            "type": "GlobalAveragePooling2D",
            "output_shape": [None, 8],
            "params": 0,
            "macs": 0,
        },
        {
            "name": "dense",
            "type": "Dense",
            "output_shape": [None, dense_units],
            "params": 9 * dense_units,
            "macs": 8 * dense_units,
        },
    ]
    if dense_units == 5:
        layers.insert(
            2,
            {
                "name": "dropout",
                "type": "Dropout",
                "output_shape": [None, 8],
                "params": 0,
                "macs": 0,
            },
        )
    total = sum(r["params"] for r in layers)
    summary = {"layers": layers, "totals": {"total": total, "macs": sum(r["macs"] for r in layers)}}
    run.summary_path.write_text(json.dumps(summary))
    run.update(status="finished")
    return run


def test_runs_without_exports_compare_layer_tables(tmp_path: Path) -> None:
    a, b = _summary_run(tmp_path, 10), _summary_run(tmp_path, 5)
    result = diff_models(a.id, b.id, runs_root=tmp_path)
    assert result["unit"] == "layers"
    assert [r["name"] for r in result["layers"]["added"]] == ["dropout"]
    assert result["layers"]["changed"][0]["changes"]["params"] == [90, 45]
    assert result["a"]["params"] == 314 and result["b"]["params"] == 269
    assert not result["outputs"]["available"]
    assert f"engine export {a.id}" in result["outputs"]["reason"]


def test_cli_json_and_bad_input(
    quantized: tuple[Run, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, int8 = quantized
    root = ["--runs-dir", str(run.path.parent)]
    assert main(["diff", run.id, str(int8), "--json", "--images", "8", *root]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outputs"]["images"] == 8 and result["b"]["quantization_nodes"]
    assert main(["diff", run.id, str(int8), "--images", "8", *root]) == 0
    text = capsys.readouterr().out
    assert "quantization: QuantizeLinear" in text and "top-1 agreement" in text

    model = str(run.path / "model.onnx")
    assert main(["diff", model, run.id, *root]) == 2  # the run's export is that very file
    err = capsys.readouterr().err.strip()
    assert "same model" in err and len(err.splitlines()) == 1
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage" * 10)
    assert main(["diff", model, str(broken), *root]) == 1
    err = capsys.readouterr().err.strip()
    assert "broken.onnx" in err and len(err.splitlines()) == 1
    with pytest.raises(OnnxFileError):
        diff_models(model, tmp_path / "missing.onnx")
    with pytest.raises(UsageError, match="neither an .onnx file nor a run"):
        diff_models(model, "no-such-run", runs_root=run.path.parent)
