"""Matplotlib (Agg) figures as PNG bytes and as self-contained HTML <img> tags, for the HTML reports."""
from __future__ import annotations

import base64
import html
import io
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(figure: Any, dpi: int = 100) -> bytes:
    """Renders a figure to PNG bytes and closes it.

    Args:
        figure: a matplotlib Figure.
        dpi: resolution.

    Returns:
        The PNG file's bytes.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(figure)
    return buffer.getvalue()


def img_tag(data: bytes, alt: str) -> str:
    """An <img> with the PNG embedded as base64 (the HTML needs no other file), at most as wide as its page."""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" style="max-width:100%" src="data:image/png;base64,{encoded}">'
