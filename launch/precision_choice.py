"""``--precision`` of `launch.train`: an explicit policy, the one of the run being resumed,
or (``auto``) `tfgan2.precision.choose_precision` on this run's networks.

The policy actually used is what ``flags.cfg`` records (never ``auto``), so
``--flagfile=<workdir>/flags.cfg`` reproduces it; ``precision.json`` in the
run directory holds the choice, its reason and the measured ms per step.
A resumed run (its directory holds checkpoints and ``flags.cfg``) keeps the
recorded policy under ``auto`` instead of measuring again. An explicit
policy may switch between ``float32`` and ``mixed_bfloat16`` (both keep
float32 variables and the same optimizers, so the checkpoints restore), but
not into or out of ``mixed_float16``, whose optimizers carry loss-scale state.
"""
import dataclasses
import os

from launch import config

__all__ = ["PRECISION_FILE", "run_gpus", "recorded", "resolve", "write"]

PRECISION_FILE = "precision.json"
AUTO = "auto"


def run_gpus(fv):
    """Compute capabilities of the GPUs this run computes on (``[]``: the CPU)."""
    from tfgan2 import precision

    if fv.devices and not any("gpu" in d.lower() for d in fv.devices):
        return []
    return precision.gpu_compute_capabilities()


def resumed_flag(workdir, name):
    """``(value of flag name in <workdir>/flags.cfg, that file's path)`` when ``workdir``
    holds a run to resume (a checkpoint and ``flags.cfg``), else None."""
    import tfgan2

    flagfile = os.path.join(workdir, "flags.cfg")
    if not os.path.isfile(flagfile) or tfgan2.callbacks.latest_checkpoint_step(
            os.path.join(workdir, "checkpoints")) is None:
        return None
    return getattr(config.read_flagfile(flagfile), name, None), flagfile


def recorded(workdir):
    """The `tfgan2.precision.PrecisionChoice` of the run in ``workdir``, or None when
    there is nothing to resume (no checkpoint, or no ``flags.cfg`` naming a policy)."""
    from tfgan2 import precision

    found = resumed_flag(workdir, "precision")
    if found is None or found[0] == AUTO:
        return None
    policy, flagfile = found
    reason = f"{flagfile}"
    path = os.path.join(workdir, PRECISION_FILE)
    ms = {}
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                saved = precision.PrecisionChoice.from_json(f.read())
        except (ValueError, KeyError):
            saved = None
        if saved is not None and saved.policy == policy:
            reason, ms = f"{path}: {saved.reason}", saved.ms_per_step
    return precision.PrecisionChoice(policy, f"recorded by the run being resumed ({reason})", ms)


def resolve(fv, workdir, build, *, not_measured=None, features=None, gpus=None, measure=None):
    """``(PrecisionChoice, fresh)`` for this start of the run of flags ``fv``.

    ``build(policy) -> run`` is handed to `tfgan2.precision.choose_precision`;
    ``not_measured``: why this run must not measure (e.g. workers that must
    agree, or a run that must be reproducible), then a CPU run is float32.
    ``fresh`` is False when the choice was read from the run
    directory (``precision.json`` is then left as it is). ``features``,
    ``gpus`` and ``measure`` are passed on (tests inject them).

    Raises:
      ValueError: a policy the devices cannot run, or an explicit switch of a
        resumed run into or out of ``mixed_float16``.
    """
    from tfgan2 import precision

    gpus = run_gpus(fv) if gpus is None else list(gpus)
    previous = recorded(workdir)
    requested = fv.precision
    if requested != AUTO:
        try:
            precision.check_policy(requested, gpus)
        except ValueError as exc:
            raise ValueError(f"--precision={requested}: {exc}") from None
        if previous is None:
            return precision.PrecisionChoice(requested, f"--precision={requested}"), True
        if previous.policy == requested:  # e.g. resumed with --flagfile=<workdir>/flags.cfg
            return previous, False
        if "mixed_float16" in (previous.policy, requested):
            raise ValueError(
                f"{workdir} holds checkpoints of a run in {previous.policy}; --precision="
                f"{requested} cannot restore them (mixed_float16's optimizers carry a "
                f"loss scale). Resume with --precision={previous.policy} or auto, or use a "
                f"new --workdir.")
        return precision.PrecisionChoice(
            requested, f"--precision={requested} (the run was in {previous.policy}; both keep "
            f"float32 variables)"), True
    if previous is not None:
        try:
            precision.check_policy(previous.policy, gpus)
        except ValueError as exc:
            raise ValueError(f"{workdir} holds a run in {previous.policy}, which it must keep "
                             f"to resume: {exc}") from None
        return previous, False
    choice = precision.choose_precision(None if not_measured else build, features=features,
                                        gpus=gpus, measure=measure)
    if not_measured and not gpus:
        choice = dataclasses.replace(choice, reason=(
            f"{choice.reason} ({not_measured}; pass --precision to choose)"))
    return choice, True


def write(choice, workdir):
    """Write ``choice`` to ``<workdir>/precision.json`` (atomically)."""
    path = os.path.join(workdir, PRECISION_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(choice.to_json() + "\n")
    os.replace(path + ".tmp", path)
