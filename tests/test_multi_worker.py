"""MultiWorkerMirroredStrategy with two real worker processes on localhost ports.

* the library path (`tests/multi_worker_run.py` through `tfgan2.train`): both
  workers end with identical weights, equal to a one-process run on the same
  global batches, and only the chief writes samples, metrics and checkpoints;
* the launcher path: SIGTERM to one worker makes TensorFlow's
  PreemptionCheckpointHandler save the same step on both, both exit with
  128 + 15, and rerunning both resumes from that step to the end.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np

from tests.localhost_cluster import (ROOT, TIMEOUT, WORKER_SCRIPT, cluster_envs as _cluster_envs,
                                     read as _read, start as _start, wait as _wait)


def test_two_workers_train_identically_and_only_the_chief_writes(tmp_path, subprocess_env):
    steps = 8
    workdirs = [tmp_path / "chief", tmp_path / "worker1"]
    envs = _cluster_envs(subprocess_env)
    procs = [_start([WORKER_SCRIPT, str(workdirs[i]), str(tmp_path / f"w{i}.npz"), str(steps)],
                    envs[i], tmp_path / f"log{i}") for i in range(2)]
    reference = subprocess.run(
        [sys.executable, WORKER_SCRIPT, str(tmp_path / "single"), str(tmp_path / "single.npz"),
         str(steps), "one_device"], cwd=ROOT, env=subprocess_env, capture_output=True, text=True,
        timeout=TIMEOUT)
    codes = _wait(procs)
    logs = [_read(tmp_path / f"log{i}") for i in range(2)]
    assert codes == [0, 0], "\n".join(log[-3000:] for log in logs)
    assert reference.returncode == 0, reference.stderr[-3000:]

    w0, w1, single = (np.load(tmp_path / f"{name}.npz") for name in ("w0", "w1", "single"))
    assert int(w0["step"]) == int(w1["step"]) == steps
    assert sorted(w0.files) == sorted(w1.files) and len(w0.files) > 10
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)
    # Two workers with one replica each = one process on the same global batches.
    for key in w0.files:
        np.testing.assert_allclose(w0[key], single[key], rtol=1e-4, atol=1e-5, err_msg=key)
    assert any(not np.allclose(w0[k], 0) for k in w0.files if k.startswith("g"))

    chief = sorted(os.listdir(workdirs[0]))
    assert {"checkpoints", "samples", "metrics.jsonl", "losses.png"} <= set(chief)
    assert os.path.exists(workdirs[0] / "checkpoints" / f"ckpt-{steps}.index")
    assert os.listdir(workdirs[0] / "samples")
    assert os.listdir(workdirs[1]) == [], "the non-chief worker wrote files"
    assert f"checkpoint {workdirs[0] / 'checkpoints'}" in logs[0]


def _launch_args(workdir, train_steps):
    return ["-m", "launch.train", "--strategy=multi_worker", f"--workdir={workdir}",
            f"--train_steps={train_steps}", "--log_every=10", "--steps_per_execution=1",
            "--checkpoint_every=1000", "--sample_every=0", "--g_hidden=32", "--d_hidden=32",
            "--batch_size=16", "--tensorboard=false"]


def test_sigterm_to_one_worker_saves_one_step_on_both_and_the_rerun_resumes(
        tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    envs = _cluster_envs(subprocess_env)
    procs = [_start(_launch_args(workdir, 5000), envs[i], tmp_path / f"a{i}") for i in range(2)]
    metrics = workdir / "metrics.jsonl"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if metrics.exists() and len(_read(metrics).splitlines()) >= 2:
            break
        if any(p.poll() is not None for p, _ in procs):
            break
        time.sleep(0.2)
    assert all(p.poll() is None for p, _ in procs), _read(tmp_path / "a0")[-3000:]
    procs[1][0].send_signal(signal.SIGTERM)  # preempt the non-chief worker
    codes = _wait(procs)
    logs = [_read(tmp_path / f"a{i}") for i in range(2)]
    assert codes == [128 + signal.SIGTERM] * 2, "\n".join(log[-3000:] for log in logs)
    stopped = [[line for line in log.splitlines() if line.startswith("Stopped by signal SIGTERM")]
               for log in logs]
    assert all(len(s) == 1 for s in stopped), stopped
    step = int(stopped[0][0].split(" at step ")[1].split(";")[0])
    assert stopped[0] == stopped[1], "the workers stopped at different steps"
    assert 20 <= step < 5000
    # --checkpoint_every=1000: the only checkpoint is the preemption save.
    ckpts = sorted(n for n in os.listdir(workdir / "checkpoints") if n.endswith(".index"))
    assert ckpts == [f"ckpt-{step}.index"]
    assert not any(n.startswith("workertemp") for n in os.listdir(workdir))

    final = step + 10
    envs = _cluster_envs(subprocess_env)
    procs = [_start(_launch_args(workdir, final), envs[i], tmp_path / f"b{i}") for i in range(2)]
    codes = _wait(procs)
    logs = [_read(tmp_path / f"b{i}") for i in range(2)]
    assert codes == [0, 0], "\n".join(log[-3000:] for log in logs)
    for log in logs:
        assert f"Resuming from step {step}" in log
        assert f"Done: step {final}" in log
    assert os.path.exists(workdir / "checkpoints" / f"ckpt-{final}.index")
