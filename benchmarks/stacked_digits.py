"""Stacked digits: mode coverage with the Stacked MNIST protocol, trained through the launcher.

    python -m benchmarks.stacked_digits                   # dcgan, pack 2, pack 4; 20 min each
    python -m benchmarks.stacked_digits --minutes=30 --contenders=dcgan,pack4
    python -m benchmarks.stacked_digits --contender='resnet=--network=resnet --minibatch_std=0'
    python -m benchmarks.stacked_digits --real_only --figures=benchmarks/stacked_digits_real
    python -m benchmarks.stacked_digits --samples=RUN/samples.npz,b.npz --figures=PREFIX
    python -m benchmarks.stacked_digits --report=a.json,b.json   # join runs made apart

Data (`pipelines.stacked_digits`, ``--data_source=stacked_digits``): three
independently drawn scikit-learn digits, upsampled bilinearly to 32x32, as the R, G
and B channels of one image; the 1,000 digit triples ("modes") are equally likely.
Each contender is ``python -m launch.train --flagfile=images.cfg
--data_source=stacked_digits --resolution=32 --channels=3 FLAGS`` in a fresh run
directory, trained for the same wall time: a calibration run measures the
contender's steps per second (after its start-up and first compilation), and the
real run gets ``--train_steps`` = rate x ``--minutes``, so a learning-rate decay
still ends at 0. Then ``launch.sample`` draws 26,000 samples (PacGAN's protocol,
Lin et al. 2018, arXiv:1712.04086) from the run's (EMA) generator.

Each channel of a sample is shrunk back to 8x8 (mean of 4x4 blocks) and read by the
digit classifier of `benchmarks.digits_quality` (a CNN trained on the 75% "train"
split of the 8x8 digits), giving a triple per sample:

* modes covered: distinct triples among the samples (of 1,000);
* KL(samples || uniform) = sum_k p_k log(1000 p_k) over the triples' histogram p
  (0 for a uniform histogram, log 1000 = 6.91 for a single mode);
* legible share: samples whose three digits are each read with probability >= 0.9
  (blurry blobs still land in many modes; legibility says whether they are digits).

Beside each number stands the real-data floor: 26,000 stacked images drawn from the
25% held-out digits (never seen by the classifier), upsampled and shrunk back like
samples: what a perfect generator would score at this sample count.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_MODES = 1000
NUM_SAMPLES = 26000
LEGIBLE = 0.9
RESOLUTION = 32
FLOOR_SEED = 12345
# Every contender trains with these on top of the flagfile (the data and its size).
DATA_FLAGS = ("--data_source=stacked_digits", f"--resolution={RESOLUTION}", "--channels=3")
# Contenders by name: extra launch.train flags on top of --config and DATA_FLAGS.
# Packing m at PacGAN's semantics: D judges as many groups per step (64) as the
# unpacked run judges images, so the batch is m x 64 (tfgan2.GAN(pack=m) packs the
# batch it is given into batch / m groups).
# The *_batch64 rows pack the flagfile's batch as it is (D judges 64 / m groups).
CONTENDERS = {
    "dcgan": (),
    "pack2": ("--pack=2", "--batch_size=128"),
    "pack4": ("--pack=4", "--batch_size=256"),
    "pack2_batch64": ("--pack=2",),
    "pack4_batch64": ("--pack=4",),
    # dcgan's G has batch norm: PacGAN's code calls G once per pack slot.
    "pack2_per_slot": ("--pack=2", "--batch_size=128", "--pack_generator_per_slot"),
    "pack4_per_slot": ("--pack=4", "--batch_size=256", "--pack_generator_per_slot"),
}
DEFAULT_CONTENDERS = ("dcgan", "pack2", "pack4")
# Published rows (28x28 Stacked MNIST, 26,000 samples, millions of images seen):
# (modes, KL). PacGAN table 2 (Lin et al. 2018); R3GAN table 3 (Huang et al. 2024).
PUBLISHED = (("DCGAN (PacGAN table 2)", 78.9, 4.50), ("PacDCGAN2", 1000.0, 0.06),
             ("StyleGAN2 (R3GAN table 3)", 940.0, 0.42), ("R3GAN", 1000.0, 0.029))


def define_flags():
    """The command line's flags; defined only when run as a script (tests import the
    helpers beside other modules that define flags of the same names)."""
    flags.DEFINE_list("contenders", list(DEFAULT_CONTENDERS), "Contenders from the built-in "
                      "table: "
                      + "; ".join(f"{k}: {' '.join(v) or 'the flagfile as is'}"
                                  for k, v in CONTENDERS.items()) + ".")
    flags.DEFINE_multi_string("contender", [], "Another contender, NAME=FLAGS (launch.train "
                              "flags separated by spaces), e.g. 'r3gan=--network=r3gan "
                              "--minibatch_std=0 --loss=relativistic_pairing --r2_gamma=0.05'; "
                              "repeatable.")
    flags.DEFINE_float("minutes", 20.0, "Training wall time of each contender, in minutes "
                       "(steps = measured steps per second x this).")
    flags.DEFINE_float("calibrate_seconds", 90.0, "Seconds of training (after the first "
                       "compilation) over which a contender's speed is measured.")
    flags.DEFINE_integer("train_steps", 0, "If > 0, train every contender this many steps "
                         "instead of for --minutes (no calibration).")
    flags.DEFINE_string("config", "images.cfg", "Flagfile every contender starts from.")
    flags.DEFINE_integer("num_samples", NUM_SAMPLES, "Samples measured per contender (and "
                         "real images in the floor).")
    flags.DEFINE_string("keep", None, "Keep the runs here (default: a temporary directory).")
    flags.DEFINE_string("json", None, "Also write the results as JSON here.")
    flags.DEFINE_string("figures", None, "Write PREFIX_<name>_grid.png (64 samples titled "
                        "with the triple read in each; red: not legible), "
                        "PREFIX_<name>_channels.png (16 samples and their channels in grey, "
                        "each digit with its probability) and PREFIX_histogram.png (the mode "
                        "histogram of every row).")
    flags.DEFINE_bool("real_only", False, "Measure the real floor only (and draw its "
                      "figures with --figures), then exit.")
    flags.DEFINE_list("samples", None, "Measure the samples of these .npz files (launch.sample "
                      "--out; each named by its file, or by its directory when the file is "
                      "samples.npz) instead of training, then exit.")
    flags.DEFINE_list("report", None, "Print the table of these --json files, then exit.")


FLAGS = flags.FLAGS


# ----------------------------------------------------------------------- the measures
def mode_histogram(triples):
    """Counts ``(1000,)`` of the digit triples ``(N, 3)`` over the modes
    ``100 r + 10 g + b``."""
    import pipelines

    return np.bincount(pipelines.mode_ids(triples), minlength=NUM_MODES)


def modes_covered(counts):
    """Modes holding at least one sample."""
    return int(np.sum(np.asarray(counts) > 0))


def kl_to_uniform(counts):
    """KL(p || uniform over the modes) = sum_k p_k log(K p_k), p = counts / sum(counts);
    terms with p_k = 0 count 0. In nats: 0 when uniform, log K for a single mode."""
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or counts.sum() <= 0 or np.any(counts < 0):
        raise ValueError(f"counts must be a 1-D histogram with a positive total, got shape "
                         f"{counts.shape} and total {counts.sum()}.")
    p = counts / counts.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(len(counts) * p[nz])))


def legible(probabilities, threshold=LEGIBLE):
    """``(N,)`` bool: every channel's digit read with probability >= ``threshold``, from
    the classifier's ``(N, 3, 10)`` probabilities."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 3 or probabilities.shape[1:] != (3, 10):
        raise ValueError(f"probabilities must have shape (N, 3, 10), got "
                         f"{probabilities.shape}.")
    return np.all(probabilities.max(axis=-1) >= threshold, axis=1)


