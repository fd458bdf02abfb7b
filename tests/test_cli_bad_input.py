"""Every bad input to every CLI command: one line on stderr naming the problem, exit code 2, no traceback, and no
file left behind. One table; each row is (id, argv, environment). Paths in argv name files the fixture makes."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from kdeep import io
from kdeep.cli import main
from kdeep.train.config import TrainConfig

TRAIN = ["train", "--model", "deepconvnet", "--dataset", "mnist", "--epochs", "1", "--limit", "200"]
RUN = "{tmp}/run"  # a run directory of TRAIN's config, holding what each case's files make it hold

CASES = [
    # kdeep (top level) and data
    ("no-command-known", ["frobnicate"], {}),
    ("data-info-unknown", ["data", "info", "imagenet"], {}),
    ("data-info-corrupt-file", ["data", "info", "mnist", "--no-download"], {"KDEEP_DATA_DIR": "{tmp}/baddata"}),
    ("data-info-missing", ["data", "info", "mnist", "--no-download"], {"KDEEP_DATA_DIR": "{tmp}/nodata"}),
    ("data-info-data-dir-missing", ["data", "info", "mnist", "--data-dir", "{tmp}/nothing"], {}),
    ("data-list-data-dir-missing", ["data", "list", "--data-dir", "{tmp}/nothing"], {}),
    # models, summary, why-deeper
    ("models-unknown-family", ["models", "--family", "transformer"], {}),
    ("summary-unknown-model", ["summary", "resnet7"], {}),
    ("summary-shape-rank", ["summary", "vgg11", "--input-shape", "28,28"], {}),
    ("summary-shape-zero", ["summary", "deepconvnet", "--input-shape", "0,28,1"], {}),
    ("summary-too-small", ["summary", "vgg11", "--input-shape", "8,8,1"], {}),
    ("why-deeper-even-kernel", ["why-deeper", "--kernels", "4"], {}),
    ("why-deeper-size-zero", ["why-deeper", "--size", "0,28"], {}),
    ("why-deeper-size-rank", ["why-deeper", "--size", "28"], {}),
    ("why-deeper-unknown-recipe", ["why-deeper", "--train", "--recipe", "slow", "--out", "{tmp}/new"], {}),
    ("why-deeper-epochs-zero", ["why-deeper", "--train", "--epochs", "0", "--out", "{tmp}/new"], {}),
    # train: names, ranges, combinations
    ("train-unknown-model", [*TRAIN[:2], "resnet7", *TRAIN[3:], "--out", "{tmp}/new"], {}),
    ("train-unknown-dataset", ["train", "--dataset", "imagenet", "--out", "{tmp}/new"], {}),
    ("train-unknown-recipe", [*TRAIN, "--recipe", "slow", "--out", "{tmp}/new"], {}),
    ("train-unknown-optimizer", [*TRAIN, "--optimizer", "lbfgs", "--out", "{tmp}/new"], {}),
    ("train-epochs-zero", [*TRAIN, "--epochs", "0", "--out", "{tmp}/new"], {}),
    ("train-batch-negative", [*TRAIN, "--batch-size", "-8", "--out", "{tmp}/new"], {}),
    ("train-lr-negative", [*TRAIN, "--lr", "-0.1", "--out", "{tmp}/new"], {}),
    ("train-momentum-negative", [*TRAIN, "--momentum", "-1", "--out", "{tmp}/new"], {}),
    ("train-patience-negative", [*TRAIN, "--patience", "-1", "--out", "{tmp}/new"], {}),
    ("train-label-smoothing", [*TRAIN, "--label-smoothing", "1.5", "--out", "{tmp}/new"], {}),
    ("train-ema-one", [*TRAIN, "--ema", "1", "--out", "{tmp}/new"], {}),
    ("train-mixup-negative", [*TRAIN, "--mixup", "-0.2", "--out", "{tmp}/new"], {}),
    ("train-teacher-missing", [*TRAIN, "--teacher", "{tmp}/nothing.keras", "--out", "{tmp}/new"], {}),
    ("train-teacher-other-dataset", [*TRAIN[:4], "fashion_mnist", *TRAIN[5:], "--teacher", "deepconvnet.mnist",
                                     "--out", "{tmp}/new"], {}),
    ("train-teacher-other-shape", [*TRAIN, "--teacher", "{tmp}/rgb.keras", "--out", "{tmp}/new"], {}),
    ("train-teacher-label-smoothing", [*TRAIN, "--teacher", "deepconvnet.mnist", "--label-smoothing", "0.1",
                                       "--out", "{tmp}/new"], {}),
    ("train-distill-alpha", [*TRAIN, "--teacher", "deepconvnet.mnist", "--distill-alpha", "1.5", "--out",
                             "{tmp}/new"], {}),
    ("train-distill-temperature", [*TRAIN, "--teacher", "deepconvnet.mnist", "--distill-temperature", "0", "--out",
                                   "{tmp}/new"], {}),
    ("train-val-split-negative", [*TRAIN, "--val-split", "-5", "--out", "{tmp}/new"], {}),
    ("train-val-split-everything", [*TRAIN, "--val-split", "200", "--out", "{tmp}/new"], {}),
    ("train-limit-zero", [*TRAIN, "--limit", "0", "--out", "{tmp}/new"], {}),
    ("train-best-without-val", [*TRAIN, "--select", "best", "--val-split", "0", "--out", "{tmp}/new"], {}),
    ("train-early-stop-negative", [*TRAIN, "--early-stopping", "-1", "--out", "{tmp}/new"], {}),
    ("train-weight-decay-negative", [*TRAIN, "--weight-decay", "-1", "--out", "{tmp}/new"], {}),
    ("train-ensemble-zero", [*TRAIN, "--ensemble", "0", "--out", "{tmp}/new"], {}),
    ("train-epochs-not-a-number", [*TRAIN, "--epochs", "ten", "--out", "{tmp}/new"], {}),
    ("train-out-is-a-file", [*TRAIN, "--out", "{tmp}/good.keras"], {}),
    ("train-other-config", [*TRAIN, "--lr", "0.5", "--out", RUN], {}),
    ("train-corrupt-config", [*TRAIN, "--out", "{tmp}/badconfig"], {}),
    ("train-corrupt-state", [*TRAIN, "--out", "{tmp}/badstate"], {}),
    ("train-corrupt-last", [*TRAIN, "--out", "{tmp}/badlast"], {}),
    ("train-folder-one-class", [*TRAIN[:4], "{tmp}/oneclass", *TRAIN[5:], "--out", "{tmp}/new"], {}),
    ("train-tf-config-not-json", [*TRAIN, "--strategy", "multi-worker", "--out", "{tmp}/new"], {"TF_CONFIG": "{bad"}),
    ("train-tf-config-no-task", [*TRAIN, "--strategy", "multi-worker", "--out", "{tmp}/new"],
     {"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}})}),
    ("train-tf-config-bad-index", [*TRAIN, "--strategy", "multi-worker", "--out", "{tmp}/new"],
     {"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}})}),
    # evaluate
    ("evaluate-missing", ["evaluate", "{tmp}/nothing.keras", "--dataset", "mnist"], {}),
    ("evaluate-not-a-model", ["evaluate", "{tmp}/notes.txt", "--dataset", "mnist"], {}),
    ("evaluate-truncated", ["evaluate", "{tmp}/truncated.keras", "--dataset", "mnist"], {}),
    ("evaluate-empty-run-dir", ["evaluate", "{tmp}/badstate", "--dataset", "mnist"], {}),
    ("evaluate-wrong-dataset", ["evaluate", "{tmp}/rgb.keras", "--dataset", "mnist", "--limit", "10"], {}),
    ("evaluate-limit-zero", ["evaluate", "{tmp}/good.keras", "--dataset", "mnist", "--limit", "0"], {}),
    ("evaluate-unknown-dataset", ["evaluate", "{tmp}/good.keras", "--dataset", "imagenet"], {}),
    ("evaluate-no-dataset", ["evaluate", "{tmp}/good.keras"], {}),
    ("evaluate-run-other-dataset", ["evaluate", RUN, "--dataset", "fashion_mnist"], {}),
    ("evaluate-preset-other-dataset", ["evaluate", "deepconvnet.mnist_book", "--dataset", "fashion_mnist"], {}),
    ("evaluate-unknown-preset", ["evaluate", "deepconvnet.mnist_bok"], {}),
    # presets
    ("presets-show-unknown", ["presets", "show", "resnet7.mnist"], {}),
    ("presets-publish-not-a-run", ["presets", "publish", "{tmp}/badstate", "--name", "deepconvnet.x"], {}),
    ("evaluate-folder-one-class", ["evaluate", "{tmp}/good.keras", "--dataset", "{tmp}/oneclass"], {}),
    ("evaluate-folder-no-images", ["evaluate", "{tmp}/good.keras", "--dataset", "{tmp}/noimages"], {}),
    ("evaluate-folder-corrupt-image", ["evaluate", "{tmp}/good.keras", "--dataset", "{tmp}/corruptimage"], {}),
    # finetune
    ("finetune-missing", ["finetune", "{tmp}/nothing", "--dataset", "fashion_mnist", "--out", "{tmp}/new"], {}),
    ("finetune-truncated", ["finetune", "{tmp}/truncated.keras", "--dataset", "fashion_mnist", "--out", "{tmp}/new"],
     {}),
    ("finetune-blocks-negative", ["finetune", "{tmp}/good.keras", "--dataset", "fashion_mnist", "--unfreeze-blocks",
                                  "-1", "--out", "{tmp}/new"], {}),
    ("finetune-lr-factor", ["finetune", "{tmp}/good.keras", "--dataset", "fashion_mnist", "--lr-factor", "0",
                            "--limit", "100", "--out", "{tmp}/new"], {}),
    ("finetune-classes-zero", ["finetune", "{tmp}/good.keras", "--dataset", "fashion_mnist", "--num-classes", "0",
                               "--out", "{tmp}/new"], {}),
    # quantize
    ("quantize-missing", ["quantize", "{tmp}/nothing.keras", "--dataset", "mnist", "--out", "{tmp}/new"], {}),
    ("quantize-truncated", ["quantize", "{tmp}/truncated.keras", "--dataset", "mnist", "--out", "{tmp}/new"], {}),
    ("quantize-tflite-given", ["quantize", "{tmp}/corrupt.tflite", "--dataset", "mnist", "--out", "{tmp}/new"], {}),
    ("quantize-unknown-variant", ["quantize", "{tmp}/good.keras", "--dataset", "mnist", "--variants", "int3",
                                  "--out", "{tmp}/new"], {}),
    ("quantize-wrong-dataset", ["quantize", "{tmp}/rgb.keras", "--dataset", "mnist", "--variants", "float32",
                                "--limit", "20", "--out", "{tmp}/new"], {}),
    ("quantize-limit-negative", ["quantize", "{tmp}/good.keras", "--dataset", "mnist", "--limit", "-3",
                                 "--out", "{tmp}/new"], {}),
    ("quantize-qat-epochs-negative", ["quantize", "{tmp}/good.keras", "--dataset", "mnist", "--qat-epochs", "-1",
                                      "--out", "{tmp}/new"], {}),
    ("quantize-run-other-dataset", ["quantize", RUN, "--dataset", "cifar10", "--out", "{tmp}/new"], {}),
    ("quantize-out-is-a-file", ["quantize", "{tmp}/good.keras", "--dataset", "mnist", "--out", "{tmp}/notes.txt"],
     {}),
    # export and predict
    ("export-unknown-variant", ["export", "{tmp}/good.keras", "--variants", "float32,int3", "--out", "{tmp}/new"], {}),
    ("export-integer-without-data", ["export", "{tmp}/good.keras", "--variants", "int8", "--out", "{tmp}/new"], {}),
    ("export-unknown-channels", ["export", "{tmp}/good.keras", "--channels", "bgr", "--out", "{tmp}/new"], {}),
    ("export-out-is-a-file", ["export", "{tmp}/good.keras", "--variants", "float32", "--out", "{tmp}/notes.txt"], {}),
    ("export-labels-do-not-match", ["export", "{tmp}/good.keras", "--variants", "int8", "--dataset",
                                    "{tmp}/corruptimage", "--out", "{tmp}/new"], {}),  # 2 classes, 10 outputs
    ("predict-tflite-not-an-image-model", ["predict", "{tmp}/dense.tflite", "{tmp}/digit.png"], {}),
    ("predict-corrupt-tflite", ["predict", "{tmp}/corrupt.tflite", "{tmp}/digit.png"], {}),
    ("predict-missing-image", ["predict", "{tmp}/good.keras", "{tmp}/nothing.png"], {}),
    ("predict-empty-folder", ["predict", "{tmp}/good.keras", "{tmp}/emptyfolder"], {}),
    ("predict-top-k-zero", ["predict", "{tmp}/good.keras", "{tmp}/digit.png", "--top-k", "0"], {}),
    ("predict-threads-zero", ["predict", "{tmp}/good.keras", "{tmp}/digit.png", "--threads", "0"], {}),
    # compare
    ("compare-unknown-model", ["compare", "--models", "deepconvnet,resnet7", "--out", "{tmp}/new"], {}),
    ("compare-width-flag", ["compare", "--models", "vgg11_bn", "--width", "0.5", "--out", "{tmp}/new"], {}),
    ("compare-out-is-a-file", ["compare", "--models", "deepconvnet", "--out", "{tmp}/notes.txt"], {}),
    ("compare-width-zero", ["compare", "--models", "vgg11_bn@0", "--out", "{tmp}/new"], {}),
    ("compare-width-too-big", ["compare", "--models", "resnet18@5", "--out", "{tmp}/new"], {}),
    ("compare-width-not-a-number", ["compare", "--models", "resnet18@wide", "--out", "{tmp}/new"], {}),
    ("compare-out-not-empty", ["compare", "--models", "deepconvnet", "--epochs", "1", "--out", "{tmp}/badstate"], {}),
    ("compare-other-settings", ["compare", "--models", "deepconvnet", "--epochs", "1", "--out", "{tmp}/cmpdir"], {}),
    ("compare-unknown-dataset", ["compare", "--models", "deepconvnet", "--dataset", "imagenet", "--out", "{tmp}/new"],
     {}),
    ("compare-folder-no-images", ["compare", "--models", "deepconvnet", "--dataset", "{tmp}/noimages",
                                  "--out", "{tmp}/new"], {}),
    # run and launch
    ("run-epochs-zero", ["run", "--epochs", "0", "--out", "{tmp}/new"], {}),
    ("run-limit-zero", ["run", "--limit", "0", "--out", "{tmp}/new"], {}),
    ("run-unknown-recipe", ["run", "--recipe", "slow", "--out", "{tmp}/new"], {}),
    ("run-out-is-a-file", ["run", "--epochs", "1", "--limit", "100", "--out", "{tmp}/notes.txt"], {}),
    ("launch-workers-zero", ["launch", "--workers", "0", "--", "train", "--out", "{tmp}/new"], {}),
    ("launch-one-process-port-base", ["launch", "--one-process", "--port-base", "23456", "--", "train", "--out",
                                      "{tmp}/new"], {}),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The files the cases name: good and broken models, run directories with broken parts, a corrupt dataset,
    image folders with one class, with no images, with a corrupt image, a .tflite whose input is no image."""
    import keras
    import tensorflow as tf
    from PIL import Image

    import kdeep.models

    tmp = tmp_path_factory.mktemp("bad_input")
    good = io.save_model(kdeep.models.build("deepconvnet"), tmp / "good.keras")
    io.save_model(kdeep.models.build("deepconvnet", input_shape=(32, 32, 3)), tmp / "rgb.keras")
    (tmp / "truncated.keras").write_bytes(good.read_bytes()[:2000])
    (tmp / "corrupt.tflite").write_bytes(b"TFL3" + os.urandom(500))
    (tmp / "notes.txt").write_text("not a model")
    dense = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)])
    (tmp / "dense.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(dense).convert())
    digit = Image.fromarray(np.zeros((28, 28), np.uint8))
    digit.save(tmp / "digit.png")
    (tmp / "emptyfolder").mkdir()
    for folder, classes in (("oneclass", ("a",)), ("noimages", ("a", "b")), ("corruptimage", ("a", "b"))):
        for name in classes:
            (tmp / folder / name).mkdir(parents=True)
            if folder != "noimages":
                digit.save(tmp / folder / name / "0.png")
    (tmp / "corruptimage" / "b" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    config = TrainConfig(model="deepconvnet", dataset="mnist", epochs=1, limit=200)
    for name, extra in (("run", {}), ("badconfig", {"config.json": "{not json"}),
                        ("badstate", {"state.json": "{\"history\": [1, "}),
                        ("badlast", {"last.keras": good.read_bytes()[:3000]})):
        folder = tmp / name
        folder.mkdir()
        (folder / "config.json").write_text(config.dumps())
        for file, content in extra.items():
            (folder / file).write_bytes(content.encode() if isinstance(content, str) else content)
    (tmp / "cmpdir").mkdir()
    (tmp / "cmpdir" / "compare.json").write_text(json.dumps({"dataset": "mnist", "models": ["resnet20"]}))
    bad_data = tmp / "baddata" / "mnist"
    bad_data.mkdir(parents=True)
    for file in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (bad_data / file).write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)  # a gzip header, then nothing
    return tmp


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, files, capsys, monkeypatch):
    _, argv, env = case
    monkeypatch.chdir(files)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value.replace("{tmp}", str(files)))
    monkeypatch.setenv("KDEEP_CACHE_DIR", str(files / "cache"))  # never find or fill the user's download cache
    monkeypatch.setenv("KDEEP_DATA_MIRRORS", "http://127.0.0.1:9/")  # a closed port: downloads fail at once
    before = _tree(files)
    code = main([arg.replace("{tmp}", str(files)) for arg in argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith("kdeep: error: "), captured.err
    assert "Traceback" not in captured.out + captured.err
    shutil.rmtree(files / "cache", ignore_errors=True)
    assert _tree(files) == before, "a refused command left files behind"


def test_the_table_has_at_least_40_cases_and_covers_every_command():
    from kdeep.cli import COMMAND_MODULES, build_parser

    commands = {argv[0] for _, argv, _ in CASES}
    parser = build_parser()
    registered = set(parser._subparsers._group_actions[0].choices)  # every command the CLI has
    assert len(CASES) >= 40 and len(COMMAND_MODULES) >= 5
    assert registered - commands == set(), f"commands without a bad-input case: {registered - commands}"
