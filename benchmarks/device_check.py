"""What a machine does with tfgan2, in one table: device, precision, float16 numerics, speed.

    python -m benchmarks.device_check                  # on one GPU: under 8 minutes
    python -m benchmarks.device_check --quick          # the CPU subset at tiny sizes
    python -m benchmarks.device_check --json_out=device.json --budget_minutes=5

Sections (rows of the table, in this order):

device       TensorFlow / Keras versions (and CUDA / cuDNN of the build); each GPU's
             name and compute capability; the CPU model, usable cores and its
             bfloat16 instructions.
precision    what ``--precision=auto`` picks here for DCGAN (`tfgan2.precision`;
             a CPU with bfloat16 instructions times a few float32 and bfloat16
             steps; ``--quick`` does not time them).
penalties    R1 and the WGAN gradient penalty (`tfgan2.regularizers`) of a small
             DCGAN discriminator whose logit layer is scaled by 1, 1e-3 and 1e-5,
             under ``mixed_float16`` and under float32 with the same weights and
             data: both values, the relative error of the float16 value as the
             library computes it (input gradients scaled by the loss scale), and
             that of the same penalty without loss scaling (which underflows). On
             a CPU float16 is emulated: the numbers hold, the speed does not.
replicas     under ``mixed_float16`` and MirroredStrategy on two devices (two GPUs,
             one GPU split in two in a child process, or two logical CPUs), D's
             input is made infinite on replica 1 only for one step: D's weights
             must stay unchanged, the loss scale must halve on both replicas, and
             the next clean step must train (finite, changed weights).
step time    ms per training step of each network family (DCGAN-64, ResNet (SNGAN,
             hinge loss) and R3GAN (relativistic pairing loss with R1 + R2, as
             r3gan.cfg), `OBJECTIVES`) under float32,
             mixed_float16 and mixed_bfloat16, on one replica, for: bare
             ``GAN.fit`` with ``steps_per_execution`` 1 and 10, ``GAN.fit`` with
             ``jit_compile=True`` (XLA) at 10, and `tfgan2.train` at 10 (the
             training callbacks: non-finite guard, loss log with one write per
             timed window, sample grid and checkpoints at their default
             intervals, so none inside a window). Each configuration is built
             fresh and warmed up (tracing, compilation), then timed in 3 windows
             of ``--timed_steps`` steps, each from the first batch's start to the
             epoch's end; the fastest window counts (a window over `WINDOW_CAP`
             seconds is the last). Rows go configuration-major (every family's
             row of one precision and variant, then the next), so a spent
             budget cuts configurations, not families. Each row shows its wall ms
             per step, the speed relative to the family's first row (float32,
             ``fit``, 1 step per execution), the process CPU ms per step (host
             work) and the peak memory of the configuration: the GPU allocator's
             peak
             (`tf.config.experimental.get_memory_info`), on a CPU the process's
             peak resident set since the row began (which never drops below what
             the process already holds).
two replicas DCGAN float32 on two replicas (two GPUs or two logical CPUs; skipped
             on one GPU): ``steps_per_execution=10`` (run unrolled, `tfgan2.executions`), ``jit_compile=True`` (refused by
             GAN.compile), and the step time of ``fit`` and of `tfgan2.train` at 1
             step per execution.
determinism  with `tf.config.experimental.enable_op_determinism`: that Keras drops
             ``jit_compile=True`` (with GAN.compile's warning), then two fresh
             runs of three DCGAN steps without XLA (same seeds) must give
             bit-identical weights; under float32 and under the policy ``auto``
             picked. Op determinism is switched off again afterwards.

The time is a budget: step-time rows stop (and are listed as skipped) once
``--budget_minutes`` minus a reserve for determinism is spent. On a CPU the
sizes are small (32x32, batch 16; ``--quick``: 16x16, batch 4, float32, no XLA,
ResNet and R3GAN with bare ``fit`` at 1 step per execution only, two replicas
without `tfgan2.train`) and what does not apply is skipped with the reason: the
compute capability, float16 step times (tfgan2 refuses ``mixed_float16`` on a
CPU), bfloat16 without bfloat16 instructions, GPU memory. Times are
wall-clock on whatever else the machine runs: compare rows of one run, as
ratios.
"""
import contextlib
import gc
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

import tfgan2
from benchmarks import train_step
from tfgan2 import regularizers

