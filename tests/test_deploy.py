"""`engine deploy` on a hand-built ONNX conv net attached to a run on synthetic data (no
TensorFlow): the variants and their graphs, the measurements, run.json's `onnx.variants`, the
per-layer error, calibration on training images only, and bad input leaving nothing behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnlab.cli import main
from engine.data import SYNTHETIC_CLASSES, load_dataset
from engine.errors import UsageError
from engine.runs import Run, RunStore
from export.deploy.lab import deploy
from export.deploy.source import calibration_reader, load_data, resolve_target
from export.deploy.variants import QuantizationError
from export.providers import ProviderError

DATA = "synthetic:200"  # 160 training images, 40 test images
CPU_ONLY = ["CPUExecutionProvider"]
FAST = {"latency_runs": 3, "throughput_repeats": 1, "available": CPU_ONLY}


def _conv_graph(dense_w: np.ndarray, dense_b: np.ndarray) -> Any:
    """NHWC image → Conv/Relu → MaxPool → Conv/Relu → GAP → Gemm → Softmax (NCHW inside)."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.normal(0, 0.3, (16, 3, 3, 3)),
        "b1": rng.normal(0, 0.1, 16),
        "w2": rng.normal(0, 0.15, (32, 16, 3, 3)),
        "b2": rng.normal(0, 0.1, 32),
        "w3": dense_w,
        "b3": dense_b,
    }
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Conv", ["nchw", "w1", "b1"], ["c1"], pads=[1] * 4, name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node(
            "MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"
        ),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1] * 4, name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["features"], name="flatten"),
        helper.make_node("Gemm", ["features", "w3", "b3"], ["logits"], name="dense"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 32, 32, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializer=[
            numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def conv_net(path: Path, metadata: dict[str, str]) -> Path:
    """A conv net whose predictions vary with the image (so agreement can really drop): the
    dense layer is centred on the mean training features, then scaled."""
    import onnxruntime as ort

    probe = _conv_graph(np.zeros((32, 10)), np.zeros(10))
    probe.graph.output.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=CPU_ONLY)
    x = load_dataset(DATA).x_train.astype(np.float32) / 255.0
    features = session.run(["features"], {"image": x})[0]
    # One scale for all features (per-feature scaling would blow up near-constant ones,
    # which no 8-bit range can resolve).
    w = np.random.default_rng(1).normal(0, 1, (32, 10)) / features.std()
    model = _conv_graph(w, -features.mean(axis=0) @ w)
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_run(root: Path) -> Run:
    """A finished run on synthetic:200 whose float export is the conv net above."""
    store = RunStore(root)
    run = store.create("simple-cnn", config={"data": DATA, "seed": 0, "val_split": 0.2})
    meta = {
        "cnnlab.classes": json.dumps(list(SYNTHETIC_CLASSES)),
        "cnnlab.preprocessing": "unit",
        "cnnlab.preprocessing_baked": "false",
        "cnnlab.source_run": run.id,
    }
    conv_net(run.path / "model.onnx", meta)
    run.update(
        status="finished",
        onnx={
            "schema": 1,
            "exports": [{"path": "model.onnx", "with_preprocessing": False}],
            "evals": [],
        },
    )
    return run


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, dict[str, Any]]:
    run = make_run(tmp_path_factory.mktemp("runs"))
    result = deploy(run.id, runs_root=run.path.parent, calibration=64, layer_error=True, **FAST)
    return run, result


def _by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["variant"]: v for v in result["variants"]}


def _initializer_types(path: Path) -> dict[str, int]:
    return {t.name: t.data_type for t in onnx.load(str(path)).graph.initializer}


# ------------------------------------------------------------------------------ variants
def test_every_variant_is_written_beside_the_run(deployed: tuple[Run, dict[str, Any]]) -> None:
    run, result = deployed
    assert sorted(p.name for p in (run.path / "deploy").iterdir()) == [
        "fp16.onnx",
        "fp32.onnx",
        "int8-dynamic.onnx",
        "int8.onnx",
    ]
    assert not list(run.path.glob(".deploy-*"))  # the staging folder is gone
    v = _by_name(result)
    assert v["int8"]["size_bytes"] < 0.6 * v["fp32"]["size_bytes"]
    assert v["int8-dynamic"]["size_bytes"] < 0.6 * v["fp32"]["size_bytes"]
    assert v["fp16"]["size_bytes"] < 0.6 * v["fp32"]["size_bytes"]
    assert v["fp32"]["build"]["optimization_level"] == "basic"
    # Every variant still describes how to feed it (engine eval reads this).
    meta = {p.key: p.value for p in onnx.load(str(run.path / "deploy/int8.onnx")).metadata_props}
    assert meta["cnnlab.variant"] == "int8" and meta["cnnlab.preprocessing"] == "unit"


