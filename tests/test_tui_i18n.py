"""The TUI in Spanish: nav, section titles, footer keys, column headers, percentages, lessons."""

from __future__ import annotations

from pathlib import Path

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
        assert "66,01 %" in plain(compare.query_one("#ranking-table", Static))


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
