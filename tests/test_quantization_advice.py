"""What each variant is for: size, speed and accuracy against float32 on the machine, and why int4 is slow on CPU."""
import kdeep.models
from quantization.advice import Measured, purposes, slow_reason
from quantization.plan import plan
from quantization.variants import VARIANTS

MEASURED = {  # DeepConvNet figures of one run (bytes, batch-1 us, accuracy, images)
    "float32": Measured(501816, 170.0, 0.9910, 10000), "int8": Measured(139704, 93.5, 0.9905, 10000),
    "int4": Measured(73792, 290.0, 0.9912, 10000), "dynamic_fc4": Measured(111400, 76.8, 0.9910, 10000),
    "w8a16": Measured(140784, 11581.5, 0.9933, 10000), "int16x8": Measured(140000, 4000.0, 0.9990, 1000),
}


def test_why_int4_is_slow_on_cpu_comes_from_the_plan():
    layers = plan(kdeep.models.build("deepconvnet", input_shape=(28, 28, 1), num_classes=10))
    reasons = {name: slow_reason(VARIANTS[name], layers) for name in VARIANTS}
    assert reasons["int4"] == ("XNNPACK has no int4 convolution kernel, so LiteRT's builtin kernels run its 6 CONV_2D "
                               "layer(s) with 4-bit weights; weight-only: the weights are dequantized to float before "
                               "each op, on every invoke")
    assert "its 8 CONV_2D/FULLY_CONNECTED layer(s) with 2/4-bit weights" in reasons["int2_dense"]
    assert "XNNPACK runs no int4 weights with int8 activations" in reasons["w4a8"]
    assert reasons["dynamic_fc4"] == "" and reasons["int8"] == "" and reasons["float32"] == ""
    assert "reference kernels" in reasons["w8a16"] and "reference kernels" in reasons["int16x8"]


def test_each_variant_says_what_it_is_for():
    reasons = {"int4": "XNNPACK has no int4 convolution kernel", "w8a16": "int16 reference kernels"}
    lines = purposes(MEASURED, reasons)
    assert lines["float32"].startswith("the reference: 1.00x the float32 file")
    assert lines["int4"] == ("0.15x the float32 file, 1.71x its batch-1 latency, +0.02 pt; smallest within 0.5 pt of "
                             "float32; slower than float32 here: XNNPACK has no int4 convolution kernel")
    assert lines["dynamic_fc4"].endswith("fastest within 0.5 pt of float32")
    assert lines["w8a16"].endswith("the most accurate quantized file; slower than float32 here: int16 reference "
                                   "kernels")
    assert "within" not in lines["int16x8"] and "most accurate" not in lines["int16x8"]  # scored on a subset
    assert purposes({"int8": MEASURED["int8"]}, {}) == {}
