"""Shared set-up for the inspection tests (no tests here).

`trained_run()` trains the assignment's simple CNN for one epoch on 100 synthetic images and
exports it to ONNX, through the real `engine run` and `engine export` commands, once per test
session (cached under pytest's base temp folder). `hand_built_onnx()` writes a small CNN made
with onnx.helper — not by tf2onnx — whose numbers are easy to check by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def engine(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def trained_run(factory: pytest.TempPathFactory) -> Path:
    """A finished simple-CNN run folder with model.keras, summary.json and model.onnx.

    Trained and exported in this process with the engine's own functions (the same code as
    `engine run simple-cnn --data synthetic --subset 100 --epochs 1` and `engine export`):
    TensorFlow is imported once instead of once per child process.
    """
    runs = factory.getbasetemp() / "inspect-runs"
    done = runs / ".ready"
    if done.is_file():
        return Path(done.read_text())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from engine.events import Reporter
    from engine.experiments import get_experiment
    from engine.runs import RunStore
    from engine.training import run_experiment
    from export.convert import export

    config = get_experiment("simple-cnn").config(data="synthetic", subset=100, epochs=1)

    class Quiet:
        def emit(self, event: dict[str, Any]) -> None:
            pass

    run = run_experiment("simple-cnn", config, store=RunStore(runs), reporter=Reporter(Quiet()))
    assert run.status == "finished", run.record.get("error")
    export(run.path, runs_root=runs)
    done.write_text(str(run.path))
    return run.path


# A 4×4×3 image (NHWC), Transpose → Conv 2 filters 3×3 pad 1 → Relu → MaxPool 2×2 →
# Reshape → Gemm 8→3 → Softmax. Parameters: conv 2·3·3·3 + 2 = 56, gemm 8·3 + 3 = 27.
CONV_W = (np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) - 27) / 27
CONV_B = np.array([0.1, -0.2], dtype=np.float32)
GEMM_W = (np.arange(8 * 3, dtype=np.float32).reshape(8, 3) - 12) / 12
GEMM_B = np.array([0.0, 0.5, -0.5], dtype=np.float32)


def hand_built_onnx(path: Path, metadata: dict[str, str] | None = None) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Transpose", ["image"], ["x_nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv",
            ["x_nchw", "W", "B"],
            ["conv"],
            name="conv",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node(
            "MaxPool", ["relu"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Reshape", ["pool", "shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "G", "C"], ["logits"], name="dense"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    inits = [
        numpy_helper.from_array(CONV_W, "W"),
        numpy_helper.from_array(CONV_B, "B"),
        numpy_helper.from_array(np.array([1, 8], dtype=np.int64), "shape"),
        numpy_helper.from_array(GEMM_W, "G"),
        numpy_helper.from_array(GEMM_B, "C"),
    ]
    graph = helper.make_graph(
        nodes,
        "hand_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4, 4, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3])],
        inits,
    )
    model = helper.make_model(
        graph, producer_name="hand", opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


HAND_META = {
    "cnnlab.classes": json.dumps(["a", "b", "c"]),
    "cnnlab.preprocessing": "unit",
}


def reference_forward(image: np.ndarray) -> dict[str, Any]:
    """The hand-built model computed with numpy: conv (NCHW), relu, pool, logits, probs."""
    x = image.astype(np.float32).transpose(2, 0, 1) / 255.0  # unit preprocessing, CHW
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    conv = np.zeros((2, 4, 4), dtype=np.float32)
    for f in range(2):
        for i in range(4):
            for j in range(4):
                conv[f, i, j] = (padded[:, i : i + 3, j : j + 3] * CONV_W[f]).sum() + CONV_B[f]
    relu = np.maximum(conv, 0)
    pool = relu.reshape(2, 2, 2, 2, 2).max(axis=(2, 4))
    logits = pool.reshape(-1) @ GEMM_W + GEMM_B
    e = np.exp(logits - logits.max())
    return {"conv": conv, "relu": relu, "pool": pool, "probs": e / e.sum()}
