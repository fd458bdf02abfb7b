"""The "why deeper" pair: same receptive field, about the same parameters, trained side by side by the CLI."""
import pytest

from kdeep import analysis
from kdeep.cli import main
from kdeep.errors import ModelError
from kdeep.models.why_deeper import matched_pair


def _field(model):
    return max(row.receptive_field for row in analysis.summarize(model).rows if row.receptive_field)


@pytest.mark.parametrize(("kernel", "stack"), [(5, 2), (7, 3), (9, 4)])
def test_pair_has_the_same_receptive_field_and_parameters_within_2_percent(kernel, stack):
    shallow, deep = matched_pair((28, 28, 1), 10, kernel=kernel, channels=32)
    convs = [layer for layer in deep.layers if layer.name.endswith(tuple(f"_conv{c}" for c in range(1, 9)))]
    assert len(convs) == 2 * stack and all(layer.kernel_size == (3, 3) for layer in convs)
    assert shallow.get_layer("stage1_conv1").kernel_size == (kernel, kernel)
    assert _field(shallow) == _field(deep)
    assert abs(deep.count_params() - shallow.count_params()) <= 0.02 * shallow.count_params()


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(kernel=3), "kernel must be odd and >= 5"), (dict(kernel=6), "kernel must be odd and >= 5"),
    (dict(channels=0), "channels and stages must be >= 1"), (dict(stages=6), "28x28 is too small"),
])
def test_bad_pairs_are_model_errors(kwargs, message):
    with pytest.raises(ModelError, match=message):
        matched_pair((28, 28, 1), 10, **kwargs)


def test_cli_bad_kernel_is_one_line_exit_2(tmp_path, capsys):
    assert main(["why-deeper", "--train", "--kernels", "5,4", "--out", str(tmp_path / "wd")]) == 2
    assert "kernel must be odd and >= 5" in capsys.readouterr().err
    assert not (tmp_path / "wd").exists()


@pytest.mark.slow
def test_cli_trains_both_nets_on_fashion_mnist_and_reports_them(tmp_path, capsys):
    out = tmp_path / "wd"
    code = main(["why-deeper", "--train", "--kernels", "5", "--channels", "16", "--epochs", "3", "--limit", "4000",
                 "--out", str(out)])
    table = capsys.readouterr().out
    assert code == 0
    shallow = next(line for line in table.splitlines() if line.startswith("shallow_k5")).split()
    deep = next(line for line in table.splitlines() if line.startswith("deep_3x3x2")).split()
    assert shallow[3] == deep[3] == "16x16" and shallow[1] == "2" and deep[1] == "4"
    for net in ("shallow_k5", "deep_3x3x2"):
        assert (out / net / "metrics.json").is_file()
    # better than chance (10%) after 3 epochs of 4,000 images (96 steps; 1 epoch of 600 images, 5 steps, sat at
    # chance in CI, and 2 epochs of 2,000 gave 24-35% depending on the tests run before)
    assert all(float(row[-1].rstrip("%")) > 20 for row in (shallow, deep))
