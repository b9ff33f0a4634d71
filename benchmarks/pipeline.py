"""Input pipeline speed and memory: `pipelines.celeba` against a plain PIL loop.

    python -m benchmarks.pipeline [--files=2000] [--memory_files=20000] [--rounds=7]
                                  [--batches=24] [--keep=DIR]

Generates CelebA-shaped JPEGs (178x218, smooth gradients plus noise, so they
compress like photos) in a temporary folder (``--keep`` reuses one) and
measures images per second of

  (a) `pipelines.celeba` streaming the folder (crop inside the JPEG decoder,
      parallel chunks, batched resize; `pipelines.decode_files`),
  (b) the same from TFRecord shards written by `pipelines.write_shards`,
  (c) the folder pipeline with ``cache="memory"``, after its first pass,
  (d) the plain loop a user would write: PIL open, crop the same face box,
      resize to 64x64, scale to [-1, 1], stack batches of 64,
  (a0), (b0) (a) and (b) with ``threads=None``: tf.data's default thread pools
      instead of the pipelines' own (`pipelines.common.with_options`),

all producing batches of 64 float32 64x64x3 images. The contenders are timed
in interleaved rounds (the machine's cores are shared), and each round's
speed is divided by the PIL loop's in the same round; the table gives the
median and the range over rounds, with PASS/MISS against `TARGETS`. Then the
resident memory of one full streaming pass over 2,000 and over 20,000 files,
each in a fresh subprocess, and the ratio of the peaks.
"""
import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

H, W = 218, 178
RESOLUTION = 64
BATCH = 64
# Speed-up over the PIL loop (median of the per-round ratios) each source should reach.
TARGETS = {"(a) folder": 3.0, "(b) tfrecord": 5.0, "(c) cache": 20.0}
MEMORY_RATIO = 1.10  # peak memory of a 20k-file pass at most 10% above a 2k-file one


