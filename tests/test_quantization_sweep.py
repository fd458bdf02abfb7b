"""The Keras quantization simulator against LiteRT, the sweep, per-layer sensitivity and the mixed-precision search,
on a small DeepConvNet trained on real MNIST."""
import math

import numpy as np
import pytest

import kdeep.models
from kdeep.cli import main as cli_main
from kdeep.errors import QuantizationError
from kdeep.scoring import accuracy as top1
from kdeep.data import scale_pixels
from quantization import aiedge, clipping
from quantization.litert import predict as litert_predict
from quantization.pipeline import quantize
from quantization.search import LADDER, check_budget, kernel_bytes, pareto, search
from quantization.sensitivity import layer_sensitivity, sensitivity_width
from quantization.sweep import KernelQuantizer, Simulator, quantize_kernel, sweep

TRAIN, TEST, VALIDATION = 3000, 2000, 1000
AGREEMENT_PP = 0.15  # simulated and LiteRT accuracy on the same images, in percentage points


@pytest.fixture(scope="module")
def data(mnist):
    """Training images 0-2,999 (the model trained on 0-3,999), a validation split from the END of the training set
    (never trained on), the first test images."""
    (x_train, y_train), (x_test, y_test) = mnist
    return ((scale_pixels(x_train[:TRAIN]), y_train[:TRAIN]),
            (scale_pixels(x_train[-VALIDATION:]), y_train[-VALIDATION:].reshape(-1)),
            (scale_pixels(x_test[:TEST]), y_test[:TEST].reshape(-1)))


@pytest.fixture(scope="module")
def model(trained_deepconvnet):
    """The session's DeepConvNet without dropout, one epoch of Adam on the first 4,000 MNIST images (conftest.py)."""
    return trained_deepconvnet


@pytest.fixture(scope="module")
def simulator(model, data):
    (x, _), _, _ = data
    return Simulator(model, calibration=x[np.random.default_rng(0).choice(len(x), 300, replace=False)])


@pytest.fixture(scope="module")
def litert(model, simulator, tmp_path_factory):
    """float32, full int8 (calibrated on the simulator's images), int4 and int2_dense LiteRT files as the pipeline
    makes them, and a LiteRT quantizer weight-only int8 file (`int8_weights`)."""
    files = quantize(model, ["float32", "int8", "int4", "int2_dense"], simulator._calibration,
                     tmp_path_factory.mktemp("tfl"))
    files["int8_weights"] = aiedge.quantize_tflite(files["float32"], files["float32"].with_name("int8_weights.tflite"),
                                                   weight_bits={}, default_bits=8)
    return files


def litert_accuracy(path, x, y) -> float:
    return top1(litert_predict(path, x), y)


def test_kernel_grid_is_per_channel_symmetric_and_clipped_below_5_bits():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 4, 5)) * np.array([0.1, 1, 3, 10, 0.01])  # channels of very different scale
    for bits in (2, 3, 4, 5, 8):
        q = quantize_kernel(kernel, bits)
        qmax = 2 ** (bits - 1) - 1
        for c in range(5):
            w, peak = kernel[..., c], np.abs(kernel[..., c]).max()
            step = np.abs(q[..., c]).max() / qmax  # the grid's step: its largest level is qmax steps
            levels = np.round(q[..., c] / step)
            assert np.allclose(q[..., c], levels * step, atol=1e-6) and np.all(np.abs(levels) <= qmax)
            max_scaled = np.clip(np.round(w / (peak / qmax)), -qmax, qmax) * (peak / qmax)
            error, max_error = np.sum((q[..., c] - w) ** 2), np.sum((max_scaled - w) ** 2)
            if bits >= 5:  # the grid spans max|w|, as LiteRT's converter does
                assert np.isclose(step * qmax, peak) and np.allclose(q[..., c], max_scaled, atol=1e-6)
            else:  # clipped: a narrower range, and less rounding error than the max-scaled grid
                assert step * qmax < peak and error < max_error
    assert np.mean(quantize_kernel(kernel, 2) == 0) < 0.6  # max-scaled, most Gaussian weights would round to 0
    binary = quantize_kernel(kernel, 1)
    assert np.allclose(np.abs(binary[..., 3]), np.abs(kernel[..., 3]).mean())
    assert np.array_equal(np.sign(binary), np.where(kernel >= 0, 1, -1))


