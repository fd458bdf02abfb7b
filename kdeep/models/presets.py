"""Pretrained presets: trained weights shipped inside kdeep, each with its model card, found by name.

A preset is `<model>.<tag>` (`resnet20.fashion_mnist`, `deepconvnet.mnist_book`): the weights of a registered model
trained on a dataset, stored in `kdeep/models/weights/<name>.npz` (float16 where the card says so) beside its card
`<name>.json` (data, recipe and the command that trained it, seed, test accuracy of the stored weights, date,
license of the data, sha256 of the weights file). The files work offline: nothing is downloaded. The checksum is
verified on every load, and the model is rebuilt from the registry with the card's input shape, classes and width,
so `kdeep.models.build("resnet20", weights="fashion_mnist")` and `load("resnet20.fashion_mnist")` give the same
model. `kdeep.train.publish` makes presets from finished runs.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import io as bytes_io
import os
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kdeep import io
from kdeep.contract import attach, contract_of
from kdeep.errors import ModelError
from kdeep.models.registry import info, takes_width

FOLDER = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class Preset:
    """A preset's card (what `<name>.json` holds).

    Attributes:
        name: `<model>.<tag>`.
        model: the registered model name.
        width: the width multiplier it was built with.
        dataset: the dataset it was trained on.
        input_shape: (H, W, C) the model takes.
        labels: the class names, one per output.
        test_accuracy: top-1 on the dataset's test split of the weights as stored (what loading gives).
        run_test_accuracy: top-1 of the run's own float32 model before storing.
        storage: dtype the weights are stored in ("float16" or "float32"); they load as float32.
        sha256: checksum of the weights file.
        params: parameter count.
        train_command: the command line that trained it (a run warm-started from another run: both commands,
            joined by ' && ').
        publish_command: the command that made the preset from the run.
        config: the run's whole training configuration (config.json).
        seed: the training seed.
        epochs: epochs trained (over the whole chain of commands).
        train_seconds: training time (over the whole chain).
        date: when the preset was made (UTC).
        machine: the CPU it was trained on.
        data_license: where the data comes from and its license.
        versions: TensorFlow and Keras versions that trained it.
    """

    name: str
    model: str
    width: float
    dataset: str
    input_shape: tuple[int, int, int]
    labels: tuple[str, ...]
    test_accuracy: float
    run_test_accuracy: float
    storage: str
    sha256: str
    params: int
    train_command: str
    publish_command: str
    config: dict[str, Any]
    seed: int
    epochs: int
    train_seconds: float
    date: str
    machine: str
    data_license: str
    versions: dict[str, str]

    @property
    def tag(self) -> str:
        """The part after the model name (`fashion_mnist` in `resnet20.fashion_mnist`)."""
        return self.name[len(self.model) + 1:]

    @property
    def weights_file(self) -> Path:
        """Where the weights are stored."""
        return FOLDER / f"{self.name}.npz"

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-ready data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preset:
        """A card from what `to_dict` wrote."""
        known = {field.name for field in dataclasses.fields(cls)}
        data = {key: value for key, value in data.items() if key in known}
        data.update(input_shape=tuple(data["input_shape"]), labels=tuple(data["labels"]))
        return cls(**data)


def list_presets() -> list[Preset]:
    """Every shipped preset, sorted by name."""
    return [Preset.from_dict(json.loads(card.read_text(encoding="utf-8"))) for card in sorted(FOLDER.glob("*.json"))]


def get(name: str) -> Preset:
    """The preset called `name`; ModelError naming the valid presets (and the closest one) when there is none."""
    presets = {preset.name: preset for preset in list_presets()}
    if name in presets:
        return presets[name]
    close = difflib.get_close_matches(name, list(presets), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ModelError(f"unknown preset {name!r}; {hint}valid presets: {', '.join(presets) or '(none shipped)'}")


def is_preset_name(text: str) -> bool:
    """Whether `text` is spelled like a preset name (`<model>.<tag>`, no path separator, no file suffix)."""
    return "." in text and "/" not in text and not text.endswith((".keras", ".tflite", ".h5", ".npz", ".json"))


def named(text: Any) -> Preset | None:
    """The preset a command-line model argument names (`resnet20.fashion_mnist`), or None for a path or a model."""
    if isinstance(text, str) and is_preset_name(text) and not Path(text).exists():
        return get(text)
    return None


def for_model(model: str, tag: str) -> Preset:
    """The preset of `model` trained as `tag` (`build("resnet20", weights="fashion_mnist")`)."""
    return get(f"{model}.{tag}")


def as_model(model: Any) -> Any:
    """The one place a model argument becomes a model: a Keras model as it is, a preset name (`resnet20.fashion_mnist`)
    loaded with `load`, else a path (a run directory or a `.keras` file) loaded with `kdeep.io.load_model`."""
    preset = named(model)
    if preset is not None:
        return build(preset.model, preset.tag)
    return io.load_model(model) if isinstance(model, (str, os.PathLike)) else model


def load(name: str) -> Any:
    """The preset `name` as a Keras model (`kdeep.models.presets.load("resnet20.fashion_mnist")`).

    Raises:
        ModelError: unknown name, or a weights file whose checksum does not match its card (reinstall kdeep).
    """
    preset = get(name)
    return build(preset.model, preset.tag)


def build(model: str, tag: str, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None,
          **options: Any) -> Any:
    """Builds `model` with the verified weights of its preset `<model>.<tag>` (what `weights=tag` does).

    The card fixes the input shape, the classes and the width; other options that keep the weights (e.g.
    `classifier_activation=None` for logits, `name`) pass through.

    Returns:
        The Keras model (float32), its contract carrying the preset's class names.

    Raises:
        ModelError: unknown preset, an argument that contradicts the card, or a damaged weights file.
    """
    preset = for_model(model, tag)
    given = dict(input_shape=input_shape and tuple(input_shape), num_classes=num_classes,
                 width=options.get("width"))
    fixed = dict(input_shape=preset.input_shape, num_classes=len(preset.labels), width=preset.width)
    for what, value in given.items():
        if value is not None and value != fixed[what]:
            raise ModelError(f"preset {preset.name} was trained with {what}={fixed[what]!r}, not {value!r}: leave "
                             f"{what} out (or build without weights= and train it)")
    if takes_width(model):
        options["width"] = preset.width
    built = info(model).builder(preset.input_shape, len(preset.labels), **options)
    assign(built, read_weights(preset))
    return attach(built, dataclasses.replace(contract_of(built), labels=preset.labels))


def read_weights(preset: Preset) -> dict[str, np.ndarray]:
    """The preset's stored arrays by weight path, after checking the file's sha256 against the card."""
    try:
        data = preset.weights_file.read_bytes()
    except OSError:
        raise ModelError(f"preset {preset.name!r}: {preset.weights_file} is missing; reinstall kdeep") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != preset.sha256:
        raise ModelError(f"preset {preset.name!r}: {preset.weights_file.name} has sha256 {digest[:12]}..., its card "
                         f"says {preset.sha256[:12]}...: the file is damaged; reinstall kdeep")
    with np.load(bytes_io.BytesIO(data)) as arrays:
        return {path: arrays[path] for path in arrays.files}


def weight_arrays(model: Any, storage: str = "float16") -> dict[str, np.ndarray]:
    """A model's weights by path (`block1_conv1/kernel`), cast to `storage` (what a preset file stores)."""
    return {weight.path: np.asarray(weight.numpy(), dtype=storage) for weight in model.weights}


def assign(model: Any, arrays: dict[str, np.ndarray]) -> None:
    """Sets every weight of `model` from `arrays` (by path, cast to the weight's dtype).

    Raises:
        ModelError: the paths or shapes differ (the preset was made for another version of the builder).
    """
    paths = [weight.path for weight in model.weights]
    if sorted(paths) != sorted(arrays):
        missing, extra = sorted(set(paths) - set(arrays)), sorted(set(arrays) - set(paths))
        raise ModelError(f"preset weights do not fit {model.name!r}: missing {missing[:3]}, unexpected {extra[:3]}; "
                         f"rebuild the preset with `kdeep presets publish`")
    for weight in model.weights:
        value = arrays[weight.path]
        if tuple(value.shape) != tuple(weight.shape):
            raise ModelError(f"preset weight {weight.path} has shape {value.shape}, the model's is "
                             f"{tuple(weight.shape)}; rebuild the preset with `kdeep presets publish`")
        weight.assign(value.astype(weight.dtype))
