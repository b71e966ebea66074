"""ONNX for cnnlab: export Keras models (tf2onnx), inspect any .onnx file, evaluate with onnxruntime.

- `export.convert`: `export(run_or_model, ...)` → ExportResult; parity with Keras; metadata.
- `export.evaluate`: `evaluate(file, data=..., provider=...)` → accuracy, latency, providers.
- `export.onnx_analysis`: `analyze_onnx(path, dims=...)`, the one analysis of an .onnx file
  (shapes, weights stored/generated, MACs per sample); `export.onnx_file` loads files safely,
  `export.onnx_graph` reads types, shapes and attributes, `export.onnx_macs` holds the MAC
  counters.
- `export.info`: `onnx_info(path)` → everything `engine onnx-info --json` prints (a view).
- `export.onnx_layers`: `summarize_onnx(path)` → the layer table `engine inspect` and the
  Layers pane show (a view), and the node explainers.
- `export.inspect_cli`: `engine inspect`, `filters`, `activations`, `preprocess-stats`.
- `export.providers`: provider choice (auto = TensorRT → CUDA → CPU) and quiet sessions.

Nothing here imports textual; TensorFlow, tf2onnx and onnxruntime are imported lazily.
"""

from __future__ import annotations
