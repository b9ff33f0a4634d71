"""CelebA / image-folder / TFRecord pipelines on tiny generated data."""
import io
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import pipelines
from pipelines.celeba import ATTRIBUTES, celeba_crop, face_box
from pipelines.common import sharded_input_fn
from pipelines.images import decode_crop_resize, resize_fixed

H, W = 218, 178
N = 12  # good CelebA-shaped images 000001 ... 000012
RES = 16


def _level(i):
    """Grey level that encodes image index ``i``."""
    return 10 + 20 * i


def _index_of(image):
    """Recover the index from a float image in [-1, 1]."""
    level = (float(np.mean(image)) + 1.0) * 127.5
    return int(round((level - 10) / 20))


def _attr_row(i):
    bits = [(i >> j) & 1 for j in range(4)]
    return bits + [1 if (i + j) % 3 == 0 else 0 for j in range(36)]


def _jpeg(array, **kw):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _make_celeba(root, *, bad=True, meta=True):
    """A CelebA folder: N images (one grayscale JPEG, one PNG named .jpg), plus 3 bad files."""
    image_dir = root / "img_align_celeba"
    image_dir.mkdir(parents=True)
    names = []
    for i in range(N):
        name = f"{i + 1:06d}.jpg"
        names.append(name)
        if i == 3:  # grayscale JPEG
            data = _jpeg(np.full((H, W), _level(i), np.uint8))
        elif i == 5:  # PNG content with the CelebA name
            data = _png(np.full((H, W, 3), _level(i), np.uint8))
        else:
            data = _jpeg(np.full((H, W, 3), _level(i), np.uint8))
        (image_dir / name).write_bytes(data)
    if bad:
        good = _jpeg(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8))
        (image_dir / "000013.jpg").write_bytes(good[: len(good) // 2])  # truncated
        (image_dir / "000014.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(500))  # corrupt
        (image_dir / "notes.txt").write_text("not an image\n")
    if meta:
        attr_names = list(ATTRIBUTES)
        lines = [str(N), " ".join(attr_names)]
        for i, name in enumerate(names):
            lines.append(name + "  " + " ".join("1" if b else "-1" for b in _attr_row(i)))
        (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
        parts = [f"{name} {0 if i < 8 else (1 if i < 10 else 2)}" for i, name in enumerate(names)]
        parts += ["000013.jpg 0", "000014.jpg 0"]
        (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return root


@pytest.fixture(scope="module")
def celeba_dir(tmp_path_factory):
    return _make_celeba(tmp_path_factory.mktemp("celeba"))


def _collect(ds):
    images, labels = [], []
    for batch in ds:
        if isinstance(batch, tuple):
            images.append(batch[0].numpy())
            labels.append(batch[1].numpy())
        else:
            images.append(batch.numpy())
    images = np.concatenate(images)
    return images, (np.concatenate(labels) if labels else None)


def _plain(source, **kw):
    kw.setdefault("batch_size", 1)
    return dict(resolution=RES, shuffle=False, repeat=False, deterministic=True, **kw)


def test_folder_skips_bad_files_and_counts_them_once(celeba_dir, caplog):
    with caplog.at_level(logging.WARNING):
        ds = pipelines.celeba(str(celeba_dir), **_plain(celeba_dir, split="all"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "Skipping" in r.message]
    assert len(warnings) == 1
    assert "Skipping 3 of 15 files" in warnings[0].getMessage()
    assert "000013.jpg" in warnings[0].getMessage() and "notes.txt" in warnings[0].getMessage()
    images, _ = _collect(ds)
    assert images.shape == (N, RES, RES, 3) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert sorted(_index_of(im) for im in images) == list(range(N))


def test_grayscale_and_png_become_rgb(celeba_dir):
    images, _ = _collect(pipelines.celeba(str(celeba_dir), **_plain(celeba_dir, split="all")))
    by_index = {_index_of(im): im for im in images}
    for i in (3, 5):  # grayscale JPEG, PNG
        np.testing.assert_allclose(by_index[i], _level(i) / 127.5 - 1.0, atol=2 / 127.5)


def test_splits_follow_the_partition_file(celeba_dir):
    counts = {}
    for split in ("train", "validation", "test"):
        images, _ = _collect(pipelines.celeba(str(celeba_dir), **_plain(celeba_dir, split=split)))
        counts[split] = sorted(_index_of(im) for im in images)
    assert counts == {"train": list(range(8)), "validation": [8, 9], "test": [10, 11]}


def test_attributes_are_aligned_with_their_images(celeba_dir):
    ds = pipelines.celeba(str(celeba_dir), labels=True, batch_size=4, resolution=RES,
                          split="all", seed=3)  # shuffled, parallel: alignment must still hold
    images, attrs = _collect(ds.take(3))
    assert attrs.shape == (12, 40) and attrs.dtype == np.float32
    assert set(np.unique(attrs)) <= {0.0, 1.0}
    for image, row in zip(images, attrs):
        np.testing.assert_array_equal(row, _attr_row(_index_of(image)))


def test_tfds_celeb_a_through_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        ds = pipelines.celeba("tfds", split="train", resolution=RES, batch_size=3, labels=True,
                              shuffle=False, repeat=False, deterministic=True)
        images, attrs = _collect(ds)
        raw = tfds.load("celeb_a", split="train", shuffle_files=False)
        expected = np.stack([[float(ex["attributes"][a]) for a in ATTRIBUTES]
                             for ex in raw.as_numpy_iterator()])
    assert images.shape == (6, RES, RES, 3) and images.dtype == np.float32
    assert -1.0 <= images.min() < images.max() <= 1.0
    assert attrs.shape == (6, 40)
    np.testing.assert_array_equal(attrs, expected)


@pytest.mark.parametrize("image_format", ["raw", "png"])
def test_tfrecord_round_trip_equals_direct_pipeline(celeba_dir, tmp_path, image_format):
    out = tmp_path / "records"
    summary = pipelines.write_shards(str(celeba_dir), str(out), resolution=RES, num_shards=3,
                                     image_format=image_format)
    assert summary["images"] == N and summary["skipped"] == 3 and len(summary["files"]) == 3
    direct, direct_attrs = _collect(pipelines.celeba(
        str(celeba_dir), labels=True, **_plain(celeba_dir, split="all")))
    first, first_attrs = _collect(pipelines.celeba(
        str(out / "*.tfrecord"), labels=True, **_plain(out, split="all")))
    again, _ = _collect(pipelines.celeba(str(out), labels=True, **_plain(out, split="all")))
    np.testing.assert_array_equal(first, again)  # deterministic order
    order_direct = np.argsort([_index_of(im) for im in direct])
    order_records = np.argsort([_index_of(im) for im in first])
    np.testing.assert_allclose(first[order_records], direct[order_direct], atol=1e-6)
    np.testing.assert_array_equal(first_attrs[order_records], direct_attrs[order_direct])
    train, _ = _collect(pipelines.celeba(str(out / "*.tfrecord"), **_plain(out, split="train")))
    assert sorted(_index_of(im) for im in train) == list(range(8))


def test_two_workers_cover_every_image_exactly_once(celeba_dir, tmp_path):
    seen = []
    for index in (0, 1):
        images, _ = _collect(pipelines.image_folder(
            str(celeba_dir / "img_align_celeba"), resolution=RES, batch_size=1, shuffle=False,
            repeat=False, deterministic=True, shard=(2, index)))
        seen.append([_index_of(im) for im in images])
    assert sorted(seen[0] + seen[1]) == list(range(N))
    assert len(seen[0]) == len(seen[1]) == N // 2

    out = tmp_path / "records"
    for shards in (1, 4):  # fewer files than workers -> records split; more -> files split
        pipelines.write_shards(str(celeba_dir), str(out / str(shards)), resolution=RES,
                               num_shards=shards)
        seen = [[_index_of(im) for im in _collect(pipelines.celeba(
            str(out / str(shards)), shard=(2, i), **_plain(out, split="all")))[0]] for i in (0, 1)]
        assert sorted(seen[0] + seen[1]) == list(range(N)), shards


def test_sharded_input_fn_uses_per_replica_batch_and_worker_shard(celeba_dir):
    input_fn = sharded_input_fn(pipelines.celeba, 4, source=str(celeba_dir), split="all",
                                resolution=RES, shuffle=False, repeat=False, deterministic=True)
    seen = []
    for pipeline_id in (0, 1):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id,
                                             num_replicas_in_sync=2)
        batches = list(input_fn(context))
        assert all(b.shape[0] == 2 for b in batches)
        seen += [_index_of(im) for b in batches for im in b.numpy()]
    assert sorted(seen) == list(range(N))


def test_auto_shard_policies(celeba_dir, tmp_path):
    policy = tf.data.experimental.AutoShardPolicy
    folder = pipelines.celeba(str(celeba_dir), split="all", resolution=RES, batch_size=2)
    assert folder.options().experimental_distribute.auto_shard_policy == policy.DATA
    pipelines.write_shards(str(celeba_dir), str(tmp_path), resolution=RES, num_shards=2)
    records = pipelines.celeba(str(tmp_path / "*.tfrecord"), split="all", resolution=RES,
                               batch_size=2)
    assert records.options().experimental_distribute.auto_shard_policy == policy.FILE
    explicit = pipelines.celeba(str(tmp_path), split="all", resolution=RES, batch_size=2,
                                shard=(2, 0))
    assert explicit.options().experimental_distribute.auto_shard_policy == policy.OFF


def test_threads_option_sets_a_private_pool_and_keeps_the_pixels(celeba_dir, tmp_path,
                                                                  monkeypatch):
    from pipelines.common import input_threads, usable_cpus

    assert input_threads() == usable_cpus() + 1 >= 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert input_threads() == 4  # follows the CPUs this process may use
    monkeypatch.undo()
    pipelines.write_shards(str(celeba_dir), str(tmp_path), resolution=RES, num_shards=2)
    for source in (str(celeba_dir), str(tmp_path / "*.tfrecord")):
        auto = pipelines.celeba(source, split="all", **_plain(source, batch_size=2))
        threading = auto.options().threading
        assert threading.private_threadpool_size == input_threads()
        assert threading.max_intra_op_parallelism == 1
        default = pipelines.celeba(source, split="all", threads=None,
                                   **_plain(source, batch_size=2))
        assert default.options().threading.private_threadpool_size is None
        assert default.options().threading.max_intra_op_parallelism is None
        mine = pipelines.celeba(source, split="all", threads=3, **_plain(source, batch_size=2))
        assert mine.options().threading.private_threadpool_size == 3
        np.testing.assert_array_equal(_collect(auto)[0], _collect(default)[0])
    for bad in (0, -1, 2.5, "many", True):
        with pytest.raises(ValueError, match="threads must be"):
            pipelines.celeba(str(celeba_dir), split="all", threads=bad, **_plain(None))


def test_crop_resize_same_eagerly_and_in_dataset_map():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    box = face_box(108)
    for data in (_jpeg(pixels), _png(pixels)):
        eager = decode_crop_resize(tf.constant(data), RES, box).numpy()
        mapped = next(iter(tf.data.Dataset.from_tensors(data).map(
            lambda d: decode_crop_resize(d, RES, box)))).numpy()
        np.testing.assert_array_equal(eager, mapped)
        assert eager.shape == (RES, RES, 3) and eager.dtype == np.uint8


@pytest.mark.parametrize("size_in,size_out", [((108, 108), 64), ((218, 178), 16), ((20, 30), 48)])
@pytest.mark.parametrize("channels", [1, 3])
def test_fixed_size_resize_matches_tf_image_resize(size_in, size_out, channels):
    image = tf.random.stateless_uniform([2, *size_in, channels], seed=[1, 2], maxval=255.0)
    expected = tf.image.resize(image, [size_out, size_out], antialias=True)
    np.testing.assert_allclose(resize_fixed(image, size_in, size_out), expected, atol=1e-3)
    np.testing.assert_allclose(resize_fixed(image[0], size_in, size_out), expected[0], atol=1e-3)
    # Channels unknown when traced: the width pass by transposes instead of column bands.
    unknown = tf.function(lambda x: resize_fixed(x, size_in, size_out),
                          input_signature=[tf.TensorSpec([None, *size_in, None], tf.float32)])
    np.testing.assert_allclose(unknown(image), expected, atol=1e-3)


def test_fixed_size_resize_of_a_uint8_batch_and_of_an_empty_one():
    images = tf.cast(tf.random.stateless_uniform([5, 108, 108, 3], seed=[3, 4], maxval=256.0),
                     tf.uint8)
    out = resize_fixed(images, (108, 108), 64)
    assert out.shape == (5, 64, 64, 3) and out.dtype == tf.float32
    for image, resized in zip(images, out):  # each image of the batch on its own
        np.testing.assert_allclose(resized, tf.image.resize(image, [64, 64], antialias=True),
                                   atol=1e-3)
    assert resize_fixed(tf.zeros([0, 108, 108, 3], tf.uint8), (108, 108), 64).shape == (
        0, 64, 64, 3)


def test_default_crop_is_the_108_face_box():
    assert tuple(face_box()) == (67, 35, 108, 108)
    inside = np.zeros((H, W, 3), np.uint8)
    inside[67:175, 35:143] = 255  # white exactly on the box, black elsewhere
    out = decode_crop_resize(tf.constant(_png(inside)), RES, face_box()).numpy()
    assert out.min() == 255
    jpeg = decode_crop_resize(tf.constant(_jpeg(inside)), RES, face_box()).numpy()
    assert jpeg.min() > 200  # JPEG ringing at the box edges only


def test_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        pipelines.image_folder(str(empty), resolution=RES, batch_size=2)
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        pipelines.image_folder(str(tmp_path / "nothing_here" / "*.jpg"), resolution=RES,
                               batch_size=2)
    with pytest.raises(FileNotFoundError, match="nomatch"):
        pipelines.celeba(str(tmp_path / "nomatch-*.tfrecord"))
    with pytest.raises(FileNotFoundError, match="missing"):
        pipelines.celeba(str(tmp_path / "missing"))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"nope")
    with pytest.raises(ValueError, match="junk"):
        pipelines.image_folder(str(junk), resolution=RES, batch_size=2)
    with pytest.raises(ValueError, match="resolution"):
        pipelines.image_folder(str(junk), resolution=0, batch_size=2)
    with pytest.raises(ValueError, match="does not fit"):
        face_box(300)
    with pytest.raises(ValueError, match="crop"):
        celeba_crop("diagonal")


def test_folder_without_partition_file_needs_split_all(tmp_path):
    root = _make_celeba(tmp_path / "bare", bad=False, meta=False)
    with pytest.raises(FileNotFoundError, match="list_eval_partition"):
        pipelines.celeba(str(root), resolution=RES)
    images, _ = _collect(pipelines.image_folder(str(root), resolution=RES, batch_size=4,
                                                shuffle=False, repeat=False, crop="center"))
    assert images.shape == (N, RES, RES, 3)


def test_cache_and_repeat_give_full_batches(celeba_dir, tmp_path):
    for cache in ("memory", str(tmp_path / "cache")):
        ds = pipelines.celeba(str(celeba_dir), split="all", resolution=RES, batch_size=5,
                              cache=cache)
        batches = [b.numpy() for b in ds.take(6)]  # 30 images from 12: repeats through the cache
        assert all(b.shape == (5, RES, RES, 3) for b in batches)
        counts = np.bincount([_index_of(im) for b in batches for im in b], minlength=N)
        assert counts.sum() == 30 and (counts >= 2).all()
