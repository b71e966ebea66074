"""The parent runner: one parent run whose children each train one model, and its table.

The spec says which children to run (`spec.children(config)`) and how to tabulate them
(`spec.table`); the table is rewritten into the parent's run.json after every child. A child
that fails fails its own run, not the parent. With `--parallel N` or `--executor ray` the
children train in other processes (engine.scale); otherwise one by one here, on the parent's data.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from engine import records
from engine.comparisons import ChildPlan, TableBuilder
from engine.config import ExperimentConfig
from engine.events import Reporter
from engine.experiments import ExperimentSpec, get_experiment
from engine.runs import Run, RunStore
from engine.scale.executors import spreader
from engine.training.runners import environment_info, guarded, guarded_child, load_data_for
from engine.training.single import train_one


def run_parent(
    spec: ExperimentSpec,
    config: ExperimentConfig,
    *,
    store: RunStore,
    reporter: Reporter,
    on_run: Callable[[Run], None] | None = None,
) -> Run:
    """Train every planned child of `spec` under one parent run; return the parent."""
    if spec.children is None or spec.table is None:
        raise TypeError(f"experiment {spec.name!r} plans no children")
    table = spec.table
    plan = spec.children(config)
    rep = reporter
    planned = [records.ChildPlan.from_json(child.to_dict()) for child in plan]
    parent = store.create(spec.name, title=spec.title, config=config.to_dict(), plan=planned)
    if on_run:
        on_run(parent)
    wall0 = time.perf_counter()
    rep(
        "run_started",
        parent.id,
        run_dir=str(parent.path),
        experiment=spec.name,
        parent=None,
        config=config.to_dict(),
        model=None,
        data=None,
        plan=planned,
    )

    def body() -> None:
        env = environment_info()
        data = load_data_for(parent, config, rep)
        parent.update(data=data.summary(), environment=env, table=[])
        spread = spreader(config)
        if spread is not None:  # --parallel N or --executor ray: children in other processes
            results = spread(parent, plan, config, store=store, rep=rep, table=table)
            parent.update(table=table(config, results))
        else:
            train_in_process(parent, plan, config, data, env, store=store, rep=rep, table=table)
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

    guarded(parent, rep, body)
    return parent


def train_in_process(
    parent: Run,
    plan: list[ChildPlan],
    config: ExperimentConfig,
    data: Any,
    env: dict[str, Any],
    *,
    store: RunStore,
    rep: Reporter,
    table: TableBuilder,
) -> None:
    """Train the children one after the other in this process, on the parent's data."""
    results: dict[ChildPlan, Run] = {}
    for child_plan in plan:
        if rep.cancel.cancelled:
            break
        child_spec = get_experiment(child_plan.experiment)
        child_cfg = child_plan.config(config)
        child = store.create(
            child_spec.name,
            title=child_plan.title,
            config=child_cfg.to_dict(),
            parent=parent.id,
        )
        parent.record["children"].append(child.id)
        parent.save()
        guarded_child(
            child,
            rep,
            functools.partial(
                train_one,
                child,
                child_cfg,
                data,
                rep,
                finetune=child_spec.finetune,
                env=env,
            ),
        )
        results[child_plan] = child
        parent.update(table=table(config, results))
