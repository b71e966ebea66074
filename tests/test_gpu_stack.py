"""TensorRT options and the doctor's GPU-library report, with injected provider lists, libraries
and packages (this machine has no GPU: what a GPU machine would do is simulated, not run)."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import pytest

from cnnlab.cli import build_parser
from engine.errors import UsageError
from export.gpu_stack import built_for, compare_stack, found_versions
from export.providers import (
    PROVIDERS,
    TensorRTOptions,
    configure_tensorrt,
    create_session,
    provider_entries,
    tensorrt_from_args,
)

TRT, CUDA, CPU = PROVIDERS["tensorrt"], PROVIDERS["cuda"], PROVIDERS["cpu"]


class Session:
    def __init__(self, loaded: list[str]) -> None:
        self.loaded = loaded

    def get_providers(self) -> list[str]:
        return self.loaded


@pytest.fixture(autouse=True)
def _default_tensorrt() -> Any:
    yield
    configure_tensorrt(TensorRTOptions())


def test_tensorrt_options_reach_tensorrt_only(tmp_path: Path) -> None:
    seen: list[Any] = []

    def factory(model: Any, options: Any, providers: list[Any]) -> Session:
        seen.append(providers)
        return Session([p if isinstance(p, str) else p[0] for p in providers])

    cache = tmp_path / "trt-cache"
    trt = TensorRTOptions(fp16=True, cache_dir=cache)
    info = create_session(
        b"m",
        "tensorrt",
        options=object(),
        available=[TRT, CUDA, CPU],
        factory=factory,
        tensorrt=trt,
    )
    assert seen[0] == [
        (
            TRT,
            {
                "trt_fp16_enable": "true",
                "trt_int8_enable": "false",
                "trt_engine_cache_enable": "true",
                "trt_engine_cache_path": str(cache),
            },
        ),
        CUDA,
        CPU,
    ]
    assert cache.is_dir()  # TensorRT writes its engines there
    assert f"tensorrt: fp16, engine cache {cache}" in info.notes
    # Without TensorRT among the providers, nothing changes (and no cache folder is made).
    configure_tensorrt(TensorRTOptions(int8=True, cache_dir=tmp_path / "unused"))
    create_session(b"m", "cuda", options=object(), available=[CUDA, CPU], factory=factory)
    assert seen[1] == [CUDA, CPU] and not (tmp_path / "unused").exists()
    # configure_tensorrt is what the flags set: the next TensorRT session uses it.
    create_session(b"m", "auto", options=object(), available=[TRT, CPU], factory=factory)
    assert seen[2][0][1]["trt_int8_enable"] == "true"


def test_provider_entries_without_options_are_plain_names() -> None:
    assert provider_entries([TRT, CPU], TensorRTOptions()) == [TRT, CPU]


def test_trt_flags_on_eval_and_deploy(tmp_path: Path) -> None:
    parser = build_parser()
    for command in (["eval", "m.onnx"], ["deploy", "m.onnx"]):
        args = parser.parse_args(
            [*command, "--trt-fp16", "--trt-int8", "--trt-cache", str(tmp_path)]
        )
        assert tensorrt_from_args(args) == TensorRTOptions(True, True, tmp_path)
        assert tensorrt_from_args(parser.parse_args(command)) == TensorRTOptions()
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(UsageError, match="not a folder"):
        configure_tensorrt(TensorRTOptions(cache_dir=a_file))


# ------------------------------------------------------------------------------ doctor
class BuildInfo:
    cuda_version = "12.2"
    cudnn_version = "9.1"


def test_built_for_reads_onnxruntime_build_info() -> None:
    assert built_for(
        BuildInfo(), "ORT Build Info: tensorrt-version=10.3.0, build type=Release"
    ) == {
        "cuda": "12.2",
        "cudnn": "9.1",
        "tensorrt": "10.3.0",
    }
    assert built_for(object(), "ORT Build Info: build type=Release") == {
        "cuda": None,
        "cudnn": None,
        "tensorrt": None,
    }


class FakeCudart:
    def cudaRuntimeGetVersion(self, out: Any) -> int:  # noqa: N802 (the C name)
        ctypes.cast(out, ctypes.POINTER(ctypes.c_int)).contents.value = 12040
        return 0


class FakeCudnn:
    class cudnnGetVersion:  # noqa: N801 (the C name; ctypes sets restype on it)
        restype: Any = None

        def __new__(cls) -> int:  # type: ignore[misc]
            return 90100


class FakeNvinfer:
    def getInferLibVersion(self) -> int:  # noqa: N802
        return 8601


def test_found_versions_asks_the_libraries_then_pip() -> None:
    libraries = {
        "libcudart.so.12": FakeCudart(),
        "libcudnn.so.9": FakeCudnn(),
        "libnvinfer.so.8": FakeNvinfer(),
    }

    def loader(name: str) -> Any:
        if name not in libraries:
            raise OSError(f"{name}: cannot open shared object file")
        return libraries[name]

    found = found_versions(loader, lambda name: (_ for _ in ()).throw(LookupError(name)))
    assert found == {
        "cuda": {"version": "12.4", "from": "libcudart.so.12"},
        "cudnn": {"version": "9.1.0", "from": "libcudnn.so.9"},
        "tensorrt": {"version": "8.6.1", "from": "libnvinfer.so.8"},
    }

    def pip(name: str) -> str:
        if name == "nvidia-cudnn-cu12":
            return "9.5.1.17"
        raise LookupError(name)

    none_load = found_versions(lambda name: loader("absent"), pip)
    assert none_load == {
        "cuda": None,
        "cudnn": {"version": "9.5.1.17", "from": "pip nvidia-cudnn-cu12"},
        "tensorrt": None,
    }


def test_compare_stack_says_what_is_missing_and_mismatched() -> None:
    built = {"cuda": "12.2", "cudnn": "9.1", "tensorrt": None}
    found = {
        "cuda": {"version": "11.8", "from": "libcudart.so.11.0"},
        "cudnn": {"version": "9.1.0", "from": "libcudnn.so.9"},
        "tensorrt": None,
    }
    rows, missing = compare_stack(built, found, [TRT, CUDA, CPU])
    assert rows["cuda"] == {"built_for": "12.2", "found": "11.8", "from": "libcudart.so.11.0"}
    assert missing == [
        "CUDA runtime: onnxruntime was built for 12.2, found 11.8 (libcudart.so.11.0); install CUDA runtime 12.x",
        "TensorRT not found (needed by tensorrt): install it, or `pip install tensorrt-cu12-libs`",
    ]
    # CUDA only: TensorRT is not needed, so not missing; a CPU-only build needs nothing.
    _, missing = compare_stack(
        built, {**found, "cuda": {"version": "12.4", "from": "x"}}, [CUDA, CPU]
    )
    assert missing == []
    _, missing = compare_stack({"cuda": None, "cudnn": None, "tensorrt": None}, {}, [CPU])
    assert missing == []
    _, missing = compare_stack(built, {}, [CUDA, CPU])
    assert missing[0].startswith("CUDA runtime 12.2 not found (needed by cuda)")
    assert missing[1].startswith("cuDNN 9.1 not found (needed by cuda)")
