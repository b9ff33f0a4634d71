"""Small data: scikit-learn's digits as a PNG folder, trained through ``images.cfg``.

    python -m benchmarks.small_data                       # 100% and 10%, with/without augment
    python -m benchmarks.small_data --fractions=0.1 --augments=none,diffaugment
    python -m benchmarks.small_data --train_flag=--train_steps=1000
    python -m benchmarks.small_data --resolution=64 --channels=3   # tinted 64x64 RGB digits
    python -m benchmarks.small_data --report=none.json,diffaugment.json  # join runs

The 1,797 digits (8x8, 16 grey levels) are upsampled bilinearly to 32x32 (or
64x64) and written as PNG files (all of them, or a stratified share). With
``--channels=3`` each digit is drawn in its own colour on black (`tint`: hue
uniform, saturation 0.5-1, value 1), so the largest channel is the grey digit.
Each run is ``python -m launch.train --flagfile=images.cfg
--data_source=image_folder --channels=C --resolution=R --augment=A`` in a fresh
directory, exactly as a user would train a folder; 1,000 samples from
``launch.sample`` are reduced to their largest channel, shrunk back to 8x8
(mean of R/8 x R/8 blocks) and measured as `benchmarks.digits_quality`
does (classifier features trained on the real digits): Fréchet distance as a
ratio to the real-vs-real floor (held-out digits, upsampled and shrunk back
the same way, against the train split: the resampling alone moves the
Fréchet distance from 1.6 to about 22.5), class shares (ideal 0.1 each; also
printed as a pixel SVM reads them, a second opinion), and
the nearest-neighbour ratio (median pixel distance of the samples to their
nearest training digit over the same for the round-tripped held-out digits;
below 1 means samples sit closer to training images than new real digits do,
i.e. copies). RGB runs also report how far the samples' stroke colours are
from the real ones (`colour_distance`).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags


def define_flags():
    """The command line's flags; defined only when run as a script, so that tests can import
    the helpers beside other benchmark modules that define flags of the same names."""
    flags.DEFINE_list("fractions", ["1.0", "0.1"], "Shares of the digits in the folder.")
    flags.DEFINE_list("augments", ["none", "diffaugment"], "--augment values to compare.")
    flags.DEFINE_multi_string("train_flag", [], "Extra launch.train flag, repeatable.")
    flags.DEFINE_string("config", "images.cfg", "Flagfile to train.")
    flags.DEFINE_enum("resolution", "32", ["32", "64"], "Size of the folder's images.")
    flags.DEFINE_enum("channels", "1", ["1", "3"], "1: grey digits; 3: each digit tinted "
                      "its own colour on black.")
    flags.DEFINE_string("keep", None, "Keep the folders and runs here instead of a temp dir.")
    flags.DEFINE_string("json", None, "Also write the results table as JSON here.")
    flags.DEFINE_string("augment_grid", None, "Write what D sees to PATH_diffaugment.png and "
                        "PATH_ada.png: 8 real digits of the folder (--resolution, --channels), "
                        "each followed by 7 augmentations "
                        "(DiffAugment; ADA at p=0.6), then exit.")
    flags.DEFINE_list("warp_check", None, "Print the class shares the classifier gives the "
                      "held-out real digits (upsampled to 32x32) under random smooth warps of "
                      "these amplitudes in pixels (e.g. 0,1,2,3), then exit: how far wobbly "
                      "strokes alone move the shares.")
    flags.DEFINE_list("report", None, "Print the table and targets of these --json files of "
                      "earlier runs (e.g. runs made side by side), then exit.")


FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESOLUTION = 32
TINT_SEED = 1


def export_digits(folder, fraction, seed=0, resolution=RESOLUTION, channels=1):
    """Write a stratified ``fraction`` of the digits as ``resolution``-square PNGs, grey
    (``channels=1``) or tinted (``channels=3``, see `tint`); returns the count. A digit's
    colour depends on its index among all 1,797, so every fraction draws the same digit
    in the same colour."""
    from PIL import Image

    import pipelines

    images, labels = pipelines.digits_arrays()
    rng = np.random.default_rng(seed)
    keep = np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[:max(1, int(round(fraction * np.sum(
            labels == c))))] for c in range(10)])
    big = folder_images(images, resolution, channels)[keep]
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(big):
        pixels = np.clip(np.rint((img + 1.0) * 127.5), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels[..., 0], "L") if channels == 1 else Image.fromarray(
            pixels, "RGB")
        image.save(os.path.join(folder, f"digit_{i:04d}.png"))
    return len(keep)


def upsample(images, resolution=RESOLUTION):
    """``(N, 8, 8, 1) -> (N, R, R, 1)`` bilinearly, as the folder's digits are made."""
    import pipelines

    return pipelines.upsample_digits(images, resolution)


