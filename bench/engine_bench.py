"""Engine benchmark on the real CIFAR-10 JPEG copy (../shared/data), round-robin, as ratios.

Every round runs each contender once, in turn, so a change in machine load hits all of them
alike; every per-round figure is printed, then the spread.

1. Feature extraction of frozen MobileNetV2 (weights none) over all 60,000 images, in images/s:
   plain Keras `predict` at batch 256, the engine's Keras path and the engine's onnxruntime path
   (the engine's figures include measuring the batch, and for onnxruntime the export and the
   parity check: a fresh feature cache every run).
2. Frozen-base training, 10 epochs at batch 64: cached features (extraction + head) with each
   backend against end-to-end frozen training (target: at least 10× every round; goal 12×).
3. Simple CNN: the engine's epoch time over a plain `model.fit` loop on the same data
   (target: no slower, ratio at most 1.00).

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


class CnnBench:
    """The simple CNN through the engine against a plain `model.fit` loop, round-robin."""

    def __init__(self, args: Any, data: Any, runs: Any) -> None:
        self.args, self.data, self.runs = args, data, runs
        self.x = data.x_train.astype("float32") / 255
        self.xv = data.x_val.astype("float32") / 255
        self.plain_times: list[float] = []
        self.engine_times: list[float] = []
        self.ratios: list[float] = []
        self.plain_acc = 0.0

    def engine_run(self, **settings: Any) -> Any:
        from engine.events import ListSink, Reporter
        from engine.experiments import get_experiment
        from engine.training import run_experiment

        cfg = get_experiment("simple-cnn").config(data=self.args.data, **settings)
        return run_experiment("simple-cnn", cfg, store=self.runs, reporter=Reporter(ListSink()))

    def assignment(self) -> None:
        run = self.engine_run(epochs=self.args.epochs)
        m = run.record["metrics"]
        say("\n== simple CNN, assignment settings ==")
        say(
            f"engine: test accuracy {m['test_accuracy']:.2%} (train {m['train_accuracy']:.2%}, "
            f"val {m['val_accuracy']:.2%}, gap {m['overfit_gap']} points, {m['epochs_run']} of "
            f"{self.args.epochs} epochs, best epoch {m.get('best_epoch')})"
        )

    def plain_fit(self) -> list[float]:
        import keras

        from engine.models import build_simple_cnn

        class EpochTimer(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):  # type: ignore[no-untyped-def]
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):  # type: ignore[no-untyped-def]
                self.times.append(time.perf_counter() - self.t)

        keras.utils.set_random_seed(0)
        model = build_simple_cnn()
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        timer = EpochTimer()
        model.fit(
            self.x,
            self.data.y_train,
            validation_data=(self.xv, self.data.y_val),
            epochs=self.args.plain_epochs,
            batch_size=64,
            verbose=0,
            callbacks=[timer],
        )
        return timer.times[1:]  # the first epoch includes tracing

    def round(self) -> None:
        plain = self.plain_fit()
        run = self.engine_run(epochs=self.args.plain_epochs, early_stopping=False)
        engine = [h["time"] for h in run.record["history"]][1:]
        self.plain_times += plain
        self.engine_times += engine
        ratio = statistics.median(engine) / statistics.median(plain)
        self.ratios.append(ratio)
        say("simple CNN epoch times (first epoch of each fit left out):")
        say(f"  plain model.fit {[round(t, 2) for t in plain]}")
        say(f"  engine          {[round(t, 2) for t in engine]}")
        say(f"RATIO engine/plain median epoch time = {ratio:.3f}   (target <= 1.00)")

    def summary(self) -> None:
        say("simple CNN, engine epoch over plain model.fit epoch:")
        say(f"  epoch s, plain:  {spread(self.plain_times)}")
        say(f"  epoch s, engine: {spread(self.engine_times)}")
        overall = statistics.median(self.engine_times) / statistics.median(self.plain_times)
        say(f"  RATIO per round: {spread(self.ratios, '{:.3f}')}")
        say(f"  RATIO engine/plain, median over all rounds = {overall:.3f}   (target <= 1.00)")


if __name__ == "__main__":
    main()
