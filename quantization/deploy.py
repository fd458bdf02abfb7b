"""The deployable graph of a model: a camera-style image in, probabilities out, one named signature, TFLite Metadata.

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

`Deployment` is the graph `quantization.pipeline.quantize` converts every variant from (`graph=`), the same
conversion path for `kdeep quantize` and `kdeep export`; `Deployment.finish` then sets the integer interface, the
signature and the metadata of each file. `quantization.litert` feeds such files pixels as their metadata says.
"""
from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from kdeep import io
from kdeep.contract import contract_of
from kdeep.data import class_names
from kdeep.errors import QuantizationError
from quantization import metadata
from quantization.variants import Variant

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's convert("L")
SIGNATURE, INPUT, OUTPUT = "serving_default", "image", "probabilities"
CHANNELS = ("rgb", "model")
INTEGER_IO = ("uint8", "float32", "int8")
TENSOR_TYPES = {"uint8": 3, "int8": 9}  # TFLite schema TensorType values
QUANTIZE_OP = 114  # TFLite schema BuiltinOperator.QUANTIZE


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
    def saved_model(self, model: Any, variant: Variant | None = None) -> Iterator[Path]:
        """The deployable graph of a Keras 3 or tf_keras (QAT) model as a SavedModel with one signature.

        A one-channel model's luma is a multiply and a channel sum (SUM), the fastest form in LiteRT, except for a
        `variant` with 16-bit activations: the TF converter's int16 SUM comes out wrong (ResNet-20's int16x8 file
        lost 12 points with it, its first op already 40 % off), so there it is three slices, multiplies and adds.
        """
        import keras
        import tensorflow as tf

        model_channels, logits = self.image_shape[2], self.output == "logits"
        without_sum = variant is not None and self.own_graph(variant)

        def serve(image: Any) -> dict[str, Any]:
            x = image
            if without_sum:
                x = x[..., 0:1] * LUMA[0] + x[..., 1:2] * LUMA[1] + x[..., 2:3] * LUMA[2]
            elif self.input_channels == 3 and model_channels == 1:
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

    def own_graph(self, variant: Variant) -> bool:
        """True for a variant whose graph differs from the shared export's: a grey model's RGB luma with 16-bit
        activations (`saved_model`)."""
        return self.input_channels == 3 and self.image_shape[2] == 1 and variant.activation_bits == 16

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
