"""`train`: fit a compiled `GAN` into a self-describing run directory, resuming if possible.

Run directory layout::

    workdir/
      checkpoints/ckpt-<step>.*   G, D, both optimizers, EMA generator, step
      samples/step_<step>.png     sample grids (or histograms for vector data)
      metrics.jsonl               one JSON object per log interval, with "step"
      losses.png                  loss and D-probability curves

The caller owns everything else in the directory (e.g. the launcher's
``flags.cfg``).
"""
import contextlib
import math
import os
import signal
import sys
import threading

import keras

from tfgan2 import callbacks as callbacks_lib

__all__ = ["train", "RunResult"]


class RunResult:
    """What `train` did: first and last step, the Keras history, the newest checkpoint.

    ``stopped_by`` is the signal number (e.g. SIGTERM) that ended the run early
    after saving a checkpoint, or None.
    """

    def __init__(self, start_step, final_step, history, checkpoint, stopped_by=None):
        self.start_step = start_step
        self.final_step = final_step
        self.history = history
        self.checkpoint = checkpoint
        self.stopped_by = stopped_by

    def __repr__(self):
        return (f"RunResult(start_step={self.start_step}, final_step={self.final_step}, "
                f"checkpoint={self.checkpoint!r})")


def _say(message):
    print(message, flush=True)


class _StopOnSignal(keras.callbacks.Callback):
    """Ends ``fit`` after the current execution once a watched signal arrived."""

    def __init__(self):
        super().__init__()
        self.received = None

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            self.model.stop_training = True


@contextlib.contextmanager
def _signals_to(stopper, signals=(signal.SIGTERM,)):
    """Route ``signals`` to ``stopper`` while training (main thread only; no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        stopper.received = signum

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def train(gan, dataset, workdir, train_steps, *, log_every=100, sample_every=500,
          checkpoint_every=1000, keep_checkpoints=3, num_samples=64, sample_seed=0,
          real_samples=None, callbacks=(), verbose=None):
    """Train ``gan`` on ``dataset`` until ``gan.step == train_steps``, writing ``workdir``.

    If ``workdir/checkpoints`` holds a checkpoint, it is restored first and
    training continues from its step (printing ``Resuming from step N``).
    SIGTERM (e.g. a preemption notice) ends training after the current
    execution with a checkpoint of that step; the result's ``stopped_by`` says so.

    Args:
      gan: a compiled `tfgan2.GAN`.
      dataset: an endless `tf.data.Dataset` of real batches.
      workdir: the run directory (created if needed).
      train_steps: total number of steps of the run (including resumed ones).
      log_every: steps per Keras epoch; each epoch appends a row to ``metrics.jsonl``.
        With ``steps_per_execution`` k > 1 (set in ``compile``), ``log_every`` and
        ``train_steps`` minus the restored step must be multiples of k.
      sample_every, checkpoint_every: intervals in steps (0 disables; a final
        sample picture and checkpoint are always written).
      keep_checkpoints: how many checkpoints to keep.
      num_samples, sample_seed: size and fixed latents of the sample grid.
      real_samples: real data for the histograms of vector data.
      callbacks: extra Keras callbacks.
      verbose: Keras verbosity (default: progress bar on a terminal, one line
        per epoch otherwise).

    Returns:
      A `RunResult`.

    Raises:
      NonFiniteError: a loss or weight became non-finite; nothing from that
        state was saved and the message names the last good checkpoint.
    """
    for name, value in (("train_steps", train_steps), ("log_every", log_every)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    for name, value in (("sample_every", sample_every), ("checkpoint_every", checkpoint_every)):
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be an integer >= 0 (0 disables), got {value!r}.")
    per_call = int(getattr(gan, "steps_per_execution", 1) or 1)
    if log_every % per_call:
        raise ValueError(f"log_every={log_every} must be a multiple of the model's "
                         f"steps_per_execution={per_call}: Keras runs whole executions.")
    os.makedirs(workdir, exist_ok=True)
    checkpointer = callbacks_lib.Checkpointer(
        os.path.join(workdir, "checkpoints"), every_n_steps=checkpoint_every,
        max_to_keep=keep_checkpoints)
    start = checkpointer.restore(gan)
    if start is not None:
        _say(f"Resuming from step {start}")
    start = start or 0
    if start >= train_steps:
        _say(f"Nothing to do: the run in {workdir} is already at step {start} "
             f"(train_steps={train_steps}).")
        return RunResult(start, start, None, checkpointer.latest)
    if (train_steps - start) % per_call:
        raise ValueError(f"train_steps={train_steps} minus the restored step {start} must be a "
                         f"multiple of steps_per_execution={per_call}, so that the run ends "
                         f"exactly at train_steps.")

    guard = callbacks_lib.NonFiniteGuard()
    stopper = _StopOnSignal()
    all_callbacks = [
        guard,
        stopper,
        callbacks_lib.StopAtStep(train_steps),
        callbacks_lib.LossHistory(workdir),
        callbacks_lib.SampleGrid(os.path.join(workdir, "samples"), every_n_steps=sample_every,
                                 num_samples=num_samples, seed=sample_seed,
                                 real_samples=real_samples),
        checkpointer,
        *callbacks,
    ]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    with _signals_to(stopper):
        history = gan.fit(dataset, epochs=math.ceil(train_steps / log_every),
                          initial_epoch=start // log_every, steps_per_epoch=log_every,
                          callbacks=all_callbacks, verbose=verbose, shuffle=False)
    guard.raise_if_failed(checkpointer.latest)
    if stopper.received is not None:
        _say(f"Stopped by signal {signal.Signals(stopper.received).name} at step {gan.step}; "
             f"saved {checkpointer.latest}. Rerun the same command to resume.")
    return RunResult(start, gan.step, history, checkpointer.latest, stopper.received)
