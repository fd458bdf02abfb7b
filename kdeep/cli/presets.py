"""`kdeep presets [--json]`, `kdeep presets show NAME` and `kdeep presets publish RUN`: the pretrained presets."""
import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `presets` command group (no subcommand lists them)."""
    group = subparsers.add_parser("presets", help="pretrained models shipped with kdeep, with their accuracy",
                                  description="Trained weights inside kdeep (offline). Use a preset's name wherever "
                                              "a command takes a model: kdeep predict resnet20.fashion_mnist x.png")
    group.add_argument("--json", action="store_true", help="print the cards as JSON")
    group.set_defaults(func=list_command)
    commands = group.add_subparsers(dest="presets_command", metavar="SUBCOMMAND")
    show = commands.add_parser("show", help="one preset's model card: data, recipe and command, seed, accuracy")
    show.add_argument("name", help="preset name (see `kdeep presets`)")
    show.add_argument("--json", action="store_true", help="print the card as JSON")
    show.set_defaults(func=show_command)
    publish = commands.add_parser("publish", help="store a finished run as a preset inside kdeep (maintainers)")
    publish.add_argument("run", help="finished run directory of a registered model")
    publish.add_argument("--name", help="preset name <model>.<tag> (default <model>.<dataset>)")
    publish.add_argument("--storage", choices=("float16", "float32"), default="float16",
                         help="dtype of the stored weights (default float16)")
    publish.set_defaults(func=publish_command)


def list_command(args: argparse.Namespace) -> int:
    """One row per preset: name, model and width, dataset, test accuracy, parameters, file size."""
    from kdeep.models.presets import list_presets

    presets = list_presets()
    if args.json:
        print(json.dumps([preset.to_dict() for preset in presets], indent=2))
        return 0
    print(f"{'preset':<28} {'model':<20} {'dataset':<14} {'top-1':>7} {'params':>9} {'file':>9}  stored")
    for preset in presets:
        model = preset.model if preset.width == 1.0 else f"{preset.model}@{preset.width:g}"
        print(f"{preset.name:<28} {model:<20} {preset.dataset:<14} {100 * preset.test_accuracy:6.2f}% "
              f"{preset.params:>9,} {preset.weights_file.stat().st_size / 1024:>7.0f}KB  {preset.storage}")
    return 0


def show_command(args: argparse.Namespace) -> int:
    """The card of one preset."""
    from kdeep.models.presets import get

    preset = get(args.name)
    if args.json:
        print(json.dumps(preset.to_dict(), indent=2))
        return 0
    print(f"{preset.name}: {preset.model} (width {preset.width:g}, {preset.params:,} parameters) trained on "
          f"{preset.dataset}")
    print(f"  test accuracy {100 * preset.test_accuracy:.2f}% with the stored {preset.storage} weights "
          f"({100 * preset.run_test_accuracy:.2f}% before storing)")
    print(f"  input {'x'.join(map(str, preset.input_shape))}, labels: {', '.join(preset.labels)}")
    print(f"  trained by: {preset.train_command}")
    print(f"  seed {preset.seed}, {preset.epochs} epochs, {preset.train_seconds:,.0f} s on {preset.machine}, "
          f"{preset.date}")
    print(f"  data: {preset.data_license}")
    print(f"  weights: {preset.weights_file} (sha256 {preset.sha256})")
    return 0


def publish_command(args: argparse.Namespace) -> int:
    """Publishes a run as a preset and prints where it went."""
    from kdeep.train.publish import publish

    preset = publish(args.run, args.name, storage=args.storage)
    print(f"kdeep: preset {preset.name}: test accuracy {100 * preset.test_accuracy:.2f}% with {preset.storage} "
          f"weights ({100 * preset.run_test_accuracy:.2f}% in the run); {preset.weights_file}")
    return 0
