"""Sample-quality metrics for generative models, independent of any feature extractor.

Every function takes features (``(N, D)`` activations of some network) or
class probabilities (``(N, K)``) as NumPy arrays or tensors, computes in
float64 with NumPy/SciPy, and returns Python floats. Which network produces
the features (Inception-v3 pool3, a small domain classifier, ...) is the
caller's business; metric values are only comparable for the same extractor
and the same sample counts, so report the counts next to the numbers
(e.g. "FID-50k").

Memory stays moderate for tens of thousands of samples: Gaussian statistics
can be accumulated batch by batch (`RunningStatistics`), KID works on random
subsets, and nearest-neighbour distances are computed in row blocks, so no
``N x N`` matrix is ever held for large ``N``.
"""
import warnings

import numpy as np
import scipy.linalg
import scipy.special

__all__ = [
    "gaussian_statistics", "RunningStatistics",
    "frechet_distance", "frechet_distance_from_statistics",
    "kernel_inception_distance", "inception_score",
    "kth_nearest_distances", "precision_recall",
]

# Upper bound on the entries of one block of pairwise distances (float64,
# 64 MiB); a block covers as many query rows as fit under it.
_BLOCK_ENTRIES = 1 << 23


def _features(x, name, min_rows=1):
    """Validates a 2-D finite array of features and returns it as float64."""
    if hasattr(x, "numpy"):
        x = x.numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (num_samples, num_features), "
                         f"got shape {x.shape}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {x.shape[0]}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} has no feature columns (shape {x.shape})")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _same_dim(a, b, name_a, name_b):
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name_a} and {name_b} have different feature dimensions: "
                         f"{a.shape[1]} vs {b.shape[1]}")


# --------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------

def gaussian_statistics(features):
    """Mean and covariance of ``features`` ``(N, D)``, N >= 2.

    Returns ``(mu, sigma)``: float64 ``(D,)`` and ``(D, D)``, the covariance
    unbiased (divided by ``N - 1``), as in the reference FID code.
    """
    x = _features(features, "features", min_rows=2)
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


class RunningStatistics:
    """Streaming mean and covariance of feature batches, in float64.

    Batches are merged with the pairwise update of Chan, Golub and LeVeque
    (1979): each batch contributes its own mean and centred sum of outer
    products ``M2``, and two partial results combine as

        n = n_a + n_b,  delta = mu_b - mu_a,
        mu = mu_a + delta * n_b / n,
        M2 = M2_a + M2_b + outer(delta, delta) * n_a * n_b / n,

    which avoids the cancellation of the naive ``sum(x x^T) - n mu mu^T``.
    Memory is ``O(D^2)`` however many samples pass through.

        stats = RunningStatistics()
        for batch in batches:
            stats.update(extract_features(batch))
        fd = frechet_distance_from_statistics(*stats.statistics(), mu_real, sigma_real)
    """

    def __init__(self):
        self.count = 0
        self._mean = None
        self._m2 = None

    def update(self, batch):
        """Adds a batch of features ``(B, D)``; ``D`` must match earlier batches."""
        x = _features(batch, "batch")
        if self._mean is not None and x.shape[1] != self._mean.shape[0]:
            raise ValueError(f"batch has {x.shape[1]} features, earlier batches had "
                             f"{self._mean.shape[0]}")
        n_b = x.shape[0]
        mean_b = x.mean(axis=0)
        centred = x - mean_b
        m2_b = centred.T @ centred
        if self._mean is None:
            self.count, self._mean, self._m2 = n_b, mean_b, m2_b
            return self
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n
        return self

    @property
    def mean(self):
        """Mean ``(D,)`` of all samples seen."""
        if self._mean is None:
            raise ValueError("no samples have been added")
        return self._mean.copy()

    @property
    def covariance(self):
        """Unbiased covariance ``(D, D)`` of all samples seen (needs >= 2)."""
        if self.count < 2:
            raise ValueError(f"the covariance needs at least 2 samples, got {self.count}")
        return self._m2 / (self.count - 1)

    def statistics(self):
        """``(mean, covariance)``, ready for `frechet_distance_from_statistics`."""
        return self.mean, self.covariance


