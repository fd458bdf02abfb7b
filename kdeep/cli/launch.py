"""`kdeep launch`: run a kdeep command as N local multi-worker processes, or in one process on N CPU devices."""
import argparse

from kdeep.cli.types import POSITIVE


DESCRIPTION = (
    "Starts N local worker processes, each with its TF_CONFIG, runs the kdeep command after `--` in each (`train` is "
    "assumed when it starts with an option; `--strategy multi-worker` is added unless given), streams their output "
    "as `[worker i] ...` and exits non-zero if any worker fails. Each worker's TensorFlow gRPC server listens on its "
    "port on EVERY network interface (TensorFlow binds [::]/0.0.0.0, although TF_CONFIG names 127.0.0.1) with no "
    "authentication: use it on a trusted machine and network, or --one-process."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kdeep launch --workers N [--port-base P | --one-process] -- <kdeep train args>`."""
    help_line = "run `kdeep train` as N local workers of one multi-worker cluster (or on N devices of one process)"
    parser = subparsers.add_parser("launch", help=help_line, description=DESCRIPTION)
    parser.add_argument("--workers", type=POSITIVE, default=2,
                        help="worker processes, or logical CPU devices with --one-process (default 2)")
    parser.add_argument("--port-base", type=int, default=None,
                        help="worker i uses port PORT_BASE+i (default: free ports)")
    parser.add_argument("--one-process", action="store_true",
                        help="no network: one process trains with MirroredStrategy over N logical CPU devices (the "
                        "same synchronous data-parallel training; multi-worker processes each open a TensorFlow "
                        "gRPC port on every network interface, unauthenticated)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- then the kdeep command, e.g. -- train --model deepconvnet --out runs/mw")
    parser.set_defaults(func=_launch)


def _launch(args: argparse.Namespace) -> int:
    from kdeep.distribute.launch import launch_kdeep

    return launch_kdeep(args.workers, args.command, port_base=args.port_base, one_process=args.one_process)
