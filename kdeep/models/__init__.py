"""Model zoo: the book's DeepConvNet, VGG, GoogLeNet, the ResNets and their plain twins as Keras 3 models, by name.

Every model is one registered, documented function (`kdeep.models.resnet50(...)`, defined in
`kdeep/models/resnet.py`) that forwards its options to its family builder (`kdeep.models.resnet.resnet`);
`build("resnet50", ...)` calls the same function by name. `list_models()`, `info(name)`, `families()` and
`options_of(name)` read the registry. Keras only, no TensorFlow.

Keras loads on first use of a model (its function or the registry), not on `import kdeep.models`: the preset cards
(`kdeep.models.presets`, `kdeep presets`) and a `.tflite` model's `kdeep predict` need no Keras.
"""
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for IDEs and type checkers; at run time `__getattr__` below finds the same functions
    from kdeep.models.deep_convnet import deepconvnet, deepconvnet_book, deepconvnet_bn
    from kdeep.models.vgg import vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
    from kdeep.models.inception import googlenet, googlenet_bn
    from kdeep.models.resnet import (resnet18, resnet34, resnet50, resnet101, resnet152, resnet50v2, resnet101v2,
                                     resnet152v2)
    from kdeep.models.cifar import (plain20, plain32, plain44, plain56, plain110, resnet20, resnet32, resnet44,
                                    resnet56, resnet110)
from kdeep.models.registry import (Family, ModelInfo, build, families, info, list_models, load_weights,
                                   options_of, resolve_weights, takes_width)

__all__ = [
    "Family", "ModelInfo", "build", "families", "info", "list_models", "load_weights", "options_of",
    "resolve_weights", "takes_width",
    "deepconvnet", "deepconvnet_book", "deepconvnet_bn",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "googlenet", "googlenet_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "plain20", "plain32", "plain44", "plain56", "plain110",
]


def __getattr__(name: str) -> Any:
    """A model's function (`kdeep.models.resnet50` is `kdeep.models.resnet.resnet50`), its family module imported on
    first use (the registry imports them all)."""
    if name not in __all__:
        raise AttributeError(f"module 'kdeep.models' has no attribute {name!r}")
    return info(name).builder
