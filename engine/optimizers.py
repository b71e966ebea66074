"""Optimizers by name: each registered callable builds a Keras optimizer for a learning rate.

Importing this module does not import TensorFlow (the builders do), so the CLI and the TUI can
list the choices cheaply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.registry import Registry

OptimizerBuilder = Callable[[float], Any]

OPTIMIZERS: Registry[OptimizerBuilder] = Registry("optimizer")


@OPTIMIZERS.register("adam")
def adam(learning_rate: float) -> Any:
    import keras

    return keras.optimizers.Adam(learning_rate=learning_rate)


@OPTIMIZERS.register("sgd")
def sgd(learning_rate: float) -> Any:
    """SGD with momentum 0.9, the usual setting for CNNs."""
    import keras

    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)


@OPTIMIZERS.register("rmsprop")
def rmsprop(learning_rate: float) -> Any:
    import keras

    return keras.optimizers.RMSprop(learning_rate=learning_rate)


def build_optimizer(name: str, learning_rate: float) -> Any:
    """The Keras optimizer registered as `name` (UnknownName lists the choices)."""
    return OPTIMIZERS.get(name)(learning_rate)
