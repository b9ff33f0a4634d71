"""Train a GAN from flags: ``python -m launch.train [--flagfile=F.cfg] [--flag=value ...]``.

With no flags it trains the built-in default on scikit-learn's digits.
Writes ``<workdir>/flags.cfg`` (``--flagfile=<workdir>/flags.cfg`` reproduces
the run, and resumes it from any directory) and everything `tfgan2.train`
writes; a work directory that already holds a checkpoint is resumed. A resume
with other flags prints them; flags that change what training computes are
refused unless ``--allow_changed_flags`` (``flags_history.jsonl`` keeps each
segment's flags, `launch.run_dir`).
"""
import contextlib
import os
import sys
import tempfile
import time

from absl import app, flags

from launch import choices, cli, config, run_dir

config.define_train_flags()
# The flags live in launch.config: make them this launcher's own for --helpshort / --help.
flags.adopt_module_key_flags(config)
flags.DEFINE_bool("allow_changed_flags", False,
                  "Resume a run with training flags that change what it computes (--loss, "
                  "learning rates, --batch_size, --seed, ...; flags that change the networks "
                  "can never resume). Without it such a resume is refused. Each segment's "
                  "flags are kept in <workdir>/flags_history.jsonl.")
flags.declare_key_flag("verbosity")
FLAGS = flags.FLAGS
# Exit status of a multi-worker process whose peer was lost: temporary, rerun all workers.
PEER_LOST_EXIT_CODE = 75


class _DataError(Exception):
    """The data set named by the flags is missing, empty or unusable."""


def _dataset_from(start_step, skipped=None, strategy=None):
    """The training data from the batch of ``start_step`` on (called once the step is known);
    ``skipped`` records the input files left out; a multi-worker ``strategy`` gives each
    worker its share of the files (`launch.builders.build_dataset`)."""
    from launch import builders

    try:
        return builders.build_dataset(FLAGS, start_step, skipped=skipped, strategy=strategy)
    except (FileNotFoundError, ValueError) as exc:
        raise _DataError(str(exc)) from exc


def _usage_error(data_error):
    return app.UsageError(f"--data_source={FLAGS.data_source}"
                          f"{f' --data_dir={FLAGS.data_dir}' if FLAGS.data_dir else ''}: "
                          f"{data_error.__cause__}")


def _resumed_flag_changes(workdir):
    """``[(flag, old, new)]``: how FLAGS differ from those of the run in ``workdir`` that this
    start resumes (printed here); [] for a new run.

    Raises:
      UsageError: flags that change the networks (its checkpoints cannot be restored), or,
        without --allow_changed_flags, flags that change what training computes.
    """
    previous = os.path.join(workdir, "flags.cfg")
    if not os.path.isfile(previous) or \
            not os.path.isfile(os.path.join(workdir, "checkpoints", "checkpoint")):
        return []
    old = config.read_flagfile(previous)
    changes = config.network_flag_changes(old, FLAGS)
    if changes:
        raise app.UsageError(
            f"{workdir} holds checkpoints of a run with other networks "
            f"({config.describe_changes(changes, ', ')}); "
            f"its checkpoints cannot be restored into them. Use a new --workdir, or "
            f"the run's own flags (--flagfile={previous}).")
    training = config.training_flag_changes(old, FLAGS)
    if training and not FLAGS.allow_changed_flags:
        raise app.UsageError(
            f"{workdir} holds a run trained with other training flags "
            f"({config.describe_changes(training)}): resuming with them would make its "
            f"result differ from a run of either flags. Pass --allow_changed_flags to go on "
            f"with the new flags (each segment's flags are kept in "
            f"{os.path.join(workdir, run_dir.HISTORY_FILE)}), use a new --workdir, or resume "
            f"with the run's own flags (--flagfile={previous}).")
    changes = training + config.free_flag_changes(old, FLAGS)
    if changes:
        print(f"tfgan2: resuming {workdir} with changed flags: "
              f"{config.describe_changes(changes)}", flush=True)
    return changes


