"""Augmentation policies that transform whole float32 batches inside the tf.data graph, seeded and stateless."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import tensorflow as tf

from kdeep.data.presets import AUGMENT_PRESETS
from kdeep.errors import ConfigError

FILL_MODES = ("constant", "nearest", "reflect", "wrap")


@dataclass(frozen=True)
class Augment:
    """An augmentation policy; every transform is off by default and drawn independently per image.

    Attributes:
        rotation: maximum rotation in degrees (uniform in [-rotation, rotation]).
        translation: maximum shift as a fraction of the height/width.
        zoom: maximum zoom as a fraction (scale uniform in [1 - zoom, 1 + zoom]).
        crop_padding: pad by this many pixels, then crop back at a random offset (a whole-pixel shift).
        horizontal_flip: mirror left-right with probability 1/2.
        brightness: maximum brightness change added to every pixel (uniform in [-brightness, brightness]).
        contrast: maximum contrast change (factor uniform in [1 - contrast, 1 + contrast] about the image mean).
        cutout: side of one erased square (set to 0) as a fraction of the image side, at a random centre.
        erasing: probability of random erasing (Zhong et al. 2017): one rectangle per image, of 2-40% of the
            image's area and aspect ratio in [0.3, 3.3], filled with uniform noise.
        elastic: elastic distortion (Simard et al. 2003), its scale alpha in pixels: every pixel samples the image
            at a displacement drawn uniform in [-1, 1] per pixel and axis, smoothed by a Gaussian of
            `elastic_sigma` pixels, times alpha (bilinear, zero outside). Simard's MNIST setting: 34 with sigma 4.
        elastic_sigma: the smoothing Gaussian's standard deviation in pixels.
        fill_mode: how the geometric transforms fill pixels from outside the image (see FILL_MODES).
    """

    rotation: float = 0.0
    translation: float = 0.0
    zoom: float = 0.0
    crop_padding: int = 0
    horizontal_flip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    cutout: float = 0.0
    erasing: float = 0.0
    elastic: float = 0.0
    elastic_sigma: float = 4.0
    fill_mode: str = "constant"

    def __post_init__(self) -> None:
        for field in ("rotation", "translation", "zoom", "crop_padding", "brightness", "contrast", "cutout", "erasing",
                      "elastic"):
            if getattr(self, field) < 0:
                raise ConfigError(f"Augment.{field} must be >= 0, got {getattr(self, field)}")
        if not self.elastic_sigma > 0:
            raise ConfigError(f"Augment.elastic_sigma must be > 0 pixels, got {self.elastic_sigma}")
        if self.zoom >= 1 or self.cutout > 1 or self.erasing > 1:
            raise ConfigError(f"Augment.zoom must be < 1, Augment.cutout and Augment.erasing <= 1, got {self.zoom}, "
                              f"{self.cutout}, {self.erasing}")
        if self.fill_mode not in FILL_MODES:
            raise ConfigError(f"Augment.fill_mode {self.fill_mode!r}: choose one of {', '.join(FILL_MODES)}")

    @property
    def is_identity(self) -> bool:
        """True when no transform is on."""
        return self == dataclasses.replace(Augment(), fill_mode=self.fill_mode, elastic_sigma=self.elastic_sigma)

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Augments a batch.

        Args:
            images: float32 (N, H, W, C) in [0, 1].
            seed: int shape-(2,) stateless seed; the same seed and batch give the same result.

        Returns:
            The augmented batch, same shape and dtype, values in [0, 1].
        """
        geometry, flip, brightness, contrast, cutout, erasing = tf.unstack(
            tf.random.experimental.stateless_split(seed, 6))
        if self.rotation or self.translation or self.zoom or self.crop_padding:
            images = _affine(images, self, geometry)
        if self.elastic:  # its own seed, folded in: the other transforms draw what they drew before it existed
            elastic = tf.random.experimental.stateless_fold_in(seed, 6)
            images = _elastic(images, self.elastic, self.elastic_sigma, elastic)
        if self.horizontal_flip:
            mirror = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], flip) < 0.5
            images = tf.where(mirror, tf.reverse(images, axis=[2]), images)
        if self.brightness:
            images = images + _uniform(images, brightness, self.brightness)
        if self.contrast:
            mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
            images = (images - mean) * (1.0 + _uniform(images, contrast, self.contrast)) + mean
        if self.cutout:
            images = _cutout(images, self.cutout, cutout)
        if self.erasing:
            images = _erase(images, self.erasing, erasing)
        return images if self.is_identity else tf.clip_by_value(images, 0.0, 1.0)


PRESETS: dict[str, Augment] = {name: Augment(**settings) for name, settings in AUGMENT_PRESETS.items()}


def resolve(augment: str | Augment | None) -> Augment | None:
    """Turns a preset name, a policy or None into a policy (None when nothing would change)."""
    if isinstance(augment, str):
        if augment not in PRESETS:
            raise ConfigError(f"unknown augmentation preset {augment!r}: choose one of {', '.join(PRESETS)}")
        augment = PRESETS[augment]
    if augment is not None and not isinstance(augment, Augment):
        raise ConfigError(f"augment must be None, a preset name or a kdeep.data.Augment, got {type(augment)}")
    return None if augment is None or augment.is_identity else augment


def _uniform(images: tf.Tensor, seed: tf.Tensor, limit: float) -> tf.Tensor:
    """One value per image in [-limit, limit], shaped to broadcast over (N, H, W, C)."""
    return tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed, -limit, limit)


