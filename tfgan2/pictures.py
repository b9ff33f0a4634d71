"""Pictures drawn beside training: one background thread renders what callbacks hand it.

A callback reads what it needs from the device on the training thread (samples,
D's scores, the logs) and hands the drawing, pure NumPy and matplotlib work, to
`PictureQueue.submit`; the training loop goes on meanwhile. Everything drawn here
runs on one thread, in submission order, and every `tfgan2.visualize` function
holds `tfgan2.visualize.LOCK` while it draws, so matplotlib is never used by two
threads at once.

A submission under a ``key`` that is still waiting replaces the waiting one
(the loss plot: only the newest curve matters). `PictureQueue.wait` blocks
until everything submitted is written and raises the first drawing error.
"""
import concurrent.futures
import threading

__all__ = ["PictureQueue"]


class PictureQueue:
    """A single background thread drawing pictures, in order."""

    def __init__(self):
        self._executor = None
        self._lock = threading.Lock()
        self._waiting = {}
        self._futures = []

    def submit(self, key, draw, *args, **kwargs):
        """Run ``draw(*args, **kwargs)`` on the drawing thread (after what is already queued);
        replaces a call under the same ``key`` that has not started. Raises the error of an
        earlier drawing that failed."""
        self._raise_failed()
        with self._lock:
            queued = key in self._waiting
            self._waiting[key] = (draw, args, kwargs)
        if not queued:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="tfgan2-pictures")
            self._futures.append(self._executor.submit(self._run, key))

    def _run(self, key):
        with self._lock:
            draw, args, kwargs = self._waiting.pop(key)
        draw(*args, **kwargs)

    def _raise_failed(self):
        done = [f for f in self._futures if f.done()]
        self._futures = [f for f in self._futures if not f.done()]
        for future in done:
            future.result()

    def wait(self):
        """Block until every submitted picture is written; raise the first drawing error."""
        futures, self._futures = self._futures, []
        errors = []
        for future in futures:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - re-raised below, after all finished
                errors.append(exc)
        if errors:
            raise errors[0]

    def close(self):
        """`wait`, then end the thread."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
