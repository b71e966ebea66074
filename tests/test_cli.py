"""The `engine` CLI as a program: help, exit codes, one-line errors (property-tested over random\nflags), checks before TensorFlow loads, the JSONL stream, SIGINT."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab.cli import build_parser, main
from engine.config import ExperimentConfig
from engine.experiments import get_experiment, list_experiments

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _env(tmp_path: Path) -> dict[str, str]:
    return {**ENV, "CNNLAB_RUNS": str(tmp_path / "runs"), "CNNLAB_CACHE": str(tmp_path / "cache")}


def engine(*args: str, tmp_path: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = _env(tmp_path)
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = engine("--help", tmp_path=tmp_path)
    assert out.returncode == 0
    for cmd in ("run", "data", "runs", "doctor"):
        assert cmd in out.stdout
    run_help = engine("run", "--help", tmp_path=tmp_path).stdout
    for flag in (
        "--epochs",
        "--batch-size",
        "--weights",
        "--input-size",
        "--events",
        "--subset",
        "finetune",
        "compare",
    ):
        assert flag in run_help


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("run", "nosuch"), 2, "invalid choice"),
        (("run", "simple-cnn", "--epochs", "ten"), 2, "epochs: cannot read 'ten'"),
        (("run", "transfer", "--backbone", "AlexNet"), 2, "unknown 'AlexNet'"),
        (("runs", "show", "nope"), 1, "no run 'nope'"),
        (("data", "folder:/nonexistent/x"), 1, "/nonexistent/x"),
        (("data", "ftp:x"), 2, "unknown data source 'ftp:x'"),
        (("run", "mlp", "--data", "ftp:x"), 2, "--data: unknown data source 'ftp:x'"),
        (("data", "synthetic", "--val-split", "nan"), 2, "argument --val-split: 'nan' is not a"),
        (("run", "simple-cnn", "--learning-rate", "inf"), 2, "--learning-rate: cannot read 'inf'"),
        (
            (
                "run",
                "simple-cnn",
                "--model",
                "mlp",
                "--backbone",
                "ResNet50",
                "--finetune-layers",
                "5",
            ),
            2,
            "--model: experiment simple-cnn always uses model 'simple_cnn'; it cannot be changed; "
            "--backbone, --finetune-layers do not apply to experiment simple-cnn",
        ),
    ],
)
def test_bad_usage_gets_one_line_and_an_exit_code(
    tmp_path: Path, args: tuple[str, ...], code: int, needle: str
) -> None:
    out = engine(*args, tmp_path=tmp_path)
    assert out.returncode == code, out.stderr
    assert needle in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_jsonl_stream_and_json_outputs(tmp_path: Path) -> None:
    out = engine(
        "run",
        "mlp",
        "--data",
        "synthetic:easy",
        "--subset",
        "200",
        "--epochs",
        "2",
        "--events",
        "jsonl",
        tmp_path=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    events = [json.loads(line) for line in out.stdout.splitlines()]  # every line is JSON
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("epoch_end") == 2
    run_id = events[0]["run_id"]
    out = engine("runs", "list", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [r["id"] for r in listed] == [run_id] and listed[0]["status"] == "finished"
    shown = json.loads(engine("runs", "show", run_id[:-2], "--json", tmp_path=tmp_path).stdout)
    assert shown["metrics"]["epochs_run"] == 2


@pytest.mark.slow
def test_failed_run_reports_an_error_event_and_exit_1(tmp_path: Path) -> None:
    out = engine(
        "run", "mlp", "--data", "folder:/nonexistent/x", "--events", "jsonl", tmp_path=tmp_path
    )
    assert out.returncode == 1
    last = json.loads(out.stdout.splitlines()[-1])
    assert last["event"] == "error" and "/nonexistent/x" in last["message"]
    assert "Traceback" not in out.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


def long_run(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    """A simple-CNN run long enough to be interrupted, streaming JSONL events."""
    args = [
        "run",
        "simple-cnn",
        "--data",
        "synthetic:easy",
        "--epochs",
        "50",
        "--events",
        "jsonl",
        *extra,
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(tmp_path),
    )


@pytest.mark.slow
def test_sigint_cancels_at_the_next_batch_and_saves(tmp_path: Path) -> None:
    proc = long_run(tmp_path, "--subset", "3000")
    assert proc.stdout is not None
    events = []
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "batch_progress" and events[-1].get("phase") == "train":
            proc.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline
    events += [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=120) == 130
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "cancelled"
    run_dir = Path(events[0]["run_dir"])
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "cancelled" and record["metrics"]["epochs_run"] <= 1
    assert (run_dir / "model.keras").is_file()


def test_bad_flags_are_reported_before_tensorflow_loads(tmp_path: Path) -> None:
    """An unknown backbone (and any bad value) is refused in well under TensorFlow's import time."""
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from cnnlab.cli import main\n"
        "rc = main(['run', 'transfer', '--backbone', 'mobilenet_v9', '--epochs', '0'])\n"
        "print(rc, 'tensorflow' in sys.modules, round(time.perf_counter() - t, 3))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path)
    )
    rc, tf_loaded, seconds = out.stdout.split()
    assert (rc, tf_loaded) == ("2", "False"), out.stderr
    assert "--backbone: unknown 'mobilenet_v9'" in out.stderr and "--epochs: 0" in out.stderr
    assert float(seconds) < 3.0  # TensorFlow alone takes ~5 s to import here
    started = time.perf_counter()
    out = engine("run", "transfer", "--backbone", "mobilenet_v9", tmp_path=tmp_path)
    assert out.returncode == 2 and time.perf_counter() - started < 3.0, out.stderr


