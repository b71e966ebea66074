"""int8 static vs fp32 on this CPU, for the simple CNN and MobileNetV2@32, in one run.

    .venv/bin/python bench/deploy_bench.py                     # ~6-10 min on 2 shared cores
    .venv/bin/python bench/deploy_bench.py --quick

On real CIFAR-10 (default `folder:../shared/data/cifar10-jpeg.tar.gz`, relative to the repo
root; never used by tests):
1. The simple CNN and MobileNetV2 at 32×32 (weights none: no internet here; BatchNorm
   statistics first set from real images by engine.models.calibrate_batchnorm), both trained
   briefly from scratch so that accuracy means something, exported with the parity check.
2. Variants built by export.deploy exactly as `engine deploy` builds them: fp32 (offline basic
   optimization), int8 static QDQ per-channel calibrated on N training images with uint8
   activations (U8S8, `engine deploy`'s default), then with int8 activations (S8S8), with
   7-bit weights (reduce_range), and int8 dynamic — the last three to show *why* int8 is or
   is not faster here.
3. Test accuracy of each on --test-images test images spread over the test set (the same
   images for every variant), top-1 agreement with fp32.
4. Throughput at batch 256, round-robin: each round times every variant once (several batches),
   every round is printed; then the median and the worst round per variant, and the ratios
   variant/fp32 of the medians. Goal (issue 9): int8 static ≥ 1.5× fp32 with accuracy within
   1 point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

DEFAULT_DATA = "folder:../shared/data/cifar10-jpeg.tar.gz"
GOAL_SPEEDUP = 1.5
GOAL_ACCURACY_POINTS = 1.0
BATCH = 256

# (label, variant registry name, BuildOptions overrides)
VARIANTS: list[tuple[str, str, dict[str, Any]]] = [
    ("fp32", "fp32", {}),
    ("int8", "int8", {}),  # engine deploy's default: U8S8
    ("int8 S8S8", "int8", {"activation_type": "int8"}),
    ("int8 reduce_range", "int8", {"reduce_range": True}),
    ("int8 dynamic", "int8-dynamic", {}),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_flags() -> dict[str, bool]:
    """The instruction sets that decide int8 speed on x86: VNNI does u8×s8 dot products in one
    instruction; without it int8 GEMMs take extra instructions per multiply-add (and U8S8 can
    saturate, which reduce_range avoids)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    names = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
    return {name: name in flags for name in names}


# ------------------------------------------------------------------------------ models
def train(model: Any, x: np.ndarray, y: np.ndarray, epochs: int, label: str) -> None:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    log(
        f"  trained {label}: {epochs} epoch(s) on {len(x)} images in {time.perf_counter() - t:.1f} s"
    )


