"""Upsampling and downsampling by 2 through a fixed low-pass filter (R3GAN's resamplers).

R3GAN (Huang et al., NeurIPS 2024, arXiv:2501.05441, sec. 3) resamples with
StyleGAN2's ``upfirdn2d`` and the filter ``[1, 2, 1]``. For resampling by 2
that filter is first convolved with the box ``[1, 1]``, giving the taps
``f = [1, 3, 3, 1] / 8`` (normalized to sum 1), applied separably along height
and width, zero-padded at the borders:

* `LowpassUpsample2D`: insert a zero after every sample, pad, convolve with
  ``2 f`` per axis (gain 2 per axis keeps a constant image constant)::

      y[2i] = x[i-1] / 4 + 3 x[i] / 4,      y[2i+1] = 3 x[i] / 4 + x[i+1] / 4

  i.e. bilinear interpolation with half-pixel centres (zeros outside the image);
* `LowpassDownsample2D`: pad by one, convolve with ``f`` and keep every
  second sample::

      y[i] = (x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]) / 8.

Both have no variables and run in the layer's compute dtype, as elementwise
multiply-adds of shifted slices (no convolution kernel, so any channel count
and dtype run the same code and gradients).
"""
import keras
import numpy as np
import tensorflow as tf

__all__ = ["LowpassUpsample2D", "LowpassDownsample2D", "resampling_taps"]


def resampling_taps(filter_taps=(1, 2, 1)):
    """``filter_taps`` convolved with ``[1, 1]``, normalized to sum 1 (``[1,2,1]`` -> ``[1,3,3,1]/8``)."""
    taps = np.asarray(filter_taps, dtype=np.float64)
    if taps.ndim != 1 or taps.size < 1 or not np.all(np.isfinite(taps)) or taps.sum() <= 0:
        raise ValueError(f"filter must be a non-empty list of finite numbers with a positive "
                         f"sum, e.g. (1, 2, 1); got {filter_taps!r}.")
    taps = np.convolve(taps, [1.0, 1.0])
    return taps / taps.sum()


def _along(axis, rank, index):
    key = [slice(None)] * rank
    key[axis] = index
    return tuple(key)


def _fir(x, taps, axis, up=1, down=1):
    """upfirdn along one spatial ``axis`` of ``x``: zero-insert ``up``, filter, keep every ``down``-th.

    Padding and gain are StyleGAN2's ``upsample2d`` / ``downsample2d`` ones for
    a factor of 2 (gain ``up``), so a constant signal stays constant away from
    the borders.
    """
    n_taps = len(taps)
    if up > 1:
        pad = ((n_taps + up - 1) // 2, (n_taps - up) // 2)
        shape = tf.shape(x)
        parts = [x] + [tf.zeros_like(x)] * (up - 1)
        x = tf.stack(parts, axis=axis + 1)
        new_shape = tf.concat([shape[:axis], [shape[axis] * up], shape[axis + 1:]], axis=0)
        x = tf.reshape(x, new_shape)
        gain = float(up)
    else:
        pad = ((n_taps - down + 1) // 2, (n_taps - down) // 2)
        gain = 1.0
    paddings = [[0, 0]] * 4
    paddings[axis] = list(pad)
    x = tf.pad(x, paddings)
    length = tf.shape(x)[axis]
    count = (length - n_taps) // down + 1
    out = None
    # A convolution (the taps reversed) as a sum of shifted, strided slices.
    for j, tap in enumerate(taps[::-1]):
        if tap == 0:
            continue
        term = x[_along(axis, 4, slice(j, j + (count - 1) * down + 1, down))]
        term = term * tf.cast(tap * gain, x.dtype)
        out = term if out is None else out + term
    return out


class _Resample2D(keras.layers.Layer):
    def __init__(self, filter=(1, 2, 1), **kwargs):  # noqa: A002 - R3GAN's name
        super().__init__(**kwargs)
        self.filter = tuple(float(t) for t in np.asarray(filter, dtype=np.float64).ravel())
        self._taps = resampling_taps(self.filter)

    def get_config(self):
        return {**super().get_config(), "filter": list(self.filter)}

    def _check(self, inputs):
        if len(inputs.shape) != 4:
            raise ValueError(f"{type(self).__name__} takes feature maps (B, H, W, C), got shape "
                             f"{inputs.shape}.")


@keras.saving.register_keras_serializable(package="tfgan2")
class LowpassUpsample2D(_Resample2D):
    """Doubles height and width of ``(B, H, W, C)`` maps through the low-pass ``filter``
    (module docstring); no variables."""

    def call(self, inputs):
        x = tf.cast(inputs, self.compute_dtype)
        self._check(x)
        for axis in (1, 2):
            x = _fir(x, self._taps, axis, up=2)
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, c)


@keras.saving.register_keras_serializable(package="tfgan2")
class LowpassDownsample2D(_Resample2D):
    """Halves height and width of ``(B, H, W, C)`` maps (even sizes) through the low-pass
    ``filter`` (module docstring); no variables."""

    def call(self, inputs):
        x = tf.cast(inputs, self.compute_dtype)
        self._check(x)
        for axis in (1, 2):
            if x.shape[axis] is not None and x.shape[axis] % 2:
                raise ValueError(f"LowpassDownsample2D needs even heights and widths, got "
                                 f"shape {x.shape}.")
            x = _fir(x, self._taps, axis, down=2)
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else h // 2, None if w is None else w // 2, c)
