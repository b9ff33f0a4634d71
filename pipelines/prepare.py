"""Prepare TFRecord shards from a CelebA (or any image) folder, once, for fast training.

    python -m pipelines.prepare --source=~/data/celeba --out=~/data/celeba64 --resolution=64

then train from ``~/data/celeba64/*.tfrecord`` (see `pipelines.celeba`).
"""
import sys

from absl import app, flags, logging

from pipelines.tfrecords import write_shards

FLAGS = flags.FLAGS
flags.DEFINE_string("source", None, "CelebA folder (img_align_celeba/ + list files) or any "
                    "folder of images.")
flags.DEFINE_string("out", None, "Output folder for the *.tfrecord shards.")
flags.DEFINE_integer("resolution", 64, "Side of the stored square images, in pixels.")
flags.DEFINE_integer("shards", None, "Number of shards (default: one per 4,096 images).")
flags.DEFINE_string("crop", "108", "An int N (N x N box around the CelebA face centre "
                    "x=89, y=121), 'center', 'none' or 'top,left,height,width'.")
flags.DEFINE_enum("split", "all", ["all", "train", "validation", "test"],
                  "Which CelebA partition to write ('all' keeps the partition in each record).")
flags.DEFINE_enum("format", "raw", ["raw", "png"], "Stored pixels: raw bytes (fastest to read; "
                  "3 * resolution**2 bytes per image) or lossless PNG (smaller, about half as fast).")
flags.DEFINE_integer("seed", 0, "Seed of the write order.")
flags.mark_flags_as_required(["source", "out"])


def _crop(text):
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    from pipelines.images import parse_crop
    return parse_crop(text)


def _progress(done, total):
    width = 30
    filled = width * done // max(total or done, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total or '?'} images")
    if total is not None and done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def main(argv):
    del argv
    summary = write_shards(FLAGS.source, FLAGS.out, resolution=FLAGS.resolution,
                           crop=_crop(FLAGS.crop), num_shards=FLAGS.shards, split=FLAGS.split,
                           image_format=FLAGS.format, seed=FLAGS.seed, progress=_progress)
    logging.info("Wrote %d images into %d files (%s ...); skipped %d bad files.",
                 summary["images"], len(summary["files"]), summary["files"][0], summary["skipped"])


if __name__ == "__main__":
    app.run(main)
