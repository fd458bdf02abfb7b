"""Quantization-aware training: the tf_keras twin of a Keras 3 model, tfmot annotation (8-bit, or 4-bit weights)
and low-LR fine-tuning."""
import functools
import inspect
import re
import time
from typing import Any

import numpy as np

from kdeep import progress
from kdeep.contract import contract_of
from kdeep.errors import QuantizationError, reason

TWIN_TOLERANCE = 1e-5
# Layers tfmot has no default for that need no fake quantization of their own: zero-padding that only moves
# values (ResNet option-A shortcuts), like tfmot's own ZeroPadding2D/Reshape handling, and the constant
# Rescaling of the book's test-time dropout (`deepconvnet_book`), whose int8 range the converter calibrates.
PASS_THROUGH_LAYERS = ("ZeroPadding1D", "ZeroPadding3D", "Rescaling")
_BASE_LAYER_KWARGS = {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "dynamic", "autocast"}
# Layers whose kernels the sub-8-bit export quantizes (the LiteRT quantizer: CONV_2D and FULLY_CONNECTED).
WEIGHT_LAYERS = ("Conv2D", "Dense")
_TF_KERAS_MODULES = {"keras.initializers": "initializers", "keras.regularizers": "regularizers",
                     "keras.constraints": "constraints"}


def _is_serialized(value: Any) -> bool:
    return isinstance(value, dict) and "class_name" in value and "config" in value


def _tf_keras_object(entry: dict, owner: str) -> dict:
    """Maps a serialized Keras 3 layer/initializer/regularizer/constraint to tf_keras's {class_name, config}."""
    import tf_keras

    class_name, config = entry["class_name"], dict(entry["config"])
    module = getattr(tf_keras, _TF_KERAS_MODULES.get(entry.get("module"), "layers"))
    cls = getattr(module, class_name, None)
    if cls is None:
        raise QuantizationError(
            f"QAT: layer {owner!r} uses {class_name}, which has no tf_keras twin; "
            "QAT supports models made of built-in Keras layers"
        )
    if class_name == "InputLayer":
        config["batch_input_shape"] = config.pop("batch_shape")
    if isinstance(config.get("dtype"), dict):
        config["dtype"] = config["dtype"]["config"]["name"]
    accepted = _BASE_LAYER_KWARGS.union(
        *(inspect.signature(c.__init__).parameters for c in cls.__mro__ if "__init__" in vars(c))
    )
    for key in list(config):
        if key not in accepted:
            if config[key] not in (None, False, 0, [], {}):
                raise QuantizationError(
                    f"QAT: layer {owner!r} ({class_name}) sets {key}={config[key]!r}, "
                    "which tf_keras does not know; QAT cannot twin this layer"
                )
            del config[key]
        elif _is_serialized(config[key]):
            config[key] = _tf_keras_object(config[key], owner)
    return {"class_name": class_name, "config": config}


def _layer_config(layer: dict) -> dict:
    """Maps one Keras 3 functional-config layer entry to the tf_keras format (same class, name, settings)."""
    name = layer["config"]["name"]
    return {**_tf_keras_object(layer, name), "name": name,
            "inbound_nodes": [_inbound_node(node, name) for node in layer["inbound_nodes"]]}


def _inbound_node(node: dict, layer_name: str) -> list:
    """Keras 3 node {"args": [tensor | [tensors]], "kwargs"} -> tf_keras [[name, node, index, kwargs], ...]."""
    args, kwargs = node["args"], node["kwargs"]
    if len(args) != 1:
        raise QuantizationError(f"QAT: layer {layer_name!r} is called with {len(args)} positional inputs")
    tensors = args[0] if isinstance(args[0], list) else [args[0]]
    return [[*t["config"]["keras_history"], dict(kwargs)] for t in tensors]


def _as_nested(refs: list) -> list:
    """Keras 3 writes a single input/output reference flat; tf_keras wants a list of references."""
    return [refs] if refs and isinstance(refs[0], str) else refs


