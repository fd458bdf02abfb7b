"""kdeep: deeper convnets for Keras 3, from the book's DeepConvNet to ResNet, trained, distributed and quantized.

Subpackages load lazily, so `import kdeep.models` works with Keras on the JAX or PyTorch backend and no
TensorFlow installed.
"""
import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["analysis", "data", "distribute", "errors", "models", "report", "scoring", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"kdeep.{name}")
    raise AttributeError(f"module 'kdeep' has no attribute {name!r}")
