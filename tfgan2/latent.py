"""Latent-space walks and arithmetic: linear and spherical interpolation, group means.

Everything here is NumPy in float64 on latent vectors ``z`` of shape ``(D,)``
or ``(N, D)``; feeding the results to a generator is the caller's business
(``gan.generate(len(z), latents=z)``).
"""
import numpy as np

__all__ = ["lerp", "slerp", "interpolate", "INTERPOLATIONS", "group_means",
           "latent_arithmetic", "attribute_groups", "attribute_vector"]

INTERPOLATIONS = ("linear", "spherical")

# Below this angle (radians) the two endpoints are treated as parallel and
# slerp falls back to the linear formula, whose limit it is.
_PARALLEL = 1e-6


def _pair(z0, z1):
    z0 = np.asarray(z0, np.float64)
    z1 = np.asarray(z1, np.float64)
    if z0.shape != z1.shape or z0.ndim != 1:
        raise ValueError(f"z0 and z1 must be vectors of one length, got {z0.shape} and {z1.shape}")
    return z0, z1


def _fractions(t):
    t = np.atleast_1d(np.asarray(t, np.float64))
    if t.ndim != 1:
        raise ValueError(f"t must be a scalar or a 1-D array, got shape {t.shape}")
    return t


def lerp(z0, z1, t):
    """Linear interpolation ``(1 - t) z0 + t z1`` for each fraction in ``t``; shape ``(len(t), D)``."""
    z0, z1 = _pair(z0, z1)
    t = _fractions(t)[:, None]
    return (1.0 - t) * z0 + t * z1


