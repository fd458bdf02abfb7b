"""`kdeep compare`: several models trained with one recipe on one dataset, each in a resumable run directory, then
a timm-style results.csv, accuracy-vs-cost plots and report.md/.html.

    OUT/compare.json             the comparison's settings (a rerun with other settings is refused)
    OUT/runs/<label>/            one kdeep.train run directory per model (label: NAME or NAME@WIDTH)
    OUT/runs/<label>/measure.json   Keras throughput and LiteRT float32/int8 figures of the trained model
    OUT/runs/<label>/litert/     float32.tflite, int8.tflite
    OUT/results.csv, results.json, accuracy_vs_cost.png, training_curves.png, report.md, report.html

A rerun after an interruption (even kill -9) skips every model whose run has metrics.json (finished) and whose
measure.json exists, resumes the interrupted run from its last finished epoch, and redoes the rest. Test accuracy
only reports: nothing is chosen by it (the recipe's validation split is the place for any choice).
"""
from __future__ import annotations

import dataclasses
import datetime
import html
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kdeep import io as artifacts
from kdeep.io import write_atomic
from kdeep.errors import ConfigError, ModelError
from kdeep.train.config import TrainConfig

SETTINGS, RUNS, MEASURE, LITERT = "compare.json", "runs", "measure.json", "litert"
RESULTS_CSV, RESULTS_JSON, COST_PLOT, CURVES_PLOT = ("results.csv", "results.json", "accuracy_vs_cost.png",
                                                     "training_curves.png")
DEFAULT_RECIPE = "sgd_cosine"
DEFAULT_DATASET = "fashion_mnist"
# The recorded comparison: the full-width small networks, and the ImageNet families at the width that brings
# each to about ResNet-20's 30.8 M MACs at 28x28x1 (docs/compare.md has the search).
FASHION_MNIST_MODELS = ("deepconvnet", "resnet20", "resnet56", "vgg11_bn@0.25", "googlenet_bn@0.125", "resnet18@0.25")
INFER_BATCH = 256
BENCH_STEPS, BENCH_WARMUP = 10, 3
# The run-independent TrainConfig fields: the ones every model of a comparison shares.
PER_MODEL_FIELDS = ("model", "width", "out")

# (results.csv column, report header, format): timm's results-table layout, one row per model.
COLUMNS = (
    ("model", "model", "{}"),
    ("img_size", "input", "{}"),
    ("top1", "top-1 %", "{:.2f}"),
    ("top1_err", "top-1 err %", "{:.2f}"),
    ("val_top1", "val top-1 %", "{:.2f}"),
    ("param_count", "params (M)", "{:.3f}"),
    ("mmacs", "MACs (M)", "{:.1f}"),
    ("train_samples_per_sec", "train img/s", "{:.0f}"),
    ("infer_samples_per_sec", f"Keras infer img/s (b{INFER_BATCH})", "{:.0f}"),
    ("litert_fp32_ms", "LiteRT f32 b1 ms", "{:.3f}"),
    ("litert_int8_ms", "LiteRT int8 b1 ms", "{:.3f}"),
    ("int8_top1", "int8 top-1 %", "{:.2f}"),
    ("fp32_kib", "f32 KiB", "{:.0f}"),
    ("int8_kib", "int8 KiB", "{:.0f}"),
    ("train_seconds", "train s", "{:.0f}"),
    ("epochs", "epochs", "{}"),
)


@dataclass(frozen=True)
class Entry:
    """One model of a comparison: a registered name at a width multiplier."""

    name: str
    width: float = 1.0

    @property
    def label(self) -> str:
        """NAME at width 1.0, else NAME@WIDTH (the run directory's name and the results' model column)."""
        return self.name if self.width == 1.0 else f"{self.name}@{self.width:g}"


def parse_entries(specs: str | Sequence[str]) -> list[Entry]:
    """Reads "NAME" / "NAME@WIDTH" items (a list, or one comma-separated string).

    Raises:
        ModelError: an empty list or a width that is not a number.
        ConfigError: the same model twice.
    """
    items = [s.strip() for s in (specs.split(",") if isinstance(specs, str) else specs) if s.strip()]
    if not items:
        raise ModelError("no models to compare: give NAME or NAME@WIDTH items, e.g. resnet20,vgg11_bn@0.25")
    entries = []
    for item in items:
        name, _, width = item.partition("@")
        try:
            entries.append(Entry(name, float(width) if width else 1.0))
        except ValueError:
            raise ModelError(f"{item!r}: the width after '@' must be a number, e.g. vgg11_bn@0.25") from None
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"a model is listed twice in {', '.join(labels)}: list each once")
    return entries


