"""Mixup (`kdeep.data.mixup`, `kdeep train --mixup A`): each mixed image is lam * its image + (1 - lam) * another
image of the batch, its label row the same blend, one lam ~ Beta(A, A) per batch; and a run trains with it."""
import json

import numpy as np
import pytest

from kdeep.train import TrainConfig, fit

BATCH = 32


def _batches(images, labels, alpha, seed, count):
    from kdeep.data import pipeline
    from kdeep.data.mixup import mixup

    plain = pipeline(images, labels, BATCH, shuffle=False, seed=0, repeat=True)
    mixed = mixup(plain, alpha, 10, seed=seed)
    return [(x.numpy(), y.numpy()) for (x, y), _ in zip(mixed, range(count))], \
        [x.numpy() for (x, _), _ in zip(plain, range(count))]


def _lam(targets, labels):
    """The batch's lam: the weight of each image's own label where its partner shows another digit (1 when none)."""
    own = targets[np.arange(len(labels)), labels]
    blended = own[own < 1 - 1e-6]
    return float(np.median(blended)) if blended.size else 1.0


def test_each_image_and_label_is_one_blend_of_two_images_of_its_batch(mnist):
    (x, y), _ = mnist
    images, labels = x[:BATCH], y[:BATCH]  # one batch, seen again on every pass
    mixed, plain = _batches(images, labels, alpha=1.0, seed=5, count=4)
    lams = []
    for (m, t), original in zip(mixed, plain):
        np.testing.assert_allclose(t.sum(1), 1.0, atol=1e-6)
        lam = _lam(t, labels)
        lams.append(lam)
        partners = []
        for i in range(BATCH):
            errors = np.abs(m[i] - (lam * original[i] + (1 - lam) * original)).max(axis=(1, 2, 3))
            partners.append(int(errors.argmin()))
            assert errors.min() < 1e-5, (i, errors.min())
            expected = lam * np.eye(10)[labels[i]] + (1 - lam) * np.eye(10)[labels[partners[-1]]]
            np.testing.assert_allclose(t[i], expected, atol=1e-5)
        assert sorted(partners) == list(range(BATCH))  # a permutation of the batch
    assert len(set(np.round(lams, 6))) == 4  # a new lam for every batch


def test_lam_follows_beta_and_the_seed_fixes_the_draws(mnist):
    (x, y), _ = mnist
    images, labels = x[:BATCH], y[:BATCH]
    for alpha in (0.2, 1.0):
        mixed, _ = _batches(images, labels, alpha=alpha, seed=1, count=400)
        lams = np.array([_lam(t, labels) for _, t in mixed])
        assert abs(np.mean(lams) - 0.5) < 0.05, alpha
        variance = float(np.mean((lams - 0.5) ** 2))  # Beta(a, a): E[(lam - 1/2)^2] = 1 / (4 (2a + 1))
        assert variance == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.15), alpha
    again, _ = _batches(images, labels, alpha=0.2, seed=1, count=3)
    other, _ = _batches(images, labels, alpha=0.2, seed=2, count=3)
    first, _ = _batches(images, labels, alpha=0.2, seed=1, count=3)
    np.testing.assert_array_equal(again[2][0], first[2][0])
    assert not np.array_equal(other[2][1], first[2][1])


@pytest.mark.slow
def test_a_run_trains_with_mixup_and_records_it(mnist, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    data = ((x_train[:3000], y_train[:3000]), (x_test[:1000], y_test[:1000]))
    config = TrainConfig.from_recipe("fast", epochs=2, mixup=0.2, val_split=500, out=str(tmp_path / "run"))
    run = fit("deepconvnet_bn", data, config=config, verbose=0)
    assert run.metrics["test_accuracy"] > 0.6 and 0 < run.history[-1]["accuracy"] < 1  # chance: 0.1
    assert run.history[-1]["val_accuracy"] > 0.6  # validation labels are not mixed
    saved = TrainConfig.from_dict(json.loads((run.dir / "config.json").read_text()))
    assert saved.mixup == 0.2 and "--mixup 0.2 " in saved.command()
