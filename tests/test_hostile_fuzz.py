"""Property-based hostile inputs: random and mutated run.json files, and mutated bytes of a real
exported ONNX model (tests/fixtures/onnx/tiny_export.onnx, made by make_tiny_export.py).

Every example must end with exit code 0, 1 or 2, at most one line on stderr, no traceback, within
a time limit, and touch nothing outside its temp folder. Bounded (max_examples) so the whole file
takes seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab.cli import main
from engine.errors import CnnlabError
from engine.runs import RunStore

TINY_ONNX = Path(__file__).parent / "fixtures" / "onnx" / "tiny_export.onnx"
FUZZ = settings(
    deadline=None,  # a loaded CI machine is slow; `within` is the hang guard
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples every run: a failure is reproducible
)


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail (TimeoutError) when the block runs longer than `seconds`: a hang is a failure."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def sandbox() -> Iterator[Path]:
    """A temp folder; the current directory must not change while the example runs."""
    before = sorted(os.listdir("."))
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)
    assert sorted(os.listdir(".")) == before, "something was written outside the temp folder"


def run_cli(argv: list[str], seconds: float = 20) -> tuple[int, str, str]:
    """`engine ARGV` in this process: (exit code, stdout, stderr), checked for the contract."""
    out, err = io.StringIO(), io.StringIO()
    with within(seconds), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    stderr = err.getvalue()
    assert code in (0, 1, 2), (argv, code, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if code:
        lines = [line for line in stderr.splitlines() if not line.startswith(("usage:", " "))]
        assert len(lines) == 1 and lines[0].startswith("engine: error: "), stderr
    return code, out.getvalue(), stderr


# ------------------------------------------------------------------------------ run.json
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
VALID = make_record("20260101-100000-simple-cnn-aaaa").to_json()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON value (to pick one to mutate)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value[:3]):
            out += _paths(child, (*prefix, i))
    return out


ALL_PATHS = _paths(VALID)[1:]


@st.composite
def mutated_records(draw: st.DrawFn) -> Any:
    """A valid run.json with one value replaced by a random JSON value, or one key removed."""
    record = json.loads(json.dumps(VALID))
    path = draw(st.sampled_from(ALL_PATHS))
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return record


def _write(root: Path, content: Any | bytes) -> Path:
    folder = root / "runs" / "20260101-100000-simple-cnn-aaaa"
    folder.mkdir(parents=True)
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    (folder / "run.json").write_bytes(data)
    return root / "runs"


def _check_listed(runs_root: Path) -> None:
    before = {p: p.read_bytes() for p in runs_root.rglob("*") if p.is_file()}
    with within(10):
        runs = RunStore(runs_root).list(with_corrupt=True)
    assert len(runs) == 1
    run = runs[0]
    if run.corrupt is not None:
        assert run.status == "corrupt" and run.corrupt and "\n" not in run.corrupt
    code, out, _ = run_cli(["runs", "list", "--json", "--runs-dir", str(runs_root)])
    assert code == 0
    (row,) = json.loads(out)
    assert row["status"] == run.status and (row["problem"] is None) == (run.problem is None)
    run_cli(["runs", "show", row["id"], "--runs-dir", str(runs_root)])
    after = {p: p.read_bytes() for p in runs_root.rglob("*") if p.is_file()}
    assert after == before, "listing or showing a run changed its folder"


@settings(FUZZ, max_examples=40)
@given(value=json_values)
def test_any_json_value_as_run_json(value: Any) -> None:
    with sandbox() as tmp:
        _check_listed(_write(tmp, value))


@settings(FUZZ, max_examples=50)
@given(record=mutated_records())
def test_a_mutated_run_json(record: Any) -> None:
    with sandbox() as tmp:
        _check_listed(_write(tmp, record))


@settings(FUZZ, max_examples=40)
@given(cut=st.integers(min_value=0, max_value=len(json.dumps(VALID))), junk=st.binary(max_size=8))
def test_a_truncated_run_json(cut: int, junk: bytes) -> None:
    with sandbox() as tmp:
        _check_listed(_write(tmp, json.dumps(VALID).encode()[:cut] + junk))


# ------------------------------------------------------------------------------ ONNX bytes
ORIGINAL = TINY_ONNX.read_bytes() if TINY_ONNX.is_file() else b""


@st.composite
def mutated_onnx(draw: st.DrawFn) -> bytes:
    """The real export with bytes flipped, a cut, or bytes inserted."""
    data = bytearray(ORIGINAL)
    how = draw(st.sampled_from(["flip", "truncate", "insert"]))
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if how == "insert":
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:])
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data)


def test_the_fixture_is_a_real_export() -> None:
    from export.onnx_metadata import cnnlab_metadata, read_metadata

    assert ORIGINAL, f"{TINY_ONNX} is missing: run tests/fixtures/onnx/make_tiny_export.py"
    assert cnnlab_metadata(read_metadata(TINY_ONNX))["preprocessing"] == "unit"


@settings(FUZZ, max_examples=60)
@given(blob=mutated_onnx())
def test_mutated_onnx_in_the_analysis_and_onnx_info(blob: bytes) -> None:
    from export.info import onnx_info

    with sandbox() as tmp:
        path = tmp / "model.onnx"
        path.write_bytes(blob)
        try:
            with within(20):
                onnx_info(path)
        except CnnlabError as exc:
            assert str(exc) and "\n" not in str(exc)
        run_cli(["onnx-info", str(path), "--json"])
        run_cli(["inspect", str(path)])


@settings(FUZZ, max_examples=12)
@given(blob=mutated_onnx())
def test_mutated_onnx_in_eval(blob: bytes) -> None:
    with sandbox() as tmp:
        path = tmp / "model.onnx"
        path.write_bytes(blob)
        run_cli(
            [
                *("eval", str(path), "--data", "synthetic:100", "--provider", "cpu"),
                *("--latency-runs", "0", "--no-store", "--runs-dir", str(tmp / "runs")),
            ],
            seconds=60,
        )


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00" * 64, b"not onnx at all\n", ORIGINAL[: len(ORIGINAL) // 2]],
    ids=["empty", "zeros", "text", "half"],
)
def test_a_broken_onnx_is_reported_before_any_question_about_preprocessing(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    code, _, err = run_cli(["eval", str(path), "--latency-runs", "0"])
    assert code == 1 and str(path) in err and "--preprocessing" not in err, err


@pytest.mark.parametrize("value", [b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\xff\xff\xff\xff"])
def test_eval_of_a_model_with_mutated_weights_still_answers(tmp_path: Path, value: bytes) -> None:
    """NaN, inf or garbage in the weights: a valid file that computes nonsense is evaluated, not
    refused (the mutations above mostly break the structure; these keep it)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(TINY_ONNX))
    kernel = max(model.graph.initializer, key=lambda t: numpy_helper.to_array(t).size)
    raw = numpy_helper.to_array(kernel).tobytes()
    at = ORIGINAL.index(raw) + 8
    path = tmp_path / "model.onnx"
    path.write_bytes(ORIGINAL[:at] + value + ORIGINAL[at + 4 :])
    code, out, err = run_cli(
        [
            *("eval", str(path), "--data", "synthetic:100", "--provider", "cpu"),
            *("--latency-runs", "0", "--no-store", "--json", "--runs-dir", str(tmp_path)),
        ],
        seconds=60,
    )
    assert code == 0, err
    assert 0.0 <= json.loads(out)["accuracy"] <= 1.0
