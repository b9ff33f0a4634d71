"""tfgan2.GAN as a whole keras.Model: save/load, evaluate, predict, export, errors."""
import inspect
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import callbacks, networks, sample_metrics

LATENT = 6


def feature_model():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(5, name="feat")(x), name="feats")


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(np.asarray(u), np.asarray(v))
                                    for u, v in zip(a, b))


def state(gan):
    """Everything a continuation depends on, as NumPy arrays."""
    return {
        "generator": gan.generator.get_weights(),
        "discriminator": gan.discriminator.get_weights(),
        "ema": gan.ema_generator.get_weights(),
        "d_opt": [v.numpy() for v in gan.d_optimizer.variables],
        "g_opt": [v.numpy() for v in gan.g_optimizer.variables],
        "step": [gan.step_counter.numpy()],
        "seed": [gan.noise_seed.numpy()],
    }


def assert_same_state(a, b):
    sa, sb = state(a), state(b)
    for key in sa:
        assert same(sa[key], sb[key]), key


# ------------------------------------------------------------------ config
def test_config_holds_every_constructor_and_compile_argument(tiny_gan, compiled):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), gradient_penalty=1.0, metrics=[
        sample_metrics.KernelDistance(feature_model())])
    init = [p for p in inspect.signature(tfgan2.GAN.__init__).parameters.values()
            if p.name != "self" and p.kind != p.VAR_KEYWORD]
    config = gan.get_config()
    assert {p.name for p in init} <= set(config), "a constructor argument is not saved"
    assert config["seed"] == 0 and config["ema_decay"] == 0.9
    comp = [p for p in inspect.signature(tfgan2.GAN.compile).parameters.values()
            if p.name != "self" and p.kind != p.VAR_KEYWORD]
    compile_config = gan.get_compile_config()
    assert {p.name for p in comp} <= set(compile_config), "a compile argument is not saved"
    assert compile_config["gradient_penalty"] == 1.0
    assert len(compile_config["metrics"]) == 1
    # JSON-serializable all the way down.
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(gan))


def test_to_json_and_from_config_rebuild_the_networks(tiny_gan):
    gan = tiny_gan(latent_dim=LATENT, seed=5, ema_decay=0.9)
    clone = keras.models.model_from_json(gan.to_json())
    assert isinstance(clone, tfgan2.GAN)
    assert int(clone.noise_seed.numpy()) == 5 and clone.ema_decay == 0.9
    assert [w.shape for w in clone.generator.weights] == [w.shape for w in gan.generator.weights]
    assert clone.generator is not gan.generator


# --------------------------------------------------------------- save/load
def test_save_and_load_restore_networks_optimizers_step_and_seed(tmp_path, tiny_gan, images,
                                                                 batches):
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=2,
                                                           decay_rate=0.5)
    gan = tiny_gan(latent_dim=LATENT, seed=3, ema_decay=0.9)
    gan.compile(d_optimizer=keras.optimizers.Adam(schedule, beta_1=0.5),
                g_optimizer="adam", loss="hinge", d_steps=2, r1_gamma=0.5)
    gan.fit(batches(images(32)), steps_per_epoch=3, epochs=1, verbose=0)
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True
    assert isinstance(loaded, tfgan2.GAN)
    assert_same_state(gan, loaded)
    assert loaded.step == 3 and loaded.d_optimizer.iterations.numpy() == 6
    assert (loaded.loss_name, loaded.d_steps, loaded.r1_gamma) == ("hinge", 2, 0.5)
    # The schedule is saved with its optimizer and continues from the restored step.
    assert isinstance(loaded.d_optimizer._learning_rate,
                      keras.optimizers.schedules.ExponentialDecay)
    assert float(loaded.d_optimizer.learning_rate) == pytest.approx(1e-3 * 0.5 ** 3)


