"""Evaluating a trained or training GAN: metric registry, TSTR, D's confusion matrix, a callback.

Arrays in, floats out: nothing here reads data sets or flags. An `Evaluator`
holds the real data, a feature extractor (`tfgan2.features`) and the chosen
metrics, and measures a `tfgan2.GAN` with one call; `EvaluationCallback` runs
it during training.

Metrics (`METRICS`) and what each returns:

=========  ==============================================================
fid        ``fid``: Fréchet distance of extractor features (raw vectors for
           vector data), `tfgan2.metrics.frechet_distance`
kid        ``kid``, ``kid_std``: kernel inception distance (same features)
is         ``is``, ``is_std``: Inception Score of the extractor's
           probabilities (image data only)
pr         ``precision``, ``recall``: k-NN manifolds, k = 3
tstr       ``tstr_accuracy``, ``trtr_accuracy``: train on synthetic, test
           on real (image data with a labelling classifier only; see `tstr`)
confusion  ``confusion``: D's counts on held-out real and as many generated
           samples (`discriminator_confusion`)
swd        ``swd``: sliced Wasserstein distance of 7x7 Laplacian-pyramid
           patches of real and generated images, averaged over the levels
           (`tfgan2.sliced_wasserstein`); ``swd_real``: the same between two
           patch draws of the real images (the noise floor); ``swd_levels``:
           the per-level distances ``{"res<size>": value}`` (image data only)
moments    ``real_mean``, ``real_std``, ``fake_mean``, ``fake_std``: over all
           values (vector data only, e.g. the 1-D Gaussian toy problem)
cas        ``cas``, ``cas_per_class``: class-conditional GANs, ``num_samples``
           per class: the share a classifier trained on real data assigns
           to the requested class (`classification_agreement`)
intra_fid  ``intra_fid``, ``intra_fid_per_class``: the Fréchet distance of
           each class's samples to that class's real data, and their mean
           (Miyato & Koyama 2018; `intra_frechet_distance`)
=========  ==============================================================
"""
import json
import math
import os

import numpy as np

from tfgan2 import classifier as classifier_lib
from tfgan2 import losses as losses_lib
from tfgan2 import metrics as metrics_lib
from tfgan2 import sliced_wasserstein
from tfgan2 import summaries
from tfgan2.callbacks import PeriodicWriter

__all__ = ["METRICS", "IMAGE_METRICS", "VECTOR_METRICS", "check_metrics", "decision_threshold",
           "confusion_counts", "discriminator_confusion", "tstr", "moments", "swd", "flatten",
           "classification_agreement", "intra_frechet_distance", "CONDITIONAL_METRICS",
           "Evaluator", "EvaluationCallback"]

IMAGE_METRICS = ("fid", "kid", "is", "pr", "tstr", "confusion", "cas", "intra_fid", "swd")
VECTOR_METRICS = ("fid", "kid", "pr", "confusion", "moments")
METRICS = ("fid", "kid", "is", "pr", "tstr", "confusion", "moments", "cas", "intra_fid", "swd")
# Metrics of class-conditional GANs: they generate num_samples of each class.
CONDITIONAL_METRICS = ("cas", "intra_fid")


