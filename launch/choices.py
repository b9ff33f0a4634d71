"""The measured choices of `launch.train`, ``--precision`` and ``--conv_gradients``: one path.

Each flag takes a value or ``auto``. For each start of a run, `resolve` settles
both, in order, each the first of:

1. an explicit value (`PRECISION` checks it against the devices and the run
   being resumed);
2. the run being resumed: the value its ``flags.cfg`` records (never ``auto``),
   with the reason and timings of its record file (``precision.json``,
   ``conv_gradients.json``), so its steps compute what the interrupted run's
   would have;
3. ``auto``: the library's rules (`tfgan2.precision.choose_precision`,
   `tfgan2.timing.choose_method`), which settle most cases without timing;
   where they time this run's GAN, the timings remembered for this machine
   (`tfgan2.timing.MachineCache`, keyed by `run_signature`) are used, else
   the candidates are timed within one budget shared by both choices
   (``$TFGAN2_TIMING_BUDGET`` seconds, default
   `tfgan2.timing.DEFAULT_BUDGET_SECONDS`) and remembered.

``flags.cfg`` records the value used and the record file its reason and
timings (`write`). Runs that must not time (``not_measured``: workers that
must agree, ``--deterministic``) take the rules' untimed answer.
"""
import dataclasses
import hashlib
import json
import os

from launch import config

__all__ = ["Measured", "PRECISION", "CONV_GRADIENTS", "MEASURED", "AUTO", "BUDGET_ENV",
           "budget_seconds", "resumed_flag", "recorded", "write", "run_gpus", "run_signature",
           "resolve_precision", "resolve_conv_gradients", "resolve", "measure_in_process"]

AUTO = "auto"
BUDGET_ENV = "TFGAN2_TIMING_BUDGET"
# Training flags that do not change what one training step computes (paths, schedules,
# logging, evaluation, optimizer hyperparameters, data statistics, the choices themselves):
# left out of the signature that keys the timings remembered per machine.
NOT_TIMED_FLAGS = frozenset({
    "workdir", "train_steps", "log_every", "sample_every", "checkpoint_every",
    "keep_checkpoints", "keep_samples", "num_grid", "seed", "deterministic", "data_dir", "split",
    "crop", "gaussian_mean", "gaussian_std", "d_lr", "g_lr", "beta1", "beta2", "lr_schedule",
    "collective_timeout", "precision", "conv_gradients", "steps_per_execution", "tensorboard",
    "eval_every", "eval_metrics", "eval_num_samples", "eval_features", "inception_weights",
    "classifier_epochs"})


@dataclasses.dataclass(frozen=True)
class Measured:
    """One measured choice of the launcher: its ``flag``, the record ``file`` in the run
    directory, the library's ``choice`` class, and ``legacy``, the value of runs whose
    ``flags.cfg`` predates the flag (None: the flag's default)."""

    flag: str
    file: str
    legacy: str = None

    @property
    def choice(self):
        import tfgan2

        return {"precision": tfgan2.precision.PrecisionChoice,
                "conv_gradients": tfgan2.timing.MethodChoice}[self.flag]


PRECISION = Measured("precision", "precision.json")
CONV_GRADIENTS = Measured("conv_gradients", "conv_gradients.json", legacy="native")
MEASURED = (PRECISION, CONV_GRADIENTS)


def budget_seconds(environ=None):
    """The timing budget of a start: ``$TFGAN2_TIMING_BUDGET`` seconds if set (> 0), else
    `tfgan2.timing.DEFAULT_BUDGET_SECONDS`."""
    from tfgan2 import timing

    environ = os.environ if environ is None else environ
    text = environ.get(BUDGET_ENV, "").strip()
    if not text:
        return timing.DEFAULT_BUDGET_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"{BUDGET_ENV}={text!r} is not a number of seconds > 0 (the time "
                         f"--precision=auto and --conv_gradients=auto may spend timing).")
    return value


def resumed_flag(workdir, name):
    """``(value of flag name in <workdir>/flags.cfg, that file's path)`` when ``workdir``
    holds a run to resume (a checkpoint and ``flags.cfg``), else None."""
    import tfgan2

    flagfile = os.path.join(workdir, "flags.cfg")
    if not os.path.isfile(flagfile) or tfgan2.callbacks.latest_checkpoint_step(
            os.path.join(workdir, "checkpoints")) is None:
        return None
    return getattr(config.read_flagfile(flagfile), name, None), flagfile


def recorded(workdir, measured):
    """The ``measured.choice`` of the run in ``workdir``, or None when there is nothing to
    resume (no checkpoint, or a ``flags.cfg`` saying ``auto``)."""
    found = resumed_flag(workdir, measured.flag)
    if found is None:
        return None
    value, flagfile = found
    if measured.legacy is not None:
        with open(flagfile, encoding="utf-8") as f:
            if not any(line.startswith(f"--{measured.flag}=") for line in f):
                return measured.choice(measured.legacy, f"{flagfile} predates --"
                                       f"{measured.flag}: its run used {measured.legacy}")
    if value == AUTO or value is None:
        return None
    reason, ms = flagfile, {}
    path = os.path.join(workdir, measured.file)
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as f:
                saved = measured.choice.from_json(f.read())
        except (ValueError, KeyError):
            saved = None
        if saved is not None and saved.value == value:
            reason, ms = f"{path}: {saved.reason}", saved.ms_per_step
    return measured.choice(value, f"recorded by the run being resumed ({reason})", ms)


