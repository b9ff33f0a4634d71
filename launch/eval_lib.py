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
           "attribute_classifier", "split_by_attribute", "run_flags", "check_data_dir",
           "inception_weights", "inception_cache_path", "EVALUATE_FLAGS", "TRAIN_EVAL_FLAGS",
           "FEATURE_METRICS"]

# Relative to the run directory.
CLASSIFIER_PATH = os.path.join("eval", "classifier.keras")
# Metrics computed on the features of an extractor (Inception-v3 or the domain classifier).
FEATURE_METRICS = ("fid", "kid", "is", "pr")
# Not measured unless asked for: tstr trains two more classifiers.
ON_REQUEST = {"tstr": "trains two more classifiers"}
# The flags that set the evaluation, as each launcher names them (for messages).
EVALUATE_FLAGS = {"features": "--features", "inception_weights": "--inception_weights",
                  "metrics": "--metrics"}
TRAIN_EVAL_FLAGS = {"features": "--eval_features", "inception_weights": "--inception_weights",
                    "metrics": "--eval_metrics"}
# keras.applications.InceptionV3's checksum of the file (Keras verifies downloads with it).
_INCEPTION_MD5 = "9a0d58056eeedaa3f26cb7ebd46da564"

def _labelled_sources():
    return [s.name for s in builders.data_sources.SOURCES.values()
            if s.has_labels and not s.multilabel]


def run_flags(workdir, data_dir=None):
    """The training flags of the run in ``workdir`` (its ``flags.cfg``), with ``data_dir``
    (when given) in place of the recorded ``--data_dir``.

    Raises:
      FileNotFoundError: no ``flags.cfg`` in ``workdir``.
    """
    fv = config.read_flagfile(os.path.join(workdir, "flags.cfg"))
    if data_dir:
        fv.data_dir = config.absolute_path(data_dir)
    return fv


def check_data_dir(fv, workdir):
    """FileNotFoundError naming the fix when the run's ``--data_dir`` is not there.

    Runs written before ``flags.cfg`` recorded absolute paths hold the path as
    typed, relative to the directory training ran in.
    """
    from pipelines.image_files import has_glob_chars
    import glob

    path = fv.data_dir
    if not path or "://" in path:
        return
    expanded = os.path.expanduser(path)
    if os.path.exists(expanded) or (has_glob_chars(expanded) and glob.glob(expanded)):
        return
    relative = "" if os.path.isabs(expanded) else (
        " from this directory: the path is relative to the one training ran in")
    raise FileNotFoundError(
        f"The run's data (--data_dir={path}, from {os.path.join(workdir, 'flags.cfg')}) is not "
        f"found{relative}. Pass --data_dir=PATH to point at the run's data.")


def restore_gan(workdir, data_dir=None):
    """``(train_flags, gan, checkpoint_path)``: the run's GAN with its newest valid checkpoint.

    ``train_flags`` are `run_flags` (``data_dir`` replaces the recorded one).
    A checkpoint that does not restore is reported and the next older one is
    used; nothing in the run directory is renamed or written (the training
    launcher sets broken checkpoints aside when it resumes).

    Raises:
      FileNotFoundError: no ``flags.cfg`` or no checkpoint in ``workdir``.
      tfgan2.callbacks.CheckpointError: checkpoints exist but none restores.
    """
    import tfgan2

    fv = run_flags(workdir, data_dir)
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


def _no_class_labels(fv, flag_names):
    return ValueError(
        f"the domain classifier needs class labels, and --data_source={fv.data_source} has "
        f"none (labelled sources: {', '.join(_labelled_sources())}); use Inception-v3 "
        f"features: {flag_names['features']}=inception.")


def domain_classifier(fv, workdir, images, labels, epochs, seed=0, flag_names=EVALUATE_FLAGS):
    """``(ClassifierExtractor, info)``: the run's classifier, loaded or trained into ``eval/``."""
    from tfgan2 import features

    if labels is None:
        raise _no_class_labels(fv, flag_names)
    model, info = features.load_or_train_classifier(
        os.path.join(workdir, CLASSIFIER_PATH), images, labels, epochs=epochs, seed=seed)
    return features.ClassifierExtractor(model), info


def inception_cache_path():
    """Where Keras keeps the Inception-v3 weights it downloads:
    ``$KERAS_HOME/models/`` (default ``~/.keras/models/``) + the file name."""
    from tfgan2.features import INCEPTION_WEIGHTS_FILE

    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models", INCEPTION_WEIGHTS_FILE)


