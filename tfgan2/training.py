"""`train`: fit a compiled `GAN` into a self-describing run directory, resuming if possible.

Run directory layout::

    workdir/
      checkpoints/ckpt-<step>.*   G, D, both optimizers, EMA generator, step
      samples/step_<step>.png     sample grids (or histograms for vector data)
      metrics.jsonl               one JSON object per log interval, with "step"
      losses.png                  loss and D-probability curves
      .lock                       held (flock) by the training writing the directory
      done.json                   {"step": N} once the run reached train_steps

The caller owns everything else in the directory (e.g. the launcher's
``flags.cfg``).

Multi-worker runs (`tf.distribute.MultiWorkerMirroredStrategy`): every worker
calls `train` with the same ``workdir`` on a shared file system. All of them
restore from ``workdir/checkpoints`` and take part in every save, but only
the chief writes there, and only the chief writes samples and metrics;
the other workers save into a private ``workertemp_<index>/`` that is
removed at the end.
"""
import contextlib
import math
import os
import signal
import sys
import threading

import keras
import tensorflow as tf

from tfgan2 import callbacks as callbacks_lib
from tfgan2 import distribute
from tfgan2 import run_directory

__all__ = ["train", "RunResult", "DatasetExhaustedError"]


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


class DatasetExhaustedError(RuntimeError):
    """The dataset ran out before ``train_steps``, even repeated (it is empty from the start
    step on, or it is not a `tf.data.Dataset` that can be repeated).

    ``step`` is the step training reached; a checkpoint of it was saved, so a
    rerun with an endless dataset resumes there.
    """

    def __init__(self, message, step):
        super().__init__(message)
        self.step = step


def _repeated(dataset, steps, say=_say):
    """``dataset`` repeated without end when it is a finite `tf.data.Dataset`.

    Finite datasets (the Keras examples' ``from_tensor_slices(x).batch(b)``)
    are passes over the data: training runs as many passes as its ``steps``
    need (one line says so when the pass is known to be shorter). Endless
    datasets are returned as they are; other inputs (generators, distributed
    datasets) too.
    """
    if not isinstance(dataset, tf.data.Dataset):
        return dataset
    cardinality = int(dataset.cardinality().numpy())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        return dataset
    if 0 < cardinality < steps:
        say(f"tfgan2.train: the dataset holds {cardinality} batches; it is repeated for the "
            f"{steps} steps to go ({steps / cardinality:.3g} passes).")
    return dataset.repeat()


