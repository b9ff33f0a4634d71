"""Evaluation: latent math, feature extractors, TSTR, D's confusion matrix, TensorBoard
events and evaluation rows from a real fit, launch.evaluate / launch.sample end to end."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import evaluation, features, latent, summaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ latent math
def test_slerp_endpoints_norm_and_midpoint_angle():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal(16), rng.standard_normal(16)
    path = latent.slerp(z0, z1, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(path[0], z0)
    np.testing.assert_array_equal(path[-1], z1)
    u0, u1 = z0 / np.linalg.norm(z0), z1 / np.linalg.norm(z1)
    t = np.linspace(0, 1, 11)
    unit = latent.slerp(u0, u1, t)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-12)
    omega = np.arccos(u0 @ u1)
    angles = np.arccos(np.clip(unit @ u0, -1, 1))
    np.testing.assert_allclose(angles, t * omega, atol=1e-7)
    mid = latent.slerp(u0, u1, 0.5)[0]
    np.testing.assert_allclose(np.arccos(mid @ u1), omega / 2, atol=1e-9)
    # The linear midpoint of two unit vectors is shorter than 1; slerp's is not.
    assert np.linalg.norm(latent.lerp(u0, u1, 0.5)[0]) < 0.99


def test_slerp_degenerate_cases_and_interpolate():
    z = np.array([1.0, 2.0, 2.0])
    np.testing.assert_allclose(latent.slerp(z, 2 * z, [0.5])[0], 1.5 * z)  # parallel: linear
    with pytest.raises(ValueError, match="antiparallel"):
        latent.slerp(z, -z, 0.5)
    walk = latent.interpolate(np.zeros(3) + 1, np.array([1.0, -1.0, 0.0]), 5, "linear")
    assert walk.shape == (5, 3)
    np.testing.assert_allclose(walk[2], [1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="linear, spherical"):
        latent.interpolate(z, z, 3, "cubic")


def test_group_means_and_arithmetic():
    z = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0], [5.0, 5.0]])
    groups = np.array([0, 0, 1, 1, 3])
    means, counts = latent.group_means(z, groups)
    np.testing.assert_allclose(means[[0, 1, 3]], [[2.0, 0.0], [0.0, 3.0], [5.0, 5.0]])
    assert np.all(np.isnan(means[2])) and counts.tolist() == [2, 2, 0, 1]
    out = latent.latent_arithmetic(z, groups, 0, 1, z[2:4])
    np.testing.assert_allclose(out, [[2.0, -1.0], [2.0, 1.0]])  # z + (2, 0) - (0, 3)
    with pytest.raises(ValueError, match="with_group=2 has no member"):
        latent.latent_arithmetic(z, groups, 2, 1, z[0])


# ------------------------------------------------------------------ confusion, metrics
def test_confusion_counts_and_thresholds():
    real, fake = [2.0, 0.3, -1.0, 0.6], [-3.0, 0.4, 0.7]
    assert evaluation.confusion_counts(real, fake, 0.0) == {
        "real_as_real": 3, "real_as_fake": 1, "fake_as_real": 2, "fake_as_fake": 1}
    lsgan = evaluation.confusion_counts(real, fake, evaluation.decision_threshold("least_squares"))
    assert lsgan == {"real_as_real": 2, "real_as_fake": 2, "fake_as_real": 1, "fake_as_fake": 2}
    assert evaluation.decision_threshold("hinge") == 0.0


def test_discriminator_confusion_sums_to_both_sets():
    # D(x) = sum(x): positive for the "real" set, negative for the "fake" one.
    d = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, use_bias=False,
                                                                kernel_initializer="ones")])
    real = np.abs(np.random.default_rng(0).standard_normal((7, 4))) + 0.1
    counts = evaluation.discriminator_confusion(d, real, -real[:5], batch_size=3)
    assert counts == {"real_as_real": 7, "real_as_fake": 0, "fake_as_real": 0, "fake_as_fake": 5}


def test_metric_names_are_checked():
    assert evaluation.check_metrics("fid, kid,fid") == ["fid", "kid"]
    with pytest.raises(ValueError, match="unknown metric 'fd'; valid metrics: fid, kid, is"):
        evaluation.check_metrics("fid,fd")
    with pytest.raises(ValueError, match="not defined for vector data"):
        evaluation.check_metrics("is", vector_data=True)
    with pytest.raises(ValueError, match="not defined for vector data"):
        evaluation.check_metrics("swd", vector_data=True)


def test_swd_metric_separates_noise_from_structure():
    # Real: smooth ramps of random contrast; "good" samples: new ramps (patches
    # normalized by their own mean and std are then the same); "bad": the
    # ramps upside down (mirrored patches), and white noise.
    rng = np.random.default_rng(0)
    ramp = np.linspace(-1, 1, 16)[None, :, None, None] * np.ones((1, 16, 16, 1))
    real = (ramp * rng.uniform(0.5, 1.0, (64, 1, 1, 1))).astype(np.float32)
    good = (ramp * rng.uniform(0.5, 1.0, (64, 1, 1, 1))).astype(np.float32)
    flipped = good[:, ::-1]
    noise = rng.uniform(-1, 1, real.shape).astype(np.float32)
    ev = evaluation.Evaluator("swd", real, 64, seed=0)
    r_good, r_flip, r_noise = (ev.evaluate_samples(x) for x in (good, flipped, noise))
    assert list(r_good["swd_levels"]) == ["res16"]
    assert r_good["swd"] < 1e-3 and r_good["swd_real"] < 1e-3
    assert r_flip["swd"] > 0.1 and r_noise["swd"] > 0.1


def test_evaluator_on_vector_data_measures_the_gap():
    rng = np.random.default_rng(0)
    real = rng.normal(4.0, 1.25, (300, 6)).astype(np.float32)

    class Shifted:  # the generate/discriminate surface of tfgan2.GAN
        discriminate = staticmethod(lambda x: np.sum(x, axis=1) - 24.0)

        def __init__(self, shift):
            self.shift = shift

        def generate(self, num, seed=None):
            return np.random.default_rng(seed).normal(4.0 + self.shift, 1.25, (num, 6))

    ev = evaluation.Evaluator("fid,kid,pr,moments,confusion", real, 200, seed=1)
    good, bad = ev(Shifted(0.0)), ev(Shifted(2.0))
    assert good["fid"] < 0.5 < 20.0 < bad["fid"]  # 6 dims x 2^2 = 24 for the shift
    assert abs(bad["fake_mean"] - 6.0) < 0.1 and abs(good["real_std"] - 1.25) < 0.1
    assert bad["precision"] < good["precision"]
    assert sum(good["confusion"].values()) == 400 and good["num_samples"] == 200


# ------------------------------------------------------------------ features, TSTR
def test_inception_preprocessing_and_random_network_shapes():
    gray = np.linspace(-1, 1, 2 * 8 * 8).reshape(2, 8, 8, 1).astype(np.float32)
    x = features.prepare_inception_images(gray)
    assert x.shape == (2, 299, 299, 3) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), gray.mean(axis=(1, 2, 3)), atol=0.02)
    net = features.InceptionExtractor(random_weights=True, batch_size=2)
    probs, feats = net(np.zeros((3, 8, 8, 3), np.float32))
    assert probs.shape == (3, 1000) and feats.shape == (3, 2048)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


def test_missing_inception_weights_say_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        features.InceptionExtractor(str(tmp_path / "nope.h5"))
    message = str(err.value)
    assert features.INCEPTION_WEIGHTS_FILE in message and "--inception_weights=PATH" in message
    assert "github.com" in message


def _digit_split():
    import pipelines
    from tfgan2 import classifier

    images, labels = pipelines.digits_arrays()
    train, test = classifier.stratified_split(labels, 0.25, seed=0)
    return images, labels, train, test


def test_tstr_real_labels_beat_shuffled_labels():
    images, labels, train, test = _digit_split()
    syn = train[:300]
    good = evaluation.tstr(images[syn], labels[syn], images[train], labels[train],
                           images[test], labels[test], num_classes=10, epochs=3)
    shuffled = np.random.default_rng(0).permutation(labels[syn])
    bad = evaluation.tstr(images[syn], shuffled, images[train], labels[train],
                          images[test], labels[test], num_classes=10, epochs=3)
    for r in (good, bad):
        assert 0.0 <= r["tstr_accuracy"] <= 1.0 and r["num_real_train"] == 300
    assert good["tstr_accuracy"] > 0.7 and good["trtr_accuracy"] > 0.7
    assert bad["tstr_accuracy"] < 0.35


def test_classifier_is_stored_and_reloaded(tmp_path):
    images, labels, _, _ = _digit_split()
    path = str(tmp_path / "eval" / "classifier.keras")
    model, info = features.load_or_train_classifier(path, images[:300], labels[:300], epochs=1)
    assert info["trained"] and os.path.exists(path) and 0 <= info["heldout_accuracy"] <= 1
    again, info2 = features.load_or_train_classifier(path, images[:300], labels[:300], epochs=1)
    assert not info2["trained"]
    np.testing.assert_allclose(features.ClassifierExtractor(again)(images[:5])[0],
                               features.ClassifierExtractor(model)(images[:5])[0], atol=1e-6)
    _, info3 = features.load_or_train_classifier(path, images[:300], labels[:300], epochs=2)
    assert info3["trained"]  # other settings: retrained


# ------------------------------------------------------------------ callbacks in a real fit
def test_tensorboard_and_evaluation_rows_from_a_short_run(tmp_path):
    import pipelines

    keras.utils.set_random_seed(0)
    gan = tfgan2.GAN(tfgan2.networks.mlp_generator(latent_dim=4, image_shape=(8, 8, 1)),
                     tfgan2.networks.mlp_discriminator(image_shape=(8, 8, 1)), latent_dim=4,
                     seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3),
                steps_per_execution=2)
    images, _ = pipelines.digits_arrays()
    flat = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])

    class PixelFeatures:  # features = raw pixels, probabilities = a fixed softmax of them
        name = "pixels"

        def __call__(self, x):
            f = np.asarray(flat(x), np.float64)
            e = np.exp(f[:, :10] - f[:, :10].max(1, keepdims=True))
            return e / e.sum(1, keepdims=True), f

    evaluator = evaluation.Evaluator("fid,is,confusion", images, 40, extractor=PixelFeatures())
    log_dir = str(tmp_path / "tensorboard")
    jsonl = str(tmp_path / "metrics.jsonl")
    tb = summaries.TensorBoardLogger(log_dir, every_n_steps=4, num_images=4)
    ev = evaluation.EvaluationCallback(4, evaluator, log_dir=log_dir, metrics_path=jsonl)
    tfgan2.train(gan, pipelines.digits(8, seed=0), str(tmp_path), train_steps=8, log_every=4,
                 sample_every=0, checkpoint_every=0, callbacks=[tb, ev], verbose=0)
    tb.close()

    events = summaries.read_events(log_dir)
    scalars, pictures = events["scalars"], events["images"]
    for key in ("d_loss", "g_loss", "p_real", "p_fake", "real_as_real", "fake_as_fake"):
        assert [s for s, _ in scalars[f"train/{key}"]] == [4, 8], key
        assert all(np.isfinite(v) for _, v in scalars[f"train/{key}"])
    assert [s for s, _ in scalars["eval/fid"]] == [4, 8]
    assert [s for s, _ in pictures["samples"]] == [4, 8]
    assert pictures["samples"][0][1].shape == (2 * 9 + 1, 2 * 9 + 1, 1)
    rows = [json.loads(line) for line in open(jsonl)]
    eval_rows = [r for r in rows if "eval/fid" in r]
    assert [r["step"] for r in eval_rows] == [4, 8]
    assert [r["step"] for r in rows if "d_loss" in r] == [4, 8]
    r = eval_rows[-1]
    assert r["eval/fid"] > 0 and 1.0 <= r["eval/is"] <= 10.0
    assert sum(r[f"eval/confusion/{k}"] for k in ("real_as_real", "real_as_fake",
                                                   "fake_as_real", "fake_as_fake")) == 80
    assert scalars["eval/fid"][-1][1] == pytest.approx(r["eval/fid"], rel=1e-6)

    # TensorBoard's own reader sees the same scalars and images, tagged for its
    # scalar and image dashboards (summary v2 events: tensors plus plugin metadata).
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(log_dir, size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    assert {"train/d_loss", "train/g_loss", "eval/fid", "samples"} <= tags
    plugin = lambda tag: acc.SummaryMetadata(tag).plugin_data.plugin_name  # noqa: E731
    assert plugin("train/g_loss") == "scalars" and plugin("samples") == "images"
    g_loss = acc.Tensors("train/g_loss")
    assert [e.step for e in g_loss] == [4, 8]
    fid = tf.make_ndarray(acc.Tensors("eval/fid")[-1].tensor_proto)
    assert float(fid) == pytest.approx(r["eval/fid"], rel=1e-6)
    last = acc.Tensors("samples")[-1]
    width, height, png = tf.make_ndarray(last.tensor_proto)[:3]
    assert last.step == 8 and (int(width), int(height)) == (19, 19)
    assert tf.io.decode_png(png).shape == (19, 19, 1)


def test_confusion_picture(tmp_path):
    path = tmp_path / "c.png"
    tfgan2.visualize.save_confusion_matrix(str(path), {"real_as_real": 3, "real_as_fake": 1,
                                                       "fake_as_real": 2, "fake_as_fake": 2})
    from PIL import Image

    assert Image.open(path).size[0] > 100


# ------------------------------------------------------------------ launchers end to end
def run(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True)


def test_evaluate_and_latent_arithmetic_end_to_end(tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    proc = run(subprocess_env, "launch.train", f"--workdir={workdir}", "--train_steps=20",
               "--log_every=10", "--steps_per_execution=10", "--latent_dim=8", "--num_grid=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run(subprocess_env, "launch.evaluate", f"--workdir={workdir}",
               "--metrics=fid,kid,is,pr,tstr,confusion,swd", "--num_samples=60",
               "--classifier_epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((workdir / "eval.json").read_text())
    for key in ("fid", "kid", "is", "precision", "recall", "tstr_accuracy", "trtr_accuracy",
                "confusion", "swd", "swd_real"):
        assert key in result, key
    # Digits are 8x8: one pyramid level of 7x7 patches.
    assert list(result["swd_levels"]) == ["res8"] and result["swd"] > 0
    assert result["step"] == 20 and result["num_samples"] == 60
    assert result["features"] == "classifier" and result["fid"] > 0
    assert 1.0 <= result["is"] <= 10.0
    assert 0.0 <= result["tstr_accuracy"] <= 1.0 and 0.0 <= result["trtr_accuracy"] <= 1.0
    assert sum(result["confusion"].values()) == 2 * 60
    assert (workdir / "eval" / "classifier.keras").exists()
    assert (workdir / "eval" / "confusion.png").exists()
    assert "TSTR accuracy" in proc.stdout and "D confusion" in proc.stdout
    assert "sliced Wasserstein" in proc.stdout

    arith = tmp_path / "arith.png"
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--mode=arithmetic",
               "--num=2", "--pool=200", f"--out={arith}", "--classifier_epochs=2")
    assert arith.exists() or "has no confident sample" in proc.stderr, proc.stderr[-3000:]


# ------------------------------------------------------- what a default evaluation measures
def _offline(env, keras_home):
    """A subprocess environment that cannot download (a dead proxy) with an empty Keras cache."""
    return dict(env, KERAS_HOME=str(keras_home), https_proxy="http://127.0.0.1:9",
                HTTPS_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9",
                HTTP_PROXY="http://127.0.0.1:9")


def test_default_evaluation_of_an_unlabelled_folder_run(tmp_path, subprocess_env, png_folder):
    folder = png_folder(tmp_path / "imgs")
    workdir = tmp_path / "run"
    env = _offline(subprocess_env, tmp_path / "keras")
    run_flags = ["--data_source=image_folder", f"--data_dir={folder}", "--channels=1",
                 "--network=dcgan", "--resolution=8", "--capacity=2", "--latent_dim=4",
                 "--batch_size=8", "--log_every=3", "--sample_every=0", "--num_grid=4",
                 "--steps_per_execution=3", "--tensorboard=false"]
    # Evaluations during training: unlabelled data take Inception features, and without
    # weights the message says where they go, naming launch.train's own flags.
    proc = run(env, "launch.train", f"--workdir={workdir}", "--train_steps=6", "--eval_every=3",
               *run_flags)
    assert proc.returncode != 0
    cache = tmp_path / "keras" / "models" / features.INCEPTION_WEIGHTS_FILE
    assert f"Keras' cache ({cache})" in proc.stderr and "weights at None" not in proc.stderr
    assert "--inception_weights=PATH" in proc.stderr and "--features=" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2, proc.stderr
    proc = run(env, "launch.train", f"--workdir={workdir}", "--train_steps=6", *run_flags)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # No --metrics: what the run allows (D's view, SWD), and what it skipped and why.
    proc = run(env, "launch.evaluate", f"--workdir={workdir}", "--num_samples=16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Skipped fid, kid, is, pr: image features are needed" in proc.stdout
    assert str(cache) in proc.stdout and "--inception_weights=PATH" in proc.stdout
    assert "Skipped tstr: trains two more classifiers; ask with --metrics=...,tstr" in proc.stdout
    result = json.loads((workdir / "eval.json").read_text())
    assert result["features"] == "none" and result["num_samples"] == 16
    assert sum(result["confusion"].values()) == 32 and result["swd"] > 0
    assert set(result["skipped"]) == {"fid", "kid", "is", "pr", "tstr"}
    table = {line[:30].strip(): line[30:].strip() for line in proc.stdout.splitlines()}
    assert float(table["sliced Wasserstein (patches)"]) == pytest.approx(result["swd"], abs=1e-5)
    assert table["features"] == "none"
    # D's confusion view needs no features and no labels.
    proc = run(env, "launch.evaluate", f"--workdir={workdir}", "--metrics=confusion",
               "--num_samples=16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((workdir / "eval.json").read_text())["confusion"]["real_as_real"] >= 0


def test_inception_weights_come_from_the_flag_or_keras_cache(tmp_path, monkeypatch):
    from launch import eval_lib

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cache = tmp_path / "keras" / "models" / features.INCEPTION_WEIGHTS_FILE
    fetched = []

    def offline(fname, origin, **kwargs):
        fetched.append((fname, origin, kwargs.get("cache_subdir")))
        raise Exception(f"URL fetch failure on {origin}: None -- no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(FileNotFoundError) as err:
        eval_lib.inception_weights(None, eval_lib.TRAIN_EVAL_FLAGS)
    message = str(err.value)
    assert f"Copy {features.INCEPTION_WEIGHTS_FILE}" in message and f"to {cache}" in message
    assert "--inception_weights=PATH" in message and "no network" in message
    assert fetched == [(features.INCEPTION_WEIGHTS_FILE, features.INCEPTION_WEIGHTS_URL, "models")]
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"weights")  # a copy in the cache is used without a download
    assert eval_lib.inception_weights(None) == str(cache) and len(fetched) == 1
    own = tmp_path / "mine.h5"
    own.write_bytes(b"weights")
    assert eval_lib.inception_weights(str(own)) == str(own)
    with pytest.raises(FileNotFoundError, match="--inception_weights=nope.h5: no such file"):
        eval_lib.inception_weights("nope.h5")

    # Asked for by name on data without labels, a metric that cannot be had says how to get it.
    cache.unlink()
    from absl import flags

    from launch import config

    fv = flags.FlagValues()
    config.define_train_flags(fv)
    fv(["x", "--data_source=image_folder", f"--data_dir={tmp_path}", "--network=dcgan"])
    with pytest.raises(FileNotFoundError) as err:
        eval_lib.build_evaluator(fv, str(tmp_path), "fid,confusion", 16)
    assert "no class labels for the domain classifier" in str(err.value)
    assert f"to {cache}, or pass --inception_weights=PATH" in str(err.value)
    with pytest.raises(ValueError, match="use Inception-v3 features: --features=inception"):
        eval_lib.build_evaluator(fv, str(tmp_path), "fid", 16, features="classifier")
    with pytest.raises(ValueError, match="cas need a classifier of the run's classes"):
        eval_lib.build_evaluator(fv, str(tmp_path), "cas", 16)


def test_results_table_and_rows_keep_labels_apart_and_counts_whole():
    from launch import eval_lib

    results = {"step": 200, "num_samples": 100, "features": "none", "swd": 0.15527,
               "swd_real": 0.0195, "confusion": {"real_as_real": 9, "real_as_fake": 1,
                                                 "fake_as_real": 4, "fake_as_fake": 6}}
    lines = eval_lib.format_table(results).splitlines()
    assert "sliced Wasserstein (patches)  0.15527" in lines
    assert all("  " in line for line in lines)  # every label stands apart from its value
    flat = evaluation.flatten(results, "eval/")
    assert flat["eval/num_samples"] == 100 and isinstance(flat["eval/num_samples"], int)
    assert isinstance(flat["eval/confusion/real_as_real"], int)
    assert isinstance(flat["eval/swd"], float)
    assert json.dumps(flat).count("100.0") == 0
