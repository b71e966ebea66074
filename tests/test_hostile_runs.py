"""Hostile run folders: corrupt run.json files are listed as `corrupt` with their reason (never
hidden, never breaking the list), a finished run without model.keras says so, and the commands
that need a run's record or model fail with one line. In the CLI, the run store and the TUI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_record, plain, write_run

from cnnlab.cli import main
from engine.runs import RunStore

GOOD = "20260101-100000-simple-cnn-aaaa"
NO_MODEL = "20260101-110000-simple-cnn-bbbb"

# folder name -> (run.json bytes, words the reason must contain)
CORRUPT: dict[str, tuple[bytes, str]] = {
    "20260101-120000-mlp-trunc": (b'{"schema": 2, "id": "20260101-1', "not valid JSON"),
    "20260101-120001-mlp-list": (b"[1, 2, 3]", "expected an object, got a list"),
    "20260101-120002-mlp-null": (b"null", "got null"),
    "20260101-120003-mlp-binary": (bytes(range(128, 256)), "not UTF-8"),
    "20260101-120004-mlp-empty": (b"", "not valid JSON"),
    "20260101-120005-mlp-deep": (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    "20260101-120006-mlp-hugeint": (b'{"id": ' + b"9" * 5000 + b"}", "not valid JSON"),
}
# folder name -> (changes to a valid record, words the reason must contain)
BAD_FIELDS: dict[str, tuple[dict[str, object], str]] = {
    "20260101-130000-mlp-schema": ({"schema": 99}, "schema 99 is newer"),
    "20260101-130001-mlp-metrics": ({"metrics": "high"}, "metrics: expected"),
    "20260101-130002-mlp-history": ({"history": [{"epoch": "one"}]}, "history[0]"),
    "20260101-130003-mlp-status": ({"status": 7}, "status: expected str"),
    "20260101-130004-mlp-otherid": ({"id": "someone-else"}, "belongs to run 'someone-else'"),
}
N_CORRUPT = len(CORRUPT) + len(BAD_FIELDS) + 1  # + a run.json that is a folder


def hostile_store(root: Path) -> Path:
    """A good run, a finished run whose model.keras is gone, and every kind of corrupt run."""
    good = write_run(root, make_record(GOOD))
    (good / "model.keras").write_bytes(b"PK")
    (good / "summary.json").write_text("{}")
    gone = write_run(root, make_record(NO_MODEL))
    (gone / "summary.json").write_text("{}")  # saved with the model, which was deleted since
    for name, (content, _) in CORRUPT.items():
        (root / name).mkdir()
        (root / name / "run.json").write_bytes(content)
    for name, (changes, _) in BAD_FIELDS.items():
        record = make_record(name, "mlp").to_json()
        record.update(changes)
        (root / name).mkdir()
        (root / name / "run.json").write_text(json.dumps(record))
    (root / "20260101-140000-mlp-folder" / "run.json").mkdir(parents=True)
    (root / "not-a-run").mkdir()  # no run.json: not a run, not listed
    return root


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return hostile_store(tmp_path / "runs")


def test_store_lists_every_corrupt_run_with_its_reason(store_root: Path) -> None:
    runs = {run.path.name: run for run in RunStore(store_root).list(with_corrupt=True)}
    assert len(runs) == 2 + N_CORRUPT
    assert "not-a-run" not in runs
    for name, (_, words) in {**CORRUPT, **BAD_FIELDS}.items():
        assert runs[name].status == "corrupt", name
        assert runs[name].problem and words in runs[name].problem, (name, runs[name].problem)
        assert "\n" not in runs[name].problem
    assert "is a folder" in (runs["20260101-140000-mlp-folder"].problem or "")
    assert runs[GOOD].problem is None and runs[GOOD].status_label == "finished"
    assert runs[NO_MODEL].model_missing
    assert runs[NO_MODEL].status_label == "finished (model missing)"
    # Callers that want results (rankings, inspect lists) still get readable runs only.
    assert {r.id for r in RunStore(store_root).list()} == {GOOD, NO_MODEL}


def test_a_corrupt_run_is_never_rewritten(store_root: Path) -> None:
    run = next(
        r for r in RunStore(store_root).scan(with_corrupt=True) if r.path.name.endswith("-list")
    )
    before = run.run_json.read_bytes()
    with pytest.raises(Exception, match="corrupt"):
        run.update(status="finished")
    assert run.run_json.read_bytes() == before


def test_cli_list_shows_corrupt_runs_and_the_missing_model(
    store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "list", "--json", "--runs-dir", str(store_root)]) == 0
    rows = {Path(row["path"]).name: row for row in json.loads(capsys.readouterr().out)}
    assert len(rows) == 2 + N_CORRUPT
    for name in [*CORRUPT, *BAD_FIELDS]:
        assert rows[name]["status"] == "corrupt" and rows[name]["problem"], name
    assert rows[NO_MODEL]["model_missing"] is True and rows[NO_MODEL]["status"] == "finished"
    assert rows[GOOD]["problem"] is None
    assert main(["runs", "list", "--runs-dir", str(store_root)]) == 0
    out = capsys.readouterr().out
    assert out.count(": corrupt: ") == N_CORRUPT
    assert "expected an object, got a list" in out and "model.keras is missing" in out
    assert (
        main(["runs", "list", "--status", "corrupt", "--json", "--runs-dir", str(store_root)]) == 0
    )
    assert len(json.loads(capsys.readouterr().out)) == N_CORRUPT


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "show", "20260101-120001"],
        ["runs", "show", "20260101-120003"],
        ["runs", "show", "20260101-140000"],
        ["runs", "show", "nope"],
        ["runs", "show", ""],
        ["runs", "delete", "nope", "--yes"],
        ["inspect", "20260101-120000"],
        ["inspect", NO_MODEL],
        ["filters", NO_MODEL],
        ["filters", "20260101-130000"],
        ["export", "20260101-120002"],
        ["export", NO_MODEL],
        ["eval", "20260101-120001"],
        ["eval", NO_MODEL],
        ["activations", "20260101-120001"],
    ],
)
def test_commands_on_broken_runs_fail_in_one_line(
    store_root: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*argv, "--runs-dir", str(store_root)])
    err = capsys.readouterr().err.strip()
    assert code in (1, 2), err
    assert len(err.splitlines()) == 1 and err.startswith("engine: error: "), err
    assert "internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "where", ["a-file/runs.csv", "a-folder", "a-folder/"], ids=["under-a-file", "dir", "dir/"]
)
def test_outputs_that_cannot_be_written_fail_in_one_line(
    store_root: Path, tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("")
    target = str(tmp_path / where)
    code = main(["runs", "export", "--csv", target, "--runs-dir", str(store_root)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "internal error" not in err, err
    assert str(tmp_path) in err
    assert sorted(p.name for p in (tmp_path / "a-folder").iterdir()) == []


def test_runs_export_lists_a_run_with_a_mistyped_field_as_corrupt(
    store_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs.json"
    assert main(["runs", "export", "--json", str(out), "--runs-dir", str(store_root)]) == 0
    rows = {row["id"]: row for row in json.loads(out.read_text())}
    row = rows["20260101-130001-mlp-metrics"]
    assert row["status"] == "corrupt" and "metrics: expected an object" in row["title"]


def test_show_of_a_run_without_its_model_warns(
    store_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "show", NO_MODEL, "--runs-dir", str(store_root)]) == 0
    assert "model.keras is missing" in capsys.readouterr().err


async def test_tui_lists_corrupt_and_model_less_runs_and_opens_them(store_root: Path) -> None:
    from conftest import FakeEngine

    from tui.app import CnnLabApp
    from tui.screens.run_detail import RunDetailScreen
    from tui.screens.runs import RunsScreen

    app = CnnLabApp(engine=FakeEngine(), runs_root=store_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        for _ in range(100):
            await pilot.pause(0.05)
            screen = pilot.app.screen
            if isinstance(screen, RunsScreen) and screen.loaded:
                break
        screen = pilot.app.screen
        assert isinstance(screen, RunsScreen) and screen.loaded
        assert len(screen.shown) == 2 + N_CORRUPT
        table = screen.table
        statuses = {
            run.path.name: str(table.get_cell_at((i, table.get_column_index("status"))))
            for i, run in enumerate(screen.shown)
        }
        assert statuses[NO_MODEL] == "finished (model missing)"
        assert all(statuses[name] == "corrupt" for name in [*CORRUPT, *BAD_FIELDS])
        index = next(i for i, r in enumerate(screen.shown) if r.path.name.endswith("mlp-list"))
        table.move_cursor(row=index)
        await pilot.pause()
        assert "corrupt: run.json: expected an object, got a list" in plain(
            screen.query_one("#run-preview")
        )
        await pilot.press("i")  # inspect a corrupt run: a notification, no crash
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause(0.2)
        detail = pilot.app.screen
        assert isinstance(detail, RunDetailScreen)
        assert "expected an object, got a list" in plain(detail.query_one("#detail-error"))
        await pilot.press("escape")
        await pilot.pause(0.2)
        screen.table.move_cursor(row=[r.path.name for r in screen.shown].index(NO_MODEL))
        await pilot.pause()
        assert "model.keras is missing" in plain(screen.query_one("#run-preview"))
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, RunDetailScreen)