def _sqrtm(matrix):
    """``scipy.linalg.sqrtm`` plus whether SciPy flagged the matrix as singular."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(matrix)
    singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
    return root, singular


def frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """Fréchet distance between two Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

        d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2})

    (Dowson and Landau 1982; used as FID by Heusel et al. 2017,
    arXiv:1706.08500). The matrix square root comes from
    `scipy.linalg.sqrtm`. When SciPy reports the product as singular (e.g.
    fewer samples than dimensions, or repeated samples) or the root is not
    finite, ``eps * I`` is added to both covariances and the root is
    recomputed. Round-off leaves a tiny imaginary part, which is dropped; an
    imaginary part on the diagonal larger than 1e-3 (relative to the trace)
    means the covariances are not positive semi-definite and raises
    ``ValueError``.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    if mu1.ndim != 1 or mu2.shape != (d,):
        raise ValueError(f"means must be vectors of one length, got {mu1.shape} and {mu2.shape}")
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"covariances must be ({d}, {d}), got {sigma1.shape} and {sigma2.shape}")
    for name, value in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains NaN or infinite values")

    diff = mu1 - mu2
    covmean, singular = _sqrtm(sigma1 @ sigma2)
    if singular or not np.all(np.isfinite(covmean)):
        offset = np.eye(d) * eps
        covmean, _ = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.all(np.isfinite(covmean)):
            raise ValueError("the matrix square root of sigma1 @ sigma2 is not finite "
                             "even after regularisation")
    if np.iscomplexobj(covmean):
        scale = max(1.0, abs(np.trace(sigma1)) + abs(np.trace(sigma2)))
        largest = np.max(np.abs(np.diagonal(covmean).imag))
        if largest > 1e-3 * scale:
            raise ValueError(f"the matrix square root has a large imaginary component "
                             f"({largest:.3g}); are the covariances positive semi-definite?")
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(value)


def frechet_distance(features_a, features_b, eps=1e-6):
    """Fréchet distance between Gaussians fitted to two feature sets ``(N_a, D)``, ``(N_b, D)``.

    See `frechet_distance_from_statistics` for the formula. With Inception-v3
    pool3 features this is FID (Heusel et al. 2017); the estimate is biased
    upwards for small N, so compare values only at equal sample counts.
    """
    a = _features(features_a, "features_a", min_rows=2)
    b = _features(features_b, "features_b", min_rows=2)
    _same_dim(a, b, "features_a", "features_b")
    return frechet_distance_from_statistics(*gaussian_statistics(a), *gaussian_statistics(b),
                                            eps=eps)


# --------------------------------------------------------------------------
# Kernel Inception distance
# --------------------------------------------------------------------------

