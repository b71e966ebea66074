"""`deploy()`: build the chosen variants of one model, measure them on every provider that
loads, optionally locate int8's error layer by layer, and record it all in run.json.

All-or-nothing: variants are built and measured in a hidden staging folder and moved into
`<run>/deploy/` only when everything succeeded; run.json is then updated atomically.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import UsageError
from engine.runs import Run, RunStore, now_iso
from export.deploy.layer_error import DEFAULT_LAYER_IMAGES, layer_errors
from export.deploy.measure import (
    DEFAULT_LATENCY_RUNS,
    DEFAULT_THROUGHPUT_BATCH,
    DEFAULT_THROUGHPUT_REPEATS,
    Workload,
    measure,
    open_session,
    outputs_logits,
    parse_providers,
    run_batches,
    softmax,
)
from export.deploy.source import (
    DEFAULT_CALIBRATION,
    DeployData,
    DeployTarget,
    calibration_reader,
    check_calibration_count,
    load_data,
    resolve_target,
)
from export.deploy.variants import (
    DEFAULT_OPTIMIZATION,
    BuildOptions,
    parse_variants,
    write_variant,
)
from export.providers import ProviderError, SessionFactory

RECORD_SCHEMA = 1


def _loaded_providers(
    model: Path,
    wanted: list[str],
    strict: bool,
    *,
    available: Sequence[str] | None,
    factory: SessionFactory | None,
) -> tuple[list[str], list[str]]:
    """(providers that really load the fp32 model, notes): checked before anything is built."""
    loaded, notes = [], []
    for name in wanted:
        try:
            info = open_session(model, name, available=available, factory=factory)
        except ProviderError as exc:
            if strict:
                raise
            reason = str(exc).split("did not load: ")[-1].split("; use --provider")[0]
            notes.append(f"{name}: skipped ({reason})")
            continue
        if name == "auto" or info.primary == name:
            loaded.append(name)
        else:
            notes.append(f"{name}: skipped, running on {info.primary} instead")
    if not loaded:
        raise ProviderError(f"none of {', '.join(wanted)} loads the model here")
    return loaded, notes


def _workload(
    target: DeployTarget,
    data: DeployData | None,
    test_images: int | None,
    input_shape: list[Any],
    *,
    latency_runs: int,
    throughput_batch: int,
    throughput_repeats: int,
) -> Workload:
    from export.checks import parity_sample
    from export.evaluate import class_mapping

    if data is None:
        # No data: latency and throughput still mean something on a mid-grey image.
        shape = [d if isinstance(d, int) else 1 for d in input_shape]
        probe = target.feed(np.full([1, *shape[1:]], 128, dtype=np.uint8))
        return Workload(
            test_feed=None,
            test_labels=None,
            mapping=None,
            reference=None,
            softmax=False,
            probe=probe,
            latency_runs=latency_runs,
            throughput_batch=throughput_batch,
            throughput_repeats=throughput_repeats,
        )
    x, y = data.x_test, data.y_test
    if test_images:
        picked = parity_sample(np.arange(len(x)), test_images)
        x, y = x[picked], y[picked]
    if len(x) == 0:
        raise UsageError(f"{data.source} has no test images")
    feed = target.feed(x)
    return Workload(
        test_feed=feed,
        test_labels=y,
        mapping=class_mapping(target.meta.get("classes"), data.classes),
        reference=None,
        softmax=False,
        probe=feed[:1],
        latency_runs=latency_runs,
        throughput_batch=throughput_batch,
        throughput_repeats=throughput_repeats,
    )


def deploy(
    target: str | Path,
    *,
    variants: str = "fp32,fp16,int8,int8-dynamic",
    providers: str = "all",
    calibration: int = DEFAULT_CALIBRATION,
    calibrate_method: str = "minmax",
    exclude: Sequence[str] = (),
    data: str | None = None,
    preprocessing: str | None = None,
    runs_root: Path | str | None = None,
    test_images: int | None = None,
    latency_runs: int = DEFAULT_LATENCY_RUNS,
    throughput_batch: int = DEFAULT_THROUGHPUT_BATCH,
    throughput_repeats: int = DEFAULT_THROUGHPUT_REPEATS,
    optimization: str = DEFAULT_OPTIMIZATION,
    activation_type: str = "uint8",
    reduce_range: bool = False,
    layer_error: bool = False,
    layer_images: int = DEFAULT_LAYER_IMAGES,
    out_dir: Path | None = None,
    store: bool = True,
    available: Sequence[str] | None = None,
    factory: SessionFactory | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build, measure and record variants of RUN|FILE; return the result (the --json shape).

    Usage mistakes (unknown variant, --calibration 0, a provider that does not load, int8
    without data) are raised before anything is written. `progress(line)` hears each step.
    """
    say = progress or (lambda _line: None)
    names = parse_variants(variants)
    check_calibration_count(calibration)
    if latency_runs < 0 or throughput_batch < 1 or throughput_repeats < 1:
        raise UsageError("latency runs must be ≥ 0, throughput batch and repeats ≥ 1")
    if layer_error and "int8" not in names:
        raise UsageError("--layer-error compares int8 with fp32: include int8 in --variants")
    wanted, strict = parse_providers(providers, available)
    tgt = resolve_target(target, runs_root=runs_root, preprocessing=preprocessing)
    say(f"loading the data of {tgt.model}")
    dataset = load_data(tgt, data)
    if dataset is None and any(n == "int8" for n in names):
        raise UsageError(
            "int8 static needs calibration images and there is no run data: pass --data SOURCE"
        )
    loaded, notes = _loaded_providers(
        tgt.model, wanted, strict, available=available, factory=factory
    )
    # The fp32 reference, once, on the CPU.
    ref_session = open_session(tgt.model, "cpu", available=available, factory=factory).session
    input_meta = ref_session.get_inputs()[0]
    work = _workload(
        tgt,
        dataset,
        test_images,
        list(input_meta.shape),
        latency_runs=latency_runs,
        throughput_batch=throughput_batch,
        throughput_repeats=throughput_repeats,
    )
    if work.test_feed is not None:
        reference = run_batches(ref_session, work.test_feed)
        work.softmax = outputs_logits(reference)
        work.reference = softmax(reference) if work.softmax else reference
    reader = (
        calibration_reader(tgt, dataset, calibration, input_meta.name)
        if dataset is not None
        else None
    )
    options = BuildOptions(
        optimization=optimization,
        calibrate_method=calibrate_method,
        exclude=list(exclude),
        reader=reader,
        activation_type=activation_type,
        reduce_range=reduce_range,
    )
    from export.onnx_metadata import read_metadata

    metadata = read_metadata(tgt.model)
    final_dir = Path(out_dir) if out_dir is not None else tgt.out_dir
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    layers: list[dict[str, Any]] | None = None
    with tempfile.TemporaryDirectory(prefix=".deploy-", dir=final_dir.parent) as staging:
        built: dict[str, Path] = {}
        for name in names:
            path = Path(staging) / f"{name}.onnx"
            say(f"building {name}")
            entry = write_variant(name, tgt.model, path, options, metadata)
            entry["results"] = []
            for provider in loaded:
                say(f"measuring {name} on {provider}")
                entry["results"].append(
                    measure(path, provider, work, available=available, factory=factory)
                )
            built[name] = path
            entries.append(entry)
        if layer_error and reader is not None:
            say("comparing int8 with fp32 layer by layer")
            feed = tgt.feed(reader.images[:layer_images])
            layers = layer_errors(tgt.model, built["int8"], feed)
        final_dir.mkdir(parents=True, exist_ok=True)
        for entry, (name, path) in zip(entries, built.items(), strict=True):
            dest = final_dir / f"{name}.onnx"
            os.replace(path, dest)
            entry["path"] = str(dest.resolve())
    run_dir = tgt.run.path.resolve() if tgt.run else None
    common = {
        "created": now_iso(),
        "source": _relative(tgt.model, run_dir),
        "data": dataset.source if dataset else None,
        "test_images": int(len(work.test_feed)) if work.test_feed is not None else 0,
    }
    for entry in entries:
        entry.update(common)
        entry["file"] = _relative(Path(entry["path"]), run_dir)
        if entry["variant"] == "int8" and layers is not None:
            entry["layer_error"] = layers
    result: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        "model": str(tgt.model),
        "run_id": tgt.run.id if tgt.run else None,
        "providers": loaded,
        "notes": notes,
        "variants": entries,
        "layer_error": layers,
        "stored": False,
    }
    if tgt.run is not None and store:
        record_variants(tgt.run, entries)
        result["stored"] = True
    return result


def _relative(path: Path, run_dir: Path | None) -> str:
    if run_dir is None:
        return str(path.resolve())
    try:
        return str(path.resolve().relative_to(run_dir))
    except ValueError:
        return str(path.resolve())


def record_variants(run: Run, entries: list[dict[str, Any]]) -> None:
    """Put these variants in run.json's `onnx.variants`, replacing ones of the same name;
    atomic (re-read first: another command may have written since)."""
    from engine.records import OnnxRecord, OnnxVariant

    fresh = RunStore(run.path.parent).open(run.path)
    current = fresh.info.onnx or OnnxRecord()
    stored = [
        OnnxVariant.from_json({k: v for k, v in e.items() if k != "path"}, "variant")
        for e in entries
    ]
    fresh.update(onnx=current.with_variants(stored))
    run.record = fresh.record
