"""Write a report folder atomically: build it in a temporary folder, then move it into place.

Markdown: `report.md` and `figures/*.png`. HTML: one `report.html` with the figures inside.
A report that fails half-way leaves the previous one (if any) untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from engine.i18n import Language
from engine.report.assemble import ReportData
from engine.report.document import Image, build_document
from engine.report.render import FIGURE_DIR, render_html, render_markdown

FORMATS = ("md", "html")


def write_report(data: ReportData, out_dir: Path, fmt: str, lang: Language) -> Path:
    """Write the report for `data` into `out_dir` (replacing what was there); returns the main file."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {FORMATS}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        from engine.errors import UsageError

        raise UsageError(f"{out_dir} exists and is not a folder")
    blocks = build_document(data, lang)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        if fmt == "md":
            (staging / FIGURE_DIR).mkdir()
            for block in blocks:
                if isinstance(block, Image):
                    (staging / FIGURE_DIR / block.name).write_bytes(block.png)
            (staging / "report.md").write_text(render_markdown(blocks), encoding="utf-8")
        else:
            (staging / "report.html").write_text(render_html(blocks, lang), encoding="utf-8")
        _swap_into_place(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir / f"report.{fmt}"


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename `staging` to `out_dir`; an existing `out_dir` is moved aside first, then deleted."""
    old: Path | None = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
        os.rmdir(old)
        os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except OSError:
        if old is not None:  # put the previous report back
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
