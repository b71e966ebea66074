"""The write-up from the runs: `engine report` and `engine runs export`.

`collect_report(...)` reads run folders into a `ReportData` (no TensorFlow, no matplotlib);
`write_report(...)` draws the figures (matplotlib, Agg) and renders Markdown or one
self-contained HTML file, written to a temporary folder and moved into place.
"""

from __future__ import annotations

from engine.report.assemble import ReportData, ReportRun, collect_report
from engine.report.build import write_report

__all__ = ["ReportData", "ReportRun", "collect_report", "write_report"]