class _StepProgress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar with each epoch's real length.

    Keras sizes every epoch's bar at ``steps_per_epoch``; the last epoch of a
    run (and the first of a resumed one) can be shorter, which showed
    ``100/100`` after 50 steps and divided their time over 100. The step is
    ``clock``'s (a `tfgan2.callbacks.HostStep` earlier in the list). The batch
    logs are left unread: a one-line-per-epoch bar never shows them, and a
    live bar reads them only when it redraws.
    """

    raw_batch_logs = True

    def __init__(self, log_every, train_steps, clock):
        super().__init__()
        self.log_every = int(log_every)
        self.train_steps = int(train_steps)
        self.clock = clock

    def on_epoch_begin(self, epoch, logs=None):
        step = self.clock.current_step()
        self.target = max(1, min(self.log_every, self.train_steps - step))
        super().on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.seen < self.target:  # stopped early (a signal, a non-finite loss, no data)
            if not self.seen:
                return
            self.target = self.progbar.target = self.seen
        super().on_epoch_end(epoch, logs)


class _StopOnSignal(keras.callbacks.Callback):
    """Ends ``fit`` after the current execution once a watched signal arrived."""

    raw_batch_logs = True  # it never reads them

    def __init__(self):
        super().__init__()
        self.received = None

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            self.model.stop_training = True


class _PreemptionSaver(callbacks_lib.HostStep):
    """Multi-worker preemption: TensorFlow's `PreemptionCheckpointHandler` after each execution.

    When any worker receives SIGTERM, the handler agrees with all workers on
    a step, every worker saves the checkpoint of that step (through the run's
    own checkpoint manager) and training ends on all of them.
    """

    def __init__(self, strategy, checkpointer, stopper):
        super().__init__()
        self.strategy = strategy
        self.checkpointer = checkpointer
        self.stopper = stopper
        self.handler = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        config = tf.distribute.experimental.TerminationConfig(exit_fn=self._preempted)
        self.handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            self.strategy.cluster_resolver, self.checkpointer.manager,
            termination_config=config)

    def _preempted(self):
        # Called by the handler right after it saved the agreed step.
        self.checkpointer.last_saved_step = self.model.step
        self.stopper.received = signal.SIGTERM
        self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if not getattr(self.model, "training_failed", False):
            self.handler.save_checkpoint_if_preempted(checkpoint_number=self.host_step)


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
          checkpoint_every=1000, keep_checkpoints=3, keep_samples=None, num_samples=64,
          sample_seed=0, real_samples=None, callbacks=(), verbose=None, log_values=None):
    """Train ``gan`` on ``dataset`` until ``gan.step == train_steps``, writing ``workdir``.

    If ``workdir/checkpoints`` holds a checkpoint, it is restored first and
    training continues from its step (printing ``Resuming from step N``).
    SIGTERM (e.g. a preemption notice) ends training after the current
    execution with a checkpoint of that step; the result's ``stopped_by`` says so.
    In a multi-worker run this goes through TensorFlow's
    `PreemptionCheckpointHandler`: a SIGTERM to any worker makes all of them
    save the same step and stop.

    Args:
      gan: a compiled `tfgan2.GAN`.
      dataset: a `tf.data.Dataset` of real batches, or a function
        ``dataset(start_step)`` returning one that begins with the batch of
        step ``start_step``, so that a resumed run continues the data stream
        where the checkpoint left it (the launchers pass such a function).
        A finite dataset is repeated (one line says how many batches a pass
        holds when it is known), so training always reaches ``train_steps``.
      workdir: the run directory (created if needed).
      train_steps: total number of steps of the run (including resumed ones).
      log_every: steps per Keras epoch; each epoch appends a row to ``metrics.jsonl``.
        With ``steps_per_execution`` k > 1 (set in ``compile``), ``log_every`` and
        ``train_steps`` minus the restored step must be multiples of k.
      sample_every, checkpoint_every: intervals in steps (0 disables; a final
        sample picture and checkpoint are always written).
      keep_checkpoints: how many checkpoints to keep.
      keep_samples: how many sample pictures to keep (the newest); None or 0 keeps all.
      num_samples, sample_seed: size and fixed latents of the sample grid.
      real_samples: real data for the histograms of vector data.
      callbacks: extra Keras callbacks (run on every worker of a multi-worker run).
      verbose: Keras verbosity (default: progress bar on a terminal, one line
        per epoch otherwise).
      log_values: ``{name: fn}``; each ``metrics.jsonl`` row also holds
        ``name: fn()`` (left out when it returns None), e.g. the number of
        input files skipped so far.

    Returns:
      A `RunResult`.

    Raises:
      NonFiniteError: a loss or weight became non-finite; nothing from that
        state was saved and the message names the last good checkpoint.
      CheckpointError: no checkpoint of the directory restores, or a save
        failed (the previous checkpoints are untouched).
      RunDirectoryLocked: another process is training in ``workdir``.
      PeerLostError: multi-worker: a peer died or stopped responding (a
        collective failed or timed out); the message names it and the last
        checkpoint. The process should exit: its collectives stay aborted.
      DatasetExhaustedError: the data ran out before ``train_steps`` although
        repeated (an empty dataset, or an input that cannot be repeated); the
        message says how many steps it gave. What was trained is checkpointed.
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
    strategy = gan.distribute_strategy
    chief = distribute.is_chief(strategy)
    # Only the chief writes the directory, so only it holds the lock; a second
    # cluster on the same directory fails at its chief.
    with run_directory.locked(workdir) if chief else contextlib.nullcontext():
        return _train(gan, dataset, workdir, train_steps, chief, log_every=log_every,
                      sample_every=sample_every, checkpoint_every=checkpoint_every,
                      keep_checkpoints=keep_checkpoints, keep_samples=keep_samples,
                      num_samples=num_samples, sample_seed=sample_seed,
                      real_samples=real_samples, callbacks=callbacks, verbose=verbose,
                      log_values=log_values)


