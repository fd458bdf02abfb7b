"""Figures for the reports: matplotlib (Agg) figures as PNG bytes and self-contained HTML <img> tags, and labels
placed on scatter points so none covers another."""
from __future__ import annotations

import base64
import html
import io
from typing import Any

FIGURE_WIDTH = 12.4  # inches at 100 dpi: a figure as wide as the report page (fits a 1280-pixel window)


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(figure: Any, dpi: int = 100, *, layout: tuple[float, float, float, float] | None = None) -> bytes:
    """Renders a figure to PNG bytes and closes it.

    Args:
        figure: a matplotlib Figure.
        dpi: resolution.
        layout: when given, `figure.tight_layout(rect=layout)` first (the part of the figure the axes fill, e.g.
            (0, 0.2, 1, 1) leaves the bottom fifth to a legend).

    Returns:
        The PNG file's bytes.
    """
    if layout is not None:
        figure.tight_layout(rect=layout)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(figure)
    return buffer.getvalue()


def img_tag(data: bytes, alt: str) -> str:
    """An <img> with the PNG embedded as base64 (the HTML needs no other file), at most as wide as its page."""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" style="max-width:100%" src="data:image/png;base64,{encoded}">'


# Label offsets tried in order, in points from the marker: (dx, dy, horizontal alignment).
_LABEL_OFFSETS = ((5, 4, "left"), (5, -12, "left"), (-5, 4, "right"), (-5, -12, "right"),
                  (5, 14, "left"), (5, -22, "left"), (-5, 14, "right"), (-5, -22, "right"))


def label_points(axis: Any, points: list[tuple[float, float, str]], fontsize: int = 8) -> list[Any]:
    """Labels scatter points so that no label covers another label or a marker, where the axes leave room.

    Call it after the axes' scales, limits and the figure layout are final. Each label takes the first of eight
    offsets around its point whose text box stays inside the axes and overlaps no marker and no label placed
    before it (points are taken from the top down); if none is free it takes the first.

    Args:
        axis: the matplotlib Axes holding the points.
        points: (x, y, text) per point, in data coordinates.
        fontsize: label size in points.

    Returns:
        The Annotation objects, in the order of `points`.
    """
    from matplotlib.transforms import Bbox

    renderer = axis.figure.canvas.get_renderer()
    marker = 4 * axis.figure.dpi / 72  # half a marker's width, in pixels
    taken = []
    for x, y in axis.transData.transform([(x, y) for x, y, _ in points]):
        taken.append(Bbox([[x - marker, y - marker], [x + marker, y + marker]]))
    frame = axis.get_window_extent(renderer)
    notes: dict[int, Any] = {}
    for index in sorted(range(len(points)), key=lambda i: -points[i][1]):
        x, y, text = points[index]
        note = axis.annotate(text, (x, y), xytext=_LABEL_OFFSETS[0][:2], textcoords="offset points", fontsize=fontsize)
        for dx, dy, align in _LABEL_OFFSETS + (_LABEL_OFFSETS[0],):
            note.xyann = (dx, dy)
            note.set_horizontalalignment(align)
            box = note.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.padded(2).overlaps(other) for other in taken):
                break
        taken.append(box)
        notes[index] = note
    return [notes[i] for i in range(len(points))]
