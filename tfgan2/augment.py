"""Differentiable augmentation of everything the discriminator sees.

Both layers take images ``(B, H, W, C)`` in [-1, 1] and are called as
``layer(x, training=True, seed=seed, rows=[start, global_batch])``:

* ``seed``: a shape-(2,) integer stateless seed. Every random number is a
  stateless function of it, so `tfgan2.GAN` (which derives it from its noise
  seed, the optimizer step and a per-call stream id) gets the same
  augmentation again after a restore.
* ``rows``: an int tensor ``[start, global_batch]``: the random parameters are
  drawn for ``global_batch`` examples and this call keeps rows ``[start, start + B)``, so each replica of a
  distributed step augments its share exactly as one device would augment
  the whole batch. Default ``(0, B)``.

With ``training=False`` (or ``seed=None`` outside training) the input is
returned unchanged. Every operation is built from gathers, multiplications
and additions of the pixels, so gradients flow to the input (and through it
to the generator).

* `DiffAugment` -- Zhao et al. 2020, "Differentiable Augmentation for
  Data-Efficient GAN Training" (arXiv:2006.10738): ``color`` (brightness
  ``+U(-0.5, 0.5)``, saturation ``x U(0, 2)``, contrast ``x U(0.5, 1.5)``),
  ``translation`` (integer shift up to 1/8 of the size, zero padding) and
  ``cutout`` (a zeroed square of half the size at a random centre), applied
  to every example.
* `AdaptiveAugment` -- Karras et al. 2020, "Training Generative Adversarial
  Networks with Limited Data" (ADA, arXiv:2006.06676): the 'bgc' pipeline,
  each operation applied to each example with probability ``p``, which
  follows the overfitting signal ``r_t = E[sign(D(real))]``.
"""
import math

import keras
import numpy as np
import tensorflow as tf

from tfgan2 import replicas

__all__ = ["DiffAugment", "AdaptiveAugment", "DIFFAUGMENT_OPS", "ADA_OPS", "from_spec"]

DIFFAUGMENT_OPS = ("color", "translation", "cutout")
ADA_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
           "brightness", "contrast", "saturation", "hue")


class _Rows:
    """Per-example random numbers for rows ``[start, start + n)`` of a ``global_batch`` draw."""

    def __init__(self, seed, n, rows=None):
        self.seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        if rows is None:
            self.rows = replicas.Rows(0, n, n)
        else:
            rows = tf.cast(tf.convert_to_tensor(rows), tf.int32)
            self.rows = replicas.Rows(rows[0], rows[1], n)

    def _sub(self, key):
        return tf.random.experimental.stateless_fold_in(self.seed, key)

    def uniform(self, key, width=1, minval=0.0, maxval=1.0):
        return self.rows.take(lambda total: tf.random.stateless_uniform(
            tf.stack([total, width]), self._sub(key), minval=minval, maxval=maxval))

    def normal(self, key, width=1):
        return self.rows.take(lambda total: tf.random.stateless_normal(
            tf.stack([total, width]), self._sub(key)))

    def integers(self, key, low, high, width=1):
        """Integers in ``[low, high)`` as float32."""
        return tf.floor(self.uniform(key, width, float(low), float(high)))


def _exp2(x):
    return tf.pow(2.0, x)


def _centred_grid(h, w):
    """Pixel-centre coordinates ``(H*W, 3)`` as homogeneous (x, y, 1), origin at the centre."""
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32) - (h - 1) / 2.0,
                         tf.range(w, dtype=tf.float32) - (w - 1) / 2.0, indexing="ij")
    return tf.stack([tf.reshape(xs, [-1]), tf.reshape(ys, [-1]), tf.ones([h * w])], axis=1)


def _reflect(coord, size):
    """Mirror coordinates into ``[0, size - 1]`` (reflection without repeating the edge)."""
    if size == 1:
        return tf.zeros_like(coord)
    period = 2.0 * (size - 1)
    t = tf.math.floormod(coord, period)
    return (size - 1) - tf.abs(t - (size - 1))


