"""`engine activations` and `engine preprocess-stats`: the inspection commands that feed test
images through a model (onnxruntime, CPU) or a backbone's preprocessing. Registered by
`export.inspect_cli.add_commands`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.errors import CnnlabError, UsageError
from engine.output import console, print_json
from export.inspect_targets import resolve, run_onnx_file


# --------------------------------------------------------------------------------- images
def sample_images(source: str, per_class: int) -> tuple[Any, Any, list[str]]:
    """(images, labels, classes): up to `per_class` test images of each class, class-major.

    The same order as `engine data SOURCE --samples N`, so an index means the same image
    here and in the TUI.
    """
    import numpy as np

    from engine.data import load_dataset

    ds = load_dataset(source)
    samples = ds.samples(per_class, split="test")
    images, labels = [], []
    for i, c in enumerate(ds.classes):
        arr = samples.get(c)
        if arr is not None and len(arr):
            images.append(arr)
            labels.append(np.full(len(arr), i, dtype=np.int64))
    if not images:
        raise CnnlabError(f"{source}: no test images")
    return np.concatenate(images), np.concatenate(labels), list(ds.classes)


def read_samples_file(path: Path) -> tuple[Any, Any, list[str]]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return data["images"], data["labels"], [str(c) for c in data["classes"]]
    except (OSError, KeyError, ValueError) as exc:
        raise CnnlabError(f"{path}: not a samples file ({exc})") from None


# --------------------------------------------------------------------------------- activations
def cmd_activations(args: argparse.Namespace) -> int:
    from export.activations import ActivationProbe, activation_report

    kind, path, record = resolve(args.target, args.runs_dir)
    if kind == "keras":
        raise UsageError("activations run on an ONNX export: `engine export MODEL` first")
    onnx_path = run_onnx_file(path, record) if kind == "run" else path
    probe = ActivationProbe.open(onnx_path)
    if not args.layer:
        tensors = [t.to_dict() for t in probe.tensors]
        if args.json:
            print_json({"source": str(onnx_path), "tensors": tensors})
        else:
            for t in tensors:
                console.print(f"{t['op']:<20} {t['node']}  {t['shape']}", highlight=False)
        return 0
    try:
        start, stop = (int(v) for v in args.channels.split(":"))
    except ValueError:
        raise UsageError(f"--channels: expected START:STOP, got {args.channels!r}") from None
    if args.samples_file:
        images, labels, classes = read_samples_file(args.samples_file)
    else:
        data = args.data or ((record or {}).get("data") or {}).get("source") or "synthetic"
        images, labels, classes = sample_images(data, args.per_class)
    if not 0 <= args.image < len(images):
        raise UsageError(f"--image {args.image}: choose 0..{len(images) - 1}")
    report = activation_report(
        probe,
        images[args.image],
        args.layer,
        label=int(labels[args.image]),
        classes=probe.class_names() or classes,
        channels=(start, stop),
        values=not args.no_values,
    )
    report["image"]["index"] = args.image
    if args.json:
        print_json(report)
        return 0
    t = report["tensor"]
    console.print(f"[bold]{t['node']}[/] ({t['op']}) maps {report['maps_shape']}", highlight=False)
    img = report["image"]
    console.print(f"image {args.image}: true class {img['class']}", highlight=False)
    for entry in report["prediction"]["top5"]:
        console.print(
            f"  {entry['class']:<12} {entry['probability'] * 100:6.2f} %", highlight=False
        )
    for s in report["stats"][:16]:
        console.print(
            f"  channel {s['channel']:>4}: min {s['min']:+.3f} max {s['max']:+.3f} mean {s['mean']:+.3f} "
            f"zeros {s['zeros'] * 100:.0f} %",
            highlight=False,
        )
    return 0


# --------------------------------------------------------------------------------- preprocessing
def cmd_preprocess_stats(args: argparse.Namespace) -> int:
    from engine import inspect
    from engine.backbones import get_backbone
    from engine.registry import UnknownName
    from engine.runs import default_runs_root

    if args.count < 1 or args.bins < 1:
        raise UsageError("--count and --bins must be at least 1")
    try:
        if args.backbone:
            backbone = get_backbone(args.backbone)
            name, backbone_name = backbone.preprocessing, backbone.name
        else:
            name, backbone_name = args.preprocessing or "unit", None
            from engine.preprocessing import get_preprocessing

            get_preprocessing(name)
    except UnknownName as exc:
        raise UsageError(str(exc)) from None
    if args.samples_file:
        images, _, _ = read_samples_file(args.samples_file)
    else:
        per_class = max(1, -(-args.count // 10))
        images, _, _ = sample_images(args.data, per_class)
    images = images[: args.count]
    report = inspect.preprocess_stats(images, name, bins=args.bins)
    report["backbone"] = backbone_name
    report["data"] = str(args.samples_file or args.data)
    results = inspect.preprocessing_results(args.runs_dir or default_runs_root())
    if backbone_name:
        report["runs"] = results.get(backbone_name)
        report["assignment"] = inspect.ASSIGNMENT_PREPROCESSING.get(backbone_name)
    if args.json:
        print_json(report)
        return 0
    spec = report["preprocessing"]
    console.print(f"[bold]{backbone_name or spec['name']}[/]: {spec['formula']}", highlight=False)
    console.print(f"  {spec['description']}", highlight=False)
    lo, hi = report["expected_range"]
    console.print(f"  expects [{lo:g}, {hi:g}]; batch of {report['count']} images", highlight=False)
    for label in ("before", "after", "mistake"):
        part = report.get(label)
        if not part:
            continue
        chans = ", ".join(
            f"{c['name']} {c['min']:g}..{c['max']:g} (mean {c['mean']:g})" for c in part["channels"]
        )
        console.print(f"  {label:<8} {chans}", highlight=False)
    return 0
