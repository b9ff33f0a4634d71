"""Choosing a `tf.distribute` strategy by name.

Build the networks, the `GAN` and both optimizers inside ``strategy.scope()``
(``GAN.compile`` builds the optimizers' slots right away), then ``fit`` a
dataset whose batch is the *global* batch; Keras splits it across replicas.
"""
import json
import os
import re

import tensorflow as tf

__all__ = ["STRATEGIES", "split_cpu", "make_strategy", "communication_options", "is_chief",
           "is_multi_worker", "task_id", "PeerLostError", "PEER_ERRORS", "peer_lost_message"]

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


def communication_options(collective_timeout=None, gpus=None):
    """`tf.distribute.experimental.CommunicationOptions` of a multi-worker strategy.

    NCCL all-reduce when this machine has GPUs (``gpus``: default, the physical
    GPUs TensorFlow sees), which keeps the gradients on the GPUs; otherwise the
    RING implementation (gRPC between the workers' CPUs, what AUTO chooses there).
    ``collective_timeout``: see `make_strategy`.
    """
    if gpus is None:
        gpus = tf.config.list_physical_devices("GPU")
    implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL if gpus
                      else tf.distribute.experimental.CommunicationImplementation.RING)
    return tf.distribute.experimental.CommunicationOptions(
        implementation=implementation,
        timeout_seconds=float(collective_timeout) if collective_timeout else None)


def make_strategy(name="default", devices=None, tpu=None, collective_timeout=None):
    """A strategy by name.

    Args:
      name: ``"default"`` (no distribution), ``"mirrored"`` (all local GPUs, or
        ``devices``; on a machine without GPUs, all logical CPUs), ``"multi_worker"``
        (`MultiWorkerMirroredStrategy` configured from ``TF_CONFIG``, all-reducing
        with NCCL on GPUs, `communication_options`) or
        ``"tpu"`` (`TPUStrategy` through a `TPUClusterResolver` for ``tpu``).
      devices: device names for ``mirrored``, e.g. ``["/gpu:0", "/gpu:1"]``.
      tpu: TPU name or address for ``tpu`` (``None``/``"local"`` for a local TPU VM).
      collective_timeout: ``multi_worker`` only: seconds after which a collective
        operation (the gradient all-reduce of every step) that has not completed
        fails with `tf.errors.DeadlineExceededError` instead of waiting forever
        for a peer that is alive but stuck. ``None`` or 0: no limit. It must
        exceed the longest pause of one worker between two steps (the chief's
        evaluations, sample grids and checkpoint saves). A peer that *dies* is
        noticed sooner: its closed connection fails the next collective at once,
        and TensorFlow's coordination service declares a silent peer dead after
        10 s without heartbeats; either way collectives fail with
        `tf.errors.UnavailableError` (see `PeerLostError`).

    Raises:
      ValueError: unknown name, ``multi_worker`` without ``TF_CONFIG``, a
        negative ``collective_timeout``, or ``tpu`` without a reachable TPU.
    """
    if collective_timeout is not None and not collective_timeout >= 0:
        raise ValueError(f"collective_timeout must be a number of seconds >= 0 (0: no limit), "
                         f"got {collective_timeout!r}.")
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
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=communication_options(collective_timeout))
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


class PeerLostError(RuntimeError):
    """A multi-worker run cannot go on: a peer died, became unreachable or stopped responding.

    ``peers`` lists the ``(task_type, task_index, address)`` named by
    TensorFlow's error (empty when it named none, e.g. a collective timeout).
    """

    def __init__(self, message, peers=()):
        super().__init__(message)
        self.peers = list(peers)


# What a collective operation raises when a peer is gone (closed connection,
# missed heartbeats, aborted collectives) or does not answer in time.
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
               tf.errors.CancelledError, tf.errors.AbortedError)

_TASK_IN_MESSAGE = re.compile(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)")


def peer_lost_message(error, strategy=None):
    """``(message, peers)`` describing ``error`` (one of `PEER_ERRORS`) as the loss of peers.

    The peers are the tasks other than this one named in TensorFlow's message
    (``/job:worker/replica:0/task:1``), with their addresses from the
    strategy's cluster spec (or ``TF_CONFIG``).
    """
    own = task_id(strategy)
    cluster = _cluster(strategy)
    text = str(error)
    peers = []
    for job, index in _TASK_IN_MESSAGE.findall(text):
        key = (job, int(index))
        if key != own and key not in [p[:2] for p in peers]:
            peers.append((job, int(index), cluster.get(job, {}).get(int(index), "?")))
    text_without_nodes = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    lines = [line.strip() for line in text_without_nodes.strip().splitlines() if line.strip()]
    at = next((i for i, line in enumerate(lines) if "unhealthy" in line or "aborted by" in line),
              0)
    reason = lines[at] if lines else repr(error)
    if reason.endswith(":") and at + 1 < len(lines):  # the list of tasks follows
        reason += " " + lines[at + 1]
    reason = reason[:300]
    me = f"{own[0]} {own[1]}" if own[0] else "this process"
    if peers:
        names = ", ".join(f"{job} {index} ({address})" for job, index, address in peers)
        what = f"{me} lost its peer {names}"
    else:
        others = [f"{job} {i} ({address})" for job, tasks in sorted(cluster.items())
                  for i, address in sorted(tasks.items()) if (job, i) != own]
        kind = ("a collective operation timed out"
                if isinstance(error, tf.errors.DeadlineExceededError)
                else "a collective operation failed")
        what = (f"{me}: {kind}; a peer is gone or stuck (the cluster's other tasks: "
                f"{', '.join(others) or 'none'})")
    return (f"{what}: {type(error).__name__}: {reason}. The run cannot continue without it: "
            f"restart every worker of the cluster to resume from the last checkpoint."), peers


def _cluster(strategy):
    """``{job: {index: address}}`` of the cluster, from the strategy's resolver or ``TF_CONFIG``."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        spec = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster", {})
    # A job is a list of addresses, or {index: address} when sparse.
    return {job: dict(tasks) if isinstance(tasks, dict) else dict(enumerate(tasks))
            for job, tasks in spec.items()}
