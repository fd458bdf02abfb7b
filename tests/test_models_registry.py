"""The registry: names, metadata, option checks with clear errors, the small-input stem and weights= round trip."""
import keras
import numpy as np
import pytest

import kdeep.models as models
from kdeep.errors import ModelError

FAMILIES = {"deepconvnet", "vgg", "googlenet", "resnet", "cifar_resnet"}


def test_every_issue_model_is_registered_with_a_plain_function():
    expected = ["deepconvnet", "deepconvnet_book", "googlenet", "googlenet_bn"]
    expected += [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    expected += [f"resnet{d}" for d in (18, 34, 50, 101, 152, 20, 32, 44, 56, 110)]
    expected += [f"resnet{d}v2" for d in (50, 101, 152)]
    assert sorted(models.list_models()) == sorted(expected)
    for name in expected:
        assert callable(getattr(models, name)) and getattr(models, name).__name__ == name
        assert models.info(name).family in FAMILIES
    assert models.list_models("cifar_resnet") == ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]


def test_googlenet_bn_puts_batchnorm_after_every_conv_in_place_of_its_bias():
    plain = models.build("googlenet", input_shape=(28, 28, 1), num_classes=10, width=0.125)
    bn = models.build("googlenet_bn", input_shape=(28, 28, 1), num_classes=10, width=0.125)
    convs = [layer for layer in plain.layers if isinstance(layer, keras.layers.Conv2D)]
    bn_convs = [layer for layer in bn.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in bn.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [c.name for c in bn_convs] == [c.name for c in convs] and len(norms) == len(convs)
    assert all(c.use_bias for c in convs) and not any(c.use_bias for c in bn_convs)
    channels = sum(c.filters for c in convs)  # each conv bias becomes a BatchNorm gamma and beta
    count = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)  # noqa: E731
    assert count(bn) == count(plain) + channels


@pytest.mark.slow
def test_plain_function_equals_build_and_keeps_hierarchical_names():
    model = models.resnet20(num_classes=3)
    assert model.output_shape == (None, 3)
    names = {layer.name for layer in model.layers}
    assert {"stem_conv", "stage1_block1_conv1", "stage2_block1_shortcut", "stage3_block3_add", "predictions"} <= names
    again = models.build("resnet20", num_classes=3)
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(name="resnet5"), "unknown model 'resnet5'; valid names: deepconvnet, deepconvnet_book, vgg11"),
    (dict(name="vgg16", input_shape=(28, 28, 3), stem="imagenet"), "needs at least 32x32 (or 16 with stem='small')"),
    (dict(name="vgg16", input_shape=(8, 8, 3)), "the small stem needs at least 16x16"),
    (dict(name="deepconvnet", input_shape=(3, 3, 1)), "needs at least 4x4"),
    (dict(name="deepconvnet", input_shape=(28, 28)), "input_shape must be (height, width, channels)"),
    (dict(name="deepconvnet", num_classes=0), "num_classes must be an integer >= 1"),
    (dict(name="resnet18", pooling="mean"), "pooling must be one of"),
    (dict(name="resnet18", dropout=0.5), "unknown option(s) dropout; valid: weights, stem, include_top"),
    (dict(name="deepconvnet", stem="small"), "has no stem option"),
    (dict(name="deepconvnet", dropout=1.0), "dropout must be in [0, 1)"),
    (dict(name="deepconvnet", dropout_scaling="both"), "dropout_scaling must be one of train, test"),
    (dict(name="resnet20", shortcut="C"), "shortcut must be 'A'"),
    (dict(name="googlenet", include_top=False, aux_logits=True), "aux_logits=True needs include_top=True"),
    (dict(name="googlenet", input_shape=(64, 64, 3), aux_logits=True), "4a map to be at least 5x5"),
    (dict(name="deepconvnet", weights="missing.weights.h5"), "does not exist"),
    (dict(name="deepconvnet", weights="model.keras"), "'.weights.h5' file"),
])
def test_bad_input_gets_a_clear_model_error(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(ModelError) as error:
        models.build(name, **kwargs)
    assert message in str(error.value)


@pytest.mark.slow
def test_weights_round_trip_gives_identical_outputs(tmp_path):
    model = models.build("resnet20", input_shape=(16, 16, 3), num_classes=4)
    x = np.random.default_rng(1).random((3, 16, 16, 3), dtype=np.float32)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    model.train_on_batch(x, np.array([0, 1, 2]))  # moves BN statistics away from their initial values too
    path = tmp_path / "resnet20.weights.h5"
    model.save_weights(path)
    again = models.build("resnet20", input_shape=(16, 16, 3), num_classes=4, weights=path)
    fresh = models.build("resnet20", input_shape=(16, 16, 3), num_classes=4)
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(model(x)))
    assert not np.allclose(np.asarray(fresh(x)), np.asarray(model(x)))
    with pytest.raises(ModelError, match="does not fit"):
        models.build("resnet20", input_shape=(16, 16, 3), num_classes=5, weights=path)