def folder_images(images, resolution=RESOLUTION, channels=1):
    """All 8x8 digits ``images`` as the folder holds them: upsampled, and `tint`ed for
    ``channels=3`` (before any subset is taken, so a digit's colour follows its index)."""
    big = upsample(images, resolution)
    return tint(big) if channels == 3 else big


def tint(images, seed=TINT_SEED):
    """Grey images ``(N, H, W, 1)`` in [-1, 1] drawn in colour on black: with intensity
    t = (x + 1) / 2 and image i's colour c_i (hue uniform, saturation uniform in
    [0.5, 1], value 1, so max(c_i) = 1), the result is 2 t c_i - 1, ``(N, H, W, 3)``.
    The largest channel gives the grey image back exactly; c_i is a function of
    (seed, i) only."""
    import colorsys

    rng = np.random.default_rng(seed)
    n = len(images)
    hues, saturations = rng.uniform(0.0, 1.0, n), rng.uniform(0.5, 1.0, n)
    colours = np.array([colorsys.hsv_to_rgb(h, s, 1.0) for h, s in zip(hues, saturations)],
                       dtype=np.float32)
    return (images + 1.0) * colours[:, None, None, :] - 1.0


def stroke_colours(images):
    """Each RGB image's stroke colour ``(N, 3)``: the least-squares c in rgb = t c, with
    rgb and t (the largest channel) mapped to [0, 1]; exactly c_i for a `tint`ed image."""
    rgb = (np.asarray(images, np.float64) + 1.0) / 2.0
    t = rgb.max(axis=-1, keepdims=True)
    return (t * rgb).sum(axis=(1, 2)) / np.maximum((t * t).sum(axis=(1, 2)), 1e-12)


def colour_distance(samples, real_train, real_heldout):
    """Fréchet distance of the samples' `stroke_colours` to the real training digits'
    (3-d Gaussians), and of held-out real digits' to the same: ``(samples, floor)``."""
    from tfgan2 import metrics

    train = stroke_colours(real_train)
    return (metrics.frechet_distance(stroke_colours(samples), train),
            metrics.frechet_distance(stroke_colours(real_heldout), train))


def round_trip(images, resolution=RESOLUTION):
    """8x8 digits as a perfect generator of the folder would give them back: upsampled
    like the export, then shrunk (the resampling alone blurs them)."""
    return shrink(upsample(images, resolution))


def shrink(images):
    """``(N, R, R, C) -> (N, 8, 8, 1)``: the largest channel (the grey digit of a tinted
    one), averaged over (R/8)x(R/8) blocks."""
    images = np.asarray(images).max(axis=-1)
    n, size = len(images), images.shape[1]
    k = size // 8
    return images.reshape(n, 8, k, 8, k).mean(axis=(2, 4))[..., None]


def warp(images, amplitude, seed=0):
    """Each image of ``(N, 32, 32, 1)`` resampled (nearest pixel, clamped at the border)
    along its own smooth random displacement field: a 4x4 grid of N(0, 1) offsets per
    axis, upsampled bicubically to 32x32 and scaled by ``amplitude`` pixels. Strokes
    wobble as a generator's do while the digit keeps its class; ``amplitude=0`` is the
    identity."""
    import tensorflow as tf

    n, height, width = images.shape[:3]
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((n * 2, 4, 4, 1)).astype(np.float32)
    field = tf.image.resize(coarse, (height, width), method="bicubic").numpy()
    field = amplitude * field.reshape(n, 2, height, width)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    src_rows = np.clip(np.rint(rows + field[:, 0]), 0, height - 1).astype(np.int64)
    src_cols = np.clip(np.rint(cols + field[:, 1]), 0, width - 1).astype(np.int64)
    return images[np.arange(n)[:, None, None], src_rows, src_cols]


