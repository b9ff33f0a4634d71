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
flags.DEFINE_string("out", None, "JSON output (default DIR/eval.json).")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from launch import config

    workdir = FLAGS.workdir
    try:
        train_flags = config.read_flagfile(os.path.join(workdir, "flags.cfg"))
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
    try:
        _, gan, checkpoint = eval_lib.restore_gan(workdir)
        evaluator, notes = eval_lib.build_evaluator(
            train_flags, workdir, metrics, FLAGS.num_samples, features=features,
            inception_weights=FLAGS.inception_weights or train_flags.inception_weights,
            classifier_epochs=FLAGS.classifier_epochs or train_flags.classifier_epochs,
            seed=FLAGS.seed)
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


def run():
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())
