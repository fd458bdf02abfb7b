"""Transfer learning: a new classifier head on a trained backbone, trained frozen, then the top blocks unfrozen."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import keras

from kdeep import io
from kdeep.contract import attach, block_of, contract_of, infer
from kdeep.data.splits import load_split
from kdeep.data.splits import num_classes as classes_of
from kdeep.errors import ConfigError
from kdeep.models import presets
from kdeep.shapes import takes_images
from kdeep.train import run_dir as rd
from kdeep.train.config import TrainConfig
from kdeep.train.trainer import Run, fit

HEAD_PREFIX = "transfer"  # the new layers are transfer_logits and transfer_predictions


def adapt_input(inputs: Any, input_shape: tuple[int | None, ...]) -> Any:
    """Resizes and/or repeats grey to RGB so images fit a model's input (no layer when they already fit).

    Args:
        inputs: a Keras tensor of images (batch, height, width, channels).
        input_shape: the model's (height, width, channels); None dimensions take any size.

    Returns:
        The adapted tensor (through `adapter_resize` and `adapter_rgb` layers where needed).

    Raises:
        ConfigError: the channels cannot be matched (only 1 -> 3 is adapted) or the model does not take images.
    """
    have = tuple(inputs.shape[1:])
    if len(input_shape) != 3:
        raise ConfigError(f"the model takes inputs of shape {input_shape}, not images (height, width, channels): "
                          f"give a model whose input is an image")
    (height, width, channels), (_, _, got) = input_shape, have
    if channels not in (None, got) and (got, channels) != (1, 3):
        raise ConfigError(f"the model takes {channels}-channel images and the dataset has {got} channels: "
                          f"use a model built for {got}-channel images")
    x = inputs
    if None not in (height, width) and (height, width) != have[:2]:
        x = keras.layers.Resizing(height, width, name="adapter_resize")(x)
    if (got, channels) == (1, 3):
        x = keras.layers.Concatenate(name="adapter_rgb")([x, x, x])
    return x


def new_head(backbone: keras.Model, num_classes: int, image_shape: tuple[int, ...] | None = None) -> keras.Model:
    """The backbone without its classifier (the layers its contract names), plus a new Dense(num_classes) softmax.

    For DeepConvNet the features are the flattened last conv block (1,024 values; the book's affine layers
    fc1 and logits are replaced); for a Keras application with its top, the pooled features. When the data's
    images differ from the backbone's input (say 28x28 grey MNIST into a 32x32 RGB Keras application), the
    model first resizes them and repeats grey into three channels (`adapt_input`).

    Args:
        backbone: a trained classifier (functional or sequential Keras model).
        num_classes: classes of the new task.
        image_shape: the new task's image shape (height, width, channels); None keeps the backbone's input.

    Returns:
        A model sharing the backbone's layers, with the backbone frozen and the new head trainable.
    """
    classifier = contract_of(backbone).classifier
    if not classifier:
        raise ConfigError(f"model {backbone.name!r} has no classifier layers to replace (its contract names none): "
                          f"give a classifier that ends in Dense layers")
    features = backbone.get_layer(classifier[0]).input
    inputs = backbone.inputs
    backbone_shape = tuple(backbone.inputs[0].shape[1:])
    if image_shape is not None and not takes_images(backbone_shape, image_shape):
        inputs = keras.Input(tuple(image_shape), name="adapter_input")
        features = keras.Model(backbone.inputs[0], features).call(adapt_input(inputs, backbone_shape))
    x = keras.layers.Dense(num_classes, name=f"{HEAD_PREFIX}_logits")(features)
    outputs = keras.layers.Activation("softmax", dtype="float32", name=f"{HEAD_PREFIX}_predictions")(x)
    model = keras.Model(inputs, outputs, name=f"{backbone.name}_{HEAD_PREFIX}")
    for layer in model.layers:
        layer.trainable = layer.name.startswith(f"{HEAD_PREFIX}_")
    backbone_contract = contract_of(backbone)  # the new model takes the backbone's pixels
    return attach(model, dataclasses.replace(infer(model), input_range=backbone_contract.input_range,
                                             family=backbone_contract.family, width=backbone_contract.width))


def unfreeze_top(model: keras.Model, blocks: int) -> list[str]:
    """Makes the top `blocks` blocks with weights (plus the head) trainable; returns their names, top first."""
    order = list(dict.fromkeys(block_of(layer.name) for layer in model.layers
                               if layer.weights and not layer.name.startswith(f"{HEAD_PREFIX}_")))
    chosen = order[::-1][:blocks]
    for layer in model.layers:
        if block_of(layer.name) in chosen or layer.name.startswith(f"{HEAD_PREFIX}_"):
            layer.trainable = True
    return chosen


def transfer(backbone_model_or_path: keras.Model | str | os.PathLike, new_num_classes: int | None, dataset: Any, *,
             config: TrainConfig | None = None, head_epochs: int | None = None, unfreeze_blocks: int = 2,
             lr_factor: float = 0.1, verbose: int | str = "auto") -> Run:
    """Fine-tunes a trained model on a new task in two runs: OUT/head (backbone frozen), then OUT/finetune
    (top `unfreeze_blocks` blocks unfrozen, learning rate times `lr_factor`).

    Args:
        backbone_model_or_path: a Keras model, a kdeep run directory or any .keras file (e.g. a
            keras.applications model with its top); images of another size or grey ones are adapted to its input.
        new_num_classes: classes of the new task (None: the dataset's, `kdeep.data.num_classes`).
        dataset: a dataset name or ((x_train, y_train), (x_test, y_test)); `config.limit` picks the first N labels.
        config: TrainConfig of both phases (`epochs` is the fine-tuning phase's; `out` the transfer directory).
        head_epochs: epochs of the frozen phase (default: config.epochs).
        unfreeze_blocks: how many top blocks the second phase trains (0: only the head again).
        lr_factor: the second phase's learning rate is config.lr * lr_factor.
        verbose: Keras fit verbosity.

    Returns:
        The fine-tuning Run; its metrics add head_test_accuracy and unfrozen_blocks (also in OUT/metrics.json).
    """
    new_num_classes = classes_of(dataset) if new_num_classes is None else new_num_classes
    if new_num_classes < 1 or unfreeze_blocks < 0 or not 0 < lr_factor <= 1:
        raise ConfigError("transfer needs new_num_classes >= 1, unfreeze_blocks >= 0 and 0 < lr_factor <= 1")
    backbone = presets.as_model(backbone_model_or_path)
    config = config or TrainConfig()
    if config.mixed_precision != "float32":
        raise ConfigError("transfer trains an existing float32 model: use mixed_precision='float32'")
    out = rd.out_dir(config.out, "kdeep-transfer-")
    model = new_head(backbone, new_num_classes, image_shape=load_split(dataset, "train")[0].shape[1:])
    head = fit(model, dataset, verbose=verbose,
               config=dataclasses.replace(config, epochs=head_epochs or config.epochs, out=str(out / "head")))
    unfrozen = unfreeze_top(head.model, unfreeze_blocks)
    tuned = fit(head.model, dataset, verbose=verbose,
                config=dataclasses.replace(config, lr=config.lr * lr_factor, out=str(out / "finetune")))
    tuned.metrics.update(head_test_accuracy=head.metrics["test_accuracy"], unfrozen_blocks=unfrozen)
    io.write_json(out / rd.METRICS, tuned.metrics)
    return Run(out, tuned.model, tuned.metrics, tuned.history)
