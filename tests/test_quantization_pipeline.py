"""End to end on real MNIST: a small trained DeepConvNet -> every TF-converter variant -> LiteRT scores -> report."""
import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from kdeep.cli import main as cli_main
from quantization import VARIANTS, run_pipeline
from quantization import litert
from kdeep.data import scale_pixels

from conftest import SMALL_TEST

QAT_TRAIN, INT16X8_SUBSET = 2000, 300
# Per variant: accuracy change allowed against the float Keras model on the same real test images (pp), and the
# least top-1 agreement with it (QAT fine-tunes the weights, so it may change more predictions).
TOLERANCE = {"float32": (0.0, 1.0), "float16": (0.2, 0.99), "dynamic": (1.0, 0.97), "int8": (1.5, 0.97),
             "int16x8": (1.0, 0.97), "qat_int8": (2.0, 0.9)}
# The TF-converter variants; the LiteRT quantizer ones run end to end in test_quantization_aiedge.py.
CONVERTER = [name for name, variant in VARIANTS.items() if variant.backend == "converter"]

pytestmark = pytest.mark.slow  # every test reads the module's trained model and its converted variants (minutes)


@pytest.fixture(scope="module")
def mnist(small_mnist):
    """The first 4,000 training and 800 test images (tests/conftest.py)."""
    return small_mnist


@pytest.fixture(scope="module")
def trained(trained_deepconvnet):
    """The session's small trained DeepConvNet (tests/conftest.py)."""
    return trained_deepconvnet


@pytest.fixture(scope="module")
def report_dir(trained, mnist, tmp_path_factory):
    """Every converter variant; int16x8 scored on 300 images (its reference kernels are slow) to test the subset."""
    (x_train, y_train), test = mnist
    data = (x_train[:QAT_TRAIN], y_train[:QAT_TRAIN]), test
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(VARIANTS, "int16x8", dataclasses.replace(VARIANTS["int16x8"], eval_limit=INT16X8_SUBSET))
        return run_pipeline(trained, data, tmp_path_factory.mktemp("quant") / "report", variants=CONVERTER,
                            qat_epochs=1).report_dir


@pytest.fixture(scope="module")
def results(report_dir):
    return json.loads((report_dir / "report.json").read_text())


def test_every_variant_converts_and_runs_in_litert(results, report_dir):
    assert results["failed"] == {}
    assert list(results["variants"]) == CONVERTER
    for name, scores in results["variants"].items():
        runner = litert.open_model(report_dir / f"{name}.tflite")
        assert runner.run(np.zeros(runner.input_detail()["shape"], np.float32)).shape == (1, 10)
        assert scores["size_bytes"] == (report_dir / f"{name}.tflite").stat().st_size
        assert set(scores["latency_us"]) == {"1", "2"} and scores["latency_us"]["1"]["median_us"] > 0
        for timed in scores["latency_us"].values():  # 200 invokes, or 20 or more within a one-second budget
            assert litert.LATENCY_MIN_RUNS <= timed["runs"] <= litert.LATENCY_RUNS


def test_trained_model_is_real(results):
    assert results["float_accuracy"] > 0.9


@pytest.mark.parametrize("name", CONVERTER)
def test_accuracy_close_to_float(results, name):
    scores, (pp, agreement) = results["variants"][name], TOLERANCE[name]
    assert abs(scores["accuracy"] - scores["reference_accuracy"]) * 100 <= pp
    assert scores["agreement"] >= agreement


@pytest.mark.parametrize("name", ["int8", "qat_int8"])
def test_full_integer_files_take_uint8_pixels_and_compute_on_int8(report_dir, name):
    runner = litert.open_model(report_dir / f"{name}.tflite")  # deployable: uint8 pixels in, uint8 probabilities out
    assert runner.input_detail()["dtype"] == np.uint8 and runner.output_detail()["dtype"] == np.uint8
    assert runner.input_detail()["quantization"] == pytest.approx((1 / 255, 0))  # pixel p means p / 255
    assert runner.deployable and list(runner.input_detail()["shape"]) == [1, 28, 28, 3]
    dtypes = {np.dtype(t["dtype"]) for t in runner.tensor_details()}
    assert np.dtype(np.float32) not in dtypes and np.dtype(np.int8) in dtypes


def test_float16_and_dynamic_weights(report_dir):
    float16 = {np.dtype(t["dtype"]) for t in litert.open_model(report_dir / "float16.tflite").tensor_details()}
    dynamic = litert.open_model(report_dir / "dynamic.tflite")
    assert np.dtype(np.float16) in float16
    assert np.dtype(np.int8) in {np.dtype(t["dtype"]) for t in dynamic.tensor_details()}
    assert dynamic.input_detail()["dtype"] == np.float32


def test_int16x8_is_scored_on_a_documented_subset(results, report_dir):
    scores = results["variants"]["int16x8"]
    assert scores["n"] == INT16X8_SUBSET < SMALL_TEST
    assert scores["note"] and scores["note"] in (report_dir / "report.md").read_text()
    activations = {np.dtype(t["dtype"]) for t in litert.open_model(report_dir / "int16x8.tflite").tensor_details()}
    assert np.dtype(np.int16) in activations


