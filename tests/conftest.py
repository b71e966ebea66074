"""Shared pytest fixtures.

TUI section (tests/test_tui_*.py): a fake engine that replays a fixed event stream, and run
folders, both built from the engine's own record and event classes (engine.records).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from engine.records import (
    BatchProgress,
    ChildPlan,
    CompareRow,
    DataInfo,
    EpochEnd,
    HistoryEntry,
    Log,
    Metrics,
    ModelInfo,
    OnnxEval,
    OnnxExport,
    OnnxParity,
    OnnxRecord,
    Params,
    Phase,
    PhaseStarted,
    PreprocessingRow,
    ProviderInfo,
    RunFinished,
    RunRecord,
    RunStarted,
)

# ---------------------------------------------------------------------------------------------
# TUI: `async def` tests (Pilot) run on a fresh asyncio loop; no async plugin is installed.
# ---------------------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
        return True
    return None


async def settle(pilot: Any, predicate: Any, timeout: float = 10.0) -> None:
    """Let the app run until `predicate()` holds (or `timeout` passes): a fixed pause is flaky on a
    loaded 2-core machine, a poll is not. The caller's own assertions then say what went wrong."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # e.g. a widget not mounted yet
            pass
        await pilot.pause(0.05)


def plain(widget: Any, width: int = 200) -> str:
    """The text a Static (or any widget) shows, whatever renderable it holds (Rich tables too)."""
    from rich.console import Console

    content = getattr(widget, "content", None)
    if content is None or isinstance(content, str):
        return str(widget.render())
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(content)
    return console.export_text()


