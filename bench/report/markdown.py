"""The report as Markdown for a pull request: tables inline, charts linked as PNG files beside it."""

from __future__ import annotations

import os
from pathlib import Path

from bench.report.document import Bullets, Document, Facts, Figure, Section
from bench.report.tables import Table


def _block(block, base: Path) -> str:
    if isinstance(block, Section):
        return f"## {block.title}"
    if isinstance(block, Facts):
        return f"**{block.title}**\n\n" + "\n".join(f"- {k}: {v}" for k, v in block.pairs)
    if isinstance(block, Figure):
        link = Path(os.path.relpath(block.png, base)).as_posix()
        return f"![{block.title}]({link})" + (f"\n\n_{block.caption}_" if block.caption else "")
    if isinstance(block, Table):
        return block.to_markdown()
    if isinstance(block, Bullets):
        return f"**{block.title}**\n\n" + "\n".join(f"- {i}" for i in block.items)
    raise TypeError(f"no Markdown for {type(block).__name__}")


def render(doc: Document, base: Path) -> str:
    """Markdown with chart links relative to `base` (the folder the .md file is written to)."""
    head = [f"# {doc.title}"] + ([doc.subtitle] if doc.subtitle else [])
    return "\n\n".join(head + [_block(b, base) for b in doc.blocks]) + "\n"
