"""Provider choice and fallback, with the available-provider list and the session controlled by
the test (this machine has no GPU, so a GPU that loads is simulated by a fake session)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from engine.errors import UsageError
from export.providers import (
    PROVIDERS,
    ProviderError,
    choose_providers,
    create_session,
    failure_reason,
)

TRT, CUDA, CPU = PROVIDERS["tensorrt"], PROVIDERS["cuda"], PROVIDERS["cpu"]
ALL = [TRT, CUDA, CPU]


class FakeSession:
    def __init__(self, loaded: list[str]) -> None:
        self._loaded = loaded

    def get_providers(self) -> list[str]:
        return list(self._loaded)


def fake_factory(loads: set[str], noise: bytes = b"") -> Any:
    """A session constructor whose providers load only if in `loads`; writes `noise` to fd 2
    like onnxruntime's native logger, and a banner to sys.stdout like its Python layer."""

    def make(model: Any, options: Any, providers: list[str]) -> FakeSession:
        if noise:
            os.write(2, noise)
            # onnxruntime's Python layer prints a banner like this one
            print("*************** EP Error ***************")
        return FakeSession([p for p in providers if p in loads] or [CPU])

    return make


CUDA_NOISE = (
    b"[E:onnxruntime:Default, provider_bridge_ort.cc:2369 TryGetProviderInfo_CUDA] Failed to load library "
    b"libonnxruntime_providers_cuda.so with error: libcublasLt.so.12: cannot open shared object file: "
    b"No such file or directory\n"
)


def test_auto_order_keeps_what_is_available() -> None:
    assert choose_providers("auto", ALL) == ALL
    assert choose_providers("auto", [CPU, CUDA]) == [CUDA, CPU]
    assert choose_providers("auto", [CPU]) == [CPU]
    assert choose_providers("AUTO", ["SomethingElse", CPU]) == [CPU]


def test_explicit_provider() -> None:
    assert choose_providers("cpu", ALL) == [CPU]
    assert choose_providers("cuda", ALL) == [CUDA, CPU]
    assert choose_providers("tensorrt", ALL) == ALL


def test_explicit_unavailable_provider_is_a_clear_error() -> None:
    with pytest.raises(ProviderError, match=r"provider cuda .*not available.*available: cpu"):
        choose_providers("cuda", [CPU])
    with pytest.raises(ProviderError, match="tensorrt"):
        choose_providers("tensorrt", [CUDA, CPU])
    with pytest.raises(UsageError, match="unknown provider"):
        choose_providers("rocm", ALL)


def test_gpu_machine_auto_uses_tensorrt() -> None:
    info = create_session(
        b"model", "auto", options=object(), available=ALL, factory=fake_factory(set(ALL))
    )
    assert info.used == ALL and info.primary == "tensorrt"
    assert not info.fell_back and info.notes == []


def test_auto_falls_back_and_says_why(capfd: pytest.CaptureFixture[str]) -> None:
    factory = fake_factory(
        {CUDA, CPU}, noise=b"TensorRT: libnvinfer.so.10: cannot open shared object file\n"
    )
    info = create_session(b"model", "auto", options=object(), available=ALL, factory=factory)
    assert info.used == [CUDA, CPU] and info.primary == "cuda" and info.fell_back
    assert any(
        n.startswith("tensorrt: not used, library libnvinfer.so.10 not found") for n in info.notes
    )
    assert "auto: fell back to cuda" in info.notes
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the native noise stayed off the screen


def test_explicit_provider_that_does_not_load_is_an_error(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Listed by onnxruntime-gpu, but its libraries are missing: onnxruntime would quietly use the CPU.
    factory = fake_factory({CPU}, noise=CUDA_NOISE)
    with pytest.raises(
        ProviderError,
        match="cuda was requested but did not load: library libcublasLt.so.12 not found",
    ):
        create_session(b"model", "cuda", options=object(), available=ALL, factory=factory)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_failure_reason_fallback_text() -> None:
    assert "did not load" in failure_reason(CUDA, ["something unrelated"])


def _tiny_model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["image"], ["probabilities"], axis=-1)],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_real_onnxruntime_reports_what_loaded(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Whatever this onnxruntime build lists, the session says what really runs, quietly."""
    import onnxruntime as ort

    path = _tiny_model(tmp_path / "tiny.onnx")
    info = create_session(path, "auto")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert info.used == info.session.get_providers()
    listed = ort.get_available_providers()
    assert info.tried == [p for p in ALL if p in listed]
    if info.fell_back:  # e.g. onnxruntime-gpu on a machine without a GPU (like the dev machines)
        assert any(n.startswith("auto: fell back to") for n in info.notes)
    y = info.session.run(None, {"image": np.zeros((2, 4), np.float32)})[0]
    assert np.allclose(y, 0.25)
    cpu = create_session(path, "cpu")
    assert cpu.used == [CPU] and not cpu.fell_back


def test_doctor_export_part_reports_the_providers_that_load(
    capfd: pytest.CaptureFixture[str],
) -> None:
    import onnxruntime as ort

    from export.doctor import diagnose

    report = diagnose()
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the probe session's native noise stays off the screen
    assert report["ort_available_providers"] == ort.get_available_providers()
    session = report["ort_session_providers"]
    assert isinstance(session, dict) and "cpu" in session["used"]
    lacks_cuda = "CUDAExecutionProvider" not in report["ort_available_providers"]
    assert lacks_cuda == any("no CUDA provider" in m for m in report["missing_for_gpu"])
    assert report["onnxruntime"] and report["onnx"]


def test_doctor_joins_the_engine_and_export_parts() -> None:
    from cnnlab.doctor import compose

    report = compose(
        [
            {"tensorflow": "2.21", "missing_for_gpu": ["no GPU for TensorFlow"]},
            {"onnxruntime": "1.25", "missing_for_gpu": ["no CUDA provider"]},
        ]
    )
    assert list(report) == ["tensorflow", "onnxruntime", "missing_for_gpu"]
    assert report["missing_for_gpu"] == ["no GPU for TensorFlow", "no CUDA provider"]
