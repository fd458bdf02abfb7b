"""A model's contract, carried with it (as timm's default_cfg): input range, output kind, classifier, blocks, labels.

Training, evaluation, transfer and quantization read the contract instead of guessing. kdeep's builders declare
it (every builder in `kdeep.models` knows its classifier, first convolution and blocks, and attaches them),
`kdeep.io.save_model` stores it inside the `.keras` file and `kdeep.io.load_model` brings it back. Only a model
kdeep did not build (a Keras application, a user's model) gets one inferred from its layers (`infer`).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from kdeep.errors import ModelError

OUTPUTS = ("probabilities", "logits", "features")
_ATTRIBUTE = "_kdeep_contract"


@dataclass(frozen=True)
class Contract:
    """What a classifier takes and gives.

    Attributes:
        input_range: (low, high) the model's input pixels span; uint8 images are mapped 0 -> low, 255 -> high.
        output: "probabilities" (ends in a softmax), "logits", or "features" (a model built without its
            classifier, `include_top=False`).
        classifier: names of the classifier's layers (Dense and its activation), bottom to top; transfer
            learning replaces them.
        first_conv: name of the first convolution, the layer that sees the pixels ("" when there is none).
        blocks: the block names of the layers with weights, bottom to top (the groups `--unfreeze-blocks` counts).
        family: the registry family ("resnet", ...) or "" for a model kdeep did not build.
        width: the width multiplier the model was built with.
        labels: the class names, one per output, set when the model is trained (a named dataset's classes or an
            image folder's subfolders); empty when unknown. Exported LiteRT files carry them as their labels file.
    """

    input_range: tuple[float, float] = (0.0, 1.0)
    output: str = "probabilities"
    classifier: tuple[str, ...] = ()
    first_conv: str = ""
    blocks: tuple[str, ...] = ()
    family: str = ""
    width: float = 1.0
    labels: tuple[str, ...] = ()

    def to_json(self) -> str:
        """The contract as a JSON object (what a `.keras` file stores)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Contract":
        """The contract a `.keras` file stored (unknown keys from newer versions are ignored)."""
        data = json.loads(text)
        known = {field.name for field in dataclasses.fields(cls)}
        data = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items() if key in known}
        return cls(**data)


def block_of(layer_name: str) -> str:
    """A layer's block: the parts of its name up to the first one holding a digit, else its first part.

    kdeep: block1..block3, conv2..conv5, stage2..; Keras applications: conv1..conv5 stages (ResNet, DenseNet),
    block1..block5 (VGG), block1a.. (EfficientNet), block_1..block_16 (MobileNetV2).
    """
    parts = layer_name.split("_")
    numbered = next((i for i, part in enumerate(parts) if any(ch.isdigit() for ch in part)), None)
    return "_".join(parts[:numbered + 1]) if numbered is not None else parts[0]


def infer(model: Any, **known: Any) -> Contract:
    """The contract read off the layers of a model kdeep did not build: the output kind from its last activation,
    the trailing Dense layers (and what follows them) as the classifier, the first convolution, and the blocks of
    the other layers with weights. kdeep's own builders declare their contract instead.

    Args:
        model: a Keras model.
        **known: fields already known (e.g. family, width) that override the inferred ones.

    Returns:
        The contract.
    """
    layers = list(model.layers)
    last = layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    softmax = type(last).__name__ == "Softmax" or activation == "softmax"
    with_weights = [layer for layer in layers if layer.weights]
    head_start = len(with_weights)
    while head_start and type(with_weights[head_start - 1]).__name__ == "Dense":
        head_start -= 1
    head = with_weights[head_start:]
    classifier = layers[layers.index(head[0]):] if head else []
    first_conv = next((layer.name for layer in layers if "Conv" in type(layer).__name__), "")
    fields = dict(output="probabilities" if softmax else "logits",
                  classifier=tuple(layer.name for layer in classifier), first_conv=first_conv,
                  blocks=tuple(dict.fromkeys(block_of(layer.name) for layer in with_weights[:head_start])))
    return Contract(**{**fields, **known})


def attach(model: Any, contract: Contract) -> Any:
    """Records `contract` on `model` (kept in memory; `kdeep.io.save_model` stores it in the file)."""
    object.__setattr__(model, _ATTRIBUTE, contract)
    return model


def contract_of(model: Any) -> Contract:
    """The model's contract: the one attached to it, else one inferred from its layers (`infer`)."""
    return getattr(model, _ATTRIBUTE, None) or infer(model)


def probabilities(outputs: Any, output: str) -> np.ndarray:
    """Class probabilities from a model's outputs: as they are when the contract's `output` is "probabilities",
    through a (numerically stable) softmax when it is "logits".

    Args:
        outputs: (N, classes) outputs.
        output: the contract's output kind.

    Returns:
        Float32 probabilities.

    Raises:
        ModelError: the output kind is "features" (a model without its classifier gives no class scores).
    """
    if output == "features":
        raise ModelError("the model outputs features, not class scores (it was built with include_top=False): "
                         "give a model with its classifier")
    outputs = np.asarray(outputs, np.float32)
    if output == "probabilities":
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
