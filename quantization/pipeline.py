"""The quantization pipeline in phases: prepare the data, convert the model to every variant, score each in LiteRT,
simulate (bit-width sweep, mixed precision), write the report."""
import functools
import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kdeep import io, progress, scoring
from kdeep.contract import contract_of
from kdeep.data.scaling import scale_pixels
from kdeep.data.splits import Dataset, load_splits
from kdeep.errors import QuantizationError
from kdeep.models import presets
from kdeep.report import describe_machine, timestamp
from quantization import aiedge, clipping, convert, latency, litert, ptq, qat
from quantization.advice import Measured, purposes, slow_reason
from quantization.check import CHECK_IMAGES, MARGIN, check_export
from quantization.deploy import Deployment, deployment
from quantization.evaluate import score_variant
from quantization.holdout import HeldOut, held_out, run_config
from quantization.plan import plan as layer_plan
from quantization.report import write_report
from quantization.results import MixedResult, PipelineResults, SweepResult, VariantResult
from quantization.search import (SEARCHES, check_budget, confirm, mean_activation_bits, mean_weight_bits, pareto,
                                 search, search_activations)
from quantization.sensitivity import layer_sensitivity, sensitivity_width, with_snr
from quantization.sweep import Simulator, collapse_width, sweep
from quantization.variants import VARIANTS, Variant, layer_widths, resolve

SWEEP_IMAGES = 2000  # test images the sweep and the sensitivity score by default (each is ~45 Keras evaluations)
# LiteRT variants the simulator reproduces: name -> (weight bits, activation bits or None for float); `dynamic` is
# 8 bits except the kernels the converter keeps float (`LayerPlan.dynamic_twin`).
SIMULATED_TWINS = {"dynamic": (8, None), "int4": (4, None), "int8": (8, 8)}
MIXED_WHAT = "mixed precision chosen under the budget (LiteRT quantizer, per-layer widths, dynamic range)"
OBJECTIVES = ("size", "latency")  # what the mixed-precision search minimises under its accuracy budget
MIXED = Variant("mixed", MIXED_WHAT, 32, 32, backend="aiedge", dynamic=True)  # what the mix's file says it is
MIXED_STATIC_WHAT = ("mixed precision chosen under the budget (LiteRT quantizer, full integer: 8- or 16-bit "
                     "activations per tensor, per-layer weight widths, float input and output)")
MIXED_STATIC = Variant("mixed", MIXED_STATIC_WHAT, 8, 16, backend="aiedge", representative=True)


class Conversions(dict):
    """{variant name: .tflite path} for the variants produced; `failed` maps the others to their error message,
    `seconds` every produced variant to its conversion (and QAT fine-tuning) time, and `layer_errors` holds
    the int8 per-layer errors when asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.layer_errors: list[dict] = []


def variant_path(out_dir: Path, name: str) -> Path:
    """Where a variant's model lives in a report directory: `<out_dir>/<name>.tflite`."""
    return out_dir / f"{name}.tflite"


def _clipped_float(model: Any, weight_bits: dict[str, int | None], float_tflite: Path, folder: Path,
                   graph: convert.ModelGraph = convert.MODEL_GRAPH) -> tuple[Any, Path]:
    """The model the LiteRT quantizer quantizes at these widths, and its float32 .tflite.

    Layers quantized below 5 bits are clipped first (`quantization.clipping`); with none, that is `model` and
    `float_tflite` itself, else a clipped copy converted once into `folder` per set of widths.
    """
    source = clipping.clipped_model(model, weight_bits)
    if source is model:
        return model, float_tflite
    return source, _float_tflite(source, folder / f"clipped_{_widths_key(weight_bits)}.tflite", graph)


def _widths_key(weight_bits: dict[str, int | None]) -> str:
    """A short name for a set of layer widths (files made from the same widths share it)."""
    return hashlib.sha1(repr(sorted(weight_bits.items())).encode()).hexdigest()[:12]


