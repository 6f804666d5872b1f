"""A report as a list of blocks, built once and written as one self-contained HTML file (CSS inline, charts inlined
as base64 PNG: nothing is fetched from anywhere) and as Markdown for a pull request (charts linked as PNG files)."""

from __future__ import annotations

import base64
import html
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class Section:
    title: str


@dataclass
class Facts:
    """Label: value lines (the run, its environment)."""

    title: str
    pairs: list[tuple[str, str]]


@dataclass
class Figure:
    """A chart saved as PNG (inlined into HTML, linked from Markdown) and SVG."""

    title: str
    png: Path
    svg: Path
    caption: str = ""


@dataclass
class Bullets:
    title: str
    items: list[str]


def _html(block) -> str:
    if isinstance(block, Section):
        return f"<h2>{html.escape(block.title)}</h2>"
    if isinstance(block, Facts):
        rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in block.pairs)
        return f"<div><h3>{html.escape(block.title)}</h3><table>{rows}</table></div>"
    if isinstance(block, Figure):
        data = base64.b64encode(block.png.read_bytes()).decode("ascii")
        caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
        return f'<figure><img alt="{html.escape(block.title)}" src="data:image/png;base64,{data}">{caption}</figure>'
    if isinstance(block, Table):
        return block.to_html()
    items = "".join(f"<li>{html.escape(i)}</li>" for i in block.items)
    return f"<h3>{html.escape(block.title)}</h3><ul>{items}</ul>"


def _markdown(block, base: Path) -> str:
    if isinstance(block, Section):
        return f"## {block.title}"
    if isinstance(block, Figure):
        link = Path(os.path.relpath(block.png, base)).as_posix()
        return f"![{block.title}]({link})" + (f"\n\n_{block.caption}_" if block.caption else "")
    if isinstance(block, Table):
        return block.to_markdown()
    lines = (f"{k}: {v}" for k, v in block.pairs) if isinstance(block, Facts) else block.items
    return f"**{block.title}**\n\n" + "\n".join(f"- {line}" for line in lines)


@dataclass
class Document:
    title: str
    subtitle: str = ""
    blocks: list[Section | Facts | Figure | Table | Bullets] = field(default_factory=list)

    def add(self, *blocks) -> None:
        """Append the blocks, leaving out None and bullet lists without items."""
        self.blocks.extend(b for b in blocks if b is not None and not (isinstance(b, Bullets) and not b.items))

    def to_html(self) -> str:
        parts = []
        for facts, blocks in itertools.groupby(self.blocks, key=lambda b: isinstance(b, Facts)):
            html_blocks = [_html(b) for b in blocks]
            parts += [f'<div class="facts">{"".join(html_blocks)}</div>'] if facts else html_blocks  # side by side
        title = html.escape(self.title)
        subtitle = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
                f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>\n'
                f"<body><h1>{title}</h1>{subtitle}\n" + "\n".join(parts) + "\n</body></html>\n")

    def to_markdown(self, base: Path) -> str:
        """Markdown with chart links relative to `base` (the folder the .md file is written to)."""
        head = [f"# {self.title}"] + ([self.subtitle] if self.subtitle else [])
        return "\n\n".join(head + [_markdown(b, base) for b in self.blocks]) + "\n"

    def write(self, markdown_file: Path | None, html_file: Path | None) -> list[Path]:
        """Write the Markdown and/or the HTML file (creating their folders); returns the paths written."""
        written = [p for p in (markdown_file, html_file) if p]
        for path in written:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.to_markdown(path.parent) if path is markdown_file else self.to_html())
        return written
