"""A worker of a two-process MultiWorkerMirroredStrategy run dies or gets stuck.

* SIGKILL to one worker of a launcher run: the survivor exits with status 75
  and a message naming the lost task and its address, instead of waiting in
  the next all-reduce; rerunning both resumes from the last checkpoint and,
  with --deterministic, ends with the weights of an uninterrupted run.
* A worker that is alive but does not join the next collective (a Python
  stall): the other fails once the collective timeout (3 s here) expires.
"""
import json
import os
import signal

import numpy as np
import tensorflow as tf

from tests.localhost_cluster import WORKER_SCRIPT, cluster_envs, read, start, wait, wait_until

PEER_LOST = 75


def _launch(workdir, train_steps, *extra):
    return ["-m", "launch.train", "--strategy=multi_worker", f"--workdir={workdir}",
            f"--train_steps={train_steps}", "--log_every=10", "--steps_per_execution=10",
            "--checkpoint_every=20", "--keep_checkpoints=20", "--sample_every=0",
            "--g_hidden=16", "--d_hidden=16", "--latent_dim=4", "--batch_size=8",
            "--tensorboard=false", "--deterministic", *extra]


def _listed_steps(workdir):
    state = tf.train.get_checkpoint_state(str(workdir / "checkpoints"))
    if state is None:
        return []
    return [int(p.rsplit("-", 1)[-1]) for p in state.all_model_checkpoint_paths]


def _values(path):
    reader = tf.train.load_checkpoint(str(path))
    # Not training state: how many saves, the preemption handler's run counter, and the
    # object graph (whose node order follows when those two were first tracked).
    skip = ("save_counter", "checkpointed_runs", "_CHECKPOINTABLE_OBJECT_GRAPH")
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if not k.startswith(skip)}


def test_sigkilled_worker_ends_the_survivor_and_the_rerun_resumes_exactly(
        tmp_path, subprocess_env):
    reference, victim = tmp_path / "reference", tmp_path / "victim"
    # The uninterrupted reference cluster runs beside the one whose worker dies.
    ref_envs, envs = cluster_envs(subprocess_env), cluster_envs(subprocess_env)
    ref = [start(_launch(reference, 80), ref_envs[i], tmp_path / f"ref{i}") for i in range(2)]
    procs = [start(_launch(victim, 100000), envs[i], tmp_path / f"a{i}") for i in range(2)]
    wait_until(lambda: _listed_steps(victim), procs, what="the first checkpoint")
    procs[1][0].send_signal(signal.SIGKILL)
    codes = wait(procs, timeout=120)
    log = read(tmp_path / "a0")
    assert codes[0] == PEER_LOST, log[-3000:]
    address = json.loads(envs[1]["TF_CONFIG"])["cluster"]["worker"][1]
    assert f"worker 0 lost its peer worker 1 ({address})" in log, log[-3000:]
    assert "restart every worker of the cluster to resume from the last checkpoint" in log
    last = max(_listed_steps(victim))
    assert f"Last checkpoint: {victim / 'checkpoints' / f'ckpt-{last}'}" in log
    assert "Traceback" not in log.split("lost its peer")[-1]
    assert last + 20 <= 80, last  # the reference covers the resumed run's end

    envs = cluster_envs(subprocess_env)
    procs = [start(_launch(victim, last + 20), envs[i], tmp_path / f"b{i}") for i in range(2)]
    assert wait(procs) == [0, 0], read(tmp_path / "b0")[-3000:] + read(tmp_path / "b1")[-3000:]
    for i in range(2):
        assert f"Resuming from step {last}" in read(tmp_path / f"b{i}")
    assert wait(ref) == [0, 0], read(tmp_path / "ref0")[-3000:]
    a = _values(reference / "checkpoints" / f"ckpt-{last + 20}")
    b = _values(victim / "checkpoints" / f"ckpt-{last + 20}")
    assert a.keys() == b.keys() and len(a) > 40
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not any(n.startswith("workertemp") for n in os.listdir(victim))


def test_a_stuck_worker_fails_the_other_after_the_collective_timeout(tmp_path, subprocess_env):
    envs = cluster_envs(subprocess_env)
    # Worker 1 sleeps a minute at step 6; the collective timeout is 3 s.
    procs = [start([WORKER_SCRIPT, str(tmp_path / "run"), str(tmp_path / f"w{i}.npz"), "1000",
                    "multi_worker", "3", "6"], envs[i], tmp_path / f"log{i}") for i in range(2)]
    try:
        codes = wait(procs[:1], timeout=120)
    finally:
        procs[1][0].kill()
        wait(procs[1:])
    log = read(tmp_path / "log0")
    assert codes == [PEER_LOST], log[-3000:]
    address = json.loads(envs[1]["TF_CONFIG"])["cluster"]["worker"][1]
    assert "worker 0: a collective operation timed out; a peer is gone or stuck" in log, log[-3000:]
    assert f"worker 1 ({address})" in log
    assert "DeadlineExceededError" in log
    assert not (tmp_path / "w0.npz").exists()