def _aiedge(variant: Variant, model: Any, float_tflite: Path, representative: np.ndarray, path: Path,
            folder: Path, graph: convert.ModelGraph = convert.MODEL_GRAPH, *, on_grid: bool = False,
            ranges: str = "minmax") -> Path:
    """Makes a LiteRT-quantizer variant from `model` and its float32 .tflite (clipped copies go to `folder`), each
    planned layer at the width `variants.layer_widths` gives it; `on_grid` kernels (QAT's, or prepared by
    `quantization.ptq`) are not clipped again; `ranges`: how static activations' ranges are calibrated."""
    widths = layer_widths(variant, layer_plan(model))
    source, source_tflite = (model, float_tflite) if on_grid else _clipped_float(model, widths, float_tflite,
                                                                                  folder, graph)
    activation_bits = None if variant.activation_bits == 32 else variant.activation_bits
    return aiedge.quantize_tflite(source_tflite, path, weight_bits=widths, default_bits=None,
                                  activation_bits=activation_bits, model=source, dynamic=variant.dynamic,
                                  calibration=representative if variant.representative else None,
                                  float_io=graph.float_io, activation_ranges=ranges)


def _float_tflite(model_or_export: Any, path: Path, graph: convert.ModelGraph = convert.MODEL_GRAPH) -> Path:
    """The `float32` variant of a model (or of its SavedModel folder) at `path`, made once."""
    if path.is_file():
        return path
    if isinstance(model_or_export, Path):
        return convert.convert(model_or_export, VARIANTS["float32"], None, path)
    with graph.saved_model(model_or_export) as folder:
        return convert.convert(folder, VARIANTS["float32"], None, path)


def quantize(model: Any, variants: str | Sequence[str] | None, representative_data: np.ndarray,
             out_dir: str | os.PathLike, *, train_data: tuple[np.ndarray, np.ndarray] | None = None,
             qat_epochs: int = 1, layer_errors: bool = False,
             graph: convert.ModelGraph = convert.MODEL_GRAPH, options: ptq.PTQOptions | None = None,
             weights: Any = None) -> Conversions:
    """Converts `model` to each variant as `<out_dir>/<variant>.tflite`.

    Converter variants come from one SavedModel export; LiteRT-quantizer variants from the float32 .tflite
    (for qat_int4, that of the QAT-trained weights). A variant that fails (e.g. tfmot cannot annotate a layer for
    qat_int8, or LiteRT cannot run the result) is recorded in `.failed` and the
    others still run; bad inputs raise before anything is converted.

    Args:
        model: a Keras 3 model.
        variants: names from `VARIANTS` (list or comma-separated), None for all.
        representative_data: float calibration images (training data) shaped like the graph's input.
        out_dir: where the .tflite files go.
        train_data: (float images, labels) for QAT fine-tuning; required for qat_int8 and qat_int4.
        qat_epochs: QAT fine-tuning epochs.
        layer_errors: also run the int8 QuantizationDebugger (into `.layer_errors`).
        graph: the graph converted: the model's own (`convert.MODEL_GRAPH`), or the deployable one
            (`quantization.deploy.Deployment`, which also finishes each file).
        options: the post-training options (`quantization.ptq.PTQOptions`): activation ranges reach the calibrated
            files (`ptq.carried_by`); None: min/max.
        weights: the `ptq.PTQWeights` of the weight algorithms (CLE, AdaRound, bias correction): each variant they
            reach is made from `ptq.variant_source` (kernels on the file's grids); None: the model's own kernels.

    Returns:
        `Conversions`: {variant: path}, with `.failed`, `.seconds` and `.layer_errors`.

    Raises:
        QuantizationError: unknown variant, bad representative data, or a QAT variant without train_data.
    """
    chosen = resolve(variants)
    representative = convert.check_representative(representative_data, graph.input_shape(model))
    if any(v.qat for v in chosen):
        if train_data is None:
            raise QuantizationError(f"{', '.join(v.name for v in chosen if v.qat)} need(s) train_data=(images, labels) "
                                    "for fine-tuning")
        train_x = convert.check_representative(train_data[0], model.input_shape)
    out = Path(out_dir)
    conversions = Conversions()
    with graph.saved_model(model) as exported, tempfile.TemporaryDirectory(prefix="kdeep_aiedge_") as scratch:
        for index, variant in enumerate(chosen, start=1):
            progress.say(f"converting {variant.name} ({index}/{len(chosen)}: {variant.what})")
            start = time.perf_counter()
            path = variant_path(out, variant.name)
            ranges = "minmax" if options is None or variant.qat else options.ranges
            try:
                tuned = (qat.fine_tune(model, train_x, train_data[1], epochs=qat_epochs,
                                       weight_bits=variant.weight_bits) if variant.qat else None)
                on_grid = tuned if tuned is not None else ptq.variant_source(weights, variant)
                if variant.backend == "converter" and on_grid is None and not graph.own_graph(variant):
                    convert.convert(exported, graph.variant(variant), representative, path, activation_ranges=ranges)
                elif variant.backend == "converter":  # its own graph: on-grid kernels, or int16's front end
                    with graph.saved_model(model if on_grid is None else on_grid, variant) as source:
                        convert.convert(source, graph.variant(variant), representative, path,
                                        activation_ranges=ranges)
                elif on_grid is None:
                    float_tflite = _float_tflite(exported, Path(scratch) / "float32.tflite")
                    _aiedge(variant, model, float_tflite, representative, path, Path(scratch), graph, ranges=ranges)
                else:  # QAT trained the weights on the max-scaled grid, or PTQ put them there: exported unclipped
                    source = qat.float_weights(model, tuned) if tuned is not None else on_grid
                    name = (variant.name if tuned is not None  # PTQ: one float file per set of widths
                            else f"prepared_{_widths_key(ptq.variant_widths(variant, weights.plan))}")
                    float_tflite = _float_tflite(source, Path(scratch) / f"{name}_float32.tflite", graph)
                    _aiedge(variant, source, float_tflite, representative, path, Path(scratch), graph,
                            on_grid=True, ranges=ranges)
                conversions[variant.name] = graph.finish(path, variant)
                conversions.seconds[variant.name] = time.perf_counter() - start
            except QuantizationError as error:
                conversions.failed[variant.name] = str(error)
        if layer_errors and "int8" in conversions:
            conversions.layer_errors = convert.layer_errors(exported, VARIANTS["int8"], representative)
    return conversions