flags.DEFINE_bool("quick", False, "Tiny sizes (16x16, batch 4), no XLA, ResNet and R3GAN "
                  "with one variant, auto precision not timed; on a CPU float32 only: a smoke "
                  "test of the script.")
flags.DEFINE_float("budget_minutes", 6.5, "Start no step-time row after this many minutes "
                   "(less a reserve for the determinism rows).")
flags.DEFINE_list("timed_families", ["dcgan", "resnet", "r3gan"], "Network families to time; "
                  "those whose builders tfgan2.networks lacks are skipped with a note.")
flags.DEFINE_integer("timed_steps", None, "Steps per timed window (3 windows per step-time "
                     "row, 1 with --quick), a multiple of 10 (default 100 on a GPU, 40 on a CPU, "
                     "20 with --quick).")
flags.DEFINE_string("json_out", None, "Also write the rows, skips and notes as JSON here.")
flags.DEFINE_enum("replica_check_child", None, ["gpu"], "Internal: only the replica check, "
                  "on GPU 0 split into two logical GPUs; prints one tagged JSON line.")
FLAGS = flags.FLAGS

REPLICA_TAG = "REPLICA_CHECK "
SCALES = (1.0, 1e-3, 1e-5)  # factors of D's logit kernel in the penalty rows
DETERMINISM_RESERVE = 60.0  # seconds kept for the determinism rows
WINDOW_CAP = 20.0  # seconds: a step-time row times no further window after one this long
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
REPLICA_ROW = "float16 overflow on replica 1 of 2"

# Network families: (generator builder, discriminator builder) in tfgan2.networks.
FAMILIES = {
    "dcgan": ("dcgan_generator", "dcgan_discriminator"),
    "resnet": ("resnet_generator", "resnet_discriminator"),
    "r3gan": ("r3gan_generator", "r3gan_discriminator"),
}
# Each family is timed with its recipe's objective: the notes' DCGAN, SNGAN's hinge loss,
# r3gan.cfg's relativistic pairing loss with R1 + R2 (their second backward pass is part
# of R3GAN's step, and of what float16 must get right).
OBJECTIVES = {
    "dcgan": dict(loss="non_saturating"),
    "resnet": dict(loss="hinge"),
    "r3gan": dict(loss="relativistic_pairing", r1_gamma=0.05, r2_gamma=0.05),
}
# (label, steps_per_execution, jit_compile, through tfgan2.train with its callbacks)
VARIANTS = (
    ("fit, 1 step/execution", 1, False, False),
    ("fit, 10 steps/execution", 10, False, False),
    ("fit, 10 steps/execution, XLA", 10, True, False),
    ("tfgan2.train, 10 steps/execution", 10, False, True),
)


def sizes(mode):
    """``{"resolution", "batch", family: (generator kwargs, discriminator kwargs)}``.

    ``mode``: ``"gpu"`` (DCGAN-64 of the seed notes as in `benchmarks.train_step`,
    batch 32; resnet at SNGAN-64's ch 64, r3gan at ``--r3gan_width``, the flag of
    `benchmarks.train_step`, by default r3gan.cfg's 64: R3GAN's 768 does not fit the
    8-minute budget), ``"cpu"`` or ``"quick"``.
    """
    if mode == "gpu":
        res, batch = train_step.RESOLUTION, 32
        widths = {"dcgan": dict(capacity=train_step.CAPACITY,
                                filter_size=train_step.FILTER_SIZE),
                  "resnet": dict(width=64), "r3gan": dict(width=FLAGS.r3gan_width)}
        latent = {"dcgan": train_step.LATENT_DIM, "resnet": 128, "r3gan": 64}
    elif mode == "cpu":
        res, batch = 32, 16
        widths = {"dcgan": dict(capacity=8, filter_size=5), "resnet": dict(width=16),
                  "r3gan": dict(width=16)}
        latent = dict.fromkeys(FAMILIES, 64)
    else:
        res, batch = 16, 4
        widths = {"dcgan": dict(capacity=4, filter_size=3), "resnet": dict(width=8),
                  "r3gan": dict(width=16)}
        latent = dict.fromkeys(FAMILIES, 16)
    out = {"resolution": res, "batch": batch}
    for family in FAMILIES:
        common = dict(resolution=res, channels=3, **widths[family])
        out[family] = (dict(common, latent_dim=latent[family]), common)
    return out


