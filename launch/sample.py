"""Write samples and latent-space pictures of a trained run.

    python -m launch.sample --workdir=DIR --num=N --out=FILE.npz|FILE.png        # --mode=grid
    python -m launch.sample --workdir=DIR --mode=interpolate --num=4 --steps=9 --out=walk.png
    python -m launch.sample --workdir=DIR --mode=arithmetic --classes=7,1 --out=arith.png
    python -m launch.sample --workdir=DIR --mode=arithmetic --attribute=Eyeglasses --out=glasses.png
    python -m launch.sample --workdir=DIR --labels=3,3,7 --out=FILE.npz       # conditional runs
    python -m launch.sample --workdir=DIR --per_class=100 --out=FILE.npz
    python -m launch.sample --workdir=DIR --mode=codes --out=codes.png         # InfoGAN runs
    python -m launch.sample --workdir=DIR --mode=augment --num=8 --out=augmented.png
    python -m launch.sample --workdir=DIR --export=SAVED_MODEL_DIR

Rebuilds the networks from ``DIR/flags.cfg`` and restores the newest
checkpoint of ``DIR/checkpoints`` (the EMA generator when the run kept one).

* ``--export``: the run's sampler as a SavedModel (`tfgan2.GAN.export`):
  ``serving_default`` maps ``z`` (and ``labels``) to ``{"images": ...}``.
* ``grid``: ``FILE.npz`` (key ``images``, float32 ``(N, H, W, C)`` in [-1, 1]
  for image data, ``(N, D)`` as generated for vector data) or ``FILE.png``,
  a grid of the images (a histogram for vector data).
  Conditional runs: ``--labels`` (class ids ``3,3,7``; CelebA runs: attribute
  sets ``Smiling+Male,Eyeglasses``, each naming the attributes that are on)
  or ``--per_class=N`` (N of each class, in class order) choose the labels;
  otherwise classes are drawn uniformly. The ``.npz`` then also holds
  ``labels`` (int class ids, or float ``(N, 40)`` attribute vectors).
* ``interpolate``: ``--num`` pairs of random latents, each walked in
  ``--steps`` steps twice, linearly and spherically (slerp), one row each.
* ``arithmetic``: ``--pool`` random latents are grouped by the class the
  run's domain classifier (``DIR/eval/classifier.keras``, trained first if
  missing; labelled data sources only) predicts for their image, keeping
  confident predictions (p > 0.9). For classes ``a,b`` (``--classes``;
  default the two most frequent) each of ``--num`` rows shows G(mean z of
  a), G(mean z of b), a class-b sample G(z) and G(z - mean z_b + mean z_a);
  the share of results the classifier calls ``a`` is printed.
  CelebA runs (``--data_source=celeba`` / ``celeba_tfds``) group by an
  attribute instead (``--attribute=Eyeglasses``): a 40-attribute sigmoid
  classifier (``DIR/eval/attributes.keras``, trained first on
  ``--attribute_examples`` real labelled images if missing) scores G(z) for
  each of the ``--pool`` latents; p > ``--threshold`` (0.5, or the pool's
  median with ``median``) is "with". Each of ``--num`` rows shows G(mean z
  with), G(mean z without), a sample without the attribute G(z), G(z + mean
  z with - mean z without) and the "with" sample nearest to z (row titles:
  the probability of the attribute for z and for the result); the group
  sizes are printed. Conditional runs walk and compute at one fixed label:
  the one ``--labels`` gives (default class 0; CelebA runs need it).
* ``codes`` (InfoGAN runs): for each code, a table whose rows set that code
  to each of its values (categorical) or to ``--steps`` values in [-1, 1]
  (continuous), the same ``--num`` latents in the columns.
"""
import os
import sys

import numpy as np
from absl import app, flags

from launch import cli

flags.DEFINE_string("workdir", None, "Run directory written by launch.train.")
flags.DEFINE_string("data_dir", None, "The run's data, when it is no longer where flags.cfg "
                    "says (--mode=arithmetic and augment read real images; default: the run's "
                    "--data_dir).")
