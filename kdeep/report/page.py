"""A report page: a title, facts and sections (notes, a table, a figure), written as markdown and as one
self-contained HTML file (figures embedded) that fits a 1280-pixel window."""
from __future__ import annotations

import html
from dataclasses import dataclass, field

from kdeep.report.figures import img_tag
from kdeep.report.table import Table

STYLE = """body{font-family:sans-serif;margin:1.5em auto;max-width:1240px;padding:0 10px}
.wide{max-width:100%;overflow-x:auto}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #bbb;padding:3px 5px;text-align:right;overflow-wrap:anywhere}
td:first-child,th:first-child{text-align:left}th{background:#eee;vertical-align:bottom}
img{max-width:100%;height:auto}p{max-width:1100px}"""


@dataclass
class Section:
    """A part of a page: a heading (none when empty), sentences, a bulleted list, a table and a figure.

    Attributes:
        image: the figure's PNG file name beside the markdown (the HTML embeds `png` instead).
    """

    title: str = ""
    notes: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    table: Table | None = None
    image: str = ""
    png: bytes = b""

    def markdown(self) -> list[str]:
        """The section as markdown lines."""
        lines = [f"## {self.title}", ""] if self.title else []
        lines += [line for note in self.notes for line in (note, "")]
        lines += [f"- {bullet}" for bullet in self.bullets] + ([""] if self.bullets else [])
        lines += self.table.markdown() + [""] if self.table else []
        return lines + ([f"![{self.title or self.image}]({self.image})", ""] if self.image else [])

    def html(self) -> str:
        """The section as HTML (its figure embedded)."""
        e = html.escape
        parts = [f"<h2>{e(self.title)}</h2>"] if self.title else []
        parts += [f"<p>{e(note)}</p>" for note in self.notes]
        parts += ["<ul>" + "".join(f"<li>{e(b)}</li>" for b in self.bullets) + "</ul>"] if self.bullets else []
        parts += [self.table.html()] if self.table else []
        parts += [f"<p>{img_tag(self.png, self.title or self.image)}</p>"] if self.png else []
        return "\n".join(parts)


@dataclass
class Page:
    """A report: title, (label, value) facts listed under it, then the sections in order."""

    title: str
    facts: list[tuple[str, str]]
    sections: list[Section]

    def markdown(self) -> str:
        """report.md's text."""
        lines = [f"# {self.title}", ""] + [f"- {label}: {value}" for label, value in self.facts] + [""]
        for section in self.sections:
            lines += section.markdown()
        return "\n".join(lines)

    def html(self) -> str:
        """report.html's text: one file, figures embedded as base64 PNG."""
        e = html.escape
        facts = "".join(f"<li><b>{e(label)}</b>: {e(value)}</li>" for label, value in self.facts)
        body = "\n".join(section.html() for section in self.sections)
        head = f'<meta charset="utf-8"><title>{e(self.title)}</title>\n<style>{STYLE}</style>\n'
        return (f"<!doctype html>\n<html><head>{head}</head><body><h1>{e(self.title)}</h1><ul>{facts}</ul>\n{body}\n"
                "</body></html>\n")
