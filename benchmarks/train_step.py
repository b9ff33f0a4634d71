"""Training-step speed of `tfgan2.GAN.fit` against the seed's Keras loop, in one run.

    python -m benchmarks.train_step                      # defaults, both precisions
    python -m benchmarks.train_step --steps=5 --rounds=1 --precision=float32
    python -m benchmarks.train_step --steps_per_execution=1 --jit_compile
    python -m benchmarks.train_step --families=dcgan,resnet,r3gan --batch_size=16

The networks are the CelebA DCGAN of the Keras lecture notes (the seed):
`tfgan2.networks.dcgan_generator` / `dcgan_discriminator` at 64x64x3 with the
notes' NET_CAPACITY=16, FILTER_SIZE=5, LATENT_DIM=100 and BATCH_SIZE=32. The
"real" data is one random batch in [-1, 1] held in memory (a tensor, or
``tf.data.Dataset.from_tensors(x).repeat()`` for ``fit``), so input cost is
negligible and the same for every contender. Every contender builds fresh
networks with the same builders and seed and plays the non-saturating
cross-entropy game with Adam(2e-4, beta_1=0.5) for both networks (the notes
use Keras' default beta_1; 0.5 is used everywhere so that all contenders do
identical optimizer work).

Measurements. A training step is one D update on a real and a fake batch plus
one G update; ms/step is the wall-clock time of the timed steps divided by
their number, nothing subtracted. Every contender is built and warmed up
first (--warmup steps: tracing, graph optimization, kernel selection); then
--rounds rounds each time --steps steps of every contender in turn, so a burst
of load from other processes hits one round of everybody instead of one whole
contender. The best (fastest) round is the result, the median is printed too,
with "cores" = process CPU time / wall time of that round (2 on an idle
2-core machine; lower when other processes take CPU away).

(a) ``tfgan2.GAN.fit`` with ``steps_per_execution`` (--steps_per_execution)
    and ``jit_compile`` (--jit_compile): one warm-up ``fit``, then per round a
    timed ``fit(ds, epochs=1, steps_per_epoch=--steps)`` (step counts rounded
    up to a multiple of steps_per_execution). The whole ``fit`` call is timed;
    the span from the first to the last batch callback is printed alongside
    as "in-loop" (it leaves out fit's setup and teardown). tf.data autotuning
    is disabled on this constant dataset: with it on, TF 2.21 sometimes blocks
    in the iterator's deletion at the end of ``fit`` until the autotuner's
    next wake-up (period doubling from 10 ms), e.g. a 6 s ``fit`` returning
    after 10.2 s, which is input-pipeline teardown, not training.
(b) The seed's loop on fresh copies of the networks: D compiled with
    binary cross-entropy (from logits: the tfgan2 discriminator has no sigmoid)
    and metrics=["mae"]; the stacked ``Sequential([G, D])`` compiled the same
    with D frozen. Per step: ``G.predict(noise)``,
    ``D.train_on_batch(real, ones)``, ``D.train_on_batch(fake, zeros)``,
    ``stacked.train_on_batch(noise, ones)`` (noise ``N(0, 1)`` drawn with
    NumPy as in the notes, as float32). Keras 3 does not snapshot
    ``trainable`` at compile time as Keras 2 did (D would silently never
    train), so the loop sets ``D.trainable = True`` before D's updates and
    ``False`` before the stacked update; after the warm-up the benchmark checks
    that each call changes exactly the weights it should.
(c) A plain two-tape loop: one ``tf.function`` call per step from Python (D
    step on real and fake, then G step through D; losses ``softplus(-r) +
    softplus(f)`` and ``softplus(-f)``, the cross-entropies from logits);
    ``jit_compile`` as in (a).
(c') For reference only: the same step run steps_per_execution times inside
    one ``tf.function`` (a ``tf.range`` loop), i.e. (c) with (a)'s calling
    pattern. It separates the cost of calling a function per step from the
    cost of what `tfgan2.GAN.train_step` does in addition (metrics, noise
    seeds, step counter).
(d) FLOPs per training step, counted analytically from the built layers: a
    Conv2D / Dense layer costs ``M`` multiply-accumulates (MACs) forward
    (Conv2DTranspose: input pixels x k x k x C_in x C_out); its backward pass
    costs ``M`` for the weight gradient plus ``M`` for the input gradient, the
    latter only where a gradient is needed below the layer. One step computes
      D phase: G forward (no gradient); D forward on the real and the fake
               batch; D weight gradients and input gradients on both, except
               the input gradient of D's first conv (its input is data);
      G phase: G forward; D forward; D input gradients down to the image
               (no D weight gradients); G weight and input gradients, except
               the input gradient of G's first dense layer (z is not trained),
    i.e. per example ``8 M_D - 2 M_D,first + 4 M_G - M_G,first`` MACs, and
    FLOPs = 2 x MACs x batch. Batch norm, activations, losses and the Adam
    updates are not counted (under 1% of the FLOPs here, though not of the
    time; the TF profiler's count of the frozen forward graphs is printed as a
    cross-check of M_D and M_G). The
    seed's loop (b) computes the same convolutions (its G forward in
    ``predict`` and D in the stacked model use inference-mode batch norm).
(f) (a') with the stride-1 convolutions' gradients computed as forward
    convolutions (`tfgan2.conv_gradients`, what ``launch.train
    --conv_gradients=auto`` picks where it measures faster); DCGAN only.
(e) A same-run convolution microbenchmark: ``tf.nn.conv2d`` (batch 32, 32x32,
    64->128 channels, 5x5, SAME; TF's default oneDNN kernel, no XLA) called
    --conv_iters times per round from a ``tf.function``, at the precision's
    compute dtype: the machine's practical FLOP/s at that precision, FLOPs =
    2 x MACs. A conv shaped like the model's mid-size layers (32x32, 16->32,
    5x5) is timed too, for context.

--families=dcgan,resnet,r3gan: instead of the contenders above, one (a) row
per network family at 64x64x3 -- the DCGAN of the notes, `resnet` at ch
--resnet_width (SNGAN-64's layout), `r3gan` at stage width --r3gan_width
(latent 100, 128 and 64, the papers' sizes) -- and (e), timed in the same
rounds (--steps steps per round, default 4): parameters, (d)'s GFLOP per step,
ms per step and per image, GFLOP/s and the fraction FLOP/s(family) /
FLOP/s(e) per round. (d) counts grouped convolutions by their group size,
depthwise convolutions, the spectrally normalized layers, self-attention's
1x1 convolutions and matrix products and R3GAN's generative basis; the
resampling filters, activations and normalizations are not counted.

--precision=float32|mixed_bfloat16|both (default both): (a) and (e) run under
each chosen policy (``keras.mixed_precision.set_global_policy``; networks are
built after it is set, and the policy is set again around each timing; float32
is restored at the end). (b), (c) and (c') run under the first chosen policy
(float32 for "both") and are compared with (a) under that policy. Defaults
(3 rounds x 20 steps) take about 4 minutes on an idle 2-core machine. On a
CPU, --jit_compile makes everything compiled by XLA several times slower (XLA's
own CPU convolutions replace oneDNN's) and the run much longer.

Targets (printed with PASS/MISS; a MISS does not fail the script):
  b/a >= 2                 tfgan2 at least twice as fast as the seed's loop
  c/a >= 1                 tfgan2 at least as fast as the plain loop
  FLOP/s(a) / FLOP/s(e) >= 0.70, per precision
  bfloat16 speedup of (a) = ms float32 / ms mixed_bfloat16 >= 2
The bfloat16 speedup of the conv microbenchmark is printed for reference.
Absolute times depend on whatever else the machine runs (the load average is
printed with every round); the ratios matter more than the absolute numbers.
"""
import contextlib
import json
import os
import platform
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags
from keras import layers