@dataclass
class Prepared:
    """The data every phase shares, read once.

    Attributes:
        dataset: the dataset's name in the report.
        x_test, y_test: the scored test images (uint8) and labels.
        representative: calibration images, scaled into the model's input range, in the model's channels (the
            deployable graph takes them through `graph.channels_of`; the simulator as they are).
        check_images: real training images (uint8) every exported file is checked on (`quantization.check`).
        qat_train: (scaled training images, labels) for QAT fine-tuning, None when no QAT variant is chosen.
        validation: the held-out images (uint8 pixels) the mixed-precision search chooses and confirms on (None
            without a budget).
        input_range, output: the model's contract (input range, "probabilities" or "logits").
        graph: the deployable graph every variant is converted from (`quantization.deploy.Deployment`).
    """

    dataset: str
    x_test: np.ndarray
    y_test: np.ndarray
    representative: np.ndarray
    check_images: np.ndarray
    qat_train: tuple[np.ndarray, np.ndarray] | None
    validation: HeldOut | None
    input_range: tuple[float, float]
    output: str
    graph: Deployment

    @functools.cached_property
    def test_inputs(self) -> np.ndarray:
        """The test images scaled as the Keras model takes them (what the simulator scores)."""
        return scale_pixels(self.x_test, self.input_range)


def held_out_images(model_or_path: Any, dataset: Dataset, validation: tuple[np.ndarray, np.ndarray] | None,
                    dataset_name: str | None) -> HeldOut:
    """The images the mixed-precision search may use: `validation` when given, else those the run's config.json (or
    a preset's card) held out (`quantization.holdout`).

    Raises:
        QuantizationError: the model trained on every training image, has no config.json, or `validation` is not
            (images, labels).
    """
    if validation is not None:
        if len(validation) != 2 or len(validation[0]) != len(validation[1]) or len(validation[1]) < 2:
            raise QuantizationError("validation must be (images, labels), at least 2 images the model never "
                                    "trained on")
        return HeldOut(np.asarray(validation[0]), np.asarray(validation[1]).reshape(-1),
                       f"the {len(validation[1]):,} held-out images passed in")
    path = model_or_path if isinstance(model_or_path, (str, os.PathLike)) else None  # a file, a run or a preset
    config = run_config(path) if path is not None else None
    name = dataset if isinstance(dataset, str) else dataset_name
    return held_out(config, dataset, dataset_name=name, where=str(path) if path else "the model passed in")



