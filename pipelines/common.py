"""The tail every pipeline shares: shuffle, repeat, batch, prefetch; plus sharding helpers.

Batch sizes given to pipelines are GLOBAL batch sizes: under a
`tf.distribute` strategy, Keras ``fit`` splits each batch across replicas.
For one input pipeline per worker use `sharded_input_fn` with
``strategy.distribute_datasets_from_function``, which asks for the
per-replica batch and the worker's shard.
"""
import json
import os

import tensorflow as tf

__all__ = ["finish", "check_batch_size", "check_shard", "with_options", "input_threads",
           "usable_cpus", "num_workers", "sharded_input_fn"]


def check_batch_size(batch_size):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def check_shard(shard):
    """``None`` or ``(num_shards, index)`` with ``0 <= index < num_shards``."""
    if shard is None:
        return None
    try:
        num_shards, index = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise ValueError(f"shard must be (num_shards, index), got {shard!r}.") from None
    if num_shards < 1 or not 0 <= index < num_shards:
        raise ValueError(f"shard must be (num_shards, index) with 0 <= index < num_shards, "
                         f"got {shard!r}.")
    return num_shards, index


def check_skip(skip_batches):
    if int(skip_batches) != skip_batches or skip_batches < 0:
        raise ValueError(f"skip_batches must be an integer >= 0, got {skip_batches!r}.")
    return int(skip_batches)


def finish(ds, batch_size, *, shuffle, repeat, seed=None, buffer_size=10_000, batch_map=None,
           deterministic=None, skip_batches=0):
    """Shuffle (per pass, seeded if ``seed``), repeat, batch with ``drop_remainder``, prefetch.

    ``batch_map``, if given, is applied to each batch (vectorized work such as
    uint8 -> float conversion is cheaper per batch than per element).
    ``deterministic`` is passed to that map (``None``: the dataset's option).
    ``skip_batches``: start the stream that many batches in (a resumed run
    continues where it stopped); the skipped batches are still read, but not
    passed through ``batch_map``.
    """
    batch_size = check_batch_size(batch_size)
    skip_batches = check_skip(skip_batches)
    if shuffle:
        ds = ds.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    if skip_batches:
        ds = ds.skip(skip_batches)
    if batch_map is not None:
        ds = ds.map(batch_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return ds.prefetch(tf.data.AUTOTUNE)


def usable_cpus():
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def input_threads():
    """Size of the private thread pool the image pipelines run on: usable CPUs + 1.

    With single-threaded ops inside the pipeline (see `with_options`), the
    pipeline's parallelism comes from the parallel maps alone; one thread more
    than the CPUs keeps a core busy while another thread waits on a file read.
    """
    return usable_cpus() + 1


def with_options(ds, *, deterministic=None, auto_shard=None, threads="auto"):
    """Set `tf.data.Options`: element order, the auto-shard policy and the threads.

    ``auto_shard`` is a `tf.data.experimental.AutoShardPolicy` (FILE when the
    input has at least one file per worker, DATA otherwise, OFF when the
    pipeline was sharded explicitly).

    ``threads``: ``"auto"`` runs the pipeline on a private pool of
    `input_threads` threads with ``max_intra_op_parallelism=1`` (each decode,
    resize or parse op on one thread; the parallel maps run many at once):
    no op of the pipeline splits itself over the intra-op pool the training
    step uses, and the pipeline spends less CPU per image (measured in
    ``benchmarks/pipeline.py``, which also times ``None``). ``None`` keeps
    tf.data's defaults; an int is the private pool's size.
    """
    options = tf.data.Options()
    if deterministic is not None:
        options.deterministic = bool(deterministic)
    if auto_shard is not None:
        options.experimental_distribute.auto_shard_policy = auto_shard
    if threads is not None:
        if threads == "auto":
            threads = input_threads()
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be 'auto', None or a positive int, got {threads!r}.")
        options.threading.private_threadpool_size = threads
        options.threading.max_intra_op_parallelism = 1
    return ds.with_options(options)


def num_workers():
    """Number of workers (chief included) in ``$TF_CONFIG``; 1 without a cluster."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except ValueError:
        return 1
    return max(1, sum(len(cluster.get(kind, ())) for kind in ("chief", "worker")))


def sharded_input_fn(make_dataset, global_batch_size, steps_done=None, **kwargs):
    """``input_fn(input_context)`` for ``strategy.distribute_datasets_from_function``.

    Calls ``make_dataset(batch_size=per_replica, shard=(num_input_pipelines,
    input_pipeline_id), **kwargs)`` where ``per_replica =
    input_context.get_per_replica_batch_size(global_batch_size)``; each
    worker then reads and decodes only its own part of the data.

    ``steps_done`` (a resumed run's step): also pass ``skip_batches``, the
    per-replica batches this worker's pipeline gave in those steps
    (``steps_done`` times its replicas, ``num_replicas_in_sync /
    num_input_pipelines``), so the stream continues where it stopped.
    """
    check_batch_size(global_batch_size)
    if steps_done is not None and (int(steps_done) != steps_done or steps_done < 0):
        raise ValueError(f"steps_done must be an integer >= 0, got {steps_done!r}.")

    def input_fn(input_context):
        extra = dict(kwargs)
        if steps_done is not None:
            local_replicas = (input_context.num_replicas_in_sync
                              // input_context.num_input_pipelines)
            extra["skip_batches"] = int(steps_done) * local_replicas
        return make_dataset(
            batch_size=input_context.get_per_replica_batch_size(global_batch_size),
            shard=(input_context.num_input_pipelines, input_context.input_pipeline_id),
            **extra)

    return input_fn
