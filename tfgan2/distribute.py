"""Choosing a `tf.distribute` strategy by name.

Build the networks, the `GAN` and both optimizers inside ``strategy.scope()``
(``GAN.compile`` builds the optimizers' slots right away), then ``fit`` a
dataset whose batch is the *global* batch; Keras splits it across replicas.
"""
import json
import os

import tensorflow as tf

__all__ = ["STRATEGIES", "split_cpu", "make_strategy", "is_chief", "is_multi_worker", "task_id"]

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def split_cpu(count):
    """Split the first physical CPU into ``count`` logical devices (call before any TF op).

    Lets `MirroredStrategy` run with ``count`` replicas on a machine without
    GPUs: for trying and testing distributed code, not for speed (the logical
    devices share the same cores).

    Raises:
      RuntimeError: TensorFlow already initialized its devices.
    """
    if int(count) != count or count < 1:
        raise ValueError(f"logical CPU count must be a positive integer, got {count!r}.")
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * int(count))
    except RuntimeError as exc:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing == count:
            return
        raise RuntimeError(f"Cannot split the CPU into {count} devices after TensorFlow "
                           f"initialized {existing}: call split_cpu first.") from exc


def make_strategy(name="default", devices=None, tpu=None):
    """A strategy by name.

    Args:
      name: ``"default"`` (no distribution), ``"mirrored"`` (all local GPUs, or
        ``devices``; on a machine without GPUs, all logical CPUs), ``"multi_worker"``
        (`MultiWorkerMirroredStrategy` configured from ``TF_CONFIG``) or
        ``"tpu"`` (`TPUStrategy` through a `TPUClusterResolver` for ``tpu``).
      devices: device names for ``mirrored``, e.g. ``["/gpu:0", "/gpu:1"]``.
      tpu: TPU name or address for ``tpu`` (``None``/``"local"`` for a local TPU VM).

    Raises:
      ValueError: unknown name, ``multi_worker`` without ``TF_CONFIG``, or
        ``tpu`` without a reachable TPU.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if not devices:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(list(devices))
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy 'multi_worker' needs the TF_CONFIG environment variable "
                             "describing the cluster and this worker's task (see BUILD.md).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise ValueError(f"strategy 'tpu' found no TPU (tpu={tpu!r}): {reason}. Name the "
                             f"TPU or give its grpc:// address, or run on a TPU VM.") from exc
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; valid strategies are: {', '.join(STRATEGIES)}.")


def _task(strategy):
    """``(task_type, task_index, cluster_has_chief)`` from the strategy's resolver, else ``TF_CONFIG``."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and getattr(resolver, "task_type", None):
        return (resolver.task_type, int(resolver.task_id or 0),
                "chief" in resolver.cluster_spec().as_dict())
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    return task.get("type"), int(task.get("index", 0)), "chief" in config.get("cluster", {})


def is_chief(strategy=None):
    """True unless this process is a non-chief worker of a multi-worker cluster."""
    task_type, index, has_chief = _task(strategy)
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and not has_chief


def is_multi_worker(strategy=None):
    """True for a `MultiWorkerMirroredStrategy` over a cluster of more than one process."""
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    resolver = getattr(strategy, "cluster_resolver", None)
    return bool(resolver is not None and resolver.cluster_spec().jobs)


def task_id(strategy=None):
    """``(task_type, task_index)`` of this process in its cluster; ``(None, 0)`` without one.

    Read from the same place as `is_chief` (the strategy's resolver, else ``TF_CONFIG``).
    """
    task_type, index, _ = _task(strategy)
    return task_type, index
