"""Measure a trained run: ``python -m launch.evaluate --workdir=DIR [--metrics=fid,kid,...]``.

Rebuilds the GAN from ``DIR/flags.cfg``, restores the newest checkpoint
(EMA generator when kept), generates ``--num_samples`` samples and compares
them with the run's real data (``--data_dir`` when it has moved). Without
``--metrics`` it measures everything the run allows and names what it
skipped and how to enable it:

* image data: confusion (D's view of held-out real and generated images)
  and swd (Laplacian-pyramid patches of the images themselves, no
  features) always; fid, kid, is and pr on features: those of a small CNN
  trained on a stratified 75% of the run's labelled data (digits, MNIST;
  stored in ``DIR/eval/classifier.keras``), or Inception-v3's pool features
  for data without class labels or with ``--features=inception``. The
  Inception weights come from ``--inception_weights``, else Keras' cache
  (``~/.keras/models/``), where Keras downloads them when missing; offline,
  the message says where to put the file. Class-conditional runs add cas and
  intra_fid; tstr (which trains two more classifiers) only when asked for.
* vector data (gaussian): fid, kid and pr on the raw vectors, confusion, and
  moments (mean and std of real against generated values).

Writes ``DIR/eval.json`` (each metric, ``num_samples``, ``step``,
``features``, ``checkpoint``), ``DIR/eval/confusion.png`` for confusion, and
prints a table.

``--watch``: continuous evaluation beside a running training
(`tfgan2.watch.watch_checkpoints`): waits for the run's ``flags.cfg``, then
evaluates each complete checkpoint as it appears, appending one row per
checkpoint to ``DIR/eval/metrics.jsonl`` and TensorBoard scalars
``eval/<metric>`` at the checkpoint's step to ``DIR/tensorboard/eval``.
Steps already in ``DIR/eval/metrics.jsonl`` are skipped, so a killed
evaluator resumes. It exits 0 once training has written ``DIR/done.json``
and its last checkpoint is evaluated, or after ``--watch_timeout`` seconds
without a new checkpoint.
"""
import json
import os
import sys
import time

from absl import app, flags

from launch import cli

flags.DEFINE_string("workdir", None, "Run directory written by launch.train.")
flags.DEFINE_string("data_dir", None, "The run's data, when it is no longer where flags.cfg "
                    "says (default: the run's --data_dir).")
flags.DEFINE_string("metrics", None,
                    "Comma-separated metrics: fid, kid, is, pr, tstr, confusion, swd, cas, "
                    "intra_fid (image data; cas and intra_fid: class-conditional runs); fid, "
                    "kid, pr, confusion, moments (vector data). Default: every metric the run "
                    "allows but tstr; the ones skipped are named with the reason.")
flags.DEFINE_integer("num_samples", 1000, "Generated samples (and real reference size).",
                     lower_bound=2)
flags.DEFINE_enum("features", None, ["classifier", "inception"],
                  "Feature extractor of image metrics (default: the run's --eval_features; "
                  "inception for data without class labels).")
flags.DEFINE_string("inception_weights", None,
                    "inception_v3_weights_tf_dim_ordering_tf_kernels.h5 for Inception "
                    "features (default: the run's --inception_weights, else Keras' cache "
                    "~/.keras/models/, where Keras downloads it when missing).")
