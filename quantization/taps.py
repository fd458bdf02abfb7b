"""Layers of a Keras model (nested models included, by layer-plan key) wrapped in place: a clone that shares every
layer's weights and puts a wrapper around the chosen ones, and the values of chosen layers' inputs or outputs over
a set of images, recorded in eager calls of such a clone."""
from typing import Any, Callable, Iterator, Mapping

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


def record(model: Any, sides: Mapping[str, str], images: np.ndarray, batch: int = BATCH) -> Iterator[dict]:
    """Per batch of `images`, {key: float32 value} of each chosen layer's input or output through the float model.

    Args:
        model: a functional Keras model (never modified: a private copy is wrapped).
        sides: {plan key: "input" or "output"}.
        images: float images shaped like the model input.
        batch: images per eager call.

    Yields:
        {key: np.ndarray} for one batch (a layer called twice keeps its last call's value).
    """
    import keras

    private = keras.models.clone_model(model)
    private.set_weights(model.get_weights())
    found: dict[str, np.ndarray] = {}

    def wrap(layer: Any, key: str) -> Any:
        class Tap(keras.layers.Layer):
            def __init__(self) -> None:
                super().__init__(name=layer.name)
                self.inner = layer

            def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
                return self.inner.compute_output_spec(*args, **kwargs)  # while the clone is built: nothing to record

            def call(self, *args: Any, **kwargs: Any) -> Any:
                output = self.inner(*args, **kwargs)
                found[key] = np.asarray(args[0] if sides[key] == "input" else output, np.float32)
                return output

        return Tap()

    tapped = wrapped_clone(private, sides, wrap)
    for start in range(0, len(images), batch):
        found.clear()
        tapped(np.asarray(images[start:start + batch], np.float32), training=False)
        yield dict(found)
