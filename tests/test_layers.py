"""FusedBatchNormalization against keras.layers.BatchNormalization, which it replaces."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan2 import networks
from tfgan2.layers import FusedBatchNormalization


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    reference, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
    reference.build(shape)
    fused.build(shape)
    reference.gamma.assign(rng.normal(1.0, 0.3, shape[-1:]).astype("float32"))
    reference.beta.assign(rng.normal(0.0, 0.5, shape[-1:]).astype("float32"))
    reference.moving_mean.assign(rng.normal(0.0, 1.0, shape[-1:]).astype("float32"))
    reference.moving_variance.assign(rng.uniform(0.5, 2.0, shape[-1:]).astype("float32"))
    fused.set_weights(reference.get_weights())
    x = tf.constant(rng.normal(2.0, 3.0, shape).astype("float32"))
    return reference, fused, x


@pytest.mark.parametrize("shape", [(16, 5), (4, 6, 6, 3)])
def test_training_step_matches_keras(shape):
    reference, fused, x = _pair(shape)
    start_variance = fused.moving_variance.numpy()
    weights = tf.constant(np.random.default_rng(1).normal(size=shape).astype("float32"))
    results = []
    for layer in (reference, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(weights * y) + tf.reduce_sum(y ** 2)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance])
    names = ["y", "dx", "dgamma", "dbeta", "moving_mean", "moving_variance"]
    for name, a, b in zip(names, *results):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(a).max()),
                                   err_msg=name)
    # The formula itself, with the biased batch variance that Keras averages.
    n = int(np.prod(shape[:-1]))
    batch_var = np.var(x.numpy().reshape(n, -1), axis=0)
    np.testing.assert_allclose(fused.moving_variance.numpy(),
                               0.99 * start_variance + 0.01 * batch_var, rtol=1e-5)


def test_inference_and_mixed_bfloat16_match_keras():
    reference, fused, x = _pair((4, 8, 8, 6))
    np.testing.assert_allclose(fused(x, training=False), reference(x, training=False),
                               rtol=1e-6, atol=1e-6)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        reference, fused, x = _pair((4, 8, 8, 6))
        xb = tf.cast(x, tf.bfloat16)
        ya, yb = reference(xb, training=True), fused(xb, training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert yb.dtype == ya.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(yb, tf.float32), tf.cast(ya, tf.float32), atol=0.05)
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(),
                               rtol=1e-5, atol=1e-5)


def test_under_mirrored_strategy_moving_statistics_match(mirrored):
    with mirrored.scope():
        reference, fused, x = _pair((8, 4, 4, 3), seed=2)
    halves = mirrored.experimental_distribute_values_from_function(
        lambda ctx: x[4 * ctx.replica_id_in_sync_group:4 * (ctx.replica_id_in_sync_group + 1)])
    before = fused.moving_mean.numpy()
    for layer in (reference, fused):
        mirrored.run(tf.function(lambda t, layer=layer: layer(t, training=True)),
                     args=(halves,))
    assert not np.allclose(fused.moving_mean.numpy(), before)
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(),
                               reference.moving_variance.numpy(), rtol=1e-5, atol=1e-6)


def test_checkpoints_of_keras_batch_norm_networks_restore(tmp_path):
    """The layer keeps Keras' variables, so earlier checkpoints stay loadable."""
    fused_net = networks.dcgan_generator(latent_dim=4, resolution=8, channels=1, capacity=2)
    keras_net = networks.dcgan_generator(latent_dim=4, resolution=8, channels=1, capacity=2,
                                         sync_batchnorm=True)  # plain Keras BN layers
    assert any(isinstance(l, FusedBatchNormalization) for l in fused_net.layers)
    assert not any(isinstance(l, FusedBatchNormalization) for l in keras_net.layers)
    rng = np.random.default_rng(3)
    keras_net.set_weights([rng.normal(size=w.shape).astype("float32")
                           for w in keras_net.get_weights()])
    path = tf.train.Checkpoint(g=keras_net).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(g=fused_net).read(path).assert_existing_objects_matched()
    for a, b in zip(keras_net.get_weights(), fused_net.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_unsupported_cases_fall_back_to_keras():
    layer = FusedBatchNormalization(axis=1)
    x = tf.constant(np.random.default_rng(4).normal(size=(4, 3, 5)).astype("float32"))
    reference = keras.layers.BatchNormalization(axis=1)
    np.testing.assert_allclose(layer(x, training=True), reference(x, training=True),
                               rtol=1e-5, atol=1e-5)
