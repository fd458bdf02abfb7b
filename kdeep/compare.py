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
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from kdeep import io as artifacts
from kdeep.data.splits import Splits, load_splits, num_classes
from kdeep.errors import ConfigError, ModelError
from kdeep.report import Column, Page, Section, Table, describe_machine, timestamp, write_csv
from kdeep.timing import time_calls
from kdeep.train.config import TrainConfig
from quantization.evaluate import VariantScore
from quantization.litert import Latency

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

# timm's results-table layout, one row per model: (results.csv column, report header, format).
COLUMNS = (
    Column("model", "model"), Column("img_size", "input"),
    Column("top1", "top-1 %", "{:.2f}"), Column("top1_err", "top-1 err %", "{:.2f}"),
    Column("val_top1", "val top-1 %", "{:.2f}"),
    Column("param_count", "params (M)", "{:.3f}"), Column("mmacs", "MACs (M)", "{:.1f}"),
    Column("train_samples_per_sec", "train img/s", "{:.0f}"),
    Column("infer_samples_per_sec", f"Keras infer img/s (b{INFER_BATCH})", "{:.0f}"),
    Column("litert_fp32_ms", "LiteRT f32 b1 ms", "{:.3f}"), Column("litert_int8_ms", "LiteRT int8 b1 ms", "{:.3f}"),
    Column("int8_top1", "int8 top-1 %", "{:.2f}"),
    Column("fp32_kib", "f32 KiB", "{:.0f}"), Column("int8_kib", "int8 KiB", "{:.0f}"),
    Column("train_seconds", "train s", "{:.0f}"), Column("epochs", "epochs"),
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


@dataclass(frozen=True)
class Throughput:
    """Keras inference speed on one batch: images per second over the timed steps, median milliseconds a step."""

    samples_per_sec: float
    ms_per_step: float
    batch_size: int
    steps: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Footprint:
    """A LiteRT file's size and batch-1 latency by thread count ("1")."""

    size_bytes: int
    latency_us: dict[str, Latency]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"size_bytes": self.size_bytes, "latency_us": {t: v.to_dict() for t, v in self.latency_us.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Footprint:
        """Reads what `to_dict` wrote."""
        return cls(data["size_bytes"], {t: Latency.from_dict(v) for t, v in data["latency_us"].items()})


@dataclass
class Measured:
    """What measure.json holds for a trained run: Keras throughput and, with LiteRT, the float32 file's footprint,
    the int8 file's score on the test set and the variants that failed."""

    keras: Throughput
    float32: Footprint | None = None
    int8: VariantScore | None = None
    failed: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """measure.json's content (absent parts left out)."""
        data = {"keras": self.keras.to_dict(), "failed": self.failed,
                "float32": self.float32.to_dict() if self.float32 else None,
                "int8": self.int8.to_dict() if self.int8 else None}
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measured:
        """Reads measure.json."""
        return cls(Throughput(**data["keras"]), Footprint.from_dict(data["float32"]) if "float32" in data else None,
                   VariantScore.from_dict(data["int8"]) if "int8" in data else None, data.get("failed"))


@dataclass
class CompareRow:
    """One model's results row (percentages, millions, milliseconds, KiB); the `COLUMNS` keys and its run."""

    model: str
    img_size: str
    top1: float
    top1_err: float
    val_top1: float | None
    param_count: float
    mmacs: float
    train_samples_per_sec: float | None
    infer_samples_per_sec: float
    litert_fp32_ms: float | None
    litert_int8_ms: float | None
    int8_top1: float | None
    fp32_kib: float | None
    int8_kib: float | None
    train_seconds: float
    epochs: int
    run_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (results.json's rows, non-finite numbers as None)."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompareRow:
        """Reads a results.json row."""
        return cls(**artifacts.known_fields(cls, data))


@dataclass
class Plan:
    """A comparison checked before anything is written: its models, recipe, data, costs and settings."""

    entries: list[Entry]
    dataset: str
    config: TrainConfig
    splits: Splits
    costs: dict[str, dict[str, int]]
    settings: dict[str, Any] = field(default_factory=dict)


def inference_throughput(model: Any, batch_size: int = INFER_BATCH, steps: int = BENCH_STEPS,
                         warmup: int = BENCH_WARMUP) -> Throughput:
    """Keras inference speed as timm's benchmark.py measures it: warm-up steps, then timed steps on one batch.

    Args:
        model: a Keras model taking float images.
        batch_size: images per step.
        steps: timed steps (each `model.predict_on_batch`), at least 1.
        warmup: untimed steps first (tracing, allocation).

    Raises:
        ConfigError: steps < 1.
    """
    x = np.random.default_rng(0).random((batch_size, *model.input_shape[1:]), dtype=np.float32)
    timings = time_calls(lambda: model.predict_on_batch(x), runs=steps, warmup=warmup)
    return Throughput(samples_per_sec=batch_size * steps / timings.total, ms_per_step=1000 * timings.median,
                      batch_size=batch_size, steps=steps)


def plan(models: str | Sequence[str], dataset: str, config: TrainConfig | None, litert: bool,
         bench_steps: int) -> Plan:
    """The prepare phase: every model built for the dataset's images (a ModelError names the first that cannot
    take them) and every setting checked, before anything is written.

    Raises:
        ModelError: an unknown model or a bad width. ConfigError: bench_steps < 1, or a config width other than 1.
        DataError: an unknown dataset.
    """
    if isinstance(bench_steps, bool) or not isinstance(bench_steps, int) or bench_steps < 1:
        raise ConfigError(f"bench_steps={bench_steps!r} must be an integer >= 1 (timed steps of the Keras inference "
                          "benchmark)")
    entries = parse_entries(models)
    config = config or TrainConfig.from_recipe(DEFAULT_RECIPE)
    if config.width != 1.0:
        raise ConfigError(f"config.width={config.width!r}: a comparison takes a width per model, written "
                          "NAME@WIDTH in the models (e.g. vgg11_bn@0.25)")
    splits = load_splits(dataset)
    costs = _costs(entries, splits[0][0].shape[1:], num_classes(dataset))
    return Plan(entries, dataset, config, splits, costs, _settings(entries, dataset, config, litert, bench_steps))


def compare(models: str | Sequence[str], dataset: str = DEFAULT_DATASET, out: str | os.PathLike = "runs/compare",
            *, config: TrainConfig | None = None, litert: bool = True, bench_steps: int = BENCH_STEPS,
            verbose: int = 1) -> list[CompareRow]:
    """Trains every model with one recipe, measures it, and writes the results table, plots and report.

    Phases: `plan` (check and cost every model), then per model train (or resume) and measure (Keras speed,
    LiteRT files), then `write_report`.

    Args:
        models: "NAME" / "NAME@WIDTH" items (list or comma-separated string).
        dataset: a kdeep dataset name.
        out: the comparison directory (created; an existing one with the same settings is continued).
        config: the shared training recipe (default: the sgd_cosine recipe); its model, width and out are set
            per model.
        litert: also convert each model to LiteRT float32 and int8 and score int8 on the test set.
        bench_steps: timed steps of the Keras inference benchmark (>= 1).
        verbose: Keras fit verbosity (2: one line per epoch); 0 also silences kdeep's progress lines.

    Returns:
        One results row per model (what results.csv holds, unrounded).

    Raises:
        ModelError: an unknown model, a bad width, or images the model cannot take (before anything is written).
        ConfigError: OUT holds a comparison made with other settings, or bench_steps < 1.
    """
    checked = plan(models, dataset, config, litert, bench_steps)
    out = Path(out)
    _prepare(out, checked.settings)
    rows = []
    for entry in checked.entries:
        run_dir = out / RUNS / entry.label
        metrics = _train(entry, dataset, checked.config, run_dir, verbose)
        measured = _measure(run_dir, checked.splits, litert, bench_steps, verbose)
        rows.append(_row(entry, checked.costs[entry.label], metrics, measured, checked.splits[1][0].shape[1:]))
    write_report(out, rows, checked.settings)
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
    path = artifacts.output_dir(out, "comparison directory") / SETTINGS
    if path.exists():
        saved = artifacts.read_json(path, f"delete {path} or choose another --out")
        changed = [f"{key}: {saved.get(key)!r} -> {settings[key]!r}" for key in settings
                   if saved.get(key) != settings[key]]
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


def _measure(run_dir: Path, splits: Splits, litert: bool, bench_steps: int, verbose: int) -> Measured:
    """measure.json of a trained run: Keras batch-256 throughput; LiteRT float32/int8 size, batch-1 latency
    and int8 test accuracy (computed once, then read)."""
    import keras

    path = run_dir / MEASURE
    if path.is_file():
        return Measured.from_dict(artifacts.read_json(path, f"delete {path} to measure again"))
    _log(verbose, f"{run_dir.name}: measuring inference")
    model = artifacts.load_model(run_dir)
    measured = Measured(keras=inference_throughput(model, steps=bench_steps))
    if litert:
        _measure_litert(model, splits, run_dir / LITERT, measured)
    artifacts.write_json(path, measured.to_dict())
    keras.backend.clear_session()
    return measured


def _measure_litert(model: Any, splits: Splits, folder: Path, measured: Measured) -> None:
    """Converts the model to LiteRT float32 and int8 into `folder`; the float32 file's footprint and the int8
    file's score on every test image go into `measured`."""
    from kdeep.contract import contract_of
    from quantization.convert import calibration_images
    from quantization.evaluate import score_variant
    from quantization.litert import latency
    from quantization.pipeline import quantize

    contract = contract_of(model)
    (x_train, _), (x_test, y_test) = splits
    files = quantize(model, ["float32", "int8"], calibration_images(x_train, contract.input_range), folder)
    measured.failed = files.failed
    if "float32" in files:
        measured.float32 = Footprint(files["float32"].stat().st_size,
                                     {"1": latency(files["float32"], x_test[0], input_range=contract.input_range)})
    if "int8" in files:
        measured.int8 = score_variant(files["int8"], x_test, y_test, input_range=contract.input_range,
                                      output=contract.output)


def _row(entry: Entry, cost: dict[str, int], metrics: dict[str, Any], measured: Measured,
         image_shape: tuple[int, ...]) -> CompareRow:
    """One results row (percentages, millions, milliseconds, KiB)."""
    f32, int8 = measured.float32, measured.int8
    top1 = 100 * metrics["test_accuracy"]
    val = metrics.get("val_accuracy")
    return CompareRow(
        model=entry.label, img_size="x".join(map(str, image_shape)), top1=top1, top1_err=100 - top1,
        val_top1=100 * val if val is not None else None, param_count=cost["params"] / 1e6,
        mmacs=cost["macs"] / 1e6, train_samples_per_sec=metrics.get("images_per_second"),
        infer_samples_per_sec=measured.keras.samples_per_sec,
        litert_fp32_ms=f32.latency_us["1"].median_us / 1000 if f32 else None,
        litert_int8_ms=int8.latency_us["1"].median_us / 1000 if int8 else None,
        int8_top1=100 * int8.accuracy if int8 else None,
        fp32_kib=f32.size_bytes / 1024 if f32 else None, int8_kib=int8.size_bytes / 1024 if int8 else None,
        train_seconds=metrics["train_seconds"], epochs=metrics["epochs_completed"], run_dir=f"{RUNS}/{entry.label}")


def _cost_plot(rows: Sequence[CompareRow], dataset: str) -> bytes:
    """Test accuracy against MACs and against parameters, log x, one labelled point per model."""
    from matplotlib import ticker

    from kdeep.report import FIGURE_WIDTH, label_points, png, pyplot

    figure, axes = pyplot().subplots(1, 2, figsize=(FIGURE_WIDTH, 4.5))
    for axis, key, label in zip(axes, ("mmacs", "param_count"), ("MACs per image (M, log)", "parameters (M, log)")):
        for row in rows:
            axis.scatter(getattr(row, key), row.top1, s=40)
        axis.set(xscale="log", xlabel=label, ylabel="test top-1 %", title=f"{dataset}: accuracy vs {label.split()[0]}")
        axis.xaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(ticker.NullFormatter())
        axis.margins(x=0.15, y=0.1)
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    for axis, key in zip(axes, ("mmacs", "param_count")):
        label_points(axis, [(getattr(row, key), row.top1, row.model) for row in rows])
    return png(figure)


def _curves_plot(out: Path, rows: Sequence[CompareRow]) -> bytes:
    """Every model's training curves on shared axes: validation (else training) accuracy and training loss."""
    from matplotlib import ticker

    from kdeep.report import FIGURE_WIDTH, png, pyplot
    from kdeep.train import run_dir as rd

    figure, (acc, loss) = pyplot().subplots(1, 2, figsize=(FIGURE_WIDTH, 4.5))
    for row in rows:
        history = rd.read_history(out / row.run_dir / rd.HISTORY)
        epochs = [int(h["epoch"]) for h in history]
        key = "val_accuracy" if history and history[0].get("val_accuracy") else "accuracy"
        acc.plot(epochs, [100 * float(h[key]) for h in history], marker="o", markersize=3,
                 label=f"{row.model} ({key.replace('_accuracy', '') if key != 'accuracy' else 'train'})")
        loss.plot(epochs, [float(h["loss"]) for h in history], marker="o", markersize=3, label=row.model)
    acc.set(xlabel="epoch", ylabel="accuracy %", title="validation accuracy per epoch (train where no split)")
    loss.set(xlabel="epoch", ylabel="training loss", title="training loss per epoch")
    for axis in (acc, loss):
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    return png(figure, layout=(0, 0, 1, 1))


def _facts(settings: dict[str, Any]) -> list[tuple[str, str]]:
    c = settings["config"]
    recipe = (f"{c.get('recipe') or 'custom'}: {c['epochs']} epochs, batch {c['batch_size']}, {c['optimizer']} lr "
              f"{c['lr']:g}, {c['schedule']} schedule, weight decay {c['weight_decay']:g}, augment {c['augment']}, "
              f"seed {c['seed']}, validation split {c['val_split']}, training images {c['limit'] or 'all'}")
    return [("dataset", settings["dataset"]), ("recipe (every model)", recipe), ("machine", describe_machine()),
            ("date", timestamp())]


def write_report(out: str | os.PathLike, rows: Sequence[CompareRow], settings: dict[str, Any]) -> dict[str, Path]:
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
    table = [row.to_dict() for row in rows]
    cost_png, curves_png = _cost_plot(rows, settings["dataset"]), _curves_plot(out, rows)
    page = Page("Architecture comparison", facts, [
        Section(table=Table.of(COLUMNS, table)),
        Section("Accuracy against cost", image=COST_PLOT, png=cost_png),
        Section("Training curves", image=CURVES_PLOT, png=curves_png)])
    return {
        "csv": write_csv(out / RESULTS_CSV, COLUMNS, table, formatted=True),
        "json": artifacts.write_atomic(out / RESULTS_JSON, json.dumps({"facts": dict(facts), "rows": table}, indent=2)),
        "cost_png": artifacts.write_atomic(out / COST_PLOT, cost_png),
        "curves_png": artifacts.write_atomic(out / CURVES_PLOT, curves_png),
        "md": artifacts.write_atomic(out / "report.md", page.markdown()),
        "html": artifacts.write_atomic(out / "report.html", page.html()),
    }
