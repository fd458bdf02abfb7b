"""Converter calls: a Keras model plus a variant from the table -> a LiteRT flatbuffer, written atomically."""
import contextlib
import csv
import dataclasses
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from kdeep.data.scaling import UNIT_RANGE, scale_pixels
from kdeep.errors import QuantizationError, reason
from kdeep.io import write_atomic
from kdeep.quiet import silenced
from kdeep.shapes import takes_images
from quantization.ranges import check_method, converter_ranges
from quantization.variants import Variant

CALIBRATION_SAMPLES = 500
CALIBRATION_SEED = 0


def calibration_images(x_train: np.ndarray, input_range: tuple[float, float] = UNIT_RANGE, *,
                       samples: int = CALIBRATION_SAMPLES, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """The calibration images of a conversion: `samples` training images drawn without replacement (seeded),
    scaled into the model's input range.

    Args:
        x_train: uint8 training images (all of them: fewer than `samples` are all taken).
        input_range: the model's input range (its contract's).
        samples: how many to draw.
        seed: the draw's seed.
    """
    picked = np.random.default_rng(seed).choice(len(x_train), min(samples, len(x_train)), replace=False)
    return scale_pixels(x_train[picked], input_range)


def check_representative(data: Any, input_shape: tuple) -> np.ndarray:
    """Validates calibration images against the model input.

    Args:
        data: array of images, shape (N, *input_shape[1:]), floating dtype (the float model's input).
        input_shape: the model's input shape, batch dimension first (None allowed in any place).

    Returns:
        The images as a float32 array.

    Raises:
        QuantizationError: empty, wrong shape or non-floating dtype.
    """
    array = np.asarray(data) if data is not None else np.empty((0,))
    if array.size == 0:
        raise QuantizationError("representative data is empty; pass some training images (e.g. 500) for calibration")
    if not np.issubdtype(array.dtype, np.floating):
        raise QuantizationError(
            f"representative data has dtype {array.dtype}; pass float images as the model takes them "
            "(e.g. uint8 / 255 as float32)"
        )
    expected = tuple(input_shape[1:])
    if not takes_images(expected, array.shape[1:]):
        raise QuantizationError(
            f"representative data has shape {array.shape}; the model expects (N, {', '.join(map(str, expected))})"
        )
    return array.astype(np.float32, copy=False)


def _calibration(images: np.ndarray, samples: int = CALIBRATION_SAMPLES) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Returns the converter's representative_dataset: up to `samples` images, one per batch."""

    def generate() -> Iterator[list[np.ndarray]]:
        for image in images[:samples]:
            yield [image[None]]

    return generate


@contextlib.contextmanager
def saved_model(model: Any) -> Iterator[Path]:
    """Exports a Keras 3 model once to a temporary SavedModel, so several conversions share one export."""
    with tempfile.TemporaryDirectory(prefix="kdeep_savedmodel_") as folder:
        with silenced():
            model.export(folder, format="tf_saved_model", verbose=False)
        yield Path(folder)


class ModelGraph:
    """The graph a variant is converted from: the model's own input and output, as `kdeep quantize` scores them.

    `quantization.deploy.Deployment` has the same methods for the deployable graph (a camera image in,
    probabilities out, TFLite Metadata); `quantization.pipeline.quantize` converts through either.
    """

    float_io = False  # ai-edge-quantizer's static variants keep their integer input and output

    def input_shape(self, model: Any) -> tuple:
        """The converted graph's input shape, batch first (what calibration images must match)."""
        return tuple(model.input_shape)

    @contextlib.contextmanager
    def saved_model(self, model: Any, variant: Variant | None = None) -> Iterator[Any]:
        """What `convert` converts for `model`: a Keras 3 model's SavedModel (`saved_model`), a tf_keras (QAT)
        model as it is (the same graph for every `variant`)."""
        import keras

        if not isinstance(model, keras.Model):
            yield model
            return
        with saved_model(model) as folder:
            yield folder

    def own_graph(self, variant: Variant) -> bool:
        """False: every variant of this graph converts from the same export."""
        return False

    def variant(self, variant: Variant) -> Variant:
        """The converter settings for a variant of this graph: the table's."""
        return variant

    def finish(self, path: Path, variant: Variant) -> Path:
        """Nothing to add to a converted file of this graph."""
        return path


MODEL_GRAPH = ModelGraph()


def _converter(source: Any, variant: Variant, representative: np.ndarray | None) -> Any:
    """Builds a `tf.lite.TFLiteConverter` for a SavedModel folder or a Keras model, with the variant's settings."""
    import tensorflow as tf

    converter = (tf.lite.TFLiteConverter.from_saved_model(str(source)) if isinstance(source, (str, os.PathLike))
                 else tf.lite.TFLiteConverter.from_keras_model(source))
    if variant.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [getattr(tf, t) for t in variant.supported_types]
    if variant.supported_ops:
        converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, op) for op in variant.supported_ops]
    if variant.io_type:
        converter.inference_input_type = converter.inference_output_type = getattr(tf, variant.io_type)
    if variant.representative:
        if representative is None:
            raise QuantizationError(f"variant {variant.name} needs representative data (training images)")
        converter.representative_dataset = _calibration(representative)
    return converter


