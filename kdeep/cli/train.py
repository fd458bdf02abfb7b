"""`kdeep train`, `kdeep evaluate`, `kdeep finetune` and `kdeep run`: the training commands."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from kdeep.cli.types import NON_NEGATIVE, POSITIVE
from kdeep.job import DEFAULT_OUT as DEFAULT_RUN_OUT
from kdeep.job import DEFAULT_RECIPE as DEFAULT_RUN_RECIPE
from kdeep.train.config import (AUGMENTS, OPTIMIZERS, PRECISIONS, RECIPES, SCHEDULES, SELECTIONS, STRATEGIES,
                                TrainConfig)

# TrainConfig fields exposed as flags: field -> (type or choices, help). Flags default to None, so a recipe's
# value (or TrainConfig's default) applies unless the flag is given; each help names both (`_defaults`).
CONFIG_FLAGS: dict[str, tuple[Any, str]] = {
    "width": (float, "channel multiplier of VGG, GoogLeNet and ResNet, in (0, 4]"),
    "epochs": (int, "epochs to train"),
    "batch_size": (int, "global batch size"),
    "optimizer": (OPTIMIZERS, "optimizer"),
    "lr": (float, "peak learning rate"),
    "momentum": (float, "SGD momentum"),
    "nesterov": (bool, "SGD with Nesterov momentum"),
    "schedule": (SCHEDULES, "learning-rate schedule (formulas: docs/training.md)"),
    "decay_rate": (float, "gamma of step/exponential/plateau"),
    "step_epochs": (int, "epochs between step decays"),
    "warmup_epochs": (float, "warmup length of warmup_cosine"),
    "min_lr": (float, "floor of cosine and plateau"),
    "patience": (int, "plateau patience in epochs"),
    "early_stopping": (int, "stop after N epochs without a better validation accuracy (0: off; needs a "
                            "validation split)"),
    "weight_decay": (float, "decoupled weight decay"),
    "label_smoothing": (float, "label smoothing in [0, 1)"),
    "mixup": (float, "mixup: blend each training batch with itself in another order, labels likewise, by a "
                     "weight ~ Beta(a, a) (e.g. 0.2; 0: off)"),
    "ema": (float, "momentum of a moving average of the weights, kept as the final model (e.g. 0.999)"),
    "init": (str, "start from these trained weights: a preset name, run directory or .keras file of the same model"),
    "teacher": (str, "distil from these trained models (softmax averaged): preset names, run directories or .keras "
                     "files, separated by commas"),
    "distill_alpha": (float, "with --teacher: weight of the labels' loss, in [0, 1] (the teacher's takes the rest)"),
    "distill_temperature": (float, "with --teacher: temperature that softens both models' outputs"),
    "augment": (tuple(a for a in AUGMENTS if a), "augmentation preset"),
    "mixed_precision": (PRECISIONS, "dtype policy (outputs stay float32)"),
    "jit_compile": (bool, "XLA-compile the train step"),
    "seed": (int, "random seed"),
    "val_split": (int, "validation images held out from the end of the training set (0: none)"),
    "limit": (int, "use only the first N training images"),
    "select": (SELECTIONS, "model.keras = final epoch or best validation accuracy"),
    "strategy": (STRATEGIES, "tf.distribute strategy"),
}
DISTILL_FLAGS = ("teacher", "distill_alpha", "distill_temperature")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds train, evaluate, finetune and run."""
    train = subparsers.add_parser("train", help="train a model into a resumable run directory",
                                  description="Train a model; rerunning the same command resumes the run. Every "
                                              "training flag not given takes the --recipe's value, else "
                                              "TrainConfig's default (each flag's help shows both).")
    train.add_argument("--model", default="deepconvnet", help="registered model name (see `kdeep models`)")
    train.add_argument("--dataset", default="mnist", help="dataset name, or a folder with one subfolder of images "
                       "per class (its train/ and test/ subfolders, else every fifth image held out for testing)")
    train.add_argument("--recipe", choices=tuple(RECIPES),
                       help="start from a named recipe (flags override it; default: none, i.e. TrainConfig's defaults)")
    train.add_argument("--ensemble", type=POSITIVE, metavar="K", help="train K members (seeds seed..seed+K-1) and "
                                                                 "average them into ensemble.keras")
    train.add_argument("--out", required=True, help="run directory (created; an existing one is resumed)")
    _add_config_flags(train)
    train.set_defaults(func=_train)

    evaluate = subparsers.add_parser("evaluate", help="accuracy, loss, per-class accuracy, confusion matrix")
    evaluate.add_argument("model", help="run directory, .keras file or preset name (kdeep presets)")
    evaluate.add_argument("--dataset", help="dataset name or image folder (its test split); a run directory's "
                          "own dataset by default (another one is refused)")
    evaluate.add_argument("--limit", type=POSITIVE, help="only the first N test images")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.set_defaults(func=_evaluate)

    finetune = subparsers.add_parser("finetune", help="transfer a trained model to a new dataset",
                                     description="New head on a trained model: train it with the backbone "
                                                 "frozen, then unfreeze the top blocks at a lower LR. Training "
                                                 "flags not given take TrainConfig's defaults (shown in each help).")
    finetune.add_argument("source", help="run directory, .keras file or preset name of the trained model")
    finetune.add_argument("--dataset", required=True, help="dataset name or image folder of the new task")
    finetune.add_argument("--num-classes", type=POSITIVE, help="classes of the new task (default: from the labels)")
    finetune.add_argument("--head-epochs", type=POSITIVE, help="epochs with the backbone frozen (default: --epochs)")
    finetune.add_argument("--unfreeze-blocks", type=NON_NEGATIVE, default=2, help="top blocks trained in phase 2")
    finetune.add_argument("--lr-factor", type=float, default=0.1, help="phase-2 LR = lr * factor")
    finetune.add_argument("--out", required=True, help="transfer directory (head/ and finetune/ runs)")
    _add_config_flags(finetune, leave_out=("init", *DISTILL_FLAGS))  # the source is the start
    finetune.set_defaults(func=_finetune)

    run = subparsers.add_parser("run", help="the main job: DeepConvNet on MNIST, train, evaluate, quantize",
                                description="Train DeepConvNet on MNIST with a quick recipe, evaluate it, then "
                                            "quantize it and write the report. No flags needed.")
    run.add_argument("--out", default=DEFAULT_RUN_OUT, help=f"output directory (default {DEFAULT_RUN_OUT})")
    run.add_argument("--recipe", default=DEFAULT_RUN_RECIPE, choices=tuple(RECIPES),
                     help="training recipe (default %(default)s)")
    run.add_argument("--epochs", type=POSITIVE, help="override the recipe's epochs (" + ", ".join(
        f"{name} {values.get('epochs', TrainConfig.epochs)}" for name, values in RECIPES.items()) + ")")
    run.add_argument("--limit", type=POSITIVE, help="quick tries: train on the first N training images and score "
                     "the quantized variants on the first N test images")
    run.add_argument("--no-quantize", action="store_true", help="stop after training and evaluation")
    run.set_defaults(func=_run)


