"""Latent arithmetic by attribute: grouping math, the multi-label attribute classifier, and
launch.sample --mode=arithmetic --attribute=... on a tiny generated CelebA folder."""
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfgan2 import classifier, latent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ grouping math
def test_attribute_vector_is_the_difference_of_group_means():
    # "with" latents are (1, 2) +- (0.5, -1), "without" latents (-1, 0) +- (0, 3):
    # the group means are (1, 2) and (-1, 0), so v = (2, 2) exactly.
    z = np.array([[1.5, 1.0], [0.5, 3.0], [-1.0, 3.0], [-1.0, -3.0], [-1.0, 0.0]])
    p = np.array([0.9, 0.51, 0.5, 0.1, 0.0])  # 0.5 itself is "without" (p > threshold)
    np.testing.assert_array_equal(latent.attribute_groups(p), [1, 1, 0, 0, 0])
    v, (n_with, n_without) = latent.attribute_vector(z, p)
    np.testing.assert_allclose(v, [2.0, 2.0], atol=1e-12)
    assert (n_with, n_without) == (2, 3)
    # Same answer through latent_arithmetic on the groups: base + v.
    base = z[latent.attribute_groups(p) == 0]
    np.testing.assert_allclose(
        latent.latent_arithmetic(z, latent.attribute_groups(p), 1, 0, base), base + v)
    # Another threshold moves the 0.51 sample to "without": means (1.5, 1) and (-0.625, 0.75).
    v2, counts = latent.attribute_vector(z, p, threshold=0.6)
    assert counts == (1, 4)
    np.testing.assert_allclose(v2, [2.125, 0.25], atol=1e-12)


def test_attribute_vector_recovers_a_planted_direction():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 6))
    direction = np.array([1.0, 0, 0, 0, 0, 0])
    p = 1.0 / (1.0 + np.exp(-8.0 * z @ direction))  # attribute "on" for z_0 > 0
    v, (n_with, n_without) = latent.attribute_vector(z, p)
    assert abs(n_with - 2000) < 150 and n_with + n_without == 4000
    # Half-normal means are +-sqrt(2/pi): v_0 = 2 sqrt(2/pi) ~ 1.596, other axes ~ 0.
    assert abs(v[0] - 2 * np.sqrt(2 / np.pi)) < 0.08
    assert np.max(np.abs(v[1:])) < 0.1


def test_attribute_vector_rejects_an_empty_group_and_bad_shapes():
    z = np.zeros((3, 2))
    with pytest.raises(ValueError, match="0 have p > 0.5 and 3 do not"):
        latent.attribute_vector(z, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="3 have p > 0.5 and 0 do not"):
        latent.attribute_vector(z, [0.6, 0.7, 0.8])
    with pytest.raises(ValueError, match="one value per sample"):
        latent.attribute_groups(np.zeros((3, 2)))


