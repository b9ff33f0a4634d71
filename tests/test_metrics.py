"""Tests for tfgan2.metrics: each metric against an independent formula and its expected behaviour."""
import warnings

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from tfgan2 import metrics


def _random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def _reference_frechet(mu1, s1, mu2, s2):
    """Direct formula, square root of the product via scipy.linalg.sqrtm."""
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2.0 * root)


def _reference_frechet_symmetric(mu1, s1, mu2, s2):
    """Same quantity by a different route: Tr((S1 S2)^1/2) = sum sqrt(eig(S1^1/2 S2 S1^1/2))."""
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(w.clip(0))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(inner.clip(0)).sum()


# ---------------------------------------------------------------- Fréchet

def test_frechet_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(400, 12))
    assert abs(metrics.frechet_distance(x, x)) < 1e-6


def test_frechet_from_statistics_matches_references():
    rng = np.random.default_rng(1)
    d = 20
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_covariance(rng, d), _random_covariance(rng, d)
    got = metrics.frechet_distance_from_statistics(mu1, s1, mu2, s2)
    assert isinstance(got, float)
    assert got == pytest.approx(_reference_frechet(mu1, s1, mu2, s2), rel=1e-3)
    assert got == pytest.approx(_reference_frechet_symmetric(mu1, s1, mu2, s2), rel=1e-3)


def test_frechet_closed_form_for_diagonal_covariances():
    # For commuting (diagonal) covariances the trace term is sum (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = metrics.frechet_distance_from_statistics(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_of_features_matches_formula_on_sample_statistics():
    rng = np.random.default_rng(2)
    d = 16
    chol1 = np.linalg.cholesky(_random_covariance(rng, d))
    chol2 = np.linalg.cholesky(_random_covariance(rng, d))
    a = rng.normal(size=(3000, d)) @ chol1.T + 0.5
    b = rng.normal(size=(2000, d)) @ chol2.T
    expected = _reference_frechet(a.mean(0), np.cov(a, rowvar=False),
                                  b.mean(0), np.cov(b, rowvar=False))
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-3)
    # float32 input is promoted to float64 before anything is computed
    assert metrics.frechet_distance(a.astype(np.float32), b) == pytest.approx(expected, rel=1e-3)


def test_frechet_survives_singular_covariances():
    # More dimensions than samples: both covariances are rank deficient.
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(10, 30)), rng.normal(size=(10, 30)) + 1.0
    value = metrics.frechet_distance(a, b)
    assert np.isfinite(value) and value > 20.0  # the mean shift alone contributes 30


def test_frechet_with_rank_deficient_covariance_matches_reference_without_warnings():
    rng = np.random.default_rng(11)
    d = 10
    low_rank = rng.normal(size=(d, 3))
    s1, s2 = low_rank @ low_rank.T, _random_covariance(rng, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = metrics.frechet_distance_from_statistics(mu1, s1, mu2, s2)
    assert got == pytest.approx(_reference_frechet_symmetric(mu1, s1, mu2, s2), rel=1e-3)


def test_running_statistics_equal_batch_statistics():
    rng = np.random.default_rng(4)
    # A large offset exposes the cancellation of a naive sum-of-squares update.
    x = rng.normal(size=(1001, 6)) * [1, 2, 3, 4, 5, 6] + 1e6
    stats = metrics.RunningStatistics()
    for start, stop in [(0, 1), (1, 300), (300, 301), (301, 1001)]:
        stats.update(x[start:stop])
    assert stats.count == 1001
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(x, rowvar=False), rtol=1e-6, atol=1e-6)
    mu, sigma = metrics.gaussian_statistics(x)
    np.testing.assert_allclose(stats.covariance, sigma, rtol=1e-6, atol=1e-6)
    fd_stream = metrics.frechet_distance_from_statistics(*stats.statistics(), mu, sigma)
    assert abs(fd_stream) < 1e-4


def test_running_statistics_errors():
    stats = metrics.RunningStatistics()
    with pytest.raises(ValueError):
        stats.mean
    stats.update(np.ones((1, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        stats.covariance
    with pytest.raises(ValueError, match="features"):
        stats.update(np.ones((4, 2)))


# ---------------------------------------------------------------- KID

def _mmd2_by_loops(x, y):
    k = lambda u, v: (u @ v / x.shape[1] + 1.0) ** 3
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / m ** 2


def test_kid_matches_the_unbiased_estimator_written_out():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(25, 3)), rng.normal(size=(25, 3)) + 0.3
    # subset_size >= N: every subset is the whole set, so one subset gives the full estimate
    got = metrics.kernel_inception_distance(x, y, num_subsets=1, subset_size=100)
    assert got == pytest.approx(_mmd2_by_loops(x, y), rel=1e-9)


def test_kid_is_unbiased_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(2000, 32)), rng.normal(size=(2000, 32))
    same, same_std = metrics.kernel_inception_distance(a, b, num_subsets=20, subset_size=500,
                                                       return_std=True)
    shifted = metrics.kernel_inception_distance(a, b + 0.3, num_subsets=20, subset_size=500)
    assert shifted > 0.05
    assert abs(same) < 0.02 * shifted
    assert same_std > 0
    # The biased V-statistic (diagonal terms kept) would sit clearly above zero.
    x, y = a[:500], b[:500]
    kern = lambda u, v: (u @ v.T / 32 + 1.0) ** 3
    biased = kern(x, x).mean() + kern(y, y).mean() - 2 * kern(x, y).mean()
    assert biased > 10 * abs(same)


def test_kid_is_reproducible_with_a_seed():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(200, 4))
    one = metrics.kernel_inception_distance(a, b, num_subsets=5, subset_size=100, seed=3)
    two = metrics.kernel_inception_distance(a, b, num_subsets=5, subset_size=100, seed=3)
    other = metrics.kernel_inception_distance(a, b, num_subsets=5, subset_size=100, seed=4)
    assert one == two and one != other


