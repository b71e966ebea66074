"""The TUI in Spanish: nav, section titles, footer keys, column headers, percentages, lessons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeEngine, plain, settle
from textual.widgets import DataTable, Static
from textual.widgets._footer import FooterKey

from tui.app import CnnLabApp
from tui.screens.compare import CompareScreen
from tui.screens.runs import RunsScreen
from tui.widgets.nav import NavBar
from tui.widgets.run_info import pct

CNN = "20260101-100000-simple-cnn-aaaa"


def footer_labels(app: CnnLabApp) -> list[str]:
    return [key.description for key in app.screen.query(FooterKey)]


async def test_spanish_nav_titles_footer_columns_and_decimal_comma(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root, lang="es")
    assert app.lang == "es"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await settle(pilot, lambda: screen.loaded)
        nav = str(screen.query_one(NavBar).render())
        assert "1 Experimentos" in nav and "2 Ejecuciones" in nav and "3 Comparar" in nav
        await settle(pilot, lambda: "Escribir informe" in footer_labels(app))
        assert {"Seleccionar", "Superponer curvas", "Escribir informe"} <= set(footer_labels(app))
        table = screen.query_one("#runs-table", DataTable)
        headers = [str(c.label) for c in table.columns.values()]
        assert "prueba" in headers and "experimento" in headers and "modelo" in headers
        row = [r.id for r in screen.shown].index(CNN)
        assert str(table.get_cell_at((row, table.get_column_index("test")))) == "69,4 %"
        gap = str(table.get_cell_at((row, table.get_column_index("gap"))))
        assert "," in gap and "." not in gap  # the train–val gap with a decimal comma too
        table.move_cursor(row=row)
        await settle(pilot, lambda: "69,37 %" in plain(screen.query_one("#run-preview", Static)))
        assert "69,37 %" in plain(screen.query_one("#run-preview", Static))
        assert "6 ejecuciones" in plain(screen.query_one("#runs-count", Static))
        await pilot.press("3")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await settle(pilot, lambda: bool(compare.gathered.compare_runs))
        titles = [plain(w) for w in compare.query(".section-title")]
        assert titles[0].startswith("Nueve backbones: clasificación por precisión en prueba")
        ranking = plain(compare.query_one("#ranking-table", Static))
        assert "66,01 %" in ranking and "24,1 M" in ranking and "0,027" in ranking
        assert "24.1 M" not in ranking


async def test_english_stays_the_default(runs_root: Path) -> None:
    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root)
    assert app.lang == "en"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        await settle(pilot, lambda: "Write report" in footer_labels(app))
        assert "2 Runs" in str(app.screen.query_one(NavBar).render())
    assert pct(0.6937) == "69.37 %"


def test_language_from_the_locale_and_unknown_ones_refused(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.errors import UsageError
    from tui.__main__ import main

    monkeypatch.setenv("LANG", "es_ES.UTF-8")
    assert CnnLabApp(engine=FakeEngine(), runs_root=runs_root).lang == "es"
    assert pct(0.6937) == "69,37 %"
    with pytest.raises(UsageError, match="available: en, es"):
        CnnLabApp(engine=FakeEngine(), runs_root=runs_root, lang="xx")
    assert main(["--lang", "xx", "--runs-dir", str(runs_root)]) == 2


async def test_spanish_experiments_screen_titles_form_and_monitor(runs_root: Path) -> None:
    from textual.widgets import Label, OptionList

    from tui.screens.experiments import ExperimentsScreen
    from tui.widgets.settings_form import SettingsForm

    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root, lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        await settle(pilot, lambda: isinstance(screen.form, SettingsForm))
        options = screen.query_one("#experiment-list", OptionList)
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any("CNN simple desde cero" in p for p in prompts)
        description = plain(screen.query_one("#exp-description", Static))
        assert "CNN simple desde cero" in description and "69,37 % en prueba" in description
        form = screen.form
        assert isinstance(form, SettingsForm)
        row = form.row("batch_size")
        assert plain(row.query_one(".setting-name", Label)) == "tamaño de lote"
        assert "máximo de épocas" in plain(form.row("epochs").query_one(".setting-help", Static))
        await settle(pilot, lambda: bool(screen.query("#live-header")))
        assert "No se está entrenando nada" in plain(screen.query_one("#live-header"))


async def test_spanish_data_screen(runs_root: Path) -> None:
    from tui.screens.data import DataScreen

    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root, data_source="synthetic", lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("4")
        data = app.screen
        assert isinstance(data, DataScreen)
        await settle(pilot, lambda: "clase" in plain(data.query_one("#data-counts", Static)))
        assert data.query_one("#counts-box").border_title == "imágenes por clase"
        counts = plain(data.query_one("#data-counts", Static))
        assert "validación" in counts and "total" in counts
        about = plain(data.query_one("#data-about", Static))
        assert "10 clases" in about and "división estratificada" in about


async def test_spanish_inspect_tabs_and_picker(runs_root: Path) -> None:
    from textual.widgets import TabbedContent

    from tui.screens.inspect import InspectScreen

    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root, lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, InspectScreen)
        await settle(pilot, lambda: "elige qué abrir" in plain(screen.query_one("#inspect-title")))
        tabs = screen.query_one("#inspect-tabs", TabbedContent)
        labels = [str(tabs.get_tab(pane.id or "").label) for pane in tabs.query("TabPane")]
        assert {"Capas", "Filtros", "Activaciones", "Preprocesamiento", "Lecciones"} <= set(labels)


def test_onnx_pane_percentages_with_a_decimal_comma() -> None:
    import tui.i18n
    from tui.widgets.onnx_pane import render_eval

    result = {
        "provider": {"requested": "cpu", "used": ["CPUExecutionProvider"]},
        "accuracy": 0.6937,
        "keras_test_accuracy": 0.7012,
        "data": "synthetic",
        "n": 100,
    }
    assert "ONNX test accuracy 69.37 % · Keras 70.12 %" in render_eval(result).plain
    tui.i18n.set_language("es")
    text = render_eval(result).plain
    assert "Precisión en prueba de ONNX 69,37 % · Keras 70,12 %" in text
    assert text.startswith("evaluación ")


# -- numbers ---------------------------------------------------------------------------------


def test_integer_groups_thousands_the_way_the_language_does() -> None:
    import tui.i18n
    from tui.i18n import integer, number, significant

    assert integer(1234567) == "1,234,567" and integer(12) == "12"
    assert number(-0.25, 3, signed=True) == "-0.250" and significant(0.012345, 3) == "0.0123"
    tui.i18n.set_language("es")
    assert integer(1234567) == "1.234.567" and integer(45000) == "45.000"
    assert integer(12) == "12"
    assert number(0.25, 3, signed=True) == "+0,250" and number(-0.25, 3, signed=True) == "-0,250"
    assert significant(0.012345, 3) == "0,0123"


def test_spanish_status_label_of_a_run_whose_model_is_gone(tmp_path: Path) -> None:
    from conftest import make_record, write_run

    import tui.i18n
    from engine.runs import RunStore
    from tui.widgets.run_info import run_status_text

    gone = write_run(tmp_path, make_record(CNN))
    (gone / "summary.json").write_text("{}")  # saved with the model, which was deleted since
    run = RunStore(tmp_path).open(CNN)
    assert run.model_missing and run.status_label == "finished (model missing)"
    assert run_status_text(run).plain == "finished (model missing)"
    tui.i18n.set_language("es")
    assert run_status_text(run).plain == "terminada (falta el modelo)"
    assert run.status_label == "finished (model missing)"  # the engine's own stays English


# -- the monitor's log, the queue and the Data screen -----------------------------------------


def monitor_log(app: CnnLabApp) -> str:
    from textual.widgets import RichLog

    log = app.screen.query_one("#live-log", RichLog)
    return "\n".join("".join(seg.text for seg in strip) for strip in log.lines)


async def test_spanish_monitor_log_progress_and_queue(runs_root: Path) -> None:
    from conftest import training_events

    from tui.screens.experiments import ExperimentsScreen
    from tui.widgets.settings_form import SettingsForm

    engine = FakeEngine((training_events("run-1", epochs=2, steps=4), 0, []))
    app = CnnLabApp(engine=engine, runs_root=runs_root, lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        await settle(pilot, lambda: isinstance(screen.form, SettingsForm))
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: "terminada: run-1" in monitor_log(app))
        log = monitor_log(app)
        assert "ejecución run-1 iniciada (simple-cnn)" in log
        assert "fase entrenamiento: 2 época(s) × 4 lotes" in log
        assert "época 1/2  pérdida 1,3000  precisión 0,5000  pérdida valid. 1,3000" in log
        assert "terminada: run-1  prueba 61,00 %  valid. 55,00 %  brecha 5,0 pts" in log
        for english in ("run run-1 started", "phase train", "epoch 1/2", "acc 0.5000", "test 61"):
            assert english not in log
        header = str(screen.query_one("#live-header").render())
        assert "datos synthetic: 400 entren. · 100 valid. · 100 prueba" in header
        assert "400 train" not in header
        progress = str(screen.query_one("#live-progress").render())
        assert "entrenamiento época 2/2" in progress and "lote 4/4" in progress
        assert "batch" not in progress
        await settle(pilot, lambda: screen.queue_list.option_count == 1 and not screen.running)
        queue = str(screen.queue_list.get_option_at_index(0).prompt)
        assert queue.startswith("✓") and "prueba 61,00 %" in queue and "test" not in queue


class BigDataEngine(FakeEngine):
    """The fake engine with CIFAR-sized counts, so they need thousands separators."""

    async def data_summary(self, source: str, samples: int, samples_file: Path) -> dict[str, Any]:
        info = await super().data_summary(source, samples, samples_file)
        info["counts"] = {split: dict.fromkeys(info["classes"], n) for split, n in SPLITS}
        info.update({split: n * len(info["classes"]) for split, n in SPLITS})
        return info


SPLITS = (("train", 4500), ("val", 500), ("test", 1000))


async def test_spanish_data_counts_group_thousands_with_a_dot(runs_root: Path) -> None:
    from tui.screens.data import DataScreen

    engine = BigDataEngine()
    app = CnnLabApp(engine=engine, runs_root=runs_root, data_source="synthetic", lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("4")
        data = app.screen
        assert isinstance(data, DataScreen)
        await settle(pilot, lambda: "45.000" in plain(data.query_one("#data-counts", Static)))
        counts = plain(data.query_one("#data-counts", Static))
        assert "4.500" in counts and "45.000" in counts and "10.000" in counts
        assert "4,500" not in counts and "45,000" not in counts
        about = plain(data.query_one("#data-about", Static))
        assert "entrenamiento 45.000 · validación 5.000 · prueba 10.000" in about


# -- Inspect: filters, activations, preprocessing histograms, ONNX, Deploy; the Diff screen -----


@pytest.fixture
def no_sample_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test images without a child process (test_tui_inspect's deterministic ones)."""
    from test_tui_inspect import fake_samples

    from tui.screens import inspect as inspect_screen

    monkeypatch.setattr(inspect_screen, "load_samples", fake_samples)


