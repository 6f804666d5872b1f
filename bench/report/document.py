"""A report as a list of blocks, built once and rendered to HTML (html.py) and Markdown (markdown.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.report.tables import Table


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


@dataclass
class Document:
    title: str
    subtitle: str = ""
    blocks: list[Section | Facts | Figure | Table | Bullets] = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks.extend(b for b in blocks if b is not None)
