"""How 2-D convolutions are differentiated: TensorFlow's backward kernels or forward convolutions.

Stride 1. For ``y = conv2d(x, W)`` with stride 1, no dilation and padding ``(p_t,
p_b)`` x ``(p_l, p_r)`` (``"same"``: ``p_t = (k_h - 1) // 2``, ``p_b = k_h
- 1 - p_t``; ``"valid"``: zeros), both gradients are themselves forward
convolutions (correlations, as `tf.nn.conv2d` computes):

* input:  ``dL/dx = conv2d(dL/dy, flip(W)^T)`` with padding ``(k_h - 1 -
  p_t, k_h - 1 - p_b)`` x ``(k_w - 1 - p_l, k_w - 1 - p_r)``, where
  ``flip`` reverses both spatial axes and ``^T`` swaps the in and out
  channel axes of the kernel;
* kernel: ``dL/dW[i, j, c, o] = sum_{b, u, v} x_pad[b, u + i, v + j, c]
  dL/dy[b, u, v, o]``, i.e. a "valid" convolution of the padded input with
  the batch and channel axes swapped (``(C, H_p, W_p, B)``) by the output
  gradient as the kernel (``(H_o, W_o, B, O)``), giving ``(C, k_h, k_w,
  O)``.

Stride s > 1 (the same s on both axes). The input gradient ``dx_pad[t] =
sum_{u, i: s u + i = t} dy[u] W[i]`` splits by the phase ``p = t mod s``: the
rows ``t = s m + p`` only see the taps ``i = s a + p``, so ``dx_pad[s m + p] =
sum_a dy[m - a] W[s a + p]``, a stride-1 correlation of ``dy`` with the
reversed sub-kernel ``W[p::s]``. All ``s^2`` phases are one stride-1
convolution of ``dy`` (padded by ``n - 1`` before, ``n = ceil(k / s)``) with
the sub-kernels zero-padded to ``n x n`` and stacked along the output
channels, followed by `tf.nn.depth_to_space` and a crop of the padding
(`phase_input_gradient`): about ``(s n / k)^2`` times the FLOPs of the
backward kernel (1.44 for 5x5, 1 for 4x4 at stride 2), in a forward kernel.
A transposed convolution (``Conv2DTranspose``) *is* that input gradient, so
its forward pass is computed the same way (`conv2d_transpose`); its input
gradient is the strided forward convolution. Strided kernel gradients keep
TensorFlow's ``Conv2DBackpropFilter``: as phase convolutions they measured
slower (0.7-0.8x) on every CPU tried.

``method="native"`` leaves everything to TensorFlow's ops and registered
gradients (``Conv2DBackpropInput`` / ``Conv2DBackpropFilter``, and
``Conv2DBackpropInput`` as the forward pass of a transposed convolution);
``method="forward"`` computes the above. Both give the same values to float
rounding (tests check ``1e-5`` relative), and second derivatives (R1,
gradient penalties) flow through either. Which is faster depends on the
CPU: on a 2-core AMD Zen 3 (AVX2) oneDNN's forward kernels ran the shapes of
the DCGAN-64 layers' stride-1 gradients 1.3x-4x faster than its backward
kernels, and most stride-2 input gradients 1.4x-2.2x faster (see BUILD.md),
while on CPUs with AVX-512 (a Zen 4, a Xeon with AMX) they were slower;
`tfgan2.timing.choose_method` makes the choice (``--conv_gradients=auto``).
Dilations other than 1, unequal strides and spatial sizes unknown when
traced always use TensorFlow's ops.

The `Conv2D` and `Conv2DTranspose` layers of `tfgan2.layers` take
``gradient="native"|"forward"``; ``None`` takes `default_method()` when the
layer is created, which `method_scope` sets for a block of network building.
"""
import contextlib
import functools
import threading

import tensorflow as tf

__all__ = ["METHODS", "check_method", "conv2d", "conv2d_transpose", "default_method",
           "method_scope", "phase_input_gradient"]

METHODS = ("native", "forward")

_state = threading.local()


def check_method(method):
    if method not in METHODS:
        raise ValueError(f"The convolution gradient method must be one of {METHODS}, got "
                         f"{method!r}.")
    return method


def default_method():
    """The method `tfgan2.layers.Conv2D` / ``Conv2DTranspose`` layers created now take
    (``"native"`` unless set)."""
    return getattr(_state, "method", "native")