def check_metrics(names, vector_data=False):
    """Validated metric names from a list or a comma-separated string, in the given order.

    Raises:
      ValueError: an unknown name, or one not defined for this kind of data;
        the message lists the valid names.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"no metric given; valid metrics: {', '.join(METRICS)}")
    valid = VECTOR_METRICS if vector_data else IMAGE_METRICS
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(METRICS)}")
        if name not in valid:
            kind = "vector" if vector_data else "image"
            raise ValueError(f"metric {name!r} is not defined for {kind} data; valid for "
                             f"{kind} data: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def decision_threshold(loss):
    """Logit above which D judges an input real (`tfgan2.losses.decision_threshold`)."""
    return losses_lib.decision_threshold(loss)


def confusion_counts(real_logits, fake_logits, threshold=0.0):
    """D's confusion matrix from logits, as integer counts.

    An input is judged real when its logit is above ``threshold``. Returns
    ``{"real_as_real", "real_as_fake", "fake_as_real", "fake_as_fake"}``;
    the first two sum to ``len(real_logits)``, the last two to
    ``len(fake_logits)``.
    """
    real = np.asarray(real_logits, np.float64).reshape(-1)
    fake = np.asarray(fake_logits, np.float64).reshape(-1)
    real_ok = int(np.count_nonzero(real > threshold))
    fake_fooled = int(np.count_nonzero(fake > threshold))
    return {"real_as_real": real_ok, "real_as_fake": int(real.size - real_ok),
            "fake_as_real": fake_fooled, "fake_as_fake": int(fake.size - fake_fooled)}


def _logits(network, data, batch_size):
    out = [np.asarray(network(data[i:i + batch_size], training=False), np.float64).reshape(-1)
           for i in range(0, len(data), batch_size)]
    return np.concatenate(out) if out else np.zeros(0)


def discriminator_confusion(discriminator, real, fake, threshold=0.0, batch_size=256):
    """`confusion_counts` of ``discriminator`` (inference mode) on ``real`` and ``fake`` arrays."""
    real = np.asarray(real, np.float32)
    fake = np.asarray(fake, np.float32)
    return confusion_counts(_logits(discriminator, real, batch_size),
                            _logits(discriminator, fake, batch_size), threshold)


def classification_agreement(probabilities, requested, num_classes):
    """``(share, per-class shares)``: how often the argmax of ``probabilities`` is the requested class.

    The classification accuracy score of class-conditional samples: a
    classifier trained on real data labels each sample, and the share of
    samples it assigns to the class they were generated for is reported
    overall and for each class (NaN for a class with no sample).
    """
    predicted = np.asarray(probabilities).argmax(axis=1)
    requested = np.asarray(requested).reshape(-1)
    hits = predicted == requested
    per_class = [float(np.mean(hits[requested == c])) if np.any(requested == c) else math.nan
                 for c in range(num_classes)]
    return float(np.mean(hits)), per_class


def intra_frechet_distance(features, labels, real_features, real_labels, num_classes):
    """``(mean, per-class)`` Fréchet distance between each class's samples and real data.

    Intra-FID (Miyato & Koyama 2018): `tfgan2.metrics.frechet_distance` of
    the features of the samples generated for class ``c`` against the real
    examples of class ``c``, for every class both sets have at least two of;
    the mean is over those classes (NaN entries are skipped).
    """
    labels = np.asarray(labels).reshape(-1)
    real_labels = np.asarray(real_labels).reshape(-1)
    per_class = []
    for c in range(num_classes):
        fake_c, real_c = features[labels == c], real_features[real_labels == c]
        per_class.append(metrics_lib.frechet_distance(fake_c, real_c)
                         if len(fake_c) > 1 and len(real_c) > 1 else math.nan)
    finite = [v for v in per_class if not math.isnan(v)]
    return (float(np.mean(finite)) if finite else math.nan), per_class


def tstr(synthetic, synthetic_labels, real_train, real_train_labels, real_test,
         real_test_labels, *, num_classes=None, epochs=20, seed=0, batch_size=64):
    """Train on synthetic, test on real (Esteban et al. 2017, arXiv:1706.02633).

    A fresh `tfgan2.classifier` CNN is trained on ``synthetic`` images with
    ``synthetic_labels`` (for an unconditional GAN: the predictions of a
    classifier trained on real data) and its accuracy measured on the real
    ``real_test`` set. For reference, another fresh classifier with the same
    settings is trained on ``real_train`` (at most as many images as
    ``synthetic``, so both see the same number of examples) and measured on
    the same test set ("train on real, test on real"). Samples that are
    realistic and cover every class give ``tstr_accuracy`` close to
    ``trtr_accuracy``; a collapsed generator leaves classes unlearnt.

    Returns:
      ``{"tstr_accuracy", "trtr_accuracy"}`` in [0, 1], plus
      ``"num_synthetic"`` and ``"num_real_train"``.
    """
    synthetic_labels = np.asarray(synthetic_labels).astype(np.int64).reshape(-1)
    real_train_labels = np.asarray(real_train_labels).astype(np.int64).reshape(-1)
    real_test_labels = np.asarray(real_test_labels).astype(np.int64).reshape(-1)
    if num_classes is None:
        num_classes = int(max(synthetic_labels.max(), real_train_labels.max(),
                              real_test_labels.max())) + 1
    if len(real_train) > len(synthetic):
        keep = np.sort(np.random.default_rng(seed).choice(len(real_train), len(synthetic),
                                                          replace=False))
        real_train, real_train_labels = np.asarray(real_train)[keep], real_train_labels[keep]

    def accuracy(x, y):
        model, _ = classifier_lib.train_classifier(
            x, y, num_classes=num_classes, epochs=epochs, batch_size=batch_size, seed=seed,
            validation_split=0.0)
        probs, _ = classifier_lib.classifier_outputs(model, real_test)
        return float(np.mean(probs.argmax(axis=1) == real_test_labels))

    return {"tstr_accuracy": accuracy(synthetic, synthetic_labels),
            "trtr_accuracy": accuracy(real_train, real_train_labels),
            "num_synthetic": int(len(synthetic)), "num_real_train": int(len(real_train))}


def moments(real, fake):
    """Mean and standard deviation over all values of ``real`` and ``fake`` (vector data)."""
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    return {"real_mean": float(real.mean()), "real_std": float(real.std()),
            "fake_mean": float(fake.mean()), "fake_std": float(fake.std())}


def swd(real, fake, seed=0, **kwargs):
    """Sliced Wasserstein distance of images, summarized over the pyramid levels.

    Uses as many images of each set as the smaller one holds. Returns
    ``{"swd": mean over levels of real-vs-generated, "swd_real": mean over
    levels of real-vs-real, "swd_levels": {"res<size>": real-vs-generated}}``;
    ``kwargs`` go to `tfgan2.sliced_wasserstein.sliced_wasserstein_distance`.
    """
    n = min(len(real), len(fake))
    levels = sliced_wasserstein.sliced_wasserstein_distance(
        np.asarray(real, np.float32)[:n], np.asarray(fake, np.float32)[:n], seed=seed, **kwargs)
    return {"swd": float(np.mean([level.fake for level in levels])),
            "swd_real": float(np.mean([level.real for level in levels])),
            "swd_levels": {f"res{level.resolution}": level.fake for level in levels}}


def flatten(results, prefix=""):
    """Nested result dicts as flat ``{prefix + "a/b": number}`` (e.g. ``eval/confusion/real_as_real``).

    Counts stay ``int`` (``num_samples``, confusion counts), measurements become ``float``.
    """
    flat = {}
    for key, value in results.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, np.integer)):
            flat[prefix + key] = int(value)
        elif isinstance(value, (float, np.floating)):
            flat[prefix + key] = float(value)
    return flat


class Evaluator:
    """Measures a `tfgan2.GAN` against real data with the chosen metrics.

    Args:
      metrics: names from `METRICS` (list or comma-separated string).
      real: real data, images ``(N, H, W, C)`` in [-1, 1] or vectors ``(N, D)``;
        the reference set of fid, kid and pr (randomly subsampled to
        ``num_samples`` when larger, so both sets have one size).
      num_samples: generated samples per evaluation.
      extractor: a `tfgan2.features` extractor (``images -> (probs,
        features)``); required for image data, ignored for vectors (whose
        raw values are the features).
      heldout: real data the labelling classifier never saw, with its labels
        as ``(images, labels)`` (the test set of tstr; its first
        ``num_samples`` images are the real half of confusion). Without it
        confusion uses ``real``.
      labeller: a `tfgan2.features.ClassifierExtractor` (or any extractor)
        whose predicted class labels the samples for tstr.
      real_train: ``(images, labels)`` for the train-on-real reference of tstr.
      threshold: D's decision threshold (`decision_threshold`).
      seed: seed of the latent draw (the same every call, so evaluations
        during training compare one set of z) and of subsampling. tstr trains
        classifiers through `tfgan2.classifier.train_classifier`, which
        re-seeds Python, NumPy and TensorFlow globally with it.
      tstr_epochs, kid_subsets, pr_k, is_splits: settings.
      kid_subset_size: default ``min(1000, num_samples // 2)``.

    Calling it returns ``{metric result name: float}`` with ``confusion`` as a
    dict of counts, plus ``num_samples``.
    """

    def __init__(self, metrics, real, num_samples, *, extractor=None, heldout=None,
                 labeller=None, real_train=None, threshold=0.0, seed=0, tstr_epochs=20,
                 kid_subsets=100, kid_subset_size=None, pr_k=3, is_splits=10, batch_size=256,
                 real_labels=None):
        real = np.asarray(real, np.float32)
        self.vector_data = real.ndim == 2
        self.metrics = check_metrics(metrics, vector_data=self.vector_data)
        if int(num_samples) < 2:
            raise ValueError(f"num_samples must be >= 2, got {num_samples}")
        self.num_samples = int(num_samples)
        if not self.vector_data and extractor is None and any(
                m in self.metrics for m in ("fid", "kid", "is", "pr")):
            raise ValueError("image metrics need a feature extractor (tfgan2.features)")
        if "tstr" in self.metrics and (labeller is None or heldout is None or real_train is None):
            raise ValueError("tstr needs labeller, heldout=(images, labels) and "
                             "real_train=(images, labels)")
        wants_classes = [m for m in self.metrics if m in CONDITIONAL_METRICS]
        if wants_classes and (labeller is None or real_labels is None):
            raise ValueError(f"{', '.join(wants_classes)} need a labeller (a classifier trained "
                             f"on real data) and the real data's class labels")
        # The whole labelled real set, for the per-class references of intra_fid.
        self.real_all = real
        self.real_labels = None if real_labels is None else np.asarray(real_labels)
        rng = np.random.default_rng(seed)
        if len(real) > self.num_samples:
            real = real[np.sort(rng.choice(len(real), self.num_samples, replace=False))]
        self.real = real
        self.extractor = extractor
        self.heldout = heldout
        self.labeller = labeller
        self.real_train = real_train
        self.threshold = float(threshold)
        self.seed = int(seed)
        self.tstr_epochs = int(tstr_epochs)
        # Subsets of half the samples (at most 1000, as in the KID paper) so that
        # the spread over subsets means something at small sample counts.
        self.kid_subsets = int(kid_subsets)
        self.kid_subset_size = int(kid_subset_size or min(1000, max(2, self.num_samples // 2)))
        self.pr_k, self.is_splits = int(pr_k), int(is_splits)
        self.batch_size = int(batch_size)
        self._real_features = None
        self._real_all_features = None

    @property
    def feature_name(self):
        if self.vector_data:
            return "raw"
        return getattr(self.extractor, "name", type(self.extractor).__name__)

    def _features(self, data):
        if self.vector_data:
            return None, np.asarray(data, np.float64)
        return self.extractor(data)

    def real_features(self):
        if self._real_features is None:
            self._real_features = self._features(self.real)[1]
        return self._real_features

    def evaluate_samples(self, fake, discriminator=None):
        """The metrics of generated ``fake`` (``(num_samples, ...)``) and D (for confusion)."""
        fake = np.asarray(fake, np.float32)
        results = {}
        needs_features = any(m in self.metrics for m in ("fid", "kid", "is", "pr"))
        probs = feats = None
        if needs_features:
            probs, feats = self._features(fake)
        for name in self.metrics:
            if name == "fid":
                results["fid"] = metrics_lib.frechet_distance(feats, self.real_features())
            elif name == "kid":
                kid, kid_std = metrics_lib.kernel_inception_distance(
                    feats, self.real_features(), num_subsets=self.kid_subsets,
                    subset_size=self.kid_subset_size, seed=self.seed, return_std=True)
                results.update(kid=kid, kid_std=kid_std)
            elif name == "is":
                value, std = metrics_lib.inception_score(
                    probs, splits=max(1, min(self.is_splits, len(probs))), return_std=True)
                results.update({"is": value, "is_std": std})
            elif name == "pr":
                k = min(self.pr_k, len(fake) - 1, len(self.real) - 1)
                precision, recall = metrics_lib.precision_recall(self.real_features(), feats, k=k)
                results.update(precision=precision, recall=recall)
            elif name == "moments":
                results.update(moments(self.real, fake))
            elif name == "swd":
                results.update(swd(self.real, fake, seed=self.seed))
        return results

    def _per_class(self, gan):
        """``cas`` and ``intra_fid`` of a class-conditional GAN, ``num_samples`` per class."""
        if not getattr(gan, "conditional", False) or gan.multilabel:
            raise ValueError("cas and intra_fid measure class-conditional GANs; this GAN is "
                             + ("multi-label" if getattr(gan, "conditional", False)
                                else "unconditional"))
        k = gan.num_classes
        requested = np.repeat(np.arange(k), self.num_samples)
        fake = gan.generate(len(requested), seed=self.seed + 3, labels=requested)
        results = {}
        if "cas" in self.metrics:
            probs = self.labeller(fake)[0]
            results["cas"], results["cas_per_class"] = classification_agreement(
                probs, requested, k)
        if "intra_fid" in self.metrics:
            feats = self._features(fake)[1]
            if self._real_all_features is None:
                self._real_all_features = self._features(self.real_all)[1]
            results["intra_fid"], results["intra_fid_per_class"] = intra_frechet_distance(
                feats, requested, self._real_all_features, self.real_labels, k)
        return results

    def _confusion(self, gan):
        """D's confusion counts on held-out real data and a second draw of samples.

        A conditional GAN generates the fakes with the real examples' labels
        when the held-out set has labels of the GAN's kind (class ids), else
        with uniformly drawn classes; a D that takes labels judges each example
        at its own label.
        """
        real, labels = self.heldout if self.heldout is not None else (self.real, None)
        real = np.asarray(real, np.float32)[:self.num_samples]
        if not getattr(gan, "conditional", False):
            # A second latent draw: D is judged on samples the other metrics did not pick.
            fake = gan.generate(len(real), seed=self.seed + 1)
            return confusion_counts(gan.discriminate(real), gan.discriminate(fake),
                                    self.threshold)
        if labels is None or gan.multilabel:
            labels = gan.sample_labels(len(real), seed=self.seed + 2)
        labels = gan.check_labels(np.asarray(labels)[:len(real)], len(real))
        fake = gan.generate(len(real), seed=self.seed + 1, labels=labels)
        d_labels = labels if getattr(gan, "discriminator_takes_labels", False) else None
        return confusion_counts(gan.discriminate(real, d_labels),
                                gan.discriminate(fake, d_labels), self.threshold)

    def __call__(self, gan):
        fake = gan.generate(self.num_samples, seed=self.seed)
        results = self.evaluate_samples(fake)
        if "tstr" in self.metrics:
            labels = self.labeller(fake)[0].argmax(axis=1)
            results.update(tstr(fake, labels, *self.real_train, *self.heldout,
                                num_classes=getattr(self.labeller, "num_classes", None),
                                epochs=self.tstr_epochs, seed=self.seed))
        if "confusion" in self.metrics:
            results["confusion"] = self._confusion(gan)
        if any(m in self.metrics for m in CONDITIONAL_METRICS):
            results.update(self._per_class(gan))
        results["num_samples"] = self.num_samples
        return results


class EvaluationCallback(PeriodicWriter):
    """Runs an evaluator every ``every_n_steps`` training steps and records the results.

    ``evaluator`` is called with the model and returns a (possibly nested)
    dict of numbers, e.g. an `Evaluator`. Each evaluation

    * appends ``{"step": s, "eval/fid": ..., ...}`` (`flatten` with prefix
      ``eval/``) to ``metrics_path`` (e.g. the run's ``metrics.jsonl``, whose
      other rows carry the training losses), and
    * writes the same numbers as TensorBoard scalars to ``log_dir``.

    Either destination may be None. ``history`` keeps ``(step, flat dict)``.
    """

    def __init__(self, every_n_steps, evaluator, log_dir=None, metrics_path=None,
                 prefix="eval/"):
        if int(every_n_steps) < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        super().__init__(every_n_steps)
        self.evaluator = evaluator
        self.log_dir = log_dir
        self.metrics_path = metrics_path
        self.prefix = prefix
        self.history = []
        self._writer = None

    def evaluate(self, step):
        flat = flatten(self.evaluator(self.model), self.prefix)
        self.history.append((step, flat))
        if self.metrics_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.metrics_path)), exist_ok=True)
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": int(step), **flat}) + "\n")
        if self.log_dir:
            import tensorflow as tf

            if self._writer is None:
                os.makedirs(self.log_dir, exist_ok=True)
                self._writer = tf.summary.create_file_writer(self.log_dir)
            with self._writer.as_default():
                summaries.write_scalars({k: v for k, v in flat.items() if math.isfinite(v)}, step)
            self._writer.flush()
        return flat

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        step = self.host_step
        if self.due() and not getattr(self.model, "training_failed", False):
            self.evaluate(step)