def write(measured, choice, workdir):
    """Write ``choice`` to ``<workdir>/<measured.file>`` (atomically)."""
    path = os.path.join(workdir, measured.file)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(choice.to_json() + "\n")
    os.replace(path + ".tmp", path)


def run_gpus(fv):
    """Compute capabilities of the GPUs this run computes on (``[]``: the CPU)."""
    from tfgan2 import timing

    if fv.devices and not any("gpu" in d.lower() for d in fv.devices):
        return []
    return timing.gpu_compute_capabilities()


def run_signature(fv, networks, data_shape):
    """What a timing of this run's training step depends on besides the machine: the
    networks (`tfgan2.timing.network_signature`), the data shape and every training
    flag except `NOT_TIMED_FLAGS`."""
    from tfgan2 import timing

    flags = {name: fv[name].value for name in config.TRAIN_FLAGS
             if name not in NOT_TIMED_FLAGS and name in fv}
    return timing.network_signature(networks, extra={"flags": flags,
                                                     "data_shape": list(data_shape)})


def _resolve(measured, fv, workdir, explicit, auto):
    """``(choice, fresh)``: ``explicit(requested, previous)`` for a value, the resumed run's
    choice, or ``auto()``; ``fresh`` is False when the choice was read from the run."""
    requested = getattr(fv, measured.flag)
    previous = recorded(workdir, measured)
    if requested != AUTO:
        if previous is not None and previous.value == requested:
            return previous, False  # e.g. resumed with --flagfile=<workdir>/flags.cfg
        return explicit(requested, previous), True
    if previous is not None:
        return previous, False
    return auto(), True


def resolve_precision(fv, workdir, build, *, not_measured=None, features=None, gpus=None,
                      measure=None, regression=False, over_budget="float32"):
    """``(PrecisionChoice, fresh)`` for this start of the run of flags ``fv``.

    ``build(policy) -> run`` is handed to `tfgan2.precision.choose_precision`
    (with ``measure``, ``regression`` and ``over_budget``); ``not_measured``:
    why this run must not measure (then a CPU run is float32). ``features``
    and ``gpus`` are passed on (tests inject them).

    Raises:
      ValueError: a policy the devices cannot run, or an explicit switch of a
        resumed run into or out of ``mixed_float16``.
    """
    from tfgan2 import precision

    gpus = run_gpus(fv) if gpus is None else list(gpus)

    def explicit(requested, previous):
        try:
            precision.check_policy(requested, gpus)
        except ValueError as exc:
            raise ValueError(f"--precision={requested}: {exc}") from None
        if previous is None:
            return precision.PrecisionChoice(requested, f"--precision={requested}")
        if "mixed_float16" in (previous.policy, requested):
            raise ValueError(
                f"{workdir} holds checkpoints of a run in {previous.policy}; --precision="
                f"{requested} cannot restore them (mixed_float16's optimizers carry a "
                f"loss scale). Resume with --precision={previous.policy} or auto, or use a "
                f"new --workdir.")
        return precision.PrecisionChoice(
            requested, f"--precision={requested} (the run was in {previous.policy}; both keep "
            f"float32 variables)")

    def auto():
        choice = precision.choose_precision(
            None if not_measured else build, features=features, gpus=gpus, measure=measure,
            regression=regression, over_budget=over_budget)
        if not_measured and not gpus and not regression:
            choice = dataclasses.replace(choice, reason=(
                f"{choice.reason} ({not_measured}; pass --precision to choose)"))
        return choice

    choice, fresh = _resolve(PRECISION, fv, workdir, explicit, auto)
    if not fresh:
        try:
            precision.check_policy(choice.policy, gpus)
        except ValueError as exc:
            raise ValueError(f"{workdir} holds a run in {choice.policy}, which it must keep "
                             f"to resume: {exc}") from None
    return choice, fresh


def resolve_conv_gradients(fv, workdir, build, networks, *, not_measured=None, features=None,
                           gpus=None, measure=None):
    """``(MethodChoice, fresh)`` for this start of the run of flags ``fv``.

    ``build(method) -> run`` goes to `tfgan2.timing.choose_method` (with
    ``features``, ``gpus`` and ``measure``); ``networks``: the run's models,
    looked through for convolutions (without any, ``native`` is kept untimed);
    ``not_measured``: why this run must not measure (``native`` then).
    """
    import tfgan2

    def explicit(requested, previous):
        return tfgan2.timing.MethodChoice(requested, f"--conv_gradients={requested}")

    def auto():
        if not tfgan2.layers.uses_forward_gradients(networks):
            return tfgan2.timing.MethodChoice("native", "no convolutions in these networks; "
                                              "not measured")
        if not_measured:
            return tfgan2.timing.MethodChoice(
                "native", f"{not_measured}; pass --conv_gradients to choose")
        return tfgan2.timing.choose_method(build, features=features,
                                           gpus=run_gpus(fv) if gpus is None else gpus,
                                           measure_fn=measure)

    return _resolve(CONV_GRADIENTS, fv, workdir, explicit, auto)