flags.DEFINE_integer("classifier_epochs", None,
                     "Epochs of the domain classifier and of the tstr classifiers "
                     "(default: the run's --classifier_epochs).", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the latent draw, subsets and classifiers.")
flags.DEFINE_string("out", None, "JSON output (default DIR/eval.json; with --watch "
                    "DIR/eval/metrics.jsonl, one row per checkpoint).")
flags.DEFINE_bool("watch", False, "Evaluate every new checkpoint as training writes it, until "
                  "training has finished (DIR/done.json) or --watch_timeout.")
flags.DEFINE_float("watch_timeout", 3600.0, "--watch: stop after this many seconds without a "
                   "new checkpoint (0: wait forever).", lower_bound=0.0)
flags.DEFINE_float("poll_seconds", 10.0, "--watch: seconds between looks for new checkpoints.",
                   lower_bound=0.01)
flags.mark_flags_as_required(["workdir"])
flags.declare_key_flag("verbosity")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    workdir = FLAGS.workdir
    flagfile = os.path.join(workdir, "flags.cfg")
    if FLAGS.watch:
        _wait_for(flagfile)
    from launch import builders, eval_lib

    try:
        train_flags = eval_lib.run_flags(workdir, FLAGS.data_dir)
        eval_lib.check_data_dir(train_flags, workdir)
    except FileNotFoundError as exc:
        raise app.UsageError(str(exc))
    import tensorflow as tf

    import tfgan2
    from tfgan2 import evaluation, visualize

    metrics = None
    if FLAGS.metrics is not None:
        try:
            metrics = evaluation.check_metrics(
                FLAGS.metrics, vector_data=len(builders.data_shape(train_flags)) == 1)
        except ValueError as exc:
            raise app.UsageError(f"--metrics={FLAGS.metrics}: {exc}")
    features = FLAGS.features
    tf.get_logger().setLevel("ERROR")  # Keras' retracing notes for repeated predict calls
    start = time.time()
    if FLAGS.watch:
        return _watch(workdir, train_flags, metrics, features)
    try:
        _, gan, checkpoint = eval_lib.restore_gan(workdir, FLAGS.data_dir)
        evaluator, notes = _evaluator(workdir, train_flags, metrics, features)
    except (FileNotFoundError, ValueError) as exc:
        raise app.UsageError(str(exc))
    except tfgan2.callbacks.CheckpointError as exc:
        sys.exit(f"launch.evaluate: {exc}")
    _say_skipped(notes)
    results = {"step": gan.step, "checkpoint": checkpoint, **notes, **evaluator(gan)}
    if "confusion" in results:
        path = os.path.join(workdir, "eval", "confusion.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        visualize.save_confusion_matrix(
            path, results["confusion"], title=f"D at step {results['step']}")
        results["confusion_png"] = path
    out = FLAGS.out or os.path.join(workdir, "eval.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    os.replace(out + ".tmp", out)
    print(eval_lib.format_table(results))
    print(f"Wrote {out} in {time.time() - start:.1f} s")


def _evaluator(workdir, train_flags, metrics, features):
    """``(evaluator, notes)`` from these flags, defaulting to the run's own settings."""
    from launch import eval_lib

    return eval_lib.build_evaluator(
        train_flags, workdir, metrics, FLAGS.num_samples, features=features,
        inception_weights=FLAGS.inception_weights or train_flags.inception_weights,
        classifier_epochs=FLAGS.classifier_epochs or train_flags.classifier_epochs,
        seed=FLAGS.seed)


def _say_skipped(notes):
    """One line per reason for the metrics left out of a default evaluation."""
    by_reason = {}
    for metric, why in notes.get("skipped", {}).items():
        by_reason.setdefault(why, []).append(metric)
    for why, metrics in by_reason.items():
        print(f"Skipped {', '.join(metrics)}: {why}", flush=True)


def _wait_for(path):
    """Poll until ``path`` exists (training may start after the evaluator), or --watch_timeout."""
    waited = 0.0
    while not os.path.isfile(path):
        if FLAGS.watch_timeout and waited > FLAGS.watch_timeout:
            sys.exit(f"launch.evaluate: no {path} after {FLAGS.watch_timeout:g} s: is training "
                     f"running with --workdir={FLAGS.workdir}?")
        time.sleep(FLAGS.poll_seconds)
        waited += FLAGS.poll_seconds


def _watch(workdir, train_flags, metrics, features):
    """--watch: evaluate each new checkpoint of ``workdir`` until training ends."""
    from launch import builders
    import tfgan2

    try:
        gan = builders.build_gan(train_flags, compile_model=False)
        evaluator, notes = _evaluator(workdir, train_flags, metrics, features)
    except (FileNotFoundError, ValueError) as exc:
        raise app.UsageError(str(exc))
    _say_skipped(notes)
    out = FLAGS.out or os.path.join(workdir, "eval", "metrics.jsonl")
    log_dir = os.path.join(workdir, "tensorboard", "eval")
    print(f"Watching {os.path.join(workdir, 'checkpoints')} (every {FLAGS.poll_seconds:g} s); "
          f"results to {out}", flush=True)
    result = tfgan2.watch.watch_checkpoints(
        gan, workdir, evaluator, out, log_dir=log_dir, poll_seconds=FLAGS.poll_seconds,
        timeout=FLAGS.watch_timeout or None, say=lambda m: print(m, flush=True))
    if result.ended == "finished":
        print(f"Training finished at step {result.final_step}; evaluated "
              f"{len(result.evaluated)} checkpoint(s) in this session{_skipped(result)}. "
              f"Results in {out}", flush=True)
    else:
        print(f"Stopped watching: no new checkpoint for {FLAGS.watch_timeout:g} s and training "
              f"has not finished. Evaluated {len(result.evaluated)} checkpoint(s) in this "
              f"session{_skipped(result)}; rerun to continue.", flush=True)


def _skipped(result):
    """``; skipped ...`` of a `tfgan2.watch.WatchResult`, saying why, or ``""``."""
    parts = []
    if result.deleted:
        parts.append(f"{len(result.deleted)} deleted by the training's retention before they "
                     f"could be read (steps {', '.join(map(str, result.deleted))}; the training's "
                     f"--keep_checkpoints keeps more of them)")
    unreadable = [s for s in result.skipped if s not in result.deleted]
    if unreadable:
        parts.append(f"{len(unreadable)} that did not restore (steps "
                     f"{', '.join(map(str, unreadable))})")
    return f"; skipped {' and '.join(parts)}" if parts else "; skipped none"


def run():
    cli.run(main, "launch.evaluate")


if __name__ == "__main__":
    sys.exit(run())
