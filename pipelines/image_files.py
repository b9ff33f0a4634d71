"""Finding image files on disk and screening out the ones that cannot be decoded.

The screen reads only the first and last bytes of each file: the format's
signature at the start and its end marker at the end (JPEG ``FF D9``, PNG
``IEND``). That catches non-image files and truncated downloads, the usual
failures in a folder of 200,000 photos, for the cost of two small reads per
file, done by 8 threads when a pipeline is built. It does not decode anything, so a
file damaged in the middle can still pass; the decoding pipelines leave those
out at decode time and record them (`pipelines.skipped.SkippedFiles`).
"""
import glob
import logging
import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["list_files", "screen_images", "find_images", "has_glob_chars", "warn_once",
           "check_image_sizes"]

_log = logging.getLogger(__name__)
_warned = set()


def warn_once(message, *args):
    """Log a warning once per process: a launcher builds the same pipeline more than once
    (a check of the data before training, then the training input), the reader needs it once."""
    key = (message, args)
    if key not in _warned:
        _warned.add(key)
        _log.warning(message, *args)

# Signature -> (format name, end marker or None when the format has no cheap end check).
_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg", b"\xff\xd9"),
    (b"\x89PNG\r\n\x1a\n", "png", b"IEND"),
    (b"GIF87a", "gif", None),
    (b"GIF89a", "gif", None),
    (b"BM", "bmp", None),
)
_TAIL_BYTES = 256  # room for padding or a short trailer after the end marker


def has_glob_chars(path):
    return any(c in str(path) for c in "*?[")


def list_files(path_or_glob, *, recursive=True):
    """Sorted regular files under a folder (hidden files skipped) or matching a glob.

    Raises `FileNotFoundError` naming ``path_or_glob`` when it does not exist
    or matches no file.
    """
    path = os.path.expanduser(str(path_or_glob))
    if has_glob_chars(path):
        files = [p for p in glob.glob(path, recursive=True) if os.path.isfile(p)]
    elif os.path.isdir(path):
        files = []
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files.extend(os.path.join(root, n) for n in names if not n.startswith("."))
            if not recursive:
                break
    elif os.path.isfile(path):
        files = [path]
    else:
        raise FileNotFoundError(f"No such file, folder or matching pattern: {path_or_glob!r}.")
    if not files:
        raise FileNotFoundError(f"No files found in {path_or_glob!r}; expected JPEG or PNG images.")
    return sorted(files)


def _check_one(path):
    """``(format, None)`` if ``path`` looks like a complete image, else ``(None, reason)``."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except OSError as e:
        return None, f"unreadable ({e.strerror})"
    for signature, name, end_marker in _SIGNATURES:
        if head.startswith(signature):
            if end_marker is not None and end_marker not in tail:
                return None, f"truncated {name}"
            return name, None
    return None, "not an image"


def screen_images(paths, *, what=None, threads=8, formats=None):
    """Split ``paths`` into ``(good, bad)`` where ``bad`` is a list of ``(path, reason)``.

    Logs ONE warning with the number of skipped files and the first few names.
    ``what`` names the source in that warning. ``formats``, if a set, receives
    the formats found among the good files (``"jpeg"``, ``"png"``, ...).
    """
    paths = list(paths)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(_check_one, paths, chunksize=256))
    reasons = [r for _, r in results]
    if formats is not None:
        formats.update(f for f, _ in results if f is not None)
    good = [p for p, r in zip(paths, reasons) if r is None]
    bad = [(p, r) for p, r in zip(paths, reasons) if r is not None]
    if bad:
        examples = ", ".join(f"{os.path.basename(p)} ({r})" for p, r in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        warn_once("Skipping %d of %d files in %s that are not complete JPEG/PNG/GIF/BMP "
                  "images: %s%s.", len(bad), len(paths), what or "the input", examples, more)
    return good, bad


def find_images(path_or_glob, *, recursive=True, screen=True, formats=None, skipped=None):
    """Sorted image files under ``path_or_glob``, screened (see `screen_images`).

    ``skipped``, a `pipelines.skipped.SkippedFiles`, records the files found
    and the ones screened out.

    Raises `FileNotFoundError` for a missing path / empty match and
    `ValueError` when no file is a usable image.
    """
    files = list_files(path_or_glob, recursive=recursive)
    if not screen:
        return files
    good, bad = screen_images(files, what=repr(str(path_or_glob)), formats=formats)
    if skipped is not None:
        skipped.add_listed(len(files))
        skipped.add_screened(bad)
    if not good:
        raise ValueError(f"None of the {len(files)} files in {str(path_or_glob)!r} is a "
                         "complete JPEG, PNG, GIF or BMP image.")
    return good


def _side(size, crop):
    """The smaller side of the region of an image of ``size`` (w, h) that gets resized."""
    width, height = size
    if crop == "center":
        return min(width, height)
    if isinstance(crop, (tuple, list)) and len(crop) == 4:
        return min(int(crop[2]), int(crop[3]))
    return min(width, height)


def check_image_sizes(paths, resolution, *, crop=None, what=None, checks=32):
    """Warn (once) when images are smaller than ``resolution`` and so get upscaled.

    Reads the headers of up to ``checks`` files spread over ``paths`` (no
    decoding). Upscaled pictures hold no more detail than their files: the
    networks then spend their larger size on interpolated pixels. Returns
    ``(checked, smaller, smallest side)``.
    """
    from PIL import Image

    paths = list(paths)
    if not paths:
        return 0, 0, None
    step = max(1, len(paths) // checks)
    sides = []
    for path in paths[::step][:checks]:
        try:
            with Image.open(path) as image:
                sides.append(_side(image.size, crop))
        except (OSError, ValueError):
            continue  # left to the decoder, which records it
    smaller = [s for s in sides if s < resolution]
    if smaller:
        smallest = min(smaller)
        fit = 8
        while fit * 2 <= smallest:
            fit *= 2
        hint = (f"A resolution of {fit} fits them." if smallest >= fit else
                f"Even the smallest resolution, {fit}, is larger.")
        warn_once("%d of the %d images checked in %s are smaller than the %dx%d training "
                  "resolution (the smallest %d px across): they are upscaled, which adds no "
                  "detail. %s", len(smaller), len(sides), what or "the input", resolution,
                  resolution, smallest, hint)
    return len(sides), len(smaller), (min(smaller) if smaller else None)