def twin(model: Any, sample: np.ndarray) -> Any:
    """Builds the tf_keras (Keras 2) twin of a Keras 3 functional model: same layers, names and weights.

    Args:
        model: a Keras 3 functional or Sequential model.
        sample: a few float input images used to check the twin.

    Returns:
        The tf_keras model, whose outputs on `sample` equal the Keras 3 model's.

    Raises:
        QuantizationError: a layer has no tf_keras equivalent, or the outputs differ.
    """
    import keras
    import tf_keras

    if isinstance(model, keras.Sequential):
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    config = model.get_config()
    if "layers" not in config or "input_layers" not in config:
        raise QuantizationError(f"QAT: model {model.name!r} is not a functional model; rebuild it with keras.Model")
    twin_config = {
        "name": config["name"],
        "layers": [_layer_config(layer) for layer in config["layers"]],
        "input_layers": _as_nested(config["input_layers"]),
        "output_layers": _as_nested(config["output_layers"]),
    }
    twin_model = tf_keras.Model.from_config(twin_config)
    for layer in model.layers:
        twin_model.get_layer(layer.name).set_weights(layer.get_weights())
    expected = np.asarray(model(sample, training=False))
    difference = float(np.max(np.abs(twin_model(sample, training=False).numpy() - expected)))
    if difference > TWIN_TOLERANCE:
        raise QuantizationError(f"QAT: tf_keras twin of {model.name!r} differs from it by {difference:.3g}")
    return twin_model


@functools.cache
def _pass_through_config() -> Any:
    """A tfmot QuantizeConfig for layers that only move or zero-pad values: no weights, no new range to learn."""
    import tensorflow_model_optimization as tfmot

    class PassThroughQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
        def get_weights_and_quantizers(self, layer: Any) -> list:
            return []

        def get_activations_and_quantizers(self, layer: Any) -> list:
            return []

        def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
            pass

        def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
            pass

        def get_output_quantizers(self, layer: Any) -> list:
            return []

        def get_config(self) -> dict:
            return {}

    return PassThroughQuantizeConfig


@functools.cache
def _weight_only_config() -> Any:
    """A tfmot QuantizeConfig that fake-quantizes only the kernel: per output channel, symmetric, `num_bits` wide
    (the grid the LiteRT quantizer's int4 export uses), activations left float as in the deployed model."""
    import tensorflow_model_optimization as tfmot

    keras_q = tfmot.quantization.keras

    class WeightOnlyQuantizeConfig(keras_q.QuantizeConfig):
        def __init__(self, num_bits: int = 4) -> None:
            self.num_bits = num_bits

        def get_weights_and_quantizers(self, layer: Any) -> list:
            quantizer = keras_q.quantizers.LastValueQuantizer(num_bits=self.num_bits, per_axis=True,
                                                              symmetric=True, narrow_range=True)
            return [(layer.kernel, quantizer)]

        def get_activations_and_quantizers(self, layer: Any) -> list:
            return []

        def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
            layer.kernel = quantize_weights[0]

        def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
            pass

        def get_output_quantizers(self, layer: Any) -> list:
            return []

        def get_config(self) -> dict:
            return {"num_bits": self.num_bits}

    return WeightOnlyQuantizeConfig


@functools.cache
def _weight_only_scheme() -> Any:
    """A tfmot QuantizeScheme that wraps only the annotated layers: none of the default 8-bit scheme's layout
    transforms (its input QuantizeLayer, its fake quantization of the activations after a quantized layer)."""
    import tensorflow_model_optimization as tfmot

    keras_q = tfmot.quantization.keras

    class KeepLayout(keras_q.QuantizeLayoutTransform):
        def apply(self, model: Any, layer_quantize_map: dict) -> tuple:
            return model, layer_quantize_map

    class AnnotatedOnly(keras_q.QuantizeRegistry):
        def get_quantize_config(self, layer: Any) -> None:
            return None

        def supports(self, layer: Any) -> bool:
            return False

    class WeightOnlyScheme(keras_q.QuantizeScheme):
        def get_layout_transformer(self) -> Any:
            return KeepLayout()

        def get_quantize_registry(self) -> Any:
            return AnnotatedOnly()

    return WeightOnlyScheme()


