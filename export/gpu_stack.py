"""The GPU libraries onnxruntime was built for, beside those this machine has (for `engine doctor`).

"Built for" comes from onnxruntime itself (`onnxruntime.capi.build_and_package_info`: cuda_version,
cudnn_version on GPU builds; `get_build_info()` text for TensorRT when it says). "Found" asks the
libraries: each is loaded with ctypes and asked its version (cudaRuntimeGetVersion,
cudnnGetVersion, getInferLibVersion); failing that, the pip wheels that ship them
(nvidia-cuda-runtime-cu12, nvidia-cudnn-cu12, tensorrt-cu12-libs...). The loader and the
package lookup are injectable, so the comparison is tested without a GPU.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from export.providers import short_name

LIBRARIES: dict[str, tuple[str, ...]] = {
    "cuda": ("libcudart.so.12", "libcudart.so.11.0", "libcudart.so"),
    "cudnn": ("libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"),
    "tensorrt": ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"),
}
PIP_PACKAGES: dict[str, tuple[str, ...]] = {
    "cuda": ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu11"),
    "cudnn": ("nvidia-cudnn-cu12", "nvidia-cudnn-cu11"),
    "tensorrt": ("tensorrt-cu12-libs", "tensorrt-libs", "tensorrt"),
}
LABELS = {"cuda": "CUDA runtime", "cudnn": "cuDNN", "tensorrt": "TensorRT"}
# Which provider needs which library.
NEEDED_BY = {
    "CUDAExecutionProvider": ("cuda", "cudnn"),
    "TensorrtExecutionProvider": ("cuda", "cudnn", "tensorrt"),
}

Loader = Callable[[str], Any]
PackageVersion = Callable[[str], str]


# ------------------------------------------------------------------------------ built for
def built_for(info: Any = None, build_text: str | None = None) -> dict[str, str | None]:
    """The CUDA/cuDNN/TensorRT versions this onnxruntime was built against (None: not said)."""
    if info is None:
        import onnxruntime
        from onnxruntime.capi import build_and_package_info

        info = build_and_package_info
        build_text = onnxruntime.get_build_info()
    trt = re.search(r"tensorrt[- _]?(?:version)?[=: ]+([\d.]+)", build_text or "", re.IGNORECASE)
    return {
        "cuda": getattr(info, "cuda_version", None) or None,
        "cudnn": getattr(info, "cudnn_version", None) or None,
        "tensorrt": trt.group(1) if trt else None,
    }


# ------------------------------------------------------------------------------ found
def _cuda_version(lib: Any) -> str:
    value = ctypes.c_int(0)
    lib.cudaRuntimeGetVersion(ctypes.byref(value))
    return f"{value.value // 1000}.{value.value % 1000 // 10}"


def _cudnn_version(lib: Any) -> str:
    lib.cudnnGetVersion.restype = ctypes.c_size_t
    v = int(lib.cudnnGetVersion())
    if v >= 90000:  # cuDNN 9: major*10000 + minor*100 + patch
        return f"{v // 10000}.{v % 10000 // 100}.{v % 100}"
    return f"{v // 1000}.{v % 1000 // 100}.{v % 100}"  # cuDNN 8: major*1000 + minor*100 + patch


def _tensorrt_version(lib: Any) -> str:
    v = int(lib.getInferLibVersion())
    if v >= 100000:  # TensorRT 10: major*10000 + minor*100 + patch
        return f"{v // 10000}.{v % 10000 // 100}.{v % 100}"
    return f"{v // 1000}.{v % 1000 // 100}.{v % 100}"


_ASK = {"cuda": _cuda_version, "cudnn": _cudnn_version, "tensorrt": _tensorrt_version}


def _package_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def found_versions(
    loader: Loader = ctypes.CDLL, package_version: PackageVersion = _package_version
) -> dict[str, dict[str, str] | None]:
    """{library: {"version", "from"}} for each library found (None: not found)."""
    found: dict[str, dict[str, str] | None] = {}
    for key, names in LIBRARIES.items():
        found[key] = None
        for name in names:
            try:
                lib = loader(name)
            except OSError:
                continue
            try:
                found[key] = {"version": _ASK[key](lib), "from": name}
            except Exception:  # loaded but would not say: still found
                found[key] = {"version": "?", "from": name}
            break
        if found[key] is None:
            for package in PIP_PACKAGES[key]:
                try:
                    found[key] = {"version": package_version(package), "from": f"pip {package}"}
                    break
                except Exception:
                    continue
    return found


# ------------------------------------------------------------------------------ the report
def _major(version: str | None) -> str | None:
    return version.split(".")[0] if version and version[0].isdigit() else None


def compare_stack(
    built: Mapping[str, str | None],
    found: Mapping[str, Mapping[str, str] | None],
    providers: Sequence[str],
) -> tuple[dict[str, Any], list[str]]:
    """(one row per library: built for / found, what GPU use lacks). Only the libraries a
    listed GPU provider needs can be "missing"; a major-version mismatch is named."""
    needed = {key for p in providers for key in NEEDED_BY.get(p, ())}
    rows: dict[str, Any] = {}
    missing: list[str] = []
    for key, label in LABELS.items():
        have = found.get(key)
        rows[key] = {
            "built_for": built.get(key),
            "found": have["version"] if have else None,
            "from": have["from"] if have else None,
        }
        if key not in needed:
            continue
        users = ", ".join(short_name(p) for p in providers if key in NEEDED_BY.get(p, ()))
        want = built.get(key)
        if have is None:
            wanted = f"{label} {want}" if want else label
            missing.append(
                f"{wanted} not found (needed by {users}): install it, or `pip install {PIP_PACKAGES[key][0]}`"
            )
        elif _major(want) and _major(have["version"]) and _major(want) != _major(have["version"]):
            missing.append(
                f"{label}: onnxruntime was built for {want}, found {have['version']} ({have['from']}); "
                f"install {label} {_major(want)}.x"
            )
    return rows, missing


def gpu_stack(
    providers: Sequence[str],
    *,
    built: Mapping[str, str | None] | None = None,
    found: Mapping[str, Mapping[str, str] | None] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The doctor's GPU-library section for this machine (or for injected facts)."""
    return compare_stack(
        built if built is not None else built_for(),
        found if found is not None else found_versions(),
        providers,
    )