def test_fp16_keeps_float32_io(deployed: tuple[Run, dict[str, Any]]) -> None:
    run, _ = deployed
    model = onnx.load(str(run.path / "deploy/fp16.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    types = _initializer_types(run.path / "deploy/fp16.onnx")
    assert types["w1"] == types["w2"] == types["w3"] == TensorProto.FLOAT16


def test_int8_static_is_qdq_per_channel(deployed: tuple[Run, dict[str, Any]]) -> None:
    run, result = deployed
    model = onnx.load(str(run.path / "deploy/int8.onnx"))
    ops = _by_name(result)["int8"]["ops"]
    assert ops["QuantizeLinear"] >= 3 and ops["DequantizeLinear"] >= 5
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    conv2_weight_dq = [
        n
        for n in model.graph.node
        if n.op_type == "DequantizeLinear"
        and inits.get(n.input[0]) is not None
        and inits[n.input[0]].shape == (32, 16, 3, 3)
    ]
    (dq,) = conv2_weight_dq
    assert inits[dq.input[0]].dtype == np.int8
    assert inits[dq.input[1]].shape == (32,)  # one scale per output channel
    assert {a.name: a.i for a in dq.attribute}.get("axis", 1) == 0
    build = _by_name(result)["int8"]["build"]
    assert (
        build["format"] == "QDQ" and build["per_channel"] and build["calibrate_method"] == "minmax"
    )
    assert build["calibration"] == {"split": "train", "source": DATA, "images": 64}


def test_int8_dynamic_quantizes_at_run_time(deployed: tuple[Run, dict[str, Any]]) -> None:
    _, result = deployed
    ops = _by_name(result)["int8-dynamic"]["ops"]
    assert ops.get("DynamicQuantizeLinear", 0) >= 1
    assert ops.get("ConvInteger", 0) + ops.get("MatMulInteger", 0) >= 2
    assert "QuantizeLinear" not in ops


# ------------------------------------------------------------------------------ measurements
def test_measurements_are_real(deployed: tuple[Run, dict[str, Any]]) -> None:
    import onnxruntime as ort

    run, result = deployed
    assert result["providers"] == ["cpu"]
    data = load_dataset(DATA)
    x = data.x_test.astype(np.float32) / 255.0
    ref = ort.InferenceSession(str(run.path / "model.onnx"), providers=CPU_ONLY)
    ref_probs = ref.run(None, {"image": x})[0]
    for name, entry in _by_name(result).items():
        (row,) = entry["results"]
        assert row["error"] is None and row["provider"]["used"] == ["cpu"]
        assert row["n"] == 40
        probs = ort.InferenceSession(str(run.path / entry["file"]), providers=CPU_ONLY).run(
            None, {"image": x}
        )[0]
        pred = probs.argmax(1)
        assert row["accuracy"] == pytest.approx((pred == data.y_test).mean(), abs=1e-6)
        assert row["agreement"] == pytest.approx((pred == ref_probs.argmax(1)).mean(), abs=1e-6)
        assert row["max_abs_dprob"] == pytest.approx(np.abs(probs - ref_probs).max(), abs=1e-5)
        lat, thr = row["latency_ms"], row["throughput"]
        assert lat["runs"] == 3 and 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert thr["batch"] == 256 and thr["images_per_s"] > 0
        if name == "fp32":
            assert row["agreement"] == 1.0 and row["max_abs_dprob"] < 1e-5
    # The model's predictions vary, so agreement is a real measurement, and int8 is close.
    assert len(set(ref_probs.argmax(1))) >= 4
    int8 = _by_name(result)["int8"]["results"][0]
    assert 0.85 <= int8["agreement"] and 0 < int8["max_abs_dprob"] < 0.5


def test_run_json_holds_the_variants(deployed: tuple[Run, dict[str, Any]]) -> None:
    run, result = deployed
    assert result["stored"] and result["run_id"] == run.id
    stored = RunStore(run.path.parent).open(run.id).record["onnx"]
    assert [v["variant"] for v in stored["variants"]] == ["fp32", "fp16", "int8", "int8-dynamic"]
    assert stored["exports"][0]["path"] == "model.onnx"  # the rest of the record is kept
    entry = stored["variants"][2]
    assert entry["file"] == "deploy/int8.onnx" and entry["source"] == "model.onnx"
    assert entry["data"] == DATA and entry["test_images"] == 40
    assert entry["results"][0]["agreement"] == _by_name(result)["int8"]["results"][0]["agreement"]
    assert entry["layer_error"] == result["layer_error"]


def test_layer_error_is_worst_first(deployed: tuple[Run, dict[str, Any]]) -> None:
    run, result = deployed
    rows = result["layer_error"]
    nodes = {n.name for n in onnx.load(str(run.path / "deploy/int8.onnx")).graph.node}
    assert {"conv1", "conv2", "dense"} <= {r["node"] for r in rows} <= nodes
    sqnr = [r["sqnr_db"] for r in rows if r["sqnr_db"] is not None]
    assert sqnr == sorted(sqnr) and 10 < sqnr[0] < 80  # real, finite quantization noise
    conv = next(r for r in rows if r["node"] == "conv2")
    assert conv["quantized"] and conv["max_abs"] > 0 and 0 < conv["rel_l2"] < 0.3


# ------------------------------------------------------------------------------ calibration
def test_calibration_reads_training_images_only(tmp_path: Path) -> None:
    run = make_run(tmp_path / "runs")
    target = resolve_target(run.id, runs_root=tmp_path / "runs")
    data = load_data(target, None)
    assert data is not None and data.source == DATA
    reader = calibration_reader(target, data, 50, "image")
    assert reader.split == "train" and len(reader) == 50
    assert np.array_equal(reader.images, data.x_train[reader.indices])
    test_rows = {img.tobytes() for img in data.x_test}
    assert not any(img.tobytes() in test_rows for img in reader.images)
    batches = list(reader)
    assert sum(len(b["image"]) for b in batches) == 50
    assert batches[0]["image"].dtype == np.float32 and batches[0]["image"].max() <= 1.0
    # more than the training split: all of it, no repeats
    assert len(calibration_reader(target, data, 10_000, "image")) == len(data.x_train)


def test_exclude_keeps_a_node_in_float(tmp_path: Path) -> None:
    run = make_run(tmp_path / "runs")
    result = deploy(
        run.id,
        runs_root=tmp_path / "runs",
        variants="int8",
        calibration=16,
        exclude=["conv1"],
        **FAST,
    )
    model = onnx.load(str(run.path / "deploy/int8.onnx"))
    conv1 = next(n for n in model.graph.node if n.name == "conv1")
    assert _initializer_types(run.path / "deploy/int8.onnx")[conv1.input[1]] == TensorProto.FLOAT
    conv2 = next(n for n in model.graph.node if n.name == "conv2")
    assert conv2.input[1] not in _initializer_types(run.path / "deploy/int8.onnx")  # via DQ
    assert _by_name(result)["int8"]["build"]["excluded_nodes"] == ["conv1"]
    with pytest.raises(UsageError, match=r"no such node \(did you mean conv2, conv1\?\)"):
        deploy(run.id, runs_root=tmp_path / "runs", variants="int8", exclude=["conv3"], **FAST)


# ------------------------------------------------------------------------------ bad input
def _untouched(run: Run) -> None:
    fresh = RunStore(run.path.parent).open(run.id)
    assert not fresh.record["onnx"].get("variants")  # no variant recorded
    assert not (run.path / "deploy").exists() and not list(run.path.glob(".deploy-*"))


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--calibration", "0"], 2, "--calibration must be at least 1"),
        (["--variants", "fp32,int4"], 2, "unknown variant 'int4'"),
        (["--provider", "tensorrt"], 1, "tensorrt"),
        (["--variants", "fp32", "--exclude", "nope"], 0, ""),  # exclude only matters to int8
    ],
)
def test_cli_bad_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    message: str,
) -> None:
    import export.providers as providers

    monkeypatch.setattr(providers, "available_providers", lambda: list(CPU_ONLY))
    run = make_run(tmp_path / "runs")
    argv = ["deploy", run.id, "--runs-dir", str(tmp_path / "runs"), "--latency-runs", "0", *args]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code:
        (line,) = [line for line in err.splitlines() if line.startswith("engine: error:")]
        assert message in line  # one line; the rest of stderr is progress ("building int8 …")
        assert all(line.endswith("…") for line in err.splitlines() if "error" not in line)
        _untouched(run)


