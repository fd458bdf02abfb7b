"""`kdeep run` and `kdeep finetune` end to end, quiet by default: no TensorFlow C++ log line unless --verbose."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# TensorFlow/absl C++ log lines ("I0000 00:00:17.. 123 file.cc:12] ..." or the older dated form) and the
# native lines that ignore TF_CPP_MIN_LOG_LEVEL.
TF_LINE = re.compile(r"^[IWEF]\d{4} |^\d{4}-\d\d-\d\d [\d:.]+: [IWEF] |cuInit|Assuming default|SavedModel|"
                     r"absl::InitializeLog|cuda drivers|fully_quantize|XNNPACK|^WARNING:absl|^INFO:", re.M)
NATIVE_WRITES = """
import os, sys
from kdeep.quiet import native_stderr_filtered, set_verbosity
print(set_verbosity(), os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
with native_stderr_filtered():
    os.write(2, b"I0000 00:00:1796209701.140595   17012 cudart_stub.cc:31] Could not find cuda drivers\\n")
    os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8\\n")
    os.write(2, b"a native line kdeep does not know\\n")
    print("a python line", file=sys.stderr)
"""


def kdeep(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m kdeep ARGS` with TF_CPP_MIN_LOG_LEVEL and KDEEP_VERBOSE unset, plus `env`."""
    base = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "KDEEP_VERBOSE")}
    return subprocess.run([sys.executable, "-m", "kdeep", *args], capture_output=True, text=True, timeout=900,
                          env={**base, "PYTHONPATH": str(REPO), **env}, cwd=REPO)


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "KDEEP_VERBOSE")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**base, "PYTHONPATH": str(REPO), **env})


def test_quiet_mode_drops_native_log_lines_and_keeps_the_rest():
    quiet = python(NATIVE_WRITES)
    assert quiet.stdout == "False 3\n"
    assert quiet.stderr == "a python line\na native line kdeep does not know\n"  # python live, native after
    kept = python(NATIVE_WRITES, TF_CPP_MIN_LOG_LEVEL="1")
    assert kept.stdout == "False 1\n"  # a level the user exported wins
    verbose = python(NATIVE_WRITES, KDEEP_VERBOSE="1")
    assert verbose.stdout == "True None\n"
    assert verbose.stderr.splitlines() == [
        "I0000 00:00:1796209701.140595   17012 cudart_stub.cc:31] Could not find cuda drivers",
        "fully_quantize: 0, inference_type: 6, input_inference_type: INT8",
        "a native line kdeep does not know", "a python line"]


def test_python_dash_m_kdeep_is_the_cli():
    from kdeep import __version__

    version = kdeep("--version")
    assert (version.returncode, version.stdout) == (0, f"kdeep {__version__}\n")
    bare = kdeep()
    assert bare.returncode == 2 and bare.stdout.startswith("usage: kdeep ") and " run " in bare.stdout


@pytest.fixture(scope="module")
def kdeep_run(tmp_path_factory):
    """`kdeep run --limit 300 --epochs 1`: (its output directory, the finished process)."""
    out = tmp_path_factory.mktemp("kdeep-run")
    return out, kdeep("run", "--limit", "300", "--epochs", "1", "--out", str(out))