def _add_config_flags(parser: argparse.ArgumentParser, leave_out: tuple[str, ...] = ()) -> None:
    """One flag per CONFIG_FLAGS entry (--batch-size for batch_size, ...), except `leave_out`; each help names the
    value used when the flag is not given."""
    for name, (kind, text) in CONFIG_FLAGS.items():
        if name in leave_out:
            continue
        flag, text = "--" + name.replace("_", "-"), f"{text} ({_defaults(name)})".replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag, action="store_true", default=None, help=text)
        elif isinstance(kind, tuple):
            parser.add_argument(flag, choices=kind, help=text)
        else:
            parser.add_argument(flag, type=kind, help=text)


def _defaults(name: str) -> str:
    """'default X' (TrainConfig's), then each recipe's own value where it differs: what applies without the flag."""
    shown = {None: "none", True: "on", False: "off"}
    special = {"val_split": "5000 for 50,000+ images, else a tenth", "limit": "all images"}

    def text(value: Any) -> str:
        return shown.get(value, str(value)) if isinstance(value, (bool, type(None))) else str(value)

    base = getattr(TrainConfig, name)
    recipes = [f"{recipe} {text(values[name])}" for recipe, values in RECIPES.items()
               if name in values and values[name] != base]
    return f"default {special.get(name, text(base))}" + (f"; from --recipe: {', '.join(recipes)}" if recipes else "")


