"""Every standard Keras callback with a tfgan2.GAN: what it does, asserted."""
import csv
import glob
import http.server
import json
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

LATENT = 6
# Both optimizers are Adam with Keras's default beta_1, D at 1e-3 and G at 4e-3.
RATES = dict(d_lr=1e-3, g_lr=4e-3, beta_1=0.9)


def lrs(gan):
    return (float(gan.d_optimizer.learning_rate), float(gan.g_optimizer.learning_rate))


def test_terminate_on_nan_stops_a_run_whose_discriminator_gives_nan(tiny_gan, compiled, images,
                                                                    batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), **RATES)
    bias = gan.discriminator.get_layer("logit").bias
    bias.assign(np.full(bias.shape, np.nan, np.float32))
    history = gan.fit(batches(images(32)), steps_per_epoch=5, epochs=3, verbose=0,
                      callbacks=[keras.callbacks.TerminateOnNaN()])
    assert gan.step == 1 and np.isnan(history.history["loss"][0])


def test_learning_rate_scheduler_changes_both_rates_keeping_their_ratio(tiny_gan, compiled, images,
                                                                        batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), d_lr=1e-3, g_lr=4e-3,
                   beta_1=0.9)
    seen = []
    history = gan.fit(batches(images(32)), steps_per_epoch=1, epochs=3, verbose=0, callbacks=[
        keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1e-3 * 0.5 ** epoch),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(lrs(gan)))])
    assert seen == [pytest.approx((1e-3 * 0.5 ** e, 4e-3 * 0.5 ** e), rel=1e-6)
                    for e in range(3)]
    assert history.history["learning_rate"] == pytest.approx([1e-3, 5e-4, 2.5e-4], rel=1e-6)


def test_reduce_lr_on_plateau_reduces_both_rates(tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), d_lr=1e-3, g_lr=4e-3,
                   beta_1=0.9)
    # Nothing improves by 1e9: the rates halve after every epoch but the first.
    gan.fit(batches(images(32)), steps_per_epoch=1, epochs=3, verbose=0, callbacks=[
        keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1,
                                          min_delta=1e9)])
    assert lrs(gan) == pytest.approx((2.5e-4, 1e-3), rel=1e-6)


def test_learning_rate_callbacks_refuse_optimizers_with_schedules(tiny_gan, images, batches):
    gan = tiny_gan(latent_dim=LATENT, ema_decay=0.9)
    schedule = keras.optimizers.schedules.PolynomialDecay(1e-3, decay_steps=10)
    gan.compile(d_optimizer=keras.optimizers.Adam(schedule), g_optimizer="adam")
    with pytest.raises(ValueError, match="schedule"):
        gan.fit(batches(images(32)), steps_per_epoch=1, epochs=1, verbose=0, callbacks=[
            keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr)])


def test_schedules_drive_both_optimizers(tiny_gan, images, batches):
    gan = tiny_gan(latent_dim=LATENT, ema_decay=0.9)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.PolynomialDecay(1e-3, decay_steps=4, end_learning_rate=0)),
        g_optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.PolynomialDecay(2e-3, decay_steps=4, end_learning_rate=0)))
    gan.fit(batches(images(32)), steps_per_epoch=2, epochs=1, verbose=0)
    assert lrs(gan) == pytest.approx((5e-4, 1e-3), rel=1e-6)