def test_fit_after_load_continues_bit_exactly(tmp_path, deterministic, tiny_gan, compiled, images,
                                              batches):
    data = images(48)
    keras.utils.set_random_seed(0)
    gan = compiled(tiny_gan(latent_dim=LATENT, seed=1, ema_decay=0.9))
    gan.fit(batches(data), steps_per_epoch=3, epochs=1, verbose=0)
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    loaded = keras.models.load_model(path)
    for model in (gan, loaded):
        model.fit(batches(data), steps_per_epoch=4, epochs=1, verbose=0)
    assert gan.step == loaded.step == 7
    assert_same_state(gan, loaded)
    z = gan.sample_latent(4, seed=2)
    assert np.array_equal(gan.generate(4, latents=z), loaded.generate(4, latents=z))


def test_full_model_checkpoint_every_epoch_and_best_by_val_kid(tmp_path, tiny_gan, compiled,
                                                               images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9),
                   metrics=[sample_metrics.KernelDistance(feature_model())])
    every = str(tmp_path / "ck_{epoch}.keras")
    best = str(tmp_path / "best.keras")
    saved = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved.append((logs["val_kid"], self.model.step))

    gan.fit(batches(images(32)), steps_per_epoch=2, epochs=3, verbose=0,
            validation_data=batches(images(16, seed=9), repeat=False),
            callbacks=[keras.callbacks.ModelCheckpoint(every),
                       keras.callbacks.ModelCheckpoint(best, monitor="val_kid", mode="min",
                                                       save_best_only=True), Record()])
    for epoch in (1, 2, 3):
        path = str(tmp_path / f"ck_{epoch}.keras")
        assert os.path.getsize(path) > 0
        assert keras.models.load_model(path).step == 2 * epoch
    best_kid, best_step = min(saved)
    assert keras.models.load_model(best).step == best_step


# --------------------------------------------------------------- evaluate
def test_evaluate_reports_d_view_and_changes_no_weight(tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9),
                   metrics=[sample_metrics.FrechetDistance(feature_model()),
                            sample_metrics.KernelDistance(feature_model())])
    gan.fit(batches(images(32)), steps_per_epoch=2, epochs=1, verbose=0)
    before = state(gan)
    held_out = batches(images(24, seed=4), repeat=False)
    first = gan.evaluate(held_out, verbose=0, return_dict=True)
    second = gan.evaluate(held_out, verbose=0, return_dict=True)
    after = state(gan)
    for key in before:
        assert same(before[key], after[key]), key
    assert set(first) == {"d_loss", "g_loss", "loss", "p_real", "p_fake", "real_as_real",
                          "fake_as_fake", "fd", "kid"}
    assert first == second  # the same latents at every evaluation
    assert first["loss"] == pytest.approx(first["d_loss"] + first["g_loss"], rel=1e-6)
    # D's view recomputed by hand from the same samples (3 batches of 8).
    logits_real = gan.discriminate(images(24, seed=4))
    assert first["p_real"] == pytest.approx(np.mean(1 / (1 + np.exp(-logits_real))), rel=1e-5)
    assert first["real_as_real"] == pytest.approx(np.mean(logits_real > 0), abs=1e-6)
    assert np.isfinite(first["fd"]) and first["fd"] > 0


def test_fit_with_validation_logs_val_entries_and_early_stopping_works(tiny_gan, compiled, images,
                                                                       batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9))
    history = gan.fit(batches(images(32)), steps_per_epoch=2, epochs=6, verbose=0,
                      validation_data=batches(images(16, seed=2), repeat=False),
                      callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=0,
                                                               min_delta=1e9)])
    # The first epoch sets the best; the second cannot improve by 1e9 and stops.
    assert len(history.epoch) == 2 and gan.step == 4
    assert {"val_d_loss", "val_p_real", "val_fake_as_fake", "val_loss", "loss"} <= set(
        history.history)


# ---------------------------------------------------------- predict/export
def test_predict_and_generate_use_the_ema_generator(tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9))
    gan.fit(batches(images(32)), steps_per_epoch=3, epochs=1, verbose=0)
    z = gan.sample_latent(10, seed=3)
    predicted = gan.predict(z, verbose=0)
    np.testing.assert_allclose(predicted, gan.generate(10, latents=z), atol=1e-6)
    ema = np.asarray(gan.ema_generator(z, training=False))
    trained = np.asarray(gan.generator(z, training=False))
    np.testing.assert_allclose(predicted, ema, atol=1e-6)
    assert np.abs(predicted - trained).max() > 1e-4


