"""Timing the measured choices of `launch.train` in a process of their own.

Building and tracing a candidate's training step cannot be interrupted inside
one process, and for a 64x64 DCGAN on two busy CPU cores it alone took 80 s,
eight times the timing budget. `launch.train` therefore times ``--precision``
and ``--conv_gradients`` candidates in a child process (``python -m
launch.timing_process``, given the run's flags), which it stops when the
budget runs out: the budget (``$TFGAN2_TIMING_BUDGET``, default 10 s) bounds
what a start spends timing, whatever the machine's load. A stopped child counts
as `tfgan2.timing.OverBudget` (remembered per machine like any timing, so the
next start of the recipe does not try again); a child that fails counts as a
TensorFlow error of the timing (the rules then keep their baseline). The
child also keeps the candidates' global state (Keras policy, traced graphs,
memory) out of the training process.

    python -m launch.timing_process --flagfile=RUN_FLAGS --timing_kind=precision \\
        --timing_candidates=float32,mixed_bfloat16 --timing_seconds=10 --timing_out=OUT.json
"""
import json
import os
import subprocess
import sys
import tempfile

from absl import flags

from launch import cli, config

__all__ = ["gan_runs", "measure_in_child"]

# How long a child may run past the budget it was given before it is stopped: it times
# within its own budget, so this only covers its exit.
EXIT_GRACE_SECONDS = 2.0


def gan_runs(fv, strategy):
    """``build(policy, method) -> run`` of `tfgan2.timing`: this run's GAN compiled with
    one step per execution under ``strategy``, timed by `tfgan2.timing.gan_fit_runner` on
    the first training batch (read once)."""
    import tfgan2
    from launch import builders

    batch = []

    def build(policy, method):
        if not batch:
            batch.append(next(iter(builders.build_dataset(fv, 0))))
        with strategy.scope():
            gan = builders.build_gan(fv, precision=policy, steps_per_execution=1,
                                     conv_gradient=method)
        return tfgan2.timing.gan_fit_runner(gan, batch[0])

    return build


def _project_root():
    import launch

    return os.path.dirname(os.path.dirname(os.path.abspath(launch.__file__)))


def measure_in_child(fv, *, runner=subprocess.run):
    """``measure(kind, candidates, policy, budget) -> {candidate: ms}`` for
    `launch.choices.resolve` that times in a child process given the flags of ``fv``
    and stopped when ``budget`` (a `tfgan2.timing.Budget`) runs out."""
    from tfgan2 import timing

    def measure(kind, candidates, policy, budget):
        seconds = budget.left()
        if seconds <= 0:
            raise timing.OverBudget(f"no time left of the {budget.seconds:g} s timing budget "
                                    f"for {candidates[0]}", {})
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_project_root(), env.get("PYTHONPATH")) if p)
        with tempfile.TemporaryDirectory(prefix="tfgan2-timing-") as tmp:
            flagfile, out = os.path.join(tmp, "flags.cfg"), os.path.join(tmp, "timings.json")
            with open(flagfile, "w", encoding="utf-8") as f:
                f.write("\n".join(config.flagfile_lines(fv)) + "\n")
            command = [sys.executable, "-m", "launch.timing_process", f"--flagfile={flagfile}",
                       f"--timing_kind={kind}", f"--timing_candidates={','.join(candidates)}",
                       f"--timing_seconds={seconds:.3f}", f"--timing_out={out}"]
            if policy:
                command.append(f"--timing_policy={policy}")
            try:
                proc = runner(command, env=env, capture_output=True, text=True,
                              timeout=seconds + EXIT_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                raise timing.OverBudget(
                    f"building and timing {' and '.join(candidates)} did not finish within "
                    f"the {budget.seconds:g} s timing budget", {}) from None
            if proc.returncode != 0 or not os.path.isfile(out):
                import tensorflow as tf

                lines = [line for line in (proc.stderr or "").splitlines() if line.strip()]
                raise tf.errors.UnknownError(
                    None, None, f"the timing process failed (exit code {proc.returncode}): "
                    f"{lines[-1] if lines else 'no message'}")
            with open(out, encoding="utf-8") as f:
                result = json.load(f)
        ms = {str(c): float(v) for c, v in result["ms_per_step"].items()}
        if result.get("over_budget"):
            raise timing.OverBudget(result["over_budget"], ms)
        return ms

    return measure


def _define_flags():
    config.define_train_flags()
    flags.DEFINE_enum("timing_kind", None, ["precision", "conv_gradients"],
                      "Which choice's candidates to time.")
    flags.DEFINE_list("timing_candidates", None, "The candidates, in order.")
    flags.DEFINE_string("timing_policy", None, "The precision the convolution gradient "
                        "methods are timed in.")
    flags.DEFINE_float("timing_seconds", None, "The timing budget of this process.")
    flags.DEFINE_string("timing_out", None, "Where to write the timings (JSON).")
    for name in ("timing_kind", "timing_candidates", "timing_seconds", "timing_out"):
        flags.mark_flag_as_required(name)


def main(argv):
    del argv
    import tfgan2
    from launch import choices

    fv = flags.FLAGS
    if fv.logical_cpus:
        tfgan2.distribute.split_cpu(fv.logical_cpus)
    strategy = tfgan2.distribute.make_strategy(fv.strategy, devices=fv.devices, tpu=fv.tpu,
                                               collective_timeout=fv.collective_timeout)
    budget = tfgan2.timing.Budget(fv.timing_seconds)
    result = {}
    try:
        result["ms_per_step"] = choices.measure_in_process(
            fv.timing_kind, gan_runs(fv, strategy), tuple(fv.timing_candidates),
            fv.timing_policy, budget)
    except tfgan2.timing.OverBudget as exc:
        result = {"ms_per_step": exc.ms, "over_budget": exc.message}
    tmp = fv.timing_out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, fv.timing_out)


if __name__ == "__main__":
    _define_flags()
    sys.exit(cli.run(main, "launch.timing_process"))
