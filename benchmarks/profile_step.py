"""Where a training step's time goes: a TensorFlow profiler trace, summed by phase and op type.

    python -m benchmarks.profile_step                     # DCGAN-64, GAN.fit and a plain loop
    python -m benchmarks.profile_step --network=mlp       # the digits MLP GAN
    python -m benchmarks.profile_step --trace_dir=/tmp/tr # keep the traces (TensorBoard's profile tab)

The contenders are those of `benchmarks.train_step`: (a) ``tfgan2.GAN.fit``
(``--steps_per_execution`` steps per call), the same with an EMA generator
(decay 0.999), the same with `tfgan2.optimizers.FusedAdam` (a'), and (c) a plain two-tape ``tf.function`` loop over the same
networks, all warmed up, then traced with
``tf.profiler.experimental`` for ``--steps`` steps each. The trace's host
plane holds one event per executed TensorFlow op with its thread and duration;
this script reads it back (the ``xplane.pb`` protocol buffer) and sums the op
durations per step:

* by phase, from the op's name scope: ``discriminator_step``,
  ``generator_step``, ``ema_update``, ``metrics`` (`tfgan2.GAN.train_step`
  and the plain loop use the same scopes), input (iterator ops), other;
* by op type: convolutions, transposed convolutions (ops inside a
  ``Conv2DTranspose`` layer, forward and backward), matrix products, batch
  norm, activations, the optimizer's update ops, random numbers, and the
  remaining element-wise ops.

"op time" is the sum of the durations of the ops, over all threads of TF's
thread pools, per training step: on 2 cores it can exceed the step's wall
time (two ops run at once), and on a busy machine an op's duration includes
the time its thread waited for a core. The shares are what to read.
"""
import collections
import glob
import os
import re
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf
from absl import app, flags

from benchmarks import train_step as bench

flags.DEFINE_string("trace_dir", None, "Write the profiler traces here (default: a temporary "
                    "directory, deleted at the end).")
flags.DEFINE_integer("profile_steps", 10, "Traced training steps per contender.")
FLAGS = flags.FLAGS

# Inner scopes first: the EMA update runs inside the generator step.
PHASES = (("ema_update", "EMA update"), ("metrics", "metrics"),
          ("discriminator_step", "D step"), ("generator_step", "G step"))

# Keras optimizers name their update ops after themselves ("adam", "adam_1", ...).
_OPTIMIZER_SCOPE = re.compile(r"/(adam|adamw|nadam|adamax|sgd|rmsprop|adagrad|adadelta|lion|"
                              r"ftrl|adafactor|loss_scale_optimizer)(_\d+)?/", re.IGNORECASE)

OP_TYPES = ("convolution", "transposed convolution", "matmul (Dense)", "batch norm",
            "activation", "optimizer", "random", "input", "other element-wise")


def op_type_of(name, kind):
    """The category of an executed op from its full name and its op type ``kind``."""
    lowered = name.lower()
    if kind.startswith(("IteratorGetNext", "MultiDeviceIterator")):
        return "input"
    if "Conv2D" in kind or "Conv3D" in kind:
        return "transposed convolution" if "conv_transpose" in lowered else "convolution"
    if "MatMul" in kind:
        return "matmul (Dense)"
    if "BatchNorm" in kind:
        return "batch norm"
    if any(a in kind for a in ("Relu", "Tanh", "Sigmoid", "Softplus", "Elu", "Selu")):
        return "activation"
    if _OPTIMIZER_SCOPE.search(name) or kind.startswith("ResourceApply"):
        return "optimizer"
    if "Random" in kind:
        return "random"
    return "other element-wise"


def phase_of(name, kind):
    if kind.startswith(("IteratorGetNext", "MultiDeviceIterator")):
        return "input"
    for scope, label in PHASES:
        if f"{scope}/" in name:
            return label
    return "other"


