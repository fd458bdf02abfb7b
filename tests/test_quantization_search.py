"""The mixed-precision search's arithmetic, pinned on known lost/gained counts (a stub simulator whose predictions
each layer's weight width and each tensor's activation width change on fixed images), its latency limit, and the
held-out images it chooses and confirms on."""
import math

import numpy as np
import pytest

from kdeep.errors import QuantizationError
from kdeep.train.config import TrainConfig
from quantization.holdout import HeldOut, held_out
from quantization.latency import LayerLatency
from quantization.plan import plan
from quantization.search import drop_bound, mean_activation_bits, search, search_activations

N = 100  # images that choose: the first 90 right under float, the last 10 wrong
# (layer, width) -> (images that turn wrong, images that turn right) against float
EFFECTS = {("big", 4): ({0, 1}, {90}), ("big", 2): (set(range(10, 20)), set()), ("small", 4): ({5},)  + (set(),),
           ("small", 2): ({6, 7, 8}, set())}
# activation tensor -> values per image, and (tensor, 8 bits) -> (images that turn wrong, images that turn right)
TENSORS = {"<input>": 10, "t_big": 1000, "t_small": 100}
ACTIVATION_EFFECTS = {("t_big", 8): ({0, 1, 2, 3, 4}, set()), ("t_small", 8): ({5}, set())}


class StubSimulator:
    """Two dense layers, 'big' (1,000 weights) and 'small' (10); 8 bits changes nothing."""

    def __init__(self) -> None:
        import keras

        inputs = keras.Input((100,))
        hidden = keras.layers.Dense(10, name="big")(inputs)
        self.plan = plan(keras.Model(inputs, keras.layers.Dense(1, name="small")(hidden)))
        self.layers = self.plan.keys

    def uniform(self, bits):
        return {layer: bits for layer in self.layers}

    def parameters(self, layer):
        return {"big": 1000, "small": 10}[layer]

    activation_tensors = list(TENSORS)

    def activation_size(self, tensor):
        return TENSORS[tensor]

    def activation_widths(self, bits):
        return {tensor: bits for tensor in TENSORS}

    def input_tensor(self, key):
        return "<input>"

    def predict(self, x, bits, activations=None):
        right = set(range(90))
        changes = [EFFECTS.get(move, (set(), set())) for move in bits.items()]
        changes += [ACTIVATION_EFFECTS.get(move, (set(), set())) for move in (activations or {}).items()]
        for lost, gained in changes:
            right = (right - lost) | gained
        return np.eye(2)[[0 if i in right else 1 for i in range(N)]]


@pytest.fixture(scope="module")
def stub():
    return StubSimulator()


Y = np.zeros(N, int)


def test_drop_bound_is_the_paired_drop_plus_z_standard_errors():
    assert drop_bound(30, 10, 1000, 1.0) == pytest.approx(100 * (20 + math.sqrt(40)) / 1000)
    assert drop_bound(3, 0, 100, 0.0) == pytest.approx(3.0)
    assert drop_bound(0, 0, 100) == 0.0


def test_search_keeps_exactly_the_moves_whose_bound_fits(stub):
    mix = search(stub, np.zeros((N, 1)), Y, max_drop=3.0, chose_on="images 0-99")
    # big -> 4 (lost 2, gained 1: bound 1 + sqrt 3 = 2.73 <= 3) is kept; big -> 2 (lost 10: 13.2) is refused;
    # small -> 4 on top of big -> 4 (lost 3, gained 1: 2 + 2 = 4.0 > 3) is refused
    assert mix.bits == {"big": 4, "small": 8}
    assert (mix.lost, mix.gained, mix.n) == (2, 1, N)
    assert mix.drop_bound_pp == pytest.approx(1 + math.sqrt(3))
    assert mix.drop_pp == pytest.approx(1.0) and mix.float_accuracy == pytest.approx(0.9)
    assert [(t["layer"], t["bits"], t["accepted"]) for t in mix.tried] == [("big", 4, True), ("big", 2, False),
                                                                           ("small", 4, False)]
    assert mix.chose_on == "images 0-99" and mix.kernel_bytes == 1000 * 0.5 + 10 * 1


def test_a_bound_equal_to_the_budget_fits(stub):
    mix = search(stub, np.zeros((N, 1)), Y, max_drop=4.0)
    assert mix.bits == {"big": 4, "small": 4} and mix.drop_bound_pp == pytest.approx(4.0)
    assert (mix.lost, mix.gained) == (3, 1)


def test_no_dense_layer_goes_below_2_bits_and_none_below_the_plan(stub):
    mix = search(stub, np.zeros((N, 1)), Y, max_drop=50.0)
    assert mix.bits == {"big": 2, "small": 2}  # 2 is the narrowest width the plan allows a FULLY_CONNECTED
    assert all(t["bits"] in (4, 2) for t in mix.tried)


def test_latency_limit_refuses_a_slower_move_without_measuring_it(stub):
    table = LayerLatency({"big": {None: 10.0, 8: 5.0, 4: 20.0, 2: 1.0}, "small": {None: 1.0, 8: 1.0, 4: 1.0, 2: 1.0}})
    mix = search(stub, np.zeros((N, 1)), Y, max_drop=4.0, latency=table, latency_slack=0.0)
    assert mix.bits == {"big": 8, "small": 4}  # big at 4 bits would take 20 us where 8 bits take 5
    assert mix.latency_budget_us == 6.0 and mix.latency_us == 6.0
    refused = mix.tried[0]
    assert refused["layer"] == "big" and refused["accuracy"] is None and refused["latency_us"] == 21.0
    loose = search(stub, np.zeros((N, 1)), Y, max_drop=4.0, latency=table, latency_slack=3.0)
    assert loose.bits["big"] == 4