def _refuse_unfitting_checkpoints(workdir, gan):
    """UsageError if ``workdir`` has checkpoints but no flags.cfg and they do not fit ``gan``."""
    import tfgan2

    ckpt_dir = os.path.join(workdir, "checkpoints")
    if os.path.isfile(os.path.join(workdir, "flags.cfg")) or \
            tfgan2.callbacks.latest_checkpoint_step(ckpt_dir) is None:
        return
    try:  # read-only: nothing is renamed; training restores again
        tfgan2.callbacks.Checkpointer(ckpt_dir).restore(gan, set_aside=False)
    except tfgan2.callbacks.CheckpointError as exc:
        raise app.UsageError(
            f"{workdir} holds checkpoints but no flags.cfg, and they do not restore into "
            f"the networks of these flags: {exc} Use a new --workdir, or the flags of the "
            f"run that wrote them.")


def _measured_choices(workdir, strategy):
    """``{flag: (choice, fresh, seconds timing)}`` of `launch.choices.resolve` for
    --precision and --conv_gradients; auto times this run's GAN (compiled one step per
    execution) where the library's rules ask for it, in a process stopped when the timing
    budget runs out (`launch.timing_process`)."""
    import tfgan2
    from launch import builders, choices, timing_process

    not_measured = None
    if FLAGS.strategy in ("multi_worker", "tpu"):
        not_measured = f"--strategy={FLAGS.strategy}: every worker must make the same choice"
    elif FLAGS.deterministic:
        not_measured = "--deterministic: a timed choice could differ between two runs"
    try:
        budget = tfgan2.timing.Budget(choices.budget_seconds())
        return choices.resolve(
            FLAGS, workdir, timing_process.gan_runs(FLAGS, strategy),
            builders.build_networks(FLAGS, "native"),
            builders.data_shape(FLAGS), not_measured=not_measured, budget=budget,
            regression=builders.family(FLAGS).vector,
            say=lambda line: print(line, flush=True),
            measure=timing_process.measure_in_child(FLAGS))
    except ValueError as exc:
        raise app.UsageError(str(exc))


def _train_in(workdir, chief, changes=()):
    """Build and train the run of FLAGS in ``workdir``; ``(RunResult, seconds)``.
    ``changes``: the flags changed since the run's last start (`_resumed_flag_changes`)."""
    import tfgan2
    from launch import builders

    if FLAGS.logical_cpus:
        tfgan2.distribute.split_cpu(FLAGS.logical_cpus)
    if FLAGS.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    try:
        strategy = tfgan2.distribute.make_strategy(
            FLAGS.strategy, devices=FLAGS.devices, tpu=FLAGS.tpu,
            collective_timeout=FLAGS.collective_timeout)
    except ValueError as exc:
        raise app.UsageError(str(exc))
    replicas = strategy.num_replicas_in_sync
    if FLAGS.batch_size % replicas:
        raise app.UsageError(f"--batch_size={FLAGS.batch_size} does not split evenly across "
                             f"{replicas} replicas: use a multiple of {replicas}.")
    try:  # the data before anything is built or written (after the devices are set up)
        _dataset_from(0)
    except _DataError as exc:
        raise _usage_error(exc)
    print(f"tfgan2: {FLAGS.network} on {FLAGS.data_source}, {FLAGS.train_steps} steps of "
          f"batch {FLAGS.batch_size} over {replicas} replica(s), loss {FLAGS.loss}; "
          f"run directory {workdir}", flush=True)
    if FLAGS.r1_reference_size:
        height, width = builders.data_shape(FLAGS)[:2]
        for name, gamma in (("R1", builders.r1_gamma), ("R2", builders.r2_gamma)):
            given = FLAGS[f"{name.lower()}_gamma"].value
            if given:
                print(f"tfgan2: {name} gamma {gamma(FLAGS):g} (--{name.lower()}_gamma={given:g} "
                      f"at {FLAGS.r1_reference_size}x{FLAGS.r1_reference_size}, scaled to "
                      f"{height}x{width})", flush=True)
    chosen = _measured_choices(workdir, strategy)
    for flag, name in (("precision", "precision"), ("conv_gradients", "convolution gradients")):
        choice, _, seconds = chosen[flag]
        took = f" (timing took {seconds:.1f} s)" if seconds else ""
        print(f"tfgan2: {name} {choice.describe()}{took}", flush=True)
        setattr(FLAGS, flag, choice.value)  # what flags.cfg records
    with strategy.scope():
        gan = builders.build_gan(FLAGS)
    _refuse_unfitting_checkpoints(workdir, gan)
    if chief:
        run_dir.record_flags(
            workdir, config.flagfile_lines(FLAGS),
            tfgan2.callbacks.latest_checkpoint_step(os.path.join(workdir, "checkpoints")) or 0,
            changes)
        config.write_flagfile(FLAGS, os.path.join(workdir, "flags.cfg"))
        for measured in choices.MEASURED:
            choice, fresh, _ = chosen[measured.flag]
            if fresh:
                choices.write(measured, choice, workdir)
    from launch import eval_lib
    try:
        extra_callbacks = eval_lib.training_callbacks(FLAGS, workdir) if chief else []
    except (ValueError, FileNotFoundError) as exc:
        raise app.UsageError(str(exc))
    from pipelines.skipped import SkippedFiles

    skipped = SkippedFiles()
    start = time.time()
    try:
        result = tfgan2.train(
            gan, lambda step: _dataset_from(step, skipped, strategy), workdir,
            FLAGS.train_steps,
            log_values={"skipped_files": lambda: skipped.count if skipped.files else None},
            log_every=FLAGS.log_every,
            sample_every=FLAGS.sample_every, checkpoint_every=FLAGS.checkpoint_every,
            keep_checkpoints=FLAGS.keep_checkpoints, keep_samples=FLAGS.keep_samples,
            num_samples=FLAGS.num_grid, sample_seed=FLAGS.seed,
            real_samples=builders.real_samples(FLAGS), callbacks=extra_callbacks)
    except _DataError as exc:
        raise _usage_error(exc)
    except (tfgan2.callbacks.NonFiniteError, tfgan2.callbacks.CheckpointError,
            tfgan2.training.DatasetExhaustedError) as exc:
        sys.exit(f"tfgan2: {exc}")
    if skipped.files:
        print(f"Input: {skipped.summary()}", flush=True)
    return result, time.time() - start


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        config.validate(FLAGS)
    except ValueError as exc:
        raise app.UsageError(str(exc))
    with run_dir.undone_on_failed_start(FLAGS.workdir, app.UsageError):
        _start(FLAGS.workdir)


