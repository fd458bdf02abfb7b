"""MirroredStrategy over 2 logical CPU devices matches the single-device run on the same global batch and seed, turns
XLA off, and distils from a teacher."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

GLOBAL_BATCH = 64


def compare(out: Path) -> None:
    """In a fresh process (logical devices must be set before TF starts): trains the same model 3 ways."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    import kdeep.data
    import kdeep.train
    from kdeep.distribute import fit, strategy_from_name

    (x, y), (x_test, y_test) = kdeep.data.load("mnist")
    results = {}
    for label, name, trainer in (("one", "one", "keras"), ("mirrored", "mirrored", "keras"),
                                 ("mirrored_loop", "mirrored", "kdeep")):
        strategy = strategy_from_name(name)
        # unshuffled: Keras' fit under an explicit strategy draws one batch to build the model, which moves a
        # reshuffling dataset to its next order; the steps themselves are what is compared here
        train = kdeep.data.pipeline(x[:1024], y[:1024], GLOBAL_BATCH, shuffle=False)
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([
                keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.MaxPooling2D(4),
                keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax"),
            ])
            # plain SGD: an update linear in the gradient, so summation-order noise stays at float32 level
            # (Adam's g / sqrt(v) turns that noise on near-zero gradients into lr-sized steps)
            model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = (model.fit(train, epochs=2, verbose=0) if trainer == "keras" else fit(model, train, epochs=2, verbose=0))
        results[label] = {"replicas": strategy.num_replicas_in_sync, "loss": history.history["loss"],
                          "weights": [w.tolist() for w in model.get_weights()]}
    # XLA has no collectives for CPU replicas: the trainer must turn jit_compile off there, not crash
    config = kdeep.train.TrainConfig(strategy="mirrored", jit_compile=True, epochs=1, limit=256, val_split=0,
                                     batch_size=GLOBAL_BATCH, out=str(out.parent / "xla_run"))
    run = kdeep.train.fit("deepconvnet", "mnist", config=config, verbose=0)
    results["xla_mirrored"] = {"jit_compile": bool(run.model.jit_compile), "epochs": run.metrics["epochs_completed"]}
    # distillation under the strategy: the teacher (a preset, built outside its scope) runs in the input pipeline of
    # both replicas; a student given only wrong labels (shifted by one) still learns the teacher's classes (alpha 0)
    wrong = ((x[:2048], (y[:2048] + 1) % 10), (x_test[:1000], y_test[:1000]))
    config = kdeep.train.TrainConfig(strategy="mirrored", teacher="deepconvnet.mnist_book", distill_alpha=0.0, epochs=2,
                                     lr=3e-3, val_split=0, batch_size=GLOBAL_BATCH, out=str(out.parent / "kd"))
    run = kdeep.train.fit("deepconvnet_bn", wrong, config=config, verbose=0)
    results["distilled_mirrored"] = {"replicas": run.model.distribute_strategy.num_replicas_in_sync,
                                     "test_accuracy": run.metrics["test_accuracy"],
                                     "train_accuracy": run.history[-1]["accuracy"]}
    out.write_text(json.dumps(results))


@pytest.mark.slow
def test_mirrored_over_two_cpus_matches_single_device(tmp_path):
    out = tmp_path / "results.json"
    subprocess.run([sys.executable, __file__, str(out)], check=True, timeout=300)
    results = json.loads(out.read_text())
    one, mirrored, loop = results["one"], results["mirrored"], results["mirrored_loop"]
    assert (one["replicas"], mirrored["replicas"]) == (1, 2)
    assert mirrored["loss"][1] < mirrored["loss"][0]
    np.testing.assert_allclose(mirrored["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(loop["loss"], mirrored["loss"], rtol=1e-6)
    for single, mirror, ours in zip(one["weights"], mirrored["weights"], loop["weights"]):
        np.testing.assert_allclose(mirror, single, atol=1e-5)  # only the summation order differs
        np.testing.assert_allclose(ours, mirror, atol=1e-6)  # kdeep's loop runs the same Keras step as fit
    assert results["xla_mirrored"] == {"jit_compile": False, "epochs": 1}
    distilled = results["distilled_mirrored"]  # true test labels; the run's own accuracy is against the wrong ones
    assert distilled["replicas"] == 2, distilled
    assert distilled["test_accuracy"] > 0.7 and distilled["train_accuracy"] < 0.1, distilled


if __name__ == "__main__":
    compare(Path(sys.argv[1]))
