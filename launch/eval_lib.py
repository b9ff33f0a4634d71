"""Evaluation set-up shared by the launchers: run restore, real data, evaluator, training callbacks.

Takes parsed flag values (a run's ``flags.cfg``) and turns them into
`tfgan2.evaluation` / `tfgan2.features` objects. Defines no flags, so
`launch.train`, `launch.evaluate` and `launch.sample` can all import it.
"""
import math
import os

import numpy as np

from launch import builders, config

__all__ = ["restore_gan", "real_data", "domain_classifier", "build_evaluator",
           "training_callbacks", "format_table", "CLASSIFIER_PATH", "ATTRIBUTES_PATH",
           "ATTRIBUTE_SOURCES", "resolve_attribute", "celeba_attribute_data",
           "attribute_classifier", "split_by_attribute"]

# Relative to the run directory.
CLASSIFIER_PATH = os.path.join("eval", "classifier.keras")

def _labelled_sources():
    return [s.name for s in builders.data_sources.SOURCES.values()
            if s.has_labels and not s.multilabel]


def restore_gan(workdir):
    """``(train_flags, gan, checkpoint_path)``: the run's GAN with its newest valid checkpoint.

    A checkpoint that does not restore is reported and the next older one is
    used; nothing in the run directory is renamed or written (the training
    launcher sets broken checkpoints aside when it resumes).

    Raises:
      FileNotFoundError: no ``flags.cfg`` or no checkpoint in ``workdir``.
      tfgan2.callbacks.CheckpointError: checkpoints exist but none restores.
    """
    import tfgan2

    fv = config.read_flagfile(os.path.join(workdir, "flags.cfg"))
    ckpt_dir = os.path.join(workdir, "checkpoints")
    gan = builders.build_gan(fv, compile_model=False)
    checkpointer = tfgan2.callbacks.Checkpointer(ckpt_dir)
    if checkpointer.restore(gan, set_aside=False) is None:
        raise FileNotFoundError(f"No checkpoint in {ckpt_dir}: train the run first.")
    return fv, gan, checkpointer.restored_path


def real_data(fv, num=None):
    """``(data, labels)`` of the run's data source; ``labels`` is None for unlabelled sources
    and for multi-label ones (the domain classifier needs class ids).

    In-memory sources (digits): all examples. Others: ``num`` examples from
    ``ceil(num / batch_size)`` batches of the training pipeline.
    """
    source = builders.source(fv)
    return source.real_data(fv, num, labels=source.has_labels and not source.multilabel)


def domain_classifier(fv, workdir, images, labels, epochs, seed=0):
    """``(ClassifierExtractor, info)``: the run's classifier, loaded or trained into ``eval/``."""
    from tfgan2 import features

    if labels is None:
        raise ValueError(
            f"the domain classifier needs class labels, and --data_source={fv.data_source} has "
            f"none (labelled sources: {', '.join(_labelled_sources())}); use "
            f"--features=inception with --inception_weights=PATH.")
    model, info = features.load_or_train_classifier(
        os.path.join(workdir, CLASSIFIER_PATH), images, labels, epochs=epochs, seed=seed)
    return features.ClassifierExtractor(model), info


def build_evaluator(fv, workdir, metrics, num_samples, *, features="classifier",
                    inception_weights=None, classifier_epochs=30, seed=0):
    """An `tfgan2.evaluation.Evaluator` for the run described by ``fv``, and a dict of notes.

    Image data: the reference set is the real data; the domain classifier
    (trained on its stratified 75%, stored in ``<workdir>/eval/``) labels
    samples for tstr and, with ``features="classifier"``, supplies the
    features; its held-out 25% is tstr's test set and confusion's real half.
    Vector data: raw vectors are the features (fid, kid, pr, confusion,
    moments).

    Raises:
      ValueError: unknown or unsupported metrics, or classifier features for a
        source without labels.
      FileNotFoundError: ``features="inception"`` without a weights file.
    """
    from tfgan2 import evaluation
    from tfgan2 import features as features_lib

    vector = len(builders.data_shape(fv)) == 1
    metrics = evaluation.check_metrics(metrics, vector_data=vector)
    if features not in ("classifier", "inception"):
        raise ValueError(f"features must be 'classifier' or 'inception', got {features!r}")
    notes = {"features": "raw" if vector else features}
    data, labels = real_data(fv, None if fv.data_source == "digits" else max(num_samples, 1000))
    kwargs = dict(threshold=evaluation.decision_threshold(fv.loss), seed=seed)
    if vector:
        return evaluation.Evaluator(metrics, data, num_samples, **kwargs), notes

    # swd compares the images themselves; every other metric uses the run's features.
    uses_features = bool(set(metrics) - {"swd"})
    needs_classifier = (features == "classifier" and uses_features) or any(
        m in metrics for m in ("tstr",) + evaluation.CONDITIONAL_METRICS)
    extractor = labeller = heldout = real_train = None
    if needs_classifier:
        labeller, info = domain_classifier(fv, workdir, data, labels, classifier_epochs, seed)
        notes["classifier"] = os.path.join(workdir, CLASSIFIER_PATH)
        notes["classifier_heldout_accuracy"] = info["heldout_accuracy"]
        heldout = (data[info["heldout_indices"]], labels[info["heldout_indices"]])
        real_train = (data[info["train_indices"]], labels[info["train_indices"]])
    if features == "inception" and uses_features:
        extractor = features_lib.InceptionExtractor(inception_weights)
    else:
        extractor = labeller
    evaluator = evaluation.Evaluator(
        metrics, data, num_samples, extractor=extractor, labeller=labeller, heldout=heldout,
        real_train=real_train, tstr_epochs=classifier_epochs, real_labels=labels, **kwargs)
    return evaluator, notes