@contextlib.contextmanager
def method_scope(method):
    """Layers created inside the block default to ``method``; the previous default is restored."""
    check_method(method)
    previous = default_method()
    _state.method = method
    try:
        yield
    finally:
        _state.method = previous


def _same_padding(size):
    before = (size - 1) // 2
    return before, size - 1 - before


def _check_padding(padding):
    padding = str(padding).upper()
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}.")
    return padding


def _padding_before(size, kernel, stride, padding):
    """Zeros TensorFlow puts before an axis of ``size`` for a ``padding`` convolution."""
    if padding == "VALID":
        return 0
    out = -(-size // stride)
    return max((out - 1) * stride + kernel - size, 0) // 2


def _static_hw(shape):
    hw = tuple(shape[1:3])
    return hw if None not in hw else None


def phase_input_gradient(dy, kernel, input_hw, strides, padding):
    """``dL/dx`` of ``y = tf.nn.conv2d(x, kernel, strides, padding)`` as one stride-1 convolution.

    ``dy``: ``(B, H_o, W_o, O)`` with static ``H_o, W_o``; ``kernel``: ``(k_h,
    k_w, C, O)``; ``input_hw``: ``(H, W)`` of ``x``; ``strides``: one int s.
    Returns ``(B, H, W, C)``, equal to ``Conv2DBackpropInput`` to float
    rounding (see the module docstring for the derivation).
    """
    s = int(strides)
    padding = _check_padding(padding)
    height, width = int(input_hw[0]), int(input_hw[1])
    k_h, k_w, channels, outputs = kernel.shape
    n_h, n_w = -(-k_h // s), -(-k_w // s)
    top = _padding_before(height, k_h, s, padding)
    left = _padding_before(width, k_w, s, padding)
    # Sub-kernels W[a s + p, b s + q] as [a, p, b, q, c, o], reversed in a and b,
    # stacked along the output channels in depth_to_space's (p, q, c) order.
    w = tf.pad(kernel, [[0, s * n_h - k_h], [0, s * n_w - k_w], [0, 0], [0, 0]])
    w = tf.reverse(tf.reshape(w, [n_h, s, n_w, s, channels, outputs]), [0, 2])
    w = tf.reshape(tf.transpose(w, [0, 2, 5, 1, 3, 4]), [n_h, n_w, outputs, s * s * channels])
    # Phase rows m = 0 .. rows - 1 cover the padded input's rows up to top + height.
    rows, cols = -(-(top + height) // s), -(-(left + width) // s)
    h_o, w_o = dy.shape[1], dy.shape[2]
    dy = dy[:, :rows, :cols, :]
    dy = tf.pad(dy, [[0, 0], [n_h - 1, rows - min(h_o, rows)], [n_w - 1, cols - min(w_o, cols)],
                     [0, 0]])
    phases = tf.nn.conv2d(dy, w, 1, "VALID")                       # (B, rows, cols, s*s*C)
    full = tf.nn.depth_to_space(phases, s) if s > 1 else phases
    return full[:, top:top + height, left:left + width, :]


def _strides_of(strides):
    if isinstance(strides, (list, tuple)):
        if len(set(int(v) for v in strides)) != 1:
            return None
        strides = strides[0]
    return int(strides)


def conv2d(x, kernel, padding="SAME", method="native", strides=1):
    """``tf.nn.conv2d(x, kernel, strides, padding)`` (NHWC) with the gradients of ``method``.

    ``padding``: ``"SAME"`` or ``"VALID"`` (case-insensitive); ``strides``:
    an int or an equal pair. The forward value is TensorFlow's convolution in
    both methods. With ``"forward"`` and stride 1 both gradients are forward
    convolutions; with a larger stride the input gradient is
    `phase_input_gradient` and the kernel gradient TensorFlow's (it needs the
    spatial sizes when traced, else TensorFlow's gradients are used).
    """
    check_method(method)
    padding = _check_padding(padding)
    stride = _strides_of(strides)
    if stride is None or stride < 1:
        raise ValueError(f"strides must be a positive int or an equal pair, got {strides!r}.")
    if method == "native":
        return tf.nn.conv2d(x, kernel, stride, padding)
    # Tensors, not variables: the variable reads stay outside the custom gradient (whose
    # gradient then flows back through them as usual).
    x, kernel = tf.convert_to_tensor(x), tf.convert_to_tensor(kernel)
    if stride == 1:
        return _FORWARD_GRADIENT_CONVS[padding](x, kernel)
    if _static_hw(x.shape) is None or None in kernel.shape:
        return tf.nn.conv2d(x, kernel, stride, padding)
    return _strided_conv(padding, stride)(x, kernel)


def conv2d_transpose(x, kernel, output_hw, strides, padding="SAME", method="native"):
    """``tf.nn.conv2d_transpose`` of ``x`` (NHWC) to spatial size ``output_hw`` with ``method``.

    ``kernel``: ``(k_h, k_w, C_out, C_in)`` as in TensorFlow and Keras. The
    transposed convolution is the input gradient of ``conv2d(., kernel,
    strides, padding)`` on an input of ``output_hw``: ``"native"`` runs
    TensorFlow's ``Conv2DBackpropInput``; ``"forward"`` runs
    `phase_input_gradient` (a forward convolution), whose own input gradient
    is the strided forward convolution and kernel gradient TensorFlow's.
    """
    check_method(method)
    padding = _check_padding(padding)
    stride = _strides_of(strides)
    if stride is None or stride < 1:
        raise ValueError(f"strides must be a positive int or an equal pair, got {strides!r}.")
    height, width = int(output_hw[0]), int(output_hw[1])
    x, kernel = tf.convert_to_tensor(x), tf.convert_to_tensor(kernel)
    if method == "native" or _static_hw(x.shape) is None or None in kernel.shape:
        shape = tf.stack([tf.shape(x)[0], height, width, kernel.shape[2] or tf.shape(kernel)[2]])
        return tf.nn.conv2d_transpose(x, kernel, shape, stride, padding)
    return _phase_transposed_conv(padding, stride, height, width)(x, kernel)


def _kernel_gradient(x, dy, kernel, stride, padding):
    return tf.raw_ops.Conv2DBackpropFilter(
        input=x, filter_sizes=tf.shape(kernel), out_backprop=dy, strides=[1, stride, stride, 1],
        padding=padding)


@functools.lru_cache(maxsize=None)
def _strided_conv(padding, stride):
    """A strided ``padding`` convolution whose input gradient is `phase_input_gradient`."""

    @tf.custom_gradient
    def conv(x, kernel):
        y = tf.nn.conv2d(x, kernel, stride, padding)

        def grad(dy):
            dx = phase_input_gradient(dy, kernel, x.shape[1:3], stride, padding)
            return dx, _kernel_gradient(x, dy, kernel, stride, padding)

        return y, grad

    return conv


@functools.lru_cache(maxsize=None)
def _phase_transposed_conv(padding, stride, height, width):
    """A transposed convolution to ``(height, width)`` computed as `phase_input_gradient`."""

    @tf.custom_gradient
    def conv_transpose(x, kernel):
        y = phase_input_gradient(x, kernel, (height, width), stride, padding)

        def grad(dy):
            dx = tf.nn.conv2d(dy, kernel, stride, padding)
            return dx, _kernel_gradient(dy, x, kernel, stride, padding)

        return y, grad

    return conv_transpose


def _forward_gradient_conv(padding):
    """A stride-1 ``padding`` convolution ``(x, kernel) -> y`` whose gradients are convolutions."""

    @tf.custom_gradient
    def conv(x, kernel):
        y = tf.nn.conv2d(x, kernel, 1, padding)

        def grad(dy):
            k_h, k_w = kernel.shape[0], kernel.shape[1]
            if k_h is None or k_w is None:
                raise ValueError("conv2d(method='forward') needs a kernel of known spatial size.")
            if padding == "SAME":
                (top, bottom), (left, right) = _same_padding(k_h), _same_padding(k_w)
            else:
                top = bottom = left = right = 0
            flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
            dx = tf.nn.conv2d(dy, flipped, 1, [[0, 0], [k_h - 1 - top, k_h - 1 - bottom],
                                               [k_w - 1 - left, k_w - 1 - right], [0, 0]])
            x_pad = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
            dk = tf.nn.conv2d(tf.transpose(x_pad, [3, 1, 2, 0]),
                              tf.transpose(dy, [1, 2, 0, 3]), 1, "VALID")
            return dx, tf.transpose(dk, [1, 2, 0, 3])

        return y, grad

    return conv


_FORWARD_GRADIENT_CONVS = {padding: _forward_gradient_conv(padding) for padding in ("SAME", "VALID")}