flags.DEFINE_enum("mode", "grid", ["grid", "interpolate", "arithmetic", "codes", "augment"],
                  "What to draw.")
flags.DEFINE_string("labels", "", "Conditional runs: the labels to generate, comma-separated "
                    "class ids (3,3,7) or, for CelebA runs, attribute sets (Smiling+Male,"
                    "Eyeglasses); interpolate/arithmetic: one label held fixed.")
flags.DEFINE_integer("per_class", 0, "Conditional runs (grid): this many samples of each "
                     "class, in class order (overrides --num).", lower_bound=0)
flags.DEFINE_integer("num", None, "grid: samples (default 64); interpolate: latent pairs (4); "
                     "arithmetic: rows (8); codes: latents, the columns (8); augment: real "
                     "images (8).", lower_bound=1)
flags.DEFINE_string("out", None, "Output file: .npz or .png (interpolate, arithmetic: .png).")
flags.DEFINE_integer("seed", 0, "Seed of the latent draw.")
flags.DEFINE_integer("scale", 4, "PNG grids: pixels per image pixel.", lower_bound=1)
flags.DEFINE_integer("steps", 8, "interpolate: images per path, endpoints included.",
                     lower_bound=2)
flags.DEFINE_string("classes", "", "arithmetic: 'a,b' (the attribute vector is mean z of "
                    "class a minus mean z of class b); default the two most frequent classes.")
flags.DEFINE_integer("pool", 2000, "arithmetic: latents drawn to form the class or attribute "
                     "groups.", lower_bound=10)
flags.DEFINE_integer("classifier_epochs", None, "arithmetic: epochs of the domain (or CelebA "
                     "attribute) classifier if it has to be trained (default: the run's "
                     "--classifier_epochs).", lower_bound=1)
flags.DEFINE_string("attribute", "", "arithmetic on CelebA runs: the attribute to add, one of "
                    "the 40 CelebA names (e.g. Eyeglasses, Smiling, Male); case-insensitive.")
flags.DEFINE_integer("attribute_examples", 2000, "arithmetic on CelebA runs: real labelled "
                     "images the attribute classifier is trained on (a quarter held out).",
                     lower_bound=8)
flags.DEFINE_string("threshold", "0.5", "arithmetic on CelebA runs: a sample is 'with' the "
                    "attribute when the classifier's probability exceeds this number in [0, 1], "
                    "or, with 'median', the pool's median probability (two equal halves: for "
                    "rare attributes the classifier may call no sample 'with').")
flags.DEFINE_string("export", None, "Instead of drawing samples, write the run's sampler (the "
                    "EMA generator when kept) to this directory as a TensorFlow SavedModel: "
                    "serving signature z (and labels for a conditional run) -> images; "
                    "BUILD.md shows how to serve it.")
flags.mark_flags_as_required(["workdir"])
flags.declare_key_flag("verbosity")
FLAGS = flags.FLAGS

OUTPUT_KINDS = (".npz", ".png")
# --num when not given: a grid of 64 samples, but a picture of a few rows for the others
# (each interpolation pair is two rows of --steps images).
NUM_DEFAULTS = {"grid": 64, "interpolate": 4, "arithmetic": 8, "codes": 8, "augment": 8}
CONFIDENT = 0.9


def parse_labels(gan, text):
    """The ``--labels`` text as the labels ``gan`` takes: class ids, or attribute vectors.

    Raises:
      ValueError: naming the bad item and what is expected.
    """
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"--labels={text!r} names no label.")
    if gan.multilabel:
        from launch import eval_lib

        vectors = np.zeros((len(items), gan.num_classes), np.float32)
        for row, item in enumerate(items):
            for name in filter(None, item.split("+")):
                vectors[row, eval_lib.resolve_attribute(name)[1]] = 1.0
        return vectors
    try:
        ids = np.array([int(item) for item in items], np.int64)
    except ValueError:
        raise ValueError(f"--labels={text}: expected class ids in [0, {gan.num_classes}) "
                         f"separated by commas.") from None
    return gan.check_labels(ids)