def training_callbacks(fv, workdir):
    """The monitoring callbacks ``launch.train`` passes to `tfgan2.train`, from the run's flags.

    ``--tensorboard``: a `tfgan2.summaries.TensorBoardLogger` on
    ``<workdir>/tensorboard`` (scalars every ``--log_every``, images every
    ``--sample_every`` steps). ``--eval_every`` > 0: a
    `tfgan2.evaluation.EvaluationCallback` with ``--eval_metrics`` on
    ``--eval_num_samples`` samples, writing ``metrics.jsonl`` rows and
    TensorBoard scalars.

    Raises:
      ValueError / FileNotFoundError: as `build_evaluator`, before training starts.
    """
    from tfgan2 import evaluation, summaries

    callbacks = []
    log_dir = os.path.join(workdir, "tensorboard") if fv.tensorboard else None
    if log_dir:
        callbacks.append(summaries.TensorBoardLogger(
            log_dir, every_n_steps=fv.log_every, num_images=min(fv.num_grid, 64),
            image_every_n_steps=fv.sample_every or fv.log_every, seed=fv.seed))
    if fv.eval_every:
        evaluator, _ = build_evaluator(
            fv, workdir, fv.eval_metrics, fv.eval_num_samples, features=fv.eval_features,
            inception_weights=fv.inception_weights, classifier_epochs=fv.classifier_epochs,
            seed=fv.seed)
        callbacks.append(evaluation.EvaluationCallback(
            fv.eval_every, evaluator, log_dir=log_dir,
            metrics_path=os.path.join(workdir, "metrics.jsonl")))
    return callbacks


_ROWS = [
    ("fid", "Frechet distance", "{:.4f}"), ("kid", "KID", "{:.5f}"),
    ("kid_std", "  KID std over subsets", "{:.5f}"), ("is", "Inception Score", "{:.3f}"),
    ("is_std", "  IS std over splits", "{:.3f}"), ("precision", "precision (k=3)", "{:.3f}"),
    ("recall", "recall (k=3)", "{:.3f}"), ("tstr_accuracy", "TSTR accuracy", "{:.4f}"),
    ("trtr_accuracy", "  train-on-real accuracy", "{:.4f}"),
    ("swd", "sliced Wasserstein (patches)", "{:.5f}"), ("swd_real", "  real vs real", "{:.5f}"),
    ("real_mean", "real mean", "{:.4f}"), ("fake_mean", "generated mean", "{:.4f}"),
    ("real_std", "real std", "{:.4f}"), ("fake_std", "generated std", "{:.4f}"),
    ("cas", "class agreement (CAS)", "{:.4f}"), ("intra_fid", "intra-FID (class mean)", "{:.4f}"),
]
# Per-class lists, printed as one row each.
_PER_CLASS_ROWS = [("cas_per_class", "  agreement, class {}", "{:.4f}"),
                   ("intra_fid_per_class", "  intra-FID, class {}", "{:.4f}")]


def format_table(results):
    """A two-column text table of an ``eval.json`` dict."""
    lines = [f"{'step':<28}{results.get('step')}",
             f"{'samples':<28}{results.get('num_samples')}",
             f"{'features':<28}{results.get('features')}"]
    if "classifier_heldout_accuracy" in results:
        lines.append(f"{'classifier held-out acc.':<28}"
                     f"{results['classifier_heldout_accuracy']:.4f}")
    for key, label, fmt in _ROWS:
        if key in results:
            lines.append(f"{label:<28}{fmt.format(results[key])}")
    for key, label, fmt in _PER_CLASS_ROWS:
        for c, value in enumerate(results.get(key, ())):
            lines.append(f"{label.format(c):<28}{fmt.format(value)}")
    if "confusion" in results:
        c = results["confusion"]
        n_real = c["real_as_real"] + c["real_as_fake"]
        n_fake = c["fake_as_real"] + c["fake_as_fake"]
        lines.append(f"{'D confusion':<28}{'judged real':>12}{'judged fake':>12}")
        lines.append(f"{'  real (' + str(n_real) + ')':<28}{c['real_as_real']:>12}"
                     f"{c['real_as_fake']:>12}")
        lines.append(f"{'  generated (' + str(n_fake) + ')':<28}{c['fake_as_real']:>12}"
                     f"{c['fake_as_fake']:>12}")
    return "\n".join(lines)