def _resample(images, src_x, src_y, padding):
    """Bilinear sampling of ``images`` at source pixel coordinates ``(B, H*W)``.

    ``padding="reflect"`` mirrors coordinates outside the image back in (ADA);
    ``"zeros"`` reads 0 outside (DiffAugment's translation). Integer
    coordinates reproduce pixels exactly.
    """
    shape = tf.shape(images)
    b, h, w, c = shape[0], images.shape[1], images.shape[2], shape[3]
    if padding == "reflect":
        src_x, src_y = _reflect(src_x, w), _reflect(src_y, h)
    x0, y0 = tf.floor(src_x), tf.floor(src_y)
    fx, fy = src_x - x0, src_y - y0
    flat = tf.reshape(images, tf.stack([b, h * w, c]))
    out = 0.0
    for dy, wy in ((0.0, 1.0 - fy), (1.0, fy)):
        for dx, wx in ((0.0, 1.0 - fx), (1.0, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = tf.cast((xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1), images.dtype)
            xi = tf.clip_by_value(tf.cast(xi, tf.int32), 0, w - 1)
            yi = tf.clip_by_value(tf.cast(yi, tf.int32), 0, h - 1)
            pixels = tf.gather(flat, yi * w + xi, batch_dims=1)
            weight = tf.cast(wx * wy, images.dtype) * inside
            out = out + pixels * weight[..., None]
    return tf.reshape(out, shape)


def _check_images(x, layer):
    if x.shape.rank != 4 or x.shape[1] is None or x.shape[2] is None:
        raise ValueError(f"{layer} augments images of shape (B, H, W, C) with a static size, "
                         f"got shape {x.shape}.")


class _Augment(keras.layers.Layer):
    """Shared call protocol: identity unless training with a seed."""

    def __init__(self, **kwargs):
        # Computed in float32 whatever the global policy: under a mixed policy Keras would
        # hand ADA's p to call() cast to bfloat16/float16, and the random draws are float32.
        # The output is float32; D casts it to its own compute dtype.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        # No weights depend on the input shape: built from the start, so a GAN holding
        # the layer needs no symbolic build.
        self.built = True

    def call(self, inputs, training=None, seed=None, rows=None):
        if not training:
            return inputs
        x = tf.convert_to_tensor(inputs)
        _check_images(x, type(self).__name__)
        if seed is None:  # standalone use: a fresh seed from TensorFlow's global generator
            seed = tf.random.uniform([2], 0, 2 ** 31 - 1, dtype=tf.int64)
        dtype = x.dtype
        out = self.augment(tf.cast(x, tf.float32), _Rows(seed, tf.shape(x)[0], rows))
        return tf.cast(out, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="tfgan2")
class DiffAugment(_Augment):
    """DiffAugment (Zhao et al. 2020): the same random ops applied to real and fake images.

    Args:
      policy: comma-separated operations from ``color``, ``translation``,
        ``cutout``, applied in that order (the paper's CIFAR policy is all
        three; its low-shot and 2-D settings drop ``color``).
      translation_ratio: largest shift as a fraction of the size (paper: 1/8),
        ``t ~ U{-r*S, ..., r*S}`` per axis, zero padding.
      cutout_ratio: side of the cut square as a fraction of the size (paper:
        1/2); its centre is uniform over the image, pixels inside become 0.
    """

    def __init__(self, policy="color,translation,cutout", translation_ratio=0.125,
                 cutout_ratio=0.5, **kwargs):
        super().__init__(**kwargs)
        ops = [op.strip() for op in policy.split(",") if op.strip()]
        unknown = [op for op in ops if op not in DIFFAUGMENT_OPS]
        if unknown or not ops:
            raise ValueError(f"DiffAugment policy {policy!r} is invalid: use a comma-separated "
                             f"list of {', '.join(DIFFAUGMENT_OPS)}.")
        self.policy = ",".join(ops)
        self.ops = ops
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)

    def augment(self, x, rnd):
        for op in self.ops:
            x = getattr(self, "_" + op)(x, rnd)
        return x

    @staticmethod
    def _color(x, rnd):
        per_image = lambda v: v[:, :, None, None]  # noqa: E731
        x = x + per_image(rnd.uniform(1) - 0.5)
        mean = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean) * per_image(rnd.uniform(2, maxval=2.0)) + mean
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        return (x - mean) * per_image(rnd.uniform(3, minval=0.5, maxval=1.5)) + mean

    def _translation(self, x, rnd):
        h, w = x.shape[1], x.shape[2]
        sy, sx = int(h * self.translation_ratio + 0.5), int(w * self.translation_ratio + 0.5)
        shift_x = rnd.integers(4, -sx, sx + 1)
        shift_y = rnd.integers(5, -sy, sy + 1)
        grid = _centred_grid(h, w)
        src_x = grid[None, :, 0] + (w - 1) / 2.0 - shift_x
        src_y = grid[None, :, 1] + (h - 1) / 2.0 - shift_y
        return _resample(x, src_x, src_y, padding="zeros")

    def _cutout(self, x, rnd):
        h, w = x.shape[1], x.shape[2]
        ch, cw = int(h * self.cutout_ratio + 0.5), int(w * self.cutout_ratio + 0.5)
        cy = rnd.integers(6, 0, h + (1 - ch % 2))[:, :, None] - ch // 2
        cx = rnd.integers(7, 0, w + (1 - cw % 2))[:, :, None] - cw // 2
        ys = tf.range(h, dtype=tf.float32)[None, :, None]
        xs = tf.range(w, dtype=tf.float32)[None, None, :]
        inside = (ys >= cy) & (ys < cy + ch) & (xs >= cx) & (xs < cx + cw)
        return x * (1.0 - tf.cast(inside, x.dtype))[..., None]

    def get_config(self):
        return {**super().get_config(), "policy": self.policy,
                "translation_ratio": self.translation_ratio, "cutout_ratio": self.cutout_ratio}


