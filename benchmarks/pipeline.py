"""Input pipeline speed and memory: `pipelines.celeba` against a plain PIL loop.

    python -m benchmarks.pipeline [--files=2000] [--memory_files=20000] [--keep=DIR]

Generates CelebA-shaped JPEGs (178x218, smooth gradients plus noise, so they
compress like photos) in a temporary folder and measures images per second of

  (a) `pipelines.celeba` streaming the folder (crop in the decoder, parallel map),
  (b) the same from TFRecord shards written by `pipelines.write_shards`,
  (c) the folder pipeline with ``cache="memory"`` (second pass),
  (d) the plain loop: PIL load, resize to 64x64, scale to [-1, 1], append to a list,

printed as ratios against (d), and the peak resident memory (VmHWM) of a full
streaming pass over 2,000 and over 20,000 files, each in a fresh subprocess.
"""
import argparse
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


def plain_loop(folder):
    """The seed's loader: every file through PIL into one big list. Returns images/s."""
    from PIL import Image

    image_dir = os.path.join(folder, "img_align_celeba")
    files = sorted(os.path.join(image_dir, n) for n in os.listdir(image_dir))
    start = time.perf_counter()
    images = []
    for path in files:
        image = Image.open(path).convert("RGB").resize((RESOLUTION, RESOLUTION))
        images.append(np.asarray(image, np.float32) / 127.5 - 1.0)
    images = np.stack(images)
    return len(files) / (time.perf_counter() - start)


def stream_rate(ds, count, warmup_batches=4):
    """Images/s over ``count // BATCH`` batches after ``warmup_batches`` (AUTOTUNE settles)."""
    it = iter(ds)
    for _ in range(warmup_batches):
        next(it)
    steps = count // BATCH
    start = time.perf_counter()
    for _ in range(steps):
        next(it)
    return steps * BATCH / (time.perf_counter() - start)


def speed(folder, count):
    import pipelines

    rows = {}
    start = time.perf_counter()
    ds = pipelines.celeba(folder, split="all", resolution=RESOLUTION, batch_size=BATCH)
    build = time.perf_counter() - start
    rows["(a) folder"] = stream_rate(ds, 2 * count)

    records = os.path.join(folder, "records")
    start = time.perf_counter()
    pipelines.write_shards(folder, records, resolution=RESOLUTION, num_shards=8)
    prepare = time.perf_counter() - start
    ds = pipelines.celeba(os.path.join(records, "*.tfrecord"), split="all",
                          resolution=RESOLUTION, batch_size=BATCH)
    rows["(b) tfrecord"] = stream_rate(ds, 2 * count)

    ds = pipelines.celeba(folder, split="all", resolution=RESOLUTION, batch_size=BATCH,
                          cache="memory")
    rows["(c) cache"] = stream_rate(ds, count, warmup_batches=count // BATCH + 4)

    rows["(d) PIL loop"] = plain_loop(folder)
    return rows, build, prepare


def memory_child(folder):
    """Run inside a subprocess: one full streaming pass; print peak memory as JSON."""
    import tensorflow as tf  # noqa: F401  (counted in the baseline)
    import pipelines

    before = vm_hwm_mb()
    ds = pipelines.celeba(folder, split="all", resolution=RESOLUTION, batch_size=BATCH,
                          repeat=False)
    images = sum(int(batch.shape[0]) for batch in ds)
    print(json.dumps({"images": images, "before_mb": before, "peak_mb": vm_hwm_mb()}))


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

        rows, build, prepare = speed(small, args.files)
        base = rows["(d) PIL loop"]
        targets = {"(a) folder": 2.0, "(b) tfrecord": 5.0}
        print(f"\nspeed, {args.files} files -> {RESOLUTION}x{RESOLUTION}, batch {BATCH}, "
              f"{os.cpu_count()} CPUs (pipeline build incl. file screen: {build:.2f} s; "
              f"prepare TFRecords: {prepare:.1f} s)")
        print(f"{'source':<16}{'images/s':>10}{'vs (d)':>9}  target")
        for name, rate in rows.items():
            target = targets.get(name)
            verdict = "" if target is None else (
                f">= {target:.0f}x  {'ok' if rate / base >= target else 'MISSED'}")
            print(f"{name:<16}{rate:>10.0f}{rate / base:>8.2f}x  {verdict}")

        m_small, m_large = memory(small), memory(large)
        growth = m_large["peak_mb"] - m_small["peak_mb"]
        print(f"\npeak resident memory of one streaming pass (VmHWM, fresh process each):")
        for label, m in ((args.files, m_small), (args.memory_files, m_large)):
            print(f"  {label:>6} files: {m['peak_mb']:7.0f} MB  (after importing TF: "
                  f"{m['before_mb']:.0f} MB; streamed {m['images']} images)")
        print(f"  growth: {growth:+.0f} MB  target < 50 MB  {'ok' if growth < 50 else 'MISSED'}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