def prepare(model: Any, dataset: Dataset, *, limit: int | None = None,
            calibration_samples: int = convert.CALIBRATION_SAMPLES, validation: HeldOut | None = None,
            fine_tunes: bool = False, dataset_name: str | None = None, graph: Deployment | None = None) -> Prepared:
    """The prepare phase: the deployable graph, the test images, calibration images, QAT data and held-out images.

    Args:
        model: the float Keras model (its contract scales the images).
        dataset, limit, calibration_samples, dataset_name: as `run_pipeline` takes them.
        validation: the held-out images for the search (`held_out_images`), None without a budget.
        fine_tunes: a QAT variant is chosen (its training images are scaled, 188 MB for MNIST).
        graph: the deployable graph (`kdeep export`'s options); None: `quantization.deploy.deployment`'s default
            (RGB input, uint8 I/O for the full-integer variants, the dataset's labels).
    """
    contract = contract_of(model)
    graph = graph or deployment(model, dataset if isinstance(dataset, str) else None)
    (x_train, y_train), (x_test, y_test) = load_splits(dataset)
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    return Prepared(
        dataset=dataset if isinstance(dataset, str) else dataset_name or "custom",
        x_test=np.asarray(x_test), y_test=np.asarray(y_test).reshape(-1),
        representative=convert.calibration_images(x_train, contract.input_range, samples=calibration_samples),
        check_images=np.asarray(x_train[:CHECK_IMAGES]),
        qat_train=(scale_pixels(x_train, contract.input_range), y_train) if fine_tunes else None,
        validation=validation, input_range=contract.input_range, output=contract.output, graph=graph)


def check_exports(model: Any, data: Prepared, conversions: Conversions) -> dict[str, dict]:
    """The check phase: every exported file against the Keras model on real training images
    (`quantization.check`); a file that fails is removed and recorded in `conversions.failed`, not scored. When the
    model decides too few of the images for a verdict (barely trained), a progress line says so and the files stay.

    Returns:
        {variant: `ExportCheck.to_dict()`} for every file checked.
    """
    progress.say(f"checking {len(conversions)} file(s) against the Keras model on {len(data.check_images)} images")
    reference = scoring.predict(model, data.check_images)
    checks = {}
    for name, path in list(conversions.items()):
        verdict = check_export(path, data.check_images, reference, input_range=data.input_range, output=data.output)
        checks[name] = verdict.to_dict()
        if not verdict.passed:
            conversions.failed[name] = verdict.message
            del conversions[name]
            Path(path).unlink(missing_ok=True)
    undecided = [check for check in checks.values() if not check["conclusive"]]
    if undecided:
        progress.say(f"no export-check verdict for {len(undecided)} file(s): the Keras model decides only "
                     f"{undecided[0]['decided']} of {undecided[0]['n']} images by a top-1 margin of {MARGIN} (barely "
                     f"trained?); they are scored")
    return checks



def _scored(path: Path, data: Prepared, reference: np.ndarray, n: int, **facts: Any) -> VariantResult:
    """A variant's file scored on the first `n` test images against the float model's probabilities."""
    score = score_variant(path, data.x_test[:n], data.y_test[:n], input_range=data.input_range, output=data.output,
                          reference=reference[:n])
    return VariantResult.of(score, **facts)


def score(model: Any, data: Prepared, conversions: Conversions) -> tuple[PipelineResults, np.ndarray]:
    """The score phase: the float Keras model and every converted variant on the test images.

    A variant with an `eval_limit` is scored on that many images (its report row says how many); every variant's
    note (slow kernels) is kept.

    Returns:
        The results, and the float model's test probabilities (the reference later variants are scored against).
    """
    progress.say(f"scoring the float model and {len(conversions)} LiteRT file(s) on {len(data.x_test):,} test images")
    reference = scoring.predict(model, data.x_test)
    results = PipelineResults(model=model.name, params=int(model.count_params()), dataset=data.dataset,
                              n_test=int(len(data.x_test)), float_accuracy=scoring.accuracy(reference, data.y_test),
                              machine=describe_machine(), date=timestamp(), variants={}, failed=conversions.failed,
                              layer_errors=conversions.layer_errors)
    total = len(data.x_test)
    for name, path in conversions.items():
        variant = VARIANTS[name]
        n = min(variant.eval_limit or total, total)
        results.variants[name] = _scored(path, data, reference, n, what=variant.what,
                                         weight_bits=variant.weight_bits, activation_bits=variant.activation_bits,
                                         file=path.name, convert_seconds=conversions.seconds[name],
                                         note=variant.note)
    return results, reference