import tfgan2
from tfgan2 import attention, networks, r3gan_networks

PRECISIONS = ("float32", "mixed_bfloat16")

flags.DEFINE_enum("network", "dcgan", ["dcgan", "mlp", "resnet", "r3gan"],
                  "dcgan: the seed's 64x64x3 DCGAN; mlp: the digits default's fully connected "
                  "GAN (8x8x1, latent 64, batch 64); resnet, r3gan: the residual families at "
                  "64x64x3 (--resnet_width, --r3gan_width).")
flags.DEFINE_list("families", [], "Instead of the contenders: one (a) row per network family "
                  "(e.g. dcgan,resnet,r3gan) at 64x64x3 next to the convolution (e), with "
                  "parameters, GFLOP per step, ms per step and per image, and the FLOP/s "
                  "fraction of (e).")
flags.DEFINE_integer("resnet_width", 16, "ch of --network=resnet (published: 64, i.e. "
                     "Mimicry's SNGAN-64 with G 1024 -> 64 and D 64 -> 1024 channels).")
flags.DEFINE_integer("r3gan_width", 64, "Stage width of --network=r3gan (published: 768, "
                     "R3GAN's CIFAR-10 / FFHQ-64 width).")
flags.DEFINE_integer("steps", None, "Timed training steps per contender and round "
                     "(default 20 for dcgan, 200 for mlp).")
flags.DEFINE_integer("rounds", 7, "Rounds of timing, each over all contenders in turn.")
flags.DEFINE_integer("warmup", 20, "Untimed training steps of each contender before timing.")
flags.DEFINE_integer("steps_per_execution", 10, "steps_per_execution of GAN.fit in (a).")
flags.DEFINE_float("ema_decay", None, "Keep an EMA generator in (a) with this decay (default "
                   "none, as the other contenders have none).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the training steps of (a), (c) and (c').")
flags.DEFINE_enum("precision", "both", ["float32", "mixed_bfloat16", "both"],
                  "Keras precision policy of (a) and (e); 'both' runs float32 and bfloat16.")
flags.DEFINE_integer("batch_size", None, "Batch size (default: the notes' BATCH_SIZE 32 for "
                     "dcgan, digits.cfg's 64 for mlp).")
flags.DEFINE_integer("conv_iters", 10, "Timed calls of each convolution per round.")
flags.DEFINE_integer("seed", 0, "Random seed of weights, data and noise.")
flags.DEFINE_integer("intra_op_threads", 0, "TF intra-op thread pool size (0: TF's default, "
                     "one thread per usable CPU).")
flags.DEFINE_integer("inter_op_threads", 0, "TF inter-op thread pool size (0: TF's default).")
flags.DEFINE_list("contenders", ["a", "a'", "b", "c", "c'", "e", "f"],
                  "Contenders to run (a GAN.fit, a' GAN.fit with tfgan2's FusedAdam, b seed "
                  "loop, c and c' plain loops, e the convolutions, f GAN.fit with FusedAdam "
                  "and forward conv gradients); the ratios need a, c and e.")
flags.DEFINE_string("json", None, "Also write the medians and ratios as JSON here.")
FLAGS = flags.FLAGS