def warp_check(amplitudes):
    """Print the class shares of the held-out real digits, upsampled, warped and shrunk
    back like samples: the part of a share deviation that wobbly strokes alone explain."""
    from benchmarks import digits_quality

    held = digits_quality.heldout_images()
    big = upsample(held)
    print(f"{len(held)} held-out real digits; class shares by digit 0-9")
    for amplitude in amplitudes:
        result = digits_quality.evaluate_digit_samples(shrink(warp(big, amplitude)))
        shares = np.asarray(result["class_shares"])
        print(f"warp {amplitude:g} px: {format_shares(shares)}  "
              f"(min-max {shares.min():.3f}-{shares.max():.3f}, FD "
              f"{result['frechet_distance']:.1f})")


def format_shares(shares):
    """Ten class shares as ``0.098 0.109 ...``, digit 0 first."""
    return " ".join(f"{x:.3f}" for x in shares)


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def pixel_classifier_shares(digits):
    """Class shares of 8x8 digits ``(N, 8, 8, 1)`` by a second classifier, independent of
    the benchmark's CNN: an RBF support vector machine on the 64 pixels, fitted to the
    round-tripped digits of the CNN's train split (held-out accuracy about 0.99). Where the
    two classifiers disagree about a digit's share, that share says as much about how the
    CNN reads the samples' strokes as about how often G draws the digit."""
    from sklearn.svm import SVC

    from benchmarks import digits_quality
    from tfgan2 import classifier

    global _PIXEL_CLASSIFIER
    if _PIXEL_CLASSIFIER is None:
        import pipelines

        images, labels = pipelines.digits_arrays()
        train, _ = classifier.stratified_split(labels, digits_quality.HOLDOUT_FRACTION,
                                               seed=digits_quality.SEED)
        _PIXEL_CLASSIFIER = SVC(C=10.0, gamma="scale").fit(
            round_trip(images[train]).reshape(len(train), -1), labels[train])
    predicted = _PIXEL_CLASSIFIER.predict(np.asarray(digits).reshape(len(digits), -1))
    return np.bincount(predicted, minlength=10) / len(digits)


_PIXEL_CLASSIFIER = None


def measure(samples):
    """The row of measurements of samples ``(N, R, R, C)`` in [-1, 1] of the digits folder
    (see the module docstring); RGB samples also get ``colour_distance`` and its floor."""
    import pipelines
    from benchmarks import digits_quality
    from tfgan2 import classifier

    samples = np.asarray(samples)
    digits = shrink(samples)
    result = digits_quality.evaluate_digit_samples(digits)
    pixel_shares = pixel_classifier_shares(digits)
    real = digits_quality.evaluate_digit_samples(round_trip(digits_quality.heldout_images(),
                                                            samples.shape[1]))
    shares = np.asarray(result["class_shares"])
    colour = {}
    if samples.shape[-1] == 3:
        images, labels = pipelines.digits_arrays()
        train, held = classifier.stratified_split(labels, digits_quality.HOLDOUT_FRACTION,
                                                  seed=digits_quality.SEED)
        tinted = tint(images)        # 8x8 is enough: a tinted digit's colour is exact at any size
        colour_fd, colour_floor = colour_distance(samples, tinted[train], tinted[held])
        colour = {"colour_distance": colour_fd, "colour_distance_floor": colour_floor}
    return {
        "frechet_distance": result["frechet_distance"],
        "fd_ratio": result["frechet_distance"] / real["frechet_distance"],
        "inception_score": result["inception_score"],
        "share_min": float(shares.min()), "share_max": float(shares.max()),
        "class_shares": [round(float(x), 4) for x in shares],
        "pixel_classifier_shares": [round(float(x), 4) for x in pixel_shares],
        "nn_ratio": result["nn_distance_median"] / real["nn_distance_median"],
        "near_copy_share": result["near_copy_share"],
        **colour,
    }