def simulate(model: Any, data: Prepared, conversions: Conversions, results: PipelineResults, reference: np.ndarray,
             *, sweep_bits: bool, sweep_limit: int | None, max_drop: float | None, out: Path,
             objective: str = "size", options: ptq.PTQOptions | None = None, weights: Any = None,
             search_for: str = "weights") -> None:
    """The simulate phase (into `results`): the sweep and sensitivity, the mixed-precision file (exported to
    `out`, checked, confirmed, scored like the other variants; `search_for`: `mixed_precision`'s) and the
    size-against-accuracy frontier, simulated with the post-training `options` (their `weights`, shared with the
    exports)."""
    simulator = ptq.simulator(model, data.representative, options, weights)
    if sweep_bits:
        progress.say("simulated bit-width sweep and per-layer sensitivity")
        results.sweep = simulated_sweep(simulator, data.test_inputs[:sweep_limit], data.y_test[:sweep_limit],
                                        conversions, pixels=data.x_test[:sweep_limit], graph=data.graph)
    if max_drop is not None:
        progress.say(f"mixed-precision search under a {max_drop:g}-point budget")
        results.mixed = mixed_precision(simulator, data, conversions, max_drop, out, objective=objective,
                                        checks=results.checks, search_for=search_for)
        if "mixed" in conversions:
            mixed = results.mixed
            results.variants["mixed"] = _scored(conversions["mixed"], data, reference, len(data.x_test),
                                                what=MIXED_STATIC_WHAT if mixed.activation_bits else MIXED_WHAT,
                                                weight_bits=mixed.mean_bits, activation_bits=mixed.mean_activation_bits,
                                                file="mixed.tflite", convert_seconds=conversions.seconds["mixed"])
    results.pareto = pareto([{"name": n, "size_bytes": v.size_bytes, "accuracy": v.accuracy}
                             for n, v in results.variants.items()
                             if v.n == results.n_test])  # a subset's accuracy is not comparable


def _check_counts(**counts: int | None) -> None:
    """Raises QuantizationError naming the first count below its least value (limits may be None: all images)."""
    for name, value in counts.items():
        least = 0 if name == "qat_epochs" else 1
        if value is None and name.endswith("limit"):
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise QuantizationError(f"{name}={value!r} must be an integer >= {least}")


def _chosen(variants: str | Sequence[str] | None, max_drop: float | None, objective: str,
            search_for: str = "weights") -> list[Variant]:
    """The variants to make: those named (all for None), with float32 added when a mix is made from it.

    Raises:
        QuantizationError: an unknown objective or search, an activation search without a budget, or the latency
            objective with an activation search.
    """
    if objective not in OBJECTIVES:
        raise QuantizationError(f"objective {objective!r} is unknown; use one of {', '.join(OBJECTIVES)}")
    if search_for not in SEARCHES:
        raise QuantizationError(f"search {search_for!r} is unknown; use one of {', '.join(SEARCHES)}")
    if search_for != "weights" and max_drop is None:
        raise QuantizationError(f"--search {search_for} chooses under a budget; give --max-drop PP too")
    if objective == "latency" and search_for != "weights":
        raise QuantizationError(f"--objective latency weighs dynamic-range weight widths only; use it with "
                                f"--search weights, or --objective size with --search {search_for}")
    if max_drop is not None:
        check_budget(max_drop)
        names = [v.name for v in resolve(variants)]
        variants = names if "float32" in names else ["float32", *names]
    return resolve(variants)


def default_out_dir(model_or_path: Any) -> Path:
    """Where a model's report goes when no folder is given: RUN_DIR/quantization for a run directory,
    <stem>_quantization/ beside a .keras file, <preset>_quantization/ here for a preset.

    Raises:
        QuantizationError: a Keras model object (it has no place of its own): pass out_dir.
    """
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise QuantizationError("a model passed as an object has no folder of its own: pass out_dir")
    path = Path(model_or_path)
    if presets.named(str(model_or_path)):
        return Path(f"{model_or_path}_quantization")
    return path / "quantization" if path.is_dir() else path.with_name(f"{path.stem}_quantization")


