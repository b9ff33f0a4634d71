"""2-D mixtures with the PacGAN protocol (Lin et al. 2018, arXiv:1712.04086, tables 1-2).

    python -m benchmarks.mixtures_2d                          # ring and grid, pack 1
    python -m benchmarks.mixtures_2d --kinds=grid --packs=1,2,4 --steps=8000
    python -m benchmarks.mixtures_2d --figure=mixtures.png

Data: `pipelines.mixture_2d` (8-mode ring, std 0.01; 25-mode grid, std 0.05).
Networks: G a 4 x 400 ReLU MLP (optionally with batch norm) from a 2-d normal
latent, D a 3 x 200 LeakyReLU (or maxout) MLP over ``pack`` points
(`tfgan2.GAN(..., pack=m)`). Training defaults (README, "Measured", has the
search behind them): 16,000 steps of batch 100, Adam lr 5e-4 decayed linearly
to 0 with betas (0.0, 0.9) for G and D, R1 gamma 0.1, an EMA generator
(decay 0.999) that the samples come from. After training 2,500 samples are
scored:

* high quality: share of samples within 3 std of their nearest mode;
* modes: modes holding at least 20 high-quality samples;
* reverse KL: ``sum_k q_k log(q_k K)``, ``q`` the histogram of the
  high-quality samples over their modes (0 when every mode gets 1/K; NaN
  without high-quality samples).

Each number is printed with the same measurement on 2,500 real points (the
floor: 98.9% of a 2-D normal lies within 3 std) and as a ratio to it.
"""
import json
import time

import numpy as np
from absl import app, flags

flags.DEFINE_list("kinds", ["ring", "grid"], "Mixtures: ring, grid.")
flags.DEFINE_list("packs", ["1"], "Packing degrees to compare.")
flags.DEFINE_integer("steps", 16000, "Training steps per run.")
flags.DEFINE_integer("batch_size", 100, "Batch size (a multiple of every pack): real points "
                     "per step; D judges batch_size / pack groups.")
flags.DEFINE_integer("groups", 0, "If > 0, D judges this many packed groups per step at every "
                     "pack: the batch is pack x groups points (PacGAN's protocol: groups=100).")
flags.DEFINE_float("lr", 5e-4, "Adam learning rate of G and D.")
flags.DEFINE_string("loss", "non_saturating", "GAN loss.")
flags.DEFINE_float("r1_gamma", 0.1, "R1 penalty gamma.")
flags.DEFINE_bool("lr_decay", True, "Decay both learning rates linearly to 0 over --steps.")
flags.DEFINE_float("ema_decay", 0.999, "Generator EMA decay (0: none).")
flags.DEFINE_float("beta_1", 0.0, "Adam beta_1 of G and D.")
flags.DEFINE_float("beta_2", 0.9, "Adam beta_2 of G and D.")
flags.DEFINE_integer("latent_dim", 2, "Size of the normal latent z.")
flags.DEFINE_integer("g_width", 400, "Units per hidden layer of G.")
flags.DEFINE_integer("g_depth", 4, "Hidden layers of G.")
flags.DEFINE_bool("g_batchnorm", False, "Batch normalization after each hidden layer of G.")
flags.DEFINE_integer("d_width", 200, "Units per hidden layer of D.")
flags.DEFINE_integer("d_depth", 3, "Hidden layers of D.")
flags.DEFINE_integer("d_maxout", 0, "Maxout pieces per D unit (0: LeakyReLU 0.2).")
flags.DEFINE_float("init_std", 0.0, "If > 0, every weight starts N(0, init_std^2) and every "
                   "bias 0 (PacGAN: 0.02); else Keras' defaults (Glorot uniform).")
flags.DEFINE_bool("bn_per_slot", False, "With pack m > 1: G called once per pack slot while "
                  "training (GAN(pack_generator_per_slot=True)), so its batch statistics are per "
                  "slot (B / m samples each), as PacGAN's m generator calls.")
flags.DEFINE_float("bn_momentum", 0.99, "Moving-average momentum of G's batch norm statistics "
                   "(PacGAN: 0.95).")