def _labels(gan, fixed=False):
    """The labels the flags ask for (None for an unconditional run or a uniform draw)."""
    if not gan.conditional:
        if FLAGS.labels or FLAGS.per_class:
            raise app.UsageError("--labels and --per_class need a conditional run; this run is "
                                 "unconditional.")
        return None
    try:
        if fixed:
            if FLAGS.per_class:
                raise ValueError(f"--mode={FLAGS.mode} holds one label fixed: use --labels "
                                 f"with a single label, not --per_class.")
            if not FLAGS.labels:
                if gan.multilabel:
                    raise ValueError(f"--mode={FLAGS.mode} on a multi-label run needs --labels "
                                     f"with one attribute set, e.g. --labels=Smiling+Male.")
                return np.int64(0)
            labels = parse_labels(gan, FLAGS.labels)
            if len(labels) != 1:
                raise ValueError(f"--mode={FLAGS.mode} holds one label fixed: give one label, "
                                 f"got {len(labels)}.")
            return labels[0]
        if FLAGS.per_class:
            if gan.multilabel:
                raise ValueError("--per_class needs class labels; this run's labels are "
                                 "attributes: use --labels.")
            return np.repeat(np.arange(gan.num_classes), FLAGS.per_class)
        if FLAGS.labels:
            return parse_labels(gan, FLAGS.labels)
        if gan.multilabel:
            raise ValueError("A multi-label run needs --labels (attribute sets such as "
                             "Smiling+Male,Eyeglasses).")
    except ValueError as exc:
        raise app.UsageError(str(exc))
    return None


def _generate(gan, num, latents=None, label=None):
    """``gan.generate`` with one fixed label (conditional runs) repeated for every sample."""
    if label is None:
        return gan.generate(num, latents=latents, seed=FLAGS.seed)
    count = num if latents is None else len(latents)
    labels = np.repeat(np.asarray(label)[None], count, axis=0)
    return gan.generate(count, latents=latents, seed=FLAGS.seed, labels=labels)


def _grid(train_flags, gan, path, kind):
    from launch import builders
    import tfgan2

    labels = _labels(gan)
    if gan.conditional and labels is None:
        labels = gan.sample_labels(FLAGS.num, seed=FLAGS.seed)
    num = FLAGS.num if labels is None else len(labels)
    images = gan.generate(num, seed=FLAGS.seed, labels=labels)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    if kind == ".npz":
        arrays = dict(images=images.astype(np.float32))
        if labels is not None:
            arrays["labels"] = np.asarray(labels)
        np.savez_compressed(FLAGS.out, **arrays)
    elif images.ndim == 2:
        real = builders.real_samples(train_flags, num=max(FLAGS.num, 1000))
        tfgan2.visualize.save_histogram(FLAGS.out, real, images, title=os.path.basename(path))
    else:
        cols = FLAGS.per_class if FLAGS.per_class else None
        tfgan2.visualize.save_image_grid(FLAGS.out, images, cols=cols, scale=FLAGS.scale)
    print(f"Wrote {len(images)} samples of shape {images.shape[1:]} from {path} to {FLAGS.out}")


def _interpolate(gan, path):
    import tfgan2

    label = _labels(gan, fixed=True)
    ends = gan.sample_latent(2 * FLAGS.num, seed=FLAGS.seed)
    rows, titles = [], []
    for i in range(FLAGS.num):
        for method in tfgan2.latent.INTERPOLATIONS:
            z = tfgan2.latent.interpolate(ends[2 * i], ends[2 * i + 1], FLAGS.steps, method)
            rows.append(_generate(gan, len(z), latents=z, label=label))
            titles.append(f"{i + 1}: {'slerp' if method == 'spherical' else 'linear'}")
    t = np.linspace(0.0, 1.0, FLAGS.steps)
    tfgan2.visualize.save_image_table(
        FLAGS.out, np.stack(rows), row_titles=titles, col_titles=[f"t={v:.2f}" for v in t],
        title=f"latent interpolation, {os.path.basename(path)}")
    print(f"Wrote {FLAGS.num} pairs x 2 paths x {FLAGS.steps} steps from {path} to {FLAGS.out}")


