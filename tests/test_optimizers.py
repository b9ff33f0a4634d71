"""tfgan2.optimizers.FusedAdam: Keras's Adam update, run as TensorFlow's fused kernel."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan2.optimizers import FusedAdam


def train_variable(optimizer, steps=6, strategy=None, **kwargs):
    """A (16, 8) variable after ``steps`` updates with gradient ``g * w`` (w-dependent)."""
    scope = strategy.scope() if strategy is not None else tf.name_scope("single")
    with scope:
        w = keras.Variable(np.random.default_rng(0).normal(size=(16, 8)).astype("float32"))
        opt = optimizer(learning_rate=kwargs.pop("learning_rate", 0.05), beta_1=0.5, **kwargs)
        opt.build([w])
    g = tf.constant(np.random.default_rng(1).normal(size=(16, 8)).astype("float32"))

    @tf.function
    def step():
        if strategy is None:
            opt.apply([g * w], [w])
        else:
            strategy.run(lambda: opt.apply([g * w / strategy.num_replicas_in_sync], [w]))

    for _ in range(steps):
        step()
    return w.numpy(), [v.numpy() for v in opt.variables]


@pytest.mark.parametrize("kwargs", [
    {},
    dict(beta_2=0.9, epsilon=1e-3),
    dict(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.05, 2, 0.5)),
    dict(clipnorm=0.1),
    dict(amsgrad=True),  # falls back to Keras's update
])
def test_same_updates_and_state_as_keras_adam(kwargs):
    w_keras, state_keras = train_variable(keras.optimizers.Adam, **dict(kwargs))
    w_fused, state_fused = train_variable(FusedAdam, **dict(kwargs))
    assert not np.allclose(w_keras, np.random.default_rng(0).normal(size=(16, 8)))  # it moved
    np.testing.assert_allclose(w_fused, w_keras, rtol=1e-5, atol=1e-6)
    assert len(state_fused) == len(state_keras)
    for a, b in zip(state_fused, state_keras):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_two_replicas_match_one(mirrored):
    one, _ = train_variable(FusedAdam)
    two, _ = train_variable(FusedAdam, strategy=mirrored)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)


def test_sparse_gradients_fall_back_to_keras():
    def run(optimizer):
        keras.utils.set_random_seed(0)
        layer = keras.layers.Embedding(10, 4)
        layer.build((None,))
        opt = optimizer(0.1)
        ids = tf.constant([1, 3, 3])
        for _ in range(3):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(ids) ** 2)
            grads = tape.gradient(loss, layer.trainable_variables)
            assert isinstance(grads[0], tf.IndexedSlices)
            opt.apply(grads, layer.trainable_variables)
        return layer.get_weights()[0]

    np.testing.assert_allclose(run(FusedAdam), run(keras.optimizers.Adam), rtol=1e-6)


def test_checkpoints_and_configs_are_interchangeable_with_keras_adam(tmp_path):
    w = keras.Variable(np.ones((3, 2), "float32"))
    adam = keras.optimizers.Adam(0.1)
    adam.apply([tf.ones((3, 2))], [w])
    path = tf.train.Checkpoint(opt=adam, w=w).save(str(tmp_path / "ckpt"))
    w2 = keras.Variable(np.zeros((3, 2), "float32"))
    fused = FusedAdam(0.1)
    fused.build([w2])
    tf.train.Checkpoint(opt=fused, w=w2).restore(path).assert_existing_objects_matched()
    assert int(fused.iterations.numpy()) == 1
    for a, b in zip(fused.variables, adam.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    config = keras.optimizers.serialize(FusedAdam(0.01, beta_1=0.3))
    restored = keras.optimizers.deserialize(config)
    assert type(restored) is FusedAdam and restored.beta_1 == 0.3


def test_a_gan_with_fused_adam_saves_loads_and_trains_like_keras_adam(tmp_path, tiny_gan,
                                                                     images):
    def gan(optimizer):
        model = tiny_gan(latent_dim=4, hidden=8, seed=1, init_seed=0)
        model.compile(optimizer(1e-2), optimizer(1e-2))
        return model

    data = tf.data.Dataset.from_tensors(images(8)).repeat()
    fused, plain = gan(FusedAdam), gan(keras.optimizers.Adam)
    for model in (fused, plain):
        model.fit(data, steps_per_epoch=4, epochs=1, verbose=0)
    for a, b in zip(fused.generator.get_weights(), plain.generator.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    fused.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert type(loaded.g_optimizer) is FusedAdam
    assert int(loaded.g_optimizer.iterations.numpy()) == 4


def test_dense_updates_run_the_fused_kernel():
    w = keras.Variable(np.ones((3, 2), "float32"))
    opt = FusedAdam(0.1)
    opt.build([w])
    graph = tf.function(lambda g: opt.apply([g], [w])).get_concrete_function(
        tf.TensorSpec((3, 2), tf.float32)).graph
    kinds = {op.type for op in graph.get_operations()}
    assert "ResourceApplyAdam" in kinds and "Sqrt" not in kinds
