"""`kdeep` commands of the quantize group (placeholder until its issue lands)."""
import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds this group's commands (none yet)."""
