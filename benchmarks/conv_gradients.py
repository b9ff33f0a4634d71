"""Convolution gradients: TensorFlow's backward kernels against forward convolutions.

    python -m benchmarks.conv_gradients [--rounds=5] [--iters=10] [--dtype=bfloat16]

For the convolutions of the 64x64 DCGAN (`benchmarks.train_step`'s networks,
batch 32, 5x5 kernels, SAME padding) this times, per call, what
``--conv_gradients`` changes, computed by TensorFlow's kernels ("native") and
as forward convolutions (`tfgan2.conv_gradients`, "forward"), each in a
``tf.function``, in interleaved rounds:

* stride-1 convolutions (D's first convolution of each block, G's output
  layer): the input gradient and the kernel gradient;
* D's stride-2 convolutions: the input gradient (phase decomposition; their
  kernel gradient is TensorFlow's in both methods);
* G's stride-2 transposed convolutions: the forward pass (phase
  decomposition) -- their input gradient is a forward convolution and their
  kernel gradient TensorFlow's in both methods.

The table gives the best round and the per-round speed-up native / forward
(median [range]); the results are checked to agree (relative error printed).
Whole training steps with either method: `benchmarks.train_step`, contender
(f).
"""
import statistics
import time

import tensorflow as tf
from absl import app, flags

from tfgan2 import conv_gradients

flags.DEFINE_integer("rounds", 5, "Interleaved timing rounds.")
flags.DEFINE_integer("iters", 10, "Calls per contender and round.")
flags.DEFINE_integer("batch", 32, "Batch size.")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype of the "
                  "convolutions (bfloat16: what mixed_bfloat16 runs them in).")
FLAGS = flags.FLAGS

# (layer, kind, stride, height = width of the convolution's input, C_in, C_out) of the
# DCGAN-64's 5x5 convolutions; a transposed convolution is listed as the convolution it
# inverts (its input is that convolution's output).
SHAPES = (("D block0_conv0", "conv", 1, 64, 3, 16), ("D block1_conv0", "conv", 1, 32, 16, 32),
          ("D block2_conv0", "conv", 1, 16, 32, 64), ("D block3_conv0", "conv", 1, 8, 64, 128),
          ("G image", "conv", 1, 64, 16, 3),
          ("D block0_conv1", "conv", 2, 64, 16, 16), ("D block1_conv1", "conv", 2, 32, 32, 32),
          ("D block2_conv1", "conv", 2, 16, 64, 64), ("D block3_conv1", "conv", 2, 8, 128, 128),
          ("G block0_deconv", "transpose", 2, 8, 64, 128),
          ("G block1_deconv", "transpose", 2, 16, 32, 64),
          ("G block2_deconv", "transpose", 2, 32, 16, 32),
          ("G block3_deconv", "transpose", 2, 64, 16, 16))
KERNEL = 5


def gradient_functions(x, kernel, dy, stride=1):
    """``{(part, method): tf.function}``, part "input" or "kernel" (stride 1) or "input" alone."""
    def grads(method, part):
        @tf.function
        def f():
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                y = conv_gradients.conv2d(x, kernel, "SAME", method, strides=stride)
            return tape.gradient(y, x if part == "input" else kernel, output_gradients=dy)
        return f

    parts = ("input", "kernel") if stride == 1 else ("input",)
    return {(part, method): grads(method, part) for part in parts
            for method in conv_gradients.METHODS}


def transpose_functions(x, kernel, output_size, stride):
    """``{("forward pass", method): tf.function}`` of the transposed convolution of ``x``."""
    def run(method):
        return tf.function(lambda: conv_gradients.conv2d_transpose(
            x, kernel, (output_size, output_size), stride, "SAME", method))

    return {("forward pass", method): run(method) for method in conv_gradients.METHODS}


def _relative_error(reference, other):
    reference, other = tf.cast(reference, tf.float32), tf.cast(other, tf.float32)
    return float(tf.reduce_max(tf.abs(reference - other)) / tf.reduce_max(tf.abs(reference)))


def seconds_per_call(f, iters):
    start = time.perf_counter()
    for _ in range(iters):
        out = f()
    out.numpy()
    return (time.perf_counter() - start) / iters


def main(argv):
    del argv
    print(f"TensorFlow {tf.__version__}; {FLAGS.dtype}, batch {FLAGS.batch}, "
          f"{KERNEL}x{KERNEL} kernels, "
          f"SAME; {FLAGS.rounds} rounds x {FLAGS.iters} calls; ms per call (best round)")
    print(f"  {'layer':<16}{'stride, shape':>19}{'GFLOP':>7}  {'what':<13}{'native':>8}"
          f"{'forward':>9}{'speed-up':>22}  rel err")
    for name, kind, stride, size, c_in, c_out in SHAPES:
        gen = tf.random.Generator.from_seed(0)
        x = gen.normal([FLAGS.batch, size, size, c_in])
        kernel = gen.normal([KERNEL, KERNEL, c_in, c_out], stddev=0.1)
        out = -(-size // stride)
        dy = gen.normal([FLAGS.batch, out, out, c_out])
        x, kernel, dy = (tf.cast(t, FLAGS.dtype) for t in (x, kernel, dy))
        fns = (gradient_functions(x, kernel, dy, stride) if kind == "conv"
               else transpose_functions(dy, kernel, size, stride))
        parts = sorted({part for part, _ in fns}, key=("input", "kernel", "forward pass").index)
        errors = {part: _relative_error(fns[part, "native"](), fns[part, "forward"]())
                  for part in parts}
        for f in fns.values():  # warm-up: tracing, kernel selection
            seconds_per_call(f, 2)
        times = {key: [] for key in fns}
        for _ in range(FLAGS.rounds):
            for key, f in fns.items():
                times[key].append(seconds_per_call(f, FLAGS.iters))
        gflop = 2.0 * FLAGS.batch * out * out * KERNEL * KERNEL * c_in * c_out / 1e9
        for i, part in enumerate(parts):
            ratios = [n / f for n, f in zip(times[part, "native"], times[part, "forward"])]
            label = (name, f"{stride}, {size}x{size} {c_in}->{c_out}", f"{gflop:.2f}") if i == 0 \
                else ("", "", "")
            print(f"  {label[0]:<16}{label[1]:>19}{label[2]:>7}  {part:<13}"
                  f"{1e3 * min(times[part, 'native']):>8.1f}{1e3 * min(times[part, 'forward']):>9.1f}"
                  f"{statistics.median(ratios):>9.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"
                  f"  {errors[part]:.1e}", flush=True)


if __name__ == "__main__":
    app.run(main)
