"""kdeep.data.Augment and kdeep.data.pipeline: what changes, what never changes, and reproducibility."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf  # a hard dependency: broken, it fails here rather than skipping the module

import kdeep.data
from kdeep.data import Augment, PRESETS
from kdeep.errors import ConfigError, DataError

SEED = tf.constant([3, 7], tf.int64)
ONE_TRANSFORM_EACH = {
    "rotation": Augment(rotation=20.0),
    "translation": Augment(translation=0.15),
    "zoom": Augment(zoom=0.2),
    "crop_padding": Augment(crop_padding=4),
    "horizontal_flip": Augment(horizontal_flip=True),
    "brightness": Augment(brightness=0.2),
    "contrast": Augment(contrast=0.5),
    "cutout": Augment(cutout=0.4),
    "erasing": Augment(erasing=1.0),
    "elastic": Augment(elastic=34.0),
}


@pytest.fixture(scope="module")
def batch(mnist):
    """32 real digits as float32 in [0, 1]."""
    return tf.constant(mnist[0][0][:32], tf.float32) / 255.0


def test_the_table_names_every_transform_field():
    fields = {f.name for f in dataclasses.fields(Augment)} - {"fill_mode", "elastic_sigma"}
    assert set(ONE_TRANSFORM_EACH) == fields


@pytest.mark.parametrize("name", sorted(ONE_TRANSFORM_EACH))
def test_each_transform_changes_images_and_keeps_shape_dtype_range(batch, name):
    out = ONE_TRANSFORM_EACH[name](batch, SEED)
    assert out.shape == batch.shape and out.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 1.0
    changed = np.any(np.abs(out.numpy() - batch.numpy()) > 1e-6, axis=(1, 2, 3))
    assert changed.mean() > 0.3  # a flip changes about half the images, every other transform nearly all


def test_nothing_changes_when_everything_is_off(batch):
    assert np.array_equal(Augment()(batch, SEED).numpy(), batch.numpy())
    assert np.array_equal(PRESETS["none"](batch, SEED).numpy(), batch.numpy())


def test_same_seed_same_batch_other_seed_other_batch(batch):
    policy = Augment(rotation=10, translation=0.1, zoom=0.1, crop_padding=2, horizontal_flip=True,
                     brightness=0.1, contrast=0.1, cutout=0.2)
    first, again = policy(batch, SEED).numpy(), policy(batch, SEED).numpy()
    other = policy(batch, tf.constant([3, 8], tf.int64)).numpy()
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_random_erasing_replaces_one_rectangle_of_2_to_40_percent_in_the_chosen_share_of_images():
    flat = tf.fill([2000, 28, 28, 1], 0.5)
    erased = np.abs(Augment(erasing=0.5)(flat, SEED).numpy() - 0.5) > 1e-6
    touched = erased.any(axis=(1, 2, 3))
    assert 0.45 < touched.mean() < 0.55
    for mask in erased[touched][:200, :, :, 0]:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        assert box.mean() > 0.9  # one rectangle (noise may hit 0.5 exactly on a few pixels)
        assert 0.015 <= box.size / mask.size <= 0.42


def test_elastic_distortion_is_a_smooth_displacement_of_the_size_alpha_and_sigma_give():
    """On a ramp (pixel value = column / 27) bilinear sampling is exact, so each output pixel gives its horizontal
    displacement. Uniform noise in [-1, 1] (variance 1/3) smoothed by a normalised Gaussian of sigma pixels has a
    standard deviation of about sqrt(1 / (3 * 4 pi sigma^2)): 0.041 at sigma 4, 1.4 pixels at alpha 34."""
    ramp = np.tile((np.arange(28, dtype=np.float32) / 27)[None, None, :, None], (256, 28, 1, 1))
    out = Augment(elastic=34.0, elastic_sigma=4.0)(tf.constant(ramp), SEED).numpy()[:, 6:22, 6:22, 0]
    shift = out * 27 - np.arange(6, 22)  # pixels, per image, row and column of the interior
    assert 1.0 < shift.std() < 1.8 and abs(shift.mean()) < 0.2
    assert np.abs(np.diff(shift, axis=2)).mean() < 0.25 * np.abs(shift).mean()  # smooth, not per-pixel noise
    assert np.corrcoef(shift[0].ravel(), shift[1].ravel())[0, 1] < 0.5  # a new field per image
    wider = Augment(elastic=34.0, elastic_sigma=8.0)(tf.constant(ramp), SEED).numpy()[:, 6:22, 6:22, 0]
    assert (wider * 27 - np.arange(6, 22)).std() < 0.6 * shift.std()  # more smoothing, smaller displacements
    with pytest.raises(ConfigError, match="elastic_sigma must be > 0 pixels"):
        Augment(elastic=34.0, elastic_sigma=0.0)
    with pytest.raises(ConfigError, match="Augment.elastic must be >= 0"):
        Augment(elastic=-1.0)


def test_crop_padding_is_a_whole_pixel_shift_with_zero_fill():
    source = np.arange(1, 65, dtype=np.float32).reshape(8, 8) / 64.0
    out = Augment(crop_padding=2)(tf.constant(np.tile(source[None, ..., None], (16, 1, 1, 1))), SEED).numpy()
    padded = np.pad(source, 2)
    shifts = {(a, b): np.roll(padded, (a, b), (0, 1))[2:-2, 2:-2] for a in range(-2, 3) for b in range(-2, 3)}
    found = [next((s for s, shifted in shifts.items() if np.allclose(image[..., 0], shifted)), None) for image in out]
    assert None not in found and len(set(found)) > 3


def _left_heavy_batch(n: int) -> tf.Tensor:
    """Images with ink only in the left third: a horizontal mirror would put it on the right."""
    images = np.zeros((n, 28, 28, 1), np.float32)
    images[:, 6:22, 3:9] = 1.0
    return tf.constant(images)


def test_digits_preset_never_flips_but_cifar_does():
    images = _left_heavy_batch(64)

    def right_heavy(policy, seed):
        out = policy(images, tf.constant([seed, 0], tf.int64)).numpy()
        return (out[:, :, 14:].sum(axis=(1, 2, 3)) > out[:, :, :14].sum(axis=(1, 2, 3))).sum()

    assert sum(right_heavy(PRESETS["digits"], s) for s in range(4)) == 0
    assert sum(right_heavy(PRESETS["cifar"], s) for s in range(4)) > 0


def test_bad_policies_and_presets_raise_config_error(mnist):
    with pytest.raises(ConfigError, match="rotation"):
        Augment(rotation=-1)
    with pytest.raises(ConfigError, match="digits, cifar"):
        kdeep.data.pipeline(mnist[1][0][:8], mnist[1][1][:8], 4, augment="mnist")


# ------------------------------------------------------------------------------------------------- pipeline


def test_pipeline_scales_keeps_labels_in_order_and_sets_options(mnist):
    x, y = mnist[1][0][:300], mnist[1][1][:300]
    dataset = kdeep.data.pipeline(x, y, 128, shuffle=False)
    batches = list(dataset.as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [128, 128, 44]
    images = np.concatenate([b[0] for b in batches])
    assert images.dtype == np.float32 and batches[0][1].dtype == np.int32
    assert np.allclose(images, x / 255.0) and np.array_equal(np.concatenate([b[1] for b in batches]), y)
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA


@pytest.mark.parametrize("augment", ["digits", "cifar", Augment(cutout=0.3, brightness=0.1)])
def test_augmented_pipeline_keeps_labels_shape_dtype_and_is_seeded(mnist, augment):
    x, y = mnist[0][0][:256], mnist[0][1][:256]
    run = lambda seed: list(kdeep.data.pipeline(x, y, 64, augment=augment, seed=seed).as_numpy_iterator())  # noqa: E731
    first, again, other = run(5), run(5), run(6)
    for (images, labels), (images2, labels2) in zip(first, again):
        assert images.shape == (64, 28, 28, 1) and images.dtype == np.float32 and labels.dtype == np.int32
        assert np.array_equal(images, images2) and np.array_equal(labels, labels2)
    assert not np.array_equal(first[0][0], other[0][0])
    assert sorted(np.concatenate([b[1] for b in first])) == sorted(y)  # labels are only reordered

    unshuffled = list(kdeep.data.pipeline(x, y, 64, augment=augment, shuffle=False, seed=1).as_numpy_iterator())
    assert np.array_equal(np.concatenate([b[1] for b in unshuffled]), y)
    assert not np.allclose(np.concatenate([b[0] for b in unshuffled]), x / 255.0)


def test_repeat_draws_new_augmentations_each_epoch(mnist):
    x, y = mnist[0][0][:64], mnist[0][1][:64]
    dataset = kdeep.data.pipeline(x, y, 64, augment="digits", shuffle=False, repeat=True, seed=1,
                                  drop_remainder=True)
    first, second = (images for images, _labels in dataset.take(2).as_numpy_iterator())
    assert dataset.element_spec[0].shape.as_list() == [64, 28, 28, 1]
    assert not np.array_equal(first, second)


def test_repeat_serves_whole_epochs_each_in_a_new_order(mnist):
    x, y = mnist[0][0][:100], np.arange(100)  # labels name the images
    batches = list(kdeep.data.pipeline(x, y, 32, seed=3, repeat=True).take(8).as_numpy_iterator())
    assert [len(labels) for _images, labels in batches] == [32, 32, 32, 4] * 2  # no batch spans two epochs
    first, second = (np.concatenate([labels for _images, labels in batches[i:i + 4]]) for i in (0, 4))
    assert sorted(first) == sorted(second) == list(range(100))
    assert not np.array_equal(first, second)


def test_pipeline_rejects_mismatched_arrays(mnist):
    with pytest.raises(DataError, match="labels"):
        kdeep.data.pipeline(mnist[1][0][:10], mnist[1][1][:9], 4)