def _affine(images: tf.Tensor, policy: Augment, seed: tf.Tensor) -> tf.Tensor:
    """Rotation, zoom, shift and pad-crop as ONE projective transform per image (output -> input coordinates)."""
    n = tf.shape(images)[0]
    height, width = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2], tf.float32)
    s_angle, s_zoom, s_shift, s_crop = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    limit = math.radians(policy.rotation)
    angle = tf.random.stateless_uniform([n], s_angle, -limit, limit)
    scale = tf.random.stateless_uniform([n], s_zoom, 1.0 - policy.zoom, 1.0 + policy.zoom)
    shift = tf.random.stateless_uniform([n, 2], s_shift, -policy.translation, policy.translation)
    shift *= tf.stack([width, height])
    if policy.crop_padding:
        pad = policy.crop_padding
        shift += tf.cast(tf.random.stateless_uniform([n, 2], s_crop, -pad, pad + 1, tf.int32), tf.float32)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    a0, a1 = tf.cos(angle) / scale, tf.sin(angle) / scale
    b0, b1 = -a1, a0
    a2 = cx - a0 * cx - a1 * cy - shift[:, 0]
    b2 = cy - b0 * cx - b1 * cy - shift[:, 1]
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode=policy.fill_mode.upper())


def _elastic(images: tf.Tensor, alpha: float, sigma: float, seed: tf.Tensor) -> tf.Tensor:
    """Elastic distortion: a smooth random displacement field (uniform noise, Gaussian-smoothed, times `alpha`),
    each output pixel read bilinearly from the input at its displaced position (zero outside the image)."""
    n, height, width, channels = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2], tf.shape(images)[3]
    radius = max(1, math.ceil(3 * sigma))
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    taps = tf.constant([t / sum(taps) for t in taps], tf.float32)
    field = tf.random.stateless_uniform([n, height, width, 2], seed, -1.0, 1.0)
    for kernel in (tf.reshape(taps, [-1, 1, 1, 1]), tf.reshape(taps, [1, -1, 1, 1])):  # separable: rows, columns
        field = tf.nn.depthwise_conv2d(field, tf.tile(kernel, [1, 1, 2, 1]), [1, 1, 1, 1], "SAME")
    rows, cols = tf.meshgrid(tf.range(height), tf.range(width), indexing="ij")
    y = tf.cast(rows, tf.float32)[None] + alpha * field[..., 0]
    x = tf.cast(cols, tf.float32)[None] + alpha * field[..., 1]
    y0, x0 = tf.floor(y), tf.floor(x)
    last_row, last_col = tf.cast(height - 1, tf.float32), tf.cast(width - 1, tf.float32)
    flat = tf.reshape(images, [n, height * width, channels])
    result = tf.zeros_like(images)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):  # the four neighbours, bilinear weights
        yy, xx = y0 + dy, x0 + dx
        weight = (1 - tf.abs(y - yy)) * (1 - tf.abs(x - xx))
        inside = (yy >= 0) & (yy <= last_row) & (xx >= 0) & (xx <= last_col)
        index = (tf.cast(tf.clip_by_value(yy, 0, last_row), tf.int32) * width
                 + tf.cast(tf.clip_by_value(xx, 0, last_col), tf.int32))
        values = tf.reshape(tf.gather(flat, tf.reshape(index, [n, -1]), batch_dims=1), tf.shape(images))
        result += tf.where(inside[..., None], weight[..., None] * values, 0.0)
    return result


def _cutout(images: tf.Tensor, size: float, seed: tf.Tensor) -> tf.Tensor:
    """Sets one square per image to 0; its centre is uniform over the image, so it may be clipped at a border."""
    n, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    side = tf.cast(tf.round(size * tf.cast(tf.minimum(height, width), tf.float32)), tf.int32)
    centre = tf.random.stateless_uniform([n, 2], seed, 0, tf.int32.max, tf.int32) % tf.stack([height, width])
    top, left = centre[:, 0:1] - side // 2, centre[:, 1:2] - side // 2
    rows, cols = tf.range(height)[None, :], tf.range(width)[None, :]
    inside_rows = (rows >= top) & (rows < top + side)
    inside_cols = (cols >= left) & (cols < left + side)
    erase = inside_rows[:, :, None, None] & inside_cols[:, None, :, None]
    return tf.where(erase, tf.zeros_like(images), images)


def _erase(images: tf.Tensor, probability: float, seed: tf.Tensor) -> tf.Tensor:
    """Random erasing: with `probability`, one rectangle per image (area 2-40%, aspect 0.3-3.3) becomes noise."""
    n, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    s_apply, s_area, s_aspect, s_top, s_left, s_noise = tf.unstack(tf.random.experimental.stateless_split(seed, 6))
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    area = tf.random.stateless_uniform([n], s_area, 0.02, 0.4) * h * w
    aspect = tf.exp(tf.random.stateless_uniform([n], s_aspect, math.log(0.3), -math.log(0.3)))
    rect_h = tf.minimum(tf.round(tf.sqrt(area * aspect)), h)
    rect_w = tf.minimum(tf.round(tf.sqrt(area / aspect)), w)
    top = tf.floor(tf.random.stateless_uniform([n], s_top) * (h - rect_h + 1))
    left = tf.floor(tf.random.stateless_uniform([n], s_left) * (w - rect_w + 1))
    rows = tf.range(h)[None, :]
    cols = tf.range(w)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < (top + rect_h)[:, None])
    inside_cols = (cols >= left[:, None]) & (cols < (left + rect_w)[:, None])
    applied = tf.random.stateless_uniform([n], s_apply) < probability
    erase = inside_rows[:, :, None, None] & inside_cols[:, None, :, None] & applied[:, None, None, None]
    return tf.where(erase, tf.random.stateless_uniform(tf.shape(images), s_noise), images)
