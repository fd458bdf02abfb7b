"""Layers of a Keras model (nested models included, by layer-plan key) wrapped in place: a clone that shares every
layer's weights and puts a wrapper around the chosen ones, and the values of chosen layers' inputs or outputs over
a set of images, recorded in eager calls of such a clone (`Recorder`, made once and called as often as needed)."""
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from quantization.plan import walk

BATCH = 64  # images per eager call when recording


def wrapped_clone(model: Any, keys: Mapping[str, Any], wrap: Callable[[Any, str], Any]) -> Any:
    """A clone of `model` that calls the same layer objects (their weights shared), with each layer whose plan key
    is in `keys` replaced by `wrap(layer, key)`; nested models are cloned the same way.

    The shared layers gain inbound nodes in the clone's graph: read a model's structure (consumers of a layer)
    from a model that was never wrapped.
    """
    import keras

    chosen = {id(layer): "/".join(path) for path, layer in walk(model) if "/".join(path) in keys}

    def clone(layer: Any) -> Any:
        key = chosen.get(id(layer))
        return layer if key is None else wrap(layer, key)

    return keras.models.clone_model(model, clone_function=clone, recursive=True)


class Recorder:
    """A private copy of a Keras model whose chosen layers' inputs or outputs are recorded in eager calls.

    The copy (`model`, its weights copied once) is cloned and wrapped once; weights assigned to its layers later
    are used by the next call (a quantized copy filled in layer by layer records with each assignment).

    Args:
        model: a functional Keras model (never modified).
        sides: {plan key: "input" or "output"}.
    """

    def __init__(self, model: Any, sides: Mapping[str, str]) -> None:
        import keras

        self.model = keras.models.clone_model(model)
        self.model.set_weights(model.get_weights())
        self.sides = dict(sides)
        self._wanted: set[str] = set()
        self._found: dict[str, np.ndarray] = {}
        found, wanted = self._found, self._wanted

        def wrap(layer: Any, key: str) -> Any:
            class Tap(keras.layers.Layer):
                def __init__(self) -> None:
                    super().__init__(name=layer.name)
                    self.inner = layer

                def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
                    return self.inner.compute_output_spec(*args, **kwargs)  # while the clone is built: no values

                def call(self, *args: Any, **kwargs: Any) -> Any:
                    output = self.inner(*args, **kwargs)
                    if key in wanted:
                        found[key] = np.asarray(args[0] if sides[key] == "input" else output, np.float32)
                    return output

            return Tap()

        self._tapped = wrapped_clone(self.model, self.sides, wrap)

    def __call__(self, images: np.ndarray, keys: Sequence[str] | None = None, batch: int = BATCH) -> Iterator[dict]:
        """Per batch of `images`, {key: float32 value} of the chosen layers named in `keys` (default: all); a layer
        called twice keeps its last call's value. One iteration at a time per recorder."""
        self._wanted.clear()
        self._wanted.update(self.sides if keys is None else keys)
        for start in range(0, len(images), batch):
            self._found.clear()
            self._tapped(np.asarray(images[start:start + batch], np.float32), training=False)
            yield dict(self._found)


def record(model: Any, sides: Mapping[str, str], images: np.ndarray, batch: int = BATCH) -> Iterator[dict]:
    """Per batch of `images`, {key: float32 value} of each chosen layer's input or output through the float model
    (`model` is never modified: a `Recorder` copies it).

    Args:
        model: a functional Keras model.
        sides: {plan key: "input" or "output"}.
        images: float images shaped like the model input.
        batch: images per eager call.
    """
    return Recorder(model, sides)(images, batch=batch)
