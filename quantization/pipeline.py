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

from kdeep import scoring
from kdeep.contract import contract_of
from kdeep.data.scaling import scale_pixels
from kdeep.data.splits import DEFAULT_VAL_SPLIT, Dataset, load_splits
from kdeep.errors import QuantizationError
from kdeep.report import describe_machine, timestamp
from quantization import aiedge, clipping, convert, litert, qat
from quantization.deploy import Deployment, deployment
from quantization.evaluate import score_variant
from quantization.report import write_report
from quantization.results import MixedResult, PipelineResults, SweepResult, VariantResult
from quantization.search import check_budget, pareto, search
from quantization.sensitivity import layer_sensitivity, sensitivity_width, with_snr
from quantization.sweep import Simulator, collapse_width, sweep
from quantization.variants import VARIANTS, Variant, resolve

SWEEP_IMAGES = 2000  # test images the sweep and the sensitivity score by default (each is ~45 Keras evaluations)
# LiteRT variants the simulator reproduces: name -> (weight bits, activation bits or None for float).
SIMULATED_TWINS = {"dynamic": (8, None), "int4": (4, None), "int8": (8, 8)}
MIXED_WHAT = "mixed precision chosen under the budget (ai-edge-quantizer, per-layer widths, dynamic range)"
MIXED = Variant("mixed", MIXED_WHAT, 32, 32, backend="aiedge", dynamic=True)  # what the mix's file says it is


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


def _widths(variant: Variant, model: Any) -> dict[str, int]:
    """{Keras layer name: weight width} of an ai-edge-quantizer variant (convolutions at `conv_bits` when set)."""
    import keras

    return {layer.name: variant.conv_bits if variant.conv_bits and not isinstance(layer, keras.layers.Dense)
            else variant.weight_bits for layer in model.layers if getattr(layer, "kernel", None) is not None}


def _clipped_float(model: Any, weight_bits: dict[str, int | None], float_tflite: Path, folder: Path,
                   graph: convert.ModelGraph = convert.MODEL_GRAPH) -> tuple[Any, Path]:
    """The model ai-edge-quantizer quantizes at these widths, and its float32 .tflite.

    Layers quantized below 5 bits are clipped first (`quantization.clipping`); with none, that is `model` and
    `float_tflite` itself, else a clipped copy converted once into `folder` per set of widths.
    """
    source = clipping.clipped_model(model, weight_bits)
    if source is model:
        return model, float_tflite
    key = hashlib.sha1(repr(sorted(weight_bits.items())).encode()).hexdigest()[:12]
    return source, _float_tflite(source, folder / f"clipped_{key}.tflite", graph)


def _aiedge(variant: Variant, model: Any, float_tflite: Path, representative: np.ndarray, path: Path,
            folder: Path, graph: convert.ModelGraph = convert.MODEL_GRAPH) -> Path:
    """Makes an ai-edge-quantizer variant from `model` and its float32 .tflite (clipped copies go to `folder`)."""
    widths = _widths(variant, model)
    source, source_tflite = (model, float_tflite) if variant.qat else _clipped_float(model, widths, float_tflite,
                                                                                      folder, graph)
    activation_bits = None if variant.activation_bits == 32 else variant.activation_bits
    return aiedge.quantize_tflite(source_tflite, path, weight_bits=widths, default_bits=variant.weight_bits,
                                  activation_bits=activation_bits, model=source, dynamic=variant.dynamic,
                                  calibration=representative if variant.representative else None,
                                  float_io=graph.float_io)


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
             graph: convert.ModelGraph = convert.MODEL_GRAPH) -> Conversions:
    """Converts `model` to each variant as `<out_dir>/<variant>.tflite`.

    Converter variants come from one SavedModel export; ai-edge-quantizer variants from the float32 .tflite
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
        for variant in chosen:
            start = time.perf_counter()
            path = variant_path(out, variant.name)
            try:
                tuned = (qat.fine_tune(model, train_x, train_data[1], epochs=qat_epochs,
                                       weight_bits=variant.weight_bits) if variant.qat else None)
                if variant.backend == "converter" and tuned is None:
                    convert.convert(exported, graph.variant(variant), representative, path)
                elif variant.backend == "converter":
                    with graph.saved_model(tuned) as source:
                        convert.convert(source, graph.variant(variant), representative, path)
                elif tuned is None:
                    float_tflite = _float_tflite(exported, Path(scratch) / "float32.tflite")
                    _aiedge(variant, model, float_tflite, representative, path, Path(scratch), graph)
                else:  # QAT trained the weights on the max-scaled grid: exported unclipped
                    source = qat.float_weights(model, tuned)
                    float_tflite = _float_tflite(source, Path(scratch) / f"{variant.name}_float32.tflite", graph)
                    _aiedge(variant, source, float_tflite, representative, path, Path(scratch), graph)
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
        qat_train: (scaled training images, labels) for QAT fine-tuning, None when no QAT variant is chosen.
        validation: (scaled images, labels): the last training images, for the mixed-precision search.
        input_range, output: the model's contract (input range, "probabilities" or "logits").
        graph: the deployable graph every variant is converted from (`quantization.deploy.Deployment`).
        validation_pixels: the validation images as uint8 pixels (what the LiteRT files are fed).
    """

    dataset: str
    x_test: np.ndarray
    y_test: np.ndarray
    representative: np.ndarray
    qat_train: tuple[np.ndarray, np.ndarray] | None
    validation: tuple[np.ndarray, np.ndarray]
    input_range: tuple[float, float]
    output: str
    graph: Deployment
    validation_pixels: np.ndarray

    @functools.cached_property
    def test_inputs(self) -> np.ndarray:
        """The test images scaled as the Keras model takes them (what the simulator scores)."""
        return scale_pixels(self.x_test, self.input_range)