def inception_weights(path=None, flag_names=EVALUATE_FLAGS):
    """The Inception-v3 weights file: ``path`` when given, else the copy in Keras' cache
    (`inception_cache_path`), which Keras downloads there (with its progress bar and
    checksum, as ``keras.applications`` does) when it is missing.

    Raises:
      FileNotFoundError: ``path`` is not a file, or the cache has no copy and the
        download failed (e.g. no internet); the message says where to put the file.
    """
    from tfgan2.features import INCEPTION_RELEASES, INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL

    flag = flag_names["inception_weights"]
    if path:
        if not os.path.isfile(os.path.expanduser(path)):
            raise FileNotFoundError(f"{flag}={path}: no such file; expected a copy of "
                                    f"{INCEPTION_WEIGHTS_FILE}.")
        return os.path.expanduser(path)
    cached = inception_cache_path()
    if os.path.isfile(cached):
        return cached
    import keras

    try:
        return keras.utils.get_file(INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL,
                                    cache_subdir="models", file_hash=_INCEPTION_MD5)
    except Exception as exc:  # noqa: BLE001 - any failure to fetch: say where the file goes
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileNotFoundError(
            f"Inception-v3 weights are not in Keras' cache ({cached}) and could not be "
            f"downloaded ({reason}). Copy {INCEPTION_WEIGHTS_FILE} (from "
            f"{INCEPTION_WEIGHTS_URL} or {INCEPTION_RELEASES}) to {cached}, or pass "
            f"{flag}=PATH.") from None


def _plan(fv, requested, features, weights, flag_names):
    """``(metrics, features used, skipped)``: what to measure and on which features.

    ``requested`` None: everything available (`build_evaluator`); ``skipped``
    maps each metric left out to the reason and the way to enable it.
    Requested metrics that cannot be measured raise ValueError or
    FileNotFoundError. ``weights`` is a one-item list: the Inception weights
    flag's value in, the resolved file out.
    """
    from tfgan2 import evaluation

    if len(builders.data_shape(fv)) == 1:
        return (list(evaluation.VECTOR_METRICS) if requested is None else requested), "raw", {}
    source = builders.source(fv)
    class_labels = source.has_labels and not source.multilabel
    skipped = {}
    if requested is None:
        metrics = [m for m in evaluation.IMAGE_METRICS if m not in ON_REQUEST]
        for name, why in ON_REQUEST.items():
            skipped[name] = f"{why}; ask with {flag_names['metrics']}=...,{name}"
        if not (fv.conditional and class_labels):
            metrics = [m for m in metrics if m not in evaluation.CONDITIONAL_METRICS]
    else:
        metrics = list(requested)
    by_classifier = [m for m in metrics if m in ("tstr",) + evaluation.CONDITIONAL_METRICS]
    if by_classifier and not class_labels:
        raise ValueError(f"{', '.join(by_classifier)} need a classifier of the run's classes, "
                         f"and --data_source={fv.data_source} has no class labels.")
    # The classifier needs class labels; without them Inception-v3 stands in, unless the
    # classifier was asked for by name.
    chosen = features or ("classifier" if class_labels else "inception")
    on_features = [m for m in metrics if m in FEATURE_METRICS + ("intra_fid",)]
    if on_features and chosen == "classifier" and not class_labels:
        raise _no_class_labels(fv, flag_names)
    if on_features and chosen == "inception":
        try:
            weights[0] = inception_weights(weights[0], flag_names)
        except FileNotFoundError as exc:
            reason = str(exc) if class_labels else (
                f"image features are needed: --data_source={fv.data_source} has no class "
                f"labels for the domain classifier, and {exc}")
            if requested is not None:
                raise FileNotFoundError(reason) from None
            skipped = {**{m: reason for m in on_features}, **skipped}
            metrics = [m for m in metrics if m not in on_features]
            on_features = []
    return metrics, (chosen if on_features else "none"), skipped