def resolve(fv, workdir, build, networks, data_shape, *, not_measured=None, budget=None,
            cache=None, features=None, gpus=None, regression=False, over_budget=None,
            say=print, measure=None):
    """Both choices of this start: ``{flag: (choice, fresh, seconds timing)}``, precision
    first (the convolution method is timed in the chosen precision); ``seconds timing``
    is 0 unless candidates were timed now.

    ``build(policy, method) -> run`` times this run's GAN; ``networks``: its
    models built in float32 with ``native`` gradients, of data of
    ``data_shape``; ``budget``: a `tfgan2.timing.Budget` shared by the two,
    restarted when the first timing starts (default `budget_seconds()`); ``cache``: a `tfgan2.timing.MachineCache`
    (default: the user's, described only when a rule asks for timings);
    ``say(line)`` announces a timing. ``over_budget``: the policy when the
    precision cannot be timed within the budget (default: ``mixed_bfloat16``
    for networks with convolutions, which it made 1.3x-3x faster on every
    bfloat16 CPU measured, else ``float32``). ``measure(kind, candidates,
    policy, budget) -> {candidate: ms}``, if given, times instead of ``build``
    (``kind``: the flag; ``policy``: the chosen precision when timing the
    convolution methods), e.g. in a process that can be stopped when the
    budget runs out (`launch.timing_process`); it raises
    `tfgan2.timing.OverBudget` when the candidates do not fit.
    """
    import tfgan2
    from tfgan2 import timing

    if over_budget is None:
        over_budget = ("mixed_bfloat16" if tfgan2.layers.uses_forward_gradients(networks)
                       else "float32")
    budget = budget or timing.Budget(budget_seconds())
    signature = run_signature(fv, networks, data_shape)
    caches, spent = [], {}

    def remembered(kind, key, measure_fn):
        def announce(candidates):
            if not spent:  # the budget is for timing: it starts with the first one
                budget.restart()
            say(f"tfgan2: --{kind}=auto: timing {' against '.join(candidates)} on this "
                f"machine ({max(budget.left(), 0):.0f} s left of the {budget.seconds:g} s "
                f"timing budget; remembered in {caches[0].directory})")

        def timed(build_fn, candidates):
            started = budget.clock()
            try:
                return measure_fn(build_fn, candidates)
            finally:
                spent[kind] = budget.clock() - started

        def measure(build_fn, candidates):
            if not caches:
                caches.append(cache or timing.MachineCache())
            try:
                return caches[0].remembering(kind, key, timed, budget.seconds, announce)(
                    build_fn, candidates)
            except timing.OverBudget:
                say(f"tfgan2: --{kind}=auto: {' and '.join(candidates)} do not fit the "
                    f"{budget.seconds:g} s timing budget; ${BUDGET_ENV}=<seconds> gives them "
                    f"more time")
                raise
        return measure

    results = {}
    choice, fresh = resolve_precision(
        fv, workdir, lambda policy: build(policy, "native"), not_measured=not_measured,
        features=features, gpus=gpus, regression=regression, over_budget=over_budget,
        measure=remembered("precision", signature,
                           (lambda b, c: measure("precision", c, None, budget)) if measure
                           else (lambda b, c: _measure_policies(b, c, budget))))
    results["precision"] = (choice, fresh, spent.get("precision", 0.0))
    policy = choice.policy
    conv_key = hashlib.sha256(json.dumps([signature, policy]).encode()).hexdigest()
    choice, fresh = resolve_conv_gradients(
        fv, workdir, lambda method: build(policy, method), networks, not_measured=not_measured,
        features=features, gpus=gpus,
        measure=remembered("conv_gradients", conv_key,
                           (lambda b, c: measure("conv_gradients", c, policy, budget)) if measure
                           else (lambda b, c: timing.measure(b, c, budget=budget))))
    results["conv_gradients"] = (choice, fresh, spent.get("conv_gradients", 0.0))
    return results


def measure_in_process(kind, build, candidates, policy, budget):
    """``{candidate: ms}`` of timing ``candidates`` of ``kind`` (a flag) here, with
    ``build(policy, method) -> run``; ``policy``: the precision the convolution
    methods are timed in."""
    from tfgan2 import timing

    if kind == PRECISION.flag:
        return _measure_policies(lambda p: build(p, "native"), candidates, budget)
    return timing.measure(lambda m: build(policy, m), candidates, budget=budget)


def _measure_policies(build, policies, budget):
    from tfgan2 import precision

    return precision.measure_step_times(build, policies, budget=budget)