def build_models(data: Any, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    """Train, export (with parity), and describe the two models."""
    import keras

    from engine.models import build_simple_cnn, calibrate_batchnorm
    from engine.preprocessing import get_preprocessing
    from export.checks import parity_sample
    from export.convert import export_keras_model

    parity_images = parity_sample(data.x_test, 512)
    x_train, y_train = data.x_train[: args.train_subset], data.y_train[: args.train_subset]
    out = []
    unit = get_preprocessing("unit")
    keras.utils.set_random_seed(0)
    cnn = build_simple_cnn(data.image_shape, len(data.classes))
    train(cnn, unit.apply(x_train), y_train, args.epochs, "simple CNN")
    export_keras_model(
        cnn, tmp / "simple_cnn.onnx", spec=unit, classes=data.classes, images=parity_images
    )
    out.append({"label": "simple CNN", "path": tmp / "simple_cnn.onnx", "spec": unit})

    mspec = get_preprocessing("mobilenet_v2")
    keras.utils.set_random_seed(0)
    # Trained from scratch: a frozen random backbone gives features no head can use, and
    # training through build_transfer's inference-mode BatchNorm collapsed to one class.
    # BatchNorm statistics are first set from real images (data-dependent initialisation).
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None)
    calibrate_batchnorm(base, mspec.apply(data.x_train[:256]))
    inputs = keras.Input((32, 32, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D()(base(inputs))
    outputs = keras.layers.Dense(len(data.classes), activation="softmax")(features)
    mnv2 = keras.Model(inputs, outputs, name="mobilenet_v2_32")
    train(mnv2, mspec.apply(x_train), y_train, args.mnv2_epochs, "MobileNetV2@32")
    export_keras_model(
        mnv2,
        tmp / "mobilenet_v2.onnx",
        spec=mspec,
        classes=data.classes,
        images=parity_images,
    )
    out.append({"label": "MobileNetV2@32", "path": tmp / "mobilenet_v2.onnx", "spec": mspec})
    return out


# ------------------------------------------------------------------------------ variants
def build_variants(
    model: dict[str, Any], data: Any, args: argparse.Namespace, tmp: Path
) -> dict[str, dict[str, Any]]:
    from export.deploy.source import DeployData, DeployTarget, calibration_reader
    from export.deploy.variants import BuildOptions, write_variant
    from export.onnx_metadata import read_metadata

    target = DeployTarget(model["path"], {}, None, False, model["spec"])
    dd = DeployData(data.source, list(data.classes), data.x_train, data.x_test, data.y_test)
    reader = calibration_reader(target, dd, args.calibration, "image")
    metadata = read_metadata(model["path"])
    built: dict[str, dict[str, Any]] = {}
    for label, name, overrides in VARIANTS:
        options = BuildOptions(reader=reader, calibrate_method=args.calibrate_method, **overrides)
        dest = tmp / f"{model['path'].stem}.{label.replace(' ', '_')}.onnx"
        t = time.perf_counter()
        entry = write_variant(name, model["path"], dest, options, metadata)
        built[label] = {"path": dest, "size_bytes": entry["size_bytes"], "build": entry["build"]}
        log(
            f"  {model['label']} {label:17} {entry['size_bytes'] / 1e6:6.2f} MB, "
            f"built in {time.perf_counter() - t:.1f} s"
        )
    return built


def accuracy(
    model: dict[str, Any], built: dict[str, dict[str, Any]], data: Any, args: argparse.Namespace
) -> None:
    """Accuracy and agreement with fp32 on the same test images, stored in `built`."""
    from export.checks import parity_sample
    from export.deploy.measure import open_session, run_batches

    picked = parity_sample(np.arange(len(data.x_test)), args.test_images)
    x, y = model["spec"].apply(data.x_test[picked]), data.y_test[picked]
    preds = {}
    for label, entry in built.items():
        entry["session"] = open_session(entry["path"], "cpu").session
        preds[label] = run_batches(entry["session"], x).argmax(1)
    for label, entry in built.items():
        entry["accuracy"] = float((preds[label] == y).mean())
        entry["agreement"] = float((preds[label] == preds["fp32"]).mean())
        entry["classes_predicted"] = int(len(np.unique(preds[label])))
        log(
            f"  {model['label']} {label:17} accuracy {entry['accuracy']:.2%}, "
            f"agreement with fp32 {entry['agreement']:.2%}"
        )


def throughput(
    model: dict[str, Any], built: dict[str, dict[str, Any]], data: Any, args: argparse.Namespace
) -> None:
    """Round-robin at batch 256: every round times every variant on the same batches."""
    x = model["spec"].apply(data.x_test[: BATCH * args.batches])
    batches = [x[i : i + BATCH] for i in range(0, len(x), BATCH)]
    for entry in built.values():
        entry["session"].run(None, {"image": batches[0]})  # warm-up
        entry["rounds"] = []
    for r in range(1, args.rounds + 1):
        line = []
        for label, entry in built.items():
            session = entry["session"]
            t = time.perf_counter()
            for batch in batches:
                session.run(None, {"image": batch})
            ips = len(x) / (time.perf_counter() - t)
            entry["rounds"].append(ips)
            line.append(f"{label} {ips:,.0f}")
        log(f"  {model['label']} round {r}: " + ", ".join(line) + " img/s")
    for entry in built.values():
        entry["median_ips"] = float(np.median(entry["rounds"]))
        entry["worst_ips"] = float(min(entry["rounds"]))
        del entry["session"]


def fused_ops(path: Path) -> dict[str, int]:
    """The op histogram onnxruntime really runs on the CPU (after level-all fusions): which
    QDQ groups became integer kernels and which Quantize/Dequantize pairs are left as overhead."""
    from export.deploy.variants import op_types
    from export.providers import create_session, session_options

    out = path.with_suffix(".ort-optimized.onnx")
    options = session_options(graph_optimization="all")
    options.optimized_model_filepath = str(out)
    create_session(path, "cpu", options=options)
    return op_types(out)


def op_times(path: Path, batch: np.ndarray, runs: int = 3) -> dict[str, float]:
    """Milliseconds per batch spent in each op type (onnxruntime's own profiler), slowest
    first: where the time goes, so a missing speed-up can be traced to the ops that did not
    get faster."""
    import onnxruntime as ort

    from export.providers import session_options

    options = session_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    session.run(None, {"image": batch})  # warm-up, profiled too: dropped below
    for _ in range(runs):
        session.run(None, {"image": batch})
    trace = json.loads(Path(session.end_profiling()).read_text())
    nodes: dict[str, tuple[str, list[float]]] = {}  # node → (op type, one duration per run)
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            op = str(event.get("args", {}).get("op_name", "?"))
            nodes.setdefault(event["name"], (op, []))[1].append(float(event.get("dur", 0)))
    per_op: dict[str, float] = {}
    for op, durations in nodes.values():
        timed = durations[1:] or durations  # without the warm-up run
        per_op[op] = per_op.get(op, 0.0) + sum(timed) / len(timed) / 1000.0  # µs → ms
    return {op: round(ms, 3) for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])}


