"""What a replica of a distributed step needs to act like one device on the whole batch.

A training step under a `tf.distribute` strategy runs once per replica on
that replica's share of the global batch. Three things make the step the same
on one device or many:

* random draws are made for the global batch and each replica keeps its own
  rows (`Rows`): replica ``r`` of ``R`` with ``B`` examples keeps rows
  ``[r B, (r + 1) B)`` of a draw of ``R B`` rows;
* statistics over the batch (the relativistic losses' mean logits, ADA's
  overfitting signal) are sums all-reduced over the replicas (`global_sums`);
* variables updated outside an optimizer (EMA weights, clipped weights) are
  written on every replica's copy with the same value (`assign`);
* a decision made from local gradients, such as dynamic loss scaling's "skip
  this step", is made from all replicas' gradients (`non_finite_everywhere`).

Nothing here knows about GANs.
"""
import keras
import tensorflow as tf

__all__ = ["Rows", "this_replica", "global_sums", "assign", "non_finite_everywhere"]


class Rows:
    """Rows ``[start, start + count)`` of a draw made for ``total`` examples.

    ``start`` and ``total`` are Python ints or int32 scalar tensors.
    """

    def __init__(self, start, total, count):
        self.start, self.total, self.count = start, total, count

    def take(self, draw):
        """These rows of ``draw(total)``; ``draw(n)`` must be a deterministic function
        of its seed, so every replica makes the same global draw."""
        if self.total is self.count:  # the whole draw: one replica, or no strategy
            return draw(self.count)
        return draw(self.total)[self.start:self.start + self.count]

    def as_tensor(self):
        """``[start, total]`` as an int32 tensor (what `tfgan2.augment` layers take as ``rows``)."""
        return tf.stack([tf.cast(self.start, tf.int32), tf.cast(self.total, tf.int32)])


def this_replica(batch_size):
    """`Rows` of this replica's ``batch_size`` examples in the global batch.

    Outside a strategy, or with one replica, the rows are the whole draw.
    """
    ctx = tf.distribute.get_replica_context()
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if ctx is None or replicas == 1:
        return Rows(0, batch_size, batch_size)
    replica = ctx.replica_id_in_sync_group
    # A Python int where the strategy knows it statically (mirrored, multi-worker):
    # the replica-id tensor captured inside Keras's steps_per_execution loop is
    # otherwise left as an unfed placeholder.
    static = tf.get_static_value(replica)
    replica = int(static) if static is not None else tf.cast(replica, tf.int32)
    return Rows(replica * batch_size, batch_size * replicas, batch_size)


def global_sums(values):
    """``values`` (a list of tensors) summed over all replicas of the step.

    The identity outside a replica context with several replicas. Gradients
    flow back through the all-reduce.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, values)
    return values


def assign(variables, values, update=None):
    """``update(v, x)`` (default ``v.assign(x)``) for each pair, also from a replica context.

    ``v`` is the `tf.Variable` itself (this device's copy under a strategy).
    The values must be identical on every replica (computed from synchronized
    weights), so each device keeps its own copy.
    """
    update = update or (lambda v, x: v.assign(x))
    ctx = tf.distribute.get_replica_context()
    if ctx is None or not tf.distribute.has_strategy():
        for var, value in zip(variables, values):
            update(var.value if isinstance(var, keras.Variable) else var, value)
        return

    def merge(strategy, values):
        for var, value in zip(variables, values):
            strategy.extended.update(var.value, update, args=(value,), group=False)

    ctx.merge_call(merge, args=(values,))


def non_finite_everywhere(grads):
    """``grads``, made NaN on every replica when any replica's gradients are not finite.

    `keras.optimizers.LossScaleOptimizer` decides whether to skip a step
    from the gradients it is given, before the cross-replica all-reduce: an
    overflow on one replica alone would be summed into every replica's
    update (NaN weights), and replicas could decide differently. With this,
    one all-reduced count decides: every replica skips the step (and halves
    its loss scale), or none does. The identity with one replica.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return grads
    present = [g for g in grads if g is not None]
    local_bad = tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(g), tf.float32))
                          for g in present]) if present else tf.constant(0.0)
    any_bad = global_sums(local_bad) > 0
    return [None if g is None else g + tf.where(any_bad, tf.cast(float("nan"), g.dtype),
                                                 tf.zeros([], g.dtype))
            for g in grads]