async def open_spanish_inspector(pilot: Any) -> Any:
    from tui.screens.inspect import InspectScreen

    await settle(pilot, lambda: getattr(pilot.app.screen, "loaded", None) is not None, 20)
    screen = pilot.app.screen
    assert isinstance(screen, InspectScreen) and screen.loaded is not None
    await pilot.pause()
    return screen


async def test_spanish_filters_activations_histograms_and_onnx_panes(
    tmp_path: Path, no_sample_child: None
) -> None:
    from test_inspect_support import HAND_META, hand_built_onnx

    path = hand_built_onnx(tmp_path / "hand.onnx", HAND_META)
    app = CnnLabApp(engine=FakeEngine(), runs_root=tmp_path, open_target=path, lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_spanish_inspector(pilot)
        title = plain(screen.query_one("#inspect-title", Static))
        assert "MACs por muestra (lote 1;" in title and "MACs per sample" not in title

        filters = screen.query_one("#filters-pane")
        await pilot.press("f")
        await settle(pilot, lambda: filters.report is not None)
        info = plain(filters.query_one("#filters-info", Static))
        assert "2 filtros de 3×3×3 = 27 pesos" in info and "parches RGB" in info
        assert "filters of" not in info and "RGB patches" not in info
        stats = plain(filters.query_one("#filters-stats", Static))
        assert "filtro" in stats and "media" in stats and "mean" not in stats
        scale = plain(filters.query_one("#filters-scale", Static))
        assert "los pesos R, G, B del filtro" in scale and "weights" not in scale

        acts = screen.query_one("#activations-pane")
        await pilot.press("a")
        await settle(
            pilot,
            lambda: acts.outputs is not None and bool(plain(acts.query_one("#act-stats", Static))),
        )
        caption = plain(acts.query_one("#act-image", Static))
        assert "imagen 1/" in caption and "real" in caption and "predicha" in caption
        assert "predicted" not in caption and "image 1/" not in caption
        act_stats = plain(acts.query_one("#act-stats", Static))
        assert "mapas de" in act_stats and "cada mapa coloreado" in act_stats
        assert "maps of" not in act_stats and "each map" not in act_stats

        prep = screen.query_one("#preprocessing-pane")
        await pilot.press("p")
        await settle(pilot, lambda: prep.stats is not None)
        from textual.widgets import Select

        prep.query_one("#prep-backbone", Select).value = "ResNet50"
        await settle(pilot, lambda: prep.stats["preprocessing"]["name"] == "resnet")
        await settle(
            pilot, lambda: "rango esperado" in plain(prep.query_one("#prep-range", Static))
        )
        line = plain(prep.query_one("#prep-range", Static))
        assert "espera" in line and "% del rango esperado)" in line
        assert "expects" not in line and "of the expected range" not in line
        spec = plain(prep.query_one("#prep-spec", Static))
        assert "modo 'caffe': BGR, centrado en cero con la media de ImageNet" in spec
        assert "resta la media de ImageNet (B 103,939, G 116,779, R 123,68)" in spec
        assert "zero-centred" not in spec and "subtract the ImageNet mean" not in spec

        onnx_pane = screen.query_one("#onnx-pane")
        await pilot.press("o")
        await settle(pilot, lambda: onnx_pane.info is not None)
        await pilot.pause()
        overview = plain(onnx_pane.query_one("#onnx-overview", Static))
        assert "histograma de ops" in overview and "metadatos" in overview
        assert "nodos · 83 parámetros" in overview and "inicializadores (pesos)" in overview
        for english in ("op histogram", "metadata ", "parameters", "initializers"):
            assert english not in overview


def hand_summary_run(root: Path) -> Path:
    """A run folder with a two-layer summary.json (no TensorFlow): a 3×3 conv and a dense head."""
    run = root / "hand"
    run.mkdir()
    conv = {
        "name": "conv",
        "type": "Conv2D",
        "input_shape": [None, 32, 32, 3],
        "output_shape": [None, 32, 32, 16],
        "params": 448,
        "trainable_params": 448,
        "config": {"filters": 16, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same"},
    }
    dense = {
        "name": "dense",
        "type": "Dense",
        "input_shape": [None, 16384],
        "output_shape": [None, 10],
        "params": 163850,
        "trainable_params": 0,
        "config": {"units": 10},
        "inbound": ["conv"],
    }
    totals = {"total": 164298, "trainable": 448, "frozen": 163850, "macs": 0}
    summary = {"model": "hand", "layers": [conv, dense], "totals": totals}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "run.json").write_text(json.dumps({"id": "hand", "status": "finished"}))
    return run


async def test_spanish_layer_arithmetic(tmp_path: Path, no_sample_child: None) -> None:
    from test_tui_inspect import text_of

    run = hand_summary_run(tmp_path)
    app = CnnLabApp(engine=FakeEngine(), runs_root=tmp_path, open_target=run, lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_spanish_inspector(pilot)  # the first layer is selected
        await settle(pilot, lambda: "conv  Conv2D" in text_of(screen, "#arithmetic"))
        conv = text_of(screen, "#arithmetic")
        assert "entrada 32×32×3, kernel 3×3, stride 1×1, padding 'same'" in conv
        assert "alto: (W − K + 2P)/S + 1 = (32 − 3 + 2·1)/1 + 1 = 32" in conv
        assert "('same' rellena P = 1 a cada lado → ceil(32/1) = 32)" in conv
        assert "ancho: igual, 32" in conv and "salida 32×32×16" in conv
        assert "parámetros = K·K·Cin·Cout + Cout (sesgo) = 3·3·3·16 + 16 = 448" in conv
        assert "reutilizados en las 1.024 posiciones de salida" in conv
        assert "MACs = Hout·Wout·K·K·Cin·Cout = 32·32·3·3·3·16 = 442.368" in conv
        assert "entrenable: entrenan 448 de 448 parámetros" in conv
        for english in ("input ", "height", "output ", "parameters", "reused", "pads"):
            assert english not in conv
        await pilot.press("down")
        await settle(pilot, lambda: "dense  Dense" in text_of(screen, "#arithmetic"))
        dense = text_of(screen, "#arithmetic")
        assert "entrada de 16.384 características → 10 neuronas" in dense
        assert "entradas·neuronas + neuronas (sesgo) = 16.384·10 + 10 = 163.850" in dense
        assert "MACs = 16.384·10 = 163.840" in dense
        assert "congelada: entrenan 0 de 163.850 parámetros" in dense
        assert "16,384" not in dense and "features" not in dense and "frozen" not in dense


def test_spanish_onnx_latency_line() -> None:
    import tui.i18n
    from tui.widgets.onnx_pane import render_eval

    result = {
        "data": "synthetic",
        "n": 12000,
        "provider": {"requested": "cpu", "used": ["CPUExecutionProvider"], "fell_back": True},
        "accuracy": 0.6937,
        "latency_ms": {"p50": 0.245, "p90": 0.3, "p99": 1.5},
        "throughput": {"batch": 256, "images_per_s": 12345.6},
    }
    english = render_eval(result).plain
    assert "latency at batch 1: p50 0.245 ms · p90 0.300 ms · p99 1.500 ms" in english
    assert "throughput at batch 256: 12,346 images/s" in english
    tui.i18n.set_language("es")
    text = render_eval(result).plain
    assert "latencia con lote 1: p50 0,245 ms · p90 0,300 ms · p99 1,500 ms" in text
    assert "rendimiento con lote 256: 12.346 imágenes/s" in text
    assert "sobre synthetic (12.000 imágenes de prueba)" in text
    assert "latency" not in text and "throughput" not in text and "(fell back)" not in text


def deploy_variants() -> list[dict[str, Any]]:
    """Two stored variants as `engine deploy` writes them: fp32 measured, int8 failed on cpu."""
    return [
        {
            "variant": "fp32",
            "file": "deploy/fp32.onnx",
            "size_bytes": 1_250_000,
            "results": [
                {
                    "provider": {"requested": "cpu", "primary": "cpu"},
                    "accuracy": 0.613,
                    "agreement": 1.0,
                    "max_abs_dprob": None,
                    "latency_ms": {"p50": 1.25, "p99": 2.5, "runs": 20},
                    "throughput": {"images_per_s": 12345.6},
                }
            ],
        },
        {
            "variant": "int8",
            "file": "deploy/int8.onnx",
            "size_bytes": 400_000,
            "results": [{"provider": {"requested": "cpu", "primary": "cpu"}, "accuracy": 0.6}],
            "layer_error": [
                {"node": "conv", "op": "Conv", "sqnr_db": None, "rel_l2": 0.0012, "max_abs": 0.004}
            ],
        },
    ]


async def test_spanish_deploy_pane_table(tmp_path: Path) -> None:
    from test_deploy import make_run

    run = make_run(tmp_path)
    record = json.loads((run.path / "run.json").read_text(encoding="utf-8"))
    run.update(onnx={**record["onnx"], "variants": deploy_variants()})
    app = CnnLabApp(engine=FakeEngine(), runs_root=tmp_path, open_target=run.path, lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_spanish_inspector(pilot)
        await pilot.press("d")
        pane = screen.deploy_pane
        await settle(pilot, lambda: pane.variants_table.row_count == 2)
        headers = [str(c.label) for c in pane.variants_table.columns.values()]
        assert headers[:5] == ["variante", "proveedor", "MB", "prec. %", "coinc. %"]
        assert "variant" not in headers and "acc %" not in headers
        assert pane.variants_table.get_row_at(0)[2:] == ["1,25", "61,3", "100,0", "n/d", "1,25", "2,5", "12.346"]  # fmt: skip
        assert pane.variants_table.get_row_at(1)[4:] == ["n/d"] * 5
        layer_headers = [str(c.label) for c in pane.layers_table.columns.values()]
        assert layer_headers[0] == "nodo" and "node" not in layer_headers
        assert pane.layers_table.get_row_at(0)[2] == "exacto"
        status = plain(pane.query_one("#deploy-status", Static))
        assert "2 variante(s) guardada(s) en run.json" in status and "stored" not in status


async def test_spanish_diff_screen_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx
    from test_inspect_support import HAND_META, hand_built_onnx

    import tui.screens.diff as diff_module
    from export.diff import diff_models
    from tui.screens.diff import DiffScreen

    a = hand_built_onnx(tmp_path / "a.onnx", HAND_META)
    b = hand_built_onnx(tmp_path / "b.onnx", HAND_META)
    model = onnx.load(str(b))
    for node in model.graph.node:
        node.name = f"renamed_{node.name}"
    onnx.save(model, str(b))
    result = diff_models(a, b, outputs=False)  # what the `engine diff` child prints, in-process
    monkeypatch.setattr(diff_module, "run_engine_json", lambda prefix, args, timeout=0: result)
    app = CnnLabApp(engine=FakeEngine(), runs_root=tmp_path, lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.push_screen(DiffScreen(a, b, runs_root=tmp_path))
        await settle(pilot, lambda: getattr(app.screen, "result", None) is not None)
        screen = app.screen
        summary = plain(screen.query_one("#diff-summary", Static))
        assert "parámetros  83  frente a  83" in summary and "MACs por muestra  888" in summary
        assert "nodos: 0 iguales, 7 cambiadas" in summary
        assert (
            "params " not in summary and "MACs per sample" not in summary and " vs " not in summary
        )
        table = screen.query_one("#diff-table", DataTable)
        assert table.get_row_at(0)[3] == "nuevo nombre (position)"
        assert "Diferencias · a.onnx frente a b.onnx" in plain(
            screen.query_one("#diff-title", Static)
        )


async def test_spanish_run_details_counts_and_onnx_tables(runs_root: Path) -> None:
    from tui.screens.run_detail import RunDetailScreen

    app = CnnLabApp(engine=FakeEngine(), runs_root=runs_root, lang="es")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await settle(pilot, lambda: runs.loaded)
        runs.table.move_cursor(row=[r.id for r in runs.shown].index(CNN))
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        detail = app.screen
        params = plain(detail.query_one("#box-params Static", Static))
        assert "2.122.186" in params and "entrenables" in params and "2,122,186" not in params
        metrics = plain(detail.query_one("#box-metrics Static", Static))
        assert "brecha (entren. − valid.)" in metrics and "épocas entrenadas" in metrics
        assert "gap" not in metrics and "epochs run" not in metrics
        onnx = plain(detail.query_one("#box-onnx Static", Static))
        assert "✓ 4,8e-07" in onnx and "cpu (en lugar de auto)" in onnx and "5.077" in onnx
        assert "fell back" not in onnx and "provider used" not in onnx
        title = detail.query_one("#box-confusion").border_title
        assert title is not None and str(title).startswith("matriz de confusión")


def test_spanish_onnx_node_arithmetic(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    import tui.i18n
    from export.onnx_layers import explain, summarize_onnx

    def weights(name: str, *shape: int) -> Any:
        return numpy_helper.from_array(np.ones(shape, np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "wc", "bc"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Conv", ["c", "wd"], ["d"], group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["d"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["y"], transB=1),
    ]
    inits = [
        weights("wc", 8, 3, 3, 3),
        weights("bc", 8),
        weights("wd", 8, 1, 3, 3),
        weights("wg", 1000, 2048),
        weights("bg", 1000),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1000])],
        inits,
    )
    path = tmp_path / "small.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    rows = {row["type"] + str(i): row for i, row in enumerate(summarize_onnx(path)["layers"])}
    lines = [list(explain(row)["lines"]) for row in rows.values()]
    english = "\n".join(line for block in lines for line in block)
    # The engine's own text stays English, whatever the app shows.
    assert "parameters = K·K·(Cin/group)·Cout + Cout (bias) = 3·3·3·8 + 8 = 224" in english
    assert "2,048 inputs → 1,000 outputs (a dense layer)" in english
    tui.i18n.set_language("es")
    try:
        spanish = "\n".join(tui.i18n.phrase(line) for block in lines for line in block)
    finally:
        tui.i18n.set_language("en")
    assert "entrada 3×32×32 (NCHW), kernel 3×3, stride 2×2, padding [1, 1, 1, 1]" in spanish
    assert "alto: (W − K + P_begin + P_end)/S + 1 = (32 − 3 + 1 + 1)/2 + 1 = 16" in spanish
    assert "parámetros = K·K·(Cin/grupos)·Cout + Cout (sesgo) = 3·3·3·8 + 8 = 224" in spanish
    assert "depthwise: grupos = Cin = 8, un filtro 3×3 por canal" in spanish
    assert "MACs por muestra = Hout·Wout·K·K·Cin/grupos·Cout = 16·16·3·3·3·8 = 55.296" in spanish
    assert "2.048 entradas → 1.000 salidas (una capa densa)" in spanish
    assert "parámetros = 2.048·1.000 + 1.000 = 2.049.000" in spanish
    assert "MACs: no contadas (MACs por muestra (lote 1)" in spanish  # the Relu
    for word in ("input", "parameters", "outputs", "not counted", "height", "width:", "2,048"):
        assert word not in spanish, word


def test_spanish_compare_source_label_says_the_status_in_spanish(runs_root: Path) -> None:
    import tui.i18n
    from engine.runs import RunStore
    from tui.screens.compare import source_label

    (parent,) = [r for r in RunStore(runs_root).list() if r.info.experiment == "compare"]
    assert source_label(parent).endswith("finished") or "· finished" in source_label(parent)
    tui.i18n.set_language("es")
    try:
        label = source_label(parent)
    finally:
        tui.i18n.set_language("en")
    assert "· terminada" in label and "finished" not in label and "filas" in label