# The notes' global parameters.
RESOLUTION, CHANNELS, CAPACITY, FILTER_SIZE, LATENT_DIM = 64, 3, 16, 5, 100
# The digits default (digits.cfg): 8x8x1 images, latent 64, batch 64.
MLP_SHAPE, MLP_LATENT_DIM, MLP_BATCH = (8, 8, 1), 64, 64
LEARNING_RATE, BETA_1 = 2e-4, 0.5
# (batch, height = width, C_in, C_out, kernel) of the convolution microbenchmarks.
REFERENCE_CONV = (32, 32, 64, 128, 5)
MODEL_LIKE_CONV = (32, 32, 16, 32, 5)  # D's block1_conv0 at batch 32


# ------------------------------------------------------------------ setup
@contextlib.contextmanager
def policy(name):
    """Set the global Keras precision policy for the block, then restore the previous one."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


# Latent sizes of the families' papers (SNGAN 128, R3GAN 64); the notes' 100 for dcgan.
FAMILY_LATENT_DIM = {"mlp": MLP_LATENT_DIM, "dcgan": LATENT_DIM, "resnet": 128, "r3gan": 64}


def latent_dim(network=None):
    return FAMILY_LATENT_DIM[network or FLAGS.network]


def batch_size():
    if FLAGS.batch_size is not None:
        return FLAGS.batch_size
    return MLP_BATCH if FLAGS.network == "mlp" else 32


def image_shape():
    return MLP_SHAPE if FLAGS.network == "mlp" else (RESOLUTION, RESOLUTION, CHANNELS)


def timed_steps():
    if FLAGS.steps is not None:
        return FLAGS.steps
    return 200 if FLAGS.network == "mlp" else 20


def build_networks(conv_gradient="native", network=None):
    """Fresh ``(generator, discriminator)`` of ``network`` (default ``--network``) under the
    current policy, their stride-1 convolutions with ``conv_gradient`` gradients
    (`tfgan2.conv_gradients`)."""
    network = network or FLAGS.network
    keras.utils.set_random_seed(FLAGS.seed)
    with tfgan2.conv_gradients.method_scope(conv_gradient):
        if network == "mlp":
            return (networks.mlp_generator(latent_dim=MLP_LATENT_DIM, image_shape=MLP_SHAPE),
                    networks.mlp_discriminator(image_shape=MLP_SHAPE))
        if network in ("resnet", "r3gan"):
            width = FLAGS.resnet_width if network == "resnet" else FLAGS.r3gan_width
            return (getattr(networks, f"{network}_generator")(
                        latent_dim=latent_dim(network), resolution=RESOLUTION,
                        channels=CHANNELS, width=width),
                    getattr(networks, f"{network}_discriminator")(
                        resolution=RESOLUTION, channels=CHANNELS, width=width))
        return (networks.dcgan_generator(latent_dim=LATENT_DIM, resolution=RESOLUTION,
                                         channels=CHANNELS, capacity=CAPACITY,
                                         filter_size=FILTER_SIZE),
                networks.dcgan_discriminator(resolution=RESOLUTION, channels=CHANNELS,
                                             capacity=CAPACITY, filter_size=FILTER_SIZE))


def adam():
    return keras.optimizers.Adam(LEARNING_RATE, beta_1=BETA_1)


def fused_adam():
    return tfgan2.optimizers.FusedAdam(LEARNING_RATE, beta_1=BETA_1)


def real_batch():
    """One batch of "real" images, uniform in [-1, 1], float32 NumPy."""
    rng = np.random.default_rng(FLAGS.seed)
    shape = (batch_size(),) + image_shape()
    return rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def round_up(n, multiple):
    return max(multiple, -(-n // multiple) * multiple)


def _cpuinfo(key):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_description():
    """CPU model and the feature flags that matter for float32 / bfloat16 convolutions."""
    model = _cpuinfo("model name") or platform.processor() or "unknown CPU"
    names = (_cpuinfo("flags") or "").split()
    keep = [n for n in names if n in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni")
            or n.startswith("amx")]
    return f"{model} ({' '.join(sorted(keep)) or 'no avx2/avx512/amx flags'})"


def load_average():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "unknown"


# ------------------------------------------------------------------ contenders
# Each ``make_*`` builds and warms up one contender and returns ``run(n)``, which
# times ``n`` units (training steps, or convolution calls) and returns
# ``(seconds, in_loop_seconds or None)``.


def make_gan_fit(x, ema_decay=None, optimizer=adam, conv_gradient="native", network=None,
                 steps_per_execution=None, warmup=None):
    """(a) `tfgan2.GAN.fit` (``ema_decay``: with an EMA generator, default ``--ema_decay``;
    ``optimizer``: builds each network's optimizer; (a') passes `fused_adam`, (f) also
    ``conv_gradient="forward"``; ``network``, ``steps_per_execution``, ``warmup``: default
    ``--network``, ``--steps_per_execution``, ``--warmup``)."""
    spe = steps_per_execution or FLAGS.steps_per_execution
    ema_decay = FLAGS.ema_decay if ema_decay is None else ema_decay
    generator, discriminator = build_networks(conv_gradient, network)
    gan = tfgan2.GAN(generator, discriminator, latent_dim=latent_dim(network), seed=FLAGS.seed,
                     ema_decay=ema_decay)
    gan.compile(d_optimizer=optimizer(), g_optimizer=optimizer(), loss="non_saturating",
                steps_per_execution=spe, jit_compile=FLAGS.jit_compile)
    ds = tf.data.Dataset.from_tensors(tf.constant(x)).repeat()
    # Nothing to tune in a constant dataset, and with autotuning on, deleting an
    # iterator at the end of each fit() can block until the autotuner's next
    # wake-up (its period doubles from 10 ms: up to ~10 s after a 6 s fit).
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = ds.with_options(options)
    gan.fit(ds, epochs=1, steps_per_epoch=round_up(FLAGS.warmup if warmup is None else warmup,
                                                   spe), shuffle=False, verbose=0)

    def run(n):
        if n % spe:
            raise ValueError(f"{n} steps is not a multiple of steps_per_execution={spe}.")
        before = gan.step
        timer = tfgan2.precision.BatchSpan()
        start = time.perf_counter()
        gan.fit(ds, epochs=1, steps_per_epoch=n, shuffle=False, verbose=0, callbacks=[timer])
        seconds = time.perf_counter() - start
        if gan.step - before != n:
            raise RuntimeError(f"GAN.fit ran {gan.step - before} steps, expected {n}.")
        return seconds, timer.last - timer.first

    return run


def _changed(before, model):
    return any(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


def make_seed_loop(x):
    """(b) The notes' predict / train_on_batch loop."""
    generator, discriminator = build_networks()
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    discriminator.compile(loss=bce, optimizer=adam(), metrics=["mae"])
    stacked = keras.Sequential([generator, discriminator], name="stacked")
    discriminator.trainable = False
    stacked.compile(loss=bce, optimizer=adam(), metrics=["mae"])

    batch = batch_size()
    rng = np.random.default_rng(FLAGS.seed)
    ones, zeros, ones_col = np.ones([batch]), np.zeros([batch]), np.ones([batch, 1])

    def noise():
        return rng.standard_normal((batch, latent_dim())).astype(np.float32)

    def train_discriminator(images, labels):
        discriminator.trainable = True
        discriminator.train_on_batch(images, labels)
        discriminator.trainable = False

    def step():
        fake = generator.predict(noise(), verbose=0)
        discriminator.trainable = True
        discriminator.train_on_batch(x, ones)
        discriminator.train_on_batch(fake, zeros)
        discriminator.trainable = False
        stacked.train_on_batch(noise(), ones_col)

    for _ in range(max(1, FLAGS.warmup)):
        step()
    # The Keras 3 port of the freezing: D's calls move D only, the stacked call G only.
    g_before, d_before = generator.get_weights(), discriminator.get_weights()
    train_discriminator(x, ones)
    if not _changed(d_before, discriminator) or _changed(g_before, generator):
        raise RuntimeError("seed loop: D.train_on_batch did not update D alone.")
    g_before, d_before = generator.get_weights(), discriminator.get_weights()
    stacked.train_on_batch(noise(), ones_col)
    if not _changed(g_before, generator) or _changed(d_before, discriminator):
        raise RuntimeError("seed loop: the stacked model did not update G alone.")

    def run(n):
        start = time.perf_counter()
        for _ in range(n):
            step()
        return time.perf_counter() - start, None

    return run


