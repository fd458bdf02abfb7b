"""Argument types shared by the command modules: integers with a lower bound, checked by argparse (one-line errors)."""
import argparse
from typing import Callable


def at_least(low: int) -> Callable[[str], int]:
    """An argparse `type` for integers >= `low` (e.g. `at_least(1)` for counts of images or epochs)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"  # argparse names the type in its message
    return parse


POSITIVE, NON_NEGATIVE = at_least(1), at_least(0)