def _arithmetic(train_flags, gan, path):
    from launch import eval_lib
    import tfgan2

    label = _labels(gan, fixed=True)
    images, labels = eval_lib.real_data(train_flags, max(FLAGS.pool, 1000))
    if labels is None:
        raise app.UsageError(
            f"--mode=arithmetic groups samples by the class a classifier of the run's data "
            f"gives them, and --data_source={train_flags.data_source} has no class labels "
            f"(CelebA runs group by --attribute).")
    epochs = FLAGS.classifier_epochs or train_flags.classifier_epochs
    classifier, _ = eval_lib.domain_classifier(train_flags, FLAGS.workdir, images, labels, epochs)
    z = gan.sample_latent(FLAGS.pool, seed=FLAGS.seed)
    probs, _ = classifier(_generate(gan, len(z), latents=z, label=label))
    confident = probs.max(axis=1) > CONFIDENT
    z, groups = z[confident], probs[confident].argmax(axis=1)
    counts = np.bincount(groups, minlength=classifier.num_classes)
    if FLAGS.classes:
        try:
            a, b = (int(c) for c in FLAGS.classes.split(","))
        except ValueError:
            raise app.UsageError(f"--classes={FLAGS.classes}: expected two class numbers 'a,b'.")
    else:
        a, b = (int(c) for c in np.argsort(-counts, kind="stable")[:2])
    for c in (a, b):
        if not 0 <= c < len(counts) or counts[c] == 0:
            raise app.UsageError(f"class {c} has no confident sample among {FLAGS.pool} "
                                 f"(counts per class: {counts.tolist()}); pick others with "
                                 f"--classes or raise --pool.")
    means, _ = tfgan2.latent.group_means(z, groups, len(counts))
    bases = z[groups == b][:FLAGS.num]
    results = tfgan2.latent.latent_arithmetic(z, groups, a, b, bases)
    operands = _generate(gan, 2, latents=means[[a, b]], label=label)
    base_images = _generate(gan, len(bases), latents=bases, label=label)
    result_images = _generate(gan, len(results), latents=results, label=label)
    table = np.stack([np.stack([operands[0], operands[1], base_images[i], result_images[i]])
                      for i in range(len(bases))])
    tfgan2.visualize.save_image_table(
        FLAGS.out, table, col_titles=[f"mean z ({a})", f"mean z ({b})", f"z ({b})",
                                      f"z - {b} + {a}"],
        title=f"latent arithmetic, classes {a} and {b}")
    hit = float(np.mean(classifier.predict(result_images) == a))
    print(f"Wrote {len(bases)} rows of z({b}) - mean z({b}) + mean z({a}) from {path} to "
          f"{FLAGS.out}; confident samples per class {counts.tolist()}; results classified "
          f"as {a}: {hit:.2f}")


def _codes(gan, path):
    """One table per InfoGAN code: rows set the code to each value, columns keep their latents."""
    import tfgan2

    codes = gan.infogan_codes
    if codes is None:
        raise app.UsageError("--mode=codes needs an InfoGAN run (--infogan_codes).")
    label = _labels(gan, fixed=True)
    base = gan.sample_latent(FLAGS.num, seed=FLAGS.seed)
    tables, row_titles = [], []
    n_cat = len(codes.categorical)
    for code in range(n_cat + codes.continuous):
        if code < n_cat:
            values = list(range(codes.categorical[code]))
            titles = [f"cat{code}={v}" for v in values]
        else:
            values = np.linspace(-1.0, 1.0, FLAGS.steps)
            titles = [f"cont{code - n_cat}={v:+.2f}" for v in values]
        walk = codes.traversal(code, values, base[:, gan.latent_dim:])
        for row in walk:
            latents = np.concatenate([base[:, :gan.latent_dim], row], axis=1)
            tables.append(_generate(gan, len(latents), latents=latents, label=label))
        row_titles += titles
    tfgan2.visualize.save_image_table(
        FLAGS.out, np.stack(tables), row_titles=row_titles,
        col_titles=[f"z{j + 1}" for j in range(FLAGS.num)],
        title=f"InfoGAN codes ({codes.spec()}), one varied per row group, "
              f"{os.path.basename(path)}")
    print(f"Wrote {len(row_titles)} rows x {FLAGS.num} latents varying each of "
          f"{n_cat + codes.continuous} codes from {path} to {FLAGS.out}")


