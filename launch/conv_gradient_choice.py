"""``--conv_gradients`` of `launch.train`: an explicit method, the one of the run being
resumed, or (``auto``) `tfgan2.conv_gradients.choose_method` on this run's networks.

As with ``--precision`` (`launch.precision_choice`), ``flags.cfg`` records the
method actually used (never ``auto``) and ``conv_gradients.json`` in the run
directory holds the choice, its reason and the measured ms per step; a
resumed run keeps its method under ``auto``, so its steps compute what the
interrupted run's would have. Either method restores the other's checkpoints
(the variables are the same).
"""
import os

from launch import precision_choice

__all__ = ["CONV_GRADIENTS_FILE", "resolve", "write"]

CONV_GRADIENTS_FILE = "conv_gradients.json"
AUTO = "auto"


def recorded(workdir):
    """The `tfgan2.conv_gradients.MethodChoice` of the run in ``workdir``, or None when there
    is nothing to resume (see `launch.precision_choice.resumed_flag`)."""
    from tfgan2 import conv_gradients

    found = precision_choice.resumed_flag(workdir, "conv_gradients")
    if found is None:
        return None
    method, flagfile = found
    with open(flagfile, encoding="utf-8") as f:
        if not any(line.startswith("--conv_gradients=") for line in f):
            return conv_gradients.MethodChoice("native", f"{flagfile} predates "
                                               f"--conv_gradients: its run used native")
    if method == AUTO:
        return None
    reason, ms = flagfile, {}
    path = os.path.join(workdir, CONV_GRADIENTS_FILE)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                saved = conv_gradients.MethodChoice.from_json(f.read())
        except (ValueError, KeyError):
            saved = None
        if saved is not None and saved.method == method:
            reason, ms = f"{path}: {saved.reason}", saved.ms_per_step
    return conv_gradients.MethodChoice(method, f"recorded by the run being resumed ({reason})",
                                       ms)


def resolve(fv, workdir, build, networks, *, not_measured=None, measure=None):
    """``(MethodChoice, fresh)`` for this start of the run of flags ``fv``.

    ``build(method) -> run`` goes to `tfgan2.conv_gradients.choose_method`;
    ``networks``: the run's models, looked through for convolutions
    (without any, ``native`` is kept unmeasured); ``not_measured``: why this
    run must not measure (``native`` then). ``fresh`` is False when the
    choice was read from the run directory.
    """
    from tfgan2 import conv_gradients

    requested = fv.conv_gradients
    if requested != AUTO:
        return conv_gradients.MethodChoice(requested, f"--conv_gradients={requested}"), True
    previous = recorded(workdir)
    if previous is not None:
        return previous, False
    if not conv_gradients.uses_forward_gradients(networks):
        return conv_gradients.MethodChoice("native", "no convolutions in these networks; "
                                           "not measured"), True
    if not_measured:
        return conv_gradients.MethodChoice(
            "native", f"{not_measured}; pass --conv_gradients to choose"), True
    return conv_gradients.choose_method(build, measure=measure), True


def write(choice, workdir):
    """Write ``choice`` to ``<workdir>/conv_gradients.json`` (atomically)."""
    path = os.path.join(workdir, CONV_GRADIENTS_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(choice.to_json() + "\n")
    os.replace(path + ".tmp", path)
