"""The ONNX half of `engine doctor`: onnx/onnxruntime versions and the providers that really load."""

from __future__ import annotations

from typing import Any

from engine.doctor import package_version


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


def _gpu_stack(providers: list[str]) -> tuple[dict[str, Any] | str, list[str]]:
    """CUDA, cuDNN and TensorRT: the versions onnxruntime was built for beside those found."""
    try:
        from export.gpu_stack import gpu_stack

        return gpu_stack(providers)
    except Exception as exc:  # doctor reports, it does not crash
        return f"could not check: {exc}", []


def diagnose() -> dict[str, Any]:
    """A JSON-able report: ONNX package versions, ORT providers, and what GPU inference lacks."""
    gpu_wheel = package_version("onnxruntime-gpu")
    report: dict[str, Any] = {
        "tf2onnx": package_version("tf2onnx"),
        "onnx": package_version("onnx"),
        "onnxruntime": gpu_wheel or package_version("onnxruntime"),
        "onnxruntime_package": "onnxruntime-gpu" if gpu_wheel else "onnxruntime",
    }
    missing: list[str] = []
    try:
        import onnxruntime as ort

        report["ort_available_providers"] = ort.get_available_providers()
        report["ort_session_providers"] = _ort_probe()
        if "CUDAExecutionProvider" not in report["ort_available_providers"]:
            missing.append("onnxruntime has no CUDA provider (install onnxruntime-gpu)")
        report["gpu_libraries"], lacking = _gpu_stack(report["ort_available_providers"])
        missing.extend(lacking)
    except Exception as exc:  # report, don't crash: doctor is what people run when things break
        report["ort_available_providers"] = f"unavailable: {exc}"
    report["missing_for_gpu"] = missing
    return report
