"""Experiment runners: a single run, and a parent run whose children each train one model.

`run_experiment` is the entry point; it returns the top-level `Run` (a parent run for
`compare` and `preprocessing`). Failures are recorded in run.json before they propagate.
"""

from __future__ import annotations

import functools
import platform
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from engine import __version__
from engine.backbones import get_backbone
from engine.config import ExperimentConfig, check
from engine.errors import CnnlabError, UsageError
from engine.events import Reporter
from engine.experiments import get_experiment
from engine.runs import Run, RunStore
from engine.training.single import train_one
from engine.training.trainer import Cancelled


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
    from engine.data import load_dataset

    def progress(stage: str, done: int, total: int) -> None:
        rep.batch(run_id or "", step=done, steps=total, phase="data", epoch=1, epochs=1, metrics={})

    return load_dataset(
        config.data,
        subset=config.subset,
        resize=config.resize,
        val_split=config.val_split,
        seed=config.seed,
        progress=progress,
    )


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
    if name in ("compare", "preprocessing"):
        return _run_parent(name, spec.title, config, store, reporter, on_run)
    run = store.create(name, title=spec.title, config=config.to_dict())
    if on_run:
        on_run(run)
    _guarded(
        run,
        reporter,
        lambda: train_one(
            run,
            config,
            _load_for(run, config, reporter),
            reporter,
            finetune=name == "finetune",
            env=environment_info(),
        ),
    )
    return run


def _load_for(run: Run, config: ExperimentConfig, rep: Reporter) -> Any:
    t0 = time.perf_counter()
    data = load_data(config, rep, run.id)
    run.record["timings"]["data"] = round(time.perf_counter() - t0, 3)
    return data


def _guarded(run: Run, rep: Reporter, body: Callable[[], None]) -> None:
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


def _run_parent(
    name: str,
    title: str,
    config: ExperimentConfig,
    store: RunStore,
    rep: Reporter,
    on_run: Callable[[Run], None] | None,
) -> Run:
    backbones = [get_backbone(b).name for b in (config.backbones or [config.backbone])]
    if not backbones:
        raise UsageError("name at least one backbone")
    parent = store.create(name, title=title, config=config.to_dict())
    if on_run:
        on_run(parent)
    wall0 = time.perf_counter()
    rep(
        "run_started",
        parent.id,
        run_dir=str(parent.path),
        experiment=name,
        parent=None,
        config=config.to_dict(),
        model=None,
        data=None,
    )

    def body() -> None:
        env = environment_info()
        data = _load_for(parent, config, rep)
        parent.update(data=data.summary(), environment=env, table=[])
        plan: list[tuple[str, str]] = []
        for b in backbones:
            if name == "preprocessing":
                plan += [(b, "unit"), (b, "auto")]
            else:
                plan.append((b, "auto"))
        results: dict[tuple[str, str], Run] = {}
        for backbone, prep in plan:
            if rep.cancel.cancelled:
                break
            child_cfg = config.replace(
                model="transfer", backbone=backbone, preprocessing=prep, backbones=[]
            )
            label = "x/255" if prep == "unit" else "own preprocessing"
            child = store.create(
                "transfer",
                title=f"{backbone} ({label})",
                config=child_cfg.to_dict(),
                parent=parent.id,
            )
            parent.record["children"].append(child.id)
            parent.save()
            _guarded_child(
                child,
                rep,
                functools.partial(train_one, child, child_cfg, data, rep, finetune=False, env=env),
            )
            results[(backbone, prep)] = child
            parent.update(table=_table(name, results, backbones))
        status = "cancelled" if rep.cancel.cancelled else "finished"
        parent.update(
            status=status,
            pid=None,
            timings={**parent.record["timings"], "wall": round(time.perf_counter() - wall0, 3)},
        )
        rep(
            "run_finished",
            parent.id,
            status=status,
            metrics=None,
            wall_time=round(time.perf_counter() - wall0, 3),
        )

    _guarded(parent, rep, body)
    return parent


def _guarded_child(child: Run, rep: Reporter, body: Callable[[], None]) -> None:
    """A failed backbone fails its own run, not the whole comparison."""
    try:
        _guarded(child, rep, body)
    except Exception:  # recorded in the child's run.json (and error.log) by _guarded
        pass


def _table(
    name: str, results: dict[tuple[str, str], Run], order: list[str]
) -> list[dict[str, Any]]:
    def acc(r: Run | None) -> float | None:
        if r is None or not r.record.get("metrics"):
            return None
        v = r.record["metrics"].get("test_accuracy")
        return float(v) if v is not None else None

    rows: list[dict[str, Any]] = []
    if name == "compare":
        for b in order:
            r = results.get((b, "auto"))
            if r is None:
                continue
            params = (r.record.get("params") or {}).get("total")
            a = acc(r)
            pm = params / 1e6 if params else None
            rows.append(
                {
                    "backbone": b,
                    "run_id": r.id,
                    "test_accuracy": a,
                    "params": params,
                    "params_m": round(pm, 2) if pm else None,
                    "efficiency": round(a / pm, 6) if a is not None and pm else None,
                    "random_init": bool((r.record.get("model") or {}).get("random_init")),
                    "status": r.status,
                }
            )
        rows.sort(
            key=lambda row: -(row["test_accuracy"] if row["test_accuracy"] is not None else -1)
        )
        for i, row in enumerate(rows, start=1):
            row["rank"] = i
    else:
        for b in order:
            wrong, right = results.get((b, "unit")), results.get((b, "auto"))
            if wrong is None and right is None:
                continue
            some = right or wrong
            assert some is not None
            rows.append(
                {
                    "backbone": b,
                    "preprocessing": get_backbone(b).preprocessing,
                    "wrong_run_id": wrong.id if wrong else None,
                    "right_run_id": right.id if right else None,
                    "before": acc(wrong),
                    "after": acc(right),
                    "random_init": bool((some.record.get("model") or {}).get("random_init")),
                }
            )
    return rows