def test_export_writes_a_servable_saved_model(tmp_path, tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9))
    gan.fit(batches(images(32)), steps_per_epoch=2, epochs=1, verbose=0)
    path = str(tmp_path / "exported")
    gan.export(path, verbose=False)
    served = tf.saved_model.load(path)
    signature = served.signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["z"]
    z = gan.sample_latent(5, seed=0)
    out = signature(z=tf.constant(z))
    assert list(out) == ["images"] and out["images"].dtype == tf.float32
    np.testing.assert_allclose(out["images"].numpy(), gan.generate(5, latents=z), atol=1e-6)


def conditional_gan(num_classes=3):
    keras.utils.set_random_seed(0)
    z, c = keras.Input((LATENT,)), keras.Input((num_classes,))
    x = keras.layers.Dense(16, activation="tanh")(keras.layers.Concatenate()([z, c]))
    g = keras.Model([z, c], keras.layers.Reshape((4, 4, 1))(x))
    return tfgan2.GAN(g, networks.mlp_discriminator(image_shape=(4, 4, 1), hidden=8),
                      latent_dim=LATENT, num_classes=num_classes, seed=0)


def test_export_of_a_conditional_gan_takes_labels(tmp_path, compiled):
    gan = compiled(conditional_gan())
    path = str(tmp_path / "exported")
    gan.export(path, verbose=False)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == ["labels", "z"]
    z = gan.sample_latent(4, seed=1)
    labels = np.array([0, 1, 2, 1], np.int32)
    out = signature(z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    np.testing.assert_allclose(out, gan.generate(4, latents=z, labels=labels), atol=1e-6)
    np.testing.assert_allclose(gan.predict((z, labels), verbose=0), out, atol=1e-6)
    assert np.abs(out[1] - out[0]).max() > 0  # the label matters


# ------------------------------------------------------------------ errors
def test_optimizer_identifiers_make_one_instance_each(tiny_gan):
    gan = tiny_gan(latent_dim=LATENT, ema_decay=0.9)
    gan.compile(d_optimizer="adam", g_optimizer={"class_name": "SGD",
                                                 "config": {"learning_rate": 0.1}})
    assert isinstance(gan.d_optimizer, keras.optimizers.Adam)
    assert isinstance(gan.g_optimizer, keras.optimizers.SGD)
    gan.compile(d_optimizer="adam", g_optimizer="adam")
    assert gan.d_optimizer is not gan.g_optimizer
    with pytest.raises(ValueError, match="g_optimizer='adamm'"):
        gan.compile(d_optimizer="adam", g_optimizer="adamm")


def test_keras_metrics_are_refused_with_a_message(tiny_gan):
    with pytest.raises(ValueError, match="real_as_real"):
        tiny_gan(latent_dim=LATENT, ema_decay=0.9).compile(d_optimizer="adam", g_optimizer="adam",
                                                           metrics=["accuracy"])


def test_unbuilt_generator_gets_a_message_saying_to_build_it():
    class Generator(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(16)

        def call(self, z):
            return keras.ops.reshape(self.dense(z), (-1, 4, 4, 1))

    d = networks.mlp_discriminator(image_shape=(4, 4, 1), hidden=8)
    gan = tfgan2.GAN(Generator(), d, latent_dim=LATENT)
    with pytest.raises(ValueError, match=r"generator.build\(\(None, 6\)\)"):
        gan.compile(d_optimizer="adam", g_optimizer="adam")


def test_images_outside_the_unit_range_are_refused_on_the_first_batch(tiny_gan, compiled, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9))
    raw = np.random.default_rng(0).integers(0, 256, (16, 4, 4, 1)).astype("uint8")
    with pytest.raises(ValueError, match="uint8.*127.5"):
        gan.fit(batches(raw), steps_per_epoch=1, epochs=1, verbose=0)
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9))
    before = gan.generator.get_weights()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"not in \[-1, 1\]"):
        gan.fit(batches(raw.astype("float32")), steps_per_epoch=1, epochs=1, verbose=0)
    assert gan.step == 0 and same(before, gan.generator.get_weights())