def test_csv_logger_history_progbar_and_lambda_callback_see_the_gan_logs(tmp_path, capsys,
                                                                         tiny_gan, compiled,
                                                                         images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), **RATES)
    path = str(tmp_path / "log.csv")
    ends = []
    history = gan.fit(batches(images(32)), steps_per_epoch=2, epochs=2, verbose=1, callbacks=[
        keras.callbacks.CSVLogger(path),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: ends.append(dict(logs)))])
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert float(rows[1]["d_loss"]) == pytest.approx(history.history["d_loss"][1], rel=1e-5)
    assert {"loss", "d_loss", "g_loss", "p_real", "fake_as_fake"} <= set(ends[0])
    assert ends[1]["loss"] == pytest.approx(ends[1]["d_loss"] + ends[1]["g_loss"], rel=1e-6)
    assert "d_loss:" in capsys.readouterr().out  # the progress bar


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path, tiny_gan, compiled, images,
                                                       batches):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    backup = str(tmp_path / "backup")
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), **RATES)
    with pytest.raises(RuntimeError, match="interrupted"):
        gan.fit(batches(images(32)), steps_per_epoch=2, epochs=4, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(backup), Interrupt()])
    saved_d = [w.copy() for w in gan.discriminator.get_weights()]
    saved_opt = [v.numpy().copy() for v in gan.g_optimizer.variables]
    fresh = compiled(tiny_gan(latent_dim=LATENT, seed=5, ema_decay=0.9), **RATES)
    restored = []

    class Check(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            restored.append((self.model.step, self.model.discriminator.get_weights(),
                             [v.numpy() for v in self.model.g_optimizer.variables]))

    history = fresh.fit(batches(images(32)), steps_per_epoch=2, epochs=4, verbose=0,
                        callbacks=[keras.callbacks.BackupAndRestore(backup), Check()])
    # Epoch 1 was saved before the interruption at its end (epochs 0 and 1 done).
    step, d_weights, opt = restored[0]
    assert step == 4 and history.epoch == [2, 3] and fresh.step == 8
    assert all(np.array_equal(a, b) for a, b in zip(d_weights, saved_d))
    assert all(np.array_equal(a, b) for a, b in zip(opt, saved_opt))


def test_tensorboard_callback_writes_unique_histograms_and_scalars(tmp_path, tiny_gan, compiled,
                                                                   images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), **RATES)
    log_dir = str(tmp_path / "tb")
    gan.fit(batches(images(32)), steps_per_epoch=2, epochs=1, verbose=0,
            validation_data=batches(images(32)).take(2),
            callbacks=[keras.callbacks.TensorBoard(log_dir, histogram_freq=1)])
    histograms, scalars = [], set()
    for path in glob.glob(f"{log_dir}/**/events.out.tfevents.*", recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag.endswith("/histogram"):
                    histograms.append(value.tag)
                else:
                    scalars.add(value.tag)
    weights = len(gan.generator.weights) + len(gan.discriminator.weights) + len(
        gan.ema_generator.weights)
    assert len(histograms) == len(set(histograms)) == weights
    assert "mlp_discriminator/fc1/kernel/histogram" in histograms
    assert "ema_mlp_generator/fc1/kernel/histogram" in histograms
    assert {"epoch_d_loss", "epoch_loss", "epoch_real_as_real"} <= scalars


def test_remote_monitor_posts_the_epoch_logs(tiny_gan, compiled, images, batches):
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), **RATES)
        gan.fit(batches(images(32)), steps_per_epoch=1, epochs=2, verbose=0, callbacks=[
            keras.callbacks.RemoteMonitor(root=f"http://127.0.0.1:{server.server_port}",
                                          send_as_json=True)])
    finally:
        server.shutdown()
        server.server_close()
    assert [r["epoch"] for r in received] == [0, 1]
    assert {"loss", "d_loss", "g_loss", "real_as_real"} <= set(received[0])


def test_swap_ema_weights_is_refused_the_gan_keeps_its_own_ema(tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), **RATES)
    with pytest.raises(ValueError, match="use_ema"):
        gan.fit(batches(images(32)), steps_per_epoch=1, epochs=1, verbose=0,
                validation_data=batches(images(32)).take(1),
                callbacks=[keras.callbacks.SwapEMAWeights(swap_on_epoch=True)])


def test_tensorboard_logger_records_confusion_view_and_validation(tmp_path, tiny_gan, compiled,
                                                                  images, batches):
    from tfgan2 import summaries

    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9), **RATES)
    log_dir = str(tmp_path / "tb")
    gan.fit(batches(images(32)), steps_per_epoch=2, epochs=2, verbose=0,
            validation_data=batches(images(32)).take(2),
            callbacks=[summaries.TensorBoardLogger(log_dir, every_n_steps=2, num_images=4)])
    scalars = summaries.read_events(log_dir)["scalars"]
    (step, rr), = [e for e in scalars["train/real_as_real"] if e[0] == 4]
    assert dict(scalars["confusion/real_as_fake"])[4] == pytest.approx(1.0 - rr, abs=1e-6)
    assert [s for s, _ in scalars["val/d_loss"]] == [2, 4]
    val_ff = dict(scalars["val/fake_as_fake"])[4]
    assert dict(scalars["val_confusion/fake_as_real"])[4] == pytest.approx(1 - val_ff, abs=1e-6)
