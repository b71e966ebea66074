"""Running experiments: `run_experiment` looks the experiment up and calls its spec's runner.

`run_single` trains one model in one run folder; the parent runner (engine.training.parents)
trains one child per planned entry. Failures are recorded in run.json before they propagate.
"""

from __future__ import annotations

import platform
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import __version__
from engine.config import ExperimentConfig, check
from engine.errors import CnnlabError
from engine.events import Reporter
from engine.experiments import get_experiment
from engine.runs import Run, RunStore
from engine.training.single import train_one
from engine.training.trainer import Cancelled

if TYPE_CHECKING:
    from engine.experiments import ExperimentSpec


# ---------------------------------------------------------------------------- environment
def environment_info() -> dict[str, Any]:
    """Versions and devices, recorded with every run."""
    import keras
    import tensorflow as tf

    info: dict[str, Any] = {
        "cnnlab": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "devices": [
            d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices()
        ],
        "gpu": bool(tf.config.list_physical_devices("GPU")),
    }
    return info


# ---------------------------------------------------------------------------- experiments
def load_data(config: ExperimentConfig, rep: Reporter, run_id: str | None = None) -> Any:
    from engine.data import dataset_for

    def progress(stage: str, done: int, total: int) -> None:
        rep.batch(run_id or "", step=done, steps=total, phase="data", epoch=1, epochs=1, metrics={})

    return dataset_for(config, progress=progress)


def run_experiment(
    name: str,
    config: ExperimentConfig,
    *,
    store: RunStore,
    reporter: Reporter,
    on_run: Callable[[Run], None] | None = None,
) -> Run:
    """Run a registered experiment; return its (top-level) run. Failures are recorded in run.json."""
    spec = get_experiment(name)
    check(config)
    from engine.scale.executors import preflight

    preflight(config)
    return spec.run(config, store=store, reporter=reporter, on_run=on_run)


def run_single(
    spec: ExperimentSpec,
    config: ExperimentConfig,
    *,
    store: RunStore,
    reporter: Reporter,
    on_run: Callable[[Run], None] | None = None,
) -> Run:
    """One run that trains one model (with the spec's phases)."""
    run = store.create(spec.name, title=spec.title, config=config.to_dict())
    if on_run:
        on_run(run)
    train_in(run, spec, config, reporter)
    return run


def train_in(run: Run, spec: ExperimentSpec, config: ExperimentConfig, reporter: Reporter) -> None:
    """Load the data and train `spec`'s model into the already created `run` (in this process,
    or in a child process of a parent), marking the run failed on any error."""
    guarded(
        run,
        reporter,
        lambda: train_one(
            run,
            config,
            load_data_for(run, config, reporter),
            reporter,
            finetune=spec.finetune,
            env=environment_info(),
        ),
    )


def load_data_for(run: Run, config: ExperimentConfig, rep: Reporter) -> Any:
    t0 = time.perf_counter()
    data = load_data(config, rep, run.id)
    run.record["timings"]["data"] = round(time.perf_counter() - t0, 3)
    return data


def guarded(run: Run, rep: Reporter, body: Callable[[], None]) -> None:
    """Run `body`; on any failure mark the run failed (keeping what was saved) and re-raise."""
    try:
        body()
    except Cancelled:
        run.update(status="cancelled", pid=None)
        rep(
            "run_finished",
            run.id,
            status="cancelled",
            metrics=run.record.get("metrics"),
            wall_time=0.0,
        )
    except CnnlabError as exc:
        run.update(status="failed", error=str(exc), pid=None)
        rep(
            "error",
            run.id,
            message=str(exc),
            kind=type(exc).__name__.replace("Error", "").lower() or "error",
        )
        raise
    except BaseException as exc:
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        (run.path / "error.log").write_text(traceback.format_exc())
        run.update(status="failed", error=message, pid=None)
        rep("error", run.id, message=message, kind="internal")
        raise


def guarded_child(child: Run, rep: Reporter, body: Callable[[], None]) -> None:
    """A failed backbone fails its own run, not the whole comparison."""
    try:
        guarded(child, rep, body)
    except Exception:  # recorded in the child's run.json (and error.log) by guarded
        pass
