"""kdeep.analysis: receptive fields, parameters and MACs per layer, why_deeper, and the models CLI."""
import json

import keras
import pytest

import kdeep.analysis as analysis
import kdeep.models as models
from kdeep.cli import main
from kdeep.errors import ModelError


def conv_stack(n, kernel=3, channels=(3, 8), size=16):
    inputs = keras.Input((size, size, channels[0]))
    x = inputs
    for i in range(n):
        x = keras.layers.Conv2D(channels[1], kernel, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(("n", "field"), [(1, 3), (2, 5), (3, 7)])
def test_stacked_3x3_receptive_field_is_2n_plus_1(n, field):
    summary = analysis.summarize(conv_stack(n))
    assert summary.rows[-1].receptive_field == field
    assert summary.rows[-1].jump == 1


def test_vgg16_conv5_3_and_pool5_receptive_fields_and_macs():
    summary = analysis.summarize(models.vgg16(include_top=False))
    assert (summary.row("block5_conv3").receptive_field, summary.row("block5_conv3").jump) == (196, 16)
    assert (summary.row("block5_pool").receptive_field, summary.row("block5_pool").jump) == (212, 32)
    # conv1_1: 224*224 positions * 64 filters * 3*3*3 weights
    assert summary.row("block1_conv1").macs == 224 * 224 * 64 * 27
    assert summary.params == 14_714_688  # the 13 convs of VGG16 (keras.applications, include_top=False)
    assert summary.macs == pytest.approx(15.35e9, rel=0.01)  # the well-known ~15.5 GMACs less the 0.12 G of fcs


def test_summary_rows_totals_dict_and_table_for_the_book_network():
    summary = analysis.summarize("deepconvnet")
    assert summary.params == summary.trainable_params == 123_552 == sum(r.params for r in summary.rows)
    pad2 = summary.row("block2_conv2")
    assert pad2.output_shape == (16, 16, 32) and pad2.macs == 16 * 16 * 32 * 9 * 32
    assert summary.row("block3_pool").receptive_field == 36 and summary.row("block3_pool").jump == 8
    assert summary.row("fc1").receptive_field is None and summary.row("fc1").macs == 1024 * 50
    as_dict = json.loads(json.dumps(summary.to_dict()))
    assert as_dict["rows"][1]["name"] == "block1_conv1" and as_dict["input_shape"] == [28, 28, 1]
    text = str(summary)
    assert "block2_conv2_pad" in text and "123,552" in text
    with pytest.raises(ModelError, match="has no layer"):
        summary.row("conv9")


def test_residual_and_strided_paths_merge_receptive_fields():
    summary = analysis.summarize(models.resnet20(input_shape=(32, 32, 3)))
    # stem 3 + 3 blocks x 2 convs x 2 = 15 at jump 1; stage 2 starts with a stride-2 conv
    assert summary.row("stage1_block3_out").receptive_field == 15
    assert summary.row("stage2_block1_shortcut").jump == 2
    assert summary.row("stage2_block1_add").receptive_field == 15 + 2 + 2 * 2  # the conv path dominates
    assert summary.macs == pytest.approx(40.6e6, rel=0.01)  # He et al.'s ResNet-20: ~41M MACs


def test_summarize_rejects_a_mismatched_input_shape():
    with pytest.raises(ModelError, match="rebuild it"):
        analysis.summarize(models.deepconvnet(), input_shape=(32, 32, 3))


def test_why_deeper_matches_the_book_and_real_keras_layers():
    five, seven = analysis.why_deeper(16, 32, (5, 7), size=(10, 10))
    assert five.weights_per_pair == (25, 18) and seven.weights_per_pair == (49, 27)
    assert five.nonlinearities == (1, 2) and seven.layers == 3
    for row in (five, seven):
        single = analysis.summarize(conv_stack(1, row.kernel, (16, 32), size=10))
        stack = analysis.summarize(conv_stack(row.layers, 3, (16, 32), size=10))
        assert (single.params, single.macs) == (row.single_params, row.single_macs)
        assert (stack.params, stack.macs) == (row.stack_params, row.stack_macs)
        assert single.rows[-1].receptive_field == stack.rows[-1].receptive_field == row.kernel
    with_bias = analysis.why_deeper(16, 32, (5,), bias=True)[0]
    assert with_bias.single_params == five.single_params + 32 and with_bias.stack_params == five.stack_params + 64
    with pytest.raises(ModelError, match="odd and >= 3"):
        analysis.why_deeper(8, 8, (4,))


def test_cli_summary_why_deeper_and_models(capsys):
    assert main(["summary", "resnet18", "--input-shape", "28,28,1", "--num-classes", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_shape"] == [28, 28, 1] and summary["rows"][-1]["output_shape"] == [5]
    assert main(["why-deeper", "--c-in", "1", "--c-out", "1"]) == 0
    out = capsys.readouterr().out
    assert "25 vs 18" in out and "49 vs 27" in out
    assert main(["models", "--family", "deepconvnet", "--costs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["params"], r["input_shape"]) for r in rows] == [("deepconvnet", 123_552, [28, 28, 1]),
                                                                          ("deepconvnet_book", 123_552, [28, 28, 1]),
                                                                          ("deepconvnet_bn", 123_776, [28, 28, 1])]
    assert rows[0]["macs"] == rows[1]["macs"] == analysis.summarize("deepconvnet").macs
    assert main(["summary", "resnet18", "--input-shape", "8,8,3", "--json"]) == 0
    assert main(["summary", "resnet18", "--input-shape", "4,4,3"]) == 2
    assert "needs at least 8x8" in capsys.readouterr().err


def test_models_lists_the_registry_without_building_a_model(capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("`kdeep models` built a model")

    monkeypatch.setattr(models, "build", refuse)
    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:6] == ["model", "family", "input", "classes", "params", "description"]
    assert len(table) == 2 + len(models.list_models()) == 33
    plain = next(line for line in table if line.startswith("plain56 "))
    assert plain.split()[1:5] == ["plain", "32x32x3", "10", "853,018"] and "He et al. 2015" in plain
    assert main(["models", "--family", "resnet", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows][-5:] == ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]
    assert {r["family"] for r in rows} == {"resnet", "cifar_resnet"} and "macs" not in rows[0]
    assert rows[2] == {"name": "resnet50", "family": "resnet", "input_shape": [224, 224, 3], "num_classes": 1000,
                       "params": 25_557_032, "description": "ResNet-50 v1 (He et al. 2015), the first with "
                                                            "bottleneck blocks (1x1, 3x3, 1x1; 3-4-6-3)"}


@pytest.mark.parametrize(("argv", "message"), [
    (["models", "--family", "resnt"], "unknown family 'resnt'; did you mean resnet? (valid: deepconvnet, vgg, "),
    (["models", "--family", "alexnet"], "unknown family 'alexnet'; valid: deepconvnet, vgg, googlenet, resnet, "
                                        "cifar_resnet, plain"),
    (["summary", "resnt20"], "unknown model 'resnt20'; did you mean resnet20"),
    (["summary", "plain21"], "unknown model 'plain21'; did you mean plain32, plain20, plain110? (`kdeep models` "
                             "lists all 31 models)"),
])
def test_unknown_names_get_one_line_with_the_closest_ones(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("kdeep: error: ")


def test_models_help_names_every_family():
    from kdeep.cli import build_parser

    models_parser = build_parser()._subparsers._group_actions[0].choices["models"]
    family_help = next(action.help for action in models_parser._actions if "--family" in action.option_strings)
    assert all(family in family_help for family in models.families())