def slerp(z0, z1, t):
    """Spherical linear interpolation (Shoemake 1985; for GAN latents White 2016, arXiv:1609.04468).

        omega = arccos( z0 . z1 / (|z0| |z1|) )
        slerp(z0, z1; t) = sin((1 - t) omega) / sin(omega) z0 + sin(t omega) / sin(omega) z1

    For each fraction in ``t`` (a scalar or 1-D array, usually in [0, 1]);
    returns ``(len(t), D)``. The path follows the great circle between the
    endpoints: ``t = 0`` and ``t = 1`` give ``z0`` and ``z1`` exactly, the angle
    to ``z0`` grows linearly as ``t omega``, and with unit-norm endpoints every
    point has unit norm (with unequal norms the norm is not interpolated
    linearly). For a Gaussian prior in high dimension samples concentrate
    near a sphere, so slerp keeps intermediate points typical where the
    linear midpoint shrinks towards the origin. Parallel endpoints
    (``omega < 1e-6``) use `lerp`; antiparallel ones (``omega`` near pi) have no
    unique great circle and raise ``ValueError``.
    """
    z0, z1 = _pair(z0, z1)
    t = _fractions(t)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 == 0 or n1 == 0:
        return lerp(z0, z1, t)
    cos = np.clip(np.dot(z0, z1) / (n0 * n1), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < _PARALLEL:
        return lerp(z0, z1, t)
    if np.pi - omega < _PARALLEL:
        raise ValueError("slerp between antiparallel vectors is undefined (any great circle "
                         "joins them).")
    sin = np.sin(omega)
    w0 = np.sin((1.0 - t) * omega) / sin
    w1 = np.sin(t * omega) / sin
    out = w0[:, None] * z0 + w1[:, None] * z1
    # Make the endpoints bit-exact (sin(pi * 1) etc. are only close to 0).
    out[t == 0.0] = z0
    out[t == 1.0] = z1
    return out


def interpolate(z0, z1, steps, method="spherical"):
    """``steps`` evenly spaced points from ``z0`` to ``z1`` inclusive, ``(steps, D)``.

    ``method`` is ``"linear"`` (`lerp`) or ``"spherical"`` (`slerp`).
    """
    if method not in INTERPOLATIONS:
        raise ValueError(f"method must be one of {', '.join(INTERPOLATIONS)}, got {method!r}")
    if int(steps) != steps or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    t = np.linspace(0.0, 1.0, int(steps))
    return (slerp if method == "spherical" else lerp)(z0, z1, t)


def group_means(latents, groups, num_groups=None):
    """Mean latent vector of each group: ``means[g] = mean{ z_i : groups[i] == g }``.

    Args:
      latents: ``(N, D)``.
      groups: integer group of each latent, ``(N,)`` (e.g. a classifier's
        predicted class of ``G(z_i)``, or an attribute 0/1).
      num_groups: rows of the result (default ``max(groups) + 1``).

    Returns:
      ``(means, counts)``: ``(num_groups, D)`` float64, with NaN rows for
      empty groups, and the number of members of each group ``(num_groups,)``.
    """
    z = np.asarray(latents, np.float64)
    g = np.asarray(groups).reshape(-1)
    if z.ndim != 2 or len(g) != len(z):
        raise ValueError(f"latents must be (N, D) with one group per row, got {z.shape} "
                         f"and {g.shape}")
    if len(g) and (g.min() < 0 or np.any(g != np.round(g))):
        raise ValueError("groups must be non-negative integers")
    g = g.astype(np.int64)
    num_groups = int(g.max()) + 1 if num_groups is None else int(num_groups)
    counts = np.bincount(g, minlength=num_groups)[:num_groups]
    sums = np.zeros((num_groups, z.shape[1]))
    np.add.at(sums, g, z)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    return means, counts


def latent_arithmetic(latents, groups, with_group, without_group, base):
    """``mean(z | with_group) - mean(z | without_group) + base`` for each base latent.

    The attribute vector of DCGAN's arithmetic (Radford et al. 2016,
    arXiv:1511.06434): the difference of two group means moves a latent from
    the second group towards the first. ``base`` is ``(D,)`` or ``(M, D)``;
    the result has the same shape.

    Raises:
      ValueError: a group has no member.
    """
    means, counts = group_means(latents, groups,
                                max(int(np.max(groups)) + 1, with_group + 1, without_group + 1))
    for name, group in (("with_group", with_group), ("without_group", without_group)):
        if counts[group] == 0:
            raise ValueError(f"{name}={group} has no member among the {len(counts)} groups "
                             f"(counts {counts.tolist()})")
    base = np.asarray(base, np.float64)
    if base.shape[-1] != means.shape[1]:
        raise ValueError(f"base has {base.shape[-1]} dimensions, latents {means.shape[1]}")
    return base + (means[with_group] - means[without_group])


def attribute_groups(probabilities, threshold=0.5):
    """Group of each sample by one attribute: ``1`` ("with") when ``p_i > threshold``, else ``0``.

    ``probabilities`` ``(N,)`` are a classifier's probabilities that ``G(z_i)``
    shows the attribute; the result is an int64 ``(N,)`` array for
    `group_means` / `latent_arithmetic` (``with_group=1, without_group=0``).
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 1:
        raise ValueError(f"probabilities must be one value per sample (N,), got {p.shape}")
    return (p > threshold).astype(np.int64)


def attribute_vector(latents, probabilities, threshold=0.5):
    """``v = mean{z_i : p_i > threshold} - mean{z_i : p_i <= threshold}`` and the group sizes.

    Adding ``v`` to the latent of a sample without the attribute moves it
    towards the samples with it (DCGAN's "man with glasses - man without
    glasses + woman"). Returns ``(v, (n_with, n_without))`` with ``v`` of
    shape ``(D,)``.

    Raises:
      ValueError: one of the two groups is empty (its mean is undefined).
    """
    groups = attribute_groups(probabilities, threshold)
    means, counts = group_means(latents, groups, 2)
    n_with, n_without = int(counts[1]), int(counts[0])
    if n_with == 0 or n_without == 0:
        raise ValueError(f"of {len(groups)} samples {n_with} have p > {threshold} and "
                         f"{n_without} do not: both groups need a member")
    return means[1] - means[0], (n_with, n_without)