# The targets: with all the data, FD <= 2x the floor and every class share within
# 0.07-0.13; with 10% of it, augmentation at least halves FD and samples are no copies.
FD_RATIO_MAX = 2.0
SHARE_RANGE = (0.07, 0.13)
AUGMENTED_FD_MAX = 0.5
NN_RATIO_MIN = 0.9
# The lowest Fréchet distance, in units of the floor, that 1,000 samples can expect: a new
# real sample of that size (the floor's 450 held-out digits fitted as a + b/N over
# subsets of 100-450 and taken at N = 1,000; copies of all the training digits, resampled
# to 1,000, score 1.00x for the 10% folder and 1.04x for all of it).
REAL_SAMPLE_FD_RATIO = 0.96


def verdicts(rows):
    """Lines ``measure  value  target  PASS|MISS`` for the rows that have a target.

    Full-data rows (fraction 1) are held to ``FD_RATIO_MAX`` and ``SHARE_RANGE``;
    each augmented row of a smaller fraction is compared with that fraction's
    ``augment == "none"`` row (FD ratio <= ``AUGMENTED_FD_MAX``) and held to
    ``NN_RATIO_MIN``. Rows without a partner are skipped.

    The halving is out of reach when it asks for less than a real sample scores
    (``AUGMENTED_FD_MAX * fd_ratio_none < REAL_SAMPLE_FD_RATIO``, i.e. the run without
    augmentation is already within about 2x of the floor): new real digits, the best a
    generator can expect, and copies of its training digits would miss it. Such pairs get
    a note line (no verdict) after their MISS, so a reader can tell a weak augmentation
    from a strong baseline.
    """
    lines = []

    def line(measure, value, target, ok):
        lines.append(f"{measure:<58} {value:>11}  {target:>10}  {'PASS' if ok else 'MISS'}")

    def key(r, augment):
        return (_folder(r), r["fraction"], augment)

    by_key = {key(r, r["augment"]): r for r in rows}
    for r in rows:
        tag = f"{r['fraction']:.0%} of the data, --augment={r['augment']}"
        if _folder(r) != _folder({}):
            tag = f"{_folder(r)}, {tag}"
        if r["fraction"] == 1.0:
            line(f"{tag}: FD / floor", f"{r['fd_ratio']:.2f}", f"<= {FD_RATIO_MAX:g}",
                 r["fd_ratio"] <= FD_RATIO_MAX)
            low, high = SHARE_RANGE
            line(f"{tag}: class shares", f"{r['share_min']:.3f}-{r['share_max']:.3f}",
                 f"{low:g}-{high:g}", low <= r["share_min"] and r["share_max"] <= high)
        elif r["augment"] != "none" and key(r, "none") in by_key:
            none = by_key[key(r, "none")]
            ratio = r["frechet_distance"] / none["frechet_distance"]
            line(f"{tag}: FD / FD without", f"{ratio:.2f}", f"<= {AUGMENTED_FD_MAX:g}",
                 ratio <= AUGMENTED_FD_MAX)
            needed = AUGMENTED_FD_MAX * none["fd_ratio"]   # in units of the floor
            if needed < REAL_SAMPLE_FD_RATIO and ratio > AUGMENTED_FD_MAX:
                lines.append(f"  note: halving needs {needed:.2f}x the floor; 1,000 new real "
                             f"digits expect {REAL_SAMPLE_FD_RATIO:g}x, so no generator "
                             f"can meet it against this run without augmentation "
                             f"({none['fd_ratio']:.2f}x the floor)")
            line(f"{tag}: NN ratio", f"{r['nn_ratio']:.2f}", f">= {NN_RATIO_MIN:g}",
                 r["nn_ratio"] >= NN_RATIO_MIN)
    return lines


def _folder(row):
    """``"32x32x1"``: the size and channels of the folder a row was trained on (rows of
    files written before RGB runs existed are 32x32 grey)."""
    resolution = row.get("resolution", RESOLUTION)
    return f"{resolution}x{resolution}x{row.get('channels', 1)}"