def _check_attribute_source(train_flags):
    from launch import eval_lib

    celeba = train_flags.data_source in eval_lib.ATTRIBUTE_SOURCES
    if celeba and not FLAGS.attribute:
        from pipelines.celeba import ATTRIBUTES

        raise app.UsageError(f"--mode=arithmetic on a CelebA run needs --attribute=NAME, one "
                             f"of: {', '.join(ATTRIBUTES)}.")
    if FLAGS.attribute and not celeba:
        raise app.UsageError(f"--attribute needs a run with --data_source in "
                             f"{', '.join(eval_lib.ATTRIBUTE_SOURCES)}; this run's is "
                             f"{train_flags.data_source} (use --classes).")


def _attribute_arithmetic(train_flags, gan, path):
    from launch import eval_lib
    import tfgan2

    name, k = eval_lib.resolve_attribute(FLAGS.attribute)
    label = _labels(gan, fixed=True)
    epochs = FLAGS.classifier_epochs or train_flags.classifier_epochs
    model, info = eval_lib.attribute_classifier(train_flags, FLAGS.workdir,
                                                FLAGS.attribute_examples, epochs)
    accuracy = "n/a" if info["accuracy"] is None else f"{info['accuracy'][k]:.3f}"
    print(f"Attribute classifier {'trained' if info['trained'] else 'loaded'} "
          f"({os.path.join(FLAGS.workdir, eval_lib.ATTRIBUTES_PATH)}): "
          f"{info['num_examples']} real images, {name} in {info['rates'][k]:.1%} of them, "
          f"held-out accuracy on {name} {accuracy}")

    z = gan.sample_latent(FLAGS.pool, seed=FLAGS.seed)
    images = _generate(gan, len(z), latents=z, label=label)
    probs = tfgan2.classifier.classifier_outputs(model, images)[0][:, k]
    groups, threshold = eval_lib.split_by_attribute(probs, name, FLAGS.threshold)
    vector, (n_with, n_without) = tfgan2.latent.attribute_vector(z, probs, threshold)
    print(f"Samples with {name} (p > {threshold:.4g}): {n_with}; without: {n_without}; "
          f"drawn: {len(z)}")
    means, _ = tfgan2.latent.group_means(z, groups, 2)
    without = np.flatnonzero(groups == 0)[:FLAGS.num]
    with_ = np.flatnonzero(groups == 1)
    results = z[without] + vector
    # For each base, the "with" sample whose latent is closest: a real member of the group.
    distances = np.linalg.norm(z[without][:, None, :] - z[with_][None, :, :], axis=-1)
    nearest = with_[distances.argmin(axis=1)]
    operands = _generate(gan, 2, latents=means[[1, 0]], label=label)
    result_images = _generate(gan, len(results), latents=results, label=label)
    result_probs = tfgan2.classifier.classifier_outputs(model, result_images)[0][:, k]
    table = np.stack([np.stack([operands[0], operands[1], images[i], result_images[j],
                                images[nearest[j]]]) for j, i in enumerate(without)])
    tfgan2.visualize.save_image_table(
        FLAGS.out, table,
        row_titles=[f"{probs[i]:.0%}\u2192{result_probs[j]:.0%}" for j, i in enumerate(without)],
        col_titles=["mean z with", "mean z without", "z without", "z + with - without",
                    "nearest z with"],
        title=f"latent arithmetic, {name}")
    hit = float(np.mean(result_probs > threshold))
    print(f"Wrote {len(without)} rows of z + mean z({name}) - mean z(no {name}) from {path} to "
          f"{FLAGS.out}; results classified as {name}: {hit:.2f}")


