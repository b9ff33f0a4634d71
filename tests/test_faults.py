"""Faults a long run meets, each in a real launcher process: a full disk during a save,
an unwritable work directory, missing or empty data, an uneven global batch, a broken
checkpoint met by the read-only launchers; and exact resumption with --deterministic.
"""
import os
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import pipelines
from tfgan2.callbacks import latest_checkpoint_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--log_every=10", "--steps_per_execution=10", "--sample_every=0",
         "--checkpoint_every=20", "--batch_size=8", "--latent_dim=4", "--num_grid=4",
         "--tensorboard=false"]


def train(env, workdir, *extra, preexec_fn=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "launch.train", f"--workdir={workdir}", *SMALL, *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        preexec_fn=preexec_fn)


def checkpoint_values(path):
    reader = tf.train.load_checkpoint(path)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


# ------------------------------------------------------------------ disk full
def _file_size_limit(limit):
    def apply():
        # A write past the limit fails with EFBIG, as on a full disk (instead of
        # the default SIGXFSZ, which would kill the process).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    first = train(subprocess_env, workdir, "--train_steps=20")
    assert first.returncode == 0, first.stderr[-3000:]
    data_file = workdir / "checkpoints" / "ckpt-20.data-00000-of-00001"
    size = data_file.stat().st_size
    assert size > 1_000_000  # the default 1024-unit MLP GAN: several MB per checkpoint
    before = checkpoint_values(str(workdir / "checkpoints" / "ckpt-20"))

    # Every file may grow to a fifth of a checkpoint: metrics and pictures fit,
    # the next checkpoint does not.
    full = train(subprocess_env, workdir, "--train_steps=40",
                 preexec_fn=_file_size_limit(size // 5))
    assert full.returncode == 1, full.stdout[-2000:] + full.stderr[-3000:]
    assert "Resuming from step 20" in full.stdout
    assert "Could not write the checkpoint of step 40" in full.stderr
    assert "is the disk full" in full.stderr
    assert f"{workdir / 'checkpoints' / 'ckpt-20'} is untouched" in full.stderr
    # Nothing of the failed save is left, and the previous checkpoint is intact.
    names = os.listdir(workdir / "checkpoints")
    assert not [n for n in names if n.startswith("ckpt-40")], names
    assert latest_checkpoint_step(str(workdir / "checkpoints")) == 20
    after = checkpoint_values(str(workdir / "checkpoints" / "ckpt-20"))
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)

    # Space is back: the same command resumes from step 20 and finishes.
    rerun = train(subprocess_env, workdir, "--train_steps=40")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Resuming from step 20" in rerun.stdout
    assert latest_checkpoint_step(str(workdir / "checkpoints")) == 40


# ----------------------------------------------------------- work directory
def test_workdir_that_cannot_be_created_is_a_clear_error(tmp_path, subprocess_env):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    proc = train(subprocess_env, blocker / "run", "--train_steps=20", timeout=60)
    assert proc.returncode != 0
    assert f"--workdir={blocker / 'run'} cannot be created" in proc.stderr
    assert "Expected a directory this user can create and write" in proc.stderr


def test_workdir_that_is_not_writable_is_a_clear_error(tmp_path, subprocess_env):
    if os.geteuid() == 0:
        # Permission bits do not stop root; /proc/self is a directory nobody can add files to.
        workdir = "/proc/self"
    else:
        workdir = tmp_path / "read_only"
        workdir.mkdir()
        workdir.chmod(0o555)
    proc = train(subprocess_env, workdir, "--train_steps=20", timeout=60)
    assert proc.returncode != 0
    assert f"--workdir={workdir} is not writable" in proc.stderr
    assert "Traceback" not in proc.stderr


# -------------------------------------------------------------------- data
@pytest.mark.parametrize("kind", ["missing", "empty", "no_images"])
def test_missing_or_empty_data_is_a_clear_error(tmp_path, subprocess_env, kind):
    data = tmp_path / "images"
    if kind != "missing":
        data.mkdir()
    if kind == "no_images":
        (data / "notes.txt").write_text("not an image")
        (data / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    proc = train(subprocess_env, tmp_path / "run", "--train_steps=20",
                 "--data_source=image_folder", f"--data_dir={data}", "--network=dcgan",
                 "--resolution=8", "--capacity=2", timeout=120)
    assert proc.returncode != 0
    assert f"--data_source=image_folder --data_dir={data}:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_global_batch_that_does_not_split_over_replicas(tmp_path, subprocess_env):
    proc = train(subprocess_env, tmp_path / "run", "--train_steps=20", "--strategy=mirrored",
                 "--logical_cpus=2", "--batch_size=7", timeout=120)
    assert proc.returncode != 0
    assert "--batch_size=7 does not split evenly across 2 replicas: use a multiple of 2" \
        in proc.stderr


@pytest.mark.parametrize("flags,message", [
    (["--strategy=tpu"], "strategy 'tpu' found no TPU (tpu=None)"),
    (["--strategy=multi_worker"], "strategy 'multi_worker' needs the TF_CONFIG environment"),
])
def test_strategy_without_its_hardware_is_a_clear_error(tmp_path, subprocess_env, flags, message):
    env = {k: v for k, v in subprocess_env.items() if k != "TF_CONFIG"}
    proc = train(env, tmp_path / "run", "--train_steps=20", *flags, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------- read-only launchers, broken files
def test_sample_falls_back_past_a_broken_checkpoint_without_renaming(tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    done = train(subprocess_env, workdir, "--train_steps=40")
    assert done.returncode == 0, done.stderr[-3000:]
    ckpts = workdir / "checkpoints"
    data = ckpts / "ckpt-40.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])  # truncated, as by a crash mid-copy
    listing = sorted(os.listdir(ckpts))
    out = tmp_path / "samples.npz"
    proc = subprocess.run([sys.executable, "-m", "launch.sample", f"--workdir={workdir}",
                           "--num=6", f"--out={out}"], cwd=ROOT, env=subprocess_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ckpt-40 does not restore" in proc.stdout + proc.stderr
    assert "ckpt-20" in proc.stdout
    assert np.load(out)["images"].shape[0] == 6
    assert sorted(os.listdir(ckpts)) == listing  # a read-only command renames nothing

    # With every checkpoint broken it is an error, not samples of an untrained G.
    data20 = ckpts / "ckpt-20.data-00000-of-00001"
    data20.write_bytes(data20.read_bytes()[:1000])
    proc = subprocess.run([sys.executable, "-m", "launch.sample", f"--workdir={workdir}",
                           "--num=6", f"--out={tmp_path / 'none.npz'}"], cwd=ROOT,
                          env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert f"No checkpoint in {ckpts} restores" in proc.stderr
    assert not (tmp_path / "none.npz").exists()


# ------------------------------------------------------------ exact resumption
def test_deterministic_interrupted_run_ends_with_the_same_weights(tmp_path, subprocess_env):
    common = ["--deterministic", "--g_hidden=32", "--d_hidden=32"]
    whole = train(subprocess_env, tmp_path / "whole", "--train_steps=60", *common)
    assert whole.returncode == 0, whole.stderr[-3000:]
    half = train(subprocess_env, tmp_path / "split", "--train_steps=30", *common)
    assert half.returncode == 0, half.stderr[-3000:]
    rest = train(subprocess_env, tmp_path / "split", "--train_steps=60", *common)
    assert rest.returncode == 0, rest.stderr[-3000:]
    assert "Resuming from step 30" in rest.stdout
    a = checkpoint_values(str(tmp_path / "whole" / "checkpoints" / "ckpt-60"))
    b = checkpoint_values(str(tmp_path / "split" / "checkpoints" / "ckpt-60"))
    assert a.keys() == b.keys()
    # G, D and EMA weights, both optimizers' moments and iterations, step, noise seed.
    assert sum("optimizer" in k for k in a) >= 2 * 12 and len(a) > 40, sorted(a)
    for key in a:
        if not key.startswith("save_counter"):  # how many saves: bookkeeping, not state
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("make", [
    lambda skip: pipelines.digits(8, seed=3, skip_batches=skip),
    lambda skip: pipelines.gaussian(4, size=3, seed=3, skip_batches=skip),
])
def test_skip_batches_starts_the_same_stream_later(make):
    """A resumed run's data: batch k of the skipped stream is batch skip + k of the whole one."""
    full = [b.numpy() for b in make(0).take(300)]
    later = [b.numpy() for b in make(230).take(70)]  # 230 batches of 8 span epochs 1 and 2
    for a, b in zip(full[230:], later):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0], later[0])


def test_image_folder_skips_file_names_not_decoded_images(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    make = lambda skip: pipelines.image_folder(  # noqa: E731
        tmp_path, resolution=8, batch_size=4, seed=1, deterministic=True, skip_batches=skip)
    full = [b.numpy() for b in make(0).take(10)]  # 10 batches of 4 = 3.3 passes over 12 files
    later = [b.numpy() for b in make(7).take(3)]
    for a, b in zip(full[7:], later):
        np.testing.assert_array_equal(a, b)
