"""The engine's half of `engine doctor`: versions, TF devices, caches, weights, GPU gaps.

The ONNX half lives in export/doctor.py; the `engine` CLI root (cnnlab/doctor.py) joins them.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
from typing import Any

from engine import __version__


def package_version(dist: str) -> str | None:
    """The installed version of a distribution, None when it is not installed."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def diagnose() -> dict[str, Any]:
    """A JSON-able report: versions, TF devices, caches, and what GPU training lacks."""
    from engine.backbones import BACKBONES
    from engine.data import cache_root
    from engine.weights import is_cached, keras_home

    report: dict[str, Any] = {
        "cnnlab": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": package_version("tensorflow"),
        "keras": package_version("keras"),
    }
    missing: list[str] = []
    try:
        from engine.tfquiet import load_tensorflow

        load_tensorflow()  # its start-up chatter stays off the report
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        report["tf_devices"] = [
            d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices()
        ]
        from engine.scale.strategy import choose, visible_devices

        devices = visible_devices()
        report["tf_logical_devices"] = devices["GPU"] + devices["CPU"]
        used, spread = choose("auto", devices)
        report["strategy_auto"] = f"{used} over {', '.join(spread)}"
        report["gpus"] = len(devices["GPU"])  # --parallel auto runs this many children at once
        report["tf_built_with_cuda"] = bool(tf.test.is_built_with_cuda())
        build = tf.sysconfig.get_build_info()
        report["tf_cuda_version"] = build.get("cuda_version")
        report["tf_cudnn_version"] = build.get("cudnn_version")
        if not gpus:
            missing.append(
                "TensorFlow sees no GPU (no NVIDIA driver/GPU, or install cnnlab[gpu] for the CUDA 12 libraries)"
            )
    except Exception as exc:  # report, don't crash: doctor is what people run when things break
        report["tf_devices"] = f"unavailable: {exc}"
        missing.append("TensorFlow does not import")
    report["nvidia_smi"] = shutil.which("nvidia-smi") or "not found"
    if report["nvidia_smi"] == "not found":
        missing.append("no nvidia-smi: no NVIDIA driver on this machine")
    kh = keras_home()
    report["keras_home"] = str(kh)
    report["imagenet_weights_cached"] = [
        name for name, spec in BACKBONES.items() if is_cached(spec, 224)
    ]
    report["imagenet_weights_missing"] = [
        name for name, spec in BACKBONES.items() if not is_cached(spec, 224)
    ]
    report["cifar10_cached"] = (kh / "datasets" / "cifar-10-batches-py").is_dir()
    report["cnnlab_cache"] = str(cache_root())
    report["runs_root"] = os.environ.get("CNNLAB_RUNS") or "./runs"
    report["missing_for_gpu"] = missing
    return report
