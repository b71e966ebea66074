"""A parent's children spread over processes or Ray tasks, N at a time, with its table kept right.

`run_spread` is what the parent runner calls instead of its in-process loop when the config
asks for `--parallel N` (N > 1) or `--executor ray`. It creates each child's run folder when
a slot frees up, has the executor train it (`launch`), re-reads the child's run.json, and
rewrites the parent's table and `failures` after every child, under one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from engine.records import ChildFailure, Event
from engine.runs import Run, RunStore
from engine.scale.child import ChildJob
from engine.scale.parallel import ChildOutcome, Slots, wait_all

if TYPE_CHECKING:
    from engine.comparisons import ChildPlan, TableBuilder
    from engine.config import ExperimentConfig
    from engine.events import Reporter

# launch(job, slot, emit) trains the job somewhere and returns how it ended.
Launch = Callable[[ChildJob, int, Callable[[Event], None]], ChildOutcome]


def run_spread(
    parent: Run,
    plan: list[ChildPlan],
    config: ExperimentConfig,
    *,
    store: RunStore,
    rep: Reporter,
    table: TableBuilder,
    slots: Slots,
    workers: int,
    launch: Launch,
    placement: Callable[[int], dict[str, object]],
) -> dict[ChildPlan, Run]:
    """Train every child of `plan` through `launch`, `workers` at a time; return them by plan."""
    from engine.experiments import get_experiment

    lock = threading.Lock()
    results: dict[ChildPlan, Run] = {}
    failures: list[ChildFailure] = []

    def emit(event: Event) -> None:
        with lock:  # one event at a time on the parent's stream
            rep.send(event)

    def one(child_plan: ChildPlan) -> None:
        if rep.cancel.cancelled:
            return
        slot = slots.take()
        try:
            if rep.cancel.cancelled:
                return
            child_spec = get_experiment(child_plan.experiment)
            child_cfg = child_plan.config(config)
            with lock:
                child = store.create(
                    child_spec.name,
                    title=child_plan.title,
                    config=child_cfg.to_dict(),
                    parent=parent.id,
                )
                parent.record["children"].append(child.id)
                parent.save()
            job = ChildJob(
                run_dir=str(child.path),
                experiment=child_spec.name,
                config=child_cfg.to_dict(),
                placement=placement(slot),
            )
            try:
                outcome = launch(job, slot, emit)
            except Exception as exc:  # the executor itself failed (e.g. a Ray worker died)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                outcome = ChildOutcome(-1, f"{type(exc).__name__}: {first}".strip(": "))
            child = Run.load(child.path)
            with lock:
                if outcome.failed:
                    reason = outcome.reason or "failed"
                    if child.record.get("status") == "running":  # it died before recording it
                        child.update(status="failed", error=reason, pid=None)
                        rep("error", child.id, message=reason, kind="worker")
                    failures.append(
                        ChildFailure(run_id=child.id, title=child_plan.title, reason=reason)
                    )
                results[child_plan] = child
                parent.update(table=table(config, results), failures=failures)
        finally:
            slots.give_back(slot)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="child") as pool:
        futures = [pool.submit(one, child_plan) for child_plan in plan]
        wait_all(futures)
    for future in futures:
        future.result()  # a failure of the parent's own bookkeeping is the parent's
    # plan order, whatever order they finished in
    return {p: results[p] for p in plan if p in results}
