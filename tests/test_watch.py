"""Continuous evaluation (`tfgan2.watch`, ``launch.evaluate --watch``).

* in one process, against a real CheckpointManager: only checkpoints listed in
  the state file are read (files of a half-written one are ignored), one
  deleted by retention before it is read is skipped, results land in the
  JSON-lines file and TensorBoard at each checkpoint's step, the end marker
  stops the watch, and a second watch over the same file evaluates nothing again;
* in real processes: the evaluator runs beside training, is SIGKILLed after its
  first result, and the rerun continues without evaluating a step twice.
"""
import json
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tests.localhost_cluster import read, start, wait, wait_until
from tfgan2 import run_directory, summaries, watch


@pytest.fixture
def small_gan(tiny_gan, compiled):
    """``small_gan()``: an MLP GAN on 8x8x1 images, compiled with Adam(1e-3)."""
    return lambda: compiled(tiny_gan(latent_dim=4, size=8, hidden=8), beta_1=0.9)


def test_watch_reads_listed_checkpoints_survives_retention_and_resumes(tmp_path, small_gan):
    workdir = str(tmp_path)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    trainer = small_gan()
    manager = tf.train.CheckpointManager(tfgan2.callbacks.make_checkpoint(trainer), ckpt_dir,
                                         max_to_keep=2, checkpoint_name="ckpt")

    def save(step):
        trainer.step_counter.assign(step)
        trainer.generator.get_layer("fc3").bias.assign(np.full(64, step / 100, np.float32))
        manager.save(checkpoint_number=step)

    save(10)
    save(20)
    # A checkpoint being written: files exist, the state file does not list it yet.
    with open(os.path.join(ckpt_dir, "ckpt-25.index"), "wb") as f:
        f.write(b"partial")
    seen = []

    def evaluator(gan):
        bias = round(float(gan.generator.get_layer("fc3").bias.numpy()[0]), 6)
        seen.append((gan.step, bias))
        if len(seen) == 1:  # training goes on meanwhile: retention deletes 10 and 20
            save(30)
            save(40)
            run_directory.write_done(workdir, 40)
        return {"bias": bias, "nested": {"x": 1.0}}

    messages = []
    metrics_path = os.path.join(workdir, "eval", "metrics.jsonl")
    log_dir = os.path.join(workdir, "tensorboard", "eval")
    result = watch.watch_checkpoints(small_gan(), workdir, evaluator, metrics_path,
                                     log_dir=log_dir, poll_seconds=0.01, timeout=30,
                                     say=messages.append)
    assert result.ended == "finished" and result.final_step == 40
    assert result.evaluated == [10, 30, 40] and result.skipped == [20]
    # Each evaluation saw the weights of its own checkpoint.
    assert seen == [(10, 0.1), (30, 0.3), (40, 0.4)]
    assert any("step 20 was deleted (retention)" in m for m in messages), messages
    assert not any("25" in m for m in messages)
    rows = [json.loads(line) for line in open(metrics_path, encoding="utf-8")]
    assert [r["step"] for r in rows] == [10, 30, 40]
    assert [round(r["bias"], 6) for r in rows] == [0.1, 0.3, 0.4]
    assert rows[0]["nested/x"] == 1.0 and rows[2]["checkpoint"].endswith("ckpt-40")
    events = summaries.read_events(log_dir)["scalars"]
    assert [(s, round(v, 6)) for s, v in events["eval/bias"]] == [(10, 0.1), (30, 0.3), (40, 0.4)]

    # A second watcher over the same results evaluates nothing again and ends.
    again = watch.watch_checkpoints(small_gan(), workdir, evaluator, metrics_path,
                                    poll_seconds=0.01, timeout=30, say=messages.append)
    assert again.evaluated == [] and again.ended == "finished"
    assert len(seen) == 3
    assert any("Resuming: 3 checkpoint(s) already evaluated" in m for m in messages)