def augment_grids(prefix, resolution=RESOLUTION, channels=1):
    import pipelines
    import tfgan2

    images, _ = pipelines.digits_arrays()
    real = folder_images(images, resolution, channels)[:8]
    for name, layer in (("diffaugment", tfgan2.augment.DiffAugment()),
                        ("ada", tfgan2.augment.AdaptiveAugment(target=None, initial_p=0.6))):
        grid = tfgan2.augment.grid_of_augmentations(layer, real, num_versions=8)
        path = f"{prefix}_{name}.png"
        tfgan2.visualize.save_image_grid(path, grid, cols=8, scale=max(1, 64 // resolution))
        print(f"wrote {path}")


def report(rows):
    """Print the results table and the target verdicts."""
    print(f"\n{'folder':>8} {'data':>5} {'images':>6} {'augment':>26} {'FD':>7} {'FD/floor':>8} "
          f"{'IS':>6} {'shares min-max':>15} {'NN ratio':>8} {'min':>5}")
    for r in rows:
        print(f"{_folder(r):>8} {r['fraction']:>5.0%} {r['images']:>6} {r['augment']:>26} "
              f"{r['frechet_distance']:>7.2f} {r['fd_ratio']:>8.2f} {r['inception_score']:>6.2f} "
              f"{r['share_min']:>7.3f}-{r['share_max']:.3f} {r['nn_ratio']:>8.2f} "
              f"{r['seconds'] / 60:>5.1f}")
    for r in rows:
        if r.get("train_flags"):
            print(f"{r['fraction']:>6.0%} {r['augment']:>30}: trained with "
                  f"{' '.join(r['train_flags'])}")
        if "class_shares" in r:
            shares = np.asarray(r["class_shares"])
            print(f"{r['fraction']:>6.0%} {r['augment']:>30}: class shares by digit 0-9 "
                  f"{format_shares(shares)} (rarest {int(shares.argmin())}, "
                  f"commonest {int(shares.argmax())})")
        if "pixel_classifier_shares" in r:
            shares = np.asarray(r["pixel_classifier_shares"])
            print(f"{r['fraction']:>6.0%} {r['augment']:>30}: the same by a pixel SVM "
                  f"{format_shares(shares)} (min-max {shares.min():.3f}-{shares.max():.3f}; "
                  f"a second opinion, not a target)")
        if "colour_distance" in r:
            print(f"{r['fraction']:>6.0%} {r['augment']:>30}: stroke colours' Fréchet distance "
                  f"{r['colour_distance']:.4f} (held-out real digits "
                  f"{r['colour_distance_floor']:.4f}; not a target)")
    print()
    for line in verdicts(rows):
        print(line)


def main(argv):
    del argv
    if FLAGS.augment_grid:
        augment_grids(FLAGS.augment_grid, int(FLAGS.resolution), int(FLAGS.channels))
        return
    if FLAGS.warp_check:
        warp_check([float(a) for a in FLAGS.warp_check])
        return
    if FLAGS.report:
        rows = []
        for path in FLAGS.report:
            with open(path, encoding="utf-8") as f:
                rows.extend(json.load(f))
        report(rows)
        return
    base = FLAGS.keep or tempfile.mkdtemp(prefix="tfgan2_small_data_")
    rows = []
    resolution, channels = int(FLAGS.resolution), int(FLAGS.channels)
    for fraction in (float(f) for f in FLAGS.fractions):
        folder = os.path.join(base, f"digits{resolution}x{channels}_{fraction:g}")
        count = export_digits(folder, fraction, resolution=resolution, channels=channels)
        for spec in FLAGS.augments:
            name = f"{fraction:g}_{spec.replace(':', '_').replace('+', '_')}"
            if (resolution, channels) != (RESOLUTION, 1):
                name = f"{resolution}x{channels}_{name}"
            workdir = os.path.join(base, "runs", name)
            args = ["launch.train", f"--flagfile={os.path.join(ROOT, FLAGS.config)}",
                    f"--workdir={workdir}", f"--data_dir={folder}", f"--channels={channels}",
                    f"--resolution={resolution}", f"--augment={spec}", *FLAGS.train_flag]
            print(f"[{fraction:g} of the data = {count} images, --augment={spec}] "
                  f"python -m {' '.join(args)}", flush=True)
            seconds = _run(args, cwd=base)
            out = os.path.join(base, f"{name}.npz")
            _run(["launch.sample", f"--workdir={workdir}", "--num=1000", f"--out={out}"], base)
            row = {"fraction": fraction, "images": count, "augment": spec, "seconds": seconds,
                   "resolution": resolution, "channels": channels,
                   "train_flags": list(FLAGS.train_flag),
                   **measure(np.load(out)["images"])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    report(rows)
    if FLAGS.json:
        with open(FLAGS.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