def _config(args: argparse.Namespace, **fixed: Any) -> TrainConfig:
    """The TrainConfig of a recipe (if any) plus the flags given."""
    given = {name: getattr(args, name) for name in CONFIG_FLAGS if hasattr(args, name)}
    return TrainConfig.from_recipe(getattr(args, "recipe", None), **given, **fixed)


def _final_line(metrics: dict[str, Any], started: float, where: Any) -> str:
    return (f"kdeep: test accuracy {100 * metrics['test_accuracy']:.2f}% (loss {metrics['test_loss']:.4f}), "
            f"{metrics['epochs_completed']} epochs, {metrics['train_seconds']:.1f} s training, "
            f"{time.time() - started:.1f} s wall; {where}")


def _train(args: argparse.Namespace) -> int:
    import kdeep.train

    started = time.time()
    config = _config(args, model=args.model, dataset=args.dataset, out=args.out)
    if args.ensemble:
        run = kdeep.train.fit_ensemble(args.model, args.dataset, config=config, members=args.ensemble, verbose=1)
        for index, member in enumerate(run.metrics["members"], start=1):
            print(f"kdeep: member {index} (seed {member['seed']}): test accuracy {100 * member['test_accuracy']:.2f}%")
    else:
        run = kdeep.train.fit(args.model, args.dataset, config=config, verbose=1)
    print(_final_line(run.metrics, started, f"run dir {run.dir}"))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from kdeep import scoring
    from kdeep.train.run_dir import dataset_of

    dataset = dataset_of(args.model, args.dataset, required=True)
    result = scoring.score(args.model, dataset, limit=args.limit)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"accuracy {100 * result.accuracy:.2f}%  loss {result.loss:.4f}  ({result.n} images)")
    print("class  accuracy   " + " ".join(f"{c:>5}" for c in range(len(result.confusion_matrix))) + "  <- predicted")
    for label, (accuracy, row) in enumerate(zip(result.per_class_accuracy, result.confusion_matrix)):
        shown = "   n/a " if accuracy is None else f"{100 * accuracy:6.2f}%"
        print(f"{label:>5}  {shown}   " + " ".join(f"{count:>5}" for count in row))
    return 0


def _finetune(args: argparse.Namespace) -> int:
    import kdeep.train

    started = time.time()
    config = _config(args, dataset=args.dataset, out=args.out)
    run = kdeep.train.transfer(args.source, args.num_classes, args.dataset, config=config, head_epochs=args.head_epochs,
                               unfreeze_blocks=args.unfreeze_blocks, lr_factor=args.lr_factor, verbose=1)
    print(f"kdeep: head only (backbone frozen): test accuracy {100 * run.metrics['head_test_accuracy']:.2f}%; "
          f"unfrozen blocks {', '.join(run.metrics['unfrozen_blocks']) or 'none'}")
    print(_final_line(run.metrics, started, f"transfer dir {run.dir}"))
    return 0


def _run(args: argparse.Namespace) -> int:
    from kdeep.job import run_main_job

    job = run_main_job(args.out, recipe=args.recipe, epochs=args.epochs, limit=args.limit,
                       quantize=not args.no_quantize)
    files = job.files
    print(_final_line(job.run.metrics, time.time() - job.seconds, f"run dir {job.run.dir}"))
    print(f"kdeep: model {files['model']}; metrics {files['metrics']}; TensorBoard logs {files['logs']}"
          + (f"; quantization report {files['report']}" if "report" in files else ""))
    for name, reason in (job.quantization.failed if job.quantization else {}).items():
        print(f"kdeep: variant {name} failed: {reason}", file=sys.stderr)
    return 0