def inference_throughput(model: Any, batch_size: int = INFER_BATCH, steps: int = BENCH_STEPS,
                         warmup: int = BENCH_WARMUP) -> dict[str, float]:
    """Keras inference speed as timm's benchmark.py measures it: warm-up steps, then timed steps on one batch.

    Args:
        model: a Keras model taking float images.
        batch_size: images per step.
        steps: timed steps (each `model.predict_on_batch`).
        warmup: untimed steps first (tracing, allocation).

    Returns:
        {"samples_per_sec", "ms_per_step" (median), "batch_size", "steps"}.
    """
    x = np.random.default_rng(0).random((batch_size, *model.input_shape[1:]), dtype=np.float32)
    for _ in range(warmup):
        model.predict_on_batch(x)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - start)
    return {"samples_per_sec": batch_size * steps / sum(times), "ms_per_step": 1000 * float(np.median(times)),
            "batch_size": batch_size, "steps": steps}


def compare(models: str | Sequence[str], dataset: str = DEFAULT_DATASET, out: str | os.PathLike = "runs/compare",
            *, config: TrainConfig | None = None, litert: bool = True, bench_steps: int = BENCH_STEPS,
            verbose: int = 1) -> list[dict[str, Any]]:
    """Trains every model with one recipe, measures it, and writes the results table, plots and report.

    Args:
        models: "NAME" / "NAME@WIDTH" items (list or comma-separated string).
        dataset: a kdeep dataset name.
        out: the comparison directory (created; an existing one with the same settings is continued).
        config: the shared training recipe (default: the sgd_cosine recipe); its model, width and out are set
            per model.
        litert: also convert each model to LiteRT float32 and int8 and score int8 on the test set.
        bench_steps: timed steps of the Keras inference benchmark.
        verbose: Keras fit verbosity (2: one line per epoch); 0 also silences kdeep's progress lines.

    Returns:
        One results row per model (what results.csv holds, unrounded).

    Raises:
        ModelError: an unknown model, a bad width, or images the model cannot take (before anything is written).
        ConfigError: OUT holds a comparison made with other settings.
    """
    import kdeep.data

    entries = parse_entries(models)
    config = config or TrainConfig.from_recipe(DEFAULT_RECIPE)
    splits = kdeep.data.load(dataset)
    costs = _costs(entries, splits[0][0].shape[1:], kdeep.data.get_spec(dataset).num_classes)
    out = Path(out)
    settings = _settings(entries, dataset, config, litert, bench_steps)
    _prepare(out, settings)
    rows = []
    for entry in entries:
        run_dir = out / RUNS / entry.label
        metrics = _train(entry, dataset, config, run_dir, verbose)
        measured = _measure(run_dir, splits, litert, bench_steps, verbose)
        rows.append(_row(entry, costs[entry.label], metrics, measured, splits[1][0].shape[1:]))
    write_report(out, rows, settings)
    return rows


def _log(verbose: int, message: str) -> None:
    if verbose:
        print(f"kdeep compare: {message}", flush=True)


def _costs(entries: Sequence[Entry], shape: tuple[int, ...], classes: int) -> dict[str, dict[str, int]]:
    """Builds every model for the dataset's images (ModelError before anything is written) -> params, MACs."""
    import keras

    from kdeep import analysis
    from kdeep import models as zoo

    shape = tuple(shape)
    costs = {}
    for entry in entries:
        summary = analysis.summarize(zoo.build(entry.name, input_shape=shape, num_classes=classes, width=entry.width))
        costs[entry.label] = {"params": summary.trainable_params, "macs": summary.macs}
        keras.backend.clear_session()
    return costs


def _settings(entries: Sequence[Entry], dataset: str, config: TrainConfig, litert: bool,
              bench_steps: int) -> dict[str, Any]:
    shared = {k: v for k, v in config.to_dict().items() if k not in PER_MODEL_FIELDS}
    return {"models": [e.label for e in entries], "dataset": dataset, "config": dict(shared, dataset=dataset),
            "litert": litert, "infer_batch": INFER_BATCH, "bench_steps": bench_steps}


def _prepare(out: Path, settings: dict[str, Any]) -> None:
    """Creates OUT with compare.json, or checks an existing one holds the same settings."""
    path = out / SETTINGS
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file: choose another --out")
    if path.exists():
        saved = artifacts.read_json(path, f"delete {path} or choose another --out")
        changed = [f"{key}: {saved.get(key)!r} -> {settings[key]!r}" for key in settings if saved.get(key) != settings[key]]
        if changed:
            raise ConfigError(f"{out} holds a comparison with other settings ({'; '.join(changed)}): rerun with the "
                              f"same settings to continue it, or choose another --out")
        return
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no {SETTINGS}: choose a new --out")
    artifacts.write_json(path, settings)


