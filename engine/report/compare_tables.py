"""The Compare screen's tables as files: the backbone ranking and the preprocessing before/after,
each as Markdown (to paste into the write-up) and CSV (for a spreadsheet).

The cells are the report's own (`engine.report.document`), so the tables read exactly as in
`engine report`, in the same language and number format. Files are written to a temporary folder
and moved into place, like the report.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path

from engine.i18n import Language
from engine.records import CompareRow
from engine.report.assemble import ReportData
from engine.report.build import _swap_into_place
from engine.report.document import Heading, Table, preprocessing_table, ranking_table
from engine.report.render import render_markdown


def table_csv(table: Table) -> str:
    """The table as CSV: a header row, then one row per line of the table."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.headers)
    writer.writerows(table.rows)
    return buffer.getvalue()


def compare_tables(
    data: ReportData,
    lang: Language,
    *,
    compare_run: str | None = None,
    transfer_rows: list[CompareRow] | None = None,
    preprocessing_run: str | None = None,
) -> list[tuple[str, str, Table]]:
    """(file stem, title, table) for the ranking and the before/after table that were asked for.

    The ranking comes from `compare_run` (a compare parent's id) or, failing that, from
    `transfer_rows`; children's MACs are looked up in `data`.
    """
    _ = lang._
    out: list[tuple[str, str, Table]] = []
    parent = data.find(compare_run)
    if parent is not None:
        rows = parent.record.compare_rows
        out.append(("ranking", _("Backbone ranking"), ranking_table(rows, data, lang)))
    elif transfer_rows:
        out.append(("ranking", _("Backbone ranking"), ranking_table(transfer_rows, data, lang)))
    prep = data.find(preprocessing_run)
    if prep is not None:
        out.append(
            (
                "preprocessing",
                _("Preprocessing: before and after"),
                preprocessing_table(prep.record.preprocessing_rows, lang),
            )
        )
    return out


def write_tables(tables: list[tuple[str, str, Table]], out_dir: Path) -> list[Path]:
    """Write `<stem>.md` and `<stem>.csv` for each table into `out_dir`; the files written."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    names: list[str] = []
    try:
        for stem, title, table in tables:
            markdown = render_markdown([Heading(2, title), table])
            (staging / f"{stem}.md").write_text(markdown, encoding="utf-8")
            (staging / f"{stem}.csv").write_text(table_csv(table), encoding="utf-8")
            names += [f"{stem}.md", f"{stem}.csv"]
        _swap_into_place(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return [out_dir / name for name in names]