def run_pipeline(model_or_path: Any, dataset: str | tuple, out_dir: str | os.PathLike | None = None, *,
                 variants: str | Sequence[str] | None = None, qat_epochs: int = 1, limit: int | None = None,
                 calibration_samples: int = convert.CALIBRATION_SAMPLES, dataset_name: str | None = None,
                 sweep_bits: bool = False, sweep_limit: int | None = SWEEP_IMAGES, max_drop: float | None = None,
                 validation: tuple[np.ndarray, np.ndarray] | None = None, objective: str = "size",
                 options: ptq.PTQOptions | None = None, search_for: str = "weights") -> PipelineResults:
    """Quantizes a model to every chosen variant, scores each on the test set and writes the report.

    Phases: `prepare` (data), `quantize` (convert), `check_exports` (every file against the Keras model on real
    images: a file that fails is not scored), `score`, `simulate` (with a sweep or a budget), `write_report`.

    Args:
        model_or_path: a Keras model, a `.keras` file or a kdeep run directory.
        dataset: a kdeep dataset name (read once per process, `kdeep.data.load_splits`), or ((x_train, y_train),
            (x_test, y_test)) uint8 arrays.
        out_dir: the report directory (the .tflite files go there too; None: `default_out_dir`). A
            `<variant>.tflite` left there by an earlier run, for a variant this run did not produce, is removed, so
            the directory matches its report.
        variants: names from `VARIANTS`, None for all.
        qat_epochs: QAT fine-tuning epochs.
        limit: score only the first `limit` test images and fine-tune QAT on the first `limit` training images.
        calibration_samples: training images drawn (seeded) for calibration.
        dataset_name: the dataset's name in the report (default: the name given, or "custom" for arrays).
        sweep_bits: also run the simulated bit-width sweep and the per-layer sensitivity (`quantization.sweep`).
        sweep_limit: the sweep and sensitivity score the first `sweep_limit` test images (None: all of them).
        max_drop: choose a weight width per layer under this accuracy budget (percentage points) on held-out
            images, export the mix through the LiteRT quantizer as `mixed.tflite`, confirm it in LiteRT on the other
            half of the held-out images and score it like the other variants.
        validation: (images, labels) the model never trained on, for `max_drop`; default: the images the run's
            config.json held out (a model that trained on every image, or has no config.json, is refused).
        objective: what the search makes smallest under the budget: "size" (the kernels' bytes) or "latency"
            (bytes too, but no move that a measured per-layer latency table predicts slower than the start).
        search_for: what `max_drop` chooses widths for (`mixed_precision`): "weights" (per layer, dynamic range),
            "activations" (8 or 16 bits per activation tensor, int8 weights, full integer) or "both".
        options: post-training quantization options (`quantization.ptq.PTQOptions`: activation ranges by
            percentile or MSE, CLE, AdaRound, bias correction), in the simulator and in every file that can carry
            them (the report says which); None: min/max ranges and round-to-nearest.

    Returns:
        The `PipelineResults` (`.report_dir` is the report directory; report.json holds `.to_dict()`).

    Raises:
        QuantizationError: `max_drop` outside (0, 100) or without held-out images, an unknown variant, objective or
            search (or the latency objective with an activation search), or a negative count (a limit below 1).
        ArtifactError: `out_dir` is a file.
    """
    _check_counts(qat_epochs=qat_epochs, limit=limit, calibration_samples=calibration_samples,
                  sweep_limit=sweep_limit)
    chosen = _chosen(variants, max_drop, objective, search_for)
    out = io.output_dir(default_out_dir(model_or_path) if out_dir is None else out_dir, "report directory")
    model = presets.as_model(model_or_path)
    held = None if max_drop is None else held_out_images(model_or_path, dataset, validation, dataset_name)
    data = prepare(model, dataset, limit=limit, calibration_samples=calibration_samples, validation=held,
                   fine_tunes=any(v.qat for v in chosen), dataset_name=dataset_name)
    options = options or ptq.PTQOptions()
    weights = ptq.weights_for(model, data.representative, options)
    conversions = quantize(model, [v.name for v in chosen], data.graph.channels_of(data.representative), out,
                           train_data=data.qat_train, qat_epochs=qat_epochs, layer_errors=True, graph=data.graph,
                           options=options, weights=weights)
    checks = check_exports(model, data, conversions)
    for stale in (VARIANTS.keys() | {"mixed"}) - conversions.keys():  # mixed.tflite comes later, if asked for
        variant_path(out, stale).unlink(missing_ok=True)
    results, reference = score(model, data, conversions)
    results.checks = checks
    if sweep_bits or max_drop is not None:
        simulate(model, data, conversions, results, reference, sweep_bits=sweep_bits, sweep_limit=sweep_limit,
                 max_drop=max_drop, out=out, objective=objective, options=options, weights=weights,
                 search_for=search_for)
    results.ptq = ptq.result(options, weights, list(results.variants), layer_plan(model),
                             mixed=results.mixed.bits if results.mixed else None)
    results.purposes = variant_purposes(results, model)
    write_report(results, out)
    results.report_dir = out
    return results