def channel_probabilities(images):
    """The digit classifier's ``(N, 3, 10)`` probabilities for each channel of
    ``(N, R, R, 3)`` images in [-1, 1], each shrunk to 8x8 (mean of (R/8)^2 blocks)."""
    from benchmarks import digits_quality, small_data
    from tfgan2 import classifier

    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] % 8 \
            or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be (N, R, R, 3) with R a multiple of 8, got "
                         f"{images.shape}.")
    n, size = len(images), images.shape[1]
    channels = np.moveaxis(images, -1, 1).reshape(n * 3, size, size, 1)
    model = digits_quality.reference()["model"]
    probs = [classifier.classifier_outputs(model, small_data.shrink(channels[i:i + 30000]))[0]
             for i in range(0, len(channels), 30000)]
    return np.concatenate(probs).reshape(n, 3, 10)


def scores(probabilities):
    """The measurements of samples from their ``(N, 3, 10)`` channel probabilities."""
    triples = np.asarray(probabilities).argmax(axis=-1)
    counts = mode_histogram(triples)
    readable = legible(probabilities)
    return {"num_samples": int(len(triples)), "modes": modes_covered(counts),
            "kl": kl_to_uniform(counts), "legible_share": float(readable.mean()),
            "legible_modes": modes_covered(mode_histogram(triples[readable])),
            "counts": counts.tolist()}


