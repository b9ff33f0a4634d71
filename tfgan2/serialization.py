"""Config (de)serialization of the arguments a `tfgan2.GAN` was constructed and compiled with.

`GAN.get_config` and `GAN.get_compile_config` do not list their keys by
hand: `call_arguments` records every named parameter of the method that is
running (read from its signature), so an argument added to ``GAN.__init__``
or ``GAN.compile`` is saved and restored without touching this module.

Values are stored as they are when they are plain JSON data (numbers,
strings, None, lists, dicts of those) and as Keras serialized objects
(`keras.saving.serialize_keras_object`) when they are Keras objects or
registered functions: networks, optimizers, learning-rate schedules,
metrics, augmentation layers, custom loss functions. Loading goes through
`keras.saving.deserialize_keras_object`, so it works with
``safe_mode=True`` as long as every custom class or function is registered
with `keras.saving.register_keras_serializable` (all of tfgan2's are, once
``import tfgan2`` has run).
"""
import inspect

import keras

__all__ = ["call_arguments", "serialize_value", "deserialize_value", "serialize_arguments",
           "deserialize_arguments", "deserialize_networks"]

_PLAIN = (bool, int, float, str, type(None))
# Marks a tuple, which JSON would otherwise turn into a list.
_TUPLE_KEY = "__tuple__"


def call_arguments(function, frame_locals, skip=("self",)):
    """``{name: value}`` of ``function``'s named parameters, read from its ``locals()``.

    ``**kwargs`` and ``*args`` are left out (they are passed on, not owned).
    Call it first thing in the function, before any parameter is rebound.
    """
    names = [p.name for p in inspect.signature(function).parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in skip]
    return {name: frame_locals[name] for name in names}


def _is_keras_object(value):
    return (isinstance(value, (keras.layers.Layer, keras.optimizers.Optimizer,
                               keras.metrics.Metric, keras.losses.Loss,
                               keras.optimizers.schedules.LearningRateSchedule))
            or callable(value))


def serialize_value(value, what="value"):
    """``value`` as JSON-compatible data (see the module docstring).

    Raises:
      TypeError: ``value`` is neither plain data nor a serializable Keras object.
    """
    if isinstance(value, _PLAIN):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # NumPy scalars
        return value.item()
    if isinstance(value, tuple):
        return {_TUPLE_KEY: [serialize_value(v, what) for v in value]}
    if isinstance(value, list):
        return [serialize_value(v, what) for v in value]
    if isinstance(value, dict) and not _looks_serialized(value):
        return {str(k): serialize_value(v, what) for k, v in value.items()}
    if _is_keras_object(value):
        return keras.saving.serialize_keras_object(value)
    raise TypeError(f"{what} of type {type(value).__name__} cannot be saved in a Keras config: "
                    f"use plain values, Keras objects, or a class/function registered with "
                    f"keras.saving.register_keras_serializable.")


def _looks_serialized(value):
    return isinstance(value, dict) and "class_name" in value and "config" in value


def deserialize_value(value):
    """The inverse of `serialize_value`."""
    if isinstance(value, list):
        return [deserialize_value(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_TUPLE_KEY}:
            return tuple(deserialize_value(v) for v in value[_TUPLE_KEY])
        if _looks_serialized(value):
            return keras.saving.deserialize_keras_object(value)
        return {k: deserialize_value(v) for k, v in value.items()}
    return value


def serialize_arguments(arguments, owner="GAN"):
    """`serialize_value` of each entry of an argument dict; errors name the argument."""
    return {name: serialize_value(value, f"{owner} argument {name!r}")
            for name, value in arguments.items()}


def deserialize_arguments(config):
    """`deserialize_value` of each entry of a config dict."""
    return {name: deserialize_value(value) for name, value in config.items()}


def deserialize_networks(config, keys):
    """``config`` with the Keras models at ``keys`` deserialized, each inside the name
    scope the tfgan2 builders create (its model name), so variable paths stay unique."""
    config = dict(config)
    for key in keys:
        value = config.get(key)
        if isinstance(value, dict) and isinstance(value.get("config"), dict):
            with keras.name_scope(value["config"].get("name", key)):
                config[key] = deserialize_value(value)
    return config