def test_custom_loss_pair_of_callables_trains_like_the_named_loss(tiny_gan, compiled, images,
                                                                  batches):
    hinge = tfgan2.losses.get("hinge")
    results = []
    for loss in ("hinge", (lambda r, f: hinge[0](r, f), lambda f: hinge[1](f))):
        gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), loss=loss)
        history = gan.fit(batches(images(32)), steps_per_epoch=2, epochs=1, verbose=0)
        results.append((history.history["d_loss"], gan.generator.get_weights()))
    assert results[0][0] == results[1][0]
    assert same(results[0][1], results[1][1])
    with pytest.raises(ValueError, match="pair of callables"):
        tiny_gan(latent_dim=LATENT, ema_decay=0.9).compile(d_optimizer="adam", g_optimizer="adam",
                                                           loss=(len,))


def test_every_builder_outputs_float32_under_mixed_bfloat16():
    builders = [
        lambda: networks.dcgan_generator(latent_dim=4, resolution=8, channels=1, capacity=2),
        lambda: networks.dcgan_discriminator(resolution=8, channels=1, capacity=2),
        lambda: networks.dcgan_discriminator(resolution=8, channels=1, capacity=2,
                                             normalization="spectral"),
        lambda: networks.mlp_generator(latent_dim=4, image_shape=(4, 4, 1), hidden=8),
        lambda: networks.mlp_discriminator(image_shape=(4, 4, 1), hidden=8),
        lambda: networks.infogan_generator(latent_dim=4),
        lambda: networks.conv_discriminator(),
        lambda: networks.gaussian_generator(latent_dim=4, dim=3, hidden=8),
        lambda: networks.gaussian_discriminator(dim=3, hidden=8),
    ]
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        for build in builders:
            net = build()
            x = np.zeros((2, *net.inputs[0].shape[1:]), np.float32)
            assert net(x).dtype == "float32", net.name
    finally:
        keras.mixed_precision.set_global_policy("float32")


# --------------------------------------------------------- variable names
def test_generator_discriminator_and_ema_variables_have_unique_paths(tiny_gan):
    gan = tiny_gan(latent_dim=LATENT, ema_decay=0.9)
    paths = [v.path for net in (gan.generator, gan.discriminator, gan.ema_generator)
             for v in net.weights]
    assert len(paths) == len(set(paths))
    assert gan.generator.weights[0].path == "mlp_generator/fc1/kernel"
    assert gan.ema_generator.weights[0].path == "ema_mlp_generator/fc1/kernel"
    assert [net.name for net in gan.layers] == ["mlp_generator", "mlp_discriminator",
                                                "ema_mlp_generator"]


def test_checkpoint_of_networks_without_name_scopes_restores(tmp_path, tiny_gan, compiled, images,
                                                             batches):
    keras.utils.set_random_seed(7)
    # The builders as they were before they opened a name scope: paths "fc1/kernel".
    old_g = networks.mlp_generator.__wrapped__(latent_dim=LATENT, image_shape=(4, 4, 1),
                                               hidden=16)
    old_d = networks.mlp_discriminator.__wrapped__(image_shape=(4, 4, 1), hidden=16)
    assert old_g.weights[0].path == old_d.weights[0].path == "fc1/kernel"
    old = compiled(tfgan2.GAN(old_g, old_d, latent_dim=LATENT, ema_decay=0.9, seed=0))
    old.fit(batches(images(32)), steps_per_epoch=2, epochs=1, verbose=0)
    ckpt = callbacks.Checkpointer(str(tmp_path), every_n_steps=0)
    ckpt.set_model(old)
    ckpt.save()
    new = compiled(tiny_gan(latent_dim=LATENT, seed=11, ema_decay=0.9))
    assert callbacks.Checkpointer(str(tmp_path)).restore(new) == 2
    assert_same_state(old, new)


