"""Callbacks and tfgan2.train: pictures, metrics.jsonl, checkpoints, resume, NaN stop."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfgan2
from tfgan2 import callbacks, visualize


@pytest.fixture
def small_gan(tiny_gan, compiled):
    """``small_gan(vector=False, seed=0)``: an MLP GAN on 8x8x1 images (a Gaussian one on
    10-vectors if ``vector``), 4-d latents, EMA decay 0.9, compiled with Adam(1e-3)."""

    def build(vector=False, seed=0):
        gan = tiny_gan("gaussian" if vector else "mlp", latent_dim=4, size=8, dim=10, hidden=8,
                       seed=seed, ema_decay=0.9)
        return compiled(gan, beta_1=0.9)

    return build


@pytest.fixture
def data(images, batches):
    """``data(vector=False)``: 32 images of 8x8x1 (10-vectors if ``vector``) uniform in
    [-1, 1], in batches of 8, repeated."""

    def make(vector=False):
        if vector:
            return batches(np.random.default_rng(0).uniform(-1, 1, (32, 10)).astype("float32"))
        return batches(images(32, size=8))

    return make


def test_image_grid_layout():
    imgs = np.full((5, 4, 3, 1), -1.0, np.float32)
    imgs[2] = 1.0
    grid = visualize.image_grid(imgs, cols=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 4 + 1, 1) and grid.dtype == np.uint8
    assert grid[1:5, 9:12].min() == 255 and grid[1:5, 1:4].max() == 0
    np.testing.assert_array_equal(visualize.to_uint8([-1.0, 0.0, 1.0, 3.0]), [0, 128, 255, 255])


def test_train_writes_run_directory_and_resumes(tmp_path, capsys, small_gan, data):
    gan = small_gan()
    result = tfgan2.train(gan, data(), str(tmp_path), 7, log_every=3, sample_every=4,
                          checkpoint_every=3, keep_checkpoints=2, num_samples=9, verbose=0)
    assert result.final_step == 7 and result.checkpoint.endswith("ckpt-7")
    assert callbacks.latest_checkpoint_step(str(tmp_path / "checkpoints")) == 7
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("ckpt-*.index"))
    assert kept == ["ckpt-6.index", "ckpt-7.index"]  # keep the last 2
    samples = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert samples == ["step_0000004.png", "step_0000007.png"]
    assert Image.open(tmp_path / "samples" / "step_0000004.png").size[0] > 50
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6, 7]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    assert (tmp_path / "losses.png").stat().st_size > 1000

    fresh = small_gan(seed=5)
    capsys.readouterr()
    result = tfgan2.train(fresh, data(), str(tmp_path), 10, log_every=3, sample_every=0,
                          checkpoint_every=0, num_samples=9, verbose=0)
    assert "Resuming from step 7" in capsys.readouterr().out
    assert result.start_step == 7 and result.final_step == 10
    assert int(fresh.g_optimizer.iterations.numpy()) == 10
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6, 7, 10]  # an epoch of 3 from step 7

    again = tfgan2.train(small_gan(), data(), str(tmp_path), 10, verbose=0)
    assert again.start_step == again.final_step == 10 and again.history is None


def test_vector_data_gets_histograms(tmp_path, small_gan, data):
    gan = small_gan(vector=True)
    real = np.random.default_rng(1).normal(3, 1, (50, 10))
    tfgan2.train(gan, data(vector=True), str(tmp_path), 2, log_every=2, sample_every=1,
                 num_samples=16, real_samples=real, verbose=0)
    assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == [
        "step_0000001.png", "step_0000002.png"]


def test_sample_grid_uses_fixed_latents(tmp_path, small_gan):
    gan = small_gan()
    grid = callbacks.SampleGrid(str(tmp_path), num_samples=4, seed=3)
    grid.set_model(gan)
    np.testing.assert_array_equal(grid.latents(), small_gan(seed=9).sample_latent(4, seed=3))
    assert grid.write(12).endswith("step_0000012.png")


def test_nan_stops_training_and_keeps_last_good_checkpoint(tmp_path, small_gan, data):
    gan = small_gan()
    tfgan2.train(gan, data(), str(tmp_path), 4, log_every=2, checkpoint_every=2, verbose=0)
    good = [p.name for p in (tmp_path / "checkpoints").iterdir()]
    kernel = gan.discriminator.get_layer("logit").kernel

    def poison(batch, logs):  # D diverges during step 5 of the resumed run
        if gan.step == 4:
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))

    with pytest.raises(callbacks.NonFiniteError) as err:
        tfgan2.train(gan, data(), str(tmp_path), 10, log_every=2, checkpoint_every=1,
                     verbose=0,
                     callbacks=[keras.callbacks.LambdaCallback(on_train_batch_begin=poison)])
    message = str(err.value)
    assert "step 5" in message and "ckpt-4" in message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == sorted(good)
    fresh = small_gan(seed=3)
    assert callbacks.Checkpointer(str(tmp_path / "checkpoints")).restore(fresh) == 4
    assert all(np.all(np.isfinite(w)) for w in fresh.discriminator.get_weights())


def test_checkpointer_refuses_non_finite_weights(tmp_path, small_gan):
    gan = small_gan()
    ckpt = callbacks.Checkpointer(str(tmp_path))
    ckpt.set_model(gan)
    kernel = gan.generator.get_layer("fc1").kernel
    kernel.assign(np.full(kernel.shape, np.inf, np.float32))
    with pytest.raises(callbacks.NonFiniteError, match="not saving"):
        ckpt.save()
    assert not list(tmp_path.iterdir())


def test_train_rejects_bad_schedule(tmp_path, small_gan, data):
    with pytest.raises(ValueError, match="train_steps"):
        tfgan2.train(small_gan(), data(), str(tmp_path), 0)
    with pytest.raises(ValueError, match="sample_every"):
        tfgan2.train(small_gan(), data(), str(tmp_path), 5, sample_every=-1)


@pytest.mark.parametrize("relative", [False, True])
def test_corrupt_checkpoint_falls_back_to_previous(tmp_path, capsys, monkeypatch, relative,
                                                   small_gan, data):
    # A relative run directory ("runs/a", as the shipped flagfiles give) must resume,
    # fall back and list its checkpoints exactly as an absolute one.
    monkeypatch.chdir(tmp_path)
    workdir = "runs/a" if relative else str(tmp_path / "runs" / "a")
    ckpt_dir = f"{workdir}/checkpoints"
    gan = small_gan()
    tfgan2.train(gan, data(), workdir, 4, log_every=2, checkpoint_every=2, verbose=0)
    ckpts = tmp_path / "runs" / "a" / "checkpoints"
    assert [step for step, _ in tfgan2.watch.listed_checkpoints(ckpt_dir)] == [2, 4]
    assert callbacks.Checkpointer(ckpt_dir).restore(small_gan(seed=3), set_aside=False) == 4
    (data_file,) = ckpts.glob("ckpt-4.data-*")
    data_file.write_bytes(data_file.read_bytes()[:50])  # truncated by a crash or a full disk
    fresh = small_gan(seed=4)
    assert callbacks.Checkpointer(ckpt_dir).restore(fresh) == 2
    assert "ckpt-4 does not restore" in capsys.readouterr().out
    assert sorted(p.name for p in ckpts.glob("broken-*")) == [
        "broken-ckpt-4.data-00000-of-00001", "broken-ckpt-4.index"]
    # The state file keeps entries relative to its directory, as the manager writes them.
    assert 'all_model_checkpoint_paths: "ckpt-2"' in (ckpts / "checkpoint").read_text()
    assert callbacks.latest_checkpoint_step(ckpt_dir) == 2
    assert tfgan2.watch.listed_checkpoints(ckpt_dir) == [(2, f"{ckpt_dir}/ckpt-2")]
    # Training goes on from step 2 and writes a fresh step-4 checkpoint.
    result = tfgan2.train(fresh, data(), workdir, 4, log_every=2, verbose=0)
    assert result.start_step == 2 and result.final_step == 4
    assert callbacks.Checkpointer(ckpt_dir).restore(small_gan(seed=5)) == 4


def test_no_restorable_checkpoint_is_an_error_not_a_fresh_start(tmp_path, small_gan, data):
    gan = small_gan()
    tfgan2.train(gan, data(), str(tmp_path), 2, log_every=2, verbose=0)
    for f in (tmp_path / "checkpoints").glob("ckpt-2.index"):
        f.write_bytes(b"garbage")
    with pytest.raises(callbacks.CheckpointError, match="No checkpoint in .* restores"):
        tfgan2.train(small_gan(seed=1), data(), str(tmp_path), 4, log_every=2, verbose=0)


def test_a_finite_dataset_is_repeated_until_train_steps(tmp_path, capsys, small_gan, images,
                                                        batches):
    # The Keras examples pass one pass over the data; train_steps is still what runs.
    once = batches(images(40, size=8), repeat=False)  # 5 batches
    result = tfgan2.train(small_gan(), once, str(tmp_path), 12, log_every=4, sample_every=0,
                          verbose=0)
    assert result.final_step == 12 and result.checkpoint.endswith("ckpt-12")
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8, 12]
    assert tfgan2.run_directory.read_done(str(tmp_path)) == 12
    assert "the dataset holds 5 batches; it is repeated for the 12 steps" in capsys.readouterr().out


def test_data_that_runs_out_is_an_error_naming_the_steps(tmp_path, small_gan):
    x = np.zeros((16, 8, 8, 1), np.float32)
    empty = tf.data.Dataset.from_tensor_slices(x).batch(8).skip(5)
    with pytest.raises(tfgan2.training.DatasetExhaustedError, match="no batch from step 0") as err:
        tfgan2.train(small_gan(), empty, str(tmp_path / "a"), 6, log_every=3, verbose=0)
    assert err.value.step == 0
    assert tfgan2.run_directory.read_done(str(tmp_path / "a")) is None

    def three_batches():
        for _ in range(3):
            yield (x[:8],)

    with pytest.raises(tfgan2.training.DatasetExhaustedError,
                       match="ran out at step 3: it gave 3 batches from step 0") as err:
        tfgan2.train(small_gan(), three_batches(), str(tmp_path / "b"), 6, log_every=3,
                     sample_every=0, verbose=0)
    assert err.value.step == 3
    assert callbacks.latest_checkpoint_step(str(tmp_path / "b" / "checkpoints")) == 3


def test_progress_bars_count_the_steps_each_log_interval_runs(tmp_path, capsys, small_gan,
                                                              data):
    tfgan2.train(small_gan(), data(), str(tmp_path / "a"), 10, log_every=4, sample_every=0,
                 verbose=2)
    bars = [line.split(" - ")[0] for line in capsys.readouterr().out.splitlines()
            if "ms/step" in line or "s/step" in line]
    assert bars == ["4/4", "4/4", "2/2"]
    # Shorter than one log interval: the bar is the run's length, not log_every's.
    tfgan2.train(small_gan(), data(), str(tmp_path / "b"), 3, log_every=5, sample_every=0,
                 verbose=2)
    bars = [line.split(" - ")[0] for line in capsys.readouterr().out.splitlines()
            if "/step" in line]
    assert bars == ["3/3"]
