"""Sliced Wasserstein distance between image sets, on Laplacian-pyramid patches.

Karras et al. 2018 (Progressive GANs, arXiv:1710.10196, appendix D) compare
the distributions of local image patches at every level of a Laplacian
pyramid: fine levels measure texture and edges, coarse levels overall
structure. Per level:

1. build the Laplacian pyramid of each image (`laplacian_pyramid`);
2. draw ``patches_per_image`` random ``patch_size x patch_size`` patches
   (fully inside the level) from every image;
3. normalize each patch by its own mean and standard deviation (TF-GAN's
   convention) and flatten it to a descriptor of ``patch_size^2 * C`` numbers;
4. estimate the Wasserstein-1 distance of the two descriptor sets by slicing:
   project both on random unit directions, sort each projection and average
   ``|sorted_a - sorted_b|`` (the 1-D Wasserstein distance of equal-size
   samples); or, with ``use_svd=True``, project on the principal axes of the
   pooled descriptors instead of random ones (TF-GAN's SVD variant).

NumPy in, floats out, like `tfgan2.metrics`. Values depend on the number of
images (the paper uses 8192 per set, and reports them multiplied by 10^3), so
compare runs only at equal counts. A second patch draw from the real images
gives the distance of the real set to itself, the level's noise floor.
"""
from typing import NamedTuple

import numpy as np

__all__ = ["laplacian_pyramid", "sliced_wasserstein_distance", "SWDLevel"]

# Binomial 5-tap filter [1, 4, 6, 4, 1] / 16 per axis: cv2.pyrDown / pyrUp's kernel.
_TAPS = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


class SWDLevel(NamedTuple):
    """One pyramid level: ``real`` (real vs a second real draw), ``fake`` (real vs
    generated) and the level's image ``resolution`` (height)."""
    real: float
    fake: float
    resolution: int


def _blur(images, gain=1.0):
    """Separable 5x5 binomial filter over height and width, edges mirrored (no repeat)."""
    out = images
    for axis in (1, 2):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (2, 2)
        padded = np.pad(out, pad, mode="reflect")
        n = out.shape[axis]
        out = sum(w * np.take(padded, np.arange(k, k + n), axis=axis)
                  for k, w in enumerate(_TAPS))
    return out * gain


def laplacian_pyramid(images, num_levels):
    """Laplacian pyramid of ``images`` ``(N, H, W, C)``, finest level first.

    ``down(x)`` blurs and keeps every second row and column; ``up(x)``
    interleaves zeros and blurs with gain 4. Level ``l < L - 1`` is
    ``g_l - up(g_{l+1})`` with ``g_0 = images`` and ``g_{l+1} = down(g_l)``;
    the last level is the coarsest Gaussian ``g_{L-1}``. Returns float32 arrays.
    """
    x = np.asarray(images, np.float64)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {x.shape}")
    if int(num_levels) < 1:
        raise ValueError(f"num_levels must be >= 1, got {num_levels}")
    pyramid = [x]
    for _ in range(1, int(num_levels)):
        h, w = pyramid[-1].shape[1:3]
        if h < 3 or w < 3 or h % 2 or w % 2:
            raise ValueError(f"a {h}x{w} level cannot be halved again: use fewer levels "
                             f"(images of {x.shape[1]}x{x.shape[2]})")
        down = _blur(pyramid[-1])[:, ::2, ::2]
        up = np.zeros_like(pyramid[-1])
        up[:, ::2, ::2] = down
        pyramid[-1] = pyramid[-1] - _blur(up, gain=4.0)
        pyramid.append(down)
    return [level.astype(np.float32) for level in pyramid]


def _patches(level, patches_per_image, patch_size, rng):
    """``(N * patches_per_image, patch_size^2 * C)`` random patches, each normalized."""
    n, h, w, c = level.shape
    half = patch_size // 2
    if h < patch_size or w < patch_size:
        raise ValueError(f"patch_size={patch_size} does not fit a {h}x{w} pyramid level; "
                         f"use a smaller patch_size or a larger resolution_min")
    count = n * patches_per_image
    image = np.repeat(np.arange(n), patches_per_image)[:, None, None]
    cy = rng.integers(half, h - half, size=count)[:, None, None]
    cx = rng.integers(half, w - half, size=count)[:, None, None]
    offsets = np.arange(-half, half + 1)
    rows = cy + offsets[None, :, None]
    cols = cx + offsets[None, None, :]
    patches = level[image, rows, cols].reshape(count, -1).astype(np.float64)
    patches -= patches.mean(axis=1, keepdims=True)
    std = patches.std(axis=1, keepdims=True)
    return patches / np.where(std > 0, std, 1.0)


