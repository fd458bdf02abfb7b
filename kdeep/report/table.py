"""Report tables: a column type, a table of formatted cells written as markdown and HTML, and CSV files."""
from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from kdeep import io

MISSING = "–"  # the cell of a value that was not measured


@dataclass(frozen=True)
class Column:
    """One column: the row key (also the CSV header), the header shown in markdown and HTML, the cell format."""

    key: str
    header: str
    fmt: str = "{}"

    def cell(self, row: Mapping[str, Any], missing: str = MISSING) -> str:
        """The row's value formatted, or `missing` when it is None or absent."""
        value = row.get(self.key)
        return missing if value is None else self.fmt.format(value)


@dataclass(frozen=True)
class Table:
    """Headers and rows of formatted cells."""

    headers: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], missing: str = MISSING) -> Table:
        """The table of `rows` (dicts keyed by column key) under `columns`."""
        return cls(tuple(c.header for c in columns), tuple(tuple(c.cell(r, missing) for c in columns) for r in rows))

    def markdown(self) -> list[str]:
        """The table as markdown lines (a `|` inside a cell escaped)."""
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        return [line(self.headers), "|" + "---|" * len(self.headers), *map(line, self.cells)]

    def html(self) -> str:
        """The table as an HTML <table> inside a horizontally scrolling <div>."""
        e = html.escape
        head = "".join(f"<th>{e(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in self.cells)
        return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def write_csv(path: str | os.PathLike, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], *,
              formatted: bool = False) -> Path:
    """Writes the rows as CSV under the columns' keys, atomically.

    Args:
        path: the CSV file.
        columns: the columns, in order.
        rows: dicts keyed by column key.
        formatted: write each cell as the table shows it (else the raw value); a missing value is empty.
    """
    keys = [c.key for c in columns]
    values = [{c.key: c.cell(row, "") if formatted else row.get(c.key) for c in columns} for row in rows]
    return io.write_csv(path, values, keys)
