"""Write samples of a trained run: ``python -m launch.sample --workdir=DIR --num=N --out=FILE``.

Rebuilds the networks from ``DIR/flags.cfg``, restores the newest checkpoint
of ``DIR/checkpoints`` (the EMA generator when the run kept one) and writes

* ``FILE.npz``: key ``images``, float32 ``(N, H, W, C)`` in [-1, 1] for image
  data, or ``(N, D)`` as generated for vector data;
* ``FILE.png``: a grid of the images (a histogram for vector data).
"""
import os
import sys

import numpy as np
from absl import app, flags

flags.DEFINE_string("workdir", None, "Run directory written by launch.train.")
flags.DEFINE_integer("num", 64, "Number of samples.", lower_bound=1)
flags.DEFINE_string("out", None, "Output file: .npz or .png.")
flags.DEFINE_integer("seed", 0, "Seed of the latent draw.")
flags.DEFINE_integer("scale", 4, "PNG grids: pixels per image pixel.", lower_bound=1)
flags.mark_flags_as_required(["workdir", "out"])
FLAGS = flags.FLAGS

OUTPUT_KINDS = (".npz", ".png")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    kind = os.path.splitext(FLAGS.out)[1].lower()
    if kind not in OUTPUT_KINDS:
        raise app.UsageError(f"--out={FLAGS.out}: the file must end in .npz or .png.")
    from launch import builders, config
    import tensorflow as tf
    import tfgan2

    try:
        train_flags = config.read_flagfile(os.path.join(FLAGS.workdir, "flags.cfg"))
    except FileNotFoundError as exc:
        raise app.UsageError(str(exc))
    ckpt_dir = os.path.join(FLAGS.workdir, "checkpoints")
    path = tf.train.latest_checkpoint(ckpt_dir)
    if path is None:
        raise app.UsageError(f"No checkpoint in {ckpt_dir}: train the run first.")
    gan = builders.build_gan(train_flags, compile_model=False)
    tfgan2.callbacks.make_checkpoint(gan).restore(path).expect_partial()
    images = gan.generate(FLAGS.num, seed=FLAGS.seed)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    if kind == ".npz":
        np.savez_compressed(FLAGS.out, images=images.astype(np.float32))
    elif images.ndim == 2:
        real = builders.real_samples(train_flags, num=max(FLAGS.num, 1000))
        tfgan2.visualize.save_histogram(FLAGS.out, real, images, title=os.path.basename(path))
    else:
        tfgan2.visualize.save_image_grid(FLAGS.out, images, scale=FLAGS.scale)
    print(f"Wrote {len(images)} samples of shape {images.shape[1:]} from {path} to {FLAGS.out}")


def run():
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())
