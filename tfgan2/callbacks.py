"""Keras callbacks for a GAN run: sample grids, checkpoints, loss history, stopping.

All of them count the training step on the host (`HostStep`): ``model.step``
(`tfgan2.GAN`) is read from the device once when ``fit`` starts and at each
epoch end, and in between the step follows the batches Keras reports, so they
stay correct with ``steps_per_execution`` > 1 and across resumed runs without
waiting for the device after every execution. They read the values of the
logs only when they write them; `LogsOnDemand` is the callback list that
lets them (Keras's own converts every batch's logs to Python numbers).
"""
import json
import math
import os

import keras
import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from tfgan2 import distribute, visualize

__all__ = ["StepInterval", "HostStep", "PeriodicWriter", "LogsOnDemand", "log_values", "SampleGrid", "Checkpointer", "LossHistory", "StopAtStep", "NonFiniteGuard",
           "NonFiniteError", "CheckpointError", "make_checkpoint", "latest_checkpoint_step",
           "checkpoint_paths", "error_summary", "SAVED_STEPS_FILE", "saved_steps"]

# In a checkpoint directory: the step of every checkpoint saved there, one per line, so that
# a reader can tell which ones retention deleted (the state file lists only those kept).
SAVED_STEPS_FILE = "saved_steps.txt"


class StepInterval:
    """``due(step)`` is true once per crossed multiple of ``every`` (0 never).

    Robust to a step that advances in jumps (``steps_per_execution`` > 1).
    ``start(step)`` sets the step counting starts from (a multiple crossed
    after it is due); without it the first step seen is due only when it is
    a multiple itself.
    """

    def __init__(self, every):
        self.every = int(every)
        self.last = None

    def start(self, step):
        self.last = step

    def due(self, step):
        if self.every <= 0:
            return False
        if self.last is None:
            self.last = step
            return step > 0 and step % self.every == 0
        crossed = step // self.every > self.last // self.every
        self.last = step
        return crossed


def log_values(logs):
    """The numbers of a batch's logs as Python floats (what `LogsOnDemand` hands over
    unread): nested dicts are flattened, values that are not numbers kept as they are.

    Reading a tensor waits for the device to finish the step that computed it:
    `HostStep` callbacks call this only when they write.
    """
    values = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            values.update(log_values(value))
            continue
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            array = None
        if array is not None and array.size == 1 and array.dtype.kind in "fiub":
            value = float(array.reshape(()))
        values[key] = value
    return values


class HostStep(keras.callbacks.Callback):
    """A callback that knows the GAN's training step without reading it from the device.

    ``host_step``: at ``on_train_begin`` the model's ``step`` (one read of the
    device); after each execution the step of the epoch's start plus the
    index of the last batch Keras reports plus one (Keras calls
    ``on_train_batch_end`` once per execution with its last batch, so any
    ``steps_per_execution`` counts right); at each epoch end ``step`` again (an
    execution cut short by data that ran out is then counted right; Keras
    itself waits for the device there to read the epoch's logs). Subclasses
    call ``super()`` first in the hooks they override.

    ``raw_batch_logs``: `LogsOnDemand` hands such callbacks the batch logs as
    the step returned them (tensors); `log_values` turns them into numbers.
    """

    raw_batch_logs = True

    def __init__(self):
        super().__init__()
        self.host_step = None
        self._epoch_start = None

    def current_step(self):
        """``host_step``, or the model's ``step`` outside ``fit``."""
        return self.model.step if self.host_step is None else self.host_step

    def on_train_begin(self, logs=None):
        self.host_step = self._epoch_start = self.model.step

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.current_step()

    def on_train_batch_end(self, batch, logs=None):
        if self._epoch_start is None:  # driven by hand, outside fit
            self._epoch_start = self.model.step - int(batch) - 1
        self.host_step = self._epoch_start + int(batch) + 1

    def on_epoch_end(self, epoch, logs=None):
        self.host_step = self.model.step