def test_watch_reports_checkpoints_deleted_before_it_looked(tmp_path, small_gan):
    # Training saved 10, 20 and 30 keeping one: the watcher never saw 10 and 20 listed.
    workdir = str(tmp_path)
    trainer = small_gan()
    checkpointer = tfgan2.callbacks.Checkpointer(os.path.join(workdir, "checkpoints"),
                                                 max_to_keep=1)
    checkpointer.set_model(trainer)
    for step in (10, 20, 30):
        trainer.step_counter.assign(step)
        checkpointer.save()
    run_directory.write_done(workdir, 30)
    assert tfgan2.callbacks.saved_steps(os.path.join(workdir, "checkpoints")) == [10, 20, 30]
    messages = []
    result = watch.watch_checkpoints(small_gan(), workdir, lambda gan: {"step": gan.step},
                                     str(tmp_path / "eval.jsonl"), poll_seconds=0.01,
                                     timeout=30, say=messages.append)
    assert result.evaluated == [30] and result.ended == "finished"
    assert result.skipped == [10, 20] and result.deleted == [10, 20]
    assert "Checkpoint(s) of step 10, 20 deleted (retention) before they could be read; " \
           "skipped." in messages


def test_watch_gives_up_after_the_timeout_without_new_checkpoints(tmp_path, small_gan):
    clock = iter(range(0, 1000, 5))  # each look advances 5 "seconds"
    result = watch.watch_checkpoints(small_gan(), str(tmp_path), lambda gan: {},
                                     str(tmp_path / "m"), poll_seconds=5, timeout=20,
                                     clock=lambda: next(clock), sleep=lambda s: None,
                                     say=lambda m: None)
    assert result.ended == "timeout" and result.evaluated == []


TRAIN = ["--log_every=10", "--steps_per_execution=10", "--checkpoint_every=20",
         "--keep_checkpoints=1", "--sample_every=0", "--batch_size=8", "--latent_dim=4",
         "--g_hidden=16", "--d_hidden=16", "--num_grid=4", "--tensorboard=false"]


def test_evaluator_beside_training_is_killed_and_resumes(tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    evaluate = ["-m", "launch.evaluate", f"--workdir={workdir}", "--watch", "--metrics=fid",
                "--num_samples=50", "--classifier_epochs=1", "--poll_seconds=0.2",
                "--watch_timeout=600"]
    # The evaluator starts first and waits for the run's flags.cfg.
    first = start(evaluate, subprocess_env, tmp_path / "eval1.log")
    training = start(["-m", "launch.train", f"--workdir={workdir}", "--train_steps=400", *TRAIN],
                     subprocess_env, tmp_path / "train.log")
    results = workdir / "eval" / "metrics.jsonl"
    wait_until(lambda: results.exists() and results.read_text().count("\n") >= 1,
               [first], timeout=900, what="the first evaluation")
    first[0].send_signal(signal.SIGKILL)
    wait([first])
    evaluated_before = {json.loads(line)["step"] for line in results.read_text().splitlines()}
    second = start(evaluate, subprocess_env, tmp_path / "eval2.log")
    assert wait([training], timeout=900) == [0], read(tmp_path / "train.log")[-3000:]
    assert wait([second], timeout=900) == [0], read(tmp_path / "eval2.log")[-3000:]
    log = read(tmp_path / "eval2.log")
    assert f"Resuming: {len(evaluated_before)} checkpoint(s) already evaluated" in log
    assert "Training finished at step 400" in log
    steps = [json.loads(line)["step"] for line in results.read_text().splitlines()]
    assert steps == sorted(set(steps)), steps  # no step twice, in order
    assert steps[-1] == 400 and all(s % 20 == 0 for s in steps)
    assert evaluated_before <= set(steps)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert all(np.isfinite(r["fid"]) and r["fid"] > 0 for r in rows)
    events = summaries.read_events(str(workdir / "tensorboard" / "eval"))["scalars"]
    logged = {s for s, _ in events["eval/fid"]}
    # The kill may fall between a row and its TensorBoard scalar, never the reverse.
    assert set(steps) - evaluated_before <= logged <= set(steps)
    # Retention kept one checkpoint; the evaluator read those it saw before deletion and
    # names every other one as deleted before it could be read.
    assert sorted(os.listdir(workdir / "checkpoints")) == [
        "checkpoint", "ckpt-400.data-00000-of-00001", "ckpt-400.index", "saved_steps.txt"]
    summary = log[log.index("Training finished at step 400"):]
    deleted = set()
    if "deleted by the training's retention" in summary:
        listed = summary[summary.index("(steps ") + len("(steps "):]
        deleted = {int(s) for s in listed[:listed.index(";")].split(", ")}
    else:
        assert "skipped none" in summary
    assert set(steps) | deleted == set(range(20, 401, 20))