def _augment_grid(train_flags, gan):
    from launch import builders
    import tfgan2

    if gan.augment is None:
        raise app.UsageError("--mode=augment: the run was trained without --augment.")
    batch = next(iter(builders.build_dataset(train_flags)))
    real = np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch)[:FLAGS.num]
    grid = tfgan2.augment.grid_of_augmentations(gan.augment, real, num_versions=8,
                                                seed=FLAGS.seed)
    tfgan2.visualize.save_image_grid(FLAGS.out, grid, cols=8, scale=FLAGS.scale)
    p = getattr(gan.augment, "p", None)
    print(f"Wrote {len(real)} real images and 7 augmentations each ({train_flags.augment}"
          f"{'' if p is None else f', p={float(p.numpy()):.3f}'}) to {FLAGS.out}")


def _restored_run():
    """``(train_flags, gan, checkpoint path)`` of ``--workdir``, or a usage error saying why not."""
    import tfgan2
    from launch import eval_lib

    try:
        return eval_lib.restore_gan(FLAGS.workdir, FLAGS.data_dir)
    except FileNotFoundError as exc:
        raise app.UsageError(str(exc))
    except tfgan2.callbacks.CheckpointError as exc:
        sys.exit(f"launch.sample: {exc}")


def _export():
    import tfgan2

    if os.path.exists(FLAGS.export) and os.listdir(FLAGS.export):
        raise app.UsageError(f"--export={FLAGS.export} exists and is not empty: choose a new "
                             f"directory for the SavedModel.")
    _, gan, path = _restored_run()
    gan.export(FLAGS.export, verbose=False)
    inputs = ", ".join(spec.name for spec in tfgan2.export.serving_input_signature(gan))
    print(f"Exported the sampler of {path} to {FLAGS.export} (serving_default: {inputs} -> "
          f"images)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.num is None:
        FLAGS.num = NUM_DEFAULTS[FLAGS.mode]
    if FLAGS.export:
        if FLAGS.out:
            raise app.UsageError("Pass either --export=DIR (a SavedModel) or --out=FILE "
                                 "(samples), not both.")
        _export()
        return
    if not FLAGS.out:
        raise app.UsageError("Pass --out=FILE.npz|FILE.png for samples, or --export=DIR for a "
                             "SavedModel.")
    kind = os.path.splitext(FLAGS.out)[1].lower()
    if kind not in OUTPUT_KINDS:
        raise app.UsageError(f"--out={FLAGS.out}: the file must end in .npz or .png.")
    if FLAGS.mode != "grid" and kind != ".png":
        raise app.UsageError(f"--mode={FLAGS.mode} draws a picture: --out must end in .png.")
    from launch import eval_lib

    if FLAGS.attribute:
        try:
            eval_lib.resolve_attribute(FLAGS.attribute)
        except ValueError as exc:
            raise app.UsageError(f"--attribute: {exc}")
    if FLAGS.threshold != "median":
        try:
            ok = 0.0 <= float(FLAGS.threshold) <= 1.0
        except ValueError:
            ok = False
        if not ok:
            raise app.UsageError(f"--threshold={FLAGS.threshold}: expected a number in [0, 1] "
                                 f"or 'median'.")
    train_flags, gan, path = _restored_run()
    if FLAGS.mode == "arithmetic":
        _check_attribute_source(train_flags)
    if FLAGS.mode in ("arithmetic", "augment"):  # these read the run's real images
        try:
            eval_lib.check_data_dir(train_flags, FLAGS.workdir)
        except FileNotFoundError as exc:
            raise app.UsageError(str(exc))
    if FLAGS.mode != "grid" and train_flags.data_source == "gaussian":
        raise app.UsageError(f"--mode={FLAGS.mode} draws images; the run's data are vectors.")
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    if FLAGS.mode == "grid":
        _grid(train_flags, gan, path, kind)
    elif FLAGS.mode == "interpolate":
        _interpolate(gan, path)
    elif FLAGS.mode == "codes":
        _codes(gan, path)
    elif FLAGS.mode == "augment":
        _augment_grid(train_flags, gan)
    else:
        try:
            if train_flags.data_source in eval_lib.ATTRIBUTE_SOURCES:
                _attribute_arithmetic(train_flags, gan, path)
            else:
                _arithmetic(train_flags, gan, path)
        except ValueError as exc:
            raise app.UsageError(str(exc))


def run():
    cli.run(main, "launch.sample")


if __name__ == "__main__":
    sys.exit(run())
