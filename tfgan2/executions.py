"""Several training steps per call of the step function on several replicas.

Keras runs ``steps_per_execution`` > 1 as a `tf.while_loop` whose body calls
the step inside a `tf.cond` (to stop early when the data runs out). Under a
`tf.distribute` strategy with more than one replica, the optimizers' update
goes through a cross-replica ``merge_call``, which cannot capture tensors
from inside that ``tf.cond``: the step fails with ``InvalidArgumentError:
... while/cond/Placeholder`` (Keras 3.15, TensorFlow 2.21).

`train_function` builds what Keras's ``make_train_function`` would, but
with the steps of an execution unrolled in Python: one `tf.function` that
takes ``steps_per_execution`` batches from the distributed iterator and
calls the one-step function on each, in order. Its graph holds that many
calls of the one traced step (not copies of it). The difference from
Keras's loop: data that runs out inside an execution ends it with
``OutOfRangeError`` (Keras ends the epoch, as for data that ran out between
executions). Each batch is fetched while the step before it runs, so the
last steps before the end of the data may not have run, and the logs of
those that did are not reported (the step counter counts them).
`tfgan2.train` repeats finite datasets, so it never happens there.

Nothing here knows about GANs.
"""
import tensorflow as tf

from tfgan2 import distribute

__all__ = ["unrolled", "train_function"]


def unrolled(model):
    """True when ``model``'s executions must be unrolled: more than one step per execution
    and more than one replica in sync."""
    return (int(getattr(model, "steps_per_execution", 1) or 1) > 1
            and model.distribute_strategy.num_replicas_in_sync > 1)


def _reduce(strategy, values):
    """Per-replica logs as one value each: the mean over the replicas, as Keras's
    ``reduce_per_replica(..., "auto")`` gives them (multi-worker values carry a batch
    axis of 1 for ``strategy.reduce``, see `tfgan2.step_metrics.StepMetrics.logs`)."""
    multi_worker = distribute.is_multi_worker(strategy)

    def reduce(value):
        if multi_worker:
            return strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=0)
        if isinstance(value, tf.distribute.DistributedValues):
            return tf.reduce_mean(strategy.experimental_local_results(value), axis=0)
        return value

    return tf.nest.map_structure(reduce, values)


def train_function(model):
    """``function(iterator) -> logs`` running ``model.steps_per_execution`` training steps
    (``model.train_step`` on each replica) per call, the logs of the last one returned.

    What Keras's ``fit`` calls once per execution with its distributed iterator
    (or, as Keras's own function accepts, a list of distributed batches).
    Eager when ``model.run_eagerly``.
    """
    strategy = model.distribute_strategy
    steps = int(model.steps_per_execution)

    def one_step(data):
        return _reduce(strategy, strategy.run(model.train_step, args=(data,)))

    def several_steps(iterator):
        logs = None
        for _ in range(steps):
            logs = one_step(next(iterator))
        return logs

    if not model.run_eagerly:
        one_step = tf.function(one_step, reduce_retracing=True)
        several_steps = tf.function(several_steps, reduce_retracing=True)

    def function(iterator):
        if isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            return several_steps(iterator)
        logs = None
        for data in iterator:
            logs = one_step(data)
        return logs

    return function
