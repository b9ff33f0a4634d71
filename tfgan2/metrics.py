"""Sample-quality metrics for generative models, independent of any feature extractor.

Every function takes features (``(N, D)`` activations of some network) or
class probabilities (``(N, K)``) as NumPy arrays or tensors, computes in
float64 with NumPy/SciPy, and returns Python floats. Which network produces
the features (Inception-v3 pool3, a small domain classifier, ...) is the
caller's business; metric values are only comparable for the same extractor
and the same sample counts, so report the counts next to the numbers
(e.g. "FID-50k").

Memory stays moderate for tens of thousands of samples: Gaussian statistics
(full, diagonal or mean only) and the Inception score can be accumulated
batch by batch in memory independent of the sample count
(`RunningStatistics`, `StreamingFrechetDistance`, `StreamingInceptionScore`),
KID works on random subsets or TF-GAN's disjoint blocks, and
nearest-neighbour distances are computed in row blocks, so no ``N x N``
matrix is ever held for large ``N``. The sliced Wasserstein distance of
image patches lives in `tfgan2.sliced_wasserstein`.
"""
import warnings

import numpy as np
import scipy.linalg
import scipy.special

__all__ = [
    "gaussian_statistics", "RunningStatistics",
    "frechet_distance", "frechet_distance_from_statistics",
    "mean_frechet_distance", "diagonal_frechet_distance",
    "diagonal_frechet_distance_from_statistics", "StreamingFrechetDistance",
    "kernel_inception_distance", "kernel_inception_distance_blocks",
    "inception_score", "StreamingInceptionScore",
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
    """Streaming mean and covariance (or only variances, or only the mean) of feature batches.

    Batches are merged with the pairwise update of Chan, Golub and LeVeque
    (1979): each batch contributes its own mean and centred sum of outer
    products ``M2``, and two partial results combine as

        n = n_a + n_b,  delta = mu_b - mu_a,
        mu = mu_a + delta * n_b / n,
        M2 = M2_a + M2_b + outer(delta, delta) * n_a * n_b / n,

    which avoids the cancellation of the naive ``sum(x x^T) - n mu mu^T``.
    Everything is float64. ``kind`` chooses what is kept, and so the memory,
    which never depends on the number of samples:

    * ``"covariance"`` (default): mean and full ``M2``, ``O(D^2)`` (FID);
    * ``"variance"``: mean and the diagonal of ``M2``, ``O(D)`` (diagonal FID);
    * ``"mean"``: the mean only, ``O(D)`` (mean-only FID).

        stats = RunningStatistics()
        for batch in batches:
            stats.update(extract_features(batch))
        fd = frechet_distance_from_statistics(*stats.statistics(), mu_real, sigma_real)
    """

    KINDS = ("covariance", "variance", "mean")

    def __init__(self, kind="covariance"):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {', '.join(self.KINDS)}, got {kind!r}")
        self.kind = kind
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
        if self.kind == "covariance":
            m2_b = centred.T @ centred
        elif self.kind == "variance":
            m2_b = np.einsum("ij,ij->j", centred, centred)
        else:
            m2_b = None
        if self._mean is None:
            self.count, self._mean, self._m2 = n_b, mean_b, m2_b
            return self
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        if self.kind == "covariance":
            self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        elif self.kind == "variance":
            self._m2 = self._m2 + m2_b + delta * delta * (n_a * n_b / n)
        self.count = n
        return self

    @property
    def state_size(self):
        """Numbers held (the count, the mean and ``M2``): fixed by ``D`` and ``kind``."""
        held = [a for a in (self._mean, self._m2) if a is not None]
        return 1 + sum(a.size for a in held)

    @property
    def mean(self):
        """Mean ``(D,)`` of all samples seen."""
        if self._mean is None:
            raise ValueError("no samples have been added")
        return self._mean.copy()

    def _need(self, kinds, what):
        if self.kind not in kinds:
            raise ValueError(f"{what} is not kept by RunningStatistics(kind={self.kind!r}); "
                             f"use kind={kinds[0]!r}")

    @property
    def covariance(self):
        """Unbiased covariance ``(D, D)`` of all samples seen (needs >= 2)."""
        self._need(("covariance",), "the covariance")
        if self.count < 2:
            raise ValueError(f"the covariance needs at least 2 samples, got {self.count}")
        return self._m2 / (self.count - 1)

    def variance(self, ddof=1):
        """Per-feature variance ``(D,)``, ``M2_jj / (n - ddof)`` (unbiased by default)."""
        self._need(("variance", "covariance"), "the variance")
        if self.count <= ddof:
            raise ValueError(f"the variance with ddof={ddof} needs more than {ddof} samples, "
                             f"got {self.count}")
        diagonal = np.diagonal(self._m2) if self.kind == "covariance" else self._m2
        return diagonal / (self.count - ddof)

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


def mean_frechet_distance(features_a, features_b):
    """Mean-only Fréchet distance ``||mu_a - mu_b||^2`` (TF-GAN's
    ``mean_only_frechet_classifier_distance_from_activations``).

    Cheap and stable at any dimension (no covariances), blind to spread:
    a first check, not a substitute for FID.
    """
    a = _features(features_a, "features_a")
    b = _features(features_b, "features_b")
    _same_dim(a, b, "features_a", "features_b")
    diff = a.mean(axis=0) - b.mean(axis=0)
    return float(diff @ diff)


def diagonal_frechet_distance_from_statistics(mu1, var1, mu2, var2):
    """Fréchet distance between Gaussians with diagonal covariances ``diag(var)``.

        d^2 = ||mu1 - mu2||^2 + sum_j (var1_j + var2_j - 2 sqrt(var1_j var2_j))
            = ||mu1 - mu2||^2 + ||sqrt(var1) - sqrt(var2)||^2
    """
    mu1, mu2, var1, var2 = (np.asarray(v, np.float64).reshape(-1)
                            for v in (mu1, mu2, var1, var2))
    if not mu1.shape == mu2.shape == var1.shape == var2.shape:
        raise ValueError(f"means and variances must be vectors of one length, got "
                         f"{mu1.shape}, {var1.shape}, {mu2.shape}, {var2.shape}")
    if np.any(var1 < 0) or np.any(var2 < 0):
        raise ValueError("variances must be non-negative")
    diff = mu1 - mu2
    return float(diff @ diff + np.sum(var1 + var2 - 2.0 * np.sqrt(var1 * var2)))


def diagonal_frechet_distance(features_a, features_b):
    """Diagonal-only Fréchet distance of two feature sets (TF-GAN's
    ``diagonal_only_frechet_classifier_distance_from_activations``).

    Ignores correlations between features: ``O(D)`` memory and no matrix
    square root, so it suits very wide features and small sample counts.
    The variances are the population ones (divided by N, TF-GAN's
    ``tf.nn.moments``), unlike `frechet_distance`'s unbiased covariances.
    """
    a = _features(features_a, "features_a")
    b = _features(features_b, "features_b")
    _same_dim(a, b, "features_a", "features_b")
    return diagonal_frechet_distance_from_statistics(a.mean(axis=0), a.var(axis=0),
                                                     b.mean(axis=0), b.var(axis=0))


class StreamingFrechetDistance:
    """Fréchet distance of two feature streams, fed batch by batch in bounded memory.

    ``kind="full"`` is FID (`frechet_distance`, ``O(D^2)`` state),
    ``"diagonal"`` is `diagonal_frechet_distance` and ``"mean"`` is
    `mean_frechet_distance` (``O(D)``). Each side keeps a `RunningStatistics`;
    `result` equals the non-streaming function on the concatenated batches.

        fd = StreamingFrechetDistance()
        for real_batch, fake_batch in batches:
            fd.update(real=features(real_batch), fake=features(fake_batch))
        value = fd.result()
    """

    _STATISTICS = {"full": "covariance", "diagonal": "variance", "mean": "mean"}

    def __init__(self, kind="full", eps=1e-6):
        if kind not in self._STATISTICS:
            raise ValueError(f"kind must be one of {', '.join(self._STATISTICS)}, got {kind!r}")
        self.kind = kind
        self.eps = eps
        self.real = RunningStatistics(self._STATISTICS[kind])
        self.fake = RunningStatistics(self._STATISTICS[kind])

    def update(self, real=None, fake=None):
        """Adds a batch of real and/or generated features ``(B, D)``."""
        if real is not None:
            self.real.update(real)
        if fake is not None:
            self.fake.update(fake)
        return self

    @property
    def state_size(self):
        """Numbers held by both sides; does not grow with the number of samples."""
        return self.real.state_size + self.fake.state_size

    def result(self):
        """The distance between everything fed so far."""
        if self.real.count == 0 or self.fake.count == 0:
            raise ValueError("both the real and the generated side need samples")
        if self.kind == "mean":
            diff = self.real.mean - self.fake.mean
            return float(diff @ diff)
        if self.kind == "diagonal":
            return diagonal_frechet_distance_from_statistics(
                self.real.mean, self.real.variance(ddof=0),
                self.fake.mean, self.fake.variance(ddof=0))
        return frechet_distance_from_statistics(*self.real.statistics(),
                                                *self.fake.statistics(), eps=self.eps)


# --------------------------------------------------------------------------
# Kernel Inception distance
# --------------------------------------------------------------------------

def _mmd2_unbiased(x, y):
    """Unbiased MMD^2 with the cubic polynomial kernel for sets x ``(m, d)`` and y ``(n, d)``."""
    m, d = x.shape
    n = y.shape[0]
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.mean()


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


def _block_bounds(n, num_blocks):
    """Start/stop of ``num_blocks`` contiguous blocks of ``n`` rows, the larger ones last."""
    sizes = np.full(num_blocks, n // num_blocks)
    extra = n - num_blocks * (n // num_blocks)
    if extra:
        sizes[-extra:] += 1
    return np.concatenate([[0], np.cumsum(sizes)])


def kernel_inception_distance_blocks(features_a, features_b, max_block_size=1024):
    """KID with TF-GAN's block convention: ``(mean, standard error)`` over disjoint blocks.

    Both sets are cut, in order, into ``b = ceil(max(N_a, N_b) / max_block_size)``
    contiguous blocks of near-equal size (the larger blocks last); block ``i``
    of ``a`` and block ``i`` of ``b`` give one unbiased MMD^2 estimate (see
    `kernel_inception_distance`; the sets may differ in size). Returns their
    mean and ``sqrt(var / b)`` with the unbiased variance of the estimates
    (NaN for one block), as TF-GAN's
    ``kernel_classifier_distance_and_std_from_activations``. Deterministic:
    no random subsets.
    """
    a = _features(features_a, "features_a", min_rows=2)
    b = _features(features_b, "features_b", min_rows=2)
    _same_dim(a, b, "features_a", "features_b")
    if int(max_block_size) < 2:
        raise ValueError(f"max_block_size must be >= 2, got {max_block_size}")
    num_blocks = int(np.ceil(max(len(a), len(b)) / int(max_block_size)))
    if min(len(a), len(b)) < 2 * num_blocks:
        raise ValueError(f"{num_blocks} blocks need at least {2 * num_blocks} samples in each "
                         f"set, got {len(a)} and {len(b)}")
    bounds_a, bounds_b = _block_bounds(len(a), num_blocks), _block_bounds(len(b), num_blocks)
    estimates = np.array([
        _mmd2_unbiased(a[bounds_a[i]:bounds_a[i + 1]], b[bounds_b[i]:bounds_b[i + 1]])
        for i in range(num_blocks)])
    std = np.sqrt(estimates.var(ddof=1) / num_blocks) if num_blocks > 1 else float("nan")
    return float(estimates.mean()), float(std)


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


class StreamingInceptionScore:
    """Inception score of a stream of class probabilities (or logits), in ``O(K)`` memory.

    Since ``E_x KL(p(y|x) || p(y)) = E_x sum_k p log p - sum_k p(y) log p(y)``
    with ``p(y) = E_x p(y|x)``, it suffices to accumulate the number of
    samples, the sum of the probability vectors and the sum of
    ``sum_k p log p``. `result` equals `inception_score` with ``splits=1`` on
    all the samples (TF-GAN's ``classifier_score_from_logits_streaming``).
    Logits are turned into probabilities with a float64 softmax, and
    ``p log p`` is computed from the log-softmax, exact also for tiny ``p``.
    """

    def __init__(self):
        self.count = 0
        self._sum_p = None
        self._sum_plogp = 0.0

    def update(self, probs=None, logits=None):
        """Adds a batch ``(B, K)`` of probabilities or (exclusively) logits."""
        if (probs is None) == (logits is None):
            raise ValueError("give exactly one of probs and logits")
        if logits is not None:
            z = _features(logits, "logits")
            log_p = z - scipy.special.logsumexp(z, axis=1, keepdims=True)
            p = np.exp(log_p)
            plogp = (p * log_p).sum()
        else:
            p = _features(probs, "probs")
            if np.any(p < 0) or np.any(np.abs(p.sum(axis=1) - 1.0) > 1e-3):
                raise ValueError("probs must be non-negative rows summing to 1 "
                                 "(class probabilities; pass logits=... for logits)")
            p = p / p.sum(axis=1, keepdims=True)
            plogp = scipy.special.xlogy(p, p).sum()
        if self._sum_p is not None and p.shape[1] != self._sum_p.shape[0]:
            raise ValueError(f"batch has {p.shape[1]} classes, earlier batches had "
                             f"{self._sum_p.shape[0]}")
        self._sum_p = p.sum(axis=0) if self._sum_p is None else self._sum_p + p.sum(axis=0)
        self._sum_plogp += float(plogp)
        self.count += p.shape[0]
        return self

    @property
    def state_size(self):
        """Numbers held: the count, the running ``sum p log p`` and the ``K`` class sums."""
        return 2 + (0 if self._sum_p is None else self._sum_p.size)

    def result(self):
        """``exp(mean KL(p(y|x) || p(y)))`` over every sample seen."""
        if self.count == 0:
            raise ValueError("no samples have been added")
        marginal = self._sum_p / self.count
        mean_kl = self._sum_plogp / self.count - scipy.special.xlogy(marginal, marginal).sum()
        return float(np.exp(mean_kl))


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
