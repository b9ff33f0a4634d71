"""Streaming FrechetDistance / KernelDistance metrics against tfgan2.metrics' NumPy math."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan2 import metrics, sample_metrics


def identity(dim):
    inputs = keras.Input((dim,))
    return keras.Model(inputs, keras.layers.Identity()(inputs))


def feature_sets(n=60, dim=4, shift=0.5, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, dim))
    fake = rng.normal(size=(n, dim)) * 1.3 + shift
    return real.astype("float32"), fake.astype("float32")


def stream(metric, real, fake, batch):
    for start in range(0, len(real), batch):
        metric.update_state(real[start:start + batch], fake[start:start + batch])
    return float(metric.result())


def test_streaming_frechet_distance_equals_the_whole_set_computation():
    real, fake = feature_sets()
    metric = sample_metrics.FrechetDistance(identity(4))
    expected = metrics.frechet_distance(real.astype(np.float64), fake.astype(np.float64))
    assert stream(metric, real, fake, batch=7) == pytest.approx(expected, rel=1e-5)
    metric.reset_state()
    assert np.isnan(float(metric.result()))  # fewer than 2 samples
    same = sample_metrics.FrechetDistance(identity(4))
    assert stream(same, real, real, batch=10) == pytest.approx(0.0, abs=1e-4)


def test_kernel_distance_is_the_mean_of_per_batch_unbiased_estimates():
    real, fake = feature_sets(n=48)
    metric = sample_metrics.KernelDistance(identity(4))
    value = stream(metric, real, fake, batch=12)
    blocks = [metrics.kernel_inception_distance(real[i:i + 12].astype(np.float64),
                                                fake[i:i + 12].astype(np.float64),
                                                num_subsets=1, subset_size=12)
              for i in range(0, 48, 12)]
    assert value == pytest.approx(np.mean(blocks), rel=1e-5)
    assert value > 0.05
    near = sample_metrics.KernelDistance(identity(4))
    other = feature_sets(n=48, shift=0.0, seed=1)[0]
    assert abs(stream(near, real, other, batch=12)) < 0.05 * value


def test_state_stays_bounded_and_updates_work_in_graph_mode():
    real, fake = feature_sets(n=64)
    fd = sample_metrics.FrechetDistance(identity(4))
    kid = sample_metrics.KernelDistance(identity(4))
    sizes = [sum(int(np.prod(v.shape)) for v in m.variables) for m in (fd, kid)]

    @tf.function
    def update(r, f):
        fd.update_state(r, f)
        kid.update_state(r, f)

    for start in range(0, 64, 8):
        update(real[start:start + 8], fake[start:start + 8])
    assert [sum(int(np.prod(v.shape)) for v in m.variables) for m in (fd, kid)] == sizes
    assert sizes == [2 * (1 + 4 + 16), 2]
    assert float(fd.result()) == pytest.approx(
        metrics.frechet_distance(real.astype(np.float64), fake.astype(np.float64)), rel=1e-5)


def test_metrics_round_trip_through_their_config():
    model = identity(4)
    for cls in (sample_metrics.FrechetDistance, sample_metrics.KernelDistance):
        metric = cls(model, name="x")
        clone = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(metric))
        assert type(clone) is cls and clone.name == "x" and clone.feature_dim == 4


def test_feature_model_must_give_flat_features():
    inputs = keras.Input((4, 4, 1))
    with pytest.raises(ValueError, match=r"\(B, F\)"):
        sample_metrics.KernelDistance(keras.Model(inputs, inputs))
    with pytest.raises(ValueError, match="keras.Model"):
        sample_metrics.KernelDistance(lambda x: x)


def test_inception_feature_model_maps_small_images_to_2048_features():
    model = sample_metrics.inception_features((8, 8, 1), random_weights=True, input_size=75)
    assert model(np.zeros((2, 8, 8, 1), np.float32)).shape == (2, 2048)
    with pytest.raises(FileNotFoundError, match="does not download"):
        sample_metrics.inception_features((8, 8, 1), weights_path="/nonexistent.h5")
