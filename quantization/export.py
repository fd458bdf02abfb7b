"""Deployable LiteRT files, as edge runtimes take them: `export` and the `Deployment` graph it converts.

A deployable file takes an image as a camera pipeline delivers it and gives class probabilities:

- input `image`, `[1, H, W, 3]` RGB (or the model's own channel count, `channels="model"`), converted to the
  model's channels inside the graph (ITU-R 601 luma, 0.299 R + 0.587 G + 0.114 B, for a one-channel model);
  float32 holding the model's input range, with TFLite NormalizationOptions that map uint8 pixels onto it, or,
  for the full-integer variants (8-bit activations: int8, qat_int8, w4a8, ...), uint8 pixels as they are
  (`integer_io="float32"` keeps float32, `"int8"` takes pixel - 128, for microcontrollers);
- output `probabilities` (a softmax is added when the model's contract says logits), float32, or uint8 for the
  full-integer variants;
- one signature, `serving_default`, with those names, which LiteRT's `CompiledModel` runs by name;
- TFLite Metadata (`quantization.metadata`): name, description, version, author, license, the input image's
  properties and normalization, the labels file packed in the file.

Every variant is made by `quantization.pipeline.quantize` from this graph (one conversion path with
`kdeep quantize`); `Deployment.finish` then sets the integer interface, the signature and the metadata. Beside
the files, `model_card.md` and `model_card.json` (`quantization.model_card`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from kdeep import io, scoring
from kdeep.contract import contract_of
from kdeep.data import class_names
from kdeep.data.scaling import scale_pixels
from kdeep.data.splits import load_splits
from kdeep.errors import QuantizationError
from kdeep.report import describe_machine, timestamp
from kdeep.train.run_dir import dataset_of
from quantization import litert, metadata
from quantization.convert import calibration_images
from quantization.model_card import ModelCard, VariantCard, write_card
from quantization.pipeline import quantize, variant_path
from quantization.variants import VARIANTS, Variant, resolve

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's convert("L")
SIGNATURE, INPUT, OUTPUT = "serving_default", "image", "probabilities"
CHANNELS = ("rgb", "model")
INTEGER_IO = ("uint8", "float32", "int8")
TENSOR_TYPES = {"uint8": 3, "int8": 9}  # TFLite schema TensorType values
QUANTIZE_OP = 114  # TFLite schema BuiltinOperator.QUANTIZE
LATENCY_RUNS = 100  # timed batch-1 invokes per file for the model card


def full_integer(variant: Variant) -> bool:
    """Whether a variant computes on 8-bit integers end to end (calibrated 8-bit activations)."""
    return variant.activation_bits == 8 and variant.representative


@dataclass(frozen=True)
class Deployment:
    """The deployable graph of a model and what its files say about themselves.

    Attributes:
        image_shape: (height, width, channels) the model takes.
        input_range: the model's input range (its contract's), what the float input holds.
        output: the model's output kind, "probabilities" or "logits".
        labels: one class name per output.
        name: the model's name in the metadata.
        description: one line on the model (the metadata adds the variant).
        channels: "rgb" (a 3-channel image input) or "model" (the model's own channel count).
        integer_io: input and output type of the full-integer variants: "uint8", "float32" or "int8".
        version, author, license: the metadata's fields.
    """

    image_shape: tuple[int, int, int]
    input_range: tuple[float, float]
    output: str
    labels: tuple[str, ...]
    name: str
    description: str
    channels: str = "rgb"
    integer_io: str = "uint8"
    version: str = "1"
    author: str = "kdeep"
    license: str = "unspecified"

    float_io = True  # the ai-edge-quantizer's static variants get float edges, then `finish` sets the interface

    def __post_init__(self) -> None:
        if self.channels not in CHANNELS:
            raise QuantizationError(f"channels={self.channels!r} is unknown: use one of {', '.join(CHANNELS)}")
        if self.integer_io not in INTEGER_IO:
            raise QuantizationError(f"integer I/O {self.integer_io!r} is unknown: use one of {', '.join(INTEGER_IO)}")
        if self.image_shape[2] not in (1, 3):
            raise QuantizationError(f"the model takes {self.image_shape[2]}-channel inputs: a deployable image "
                                    "classifier takes 1 (grey) or 3 (RGB) channels")

    @property
    def input_channels(self) -> int:
        """Channels of the deployable input."""
        return 3 if self.channels == "rgb" else self.image_shape[2]

    def input_shape(self, model: Any = None) -> tuple:
        """The deployable graph's input shape, batch first."""
        return (None, self.image_shape[0], self.image_shape[1], self.input_channels)

    def channels_of(self, images: np.ndarray) -> np.ndarray:
        """Dataset images (N, H, W, the model's channels: pixels or scaled) with this graph's input channels: grey
        repeated as RGB, whose luma is the grey value again."""
        return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 and self.input_channels == 3 else images

    @contextlib.contextmanager
    def saved_model(self, model: Any) -> Iterator[Path]:
        """The deployable graph of a Keras 3 or tf_keras (QAT) model as a SavedModel with one signature."""
        import keras
        import tensorflow as tf

        model_channels, logits = self.image_shape[2], self.output == "logits"

        def serve(image: Any) -> dict[str, Any]:
            x = image
            if self.input_channels == 3 and model_channels == 1:
                x = tf.reduce_sum(x * tf.constant(LUMA, tf.float32), axis=-1, keepdims=True)
            probabilities = model(x, training=False)
            return {OUTPUT: tf.nn.softmax(probabilities) if logits else probabilities}

        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(name=SIGNATURE, fn=serve,
                             input_signature=[tf.TensorSpec(self.input_shape(), tf.float32, name=INPUT)])
        with tempfile.TemporaryDirectory(prefix="kdeep_deployable_") as folder:
            archive.write_out(folder, verbose=False)
            yield Path(folder)

    def variant(self, variant: Variant) -> Variant:
        """A variant converted with float32 input and output (`finish` gives full-integer ones their interface)."""
        return dataclasses.replace(variant, io_type=None)

    def io_type(self, variant: Variant) -> str:
        """The input and output type of a variant's deployable file."""
        return self.integer_io if full_integer(variant) else "float32"

    def finish(self, path: Path, variant: Variant) -> Path:
        """Turns a converted file into the deployable one, in place: integer interface, signature, metadata.

        Raises:
            QuantizationError: LiteRT's interface rewrite fails.
        """
        data = path.read_bytes()
        io_type = self.io_type(variant)
        if io_type != "float32":
            data = _integer_interface(data, io_type)
        data = metadata.edit_model(data, lambda model: _name_interface(model, self.input_range))
        return io.write_atomic(path, metadata.with_metadata(data, self.metadata(variant, io_type)))

    def metadata(self, variant: Variant, io_type: str) -> metadata.ImageClassifierMetadata:
        """The TFLite Metadata of a variant's file."""
        floats = io_type == "float32"
        return metadata.ImageClassifierMetadata(
            name=self.name, description=f"{self.description}; variant {variant.name}: {variant.what}",
            version=self.version, author=self.author, license=self.license, labels=self.labels,
            image_size=self.image_shape[:2], color_space="RGB" if self.input_channels == 3 else "GRAYSCALE",
            normalization=metadata.normalization_for(self.input_range, self.input_channels) if floats else None,
            input_range=self.input_range if floats else (0.0, 255.0) if io_type == "uint8" else (-128.0, 127.0))


def _integer_interface(data: bytes, io_type: str) -> bytes:
    """A float-I/O full-integer model with `io_type` (uint8 or int8) input and output, by LiteRT's own
    `modify_model_interface` (it drops the QUANTIZE and DEQUANTIZE edges, or for uint8 requantizes in them)."""
    from ai_edge_litert import _pywrap_modify_model_interface  # the tool behind TF's modify_model_interface

    with tempfile.TemporaryDirectory(prefix="kdeep_interface_") as folder:
        source, target = Path(folder) / "float_io.tflite", Path(folder) / f"{io_type}_io.tflite"
        source.write_bytes(data)
        status = _pywrap_modify_model_interface.modify_model_interface(str(source), str(target),
                                                                       TENSOR_TYPES[io_type], TENSOR_TYPES[io_type])
        if status != 0 or not target.is_file():
            raise QuantizationError(f"LiteRT could not give the model {io_type} input and output (status {status})")
        return target.read_bytes()


def _name_interface(model: Any, input_range: tuple[float, float]) -> None:
    """Points the signature at the graph's input and output under the deployable names, and gives a uint8 input
    that is requantized the exact pixel scale: pixel p holds low + p (high - low) / 255."""
    graph = model.subgraphs[0]
    for signature in model.signatureDefs or []:
        signature.signatureKey = SIGNATURE
        signature.inputs[0].name, signature.inputs[0].tensorIndex = INPUT, graph.inputs[0]
        signature.outputs[0].name, signature.outputs[0].tensorIndex = OUTPUT, graph.outputs[0]
    tensor = graph.tensors[graph.inputs[0]]
    consumers = [op for op in graph.operators if graph.inputs[0] in op.inputs]
    requantized = consumers and all(_builtin(model, op) == QUANTIZE_OP for op in consumers)
    if tensor.type == TENSOR_TYPES["uint8"] and tensor.quantization is not None and requantized:
        low, high = input_range
        scale = (high - low) / 255.0
        tensor.quantization.scale, tensor.quantization.zeroPoint = [scale], [int(round(-low / scale))]


def _builtin(model: Any, op: Any) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


# ------------------------------------------------------------------------------------------- feeding the files


def input_values(pixels: np.ndarray, detail: dict, normalization: tuple | None) -> np.ndarray:
    """uint8 pixels -> what a deployable file's input takes (`quantization.litert` feeds arrays of the input's
    integer type as they are): a uint8 input the pixels, an int8 one pixel - 128, a float32 one
    (pixel - mean) / std of its NormalizationOptions.

    Raises:
        QuantizationError: a float input without NormalizationOptions metadata.
    """
    dtype = np.dtype(detail["dtype"])
    if dtype == np.uint8:
        return pixels
    if dtype == np.int8:
        return (pixels.astype(np.int16) - 128).astype(np.int8)
    if normalization is None:
        raise QuantizationError("the model's float input has no NormalizationOptions metadata, so how pixels map "
                                "onto it is unknown: export the model with `kdeep export`")
    mean, std = (np.asarray(v, np.float32) for v in normalization)
    return (pixels.astype(np.float32) - mean) / std


# -------------------------------------------------------------------------------------------------- the export


@dataclass
class Exported:
    """What `export` wrote.

    Attributes:
        out_dir: the folder holding the files and the card.
        files: {variant: deployable .tflite} of the variants made.
        failed: {variant: why} of those that could not be made.
        card: the model card (also written as model_card.md and model_card.json).
    """

    out_dir: Path
    files: dict[str, Path]
    failed: dict[str, str]
    card: ModelCard


def deployment(model: Any, dataset: Any = None, *, channels: str = "rgb", integer_io: str = "uint8",
               author: str = "kdeep", license: str = "unspecified", version: str = "1") -> Deployment:
    """The deployable graph of a Keras model: its input and contract, its labels (the contract's, else the
    dataset's class names, else the class indices).

    Raises:
        QuantizationError: a model whose input is not a fixed-size image, or labels that do not match its outputs.
    """
    contract = contract_of(model)
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or None in shape:
        raise QuantizationError(f"model {model.name!r} takes inputs of shape {shape}: a deployable image classifier "
                                "takes fixed-size (height, width, channels) images")
    classes = int(model.output_shape[-1])
    labels = contract.labels or (class_names(dataset) if isinstance(dataset, str) else
                                 tuple(str(i) for i in range(classes)))
    if len(labels) != classes:
        raise QuantizationError(f"model {model.name!r} has {classes} outputs but {len(labels)} labels: give the "
                                "dataset it was trained on")
    trained = f", trained on {dataset}" if isinstance(dataset, str) else ""
    return Deployment(image_shape=shape, input_range=tuple(contract.input_range), output=contract.output,
                      labels=tuple(labels), name=model.name, channels=channels, integer_io=integer_io,
                      description=f"{model.name} image classifier: {shape[0]}x{shape[1]} images, {classes} "
                                  f"classes{trained}", author=author, license=license, version=version)


def export(model_or_path: Any, out_dir: str | os.PathLike, *, variants: str | Sequence[str] | None = None,
           dataset: Any = None, channels: str = "rgb", integer_io: str = "uint8", qat_epochs: int = 1,
           limit: int | None = None, score: bool = True, author: str = "kdeep", license: str = "unspecified",
           version: str = "1") -> Exported:
    """Writes deployable LiteRT files of a model, one per variant, and the model card beside them.

    Args:
        model_or_path: a Keras model, a `.keras` file or a kdeep run directory (its config.json names the dataset).
        out_dir: the folder for `<variant>.tflite`, model_card.md and model_card.json.
        variants: names from `VARIANTS` (list or comma-separated), None for all.
        dataset: a dataset name, an image folder or ((x_train, y_train), (x_test, y_test)): calibration images,
            QAT fine-tuning, labels and scoring; a run's own by default (another one is refused).
        channels: "rgb" (3-channel input) or "model" (the model's channel count).
        integer_io: input and output type of the full-integer variants: "uint8", "float32" or "int8".
        qat_epochs: QAT fine-tuning epochs.
        limit: calibrate and fine-tune on the first `limit` training images and score the first `limit` test images.
        score: score each file in LiteRT on the test split (accuracy, agreement, latency) for the card.
        author, license, version: the metadata's fields.

    Returns:
        `Exported`: the files, the failures, the card.

    Raises:
        QuantizationError: an unknown variant or option, a variant that needs data without a dataset; nothing is
            written then.
    """
    chosen = resolve(variants)
    source = str(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else "(a Keras model in memory)"
    if isinstance(model_or_path, (str, os.PathLike)):
        dataset = dataset_of(model_or_path, dataset)
    model = io.as_model(model_or_path)
    deploy = deployment(model, dataset, channels=channels, integer_io=integer_io, author=author, license=license,
                        version=version)
    needs_data = [v.name for v in chosen if v.representative or v.qat]
    if needs_data and dataset is None:
        raise QuantizationError(f"{', '.join(needs_data)} need(s) training images (calibration, fine-tuning): give "
                                "the dataset (--dataset NAME or FOLDER), or choose float variants only")
    data = _data(load_splits(dataset), limit) if dataset is not None else None
    out = Path(out_dir)
    conversions = _convert(model, deploy, chosen, data, out, qat_epochs)
    for name in conversions.failed:
        variant_path(out, name).unlink(missing_ok=True)  # a file left by an earlier export is not this one
    scored = _score(model, deploy, conversions, data[1]) if data is not None and score else None
    card = _card(model, source, dataset, deploy, conversions, scored)
    write_card(card, out)
    return Exported(out, dict(conversions), dict(conversions.failed), card)


def _data(splits: tuple, limit: int | None) -> tuple:
    """((x_train, y_train), (x_test, y_test)) with the first `limit` images of each split."""
    (x_train, y_train), (x_test, y_test) = splits
    if limit:
        x_train, y_train, x_test, y_test = x_train[:limit], y_train[:limit], x_test[:limit], y_test[:limit]
    return (x_train, np.asarray(y_train).reshape(-1)), (x_test, np.asarray(y_test).reshape(-1))


def _convert(model: Any, deploy: Deployment, chosen: list[Variant], data: tuple | None, out: Path,
             qat_epochs: int) -> Any:
    """Every chosen variant through the one conversion path (`quantization.pipeline.quantize`)."""
    representative, train_data = np.zeros((1, *deploy.input_shape()[1:]), np.float32), None
    if data is not None:
        (x_train, y_train), _test = data
        representative = deploy.channels_of(calibration_images(x_train, deploy.input_range))
        if any(v.qat for v in chosen):
            train_data = (scale_pixels(x_train, deploy.input_range), y_train)
    return quantize(model, [v.name for v in chosen], representative, out, train_data=train_data,
                    qat_epochs=qat_epochs, graph=deploy)


@dataclass(frozen=True)
class _Scores:
    keras_accuracy: float
    n: int
    variants: dict[str, tuple[float, float, float, int]]  # variant -> (accuracy, agreement, latency us, images)


def _score(model: Any, deploy: Deployment, conversions: dict[str, Path], test: tuple) -> _Scores:
    """Each file in LiteRT on the test images fed as a camera app feeds it: uint8 pixels through its input."""
    x_test, y_test = test
    reference = scoring.predict(model, x_test)
    pixels = deploy.channels_of(x_test)
    scores = {}
    for name, path in conversions.items():
        n = min(VARIANTS[name].eval_limit or len(pixels), len(pixels))  # reference kernels: the first n images
        detail = litert.open_model(path).input_detail()
        values = input_values(pixels[:n], detail, metadata.input_normalization(path.read_bytes()))
        outputs = litert.predict_inputs(path, values)
        scores[name] = (scoring.accuracy(outputs, y_test[:n]), scoring.agreement(outputs, reference[:n]),
                        litert.input_latency(path, values[:1], runs=LATENCY_RUNS).median_us, n)
    return _Scores(scoring.accuracy(reference, y_test), int(len(y_test)), scores)


def _card(model: Any, source: str, dataset: Any, deploy: Deployment, conversions: Any,
          scored: _Scores | None) -> ModelCard:
    """The model card of an export."""
    height, width, _ = deploy.image_shape
    files = []
    for name, path in conversions.items():
        variant, io_type = VARIANTS[name], deploy.io_type(VARIANTS[name])
        accuracy, agreement, latency_us, n = scored.variants[name] if scored else (None, None, None, 0)
        files.append(VariantCard(name, variant.what, variant.bits, path.name, path.stat().st_size, io_type,
                                 io_type, accuracy, agreement, latency_us, n))
    colour = "RGB" if deploy.input_channels == 3 else "grey"
    normalization = metadata.normalization_for(deploy.input_range, deploy.input_channels)
    data_name = dataset if isinstance(dataset, str) else "arrays given in Python" if dataset is not None else None
    return ModelCard(
        model=model.name, family=contract_of(model).family, params=int(model.count_params()), source=source,
        dataset=data_name, recipe=_recipe(source), labels=deploy.labels,
        input={"tensor": f"`{INPUT}`, [1, {height}, {width}, {deploy.input_channels}] {colour}",
               "float32 files": f"values in {list(deploy.input_range)}: (pixel - mean) / std with mean "
                                f"{normalization[0][0]:g}, std {normalization[1][0]:g} (NormalizationOptions)",
               "uint8 files": "the pixels as they are (int8 files: pixel - 128)",
               "channels": f"{colour}; the model itself takes {deploy.image_shape[2]} channel(s)"
                           + (" (luma computed in the graph)" if deploy.image_shape[2] != deploy.input_channels
                              else ""),
               "resize": f"to {width}x{height} before the model (MediaPipe and `kdeep predict` do it)"},
        keras_accuracy=scored.keras_accuracy if scored else None, scored_images=scored.n if scored else 0,
        variants=tuple(files), failed=dict(conversions.failed), machine=describe_machine() if scored else "",
        date=timestamp(),
        intended_use=f"Classifying {width}x{height} {colour} images into the {len(deploy.labels)} classes above"
                     f"{f' ({data_name})' if data_name else ''}, on devices that run LiteRT: MediaPipe Tasks' "
                     "ImageClassifier (Android, iOS, web, Python), LiteRT's CompiledModel or Interpreter.",
        limits=_limits(deploy, data_name, conversions))


def _recipe(source: str) -> dict[str, Any]:
    """The training settings of the run a model came from (empty for a model file)."""
    from kdeep.train.run_dir import CONFIG, run_of

    run = run_of(source) if source and not source.startswith("(") else None
    if run is None:
        return {}
    config = io.read_json(run / CONFIG, f"repair {run / CONFIG}")
    keys = ("recipe", "model", "width", "epochs", "batch_size", "optimizer", "lr", "schedule", "augment", "seed")
    return {key: config[key] for key in keys if config.get(key) is not None}


def _limits(deploy: Deployment, data_name: str | None, conversions: Any) -> tuple[str, ...]:
    """What the files are not for."""
    notes = [f"{name}: {VARIANTS[name].note}" for name in conversions if VARIANTS[name].note]
    return (
        f"Trained on {data_name or 'an unknown dataset'} only: images unlike it (other content, framing, "
        "backgrounds) still get probabilities that sum to 1; there is no 'none of these' class.",
        f"Every image is resized to {deploy.image_shape[1]}x{deploy.image_shape[0]}; aspect ratio is not kept.",
        "Quantized files were scored on the images named above only; other data can lose more accuracy.",
        "Not evaluated for robustness to adversarial or out-of-distribution inputs, fairness, or safety-critical use.",
        *notes,
    )