def prepare(model: Any, dataset: Dataset, *, limit: int | None = None,
            calibration_samples: int = convert.CALIBRATION_SAMPLES, validation: int = DEFAULT_VAL_SPLIT,
            fine_tunes: bool = False, dataset_name: str | None = None, graph: Deployment | None = None) -> Prepared:
    """The prepare phase: the deployable graph, the test images, calibration images, QAT and validation data.

    Args:
        model: the float Keras model (its contract scales the images).
        dataset, limit, calibration_samples, validation, dataset_name: as `run_pipeline` takes them.
        fine_tunes: a QAT variant is chosen (its training images are scaled, 188 MB for MNIST).
        graph: the deployable graph (`kdeep export`'s options); None: `quantization.deploy.deployment`'s default
            (RGB input, uint8 I/O for the full-integer variants, the dataset's labels).
    """
    contract = contract_of(model)
    graph = graph or deployment(model, dataset if isinstance(dataset, str) else None)
    (x_train, y_train), (x_test, y_test) = load_splits(dataset)
    cut = max(len(x_train) - validation, 0)
    held_out = x_train[cut:], np.asarray(y_train[cut:]).reshape(-1)
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    return Prepared(
        dataset=dataset if isinstance(dataset, str) else dataset_name or "custom",
        x_test=np.asarray(x_test), y_test=np.asarray(y_test).reshape(-1),
        representative=convert.calibration_images(x_train, contract.input_range, samples=calibration_samples),
        qat_train=(scale_pixels(x_train, contract.input_range), y_train) if fine_tunes else None,
        validation=(scale_pixels(held_out[0], contract.input_range), held_out[1]),
        input_range=contract.input_range, output=contract.output, graph=graph, validation_pixels=held_out[0])


def _scored(path: Path, data: Prepared, reference: np.ndarray, n: int, **facts: Any) -> VariantResult:
    """A variant's file scored on the first `n` test images against the float model's probabilities."""
    score = score_variant(path, data.x_test[:n], data.y_test[:n], input_range=data.input_range, output=data.output,
                          reference=reference[:n])
    return VariantResult.of(score, **facts)


def score(model: Any, data: Prepared, conversions: Conversions) -> tuple[PipelineResults, np.ndarray]:
    """The score phase: the float Keras model and every converted variant on the test images.

    A variant with an `eval_limit` (slow reference kernels) is scored on that many images, with its note.

    Returns:
        The results, and the float model's test probabilities (the reference later variants are scored against).
    """
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
                                         note=variant.note if n < total else "")
    return results, reference