# ------------------------------------------------------------------ output
class Table:
    """Rows ``(section, check, result)`` printed as they come; skips and notes at the end."""

    def __init__(self):
        self.rows, self.skipped, self.notes, self.times = [], [], [], []
        print(f"{'section':<12} {'check':<58} result", flush=True)

    def add(self, section, check, result):
        self.rows.append({"section": section, "check": check, "result": result})
        print(f"{section:<12} {check:<58} {result}", flush=True)

    def skip(self, what, why):
        self.skipped.append({"what": what, "why": why})

    def note(self, text):
        self.notes.append(text)

    @contextlib.contextmanager
    def timed(self, section):
        """Records the wall and process CPU seconds of a section."""
        wall, cpu = time.monotonic(), time.process_time()
        try:
            yield
        finally:
            self.times.append((section, time.monotonic() - wall, time.process_time() - cpu))

    def finish(self, seconds, json_path=None):
        print("\nskipped:" if self.skipped else "\nskipped: nothing")
        for item in self.skipped:
            print(f"  - {item['what']}: {item['why']}")
        if self.notes:
            print("notes:")
            for text in self.notes:
                print(f"  - {text}")
        spent = ", ".join(f"{name} {wall:.0f} s ({cpu:.0f} s CPU)"
                          for name, wall, cpu in self.times)
        print(f"\ndevice check finished in {seconds:.0f} s: {spent}", flush=True)
        if json_path:
            with open(json_path, "w", encoding="utf-8") as f:
                json.dump({"rows": self.rows, "skipped": self.skipped, "notes": self.notes,
                           "seconds": seconds,
                           "sections": {name: {"wall": wall, "cpu": cpu}
                                        for name, wall, cpu in self.times}}, f, indent=1)


# ------------------------------------------------------------------ helpers
def gpus():
    return tf.config.list_physical_devices("GPU")


def compute_capability(device):
    cc = tf.config.experimental.get_device_details(device).get("compute_capability")
    return tuple(cc) if cc else None


def mib(num_bytes):
    return f"{num_bytes / 2 ** 20:.0f} MiB"


class Memory:
    """Peak memory of one configuration: the GPU allocator's, or the process's resident set."""

    def __init__(self, on_gpu):
        self.on_gpu = on_gpu

    def reset(self):
        if self.on_gpu:
            tf.config.experimental.reset_memory_stats("GPU:0")
            return
        try:  # Linux: writing 5 resets the peak resident set size (VmHWM) to the current one
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def peak(self):
        if self.on_gpu:
            return "GPU peak " + mib(tf.config.experimental.get_memory_info("GPU:0")["peak"])
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return "peak RSS " + mib(int(line.split()[1]) * 1024)
        except OSError:
            pass
        import resource

        return "peak RSS " + mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


class Span(keras.callbacks.Callback):
    """Wall and process CPU seconds from the first batch's start to the last epoch's end.

    Placed last among the callbacks, it includes what the others do at the
    epoch's end (`tfgan2.train` writes its loss log there).
    """

    first = last = cpu_first = cpu_last = None

    def on_train_batch_begin(self, batch, logs=None):
        if self.first is None:
            self.first, self.cpu_first = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.last, self.cpu_last = time.perf_counter(), time.process_time()

    @property
    def seconds(self):
        return self.last - self.first

    @property
    def cpu_seconds(self):
        return self.cpu_last - self.cpu_first


