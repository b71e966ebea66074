"""Engine benchmark on the real CIFAR-10 JPEG copy (../shared/data), round-robin, as ratios.

Every round runs each contender once, in turn, so a change in machine load hits all of them
alike; every per-round figure is printed, then the spread.

1. Feature extraction of frozen MobileNetV2 (weights none) over all 60,000 images, in images/s:
   plain Keras `predict` at batch 256, the engine's Keras path and the engine's onnxruntime path
   (the engine's figures include measuring the batch, and for onnxruntime the export and the
   parity check: a fresh feature cache every run).
2. Frozen-base training, 10 epochs at batch 64: cached features (extraction + head) with each
   backend against end-to-end frozen training (target: at least 10× every round; goal 12×).
3. Simple CNN: the engine's epoch time over a plain `model.fit` on the same data, the two fits
   taking turns in slices of 2 s, every epoch-end cost counted for both (see CnnBench; target:
   no slower, ratio at most 1.00 every round). Only this part:
   `--skip-transfer --skip-assignment --rounds 3`.

Usage: .venv/bin/python bench/engine_bench.py [--rounds N] [--e2e-epochs N] [--skip-cnn] ...
Not a test: a round takes several minutes on 2 cores. `--e2e-epochs 2` times end-to-end frozen
training on 2 epochs and scales it to `--transfer-epochs` (said so in the output).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = f"folder:{ROOT.parent / 'shared' / 'data' / 'cifar10-jpeg.tar.gz'}"


def say(text: str) -> None:
    print(text, flush=True)


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    if not values:
        return "-"
    shown = ", ".join(fmt.format(v) for v in values)
    return (
        f"[{shown}]  min {fmt.format(min(values))}  median {fmt.format(statistics.median(values))}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--rounds", type=int, default=3, help="round-robin rounds")
    ap.add_argument("--transfer-epochs", type=int, default=10)
    ap.add_argument(
        "--e2e-epochs",
        type=int,
        default=None,
        help="epochs of the end-to-end frozen run (default: --transfer-epochs); scaled to it",
    )
    ap.add_argument("--plain-epochs", type=int, default=4, help="epochs per simple-CNN fit")
    ap.add_argument(
        "--epochs", type=int, default=10, help="epochs of the assignment's simple-CNN run"
    )
    ap.add_argument(
        "--skip-assignment", action="store_true", help="skip the assignment's simple-CNN run"
    )
    ap.add_argument(
        "--parity-tolerance",
        type=float,
        default=None,
        help="onnxruntime parity tolerance for this benchmark (default: the engine's 1e-4)",
    )
    ap.add_argument("--skip-cnn", action="store_true")
    ap.add_argument("--skip-transfer", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # One cache for the whole benchmark: the decoded images are read once; the feature cache
    # (arrays and the exported backbone) is emptied before each cached run so extraction counts.
    cache = Path(tempfile.mkdtemp(prefix="cnnlab-bench-cache-"))
    os.environ["CNNLAB_CACHE"] = str(cache)

    from engine.data import load_dataset
    from engine.runs import RunStore

    runs = RunStore(Path(tempfile.mkdtemp(prefix="cnnlab-bench-runs-")))
    t0 = time.perf_counter()
    data = load_dataset(args.data)
    say(
        f"data: {args.data}  train {len(data.x_train)}  val {len(data.x_val)}  "
        f"test {len(data.x_test)}  (load {time.perf_counter() - t0:.1f} s)"
    )
    if args.parity_tolerance is not None:
        from engine.training import ort_features

        say(
            f"NOTE: onnxruntime parity tolerance set to {args.parity_tolerance:g} for this "
            f"benchmark (the engine's is {ort_features.PARITY_TOLERANCE:g})"
        )
        ort_features.PARITY_TOLERANCE = args.parity_tolerance
    transfer = None if args.skip_transfer else TransferBench(args, data, runs, cache)
    cnn = None if args.skip_cnn else CnnBench(args, data, runs)
    if cnn is not None and not args.skip_assignment:
        cnn.assignment()
    for r in range(1, args.rounds + 1):
        say(f"\n== round {r} of {args.rounds} ==")
        if transfer is not None:
            transfer.round()
        if cnn is not None:
            cnn.round()
    say("\n== summary (every round; min and median) ==")
    if transfer is not None:
        transfer.summary()
    if cnn is not None:
        cnn.summary()


class TransferBench:
    """Extraction throughput and cached-vs-end-to-end frozen training, one round at a time."""

    def __init__(self, args: Any, data: Any, runs: Any, cache: Path) -> None:
        import numpy as np

        from engine.models import build_transfer
        from engine.preprocessing import get_preprocessing

        self.args, self.data, self.runs, self.cache = args, data, runs, cache
        self.e2e_epochs = args.e2e_epochs or args.transfer_epochs
        prep = get_preprocessing("mobilenet_v2")
        self.images = prep.apply(np.concatenate([data.x_train, data.x_val, data.x_test]))
        self.plain_model = build_transfer("MobileNetV2", weights="none").features
        self.plain_model.predict(self.images[:256], batch_size=256, verbose=0)  # trace once
        self.rates: dict[str, list[float]] = {"plain": [], "keras": [], "onnxruntime": []}
        self.ratios: dict[str, list[float]] = {
            "keras": [],
            "onnxruntime": [],
            "onnxruntime, export excluded": [],
        }
        self.e2e: list[float] = []

    def run(self, **settings: Any) -> Any:
        from engine.batching import forget_choices
        from engine.events import ListSink, Reporter
        from engine.experiments import get_experiment
        from engine.training import run_experiment

        # Each engine run is its own process in real use: it measures its batches afresh.
        forget_choices()
        common = dict(data=self.args.data, weights="none", early_stopping=False)
        cfg = get_experiment("transfer").config(**{**common, **settings})
        run = run_experiment("transfer", cfg, store=self.runs, reporter=Reporter(ListSink()))
        if run.record["status"] != "finished":
            raise SystemExit(f"run {run.id} {run.record['status']}: {run.record.get('error')}")
        return run

    def round(self) -> None:
        n = len(self.images)
        t0 = time.perf_counter()
        self.plain_model.predict(self.images, batch_size=256, verbose=0)
        plain = n / (time.perf_counter() - t0)
        self.rates["plain"].append(plain)
        say(f"extraction, plain Keras predict at batch 256: {plain:,.0f} img/s")
        cached: dict[str, float] = {}
        export = 0.0
        for backend in ("keras", "onnxruntime"):
            shutil.rmtree(self.cache / "features", ignore_errors=True)
            run = self.run(
                feature_cache=True, feature_backend=backend, epochs=self.args.transfer_epochs
            )
            t = run.record["timings"]
            feats = run.record.get("features") or {}
            rate = n / t["features"]
            self.rates[backend].append(rate)
            cached[backend] = t["features"] + t["train"]
            extra = ""
            if backend == "onnxruntime":
                export = float(t.get("features_export", 0.0))
                extra = (
                    f", export {t.get('features_export', 0):.1f} s, parity "
                    f"{feats.get('parity_max_abs', float('nan')):.1e}"
                )
            say(
                f"extraction, engine {backend}: {rate:,.0f} img/s ({t['features']:.1f} s for "
                f"{n} images; used {feats.get('backend')}, batch {feats.get('batch')} of "
                f"{feats.get('batches_tried')} img/s{extra}"
                f"{'; WARNING ' + feats['warning'] if feats.get('warning') else ''})"
            )
            say(
                f"  cached frozen training ({backend}): extraction {t['features']:.1f} s + head "
                f"{t['train']:.1f} s = {cached[backend]:.1f} s; test acc "
                f"{run.record['metrics']['test_accuracy']:.2%}"
            )
        run = self.run(feature_cache=False, epochs=self.e2e_epochs)
        e2e = run.record["timings"]["train"] * self.args.transfer_epochs / self.e2e_epochs
        self.e2e.append(e2e)
        scaled = (
            f" (measured {run.record['timings']['train']:.1f} s on {self.e2e_epochs} epochs, "
            f"scaled to {self.args.transfer_epochs})"
            if self.e2e_epochs != self.args.transfer_epochs
            else ""
        )
        say(f"end-to-end frozen training: {e2e:.1f} s{scaled}")
        # The export is a one-off per backbone and weights (kept in the cache): shown apart.
        cached["onnxruntime, export excluded"] = cached["onnxruntime"] - export
        for backend, total in cached.items():
            self.ratios[backend].append(e2e / total)
            say(
                f"RATIO end-to-end / cached ({backend}) = {e2e:.1f} / {total:.1f} = "
                f"{e2e / total:.2f}x   (target >= 10x, goal 12x)"
            )

    def summary(self) -> None:
        say(f"frozen MobileNetV2 (weights none), {self.args.transfer_epochs} epochs, batch 64:")
        say(
            f"  extraction img/s, plain Keras predict @256: {spread(self.rates['plain'], '{:,.0f}')}"
        )
        say(
            f"  extraction img/s, engine Keras path:        {spread(self.rates['keras'], '{:,.0f}')}"
        )
        say(
            f"  extraction img/s, engine onnxruntime path:  "
            f"{spread(self.rates['onnxruntime'], '{:,.0f}')}"
        )
        say(f"  end-to-end frozen training s:               {spread(self.e2e, '{:.1f}')}")
        for backend, values in self.ratios.items():
            ok = "met" if values and min(values) >= 10 else "MISSED"
            say(
                f"  RATIO end-to-end / cached, {backend:<11}: {spread(values)}x  (>= 10x every round: {ok})"
            )


# Each fit runs this long, then hands over at its next batch boundary (a step of the plain fit, a
# call of the engine's). Short against the load swings of a shared machine (one epoch of the same
# work took from 16 s to 91 s in one run when whole epochs took turns), long against a hand-over.
SLICE_SECONDS = 2.0


class Turns:
    """Two fits in one process that take turns, a time slice each, so both see the same load.

    Only the fit whose turn it is computes; the other waits at a batch boundary. A fit that ended
    no longer takes turns, and waits for the other to end too before going on (so the engine's
    test pass never overlaps the plain fit's last epoch)."""

    def __init__(self, first: str) -> None:
        self.turn = first
        self.done: set[str] = set()
        self.free = False  # a fit failed: nobody waits any more
        self.cond = threading.Condition()

    def wait(self, who: str, other: str) -> None:
        with self.cond:
            while self.turn != who and other not in self.done and not self.free:
                self.cond.wait()

    def give(self, other: str) -> None:
        with self.cond:
            self.turn = other
            self.cond.notify_all()

    def finish(self, who: str, other: str) -> None:
        with self.cond:
            self.done.add(who)
            self.turn = other
            self.cond.notify_all()
            while other not in self.done and not self.free:
                self.cond.wait()

    def release(self) -> None:
        with self.cond:
            self.free = True
            self.cond.notify_all()


def turn_taker(turns: Turns, me: str, other: str) -> Any:
    """A Keras callback that makes its fit take turns and times its epochs, parked time left out.

    An epoch's time runs from this callback's epoch begin to its epoch end: the training steps,
    the per-batch callbacks, the validation pass and every callback's epoch-end work that comes
    before it. Added last to the engine's fit, that is its run.json save, its epoch event and
    its TensorBoard epoch scalars and flush."""
    import keras

    class TurnTaker(keras.callbacks.Callback):
        taking_turns = True

        def __init__(self) -> None:
            super().__init__()
            self.epoch_times: list[float] = []
            self.resumed = 0.0  # when this fit last got the turn
            self.ran = 0.0  # time this epoch ran before `resumed`

        def on_train_begin(self, logs=None):  # type: ignore[no-untyped-def]
            turns.wait(me, other)
            self.resumed = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):  # type: ignore[no-untyped-def]
            self.ran = 0.0
            self.resumed = time.perf_counter()

        # Batch begin hooks run in the training loop itself (Keras never defers them to its
        # callback thread), so waiting there stops the fit.
        def on_train_batch_begin(self, batch, logs=None):  # type: ignore[no-untyped-def]
            self.maybe_hand_over()

        def on_test_batch_begin(self, batch, logs=None):  # type: ignore[no-untyped-def]
            self.maybe_hand_over()

        def maybe_hand_over(self) -> None:
            now = time.perf_counter()
            if now - self.resumed < SLICE_SECONDS:
                return
            self.ran += now - self.resumed
            turns.give(other)
            turns.wait(me, other)
            self.resumed = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # type: ignore[no-untyped-def]
            self.epoch_times.append(self.ran + time.perf_counter() - self.resumed)

        def on_train_end(self, logs=None):  # type: ignore[no-untyped-def]
            turns.finish(me, other)

    return TurnTaker()