def _train(gan, dataset, workdir, train_steps, chief, *, log_every, sample_every,
           checkpoint_every, keep_checkpoints, keep_samples, num_samples, sample_seed,
           real_samples, callbacks, verbose, log_values):
    per_call = int(getattr(gan, "steps_per_execution", 1) or 1)
    strategy = gan.distribute_strategy
    multi_worker = distribute.is_multi_worker(strategy)
    os.makedirs(workdir, exist_ok=True)
    write_directory = None
    if not chief:
        _, index = distribute.task_id(strategy)
        write_directory = os.path.join(workdir, f"workertemp_{index}", "checkpoints")
        if tf.io.gfile.exists(write_directory):  # left by a killed run; never restored from
            tf.io.gfile.rmtree(write_directory)
    checkpointer = callbacks_lib.Checkpointer(
        os.path.join(workdir, "checkpoints"), every_n_steps=checkpoint_every,
        max_to_keep=keep_checkpoints, write_directory=write_directory)
    start = checkpointer.restore(gan, set_aside=chief)
    if start is not None:
        _say(f"Resuming from step {start}")
    start = start or 0
    if start >= train_steps:
        _say(f"Nothing to do: the run in {workdir} is already at step {start} "
             f"(train_steps={train_steps}).")
        if chief:
            run_directory.write_done(workdir, start)
        return RunResult(start, start, None, checkpointer.restored_path)
    if chief:
        run_directory.clear_done(workdir)
    if (train_steps - start) % per_call:
        raise ValueError(f"train_steps={train_steps} minus the restored step {start} must be a "
                         f"multiple of steps_per_execution={per_call}, so that the run ends "
                         f"exactly at train_steps.")
    if callable(dataset) and not isinstance(dataset, tf.data.Dataset):
        dataset = dataset(start)
    dataset = _repeated(dataset, train_steps - start)

    guard = callbacks_lib.NonFiniteGuard()
    stopper = _StopOnSignal()
    stop_at = callbacks_lib.StopAtStep(train_steps)
    all_callbacks = [guard, stopper, stop_at]
    if chief:
        all_callbacks += [
            callbacks_lib.LossHistory(workdir, values=log_values),
            callbacks_lib.SampleGrid(os.path.join(workdir, "samples"),
                                     every_n_steps=sample_every, num_samples=num_samples,
                                     seed=sample_seed, real_samples=real_samples,
                                     keep=keep_samples),
        ]
    all_callbacks.append(checkpointer)
    if multi_worker:
        all_callbacks.append(_PreemptionSaver(strategy, checkpointer, stopper))
    all_callbacks += list(callbacks)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if verbose:
        all_callbacks.append(_StepProgress(log_every, train_steps, stop_at))
    # The guard reads the losses whenever another callback writes (and at each epoch end).
    guard.check_every = sorted({every for callback in all_callbacks
                                for every in getattr(callback, "write_every", ()) if every > 0})
    epochs = math.ceil(train_steps / log_every)
    callback_list = callbacks_lib.LogsOnDemand(
        all_callbacks, add_history=True, add_progbar=False, model=gan, verbose=verbose,
        epochs=epochs, steps=log_every)
    signals = contextlib.nullcontext() if multi_worker else _signals_to(stopper)
    try:
        with signals:
            history = gan.fit(dataset, epochs=epochs, initial_epoch=start // log_every,
                              steps_per_epoch=log_every, callbacks=callback_list,
                              verbose=verbose, shuffle=False)
    except distribute.PEER_ERRORS as exc:
        if not multi_worker:
            raise
        message, peers = distribute.peer_lost_message(exc, strategy)
        last = checkpointer.latest or checkpointer.restored_path
        if last is not None and not chief:
            last = os.path.join(workdir, "checkpoints", os.path.basename(last))
        raise distribute.PeerLostError(
            f"{message} Last checkpoint: {last or 'none (the rerun starts from step 0)'}.",
            peers) from exc
    finally:
        checkpointer.cleanup()
    latest = checkpointer.latest
    if latest is not None and not chief:  # the chief's copy of the same step
        latest = os.path.join(workdir, "checkpoints", os.path.basename(latest))
    guard.raise_if_failed(latest)
    if stopper.received is not None:
        _say(f"Stopped by signal {signal.Signals(stopper.received).name} at step {gan.step}; "
             f"saved {latest}. Rerun the same command to resume.")
    elif gan.step < train_steps and not gan.stop_training:
        if isinstance(dataset, tf.data.Dataset):  # repeated: it can only be empty
            what = (f"The dataset gave no batch from step {start} on (it is empty; a function "
                    f"of the start step may have skipped past the end of the data)")
        else:
            what = (f"The input ran out at step {gan.step}: it gave {gan.step - start} batches "
                    f"from step {start} (pass a tf.data.Dataset, which is repeated, or an "
                    f"endless generator)")
        raise DatasetExhaustedError(
            f"{what}; train_steps={train_steps} was not reached. Checkpoint: "
            f"{latest or 'none'}.", gan.step)
    elif chief and gan.step >= train_steps:
        run_directory.write_done(workdir, gan.step)
    return RunResult(start, gan.step, history, latest, stopper.received)
