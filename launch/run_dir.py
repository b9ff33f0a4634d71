"""The run directory of a start of `launch.train` that fails before training: left as it was."""
import contextlib
import os
import shutil

__all__ = ["undone_on_failed_start"]


@contextlib.contextmanager
def undone_on_failed_start(workdir, errors):
    """Undo what this start wrote to ``workdir`` if it ends in one of ``errors``.

    The launcher passes its usage errors (bad flags, missing or unusable
    data), which happen before the first training step, so all this start
    left is the directory itself (if it created it, it is removed with the
    parents it created) or a new ``flags.cfg``, ``precision.json`` and
    ``conv_gradients.json`` (the previous ones are put back, or they are removed).
    """
    workdir = os.path.abspath(workdir)
    created = None
    parent = workdir
    while not os.path.exists(parent):
        created, parent = parent, os.path.dirname(parent)
    # What a start writes before training: these files are put back or removed.
    written = {}
    for name in ("flags.cfg", "precision.json", "conv_gradients.json"):
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