@keras.saving.register_keras_serializable(package="tfgan2")
class AdaptiveAugment(_Augment):
    """ADA (Karras et al. 2020): the 'bgc' pipeline applied with an adaptive probability p.

    Each operation is applied to each example independently with probability
    ``p`` (the two rotations with ``1 - sqrt(1 - p)`` each, as in the paper, so
    that some rotation happens with probability ``p``). Geometric operations
    compose one matrix per example that maps output to input pixel
    coordinates, resampled bilinearly with reflection padding:

    * ``xflip``: mirror x with probability 1/2; ``rotate90``: ``k * 90`` degrees,
      ``k`` uniform in {0, 1, 2, 3}; ``xint``: integer translation, uniform up
      to ``0.125`` of the size;
    * ``scale``: isotropic, ``2^N(0, 0.2^2)``; ``rotate``: uniform angle in
      [-180, 180); ``aniso``: ``2^N(0, 0.2^2)`` on x and its inverse on y;
      ``xfrac``: fractional translation ``N(0, 0.125^2)`` of the size;

    then color, with the pixels in [-1, 1]: ``brightness`` ``+N(0, 0.2^2)``,
    ``contrast`` ``x 2^N(0, 0.5^2)``, ``saturation`` ``x 2^N(0, 1)`` around the
    luma axis and ``hue`` rotation about it, uniform in [-180, 180) (the last
    two on RGB only).

    Adaptation: after each discriminator update the GAN calls `observe` with
    D's logits on (augmented) real data. Every ``interval`` steps ``r_t`` is
    the mean sign of the logits collected since the last adjustment, and
    ``p <- clip(p + sign(r_t - target) * n / speed_images, 0, 1)`` with ``n``
    the real images seen meanwhile: ``p`` can cross [0, 1] in ``speed_images``
    images (the paper: 500k). ``target=None`` keeps ``p`` fixed at
    ``initial_p`` (``r_t`` is still measured).

    ``p`` and ``r_t`` are non-trainable variables of this layer (so a
    checkpoint of the GAN carries them), identical on every replica: the
    signs are summed over all replicas before the update.
    """

    def __init__(self, target=0.6, initial_p=0.0, interval=4, speed_images=500_000,
                 ops=ADA_OPS, **kwargs):
        super().__init__(**kwargs)
        if target is not None and not 0.0 <= float(target) <= 1.0:
            raise ValueError(f"AdaptiveAugment target must be None (fixed p) or in [0, 1], "
                             f"got {target!r}.")
        if not 0.0 <= float(initial_p) <= 1.0:
            raise ValueError(f"initial_p must be in [0, 1], got {initial_p!r}.")
        if int(interval) < 1 or float(speed_images) <= 0:
            raise ValueError(f"interval must be >= 1 and speed_images > 0, got "
                             f"{interval!r} and {speed_images!r}.")
        ops = tuple(ops)
        unknown = [op for op in ops if op not in ADA_OPS]
        if unknown:
            raise ValueError(f"Unknown AdaptiveAugment ops {unknown}; valid: {', '.join(ADA_OPS)}.")
        self.target = None if target is None else float(target)
        self.initial_p = float(initial_p)
        self.interval = int(interval)
        self.speed_images = float(speed_images)
        self.ops = ops
        state = dict(shape=(), trainable=False, aggregation="only_first_replica",
                     dtype="float32")
        self.p = self.add_weight(initializer=keras.initializers.Constant(self.initial_p),
                                 name="p", **state)
        self.r_t = self.add_weight(initializer="zeros", name="r_t", **state)
        self.sign_sum = self.add_weight(initializer="zeros", name="sign_sum", **state)
        self.sign_count = self.add_weight(initializer="zeros", name="sign_count", **state)
        self.images_seen = self.add_weight(initializer="zeros", name="images_seen", **state)
        self.calls = self.add_weight(initializer="zeros", name="calls", **state)

    # ------------------------------------------------------------ adaptation
    def observe(self, real_logits, num_images):
        """Accumulate ``sign(D(real))`` and adjust ``p`` every ``interval`` calls.

        ``real_logits``: D's logits on this replica's real batch, shifted so
        that 0 is the decision boundary; ``num_images``: the real images behind
        them on this replica. Call from the training step (replica context).
        """
        logits = tf.reshape(tf.cast(real_logits, tf.float32), [-1])
        values = replicas.global_sums(tf.stack([
            tf.reduce_sum(tf.sign(logits)), tf.cast(tf.size(logits), tf.float32),
            tf.cast(num_images, tf.float32)]))
        sign_sum = self.sign_sum + values[0]
        count = self.sign_count + values[1]
        images = self.images_seen + values[2]
        calls = self.calls + 1.0
        adjust = calls >= self.interval
        r_t = sign_sum / tf.maximum(count, 1.0)
        p = self.p
        if self.target is not None:
            step = tf.sign(r_t - self.target) * images / self.speed_images
            p = tf.where(adjust, tf.clip_by_value(p + step, 0.0, 1.0), p)
        zero = tf.constant(0.0)
        self.p.assign(tf.convert_to_tensor(p))
        self.r_t.assign(tf.where(adjust, r_t, self.r_t))
        self.sign_sum.assign(tf.where(adjust, zero, sign_sum))
        self.sign_count.assign(tf.where(adjust, zero, count))
        self.images_seen.assign(tf.where(adjust, zero, images))
        self.calls.assign(tf.where(adjust, zero, calls))

    def logs(self):
        """``{"ada_p": p, "ada_r_t": r_t}`` for the training logs."""
        return {"ada_p": tf.convert_to_tensor(self.p), "ada_r_t": tf.convert_to_tensor(self.r_t)}

    # ------------------------------------------------------------ pipeline
    def augment(self, x, rnd):
        p = tf.convert_to_tensor(self.p)
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        ops = set(self.ops)

        def gate(key, prob=None):
            """1 where the op applies to an example (probability ``prob``, default p)."""
            return tf.cast(rnd.uniform(100 + key) < (p if prob is None else prob), tf.float32)

        b = tf.shape(x)[0]
        eye = tf.eye(3, batch_shape=tf.stack([b]))
        mat = eye

        def then(m):
            return tf.matmul(mat, m)

        def affine(a, bb, cc, d, tx, ty):
            """Per-example 3x3 matrices from (B, 1) entries."""
            one, zero = tf.ones_like(a), tf.zeros_like(a)
            rows = [tf.concat([a, bb, tx], 1), tf.concat([cc, d, ty], 1),
                    tf.concat([zero, zero, one], 1)]
            return tf.stack(rows, axis=1)

        def rotation(theta):
            cos, sin = tf.cos(theta), tf.sin(theta)
            z = tf.zeros_like(theta)
            return affine(cos, -sin, sin, cos, z, z)

        zero = tf.zeros([b, 1])
        if "xflip" in ops:
            flip = rnd.integers(1, 0, 2) * gate(1)
            mat = then(affine(1.0 - 2.0 * flip, zero, zero, tf.ones_like(flip), zero, zero))
        if "rotate90" in ops:
            theta = rnd.integers(2, 0, 4) * gate(2) * (math.pi / 2)
            mat = then(rotation(theta))
        if "xint" in ops:
            t = rnd.uniform(3, 2, -0.125, 0.125) * gate(3)
            tx, ty = tf.round(t[:, :1] * w), tf.round(t[:, 1:] * h)
            mat = then(affine(tf.ones_like(tx), zero, zero, tf.ones_like(tx), tx, ty))
        if "scale" in ops:
            s = _exp2(rnd.normal(4) * 0.2 * gate(4))
            mat = then(affine(s, zero, zero, s, zero, zero))
        rot_p = 1.0 - tf.sqrt(tf.maximum(1.0 - p, 0.0))
        if "rotate" in ops:
            mat = then(rotation(rnd.uniform(5, 1, -math.pi, math.pi) * gate(5, rot_p)))
        if "aniso" in ops:
            s = _exp2(rnd.normal(6) * 0.2 * gate(6))
            mat = then(affine(s, zero, zero, 1.0 / s, zero, zero))
        if "rotate" in ops:
            mat = then(rotation(rnd.uniform(7, 1, -math.pi, math.pi) * gate(7, rot_p)))
        if "xfrac" in ops:
            t = rnd.normal(8, 2) * 0.125 * gate(8)
            mat = then(affine(tf.ones_like(zero), zero, zero, tf.ones_like(zero),
                              t[:, :1] * w, t[:, 1:] * h))
        grid = _centred_grid(h, w)                       # (HW, 3)
        src = tf.einsum("bij,nj->bni", mat, grid)        # (B, HW, 3)
        x = _resample(x, src[..., 0] + (w - 1) / 2.0, src[..., 1] + (h - 1) / 2.0,
                      padding="reflect")

        per_image = lambda v: v[:, :, None, None]  # noqa: E731
        if "brightness" in ops:
            x = x + per_image(rnd.normal(9) * 0.2 * gate(9))
        if "contrast" in ops:
            x = x * per_image(_exp2(rnd.normal(10) * 0.5 * gate(10)))
        if c == 3 and ("saturation" in ops or "hue" in ops):
            axis = tf.constant([1.0, 1.0, 1.0]) / math.sqrt(3.0)
            luma = tf.tensordot(x, axis, axes=[[3], [0]])[..., None] * axis  # projection
            chroma = x - luma
            if "hue" in ops:
                theta = per_image(rnd.uniform(11, 1, -math.pi, math.pi) * gate(11))
                # Rodrigues rotation of the chroma vector about the luma axis.
                cross = tf.linalg.cross(tf.broadcast_to(axis, tf.shape(chroma)), chroma)
                chroma = chroma * tf.cos(theta) + cross * tf.sin(theta)
            if "saturation" in ops:
                chroma = chroma * per_image(_exp2(rnd.normal(12) * gate(12)))
            x = luma + chroma
        return x

    def get_config(self):
        return {**super().get_config(), "target": self.target, "initial_p": self.initial_p,
                "interval": self.interval, "speed_images": self.speed_images,
                "ops": list(self.ops)}


