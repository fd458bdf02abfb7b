"""The registry: names, metadata, option checks with clear errors, the small-input stem and weights= round trip."""
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import kdeep.models as models
from kdeep.contract import contract_of, infer, probabilities
from kdeep.errors import ModelError
from kdeep.models import cifar, deep_convnet, resnet, vgg

FAMILIES = {"deepconvnet", "vgg", "googlenet", "resnet", "cifar_resnet", "plain"}
CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def test_every_issue_model_is_registered_with_a_plain_function():
    expected = ["deepconvnet", "deepconvnet_book", "deepconvnet_bn", "googlenet", "googlenet_bn"]
    expected += [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    expected += [f"resnet{d}" for d in (18, 34, 50, 101, 152, *CIFAR_DEPTHS)]
    expected += [f"resnet{d}v2" for d in (50, 101, 152)]
    expected += [f"plain{d}" for d in CIFAR_DEPTHS]
    assert sorted(models.list_models()) == sorted(expected) and len(expected) == 31
    for name in expected:
        assert callable(getattr(models, name)) and getattr(models, name).__name__ == name
        assert models.info(name).family in FAMILIES
    assert models.list_models("cifar_resnet") == [f"resnet{d}" for d in CIFAR_DEPTHS]
    assert models.list_models("plain") == [f"plain{d}" for d in CIFAR_DEPTHS]
    assert models.list_models("resnet")[-5:] == models.list_models("cifar_resnet")  # the wider family holds them
    assert "resnet50v2" in models.list_models("resnet") and "plain20" not in models.list_models("resnet")
    assert models.families() == ["deepconvnet", "vgg", "googlenet", "resnet", "cifar_resnet", "plain"]


@pytest.mark.parametrize("name", models.list_models())
def test_each_model_is_a_real_documented_function_in_its_family_file(name):
    """Found by grep and an IDE: `def resnet50(` in resnet.py, its docstring stating the paper and the count the
    registry declares; `build(name)` calls that very function. A model that forwards `**options` to its family
    builder says so; a model that is its family builder documents every argument."""
    builder = models.info(name).builder
    assert builder is getattr(models, name)
    where = inspect.getsourcefile(inspect.unwrap(builder))  # the registry wraps it to take preset tags as weights
    source = pathlib.Path(where).read_text()
    assert re.search(rf"^def {name}\(", source, re.M), f"no `def {name}(` in {where}"
    doc = inspect.getdoc(builder)
    assert re.search(rf"\b{models.info(name).params:,}\b", doc) and re.search(r"\b(19|20)\d\d\b", doc.splitlines()[0])
    assert models.info(name).description == doc.splitlines()[0].rstrip(".")
    parameters = inspect.signature(builder).parameters
    if "options" in parameters:
        assert re.search(r"[Aa]rguments|[Tt]akes|[Cc]alled as|options", doc) and re.search(r"`\w+`", doc), name
        assert {"weights", "include_top", "pooling", "classifier_activation", "name"} <= set(models.options_of(name))
    else:
        documented = set(re.findall(r"^    (\w+):", doc.split("Args:")[1].split("Returns:")[0], re.M))
        assert documented == set(parameters), name


def test_the_registry_is_whole_and_in_one_order_whichever_module_comes_first():
    """`import kdeep.models` loads no Keras; the first query imports every family module, and a program that imports
    one family module first (the CIFAR one here) lists the models in the same order."""
    code = ("import sys, json; import kdeep.models as m; before = 'keras' in sys.modules; "
            "from kdeep.models.cifar import resnet20; print(json.dumps([before, m.list_models(), m.families(), "
            "m.resnet20 is resnet20]))")
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    keras_at_import, names, families, same = json.loads(done.stdout.strip().splitlines()[-1])
    assert not keras_at_import and names == models.list_models() and families == models.families() and same
    assert names[0] == "deepconvnet" and names[-1] == "plain110"


def test_the_package_makes_no_builder_at_import_time():
    """No `globals().update`, no names made in loops: every model is a decorated function written out once."""
    package = pathlib.Path(models.__file__).parent
    decorated = 0
    for path in package.glob("*.py"):
        text = path.read_text()
        assert "globals()" not in text and "setattr(" not in text, path.name
        calls = re.findall(r"^(.*)register_model\(", text, re.M)
        decorated += sum(prefix == "@" for prefix in calls)
        assert all(prefix in ("@", "def ") for prefix in calls), f"{path.name} registers outside a decorator"
    assert decorated == len(models.list_models())


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
    (dict(name="resnet5"), "unknown model 'resnet5'; did you mean resnet56, resnet50, resnet152? (`kdeep models` "
                           "lists all 31 models)"),
    (dict(name="transformer"), "unknown model 'transformer'; `kdeep models` (or kdeep.models.list_models()) lists "
                               "all 31 models"),
    (dict(name="vgg16", input_shape=(28, 28, 3), stem="imagenet"), "needs at least 32x32 (or 16 with stem='small')"),
    (dict(name="vgg16", input_shape=(8, 8, 3)), "the small stem needs at least 16x16"),
    (dict(name="deepconvnet", input_shape=(3, 3, 1)), "needs at least 4x4"),
    (dict(name="deepconvnet", input_shape=(28, 28)), "input_shape must be (height, width, channels)"),
    (dict(name="deepconvnet", num_classes=0), "num_classes must be an integer >= 1"),
    (dict(name="resnet18", pooling="mean"), "pooling must be one of"),
    (dict(name="resnet18", dropout=0.5), "unknown option(s) dropout; valid: weights, stem, include_top, pooling, "
                                         "classifier_activation, width, name"),
    (dict(name="deepconvnet_book", dropout_scaling="train"), "unknown option(s) dropout_scaling; valid: weights, "),
    (dict(name="googlenet_bn", batchnorm=False), "unknown option(s) batchnorm; valid: weights, stem"),
    (dict(name="plain20", shortcut="A"), "unknown option(s) shortcut; valid: weights, include_top"),
    (dict(name="deepconvnet", stem="small"), "has no stem option"),
    (dict(name="deepconvnet", dropout=1.0), "dropout must be in [0, 1)"),
    (dict(name="deepconvnet", dropout_scaling="both"), "dropout_scaling must be one of train, test"),
    (dict(name="resnet20", shortcut="C"), "resnet20: shortcut must be one of A, B, None, got 'C'"),
    (dict(name="googlenet", include_top=False, aux_logits=True), "aux_logits=True needs include_top=True"),
    (dict(name="googlenet", input_shape=(64, 64, 3), aux_logits=True), "4a map to be at least 5x5"),
    (dict(name="deepconvnet", weights="missing.weights.h5"), "does not exist"),
    (dict(name="deepconvnet", weights="model.keras"), "'.weights.h5' file"),
    (dict(name="plain20", input_shape=(3, 3, 1)), "plain20: input 3x3 is too small; it needs at least 4x4"),
    (dict(name="vgg11", stem="tiny"), "vgg11: stem must be one of auto, imagenet, small, got 'tiny'"),
])
def test_bad_input_gets_a_clear_model_error(kwargs, message):
    name = kwargs.pop("name")
    with pytest.raises(ModelError) as error:
        models.build(name, **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)
    function = getattr(models, name, None)
    if function and set(kwargs) <= {"input_shape", "num_classes", *models.options_of(name)}:  # called directly
        with pytest.raises(ModelError) as direct:
            function(**kwargs)
        assert str(direct.value) == str(error.value)