def _sliced_random(a, b, projections, dim, rng):
    values = []
    for _ in range(projections):
        directions = rng.standard_normal((a.shape[1], dim))
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        pa = np.sort(a @ directions, axis=0)
        pb = np.sort(b @ directions, axis=0)
        values.append(np.mean(np.abs(pa - pb)))
    return float(np.mean(values))


def _sliced_svd(a, b):
    # The projections U S of the pooled descriptors X = U S V^T are X V, with V
    # the eigenvectors of X^T X: a D x D problem instead of an SVD of X. Column
    # signs may differ from the SVD's, which flips both sets alike.
    pooled = np.concatenate([a, b])
    _, vectors = np.linalg.eigh(pooled.T @ pooled)
    projected = pooled @ vectors
    pa = np.sort(projected[:len(a)], axis=0)
    pb = np.sort(projected[len(a):], axis=0)
    return float(np.mean(np.abs(pa - pb)))


def sliced_wasserstein_distance(real_images, fake_images, resolution_min=16,
                                patches_per_image=64, patch_size=7, random_sampling_count=1,
                                random_projection_dim=None, use_svd=False, seed=0):
    """Sliced Wasserstein distance per Laplacian-pyramid level (see the module docstring).

    Args:
      real_images, fake_images: ``(N, H, W, C)`` arrays of one shape (any
        number of channels; the paper and TF-GAN use RGB).
      resolution_min: coarsest level's size: levels ``H, H/2, ...`` down to
        ``min(resolution_min, H)``.
      patches_per_image: patches drawn per image and level.
      patch_size: odd patch side (7 in the paper).
      random_sampling_count: independent sets of random directions averaged.
      random_projection_dim: directions per set (default ``patch_size^2 * C``,
        as many as descriptor dimensions).
      use_svd: project on the principal axes of the pooled descriptors
        instead of random directions.
      seed: seed of the patch positions and directions.

    Returns:
      A list of `SWDLevel` ``(real, fake, resolution)``, finest level first
      (``x[0]``, ``x[1]`` as in TF-GAN's tuples).

    Raises:
      ValueError: mismatched shapes, or patches that do not fit a level.
    """
    real = np.asarray(real_images, np.float32)
    fake = np.asarray(fake_images, np.float32)
    if real.ndim != 4 or real.shape != fake.shape:
        raise ValueError(f"real and fake images must be (N, H, W, C) of one shape, got "
                         f"{real.shape} and {fake.shape}")
    if patch_size < 1 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be a positive odd number, got {patch_size}")
    height = real.shape[1]
    lowest = min(int(resolution_min), height)
    num_levels = max(1, int(np.log2(height)) - int(np.log2(max(lowest, 1))) + 1)
    dim = int(random_projection_dim or patch_size * patch_size * real.shape[3])
    rng = np.random.default_rng(seed)
    levels = []
    real_pyramid = laplacian_pyramid(real, num_levels)
    fake_pyramid = laplacian_pyramid(fake, num_levels)
    for real_level, fake_level in zip(real_pyramid, fake_pyramid):
        a = _patches(real_level, patches_per_image, patch_size, rng)
        a_again = _patches(real_level, patches_per_image, patch_size, rng)
        b = _patches(fake_level, patches_per_image, patch_size, rng)
        if use_svd:
            pair = (_sliced_svd(a, a_again), _sliced_svd(a, b))
        else:
            pair = (_sliced_random(a, a_again, random_sampling_count, dim, rng),
                    _sliced_random(a, b, random_sampling_count, dim, rng))
        levels.append(SWDLevel(pair[0], pair[1], int(real_level.shape[1])))
    return levels
