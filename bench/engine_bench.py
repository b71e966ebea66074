"""Engine benchmark on the real CIFAR-10 JPEG copy (../shared/data), printed as ratios.

1. Simple CNN with the assignment's settings through the engine: test accuracy, and the
   engine's epoch time over a plain `model.fit` loop on the same data (target: at most 1.10).
2. Frozen-base MobileNetV2 (weights none, 10 epochs, batch 64): cached-feature training,
   extraction included, vs end-to-end frozen training (target: at least 8× faster).

Usage: .venv/bin/python bench/engine_bench.py [--data SOURCE] [--epochs N] [--plain-epochs N]
Not a test: it takes ~15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = f"folder:{ROOT.parent / 'shared' / 'data' / 'cifar10-jpeg.tar.gz'}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument(
        "--plain-epochs", type=int, default=4, help="epochs of the plain model.fit reference"
    )
    ap.add_argument(
        "--rounds", type=int, default=3, help="round-robin rounds of the epoch-time comparison"
    )
    ap.add_argument("--transfer-epochs", type=int, default=10)
    ap.add_argument("--skip-cnn", action="store_true")
    ap.add_argument("--skip-transfer", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    import numpy as np

    from engine.data import load_dataset
    from engine.events import ListSink, Reporter
    from engine.experiments import get_experiment
    from engine.models import build_simple_cnn
    from engine.runs import RunStore
    from engine.training import run_experiment

    runs = RunStore(Path(tempfile.mkdtemp(prefix="cnnlab-bench-runs-")))
    t0 = time.perf_counter()
    data = load_dataset(args.data)
    print(
        f"data: {args.data}  train {len(data.x_train)}  val {len(data.x_val)}  test {len(data.x_test)}  (load {time.perf_counter() - t0:.1f} s)"
    )

    if not args.skip_cnn:
        # --- plain model.fit reference: same data, same model, same batch size, same split.
        # It runs before AND after the engine's run, so a change in machine load between the two
        # shows up instead of skewing the ratio.
        x, xv = data.x_train.astype("float32") / 255, data.x_val.astype("float32") / 255

        class EpochTimer(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):  # type: ignore[no-untyped-def]
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):  # type: ignore[no-untyped-def]
                self.times.append(time.perf_counter() - self.t)

        def plain_fit() -> tuple[list[float], float]:
            keras.utils.set_random_seed(0)
            model = build_simple_cnn()
            model.compile(
                optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
            )
            timer = EpochTimer()
            model.fit(
                x,
                data.y_train,
                validation_data=(xv, data.y_val),
                epochs=args.plain_epochs,
                batch_size=64,
                verbose=0,
                callbacks=[timer],
            )
            acc = float(
                (
                    model.predict(data.x_test.astype("float32") / 255, verbose=0).argmax(1)
                    == data.y_test
                ).mean()
            )
            return timer.times[1:], acc  # the first epoch includes tracing

        # The assignment's run, for its figures.
        cfg = get_experiment("simple-cnn").config(data=args.data, epochs=args.epochs)
        run = run_experiment("simple-cnn", cfg, store=runs, reporter=Reporter(ListSink()))
        m = run.record["metrics"]
        # Epoch time, round-robin: a plain fit, then the engine, `rounds` times, so that a change in
        # machine load hits both sides alike. The first epoch of each fit (tracing) is left out.
        plain_times: list[float] = []
        engine_times: list[float] = []
        plain_acc = 0.0
        short = get_experiment("simple-cnn").config(
            data=args.data, epochs=args.plain_epochs, early_stopping=False
        )
        for _ in range(args.rounds):
            times, plain_acc = plain_fit()
            plain_times += times
            r = run_experiment("simple-cnn", short, store=runs, reporter=Reporter(ListSink()))
            engine_times += [h["time"] for h in r.record["history"]][1:]
        engine_epoch = float(np.median(engine_times))
        plain_epoch = float(np.median(plain_times))
        print("\n== simple CNN, assignment settings ==")
        print(
            f"engine: test accuracy {m['test_accuracy']:.2%} (train {m['train_accuracy']:.2%}, val {m['val_accuracy']:.2%}, gap {m['overfit_gap']} points, {m['epochs_run']} of {args.epochs} epochs, best epoch {m.get('best_epoch')})"
        )
        print(
            f"plain model.fit ({args.plain_epochs} epochs, same seed): test accuracy {plain_acc:.2%}"
        )
        print(f"epoch times, {args.rounds} rounds round-robin (first epoch of each fit left out):")
        print(f"  engine {[round(t, 2) for t in engine_times]}")
        print(f"  plain  {[round(t, 2) for t in plain_times]}")
        print(
            f"RATIO engine/plain median epoch time = {engine_epoch:.2f} / {plain_epoch:.2f} s = {engine_epoch / plain_epoch:.3f}   (target <= 1.10)"
        )

    if not args.skip_transfer:
        # A fresh feature cache so extraction is counted.
        os.environ["CNNLAB_CACHE"] = tempfile.mkdtemp(prefix="cnnlab-bench-cache-")
        common = dict(
            data=args.data, weights="none", epochs=args.transfer_epochs, early_stopping=False
        )
        spec = get_experiment("transfer")
        t0 = time.perf_counter()
        cached = run_experiment(
            "transfer",
            spec.config(feature_cache=True, **common),
            store=runs,
            reporter=Reporter(ListSink()),
        )
        t_cached = time.perf_counter() - t0
        t0 = time.perf_counter()
        e2e = run_experiment(
            "transfer",
            spec.config(feature_cache=False, **common),
            store=runs,
            reporter=Reporter(ListSink()),
        )
        t_e2e = time.perf_counter() - t0
        tc, te = cached.record["timings"], e2e.record["timings"]
        c_train = tc["train"] + tc.get("features", 0.0)
        print("\n== frozen MobileNetV2 (weights none), 10 epochs, batch 64 ==")
        print(
            f"cached features: extraction {tc.get('features', 0):.1f} s + head {tc['train']:.1f} s = {c_train:.1f} s  (wall {t_cached:.1f} s)  test acc {cached.record['metrics']['test_accuracy']:.2%}"
        )
        print(
            f"end-to-end frozen: train {te['train']:.1f} s  (wall {t_e2e:.1f} s)  test acc {e2e.record['metrics']['test_accuracy']:.2%}"
        )
        print(
            f"RATIO end-to-end/cached (training incl. extraction) = {te['train'] / c_train:.2f}x   (target >= 8x)"
        )
        print(f"RATIO end-to-end/cached (whole run wall time)        = {t_e2e / t_cached:.2f}x")


if __name__ == "__main__":
    main()
