"""What `tfgan2.train`'s callbacks cost per step, against a bare ``GAN.fit``, in one run.

    python -m benchmarks.host_overhead                          # 1 and 2 replicas, spe 1 and 10
    python -m benchmarks.host_overhead --rounds=3 --steps=500 --steps_per_execution=10
    python -m benchmarks.host_overhead --json=/tmp/overhead.json

The step is the overhead-bound one of the built-in default (digits.cfg): the
CS231N MLP GAN (`tfgan2.networks.mlp_generator` 64-1024-1024-64,
`mlp_discriminator` 64-256-256-1), batch 64 of 8x8 digits, Adam(2e-4, 0.5),
EMA 0.999. The data is one real batch repeated from memory (tf.data
autotuning off: see `benchmarks.train_step`), so input costs nothing.

The process splits its CPU into two logical devices (`tfgan2.distribute.split_cpu`):
"1 replica" is the default strategy, "2 replicas" a `MirroredStrategy` over both.
Per (replicas, steps_per_execution) there are two contenders, each with its own
GAN built from the same seed and warmed up once (tracing, first writes):

  fit    ``gan.fit(data, steps_per_epoch=--log_every, epochs=--steps / --log_every,
         verbose=0)``: Keras with its History callback only;
  train  ``tfgan2.train(gan, data, workdir, gan.step + --steps, log_every=...,
         sample_every=..., checkpoint_every=..., verbose=0)``: its guard, step
         limit, loss history (metrics.jsonl and losses.png every --log_every),
         sample grids and checkpoints; each round resumes its own run directory.

Measured per call: "in-loop" ms/step, from the first execution's start (a
callback's ``on_train_batch_begin``, which Keras calls synchronously and which
keeps Keras's asynchronous batch-end dispatch of a bare fit) to the start of
``on_train_end`` (so train's restore before the loop is left out and every
periodic write inside it is counted), divided by --steps; and the whole call.
Rounds interleave every contender, fit and train of one setting back to back,
so a burst of load reaches both; reported: the median ms/step of each and
the median over rounds of the per-round ratio train / fit (1.05 = 5% slower).
Also the host time spent inside train's callback hooks per step (`CallbackClock`)
and ``1 + that / fit's ms per step``: what the callbacks add to the training
thread, periodic writes (metrics row and loss plot every --log_every, sample
grid every --sample_every, checkpoints) included.
"""
import json
import os
import statistics
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
from absl import app, flags

flags.DEFINE_list("replicas", ["1", "2"], "Replica counts to measure (1 and/or 2).")
flags.DEFINE_list("steps_per_execution", ["1", "10"], "steps_per_execution values.")
flags.DEFINE_integer("steps", 1000, "Timed steps per call (a multiple of --log_every).")
flags.DEFINE_integer("rounds", 5, "Rounds; each times every contender once.")
flags.DEFINE_integer("log_every", 100, "tfgan2.train's log_every (and fit's steps_per_epoch).")
flags.DEFINE_integer("sample_every", 500, "tfgan2.train's sample_every.")
flags.DEFINE_integer("checkpoint_every", 1000, "tfgan2.train's checkpoint_every.")
flags.DEFINE_integer("batch_size", 64, "Global batch.")
flags.DEFINE_string("json", None, "Also write the results as JSON here.")
FLAGS = flags.FLAGS


def build(strategy, spe):
    import tfgan2

    with strategy.scope():
        keras.utils.set_random_seed(0)
        g = tfgan2.networks.mlp_generator(latent_dim=64, image_shape=(8, 8, 1), hidden=1024)
        d = tfgan2.networks.mlp_discriminator(image_shape=(8, 8, 1), hidden=256)
        gan = tfgan2.GAN(g, d, latent_dim=64, ema_decay=0.999, seed=0)
        gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5),
                    keras.optimizers.Adam(2e-4, beta_1=0.5), steps_per_execution=spe)
    return gan


def constant_data(batch_size):
    import numpy as np
    import tensorflow as tf

    import pipelines

    images, _ = pipelines.digits_arrays()
    x = np.asarray(images[:batch_size], np.float32)
    options = tf.data.Options()
    options.autotune.enabled = False
    return tf.data.Dataset.from_tensors(x).repeat().with_options(options)


class LoopTimer(keras.callbacks.Callback):
    """Times from the first ``on_train_batch_begin`` to ``on_train_end``."""

    def __init__(self):
        super().__init__()
        self.start = self.end = None

    def on_train_begin(self, logs=None):
        self.start = self.end = None

    def on_train_batch_begin(self, batch, logs=None):
        if self.start is None:
            self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        self.end = time.perf_counter()


def run_fit(gan, data, steps):
    timer = LoopTimer()
    began = time.perf_counter()
    gan.fit(data, steps_per_epoch=FLAGS.log_every, epochs=steps // FLAGS.log_every, verbose=0,
            callbacks=[timer])
    return timer.end - timer.start, time.perf_counter() - began


