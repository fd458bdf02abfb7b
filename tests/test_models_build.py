"""Every registered model builds at its default input and predicts; the shallowest of each builder and block kind
also builds at its small inputs, predicts and trains one step."""
import keras
import numpy as np
import pytest

import kdeep.models as models
from kdeep.contract import contract_of, infer
from initializers import zero_initialized


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()  # frees the big ImageNet models between tests


# Trainable parameters at each model's default input (224x224x3 / 1000 classes for the ImageNet families):
# the published counts (torchvision / the papers), the book's DeepConvNet, GoogLeNet per its docstring.
PUBLISHED_PARAMS = {
    "deepconvnet": 123_552,
    "deepconvnet_book": 123_552,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "googlenet": 6_998_552,
}
# CIFAR ResNets of He et al. 2015 (table 6): ~0.27M, ~0.46M, ~0.66M, ~0.85M, ~1.7M with option A shortcuts.
CIFAR_PARAMS_M = {"resnet20": 0.27, "resnet32": 0.46, "resnet44": 0.66, "resnet56": 0.85, "resnet110": 1.7}
CIFAR_PARAMS_M |= {name.replace("resnet", "plain"): count for name, count in CIFAR_PARAMS_M.items()}  # the same nets
SMALL_FAMILIES = ("vgg", "googlenet", "resnet")  # the families with a small-input stem
# The cases that take under ~2 s on the 2-core machine (one per builder module); the rest are marked slow.
FAST_DEFAULT = ("deepconvnet", "deepconvnet_book", "googlenet", "resnet18", "resnet20")
FAST_SMALL = ("deepconvnet-32x32x3", "deepconvnet_book-32x32x3", "vgg11-28x28x1")
# The shallowest of each builder and block kind, built at its small inputs and trained one step: a deeper variant
# is a table row repeating the same blocks on the same stem (built at its default input above); the small-input
# builds of the 19 deeper ones took about 30 s of the suite, resnet152's 4.7 s to build and 2 s to call.
SHALLOWEST = ("deepconvnet", "deepconvnet_book", "vgg11", "vgg11_bn", "googlenet", "googlenet_bn", "resnet18",
              "resnet50", "resnet50v2", "resnet20", "plain20")


def case(*values, ident: str | None = None, fast: tuple[str, ...]):
    """A pytest.param with id `ident` (the first value by default), marked slow unless that id is in `fast`."""
    ident = ident or values[0]
    return pytest.param(*values, id=ident, marks=() if ident in fast else pytest.mark.slow)


def trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def images(shape, batch, seed=0):
    return np.random.default_rng(seed).random((batch, *shape), dtype=np.float32)


