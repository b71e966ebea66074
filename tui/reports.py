"""Writing the report from the TUI: where it goes, and the worker that asks the engine for it.

Reports go to `<runs root's parent>/reports/<kind>-<YYYYMMDD-HHMMSS>` (with the default runs root
`./runs`, that is `./reports/report-20260101-120000`): beside the runs, never inside the runs
root (a folder there would be taken for a run), and a new folder each time so nothing is
overwritten. The report itself is `engine report` run as a child process (matplotlib, maybe
model files: never loaded in the TUI).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textual.screen import Screen

from tui.i18n import N_, _


def reports_root(runs_root: Path) -> Path:
    """The folder that holds the reports written from the TUI."""
    return Path(runs_root).resolve().parent / "reports"


def new_report_folder(runs_root: Path, kind: str = "report") -> Path:
    """A fresh `<reports root>/<kind>-<timestamp>` path (not created; a suffix if taken)."""
    root = reports_root(runs_root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{kind}-{stamp}"
    n = 2
    while path.exists():
        path = root / f"{kind}-{stamp}-{n}"
        n += 1
    return path


def start_report(screen: Screen[Any], run_ids: Sequence[str]) -> None:
    """Ask the engine for the report of `run_ids` in a worker; notify where it went (or why not)."""
    app: Any = screen.app
    lang = getattr(app, "lang", None)
    output = new_report_folder(app.runs_root)
    ids = list(run_ids)
    noun = _("run") if len(ids) == 1 else _("runs")
    screen.notify(_("Writing the report of {count} {noun}…").format(count=len(ids), noun=noun))

    async def write() -> None:
        from tui.engine_client import EngineCommandError

        try:
            path = await app.engine.report(ids, output, app.runs_root, lang)
        except EngineCommandError as exc:
            screen.notify(
                _("The report failed: {reason}").format(reason=exc), severity="error", timeout=10
            )
            return
        screen.notify(
            _("Report written to {path}").format(path=path), title=_("Report"), timeout=15
        )

    screen.run_worker(
        write(), group="report", exit_on_error=False, description=N_("write the report")
    )