def test_evaluate_under_mirrored_strategy_matches_one_device(mirrored, tiny_gan, compiled, images,
                                                             batches):
    held_out = images(32, seed=4)
    results = []
    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9),
                           metrics=[sample_metrics.FrechetDistance(feature_model())])
        results.append(gan.evaluate(batches(held_out, repeat=False), verbose=0,
                                    return_dict=True))
    one, two = results
    for key in ("d_loss", "g_loss", "p_real", "p_fake", "real_as_real", "fake_as_fake", "fd"):
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key


def test_acgan_infogan_gan_round_trips_and_evaluates_its_heads(tmp_path, compiled, images, batches):
    from tfgan2 import infogan

    codes = infogan.LatentCodes(categorical=(2,), continuous=1)
    keras.utils.set_random_seed(0)
    g = networks.mlp_generator(latent_dim=LATENT + codes.dim, image_shape=(4, 4, 1), hidden=8,
                               num_classes=3, conditioning="embedding", embed_dim=2)
    d = networks.mlp_discriminator(image_shape=(4, 4, 1), hidden=8, num_classes=3,
                                   conditioning="acgan", q_dim=codes.q_dim)
    gan = tfgan2.GAN(g, d, latent_dim=LATENT, num_classes=3, infogan_codes=codes, seed=2,
                     ema_decay=0.5)
    compiled(gan, classifier_weight=0.5, info_weight=2.0)
    labels = np.arange(32, dtype=np.int32) % 3
    ds = batches((images(32), labels), repeat=False)
    gan.fit(ds.repeat(), steps_per_epoch=2, epochs=1, verbose=0)
    assert gan.get_config()["infogan_codes"] == "categorical:2,continuous:1"
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    loaded = keras.models.load_model(path)
    assert_same_state(gan, loaded)
    assert (loaded.infogan_codes, loaded.classifier_weight, loaded.info_weight) == (
        codes, 0.5, 2.0)
    logs = loaded.evaluate(ds, verbose=0, return_dict=True)
    assert logs == gan.evaluate(ds, verbose=0, return_dict=True)
    assert 0.0 <= logs["class_accuracy"] <= 1.0 and logs["class_loss"] > 0
    assert logs["info_penalty"] != 0.0
    loaded.export(str(tmp_path / "served"), verbose=False)
    signature = tf.saved_model.load(str(tmp_path / "served")).signatures["serving_default"]
    z = gan.sample_latent(3, seed=0)
    assert z.shape == (3, LATENT + codes.dim)
    out = signature(z=tf.constant(z), labels=tf.constant([0, 1, 2]))["images"].numpy()
    np.testing.assert_allclose(out, gan.generate(3, latents=z, labels=[0, 1, 2]), atol=1e-6)


def test_network_files_of_every_custom_layer_load_after_import_tfgan2(tmp_path):
    keras.utils.set_random_seed(0)
    nets = [networks.dcgan_generator(latent_dim=4, resolution=8, channels=1, capacity=2),
            networks.mlp_generator(latent_dim=4, image_shape=(4, 4, 1), hidden=8, num_classes=2,
                                   conditioning="cbn"),
            networks.mlp_discriminator(image_shape=(4, 4, 1), hidden=8, num_classes=2,
                                       conditioning="projection")]
    for i, net in enumerate(nets):
        path = str(tmp_path / f"net{i}.keras")
        net.save(path)
        loaded = keras.models.load_model(path)  # safe_mode=True
        inputs = [np.ones((2, *x.shape[1:]), np.float32) for x in net.inputs]
        inputs = inputs[0] if len(inputs) == 1 else inputs
        np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(net(inputs)),
                                   atol=1e-6)


def test_evaluate_with_a_relativistic_loss_and_label_smoothing(tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), loss="relativistic_average",
                   label_smoothing=0.2)
    logs = gan.evaluate(batches(images(16), repeat=False), verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["loss"] == pytest.approx(
        logs["d_loss"] + logs["g_loss"], rel=1e-5)
    assert gan.get_compile_config()["label_smoothing"] == 0.2