@pytest.mark.slow  # over 2 s
@pytest.mark.parametrize("variant, weight_bits, activation_bits",
                         [("int8_weights", 8, None), ("int4", 4, None), ("int8", 8, 8)])
def test_simulator_agrees_with_litert(simulator, litert, data, variant, weight_bits, activation_bits):
    _, _, (x, y) = data
    simulated = simulator.accuracy(x, y, simulator.uniform(weight_bits), activation_bits)
    assert abs(100 * (simulated - litert_accuracy(litert[variant], x, y))) <= AGREEMENT_PP


def test_kernel_cache_keeps_its_byte_budget_and_recomputes_what_it_dropped(model):
    quantizer = KernelQuantizer(model)
    keys = list(quantizer.float_kernels)
    quantizer.cache_bytes = quantizer.float_kernels["fc1"].nbytes + quantizer.float_kernels["block3_conv2"].nbytes
    for _ in range(2):  # the second pass asks again for kernels the first one's later layers pushed out
        for key in keys:
            for bits in (4, 8):
                kernel = quantizer.kernel(key, bits)
                expected = quantize_kernel(quantizer.float_kernels[key], bits, quantizer.plan[key].channel_axes)
                assert np.array_equal(kernel, expected)
                cached = list(quantizer._cache.values())
                assert sum(k.nbytes for k in cached) <= quantizer.cache_bytes or len(cached) == 1
    assert list(quantizer._cache)[-1] == ("logits", 8)  # the last asked for is kept
    assert ("block1_conv1", 4) not in quantizer._cache  # the least recently used went first


@pytest.mark.slow  # over 2 s
def test_int4_export_holds_the_simulators_clipped_weights(simulator, model, litert, data):
    """The int4 file's dequantized weights (read back from LiteRT) are the simulator's grid, per channel."""
    _, _, (x, _) = data
    ops = aiedge.layer_ops(model, litert["float32"])
    for layer in ("block1_conv1", "fc1"):
        stored = aiedge.weight_values(litert["int4"], ops[layer], x[:1])
        kernel = quantize_kernel(np.asarray(model.get_layer(layer).kernel), 4)
        expected = np.moveaxis(kernel, -1, 0).reshape(stored.shape)  # TFLite keeps the output channel first
        assert np.allclose(stored, expected, atol=1e-6 * np.abs(expected).max())


@pytest.mark.slow  # over 2 s
def test_int2_dense_deploys_the_simulated_grid_far_above_the_max_scaled_one(simulator, litert, data, monkeypatch):
    _, _, (x, y) = data
    widths = {name: 2 if name in ("fc1", "logits") else 4 for name in simulator.layers}
    simulated, deployed = simulator.accuracy(x, y, widths), litert_accuracy(litert["int2_dense"], x, y)
    monkeypatch.setattr(clipping, "CLIP_BITS", 1)  # every grid spans max|w|
    max_scaled = Simulator(simulator.model).accuracy(x, y, widths)  # a fresh one: a simulator caches its kernels
    assert abs(simulated - deployed) <= 0.01 and deployed > max_scaled + 0.1


@pytest.mark.slow  # over 2 s
def test_two_bit_convolution_is_refused_before_quantizing(model, litert, tmp_path):
    with pytest.raises(QuantizationError, match="layer block1_conv1: LiteRT runs CONV_2D with 2-bit weights but "
                                                "computes wrong outputs; give it 4 or 8 bits"):
        aiedge.quantize_tflite(litert["float32"], tmp_path / "bad.tflite", weight_bits={"block1_conv1": 2},
                               default_bits=None, model=model)
    assert not (tmp_path / "bad.tflite").exists()


