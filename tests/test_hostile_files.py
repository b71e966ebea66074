"""Hostile model files given to the CLI: random bytes named .keras, folders named like model
files, missing files, an ONNX model with two inputs, flags out of range. Each gets its own one-line
message (exit 1 or 2), never "internal error" and never Keras' misleading "File not found"."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from cnnlab.cli import main


def _two_input_onnx(path: Path) -> Path:
    """A valid cnnlab-looking ONNX file (metadata, 10 classes) that takes two inputs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 32, 32, 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 32, 32, 3])
    out = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, None)
    weights = np.zeros((3072, 10), dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["s"]),
            helper.make_node("Flatten", ["s"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["probabilities"]),
        ],
        "two_inputs",
        [a, b],
        [out],
        [onnx.numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"cnnlab.preprocessing": "unit"})
    onnx.save(model, str(path))
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "random.keras").write_bytes(os.urandom(2048))
    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "text.keras").write_text("hello\n")
    with zipfile.ZipFile(tmp_path / "noconfig.keras", "w") as archive:
        archive.writestr("other.txt", "x")
    (tmp_path / "folder.keras").mkdir()
    (tmp_path / "folder.onnx").mkdir()
    (tmp_path / "empty.onnx").write_bytes(b"")
    _two_input_onnx(tmp_path / "two_inputs.onnx")
    return tmp_path


NOT_KERAS = "not a valid Keras file"
CASES = [
    (["inspect", "random.keras"], 1, NOT_KERAS),
    (["inspect", "empty.keras"], 1, NOT_KERAS),
    (["inspect", "text.keras"], 1, NOT_KERAS),
    (["inspect", "noconfig.keras"], 1, "no config.json"),
    (["filters", "random.keras"], 1, NOT_KERAS),
    (["filters", "random.keras", "--layer", "conv"], 1, NOT_KERAS),
    (["filters", "noconfig.keras"], 1, "no config.json"),
    (["export", "random.keras", "--no-parity-check"], 1, NOT_KERAS),
    (["inspect", "folder.keras"], 1, "is a folder"),
    (["inspect", "folder.onnx"], 1, "is a folder"),
    (["filters", "folder.keras"], 1, "is a folder"),
    (["inspect", "missing.keras"], 1, "no such file"),
    (["export", "missing.keras"], 1, "no such file"),
    (["export", "folder.keras"], 1, "is a folder"),
    (["eval", "folder.onnx"], 1, "is a folder"),
    (["eval", "empty.onnx"], 1, "empty file"),
    (["eval", "two_inputs.onnx", "--data", "synthetic:50"], 1, "takes 2 inputs (a, b)"),
    (["eval", "two_inputs.onnx", "--preprocessing", "unit"], 1, "takes 2 inputs (a, b)"),
    (["onnx-info", "folder.onnx"], 1, "not a file"),
    (["preprocess-stats", "--count", "0"], 2, "--count"),
    (["preprocess-stats", "--bins", "-3"], 2, "--bins"),
]


@pytest.mark.parametrize(("argv", "code", "words"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_hostile_files_get_their_own_one_line_message(
    files: Path,
    argv: list[str],
    code: int,
    words: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files)
    before = sorted(p.name for p in files.iterdir())
    runs_dir = [] if argv[0] == "onnx-info" else ["--runs-dir", str(files / "runs")]
    got = main([*argv, *runs_dir])
    err = capsys.readouterr().err.strip()
    assert got == code, err
    lines = [line for line in err.splitlines() if line.startswith("engine: error: ")]
    assert len(lines) == 1 and words in lines[0], err
    assert "internal error" not in err and "File not found" not in err and "Traceback" not in err
    assert sorted(p.name for p in files.iterdir()) == before  # nothing written beside them


def test_the_two_input_file_is_otherwise_valid(files: Path) -> None:
    """The refusal above is about its inputs, not a broken file: onnx-info reads it."""
    from export.info import onnx_info

    info = onnx_info(files / "two_inputs.onnx")
    assert [i["name"] for i in info["inputs"]] == ["a", "b"]
    assert json.dumps(info)
