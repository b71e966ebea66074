"""`--executor ray [--address ADDR]`: each child of a parent as a task on an existing Ray cluster.

A task (one GPU when the cluster has GPUs, else one CPU) trains its child exactly as a local
`--parallel` child does, in a `python -m engine.scale.child` process on the worker. Its events
go into a small per-child actor (`EventRelay`) that the head drains and re-emits live; a cancel
of the parent is set on the same actor and the task forwards it to its child as SIGINT.

Run folders: the head writes a marker file into its runs folder; a worker that sees the marker
(shared storage: NFS, a cluster file system) trains straight into the head's run folder.
Otherwise the worker trains in a temporary folder and ships the finished folder back as tar
bytes, which the head unpacks into its run folder. `CNNLAB_RAY_SHIP_BACK=1` forces shipping.

Ray is an optional extra (`pip install 'cnnlab[cluster]'`), imported only here.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import UsageError, first_line
from engine.records import Event, event_from_json

if TYPE_CHECKING:
    from engine.comparisons import ChildPlan, TableBuilder
    from engine.config import ExperimentConfig
    from engine.events import Reporter
    from engine.runs import Run, RunStore

SHIP_BACK_ENV = "CNNLAB_RAY_SHIP_BACK"
MARKER = ".cnnlab-runs-marker"
DRAIN_SECONDS = 0.2
CONNECT_TIMEOUT = 5.0


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--executor ray needs Ray: pip install 'cnnlab[cluster]' (or 'ray[default]')"
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """A quick TCP probe of host:port, so an unreachable cluster is one line, not a long hang."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r}: expected host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise UsageError(f"cannot reach the Ray cluster at {address}: {exc}") from None