@pytest.mark.slow  # over 2 s
def test_simulator_leaves_the_model_float_and_restores(simulator, model, data):
    _, _, (x, _) = data
    before = np.asarray(model.predict(x[:200], verbose=0))
    simulator.predict(x[:200], simulator.uniform(2))
    assert np.array_equal(np.asarray(model.predict(x[:200], verbose=0)), before)
    assert np.allclose(simulator.predict(x[:200], simulator.uniform(None)), before, atol=1e-6)
    with pytest.raises(QuantizationError, match="no quantizable layer named nope"):
        simulator.set_weights({"nope": 4})


@pytest.mark.slow
def test_sweep_falls_with_bits_and_sensitivity_names_keras_layers(simulator, model, data):
    _, _, (x, y) = data
    x, y = x[:500], y[:500]
    float_accuracy = simulator.accuracy(x, y, simulator.uniform(None))
    rows = sweep(simulator, x, y, weight_bits=(1, 2, 8), activation_bits=(None, 8))
    assert len(rows) == 6 and all(r["simulated"] and r["n"] == 500 for r in rows)
    accuracy = {(r["weight_bits"], r["activation_bits"]): r["accuracy"] for r in rows}
    assert abs(accuracy[(8, None)] - float_accuracy) <= 0.01 and accuracy[(1, None)] < 0.9 * float_accuracy
    bits = sensitivity_width(rows, float_accuracy)
    assert bits == 2
    per_layer = layer_sensitivity(simulator, x, y, bits, float_accuracy)
    names = {layer.name for layer in model.layers}
    assert [r["layer"] for r in per_layer] == simulator.layers and set(simulator.layers) <= names
    assert "block2_conv1" in simulator.layers and "logits" in simulator.layers
    assert max(r["drop_pp"] for r in per_layer) > 0


@pytest.mark.slow
def test_search_keeps_the_budget_on_held_out_images(simulator, data):
    """The search on real images: never below the plan's widths, and its bound is the one its counts give."""
    from kdeep.scoring import correct
    from quantization.search import drop_bound

    _, (x_val, y_val), _ = data
    lowest = {entry.key: entry.lowest("dynamic") for entry in simulator.plan}
    assert lowest["fc1"] == 2 and lowest["block1_conv1"] == 4
    mix = search(simulator, x_val, y_val, max_drop=1.0)
    assert set(mix.bits) == set(simulator.layers) and set(mix.bits.values()) <= set(LADDER)
    assert all(bits is None or bits >= lowest[layer] for layer, bits in mix.bits.items())
    assert not any(t["bits"] is not None and t["bits"] < lowest[t["layer"]] for t in mix.tried)
    float_right = correct(simulator.predict(x_val, simulator.uniform(None)), y_val)
    right = correct(simulator.predict(x_val, mix.bits), y_val)
    lost, gained = int(np.sum(float_right & ~right)), int(np.sum(~float_right & right))
    assert (mix.lost, mix.gained, mix.n) == (lost, gained, VALIDATION)
    assert mix.drop_bound_pp == pytest.approx(drop_bound(lost, gained, VALIDATION, mix.z)) and mix.drop_bound_pp <= 1.0
    assert math.isclose(simulator.accuracy(x_val, y_val, mix.bits), mix.accuracy)
    assert kernel_bytes(simulator, mix.bits) < kernel_bytes(simulator, simulator.uniform(8))


@pytest.mark.parametrize("bad", [0, 100, -0.5, 250, float("nan")])
def test_budget_outside_0_100_is_refused(bad):
    with pytest.raises(QuantizationError, match="--max-drop must be between 0 and 100"):
        check_budget(bad)


