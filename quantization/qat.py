"""Quantization-aware training: the tf_keras twin of a Keras 3 model, tfmot annotation and low-LR fine-tuning."""
import functools
import inspect
import re
from typing import Any

import numpy as np

from kdeep.contract import contract_of
from kdeep.errors import QuantizationError

TWIN_TOLERANCE = 1e-5
# Layers tfmot has no default for that need no fake quantization of their own: zero-padding that only moves
# values (ResNet option-A shortcuts), like tfmot's own ZeroPadding2D/Reshape handling, and the constant
# Rescaling of the book's test-time dropout (`deepconvnet_book`), whose int8 range the converter calibrates.
PASS_THROUGH_LAYERS = ("ZeroPadding1D", "ZeroPadding3D", "Rescaling")
_BASE_LAYER_KWARGS = {"name", "trainable", "dtype", "input_shape", "batch_input_shape", "dynamic", "autocast"}
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
            f"qat_int8: layer {owner!r} uses {class_name}, which has no tf_keras twin; "
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
                    f"qat_int8: layer {owner!r} ({class_name}) sets {key}={config[key]!r}, "
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
        raise QuantizationError(f"qat_int8: layer {layer_name!r} is called with {len(args)} positional inputs")
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
        raise QuantizationError(f"qat_int8: model {model.name!r} is not a functional model; rebuild it with keras.Model")
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
        raise QuantizationError(f"qat_int8: tf_keras twin of {model.name!r} differs from it by {difference:.3g}")
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


def annotate(twin_model: Any) -> Any:
    """Wraps the twin with tfmot's default 8-bit fake quantization (`PASS_THROUGH_LAYERS` pass values through).

    Raises:
        QuantizationError: tfmot cannot annotate a layer (the message names it).
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras

    keras_q = tfmot.quantization.keras
    config = _pass_through_config()

    def mark(layer: Any) -> Any:
        return (keras_q.quantize_annotate_layer(layer, quantize_config=config())
                if type(layer).__name__ in PASS_THROUGH_LAYERS else layer)

    try:
        marked = tf_keras.models.clone_model(twin_model, clone_function=mark)
        with keras_q.quantize_scope({config.__name__: config}):
            return keras_q.quantize_apply(keras_q.quantize_annotate_model(marked))
    except (RuntimeError, ValueError, TypeError) as error:
        reason = str(error).strip().splitlines()[0]
        unsupported = re.match(r"Layer (\S+):<class '[\w.]*?(\w+)'> is not supported", reason)
        if unsupported:
            reason = f"layer {unsupported[1]!r} ({unsupported[2]}) is not supported by tfmot's 8-bit scheme"
        raise QuantizationError(
            f"qat_int8: tfmot cannot annotate {twin_model.name!r}: {reason}; the other variants are unaffected"
        ) from error


def fine_tune(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int = 1, learning_rate: float = 5e-5,
              batch_size: int = 128, seed: int = 0) -> Any:
    """Quantization-aware fine-tuning: tf_keras twin -> tfmot annotation -> a few epochs at low LR.

    Args:
        model: the trained Keras 3 model.
        x: float training images (the model's input), y: integer labels.
        epochs: fine-tuning epochs (0 keeps the weights, only calibrates the fake-quant ranges in conversion).
        learning_rate: Adam learning rate (low: the weights are already trained).
        batch_size: fine-tuning batch size.
        seed: shuffle seed.

    Returns:
        The quantization-aware tf_keras model, ready for full-integer conversion.

    Raises:
        QuantizationError: the model cannot be twinned or annotated (the message names the layer).
    """
    import tf_keras

    import kdeep.data

    twin_model = twin(model, x[:16])
    qat_model = annotate(twin_model)
    logits = contract_of(model).output == "logits"
    qat_model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                      loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=logits), metrics=["accuracy"])
    if epochs > 0:
        qat_model.fit(kdeep.data.pipeline(x, y, batch_size, seed=seed, cache=False), epochs=epochs, verbose=0)
    return qat_model
