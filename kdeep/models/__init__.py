"""Model zoo: the book's DeepConvNet, VGG, GoogLeNet and ResNet as Keras 3 functional models, by name.

`build("resnet50")`, `list_models()`, `info(name)`, and one plain function per model
(`deepconvnet(...)`, `resnet20(...)`, ...) with the same arguments as `build`. Keras only, no TensorFlow.
"""
from kdeep.models import deepconvnet, vgg, googlenet, resnet  # noqa: F401, I001  (registers them, in this order)
from kdeep.models.registry import ModelInfo, build, info, list_models, load_weights, model_function, takes_width

__all__ = ["ModelInfo", "build", "info", "list_models", "load_weights", "takes_width", *list_models()]
# The public functions; `deepconvnet` and `googlenet` replace their same-named submodules as attributes
# (import those modules as `from kdeep.models.googlenet import ...`).
globals().update({name: model_function(name) for name in list_models()})
