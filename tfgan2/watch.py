"""Continuous evaluation: measure each checkpoint of a run directory as training writes it.

`watch_checkpoints` runs beside a training process (or after it) on the same
run directory. Contract:

* Only complete checkpoints are read: the list comes from the
  `tf.train.CheckpointManager` state file ``checkpoints/checkpoint``, which
  the manager rewrites atomically *after* a checkpoint's files are complete.
* Retention deletes old checkpoints while the watcher runs. A restore that
  fails is retried after re-reading the state file; a checkpoint no longer
  listed was deleted and is skipped (reported), one still listed that keeps
  failing is reported as unreadable and skipped. Checkpoints saved and
  deleted between two looks (a `tfgan2.callbacks.Checkpointer` records every
  step it saves, `tfgan2.callbacks.saved_steps`) are reported as deleted
  before they could be read.
* Results go, one JSON object per checkpoint (``step``, ``checkpoint``, each
  metric), to ``metrics_path`` (appended and flushed before the TensorBoard
  scalars of the same step). Steps already in that file are never evaluated
  again, so a killed watcher resumes where it stopped.
* It ends when training has finished (`tfgan2.run_directory.read_done` gives
  the final step and every checkpoint listed after reading it is done) or
  when no new checkpoint appeared for ``timeout`` seconds.
"""
import json
import os
import time

import tensorflow as tf

from tfgan2 import callbacks, run_directory, summaries
from tfgan2.evaluation import flatten

__all__ = ["listed_checkpoints", "evaluated_steps", "watch_checkpoints", "WatchResult"]


def listed_checkpoints(directory):
    """``[(step, path)]``, oldest first, of the complete checkpoints in ``directory``'s state file."""
    found = {}
    for path in callbacks.checkpoint_paths(directory):
        try:
            found[int(path.rsplit("-", 1)[-1])] = path
        except ValueError:
            continue
    return sorted(found.items())


def evaluated_steps(metrics_path):
    """Steps that have a row in ``metrics_path`` (a line cut short by a kill is ignored)."""
    steps = set()
    if not os.path.exists(metrics_path):
        return steps
    with open(metrics_path, encoding="utf-8") as f:
        for line in f:
            try:
                steps.add(int(json.loads(line)["step"]))
            except (ValueError, KeyError, TypeError):
                continue
    return steps


class WatchResult:
    """What `watch_checkpoints` did: ``evaluated`` and ``skipped`` steps (sorted), why it
    ``ended`` (``"finished"`` or ``"timeout"``) and the run's ``final_step`` when finished.
    ``deleted``: the skipped steps whose checkpoint retention deleted before it was read
    (the others did not restore)."""

    def __init__(self, evaluated, skipped, ended, final_step, deleted=()):
        self.evaluated = evaluated
        self.skipped = sorted(skipped)
        self.ended = ended
        self.final_step = final_step
        self.deleted = sorted(deleted)

    def __repr__(self):
        return (f"WatchResult(evaluated={self.evaluated}, skipped={self.skipped}, "
                f"ended={self.ended!r}, final_step={self.final_step}, deleted={self.deleted})")


_DELETED = "deleted"


def _restore(checkpoint, directory, step, path, retries, retry_seconds, say):
    """Restore ``path``: True, or `_DELETED` when it was deleted meanwhile, or False when it
    keeps failing."""
    for attempt in range(1, retries + 1):
        try:
            checkpoint.restore(path).expect_partial()
            return True
        except Exception as exc:  # noqa: BLE001 - re-check the state file, then retry
            if step not in dict(listed_checkpoints(directory)):
                say(f"Checkpoint of step {step} was deleted (retention) before it could be "
                    f"read; skipped.")
                return _DELETED
            if attempt == retries:
                say(f"Checkpoint {path} does not restore after {retries} attempts "
                    f"({callbacks.error_summary(exc)}); skipped.")
                return False
            time.sleep(retry_seconds)
    return False


def watch_checkpoints(gan, workdir, evaluator, metrics_path, *, log_dir=None, poll_seconds=10.0,
                      timeout=None, retries=3, say=print, clock=time.monotonic,
                      sleep=time.sleep):
    """Evaluate every new checkpoint of ``workdir/checkpoints`` into ``gan`` until training ends.

    Args:
      gan: a `tfgan2.GAN` with the run's networks (built; need not be compiled).
      workdir: the run directory.
      evaluator: ``evaluator(gan) -> dict`` of (possibly nested) numbers, e.g. a
        `tfgan2.evaluation.Evaluator`.
      metrics_path: the JSON-lines results file (appended; read back on start).
      log_dir: TensorBoard directory for ``eval/<metric>`` scalars at each
        checkpoint's step, or None.
      poll_seconds: pause between looks at the state file.
      timeout: stop after this many seconds without a new checkpoint (None: never).
      retries: restore attempts of a listed checkpoint before skipping it.

    Returns:
      A `WatchResult`.
    """
    directory = os.path.join(workdir, "checkpoints")
    checkpoint = callbacks.make_checkpoint(gan)
    done = evaluated_steps(metrics_path)
    if done:
        say(f"Resuming: {len(done)} checkpoint(s) already evaluated in {metrics_path} "
            f"(last step {max(done)}).")
    evaluated, skipped, deleted, writer = [], [], [], None
    last_new = clock()
    while True:
        final = run_directory.read_done(workdir)  # before listing: the final checkpoint
        saved = callbacks.saved_steps(directory)  # precedes the marker; the record of a
        listed = listed_checkpoints(directory)  # save follows its listing
        kept = {s for s, _ in listed}
        gone = [s for s in saved if s not in kept and s not in done and s not in skipped]
        if gone:
            say(f"Checkpoint(s) of step {', '.join(map(str, gone))} deleted (retention) "
                f"before they could be read; skipped.")
            skipped += gone
            deleted += gone
        pending = [(s, p) for s, p in listed if s not in done and s not in skipped]
        for step, path in pending:
            last_new = clock()
            restored = _restore(checkpoint, directory, step, path, retries,
                                min(poll_seconds, 1.0), say)
            if restored is not True:
                skipped.append(step)
                if restored == _DELETED:
                    deleted.append(step)
                continue
            flat = flatten(evaluator(gan))
            row = {"step": int(step), "checkpoint": path, **flat}
            os.makedirs(os.path.dirname(os.path.abspath(metrics_path)), exist_ok=True)
            with open(metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if log_dir:
                if writer is None:
                    os.makedirs(log_dir, exist_ok=True)
                    writer = tf.summary.create_file_writer(log_dir)
                with writer.as_default():
                    summaries.write_scalars(flat, step, prefix="eval/")
                writer.flush()
            done.add(step)
            evaluated.append(step)
            say(f"Evaluated step {step}: " + ", ".join(
                f"{k}={v:.4g}" for k, v in flat.items() if "/" not in k))
            last_new = clock()
        if final is not None and not pending:
            return WatchResult(evaluated, skipped, "finished", final, deleted)
        if timeout is not None and clock() - last_new > timeout:
            return WatchResult(evaluated, skipped, "timeout", None, deleted)
        if not pending:
            sleep(poll_seconds)