def from_spec(spec, ada_target=0.6, ada_speed_images=500_000):
    """A layer from a launcher string: ``none``, ``diffaugment[:POLICY]`` or ``ada``.

    ``POLICY`` is a DiffAugment policy with ``+`` or ``,`` between ops, e.g.
    ``diffaugment:translation+cutout``. Returns None for ``none``.
    """
    spec = (spec or "none").strip()
    name, _, arg = spec.partition(":")
    name = name.lower()
    if name == "none" and not arg:
        return None
    if name == "diffaugment":
        return DiffAugment(policy=(arg or "color,translation,cutout").replace("+", ","))
    if name == "ada" and not arg:
        return AdaptiveAugment(target=ada_target, speed_images=ada_speed_images)
    raise ValueError(f"Unknown augmentation {spec!r}: use none, diffaugment:POLICY (POLICY from "
                     f"{', '.join(DIFFAUGMENT_OPS)}, joined by '+') or ada.")


def grid_of_augmentations(layer, images, num_versions=8, seed=0):
    """``(len(images) * num_versions, H, W, C)``: each image followed by augmented copies.

    Row ``i`` holds image ``i`` and ``num_versions - 1`` augmentations of it
    with independent seeds: what D sees of that image.
    """
    images = tf.convert_to_tensor(np.asarray(images, np.float32))
    rows = [images]
    for k in range(1, num_versions):
        rows.append(layer(images, training=True, seed=tf.constant([seed, k], tf.int64)))
    return np.stack([np.asarray(r) for r in rows], axis=1).reshape(
        (-1,) + tuple(images.shape[1:]))
