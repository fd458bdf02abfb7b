"""Progress lines of long jobs: the library says what it is doing; the CLI shows it, a Python user may opt in.

Library code calls `say("converting int8 (4/11)")` (an INFO record of the `kdeep` logger) and `warn(...)` (a
WARNING record, which Python prints to stderr even when nothing is configured). The command line shows every
record on stderr as `kdeep: ...` (`shown()`); from Python, `kdeep.progress.show()` does the same.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator, TextIO

LOGGER = logging.getLogger("kdeep")


class _Format(logging.Formatter):
    """`kdeep: message`, and `kdeep: warning: message` for warnings."""

    def format(self, record: logging.LogRecord) -> str:
        kind = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"kdeep: {kind}{record.getMessage()}"


def say(message: str) -> None:
    """A progress line (shown by the CLI, and from Python after `show()`)."""
    LOGGER.info(message)


def warn(message: str) -> None:
    """A warning line (always shown on stderr, as `kdeep: warning: ...` once `show()` or the CLI set it up)."""
    LOGGER.warning(message)


def show(stream: TextIO | None = None) -> logging.Handler:
    """Prints progress and warnings to `stream` (sys.stderr when None) from now on; returns the handler added.

    The stream is bound now: a block that later redirects sys.stderr (`kdeep.quiet.silenced`) does not hide them.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Format())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False  # not twice through a handler on the root logger (absl installs one)
    return handler


@contextlib.contextmanager
def shown(stream: TextIO | None = None) -> Iterator[None]:
    """Within the block, progress and warnings are printed to `stream` (sys.stderr when None)."""
    level, propagate = LOGGER.level, LOGGER.propagate
    handler = show(stream)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
        LOGGER.propagate = propagate
