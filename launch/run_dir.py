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
    parents it created) or a new ``flags.cfg`` (the previous one is put
    back, or it is removed).
    """
    workdir = os.path.abspath(workdir)
    created = None
    parent = workdir
    while not os.path.exists(parent):
        created, parent = parent, os.path.dirname(parent)
    flagfile = os.path.join(workdir, "flags.cfg")
    old_flags = None
    if os.path.isfile(flagfile):
        with open(flagfile, encoding="utf-8") as f:
            old_flags = f.read()
    try:
        yield
    except errors:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        elif old_flags is not None:
            with open(flagfile, "w", encoding="utf-8") as f:
                f.write(old_flags)
        elif os.path.isfile(flagfile):
            os.remove(flagfile)
        raise
