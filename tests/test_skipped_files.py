"""Bad input files are counted, not silently dropped; the chunked decoder keeps the pixels.

Covers `pipelines.skipped.SkippedFiles`, `pipelines.decode_files.decode_stream`
and the report of a `launch.train` run (printed and in metrics.jsonl).
"""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import pipelines
from pipelines.celeba import celeba_crop
from pipelines.decode_files import decode_stream
from pipelines.images import decode_crop_resize
from pipelines.skipped import SkippedFiles

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H, W = 218, 178
GOOD = 10


def _photo(seed):
    """A photo-like 218x178 RGB array (smooth waves plus noise), as JPEG bytes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    a, b, c = rng.uniform(-1, 1, 3)
    base = 128 + 60 * np.sin(a * yy / 30 + b * xx / 25 + c)
    pixels = base[..., None] * rng.uniform(0.6, 1.4, 3) + rng.normal(0, 8, (H, W, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


# A JPEG start and end marker around garbage: passes the header/end-marker
# screen, fails in the decoder.
_CORRUPT_INSIDE = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"


def _folder(root):
    """GOOD photos 000001..000010, plus 2 files the screen rejects and 2 the decoder rejects."""
    image_dir = root / "img_align_celeba"
    image_dir.mkdir(parents=True)
    for i in range(GOOD):
        (image_dir / f"{i + 1:06d}.jpg").write_bytes(_photo(i))
    good = _photo(99)
    (image_dir / "000011.jpg").write_bytes(good[: len(good) // 2])  # truncated download
    (image_dir / "000012.jpg").write_text("not an image\n")
    (image_dir / "000013.jpg").write_bytes(_CORRUPT_INSIDE)
    (image_dir / "000014.jpg").write_bytes(_CORRUPT_INSIDE[:600] + b"\xff\xd9")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("bad_celeba"))


def test_every_bad_file_is_counted_once_and_the_rest_stream(folder):
    skipped = SkippedFiles()
    ds = pipelines.celeba(str(folder), split="all", resolution=16, batch_size=2, shuffle=False,
                          deterministic=True, skipped=skipped)  # endless: bad files recur
    batches = [b.numpy() for b in ds.take(3 * GOOD // 2)]  # three passes over the good files
    assert all(b.shape == (2, 16, 16, 3) for b in batches)
    assert skipped.count == 4
    assert skipped.decode_failures == 2
    assert skipped.files == GOOD + 4
    reasons = {os.path.basename(p): r for p, r in skipped.items()}
    assert reasons["000011.jpg"] == "truncated jpeg"
    assert reasons["000012.jpg"] == "not an image"
    assert reasons["000013.jpg"] == reasons["000014.jpg"] == "failed to decode"
    assert "skipped 4 of 14 input files (2 screened out, 2 failed to decode)" in skipped.summary()


def test_image_folder_counts_the_same_files(folder):
    skipped = SkippedFiles()
    ds = pipelines.image_folder(str(folder), resolution=8, batch_size=1, shuffle=False,
                                repeat=False, skipped=skipped)
    assert sum(1 for _ in ds) == GOOD
    assert (skipped.count, skipped.decode_failures, skipped.files) == (4, 2, GOOD + 4)


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("crop", [celeba_crop(108), "center", None])
def test_decode_failures_are_named_and_the_rest_keep_their_extras(folder, crop, deterministic):
    image_dir = folder / "img_align_celeba"
    bad = [str(image_dir / "000013.jpg"), str(image_dir / "000014.jpg")]
    good = [str(image_dir / f"{i:06d}.jpg") for i in (3, 1, 2)]
    skipped = SkippedFiles()
    # A finite stream ending in a bad file: the end of the stream settles it.
    names = tf.data.Dataset.from_tensor_slices((bad + good[:2] + good[2:] + bad[:1],
                                                np.arange(6, dtype=np.int64)))
    out = list(decode_stream(names, resolution=8, crop=crop, deterministic=deterministic,
                             skipped=skipped).as_numpy_iterator())
    numbers = [int(i) for _, i in out]
    assert (numbers if deterministic else sorted(numbers)) == [2, 3, 4]
    assert all(image.shape == (8, 8, 3) and image.dtype == np.uint8 for image, _ in out)
    assert skipped.decode_failures == 2 and skipped.count == 2
    assert sorted(p for p, _ in skipped.items()) == sorted(bad)


def test_an_endless_unordered_stream_counts_within_the_reorder_window(folder):
    """Without a kept order a failure is settled once REORDER_WINDOW later names came out."""
    from pipelines.decode_files import REORDER_WINDOW

    image_dir = folder / "img_align_celeba"
    names = [str(image_dir / f"{i:06d}.jpg") for i in range(1, 11)] + [
        str(image_dir / "000013.jpg")]
    skipped = SkippedFiles()
    ds = decode_stream(tf.data.Dataset.from_tensor_slices(names).repeat(), resolution=8,
                       crop="center", skipped=skipped)
    passes = 3 * REORDER_WINDOW // len(names)
    assert sum(1 for _ in ds.take(passes * 10)) == passes * 10
    assert skipped.count == skipped.decode_failures == 1


def test_chunked_decoder_keeps_the_pixels_within_one_level(folder):
    """The stream decoder (crop inside the JPEG decoder, batched resize) against the per-image
    path and against a whole decode + crop + `tf.image.resize`: at most 1 of 255 apart."""
    paths = sorted(str(p) for p in (folder / "img_align_celeba").glob("0000[01]*.jpg"))[:GOOD]
    crop = celeba_crop(108)
    chunked = np.stack(list(decode_stream(tf.data.Dataset.from_tensor_slices(paths),
                                          resolution=64, crop=crop, deterministic=True)
                            .as_numpy_iterator())).astype(int)
    single = np.stack([decode_crop_resize(tf.io.read_file(p), 64, crop).numpy() for p in paths])
    whole = []
    for p in paths:
        image = tf.io.decode_jpeg(tf.io.read_file(p), channels=3)
        box = image[crop.top:crop.top + crop.height, crop.left:crop.left + crop.width]
        resized = tf.image.resize(tf.cast(box, tf.float32), [64, 64], antialias=True)
        whole.append(np.clip(np.round(resized.numpy()), 0, 255))
    assert chunked.shape == (GOOD, 64, 64, 3)
    for reference in (single, np.stack(whole)):
        diff = np.abs(chunked - reference.astype(int))
        assert diff.max() <= 1
        assert np.mean(diff > 0) < 0.01


def test_train_run_reports_the_skipped_files(folder, tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "launch.train", f"--workdir={workdir}", "--train_steps=4",
         "--log_every=2", "--steps_per_execution=2", "--sample_every=0", "--batch_size=4",
         "--latent_dim=4", "--num_grid=4", "--tensorboard=false", "--data_source=celeba",
         f"--data_dir={folder}", "--split=all", "--network=dcgan", "--resolution=8",
         "--capacity=2", "--deterministic"],
        cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Input: skipped 4 of 14 input files (2 screened out, 2 failed to decode)" \
        in proc.stdout
    # The data are checked before training and read again for it: one warning.
    assert proc.stderr.count("Skipping 2 of 14 files") == 1, proc.stderr
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4]
    assert rows[-1]["skipped_files"] == 4


def test_images_smaller_than_the_resolution_are_upscaled_with_one_warning(tmp_path, caplog):
    folder = tmp_path / "tiny"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.full((5, 6), 40 * i, np.uint8)).save(folder / f"{i}.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(folder / "big.png")
    for _ in range(2):  # a launcher builds the pipeline twice: one warning
        ds = pipelines.image_folder(str(folder), resolution=16, batch_size=2, channels=1)
    assert next(iter(ds)).shape == (2, 16, 16, 1)
    notes = [r.getMessage() for r in caplog.records if "upscaled" in r.getMessage()]
    assert notes == [f"6 of the 7 images checked in {str(folder)!r} are smaller than the 16x16 "
                     f"training resolution (the smallest 5 px across): they are upscaled, which "
                     f"adds no detail. Even the smallest resolution, 8, is larger."]
    caplog.clear()
    pipelines.image_folder(str(folder), resolution=8, batch_size=2, channels=1, crop=(0, 0, 4, 4))
    assert [r.getMessage() for r in caplog.records if "upscaled" in r.getMessage()]
    caplog.clear()
    tens = tmp_path / "tens"
    tens.mkdir()
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tens / "a.png")
    pipelines.image_folder(str(tens), resolution=32, batch_size=1, channels=1)
    assert [r.getMessage() for r in caplog.records if "upscaled" in r.getMessage()][0].endswith(
        "the smallest 10 px across): they are upscaled, which adds no detail. A resolution of 8 "
        "fits them.")
    caplog.clear()
    large = tmp_path / "large"
    large.mkdir()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(large / "a.png")
    pipelines.image_folder(str(large), resolution=16, batch_size=1, channels=1)
    assert not [r for r in caplog.records if "upscaled" in r.getMessage()]
