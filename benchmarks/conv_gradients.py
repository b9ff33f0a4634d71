"""Stride-1 convolution gradients: TensorFlow's backward kernels against forward convolutions.

    python -m benchmarks.conv_gradients [--rounds=5] [--iters=10]

For the stride-1 convolutions of the 64x64 DCGAN (`benchmarks.train_step`'s
networks, batch 32, 5x5 kernels, SAME padding) this times, per call, the
input gradient and the kernel gradient computed by TensorFlow's
``Conv2DBackpropInput`` / ``Conv2DBackpropFilter`` ("native") and as forward
convolutions (`tfgan2.conv_gradients`, "forward"), each in a
``tf.function``, in interleaved rounds; the table gives the best round and
the per-round speed-up native / forward (median [range]). The results are
checked to agree (relative error printed). Whole training steps with either
method: `benchmarks.train_step`, contender (f).
"""
import statistics
import time

import tensorflow as tf
from absl import app, flags

from tfgan2 import conv_gradients

flags.DEFINE_integer("rounds", 5, "Interleaved timing rounds.")
flags.DEFINE_integer("iters", 10, "Calls per contender and round.")
flags.DEFINE_integer("batch", 32, "Batch size.")
FLAGS = flags.FLAGS

# (layer, height = width, C_in, C_out) of the DCGAN-64's stride-1 5x5 convolutions.
SHAPES = (("D block0_conv0", 64, 3, 16), ("D block1_conv0", 32, 16, 32),
          ("D block2_conv0", 16, 32, 64), ("D block3_conv0", 8, 64, 128),
          ("G image", 64, 16, 3))
KERNEL = 5


def gradient_functions(x, kernel, dy):
    """``{(part, method): tf.function}``, part "input" or "kernel"."""
    def grads(method, part):
        @tf.function
        def f():
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                y = conv_gradients.conv2d(x, kernel, "SAME", method)
            return tape.gradient(y, x if part == "input" else kernel, output_gradients=dy)
        return f

    return {(part, method): grads(method, part) for part in ("input", "kernel")
            for method in conv_gradients.METHODS}


def seconds_per_call(f, iters):
    start = time.perf_counter()
    for _ in range(iters):
        out = f()
    out.numpy()
    return (time.perf_counter() - start) / iters


def main(argv):
    del argv
    print(f"TensorFlow {tf.__version__}; batch {FLAGS.batch}, {KERNEL}x{KERNEL} kernels, "
          f"SAME; {FLAGS.rounds} rounds x {FLAGS.iters} calls; ms per call (best round)")
    print(f"  {'layer':<16}{'shape':>16}{'GFLOP':>7}  {'input: native':>14}{'forward':>9}"
          f"{'speed-up':>22}  {'kernel: native':>15}{'forward':>9}{'speed-up':>22}  rel err")
    for name, size, c_in, c_out in SHAPES:
        gen = tf.random.Generator.from_seed(0)
        x = gen.normal([FLAGS.batch, size, size, c_in])
        kernel = gen.normal([KERNEL, KERNEL, c_in, c_out], stddev=0.1)
        dy = gen.normal([FLAGS.batch, size, size, c_out])
        fns = gradient_functions(x, kernel, dy)
        error = max(float(tf.reduce_max(tf.abs(fns[part, "native"]() - fns[part, "forward"]()))
                          / tf.reduce_max(tf.abs(fns[part, "native"]())))
                    for part in ("input", "kernel"))
        for f in fns.values():  # warm-up: tracing, kernel selection
            seconds_per_call(f, 2)
        times = {key: [] for key in fns}
        for _ in range(FLAGS.rounds):
            for key, f in fns.items():
                times[key].append(seconds_per_call(f, FLAGS.iters))
        gflop = 2.0 * FLAGS.batch * size * size * KERNEL * KERNEL * c_in * c_out / 1e9
        cells = []
        for part in ("input", "kernel"):
            ratios = [n / f for n, f in zip(times[part, "native"], times[part, "forward"])]
            cells.append(f"{1e3 * min(times[part, 'native']):>14.1f}"
                         f"{1e3 * min(times[part, 'forward']):>9.1f}"
                         f"{statistics.median(ratios):>9.2f} [{min(ratios):.2f}-{max(ratios):.2f}]")
        print(f"  {name:<16}{f'{size}x{size} {c_in}->{c_out}':>16}{gflop:>7.2f}  "
              f"{cells[0]}  {cells[1]}  {error:.1e}", flush=True)


if __name__ == "__main__":
    app.run(main)