class PeriodicWriter(HostStep):
    """A `HostStep` callback that writes every ``every_n_steps`` steps: ``due()`` is true
    after an execution that crossed a multiple of it (`StepInterval`), and ``write_every``
    tells `tfgan2.train` the interval (to align executions with writes)."""

    def __init__(self, every_n_steps):
        super().__init__()
        self.every_n_steps = int(every_n_steps)
        self._interval = StepInterval(every_n_steps)

    @property
    def write_every(self):
        """Step intervals at which it writes during training."""
        return (self.every_n_steps,)

    def due(self):
        """Whether the last execution crossed a write step (call once per execution)."""
        return self._interval.due(self.host_step)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._interval.start(self.host_step)


def _acts_after_batches(callback):
    """True unless ``callback`` keeps Keras's ``on_train_batch_end`` and ``on_batch_end``,
    which do nothing."""
    return any(not getattr(getattr(callback, hook, None), "_is_default", False)
               for hook in ("on_train_batch_end", "on_batch_end"))


class LogsOnDemand(keras.callbacks.CallbackList):
    """A Keras callback list that does not read the batch logs for callbacks that need not.

    Keras's `CallbackList` converts every batch's logs to Python floats before
    calling any callback that acts after a batch, which makes the host wait
    for the device after every execution. This one passes the logs as they
    are (tensors) to callbacks with ``raw_batch_logs`` (`HostStep` and its
    subclasses read them only when they write), converts them at most once
    per batch for the others, and skips callbacks that do nothing after a
    batch. Construct it as ``fit`` would (``add_history``, ``add_progbar``,
    ``model``, ``verbose``, ``epochs``, ``steps``) and pass it as ``callbacks``.
    """

    def on_train_batch_end(self, batch, logs=None):
        converted = None
        for callback in self.callbacks:
            if not _acts_after_batches(callback):
                continue
            if getattr(callback, "raw_batch_logs", False):
                callback.on_train_batch_end(batch, logs)
                continue
            if converted is None:
                converted = log_values(logs)
            callback.on_train_batch_end(batch, converted)


