"""`engine doctor`: what this machine offers cnnlab, and what GPU use still lacks."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
from typing import Any

from engine import __version__


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _ort_probe() -> dict[str, Any] | str:
    """Open a one-node session with provider auto: which providers really load here."""
    try:
        from onnx import TensorProto, helper

        from export.providers import create_session

        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        info = create_session(model.SerializeToString(), "auto")
        return info.to_dict()
    except Exception as exc:  # doctor reports, it does not crash
        return f"probe failed: {exc}"


def diagnose() -> dict[str, Any]:
    """A JSON-able report: versions, TF devices, ORT providers, caches, GPU gaps."""
    from engine.backbones import BACKBONES
    from engine.data import cache_root
    from engine.weights import is_cached, keras_home

    report: dict[str, Any] = {
        "cnnlab": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "tf2onnx": _version("tf2onnx"),
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime-gpu") or _version("onnxruntime"),
        "onnxruntime_package": "onnxruntime-gpu" if _version("onnxruntime-gpu") else "onnxruntime",
    }
    missing: list[str] = []
    try:
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
    except (
        Exception
    ) as exc:  # report, don't crash: doctor is what people run when things are broken
        report["tf_devices"] = f"unavailable: {exc}"
        missing.append("TensorFlow does not import")
    try:
        import onnxruntime as ort

        report["ort_available_providers"] = ort.get_available_providers()
        report["ort_session_providers"] = _ort_probe()
        if "CUDAExecutionProvider" not in report["ort_available_providers"]:
            missing.append("onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    except Exception as exc:
        report["ort_available_providers"] = f"unavailable: {exc}"
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
