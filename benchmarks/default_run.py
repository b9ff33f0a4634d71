"""Time a shipped flagfile end to end and measure the quality of what it trains.

    python -m benchmarks.default_run                      # the no-flag default (digits.cfg)
    python -m benchmarks.default_run --config=gaussian.cfg
    python -m benchmarks.default_run --train_flag=--precision=mixed_bfloat16

Runs ``python -m launch.train`` exactly as a user would (no flags, or the given
flagfile) in a fresh work directory, reports its wall time, then writes 1,000
samples with ``launch.sample`` and measures them:

* image data (digits): the classifier-based report of `benchmarks.digits_quality`
  (Inception-Score analogue, Fréchet distance of classifier features, class
  shares, near-copies); for a conditional run (``digits_conditional.cfg``) also
  ``--num_samples`` samples of each class, their agreement with the requested
  class and the intra-class Fréchet distance;
* vector data (gaussian): mean and standard deviation of all generated values
  against the flagfile's ``--gaussian_mean`` / ``--gaussian_std``, as
  fractions of sigma.
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

flags.DEFINE_string("config", None, "Flagfile to train (default: no flags at all).")
flags.DEFINE_integer("num_samples", 1000, "Samples to evaluate.")
flags.DEFINE_multi_string("train_flag", [], "Extra flag for launch.train, repeatable, e.g. "
                          "--train_flag=--precision=mixed_bfloat16.")
flags.DEFINE_string("keep", None, "Keep the run directory here instead of a temporary one.")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return elapsed, proc.stdout


def main(argv):
    del argv
    base = FLAGS.keep or tempfile.mkdtemp(prefix="tfgan2_default_")
    os.makedirs(base, exist_ok=True)
    # Flagfiles name a relative --workdir (runs/<name>): run from the fresh directory.
    train_args = ["launch.train"]
    if FLAGS.config:
        train_args.append(f"--flagfile={os.path.abspath(FLAGS.config)}")
    train_args += FLAGS.train_flag
    print(f"running in {base}: python -m {' '.join(train_args)}", flush=True)
    seconds, out = _run(train_args, cwd=base)
    print(out.strip().splitlines()[-1])
    (name,) = os.listdir(os.path.join(base, "runs"))
    workdir = os.path.join(base, "runs", name)
    samples = os.path.join(base, "samples.npz")
    _run(["launch.sample", f"--workdir={workdir}", f"--num={FLAGS.num_samples}",
          f"--out={samples}"], cwd=base)
    images = np.load(samples)["images"]
    from launch import config

    conditional = config.read_flagfile(os.path.join(workdir, "flags.cfg")).conditional
    print(f"\nwall time of launch.train: {seconds:.1f} s ({seconds / 60:.2f} min)")
    if images.ndim == 2:
        from launch import config

        fv = config.read_flagfile(os.path.join(workdir, "flags.cfg"))
        mean, std = float(images.mean()), float(images.std())
        sigma = fv.gaussian_std
        print(f"generated mean {mean:.4f} (real {fv.gaussian_mean}), "
              f"std {std:.4f} (real {sigma})")
        print(f"|mean error| / sigma = {abs(mean - fv.gaussian_mean) / sigma:.4f}   "
              f"|std error| / sigma = {abs(std - sigma) / sigma:.4f}   (target < 0.02 each)")
    else:
        from benchmarks import digits_quality

        digits_quality.main([f"--samples={samples}"])
        if conditional:
            per_class = os.path.join(base, "per_class.npz")
            _run(["launch.sample", f"--workdir={workdir}",
                  f"--per_class={FLAGS.num_samples}", f"--out={per_class}"], cwd=base)
            with np.load(per_class) as data:
                result = digits_quality.evaluate_conditional(data["images"], data["labels"])
            print()
            print(digits_quality.format_conditional(result))
            print(f"(target: agreement >= 0.95 with {FLAGS.num_samples} samples per class)")


if __name__ == "__main__":
    app.run(main)
