"""How the gradients of a stride-1 2-D convolution are computed: TF's kernels or forward convolutions.

For ``y = conv2d(x, W)`` with stride 1, no dilation and padding ``(p_t,
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

``method="native"`` leaves the gradients to TensorFlow's registered ones
(``Conv2DBackpropInput`` / ``Conv2DBackpropFilter``); ``method="forward"``
computes them as above. Both give the same values to float rounding (tests
check ``1e-5`` relative), and second derivatives (R1, gradient penalties)
flow through either. Which is faster depends on the CPU: on a 2-core AMD
Zen 3 (AVX2) oneDNN's forward kernels ran the shapes of the DCGAN-64
layers' gradients 1.3x-4x faster than its backward kernels (see BUILD.md),
so `launch.train` measures both (``--conv_gradients=auto``). Strides or
dilations other than 1 always use TensorFlow's gradients.

`Conv2D` layers of `tfgan2.layers` take ``gradient="native"|"forward"``;
``None`` takes `default_method()` when the layer is created, which
`method_scope` sets for a block of network building.
"""
import contextlib
import dataclasses
import json
import threading

import tensorflow as tf

__all__ = ["METHODS", "MethodChoice", "check_method", "choose_method", "conv2d",
           "default_method", "method_scope", "uses_forward_gradients"]

METHODS = ("native", "forward")

_state = threading.local()


def check_method(method):
    if method not in METHODS:
        raise ValueError(f"The convolution gradient method must be one of {METHODS}, got "
                         f"{method!r}.")
    return method


def default_method():
    """The method `tfgan2.layers.Conv2D` layers created now take (``"native"`` unless set)."""
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


def conv2d(x, kernel, padding="SAME", method="native"):
    """Stride-1 ``tf.nn.conv2d(x, kernel, 1, padding)`` (NHWC) with the gradients of ``method``.

    ``padding``: ``"SAME"`` or ``"VALID"`` (case-insensitive). The forward
    value is TensorFlow's convolution in both methods.
    """
    check_method(method)
    padding = padding.upper()
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}.")
    if method == "native":
        return tf.nn.conv2d(x, kernel, 1, padding)
    # Tensors, not variables: the variable reads stay outside the custom gradient (whose
    # gradient then flows back through them as usual).
    return _FORWARD_GRADIENT_CONVS[padding](tf.convert_to_tensor(x), tf.convert_to_tensor(kernel))


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


@dataclasses.dataclass(frozen=True)
class MethodChoice:
    """A convolution gradient method, why it was chosen, and the ms per step measured."""
    method: str
    reason: str
    ms_per_step: dict = dataclasses.field(default_factory=dict)

    def describe(self):
        return f"{self.method}: {self.reason}"

    def to_json(self):
        return json.dumps({"method": self.method, "reason": self.reason,
                           "ms_per_step": self.ms_per_step}, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        return cls(check_method(data["method"]), str(data["reason"]),
                   {str(k): float(v) for k, v in data.get("ms_per_step", {}).items()})


def uses_forward_gradients(models):
    """Whether any layer of ``models`` (nested models and wrappers included) is a
    `tfgan2.layers.Conv2D` that would take forward-convolution gradients if asked."""
    from tfgan2.layers import Conv2D

    def layers_of(layer):
        yield layer
        for attr in ("layers", "_layers"):
            for sub in getattr(layer, attr, None) or ():
                yield from layers_of(sub)
        inner = getattr(layer, "layer", None)
        if inner is not None:
            yield from layers_of(inner)

    for model in models:
        for layer in layers_of(model):
            if isinstance(layer, Conv2D) and layer.built and tuple(layer.strides) == (1, 1) \
                    and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1 \
                    and layer.data_format == "channels_last":
                return True
    return False


def choose_method(build, *, measure=None, min_speedup=1.05, **measure_kwargs):
    """``"forward"`` if training steps measure ``min_speedup`` times faster with it, else
    ``"native"``; a `MethodChoice`.

    ``build(method) -> run``, ``run(steps) -> seconds per step``: the run's
    training step with its networks built under `method_scope` ``(method)``
    (see `tfgan2.precision.measure_step_times`, which ``measure(build,
    methods) -> {method: ms}`` defaults to, with ``measure_kwargs``). A
    measurement that raises a TensorFlow error keeps ``"native"``.
    """
    from tfgan2 import precision

    if measure is None:
        def measure(build_fn, methods):
            return precision.measure_step_times(
                build_fn, methods, scope=lambda _: contextlib.nullcontext(), **measure_kwargs)
    try:
        ms = measure(build, METHODS)
    except tf.errors.OpError as error:
        return MethodChoice("native", f"timing the forward gradients raised "
                            f"{precision.error_summary(error)}")
    native, forward = float(ms["native"]), float(ms["forward"])
    timing = f"forward {forward:.1f} ms vs native {native:.1f} ms per step"
    ms = {"native": native, "forward": forward}
    if forward * min_speedup <= native:
        return MethodChoice("forward", timing, ms)
    return MethodChoice("native", f"forward is not {min_speedup:g}x faster: {timing}", ms)
