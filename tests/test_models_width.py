"""The width multiplier: exact models at 1.0, channels scaled and rounded to multiples of 8, clear errors."""
import json

import keras
import pytest

import kdeep.models as models
from kdeep import analysis
from kdeep.compare import FASHION_MNIST_MODELS, parse_entries
from kdeep.errors import ModelError
from kdeep.models.blocks import scaled


def _conv_filters(model):
    return {layer.name: layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}


@pytest.mark.parametrize(("channels", "width", "expected"), [
    (64, 1.0, 64), (16, 1.0, 16), (64, 0.25, 16), (64, 0.5, 32), (16, 0.25, 8), (24, 0.5, 16), (192, 0.125, 24),
    (512, 2.0, 1024), (100, 1.5, 152), (64, 0.01, 8),
])
def test_scaled_rounds_to_the_nearest_multiple_of_8_and_keeps_width_one(channels, width, expected):
    assert scaled(channels, width) == expected


@pytest.mark.parametrize("name", ["vgg11_bn", "googlenet", "resnet18", "resnet20", "resnet50v2"])
def test_width_one_is_todays_model_layer_for_layer(name):
    shape = (32, 32, 3)
    default, explicit = models.build(name, input_shape=shape), models.build(name, input_shape=shape, width=1.0)
    assert [layer.name for layer in explicit.layers] == [layer.name for layer in default.layers]
    assert explicit.count_params() == default.count_params()
    assert _conv_filters(explicit) == _conv_filters(default)


def test_published_imagenet_counts_hold_at_width_one():
    """Trainable parameters (BatchNorm's moving statistics are not parameters in torchvision's counts)."""
    for name, published in (("resnet18", 11_689_512), ("googlenet", 6_998_552)):
        model = models.build(name, width=1.0)
        assert analysis.summarize(model).trainable_params == published


@pytest.mark.parametrize(("name", "width"), [("vgg11_bn", 0.25), ("googlenet", 0.125), ("resnet18", 0.25),
                                             ("resnet20", 2.0)])
def test_every_conv_is_scaled_with_the_same_layer_names(name, width):
    shape = (28, 28, 1)
    full = models.build(name, input_shape=shape, num_classes=10)
    thin = models.build(name, input_shape=shape, num_classes=10, width=width)
    assert [layer.name for layer in thin.layers] == [layer.name for layer in full.layers]
    full_filters, thin_filters = _conv_filters(full), _conv_filters(thin)
    assert thin_filters == {layer: scaled(filters, width) for layer, filters in full_filters.items()}
    assert all(filters % 8 == 0 for filters in thin_filters.values())
    full_macs, thin_macs = analysis.summarize(full).macs, analysis.summarize(thin).macs
    assert (thin_macs < full_macs) == (width < 1) and (thin.count_params() < full.count_params()) == (width < 1)


def test_the_comparison_widths_cost_about_resnet20s_macs():
    budget = analysis.summarize(models.build("resnet20", input_shape=(28, 28, 1), num_classes=10)).macs
    thinned = [e for e in parse_entries(FASHION_MNIST_MODELS) if e.width != 1.0]
    assert [e.name for e in thinned] == ["vgg11_bn", "googlenet_bn", "resnet18"]
    for entry in thinned:
        macs = analysis.summarize(models.build(entry.name, input_shape=(28, 28, 1), num_classes=10,
                                               width=entry.width)).macs
        assert 0.8 * budget < macs < 1.2 * budget, (entry.label, macs, budget)


def test_vgg_width_scales_the_fully_connected_layers_too():
    model = models.build("vgg11", input_shape=(32, 32, 3), num_classes=10, width=0.5)
    assert model.get_layer("fc1").units == model.get_layer("fc2").units == 2048


@pytest.mark.parametrize(("name", "width", "message"), [
    ("vgg11_bn", 0.0, "width must be a number in (0, 4], got 0.0"),
    ("resnet20", 4.5, "width must be a number in (0, 4], got 4.5"),
    ("resnet20", "wide", "width must be a number in (0, 4]"),
    ("deepconvnet", 0.5, "deepconvnet: has no width option"),
])
def test_bad_width_is_a_one_line_model_error(name, width, message):
    with pytest.raises(ModelError) as error:
        models.build(name, input_shape=(28, 28, 1), width=width)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_width_one_is_accepted_by_every_model():
    assert models.build("deepconvnet", width=1.0).count_params() == 123_552
    assert models.takes_width("resnet20") and not models.takes_width("deepconvnet_book")


def test_summary_cli_reports_params_and_macs_at_a_width(capsys):
    import json

    from kdeep.cli import main

    assert main(["summary", "resnet18", "--input-shape", "28,28,1", "--num-classes", "10", "--width", "0.25",
                 "--json"]) == 0
    reported = json.loads(capsys.readouterr().out)
    model = models.build("resnet18", input_shape=(28, 28, 1), num_classes=10, width=0.25)
    assert reported["params"] == model.count_params()
    assert reported["macs"] == analysis.summarize(model).macs
    assert main(["summary", "resnet20", "--width", "9"]) == 2
    assert "width must be a number in (0, 4]" in capsys.readouterr().err


@pytest.mark.slow  # trains ResNet-20 for an epoch
def test_train_config_width_is_validated_and_builds_the_thin_model(tmp_path, fashion_mnist):
    import kdeep.train
    from kdeep.errors import ConfigError
    from kdeep.train import TrainConfig

    with pytest.raises(ConfigError, match=r"width=0 must be a number in \(0, 4\]"):
        TrainConfig(width=0)
    (x_train, y_train), (x_test, y_test) = fashion_mnist
    config = TrainConfig.from_recipe("sgd_cosine", width=0.5, epochs=1, val_split=0, out=str(tmp_path / "run"))
    run = kdeep.train.fit("resnet20", ((x_train[:256], y_train[:256]), (x_test[:256], y_test[:256])), config=config,
                          verbose=0)
    assert run.model.get_layer("stem_conv").filters == 8 and run.model.get_layer("stage3_block1_conv1").filters == 32
    assert json.loads((tmp_path / "run" / "config.json").read_text())["width"] == 0.5
