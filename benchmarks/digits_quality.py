"""Quality of generated 8x8 digits, measured with a classifier trained on the real digits.

    python -m benchmarks.digits_quality --samples=FILE.npz [--json=OUT.json]
    python -m benchmarks.digits_quality              # self-check on reference sets

``FILE.npz`` holds ``images``: float32 ``(N, 8, 8, 1)`` in [-1, 1], as
``python -m launch.sample --out=FILE.npz`` writes it, and for a class-conditional
run ``labels``, the class each sample was generated for (``launch.sample
--per_class=N``): then the agreement (the share the classifier assigns to the
requested class, overall and per class) and the intra-class Fréchet distance
(each class's samples against that class's train digits, next to the same
measurement for held-out real digits) are reported too.

A `tfgan2.classifier` CNN is trained on a stratified 75% of scikit-learn's
1,797 digits (the "train" split; the other 25% is "held-out") and cached as a
``.keras`` file. Against it the samples get:

* an Inception-Score analogue from the classifier's probabilities, over the
  whole set (one split; at most 10);
* the Fréchet distance and KID of the classifier's 128-d features against
  the train split, and improved precision/recall (k=3) in the same space;
* the share of samples predicted as each digit, and the share classified
  with a maximum probability above 0.9 ("confident");
* a memorization check: each sample's pixel-space L2 distance to its
  nearest train image, against the same distance for held-out images.
  Samples closer than the 1st percentile of the held-out distances count as
  near-copies (so real held-out digits score about 1%). The GAN usually sees
  all 1,797 digits while this check only knows the train split, so copies of
  held-out digits go unnoticed: the near-copy share is a lower bound
  (about 3/4 of the true copy rate).

Every number is printed next to the same measurement for the real held-out
digits, the floor a perfect generator would reach at that sample count
(Fréchet distance is biased upwards for small sets). Without ``--samples``
the self-check evaluates the held-out digits, uniform noise, a collapsed set
(six digits of two classes, repeated) and noisy copies of training images,
showing that the measurements separate them.
"""
import argparse
import functools
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

SEED = 0
HOLDOUT_FRACTION = 0.25
CLASSIFIER_EPOCHS = 30
NEIGHBOURS = 3
CONFIDENT = 0.9
COPY_PERCENTILE = 1.0
KID_SUBSETS = 50
IMAGE_SHAPE = (8, 8, 1)
# Bump when the classifier or its training changes, to invalidate cached models.
CLASSIFIER_VERSION = 1


def _default_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "tfgan2")
    try:
        os.makedirs(path, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path)
        probe.close()
        return path
    except OSError:
        return os.path.join(tempfile.gettempdir(), "tfgan2-cache")