def test_foreseeable_failures_have_their_own_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_folder = tmp_path / "runs.txt"
    not_a_folder.write_text("x")
    code, _, err = dry_run(capsys, "mlp", f"--runs-dir={not_a_folder}")
    assert code == 2 and f"runs root {not_a_folder} is a file, not a folder" in err

    def out_of_memory(args: object) -> int:
        raise MemoryError("Unable to allocate 745. GiB for an array")

    import engine.commands

    monkeypatch.setattr(engine.commands, "cmd_data", out_of_memory)
    assert main(["data", "synthetic"]) == 1
    err = capsys.readouterr().err
    assert "not enough memory: Unable to allocate 745. GiB" in err and "internal error" not in err
    samples_file = not_a_folder / "samples.npz"  # under a file: cannot be created
    monkeypatch.undo()
    assert main(["data", "synthetic:20", "--samples", "1", f"--samples-file={samples_file}"]) == 1
    assert f"cannot write --samples-file {samples_file}" in capsys.readouterr().err


def dry_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`engine run ... --dry-run` in this process: exit code, stdout, stderr."""
    try:
        code = main(["run", *args, "--dry-run"])
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("spelling", ["mobilenet_v2", "mobilenetv2", "MobileNetV2"])
def test_backbone_spellings_resolve_to_the_registered_name(
    capsys: pytest.CaptureFixture[str], spelling: str
) -> None:
    code, out, err = dry_run(capsys, "transfer", "--backbone", spelling, "--weights", "none")
    assert code == 0, err
    assert json.loads(out)["backbone"] == "MobileNetV2"
    code, out, err = dry_run(capsys, "compare", "--backbones", f"{spelling},resnet_50")
    assert code == 0, err
    assert json.loads(out)["backbones"] == ["MobileNetV2", "ResNet50"]


def test_flags_that_fit_the_experiment_pass_the_dry_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = dry_run(
        capsys, "finetune", "--data", "synthetic", "--resize", "48", "--finetune-layers", "5"
    )
    assert code == 0, err
    config = json.loads(out)
    assert (config["resize"], config["finetune_layers"], config["model"]) == (48, 5, "transfer")


_FLAG_TEXT = st.one_of(
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e309",
            "0",
            "-1",
            "1",
            "3",
            "64",
            "1e-4",
            "0.3",
            "yes",
            "no",
            "none",
            "",
            "ResNet50",
            "resnet-50",
            "AlexNet",
            "synthetic",
            "ftp:x",
            "9" * 40,
            "a\nb",
            "--epochs",
        ]
    ),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
FIELDS = {f.name: f for f in dataclasses.fields(ExperimentConfig)}
_ALL_FLAGS = list(FIELDS)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    experiment=st.sampled_from([e.name for e in list_experiments()]),
    flags=st.dictionaries(st.sampled_from(_ALL_FLAGS), _FLAG_TEXT, max_size=4),
)
def test_any_flags_give_exit_0_or_2_and_one_line(
    capsys: pytest.CaptureFixture[str], experiment: str, flags: dict[str, str]
) -> None:
    args = [f"--{name.replace('_', '-')}={text}" for name, text in flags.items()]
    code, out, err = dry_run(capsys, experiment, *args)
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err and "internal error" not in err
    if code == 0:
        assert err == "" and json.loads(out)["model"]  # the resulting settings, as JSON
        return
    errors = [line for line in err.splitlines() if line.startswith("engine: error:")]
    assert len(errors) == 1 and err.rstrip("\n").endswith(errors[0]), err
    spec = get_experiment(experiment)
    for name in flags:  # a flag the experiment does not take is always named
        if name not in spec.uses and not FIELDS[name].metadata.get("every_experiment"):
            assert f"--{name.replace('_', '-')}" in errors[0], (name, errors[0])


@functools.cache
def parser() -> argparse.ArgumentParser:
    return build_parser()


_DATA_FLAGS = {  # flag → (lowest, highest, highest excluded)
    "--subset": (1, None, False),
    "--val-split": (0.0, 1.0, True),
    "--seed": (0, 2**32 - 1, False),
    "--resize": (8, 512, False),
    "--samples": (0, 10_000, False),
}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flag=st.sampled_from(sorted(_DATA_FLAGS)), text=_FLAG_TEXT)
def test_engine_data_numeric_flags_parse_or_name_the_flag(
    capsys: pytest.CaptureFixture[str], flag: str, text: str
) -> None:
    try:
        args = parser().parse_args(["data", "synthetic", f"{flag}={text}"])
    except SystemExit as exc:
        assert exc.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert errors == [errors[0]] and errors[0].startswith(f"engine: error: argument {flag}: ")
        return
    value = getattr(args, flag[2:].replace("-", "_"))
    low, high, high_excluded = _DATA_FLAGS[flag]
    assert math.isfinite(value) and value >= low
    assert high is None or (value < high if high_excluded else value <= high)


def test_doctor_json(tmp_path: Path) -> None:
    out = engine("doctor", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (
        report["tensorflow"].startswith("2.")
        and "CPUExecutionProvider" in report["ort_available_providers"]
    )
    assert "MobileNetV2" in report["imagenet_weights_missing"] + report["imagenet_weights_cached"]


@pytest.mark.slow
def test_a_killed_run_leaves_a_readable_record_that_says_so(tmp_path: Path) -> None:
    proc = long_run(tmp_path, "--subset", "1000", "--early-stopping", "no")
    assert proc.stdout is not None
    first = None
    for line in proc.stdout:
        event = json.loads(line)
        first = first or event
        if event["event"] == "epoch_end":
            proc.kill()  # SIGKILL: no chance to clean up
            break
    proc.wait(timeout=60)
    assert first is not None
    record = json.loads((Path(first["run_dir"]) / "run.json").read_text())
    assert record["status"] == "running" and len(record["history"]) >= 1
    out = engine("runs", "list", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert listed[0]["status"] == "died"
    assert not [p for p in Path(first["run_dir"]).iterdir() if p.name.startswith(".")]
