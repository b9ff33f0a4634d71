"""Pictures of a GAN run: sample grids, loss curves, real-vs-generated histograms.

All plotting goes through `matplotlib.figure.Figure` (no pyplot state, no
display needed). Images are expected in [-1, 1] with shape ``(N, H, W, C)``.
"""
import math
import os

import numpy as np
from matplotlib.figure import Figure

__all__ = ["to_uint8", "image_grid", "save_image_grid", "save_scored_grid",
           "save_loss_plot", "save_histogram", "grid_shape", "confusion_figure",
           "save_confusion_matrix", "save_image_table"]


def _save_titled(fig, path, title, dpi):
    """Lay out a grid figure under an optional title (kept clear of the tiles) and save it."""
    top = 1.0
    if title:
        top = 1.0 - 0.35 / fig.get_figheight()
        fig.suptitle(title, fontsize=9, y=0.998)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, top))
    _atomic_savefig(fig, path, dpi=dpi)


def to_uint8(images):
    """Map [-1, 1] floats to uint8 [0, 255] (values outside are clipped)."""
    images = np.asarray(images, np.float32)
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid_shape(num, cols=None):
    """``(rows, cols)`` of a near-square grid holding ``num`` tiles."""
    cols = cols or int(math.ceil(math.sqrt(num)))
    return int(math.ceil(num / cols)), cols


