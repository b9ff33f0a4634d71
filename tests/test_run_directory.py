"""Long-run hygiene of a run directory, in real launcher processes: one training at a time
(a lock that a killed run does not leave behind), refusing checkpoints of other networks
before anything is written, the end marker, and bounded sample pictures.
"""
import os
import signal
import subprocess
import sys

from tests.localhost_cluster import ROOT, start, wait, wait_until
from tfgan2 import run_directory
from tfgan2.callbacks import latest_checkpoint_step

SMALL = ["--log_every=10", "--steps_per_execution=10", "--checkpoint_every=20",
         "--batch_size=8", "--latent_dim=4", "--g_hidden=16", "--d_hidden=16", "--num_grid=4",
         "--tensorboard=false"]


def train(env, workdir, *extra, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "launch.train", f"--workdir={workdir}", *SMALL, *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _listing(directory):
    return sorted(os.listdir(directory))


def test_second_training_refuses_and_a_killed_run_leaves_no_lock(tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    first = start(["-m", "launch.train", f"--workdir={workdir}", *SMALL, "--train_steps=100000",
                   "--sample_every=0"], subprocess_env, tmp_path / "first.log")
    procs = [first]
    wait_until(lambda: latest_checkpoint_step(str(workdir / "checkpoints")), procs,
               what="the first checkpoint")
    flags_before = (workdir / "flags.cfg").read_text()

    second = train(subprocess_env, workdir, "--train_steps=40", "--sample_every=0", timeout=120)
    assert second.returncode == 1, second.stdout[-2000:] + second.stderr[-2000:]
    assert (f"{workdir} is in use by another training (pid {first[0].pid} on"
            in second.stderr), second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    assert (workdir / "flags.cfg").read_text() == flags_before  # nothing was overwritten
    assert first[0].poll() is None  # the first run goes on

    first[0].send_signal(signal.SIGKILL)
    wait(procs)
    assert (workdir / run_directory.LOCK_FILE).exists()  # left behind, but not locked
    step = latest_checkpoint_step(str(workdir / "checkpoints"))
    final = step + 40
    rerun = train(subprocess_env, workdir, f"--train_steps={final}", "--sample_every=10",
                  "--keep_samples=2")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"Resuming from step {step}" in rerun.stdout
    assert run_directory.read_done(str(workdir)) == final
    # Four pictures were written (every 10 steps); the newest two are kept.
    assert _listing(workdir / "samples") == [f"step_{final - 10:07d}.png",
                                             f"step_{final:07d}.png"]


def test_checkpoints_of_other_networks_are_refused_before_anything_is_written(
        tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    done = train(subprocess_env, workdir, "--train_steps=20", "--sample_every=0")
    assert done.returncode == 0, done.stderr[-3000:]
    before = _listing(workdir / "checkpoints")
    flags_before = (workdir / "flags.cfg").read_text()
    for change, named in ((["--g_hidden=24", "--batch_size=4"], "--g_hidden was 16, now 24"),
                          (["--ema_decay=0"], "--ema_decay was 0.999, now 0.0")):
        other = train(subprocess_env, workdir, "--train_steps=40", "--sample_every=0", *change,
                      timeout=120)
        assert other.returncode != 0
        assert f"{workdir} holds checkpoints of a run with other networks ({named})" \
            in other.stderr, other.stderr[-2000:]
        assert "batch_size" not in other.stderr.split("other networks")[1]  # not a network flag
        assert _listing(workdir / "checkpoints") == before
        assert (workdir / "flags.cfg").read_text() == flags_before

    (workdir / "flags.cfg").unlink()  # e.g. a run written by tfgan2.train from Python
    other = train(subprocess_env, workdir, "--train_steps=40", "--sample_every=0",
                  "--d_hidden=24", timeout=120)
    assert other.returncode != 0
    assert f"{workdir} holds checkpoints but no flags.cfg, and they do not restore" \
        in other.stderr, other.stderr[-2000:]
    assert "does not fit the model" in other.stderr
    assert "Received incompatible tensor with shape (64, 16)" in other.stderr
    assert _listing(workdir / "checkpoints") == before  # nothing renamed "broken-"
    assert not (workdir / "flags.cfg").exists()

    # The flags that fit resume it.
    same = train(subprocess_env, workdir, "--train_steps=40", "--sample_every=0")
    assert same.returncode == 0, same.stderr[-3000:]
    assert "Resuming from step 20" in same.stdout


def test_lock_is_reentrant_in_one_process_and_exclusive_across_processes(tmp_path):
    workdir = str(tmp_path / "run")
    with run_directory.locked(workdir):
        with run_directory.locked(workdir):  # e.g. the launcher, then tfgan2.train
            pass
        # The module alone (no TensorFlow import), in another process.
        probe = subprocess.run(
            [sys.executable, "-c", "import importlib.util as u, sys\n"
             "spec = u.spec_from_file_location('rd', sys.argv[2]); r = u.module_from_spec(spec)\n"
             "spec.loader.exec_module(r)\n"
             "try:\n with r.locked(sys.argv[1]): print('got it')\n"
             "except r.RunDirectoryLocked as e: print(e)", workdir, run_directory.__file__],
            capture_output=True, text=True, timeout=60)
        assert f"is in use by another training (pid {os.getpid()} on" in probe.stdout, \
            probe.stdout + probe.stderr[-2000:]
    with run_directory.locked(workdir):  # released on leaving the block
        pass
