"""Stacked digits: the pipeline's draws and the benchmark's mode counting, KL and legibility."""
import math

import numpy as np
import pytest

import pipelines
from benchmarks import stacked_digits as sd


def all_triples():
    return np.array([(m // 100, m // 10 % 10, m % 10) for m in range(1000)])


# ----------------------------------------------------------------------- measures
def test_every_mode_equally_often_covers_1000_with_zero_kl():
    counts = sd.mode_histogram(np.repeat(all_triples(), 26, axis=0))
    assert counts.shape == (1000,) and np.all(counts == 26)
    assert sd.modes_covered(counts) == 1000
    assert sd.kl_to_uniform(counts) == pytest.approx(0.0, abs=1e-12)


def test_one_mode_covers_one_with_kl_log_1000():
    counts = sd.mode_histogram(np.tile([[3, 0, 7]], (500, 1)))
    assert sd.modes_covered(counts) == 1 and counts[307] == 500
    assert sd.kl_to_uniform(counts) == pytest.approx(math.log(1000), rel=1e-12)


def test_known_histograms_give_their_hand_computed_kl():
    # Half the modes, equally often: p = 1/500 on each, KL = log(1000 / 500) = log 2.
    counts = sd.mode_histogram(np.repeat(all_triples()[::2], 3, axis=0))
    assert sd.modes_covered(counts) == 500
    assert sd.kl_to_uniform(counts) == pytest.approx(0.693147, abs=1e-6)
    # Three samples of mode 12 and one of mode 999: p = (3/4, 1/4),
    # KL = 0.75 log(750) + 0.25 log(250) = 4.965055 + 1.380365.
    counts = sd.mode_histogram([[0, 1, 2]] * 3 + [[9, 9, 9]])
    assert sd.modes_covered(counts) == 2 and counts[12] == 3 and counts[999] == 1
    assert sd.kl_to_uniform(counts) == pytest.approx(6.345420, abs=1e-6)


def test_mode_ids_read_red_green_blue_as_hundreds_tens_units():
    np.testing.assert_array_equal(pipelines.mode_ids([[0, 0, 0], [1, 2, 3], [9, 0, 5]]),
                                  [0, 123, 905])
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        pipelines.mode_ids([1, 2, 3])
    with pytest.raises(ValueError, match="digits 0-9"):
        pipelines.mode_ids([[1, 2, 10]])


def test_kl_refuses_an_empty_histogram():
    with pytest.raises(ValueError, match="positive total"):
        sd.kl_to_uniform(np.zeros(1000))


def probabilities(tops):
    """``(N, 3, 10)`` with channel c of sample i giving its digit 2 probability tops[i][c]
    and spreading the rest evenly over the other nine."""
    tops = np.asarray(tops, np.float64)
    probs = np.repeat(((1 - tops) / 9)[..., None], 10, axis=-1)
    probs[..., 2] = tops
    return probs


def test_legible_needs_all_three_digits_at_probability_0_9_or_more():
    probs = probabilities([[0.9, 0.95, 1.0],      # exactly 0.9 counts
                           [0.899, 0.99, 0.99],   # one digit below: not legible
                           [0.99, 0.99, 0.5],
                           [0.3, 0.3, 0.3]])
    np.testing.assert_array_equal(sd.legible(probs), [True, False, False, False])
    row = sd.scores(probs)
    assert row["legible_share"] == 0.25 and row["modes"] == 1 and row["legible_modes"] == 1
    with pytest.raises(ValueError, match=r"\(N, 3, 10\)"):
        sd.legible(np.ones((4, 10)))


# ----------------------------------------------------------------------- the data
def upsampled_by_class(resolution):
    images, labels = pipelines.digits_arrays()
    return pipelines.upsample_digits(images, resolution)[..., 0], labels


def test_each_channel_is_a_real_digit_of_its_labelled_class():
    big, labels = upsampled_by_class(16)
    x, y = next(iter(pipelines.stacked_digits(16, 16, labels=True, seed=4)))
    x, y = x.numpy(), y.numpy()
    assert x.shape == (16, 16, 16, 3) and x.dtype == np.float32 and y.shape == (16, 3)
    # Nearest real digit (upsampled like the pipeline's) of every channel: an exact match,
    # of the labelled class.
    channels = np.moveaxis(x, -1, 1).reshape(-1, 16 * 16)
    distance = np.abs(channels[:, None, :] - big.reshape(1, len(big), -1)).max(axis=2)
    assert distance.min(axis=1).max() < 1e-6
    np.testing.assert_array_equal(labels[distance.argmin(axis=1)], y.reshape(-1))


def test_channels_are_independent_draws_over_1000_equally_likely_modes():
    n = 20000
    x, y = next(iter(pipelines.stacked_digits(n, 8, labels=True, seed=0)))
    x, y = x.numpy(), y.numpy()
    counts = np.bincount(pipelines.mode_ids(y), minlength=1000)
    # Each mode expects 20; a multinomial's largest deviation over 1,000 cells stays
    # within ~4.5 sd (sd 4.5), and its chi-square near its 999 degrees of freedom.
    assert counts.min() >= 1 and abs(counts - 20).max() < 22
    assert np.sum((counts - 20.0) ** 2 / 20.0) < 999 + 5 * math.sqrt(2 * 999)
    # Different channels' classes are uncorrelated; each class is drawn 1/10 of the time.
    corr = np.corrcoef(y.T)
    assert np.abs(corr - np.eye(3)).max() < 0.03
    assert np.abs(np.bincount(y.reshape(-1), minlength=10) / (3 * n) - 0.1).max() < 0.006
    # Within a class, the digits are drawn independently too: two channels of the same
    # class hold the same image about 1 / (~180 digits of that class) of the time.
    same_class = y[:, 0] == y[:, 1]
    same_image = np.all(x[same_class, :, :, 0] == x[same_class, :, :, 1], axis=(1, 2))
    assert same_class.sum() > 1500 and same_image.mean() < 0.03


def test_digits_choose_the_images_drawn_and_batches_follow_seed_and_skip():
    images, labels = pipelines.digits_arrays()
    keep = np.concatenate([np.flatnonzero(labels == c)[:2] for c in range(10)])
    x, y = next(iter(pipelines.stacked_digits(200, 8, digits=(images[keep], labels[keep]),
                                               labels=True, seed=1)))
    channels = np.moveaxis(x.numpy(), -1, 1).reshape(-1, 64)
    real = pipelines.upsample_digits(images[keep], 8).reshape(len(keep), 64)
    nearest = np.abs(channels[:, None] - real[None]).max(axis=2)
    assert nearest.min(axis=1).max() < 1e-6          # only the 20 given digits appear
    np.testing.assert_array_equal(labels[keep][nearest.argmin(1)], y.numpy().reshape(-1))
    stream = pipelines.stacked_digits(4, 8, seed=5)
    third = list(stream.take(3))[2].numpy()
    np.testing.assert_array_equal(
        next(iter(pipelines.stacked_digits(4, 8, seed=5, skip_batches=2))).numpy(), third)
    assert not np.array_equal(next(iter(pipelines.stacked_digits(4, 8, seed=6))).numpy(),
                              next(iter(stream)).numpy())


def test_bad_arguments_are_clear_errors():
    images, labels = pipelines.digits_arrays()
    with pytest.raises(ValueError, match=r"missing \[9\]"):
        pipelines.stacked_digits(4, 8, digits=(images[labels < 9], labels[labels < 9]))
    with pytest.raises(ValueError, match="resolution must be an integer >= 8"):
        pipelines.stacked_digits(4, 4)
    with pytest.raises(ValueError, match=r"\(N, 8, 8, 1\)"):
        pipelines.stacked_digits(4, 8, digits=(images[:, :4], labels))


# ----------------------------------------------------------------------- the plumbing
def test_each_channel_is_classified_on_its_own(monkeypatch):
    """Channel c of each image reaches the classifier as its own 8x8 digit: a stand-in
    classifier reads a constant image's grey level as its class."""
    import keras

    from benchmarks import digits_quality

    inputs = keras.Input((8, 8, 1))
    level = keras.layers.Lambda(lambda t: keras.ops.mean(t, axis=(1, 2, 3))[:, None])(inputs)
    features = keras.layers.Dense(4, name="features")(keras.layers.Flatten()(inputs))
    centres = np.linspace(-0.9, 0.9, 10)
    logits = keras.layers.Lambda(lambda t: -1e3 * (t - centres[None]) ** 2)(level)
    probs = keras.layers.Activation("softmax", name="probabilities")(
        keras.layers.Add()([logits, 0.0 * keras.layers.Dense(10)(features)]))
    model = keras.Model(inputs, probs)
    monkeypatch.setattr(digits_quality, "reference", lambda cache_dir=None: {"model": model})
    triples = np.array([[0, 5, 9], [3, 3, 1], [7, 2, 8]])
    images = np.broadcast_to(centres[triples][:, None, None, :], (3, 16, 16, 3))
    result = sd.channel_probabilities(images)
    assert result.shape == (3, 3, 10)
    np.testing.assert_array_equal(result.argmax(-1), triples)


def test_contender_table_takes_names_and_extra_launcher_flags():
    table = sd.contender_table(["dcgan", "pack4"], ["r3gan=--network=r3gan --r2_gamma=1"])
    assert table == [("dcgan", ()), ("pack4", ("--pack=4", "--batch_size=256")),
                     ("r3gan", ("--network=r3gan", "--r2_gamma=1"))]
    with pytest.raises(ValueError, match="Unknown contender 'wgan'.*dcgan, pack2, pack4, "):
        sd.contender_table(["wgan"], [])
    with pytest.raises(ValueError, match="NAME=FLAGS"):
        sd.contender_table([], ["--network=resnet"])
    with pytest.raises(ValueError, match="repeated: dcgan"):
        sd.contender_table(["dcgan"], ["dcgan=--pack=2"])
    # Samples measured from files are named by the file, or by the run of a samples.npz.
    assert sd.samples_name("/x/runs/pack4/samples.npz") == "pack4"
    assert sd.samples_name("mine/gan_step_9000.npz") == "gan_step_9000"


def test_pictures_are_written(tmp_path):
    from PIL import Image

    images = np.zeros((8, 16, 16, 3), np.float32)
    sd.save_grid(str(tmp_path / "grid.png"), images, probabilities(np.full((8, 3), 0.95)))
    sd.save_channels(str(tmp_path / "channels.png"), images, probabilities(np.full((8, 3), 0.5)))
    counts = sd.mode_histogram(np.repeat(all_triples(), 2, axis=0))
    sd.save_histogram(str(tmp_path / "hist.png"), [("a", counts), ("b", counts[::-1])])
    for name in ("grid.png", "channels.png", "hist.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.size[0] > 300 and picture.size[1] > 60