def build_evaluator(fv, workdir, metrics, num_samples, *, features=None,
                    inception_weights=None, classifier_epochs=30, seed=0,
                    flag_names=EVALUATE_FLAGS):
    """An `tfgan2.evaluation.Evaluator` for the run described by ``fv``, and a dict of notes.

    ``metrics``: names (list or comma-separated), or None for everything this
    run can measure: image data: confusion (D's view), swd, and fid, kid, is,
    pr on the domain classifier's features (labelled data) or Inception-v3's
    (weights from ``inception_weights``, else Keras' cache, fetched by Keras
    when missing; `inception_weights`), plus cas and intra_fid for
    class-conditional runs; tstr only on request. Vector data: fid, kid, pr,
    confusion, moments on the raw vectors. ``notes["skipped"]`` maps each
    metric left out to why and how to enable it.

    ``features``: "classifier", "inception", or None for the run's choice
    (``fv.eval_features``), where data without class labels use Inception-v3.
    The reference set is the real data; the domain classifier (trained on its
    stratified 75%, stored in ``<workdir>/eval/``) labels samples for tstr and
    supplies the features with "classifier"; its held-out 25% is tstr's test
    set and confusion's real half. ``notes["features"]`` says which features
    the metrics used ("none" when only swd and confusion ran).
    ``flag_names`` names the launcher's flags in messages (`EVALUATE_FLAGS`,
    `TRAIN_EVAL_FLAGS`).

    Raises:
      ValueError: unknown or unsupported metrics, or classifier features for a
        source without labels.
      FileNotFoundError: asked-for Inception features without weights.
    """
    from tfgan2 import evaluation
    from tfgan2 import features as features_lib

    vector = len(builders.data_shape(fv)) == 1
    if metrics is not None:
        metrics = evaluation.check_metrics(metrics, vector_data=vector)
    if features not in (None, "classifier", "inception"):
        raise ValueError(f"features must be 'classifier' or 'inception', got {features!r}")
    if features is None and fv.eval_features != "classifier":
        features = fv.eval_features
    weights = [inception_weights]
    metrics, used, skipped = _plan(fv, metrics, features, weights, flag_names)
    if not metrics:
        raise ValueError("no metric can be measured: " + "; ".join(
            f"{m}: {why}" for m, why in skipped.items()))
    notes = {"features": used}
    if skipped:
        notes["skipped"] = skipped
    data, labels = real_data(fv, None if fv.data_source == "digits" else max(num_samples, 1000))
    kwargs = dict(threshold=evaluation.decision_threshold(fv.loss), seed=seed)
    if vector:
        return evaluation.Evaluator(metrics, data, num_samples, **kwargs), notes

    needs_classifier = used == "classifier" or any(
        m in metrics for m in ("tstr",) + evaluation.CONDITIONAL_METRICS)
    extractor = labeller = heldout = real_train = None
    if needs_classifier:
        labeller, info = domain_classifier(fv, workdir, data, labels, classifier_epochs, seed,
                                           flag_names=flag_names)
        notes["classifier"] = os.path.join(workdir, CLASSIFIER_PATH)
        notes["classifier_heldout_accuracy"] = info["heldout_accuracy"]
        heldout = (data[info["heldout_indices"]], labels[info["heldout_indices"]])
        real_train = (data[info["train_indices"]], labels[info["train_indices"]])
    if used == "inception":
        extractor = features_lib.InceptionExtractor(weights[0])
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
            fv, workdir, fv.eval_metrics, fv.eval_num_samples, features=None,
            inception_weights=fv.inception_weights, classifier_epochs=fv.classifier_epochs,
            seed=fv.seed, flag_names=TRAIN_EVAL_FLAGS)
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
    """A two-column text table of an ``eval.json`` dict (labels padded to the longest)."""
    rows = [("step", str(results.get("step"))), ("samples", str(results.get("num_samples"))),
            ("features", str(results.get("features")))]
    if "classifier_heldout_accuracy" in results:
        rows.append(("classifier held-out acc.", f"{results['classifier_heldout_accuracy']:.4f}"))
    for key, label, fmt in _ROWS:
        if key in results:
            rows.append((label, fmt.format(results[key])))
    for key, label, fmt in _PER_CLASS_ROWS:
        for c, value in enumerate(results.get(key, ())):
            rows.append((label.format(c), fmt.format(value)))
    if "confusion" in results:
        c = results["confusion"]
        n_real = c["real_as_real"] + c["real_as_fake"]
        n_fake = c["fake_as_real"] + c["fake_as_fake"]
        rows.append(("D confusion", f"{'judged real':>12}{'judged fake':>12}"))
        rows.append((f"  real ({n_real})", f"{c['real_as_real']:>12}{c['real_as_fake']:>12}"))
        rows.append((f"  generated ({n_fake})",
                     f"{c['fake_as_real']:>12}{c['fake_as_fake']:>12}"))
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


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
