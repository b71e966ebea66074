"""Render the report's blocks: Markdown linking PNG files, or one self-contained HTML page.

The HTML embeds every figure as a base64 `data:` URI and carries its own style, so the one file
opens offline and can be mailed as it is.
"""

from __future__ import annotations

import base64
import html

from engine.i18n import Language
from engine.report.document import Block, Heading, Image, Paragraph, Table
from engine.report.model_lessons import Span

FIGURE_DIR = "figures"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_spans(spans: list[Span]) -> str:
    out = []
    for span in spans:
        text = span.text
        if span.style and text.strip():
            mark = "*" if span.style == "dim" else "**"
            lead, core, trail = (
                text[: len(text) - len(text.lstrip())],
                text.strip(),
                text[len(text.rstrip()) :],
            )
            text = f"{lead}{mark}{core}{mark}{trail}"
        out.append(text)
    # Markdown needs two trailing spaces for a line break inside a paragraph.
    return "".join(out).replace("\n", "  \n")


def _html_spans(spans: list[Span]) -> str:
    tags = {"bold": ("<strong>", "</strong>"), "bold red": ('<strong class="warn">', "</strong>"),
            "dim": ('<span class="dim">', "</span>")}  # fmt: skip
    out = []
    for span in spans:
        start, end = tags.get(span.style or "", ("", ""))
        out.append(f"{start}{html.escape(span.text)}{end}")
    return "".join(out).replace("\n", "<br>\n")


def render_markdown(blocks: list[Block]) -> str:
    """Markdown text; images are linked as `figures/<name>` (the caller writes those files)."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(_md_spans(block.spans) if block.spans else block.text)
        elif isinstance(block, Table):
            align = ["---:" if i in block.numeric else "---" for i in range(len(block.headers))]
            lines = [
                "| " + " | ".join(_md_cell(h) for h in block.headers) + " |",
                "| " + " | ".join(align) + " |",
            ]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, Image):
            alt = block.caption.replace("[", "(").replace("]", ")")
            out.append(f"![{alt}]({FIGURE_DIR}/{block.name})\n\n*{block.caption}*")
    return "\n\n".join(out) + "\n"


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; }
figcaption { font-style: italic; font-size: 0.9rem; }
.warn { color: #b00; }
.dim { color: #777; }
"""


def render_html(blocks: list[Block], lang: Language) -> str:
    """One HTML page with the figures embedded; nothing is fetched from anywhere."""
    title = next((b.text for b in blocks if isinstance(b, Heading)), "cnnlab")
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{lang.code}">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body = _html_spans(block.spans) if block.spans else html.escape(block.text)
            out.append(f"<p>{body}</p>")
        elif isinstance(block, Table):
            out.append("<table>")
            out.append(
                "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block.headers) + "</tr>"
            )
            for row in block.rows:
                cells = "".join(
                    f'<td class="num">{html.escape(c)}</td>'
                    if i in block.numeric
                    else f"<td>{html.escape(c)}</td>"
                    for i, c in enumerate(row)
                )
                out.append(f"<tr>{cells}</tr>")
            out.append("</table>")
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            caption = html.escape(block.caption)
            out.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
