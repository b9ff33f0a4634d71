"""float32 for the networks that measure, whatever policy the networks being trained use.

A run trained under ``mixed_bfloat16`` or ``mixed_float16`` sets Keras' global
policy, and every layer built afterwards computes in that precision. The
networks of evaluation (the domain classifier, Inception-v3, the feature
model of a `tfgan2.sample_metrics` metric) must not follow it: bfloat16 keeps
about 3 significant digits, and FID / KID / IS would then change with the
training precision instead of with the samples. So they are built inside
`float32_scope` and, when handed in from outside, switched with
`float32_model`.
"""
import contextlib

import keras

__all__ = ["float32_scope", "float32_model"]

_LOW = ("float16", "bfloat16")


@contextlib.contextmanager
def float32_scope():
    """Layers built inside the block compute in float32; the global policy is restored after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_model(model):
    """``model`` with every layer computing in float32, switched in place; returns ``model``.

    A layer built under ``mixed_bfloat16`` / ``mixed_float16`` holds float32
    variables and casts them (and its inputs) to the low precision when
    called; setting its policy to ``float32`` drops those casts and leaves
    the weights untouched. Layers already in float32 (or with a non-float
    policy, such as integer lookups) are left as they are. Only the compute
    policy changes: a model traced before (``predict``'s compiled function)
    keeps its old trace, so call this before compiling or predicting.

    Raises:
      ValueError: a layer keeps its variables in float16 / bfloat16 (a
        ``"float16"`` or ``"bfloat16"`` policy, not a mixed one): its weights
        have already lost precision, so rebuild it under float32.
    """
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    stored_low = [f"{layer.name} ({layer.variable_dtype})" for layer in layers
                  if layer.variable_dtype in _LOW and layer.weights]
    if stored_low:
        raise ValueError(
            f"Model {model.name!r} stores float16 / bfloat16 variables in layers "
            f"{', '.join(stored_low)}; evaluation computes in float32 and needs float32 "
            f"weights: build it under the float32 policy (or a mixed one, which keeps "
            f"float32 variables).")
    for layer in layers:
        if layer.compute_dtype in _LOW:
            layer.dtype_policy = "float32"
    return model