def test_a_start_that_does_not_fit_falls_back_to_float(stub):
    mix = search(stub, np.zeros((N, 1)), Y, max_drop=2.0, start={"big": 2})
    assert mix.tried[0]["layer"] == "big" and mix.tried[0]["bits"] == 8  # it started float, and steps down again


def test_activation_search_lowers_to_8_bits_exactly_where_the_bound_fits(stub):
    mix = search_activations(stub, np.zeros((N, 1)), Y, max_drop=3.0, chose_on="images 0-99")
    # from every tensor at 16 bits: <input> (10 values, no loss) first, t_big (lost 5: 5 + sqrt 5 = 7.24 > 3)
    # refused, t_small (lost 1: 1 + 1 = 2.0) kept; the weights stay at 8 bits
    assert mix.activation_bits == {"<input>": 8, "t_big": 16, "t_small": 8} and mix.bits == {"big": 8, "small": 8}
    assert [(t["kind"], t["layer"], t["bits"], t["accepted"]) for t in mix.tried] == [
        ("activations", "<input>", 8, True), ("activations", "t_big", 8, False), ("activations", "t_small", 8, True)]
    assert (mix.lost, mix.gained) == (1, 0) and mix.drop_bound_pp == pytest.approx(2.0)
    assert mix.search == "activations" and mix.activation_bytes == 10 * 1 + 1000 * 2 + 100 * 1
    assert mean_activation_bits(stub, mix.activation_bits) == pytest.approx((10 * 8 + 1000 * 16 + 100 * 8) / 1110)


def test_both_lowers_static_weights_on_what_the_activations_left(stub):
    mix = search_activations(stub, np.zeros((N, 1)), Y, max_drop=3.0, weights=True)
    # big -> 4 on top (lost 0, 1 and 5, gained 90: 2 + 2 = 4.0 > 3) is refused; small -> 4 (loses image 5 again:
    # bound 2.0) is kept, and goes no lower: static files take 4 or 8 bits
    assert mix.activation_bits == {"<input>": 8, "t_big": 16, "t_small": 8} and mix.bits == {"big": 8, "small": 4}
    weights = [(t["layer"], t["bits"], t["accepted"]) for t in mix.tried if t["kind"] == "weights"]
    assert weights == [("big", 4, False), ("small", 4, True)] and mix.search == "both"
    assert mix.drop_bound_pp == pytest.approx(2.0)


def test_held_out_images_are_the_runs_validation_split():
    from kdeep.data.splits import run_splits

    x, y = np.arange(6000).reshape(-1, 1), np.arange(6000) % 10
    arrays = ((x, y), (x[:10], y[:10]))
    config = TrainConfig(val_split=1000, limit=5000, dataset="mnist")
    held = held_out(config, arrays, dataset_name="mnist")
    x_val, y_val = run_splits(arrays, val_split=1000, limit=5000).validation  # the trainer's split
    assert np.array_equal(held.x, x[4000:5000]) and np.array_equal(held.x, x_val) and np.array_equal(held.y, y_val)
    assert held.start == 4000
    choose, confirm = held.halves()
    assert np.array_equal(choose.x, x_val[:500]) and np.array_equal(confirm.x, x_val[500:])
    assert choose.source.startswith("images 4,000-4,499 of the 1,000 training images mnist held out")
    assert confirm.source.startswith("images 4,500-4,999 of the 1,000 training images mnist held out")


def test_a_presets_card_says_which_images_it_held_out(fashion_mnist):
    """`kdeep quantize resnet20.fashion_mnist --max-drop` chooses on the 5,000 images the preset's run held out: its
    card keeps the run's config.json."""
    from quantization.holdout import run_config

    config = run_config("resnet20.fashion_mnist")
    assert (config.val_split, config.dataset, config.limit) == (5000, "fashion_mnist", None)
    held = held_out(config, fashion_mnist, dataset_name="fashion_mnist", where="resnet20.fashion_mnist")
    assert held.start == 55000 and np.array_equal(held.x, fashion_mnist[0][0][55000:])


@pytest.mark.parametrize("config, message", [
    (TrainConfig.from_recipe("fast"), r"trained on every training image \(config.json val_split=0 \(recipe fast\)\); "
                                      "retrain with --val-split 5000"),
    (None, "no config.json beside the model says which those are; pass a run directory trained with --val-split N"),
    (TrainConfig(dataset="fashion_mnist"), "was trained on fashion_mnist, not mnist.*pass --dataset fashion_mnist"),
])
def test_max_drop_without_held_out_images_is_refused_in_one_line(config, message):
    arrays = ((np.zeros((60000, 1)), np.zeros(60000, int)), (np.zeros((10, 1)), np.zeros(10, int)))
    with pytest.raises(QuantizationError, match=message) as error:
        held_out(config, arrays, dataset_name="mnist")
    assert "\n" not in str(error.value)


def test_too_few_held_out_images_cannot_be_halved():
    with pytest.raises(QuantizationError, match="cannot be split into a half that chooses and one that confirms"):
        HeldOut(np.zeros((1, 1)), np.zeros(1, int), "one image").halves()
