"""The layer plan: every quantizable layer (nested models too), its TFLite op and the widths LiteRT's policy allows."""
import numpy as np
import pytest

import kdeep.models
from kdeep.errors import QuantizationError
from kdeep.train.ensemble import build_ensemble
from quantization import aiedge
from quantization.plan import CONVERTER_MIN_ELEMENTS, plan, policy_widths

KERNELS = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2", "fc1",
           "logits"]


def small_mobile():
    """A conv, a depthwise conv, an embedding-free separable conv and a dense layer."""
    import keras

    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(x)
    x = keras.layers.SeparableConv2D(4, 3, name="separable")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="fc")(x))


def test_policy_widths_come_from_the_litert_quantizer_policy():
    """Depthwise convolutions take 8 bits only; 2 bits only for FULLY_CONNECTED (LiteRT computes 2-bit conv wrong)."""
    depthwise, conv, dense = (policy_widths(op) for op in ("DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED"))
    assert depthwise.allowed("weight_only") == depthwise.allowed("dynamic") == (8,)
    assert depthwise.allowed("static", 8) == depthwise.allowed("static", 16) == (8,)
    assert conv.allowed("dynamic") == (4, 8) and conv.allowed("static", 16) == (4, 8)
    assert dense.allowed("dynamic") == (2, 4, 8) and dense.allowed("weight_only") == (4, 8)
    assert conv.allowed("static", 4) == ()


def test_plan_of_deepconvnet():
    model = kdeep.models.build("deepconvnet", input_shape=(28, 28, 1), num_classes=10)
    layers = plan(model)
    assert layers.keys == KERNELS and not layers.skipped
    assert [entry.op for entry in layers] == ["CONV_2D"] * 6 + ["FULLY_CONNECTED"] * 2
    assert layers["fc1"].shape == tuple(model.get_layer("fc1").kernel.shape)
    assert layers["fc1"].kernel(model) is model.get_layer("fc1").kernel
    assert layers["fc1"].lowest("dynamic") == 2 and layers["block1_conv1"].lowest("dynamic") == 4
    # the converter's dynamic range leaves kernels under 1,024 values float: block1_conv1 (144) and logits (500)
    assert [key for key, bits in layers.dynamic_twin().items() if bits is None] == ["block1_conv1", "logits"]
    assert all(entry.size >= CONVERTER_MIN_ELEMENTS for entry in layers if not entry.converter_keeps_float)


def test_plan_walks_nested_models_and_keeps_members_apart():
    import keras

    members = [kdeep.models.build("deepconvnet", input_shape=(28, 28, 1), num_classes=10) for _ in range(2)]
    ensemble = build_ensemble(members)
    layers = plan(ensemble)
    assert layers.keys == [f"member{m}/{k}" for m in (1, 2) for k in KERNELS]
    one, two = layers["member1/fc1"], layers["member2/fc1"]
    assert one.path == ("member1", "fc1") and one.kernel(ensemble) is not two.kernel(ensemble)
    assert one.kernel(ensemble) is members[0].get_layer("fc1").kernel
    clone = keras.models.clone_model(ensemble)
    assert one.kernel(clone) is not one.kernel(ensemble)  # a clone's kernels are its own


def test_unknown_kernel_layers_are_listed_not_dropped():
    layers = plan(small_mobile())
    assert layers.keys == ["conv", "depthwise", "fc"]
    assert layers["depthwise"].op == "DEPTHWISE_CONV_2D" and layers["depthwise"].channel_axes == (-2, -1)
    assert "SeparableConv2D" in layers.skipped["separable"]


def test_check_names_the_layer_and_the_widths_it_takes():
    layers = plan(small_mobile())
    layers.check({"conv": 4, "fc": 2, "depthwise": 8}, "dynamic")
    with pytest.raises(QuantizationError, match=r"layer depthwise: the LiteRT quantizer cannot give DEPTHWISE_CONV_2D "
                                                r"4-bit weights \(dynamic\); give it 8 bits or None"):
        layers.check({"depthwise": 4}, "dynamic")
    with pytest.raises(QuantizationError, match="layer conv: LiteRT runs CONV_2D with 2-bit weights but computes "
                                                "wrong outputs; give it 4 or 8 bits"):
        layers.check({"conv": 2}, "dynamic")
    with pytest.raises(QuantizationError, match="no quantizable layer named nope; layers: conv, depthwise, fc"):
        layers.check({"nope": 8}, "dynamic")


@pytest.mark.slow
def test_converter_dynamic_keeps_exactly_the_planned_small_kernels_float(tmp_path):
    """The TF converter's `dynamic` file: int8 weights for the plan's large kernels, float for those under 1,024."""
    from quantization import litert, quantize

    model = kdeep.models.build("deepconvnet", input_shape=(28, 28, 1), num_classes=10)
    files = quantize(model, ["float32", "dynamic"], np.zeros((2, 28, 28, 1), np.float32), tmp_path)
    ops = aiedge.layer_ops(model, files["float32"])
    runner = litert.open_model(files["dynamic"])
    tensors = {t["index"]: t for t in runner.tensor_details()}
    weights = {}
    for op in runner.ops():
        outputs = {tensors[i]["name"] for i in op["outputs"]}
        for key, layer_op in ops.items():
            if layer_op.output in outputs:
                weights[key] = np.dtype(tensors[op["inputs"][1]]["dtype"]).name
    expected = {key: "float32" if bits is None else "int8" for key, bits in plan(model).dynamic_twin().items()}
    assert weights == expected


def test_variant_widths_follow_the_plan():
    """int4 variants give a depthwise convolution 8 bits; the `_ends8` ones give the first and last layers 8 bits;
    dynamic_fc4 gives 4 bits only to dense layers (XNNPACK's fast int4 kernels) and keeps kernels under 1,024 values
    float, as the converter's dynamic does."""
    from quantization.variants import VARIANTS, layer_widths

    layers = plan(small_mobile())
    assert layer_widths(VARIANTS["int4"], layers) == {"conv": 4, "depthwise": 8, "fc": 4}
    assert layer_widths(VARIANTS["w4a16"], layers) == {"conv": 4, "depthwise": 8, "fc": 4}
    assert layer_widths(VARIANTS["int2_dense"], layers) == {"conv": 4, "depthwise": 8, "fc": 2}
    deepconvnet = plan(kdeep.models.build("deepconvnet", input_shape=(28, 28, 1), num_classes=10))
    ends = {**{key: 4 for key in KERNELS}, "block1_conv1": 8, "logits": 8}  # the first and last layers at 8 bits
    assert layer_widths(VARIANTS["int4_ends8"], deepconvnet) == ends
    assert layer_widths(VARIANTS["w4a8_ends8"], deepconvnet) == ends
    assert layer_widths(VARIANTS["int4_ends8"], layers) == {"conv": 8, "depthwise": 8, "fc": 8}
    widths = layer_widths(VARIANTS["dynamic_fc4"], deepconvnet)
    assert widths == {**{key: 8 for key in KERNELS}, "block1_conv1": None, "fc1": 4, "logits": None}
    assert deepconvnet["fc1"].fast_bits == (4, 8) and deepconvnet["block1_conv2"].fast_bits == (8,)
    with pytest.raises(QuantizationError, match="variant int8 is made by the TF converter"):
        layer_widths(VARIANTS["int8"], deepconvnet)