flags.DEFINE_integer("threads", 1, "TensorFlow intra- and inter-op threads (0: TF's default).")
flags.DEFINE_integer("num_samples", 2500, "Samples scored per run.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("figure", None, "Write the samples over the mode centres to this PNG.")
flags.DEFINE_string("json", None, "Also write the results as JSON here.")
FLAGS = flags.FLAGS

MIN_HQ_PER_MODE = 20


def score(points, kind):
    """High-quality share, modes covered and reverse KL of ``points`` ``(N, 2)``.

    ``modes`` counts modes with at least ``MIN_HQ_PER_MODE`` high-quality samples;
    ``modes_any`` those with at least one, as PacGAN's code counts them."""
    import pipelines

    centres, std = pipelines.mixture_centres(kind)
    dist = np.linalg.norm(points[:, None, :] - centres[None], axis=-1)
    nearest, gap = dist.argmin(1), dist.min(1)
    hq = gap < 3 * std
    counts = np.bincount(nearest[hq], minlength=len(centres))
    reverse_kl = float("nan")  # undefined without a high-quality sample
    if counts.sum():
        q = counts / counts.sum()
        nz = q > 0
        reverse_kl = float(np.sum(q[nz] * np.log(q[nz] * len(centres))))
    return {"high_quality": float(hq.mean()),
            "modes": int(np.sum(counts >= MIN_HQ_PER_MODE)), "num_modes": len(centres),
            "modes_any": int(np.sum(counts >= 1)), "reverse_kl": reverse_kl}


def batch_size(pack):
    """Real points per step: ``pack x --groups`` when --groups is set, else --batch_size."""
    return pack * FLAGS.groups if FLAGS.groups else FLAGS.batch_size


def build(kind, pack, seed):
    import keras

    import tfgan2

    keras.utils.set_random_seed(seed)
    init = {}
    if FLAGS.init_std:
        init = dict(kernel_initializer=keras.initializers.RandomNormal(0.0, FLAGS.init_std),
                    bias_initializer="zeros")
    z = keras.Input((FLAGS.latent_dim,))
    h = z
    for i in range(FLAGS.g_depth):
        h = keras.layers.Dense(FLAGS.g_width, use_bias=not FLAGS.g_batchnorm, name=f"g{i}",
                               **init)(h)
        if FLAGS.g_batchnorm:
            h = keras.layers.BatchNormalization(momentum=FLAGS.bn_momentum, name=f"g{i}_bn")(h)
        h = keras.layers.ReLU()(h)
    g = keras.Model(z, keras.layers.Dense(2, name="point", **init)(h))
    x = keras.Input((2 * pack,))
    h = x
    for i in range(FLAGS.d_depth):
        if FLAGS.d_maxout:
            k = FLAGS.d_maxout
            h = keras.layers.Dense(FLAGS.d_width * k, name=f"d{i}", **init)(h)
            h = keras.layers.Reshape((FLAGS.d_width, k))(h)
            h = keras.layers.Lambda(lambda t: keras.ops.max(t, axis=-1))(h)
        else:
            h = keras.layers.LeakyReLU(0.2)(keras.layers.Dense(FLAGS.d_width, name=f"d{i}",
                                                               **init)(h))
    d = keras.Model(x, keras.layers.Dense(1, name="logit", **init)(h))
    gan = tfgan2.GAN(g, d, latent_dim=FLAGS.latent_dim, ema_decay=FLAGS.ema_decay or None,
                     seed=seed, pack=pack, pack_generator_per_slot=FLAGS.bn_per_slot)

    def lr():
        if not FLAGS.lr_decay:
            return FLAGS.lr
        return keras.optimizers.schedules.PolynomialDecay(FLAGS.lr, FLAGS.steps, 0.0)

    def adam():
        return keras.optimizers.Adam(lr(), beta_1=FLAGS.beta_1, beta_2=FLAGS.beta_2)

    gan.compile(adam(), adam(),
                loss=FLAGS.loss, r1_gamma=FLAGS.r1_gamma, steps_per_execution=50)
    return gan


def train(kind, pack, seed):
    import pipelines

    gan = build(kind, pack, seed)
    data = pipelines.mixture_2d(batch_size(pack), kind, seed=seed)
    start = time.perf_counter()
    gan.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return gan.generate(FLAGS.num_samples, seed=seed + 1), seconds


def real_points(kind, num, seed):
    import pipelines

    return next(iter(pipelines.mixture_2d(num, kind, seed=seed + 99))).numpy()


def figure(path, panels):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import pipelines

    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    for ax, (title, kind, points) in zip(axes[0], panels):
        centres, _ = pipelines.mixture_centres(kind)
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, color="tab:blue")
        ax.scatter(centres[:, 0], centres[:, 1], s=40, marker="x", color="tab:red")
        lim = 1.5 if kind == "ring" else 5.5
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    del argv
    if FLAGS.threads:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    rows, panels = [], []
    for kind in FLAGS.kinds:
        floor = score(real_points(kind, FLAGS.num_samples, FLAGS.seed), kind)
        print(f"{kind}: real data {json.dumps(floor)}", flush=True)
        for pack in (int(p) for p in FLAGS.packs):
            points, seconds = train(kind, pack, FLAGS.seed)
            row = {"kind": kind, "pack": pack, "batch": batch_size(pack),
                   "groups": batch_size(pack) // pack, "steps": FLAGS.steps,
                   "seconds": seconds, **score(points, kind),
                   "floor_high_quality": floor["high_quality"]}
            rows.append(row)
            panels.append((f"{kind}, pack {pack}: {row['modes']}/{row['num_modes']} modes, "
                           f"{row['high_quality']:.1%} HQ", kind, points))
            print(json.dumps(row), flush=True)
    print(f"\n{'mixture':>8} {'pack':>4} {'batch':>5} {'groups':>6} {'modes':>7} {'any':>3} "
          f"{'high quality':>12} {'/ real':>7} {'reverse KL':>10} {'s':>6}")
    for r in rows:
        print(f"{r['kind']:>8} {r['pack']:>4} {r['batch']:>5} {r['groups']:>6} "
              f"{r['modes']:>3}/{r['num_modes']:<3} {r['modes_any']:>3} "
              f"{r['high_quality']:>12.1%} {r['high_quality'] / r['floor_high_quality']:>7.3f} "
              f"{r['reverse_kl']:>10.4f} {r['seconds']:>6.0f}")
    if FLAGS.figure:
        figure(FLAGS.figure, panels)
        print(f"wrote {FLAGS.figure}")
    if FLAGS.json:
        with open(FLAGS.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