def _train(entry: Entry, dataset: str, config: TrainConfig, run_dir: Path, verbose: int) -> dict[str, Any]:
    """The run's metrics: read when the run has finished, else trained (or resumed) with kdeep.train.fit."""
    import keras

    import kdeep.train
    from kdeep.train import run_dir as rd

    if (run_dir / rd.METRICS).is_file():
        _log(verbose, f"{entry.label}: trained already ({run_dir})")
        return artifacts.read_json(run_dir / rd.METRICS, f"delete {run_dir} to train {entry.label} again")
    _log(verbose, f"{entry.label}: training into {run_dir}")
    run_config = dataclasses.replace(config, model=entry.name, width=entry.width, out=str(run_dir))
    metrics = kdeep.train.fit(entry.name, dataset, config=run_config, verbose=verbose).metrics
    keras.backend.clear_session()
    return metrics


def _measure(run_dir: Path, splits: Any, litert: bool, bench_steps: int, verbose: int) -> dict[str, Any]:
    """measure.json of a trained run: Keras batch-256 throughput; LiteRT float32/int8 size, batch-1 latency
    and int8 test accuracy (computed once, then read)."""
    import keras

    from kdeep.contract import contract_of
    from kdeep.data import scale_pixels
    from quantization.convert import CALIBRATION_SAMPLES
    from quantization.evaluate import evaluate, latency
    from quantization.pipeline import CALIBRATION_SEED, quantize

    path = run_dir / MEASURE
    if path.is_file():
        return artifacts.read_json(path, f"delete {path} to measure again")
    _log(verbose, f"{run_dir.name}: measuring inference")
    model = artifacts.load_model(run_dir)
    contract = contract_of(model)
    measured: dict[str, Any] = {"keras": inference_throughput(model, steps=bench_steps)}
    if litert:
        (x_train, _), (x_test, y_test) = splits
        picked = np.random.default_rng(CALIBRATION_SEED).choice(len(x_train), min(CALIBRATION_SAMPLES, len(x_train)),
                                                                replace=False)
        tflite = quantize(model, ["float32", "int8"], scale_pixels(x_train[picked], contract.input_range),
                          run_dir / LITERT)
        x_test = scale_pixels(x_test, contract.input_range)
        measured["failed"] = tflite.failed
        if "float32" in tflite:
            measured["float32"] = {"size_bytes": tflite["float32"].stat().st_size,
                                   "latency_us": {"1": latency(tflite["float32"], x_test[0])}}
        if "int8" in tflite:
            measured["int8"] = evaluate(tflite["int8"], x_test, np.asarray(y_test).reshape(-1), output=contract.output)
    artifacts.write_json(path, measured)
    keras.backend.clear_session()
    return measured


def _row(entry: Entry, cost: dict[str, int], metrics: dict[str, Any], measured: dict[str, Any],
         image_shape: tuple[int, ...]) -> dict[str, Any]:
    """One results row (percentages, millions, milliseconds, KiB)."""
    def litert(variant: str, what: str) -> float | None:
        v = measured.get(variant)
        if not v:
            return None
        return {"ms": v["latency_us"]["1"]["median_us"] / 1000, "kib": v["size_bytes"] / 1024}[what]

    top1 = 100 * metrics["test_accuracy"]
    val = metrics.get("val_accuracy")
    return {
        "model": entry.label, "img_size": "x".join(map(str, image_shape)), "top1": top1, "top1_err": 100 - top1,
        "val_top1": 100 * val if val is not None else None, "param_count": cost["params"] / 1e6,
        "mmacs": cost["macs"] / 1e6, "train_samples_per_sec": metrics.get("images_per_second"),
        "infer_samples_per_sec": measured["keras"]["samples_per_sec"],
        "litert_fp32_ms": litert("float32", "ms"), "litert_int8_ms": litert("int8", "ms"),
        "int8_top1": 100 * measured["int8"]["accuracy"] if "int8" in measured else None,
        "fp32_kib": litert("float32", "kib"), "int8_kib": litert("int8", "kib"),
        "train_seconds": metrics["train_seconds"], "epochs": metrics["epochs_completed"],
        "run_dir": f"{RUNS}/{entry.label}",
    }


