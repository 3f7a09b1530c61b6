"""HTML building blocks of the report: a self-contained page, tables, figures, notes."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence

import pandas as pd

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:1.5em 2em;background:#fff}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f0f0f0}td.l,th.l{text-align:left}
.good{color:#2e7d32;font-weight:600}.bad{color:#b71c1c;font-weight:600}
.note{background:#fff8e1;border-left:4px solid #f5b700;padding:.4em .8em;margin:.6em 0}
.meta{color:#555;font-size:.9em}figure{margin:.8em 0}img{max-width:100%;height:auto}
figcaption{color:#555;font-size:.85em}pre{background:#f4f4f4;padding:.8em;overflow:auto;
font-size:.8em}nav a{margin-right:1em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:.6em}
.grid figure{margin:0}summary{cursor:pointer;color:#333}
"""


def esc(text: object) -> str:
    """HTML-escaped text."""
    return html.escape(str(text), quote=True)


def fmt(value: object, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; other values as text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        x = float(value)
        if math.isnan(x):
            return "–"
        return f"{x:.{digits}g}"
    return str(value)


def table(frame: pd.DataFrame, left: Sequence[str] = (), classes: dict[str, str] | None = None,
          index: bool = False) -> str:
    """An HTML table of ``frame``; columns in ``left`` aligned left.

    ``classes`` maps a cell text to a CSS class (e.g. ``{"yes": "bad"}``).
    """
    df = frame.reset_index() if index else frame
    cols = [str(c) for c in df.columns]
    head = "".join(f'<th class="{"l" if c in left else ""}">{esc(c)}</th>' for c in cols)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(cols, row, strict=True):
            text = fmt(v)
            cls = ["l"] if c in left else []
            if classes and text in classes:
                cls.append(classes[text])
            cells.append(f'<td class="{" ".join(cls)}">{esc(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(png: bytes, alt: str, caption: str = "") -> str:
    """An embedded PNG (base64 data URI) with a caption."""
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def grid(items: Sequence[str]) -> str:
    """Figures side by side (as many per row as fit)."""
    return f'<div class="grid">{"".join(items)}</div>'


def details(summary: str, body: str) -> str:
    """A collapsed block."""
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def note(text: str) -> str:
    """A highlighted remark (e.g. a missing piece of the run)."""
    return f'<p class="note">{esc(text)}</p>'


def section(anchor: str, title: str, body: str) -> str:
    """A titled section."""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, meta: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole self-contained page: inline CSS, no script, no external resource."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "".join(section(a, t, b) for a, t, b in sections)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>"
            f"<h1>{esc(title)}</h1><p class=\"meta\">{meta}</p><nav>{nav}</nav>{body}"
            "</main></body></html>")


__all__ = ["details", "esc", "figure", "fmt", "grid", "note", "page", "section", "table"]