def read_trace(trace_dir):
    """``[(op name, op type, duration in ms)]`` of every TF op executed in the trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    if not files:
        raise RuntimeError(f"The profiler wrote no .xplane.pb under {trace_dir}.")
    space = xplane_pb2.XSpace()
    with open(max(files, key=os.path.getmtime), "rb") as f:
        space.ParseFromString(f.read())
    ops = []
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            # The executor's compute threads and the tf.data iterator thread; the python
            # line holds the caller's nested spans, not ops.
            if not line.name.startswith(("tf_Compute", "tf_data_iterator")):
                continue
            for event in line.events:
                label = plane.event_metadata[event.metadata_id].name
                # Ops are "name:type"; executor bookkeeping is "ExecutorState::Process" etc.
                if ":" not in label or "::" in label:
                    continue
                name, kind = label.rsplit(":", 1)
                ops.append((name, kind, event.duration_ps / 1e9))
    return ops


def _short(name, keep=4):
    """The last ``keep`` parts of an op name, without the call wrappers of a while loop."""
    parts = [p for p in name.split("/") if p and not p.startswith("_")
             and p not in ("body", "while", "cond", "then", "else", "StatefulPartitionedCall")]
    return "/".join(parts[-keep:])


def summarize(ops, steps):
    """``(by phase, by op type, top ops)``: dicts of ms per step, and the 8 costliest op names.

    ``by_type["ops executed"]`` is the number of ops run per step (each would be
    a kernel launch on a GPU without XLA's fusion).
    """
    by_phase, by_type, by_name = (collections.Counter() for _ in range(3))
    by_phase["ops executed"] = len(ops) / steps
    for name, kind, ms in ops:
        by_phase[phase_of(name, kind)] += ms / steps
        by_type[op_type_of(name, kind)] += ms / steps
        by_name[f"{kind} in {_short(name)}"] += ms / steps
    return by_phase, by_type, by_name.most_common(8)


def profile(run, steps, trace_dir):
    """Trace ``run(steps)``; returns ``(wall seconds, ops)``."""
    tf.profiler.experimental.start(trace_dir)
    start = time.perf_counter()
    try:
        run(steps)
    finally:
        seconds = time.perf_counter() - start
        tf.profiler.experimental.stop()
    return seconds, read_trace(trace_dir)


def print_table(title, keys, columns):
    """``columns`` = ``[(name, {key: ms per step})]``; ms and share of the column's total."""
    print(f"\n{title}")
    header = "".join(f"{name:>26}" for name, _ in columns)
    print(f"  {'':<24}{header}")
    columns = [(name, {k: v for k, v in values.items() if k != "ops executed"})
               for name, values in columns]
    totals = [sum(values.values()) for _, values in columns]
    for key in keys:
        if not any(values.get(key, 0.0) for _, values in columns):
            continue
        cells = "".join(f"{values.get(key, 0.0):>14.1f} ms {100 * values.get(key, 0.0) / t:>6.1f}%"
                        for (_, values), t in zip(columns, totals))
        print(f"  {key:<24}{cells}")
    print(f"  {'total op time':<24}" + "".join(f"{t:>14.1f} ms {100.0:>6.1f}%" for t in totals))


def main(argv):
    del argv
    spe = FLAGS.steps_per_execution
    steps = bench.round_up(FLAGS.profile_steps, spe)
    print(f"TensorFlow {tf.__version__}; CPU: {bench.cpu_description()}; "
          f"load average {bench.load_average()}")
    print(f"network {FLAGS.network}, batch {bench.batch_size()}, {steps} traced steps per "
          f"contender, GAN.fit with steps_per_execution {spe}", flush=True)
    x = bench.real_batch()
    with bench.policy("float32"):
        contenders = [("(a) GAN.fit", bench.make_gan_fit(x)),
                      ("(a) with EMA 0.999", bench.make_gan_fit(x, ema_decay=0.999)),
                      ("(a') FusedAdam", bench.make_gan_fit(x, optimizer=bench.fused_adam)),
                      ("(c) plain loop", bench.make_plain_loop(x))]
        results = []
        root = FLAGS.trace_dir or tempfile.mkdtemp(prefix="tfgan2_profile_")
        for i, (label, run) in enumerate(contenders):
            seconds, ops = profile(run, steps, os.path.join(root, f"contender{i}"))
            results.append((label, seconds, summarize(ops, steps)))
    for label, seconds, summary in results:
        print(f"{label}: {1e3 * seconds / steps:.1f} ms/step wall while traced, "
              f"{summary[0]['ops executed']:.0f} ops executed per step")
    print_table("op time per step by phase", [label for _, label in PHASES] + ["input", "other"],
                [(label, summary[0]) for label, _, summary in results])
    print_table("op time per step by op type", OP_TYPES,
                [(label, summary[1]) for label, _, summary in results])
    for label, _, summary in results:
        print(f"\ncostliest ops of {label} (ms per step)")
        for name, ms in summary[2]:
            print(f"  {ms:>8.1f}  {name}")
    if FLAGS.trace_dir is None:
        import shutil
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"\ntraces in {root} (tensorboard --logdir={root}, Profile tab)")


if __name__ == "__main__":
    app.run(main)