class CallbackClock:
    """Host time spent inside train's callbacks during the loop (every batch and epoch hook
    of `tfgan2.callbacks.LogsOnDemand`, the list train hands to fit): what they add to
    the training thread, less sensitive to other processes' load than a difference of
    two loop times."""

    HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end")

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        from tfgan2 import callbacks

        self.saved = {name: getattr(callbacks.LogsOnDemand, name) for name in self.HOOKS}
        for name, hook in self.saved.items():
            setattr(callbacks.LogsOnDemand, name, self._timed(hook))
        return self

    def _timed(self, hook):
        def timed(this, *args, **kwargs):
            began = time.perf_counter()
            try:
                return hook(this, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began
        return timed

    def __exit__(self, *exc):
        from tfgan2 import callbacks

        for name, hook in self.saved.items():
            setattr(callbacks.LogsOnDemand, name, hook)


def run_train(gan, data, steps, workdir):
    """``(loop seconds, whole call seconds, seconds inside the callbacks' hooks)``."""
    import tfgan2

    timer = LoopTimer()
    began = time.perf_counter()
    with CallbackClock() as clock:
        tfgan2.train(gan, data, workdir, gan.step + steps, log_every=FLAGS.log_every,
                     sample_every=FLAGS.sample_every, checkpoint_every=FLAGS.checkpoint_every,
                     verbose=0, callbacks=[timer])
    return timer.end - timer.start, time.perf_counter() - began, clock.seconds


def main(argv):
    del argv
    import tfgan2

    tfgan2.distribute.split_cpu(2)
    import tensorflow as tf

    if FLAGS.steps % FLAGS.log_every:
        raise app.UsageError("--steps must be a multiple of --log_every.")
    settings = [(int(r), int(k)) for r in FLAGS.replicas for k in FLAGS.steps_per_execution]
    for replicas, spe in settings:
        if replicas not in (1, 2) or FLAGS.log_every % spe:
            raise app.UsageError(f"replicas must be 1 or 2 and --log_every a multiple of "
                                 f"steps_per_execution, got {replicas}, {spe}.")
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    data = constant_data(FLAGS.batch_size)
    workroot = tempfile.mkdtemp(prefix="host_overhead_")
    gans, workdirs = {}, {}
    for replicas, spe in settings:
        strategy = mirrored if replicas == 2 else tf.distribute.get_strategy()
        for kind in ("fit", "train"):
            key = (replicas, spe, kind)
            gans[key] = build(strategy, spe)
            workdirs[key] = os.path.join(workroot, f"r{replicas}_k{spe}_{kind}")
            # Warm-up: tracing, and train's first checkpoint, samples and plot.
            if kind == "fit":
                run_fit(gans[key], data, FLAGS.log_every)
            else:
                run_train(gans[key], data, FLAGS.sample_every, workdirs[key])
    times = {key: {"loop": [], "call": [], "hooks": []} for key in gans}
    ratios = {setting: [] for setting in settings}
    for r in range(FLAGS.rounds):
        order = settings[r % len(settings):] + settings[:r % len(settings)]
        for replicas, spe in order:
            pair = ("fit", "train") if r % 2 == 0 else ("train", "fit")
            loop = {}
            for kind in pair:
                key = (replicas, spe, kind)
                if kind == "fit":
                    loop[kind], call = run_fit(gans[key], data, FLAGS.steps)
                else:
                    loop[kind], call, hooks = run_train(gans[key], data, FLAGS.steps,
                                                        workdirs[key])
                    times[key]["hooks"].append(hooks * 1e3 / FLAGS.steps)
                times[key]["loop"].append(loop[kind] * 1e3 / FLAGS.steps)
                times[key]["call"].append(call * 1e3 / FLAGS.steps)
            ratios[(replicas, spe)].append(loop["train"] / loop["fit"])
            print(f"round {r + 1}/{FLAGS.rounds} replicas {replicas} spe {spe:>2}: fit "
                  f"{loop['fit'] * 1e3 / FLAGS.steps:6.2f} ms/step, train "
                  f"{loop['train'] * 1e3 / FLAGS.steps:6.2f} ms/step, ratio "
                  f"{loop['train'] / loop['fit']:.3f}, callbacks "
                  f"{times[(replicas, spe, 'train')]['hooks'][-1]:.3f} ms/step "
                  f"(load {os.getloadavg()[0]:.1f})",
                  flush=True)
    print(f"\nMLP digits step, batch {FLAGS.batch_size}, {FLAGS.steps} steps per call, "
          f"log_every {FLAGS.log_every}, sample_every {FLAGS.sample_every}, checkpoint_every "
          f"{FLAGS.checkpoint_every}, {FLAGS.rounds} rounds")
    print(f"  {'replicas':>8} {'spe':>4} {'fit ms/step':>12} {'train ms/step':>14} "
          f"{'train/fit':>10} {'(per-round range)':>18} {'whole call':>11} "
          f"{'callbacks ms/step':>18} {'1 + callbacks/fit':>18}")
    rows = []
    for replicas, spe in settings:
        fit = statistics.median(times[(replicas, spe, "fit")]["loop"])
        train = statistics.median(times[(replicas, spe, "train")]["loop"])
        call = (statistics.median(times[(replicas, spe, "train")]["call"])
                / statistics.median(times[(replicas, spe, "fit")]["call"]))
        ratio = statistics.median(ratios[(replicas, spe)])
        spread = f"{min(ratios[(replicas, spe)]):.3f}-{max(ratios[(replicas, spe)]):.3f}"
        hooks = statistics.median(times[(replicas, spe, "train")]["hooks"])
        print(f"  {replicas:>8} {spe:>4} {fit:>12.2f} {train:>14.2f} {ratio:>10.3f} "
              f"{spread:>18} {call:>11.3f} {hooks:>18.3f} {1 + hooks / fit:>18.3f}")
        rows.append(dict(replicas=replicas, steps_per_execution=spe, fit_ms=fit,
                         train_ms=train, ratio=ratio, ratios=ratios[(replicas, spe)],
                         whole_call_ratio=call, callbacks_ms=hooks,
                         callbacks_ratio=1 + hooks / fit))
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump({"rows": rows, "flags": {k: FLAGS[k].value for k in
                                               ("steps", "rounds", "log_every", "sample_every",
                                                "checkpoint_every", "batch_size")}}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
