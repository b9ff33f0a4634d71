"""The PacGAN-protocol scoring of `benchmarks.mixtures_2d`."""
import math

import numpy as np
import pytest

import pipelines
from benchmarks.mixtures_2d import score


@pytest.mark.parametrize("kind, num_modes", [("ring", 8), ("grid", 25)])
def test_real_points_are_high_quality_on_every_mode(kind, num_modes):
    points = next(iter(pipelines.mixture_2d(2500, kind, seed=3))).numpy()
    result = score(points, kind)
    # 98.9% of a 2-D normal lies within 3 std; 2,500 draws stay within a point of it.
    assert 0.975 < result["high_quality"] < 0.999
    assert result["modes"] == result["num_modes"] == num_modes
    assert 0 <= result["reverse_kl"] < 0.02


def test_one_mode_scores_log_k_and_misses_the_rest():
    centres, std = pipelines.mixture_centres("ring")
    points = centres[2] + std * np.random.default_rng(0).normal(size=(500, 2))
    points[:50] = [5.0, 5.0]  # far from every mode: not high quality
    result = score(points.astype(np.float32), "ring")
    assert result["modes"] == 1
    assert result["high_quality"] == pytest.approx(440 / 500, abs=0.02)
    assert result["reverse_kl"] == pytest.approx(math.log(8), abs=1e-6)


def test_modes_need_twenty_high_quality_samples_and_kl_uses_the_histogram():
    centres, _ = pipelines.mixture_centres("ring")
    points = np.concatenate([np.repeat(centres[:1], 60, 0), np.repeat(centres[1:2], 19, 0),
                             np.repeat(centres[2:3], 21, 0)])
    result = score(points, "ring")
    assert result["modes"] == 2  # 19 samples do not cover mode 1
    q = np.array([60, 19, 21]) / 100
    assert result["reverse_kl"] == pytest.approx(float(np.sum(q * np.log(8 * q))), rel=1e-6)


def test_no_high_quality_sample_leaves_the_kl_undefined():
    result = score(np.zeros((100, 2), np.float32), "ring")  # the ring's centre is 1 away
    assert result["high_quality"] == 0 and result["modes"] == 0
    assert math.isnan(result["reverse_kl"])


def test_per_slot_generator_draws_each_pack_slot_with_its_own_batch_statistics():
    """PacGAN's code calls G once per pack slot: latent i * m + j goes to slot j, and batch
    norm normalizes each slot's B / m samples on their own."""
    import keras

    from benchmarks.mixtures_2d import per_slot

    z_in = keras.Input((2,))
    g = keras.Model(z_in, keras.layers.BatchNormalization(center=False, scale=False)(z_in))
    z = np.random.default_rng(0).normal(size=(12, 2)).astype(np.float32)
    z[1::3] += 5.0  # slot 1 of pack 3 sits far away: a shared batch would not centre it
    out = np.asarray(per_slot(g, 3)(z, training=True))
    for j in range(3):
        slot = z[j::3]
        expected = (slot - slot.mean(0)) / np.sqrt(slot.var(0) + 1e-3)
        np.testing.assert_allclose(out[j::3], expected, rtol=1e-4, atol=1e-4)