def _cell(value: Any, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def _csv_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The results rows as results.csv cells (formatted as the table shows them)."""
    return [{key: _cell(row[key], fmt) for key, _, fmt in COLUMNS} for row in rows]


def _cost_plot(rows: Sequence[dict[str, Any]], dataset: str) -> bytes:
    """Test accuracy against MACs and against parameters, log x, one labelled point per model."""
    from kdeep import figures

    plt = figures.pyplot()
    from matplotlib import ticker

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, key, label in zip(axes, ("mmacs", "param_count"), ("MACs per image (M, log)", "parameters (M, log)")):
        for row in rows:
            axis.scatter(row[key], row["top1"], s=40)
        axis.set(xscale="log", xlabel=label, ylabel="test top-1 %", title=f"{dataset}: accuracy vs {label.split()[0]}")
        axis.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
        axis.margins(x=0.15, y=0.1)
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    for axis, key in zip(axes, ("mmacs", "param_count")):
        figures.label_points(axis, [(row[key], row["top1"], row["model"]) for row in rows])
    return figures.png(figure)


def _curves_plot(out: Path, rows: Sequence[dict[str, Any]]) -> bytes:
    """Every model's training curves on shared axes: validation (else training) accuracy and training loss."""
    from kdeep import figures
    from kdeep.train import run_dir as rd

    plt = figures.pyplot()
    from matplotlib import ticker

    figure, (acc, loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    for row in rows:
        history = rd.read_history(out / row["run_dir"] / rd.HISTORY)
        epochs = [int(h["epoch"]) for h in history]
        key = "val_accuracy" if history and history[0].get("val_accuracy") else "accuracy"
        acc.plot(epochs, [100 * float(h[key]) for h in history], marker="o", markersize=3,
                 label=f"{row['model']} ({key.replace('_accuracy', '') if key != 'accuracy' else 'train'})")
        loss.plot(epochs, [float(h["loss"]) for h in history], marker="o", markersize=3, label=row["model"])
    acc.set(xlabel="epoch", ylabel="accuracy %", title="validation accuracy per epoch (train where no split)")
    loss.set(xlabel="epoch", ylabel="training loss", title="training loss per epoch")
    for axis in (acc, loss):
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figures.png(figure)


def _facts(settings: dict[str, Any]) -> list[tuple[str, str]]:
    from quantization.pipeline import _machine

    c = settings["config"]
    recipe = (f"{c.get('recipe') or 'custom'}: {c['epochs']} epochs, batch {c['batch_size']}, {c['optimizer']} lr "
              f"{c['lr']:g}, {c['schedule']} schedule, weight decay {c['weight_decay']:g}, augment {c['augment']}, "
              f"seed {c['seed']}, validation split {c['val_split']}, training images {c['limit'] or 'all'}")
    return [("dataset", settings["dataset"]), ("recipe (every model)", recipe), ("machine", _machine()),
            ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))]


def _markdown(rows: Sequence[dict[str, Any]], facts: list[tuple[str, str]]) -> str:
    lines = ["# Architecture comparison", ""] + [f"- {k}: {v}" for k, v in facts] + [""]
    lines += ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r[k], f) for k, _, f in COLUMNS) + " |" for r in rows]
    lines += ["", f"![accuracy vs cost]({COST_PLOT})", "", f"![training curves]({CURVES_PLOT})", ""]
    return "\n".join(lines)


def _html(rows: Sequence[dict[str, Any]], facts: list[tuple[str, str]], cost_png: bytes, curves_png: bytes) -> str:
    from kdeep import figures

    e = html.escape
    items = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in facts)
    head = "".join(f"<th>{e(h)}</th>" for _, h, _ in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{e(_cell(r[k], f))}</td>" for k, _, f in COLUMNS) + "</tr>" for r in rows)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Architecture comparison</title>
<style>body{{font-family:sans-serif;margin:1.5em auto;max-width:1240px;padding:0 10px}}
.t{{overflow-x:auto}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #bbb;padding:3px 5px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
th{{background:#eee}}</style>
</head><body><h1>Architecture comparison</h1><ul>{items}</ul>
<div class="t"><table><tr>{head}</tr>{body}</table></div>
<h2>Accuracy against cost</h2><p>{figures.img_tag(cost_png, "accuracy vs MACs and parameters")}</p>
<h2>Training curves</h2><p>{figures.img_tag(curves_png, "training curves")}</p>
</body></html>
"""


def write_report(out: str | os.PathLike, rows: Sequence[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Path]:
    """Writes results.csv/.json, the two plots, report.md and report.html into `out`, each atomically.

    Args:
        out: the comparison directory.
        rows: the results rows (`compare`'s return value).
        settings: what compare.json holds.

    Returns:
        {file kind: path}.
    """
    out = Path(out)
    facts = _facts(settings)
    cost_png, curves_png = _cost_plot(rows, settings["dataset"]), _curves_plot(out, rows)
    clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in rows]
    return {
        "csv": artifacts.write_csv(out / RESULTS_CSV, _csv_rows(rows), [key for key, _, _ in COLUMNS]),
        "json": write_atomic(out / RESULTS_JSON, json.dumps({"facts": dict(facts), "rows": clean}, indent=2)),
        "cost_png": write_atomic(out / COST_PLOT, cost_png),
        "curves_png": write_atomic(out / CURVES_PLOT, curves_png),
        "md": write_atomic(out / "report.md", _markdown(rows, facts)),
        "html": write_atomic(out / "report.html", _html(rows, facts, cost_png, curves_png)),
    }