class CnnBench:
    """The simple CNN through the engine against a plain `model.fit`, taking turns.

    Both fits run in this process at once and take turns in slices of SLICE_SECONDS (Turns):
    the engine's run in the main thread, the plain fit in a thread, never both computing. Each
    fit gets the same turn-taking callback, which also times its epochs the same way for both,
    parked time left out (see turn_taker; the engine's gets it as its last callback, the only
    change the benchmark makes to the engine's run). The first epoch of each (tracing) is left
    out.
    """

    def __init__(self, args: Any, data: Any, runs: Any) -> None:
        self.args, self.data, self.runs = args, data, runs
        self.x = data.x_train.astype("float32") / 255
        self.xv = data.x_val.astype("float32") / 255
        self.plain_times: list[float] = []
        self.engine_times: list[float] = []
        self.ratios: list[float] = []

    def engine_run(self, **settings: Any) -> Any:
        from engine.events import ListSink, Reporter
        from engine.experiments import get_experiment
        from engine.training import run_experiment

        cfg = get_experiment("simple-cnn").config(data=self.args.data, **settings)
        run = run_experiment("simple-cnn", cfg, store=self.runs, reporter=Reporter(ListSink()))
        if run.record["status"] != "finished":
            raise SystemExit(f"run {run.id} {run.record['status']}: {run.record.get('error')}")
        return run

    def assignment(self) -> None:
        run = self.engine_run(epochs=self.args.epochs)
        m = run.record["metrics"]
        say("\n== simple CNN, assignment settings ==")
        say(
            f"engine: test accuracy {m['test_accuracy']:.2%} (train {m['train_accuracy']:.2%}, "
            f"val {m['val_accuracy']:.2%}, gap {m['overfit_gap']} points, {m['epochs_run']} of "
            f"{self.args.epochs} epochs, best epoch {m.get('best_epoch')})"
        )

    def plain_model(self) -> Any:
        import keras

        from engine.models import build_simple_cnn

        keras.utils.set_random_seed(0)
        model = build_simple_cnn()
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        return model

    def round(self) -> None:
        import keras

        turns = Turns(first="engine")
        plain_turns = turn_taker(turns, "plain", "engine")
        engine_turns = turn_taker(turns, "engine", "plain")
        fit = keras.Model.fit

        def fit_taking_turns(model: Any, *args: Any, callbacks: Any = None, **kwargs: Any) -> Any:
            callbacks = list(callbacks or [])
            if not any(getattr(c, "taking_turns", False) for c in callbacks):
                callbacks.append(engine_turns)  # the engine's fit: its callbacks come first
            return fit(model, *args, callbacks=callbacks, **kwargs)

        model = self.plain_model()
        failure: list[BaseException] = []

        def fit_plain() -> None:
            try:
                model.fit(
                    self.x,
                    self.data.y_train,
                    validation_data=(self.xv, self.data.y_val),
                    epochs=self.args.plain_epochs,
                    batch_size=64,
                    verbose=0,
                    callbacks=[plain_turns],
                )
            except BaseException as exc:  # reported by the main thread
                failure.append(exc)
            finally:
                turns.release()

        plain_fit = threading.Thread(target=fit_plain, name="plain-fit")
        keras.Model.fit = fit_taking_turns  # type: ignore[method-assign]
        try:
            plain_fit.start()
            run = self.engine_run(epochs=self.args.plain_epochs, early_stopping=False)
        finally:
            keras.Model.fit = fit  # type: ignore[method-assign]
            turns.release()
            plain_fit.join()
        if failure:
            raise failure[0]
        plain = plain_turns.epoch_times[1:]  # the first epoch includes tracing
        engine = engine_turns.epoch_times[1:]
        (phase,) = run.record["phases"]
        self.plain_times += plain
        self.engine_times += engine
        ratio = statistics.median(engine) / statistics.median(plain)
        self.ratios.append(ratio)
        pairs = [e / p for e, p in zip(engine, plain, strict=True)]
        say(f"simple CNN, the two fits in turns of {SLICE_SECONDS:g} s; first epoch left out:")
        say(f"  plain model.fit epoch s {[round(t, 2) for t in plain]}")
        say(f"  engine epoch s          {[round(t, 2) for t in engine]}")
        say(f"  engine/plain per epoch  {[round(r, 3) for r in pairs]}")
        say(
            f"  engine: {phase.get('steps_per_execution')} steps per call, a step estimated at "
            f"{1000 * float(phase.get('step_time') or 0):.1f} ms"
        )
        say(f"RATIO engine/plain median epoch time = {ratio:.3f}   (target <= 1.00)")

    def summary(self) -> None:
        say(f"simple CNN, engine epoch over plain model.fit epoch (turns of {SLICE_SECONDS:g} s):")
        say(f"  epoch s, plain:  {spread(self.plain_times)}")
        say(f"  epoch s, engine: {spread(self.engine_times)}")
        overall = statistics.median(self.engine_times) / statistics.median(self.plain_times)
        met = "met" if self.ratios and max(self.ratios) <= 1.0 else "MISSED"
        say(
            f"  RATIO per round: {spread(self.ratios, '{:.3f}')}  worst {max(self.ratios):.3f}"
            f"  (<= 1.00 every round: {met})"
        )
        say(f"  RATIO engine/plain, median over all rounds = {overall:.3f}   (target <= 1.00)")


if __name__ == "__main__":
    main()
