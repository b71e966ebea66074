"""Import TensorFlow without its C++ start-up chatter on the user's screen.

TensorFlow 2.21 prints absl/oneDNN/CUDA notices straight to file descriptor 2 while it loads and
first looks for devices, ignoring TF_CPP_MIN_LOG_LEVEL. We capture fd 2 during that window and
show what was captured only with CNNLAB_DEBUG=1 (or when the import fails).
"""

from __future__ import annotations

import os
import sys

from engine.output import capture_fd2

captured_noise = ""


def load_tensorflow() -> None:
    """Import TensorFlow (and Keras) once, quietly."""
    global captured_noise
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with capture_fd2() as out:
            import keras  # noqa: F401
            import tensorflow as tf

            tf.config.list_physical_devices()
            from engine.scale.strategy import split_cpu_if_asked

            split_cpu_if_asked()  # before TensorFlow initialises its devices
    except BaseException:
        sys.stderr.write("".join(out))
        raise
    captured_noise = "".join(out)
    if os.environ.get("CNNLAB_DEBUG"):
        sys.stderr.write(captured_noise)