def test_a_provider_that_does_not_load(tmp_path: Path) -> None:
    """onnxruntime lists CUDA but the session quietly runs on the CPU: an error, nothing written."""
    import onnxruntime as ort

    run = make_run(tmp_path / "runs")

    def cpu_only(model: Any, options: Any, providers: list[str]) -> Any:
        return ort.InferenceSession(model, sess_options=options, providers=CPU_ONLY)

    fake = {"available": ["CUDAExecutionProvider", *CPU_ONLY], "factory": cpu_only}
    with pytest.raises(ProviderError, match="cuda was requested but did not load"):
        deploy(run.id, runs_root=tmp_path / "runs", providers="cuda", latency_runs=0, **fake)
    _untouched(run)
    # `all` skips it with a note and measures on what loads.
    result = deploy(
        run.id,
        runs_root=tmp_path / "runs",
        variants="fp32",
        providers="all",
        latency_runs=0,
        **fake,
    )
    assert result["providers"] == ["cpu"] and result["notes"][0].startswith("cuda: skipped")


def test_a_model_that_cannot_be_quantized(tmp_path: Path) -> None:
    """Only ops onnxruntime's quantizer does not handle: a one-line error, nothing written."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=0),
            helper.make_node("Exp", ["mean"], ["e"]),
            helper.make_node("Softmax", ["e"], ["probabilities"], axis=-1),
        ],
        "colour",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 32, 32, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(np.array([1, 2], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    helper.set_model_props(model, {"cnnlab.preprocessing": "unit"})
    path = tmp_path / "colour.onnx"
    onnx.save(model, str(path))
    for variant in ("int8", "int8-dynamic"):
        with pytest.raises(QuantizationError, match="nothing in this model can be quantized"):
            deploy(path, variants=f"fp32,{variant}", data=DATA, calibration=8, **FAST)
        assert not (tmp_path / "colour-deploy").exists()
    assert not list(tmp_path.glob(".deploy-*"))


def test_a_bare_file_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "runs")
    bare = tmp_path / "bare.onnx"
    model = onnx.load(str(run.path / "model.onnx"))
    helper.set_model_props(model, {"cnnlab.preprocessing": "unit"})
    onnx.save(model, str(bare))
    with pytest.raises(UsageError, match="--data"):
        deploy(bare, variants="int8", **FAST)
    result = deploy(bare, variants="fp32,int8-dynamic", **FAST)
    row = _by_name(result)["int8-dynamic"]["results"][0]
    assert row["accuracy"] is None and row["agreement"] is None and row["n"] == 0
    assert row["latency_ms"]["p50"] > 0 and row["throughput"]["images_per_s"] > 0
    assert result["run_id"] is None and not result["stored"]
    assert (tmp_path / "bare-deploy" / "int8-dynamic.onnx").is_file()
    # and the table says n/a rather than inventing a number
    from export.deploy.cli import print_deploy

    print_deploy(result)
    out = capsys.readouterr().out
    assert "n/a" in out and "int8-dynamic" in out


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "runs")
    argv = ["deploy", run.id, "--runs-dir", str(tmp_path / "runs"), "--variants", "fp32,fp16"]
    assert main([*argv, "--json", "--latency-runs", "2", "--provider", "cpu"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [v["variant"] for v in printed["variants"]] == ["fp32", "fp16"]
    assert printed["variants"][1]["results"][0]["agreement"] == 1.0
    assert main([*argv, "--latency-runs", "2", "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "fp16" in out and "agree" in out and "100.0" in out


def test_importing_the_cli_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, export.deploy.cli\n"
        "print(','.join(m for m in ('onnx', 'onnxruntime', 'tensorflow', 'textual') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_variant_a_provider_cannot_run_gets_an_error_row(tmp_path: Path) -> None:
    """Say the provider lacks fp16 kernels: that row says so, the other variants are measured."""
    import onnxruntime as ort

    run = make_run(tmp_path / "runs")

    def no_fp16(model: Any, options: Any, providers: list[str]) -> Any:
        if "fp16" in str(model):
            raise RuntimeError("Could not find an implementation for Conv(11) of type float16")
        return ort.InferenceSession(model, sess_options=options, providers=providers)

    result = deploy(
        run.id, runs_root=tmp_path / "runs", variants="fp32,fp16", factory=no_fp16, **FAST
    )
    fp16 = _by_name(result)["fp16"]["results"][0]
    assert "Could not find an implementation for Conv(11)" in fp16["error"]
    assert "accuracy" not in fp16
    assert _by_name(result)["fp32"]["results"][0]["agreement"] == 1.0
    assert (run.path / "deploy" / "fp16.onnx").is_file()  # the file itself is fine
