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

