"""Measure a trained run: ``python -m launch.evaluate --workdir=DIR --metrics=fid,kid,is,pr,tstr,confusion,swd``.

Rebuilds the GAN from ``DIR/flags.cfg``, restores the newest checkpoint
(EMA generator when kept), generates ``--num_samples`` samples and compares
them with the run's real data:

* image data, ``--features=classifier`` (default): a small CNN trained on a
  stratified 75% of the run's labelled data (digits, MNIST) and stored in
  ``DIR/eval/classifier.keras`` supplies the features of fid / kid / pr and
  the probabilities of is; it also labels the samples for tstr. swd
  compares Laplacian-pyramid patches of the images themselves (no features).
  ``--features=inception`` uses Inception-v3 pool features from
  ``--inception_weights`` (a local file; nothing is downloaded).
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

flags.DEFINE_string("workdir", None, "Run directory written by launch.train.")
flags.DEFINE_string("metrics", "fid,kid,is,pr",
                    "Comma-separated metrics: fid, kid, is, pr, tstr, confusion, swd (image "
                    "data); "
                    "fid, kid, pr, confusion, moments (vector data).")
flags.DEFINE_integer("num_samples", 1000, "Generated samples (and real reference size).",
                     lower_bound=2)
flags.DEFINE_enum("features", None, ["classifier", "inception"],
                  "Feature extractor of image metrics (default: the run's --eval_features).")
flags.DEFINE_string("inception_weights", None,
                    "Local inception_v3_weights_tf_dim_ordering_tf_kernels.h5 for "
                    "--features=inception (default: the run's --inception_weights).")
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
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from launch import config

    workdir = FLAGS.workdir
    flagfile = os.path.join(workdir, "flags.cfg")
    if FLAGS.watch:
        _wait_for(flagfile)
    try:
        train_flags = config.read_flagfile(flagfile)
    except FileNotFoundError as exc:
        raise app.UsageError(str(exc))
    import tensorflow as tf

    from launch import builders, eval_lib
    import tfgan2
    from tfgan2 import evaluation, visualize

    try:
        metrics = evaluation.check_metrics(
            FLAGS.metrics, vector_data=len(builders.data_shape(train_flags)) == 1)
    except ValueError as exc:
        raise app.UsageError(f"--metrics={FLAGS.metrics}: {exc}")
    features = FLAGS.features or train_flags.eval_features
    tf.get_logger().setLevel("ERROR")  # Keras' retracing notes for repeated predict calls
    start = time.time()
    if FLAGS.watch:
        return _watch(workdir, train_flags, metrics, features)
    try:
        _, gan, checkpoint = eval_lib.restore_gan(workdir)
        evaluator, notes = _evaluator(workdir, train_flags, metrics, features)
    except (FileNotFoundError, ValueError) as exc:
        raise app.UsageError(str(exc))
    except tfgan2.callbacks.CheckpointError as exc:
        sys.exit(f"launch.evaluate: {exc}")
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
        evaluator, _ = _evaluator(workdir, train_flags, metrics, features)
    except (FileNotFoundError, ValueError) as exc:
        raise app.UsageError(str(exc))
    out = FLAGS.out or os.path.join(workdir, "eval", "metrics.jsonl")
    log_dir = os.path.join(workdir, "tensorboard", "eval")
    print(f"Watching {os.path.join(workdir, 'checkpoints')} (every {FLAGS.poll_seconds:g} s); "
          f"results to {out}", flush=True)
    result = tfgan2.watch.watch_checkpoints(
        gan, workdir, evaluator, out, log_dir=log_dir, poll_seconds=FLAGS.poll_seconds,
        timeout=FLAGS.watch_timeout or None, say=lambda m: print(m, flush=True))
    if result.ended == "finished":
        print(f"Training finished at step {result.final_step}; evaluated "
              f"{len(result.evaluated)} checkpoint(s) in this session "
              f"(skipped {result.skipped or 'none'}). Results in {out}", flush=True)
    else:
        print(f"Stopped watching: no new checkpoint for {FLAGS.watch_timeout:g} s and training "
              f"has not finished. Evaluated {len(result.evaluated)} checkpoint(s) in this "
              f"session; rerun to continue.", flush=True)


def run():
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())
