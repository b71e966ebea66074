"""`--parallel 2` against `--parallel 1` on a 2-child experiment, on this machine.

The experiment is `preprocessing` with one backbone (MobileNetV2, weights none): two children,
x/255 and its own preprocessing. Each timing is the whole `engine run` command, wall clock, with
a fresh feature cache (so every child extracts its features). Settings alternate round-robin,
so a change in the machine's load hits both alike; every round is printed, then the median and
worst of each and the wall-time ratio.

Usage: .venv/bin/python bench/scale_bench.py [--rounds 3] [--subset 1000] [--epochs 3]
Not a test: a few minutes on 2 cores. What to expect there: the two children share two cores,
so `--parallel 2` saves only what one process alone leaves idle (start-up, Python between
batches), and pays a second TensorFlow start-up; on N GPUs each child has its own device.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_run(parallel: int, args: argparse.Namespace) -> float:
    """Wall time of one `engine run preprocessing --parallel N` (fresh runs folder and cache)."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-scale-bench-") as tmp:
        env = {
            **os.environ,
            "CNNLAB_CACHE": str(Path(tmp) / "cache"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        command = [sys.executable, "-m", "engine", "run", "preprocessing"]
        command += ["--data", args.data, "--subset", str(args.subset), "--epochs", str(args.epochs)]
        command += ["--backbones", "MobileNetV2", "--weights", "none"]
        command += ["--input-size", str(args.input_size), "--early-stopping", "no"]
        command += ["--parallel", str(parallel), "--events", "none"]
        command += ["--runs-dir", str(Path(tmp) / "runs")]
        t0 = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"engine run failed ({done.returncode}): {done.stderr[-500:]}")
        return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--subset", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--input-size", type=int, default=32)
    args = ap.parse_args()
    print(
        f"preprocessing, MobileNetV2 (2 children), {args.data} subset {args.subset}, "
        f"{args.epochs} epochs, input {args.input_size}; {os.cpu_count()} CPUs, no GPU assumed"
    )
    times: dict[int, list[float]] = {1: [], 2: []}
    for r in range(1, args.rounds + 1):
        order = (1, 2) if r % 2 else (2, 1)  # alternate who goes first
        for parallel in order:
            times[parallel].append(time_run(parallel, args))
        print(
            f"round {r}: --parallel 1 {times[1][-1]:6.1f} s   --parallel 2 {times[2][-1]:6.1f} s",
            flush=True,
        )
    for parallel in (1, 2):
        t = times[parallel]
        print(
            f"--parallel {parallel}: median {statistics.median(t):6.1f} s   worst {max(t):6.1f} s"
        )
    ratio = statistics.median(times[2]) / statistics.median(times[1])
    worst = max(times[2]) / max(times[1])
    print(
        f"wall-time ratio parallel 2 / parallel 1: median {ratio:.2f}  worst {worst:.2f}  "
        f"(below 1 = faster; 0.5 would be perfect scaling)"
    )


if __name__ == "__main__":
    main()