def make_folder(folder, count, seed=0):
    """``count`` CelebA-shaped JPEGs ``000001.jpg ...`` in ``folder/img_align_celeba``."""
    from PIL import Image

    image_dir = os.path.join(folder, "img_align_celeba")
    os.makedirs(image_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    for i in range(count):
        path = os.path.join(image_dir, f"{i + 1:06d}.jpg")
        if os.path.exists(path):
            continue
        a, b, c = rng.uniform(-1, 1, 3)
        base = 128 + 60 * np.sin(a * yy / 30 + b * xx / 25 + c)
        colour = rng.uniform(0.6, 1.4, 3)
        noise = rng.normal(0, 8, (H, W, 3))
        pixels = np.clip(base[..., None] * colour + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, "JPEG", quality=90)
    return folder


def rss_mb():
    """Current resident set size of this process in MB (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def vm_hwm_mb():
    """Peak resident set size of this process in MB (VmHWM, else ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pil_batches(folder, crop):
    """The plain loop a user would write: PIL open, crop, resize, scale to [-1, 1], stack 64.

    Endless (cycles over the files in name order); ``crop`` is the same
    `CropBox` the pipelines cut, so both do the same work per image.
    """
    from PIL import Image

    image_dir = os.path.join(folder, "img_align_celeba")
    files = sorted(os.path.join(image_dir, n) for n in os.listdir(image_dir))
    box = (crop.left, crop.top, crop.left + crop.width, crop.top + crop.height)
    while True:
        for i in range(0, len(files) - BATCH + 1, BATCH):
            images = []
            for path in files[i:i + BATCH]:
                with Image.open(path) as image:
                    image = image.convert("RGB").crop(box).resize((RESOLUTION, RESOLUTION))
                images.append(np.asarray(image, np.float32) / 127.5 - 1.0)
            yield np.stack(images)


def contenders(folder, count):
    """``{name: start()}`` where ``start()`` returns an endless iterator of batches, plus the
    pipeline build and TFRecord preparation times."""
    import pipelines
    from pipelines.celeba import celeba_crop

    timings = {}
    start = time.perf_counter()
    folder_ds = pipelines.celeba(folder, split="all", resolution=RESOLUTION, batch_size=BATCH)
    timings["build"] = time.perf_counter() - start
    records = os.path.join(folder, "records")
    shutil.rmtree(records, ignore_errors=True)
    start = time.perf_counter()
    pipelines.write_shards(folder, records, resolution=RESOLUTION, num_shards=8)
    timings["prepare"] = time.perf_counter() - start
    record_ds = pipelines.celeba(os.path.join(records, "*.tfrecord"), split="all",
                                 resolution=RESOLUTION, batch_size=BATCH)
    # The same two pipelines on tf.data's default threads (the shared pools, ops that
    # split themselves over the intra-op threads), to show what threads="auto" gives.
    folder_tf = pipelines.celeba(folder, split="all", resolution=RESOLUTION, batch_size=BATCH,
                                 threads=None)
    record_tf = pipelines.celeba(os.path.join(records, "*.tfrecord"), split="all",
                                 resolution=RESOLUTION, batch_size=BATCH, threads=None)
    cache_ds = pipelines.celeba(folder, split="all", resolution=RESOLUTION, batch_size=BATCH,
                                cache="memory")
    it = iter(cache_ds)  # the first pass fills the in-memory cache, shared by later iterators
    for _ in range(count // BATCH + 2):
        next(it)
    del it
    pil = pil_batches(folder, celeba_crop(108, (H, W)))
    return {"(a) folder": lambda: iter(folder_ds), "(b) tfrecord": lambda: iter(record_ds),
            "(c) cache": lambda: iter(cache_ds), "(d) PIL loop": lambda: pil,
            "(a0) folder, tf.data threads": lambda: iter(folder_tf),
            "(b0) tfrecord, tf.data threads": lambda: iter(record_tf)}, timings


def measure_rounds(starts, rounds, batches, warmup=6):
    """Images/s and CPU ms per image of every contender in ``rounds`` interleaved rounds:
    ``({name: [rate, ...]}, {name: [cpu_ms, ...]})`` (CPU = this process, all threads).

    In each round every contender gets a fresh iterator (so no pipeline works
    in the background while another is timed), yields ``warmup`` untimed
    batches (start-up, buffers filling), then ``batches`` timed ones;
    interleaving exposes all of them to the same load of a shared machine.
    """
    rates = {name: [] for name in starts}
    cpu_ms = {name: [] for name in starts}
    for _ in range(rounds):
        for name, start_iterator in starts.items():
            it = start_iterator()
            for _ in range(warmup):
                next(it)
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(batches):
                next(it)
            rates[name].append(batches * BATCH / (time.perf_counter() - start))
            cpu_ms[name].append((time.process_time() - cpu) * 1e3 / (batches * BATCH))
            del it
            gc.collect()  # ends the iterator's threads before the next contender
    return rates, cpu_ms


def memory_child(folder):
    """Run inside a subprocess: one full streaming pass; print peak memory as JSON."""
    import tensorflow as tf  # noqa: F401  (counted in the baseline)
    import pipelines

    before = vm_hwm_mb()
    ds = pipelines.celeba(folder, split="all", resolution=RESOLUTION, batch_size=BATCH,
                          repeat=False)
    images = sum(int(batch.shape[0]) for batch in ds)
    print(json.dumps({"images": images, "before_mb": before, "peak_mb": vm_hwm_mb(),
                      "rss_mb": rss_mb()}))


def memory(folder):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory_child", folder],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="images for the speed runs")
    parser.add_argument("--memory_files", type=int, default=20000,
                        help="images for the large memory run")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--batches", type=int, default=24, help="timed batches per round")
    parser.add_argument("--keep", default=None, help="folder to keep (and reuse) the data in")
    parser.add_argument("--memory_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.memory_child:
        memory_child(args.memory_child)
        return

    root = args.keep or tempfile.mkdtemp(prefix="pipeline_bench_")
    try:
        small = os.path.join(root, f"celeba_{args.files}")
        large = os.path.join(root, f"celeba_{args.memory_files}")
        start = time.perf_counter()
        make_folder(small, args.files)
        make_folder(large, args.memory_files, seed=1)
        print(f"generated {args.files} + {args.memory_files} JPEGs (178x218) in "
              f"{time.perf_counter() - start:.0f} s under {root}")

        starts, timings = contenders(small, args.files)
        rates, cpu_ms = measure_rounds(starts, args.rounds, args.batches)
        base = rates["(d) PIL loop"]
        print(f"\nspeed: {args.files} CelebA-shaped files, 108x108 face crop -> "
              f"{RESOLUTION}x{RESOLUTION} in [-1, 1], batch {BATCH}; {os.cpu_count()} CPUs "
              f"({cpu_model()}); {args.rounds} interleaved rounds of {args.batches} batches "
              f"(pipeline build incl. file screen {timings['build']:.2f} s, "
              f"TFRecord preparation {timings['prepare']:.1f} s)")
        print(f"{'source':<31}{'images/s median':>16}{'(min-max)':>16}{'vs (d) median':>15}"
              f"{'(min-max)':>16}{'CPU ms/image':>14}  target")
        verdicts = []
        for name, values in rates.items():
            ratios = [r / b for r, b in zip(values, base)]  # same round, same load
            target = TARGETS.get(name)
            verdict = ""
            if target is not None:
                passed = float(np.median(ratios)) >= target
                verdicts.append(passed)
                verdict = f">= {target:.0f}x  {'PASS' if passed else 'MISS'}"
            print(f"{name:<31}{np.median(values):>16.0f}"
                  f"{f'({min(values):.0f}-{max(values):.0f})':>16}"
                  f"{np.median(ratios):>14.2f}x{f'({min(ratios):.2f}-{max(ratios):.2f})':>16}"
                  f"{np.median(cpu_ms[name]):>14.3f}  {verdict}")
        del starts

        m_small, m_large = memory(small), memory(large)
        ratio = m_large["peak_mb"] / m_small["peak_mb"]
        passed = ratio <= MEMORY_RATIO
        verdicts.append(passed)
        print("\nresident memory of one full streaming pass (fresh process each; peak = VmHWM, "
              "before = after importing TensorFlow):")
        for label, m in ((args.files, m_small), (args.memory_files, m_large)):
            print(f"  {label:>6} files: peak {m['peak_mb']:6.0f} MB, at the end {m['rss_mb']:6.0f} "
                  f"MB, before {m['before_mb']:6.0f} MB  ({m['images']} images)")
        print(f"  peak {args.memory_files} / {args.files}: {ratio:.3f} "
              f"({m_large['peak_mb'] - m_small['peak_mb']:+.0f} MB)  target <= {MEMORY_RATIO}  "
              f"{'PASS' if passed else 'MISS'}")
        print(f"\n{sum(verdicts)} of {len(verdicts)} targets met")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