@pytest.mark.parametrize(("builder", "kwargs", "message"), [
    (resnet.resnet, dict(depth=19), "resnet19: depth must be one of 18, 34, 50, 101, 152, got 19"),
    (resnet.resnet, dict(depth=18, version=2), "resnet18v2: depth must be one of 50, 101, 152, got 18"),
    (resnet.resnet, dict(version=3), "resnet50: version must be one of 1, 2, got 3"),
    (cifar.cifar_resnet, dict(depth=21), "resnet21: depth must be 6n+2 with n >= 1 (the paper's 20, 32, 44, 56, 110)"),
    (cifar.cifar_resnet, dict(depth=2), "depth must be 6n+2 with n >= 1"),
    (cifar.cifar_resnet, dict(depth=19.5, shortcut=None), "plain19.5: depth must be 6n+2"),
    (vgg.vgg, dict(depth=12), "vgg12: depth must be one of 11, 13, 16, 19, got 12"),
    (cifar.cifar_resnet, dict(width=0), "resnet20: width must be a number in (0, 4], got 0"),
    (deep_convnet.deepconvnet, dict(num_classes=2.5), "num_classes must be an integer >= 1, got 2.5"),
])
def test_family_builders_called_directly_validate_like_build(builder, kwargs, message):
    with pytest.raises(ModelError) as error:
        builder(**kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_unknown_family_gets_the_families():
    with pytest.raises(ModelError, match=r"unknown family 'resnt'; did you mean resnet\? \(valid: deepconvnet, "):
        models.list_models("resnt")
    with pytest.raises(ModelError, match="valid: deepconvnet, vgg, googlenet, resnet, cifar_resnet, plain"):
        models.list_models("transformer")


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


def test_builders_declare_what_a_layer_scan_gets_wrong():
    """GoogLeNet's auxiliary heads end in Dense layers too: a scan for the last Dense layers takes them for the
    classifier; the builder declares its own head. A model without its top declares "features"."""
    aux = models.googlenet(input_shape=(32, 32, 3), num_classes=5, aux_logits=True, width=0.125)
    declared = contract_of(aux)
    assert declared.classifier == ("logits", "predictions") and "aux1_fc" in infer(aux).classifier
    assert declared.blocks[0] == "stem_conv1" and declared.blocks[-1] == "inception5b"
    assert declared.first_conv == "stem_conv1"
    features = models.resnet20(include_top=False, pooling="avg")
    assert (contract_of(features).output, contract_of(features).classifier) == ("features", ())
    with pytest.raises(ModelError, match="outputs features, not class scores"):
        probabilities(np.zeros((1, 64)), contract_of(features).output)
    logits = contract_of(models.plain20(classifier_activation=None))
    assert (logits.output, logits.family, logits.first_conv) == ("logits", "plain", "stem_conv")
    assert contract_of(models.vgg11(input_shape=(32, 32, 3), width=0.25)).width == 0.25
