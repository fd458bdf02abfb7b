"""kdeep compare: model lists, one-line errors with nothing written, resume after kill -9, results and report."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kdeep.cli import main
from kdeep.compare import Entry, parse_entries
from kdeep.errors import ArtifactError, ConfigError, ModelError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--limit", "600", "--val-split", "100", "--bench-steps", "1"]


def test_model_lists_read_names_and_widths():
    assert parse_entries("deepconvnet, vgg11_bn@0.25,resnet20@2") == [
        Entry("deepconvnet"), Entry("vgg11_bn", 0.25), Entry("resnet20", 2.0)]
    assert [e.label for e in parse_entries(["resnet18@0.25", "resnet20@1"])] == ["resnet18@0.25", "resnet20"]
    with pytest.raises(ModelError, match="width after '@' must be a number"):
        parse_entries("vgg11_bn@quarter")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_entries("resnet20,resnet20@1.0")
    with pytest.raises(ModelError, match="no models to compare"):
        parse_entries(" , ")


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "deepconvnet,resnet5"], "unknown model 'resnet5'"),
    (["--models", "vgg11_bn@5"], "width must be a number in (0, 4], got 5.0"),
    (["--models", "vgg11_bn@0"], "width must be a number in (0, 4], got 0.0"),
    (["--models", "deepconvnet@0.5"], "deepconvnet: has no width option"),
    (["--models", "resnet20", "--width", "0.5"], "unrecognized arguments: --width 0.5"),  # NAME@WIDTH instead
    (["--models", "resnet20", "--dataset", "emnist"], "emnist"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "cmp"
    assert main(["compare", "--out", str(out), *args, *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kdeep: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_images_a_model_cannot_take_are_refused_before_training(tmp_path, fashion_mnist):
    from kdeep.compare import _costs

    (x_train, _), _ = fashion_mnist
    crop = x_train[:1, :8, :8].shape[1:]  # the shape of 8x8 Fashion-MNIST crops
    with pytest.raises(ModelError, match="vgg11_bn: input 8x8 is too small"):
        _costs(parse_entries("deepconvnet,vgg11_bn@0.25"), crop, 10)


def test_an_existing_comparison_with_other_settings_is_refused(tmp_path, capsys):
    from kdeep.compare import _prepare

    out = tmp_path / "cmp"
    _prepare(out, {"models": ["deepconvnet"], "dataset": "fashion_mnist", "config": {"epochs": 1}})
    before = (out / "compare.json").read_text()
    code = main(["compare", "--out", str(out), "--models", "deepconvnet", *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "holds a comparison with other settings" in err and "\n" not in err
    assert (out / "compare.json").read_text() == before and sorted(p.name for p in out.iterdir()) == ["compare.json"]


def _compare_process(out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "kdeep", "compare", "--out", str(out), "--models", "deepconvnet,deepconvnet_book",
               "--epochs", "3", "--limit", "1200", "--val-split", "200", "--bench-steps", "1", *extra]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@pytest.mark.slow
def test_kill_9_then_rerun_keeps_finished_models_and_resumes_the_interrupted_one(tmp_path):
    out = tmp_path / "cmp"
    first, second = out / "runs" / "deepconvnet", out / "runs" / "deepconvnet_book"
    process = _compare_process(out, "--no-litert")
    try:  # kill -9 once the second model has saved a finished epoch (last.keras), before it finishes
        deadline = time.time() + 600
        while time.time() < deadline and process.poll() is None:
            if (second / "last.keras").exists():
                break
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.communicate()
    assert (first / "metrics.json").exists() and not (second / "metrics.json").exists()
    assert not (out / "results.csv").exists()
    kept = {path: path.stat().st_mtime_ns for path in (first / "model.keras", first / "measure.json")}
    done_before = json.loads((second / "state.json").read_text())["history"]

    rerun = _compare_process(out, "--no-litert")
    log, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, log[-2000:]
    assert {path: path.stat().st_mtime_ns for path in kept} == kept  # the finished model was not retrained
    assert "deepconvnet: trained already" in log
    resumed = re.search(rf"resuming {re.escape(str(second))} after epoch (\d)/3", log)
    assert resumed and int(resumed.group(1)) >= 1, log[-2000:]
    kept_epochs = int(resumed.group(1))
    history = json.loads((second / "state.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[:kept_epochs] == done_before[:kept_epochs]  # finished epochs kept (same rows), not trained again
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["model"] for row in rows] == ["deepconvnet", "deepconvnet_book"]
    assert all(row["epochs"] == "3" and row["litert_int8_ms"] == "" for row in rows)


@pytest.mark.slow
def test_results_table_plots_and_report_with_litert(tmp_path):
    from kdeep.compare import COLUMNS, compare
    from kdeep.train import TrainConfig

    out = tmp_path / "cmp"
    config = TrainConfig.from_recipe("sgd_cosine", epochs=1, limit=1500, val_split=300)
    rows = compare(["deepconvnet"], "fashion_mnist", out, config=config, bench_steps=2, verbose=0)
    run = json.loads((out / "runs" / "deepconvnet" / "metrics.json").read_text())
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == [column.key for column in COLUMNS]
    row = table[0]
    assert row["model"] == "deepconvnet" and row["img_size"] == "28x28x1" and row["param_count"] == "0.124"
    assert float(row["top1"]) == pytest.approx(100 * run["test_accuracy"], abs=0.01)
    assert float(row["top1"]) + float(row["top1_err"]) == pytest.approx(100)
    assert float(row["mmacs"]) == pytest.approx(8.8, abs=0.05)
    measured = json.loads((out / "runs" / "deepconvnet" / "measure.json").read_text())
    assert measured["int8"]["n"] == 10000  # int8 scored on every test image
    assert abs(rows[0].int8_top1 - rows[0].top1) < 3
    assert float(row["int8_kib"]) < 0.35 * float(row["fp32_kib"])
    assert all(float(row[key]) > 0 for key in ("infer_samples_per_sec", "litert_fp32_ms", "litert_int8_ms",
                                               "train_samples_per_sec", "train_seconds"))
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "max-width:1240px" in page
    assert (out / "accuracy_vs_cost.png").read_bytes()[:4] == b"\x89PNG"
    assert "| deepconvnet | 28x28x1 |" in (out / "report.md").read_text()


@pytest.mark.slow  # a subprocess that imports TensorFlow
def test_app_refuses_an_unknown_model_before_training(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(ROOT / "apps" / "compare_architectures.py"), "--out",
                           str(tmp_path / "out"), "--models", "resnet20,nope@0.5"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2 and "unknown model 'nope'" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("steps", [0, -1, 1.5])
def test_bench_steps_below_one_are_refused_before_anything_is_written(tmp_path, steps):
    from kdeep.compare import compare

    with pytest.raises(ConfigError, match=f"bench_steps={steps!r} must be an integer >= 1") as error:
        compare("deepconvnet", out=tmp_path / "cmp", bench_steps=steps, verbose=0)
    assert "\n" not in str(error.value) and not (tmp_path / "cmp").exists()


def test_measure_json_round_trips_through_the_dataclasses():
    from kdeep.compare import Footprint, Measured, Throughput
    from quantization import VariantScore
    from quantization.litert import Latency

    measured = Measured(Throughput(1000.0, 12.5, 256, 3), Footprint(4096, {"1": Latency(120.0, 130.0)}),
                        VariantScore(n=10, accuracy=0.9, size_bytes=1024, scoring_seconds=0.5,
                                     latency_us={"1": Latency(50.0, 60.0), "2": Latency(40.0, 45.0)}), {})
    data = json.loads(json.dumps(measured.to_dict()))
    assert data["int8"]["latency_us"]["1"] == {"median_us": 50.0, "p90_us": 60.0} and "agreement" not in data["int8"]
    assert Measured.from_dict(data) == measured
    assert Measured.from_dict({"keras": data["keras"]}).to_dict() == {"keras": data["keras"]}  # --no-litert


def test_an_unreadable_settings_file_is_a_one_line_error(tmp_path):
    from kdeep.compare import _prepare

    (tmp_path / "compare.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="compare.json is unreadable"):
        _prepare(tmp_path, {"models": ["deepconvnet"]})
