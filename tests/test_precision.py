"""Mixed precision (bfloat16 / float16 with loss scaling) and synchronized batch norm."""
import keras
import numpy as np
import pytest
import tensorflow as tf


@pytest.mark.parametrize("name", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_logits_losses_and_weights_float32(policy, name, tiny_gan, compiled,
                                                                 images, batches):
    policy(name)
    gan = compiled(tiny_gan("dcgan", latent_dim=4, size=8, seed=None, init_seed=0,
                            ema_decay=0.9), beta_1=0.9, r1_gamma=1.0)
    compute = name.split("_")[1]
    assert gan.discriminator.get_layer("block0_conv0").compute_dtype == compute
    assert all(v.dtype == "float32" for v in gan.generator.trainable_variables)
    fake = gan.generator(np.zeros((2, 4), np.float32), training=False)
    assert fake.dtype == tf.float32
    assert gan.discriminator(fake).dtype == tf.float32
    wrapped = isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert wrapped == (name == "mixed_float16")
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer) == wrapped
    before = [w.copy() for w in gan.generator.get_weights()]
    hist = gan.fit(batches(images(8, size=8), batch=4), steps_per_epoch=3, epochs=1,
                   verbose=0).history
    assert np.isfinite(hist["d_loss"][0]) and np.isfinite(hist["g_loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, gan.generator.get_weights()))
    assert gan.generate(3).dtype == np.float32


def test_sync_batchnorm_uses_global_batch_statistics(mirrored):
    strategy = mirrored
    x = np.random.default_rng(1).normal(size=(8, 3)).astype("float32")
    x[4:] += 5.0  # the two replicas' halves have very different means
    outputs = {}
    for synchronized in (True, False):
        with strategy.scope():
            layer = keras.layers.BatchNormalization(synchronized=synchronized)
            layer.build((None, 3))
        halves = strategy.experimental_distribute_values_from_function(
            lambda ctx: x[ctx.replica_id_in_sync_group * 4:(ctx.replica_id_in_sync_group + 1) * 4])
        out = strategy.run(tf.function(lambda v: layer(v, training=True)), args=(halves,))
        outputs[synchronized] = np.concatenate(
            [t.numpy() for t in strategy.experimental_local_results(out)])
    whole = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    np.testing.assert_allclose(outputs[True], whole, rtol=1e-4, atol=1e-4)
    assert not np.allclose(outputs[False], whole, atol=1e-2)