def _start(workdir):
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as exc:
        raise app.UsageError(f"--workdir={workdir} cannot be created: {exc.strerror or exc}. "
                             f"Expected a directory this user can create and write.")
    try:  # a real write: permission bits alone miss read-only mounts and full disks
        probe = tempfile.NamedTemporaryFile(dir=workdir, prefix=".write_test_")
        probe.write(b"x")
        probe.flush()
        probe.close()
    except OSError as exc:
        raise app.UsageError(f"--workdir={workdir} is not writable: {exc.strerror or exc}. "
                             f"Expected a directory this user can write.")
    changes = _resumed_flag_changes(workdir)
    # Imported after flag checks so that bad flags fail fast.
    import tfgan2

    # Only the chief (TF_CONFIG) writes the directory, so only it locks it.
    chief = tfgan2.distribute.is_chief()
    try:
        with tfgan2.run_directory.locked(workdir) if chief else contextlib.nullcontext():
            result, seconds = _train_in(workdir, chief, changes)
    except tfgan2.run_directory.RunDirectoryLocked as exc:
        sys.exit(f"tfgan2: {exc}")
    except tfgan2.distribute.PeerLostError as exc:
        # Exit at once: TensorFlow's shutdown of a cluster with a dead peer can
        # wait seconds on it, and this process's collectives stay aborted.
        print(f"tfgan2: {exc}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(PEER_LOST_EXIT_CODE)
    if result.stopped_by is not None:
        # 128 + signal number, the shell's convention: the run is not finished.
        sys.exit(128 + result.stopped_by)
    print(f"Done: step {result.final_step} in {seconds:.1f} s; "
          f"checkpoint {result.checkpoint}; samples in {os.path.join(workdir, 'samples')}",
          flush=True)


def run():
    cli.run(main, "launch.train",
            argv=config.run_directory_flagfiles(config.resolve_flagfiles(sys.argv)))


if __name__ == "__main__":
    sys.exit(run())