@pytest.fixture(autouse=True)
def _tui_forms_on_demand(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """TUI tests build experiment forms on demand: the app's background warm-up after the first
    frame would only slow Pilot's idle waits (test_tui_experiments checks the warm-up itself)."""
    if request.module.__name__.startswith("test_tui_"):
        from tui.screens.experiments import ExperimentsScreen

        monkeypatch.setattr(ExperimentsScreen, "PREMOUNT_DELAY", None)


@pytest.fixture(autouse=True)
def _english_unless_asked(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Tests see English whatever the machine's locale (snapshots and assertions are in English);
    a test that wants another language asks for it (`--lang`, `lang="es"` or its own env)."""
    import tui.i18n

    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    tui.i18n.set_language("en")
    yield
    tui.i18n.set_language("en")


# ---------------------------------------------------------------------------------------------
# TUI: run folders
# ---------------------------------------------------------------------------------------------

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def make_record(
    run_id: str,
    experiment: str = "simple-cnn",
    *,
    status: str = "finished",
    test: float | None = 0.6937,
    epochs: int = 4,
    backbone: str | None = None,
    random_init: bool = False,
    parent: str | None = None,
    children: list[str] | None = None,
    table: list[CompareRow] | list[PreprocessingRow] | None = None,
    params: tuple[int, int] = (2122186, 2122186),
) -> RunRecord:
    """A run record as the engine writes it (engine.records), with deterministic numbers."""
    is_parent = table is not None
    history = [
        HistoryEntry(
            epoch=e,
            phase="train",
            loss=round(1.6 / (1 + 0.4 * e), 4),
            accuracy=round(min(0.40 + 0.06 * e, 0.97), 4),
            val_loss=round(1.4 / (1 + 0.2 * e), 4),
            val_accuracy=round(min(0.42 + 0.035 * e, 0.9), 4),
            time=3.5,
        )
        for e in range(1, epochs + 1)
    ]
    metrics = None
    if test is not None and not is_parent:
        last = history[-1]
        assert last.accuracy is not None and last.val_accuracy is not None
        metrics = Metrics(
            train_accuracy=last.accuracy,
            train_loss=last.loss,
            val_accuracy=last.val_accuracy,
            val_loss=last.val_loss,
            test_accuracy=test,
            test_loss=0.95,
            overfit_gap=round((last.accuracy - last.val_accuracy) * 100, 1),
            epochs_run=epochs,
            best_epoch=epochs,
            per_class_accuracy={
                c: round(0.47 + 0.045 * ((i * 7) % 10), 2) for i, c in enumerate(CLASSES)
            },
            confusion_matrix=[
                [(8 if i == j else (i + j) % 3) for j in range(10)] for i in range(10)
            ],
        )
    model = None
    if not is_parent:
        model = ModelInfo(
            name="transfer" if backbone else experiment.replace("-", "_"),
            backbone=backbone,
            weights=("none" if random_init else "imagenet") if backbone else None,
            random_init=random_init,
            input_size=32,
            preprocessing="mobilenet_v2" if backbone else "unit",
            preprocessing_range=[-1.0, 1.0] if backbone else [0.0, 1.0],
            head="gap-dense10" if backbone else None,
        )
    plan = []  # a parent's children: compare trains each backbone once, preprocessing twice
    for row in table or []:
        preps = ("unit", "auto") if isinstance(row, PreprocessingRow) else ("auto",)
        plan += [
            ChildPlan(
                backbone=row.backbone,
                preprocessing=prep,
                title=f"{row.backbone} ({'x/255' if prep == 'unit' else 'own preprocessing'})",
            )
            for prep in preps
        ]
    stamp = f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:{run_id[11:13]}:{run_id[13:15]}+00:00"
    return RunRecord(
        id=run_id,
        experiment=experiment,
        title={
            "simple-cnn": "Simple CNN from scratch",
            "transfer": "Transfer learning, frozen base",
        }.get(experiment, experiment),
        parent=parent,
        children=children or [],
        plan=plan,
        status=status,
        error="the engine died" if status == "failed" else None,
        created=stamp,
        updated=stamp,
        pid=1,
        config={
            "data": "synthetic",
            "epochs": 10,
            "batch_size": 64,
            "model": "transfer" if backbone else "simple_cnn",
            "backbone": backbone or "MobileNetV2",
            "weights": "none" if random_init else "imagenet",
            "backbones": [row.backbone for row in table or []],
        },
        model=model,
        data=None
        if is_parent
        else DataInfo(
            source="synthetic",
            classes=CLASSES,
            train=400,
            val=100,
            test=100,
            image_shape=[32, 32, 3],
        ),
        params=None
        if is_parent
        else Params(total=params[0], trainable=params[1], frozen=params[0] - params[1]),
        phases=[]
        if is_parent
        else [
            Phase(
                name="train",
                epochs=10,
                epochs_run=epochs,
                trainable=params[1],
                learning_rate=0.001,
                time=3.5 * epochs,
            )
        ],
        history=[] if is_parent else history,
        metrics=metrics,
        timings={"wall": 40.1, "data": 1.2, "train": 35.2, "evaluate": 1.1, "epoch_mean": 3.5},
        environment={"python": "3.11.7", "tensorflow": "2.21.0", "devices": ["CPU:0"]},
        table=list(table) if table is not None else None,
        onnx=None,
    )


def write_run(root: Path, record: RunRecord) -> Path:
    path = root / record.id
    path.mkdir(parents=True, exist_ok=True)
    (path / "run.json").write_text(json.dumps(record.to_json(), indent=1), encoding="utf-8")
    return path


def populate_runs(root: Path) -> Path:
    """A small, fixed run store: CNN, MLP, transfer (random init), a failed run, compare + preprocessing."""
    cnn = make_record("20260101-100000-simple-cnn-aaaa", test=0.6937, epochs=9)
    cnn.onnx = OnnxRecord(
        exports=[
            OnnxExport(
                path="model.onnx",
                opset=17,
                input={"dtype": "float32", "shape": ["batch", 32, 32, 3]},
                parity=OnnxParity(max_abs_diff=4.8e-07, top1_agreement=1.0, passed=True),
                size_bytes=8493502,
                nodes=21,
            )
        ],
        evals=[
            OnnxEval(
                file="model.onnx",
                accuracy=0.6931,
                keras_test_accuracy=0.6937,
                provider=ProviderInfo(
                    requested="auto",
                    used=["cpu"],
                    primary="cpu",
                    fell_back=True,
                    notes=["cuda: not used, library libcublasLt.so.12 not found"],
                ),
                latency_ms={"p50": 0.245},
                throughput={"images_per_s": 5077.0},
            )
        ],
    )
    write_run(root, cnn)
    write_run(
        root,
        make_record(
            "20260101-110000-mlp-bbbb", "mlp", test=0.512, epochs=5, params=(1707274, 1707274)
        ),
    )
    write_run(
        root,
        make_record(
            "20260101-120000-transfer-cccc",
            "transfer",
            test=0.555,
            epochs=6,
            backbone="MobileNetV2",
            random_init=True,
            params=(2270794, 12810),
        ),
    )
    write_run(
        root, make_record("20260101-130000-simple-cnn-dddd", status="failed", test=None, epochs=1)
    )
    backbones = [("ResNet50", 0.6601, 24.1), ("VGG16", 0.6371, 14.8), ("MobileNetV2", 0.2994, 2.6)]
    table = [
        CompareRow(
            rank=i + 1,
            backbone=b,
            run_id=f"20260101-14000{i}-compare-c{i}",
            test_accuracy=acc,
            params=int(p * 1e6),
            params_m=p,
            efficiency=round(acc / p, 3),
            random_init=True,
            status="finished",
        )
        for i, (b, acc, p) in enumerate(backbones)
    ]
    write_run(
        root,
        make_record(
            "20260101-140000-compare-eeee",
            "compare",
            table=table,
            test=None,
            children=[row.run_id for row in table],
        ),
    )
    prep = [
        PreprocessingRow(
            backbone="ResNet50",
            preprocessing="resnet",
            wrong_run_id="w1",
            right_run_id="r1",
            before=0.2702,
            after=0.6601,
            random_init=True,
        ),
        PreprocessingRow(
            backbone="VGG16",
            preprocessing="vgg16",
            wrong_run_id="w2",
            right_run_id="r2",
            before=0.25,
            after=0.6371,
            random_init=True,
        ),
    ]
    write_run(
        root,
        make_record("20260101-150000-preprocessing-ffff", "preprocessing", table=prep, test=None),
    )
    return root


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    """A runs root holding the fixed run store of `populate_runs`."""
    return populate_runs(tmp_path / "runs")


# ---------------------------------------------------------------------------------------------
# TUI: a fake engine replaying fixed events
# ---------------------------------------------------------------------------------------------

PAUSE = "pause"  # in a script: wait until the test calls job.resume() (or cancels)


def training_events(
    run_id: str,
    experiment: str = "simple-cnn",
    *,
    epochs: int = 2,
    steps: int = 4,
    t0: float = 1000.0,
    pause_after: int | None = None,
) -> list[Any]:
    """run_started … run_finished for one run, 2 s per batch; PAUSE after epoch `pause_after`."""
    t = t0
    out: list[Any] = [
        RunStarted(
            time=t,
            run_id=run_id,
            run_dir=f"runs/{run_id}",
            experiment=experiment,
            config={"model": "simple_cnn", "epochs": epochs},
            model=ModelInfo(name="simple_cnn"),
            data=DataInfo(
                source="synthetic",
                classes=CLASSES,
                train=400,
                val=100,
                test=100,
                image_shape=[32, 32, 3],
            ),
        ),
        PhaseStarted(time=t, run_id=run_id, phase="train", epochs=epochs, steps=steps),
        Log(time=t, run_id=run_id, level="info", message="data ready"),
    ]
    for e in range(1, epochs + 1):
        for s in range(1, steps + 1):
            t += 2.0
            out.append(
                BatchProgress(
                    time=t,
                    run_id=run_id,
                    phase="train",
                    epoch=e,
                    epochs=epochs,
                    step=s,
                    steps=steps,
                    metrics={"loss": 1.5 - 0.1 * e, "accuracy": 0.4 + 0.1 * e},
                )
            )
        out.append(
            EpochEnd(
                time=t,
                run_id=run_id,
                phase="train",
                epoch=e,
                epochs=epochs,
                metrics={
                    "loss": 1.5 - 0.2 * e,
                    "accuracy": 0.4 + 0.1 * e,
                    "val_loss": 1.4 - 0.1 * e,
                    "val_accuracy": 0.45 + 0.05 * e,
                },
                epoch_time=2.0 * steps,
            )
        )
        if pause_after == e:
            out.append(PAUSE)
    out.append(
        RunFinished(
            time=t + 1,
            run_id=run_id,
            status="finished",
            metrics=Metrics(test_accuracy=0.61, val_accuracy=0.55, overfit_gap=5.0),
            wall_time=t + 1 - t0,
        )
    )
    return out


class FakeJob:
    """Replays a script of events; honours cancel like the engine (run_finished cancelled, code 130)."""

    def __init__(self, request: Any, script: list[Any], returncode: int, tail: list[str]) -> None:
        self.request = request
        self.script = script
        self.final_code = returncode
        self.tail = tail
        self.returncode: int | None = None
        self.cancel_requested = False
        self.stopped = False
        self._resume = asyncio.Event()
        self.pid = None

    def resume(self) -> None:
        self._resume.set()

    async def events(self):  # type: ignore[no-untyped-def]
        run_id = None
        for item in self.script:
            if isinstance(item, RunStarted):
                run_id = item.run_id
            if item == PAUSE:
                await self._resume.wait()
                self._resume.clear()
                continue
            if self.cancel_requested:
                yield RunFinished(
                    run_id=run_id, status="cancelled", metrics=Metrics(), wall_time=1.0
                )
                self.returncode = 130
                return
            await asyncio.sleep(0)
            yield item
        self.returncode = self.final_code

    def cancel(self) -> None:
        self.cancel_requested = True
        self._resume.set()

    async def wait(self) -> int:
        while self.returncode is None:
            await asyncio.sleep(0.01)
        return self.returncode

    async def stop(self, timeout: float = 2.0) -> None:
        self.stopped = True
        self.cancel()
        if self.returncode is None:
            self.returncode = 130

    def stderr_tail(self) -> list[str]:
        return list(self.tail)


class FakeEngine:
    """Stands in for EngineClient: each start() replays the next (script, returncode, stderr tail)."""

    def __init__(self, *scripts: tuple[list[Any], int, list[str]]) -> None:
        self.scripts = list(scripts)
        self.requests: list[Any] = []
        self.jobs: list[FakeJob] = []
        self.data_calls: list[tuple[str, int]] = []

    def command(self, args: list[str]) -> list[str]:
        return ["python", "-m", "engine", *args]

    async def start(self, request: Any) -> FakeJob:
        script, code, tail = self.scripts.pop(0) if self.scripts else ([], 0, [])
        job = FakeJob(request, script, code, tail)
        self.requests.append(request)
        self.jobs.append(job)
        return job

    def running(self) -> list[FakeJob]:
        return [j for j in self.jobs if j.returncode is None]

    async def stop_all(self, timeout: float = 2.0) -> None:
        for job in self.running():
            await job.stop()

    async def data_summary(self, source: str, samples: int, samples_file: Path) -> dict[str, Any]:
        import numpy as np

        self.data_calls.append((source, samples))
        if source == "explode":
            raise RuntimeError("the fake engine blew up")
        if source == "broken":
            from tui.engine_client import EngineCommandError

            raise EngineCommandError(
                "unknown data source 'broken'", ["engine: error: unknown data source 'broken'"]
            )
        labels = np.repeat(np.arange(len(CLASSES)), samples)
        images = np.zeros((len(labels), 32, 32, 3), dtype=np.uint8)
        for i, label in enumerate(labels):  # one flat colour per class: deterministic pixels
            images[i, :, :] = ((label * 25) % 256, (label * 70) % 256, (255 - label * 25) % 256)
            images[i, 8:24, 8:24] = 255 - images[i, 0, 0]
        np.savez(samples_file, images=images, labels=labels.astype(np.int64))
        counts = {
            split: dict.fromkeys(CLASSES, n)
            for split, n in (("train", 40), ("val", 10), ("test", 10))
        }
        return {
            "source": source,
            "classes": CLASSES,
            "train": 400,
            "val": 100,
            "test": 100,
            "image_shape": [32, 32, 3],
            "counts": counts,
        }