def summarize(label: str, built: dict[str, dict[str, Any]], batch: np.ndarray) -> dict[str, Any]:
    fp32 = built["fp32"]
    rows = []
    print(f"\n{label}: throughput at batch {BATCH} (median and worst round), accuracy")
    print(
        f"  {'variant':17} {'MB':>6} {'median':>8} {'worst':>8} {'×fp32':>6} {'acc':>7} {'Δpts':>6} {'agree':>7}"
    )
    for name, entry in built.items():
        ratio = entry["median_ips"] / fp32["median_ips"]
        delta = (entry["accuracy"] - fp32["accuracy"]) * 100
        rows.append(
            {
                "variant": name,
                "classes_predicted": entry["classes_predicted"],
                "size_bytes": entry["size_bytes"],
                "median_ips": round(entry["median_ips"], 1),
                "worst_ips": round(entry["worst_ips"], 1),
                "rounds": [round(v, 1) for v in entry["rounds"]],
                "speedup": round(ratio, 3),
                "accuracy": entry["accuracy"],
                "accuracy_delta_points": round(delta, 2),
                "agreement": entry["agreement"],
                "build": entry["build"],
            }
        )
        print(
            f"  {name:17} {entry['size_bytes'] / 1e6:6.2f} {entry['median_ips']:8,.0f} "
            f"{entry['worst_ips']:8,.0f} {ratio:6.2f} {entry['accuracy']:7.2%} {delta:+6.2f} "
            f"{entry['agreement']:7.2%}"
        )
    for name in ("int8", "int8 S8S8"):
        ops = fused_ops(built[name]["path"])
        integer = {
            k: v
            for k, v in ops.items()
            if k.startswith(("QLinear", "QGemm", "ConvInteger", "MatMulInteger"))
        }
        qdq = ops.get("QuantizeLinear", 0) + ops.get("DequantizeLinear", 0)
        floats = {
            k: v
            for k, v in ops.items()
            if k in ("Conv", "FusedConv", "Gemm", "MatMul", "FusedMatMul")
        }
        print(
            f"  {name} as onnxruntime runs it: integer kernels {integer or 'none'}; "
            f"{qdq} Quantize/DequantizeLinear left; float compute ops {floats or 'none'}"
        )
        next(r for r in rows if r["variant"] == name)["runtime_ops"] = ops
    for name in ("fp32", "int8", "int8 S8S8"):
        times = op_times(built[name]["path"], batch)
        top = ", ".join(f"{op} {ms:.1f}" for op, ms in list(times.items())[:6])
        print(f"  {name} ms per batch of {BATCH} by op ({sum(times.values()):.1f} in all): {top}")
        next(r for r in rows if r["variant"] == name)["ms_by_op"] = times
    int8 = next(r for r in rows if r["variant"] == "int8")
    met = (
        int8["speedup"] >= GOAL_SPEEDUP
        and abs(int8["accuracy_delta_points"]) <= GOAL_ACCURACY_POINTS
    )
    if fp32["classes_predicted"] < 3:
        # A model that predicts (nearly) one class agrees with anything: no accuracy verdict.
        print(
            f"  goal: int8 {int8['speedup']:.3f}× fp32; accuracy UNDECIDED: the fp32 model "
            f"predicts only {fp32['classes_predicted']} class(es); train it longer"
        )
        return {"model": label, "rows": rows, "goal_met": None}
    print(
        f"  goal int8 ≥ {GOAL_SPEEDUP}× fp32 within {GOAL_ACCURACY_POINTS:g} point: "
        f"{'MET' if met else 'NOT MET'} ({int8['speedup']:.3f}×, {int8['accuracy_delta_points']:+.2f} points)"
    )
    return {"model": label, "rows": rows, "goal_met": met}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=DEFAULT_DATA, help=f"default {DEFAULT_DATA}")
    parser.add_argument("--train-subset", type=int, default=10000)
    parser.add_argument(
        "--test-images", type=int, default=5000, help="test images for accuracy (0 = all)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="simple CNN epochs")
    parser.add_argument("--mnv2-epochs", type=int, default=2, help="MobileNetV2 epochs")
    parser.add_argument("--calibration", type=int, default=256, help="training images")
    parser.add_argument(
        "--calibrate-method", choices=("minmax", "entropy", "percentile"), default="minmax"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=2, help="batches of 256 per round")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 training and test images, 3 rounds"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_subset, args.test_images, args.rounds = 2000, 2000, 3
    os.chdir(ROOT)  # the default data path is relative to the repository root

    import onnxruntime as ort

    from engine.data import load_dataset

    env = {
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "cpus": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "processor": platform.processor() or platform.machine(),
    }
    log(f"environment: {env}")
    data = load_dataset(args.data)
    log(f"data {args.data}: {len(data.x_train)} train, {len(data.x_test)} test")
    report: dict[str, Any] = {"environment": env, "data": args.data, "models": []}
    with tempfile.TemporaryDirectory(prefix="deploy_bench_") as tmp_name:
        tmp = Path(tmp_name)
        for model in build_models(data, args, tmp):
            built = build_variants(model, data, args, tmp)
            accuracy(model, built, data, args)
            throughput(model, built, data, args)
            batch = model["spec"].apply(data.x_test[:BATCH])
            report["models"].append(summarize(model["label"], built, batch))
    flags = env["cpu_flags"]
    vnni = flags.get("avx512_vnni") or flags.get("avx_vnni")
    print(
        f"\nCPU: AVX2 {'yes' if flags.get('avx2') else 'no'}, AVX-512 {'yes' if flags.get('avx512f') else 'no'}, "
        f"VNNI {'yes' if vnni else 'no'}; onnxruntime {ort.__version__}, {env['cpus']} CPUs"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
