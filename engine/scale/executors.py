"""Which executor trains a parent's children: in process (the default), N local processes
(`--parallel N`), or Ray tasks (`--executor ray`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.comparisons import ChildPlan, TableBuilder
    from engine.config import ExperimentConfig
    from engine.events import Reporter
    from engine.runs import Run, RunStore


class Spreader(Protocol):
    def __call__(
        self,
        parent: Run,
        plan: list[ChildPlan],
        config: ExperimentConfig,
        *,
        store: RunStore,
        rep: Reporter,
        table: TableBuilder,
    ) -> dict[ChildPlan, Run]: ...


def preflight(config: ExperimentConfig) -> None:
    """Refuse, before any run folder is made, what cannot run: a strategy without its devices,
    a Ray cluster that cannot be reached (UsageError, one line)."""
    if config.executor == "ray":  # the workers' devices are checked by each child
        from engine.scale.ray_executor import connect

        connect(config.address)
        return
    from engine.scale.strategy import check_strategy

    check_strategy(config.strategy)


def spreader(config: ExperimentConfig) -> Spreader | None:
    """The executor for `config`'s children, or None to train them one by one in this process."""
    if config.executor == "ray":
        from engine.scale.ray_executor import run_on_ray

        return run_on_ray
    from engine.scale.parallel import gpu_ids, resolve_parallel

    if resolve_parallel(config.parallel, len(gpu_ids())) == 1:
        return None
    return run_in_processes


def run_in_processes(
    parent: Run,
    plan: list[ChildPlan],
    config: ExperimentConfig,
    *,
    store: RunStore,
    rep: Reporter,
    table: TableBuilder,
) -> dict[ChildPlan, Run]:
    """Children as local processes, `--parallel` at a time, one GPU each (when there are GPUs)."""
    from engine.scale.parallel import Slots, gpu_ids, resolve_parallel, run_child_process
    from engine.scale.spread import run_spread

    _parent_leaves_gpu_memory()
    gpus = gpu_ids()
    workers = resolve_parallel(config.parallel, len(gpus))
    slots = Slots(workers, gpus)
    rep.log(
        f"children in {workers} processes at once"
        + (f" on GPUs {', '.join(gpus)}" if gpus else " on the CPU"),
        parent.id,
    )

    def placement(slot: int) -> dict[str, Any]:
        gpu = slots.gpu(slot)
        return {"executor": "process", "cuda_visible_devices": gpu}

    return run_spread(
        parent,
        plan,
        config,
        store=store,
        rep=rep,
        table=table,
        slots=slots,
        workers=workers,
        placement=placement,
        launch=lambda job, slot, emit: run_child_process(
            job, gpu=slots.gpu(slot), emit=emit, cancel=rep.cancel
        ),
    )


def _parent_leaves_gpu_memory() -> None:
    """The parent trains nothing itself: let TensorFlow take GPU memory only as it needs it, so
    the children get the GPUs (possible only before TensorFlow initialises them)."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
