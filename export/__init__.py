"""ONNX for cnnlab: export Keras models (tf2onnx), inspect any .onnx file, evaluate with onnxruntime.

- `export.convert`: `export(run_or_model, ...)` → ExportResult; parity with Keras; metadata.
- `export.evaluate`: `evaluate(file, data=..., provider=...)` → accuracy, latency, providers.
- `export.info`: `onnx_info(path)` → everything `engine onnx-info --json` prints.
- `export.providers`: provider choice (auto = TensorRT → CUDA → CPU) and quiet sessions.

Nothing here imports textual; TensorFlow, tf2onnx and onnxruntime are imported lazily.
"""

from __future__ import annotations