def connect(address: str | None) -> None:
    """Join the Ray cluster at `address` (None: `auto`, the cluster `ray start` left on this
    machine or $RAY_ADDRESS); UsageError in one line when there is none to join."""
    ray = _ray()
    if ray.is_initialized():
        return
    address = address or None  # an empty form field: auto
    if address not in (None, "auto", "local"):
        _check_reachable(str(address))
    try:
        ray.init(
            address=address or "auto",
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "auto"
        raise UsageError(f"cannot reach the Ray cluster at {where}: {first_line(exc)}") from None


# ---------------------------------------------------------------------------- on the worker
class EventRelay:
    """Events of one child on their way to the head, and the head's cancel on its way back."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._cancel = False

    def push(self, line: str) -> None:
        self._lines.append(line)

    def pull(self) -> list[str]:
        lines, self._lines = self._lines, []
        return lines

    def cancel(self) -> None:
        self._cancel = True

    def cancelled(self) -> bool:
        return self._cancel


def train_on_worker(
    job_json: str, initial_record: str, marker: str, token: str, ship_back: bool, relay: Any
) -> dict[str, Any]:
    """The Ray task: train one child here; return how it ended (and its folder as tar bytes
    when the head's runs folder is not visible from this machine)."""
    import subprocess

    from engine.scale.child import ChildJob, command
    from engine.scale.parallel import death_reason, stream_child

    ray = _ray()
    job = ChildJob.from_json(job_json)
    job.placement["worker_pid"] = os.getpid()
    job.placement["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")  # Ray's GPU
    head_dir = job.run_dir
    marker_path = Path(marker)
    shared = not ship_back and marker_path.is_file() and marker_path.read_text() == token
    job.placement["shared_storage"] = shared
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if not shared:
        tmp = tempfile.TemporaryDirectory(prefix="cnnlab-ray-")
        local = Path(tmp.name) / Path(head_dir).name
        local.mkdir()
        (local / "run.json").write_text(initial_record)
        job.run_dir = str(local)
    head_text, local_text = json.dumps(head_dir)[1:-1], json.dumps(job.run_dir)[1:-1]
    last_cancel_check = [0.0, False]

    def emit(event: Event) -> None:
        # paths as the head will see them once the folder is shipped back
        ray.get(relay.push.remote(json.dumps(event.to_json()).replace(local_text, head_text)))

    def cancelled() -> bool:
        now = time.monotonic()
        if now - last_cancel_check[0] > 0.5:
            last_cancel_check[:] = [now, bool(ray.get(relay.cancelled.remote()))]
        return bool(last_cancel_check[1])

    try:
        with open(Path(job.run_dir) / "worker.log", "wb") as log:
            proc = subprocess.Popen(
                command(job), stdout=subprocess.PIPE, stderr=log, start_new_session=True
            )
            returncode, error = stream_child(proc, emit, cancelled)
        reason = None if returncode in (0, 130) else error or f"child {death_reason(returncode)}"
        tar = None
        if not shared:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
                archive.add(job.run_dir, arcname=".")
            tar = buffer.getvalue()
        return {
            "returncode": returncode,
            "reason": reason,
            "host": socket.gethostname(),
            "shared": shared,
            "tar": tar,
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


# ---------------------------------------------------------------------------- on the head
def run_on_ray(
    parent: Run,
    plan: list[ChildPlan],
    config: ExperimentConfig,
    *,
    store: RunStore,
    rep: Reporter,
    table: TableBuilder,
) -> dict[ChildPlan, Run]:
    """Every child as a Ray task (all submitted; the cluster's resources decide how many run)."""
    from engine.scale.child import ChildJob
    from engine.scale.parallel import ChildOutcome, Slots
    from engine.scale.spread import run_spread

    ray = _ray()
    connect(config.address)
    gpus = float(ray.cluster_resources().get("GPU", 0))
    resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    task = ray.remote(max_retries=0, **resources)(train_on_worker)
    relay_actor = ray.remote(num_cpus=0)(EventRelay)
    token = secrets.token_hex(8)
    marker = store.root.resolve() / MARKER
    marker.write_text(token)
    ship_back = os.environ.get(SHIP_BACK_ENV, "") not in ("", "0")
    rep.log(
        f"children as Ray tasks ({', '.join(f'{k} 1' for k in resources)} each) on a cluster "
        f"of {ray.cluster_resources().get('CPU', 0):g} CPUs and {gpus:g} GPUs",
        parent.id,
    )

    def launch(job: ChildJob, slot: int, emit: Callable[[Event], None]) -> ChildOutcome:
        relay = relay_actor.remote()
        head_dir = Path(job.run_dir)
        initial = (head_dir / "run.json").read_text()
        ref = task.remote(job.to_json(), initial, str(marker), token, ship_back, relay)
        told = False

        def drain() -> None:
            for line in ray.get(relay.pull.remote()):
                try:
                    emit(event_from_json(json.loads(line)))
                except Exception:  # a line this version cannot read: skip it, keep the rest
                    continue

        try:
            while True:
                ready, _ = ray.wait([ref], timeout=DRAIN_SECONDS)
                drain()
                if ready:
                    break
                if rep.cancel.cancelled and not told:
                    ray.get(relay.cancel.remote())
                    told = True
            result: dict[str, Any] = ray.get(ref)
            drain()
        finally:
            ray.kill(relay)
        if result["tar"] is not None:
            _unpack(result["tar"], head_dir)
        code = int(result["returncode"])
        reason = result["reason"]
        return ChildOutcome(code, f"on {result['host']}: {reason}" if reason else None)

    return run_spread(
        parent,
        plan,
        config,
        store=store,
        rep=rep,
        table=table,
        slots=Slots(len(plan), []),
        workers=max(1, len(plan)),
        placement=lambda slot: {"executor": "ray"},
        launch=launch,
    )


def _unpack(tar: bytes, run_dir: Path) -> None:
    """Unpack a shipped run folder over the head's copy of it (files from the worker win)."""
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:gz") as archive:
        archive.extractall(run_dir, filter="data")