def _mmd2_unbiased(x, y):
    """Unbiased MMD^2 with the cubic polynomial kernel for equal-size sets x, y ``(m, d)``."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.mean()


def kernel_inception_distance(features_a, features_b, num_subsets=100, subset_size=1000,
                              seed=0, return_std=False):
    """Kernel Inception distance (Binkowski et al. 2018, arXiv:1801.01401).

    The unbiased estimator of the squared maximum mean discrepancy with the
    polynomial kernel ``k(x, y) = (x . y / D + 1)^3``: for subsets
    ``X, Y`` of ``m`` samples each,

        MMD^2 = sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] / (m (m - 1))
                - 2 sum_{i, j} k(x_i, y_j) / m^2,

    averaged over ``num_subsets`` random subsets drawn without replacement
    (``m = min(subset_size, N_a, N_b)``). Unlike FID the estimate is unbiased:
    its expectation is 0 for two samples of one distribution, so it can be
    slightly negative. Returns the mean, or ``(mean, std)`` over subsets with
    ``return_std=True``.
    """
    a = _features(features_a, "features_a", min_rows=2)
    b = _features(features_b, "features_b", min_rows=2)
    _same_dim(a, b, "features_a", "features_b")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be >= 2, got {subset_size}")
    m = min(subset_size, a.shape[0], b.shape[0])
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        values[i] = _mmd2_unbiased(x, y)
    mean = float(values.mean())
    return (mean, float(values.std())) if return_std else mean


# --------------------------------------------------------------------------
# Inception score
# --------------------------------------------------------------------------

def inception_score(probs, splits=10, return_std=False):
    """Inception score (Salimans et al. 2016, arXiv:1606.03498) from class probabilities.

        IS = exp( E_x KL(p(y|x) || p(y)) ),   p(y) = E_x p(y|x),

    computed on each of ``splits`` contiguous, near-equal parts of ``probs``
    ``(N, K)`` (each with its own marginal ``p(y)``) and averaged. It lies in
    ``[1, K]``: 1 when every prediction equals the marginal (e.g. uniform),
    ``K`` for confident predictions spread evenly over the K classes.
    ``0 * log 0`` is taken as 0. Rows must be non-negative and sum to 1
    (within 1e-3; they are renormalised). Returns the mean, or ``(mean, std)``
    over splits with ``return_std=True``.
    """
    p = _features(probs, "probs")
    if np.any(p < 0):
        raise ValueError("probs must be non-negative")
    totals = p.sum(axis=1, keepdims=True)
    if np.any(np.abs(totals - 1.0) > 1e-3):
        raise ValueError("every row of probs must sum to 1 (class probabilities, not logits)")
    p = p / totals
    if not 1 <= splits <= p.shape[0]:
        raise ValueError(f"splits must be between 1 and the number of samples "
                         f"({p.shape[0]}), got {splits}")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # xlogy(p, p) - xlogy(p, marginal) keeps 0 * log 0 = 0; marginal > 0 wherever p > 0.
        kl = (scipy.special.xlogy(part, part) - scipy.special.xlogy(part, marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    scores = np.asarray(scores)
    mean = float(scores.mean())
    return (mean, float(scores.std())) if return_std else mean


# --------------------------------------------------------------------------
# Nearest neighbours, precision and recall
# --------------------------------------------------------------------------

def _block_rows(num_columns):
    return max(1, _BLOCK_ENTRIES // max(1, num_columns))


def _squared_distances(queries, references, references_sq):
    """Squared Euclidean distances ``(q, r)``, clipped at 0 against round-off."""
    d2 = (queries * queries).sum(axis=1)[:, None] + references_sq[None, :] \
        - 2.0 * queries @ references.T
    return np.maximum(d2, 0.0)


def kth_nearest_distances(queries, references, k=1, exclude_self=False):
    """Euclidean distance from each query to its ``k``-th nearest reference, shape ``(Q,)``.

    With ``exclude_self=True`` the queries must be the references themselves
    and row ``i`` ignores reference ``i`` (the "k-th nearest other point";
    exact duplicates elsewhere in the set still count, at distance 0).
    Distances are computed in blocks of query rows.
    """
    q = _features(queries, "queries")
    r = _features(references, "references")
    _same_dim(q, r, "queries", "references")
    if exclude_self and q.shape[0] != r.shape[0]:
        raise ValueError("exclude_self needs queries and references to be the same set")
    available = r.shape[0] - (1 if exclude_self else 0)
    if not 1 <= k <= available:
        raise ValueError(f"k must be between 1 and {available} for {r.shape[0]} references"
                         f"{' (excluding self)' if exclude_self else ''}, got {k}")
    r_sq = (r * r).sum(axis=1)
    out = np.empty(q.shape[0])
    step = _block_rows(r.shape[0])
    for start in range(0, q.shape[0], step):
        stop = min(start + step, q.shape[0])
        d2 = _squared_distances(q[start:stop], r, r_sq)
        if exclude_self:
            rows = np.arange(stop - start)
            d2[rows, start + rows] = np.inf
        out[start:stop] = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return np.sqrt(out)


def _share_covered(queries, centres, radii):
    """Share of queries within ``radii[j]`` of at least one ``centres[j]``."""
    c_sq = (centres * centres).sum(axis=1)
    r2 = radii ** 2
    covered = 0
    step = _block_rows(centres.shape[0])
    for start in range(0, queries.shape[0], step):
        d2 = _squared_distances(queries[start:start + step], centres, c_sq)
        covered += int(np.count_nonzero((d2 <= r2[None, :]).any(axis=1)))
    return covered / queries.shape[0]


def precision_recall(features_real, features_fake, k=3):
    """Improved precision and recall (Kynkaanniemi et al. 2019, arXiv:1904.06991).

    Each set's manifold is approximated by the union of balls around its
    points, the radius of point ``x`` being the distance to its ``k``-th
    nearest neighbour in the same set (itself excluded):

        precision = share of fake samples inside the real manifold,
        recall    = share of real samples inside the fake manifold.

    Precision measures fidelity (are samples realistic?), recall measures
    coverage (is every mode produced?). Returns ``(precision, recall)``.
    Needs ``k < N`` for both sets; the paper uses ``k = 3`` and equal sizes.
    """
    real = _features(features_real, "features_real", min_rows=2)
    fake = _features(features_fake, "features_fake", min_rows=2)
    _same_dim(real, fake, "features_real", "features_fake")
    for name, x in (("features_real", real), ("features_fake", fake)):
        if not 1 <= k < x.shape[0]:
            raise ValueError(f"k must satisfy 1 <= k < number of samples; {name} has "
                             f"{x.shape[0]} samples and k={k}")
    real_radii = kth_nearest_distances(real, real, k, exclude_self=True)
    fake_radii = kth_nearest_distances(fake, fake, k, exclude_self=True)
    precision = _share_covered(fake, real, real_radii)
    recall = _share_covered(real, fake, fake_radii)
    return float(precision), float(recall)