def simulate(model: Any, data: Prepared, conversions: Conversions, results: PipelineResults, reference: np.ndarray,
             *, sweep_bits: bool, sweep_limit: int | None, max_drop: float | None, out: Path) -> None:
    """The simulate phase (into `results`): the sweep and sensitivity, the mixed-precision file (exported to
    `out`, scored like the other variants) and the size-against-accuracy frontier."""
    simulator = Simulator(model, data.representative)
    if sweep_bits:
        results.sweep = simulated_sweep(simulator, data.test_inputs[:sweep_limit], data.y_test[:sweep_limit],
                                        conversions, pixels=data.x_test[:sweep_limit], graph=data.graph)
    if max_drop is not None:
        results.mixed = mixed_precision(simulator, data.validation, conversions, max_drop, out,
                                        pixels=data.validation_pixels, graph=data.graph)
        if "mixed" in conversions:
            results.variants["mixed"] = _scored(conversions["mixed"], data, reference, len(data.x_test),
                                                what=MIXED_WHAT, weight_bits=results.mixed.mean_bits,
                                                activation_bits=32, file="mixed.tflite",
                                                convert_seconds=conversions.seconds["mixed"])
    results.pareto = pareto([{"name": n, "size_bytes": v.size_bytes, "accuracy": v.accuracy}
                             for n, v in results.variants.items()
                             if v.n == results.n_test])  # a subset's accuracy is not comparable


def _check_counts(**counts: int | None) -> None:
    """Raises QuantizationError naming the first count below its least value (limits may be None: all images)."""
    for name, value in counts.items():
        least = 0 if name in ("qat_epochs", "validation") else 1
        if value is None and name.endswith("limit"):
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise QuantizationError(f"{name}={value!r} must be an integer >= {least}")


def _chosen(variants: str | Sequence[str] | None, max_drop: float | None) -> list[Variant]:
    """The variants to make: those named (all for None), with float32 added when a mix is made from it."""
    if max_drop is not None:
        check_budget(max_drop)
        names = [v.name for v in resolve(variants)]
        variants = names if "float32" in names else ["float32", *names]
    return resolve(variants)


def run_pipeline(model_or_path: Any, dataset: str | tuple, out_dir: str | os.PathLike, *,
                 variants: str | Sequence[str] | None = None, qat_epochs: int = 1, limit: int | None = None,
                 calibration_samples: int = convert.CALIBRATION_SAMPLES, dataset_name: str | None = None,
                 sweep_bits: bool = False, sweep_limit: int | None = SWEEP_IMAGES, max_drop: float | None = None,
                 validation: int = DEFAULT_VAL_SPLIT) -> Path:
    """Quantizes a model to every chosen variant, scores each on the test set and writes the report.

    Phases: `prepare` (data), `quantize` (convert), `score`, `simulate` (with a sweep or a budget), `write_report`.

    Args:
        model_or_path: a Keras model, a `.keras` file or a kdeep run directory.
        dataset: a kdeep dataset name (read once per process, `kdeep.data.load_splits`), or ((x_train, y_train),
            (x_test, y_test)) uint8 arrays.
        out_dir: the report directory (the .tflite files go there too). A `<variant>.tflite` left there by an
            earlier run, for a variant this run did not produce, is removed, so the directory matches its report.
        variants: names from `VARIANTS`, None for all.
        qat_epochs: QAT fine-tuning epochs.
        limit: score only the first `limit` test images and fine-tune QAT on the first `limit` training images.
        calibration_samples: training images drawn (seeded) for calibration.
        dataset_name: the dataset's name in the report (default: the name given, or "custom" for arrays).
        sweep_bits: also run the simulated bit-width sweep and the per-layer sensitivity (`quantization.sweep`).
        sweep_limit: the sweep and sensitivity score the first `sweep_limit` test images (None: all of them).
        max_drop: choose a weight width per layer under this validation-accuracy budget (percentage points),
            export the mix through ai-edge-quantizer as `mixed.tflite` and score it like the other variants.
        validation: the search's validation split: the last `validation` training images (kdeep's recipes hold
            out the last 5,000); the test set only scores.

    Returns:
        The report directory (report.json holds `PipelineResults.to_dict()`).

    Raises:
        QuantizationError: `max_drop` outside (0, 100), an unknown variant, or a negative count (a limit below 1).
    """
    _check_counts(qat_epochs=qat_epochs, limit=limit, calibration_samples=calibration_samples,
                  sweep_limit=sweep_limit, validation=validation)
    chosen = _chosen(variants, max_drop)
    from kdeep.models import presets  # not at the top: it imports Keras

    model = presets.as_model(model_or_path)
    out = Path(out_dir)
    data = prepare(model, dataset, limit=limit, calibration_samples=calibration_samples, validation=validation,
                   fine_tunes=any(v.qat for v in chosen), dataset_name=dataset_name)
    conversions = quantize(model, [v.name for v in chosen], data.graph.channels_of(data.representative), out,
                           train_data=data.qat_train, qat_epochs=qat_epochs, layer_errors=True, graph=data.graph)
    for stale in (VARIANTS.keys() | {"mixed"}) - conversions.keys():  # mixed.tflite comes later, if asked for
        variant_path(out, stale).unlink(missing_ok=True)
    results, reference = score(model, data, conversions)
    if sweep_bits or max_drop is not None:
        simulate(model, data, conversions, results, reference, sweep_bits=sweep_bits, sweep_limit=sweep_limit,
                 max_drop=max_drop, out=out)
    write_report(results, out)
    return out


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
    check = {name: {"weight_bits": w, "activation_bits": a, "simulated": swept[(w, a)],
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
                graph: convert.ModelGraph | Deployment = convert.MODEL_GRAPH) -> None:
    """Exports the chosen widths as `<out>/mixed.tflite` into `conversions` (a failure into `.failed`), from the
    graph the other files were converted from."""
    if "float32" not in conversions:
        conversions.failed["mixed"] = f"needs the float32 variant, which failed: {conversions.failed.get('float32')}"
        return
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="kdeep_mixed_") as folder:
            source, source_tflite = _clipped_float(simulator.model, bits, conversions["float32"], Path(folder), graph)
            path = aiedge.quantize_tflite(source_tflite, variant_path(out, "mixed"), weight_bits=bits,
                                          default_bits=None, model=source, dynamic=True)
            conversions["mixed"] = graph.finish(path, MIXED)
        conversions.seconds["mixed"] = time.perf_counter() - start
    except QuantizationError as error:
        conversions.failed["mixed"] = str(error)


