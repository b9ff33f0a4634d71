"""Execution settings of the DCGAN-64 step, side by side: thread pools, oneDNN, XLA, steps per call.

    python -m benchmarks.step_options                    # every option, 3 rounds
    python -m benchmarks.step_options --options=default,xla --rounds=5
    python -m benchmarks.step_options --network=mlp

Thread pools and ``TF_ENABLE_ONEDNN_OPTS`` are fixed when TensorFlow starts,
so each option runs in its own process: ``python -m benchmarks.train_step``
with only contenders (a) ``GAN.fit`` and (e) the convolution
microbenchmarks, one round each. The options take turns, round after round,
so slow drifts of the machine's load reach every option alike. Reported per
option: ``GAN.fit``'s median ms/step (wall and process CPU time), its
speed-up over the default (ratio of medians), and the FLOP/s of the step
as a fraction of the *default* process's convolution rate (the machine's
practical peak with TensorFlow's default settings), so options that slow
the convolution itself are not flattered.

Options:
  default    TensorFlow's defaults (one intra-op and one inter-op thread per CPU)
  inter1     one inter-op thread: ops run one at a time, each on every core
  intra1     one intra-op thread: each op on one core, independent ops in parallel
  no_onednn  ``TF_ENABLE_ONEDNN_OPTS=0``: Eigen's kernels instead of oneDNN's
  xla        ``jit_compile=True``: the step compiled by XLA (XLA's CPU convolutions)
  spe1       ``steps_per_execution=1``: one call into the step function per step
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

OPTIONS = {
    "default": ([], {}),
    "inter1": (["--inter_op_threads=1"], {}),
    "intra1": (["--intra_op_threads=1"], {}),
    "no_onednn": ([], {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "xla": (["--jit_compile"], {}),
    "spe1": (["--steps_per_execution=1"], {}),
}

flags.DEFINE_list("options", list(OPTIONS), f"Options to compare: {', '.join(OPTIONS)}.")
flags.DEFINE_integer("rounds", 3, "Rounds; each runs every option once, in its own process.")
flags.DEFINE_enum("network", "dcgan", ["dcgan", "mlp"], "Network of benchmarks.train_step.")
flags.DEFINE_integer("steps", None, "Timed steps per process (train_step's default if unset).")
flags.DEFINE_integer("warmup", 10, "Warm-up steps per process.")
flags.DEFINE_string("json", None, "Also write the results as JSON here.")
FLAGS = flags.FLAGS


def run_option(name, workdir, round_index):
    """One process of ``benchmarks.train_step`` under option ``name``; returns its JSON report."""
    args, env = OPTIONS[name]
    out = os.path.join(workdir, f"{name}_{round_index}.json")
    command = [sys.executable, "-m", "benchmarks.train_step", "--precision=float32",
               "--rounds=1", f"--warmup={FLAGS.warmup}", f"--network={FLAGS.network}",
               "--contenders=a,e", f"--json={out}", *args]
    if FLAGS.steps is not None:
        command.append(f"--steps={FLAGS.steps}")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(command, cwd=root, env={**os.environ, **env},
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"option {name} failed ({result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    with open(out) as f:
        return json.load(f)


def main(argv):
    del argv
    unknown = [o for o in FLAGS.options if o not in OPTIONS]
    if unknown:
        raise app.UsageError(f"Unknown --options {unknown}; choose from {', '.join(OPTIONS)}.")
    options = list(dict.fromkeys(["default"] + FLAGS.options))
    reports = {name: [] for name in options}
    with tempfile.TemporaryDirectory() as workdir:
        for r in range(FLAGS.rounds):
            for name in options:
                report = run_option(name, workdir, r)
                reports[name].append(report)
                print(f"round {r + 1}/{FLAGS.rounds} {name:<10} GAN.fit "
                      f"{report['wall_ms']['a float32'][0]:8.1f} ms/step "
                      f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    first = reports["default"][0]
    print(f"\n{FLAGS.network}, {first['gflop_per_step']:.2f} GFLOP per step; CPU {first['cpu']}")

    def median_of(name, table, key):
        return statistics.median(rep[table][key][0] for rep in reports[name])

    base = median_of("default", "wall_ms", "a float32")
    rows = {}
    conv = "e float32" in first["wall_ms"]
    if conv:
        # The default process's convolution rate: GFLOP per call / seconds per call.
        from benchmarks.train_step import REFERENCE_CONV, conv_flops
        peak = conv_flops(REFERENCE_CONV) / (median_of("default", "wall_ms", "e float32") / 1e3)
    print(f"  {'option':<12}{'wall ms/step':>14}{'CPU ms':>9}{'speed-up':>10}"
          + (f"{'FLOP/s / default conv peak':>29}" if conv else ""))
    for name in options:
        wall = median_of(name, "wall_ms", "a float32")
        cpu = median_of(name, "cpu_ms", "a float32")
        row = {"wall_ms": wall, "cpu_ms": cpu, "speedup": base / wall}
        line = f"  {name:<12}{wall:>14.1f}{cpu:>9.1f}{base / wall:>9.2f}x"
        if conv:
            row["flop_fraction"] = first["gflop_per_step"] * 1e9 / (wall / 1e3) / peak
            line += f"{row['flop_fraction']:>29.2f}"
        rows[name] = row
        print(line)
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump({"network": FLAGS.network, "rows": rows, "reports": reports}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
