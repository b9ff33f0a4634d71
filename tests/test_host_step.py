"""No per-step host stalls: the step is counted on the host, logs are read only when written,
and several steps per execution run on several replicas."""
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import callbacks, networks, summaries


def small_gan(strategy=None, steps_per_execution=1, seed=0):
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        keras.utils.set_random_seed(seed)
        g = networks.mlp_generator(latent_dim=4, image_shape=(4, 4, 1), hidden=8)
        d = networks.mlp_discriminator(image_shape=(4, 4, 1), hidden=8)
        gan = tfgan2.GAN(g, d, latent_dim=4, ema_decay=0.5, seed=seed)
        gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3),
                    steps_per_execution=steps_per_execution)
    return gan


def data(num_batches=None):
    x = np.random.default_rng(0).uniform(-1, 1, (16, 4, 4, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices(x).batch(8, drop_remainder=True)
    return ds.repeat() if num_batches is None else ds.repeat().take(num_batches)


class _DeviceSteps(keras.callbacks.Callback):
    """Records (host step of ``clock``, device step) after every execution."""

    def __init__(self, clock):
        super().__init__()
        self.clock, self.pairs = clock, []

    def on_train_batch_end(self, batch, logs=None):
        self.pairs.append((self.clock.host_step, self.model.step))


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_host_step_equals_the_device_step(steps_per_execution):
    gan = small_gan(steps_per_execution=steps_per_execution)
    gan.fit(data(), steps_per_epoch=3, epochs=1, verbose=0)  # a run resumed at step 3
    clock = callbacks.HostStep()
    record = _DeviceSteps(clock)
    stop = callbacks.StopAtStep(12)  # inside the second epoch, at an execution's end
    gan.fit(data(), steps_per_epoch=6, epochs=3, initial_epoch=1, verbose=0,
            callbacks=[clock, stop, record])
    assert gan.step == 12 and clock.host_step == 12 and stop.host_step == 12
    assert [host for host, _ in record.pairs] == [device for _, device in record.pairs]
    assert [host for host, _ in record.pairs] == list(
        range(3 + steps_per_execution, 13, steps_per_execution))


@pytest.mark.parametrize("replicas", [1, 2])
def test_host_step_after_data_that_ran_out_inside_an_execution(replicas, mirrored):
    strategy = mirrored if replicas == 2 else tf.distribute.OneDeviceStrategy("/cpu:0")
    gan = small_gan(strategy, steps_per_execution=3)
    clock = callbacks.HostStep()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras: "input ran out of data"
        gan.fit(data(num_batches=5), steps_per_epoch=6, epochs=1, verbose=0,
                callbacks=[clock])
    assert clock.host_step == gan.step
    # Keras's loop on one replica runs every batch there is; the unrolled execution of
    # several replicas fetches a batch while the step before runs, so the end of the
    # data may cut it short before that step too (tfgan2.executions).
    assert gan.step == 5 if replicas == 1 else 3 <= gan.step <= 5


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_train_reads_the_device_step_only_when_something_is_written(
        tmp_path, monkeypatch, steps_per_execution):
    reads = []

    def spied_step(self):
        value = int(self.step_counter.numpy())
        reads.append(value)
        return value

    gan = small_gan(steps_per_execution=steps_per_execution)
    monkeypatch.setattr(tfgan2.GAN, "step", property(spied_step))
    result = tfgan2.train(gan, data(), str(tmp_path), 24, log_every=12, sample_every=6,
                          checkpoint_every=12, num_samples=4, verbose=0)
    assert result.final_step == 24
    # Train begin (step 0), epoch ends and checkpoints (12, 24), never in between.
    assert set(reads) <= {0, 12, 24}, sorted(set(reads))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [12, 24]
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == [
        "step_0000006.png", "step_0000012.png", "step_0000018.png", "step_0000024.png"]


class _Counted:
    """A log value that counts how often it is read."""

    reads = 0

    def __init__(self, value):
        self.value = value

    def __array__(self, dtype=None, copy=None):
        _Counted.reads += 1
        return np.asarray(self.value, dtype=dtype)


class _Plain(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(logs)


class _Raw(_Plain):
    raw_batch_logs = True


def test_logs_are_read_only_for_callbacks_that_need_them(monkeypatch):
    monkeypatch.setattr(_Counted, "reads", 0)
    raw = _Raw()
    quiet = callbacks.LogsOnDemand([raw, keras.callbacks.History()])
    logs = {"d_loss": _Counted(1.5), "g_loss": _Counted(2.0)}
    for batch in range(5):
        quiet.on_train_batch_end(batch, logs)
    assert _Counted.reads == 0 and all(seen is logs for seen in raw.seen)
    plain = _Plain()
    mixed = callbacks.LogsOnDemand([raw, plain, _Plain()])
    mixed.on_train_batch_end(0, logs)
    assert _Counted.reads == 2  # once per value for both plain callbacks
    assert plain.seen == [{"d_loss": 1.5, "g_loss": 2.0}]


def test_train_hands_its_callbacks_the_logs_unread(tmp_path):
    raw = _Raw()
    tfgan2.train(small_gan(), data(), str(tmp_path), 4, log_every=2, sample_every=0,
                 verbose=0, callbacks=[raw])
    assert len(raw.seen) == 4 and all(tf.is_tensor(logs["d_loss"]) for logs in raw.seen)


def test_guard_reads_the_losses_at_its_intervals_and_epoch_ends(monkeypatch):
    checked = []
    original = callbacks.log_values

    def spied(logs):
        checked.append(gan.step)
        return original(logs)

    gan = small_gan()
    monkeypatch.setattr(callbacks, "log_values", spied)
    guard = callbacks.NonFiniteGuard(check_every=[4])
    gan.fit(data(), steps_per_epoch=10, epochs=1, verbose=0, callbacks=[guard])
    assert checked == [4, 8, 10] and guard.failed_step is None


def test_guard_stops_a_diverged_run_at_the_next_write(tmp_path):
    gan = small_gan()
    kernel = gan.discriminator.get_layer("logit").kernel

    def poison(batch, logs):  # D diverges during step 3
        if batch == 2:
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))

    with pytest.raises(callbacks.NonFiniteError) as err:
        tfgan2.train(gan, data(), str(tmp_path), 20, log_every=10, checkpoint_every=5,
                     sample_every=0, verbose=0,
                     callbacks=[keras.callbacks.LambdaCallback(on_train_batch_begin=poison)])
    assert "Training stopped at step 5" in str(err.value)
    assert "non-finite after step 0" in str(err.value)
    assert not (tmp_path / "checkpoints").exists() or not list(
        (tmp_path / "checkpoints").glob("ckpt-*.index"))


def test_tensorboard_logger_flushes_only_when_it_writes(tmp_path):
    gan = small_gan()
    logger = summaries.TensorBoardLogger(str(tmp_path), every_n_steps=4, num_images=0)
    gan.fit(data(), steps_per_epoch=1, epochs=1, verbose=0, callbacks=[logger])  # opens it
    flushes = []
    flush = logger.writer.flush
    logger.writer.flush = lambda: (flushes.append(logger.host_step), flush())[1]
    gan.fit(data(), steps_per_epoch=9, epochs=1, verbose=0, callbacks=[logger])
    assert flushes == [4, 8, 10]  # two writes, then the end of training
    events = summaries.read_events(str(tmp_path))["scalars"]["train/d_loss"]
    assert [step for step, _ in events] == [1, 4, 8, 10]


def test_replicas_and_steps_per_execution_give_the_same_run(tmp_path, mirrored):
    """1 or 2 replicas times 1 or 3 steps per execution, with `tfgan2.train`'s step counting
    and loss logging: the same weights, step counters and logged rows (two replicas and
    3 steps run unrolled)."""
    runs = {}
    for replicas in (1, 2):
        strategy = mirrored if replicas == 2 else tf.distribute.OneDeviceStrategy("/cpu:0")
        for spe in (1, 3):
            gan = small_gan(strategy, steps_per_execution=spe)
            assert gan.steps_per_execution == spe
            assert gan.distribute_strategy.num_replicas_in_sync == replicas
            workdir = tmp_path / f"r{replicas}_k{spe}"
            clock = callbacks.HostStep()
            history = callbacks.LossHistory(str(workdir), plot_filename=None)
            record = _DeviceSteps(clock)
            stop = callbacks.StopAtStep(6)
            gan.fit(data(), steps_per_epoch=3, epochs=3, verbose=0, shuffle=False,
                    callbacks=callbacks.LogsOnDemand([clock, history, stop, record],
                                                     add_history=True, model=gan))
            assert gan.step == clock.host_step == 6
            assert int(gan.d_optimizer.iterations.numpy()) == 6
            assert int(gan.g_optimizer.iterations.numpy()) == 6
            assert record.pairs == [(k, k) for k in range(spe, 7, spe)]
            rows = [json.loads(line) for line in
                    (workdir / "metrics.jsonl").read_text().splitlines()]
            assert [row["step"] for row in rows] == [3, 6], (replicas, spe)
            runs[replicas, spe] = (gan.generator.get_weights() + gan.discriminator.get_weights()
                                   + gan.ema_generator.get_weights(), rows)
    weights, rows = runs[1, 1]
    assert not np.allclose(weights[0], small_gan().generator.get_weights()[0])  # it trained
    for key in ((1, 3), (2, 1), (2, 3)):
        for a, b in zip(weights, runs[key][0]):
            np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-5, err_msg=str(key))
        for a, b in zip(rows, runs[key][1]):
            for name in ("d_loss", "g_loss"):
                assert b[name] == pytest.approx(a[name], rel=1e-4, abs=1e-5), (key, name)