def mixed_precision(simulator: Simulator, validation: tuple[np.ndarray, np.ndarray], conversions: Conversions,
                    max_drop: float, out: Path, *, pixels: np.ndarray | None = None,
                    graph: convert.ModelGraph | Deployment = convert.MODEL_GRAPH) -> MixedResult:
    """Searches a per-layer mix on the validation split and exports it as `<out>/mixed.tflite` (into `conversions`).

    The export is dynamic range (activations quantized on the fly): as accurate as weight-only on the models
    measured, and 2.5x faster per invoke on the CPU, where weight-only dequantizes every weight on each invoke.
    `pixels` (the validation images as uint8 pixels) and `graph` are as `simulated_sweep` takes them.

    Returns:
        The mix with "mean_bits" (parameter-weighted weight width, float = 32), "seconds", "lowest" (each layer's
        narrowest allowed width) and "litert_val_accuracy" (mixed.tflite on the validation images, None when not
        exported); a failed export lands in `conversions.failed["mixed"]`.
    """
    start = time.perf_counter()
    lowest = {layer.name: aiedge.lowest_bits(layer) for layer in simulator.model.layers
              if layer.name in simulator.layers}
    mix = search(simulator, *validation, max_drop, lowest=lowest)
    seconds = time.perf_counter() - start
    total = sum(simulator.parameters(layer) for layer in simulator.layers)
    mean_bits = sum(simulator.parameters(layer) * (32 if b is None else b) for layer, b in mix.bits.items()) / total
    _export_mix(simulator, mix.bits, conversions, out, graph)
    litert_accuracy = None
    if "mixed" in conversions:  # the deployed file on the same validation images: does LiteRT run what was simulated?
        x_val, y_val = validation
        litert_accuracy = scoring.accuracy(litert.predict(conversions["mixed"], x_val if pixels is None else pixels),
                                           y_val)
    return MixedResult.from_dict({**mix.to_dict(), "mean_bits": round(mean_bits, 2), "seconds": seconds,
                                  "lowest": lowest, "litert_val_accuracy": litert_accuracy})
