"""One self-contained HTML file: CSS inline, charts inlined as base64 PNG; nothing is fetched from anywhere."""

from __future__ import annotations

import base64
import html

from bench.report.document import Bullets, Document, Facts, Figure, Section
from bench.report.tables import Table

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0 auto;
       max-width: 1300px; padding: 1.2em 2em; color: #1b1f24; line-height: 1.4; }
h1 { margin-bottom: 0.1em; } .subtitle { color: #57606a; margin-top: 0; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; margin-top: 1.6em; }
.facts { display: flex; flex-wrap: wrap; gap: 0 2.5em; } .facts > div { flex: 1 1 0; min-width: 320px; }
.facts table { font-size: 0.9em; }
.facts th { text-align: left; color: #57606a; font-weight: normal; white-space: nowrap; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.8em; } .wide { overflow-x: auto; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }
th, td { padding: 0.25em 0.5em; border-bottom: 1px solid #eaeef2; vertical-align: top; }
thead th { border-bottom: 2px solid #d0d7de; text-align: left; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.good { color: #1a7f37; } .bad { color: #cf222e; } .warn { color: #9a6700; } .dim { color: #6e7781; }
figure { margin: 1em 0 1.8em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption, .note { color: #57606a; font-size: 0.85em; }
"""


def _facts(block: Facts) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in block.pairs)
    return f'<div><h3>{html.escape(block.title)}</h3><table>{rows}</table></div>'


def _figure(block: Figure) -> str:
    data = base64.b64encode(block.png.read_bytes()).decode("ascii")
    caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
    return (f'<figure><img alt="{html.escape(block.title)}" src="data:image/png;base64,{data}">{caption}'
            f"</figure>")


def _block(block) -> str:
    if isinstance(block, Section):
        return f"<h2>{html.escape(block.title)}</h2>"
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Table):
        return block.to_html()
    if isinstance(block, Bullets):
        items = "".join(f"<li>{html.escape(i)}</li>" for i in block.items)
        return f"<h3>{html.escape(block.title)}</h3><ul>{items}</ul>"
    raise TypeError(f"no HTML for {type(block).__name__}")


def render(doc: Document) -> str:
    parts, facts = [], []
    for block in doc.blocks + [None]:
        if isinstance(block, Facts):  # consecutive facts sit side by side
            facts.append(_facts(block))
            continue
        if facts:
            parts.append(f'<div class="facts">{"".join(facts)}</div>')
            facts = []
        if block is not None:
            parts.append(_block(block))
    subtitle = f'<p class="subtitle">{html.escape(doc.subtitle)}</p>' if doc.subtitle else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(doc.title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>\n'
            f"<body><h1>{html.escape(doc.title)}</h1>{subtitle}\n" + "\n".join(parts) + "\n</body></html>\n")