def _as_digit_images(images, name="images"):
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{name} must have shape (N, 8, 8, 1), got {images.shape}")
    if len(images) < NEIGHBOURS + 1:
        raise ValueError(f"{name} needs at least {NEIGHBOURS + 1} samples, got {len(images)}")
    if not np.all(np.isfinite(images)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return images


def _load_or_train(images, labels, train_idx, val_idx, cache_dir):
    """The classifier for this split: loaded from the cache when present, else trained and saved."""
    import keras
    from tfgan2 import classifier

    digest = hashlib.sha256()
    digest.update(images.tobytes())
    digest.update(f"{CLASSIFIER_VERSION}-{CLASSIFIER_EPOCHS}-{SEED}-{HOLDOUT_FRACTION}".encode())
    cache_dir = cache_dir or _default_cache_dir()
    path = os.path.join(cache_dir, f"digits_classifier_{digest.hexdigest()[:16]}.keras")
    if os.path.exists(path):
        try:
            return keras.models.load_model(path, safe_mode=True), path, True
        except (OSError, ValueError) as exc:
            print(f"Cached classifier {path} unreadable ({exc}); retraining.", file=sys.stderr)
    model, _ = classifier.train_classifier(
        images[train_idx], labels[train_idx], num_classes=10, epochs=CLASSIFIER_EPOCHS,
        seed=SEED, validation_data=(images[val_idx], labels[val_idx]))
    os.makedirs(cache_dir, exist_ok=True)
    # Write then rename, so concurrent runs never read a half-written file.
    tmp = f"{path}.{os.getpid()}.tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
    return model, path, False


@functools.lru_cache(maxsize=4)
def reference(cache_dir=None):
    """Classifier, real-data features and reference values, computed once per process."""
    import pipelines
    from tfgan2 import classifier, metrics

    images, labels = pipelines.digits_arrays()
    train_idx, val_idx = classifier.stratified_split(labels, HOLDOUT_FRACTION, seed=SEED)
    model, path, cached = _load_or_train(images, labels, train_idx, val_idx, cache_dir)
    train_probs, train_feats = classifier.classifier_outputs(model, images[train_idx])
    val_probs, val_feats = classifier.classifier_outputs(model, images[val_idx])
    train_pixels = images[train_idx].reshape(len(train_idx), -1)
    val_nn = metrics.kth_nearest_distances(images[val_idx].reshape(len(val_idx), -1),
                                           train_pixels, k=1)
    return {
        "model": model, "path": path, "cached": cached,
        "images": images, "labels": labels, "train_idx": train_idx, "val_idx": val_idx,
        "train_feats": train_feats, "train_pixels": train_pixels,
        "accuracy": float(np.mean(val_probs.argmax(1) == labels[val_idx])),
        "heldout_nn": val_nn,
        "copy_threshold": float(np.percentile(val_nn, COPY_PERCENTILE)),
        "all_real_is": metrics.inception_score(
            np.concatenate([train_probs, val_probs]), splits=1),
    }


def evaluate_digit_samples(images, *, cache_dir=None):
    """Measures generated digits ``images`` ``(N, 8, 8, 1)`` in [-1, 1]; returns a dict.

    Keys: ``num_samples``, ``inception_score`` (one split), ``frechet_distance``,
    ``kid`` and ``kid_std`` (classifier features vs the train split, in the
    units of those features, std over random subsets), ``precision``,
    ``recall`` (k=3), ``class_shares`` (10 floats, predicted argmax),
    ``confident_share`` (max probability > 0.9), ``nn_distance_median``
    (pixel L2 to the nearest train image), ``near_copy_share``, and
    ``reference``: the classifier's held-out accuracy, the real-data scores
    and the memorization threshold. See the module docstring.
    """
    from tfgan2 import classifier, metrics

    images = _as_digit_images(images)
    ref = reference(cache_dir)
    probs, feats = classifier.classifier_outputs(ref["model"], images)
    precision, recall = metrics.precision_recall(ref["train_feats"], feats, k=NEIGHBOURS)
    nn = metrics.kth_nearest_distances(images.reshape(len(images), -1), ref["train_pixels"], k=1)
    kid, kid_std = metrics.kernel_inception_distance(feats, ref["train_feats"],
                                                     num_subsets=KID_SUBSETS, seed=SEED,
                                                     return_std=True)
    return {
        "num_samples": int(len(images)),
        "inception_score": metrics.inception_score(probs, splits=1),
        "frechet_distance": metrics.frechet_distance(feats, ref["train_feats"]),
        "kid": kid,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "class_shares": [float(s) for s in np.bincount(probs.argmax(1), minlength=10) / len(probs)],
        "confident_share": float(np.mean(probs.max(1) > CONFIDENT)),
        "nn_distance_median": float(np.median(nn)),
        "near_copy_share": float(np.mean(nn < ref["copy_threshold"])),
        "reference": {
            "classifier_heldout_accuracy": ref["accuracy"],
            "classifier_path": ref["path"],
            "num_train": int(len(ref["train_idx"])),
            "num_heldout": int(len(ref["val_idx"])),
            "all_real_inception_score": ref["all_real_is"],
            "heldout_nn_distance_median": float(np.median(ref["heldout_nn"])),
            "copy_threshold": ref["copy_threshold"],
        },
    }


def evaluate_conditional(images, labels, *, cache_dir=None):
    """Per-class measurements of digits generated for the classes ``labels``; returns a dict.

    ``agreement`` and ``agreement_per_class`` (`tfgan2.evaluation.classification_agreement`),
    ``intra_fid`` and ``intra_fid_per_class`` against the train split's
    digits of each class, and ``heldout_intra_fid``: the same for the real
    held-out digits (the floor at their sample count).
    """
    from tfgan2 import classifier, evaluation

    images = _as_digit_images(images)
    labels = np.asarray(labels).reshape(-1)
    ref = reference(cache_dir)
    probs, feats = classifier.classifier_outputs(ref["model"], images)
    agreement, per_class = evaluation.classification_agreement(probs, labels, 10)
    train_labels = ref["labels"][ref["train_idx"]]
    intra, intra_per_class = evaluation.intra_frechet_distance(
        feats, labels, ref["train_feats"], train_labels, 10)
    _, val_feats = classifier.classifier_outputs(ref["model"], ref["images"][ref["val_idx"]])
    floor, floor_per_class = evaluation.intra_frechet_distance(
        val_feats, ref["labels"][ref["val_idx"]], ref["train_feats"], train_labels, 10)
    return {"num_samples": int(len(images)), "agreement": agreement,
            "agreement_per_class": per_class, "intra_fid": intra,
            "intra_fid_per_class": intra_per_class, "heldout_intra_fid": floor,
            "heldout_intra_fid_per_class": floor_per_class}


def format_conditional(result):
    lines = [f"per class ({result['num_samples']} samples): agreement "
             f"{result['agreement']:.4f}, intra-FID {result['intra_fid']:.3f} (real held-out "
             f"{result['heldout_intra_fid']:.3f})",
             f"{'class':<8}{'agreement':>12}{'intra-FID':>12}{'held-out':>12}"]
    for c in range(10):
        lines.append(f"{c:<8}{result['agreement_per_class'][c]:>12.4f}"
                     f"{result['intra_fid_per_class'][c]:>12.3f}"
                     f"{result['heldout_intra_fid_per_class'][c]:>12.3f}")
    return "\n".join(lines)


def heldout_images(cache_dir=None):
    """The real held-out digits (never seen by the classifier)."""
    ref = reference(cache_dir)
    return ref["images"][ref["val_idx"]]


def self_check_sets(cache_dir=None, num=1000):
    """Reference sample sets: real held-out, noise, collapsed, and near-copies of training images."""
    ref = reference(cache_dir)
    rng = np.random.default_rng(SEED)
    images, labels, val_idx = ref["images"], ref["labels"], ref["val_idx"]
    # Collapse: three held-out digits each of classes 0 and 1, repeated (not training copies).
    picks = np.concatenate([val_idx[labels[val_idx] == c][:3] for c in (0, 1)])
    collapsed = images[np.resize(picks, num)]
    train_pick = rng.choice(ref["train_idx"], num, replace=True)
    copies = np.clip(images[train_pick] + rng.normal(0, 0.05, images[train_pick].shape), -1, 1)
    return {
        "real held-out": images[val_idx],
        "uniform noise": rng.uniform(-1, 1, (num,) + IMAGE_SHAPE).astype(np.float32),
        "collapsed 2-class": collapsed,
        "train copies": copies.astype(np.float32),
    }


def format_table(results):
    """A text table: one column per evaluated set, one row per measurement."""
    names = list(results)
    rows = [
        ("samples", "num_samples", "{:d}"),
        ("IS (1 split, max 10)", "inception_score", "{:.3f}"),
        ("Frechet dist. (features)", "frechet_distance", "{:.3f}"),
        ("KID (features)", "kid", "{:.4f}"),
        ("precision (k=3)", "precision", "{:.3f}"),
        ("recall (k=3)", "recall", "{:.3f}"),
        ("confident (p > 0.9)", "confident_share", "{:.3f}"),
        ("median L2 to train image", "nn_distance_median", "{:.3f}"),
        ("near-copies", "near_copy_share", "{:.3f}"),
    ]
    width = max(14, *(len(n) for n in names))
    lines = ["{:<26}".format("") + "".join(f"{n:>{width + 2}}" for n in names)]
    for label, key, fmt in rows:
        lines.append(f"{label:<26}" + "".join(
            f"{fmt.format(results[n][key]):>{width + 2}}" for n in names))
    for digit in range(10):
        lines.append(f"{'share of digit ' + str(digit):<26}" + "".join(
            f"{results[n]['class_shares'][digit]:>{width + 2}.3f}" for n in names))
    return "\n".join(lines)


def format_reference(ref):
    return "\n".join([
        f"classifier: {ref['classifier_path']}",
        f"  trained on {ref['num_train']} digits, held-out accuracy "
        f"{ref['classifier_heldout_accuracy']:.4f} on {ref['num_heldout']}",
        f"  IS of all {ref['num_train'] + ref['num_heldout']} real digits: "
        f"{ref['all_real_inception_score']:.3f}",
        f"  held-out median L2 to nearest train image: {ref['heldout_nn_distance_median']:.3f}; "
        f"near-copy threshold ({COPY_PERCENTILE:g}st percentile): {ref['copy_threshold']:.3f}",
        "  Frechet distance / KID / precision / recall are against the train-split features;",
        "  the 'real held-out' column is the floor a perfect generator reaches at its sample count.",
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", help=".npz file with key 'images' (N, 8, 8, 1) in [-1, 1]; "
                                          "without it, run the self-check")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--cache_dir", default=None,
                        help="where the trained classifier is cached (default ~/.cache/tfgan2)")
    args = parser.parse_args(argv)

    labels = None
    if args.samples:
        with np.load(args.samples) as data:
            if "images" not in data:
                parser.error(f"{args.samples} has no 'images' array (keys: {list(data.keys())})")
            samples = data["images"]
            labels = data["labels"] if "labels" in data else None
        sets = {"samples": samples, "real held-out": heldout_images(args.cache_dir)}
    else:
        sets = self_check_sets(args.cache_dir)
    results = {name: evaluate_digit_samples(x, cache_dir=args.cache_dir) for name, x in sets.items()}
    print(format_reference(results[next(iter(results))]["reference"]))
    print()
    print(format_table(results))
    if labels is not None:
        results["samples"]["conditional"] = evaluate_conditional(samples, labels,
                                                                 cache_dir=args.cache_dir)
        print()
        print(format_conditional(results["samples"]["conditional"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results["samples"] if args.samples else results, f, indent=2)
        print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()
