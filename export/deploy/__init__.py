"""The ONNX deployment lab: fp32/fp16/int8 variants of one model, measured side by side.

- `source`: which .onnx file (a run's export or any file), which data and how to feed it;
  the calibration reader over training images.
- `variants`: the registry of variants (fp32 optimized offline, fp16, int8 static QDQ, int8
  dynamic), each written atomically beside the run.
- `measure`: size, accuracy, agreement with fp32, latency and throughput per provider.
- `layer_error`: where int8 departs from fp32, node output by node output.
- `lab`: `deploy()` ties them together and records `onnx.variants` in run.json.
- `cli`: the `engine deploy` command.

Nothing here imports onnx or onnxruntime at module level.
"""