def test_report_files_parse(results, report_dir):
    rows = list(csv.DictReader((report_dir / "report.csv").open()))
    assert [r["variant"] for r in rows] == CONVERTER
    assert float(rows[0]["size_ratio"]) == 1.0
    markdown = (report_dir / "report.md").read_text()
    assert markdown.count("\n| ") >= len(CONVERTER) + 1 and "accuracy_vs_bits.png" in markdown
    html = (report_dir / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "data:image/png;base64," in html
    assert not [p for p in os.listdir(report_dir) if p.endswith(".tmp")]


def test_plot_is_a_valid_png(report_dir):
    import matplotlib.image

    data = (report_dir / "accuracy_vs_bits.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(report_dir / "accuracy_vs_bits.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300


def test_int8_layer_errors_listed_worst_first(results, report_dir):
    errors = results["layer_errors"]
    assert errors and all(e["rmse_per_scale"] >= 0 for e in errors)
    assert [e["rmse_per_scale"] for e in errors] == sorted((e["rmse_per_scale"] for e in errors), reverse=True)
    assert errors[0]["tensor"] in (report_dir / "report.md").read_text()


def test_cli_quantizes_a_run_directory(trained, mnist, tmp_path, capsys):
    trained.save(tmp_path / "model.keras")
    assert cli_main(["quantize", str(tmp_path), "--dataset", "mnist", "--variants", "float32", "--limit", "200"]) == 0
    report = json.loads((tmp_path / "quantization" / "report.json").read_text())
    assert report["model"] == trained.name and report["n_test"] == 200
    (_, _), (x_test, y_test) = mnist
    expected = np.mean(trained.predict(scale_pixels(x_test[:200]), verbose=0).argmax(-1) == y_test[:200])
    assert report["variants"]["float32"]["accuracy"] == pytest.approx(expected, abs=1e-9)
    assert "| float32 |" in capsys.readouterr().out


def test_rerun_removes_variant_files_it_did_not_produce(trained, mnist, tmp_path):
    """A report directory reused with fewer variants keeps no stale .tflite the new report does not list."""
    out = tmp_path / "report"
    out.mkdir()
    (out / "int8.tflite").write_bytes(b"stale flatbuffer from an earlier run")
    (out / "notes.txt").write_text("the user's own file")
    (x_train, y_train), (x_test, y_test) = mnist
    results = run_pipeline(trained, ((x_train, y_train), (x_test, y_test)), out, variants="float32", limit=100)
    report = json.loads((out / "report.json").read_text())
    assert list(report["variants"]) == ["float32"]
    assert results.report_dir == out and list(results.variants) == ["float32"] and results.failed == {}  # returned
    assert results.variants["float32"].accuracy == report["variants"]["float32"]["accuracy"]
    assert sorted(p.name for p in out.glob("*.tflite")) == ["float32.tflite"]
    assert (out / "notes.txt").read_text() == "the user's own file"


def test_cli_ptq_options_reach_the_simulator_and_the_files(trained, mnist, tmp_path, capsys):
    """`--ranges mse --adaround --bias-correction`: the report names what each file carries, the int4 file holds
    the simulator's kernels (LiteRT agrees with the simulation), and a bad value is one line, exit 2."""
    from quantization import convert, ptq

    trained.save(tmp_path / "model.keras")
    args = ["quantize", str(tmp_path), "--dataset", "mnist", "--variants", "int8,int4,w4a8", "--limit", "300",
            "--ranges", "mse", "--adaround", "--adaround-iterations", "30", "--bias-correction"]
    assert cli_main(args) == 0
    report = json.loads((tmp_path / "quantization" / "report.json").read_text())
    assert report["ptq"]["options"]["names"] == ["ranges=mse", "adaround(30 it)", "bias_correction"]
    assert report["ptq"]["carried"] == {"int8": ["ranges=mse", "bias_correction"],
                                        "int4": ["adaround(30 it)", "bias_correction"],
                                        "w4a8": ["ranges=mse", "adaround(30 it)", "bias_correction"]}
    assert report["ptq"]["adaround"] and "Post-training quantization options" in capsys.readouterr().out
    (x_train, _), (x_test, y_test) = mnist
    options = ptq.PTQOptions(ranges="mse", adaround=True, adaround_iterations=30, bias_correction=True)
    sim = ptq.simulator(trained, convert.calibration_images(x_train[:300]), options)
    simulated = sim.accuracy(scale_pixels(x_test[:300]), y_test[:300], sim.uniform(4))
    assert report["variants"]["int4"]["accuracy"] == pytest.approx(simulated, abs=0.34 / 100)  # 1 image of 300
    assert cli_main(["quantize", str(tmp_path), "--ranges", "kl"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "invalid choice: 'kl'" in error[0]
