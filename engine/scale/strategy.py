"""`--strategy`: which devices one run trains on, and the tf.distribute scope it trains in.

Batch semantics: `batch_size` is the *global* batch. Under MirroredStrategy each step splits it
across the replicas (64 over 2 GPUs = 32 per GPU) and the gradients are summed across them, so
the maths of a step do not depend on the number of GPUs (raise the batch, and perhaps the
learning rate, to keep each GPU busy).

`CNNLAB_LOGICAL_CPUS=N` splits the CPU into N logical devices when TensorFlow loads; mirrored
then runs over them (no GPU needed), which is how the real MirroredStrategy path is tested.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from engine.errors import UsageError
from engine.records import Distribution

STRATEGIES = ("auto", "none", "mirrored")
LOGICAL_CPUS_ENV = "CNNLAB_LOGICAL_CPUS"


def split_cpu_if_asked() -> None:
    """Split the CPU into `$CNNLAB_LOGICAL_CPUS` logical devices (before TensorFlow initialises)."""
    text = os.environ.get(LOGICAL_CPUS_ENV, "").strip()
    if not text:
        return
    try:
        count = int(text)
    except ValueError:
        raise UsageError(f"{LOGICAL_CPUS_ENV}={text!r} is not a number of devices") from None
    if count < 2:
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:  # TensorFlow already initialised its devices: keep what it has
        pass


def visible_devices() -> dict[str, list[str]]:
    """The logical devices TensorFlow trains on, by type ({'GPU': [...], 'CPU': [...]})."""
    import tensorflow as tf

    return {kind: [d.name for d in tf.config.list_logical_devices(kind)] for kind in ("GPU", "CPU")}


def mirrored_devices(devices: dict[str, list[str]]) -> list[str]:
    """The devices MirroredStrategy spans: every GPU, else a CPU split into logical devices."""
    if devices["GPU"]:
        return devices["GPU"]
    if len(devices["CPU"]) > 1:
        return devices["CPU"]
    return []


def choose(strategy: str, devices: dict[str, list[str]]) -> tuple[str, list[str]]:
    """(strategy used, its devices) for the asked `strategy`; UsageError when it cannot run.

    auto: mirrored over 2+ GPUs, else the default (one device). none: the default device.
    """
    if strategy not in STRATEGIES:
        raise UsageError(f"strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    spread = mirrored_devices(devices)
    if strategy == "mirrored":
        if not spread:
            raise UsageError(
                "--strategy mirrored: no GPU is visible to TensorFlow (and the CPU is not split "
                f"with {LOGICAL_CPUS_ENV}); use --strategy none or auto"
            )
        return "mirrored", spread
    if strategy == "auto" and len(devices["GPU"]) > 1:
        return "mirrored", devices["GPU"]
    default = devices["GPU"][:1] or devices["CPU"][:1]
    return "none", default


@contextlib.contextmanager
def distribution_scope(strategy: str) -> Iterator[Distribution]:
    """Enter the tf.distribute scope for `strategy`; yield what run.json records about it.

    Models must be built *and* compiled inside this scope (their variables are mirrored)."""
    import tensorflow as tf

    used, devices = choose(strategy, visible_devices())
    if used == "mirrored":
        dist: Any = tf.distribute.MirroredStrategy(devices=devices)
        replicas = int(dist.num_replicas_in_sync)
        with dist.scope():
            yield Distribution(strategy=used, replicas=replicas, devices=devices)
        return
    yield Distribution(strategy=used, replicas=1, devices=devices)


def check_strategy(strategy: str) -> None:
    """Refuse a `strategy` this machine cannot run, before any run folder is made."""
    choose(strategy, visible_devices())
