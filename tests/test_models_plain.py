"""The plain twins of the CIFAR ResNets (He et al. 2015, Fig. 6): the same nets, layer for layer, without shortcuts."""
import keras
import numpy as np
import pytest

import kdeep.models as models
from kdeep.contract import contract_of

SHORTCUT_LAYERS = ("_add", "_shortcut", "_shortcut_subsample", "_shortcut_expand", "_shortcut_pad")


def trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("depth", [20, pytest.param(56, marks=pytest.mark.slow)])
def test_plain_net_is_the_resnet_less_its_shortcuts(depth):
    plain, residual = models.build(f"plain{depth}"), models.build(f"resnet{depth}")
    assert trainable(plain) == trainable(residual) == models.info(f"plain{depth}").params
    assert plain.count_params() == residual.count_params()
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    kept = [layer.name for layer in residual.layers if not layer.name.endswith(SHORTCUT_LAYERS)]
    assert [layer.name for layer in plain.layers] == kept
    for layer in plain.layers:  # the same layer, with the same weights' shapes, under the same name
        assert [w.shape for w in layer.weights] == [w.shape for w in residual.get_layer(layer.name).weights]
    assert contract_of(plain).family == "plain" and contract_of(plain).blocks == contract_of(residual).blocks
    assert plain.get_layer("stage2_block1_out").output.shape[1:] == (16, 16, 32)


@pytest.mark.slow
def test_plain20_trains_on_fashion_mnist(fashion_mnist):
    """A few SGD steps on real images lower plain20's training loss (it is a trainable net, not just a shape)."""
    (x_train, y_train), _ = fashion_mnist
    x, y = x_train[:512].astype("float32") / 255.0, y_train[:512]
    keras.utils.set_random_seed(0)
    model = models.plain20(input_shape=(28, 28, 1), num_classes=10)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=64, epochs=3, verbose=0, shuffle=False).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < 0.75 * history[0], history