@pytest.mark.slow
def test_kdeep_run_writes_its_run_and_report_and_prints_no_tensorflow_line(kdeep_run):
    out, result = kdeep_run
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    foreign = [line for line in (result.stdout + result.stderr).splitlines() if not line.startswith("kdeep: ")]
    assert not TF_LINE.findall("\n".join(foreign)), foreign  # kdeep's own lines may name XNNPACK (dynamic_fc4)
    metrics = json.loads((out / "train" / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and metrics["train_images"] + metrics["val_images"] == 300
    lines = [line for line in result.stdout.splitlines() if line.startswith("kdeep: ")]
    assert lines[0] == (f"kdeep: training deepconvnet on mnist: {metrics['train_images']:,} training images, "
                        f"{metrics['val_images']:,} validation, 10,000 test; 1 epochs of batch 128 (recipe fast) on 1 "
                        f"replica; run dir {out / 'train'}")
    assert lines[1] == "kdeep: evaluating the final model on 10,000 test images"
    assert lines[2].startswith(f"kdeep: test accuracy {100 * metrics['test_accuracy']:.2f}% ")
    progress = result.stderr.splitlines()  # the quantization half says what it does, on stderr
    assert progress and all(line.startswith("kdeep: ") for line in progress), progress
    assert progress[0].startswith("kdeep: converting float32 (1/") and any("QAT epoch 1/1" in p for p in progress)
    assert any(line.startswith("kdeep: checking ") for line in progress)
    assert any(line.startswith("kdeep: scoring the float model and ") for line in progress)
    report = json.loads((out / "quantization" / "report.json").read_text())
    # one epoch on 300 images: a model that decides none of the check images, so no file is failed on noise
    assert report["failed"] == {} and len(report["variants"]) == 16
    assert not any(check["conclusive"] for check in report["checks"].values())
    assert "kdeep: no export-check verdict for 16 file(s): the Keras model decides only 0 of 256 images by a top-1 " \
           "margin of 0.2 (barely trained?); they are scored" in progress
    assert lines[-1] == (f"kdeep: model {out / 'train' / 'model.keras'}; metrics {out / 'train' / 'metrics.json'}; "
                         f"TensorBoard logs {out / 'train' / 'logs'}; quantization report {out / 'quantization'}")
    for name in ("model.keras", "history.csv", "config.json"):
        assert (out / "train" / name).is_file()
    assert {"float32", "int8"} <= set(report["variants"]) and report["n_test"] == 300  # --limit applies to it
    assert report["variants"]["float32"]["accuracy"] == pytest.approx(report["float_accuracy"], abs=1 / 300)
    assert (out / "quantization" / "report.html").is_file() and (out / "quantization" / "int8.tflite").is_file()
    sizes = {name: scores["size_bytes"] for name, scores in report["variants"].items()}
    for name in ("int4", "dynamic_int4", "w4a8", "qat_int4", "int4_ends8", "w4a8_ends8"):  # the LiteRT quantizer's
        assert sizes[name] < 0.2 * sizes["float32"]
    assert sizes["int2_dense"] < sizes["int4"]
    for name in ("int4", "w4a8"):  # the first and last layers' weights take a byte each, not half of one
        assert 0 < sizes[f"{name}_ends8"] - sizes[name] < 2000


@pytest.mark.slow
def test_kdeep_finetune_transfers_a_run_to_fashion_mnist_and_verbose_shows_tensorflow(kdeep_run, tmp_path):
    source, run = kdeep_run
    assert run.returncode == 0
    out = tmp_path / "transfer"
    result = kdeep("finetune", str(source / "train"), "--dataset", "fashion_mnist", "--limit", "500",
                   "--head-epochs", "1", "--epochs", "1", "--val-split", "0", "--unfreeze-blocks", "1",
                   "--out", str(out), "--verbose")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["unfrozen_blocks"] == ["block3"] and metrics["epochs_completed"] == 1
    head = json.loads((out / "head" / "metrics.json").read_text())
    assert metrics["head_test_accuracy"] == head["test_accuracy"]
    lines = [line for line in result.stdout.splitlines() if line.startswith(("kdeep: head", "kdeep: test"))]
    assert lines == [
        f"kdeep: head only (backbone frozen): test accuracy {100 * metrics['head_test_accuracy']:.2f}%; "
        f"unfrozen blocks block3",
        lines[1]]
    assert lines[1].startswith(f"kdeep: test accuracy {100 * metrics['test_accuracy']:.2f}% ")
    assert lines[1].endswith(f"transfer dir {out}")
    assert TF_LINE.search(result.stderr)  # --verbose: TensorFlow's own lines are back
