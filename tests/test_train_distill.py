"""Knowledge distillation (`kdeep train --teacher`): the packed targets, the loss against its formula, and a student
that learns the teacher's function on real MNIST when the labels it is given are all wrong."""
import json

import numpy as np
import pytest

from kdeep.data import scale_pixels
from kdeep.models import presets
from kdeep.train import TrainConfig, distill, fit

TEACHER = "deepconvnet.mnist_book"  # a shipped preset (99.30 %): no training needed for the teacher


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_soft_targets_are_the_one_hot_label_then_the_teachers_softened_softmax(mnist):
    import tensorflow as tf

    (x, y), _ = mnist
    images, labels = scale_pixels(x[:64]), y[:64]
    teacher = distill.teacher_model([TEACHER], (28, 28, 1), 10)
    batch = tf.data.Dataset.from_tensor_slices((images, labels)).batch(64)
    _, targets = next(iter(distill.soft_targets(batch, teacher, 10, temperature=4.0)))
    targets = targets.numpy()
    np.testing.assert_array_equal(targets[:, :10], np.eye(10)[labels])
    probabilities = presets.load(TEACHER).predict(images, verbose=0)
    expected = _softmax(np.log(np.clip(probabilities, 1e-12, 1.0)) / 4.0)
    np.testing.assert_allclose(targets[:, 10:], expected, atol=1e-5)
    mixed = np.full((64, 10), 0.1, np.float32)  # labels that are distributions already (mixup's) stay as they are
    batch = tf.data.Dataset.from_tensor_slices((images, mixed)).batch(64)
    _, packed = next(iter(distill.soft_targets(batch, teacher, 10, temperature=4.0)))
    np.testing.assert_array_equal(packed.numpy()[:, :10], mixed)
    np.testing.assert_allclose(packed.numpy()[:, 10:], expected, atol=1e-5)
    assert np.mean(targets[:, 10:].argmax(1) == labels) > 0.95
    assert np.all(targets[:, 10:].max(1) < probabilities.max(1))  # softened: T > 1 lowers every top probability


@pytest.mark.parametrize("output", ["probabilities", "logits"])
def test_the_loss_is_alpha_hard_plus_t_squared_soft_cross_entropy(output):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(8, 10)).astype(np.float32) * 3
    labels, soft = rng.integers(0, 10, 8), _softmax(rng.normal(size=(8, 10)) / 2.0)
    targets = np.concatenate([np.eye(10)[labels], soft], axis=1).astype(np.float32)
    outputs = _softmax(z).astype(np.float32) if output == "probabilities" else z
    alpha, t = 0.3, 2.0
    got = distill.loss(alpha, t, 10, output)(targets, outputs).numpy()
    log_p, log_q = np.log(_softmax(z)), np.log(_softmax(z / t))
    expected = alpha * -log_p[np.arange(8), labels] + (1 - alpha) * t * t * -(soft * log_q).sum(1)
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    accuracy = distill.accuracy(10)(targets, outputs).numpy()
    np.testing.assert_array_equal(accuracy, (z.argmax(1) == labels).astype(np.float32))


@pytest.mark.slow
def test_a_student_given_only_wrong_labels_learns_the_teacher_with_alpha_0(mnist, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    wrong = (y_train[:3000] + 1) % 10  # every training label is wrong: only the teacher can teach the digits
    data = ((x_train[:3000], wrong), (x_test[:1000], y_test[:1000]))
    config = TrainConfig.from_recipe("fast", epochs=2, teacher=TEACHER, distill_alpha=0.0, val_split=500,
                                     out=str(tmp_path / "student"))
    run = fit("deepconvnet_bn", data, config=config, verbose=0)
    assert run.metrics["test_accuracy"] > 0.7, run.metrics  # against the true test labels (chance: 0.1)
    assert run.history[-1]["accuracy"] < 0.05 and run.history[-1]["val_accuracy"] < 0.05  # against the wrong ones
    assert "teacher" not in {layer.name for layer in run.model.layers}  # the student is saved alone
    saved = TrainConfig.from_dict(json.loads((run.dir / "config.json").read_text()))
    assert saved.teacher == TEACHER and f"--teacher {TEACHER} --distill-alpha 0.0 " in saved.command()