@pytest.mark.parametrize("name", [case(name, fast=FAST_DEFAULT) for name in models.list_models()])
def test_default_input_builds_predicts_and_counts(name, monkeypatch):
    info = models.info(name)
    if name not in SHALLOWEST:  # a deeper table row of the same blocks: its own weights' draw is not what is tested
        # here, and TensorFlow's He-normal draw was 2.9 of VGG-16's 3.2 s build (the shallowest draw theirs)
        monkeypatch.setattr(keras.layers.Layer, "add_weight", zero_initialized(keras.layers.Layer.add_weight))
    model = models.build(name)
    assert model.name == name
    assert tuple(model.inputs[0].shape[1:]) == info.input_shape
    probs = np.asarray(model(images(info.input_shape, 1), training=False))
    assert probs.shape == (1, info.num_classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(probs >= 0)
    assert trainable(model) == info.params  # the count the registry declares and the docstring states
    check_declared_contract(name, model)
    if name in PUBLISHED_PARAMS:
        assert trainable(model) == PUBLISHED_PARAMS[name]
    if name in CIFAR_PARAMS_M:
        assert trainable(model) / 1e6 == pytest.approx(CIFAR_PARAMS_M[name], rel=0.03)


def small_cases():
    for name in SHALLOWEST:
        info = models.info(name)
        yield case(name, info.small_input_shape, ident=f"{name}-{'x'.join(map(str, info.small_input_shape))}",
                   fast=FAST_SMALL)
        if info.family in SMALL_FAMILIES and name in ("vgg11", "googlenet", "resnet18", "resnet50", "resnet50v2"):
            yield case(name, (28, 28, 1), ident=f"{name}-28x28x1", fast=FAST_SMALL)  # the other small geometry


def check_declared_contract(name, model):
    """The contract the builder declares names the model's own layers: what a layer scan finds, without the scan."""
    declared, scanned = contract_of(model), infer(model)
    assert (declared.family, declared.width, declared.input_range) == (models.info(name).family, 1.0, (0.0, 1.0))
    assert declared.classifier == scanned.classifier and declared.classifier[-1] == "predictions"
    assert declared.blocks == scanned.blocks and declared.output == scanned.output == "probabilities"
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert declared.first_conv == scanned.first_conv == first.name


@pytest.mark.parametrize(("name", "shape"), list(small_cases()))
def test_small_input_predicts(name, shape):
    model = models.build(name, input_shape=shape, num_classes=7)
    assert model.name == name
    x = images(shape, 2)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    check_declared_contract(name, model)
    if shape != models.info(name).small_input_shape:
        return  # one training step per builder and block kind, at its own small input
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    before = [np.array(w) for w in model.trainable_weights]
    loss = model.train_on_batch(x, np.array([0, 6]))
    assert np.isfinite(loss)
    changed = [not np.array_equal(b, np.asarray(w)) for b, w in zip(before, model.trainable_weights)]
    assert all(changed), "every trainable weight gets a gradient step"


def test_every_builder_and_block_kind_is_built_small_and_trained():
    assert set(SHALLOWEST) <= set(models.list_models())
    assert {models.info(name).family for name in SHALLOWEST} == {models.info(n).family for n in models.list_models()}


def test_deepconvnet_book_scales_dropout_at_test_time_as_the_book_does():
    inverted, book = models.deepconvnet(), models.deepconvnet_book()
    book.set_weights(inverted.get_weights())  # same layers, same weights; only the dropout scaling differs
    x = images((28, 28, 1), 8)
    hidden = np.asarray(keras.Model(inverted.input, inverted.get_layer("fc1_relu").output)(x))
    kernel, bias = inverted.get_layer("logits").get_weights()
    # test time: each of the two dropouts multiplies by 1 - 0.5, as the book's Dropout.forward(train_flg=False)
    expected = np.asarray(keras.ops.softmax(0.5 * (0.5 * hidden @ kernel + bias)))
    np.testing.assert_allclose(book(x, training=False), expected, rtol=1e-5, atol=1e-7)
    # training: the book's mask, kept units unscaled (Keras's own Dropout would double them)
    kept = np.asarray(keras.Model(book.input, book.get_layer("fc1_dropout_scale").output)(x, training=True))
    assert np.all((kept == 0) | np.isclose(kept, hidden, rtol=1e-6)) and 0.3 < np.mean(kept[hidden > 0] == 0) < 0.7


def test_deepconvnet_bn_is_the_book_s_convs_with_batchnorm_and_no_dropout():
    bn, book = models.deepconvnet_bn(), models.deepconvnet()
    kinds = [type(layer).__name__ for layer in bn.layers]
    assert "Dropout" not in kinds and kinds.count("BatchNormalization") == kinds.count("Conv2D") == 6
    assert all(not layer.use_bias for layer in bn.layers if isinstance(layer, keras.layers.Conv2D))
    same = [layer.name for layer in book.layers if layer.weights and "dropout" not in layer.name]
    assert all(bn.get_layer(name).kernel.shape == book.get_layer(name).kernel.shape for name in same)
    x = images((28, 28, 1), 4)
    np.testing.assert_array_equal(bn(x, training=True), bn(x, training=True))  # no random layer left
