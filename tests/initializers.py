"""Builds without the random draw: for tests of a model's shapes and counts, not of its initial weights."""
import inspect
from typing import Callable

import numpy as np


def zero_initialized(add_weight: Callable) -> Callable:
    """`Layer.add_weight` with every initializer replaced by NumPy zeros (same shapes and counts, no random draw;
    under JAX also no random-number program compiled per new kernel shape)."""
    signature = inspect.signature(add_weight)

    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.arguments["initializer"] = lambda shape, dtype=None: np.zeros(shape, dtype or "float32")
        return add_weight(*bound.args, **bound.kwargs)

    return wrapper