def constant_dataset(batch):
    """``batch`` repeated forever, without tf.data autotuning (see benchmarks.train_step)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return tf.data.Dataset.from_tensors(tf.constant(batch)).repeat().with_options(options)


def real_batch(size, seed=0):
    rng = np.random.default_rng(seed)
    shape = (size["batch"], size["resolution"], size["resolution"], 3)
    return rng.uniform(-1, 1, shape).astype("float32")


def build_gan(family, size, precision, *, spe=1, xla=False, seed=0, strategy=None):
    """A compiled `tfgan2.GAN` of ``family`` at ``size`` with its recipe's objective
    (`OBJECTIVES`), built under ``precision`` (and in ``strategy``'s scope if given)."""
    g_name, d_name = FAMILIES[family]
    g_kwargs, d_kwargs = size[family]
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with train_step.policy(precision), scope:
        keras.utils.set_random_seed(seed)
        generator = getattr(tfgan2.networks, g_name)(**g_kwargs)
        discriminator = getattr(tfgan2.networks, d_name)(**d_kwargs)
        gan = tfgan2.GAN(generator, discriminator, latent_dim=g_kwargs["latent_dim"], seed=seed)
        gan.compile(d_optimizer=train_step.adam(), g_optimizer=train_step.adam(),
                    steps_per_execution=spe, jit_compile=xla, **OBJECTIVES[family])
    return gan


def compile_warnings(build):
    """``(gan, [warning texts])`` of ``build()``, the warnings GAN.compile gave (user
    warnings; libraries' deprecation notices are not its)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gan = build()
    return gan, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def first_line(exc):
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160] if text else ''}"


# ------------------------------------------------------------------ sections
def device_rows(table, on_gpu):
    build = tf.sysconfig.get_build_info()
    cuda = (f", CUDA {build.get('cuda_version')} / cuDNN {build.get('cudnn_version')} build"
            if build.get("is_cuda_build") else "")
    table.add("device", "TensorFlow / Keras", f"{tf.__version__} / {keras.__version__}{cuda}; "
              f"Python {platform.python_version()}")
    table.add("device", "CPU", f"{train_step.cpu_description()}; "
              f"{len(os.sched_getaffinity(0))} usable cores; load {train_step.load_average()}")
    if not on_gpu:
        table.add("device", "GPU / compute capability", "none: CPU only")
        table.skip("compute capability", "no GPU visible to TensorFlow")
        return
    for i, device in enumerate(gpus()):
        name = tf.config.experimental.get_device_details(device).get("device_name", device.name)
        cc = compute_capability(device)
        table.add("device", f"GPU {i} / compute capability",
                  f"{name} / {'unknown' if cc is None else f'{cc[0]}.{cc[1]}'}")


def auto_precision(make_gan, batch, measure):
    """The library's ``--precision=auto`` choice, a `tfgan2.precision.PrecisionChoice`.

    The one place this script asks `tfgan2.precision`. ``make_gan(policy)``
    returns a compiled GAN; ``measure=False`` never times (a bfloat16 CPU then
    gets float32, "not measured").
    """
    def build(policy):
        return tfgan2.precision.gan_fit_runner(make_gan(policy), tf.constant(batch))

    return tfgan2.precision.choose_precision(build if measure else None)


def precision_rows(table, size, quick, on_gpu):
    choice = auto_precision(lambda policy: build_gan("dcgan", size, policy), real_batch(size),
                            measure=not quick)
    table.add("precision", "--precision=auto picks (DCGAN)", choice.describe())
    if quick and not on_gpu:
        table.skip("timing auto's candidates", "--quick: a CPU with bfloat16 instructions is "
                   "not timed, so auto reports float32 (not measured)")
    return choice.policy


def _scaled_discriminator(size, precision, scale, weights=None):
    """A small DCGAN D under ``precision``; its logit kernel times ``scale`` (or ``weights``)."""
    with train_step.policy(precision):
        keras.utils.set_random_seed(1)
        d = tfgan2.networks.dcgan_discriminator(resolution=size["resolution"], channels=3,
                                                capacity=8, filter_size=3)
    if weights is None:
        logit = d.get_layer("logit")
        logit.kernel.assign(logit.kernel * scale)
    else:
        d.set_weights(weights)
    return d


def penalty_rows(table, size, on_gpu):
    """float16 against float32 R1 and gradient penalty at D output scales 1, 1e-3, 1e-5."""
    rng = np.random.default_rng(2)
    shape = (8, size["resolution"], size["resolution"], 3)
    real = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    fake = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    eps = tf.constant(rng.uniform(0, 1, shape[0]).astype("float32"))
    penalties = {
        "R1": lambda d, **kw: regularizers.r1_penalty(d, real, **kw),
        "GP": lambda d, **kw: regularizers.gradient_penalty(d, real, fake, eps=eps, **kw),
    }
    if not on_gpu:
        table.note("penalties: float16 is emulated on a CPU; the rows check its numbers, "
                   "not its speed")
    for scale in SCALES:
        d32 = _scaled_discriminator(size, "float32", scale)
        d16 = _scaled_discriminator(size, "mixed_float16", scale, weights=d32.get_weights())
        for name, penalty in penalties.items():
            want = float(tf.reduce_mean(penalty(d32)))
            got = float(tf.reduce_mean(penalty(d16)))
            unscaled = float(tf.reduce_mean(penalty(d16, loss_scale=1.0)))

            def rel(value):
                return abs(value - want) / max(abs(want), 1e-30)

            flag = "" if np.isfinite(got) else "  NON-FINITE"
            table.add("penalties", f"{name}, D logit x {scale:g}: float32 / float16",
                      f"{want:.4g} / {got:.4g}  rel. error {rel(got):.1e} (without loss "
                      f"scale: {unscaled:.4g}, {rel(unscaled):.1e}){flag}")


def replica_skip_check(strategy):
    """``(passed, detail)`` of the float16 overflow-on-one-replica check on ``strategy``.

    As tests/test_distributed.py: tiny Gaussian G and D under ``mixed_float16``
    on MirroredStrategy; the first batch of 8 has row 6 (replica 1's share)
    set to 1e30, infinite in float16.
    """
    with train_step.policy("mixed_float16"):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            gan = tfgan2.GAN(tfgan2.networks.gaussian_generator(latent_dim=4, dim=6, hidden=8),
                             tfgan2.networks.gaussian_discriminator(dim=6, hidden=8),
                             latent_dim=4, seed=3)
            gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
        x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
        poisoned = x.copy()
        poisoned[6] = 1e30
        before = [w.copy() for w in gan.discriminator.get_weights()]
        scale = float(gan.d_optimizer.dynamic_scale.numpy())
        gan.fit(tf.data.Dataset.from_tensor_slices(poisoned[:8]).batch(8), epochs=1, verbose=0)
        unchanged = all(np.array_equal(b, a)
                        for b, a in zip(before, gan.discriminator.get_weights()))
        scales = [float(v.numpy()) for v in
                  strategy.experimental_local_results(gan.d_optimizer.dynamic_scale.value)]
        gan.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1, verbose=0)
    after = gan.discriminator.get_weights()
    finite = all(np.all(np.isfinite(w)) for w in after)
    trained = any(not np.array_equal(a, b) for a, b in zip(before, after))
    halved = scales == [scale / 2] * len(scales)
    passed = unchanged and halved and finite and trained
    detail = (f"{'PASS' if passed else 'FAIL'}: D weights "
              f"{'unchanged' if unchanged else 'CHANGED'}, loss scale {scale:g} -> "
              f"{', '.join(f'{s:g}' for s in scales)} on {len(scales)} replicas, next step "
              f"{'finite' if finite else 'NON-FINITE'} and "
              f"{'trains' if trained else 'DOES NOT TRAIN'}")
    return passed, detail


def two_replicas(on_gpu, cpu_split):
    """``(MirroredStrategy over two devices or None, what they are)``: two GPUs, the two
    logical CPUs, or None (one GPU, or a CPU that could not be split). One strategy
    serves every two-replica row: a new MirroredStrategy over the same devices restarts
    its collective keys, which clash with the earlier ones'."""
    if on_gpu:
        if len(gpus()) < 2:
            return None, "one GPU"
        return tf.distribute.MirroredStrategy(["/gpu:0", "/gpu:1"]), "GPUs"
    if not cpu_split:
        return None, "CPU not split"
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), "logical CPUs"


def replica_rows(table, on_gpu, two, kind):
    if not on_gpu:
        if two is None:
            table.skip("replica check", "TensorFlow's devices were initialized before the CPU "
                       "could be split into two logical devices")
            return
        _, detail = replica_skip_check(two)
        table.add("replicas", f"{REPLICA_ROW} {kind}", detail)
        table.skip("replica check on GPUs", "no GPU: run on two logical CPUs instead")
        return
    if two is not None:
        _, detail = replica_skip_check(two)
        table.add("replicas", f"{REPLICA_ROW} {kind}", detail)
        return
    # One GPU: split it in a child process, so that this one keeps the whole GPU for timing.
    command = [sys.executable, "-m", "benchmarks.device_check", "--replica_check_child=gpu"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith(REPLICA_TAG)]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        table.add("replicas", f"{REPLICA_ROW} logical GPUs",
                  f"FAIL: the check did not finish (exit {done.returncode}: {tail[:160]})")
        return
    table.add("replicas", f"{REPLICA_ROW} logical GPUs",
              json.loads(lines[-1][len(REPLICA_TAG):])["detail"])


def replica_child():
    """Child process: GPU 0 as two logical GPUs, the replica check, one tagged JSON line."""
    gpu = gpus()[0]
    tf.config.set_logical_device_configuration(
        gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=1024)] * 2)
    # NCCL needs distinct physical GPUs; two logical GPUs of one reduce through one device.
    strategy = tf.distribute.MirroredStrategy(
        ["/gpu:0", "/gpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
    passed, detail = replica_skip_check(strategy)
    print(REPLICA_TAG + json.dumps({"passed": passed, "detail": detail +
                                    " (one GPU split in two, ReductionToOneDevice)"}),
          flush=True)


def time_variant(family, size, precision, spe, xla, with_callbacks, steps, windows, memory,
                 strategy=None):
    """``(wall ms, CPU ms, peak memory)`` per step of one configuration.

    Built, warmed up (tracing, compilation), then timed in ``windows`` windows
    of ``steps`` steps each; the fastest window counts (a burst of load from
    other processes slows one window, not the result), and its process CPU
    time is reported with it. A window longer than `WINDOW_CAP` seconds is
    the last (slow rows on a CPU would otherwise eat the budget).
    """
    memory.reset()
    data = constant_dataset(real_batch(size))
    spans = [Span() for _ in range(windows)]
    try:
        with train_step.policy(precision):
            gan = build_gan(family, size, precision, spe=spe, xla=xla, strategy=strategy)
            if with_callbacks:
                # One loss-log write per window: the warm-up run ends at an epoch boundary
                # and each window is one more epoch of `steps` steps.
                with tempfile.TemporaryDirectory() as workdir, \
                        contextlib.redirect_stdout(io.StringIO()):
                    settings = dict(log_every=steps, verbose=0, num_samples=16)
                    tfgan2.train(gan, data, workdir, steps, **settings)
                    for i, span in enumerate(spans):
                        tfgan2.train(gan, data, workdir, (i + 2) * steps, callbacks=[span],
                                     **settings)
                        if span.seconds > WINDOW_CAP:
                            break
            else:
                gan.fit(data, epochs=1, steps_per_epoch=2 * spe, verbose=0)
                for span in spans:
                    gan.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[span])
                    if span.seconds > WINDOW_CAP:
                        break
        best = min((span for span in spans if span.last is not None),
                   key=lambda span: span.seconds)
        return 1e3 * best.seconds / steps, 1e3 * best.cpu_seconds / steps, memory.peak()
    finally:
        gan = None
        keras.backend.clear_session()
        gc.collect()


def step_precisions(table, on_gpu, quick):
    """The policies whose step times apply here (skips noted in ``table``)."""
    precisions = ["float32"]
    if on_gpu:
        cc = compute_capability(gpus()[0])
        shown = "unknown" if cc is None else f"{cc[0]}.{cc[1]}"
        if cc is not None and cc >= (7, 0):
            precisions.append("mixed_float16")
        else:
            table.skip("float16 step times", f"GPU compute capability {shown} < 7.0: no "
                       f"float16 tensor cores")
        if cc is not None and cc >= (8, 0):
            precisions.append("mixed_bfloat16")
        else:
            table.skip("bfloat16 step times", f"GPU compute capability {shown} < 8.0: no "
                       f"bfloat16 tensor cores")
        return precisions
    table.skip("float16 step times", "no GPU: a CPU has no float16 arithmetic (tfgan2 refuses "
               "mixed_float16 there)")
    flags_here = set((train_step._cpuinfo("flags") or "").split())
    if quick:
        table.skip("bfloat16 step times", "--quick times float32 only")
    elif any(f in flags_here for f in BF16_CPU_FLAGS):
        precisions.append("mixed_bfloat16")
    else:
        table.skip("bfloat16 step times", f"the CPU has none of {', '.join(BF16_CPU_FLAGS)} "
                   f"(bfloat16 would be emulated)")
    return precisions


def timing(quick, on_gpu):
    """``(steps per timed window, windows per row)``."""
    steps = FLAGS.timed_steps or (20 if quick else (100 if on_gpu else 40))
    if steps % 10 or steps < 10:
        raise ValueError(f"--timed_steps must be a positive multiple of 10 (steps per "
                         f"execution), got {steps}.")
    return steps, 1 if quick else 3


def step_time_rows(table, size, on_gpu, quick, deadline, memory):
    steps, windows = timing(quick, on_gpu)
    families = []
    for family in FLAGS.timed_families:
        if family not in FAMILIES:
            raise ValueError(f"--timed_families: unknown family {family!r}; expected some of "
                             f"{', '.join(FAMILIES)}.")
        missing = [n for n in FAMILIES[family] if not hasattr(tfgan2.networks, n)]
        if missing:
            table.skip(f"{family} step times", f"tfgan2.networks has no {', '.join(missing)}")
        else:
            families.append(family)
    precisions = step_precisions(table, on_gpu, quick)
    variants = VARIANTS
    if quick:
        variants = [v for v in VARIANTS if not v[2]]
        table.skip("XLA step times", "--quick leaves out XLA (its compilation takes longest)")
        others = [f for f in families if f != "dcgan"]
        if others:
            table.skip(f"{', '.join(others)}: steps_per_execution 10 and tfgan2.train",
                       f"--quick times them with {VARIANTS[0][0]} only")
    elif not on_gpu:
        table.note("XLA rows on a CPU time XLA's own CPU convolutions (no oneDNN): no guide "
                   "to XLA on a GPU")
    table.note("step-time objectives: " + "; ".join(
        f"{family} {', '.join(f'{k}={v}' for k, v in OBJECTIVES[family].items())}"
        for family in families))
    if not on_gpu:
        table.note("memory on a CPU: the process's peak resident set (VmHWM) since the row "
                   "began, never below what the process already holds")
    # Every family's row of one configuration before the next configuration: when the
    # budget runs out it cuts the last configurations, not whole families.
    late, base = [], {}
    for precision in precisions:
        for i, (label, spe, xla, with_callbacks) in enumerate(variants):
            for family in families:
                if quick and family != "dcgan" and i > 0:
                    continue
                name = f"{family} {precision}, {label}"
                if time.monotonic() > deadline:
                    late.append(name)
                    continue
                try:
                    ms, cpu_ms, peak = time_variant(family, size, precision, spe, xla,
                                                    with_callbacks, steps, windows, memory)
                except Exception as exc:  # a row that fails says so; the others still run
                    table.add("step time", name, f"FAILED: {first_line(exc)}")
                    continue
                base.setdefault(family, ms)
                table.add("step time", name, step_result(ms, base[family], cpu_ms, peak))
    skip_late(table, late)
    table.note(f"step time: wall ms per step, the fastest of {windows} window(s) of {steps} "
               f"steps after a warm-up (no further window after one over {WINDOW_CAP:g} s); 'Nx' = speed relative to the family's first row "
               f"(higher is faster); CPU = process CPU ms per step in that window (host work; "
               f"steadier than wall time on a shared machine)")


def step_result(ms, base, cpu_ms, peak):
    return f"{ms:8.2f} ms  {base / ms:5.2f}x  CPU {cpu_ms:7.2f} ms  {peak}"


def skip_late(table, late, kind="step-time rows"):
    if late:
        table.skip(f"{len(late)} {kind}", f"--budget_minutes={FLAGS.budget_minutes:g} "
                   f"spent before {'; '.join(late)}")


def multi_replica_rows(table, size, on_gpu, quick, deadline, memory, two, kind):
    """DCGAN float32 on two replicas: what Keras and GAN.compile do with several steps
    per execution and with XLA there, and the step time of ``fit`` (and `tfgan2.train`)."""
    if two is None:
        why = ("one GPU: the two-replica rows need two GPUs (the replica check splits the "
               "GPU in a child process instead)" if kind == "one GPU" else
               "TensorFlow's devices were initialized before the CPU could be split")
        table.skip("two-replica step times", why)
        return
    n = two.num_replicas_in_sync
    where = f"{n} {kind}"
    try:
        gan, said = compile_warnings(
            lambda: build_gan("dcgan", size, "float32", spe=10, strategy=two))
        ran = int(keras.ops.convert_to_numpy(gan.steps_per_execution))
        reason = f": {said[0].split(';')[0]}" if said else ""
        table.add("replicas", f"steps_per_execution=10 on {where}",
                  f"runs {ran} step{'s' if ran > 1 else ''} per execution{reason}")
    except Exception as exc:
        table.add("replicas", f"steps_per_execution=10 on {where}", f"FAILED: {first_line(exc)}")
    try:
        build_gan("dcgan", size, "float32", xla=True, strategy=two)
        table.add("replicas", f"XLA (jit_compile=True) on {where}", "accepted")
    except ValueError as exc:
        table.add("replicas", f"XLA (jit_compile=True) on {where}",
                  f"refused: {str(exc).split(':')[0]}")
    finally:
        gan = None
        keras.backend.clear_session()
    steps, windows = timing(quick, on_gpu)
    variants = [VARIANTS[0]] + ([] if quick else [VARIANTS[3]])
    if quick:
        table.skip(f"tfgan2.train on {where}", f"--quick times {VARIANTS[0][0]} only")
    if not on_gpu:
        table.note(f"two logical CPUs share the same cores: the {where} rows show the cost "
                   f"of the all-reduce and of the per-replica host work, not a speed-up")
    late, base = [], None
    for label, _, xla, with_callbacks in variants:
        name = f"dcgan float32, {where}, {label.replace('10 steps', '1 step')}"
        if time.monotonic() > deadline:
            late.append(name)
            continue
        try:
            ms, cpu_ms, peak = time_variant("dcgan", size, "float32", 1, xla, with_callbacks,
                                            steps, windows, memory, strategy=two)
        except Exception as exc:
            table.add("step time", name, f"FAILED: {first_line(exc)}")
            continue
        base = ms if base is None else base
        table.add("step time", name, step_result(ms, base, cpu_ms, peak))
    skip_late(table, late, "two-replica step-time rows")


def determinism_rows(table, size, policies):
    """Two fresh runs per policy with op determinism on: bit-identical weights?

    Without XLA: Keras drops ``jit_compile=True`` while op determinism is on
    (GAN.compile warns; the first row checks it). Op determinism is off again after.
    """
    from tensorflow.python.framework import config as tf_config

    tf.config.experimental.enable_op_determinism()
    try:
        _determinism_rows(table, size, policies)
    finally:
        tf_config.disable_op_determinism()


def _determinism_rows(table, size, policies):
    gan, said = compile_warnings(lambda: build_gan("dcgan", size, "float32", xla=True))
    dropped = gan.jit_compile is not True
    table.add("determinism", "XLA (jit_compile=True) under op determinism",
              ("dropped by Keras, " + ("with GAN.compile's warning" if said else "SILENTLY"))
              if dropped else "kept")
    gan = None
    keras.backend.clear_session()
    steps = 3
    data = constant_dataset(real_batch(size))
    for policy in policies:
        check = f"dcgan {policy}, 2 runs x {steps} steps, no XLA"
        runs = []
        try:
            for _ in range(2):
                gan = build_gan("dcgan", size, policy)
                with train_step.policy(policy):
                    gan.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
                runs.append([w.copy() for w in gan.generator.get_weights()
                             + gan.discriminator.get_weights()])
                del gan
                keras.backend.clear_session()
        except Exception as exc:
            table.add("determinism", check, f"FAILED: {first_line(exc)}")
            continue
        differing = sum(not np.array_equal(a, b) for a, b in zip(*runs))
        table.add("determinism", check,
                  f"{'bit-identical' if not differing else f'DIFFER in {differing}'} "
                  f"({len(runs[0])} weight tensors)")


# ------------------------------------------------------------------ main
def prepare_devices(on_gpu):
    """GPUs grow their memory (the replica check's child process needs some); a CPU is
    split into two logical devices for the replica check. False when TensorFlow had
    already started and the CPU could not be split."""
    try:
        if on_gpu:
            for gpu in gpus():
                tf.config.experimental.set_memory_growth(gpu, True)
            return True
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    except RuntimeError:
        return len(tf.config.list_logical_devices("CPU")) >= 2
    return True


def main(argv):
    del argv
    if FLAGS.replica_check_child:
        replica_child()
        return
    started = time.monotonic()
    on_gpu = bool(gpus())
    cpu_split = prepare_devices(on_gpu)
    quick = FLAGS.quick
    size = sizes("quick" if quick else ("gpu" if on_gpu else "cpu"))
    print(f"tfgan2 device check: {'GPU' if on_gpu else 'CPU'}{', --quick' if quick else ''}; "
          f"images {size['resolution']}x{size['resolution']}x3, batch {size['batch']}\n",
          flush=True)
    table = Table()
    two, kind = two_replicas(on_gpu, cpu_split)
    memory = Memory(on_gpu)
    deadline = started + 60 * FLAGS.budget_minutes - DETERMINISM_RESERVE
    with table.timed("device"):
        device_rows(table, on_gpu)
    with table.timed("precision"):
        auto = precision_rows(table, size, quick, on_gpu)
    with table.timed("penalties"):
        penalty_rows(table, size, on_gpu)
    with table.timed("replicas"):
        replica_rows(table, on_gpu, two, kind)
    with table.timed("step time"):
        step_time_rows(table, size, on_gpu, quick, deadline, memory)
    with table.timed("two replicas"):
        multi_replica_rows(table, size, on_gpu, quick, deadline, memory, two, kind)
    with table.timed("determinism"):
        determinism_rows(table, size, ["float32"] + ([auto] if auto != "float32" else []))
    table.finish(time.monotonic() - started, FLAGS.json_out)


if __name__ == "__main__":
    app.run(main)