def convert(source: Any, variant: Variant, representative: np.ndarray | None, path: str | os.PathLike, *,
            activation_ranges: str = "minmax") -> Path:
    """Converts a model to `path` with the variant's settings.

    Args:
        source: a Keras 3 model, a tf_keras model (QAT) or a SavedModel folder from `saved_model`.
        variant: the recipe from `VARIANTS`.
        representative: validated float32 calibration images (needed when `variant.representative`).
        path: destination `.tflite` file (written atomically).
        activation_ranges: for an 8-bit full-integer variant, "minmax" (the converter's own calibration),
            "percentile" or "mse": the converter calibrates only, `quantization.ranges.converter_ranges` replaces
            the recorded ranges, and the converter's own quantizer (`mlir_quantize`) finishes the file.

    Returns:
        The written path.

    Raises:
        QuantizationError: the converter fails (the message names the variant and the converter's reason).
    """
    with silenced():
        converter = _converter(source, variant, representative)
        try:
            flatbuffer = _with_ranges(converter, variant, representative, check_method(activation_ranges))
        except Exception as error:  # the converter raises many unrelated types; its trace ends with the cause
            raise QuantizationError(f"converting to {variant.name} failed: {reason(error, last=True)}") from error
    return write_atomic(path, flatbuffer)


def _with_ranges(converter: Any, variant: Variant, representative: np.ndarray | None, method: str) -> bytes:
    """The converted flatbuffer; for a full-int8 variant with a range method other than min/max, calibrated
    first, its ranges replaced, then quantized by the converter's quantizer with the variant's I/O types."""
    if method == "minmax" or not variant.representative or variant.activation_bits != 8:
        return converter.convert()
    import tensorflow as tf
    from tensorflow.lite.python import convert as tflite_convert

    converter._experimental_calibrate_only = True
    calibrated = converter_ranges(converter.convert(), representative[:CALIBRATION_SAMPLES], 8, method)
    io_type = getattr(tf, variant.io_type) if variant.io_type else tf.float32
    return tflite_convert.mlir_quantize(calibrated, input_data_type=io_type, output_data_type=io_type)


def layer_errors(source: Any, variant: Variant, representative: np.ndarray, top: int = 10) -> list[dict]:
    """Per-layer quantization error of a full-integer variant, via `tf.lite.experimental.QuantizationDebugger`.

    Args:
        source: the float Keras model or its SavedModel folder.
        variant: a variant with a representative dataset (e.g. int8).
        representative: float32 calibration images (also used as the debug dataset, first 100).
        top: how many layers to return.

    Returns:
        The `top` layers with the largest RMSE/scale (RMSE of the quantized tensor against the float one,
        in units of the quantization step), worst first: dicts with op, tensor, rmse, scale, rmse_per_scale,
        max_abs_error.
    """
    import tensorflow as tf

    with silenced():
        converter = _converter(source, dataclasses.replace(variant, io_type=None), representative)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=_calibration(representative, 100)
        )
        debugger.run()
        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        rmse, scale = float(row["mean_squared_error"]) ** 0.5, float(row["scale"])
        rows.append({
            "op": row["op_name"],
            "tensor": row["tensor_name"],
            "rmse": rmse,
            "scale": scale,
            "rmse_per_scale": rmse / scale if scale else float("inf"),
            "max_abs_error": float(row["max_abs_error"]),
        })
    return sorted(rows, key=lambda r: r["rmse_per_scale"], reverse=True)[:top]