class SampleGrid(PeriodicWriter):
    """Writes ``samples/step_NNNNNNN.png`` every ``every_n_steps`` steps and at the end.

    Images: a grid of ``num_samples`` generated from the same fixed latents
    each time (drawn from ``seed``, so a resumed run shows the same z), each
    tile titled with D's probability ``sigmoid(D(G(z)))``. A class-conditional
    GAN gets one row per class (``num_samples // num_classes`` columns, at
    least one), column ``j`` using the same z in every row, so a row shows a
    class and a column the effect of the label alone. Multi-label GANs need
    ``labels``: the label vectors of the tiles (e.g. real ones), one per tile.
    Vector data (``(N, D)`` samples): a histogram of generated against
    ``real_samples`` values instead.

    ``keep``: after each write, only the newest ``keep`` pictures of the
    directory are kept (older ``step_*.png`` are deleted); None or 0 keeps all.
    """

    def __init__(self, directory, every_n_steps=500, num_samples=64, seed=0,
                 real_samples=None, labels=None, keep=None):
        super().__init__(every_n_steps)
        if keep is not None and (int(keep) != keep or keep < 0):
            raise ValueError(f"keep must be an integer >= 0 (0: keep all), got {keep!r}.")
        self.keep = int(keep or 0)
        self.directory = directory
        self.num_samples = int(num_samples)
        self.seed = seed
        self.real_samples = None if real_samples is None else np.asarray(real_samples)
        self.labels = None if labels is None else np.asarray(labels)
        self._last_written = None

    def latents(self):
        return self.model.sample_latent(self.num_samples, seed=self.seed)

    def latents_and_labels(self):
        """``(z, labels, cols)`` of the grid; labels None for an unconditional GAN."""
        gan = self.model
        if not getattr(gan, "conditional", False):
            return self.latents(), None, None
        if self.labels is not None:
            return self.model.sample_latent(len(self.labels), seed=self.seed), self.labels, None
        if gan.multilabel:
            raise ValueError("SampleGrid of a multi-label GAN needs labels=: the label vectors "
                             "of the tiles (e.g. those of real examples).")
        cols = max(1, self.num_samples // gan.num_classes)
        z = np.tile(gan.sample_latent(cols, seed=self.seed), (gan.num_classes, 1))
        labels = np.repeat(np.arange(gan.num_classes, dtype=np.int32), cols)
        return z, labels, cols

    def write(self, step):
        """Render the samples of the current model as the picture for ``step``; returns its path."""
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"step_{step:07d}.png")
        z, labels, cols = self.latents_and_labels()
        fake = self.model.generate(len(z), latents=z, labels=labels)
        if fake.ndim == 2:
            if self.real_samples is None:
                raise ValueError("SampleGrid needs real_samples to draw histograms of vector data.")
            visualize.save_histogram(path, self.real_samples, fake, title=f"step {step}")
        else:
            d_labels = labels if self.model.discriminator_takes_labels else None
            if getattr(self.model, "pack", 1) > 1:  # D scores groups, not single images
                scores, title = None, f"step {step}"
                title += "   (one row per class)" if cols else ""
            else:
                scores = 1.0 / (1.0 + np.exp(-self.model.discriminate(fake, d_labels)))
                title = f"step {step}   (D's probability of real"
                title += "; one row per class)" if cols else ")"
            visualize.save_scored_grid(path, fake, scores, title=title, cols=cols)
        self._last_written = step
        if self.keep:
            self._prune()
        return path

    def _prune(self):
        pictures = sorted(name for name in os.listdir(self.directory)
                          if name.startswith("step_") and name.endswith(".png"))
        for name in pictures[:-self.keep]:
            try:
                os.remove(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.due() and \
                not getattr(self.model, "training_failed", False):
            self.write(self.host_step)

    def on_train_end(self, logs=None):
        step = self.current_step()
        if step != self._last_written and not getattr(self.model, "training_failed", False):
            self.write(step)


def make_checkpoint(gan):
    """A `tf.train.Checkpoint` of everything training needs to resume exactly:
    what `tfgan2.GAN.checkpoint_items` names.

    Optimizers must be built (``GAN.compile`` builds them) so their slots
    restore immediately.
    """
    return tf.train.Checkpoint(**gan.checkpoint_items())


def checkpoint_paths(directory):
    """Paths of the checkpoints listed in ``directory``'s state file, oldest first.

    Each path opens as given: `tf.train.get_checkpoint_state` already joins a
    relative entry to ``directory``, so joining it again would double a relative
    ``directory`` (``runs/a/checkpoints/runs/a/checkpoints/ckpt-10``).
    """
    state = tf.train.get_checkpoint_state(directory)
    return list(state.all_model_checkpoint_paths) if state is not None else []


def saved_steps(directory):
    """Steps of every checkpoint saved in ``directory`` by a `Checkpointer`, kept or not
    (sorted; empty for directories written before this record was kept)."""
    try:
        with open(os.path.join(directory, SAVED_STEPS_FILE), encoding="utf-8") as f:
            return sorted({int(line) for line in f if line.strip().isdigit()})
    except FileNotFoundError:
        return []


def latest_checkpoint_step(directory):
    """Step number of the newest checkpoint in ``directory``, or None."""
    path = tf.train.latest_checkpoint(directory)
    if path is None:
        return None
    return int(path.rsplit("-", 1)[-1])


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss or weight."""


class CheckpointError(RuntimeError):
    """Checkpoints exist but none can be restored."""


def _set_aside(path):
    """Rename ``<dir>/ckpt-N.*`` to ``<dir>/broken-ckpt-N.*`` so it is never loaded again."""
    directory, name = os.path.split(path)
    for entry in os.listdir(directory):
        if entry == name or entry.startswith(name + "."):
            os.replace(os.path.join(directory, entry),
                       os.path.join(directory, "broken-" + entry))
    state_path = os.path.join(directory, "checkpoint")
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return
    # Drop the entry (path and its timestamp) from the manager's state file.
    keep = [i for i, p in enumerate(state.all_model_checkpoint_paths)
            if os.path.basename(p) != name]
    # Entries are written relative to the directory, as the manager writes them
    # (get_checkpoint_state returned them joined to it).
    paths = [os.path.relpath(state.all_model_checkpoint_paths[i], directory) for i in keep]
    stamps = list(state.all_model_checkpoint_timestamps)
    stamps = [stamps[i] for i in keep] if len(stamps) == len(state.all_model_checkpoint_paths) else []
    del state.all_model_checkpoint_paths[:]
    del state.all_model_checkpoint_timestamps[:]
    state.all_model_checkpoint_paths.extend(paths)
    state.all_model_checkpoint_timestamps.extend(stamps)
    if not paths:
        os.remove(state_path)
        return
    state.model_checkpoint_path = paths[-1]
    tmp = state_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text_format.MessageToString(state))
    os.replace(tmp, state_path)


def error_summary(exc):
    """The first line of an exception's message (at most 300 characters), or its repr."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else repr(exc)


def _all_finite(model):
    return all(np.all(np.isfinite(w)) for w in model.get_weights())


class Checkpointer(PeriodicWriter):
    """Saves ``ckpt-<step>`` every ``every_n_steps`` steps and at the end; keeps the last ``max_to_keep``.

    `restore` (call it before ``fit``) loads the newest checkpoint of the
    directory into the model, if there is one. A checkpoint is only written
    when every weight of G and D is finite, so a diverged run never replaces
    good state. A save that fails (e.g. the disk is full) raises
    `CheckpointError`; the checkpoints saved before stay listed and usable.

    ``write_directory``: where this process saves, when it is not
    ``directory``. Non-chief workers of a multi-worker run must take part in
    every save (saving may run collective ops) but their copies are
    redundant: they write to a private directory, removed by `cleanup`.
    """

    def __init__(self, directory, every_n_steps=1000, max_to_keep=3, write_directory=None):
        super().__init__(every_n_steps)
        self.directory = directory
        self.write_directory = write_directory or directory
        self.max_to_keep = int(max_to_keep)
        self._manager = None
        self._gan = None
        self.last_saved_step = None
        self.restored_path = None

    def _manager_for(self, gan):
        if self._manager is None or self._gan is not gan:
            self._gan = gan
            self._manager = tf.train.CheckpointManager(
                make_checkpoint(gan), self.write_directory, max_to_keep=self.max_to_keep,
                checkpoint_name="ckpt")
        return self._manager

    @property
    def manager(self):
        """The `tf.train.CheckpointManager` this callback saves with (after `restore`)."""
        return self._manager_for(self._gan or self.model)

    def restore(self, gan, set_aside=True):
        """Restore the newest valid checkpoint into ``gan``; returns its step, or None if there is none.

        A checkpoint that fails to restore (truncated or corrupted files) is
        reported and the next older one is tried. With ``set_aside`` the
        broken one is also renamed ``broken-ckpt-<step>.*`` so that it is
        never tried again; read-only users (sampling, evaluation) pass False
        and leave the directory as it is.

        Raises:
          CheckpointError: checkpoints exist but none of them restores (the
            run is not silently started from scratch), or the newest holds
            other variables or shapes than ``gan`` (nothing is set aside).
        """
        manager = self._manager_for(gan)
        failures = []
        for path in reversed(checkpoint_paths(self.directory)):
            try:
                # Every object of the model must be in the checkpoint; values the model
                # does not hold (optimizer slots when sampling from an uncompiled GAN) are
                # expected and not warned about.
                manager.checkpoint.restore(path).assert_existing_objects_matched().expect_partial()
            except (ValueError, AssertionError) as exc:
                # Readable, but other variables or shapes: a run of other networks.
                # Its files are not broken and are left alone.
                raise CheckpointError(
                    f"The checkpoint {path} does not fit the model (a run of other networks "
                    f"or shapes): {error_summary(exc)}") from exc
            except Exception as exc:  # noqa: BLE001 - any other failure means "not restorable"
                reason = error_summary(exc)
                failures.append(f"{path}: {reason}")
                if set_aside:
                    print(f"Checkpoint {path} does not restore ({reason}); setting it aside.",
                          flush=True)
                    _set_aside(path)
                else:
                    print(f"Checkpoint {path} does not restore ({reason}); trying an older one.",
                          flush=True)
                continue
            self.last_saved_step = gan.step
            self.restored_path = path
            if failures and set_aside and self.write_directory == self.directory:
                self._manager = None  # re-read the directory's state without the broken ones
                self._manager_for(gan)
            return gan.step
        if failures:
            raise CheckpointError("No checkpoint in {} restores:\n  {}".format(
                self.directory, "\n  ".join(failures)))
        return None

    def save(self):
        """Save the current state as ``ckpt-<step>``; returns the path, or None if not saved.

        Raises:
          NonFiniteError: a weight of G or D is not finite (nothing is written).
          CheckpointError: writing failed; the previous checkpoints are untouched.
        """
        gan = self.model
        step = gan.step
        if step == self.last_saved_step:
            return None
        manager = self._manager_for(gan)
        if not (_all_finite(gan.generator) and _all_finite(gan.discriminator)):
            raise NonFiniteError(
                f"Non-finite weights at step {step}; not saving. Last good checkpoint: "
                f"{manager.latest_checkpoint}.")
        previous = manager.latest_checkpoint
        try:
            path = manager.save(checkpoint_number=step)
        except distribute.PEER_ERRORS:
            raise  # a multi-worker save lost a peer: not a disk problem
        except (tf.errors.OpError, OSError) as exc:
            reason = error_summary(exc)
            _remove_partial(self.write_directory, f"ckpt-{step}")
            raise CheckpointError(
                f"Could not write the checkpoint of step {step} to {self.write_directory} "
                f"({reason}); is the disk full or the directory unwritable? The previous "
                f"checkpoint {previous or '(none)'} is untouched: free space and rerun to "
                f"resume from it.") from exc
        self.last_saved_step = step
        if self.write_directory == self.directory:  # after the state file lists it
            try:
                with open(os.path.join(self.directory, SAVED_STEPS_FILE), "a",
                          encoding="utf-8") as f:
                    f.write(f"{int(step)}\n")
            except OSError:
                pass  # only readers' reports of deleted checkpoints depend on it
        return path

    def cleanup(self):
        """Remove the private write directory of a non-chief worker."""
        if self.write_directory != self.directory and tf.io.gfile.exists(self.write_directory):
            tf.io.gfile.rmtree(self.write_directory)
            parent = os.path.dirname(self.write_directory)
            if os.path.isdir(parent) and not os.listdir(parent):
                os.rmdir(parent)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.due() and not self.model.stop_training:
            self.save()

    def on_train_end(self, logs=None):
        if not getattr(self.model, "training_failed", False):
            self.save()

    @property
    def latest(self):
        return None if self._manager is None else self._manager.latest_checkpoint


def _remove_partial(directory, name):
    """Delete what a failed save of checkpoint ``name`` left behind (it is in no state file)."""
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        if entry == name or entry.startswith(name + ".") or entry.startswith(name + "_temp"):
            full = os.path.join(directory, entry)
            try:
                if os.path.isdir(full):
                    tf.io.gfile.rmtree(full)
                else:
                    os.remove(full)
            except (OSError, tf.errors.OpError):
                pass


class LossHistory(HostStep):
    """Appends one JSON object per epoch (``step`` plus every logged metric) to ``metrics.jsonl``.

    Also redraws ``losses.png`` (d_loss and g_loss against step, and D's
    probabilities / confusion shares) after each epoch. On a resumed run the
    existing rows up to the restored step are kept and new rows appended.
    ``values``: ``{name: fn}`` read into every row as ``name: fn()`` (left out
    when ``fn()`` is None), for numbers kept outside Keras such as the input
    files skipped so far.
    """

    def __init__(self, directory, filename="metrics.jsonl", plot_filename="losses.png",
                 values=None):
        super().__init__()
        self.values = dict(values or {})
        self.path = os.path.join(directory, filename)
        self.plot_path = os.path.join(directory, plot_filename) if plot_filename else None
        self.records = []

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        step = self.host_step
        self.records = []
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short by a crash
                    if row.get("step", math.inf) <= step:
                        self.records.append(row)
            # Drop rows beyond the restored step (written after the last checkpoint).
            self._rewrite()

    def _rewrite(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for row in self.records:
                f.write(json.dumps(row) + "\n")
        os.replace(tmp, self.path)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        row = {"step": self.host_step, "epoch": int(epoch) + 1}
        row.update(log_values(logs))
        for name, value in self.values.items():
            value = value()
            if value is not None:
                row[name] = value
        self.records.append(row)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.plot_path:
            visualize.save_loss_plot(self.plot_path, self.records)


class StopAtStep(HostStep):
    """Stops ``fit`` once the step reaches ``last_step``."""

    def __init__(self, last_step):
        super().__init__()
        self.last_step = int(last_step)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.host_step >= self.last_step:
            self.model.stop_training = True


class NonFiniteGuard(HostStep):
    """Stops training at a non-finite logged loss (``d_loss``, ``g_loss``).

    It marks the model as failed so that later callbacks save nothing, and
    `raise_if_failed` raises `NonFiniteError` naming the step.

    ``check_every``: step intervals (e.g. those at which the other callbacks
    write: checkpoints, samples) at which it reads the logs; it also checks
    every epoch's logs. The logged losses are Keras's running means since the
    epoch began, so a non-finite loss at any step of the epoch is still seen
    at the next check. Put it before the writers in the callback list. None
    (the default) checks after every execution, which waits for the device
    each time. (`Checkpointer` checks the weights themselves before saving.)
    """

    def __init__(self, keys=("d_loss", "g_loss"), check_every=None):
        super().__init__()
        self.keys = keys
        self.check_every = None if check_every is None else sorted(
            {int(every) for every in check_every if every and every > 0})
        self.failed_step = None
        self.failed_values = None
        self.checked_step = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.failed_step = None
        self.checked_step = self.host_step
        self.model.training_failed = False

    def _due(self, previous, step):
        if self.check_every is None:
            return True
        return any(step // every > previous // every for every in self.check_every)

    def check(self, logs):
        """Read ``logs``' losses; on a non-finite one mark the model failed and stop it.
        Returns whether they were finite."""
        logs = logs or {}
        values = log_values({k: logs[k] for k in self.keys if k in logs})
        step = self.current_step()
        if all(math.isfinite(v) for v in values.values()):
            self.checked_step = step
            return True
        self.failed_step = step
        self.failed_values = values
        self.model.training_failed = True
        self.model.stop_training = True
        return False

    def on_train_batch_end(self, batch, logs=None):
        previous = self.current_step()
        super().on_train_batch_end(batch, logs)
        if self.failed_step is None and self._due(previous, self.host_step):
            self.check(logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.failed_step is None:
            self.check(logs)

    def raise_if_failed(self, last_good=None):
        if self.failed_step is not None:
            since = ""
            if self.checked_step is not None and self.checked_step < self.failed_step - 1:
                since = (f" (the losses are read when something is written: they became "
                         f"non-finite after step {self.checked_step})")
            raise NonFiniteError(
                f"Training stopped at step {self.failed_step}: non-finite loss "
                f"{self.failed_values}{since}. Nothing was saved from this state; the last good "
                f"checkpoint is {last_good or 'none (no checkpoint was written yet)'}.")
