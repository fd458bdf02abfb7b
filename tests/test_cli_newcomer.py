"""What a newcomer meets first: a light parser, help that names the defaults, a closed pipe that is no traceback,
a Python API as quiet as the CLI, and an API example that gives the same numbers twice."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kdeep.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    """This environment without TF_CPP_MIN_LOG_LEVEL and KDEEP_VERBOSE (what a user's shell has), plus `extra`."""
    base = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "KDEEP_VERBOSE")}
    return {**base, "PYTHONPATH": str(REPO), **extra}


def test_building_the_parser_imports_no_tensorflow_nor_keras():
    code = ("import sys; from kdeep.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'jax') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_closed_stdout_pipe_is_silent_exit_141():
    """`kdeep ... | head` where head has gone: no BrokenPipeError traceback, no 'Exception ignored' line. `main`
    handles it for every command (`data list` here: it starts without TensorFlow)."""
    process = subprocess.Popen([sys.executable, "-m", "kdeep", "data", "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=_env(), cwd=REPO)
    process.stdout.close()  # the reader is gone before kdeep writes a byte
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err.decode()) == (141, "")


def _command(*names: str):
    parser = build_parser()
    for name in names:
        parser = parser._subparsers._group_actions[0].choices[name]
    return parser


def _help(*names: str) -> str:
    return " ".join(_command(*names).format_help().split())


def test_training_flags_show_their_defaults_and_the_recipes():
    from kdeep.cli.train import CONFIG_FLAGS

    text = _help("train")
    assert "takes the --recipe's value, else TrainConfig's default" in text
    helps = {action.dest: action.help for action in _command("train")._actions}
    for name in CONFIG_FLAGS:
        assert "(default " in helps[name], f"--{name} shows no default: {helps[name]!r}"
    assert "epochs to train (default 20; from --recipe: fast 6, augmented 30, sgd_cosine 12)" in text
    assert "peak learning rate (default 0.001; from --recipe: fast 0.003, augmented 0.002, sgd_cosine 0.1)" in text


def test_compare_offers_no_width_flag_and_why_deeper_lists_its_recipes():
    assert "--width" not in _help("compare") and "NAME@WIDTH" in _help("compare")
    assert "--recipe {book,fast,augmented,sgd_cosine}" in _help("why-deeper")


def test_compare_width_from_python_is_refused_in_the_library(tmp_path):
    from kdeep.compare import compare
    from kdeep.errors import ConfigError
    from kdeep.train.config import TrainConfig

    with pytest.raises(ConfigError, match="NAME@WIDTH"):
        compare("resnet20", "mnist", tmp_path / "cmp", config=TrainConfig(width=0.5))
    assert not (tmp_path / "cmp").exists()


def test_why_deeper_sizes_are_checked_by_the_library():
    from kdeep import analysis
    from kdeep.errors import ModelError

    for size in ((0, 28), (28,), (28, -1)):
        with pytest.raises(ModelError, match="size must be"):
            analysis.why_deeper(64, 64, size=size)
    assert analysis.why_deeper(64, 64, (5,), size=(28, 28))[0].single_macs == 28 * 28 * 25 * 64 * 64


def test_data_dir_that_does_not_exist_is_named(tmp_path, capsys):
    assert main(["data", "list", "--data-dir", str(tmp_path / "typo")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"kdeep: error: data_dir {tmp_path / 'typo'} is not a folder: pass a folder holding the dataset's files (or "
        "mnist/ with them), or leave --data-dir out to use KDEEP_DATA_DIR and the cache")


# A short Python API session: a model built, converted to LiteRT and run (TensorFlow, the converter, LiteRT).
API = """
import tempfile, numpy as np, kdeep.models
from quantization import litert, quantize
model = kdeep.models.build("deepconvnet")
files = quantize(model, ["float32"], np.zeros((4, 28, 28, 1), np.float32), tempfile.mkdtemp())
print(litert.predict(files["float32"], np.zeros((2, 28, 28, 1), np.float32)).shape)
"""


@pytest.mark.slow
def test_the_python_api_prints_no_tensorflow_log_line():
    """Measured: with KDEEP_VERBOSE=1 (kdeep leaves TensorFlow's logging alone, as before this was fixed) the
    session prints TensorFlow's C++ lines; by default it prints none."""
    verbose = subprocess.run([sys.executable, "-c", API], capture_output=True, text=True, env=_env(KDEEP_VERBOSE="1"),
                             timeout=300)
    quiet = subprocess.run([sys.executable, "-c", API], capture_output=True, text=True, env=_env(), timeout=300)
    assert verbose.returncode == quiet.returncode == 0, verbose.stderr[-2000:] + quiet.stderr[-2000:]
    assert verbose.stdout == quiet.stdout == "(2, 10)\n"
    assert len(verbose.stderr.splitlines()) >= 15  # the lines a user used to see (41 for the README's session)
    assert quiet.stderr == ""


def _fit_twice(mnist, tmp_path):
    import kdeep.train

    (x, y), (x_test, y_test) = mnist
    arrays = (x[:256], y[:256]), (x_test[:128], y_test[:128])
    runs = []
    for index in range(2):
        config = kdeep.train.TrainConfig(epochs=1, batch_size=64, val_split=0, seed=3, out=str(tmp_path / f"r{index}"))
        runs.append(kdeep.train.fit("deepconvnet", arrays, config=config, verbose=0))
    return runs


@pytest.mark.slow
def test_fit_with_a_model_name_seeds_before_building_so_two_runs_agree(mnist, tmp_path):
    """The README's API example (`fit("deepconvnet", ...)`): the same config gives the same weights and accuracy."""
    first, second = _fit_twice(mnist, tmp_path)
    assert first.metrics["test_accuracy"] == second.metrics["test_accuracy"]
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    readme = (REPO / "README.md").read_text()
    example = readme[readme.index("## A short API example"):readme.index("## The command line")]
    assert 'kdeep.train.fit("deepconvnet", "mnist"' in example