def variant_purposes(results: PipelineResults, model: Any) -> dict[str, str]:
    """What each scored variant is for on this machine (`quantization.advice`), with why LiteRT's CPU runs a
    variant slowly where its layer plan says the runtime lacks fast kernels."""
    layers = layer_plan(model)
    measured = {name: Measured(v.size_bytes, v.latency_us["1"].median_us, v.accuracy, v.n)
                for name, v in results.variants.items()}
    return purposes(measured, {name: slow_reason(VARIANTS[name], layers) for name in measured if name in VARIANTS})



def simulated_sweep(simulator: Simulator, x: np.ndarray, y: np.ndarray, conversions: Conversions, *,
                    pixels: np.ndarray | None = None,
                    graph: convert.ModelGraph | Deployment = convert.MODEL_GRAPH) -> SweepResult:
    """The simulated sweep, the per-layer sensitivity and the simulator-vs-LiteRT check, on the same images.

    Args:
        simulator: the model's `Simulator` (with calibration images).
        x, y: test images scaled as the model takes them (all or the first N) and labels.
        conversions: the LiteRT files made in this run (for the check and the int4 file's SNR).
        pixels: the same images as uint8 pixels, for the LiteRT files (None: `x`, for files of the model's graph).
        graph: the graph the files were converted from (an int4 file made for the SNR is made from it too).
    """
    litert_x = x if pixels is None else pixels
    start = time.perf_counter()
    float_accuracy = simulator.accuracy(x, y, simulator.uniform(None))
    rows = sweep(simulator, x, y)
    swept = {(r["weight_bits"], r["activation_bits"]): r["accuracy"] for r in rows}
    swept[("dynamic", None)] = simulator.accuracy(x, y, simulator.plan.dynamic_twin())  # small kernels float
    check = {name: {"weight_bits": w, "activation_bits": a,
                    "simulated": swept[("dynamic" if name == "dynamic" else w, a)],
                    "litert": scoring.accuracy(litert.predict(conversions[name], litert_x), y)}
             for name, (w, a) in SIMULATED_TWINS.items() if name in conversions}
    sweep_seconds = time.perf_counter() - start
    bits = sensitivity_width(rows, float_accuracy)
    sensitivity, snr_note = [], ""
    if bits is not None:
        sensitivity = layer_sensitivity(simulator, x, y, bits, float_accuracy)
        if "float32" in conversions:
            with tempfile.TemporaryDirectory() as folder:  # the int4 variant's file, or one made for the SNR
                int4 = conversions.get("int4") or graph.finish(
                    _aiedge(VARIANTS["int4"], simulator.model, conversions["float32"], x, Path(folder) / "int4.tflite",
                            Path(folder), graph), VARIANTS["int4"])
                sensitivity = with_snr(sensitivity, aiedge.tensor_snr(conversions["float32"], int4, litert_x,
                                                                      simulator.model))
        else:
            snr_note = "SNR not measured: it needs the float32 variant, which failed"
    return SweepResult(n=int(len(x)), float_accuracy=float_accuracy, rows=rows,
                       collapse_bits=collapse_width(rows, float_accuracy), sensitivity_bits=bits,
                       sensitivity=sensitivity, snr_note=snr_note, check=check,
                       seconds={"sweep": sweep_seconds, "sensitivity": time.perf_counter() - start - sweep_seconds})


def _export_mix(simulator: Simulator, bits: dict[str, int | None], conversions: Conversions, out: Path,
                graph: convert.ModelGraph | Deployment = convert.MODEL_GRAPH, *,
                activations: dict[str, int | None] | None = None, calibration: np.ndarray | None = None) -> None:
    """Exports the chosen widths as `<out>/mixed.tflite` into `conversions` (a failure into `.failed`), from the
    graph the other files were converted from: dynamic range, or with `activations` ({tensor: 8 or 16}) full
    integer, calibrated on `calibration` (in the graph's channels) with the simulator's range method."""
    if "float32" not in conversions:
        conversions.failed["mixed"] = f"needs the float32 variant, which failed: {conversions.failed.get('float32')}"
        return
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="kdeep_mixed_") as folder:
            weights = simulator.weights
            prepared = ptq.prepared_model(weights, bits) if isinstance(weights, ptq.PTQWeights) else None
            source, source_tflite = (_clipped_float(simulator.model, bits, conversions["float32"], Path(folder), graph)
                                     if prepared is None else  # kernels on their grids already: unclipped
                                     (prepared, _float_tflite(prepared, Path(folder) / "mixed_float32.tflite", graph)))
            static = dict(activation_widths=activations, calibration=calibration, float_io=graph.float_io,
                          activation_ranges=simulator.range_method) if activations else dict(dynamic=True)
            path = aiedge.quantize_tflite(source_tflite, variant_path(out, "mixed"), weight_bits=bits,
                                          default_bits=None, model=source, **static)
            conversions["mixed"] = graph.finish(path, MIXED_STATIC if activations else MIXED)
        conversions.seconds["mixed"] = time.perf_counter() - start
    except QuantizationError as error:
        conversions.failed["mixed"] = str(error)


