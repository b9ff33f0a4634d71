"""Run-directory bookkeeping shared by training and the processes beside it: a lock and an end marker.

* ``.lock``: one training at a time per directory. `locked` holds an
  exclusive ``flock`` on it; the kernel drops the lock when the process ends
  in any way (exit, crash, SIGKILL), so a killed run never leaves a lock
  that blocks the rerun. The file itself stays and only says who held it
  last (pid, host, start time); the ``flock`` is what counts.
* ``done.json``: written by `tfgan2.train` when a run reaches its last step
  (``{"step": N}``) and removed when a run of the directory starts training
  again. A continuous evaluator stops once it has seen the checkpoint of
  that step.

On a file system without ``flock`` support (some network mounts) the lock is
skipped with a warning.
"""
import contextlib
import errno
import fcntl
import json
import os
import socket
import time

__all__ = ["LOCK_FILE", "DONE_FILE", "RunDirectoryLocked", "locked", "write_done", "read_done",
           "clear_done"]

LOCK_FILE = ".lock"
DONE_FILE = "done.json"

# realpath -> [fd, depth]: this process already holds the lock (re-entry, e.g. the
# launcher and then tfgan2.train). flock locks belong to an open file, so a second
# open + flock in the same process would block itself.
_held = {}


class RunDirectoryLocked(RuntimeError):
    """Another live process holds the run directory's lock."""


def _holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def locked(workdir):
    """Hold the exclusive lock of run directory ``workdir`` (created if needed) for the block.

    Re-entrant within one process.

    Raises:
      RunDirectoryLocked: another process holds it; the message names its pid and host.
    """
    os.makedirs(workdir, exist_ok=True)
    key = os.path.realpath(workdir)
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    fd = os.open(os.path.join(workdir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            who = _holder(fd)
            os.close(fd)
            since = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(who["started"]))
                     if "started" in who else "an unknown time")
            raise RunDirectoryLocked(
                f"{workdir} is in use by another training (pid {who.get('pid', '?')} on "
                f"{who.get('host', '?')}, started {since}): two runs writing one directory "
                f"would overwrite each other's checkpoints. Wait for it to end, stop it, or "
                f"use another directory.") from None
        os.close(fd)
        print(f"Warning: cannot lock {workdir} ({exc.strerror or exc}); nothing stops a "
              f"second training on the same directory.", flush=True)
        yield
        return
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.time()}).encode("utf-8"))
    _held[key] = [fd, 1]
    try:
        yield
    finally:
        del _held[key]
        os.close(fd)  # releases the flock


def write_done(workdir, step):
    """Mark the run in ``workdir`` as finished at ``step`` (atomically)."""
    path = os.path.join(workdir, DONE_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"step": int(step), "time": time.time()}, f)
    os.replace(path + ".tmp", path)


def read_done(workdir):
    """The final step of a finished run in ``workdir``, or None while it is not finished."""
    try:
        with open(os.path.join(workdir, DONE_FILE), encoding="utf-8") as f:
            return int(json.load(f)["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear_done(workdir):
    """Remove the end marker (a run of the directory is training again)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(workdir, DONE_FILE))
