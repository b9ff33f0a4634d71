"""Evaluation networks compute in float32 whatever the global (training) Keras policy.

FID, KID and IS compare across runs only when their feature extractor computes
the same way: a classifier or Inception-v3 built (or a `SampleMetric` created)
while a run trains under ``mixed_bfloat16`` / ``mixed_float16`` must give the
float32 numbers (within float32 round-off, far below bfloat16's 3 digits).
"""
import keras
import numpy as np
import pytest

from tfgan2 import classifier, features, full_precision, sample_metrics

MIXED = ["mixed_bfloat16", "mixed_float16"]


def _images(n=16, size=8, channels=1, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype(np.float32)


def _layers(model):
    """``model`` and every layer in it, nested models included."""
    found = [model]
    for layer in getattr(model, "layers", []):
        found.extend(_layers(layer))
    return found


def _compute_dtypes(model):
    return {layer.name: layer.compute_dtype for layer in _layers(model)
            if keras.backend.is_float_dtype(layer.compute_dtype)}


def _assert_float32(model):
    low = sorted(k for k, v in _compute_dtypes(model).items() if v != "float32")
    assert not low, f"{len(low)} layers compute below float32, e.g. {low[:5]}"


def _close(a, b):
    # float32 round-off of a few hundred products; bfloat16 differs by ~1e-2.
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MIXED)
def test_classifier_built_under_a_mixed_policy_gives_the_float32_numbers(policy, name):
    reference = classifier.build_classifier((8, 8, 1), 3)
    x = _images()
    expected = classifier.classifier_outputs(reference, x)
    policy(name)
    model = classifier.build_classifier((8, 8, 1), 3)
    model.set_weights(reference.get_weights())
    _assert_float32(model)
    for got, want in zip(classifier.classifier_outputs(model, x), expected):
        _close(got, want)
    attributes = classifier.build_attribute_classifier((8, 8, 1), 4)
    _assert_float32(attributes)


def test_classifier_trained_under_mixed_float16_is_float32_without_loss_scaling(policy):
    policy("mixed_float16")
    x = _images(24)
    y = np.arange(24) % 3
    model, accuracy = classifier.train_classifier(x, y, epochs=1, batch_size=8,
                                                  validation_split=0.25)
    _assert_float32(model)
    assert model.dtype_policy.name == "float32"
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert 0.0 <= accuracy <= 1.0


def test_classifier_outputs_switch_a_mixed_model_to_float32(policy):
    reference = classifier.build_classifier((8, 8, 1), 3)
    x = _images()
    expected = classifier.classifier_outputs(reference, x)
    policy("mixed_bfloat16")
    # A model as a user builds it under the mixed policy (which keeps float32 variables).
    model = keras.models.clone_model(reference)
    model.set_weights(reference.get_weights())
    for layer in _layers(model):
        layer.dtype_policy = "mixed_bfloat16"
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    for got, want in zip(classifier.classifier_outputs(model, x), expected):
        _close(got, want)
    _assert_float32(model)


def test_a_classifier_saved_in_mixed_precision_loads_as_float32(policy, tmp_path):
    x = _images(24)
    y = np.arange(24) % 3
    path = str(tmp_path / "classifier.keras")
    trained, info = features.load_or_train_classifier(path, x, y, epochs=1)
    assert info["trained"]
    expected = classifier.classifier_outputs(trained, x)
    # The file as an older version wrote it when evaluation ran under the training policy.
    for layer in _layers(trained):
        layer.dtype_policy = "mixed_bfloat16"
    trained.save(path)
    policy("mixed_bfloat16")
    model, info = features.load_or_train_classifier(path, x, y, epochs=1)
    assert not info["trained"]
    _assert_float32(model)
    for got, want in zip(features.ClassifierExtractor(model)(x), expected):
        _close(got, want)


def test_attribute_classifier_loaded_under_a_mixed_policy_is_float32(policy, tmp_path):
    x = _images(12)
    attributes = (np.arange(24).reshape(12, 2) % 3 == 0).astype(np.float32)
    path = str(tmp_path / "attributes.keras")
    policy("mixed_bfloat16")
    model, info = classifier.load_or_train_attribute_classifier(path, x, attributes, epochs=1)
    assert info["trained"]
    _assert_float32(model)
    loaded, info = classifier.load_or_train_attribute_classifier(path, x, attributes, epochs=1)
    assert not info["trained"]
    _assert_float32(loaded)