def real_images(num=NUM_SAMPLES, seed=FLOOR_SEED, resolution=RESOLUTION):
    """``(images, triples)``: ``num`` stacked images of the held-out digits."""
    from benchmarks import digits_quality
    import pipelines

    ref = digits_quality.reference()
    held = (ref["images"][ref["val_idx"]], ref["labels"][ref["val_idx"]])
    chunk = min(num, 2000)
    images, triples = [], []
    for x, y in pipelines.stacked_digits(chunk, resolution, digits=held, labels=True,
                                         seed=seed).take(-(-num // chunk)):
        images.append(x.numpy())
        triples.append(y.numpy())
    return np.concatenate(images)[:num], np.concatenate(triples)[:num]


def real_floor(num=NUM_SAMPLES):
    """`scores` of ``num`` held-out real stacked images, plus ``triple_accuracy``: the share
    whose three digits the classifier reads as the digits drawn."""
    images, triples = real_images(num)
    probs = channel_probabilities(images)
    row = scores(probs)
    row["triple_accuracy"] = float(np.mean(np.all(probs.argmax(-1) == triples, axis=1)))
    return row, images, probs


# ----------------------------------------------------------------------- the pictures
def save_grid(path, images, probabilities, title=None, num=64):
    """The first ``num`` images, each titled with the triple read in it (red when not
    legible)."""
    import tfgan2

    probabilities = np.asarray(probabilities[:num])
    triples = probabilities.argmax(-1)
    ok = legible(probabilities)
    tfgan2.visualize.save_labelled_grid(
        path, images[:num], ["".join(str(d) for d in t) for t in triples], title=title,
        cols=8, colours=["black" if k else "red" for k in ok])


def save_channels(path, images, probabilities, title=None, num=16):
    """The first ``num`` images, two to a row, each followed by its R, G and B channels in
    grey: the image is titled with the triple read in it, each channel with its digit and
    probability (red below 0.9)."""
    import tfgan2

    images, probabilities = np.asarray(images[:num]), np.asarray(probabilities[:num])
    tiles, labels, colours = [], [], []
    for image, probs in zip(images, probabilities):
        tiles.append(image)
        labels.append("".join(str(p.argmax()) for p in probs))
        colours.append("black" if legible(probs[None])[0] else "red")
        for c, p in enumerate(probs):
            tiles.append(np.repeat(image[..., c:c + 1], 3, axis=-1))
            labels.append(f"{'RGB'[c]} {p.argmax()} {p.max():.2f}")
            colours.append("black" if p.max() >= LEGIBLE else "red")
    tfgan2.visualize.save_labelled_grid(path, np.stack(tiles), labels, title=title, cols=8,
                                        colours=colours)


def save_histogram(path, rows):
    """One panel per ``(name, counts)``: samples per mode (0-999 as 100 r + 10 g + b) as a
    10 x 100 heat map, with the counts sorted beside it, and the uniform expectation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 2, figsize=(13, 2.2 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1]})
    for (name, counts), (heat, ranked) in zip(rows, axes):
        counts = np.asarray(counts, np.float64)
        expected = counts.sum() / NUM_MODES
        shown = heat.imshow(counts.reshape(10, 100) / expected, aspect="auto", cmap="magma",
                            vmin=0, vmax=2, interpolation="nearest")
        heat.set_yticks(range(10))
        heat.set_ylabel("R digit", fontsize=8)
        heat.set_xlabel("10 G + B", fontsize=8)
        heat.tick_params(labelsize=7)
        heat.set_title(f"{name}: {modes_covered(counts)} modes, KL {kl_to_uniform(counts):.3f}"
                       f" (samples per mode / expected; black: none)", fontsize=9)
        fig.colorbar(shown, ax=heat, fraction=0.02, pad=0.01)
        ranked.plot(np.sort(counts)[::-1], color="tab:blue")
        ranked.axhline(expected, color="tab:red", lw=0.8, ls="--")
        ranked.set_xlim(0, NUM_MODES)
        ranked.set_xlabel("modes, commonest first", fontsize=8)
        ranked.set_ylabel("samples", fontsize=8)
        ranked.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------- training
def contender_table(names, extra):
    """``[(name, flags)]``: ``names`` from `CONTENDERS`, then each ``NAME=FLAGS`` of
    ``extra``; a clear error for an unknown name, a missing ``=`` or a repeated name."""
    table = []
    for name in names:
        if name not in CONTENDERS:
            raise ValueError(f"Unknown contender {name!r}: the built-in ones are "
                             f"{', '.join(CONTENDERS)}; add others with --contender=NAME=FLAGS.")
        table.append((name, tuple(CONTENDERS[name])))
    for spec in extra:
        name, sep, flag_text = spec.partition("=")
        if not sep or not name.strip() or not name.strip().isidentifier():
            raise ValueError(f"--contender={spec!r}: expected NAME=FLAGS with NAME a word, "
                             f"e.g. 'resnet=--network=resnet --loss=hinge'.")
        table.append((name.strip(), tuple(flag_text.split())))
    seen = [n for n, _ in table]
    repeated = sorted({n for n in seen if seen.count(n) > 1})
    if repeated:
        raise ValueError(f"Contender names must be unique; repeated: {', '.join(repeated)}.")
    return table


def train_args(config, workdir, extra):
    return ["launch.train", f"--flagfile={os.path.join(ROOT, config)}", f"--workdir={workdir}",
            *DATA_FLAGS, *extra]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _run(args, cwd, log):
    start = time.perf_counter()
    with open(log, "a", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=_env(), stdout=out,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed (exit {proc.returncode}); see {log}")
    return time.perf_counter() - start


def _steps_logged(path):
    """The steps of the rows in ``metrics.jsonl`` (empty when it does not exist yet)."""
    if not os.path.exists(path):
        return []
    steps = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                steps.append(int(json.loads(line)["step"]))
            except (ValueError, KeyError):
                pass  # a line being written
    return steps


def calibrate(config, extra, base, log, seconds):
    """Training steps per second of a contender: trained in a throwaway run directory
    (logging every 50 steps), timed from its first logged row to its last within
    ``seconds``, then stopped with SIGTERM."""
    workdir = tempfile.mkdtemp(prefix="calibrate_", dir=base)
    args = train_args(config, workdir, extra) + [
        "--train_steps=1000000", "--log_every=50", "--sample_every=0",
        "--checkpoint_every=0", "--notensorboard"]
    metrics = os.path.join(workdir, "metrics.jsonl")
    with open(log, "a", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", *args], cwd=base, env=_env(),
                                stdout=out, stderr=subprocess.STDOUT)
        seen, first = 0, None
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                steps = _steps_logged(metrics)
                if len(steps) > seen:
                    seen, now = len(steps), time.perf_counter()
                    if first is None:
                        first = (now, steps[-1])
                    last = (now, steps[-1])
                    if now - first[0] >= seconds and last[1] > first[1]:
                        break
            if proc.poll() is not None:
                sys.exit(f"calibration run {' '.join(args)} ended (exit {proc.returncode}); "
                         f"see {log}")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            shutil.rmtree(workdir, ignore_errors=True)
    return (last[1] - first[1]) / (last[0] - first[0])


def run_contender(name, extra, base):
    """Train, sample and measure one contender; returns its row."""
    log = os.path.join(base, f"{name}.log")
    steps, rate = FLAGS.train_steps, None
    if not steps:
        rate = calibrate(FLAGS.config, extra, base, log, FLAGS.calibrate_seconds)
        steps = max(100, int(rate * FLAGS.minutes * 60) // 100 * 100)
    workdir = os.path.join(base, "runs", name)
    args = train_args(FLAGS.config, workdir, extra) + [f"--train_steps={steps}"]
    print(f"[{name}] {rate or 0:.2f} steps/s -> {steps} steps: python -m {' '.join(args)}",
          flush=True)
    seconds = _run(args, base, log)
    out = os.path.join(workdir, "samples.npz")
    _run(["launch.sample", f"--workdir={workdir}", f"--num={FLAGS.num_samples}",
          f"--out={out}"], base, log)
    images = np.load(out)["images"]
    probs = channel_probabilities(images)
    row = {"name": name, "flags": list(extra), "steps": steps, "steps_per_second": rate,
           "seconds": seconds, **scores(probs)}
    if FLAGS.figures:
        save_figures(FLAGS.figures, row, images, probs)
    return row


def samples_name(path):
    """A row's name for the samples in ``path``: the file's name, or its directory's when
    the file is ``samples.npz`` (as `run_contender` writes it in each run directory)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem == "samples":
        return os.path.basename(os.path.dirname(os.path.abspath(path))) or stem
    return stem


def save_figures(prefix, row, images, probs):
    """``PREFIX_<name>_grid.png`` and ``PREFIX_<name>_channels.png`` of one row."""
    name = row["name"]
    save_grid(f"{prefix}_{name}_grid.png", images, probs,
              title=f"{name}: {row['modes']} modes, KL {row['kl']:.2f}, legible "
                    f"{row['legible_share']:.0%}")
    save_channels(f"{prefix}_{name}_channels.png", images, probs, title=name)


# ----------------------------------------------------------------------- the report
def report(rows, floor):
    """Print the table: each row beside the real floor, then the published anchors."""
    print(f"\n{'contender':<12} {'steps':>7} {'min':>6} {'modes':>6} {'KL':>7} "
          f"{'legible':>8} {'legible modes':>13}")
    print(f"{'real floor':<12} {'':>7} {'':>6} {floor['modes']:>6} {floor['kl']:>7.3f} "
          f"{floor['legible_share']:>8.1%} {floor['legible_modes']:>13}")
    for r in rows:
        print(f"{r['name']:<12} {r['steps']:>7} {r['seconds'] / 60:>6.1f} {r['modes']:>6} "
              f"{r['kl']:>7.3f} {r['legible_share']:>8.1%} {r['legible_modes']:>13}")
    for r in rows:
        if r.get("source"):
            print(f"{r['name']:<12} samples of {r['source']}")
        else:
            print(f"{r['name']:<12} flags: {' '.join(r['flags']) or '(the flagfile as is)'}")
    print(f"\n{floor['num_samples']} samples each; real floor: held-out digits, triples read "
          f"correctly {floor.get('triple_accuracy', float('nan')):.1%}. Published (28x28 "
          f"Stacked MNIST, far longer training): "
          + "; ".join(f"{n} {m:g} modes / KL {k:g}" for n, m, k in PUBLISHED))


def main(argv):
    del argv
    if FLAGS.report:
        rows, floor = [], None
        for path in FLAGS.report:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            floor = floor or data["floor"]
            rows.extend(data["rows"])
        report(rows, floor)
        return
    table = []
    if not (FLAGS.real_only or FLAGS.samples):
        try:
            table = contender_table(FLAGS.contenders, FLAGS.contender)
        except ValueError as exc:
            raise app.UsageError(str(exc))
    floor, real, real_probs = real_floor(FLAGS.num_samples)
    print(f"real floor: {json.dumps({k: v for k, v in floor.items() if k != 'counts'})}",
          flush=True)
    rows = []
    for path in FLAGS.samples or ():
        images = np.load(path)["images"]
        probs = channel_probabilities(images)
        name = samples_name(path)
        rows.append({"name": name, "flags": [], "steps": 0, "steps_per_second": None,
                     "seconds": 0.0, "source": path, **scores(probs)})
        if FLAGS.figures:
            save_figures(FLAGS.figures, rows[-1], images, probs)
    base = None
    if table:
        base = FLAGS.keep or tempfile.mkdtemp(prefix="tfgan2_stacked_")
        os.makedirs(base, exist_ok=True)
    for name, extra in table:
        rows.append(run_contender(name, extra, base))
        printed = {k: v for k, v in rows[-1].items() if k != "counts"}
        print(json.dumps(printed), flush=True)
        if FLAGS.json:  # after every contender, so a long comparison can be read midway
            with open(FLAGS.json, "w", encoding="utf-8") as f:
                json.dump({"floor": floor, "rows": rows}, f)
    if FLAGS.figures:
        save_figures(FLAGS.figures, {**floor, "name": "real"}, real, real_probs)
        save_histogram(f"{FLAGS.figures}_histogram.png",
                       [("real floor", floor["counts"])] + [(r["name"], r["counts"])
                                                             for r in rows])
        print(f"wrote {FLAGS.figures}_*.png")
    report(rows, floor)
    if FLAGS.json:
        with open(FLAGS.json, "w", encoding="utf-8") as f:
            json.dump({"floor": floor, "rows": rows}, f)


if __name__ == "__main__":
    define_flags()
    app.run(main)
