"""`kdeep data list` and `kdeep data info NAME [--json] [--data-dir D]`: what datasets exist and what they hold."""
import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `data` command group."""
    group = subparsers.add_parser("data", help="list datasets and summarise one (path, shapes, class counts)")
    commands = group.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    listing = commands.add_parser("list", help="the datasets kdeep.data.load knows and where each is found")
    listing.add_argument("--data-dir", help="a folder to look in first")
    listing.set_defaults(func=list_command)
    summary = commands.add_parser("info", help="path found, shapes, class counts, pixel mean/std of a dataset")
    summary.add_argument("name", help="dataset name (see `kdeep data list`)")
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")
    summary.add_argument("--data-dir", help="a folder to look in first")
    summary.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    summary.set_defaults(func=info_command)


def list_command(args: argparse.Namespace) -> int:
    """Prints one row per dataset: image shape, train/test counts, classes, where it is found."""
    from kdeep.data.datasets import DATASETS, locate

    print(f"{'name':<14} {'image':<11} {'train':>6} {'test':>6} {'classes':>7}  found")
    for name, spec in DATASETS.items():
        found = locate(name, args.data_dir)
        shape = "x".join(map(str, spec.image_shape))
        print(f"{name:<14} {shape:<11} {spec.counts[0]:>6} {spec.counts[1]:>6} {spec.num_classes:>7}  "
              f"{found or 'not found: downloads on first load'}")
    return 0


def info_command(args: argparse.Namespace) -> int:
    """Prints the summary of `kdeep.data.info`, as text or JSON."""
    from kdeep.data import info

    summary = info(args.name, args.data_dir, download=not args.no_download)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['name']}: {summary['source']}\n  path: {summary['path']}")
    for split in ("train", "test"):
        part = summary[split]
        print(f"  {split}: images {tuple(part['images'])} {part['dtype']}, labels {part['labels']}, "
              f"class counts {part['class_counts']}")
    print(f"  classes: {', '.join(summary['class_names'])}")
    print(f"  train pixel mean {summary['pixel_mean']}, std {summary['pixel_std']} (of 1.0, per channel)")
    return 0
