"""Real training processes stopped by SIGTERM or killed by SIGKILL, then rerun."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from tfgan2.callbacks import latest_checkpoint_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LONG_RUN = ["--train_steps=100000", "--log_every=10", "--steps_per_execution=10",
            "--sample_every=0", "--batch_size=8", "--latent_dim=4", "--g_hidden=16",
            "--d_hidden=16", "--num_grid=4", "--tensorboard=false"]


def start(env, workdir, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "launch.train", f"--workdir={workdir}", *LONG_RUN, *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, proc, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended early:\n{proc.stderr.read()[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("timed out waiting for training progress")


def logged_steps(workdir):
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass
    return rows


def rerun(env, workdir, train_steps, *extra):
    return subprocess.run(
        [sys.executable, "-m", "launch.train", f"--workdir={workdir}", *LONG_RUN,
         f"--train_steps={train_steps}", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    proc = start(subprocess_env, workdir, "--checkpoint_every=0")
    wait_for(lambda: len(logged_steps(workdir)) >= 2, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Stopped by signal SIGTERM at step" in out
    stopped = int(out.split("Stopped by signal SIGTERM at step ")[1].split(";")[0])
    # Only the final save can have written a checkpoint (--checkpoint_every=0).
    assert latest_checkpoint_step(str(workdir / "checkpoints")) == stopped >= 20
    result = rerun(subprocess_env, workdir, stopped + 10)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming from step {stopped}" in result.stdout
    assert f"Done: step {stopped + 10}" in result.stdout


def test_sigkill_loses_at_most_checkpoint_every_steps(tmp_path, subprocess_env):
    """Killed at a random moment after step 40, rerun: ends at the requested step with the
    weights of a run never interrupted (--deterministic makes them comparable bit for bit)."""
    workdir = tmp_path / "run"
    proc = start(subprocess_env, workdir, "--checkpoint_every=20", "--deterministic")
    ckpts = str(workdir / "checkpoints")
    wait_for(lambda: (latest_checkpoint_step(ckpts) or 0) >= 40, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    last_logged = max(logged_steps(workdir))
    saved = latest_checkpoint_step(ckpts)
    assert last_logged - saved <= 20
    result = rerun(subprocess_env, workdir, saved + 20, "--checkpoint_every=20",
                   "--deterministic")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming from step {saved}" in result.stdout
    assert f"Done: step {saved + 20}" in result.stdout
    # metrics.jsonl continues from the restored step: no rows from the lost steps remain.
    steps = logged_steps(workdir)
    assert steps == sorted(steps) and steps[-1] == saved + 20

    reference = tmp_path / "uninterrupted"
    whole = rerun(subprocess_env, reference, saved + 20, "--checkpoint_every=20",
                  "--deterministic")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = tf.train.load_checkpoint(str(workdir / "checkpoints" / f"ckpt-{saved + 20}"))
    clean = tf.train.load_checkpoint(str(reference / "checkpoints" / f"ckpt-{saved + 20}"))
    keys = [k for k in clean.get_variable_to_shape_map() if not k.startswith("save_counter")]
    assert len(keys) > 40 and sorted(keys) == sorted(
        k for k in killed.get_variable_to_shape_map() if not k.startswith("save_counter"))
    for key in keys:
        np.testing.assert_array_equal(killed.get_tensor(key), clean.get_tensor(key),
                                      err_msg=key)