def _choose(simulator: Simulator, data: Prepared, choose: HeldOut, max_drop: float, objective: str,
            search_for: str) -> Any:
    """The search `search_for` names on the images that choose (the latency objective measures its table)."""
    x = scale_pixels(choose.x, data.input_range)
    if search_for != "weights":
        return search_activations(simulator, x, choose.y, max_drop, weights=search_for == "both",
                                  chose_on=choose.source)
    table = latency.measure(simulator.model, simulator.plan) if objective == "latency" else None
    return search(simulator, x, choose.y, max_drop, latency=table,
                  start=simulator.plan.dynamic_twin() if table else None, chose_on=choose.source)


def mixed_precision(simulator: Simulator, data: Prepared, conversions: Conversions, max_drop: float, out: Path, *,
                    objective: str = "size", checks: dict[str, dict] | None = None,
                    search_for: str = "weights") -> MixedResult:
    """Chooses a per-layer mix on one half of the held-out images, exports it as `<out>/mixed.tflite` (into
    `conversions`, from the graph the other files were converted from), checks it against the Keras model and
    confirms it in LiteRT on the other half.

    `search_for="weights"` chooses weight widths (`search`) and exports dynamic range (activations quantized on the
    fly): as accurate as weight-only on the models measured, and faster per invoke on the CPU, where weight-only
    dequantizes every weight on each invoke. With the "latency" objective the search also weighs a per-layer
    latency table measured in LiteRT (`quantization.latency`) and starts from the converter's `dynamic` layout.
    "activations" chooses 8 or 16 bits per activation tensor with int8 weights, "both" then weight widths too
    (`search_activations`), and exports a full-integer file whose ops run at those widths
    (`aiedge.op_activation_widths`).

    Args:
        checks: where the export check's verdict goes ({"mixed": ...}), when given.
        search_for: "weights", "activations" or "both" (`quantization.search.SEARCHES`).

    Returns:
        The mix (chosen on `chose_on`, its `confirmation` on the other images once exported) with "mean_bits"
        (parameter-weighted weight width, float = 32), "mean_activation_bits" (value-weighted, float = 32),
        "seconds", "lowest" (each layer's narrowest width) and "objective"; a failed export or check lands in
        `conversions.failed["mixed"]`.
    """
    start = time.perf_counter()
    choose, confirming = data.validation.halves()
    mix = _choose(simulator, data, choose, max_drop, objective, search_for)
    seconds = time.perf_counter() - start
    calibration = data.graph.channels_of(data.representative) if mix.activation_bits else None  # static files only
    _export_mix(simulator, mix.bits, conversions, out, data.graph, activations=mix.activation_bits,
                calibration=calibration)
    if "mixed" in conversions:
        checked = Conversions()
        checked["mixed"] = conversions["mixed"]
        (checks if checks is not None else {}).update(check_exports(simulator.model, data, checked))
        if checked.failed:
            conversions.failed.update(checked.failed)
            del conversions["mixed"]
    if "mixed" in conversions:  # the deployed file on held-out images the search never saw
        mix.confirmation = confirm(conversions["mixed"], confirming.x, confirming.y,
                                   scoring.predict(simulator.model, confirming.x), confirming.source,
                                   input_range=data.input_range)
    mode = "static" if mix.activation_bits else "dynamic"
    widths = {"mean_bits": round(mean_weight_bits(simulator, mix.bits), 2),
              "mean_activation_bits": round(mean_activation_bits(simulator, mix.activation_bits), 2)}
    return MixedResult.from_dict({**mix.to_dict(), **widths, "seconds": seconds,
                                  "lowest": {entry.key: entry.lowest(mode, 8 if mode == "static" else None)
                                             for entry in simulator.plan},
                                  "objective": objective})
