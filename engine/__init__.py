"""cnnlab's headless core: data, models, experiments, training, the run store and the `engine` CLI.

Nothing here imports textual, and TensorFlow is imported lazily inside the functions that
need it, so the TUI can read registries, configs and runs without paying for TensorFlow.
"""

from __future__ import annotations

__version__ = "0.1.0"