def image_grid(images, cols=None, pad=1):
    """Tile ``(N, H, W, C)`` images in [-1, 1] into one uint8 ``(rows*H', cols*W', C)`` array.

    Tiles are separated by ``pad`` pixels of black; empty cells stay black.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), got {images.shape}.")
    n, h, w, c = images.shape
    rows, cols = grid_shape(n, cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.uint8)
    tiles = to_uint8(images)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[y:y + h, x:x + w] = tiles[i]
    return grid


def _atomic_savefig(fig, path, **kwargs):
    tmp = f"{path}.tmp{os.getpid()}.png"
    fig.savefig(tmp, **kwargs)
    os.replace(tmp, path)


def save_image_grid(path, images, cols=None, scale=1):
    """Write ``images`` as one PNG grid (nearest-neighbour upscaled by ``scale``)."""
    from PIL import Image

    grid = image_grid(images, cols)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    mode = "L" if grid.shape[-1] == 1 else "RGB"
    tmp = f"{path}.tmp{os.getpid()}.png"
    Image.fromarray(grid[..., 0] if mode == "L" else grid, mode).save(tmp)
    os.replace(tmp, path)


def save_scored_grid(path, images, scores=None, title=None, cols=None):
    """A grid figure with each tile titled by D's score, as in the Keras DCGAN notes.

    ``scores[i]`` (e.g. ``sigmoid(D(x_i))``) is printed above tile ``i``.
    """
    images = np.asarray(images)
    n = len(images)
    rows, cols = grid_shape(n, cols)
    fig = Figure(figsize=(cols * 1.1, rows * 1.25 + (0.4 if title else 0)))
    tiles = to_uint8(images)
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        tile = tiles[i]
        if tile.shape[-1] == 1:
            ax.imshow(tile[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(tile, interpolation="nearest")
        ax.set_axis_off()
        if scores is not None:
            ax.set_title(f"{float(scores[i]):.2f}", fontsize=7, pad=2)
    _save_titled(fig, path, title, dpi=80)


def save_loss_plot(path, records, keys=("d_loss", "g_loss"),
                   prob_keys=("p_real", "p_fake", "real_as_real", "fake_as_fake")):
    """Loss curves against ``step`` from a list of log dicts (``metrics.jsonl`` rows).

    A second panel shows D's probabilities and confusion-matrix shares when present.
    """
    # Rows of other writers (e.g. evaluation rows) carry none of the keys.
    records = [r for r in records if "step" in r and any(k in r for k in keys)]
    fig = Figure(figsize=(8, 6))
    ax = fig.add_subplot(2, 1, 1)
    steps = [r["step"] for r in records]
    for key in keys:
        if any(key in r for r in records):
            ax.plot(steps, [r.get(key, np.nan) for r in records], label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if ax.get_legend_handles_labels()[0]:  # no row with a loss yet: no legend to draw
        ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax2 = fig.add_subplot(2, 1, 2)
    shown = False
    for key in prob_keys:
        if any(key in r for r in records):
            ax2.plot(steps, [r.get(key, np.nan) for r in records], label=key)
            shown = True
    if shown:
        ax2.set_ylim(-0.02, 1.02)
        ax2.set_xlabel("step")
        ax2.legend(loc="best", fontsize=8)
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    _atomic_savefig(fig, path, dpi=90)


def save_histogram(path, real, fake, bins=60, title=None):
    """Histogram of all values of ``real`` against ``fake`` (vector data, e.g. 1-D Gaussian)."""
    real = np.asarray(real, np.float64).ravel()
    fake = np.asarray(fake, np.float64).ravel()
    lo = min(real.min(), fake.min())
    hi = max(real.max(), fake.max())
    edges = np.linspace(lo, hi, bins + 1)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(real, edges, alpha=0.5, density=True,
            label=f"real  mean {real.mean():.3f} std {real.std():.3f}")
    ax.hist(fake, edges, alpha=0.5, density=True,
            label=f"generated  mean {fake.mean():.3f} std {fake.std():.3f}")
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _atomic_savefig(fig, path, dpi=90)


def confusion_figure(counts, title=None):
    """D's confusion matrix as a `Figure`: rows true (real, generated), columns judged (real, fake).

    ``counts`` is a dict with ``real_as_real``, ``real_as_fake``,
    ``fake_as_real`` and ``fake_as_fake`` (`tfgan2.evaluation.confusion_counts`).
    Each cell shows the count and its share of the row.
    """
    matrix = np.array([[counts["real_as_real"], counts["real_as_fake"]],
                       [counts["fake_as_real"], counts["fake_as_fake"]]], np.float64)
    totals = np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
    shares = matrix / totals
    fig = Figure(figsize=(4.2, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{int(matrix[i, j])}\n{shares[i, j]:.1%}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.6 else "black", fontsize=11)
    ax.set_xticks([0, 1], ["judged real", "judged fake"])
    ax.set_yticks([0, 1], ["real", "generated"])
    ax.set_title(title or "discriminator confusion matrix", fontsize=10)
    fig.tight_layout()
    return fig


def save_confusion_matrix(path, counts, title=None):
    """Write `confusion_figure` as a PNG."""
    _atomic_savefig(confusion_figure(counts, title), path, dpi=100)


def save_image_table(path, images, row_titles=None, col_titles=None, title=None, tile_inches=0.8):
    """A table of images ``(R, C, H, W, ch)`` in [-1, 1] with optional row and column titles.

    For interpolation strips (one row per path) and latent arithmetic (one
    row per example, columns for the operands and the result).
    """
    images = np.asarray(images)
    if images.ndim != 5:
        raise ValueError(f"images must have shape (rows, cols, H, W, C), got {images.shape}")
    rows, cols = images.shape[:2]
    left = 1.2 if row_titles else 0.0
    fig = Figure(figsize=(cols * tile_inches + left, rows * tile_inches + 0.35
                          + (0.3 if col_titles else 0) + (0.3 if title else 0)))
    tiles = to_uint8(images)
    for r in range(rows):
        for c in range(cols):
            ax = fig.add_subplot(rows, cols, r * cols + c + 1)
            tile = tiles[r, c]
            if tile.shape[-1] == 1:
                ax.imshow(tile[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            else:
                ax.imshow(tile, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if col_titles and r == 0:
                ax.set_title(str(col_titles[c]), fontsize=7, pad=2)
            if row_titles and c == 0:
                ax.set_ylabel(str(row_titles[r]), fontsize=7, rotation=0, ha="right", va="center")
    _save_titled(fig, path, title, dpi=90)
