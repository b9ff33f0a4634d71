"""What `launch.train` keeps in a run directory besides training's own files.

* `undone_on_failed_start`: a start that fails before training leaves the
  directory as it was.
* ``flags_history.jsonl``: the flags of every segment of the run. ``flags.cfg``
  holds the flags of the latest start (what a resume and `launch.evaluate` /
  `launch.sample` read); each start that wrote other flags than the previous
  one appends ``{"start_step", "time", "flags": [flagfile lines], "changed":
  {flag: [old, new]}}``, so the flags of any stretch of training can be
  written back into a flagfile.
"""
import contextlib
import json
import os
import shutil
import time

__all__ = ["undone_on_failed_start", "HISTORY_FILE", "read_history", "record_flags"]

HISTORY_FILE = "flags_history.jsonl"


@contextlib.contextmanager
def undone_on_failed_start(workdir, errors):
    """Undo what this start wrote to ``workdir`` if it ends in one of ``errors``.

    The launcher passes its usage errors (bad flags, missing or unusable
    data), which happen before the first training step, so all this start
    left is the directory itself (if it created it, it is removed with the
    parents it created) or a new ``flags.cfg``, ``flags_history.jsonl``,
    ``precision.json`` and ``conv_gradients.json`` (the previous ones are put
    back, or they are removed).
    """
    workdir = os.path.abspath(workdir)
    created = None
    parent = workdir
    while not os.path.exists(parent):
        created, parent = parent, os.path.dirname(parent)
    # What a start writes before training: these files are put back or removed.
    written = {}
    for name in ("flags.cfg", HISTORY_FILE, "precision.json", "conv_gradients.json"):
        path = os.path.join(workdir, name)
        written[path] = None
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                written[path] = f.read()
    try:
        yield
    except errors:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        else:
            for path, old in written.items():
                if old is not None:
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(old)
                elif os.path.isfile(path):
                    os.remove(path)
        raise


def read_history(workdir):
    """The rows of ``workdir``'s ``flags_history.jsonl``, oldest first ([] if none)."""
    rows = []
    try:
        with open(os.path.join(workdir, HISTORY_FILE), encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by a crash
    except FileNotFoundError:
        pass
    return rows


def _flagfile_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def record_flags(workdir, lines, start_step, changes=()):
    """Append the flags ``lines`` of a start at ``start_step`` to the history, unless they
    equal the last row's.

    ``changes``: ``[(flag, old, new)]`` against the previous flags. A run
    directory from before the history was kept first gets a row for its
    ``flags.cfg`` (``start_step`` None: not known).
    """
    rows = read_history(workdir)
    path = os.path.join(workdir, HISTORY_FILE)
    new_rows = []
    if not rows and os.path.isfile(os.path.join(workdir, "flags.cfg")):
        previous = _flagfile_lines(os.path.join(workdir, "flags.cfg"))
        if previous != list(lines):
            new_rows.append({"start_step": None, "time": None, "flags": previous,
                             "changed": {}})
            rows = new_rows[:]
    if rows and rows[-1]["flags"] == list(lines):
        if new_rows:
            _append(path, new_rows)
        return
    new_rows.append({"start_step": None if start_step is None else int(start_step),
                     "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "flags": list(lines),
                     "changed": {name: [old, new] for name, old, new in changes}})
    _append(path, new_rows)


def _append(path, rows):
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