@pytest.mark.slow
def test_stem_auto_picks_the_small_stem_below_64_pixels():
    small = models.build("resnet18", input_shape=(32, 32, 3))
    large = models.build("resnet18", input_shape=(64, 64, 3), include_top=False)
    assert "stem_pool" not in {layer.name for layer in small.layers}
    assert small.get_layer("stage5_block2_out").output.shape[1:3] == (4, 4)  # 32 / 8, not 32 / 32
    assert large.output_shape == (None, 2, 2, 512)
    vgg = models.build("vgg11", input_shape=(28, 28, 1), include_top=False, pooling="max")
    assert "block1_pool" not in {layer.name for layer in vgg.layers} and vgg.output_shape == (None, 512)


@pytest.mark.slow
def test_options_logits_pooling_dropout_and_batchnorm():
    logits = models.deepconvnet(classifier_activation=None)
    x = np.random.default_rng(2).random((2, 28, 28, 1), dtype=np.float32)
    assert not np.allclose(np.asarray(logits(x)).sum(axis=1), 1.0)
    features = models.deepconvnet(include_top=False)
    assert features.output_shape == (None, 4, 4, 64)
    assert models.deepconvnet(include_top=False, pooling="avg").output_shape == (None, 64)
    no_dropout = models.deepconvnet(dropout=0.0)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in no_dropout.layers)
    bn = models.deepconvnet(batchnorm=True)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in bn.layers) == 6
    assert not bn.get_layer("block1_conv1").use_bias
    assert models.deepconvnet(name="mine").name == "mine"


def test_deepconvnet_matches_the_book_layer_by_layer():
    model = models.deepconvnet()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [16, 16, 32, 32, 64, 64]
    assert [c.output.shape[1] for c in convs] == [28, 28, 14, 16, 8, 8]  # the pad-2 conv grows 14 to 16
    assert model.get_layer("block3_pool").output.shape[1:] == (4, 4, 64)
    kinds = [type(layer).__name__ for layer in model.layers[-6:]]
    assert kinds == ["Dense", "Activation", "Dropout", "Dense", "Dropout", "Activation"]
    for layer in (*convs, model.get_layer("fc1"), model.get_layer("logits")):
        kernel, bias = (np.asarray(w) for w in layer.weights)
        fan_in = int(np.prod(kernel.shape[:-1]))
        assert np.all(bias == 0)
        assert kernel.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.25)
    big = np.asarray(model.get_layer("fc1").kernel)  # 51,200 draws: untruncated, unlike keras "he_normal"
    assert np.abs(big).max() > 2.5 * np.sqrt(2 / 1024)


@pytest.mark.slow
def test_googlenet_aux_logits_are_extra_float32_outputs_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = models.googlenet(input_shape=(32, 32, 3), num_classes=5, aux_logits=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.output_names == ["predictions", "aux1_predictions", "aux2_predictions"]
    outputs = model(np.random.default_rng(3).random((2, 32, 32, 3), dtype=np.float32))
    assert [o.shape for o in outputs] == [(2, 5)] * 3
    assert [keras.backend.standardize_dtype(o.dtype) for o in outputs] == ["float32"] * 3
    assert model.get_layer("inception3a_1x1").compute_dtype == "float16"
    np.testing.assert_allclose(np.asarray(outputs[0]).sum(axis=1), 1.0, rtol=1e-3)