# ------------------------------------------------------------------ attribute classifier
def _toy_images(n, seed):
    """8x8 grey images; attribute 0: brightness > 0; attribute 1: left half brighter."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(-0.7, 0.7, n)
    tilt = rng.uniform(-0.25, 0.25, n)
    images = np.empty((n, 8, 8, 1), np.float32)
    images[:, :, :4, 0] = (level + tilt)[:, None, None]
    images[:, :, 4:, 0] = (level - tilt)[:, None, None]
    images += rng.normal(0, 0.05, images.shape).astype(np.float32)
    attributes = np.stack([level > 0, tilt > 0], axis=1).astype(np.float32)
    return np.clip(images, -1, 1), attributes


def test_attribute_classifier_shapes_and_independent_sigmoids():
    model = classifier.build_attribute_classifier((8, 8, 3), 40)
    probs, feats = classifier.classifier_outputs(model, np.zeros((5, 8, 8, 3)))
    assert probs.shape == (5, 40) and feats.shape == (5, 128)
    assert np.all((probs > 0) & (probs < 1))
    assert not np.allclose(probs.sum(axis=1), 1.0)  # not a softmax
    with pytest.raises(ValueError, match="num_attributes"):
        classifier.build_attribute_classifier((8, 8, 3), 0)
    with pytest.raises(ValueError, match="0/1"):
        classifier.train_attribute_classifier(np.zeros((4, 8, 8, 1)), np.full((4, 2), 0.5))


def test_attribute_classifier_learns_brightness_and_is_cached(tmp_path):
    images, attributes = _toy_images(240, seed=1)
    path = str(tmp_path / "eval" / "attributes.keras")
    model, info = classifier.load_or_train_attribute_classifier(
        path, images, attributes, epochs=12, seed=0, names=["bright", "left"])
    assert info["trained"] and os.path.exists(path) and info["num_examples"] == 240
    assert len(info["accuracy"]) == 2 and min(info["accuracy"]) > 0.9, info["accuracy"]
    # Fresh images: both attributes read off correctly.
    test_images, test_attributes = _toy_images(200, seed=2)
    probs, _ = classifier.classifier_outputs(model, test_images)
    accuracy = classifier.attribute_accuracy(probs, test_attributes)
    assert accuracy.shape == (2,) and np.all(accuracy > 0.9), accuracy
    # Same settings: loaded (safe mode) rather than retrained, same outputs.
    again, info2 = classifier.load_or_train_attribute_classifier(
        path, images, attributes, epochs=12, seed=0, names=["bright", "left"])
    assert not info2["trained"] and info2["accuracy"] == info["accuracy"]
    np.testing.assert_allclose(classifier.classifier_outputs(again, test_images[:8])[0],
                               probs[:8], atol=1e-5)


def test_random_split_sizes():
    train, holdout = classifier.random_split(10, 0.25, seed=3)
    assert len(holdout) == 2 and len(train) == 8
    assert sorted(np.concatenate([train, holdout]).tolist()) == list(range(10))
    assert len(classifier.random_split(3, 0.01)[1]) == 1
    assert len(classifier.random_split(5, 0.0)[1]) == 0


# ------------------------------------------------------------------ launch.sample end to end
H, W = 218, 178
NUM_FACES = 40
EYEGLASSES = 15  # index in pipelines.celeba.ATTRIBUTES


def _make_celeba(root):
    """NUM_FACES aligned-size JPEGs; bright ones wear "Eyeglasses", dark ones do not."""
    from pipelines.celeba import ATTRIBUTES

    assert ATTRIBUTES[EYEGLASSES] == "Eyeglasses"
    image_dir = root / "img_align_celeba"
    image_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    attr_lines = [str(NUM_FACES), " ".join(ATTRIBUTES)]
    parts = []
    for i in range(NUM_FACES):
        name = f"{i + 1:06d}.jpg"
        bright = i % 2 == 0
        level = 200 if bright else 50
        pixels = np.clip(rng.normal(level, 20, (H, W, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=90)
        (image_dir / name).write_bytes(buf.getvalue())
        row = rng.integers(0, 2, len(ATTRIBUTES))
        row[EYEGLASSES] = int(bright)
        attr_lines.append(name + "  " + " ".join("1" if b else "-1" for b in row))
        parts.append(f"{name} {0 if i < 30 else (1 if i < 35 else 2)}")
    (root / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return root


def _launch(env, *args):
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc, timeout=300):
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def test_sample_attribute_arithmetic_end_to_end(tmp_path, subprocess_env):
    data = _make_celeba(tmp_path / "celeba")
    workdir = tmp_path / "run"
    common = [f"--workdir={workdir}", "--mode=arithmetic", "--num=3", "--pool=48",
              "--attribute_examples=40", "--classifier_epochs=1"]
    train = _launch(subprocess_env, "launch.train", f"--workdir={workdir}",
                    "--data_source=celeba", f"--data_dir={data}", "--network=dcgan",
                    "--resolution=8", "--capacity=2", "--latent_dim=4", "--batch_size=4",
                    "--train_steps=2", "--log_every=1", "--steps_per_execution=1", "--split=all",
                    "--num_grid=4", "--notensorboard")
    # The attribute name is checked before anything is restored: run it alongside.
    unknown = _launch(subprocess_env, "launch.sample", *common, "--attribute=Sunglasses",
                      f"--out={tmp_path / 'unknown.png'}")
    code, _, err = _finish(unknown)
    assert code != 0
    assert "unknown CelebA attribute 'Sunglasses'" in err, err[-2000:]
    assert "Eyeglasses" in err and "Wearing_Hat" in err
    code, _, err = _finish(train)
    assert code == 0, err[-3000:]

    # --threshold=median: two equal halves whatever the untrained generator draws.
    out = tmp_path / "glasses.png"
    code, stdout, err = _finish(_launch(subprocess_env, "launch.sample", *common,
                                        "--attribute=eyeglasses", "--threshold=median",
                                        f"--out={out}"))
    assert code == 0, err[-3000:]
    assert out.exists() and Image.open(out).size[0] > 100
    assert (workdir / "eval" / "attributes.keras").exists()
    assert "Attribute classifier trained" in stdout
    assert "40 real images, Eyeglasses in 50.0% of them" in stdout, stdout
    counts = re.search(r"Samples with Eyeglasses \(p > ([0-9.e-]+)\): (\d+); without: (\d+); "
                       r"drawn: (\d+)", stdout)
    assert counts, stdout
    median, n_with, n_without, drawn = (float(c) for c in counts.groups())
    assert 0.0 < median < 1.0 and (n_with, n_without, drawn) == (24, 24, 48)
    assert "Wrote 3 rows" in stdout


def test_launcher_split_names_the_empty_group_and_the_pool():
    from launch import eval_lib

    p = np.array([0.2, 0.7, 0.9, 0.4])
    groups, threshold = eval_lib.split_by_attribute(p, "Smiling")
    assert threshold == 0.5 and groups.tolist() == [0, 1, 1, 0]
    groups, threshold = eval_lib.split_by_attribute([0.1, 0.2, 0.3, 0.35], "Smiling", "median")
    assert threshold == pytest.approx(0.25) and groups.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError) as error:
        eval_lib.split_by_attribute(p, "Eyeglasses", 1.0)
    message = str(error.value)
    assert "no sample with Eyeglasses among the 4 drawn (0 with, 4 without" in message
    assert "larger --pool" in message
    with pytest.raises(ValueError, match="no sample without Male among the 4 drawn"):
        eval_lib.split_by_attribute(p, "Male", 0.0)
    assert eval_lib.resolve_attribute("eyeglasses") == ("Eyeglasses", 15)
    with pytest.raises(ValueError, match="valid names: 5_o_Clock_Shadow, .*, Young"):
        eval_lib.resolve_attribute("Sunglasses")