def test_inception_features_built_under_a_mixed_policy_are_float32(policy):
    # One mixed policy only: building Inception-v3 twice is the slow part.
    reference = sample_metrics.inception_features((8, 8, 1), random_weights=True,
                                                  input_size=75)
    x = _images(4)
    expected = np.asarray(reference(x, training=False))
    policy("mixed_bfloat16")
    model = sample_metrics.inception_features((8, 8, 1), random_weights=True, input_size=75)
    model.set_weights(reference.get_weights())
    _assert_float32(model)  # the InceptionExtractor network inside and the input layer
    got = np.asarray(model(x, training=False))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def _dense_features(seed=0):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(16, activation="tanh", name="hidden")(x)
    outputs = keras.layers.Dense(6, name="out")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("metric_class", [sample_metrics.FrechetDistance,
                                          sample_metrics.KernelDistance])
def test_sample_metric_of_a_mixed_feature_model_gives_the_float32_value(policy, metric_class):
    keras.utils.set_random_seed(3)
    reference_model = _dense_features()
    real, fake = _images(12, seed=1), 0.8 * _images(12, seed=2)
    reference = metric_class(reference_model)
    reference.update_state(real, fake)
    expected = float(reference.result())
    policy("mixed_bfloat16")
    mixed_model = _dense_features()
    mixed_model.set_weights(reference_model.get_weights())
    assert set(_compute_dtypes(mixed_model).values()) == {"bfloat16"}
    metric = metric_class(mixed_model)
    _assert_float32(metric.get_feature_model())
    metric.update_state(real, fake)
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-4)


def test_float32_model_refuses_low_precision_variables():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, dtype="bfloat16")(inputs))
    with pytest.raises(ValueError, match="bfloat16 variables"):
        full_precision.float32_model(model)


def test_float32_scope_restores_the_global_policy(policy):
    policy("mixed_bfloat16")
    with full_precision.float32_scope():
        assert keras.mixed_precision.global_policy().name == "float32"
        layer = keras.layers.Dense(2)
    assert layer.compute_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    with pytest.raises(RuntimeError):
        with full_precision.float32_scope():
            raise RuntimeError("inside")
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"


def _trained_classifier():
    """A `tfgan2.classifier` CNN with non-trivial weights, built under float32."""
    keras.utils.set_random_seed(5)
    model = classifier.build_classifier((8, 8, 1), 3)
    weights = [w + 0.05 * np.random.default_rng(i).standard_normal(w.shape).astype(np.float32)
               for i, w in enumerate(model.get_weights())]
    model.set_weights(weights)
    return model


@pytest.mark.parametrize("name", MIXED)
def test_feature_models_under_a_mixed_policy_output_the_float32_features(policy, name):
    # The feature model of a sample metric, built from a classifier made under the mixed
    # training policy: float32 outputs equal to the float32 run's, global policy untouched.
    reference = _trained_classifier()
    x = _images(8)
    expected = np.asarray(sample_metrics.classifier_features(reference)(x, training=False))
    assert expected.dtype == np.float32
    policy(name)
    model = classifier._classifier_network((8, 8, 1), 3, 128, 0.5, "user_classifier")
    assert model.get_layer("conv1").compute_dtype != "float32"  # as a user's model would be
    model.set_weights(reference.get_weights())
    feature_model = sample_metrics.classifier_features(model)
    assert keras.mixed_precision.global_policy().name == name
    got = feature_model(x, training=False)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
    # A feature model a user builds under the training policy and hands to a metric.
    user = classifier._classifier_network((8, 8, 1), 3, 128, 0.5, "user_classifier_2")
    user.set_weights(reference.get_weights())
    user_features = keras.Model(user.inputs, user.get_layer("features").output)
    assert user_features.get_layer("features").compute_dtype != "float32"
    metric = sample_metrics.FrechetDistance(user_features)
    got = metric.get_feature_model()(x, training=False)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
    assert keras.mixed_precision.global_policy().name == name


def test_classifier_extractor_under_mixed_bfloat16_matches_float32_and_keeps_the_policy(policy):
    reference = _trained_classifier()
    x = _images(8)
    probs_32, feats_32 = features.ClassifierExtractor(reference)(x)
    policy("mixed_bfloat16")
    model = classifier._classifier_network((8, 8, 1), 3, 128, 0.5, "user_classifier")
    model.set_weights(reference.get_weights())
    probs, feats = features.ClassifierExtractor(model)(x)
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    np.testing.assert_allclose(feats, feats_32, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs, probs_32, rtol=1e-5, atol=1e-6)