# ---------------------------------------------------------------- Inception score

def test_inception_score_bounds():
    k = 10
    uniform = np.full((500, k), 1.0 / k)
    assert metrics.inception_score(uniform, splits=5) == pytest.approx(1.0, abs=1e-9)
    one_hot = np.eye(k)[np.arange(1000) % k]
    mean, std = metrics.inception_score(one_hot, splits=10, return_std=True)
    assert mean == pytest.approx(k, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)
    # confident but all one class: no diversity, score 1
    collapsed = np.eye(k)[np.zeros(200, dtype=int)]
    assert metrics.inception_score(collapsed, splits=1) == pytest.approx(1.0, abs=1e-9)


def test_inception_score_hand_computed():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    marginal = np.array([0.75, 0.25])
    kl1 = np.log(1.0 / 0.75)
    kl2 = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)
    assert metrics.inception_score(p, splits=1) == pytest.approx(np.exp((kl1 + kl2) / 2), rel=1e-12)
    assert marginal.sum() == 1.0


# ---------------------------------------------------------------- nearest neighbours, P&R

def test_kth_nearest_distances_match_brute_force_in_blocks(monkeypatch):
    rng = np.random.default_rng(8)
    q, r = rng.normal(size=(37, 5)), rng.normal(size=(53, 5))
    full = cdist(q, r)
    np.testing.assert_allclose(metrics.kth_nearest_distances(q, r, k=2),
                               np.sort(full, axis=1)[:, 1], rtol=1e-9, atol=1e-9)
    self_d = cdist(r, r)
    np.fill_diagonal(self_d, np.inf)
    expected = np.sort(self_d, axis=1)[:, 2]
    monkeypatch.setattr(metrics, "_BLOCK_ENTRIES", 100)  # two rows per block
    np.testing.assert_allclose(metrics.kth_nearest_distances(r, r, k=3, exclude_self=True),
                               expected, rtol=1e-9, atol=1e-9)


def test_precision_recall_blocked_equals_unblocked(monkeypatch):
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(120, 3)), rng.normal(size=(90, 3)) * 0.8 + 0.4
    whole = metrics.precision_recall(real, fake, k=3)
    monkeypatch.setattr(metrics, "_BLOCK_ENTRIES", 300)
    assert metrics.precision_recall(real, fake, k=3) == whole


def test_precision_recall_react_to_shift_and_narrowing():
    rng = np.random.default_rng(10)
    d, n = 8, 1000
    real = rng.normal(size=(n, d))
    same_p, same_r = metrics.precision_recall(real, rng.normal(size=(n, d)), k=3)
    shift_p, shift_r = metrics.precision_recall(real, rng.normal(size=(n, d)) + 2.0, k=3)
    narrow_p, narrow_r = metrics.precision_recall(real, 0.3 * rng.normal(size=(n, d)), k=3)
    assert same_p > 0.6 and same_r > 0.6
    assert shift_p < 0.25 * same_p and shift_r < 0.25 * same_r
    assert narrow_p > 0.95
    assert narrow_r < 0.5 * same_r


# ---------------------------------------------------------------- input validation

@pytest.mark.parametrize("call", [
    lambda: metrics.frechet_distance(np.ones(5), np.ones((5, 1))),            # 1-D
    lambda: metrics.frechet_distance(np.ones((4, 2, 2)), np.ones((4, 4))),    # 3-D
    lambda: metrics.frechet_distance(np.ones((5, 3)), np.ones((5, 4))),       # dims differ
    lambda: metrics.frechet_distance(np.ones((1, 3)), np.ones((5, 3))),       # one sample
    lambda: metrics.frechet_distance(np.full((5, 3), np.nan), np.ones((5, 3))),
    lambda: metrics.frechet_distance_from_statistics(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)),
    lambda: metrics.kernel_inception_distance(np.ones((5, 3)), np.ones((5, 4))),
    lambda: metrics.kernel_inception_distance(np.ones((5, 3)), np.ones((5, 3)), subset_size=1),
    lambda: metrics.inception_score(np.array([[0.5, 0.6]])),                  # rows must sum to 1
    lambda: metrics.inception_score(np.array([[1.5, -0.5]])),                 # negative
    lambda: metrics.inception_score(np.full((4, 2), 0.5), splits=5),          # splits > N
    lambda: metrics.precision_recall(np.ones((3, 2)), np.ones((10, 2)), k=3),  # k >= N_real
    lambda: metrics.precision_recall(np.ones((10, 2)), np.ones((10, 3)), k=3),
    lambda: metrics.kth_nearest_distances(np.ones((3, 2)), np.ones((4, 2)), exclude_self=True),
])
def test_bad_inputs_raise(call):
    with pytest.raises(ValueError):
        call()
