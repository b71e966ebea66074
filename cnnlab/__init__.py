"""cnnlab's composition root: the one place that wires engine/ and export/ into the `engine` CLI.

engine/ (headless core) and export/ (ONNX) never import each other upward; this package sits above
both, so the layers stay one-way (tui → export → engine) while the CLI still offers every command.
"""

from __future__ import annotations
