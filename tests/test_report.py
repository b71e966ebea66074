"""`engine report` and `engine runs export`: tables with the runs' numbers, figures, Spanish,
self-contained HTML, atomic output, bad input. Mostly on the fixed fake run store (fast); one
tiny real run for the first-layer filter grid and MACs."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import make_record, populate_runs, write_run

from cnnlab.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Children of populate_runs' compare parent, with a layer table each (MACs per layer).
CHILD_MACS = {0: [1_000_000, 3_100_000], 1: [15_000_000, 400_000], 2: [300_000, 0]}


def _assert_png(path_or_bytes: Path | bytes) -> None:
    from PIL import Image

    raw = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
    assert raw.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(raw)) as image:
        image.verify()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """populate_runs' store, plus the compare children (with summary.json) and a corrupt folder.

    Shared by the module (reports only read it); each full report is drawn once, below.
    """
    runs_root = populate_runs(tmp_path_factory.mktemp("store") / "runs")
    compare = json.loads((runs_root / "20260101-140000-compare-eeee" / "run.json").read_text())
    for i, row in enumerate(compare["table"]):
        child = make_record(
            row["run_id"],
            "transfer",
            test=row["test_accuracy"],
            backbone=row["backbone"],
            random_init=True,
            parent=compare["id"],
            params=(row["params"], 12_810),
        )
        # No curves or matrices: the figures are tested on the other runs, and each costs time.
        child.history = []
        assert child.metrics is not None
        child.metrics.confusion_matrix = None
        child.metrics.per_class_accuracy = None
        path = write_run(runs_root, child)
        layers = [{"name": f"l{j}", "macs": m} for j, m in enumerate(CHILD_MACS[i])]
        (path / "summary.json").write_text(json.dumps({"layers": layers}))
    (runs_root / "20260101-160000-simple-cnn-zzzz").mkdir()
    (runs_root / "20260101-160000-simple-cnn-zzzz" / "run.json").write_text("{not json")
    return runs_root


def _report(store: Path, out: Path, *extra: str) -> int:
    return main(["report", "--all", "--runs-dir", str(store), "-o", str(out), *extra])


def _full_report(store: Path, factory: pytest.TempPathFactory, *extra: str) -> Path:
    out = factory.mktemp("report") / "report"
    assert _report(store, out, *extra) == 0
    return out


# Fewer runs where the whole store is not needed: each run costs a few figures to draw.
SOME = ["20260101-100000-simple-cnn-aaaa", "20260101-120000-transfer-cccc"]


def _some_report(store: Path, factory: pytest.TempPathFactory, *extra: str) -> Path:
    out = factory.mktemp("report") / "report"
    assert main(["report", *SOME, *extra, "--runs-dir", str(store), "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def md_report(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _full_report(store, tmp_path_factory)


@pytest.fixture(scope="module")
def html_report(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _some_report(store, tmp_path_factory, "--format", "html")


@pytest.fixture(scope="module")
def es_report(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _some_report(
        store, tmp_path_factory, "20260101-150000-preprocessing-ffff", "--lang", "es"
    )


def _row(text: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is `first_cell`."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r}")


def test_markdown_report_holds_the_tables_with_the_runs_numbers(md_report: Path) -> None:
    out = md_report
    text = (out / "report.md").read_text(encoding="utf-8")

    cnn = _row(text, "20260101-100000-simple-cnn-aaaa")
    assert cnn[1:] == [
        "simple-cnn", "simple_cnn", "2,122,186", "2,122,186",
        "94.00 %", "73.50 %", "69.37 %", "20.5", "9", "finished",
    ]  # fmt: skip
    transfer = _row(text, "20260101-120000-transfer-cccc")
    assert transfer[2:5] == ["MobileNetV2 (random init)", "2,270,794", "12,810"]
    assert _row(text, "20260101-130000-simple-cnn-dddd")[-1] == "failed"

    # The compare parent's own ranking, in its order; efficiency in points per M params; MACs summed.
    ranking = [_row(text, str(rank)) for rank in (1, 2, 3)]
    assert [r[1] for r in ranking] == [
        "ResNet50 (random init)", "VGG16 (random init)", "MobileNetV2 (random init)",
    ]  # fmt: skip
    assert ranking[0][2:6] == ["66.01 %", "24.10", "2.7", "4.1"]
    assert ranking[1][5] == "15.4" and ranking[2][4:6] == ["11.5", "0.3"]

    before_after = _row(text, "ResNet50 (random init)")  # the first such row: the ranking's
    assert before_after[0] == "ResNet50 (random init)"
    prep = [
        line for line in text.splitlines() if line.startswith("| ResNet50 (random init) | resnet")
    ]
    assert prep and prep[0].split("|")[3:6] == [" 27.02 % ", " 66.01 % ", " +39.0 "]

    assert "Your simple CNN reached a test accuracy of 69.37 %" in text
    assert "a difference of 18.2 points" in text
    # The corrupt folder is listed, not fatal.
    assert "20260101-160000-simple-cnn-zzzz" in text.split("## Unreadable runs")[1]

    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", text)
    assert "figures/20260101-100000-simple-cnn-aaaa-curves.png" in links
    assert "figures/20260101-100000-simple-cnn-aaaa-confusion.png" in links
    assert "figures/20260101-100000-simple-cnn-aaaa-per-class.png" in links
    assert sorted(links) == sorted(f"figures/{p.name}" for p in (out / "figures").iterdir())
    for link in links:
        _assert_png(out / link)


def test_random_init_runs_are_marked_in_every_table_and_caption(md_report: Path) -> None:
    text = (md_report / "report.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("|") and (
            "MobileNetV2" in line or "ResNet50" in line or "VGG16" in line
        ):
            assert "(random init)" in line, line
    captions = [c for c in re.findall(r"^\*(.+)\*$", text, re.M) if "transfer-cccc" in c]
    assert len(captions) == 3 and all("(random init)" in c for c in captions)


def test_html_is_one_self_contained_file(html_report: Path) -> None:
    out = html_report
    assert [p.name for p in out.iterdir()] == ["report.html"]
    page = (out / "report.html").read_text(encoding="utf-8")
    references = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert references and all(r.startswith("data:image/png;base64,") for r in references)
    assert not re.search(r"<(script|link|iframe)\b", page) and "url(" not in page
    for ref in references:
        import base64

        _assert_png(base64.b64decode(ref.split(",", 1)[1]))
    assert "<td>MobileNetV2 (random init)</td>" in page
    assert '<td class="num">69.37 %</td>' in page


def test_spanish_report_has_spanish_headings_and_decimal_commas(
    es_report: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (es_report / "report.md").read_text(encoding="utf-8")
    for heading in (
        "# Informe de cnnlab",
        "## Experimentos",
        "## Preprocesamiento: antes y después",
    ):
        assert heading in text
    assert "### Sobreajuste: la diferencia entre entrenamiento y validación" in text
    cnn = _row(text, "20260101-100000-simple-cnn-aaaa")
    assert cnn[3:9] == ["2.122.186", "2.122.186", "94,00 %", "73,50 %", "69,37 %", "20,5"]
    assert cnn[-1] == "terminada"
    assert "MobileNetV2 (inicialización aleatoria)" in text
    assert "(random init)" not in text and "69.37" not in text

    # Without --lang, the locale decides.
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "es_ES.UTF-8")
    one = ["report", "20260101-110000-mlp-bbbb", "--runs-dir", str(store)]
    assert main([*one, "-o", str(tmp_path / "from-locale")]) == 0
    assert "## Experimentos" in (tmp_path / "from-locale" / "report.md").read_text(encoding="utf-8")


def test_output_replaces_the_old_report_atomically(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "stale.txt").write_text("from an older report")
    one = ["report", "20260101-110000-mlp-bbbb", "--runs-dir", str(store), "-o", str(out)]
    assert main(one) == 0
    assert not (out / "stale.txt").exists() and (out / "report.md").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    # A failure half-way leaves the previous report as it was and no temporary folder behind.
    import engine.report.build as build

    before = (out / "report.md").read_text(encoding="utf-8")

    def broken(blocks: Any) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "render_markdown", broken)
    monkeypatch.setenv("CNNLAB_DEBUG", "")
    assert main(one) == 1
    assert (out / "report.md").read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_input_is_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def err() -> list[str]:
        return [line for line in capsys.readouterr().err.splitlines() if line.strip()]

    empty = tmp_path / "empty"
    empty.mkdir()
    assert _report(empty, tmp_path / "r1") == 1
    assert err() == [f"engine: error: no readable runs to report on in {empty}"]
    assert not (tmp_path / "r1").exists()

    assert _report(store, tmp_path / "r2", "--lang", "fr") == 2
    assert err() == ["engine: error: unknown language 'fr'; available: en, es"]

    assert main(["report", "nope", "--runs-dir", str(store), "-o", str(tmp_path / "r3")]) == 2
    assert err() == [f"engine: error: no run 'nope' under {store}"]

    assert main(["report", "--runs-dir", str(store), "-o", str(tmp_path / "r4")]) == 2
    assert "pass --all" in err()[0]

    # Naming only a corrupt run: listed, then the one-line error.
    code = main(["report", "20260101-160000", "--runs-dir", str(store), "-o", str(tmp_path / "r5")])
    assert code == 1 and err()[-1].endswith("(1 unreadable)")


def test_a_named_parent_brings_its_children(store: Path) -> None:
    from engine.report import collect_report

    data = collect_report(store, ["20260101-140000-compare-eeee"])
    assert [r.id for r in data.runs] == [
        "20260101-140000-compare-c0",
        "20260101-140000-compare-eeee",
        "20260101-140001-compare-c1",
        "20260101-140002-compare-c2",
    ]
    assert [r.macs for r in data.trained] == [4_100_000, 15_400_000, 300_000]
    assert data.parents("compare")[0].id == "20260101-140000-compare-eeee" and not data.corrupt


def test_runs_export_writes_one_row_per_run(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path, json_path = tmp_path / "runs.csv", tmp_path / "runs.json"
    args = ["runs", "export", "--csv", str(csv_path), "--json", str(json_path)]
    assert main([*args, "--runs-dir", str(store)]) == 0
    folders = sorted(p.name for p in store.iterdir() if (p / "run.json").exists())
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert sorted(r["id"] for r in rows) == folders and len(rows) == 10
    header = csv_path.read_text(encoding="utf-8").splitlines()[0].split(",")
    for column in (
        "id", "experiment", "status", "backbone", "random_init", "params_total",
        "params_trainable", "macs", "train_accuracy", "val_accuracy", "test_accuracy",
        "overfit_gap", "epochs_run", "config_epochs", "config_batch_size", "timing_wall",
    ):  # fmt: skip
        assert column in header, column
    cnn = next(r for r in rows if r["id"] == "20260101-100000-simple-cnn-aaaa")
    assert cnn["test_accuracy"] == "0.6937" and cnn["params_total"] == "2122186"
    assert cnn["config_batch_size"] == "64" and cnn["timing_wall"] == "40.1"
    child = next(r for r in rows if r["id"] == "20260101-140000-compare-c0")
    assert child["macs"] == "4100000" and child["random_init"] == "True"
    assert next(r for r in rows if r["id"].endswith("zzzz"))["status"] == "corrupt"

    records = json.loads(json_path.read_text(encoding="utf-8"))
    assert len(records) == len(rows) and list(records[0]) == header
    assert next(r for r in records if r["id"] == cnn["id"])["test_accuracy"] == 0.6937

    capsys.readouterr()
    assert main(["runs", "export", "--csv", "-", "--runs-dir", str(store)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split(",") == header
    assert main(["runs", "export", "--runs-dir", str(store)]) == 2


@pytest.mark.slow
def test_a_real_run_gets_its_filter_grid_and_macs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.events import ListSink, Reporter
    from engine.experiments import get_experiment
    from engine.runs import RunStore
    from engine.training import run_experiment

    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    cfg = get_experiment("simple-cnn").config(
        data="synthetic", subset=120, epochs=1, early_stopping=False
    )
    run = run_experiment(
        "simple-cnn", cfg, store=RunStore(tmp_path / "runs"), reporter=Reporter(ListSink())
    )
    out = tmp_path / "report"
    assert main(["report", run.id, "--runs-dir", str(tmp_path / "runs"), "-o", str(out)]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert f"### Your model simple_cnn, run {run.id}" in text
    assert "conv1 has **896 parameters**: 32 filters of 27 weights" in text
    grid = out / "figures" / f"{run.id}-filters.png"
    _assert_png(grid)
    from PIL import Image

    with Image.open(grid) as image:  # 32 filters: a grid of 8 columns × 4 rows, wider than tall
        assert image.width > image.height
    summary = json.loads((run.path / "summary.json").read_text())
    from engine.report.table_export import export_rows

    (row,) = export_rows(tmp_path / "runs")
    assert row["macs"] == summary["totals"]["macs"] > 0


def test_report_modules_import_nothing_heavy() -> None:
    """The report's code loads matplotlib only to draw, and never TensorFlow or textual."""
    import subprocess
    import sys

    code = (
        "import sys, engine.report, engine.report.cli, engine.report.table_export, engine.i18n\n"
        "heavy = {'tensorflow', 'keras', 'matplotlib', 'textual', 'onnx', 'tui', 'export'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_broken_files_beside_run_json_cost_a_figure_not_the_report(tmp_path: Path) -> None:
    from engine.i18n import language
    from engine.report import collect_report
    from engine.report.figures import first_layer_filters

    path = write_run(tmp_path / "runs", make_record("20260101-100000-simple-cnn-aaaa"))
    (path / "summary.json").write_text("{truncated")
    (path / "model.keras").write_bytes(b"not a zip")
    (run,) = collect_report(tmp_path / "runs").runs
    assert run.macs is None
    assert first_layer_filters(run, language("en")) is None
    conv = {"name": "conv1", "type": "Conv2D", "params": 896, "macs": 884_736}
    (path / "summary.json").write_text(json.dumps({"layers": [conv]}))
    (run,) = collect_report(tmp_path / "runs").runs
    assert run.macs == 884_736
    assert first_layer_filters(run, language("en")) is None  # the model file is still garbage