def test_cli_max_drop_outside_range_is_one_line_exit_2(capsys, tmp_path):
    assert cli_main(["quantize", str(tmp_path), "--dataset", "mnist", "--max-drop", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--max-drop" in err


@pytest.mark.parametrize("flags, message", [
    (["--search", "layers"], "argument --search: invalid choice: 'layers'"),
    (["--search", "activations"], "--search activations chooses under a budget; give --max-drop PP too"),
    (["--search", "both", "--max-drop", "1", "--objective", "latency"], "--objective latency weighs dynamic-range"),
])
def test_cli_bad_search_is_one_line_exit_2(flags, message, capsys, tmp_path):
    assert cli_main(["quantize", str(tmp_path), "--dataset", "mnist", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


def test_pareto_frontier():
    points = [{"name": "a", "size_bytes": 100, "accuracy": 0.99}, {"name": "b", "size_bytes": 50, "accuracy": 0.98},
              {"name": "c", "size_bytes": 60, "accuracy": 0.97}, {"name": "d", "size_bytes": 20, "accuracy": 0.5}]
    assert pareto(points) == ["d", "b", "a"]


@pytest.mark.slow
def test_report_with_sweep_and_budget(model, data, tmp_path):
    """run_pipeline with the sweep and a budget: the sections, plots and labels a reader needs."""
    import json

    from quantization.pipeline import run_pipeline

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    arrays = (np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])), (x_test, y_test)
    out = run_pipeline(model, arrays, tmp_path / "report", variants="float32,dynamic,int8", sweep_bits=True,
                       sweep_limit=100, max_drop=1.0, validation=(x_val, y_val), calibration_samples=300).report_dir
    results = json.loads((out / "report.json").read_text())
    sweep_rows = results["sweep"]["rows"]
    assert len(sweep_rows) == 45 and all(r["n"] == 100 and r["simulated"] for r in sweep_rows)
    assert set(results["sweep"]["check"]) == {"dynamic", "int8"}
    mixed = results["mixed"]
    # chosen on the first half of the held-out images, confirmed in LiteRT on the second
    assert mixed["n"] == VALIDATION // 2 and mixed["drop_bound_pp"] <= 1.0
    assert mixed["chose_on"].startswith(f"{VALIDATION // 2:,} images of the {VALIDATION:,} held-out images")
    confirmation = mixed["confirmation"]
    assert confirmation["n"] == VALIDATION - VALIDATION // 2
    assert confirmation["images"].startswith(f"{VALIDATION - VALIDATION // 2:,} images of the {VALIDATION:,} held-out")
    assert confirmation["drop_pp"] == pytest.approx(100 * (confirmation["lost"] - confirmation["gained"])
                                                    / confirmation["n"])
    assert results["pareto"] and set(results["pareto"]) <= set(results["variants"])
    assert set(results["checks"]) == {"float32", "dynamic", "int8", "mixed"}
    assert all(c["passed"] and c["n"] == 256 for c in results["checks"].values())
    assert set(results["purposes"]) == set(results["variants"])
    page = (out / "report.html").read_text()
    for title in ("Bit-width sweep (simulated)", "Per-layer sensitivity (simulated)", "Mixed precision under",
                  "What each variant is for, on this machine", "Export check", "Confirmed in LiteRT on"):
        assert title in page
    assert page.count("data:image/png;base64,") == 4  # accuracy vs bits, sweep, sensitivity, Pareto
    assert "the first 100 of 2000 test images (a subset)" in page
    assert all((out / name).is_file() for name in ("sweep.png", "sensitivity.png", "pareto.png"))
    assert results["variants"]["mixed"]["size_bytes"] < results["variants"]["int8"]["size_bytes"]
    assert all(r.get("snr_db") is not None for r in results["sweep"]["sensitivity"])


@pytest.mark.slow
def test_mixed_is_scored_with_the_contracts_output_kind(data, tmp_path):
    """A model that outputs logits: mixed.tflite's |dp| is measured on softmax probabilities, not on logits."""
    import json

    import keras

    from kdeep.contract import probabilities
    from quantization import litert
    from quantization.pipeline import run_pipeline

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    keras.utils.set_random_seed(0)
    net = kdeep.models.build("deepconvnet", input_shape=(28, 28, 1), num_classes=10, dropout=0.0,
                             classifier_activation=None)
    net.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(x_train, y_train, batch_size=32, epochs=1, verbose=0)
    out = run_pipeline(net, ((x_train, y_train), (x_test, y_test)), tmp_path / "report", variants="float32",
                       max_drop=1.0, validation=(x_val, y_val), calibration_samples=200).report_dir
    mixed = json.loads((out / "report.json").read_text())["variants"]["mixed"]
    expected = np.abs(probabilities(litert.predict(out / "mixed.tflite", x_test), "logits")
                      - probabilities(net.predict(x_test, verbose=0), "logits"))
    assert mixed["mean_abs_prob_diff"] == pytest.approx(float(expected.mean()), rel=1e-4)
    assert mixed["max_abs_prob_diff"] == pytest.approx(float(expected.max()), rel=1e-4)


@pytest.mark.slow
def test_a_mix_of_8_and_16_bit_activations_deploys_as_simulated(simulator, model, litert, data, tmp_path):
    """Activation widths per tensor: the LiteRT file runs each op at the width chosen for its tensors (int16x8 or
    int8 kernels, requantized between them) and predicts what the simulator does with those widths."""
    from quantization.litert import open_model

    _, (x_val, y_val), _ = data
    widths = {tensor: 16 if i % 2 == 0 else 8 for i, tensor in enumerate(simulator.activation_tensors)}
    assert set(widths.values()) == {8, 16}
    path = aiedge.quantize_tflite(litert["float32"], tmp_path / "mix.tflite", weight_bits={}, default_bits=8,
                                  model=model, calibration=simulator._calibration, float_io=True,
                                  activation_widths=widths)
    expected = aiedge.op_activation_widths(litert["float32"], widths)
    runner = open_model(path)
    tensors = {t["index"]: t for t in runner.tensor_details()}
    seen = 0
    for op in runner.ops():
        scope = ";".join(tensors[i]["name"] for i in op["outputs"]) + ";"
        if op["op_name"] in aiedge.WEIGHTED_OPS and scope in expected:
            seen += 1
            assert tensors[op["inputs"][0]]["dtype"] == (np.int16 if expected[scope] == 16 else np.int8), scope
    assert seen == len(simulator.layers)
    x, y = x_val[:300], y_val[:300]  # int16 kernels are LiteRT's slow reference ones
    simulated, deployed = simulator.predict(x, simulator.uniform(8), widths), litert_predict(path, x)
    assert np.mean(simulated.argmax(-1) == deployed.argmax(-1)) >= 0.99
    assert abs(top1(simulated, y) - top1(deployed, y)) <= 0.01


@pytest.mark.slow
def test_activation_search_holds_its_budget_in_litert_on_the_confirming_images(model, data, tmp_path):
    """--search activations end to end: 8 or 16 bits per tensor chosen in simulation on one half of the held-out
    images, the full-integer mixed.tflite confirmed in LiteRT on the other half within the budget; the report
    lists the widths."""
    import json

    from quantization.pipeline import run_pipeline

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    budget = 2.0
    out = run_pipeline(model, ((x_train, y_train), (x_test, y_test)), tmp_path / "report", variants="float32",
                       limit=200, max_drop=budget, validation=(x_val[:400], y_val[:400]), calibration_samples=200,
                       search_for="activations").report_dir
    results = json.loads((out / "report.json").read_text())
    mixed = results["mixed"]
    assert mixed["search"] == "activations" and mixed["n"] == 200 and mixed["drop_bound_pp"] <= budget
    assert set(mixed["activation_bits"].values()) <= {8, 16} and "<input>" in mixed["activation_bits"]
    assert set(mixed["bits"].values()) == {8}
    assert 8 <= mixed["mean_activation_bits"] <= 16 and results["variants"]["mixed"]["activation_bits"] < 32
    confirmation = mixed["confirmation"]
    assert confirmation["n"] == 200 and confirmation["drop_pp"] <= budget  # LiteRT, on images that did not choose
    assert results["checks"]["mixed"]["passed"]
    page = (out / "report.html").read_text()
    assert "Activation widths chosen under the budget" in page and "Searched: activation widths per tensor" in page