def make_plain_loop(x, steps_per_call=1):
    """(c) A hand-written two-tape step; (c') with ``steps_per_call`` steps per call."""
    generator, discriminator = build_networks()
    d_opt, g_opt = adam(), adam()
    d_vars, g_vars = discriminator.trainable_variables, generator.trainable_variables
    d_opt.build(d_vars)
    g_opt.build(g_vars)
    batch, dim = batch_size(), latent_dim()
    real = tf.constant(x)

    def train_step(real):
        # The phases carry GAN.train_step's name scopes (benchmarks/profile_step.py).
        with tf.name_scope("discriminator_step"):
            fake = generator(tf.random.normal([batch, dim]), training=True)
            with tf.GradientTape() as tape:
                real_logits = discriminator(real, training=True)
                fake_logits = discriminator(fake, training=True)
                d_loss = tf.reduce_mean(tf.nn.softplus(-real_logits)
                                        + tf.nn.softplus(fake_logits))
            d_opt.apply(tape.gradient(d_loss, d_vars), d_vars)
        with tf.name_scope("generator_step"):
            with tf.GradientTape() as tape:
                fake_logits = discriminator(generator(tf.random.normal([batch, dim]),
                                                      training=True), training=True)
                g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
            g_opt.apply(tape.gradient(g_loss, g_vars), g_vars)
        return d_loss

    @tf.function(jit_compile=FLAGS.jit_compile)
    def call(real):
        if steps_per_call == 1:
            return train_step(real)
        d_loss = tf.constant(0.0)
        for _ in tf.range(steps_per_call):
            d_loss = train_step(real)
        return d_loss

    for _ in range(-(-max(1, FLAGS.warmup) // steps_per_call)):
        call(real)

    def run(n):
        if n % steps_per_call:
            raise ValueError(f"{n} steps is not a multiple of {steps_per_call} steps per call.")
        start = time.perf_counter()
        for _ in range(n // steps_per_call):
            loss = call(real)
        float(loss)  # calls already return after running on CPU; fetch a result regardless
        return time.perf_counter() - start, None

    return run


def conv_flops(shape):
    batch, hw, c_in, c_out, k = shape
    return 2.0 * batch * hw * hw * k * k * c_in * c_out


def make_conv(shape, dtype):
    """(e) ``tf.nn.conv2d`` of ``shape`` = (batch, height = width, C_in, C_out, kernel)."""
    batch, hw, c_in, c_out, k = shape
    gen = tf.random.Generator.from_seed(FLAGS.seed)
    x = tf.cast(gen.uniform([batch, hw, hw, c_in], -1.0, 1.0), dtype)
    w = tf.cast(gen.normal([k, k, c_in, c_out], stddev=0.05), dtype)

    @tf.function(jit_compile=False)
    def conv(x, w):
        return tf.nn.conv2d(x, w, strides=1, padding="SAME")

    for _ in range(3):
        conv(x, w)

    def run(n):
        start = time.perf_counter()
        for _ in range(n):
            out = conv(x, w)
        out.numpy()
        return time.perf_counter() - start, None

    return run


# ------------------------------------------------------------------ (d) FLOPs
def _layer_macs(layer):
    """Forward MACs per example of one top-level layer (0: not counted)."""
    inner = layer.layer if isinstance(layer, tfgan2.layers.SpectralNormalization) else layer
    if isinstance(layer, attention.SelfAttention2D):
        _, h, w, c = layer.input.shape
        n = h * w
        # theta, phi, g, o (1x1) and the two attention matrix products.
        return n * c * (c // 8 + c // 8 + c // 2) + n * (c // 2) * c + n * (n // 4) * (
            c // 8 + c // 2)
    if isinstance(layer, r3gan_networks.GenerativeBasis):
        return layer.input.shape[-1] * layer.channels + layer.size ** 2 * layer.channels
    if isinstance(inner, layers.Conv2DTranspose):
        _, h, w, c_in = layer.input.shape
        return h * w * int(np.prod(inner.kernel_size)) * c_in * inner.filters
    if isinstance(inner, layers.DepthwiseConv2D):
        _, h, w, c_out = layer.output.shape
        return h * w * int(np.prod(inner.kernel_size)) * c_out
    if isinstance(inner, layers.Conv2D):
        _, h, w, _ = layer.output.shape
        c_in = layer.input.shape[-1]
        return h * w * int(np.prod(inner.kernel_size)) * c_in // inner.groups * inner.filters
    if isinstance(inner, layers.Dense):
        return int(np.prod(layer.input.shape[1:])) * inner.units
    return 0


def layer_macs(model):
    """``[(layer name, forward MACs per example)]`` of the Dense and convolution layers
    (spectrally normalized or not; grouped and depthwise convolutions by their group
    sizes), self-attention blocks and R3GAN's generative basis, in order."""
    rows = []
    for layer in model.layers:
        macs = _layer_macs(layer)
        if macs:
            rows.append((layer.name, int(macs)))
    return rows


def profiler_forward_flops(model, input_shape):
    """TF profiler float-op count of ``model``'s frozen inference graph for one example."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    fn = tf.function(lambda t: model(t, training=False)).get_concrete_function(
        tf.TensorSpec((1,) + tuple(input_shape), tf.float32))
    graph = convert_variables_to_constants_v2(fn).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the v1 profiler warns about a deprecated helper it calls
    try:
        return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops
    finally:
        logger.setLevel(level)


def step_flops(network=None):
    """``(FLOPs per training step, description lines)``, convention of the module docstring."""
    generator, discriminator = build_networks(network=network)
    g_rows, d_rows = layer_macs(generator), layer_macs(discriminator)
    m_g, m_d = sum(m for _, m in g_rows), sum(m for _, m in d_rows)
    m_g_first, m_d_first = g_rows[0][1], d_rows[0][1]
    d_phase = m_g + 2 * m_d + 2 * (m_d + m_d - m_d_first)
    g_phase = m_g + m_d + m_d + (m_g + m_g - m_g_first)
    per_example = d_phase + g_phase
    total = 2 * per_example * batch_size()
    prof_d = profiler_forward_flops(discriminator, image_shape())
    prof_g = profiler_forward_flops(generator, (latent_dim(network),))
    lines = [
        f"forward MACs per example: D {m_d / 1e6:.2f} M ({len(d_rows)} layers, first "
        f"{d_rows[0][0]} {m_d_first / 1e6:.2f} M), G {m_g / 1e6:.2f} M ({len(g_rows)} layers, "
        f"first {g_rows[0][0]} {m_g_first / 1e6:.2f} M)",
        f"  TF profiler, frozen forward graph, 1 example: D {prof_d / 1e6:.2f} MFLOP "
        f"(analytic 2 x MACs = {2 * m_d / 1e6:.2f}), G {prof_g / 1e6:.2f} MFLOP "
        f"(analytic {2 * m_g / 1e6:.2f})",
        f"per example: D phase {d_phase / 1e6:.1f} M MACs + G phase {g_phase / 1e6:.1f} M MACs"
        f" = {per_example / 1e6:.1f} M MACs",
        f"per training step (batch {batch_size()}): {total / 1e9:.2f} GFLOP "
        f"(2 x MACs x batch)",
    ]
    return total, lines


# ------------------------------------------------------------------ report
def verdict(value, target):
    return "PASS" if value >= target else "MISS"


def spread(values):
    """``"median [min - max]"`` of a list of numbers."""
    return (f"{statistics.median(values):.2f} [{min(values):.2f} - {max(values):.2f}]")


def network_description(network=None):
    network = network or FLAGS.network
    if network == "mlp":
        return (f"digits MLP GAN {'x'.join(map(str, MLP_SHAPE))} (G 1024-1024, D 256-256), "
                f"latent {MLP_LATENT_DIM}")
    if network == "resnet":
        return (f"SNGAN ResNet 64x64x3, ch {FLAGS.resnet_width}, latent "
                f"{latent_dim(network)}")
    if network == "r3gan":
        return f"R3GAN 64x64x3, width {FLAGS.r3gan_width}, latent {latent_dim(network)}"
    return (f"DCGAN 64x64x3, capacity {CAPACITY}, filter {FILTER_SIZE}, latent {LATENT_DIM}")


def family_label(network):
    """A short row label: the family and its width."""
    width = {"dcgan": f"capacity {CAPACITY}", "resnet": f"ch {FLAGS.resnet_width}",
             "r3gan": f"width {FLAGS.r3gan_width}"}[network]
    return f"{network} ({width})"


def parameter_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def run_families():
    """``--families``: (a) per network family at 64x64x3 next to the convolution (e).

    Each family plays the same game as (a) (non-saturating loss, Adam, batch
    ``--batch_size``, ``--steps`` timed steps per round, one call per
    ``min(--steps_per_execution, --steps)`` steps); the rows give its size, the
    analytic FLOPs per step of (d), the step time per image and the FLOP/s
    fraction of the convolution benchmark (e) timed in the same rounds.
    """
    families = [f.strip() for f in FLAGS.families if f.strip()]
    unknown = [f for f in families if f not in ("dcgan", "resnet", "r3gan")]
    if unknown:
        raise ValueError(f"--families takes dcgan, resnet, r3gan (64x64x3 networks); got "
                         f"{', '.join(unknown)}.")
    precisions = PRECISIONS if FLAGS.precision == "both" else (FLAGS.precision,)
    steps = FLAGS.steps or 4
    spe = min(FLAGS.steps_per_execution, steps)
    steps = round_up(steps, spe)
    x = real_batch()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; CPU: {cpu_description()}; "
          f"{len(os.sched_getaffinity(0))} usable CPUs")
    print(f"families {', '.join(families)} at 64x64x3, batch {batch_size()}; {FLAGS.rounds} "
          f"rounds x {steps} timed steps ({spe} per call), {FLAGS.warmup} warm-up steps; "
          f"precisions {', '.join(precisions)}", flush=True)
    started = time.perf_counter()
    sizes, flops = {}, {}
    with policy("float32"):
        for family in families:
            generator, discriminator = build_networks(network=family)
            sizes[family] = (parameter_count(generator), parameter_count(discriminator))
            flops[family], lines = step_flops(family)
            print(f"\n(d) {network_description(family)}: G {sizes[family][0]:,} / D "
                  f"{sizes[family][1]:,} parameters")
            for line in lines:
                print("  " + line)
    contenders = []
    for precision in precisions:
        with policy(precision):
            dtype = keras.mixed_precision.global_policy().compute_dtype
            contenders.append(("e", precision, FLAGS.conv_iters, conv_flops(REFERENCE_CONV),
                               make_conv(REFERENCE_CONV, dtype)))
            for family in families:
                contenders.append((family, precision, steps, flops[family],
                                   make_gan_fit(x, network=family, steps_per_execution=spe,
                                                warmup=FLAGS.warmup)))
        print(f"  {precision}: ready after {time.perf_counter() - started:.0f} s", flush=True)
    ms = {(key, p): [] for key, p, *_ in contenders}
    for r in range(FLAGS.rounds):
        cells = []
        for key, precision, units, _, run in contenders:
            with policy(precision):
                seconds, _ = run(units)
            ms[key, precision].append(1e3 * seconds / units)
            cells.append(f"{key} {'bf16' if precision == 'mixed_bfloat16' else 'f32'} "
                         f"{1e3 * seconds / units:.1f}")
        print(f"round {r + 1}/{FLAGS.rounds}, ms per step or conv call: {' | '.join(cells)}  "
              f"(load average {load_average()})", flush=True)
    batch = batch_size()
    print(f"\nsummary ({time.perf_counter() - started:.0f} s); medians over rounds; fraction = "
          f"FLOP/s of the family / FLOP/s of (e), per round")
    print(f"  {'family':<34}{'precision':>15}{'G params':>11}{'D params':>11}{'GFLOP/step':>11}"
          f"{'ms/step':>9}{'ms/image':>9}{'GFLOP/s':>9}{'fraction':>9}")
    rows = {}
    for key, precision, units, unit_flops, _ in contenders:
        if key == "e":
            continue
        fraction = [e / a * unit_flops / conv_flops(REFERENCE_CONV)
                    for a, e in zip(ms[key, precision], ms["e", precision])]
        median = statistics.median(ms[key, precision])
        rows[f"{key} {precision}"] = {
            "ms_per_step": median, "ms_per_image": median / batch,
            "gflop_per_step": unit_flops / 1e9, "fraction": statistics.median(fraction),
            "params": sizes[key]}
        print(f"  {family_label(key):<34}{precision:>15}{sizes[key][0]:>11,}"
              f"{sizes[key][1]:>11,}{unit_flops / 1e9:>11.2f}{median:>9.0f}"
              f"{median / batch:>9.1f}{unit_flops / median / 1e6:>9.1f}"
              f"{statistics.median(fraction):>9.2f}")
    for precision in precisions:
        e = statistics.median(ms["e", precision])
        print(f"  {'(e) conv ' + 'x'.join(map(str, REFERENCE_CONV)):<34}{precision:>15}"
              f"{'':>33}{e:>9.1f}{'':>9}{conv_flops(REFERENCE_CONV) / e / 1e6:>9.1f}")
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump({"cpu": cpu_description(), "batch": batch, "rows": rows,
                       "wall_ms": {f"{k} {p}": v for (k, p), v in ms.items()}}, f, indent=1)


def main(argv):
    del argv
    # Before TensorFlow runs anything: the pools are created with the first op.
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    if FLAGS.families:
        run_families()
        return
    precisions = PRECISIONS if FLAGS.precision == "both" else (FLAGS.precision,)
    primary = precisions[0]
    spe = FLAGS.steps_per_execution
    steps = round_up(timed_steps(), spe)
    with_conv = FLAGS.network != "mlp"
    x = real_batch()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"Python {platform.python_version()}")
    print(f"CPU: {cpu_description()}; {os.cpu_count()} logical CPUs, "
          f"{len(os.sched_getaffinity(0))} usable; TF threads intra-op "
          f"{tf.config.threading.get_intra_op_parallelism_threads()} / inter-op "
          f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = TF's default, one "
          f"per usable CPU); TF_ENABLE_ONEDNN_OPTS="
          f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset (on)')}")
    print(f"{network_description()}, batch {batch_size()}; {FLAGS.rounds} rounds x {steps} "
          f"timed steps, {FLAGS.warmup} warm-up steps; steps_per_execution {spe}, jit_compile "
          f"{FLAGS.jit_compile}; precisions {', '.join(precisions)}", flush=True)
    started = time.perf_counter()

    with policy("float32"):
        flops, flop_lines = step_flops()
    print("\n(d) FLOPs per training step")
    for line in flop_lines:
        print("  " + line)

    # (key, precision, unit count per round, FLOPs per unit, run)
    contenders = []
    print(f"\nbuilding and warming up (load average {load_average()})", flush=True)
    for precision in precisions:
        with policy(precision):
            dtype = keras.mixed_precision.global_policy().compute_dtype
            if with_conv and "e" in FLAGS.contenders:
                contenders.append(("e", precision, FLAGS.conv_iters,
                                   conv_flops(REFERENCE_CONV), make_conv(REFERENCE_CONV, dtype)))
                contenders.append(("e model-like", precision, FLAGS.conv_iters,
                                   conv_flops(MODEL_LIKE_CONV),
                                   make_conv(MODEL_LIKE_CONV, dtype)))
            contenders.append(("a", precision, steps, flops, make_gan_fit(x)))
            if "a'" in FLAGS.contenders:
                contenders.append(("a'", precision, steps, flops,
                                   make_gan_fit(x, optimizer=fused_adam)))
            if with_conv and "f" in FLAGS.contenders:
                contenders.append(("f", precision, steps, flops,
                                   make_gan_fit(x, optimizer=fused_adam,
                                                conv_gradient="forward")))
            if precision == primary:
                if "b" in FLAGS.contenders:
                    contenders.append(("b", precision, steps, flops, make_seed_loop(x)))
                if "c" in FLAGS.contenders:
                    contenders.append(("c", precision, steps, flops, make_plain_loop(x)))
                if "c'" in FLAGS.contenders:
                    contenders.append(("c'", precision, steps, flops,
                                       make_plain_loop(x, steps_per_call=spe)))
        print(f"  {precision}: ready after {time.perf_counter() - started:.0f} s", flush=True)

    ms = {(key, p): [] for key, p, *_ in contenders}  # wall ms per unit, one entry per round
    cpu_ms = {(key, p): [] for key, p, *_ in contenders}  # process CPU ms per unit
    in_loop = {(key, p): [] for key, p, *_ in contenders}
    for r in range(FLAGS.rounds):
        cells = []
        for key, precision, units, _, run in contenders:
            with policy(precision):
                cpu = time.process_time()
                seconds, in_loop_seconds = run(units)
                cpu = time.process_time() - cpu
            ms[key, precision].append(1e3 * seconds / units)
            cpu_ms[key, precision].append(1e3 * cpu / units)
            if in_loop_seconds is not None:
                in_loop[key, precision].append(1e3 * in_loop_seconds / units)
            tag = "bf16" if precision == "mixed_bfloat16" else "f32"
            cells.append(f"{key} {tag} {1e3 * seconds / units:.1f}")
        print(f"round {r + 1}/{FLAGS.rounds}, ms per step or conv call: {' | '.join(cells)}  "
              f"(load average {load_average()})", flush=True)

    median = {k: statistics.median(v) for k, v in ms.items()}
    cpu_median = {k: statistics.median(v) for k, v in cpu_ms.items()}

    def per_round(num, den, table=ms):
        """Per-round ratios ``table[num] / table[den]``: both timed back to back in each round."""
        return [n / d for n, d in zip(table[num], table[den])]

    def rate(key, precision, unit_flops):
        return [unit_flops / (t / 1e3) for t in ms[key, precision]]

    labels = {
        "a": "(a) tfgan2.GAN.fit",
        "a'": "(a') GAN.fit, tfgan2 FusedAdam",
        "f": "(f) (a') + forward conv gradients",
        "b": "(b) seed Keras loop",
        "c": "(c) plain tf.function, 1 step/call",
        "c'": f"(c') plain tf.function, {spe} steps/call",
        "e": "(e) conv {}x{}x{}, {}->{}, {}x{}".format(
            REFERENCE_CONV[0], REFERENCE_CONV[1], REFERENCE_CONV[1], *REFERENCE_CONV[2:],
            REFERENCE_CONV[4]),
        "e model-like": "    conv {}x{}x{}, {}->{}, {}x{}".format(
            MODEL_LIKE_CONV[0], MODEL_LIKE_CONV[1], MODEL_LIKE_CONV[1], *MODEL_LIKE_CONV[2:],
            MODEL_LIKE_CONV[4]),
    }
    print(f"\nsummary ({time.perf_counter() - started:.0f} s; load average at end "
          f"{load_average()}); median over rounds [fastest - slowest]; CPU ms = process CPU "
          f"time per step (steadier than wall time on a shared machine; 2x wall when both "
          f"cores are busy)")
    print(f"  {'':<40}{'precision':>15}{'wall ms/step':>26}{'CPU ms':>9}{'GFLOP/s':>9}")
    for key, precision, units, unit_flops, _ in contenders:
        unit = "  (ms/call)" if key.startswith("e") else ""
        walls = ms[key, precision]
        print(f"  {labels[key]:<40}{precision:>15}{median[key, precision]:>9.1f} "
              f"[{min(walls):>6.1f} - {max(walls):>6.1f}]{cpu_median[key, precision]:>9.1f}"
              f"{statistics.median(rate(key, precision, unit_flops)) / 1e9:>9.1f}{unit}")
        if in_loop[key, precision]:
            print(f"  {'    in-loop (batch callbacks)':<40}{precision:>15}"
                  f"{statistics.median(in_loop[key, precision]):>9.1f}")
    print(f"  (d) {flops / 1e9:.3f} GFLOP per training step")

    # Ratios are taken per round (both contenders timed back to back) and summarized by
    # their median, so a burst of load on the machine moves one round, not the result.
    rows = []  # (measure, per-round values, target or None)
    present = {key for key, *_ in contenders}
    if "b" in present:
        rows.append((f"b/a seed loop / GAN.fit ({primary})",
                     per_round(("b", primary), ("a", primary)), 2.0))
    if "c" in present:
        rows.append((f"c/a plain loop / GAN.fit, wall ({primary})",
                     per_round(("c", primary), ("a", primary)), 1.0))
        rows.append(("c/a plain loop / GAN.fit, CPU time",
                     per_round(("c", primary), ("a", primary), cpu_ms), None))
    if "c" in present and "a'" in present:
        rows.append(("c/a' plain loop / GAN.fit FusedAdam, wall",
                     per_round(("c", primary), ("a'", primary)), 1.0))
        rows.append(("c/a' plain loop / GAN.fit FusedAdam, CPU",
                     per_round(("c", primary), ("a'", primary), cpu_ms), None))
    if "f" in present and "a'" in present:
        rows.append(("a'/f forward conv gradients speed-up",
                     per_round(("a'", primary), ("f", primary)), None))
    if "f" in present and "c" in present:
        rows.append(("c/f plain loop / GAN.fit, forward grads",
                     per_round(("c", primary), ("f", primary)), 1.0))
    if "c'" in present:
        rows.append((f"c'/a plain, {spe} steps/call / GAN.fit",
                     per_round(("c'", primary), ("a", primary)), None))
    if "e" in present:
        for precision in precisions:
            # (flops / t_a) / (conv flops / t_e), t = ms per step and per conv call.
            rows.append((f"FLOP/s(a) / FLOP/s(e) ({precision})",
                         [r * flops / conv_flops(REFERENCE_CONV)
                          for r in per_round(("e", precision), ("a", precision))], 0.70))
            if "f" in present:
                rows.append((f"FLOP/s(f) / FLOP/s(e) ({precision})",
                             [r * flops / conv_flops(REFERENCE_CONV)
                              for r in per_round(("e", precision), ("f", precision))], 0.70))
    if len(precisions) == 2:
        rows.append(("bfloat16 speedup of (a)",
                     per_round(("a", "float32"), ("a", "mixed_bfloat16")), None))
        if "e" in present:
            for key, name in (("e", "bfloat16 speedup of conv (e)"),
                              ("e model-like", "bfloat16 speedup of model-like conv")):
                rows.append((name, per_round((key, "float32"), (key, "mixed_bfloat16")), None))
    print(f"\n  {'ratio (per round)':<42}{'median [min - max]':>24}{'target':>10}  result")
    for name, values, target in rows:
        result = "info" if target is None else verdict(statistics.median(values), target)
        shown = "-" if target is None else f">= {target:g}"
        print(f"  {name:<42}{spread(values):>24}{shown:>10}  {result}")
    if FLAGS.json:
        report = {
            "network": FLAGS.network, "cpu": cpu_description(), "jit_compile": FLAGS.jit_compile,
            "intra_op_threads": FLAGS.intra_op_threads,
            "inter_op_threads": FLAGS.inter_op_threads,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
            "gflop_per_step": flops / 1e9, "conv_gflop": conv_flops(REFERENCE_CONV) / 1e9,
            "wall_ms": {f"{k} {p}": v for (k, p), v in ms.items()},
            "cpu_ms": {f"{k} {p}": v for (k, p), v in cpu_ms.items()},
            "ratios": {name: {"median": statistics.median(values), "per_round": values}
                       for name, values, _ in rows},
        }
        with open(FLAGS.json, "w") as f:
            json.dump(report, f, indent=1)
    print_auto_precision(x)


def print_auto_precision(x):
    """What ``launch.train --precision=auto`` would choose for these networks here."""
    def build(policy):
        generator, discriminator = build_networks()
        gan = tfgan2.GAN(generator, discriminator, latent_dim=latent_dim(), seed=FLAGS.seed)
        gan.compile(d_optimizer=adam(), g_optimizer=adam(), loss="non_saturating",
                    steps_per_execution=1, jit_compile=FLAGS.jit_compile)
        return tfgan2.precision.gan_fit_runner(gan, tf.constant(x))

    print(f"\nprecision auto: {tfgan2.precision.choose_precision(build).describe()}", flush=True)


if __name__ == "__main__":
    app.run(main)
