"""kdeep: deeper convnets for Keras 3, from the book's DeepConvNet to ResNet, trained, distributed and quantized.

Subpackages load lazily, so `import kdeep.models` works with Keras on the JAX or PyTorch backend and no
TensorFlow installed. Importing kdeep quiets TensorFlow's C++ logging (`kdeep.quiet.quiet_library`) unless
KDEEP_VERBOSE=1 or TF_CPP_MIN_LOG_LEVEL is set.
"""
import importlib
from typing import Any

from kdeep.quiet import quiet_library

quiet_library()  # before anything imports TensorFlow: the Python API is as quiet as the CLI (KDEEP_VERBOSE=1 not)
__version__ = "0.1.0"
__all__ = ["analysis", "data", "distribute", "errors", "models", "report", "scoring", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"kdeep.{name}")
    raise AttributeError(f"module 'kdeep' has no attribute {name!r}")