def annotate(twin_model: Any, weight_bits: int = 8) -> Any:
    """Wraps the twin with fake quantization.

    Args:
        twin_model: the tf_keras twin.
        weight_bits: 8: tfmot's default 8-bit scheme, weights and activations (`PASS_THROUGH_LAYERS` pass values
            through); below 8: only the kernels of `WEIGHT_LAYERS`, `weight_bits` wide, activations float.

    Returns:
        The quantization-aware tf_keras model.

    Raises:
        QuantizationError: tfmot cannot annotate a layer (the message names it).
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras

    keras_q = tfmot.quantization.keras
    config = _pass_through_config() if weight_bits == 8 else _weight_only_config()

    def mark(layer: Any) -> Any:
        if weight_bits == 8:
            return (keras_q.quantize_annotate_layer(layer, quantize_config=config())
                    if type(layer).__name__ in PASS_THROUGH_LAYERS else layer)
        return (keras_q.quantize_annotate_layer(layer, quantize_config=config(weight_bits))
                if type(layer).__name__ in WEIGHT_LAYERS else layer)

    try:
        marked = tf_keras.models.clone_model(twin_model, clone_function=mark)
        with keras_q.quantize_scope({config.__name__: config}):
            if weight_bits == 8:
                return keras_q.quantize_apply(keras_q.quantize_annotate_model(marked))
            return keras_q.quantize_apply(marked, scheme=_weight_only_scheme())
    except (RuntimeError, ValueError, TypeError) as error:
        why = reason(error)
        unsupported = re.match(r"Layer (\S+):<class '[\w.]*?(\w+)'> is not supported", why)
        if unsupported:
            why = f"layer {unsupported[1]!r} ({unsupported[2]}) is not supported by tfmot's 8-bit scheme"
        raise QuantizationError(
            f"QAT: tfmot cannot annotate {twin_model.name!r}: {why}; the other variants are unaffected"
        ) from error


def fine_tune(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int = 1, learning_rate: float = 5e-5,
              batch_size: int = 128, seed: int = 0, weight_bits: int = 8) -> Any:
    """Quantization-aware fine-tuning: tf_keras twin -> tfmot annotation -> a few epochs at low LR.

    Args:
        model: the trained Keras 3 model.
        x: float training images (the model's input), y: integer labels.
        epochs: fine-tuning epochs (0 keeps the weights, only calibrates the fake-quant ranges in conversion).
        learning_rate: Adam learning rate (low: the weights are already trained).
        batch_size: fine-tuning batch size.
        seed: shuffle seed.
        weight_bits: 8 for the full-integer scheme, 4 for 4-bit weights with float activations (see `annotate`).

    Returns:
        The quantization-aware tf_keras model: ready for full-integer conversion (8 bits), or for `float_weights`.

    Raises:
        QuantizationError: the model cannot be twinned or annotated (the message names the layer).
    """
    import tf_keras

    import kdeep.data

    twin_model = twin(model, x[:16])
    qat_model = annotate(twin_model, weight_bits)
    logits = contract_of(model).output == "logits"
    qat_model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=logits), metrics=["accuracy"])
    if epochs > 0:
        steps = -(-len(x) // batch_size)
        progress.say(f"QAT fine-tuning ({weight_bits}-bit weights): {epochs} epoch(s) of {len(x):,} images")
        qat_model.fit(kdeep.data.pipeline(x, y, batch_size, seed=seed, cache=False), epochs=epochs, verbose=0,
                      callbacks=[_progress_callback(tf_keras, epochs, steps)])
    return qat_model


def _progress_callback(tf_keras: Any, epochs: int, steps: int) -> Any:
    """A tf_keras callback that says (kdeep.progress) how far fine-tuning is, four times an epoch."""

    class Progress(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch, self.start = epoch, time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if (batch + 1) % max(1, steps // 4) == 0 or batch + 1 == steps:
                logs = logs or {}
                progress.say(f"QAT epoch {self.epoch + 1}/{epochs}: {batch + 1}/{steps} batches, loss "
                             f"{logs.get('loss', float('nan')):.4f}, accuracy {100 * logs.get('accuracy', 0):.2f}%, "
                             f"{time.perf_counter() - self.start:.0f} s")

    return Progress()


def float_weights(model: Any, qat_model: Any) -> Any:
    """A Keras 3 copy of `model` holding the QAT-trained float weights (what a weight-only export quantizes).

    Args:
        model: the Keras 3 model that was fine-tuned.
        qat_model: its quantization-aware tf_keras model from `fine_tune`.

    Returns:
        A new Keras 3 model, same architecture, with each layer's weights taken by name from its layer in the QAT
        model (tfmot's `quant_<name>` wrapper holds the fine-tuned kernel beside its quantizer variables).
    """
    import keras

    trained = keras.models.clone_model(model)
    for layer in trained.layers:
        if layer.weights:
            source = next(q for q in qat_model.layers if q.name in (layer.name, f"quant_{layer.name}"))
            values = {v.name.split("/")[-1].split(":")[0]: v for v in source.weights}  # tf_keras: "fc1/kernel:0"
            layer.set_weights([values[w.name].numpy() for w in layer.weights])
    return trained