# ------------------------------------------------------------------ CelebA attributes
ATTRIBUTES_PATH = os.path.join("eval", "attributes.keras")  # relative to the run directory
# Sources whose labels are binary attributes (CelebA's 40).
ATTRIBUTE_SOURCES = tuple(s.name for s in builders.data_sources.SOURCES.values() if s.multilabel)
_ATTRIBUTE_BATCH = 8  # small, so that few examples are lost to drop_remainder


def resolve_attribute(name):
    """``(canonical name, index)`` of a CelebA attribute, matched case-insensitively.

    Raises:
      ValueError: unknown name; the message lists the 40 valid ones.
    """
    from pipelines.celeba import ATTRIBUTES

    by_lower = {a.lower(): i for i, a in enumerate(ATTRIBUTES)}
    index = by_lower.get(str(name).strip().lower())
    if index is None:
        raise ValueError(f"unknown CelebA attribute {name!r}; valid names: "
                         f"{', '.join(ATTRIBUTES)}")
    return ATTRIBUTES[index], index


def celeba_attribute_data(fv, num):
    """Up to ``num`` real ``(images, attributes)`` of the run's CelebA source, as float32 arrays.

    Read with ``pipelines.celeba(..., labels=True)`` from the run's
    ``--data_dir``, ``--split``, ``--crop`` and ``--resolution`` (one
    shuffled pass in a fixed order, seeded by ``--seed``): images
    ``(n, R, R, 3)`` in [-1, 1], attributes ``(n, 40)`` 0/1 in
    `pipelines.celeba.ATTRIBUTES` order.
    """
    import pipelines

    if fv.data_source not in ATTRIBUTE_SOURCES:
        raise ValueError(f"attributes need a CelebA run (--data_source in "
                         f"{', '.join(ATTRIBUTE_SOURCES)}), this one has "
                         f"--data_source={fv.data_source}")
    source = "tfds" if fv.data_source == "celeba_tfds" else fv.data_dir
    dataset = pipelines.celeba(
        source, split=fv.split, resolution=fv.resolution, batch_size=_ATTRIBUTE_BATCH,
        labels=True, shuffle=True, repeat=False, crop=builders.crop_spec(fv),
        data_dir=fv.data_dir if source == "tfds" else None, seed=fv.seed, deterministic=True)
    images, attributes = [], []
    for batch_images, batch_attributes in dataset.take(math.ceil(num / _ATTRIBUTE_BATCH)):
        images.append(np.asarray(batch_images))
        attributes.append(np.asarray(batch_attributes))
    if not images:
        raise ValueError(f"no labelled batch of {_ATTRIBUTE_BATCH} images in {source} "
                         f"(split {fv.split})")
    return (np.concatenate(images)[:num].astype(np.float32),
            np.concatenate(attributes)[:num].astype(np.float32))


def attribute_classifier(fv, workdir, num, epochs, seed=0):
    """``(model, info)``: the CelebA attribute classifier of the run in ``workdir``.

    Stored as ``<workdir>/eval/attributes.keras``; trained on up to ``num``
    real labelled images (`celeba_attribute_data`; 75% for training, 25%
    held out) unless a stored model with the same settings exists
    (`tfgan2.classifier.load_or_train_attribute_classifier`).
    ``info`` adds ``rates``, the share of the real images having each attribute.
    """
    from pipelines.celeba import ATTRIBUTES
    from tfgan2 import classifier

    images, attributes = celeba_attribute_data(fv, num)
    model, info = classifier.load_or_train_attribute_classifier(
        os.path.join(workdir, ATTRIBUTES_PATH), images, attributes, epochs=epochs, seed=seed,
        names=ATTRIBUTES)
    return model, dict(info, rates=attributes.mean(axis=0).tolist())


def split_by_attribute(probabilities, name, threshold=0.5):
    """``(groups, threshold)``: 1 where ``p > threshold`` ("with" ``name``), else 0.

    ``threshold`` is a number or ``"median"`` (the median of ``probabilities``,
    which halves the pool). `tfgan2.latent.attribute_groups` does the split.

    Raises:
      ValueError: a group is empty; the message gives both counts and
        suggests a larger ``--pool``.
    """
    from tfgan2 import latent

    probabilities = np.asarray(probabilities, np.float64)
    if threshold == "median":
        threshold = float(np.median(probabilities))
    threshold = float(threshold)
    groups = latent.attribute_groups(probabilities, threshold)
    n_with = int(groups.sum())
    n_without = len(groups) - n_with
    if n_with == 0 or n_without == 0:
        empty = "with" if n_with == 0 else "without"
        raise ValueError(f"no sample {empty} {name} among the {len(groups)} drawn ({n_with} "
                         f"with, {n_without} without at p > {threshold:.4g}); both groups need "
                         f"members: draw more with a larger --pool (or try --threshold=median).")
    return groups, threshold
