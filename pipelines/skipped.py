"""`SkippedFiles`: the tally of input files a pipeline left out, readable while it streams.

A file-reading pipeline leaves a file out at one of two points:

* when it is built, the screen (`pipelines.image_files.screen_images`) finds
  it is not an image or is truncated;
* while streaming, it passes the screen but its decoder fails (a file
  damaged in the middle, a corrupt header).

The pipelines record both here (pass one `SkippedFiles` as ``skipped=``).
The decode failures are recorded from inside the running `tf.data`
pipeline (see `pipelines.decode_files`), so the tally grows as the stream
reaches bad files; read it at any time, e.g. at the end of a training run.
A file that fails in every pass over the data is counted once.

Importing this module does not import TensorFlow.
"""
import threading

__all__ = ["SkippedFiles"]


class SkippedFiles:
    """Files left out by the pipelines given this object, with the reason for each.

    ``count`` is the number of distinct files skipped so far (screened out
    plus failed to decode); ``files`` the number of files the pipelines were
    given (screened or not), 0 when no file-reading pipeline used it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._reasons = {}  # path -> reason, in the order first seen
        self.files = 0

    def add_listed(self, count):
        """A pipeline was given ``count`` files (before its screen)."""
        with self._lock:
            self.files += int(count)

    def add_screened(self, bad):
        """``bad``: ``(path, reason)`` pairs the screen rejected."""
        with self._lock:
            for path, reason in bad:
                self._reasons.setdefault(str(path), str(reason))

    def add_decode_failures(self, paths):
        """``paths`` (str or bytes) that passed the screen but failed to decode."""
        with self._lock:
            for path in paths:
                path = path.decode("utf-8", "replace") if isinstance(path, bytes) else str(path)
                self._reasons.setdefault(path, "failed to decode")

    @property
    def count(self):
        with self._lock:
            return len(self._reasons)

    @property
    def decode_failures(self):
        """Number of distinct files that passed the screen but failed to decode."""
        with self._lock:
            return sum(r == "failed to decode" for r in self._reasons.values())

    def items(self):
        """``[(path, reason), ...]`` in the order the files were skipped."""
        with self._lock:
            return list(self._reasons.items())

    def summary(self, examples=5):
        """One line: how many files were skipped, of how many, and the first few."""
        items = self.items()
        if not items:
            return f"skipped 0 of {self.files} input files"
        shown = ", ".join(f"{path} ({reason})" for path, reason in items[:examples])
        more = f" and {len(items) - examples} more" if len(items) > examples else ""
        failed = sum(r == "failed to decode" for _, r in items)
        return (f"skipped {len(items)} of {self.files} input files ({len(items) - failed} "
                f"screened out, {failed} failed to decode): {shown}{more}")

    def __repr__(self):
        return f"SkippedFiles(count={self.count}, files={self.files})"
