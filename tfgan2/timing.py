"""Choices made by measurement: time candidates, choose the faster, remember it per machine.

Some settings change how fast a training step runs but not what it computes
beyond float rounding: the compute precision (`tfgan2.precision`) and how
convolutions take their gradients (`tfgan2.conv_gradients`, chosen by
`choose_method` here). Where no rule settles them, a few training steps of
each candidate are timed side by side.

Measurement (`measure`): ``build(candidate) -> run``, ``run(steps) -> seconds
per step`` (`gan_fit_runner` makes one from a compiled `tfgan2.GAN`). Every
candidate is built and warmed up with one untimed step (tracing), then each
runs one timed step in turn (the first step after another candidate's can be
slow; these steps count as samples), then rounds of ``steps`` steps of every
candidate in turn, the order reversed every other round, so a burst of load
from other processes hits every candidate; each candidate's best counts.
Everything, building and tracing included, draws on one `Budget` (default
`DEFAULT_BUDGET_SECONDS`), which a run shares between its choices: a further
candidate is built only if the slowest build-and-warm-up so far still fits in
what is left (else `OverBudget`, carrying the timings so far), and the rounds
are sized to the rest (none if nothing is left).

Choice (`choose_faster`): the challenger wins only if it is ``min_speedup``
times faster than the baseline; a TensorFlow error while timing keeps the
baseline (the reason names the error, `error_summary`).

Memory (`MachineCache`): measured timings are kept in one small JSON file per
key under `cache_dir()` (``$TFGAN2_CACHE_DIR``, else
``$XDG_CACHE_HOME/tfgan2``, else ``~/.cache/tfgan2``), keyed by the machine
(`machine_description`: CPU model and instruction-set flags, logical CPUs,
GPUs, Python, TensorFlow, Keras and tfgan2 versions, oneDNN settings), the
kind of choice, the candidates and a signature of what was timed
(`network_signature`): the second run of a recipe on a machine reuses the
first run's timings instead of timing again. A measurement that ran out of
budget is remembered too (and redone only under a larger budget).
"""
import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import time

import keras

__all__ = ["DEFAULT_BUDGET_SECONDS", "CACHE_DIR_ENV", "AVX512_CPU_FEATURE", "cpu_features",
           "gpu_compute_capabilities", "Choice", "MethodChoice", "Budget", "OverBudget", "Timings", "measure", "choose_faster", "choose_method",
           "error_summary", "BatchSpan", "gan_fit_runner", "cache_dir", "machine_description",
           "network_signature", "MachineCache"]

DEFAULT_BUDGET_SECONDS = 10.0
CACHE_DIR_ENV = "TFGAN2_CACHE_DIR"
# CPUs with this flag run oneDNN's AVX-512 backward convolutions, which measured faster than
# the forward formulas of `tfgan2.conv_gradients` on every such CPU tried (BUILD.md).
AVX512_CPU_FEATURE = "avx512f"
# oneDNN and TensorFlow settings that change which kernels run.
_KERNEL_ENV = ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "DNNL_MAX_CPU_ISA",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


# ------------------------------------------------------------------ the machine
def cpu_features(cpuinfo="/proc/cpuinfo"):
    """The CPU's feature flags (the ``flags`` line of ``cpuinfo``) as a frozenset;
    empty where that file does not exist (then no bfloat16 instructions are assumed)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def gpu_compute_capabilities():
    """``[(major, minor) or None]``, one per visible physical GPU (None: not reported)."""
    import tensorflow as tf

    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        cc = tf.config.experimental.get_device_details(device).get("compute_capability")
        capabilities.append(tuple(cc) if cc else None)
    return capabilities


# ------------------------------------------------------------------ choices
@dataclasses.dataclass(frozen=True)
class Choice:
    """A chosen ``value``, the human-readable ``reason`` and the measured ``ms_per_step`` of
    each timed candidate (empty when nothing was timed). Subclasses name the value in JSON
    (``KEY``) and check it (``check``)."""

    value: str
    reason: str
    ms_per_step: dict = dataclasses.field(default_factory=dict)

    KEY = "value"

    @staticmethod
    def check(value):
        return value

    def describe(self):
        """One line: ``"<value>: <reason>"``."""
        return f"{self.value}: {self.reason}"

    def to_json(self):
        return json.dumps({self.KEY: self.value, "reason": self.reason,
                           "ms_per_step": self.ms_per_step}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        return cls(cls.check(data[cls.KEY]), str(data["reason"]),
                   {str(k): float(v) for k, v in data.get("ms_per_step", {}).items()})


@dataclasses.dataclass(frozen=True)
class MethodChoice(Choice):
    """A convolution gradient method (`tfgan2.conv_gradients.METHODS`), why, and the ms per
    step measured."""

    KEY = "method"

    @staticmethod
    def check(value):
        from tfgan2 import conv_gradients

        return conv_gradients.check_method(value)

    @property
    def method(self):
        return self.value


# ------------------------------------------------------------------ measurement
class Budget:
    """Seconds a run may spend on measurements, shared by all of them (building included)."""

    def __init__(self, seconds=DEFAULT_BUDGET_SECONDS, clock=time.perf_counter):
        if not seconds > 0:
            raise ValueError(f"A timing budget must be > 0 seconds, got {seconds!r}.")
        self.seconds, self.clock = float(seconds), clock
        self.start = clock()

    def restart(self):
        """Count from now (e.g. when the first timing starts)."""
        self.start = self.clock()

    def spent(self):
        return self.clock() - self.start

    def left(self):
        return self.seconds - self.spent()


class OverBudget(Exception):
    """A measurement stopped because its next candidate would not fit the budget.
    ``ms``: the candidates timed so far (ms per step, possibly none)."""

    def __init__(self, message, ms=None):
        super().__init__(message)
        self.message, self.ms = message, dict(ms or {})


class Timings(dict):
    """``{candidate: ms per step}``; ``source`` says where remembered timings come from."""

    def __init__(self, ms, source=None):
        super().__init__(ms)
        self.source = source


def measure(build, candidates, *, budget=None, scope=None, steps=20, rounds=3, clock=None):
    """``{candidate: best milliseconds per step}`` of ``run = build(candidate)`` for each
    candidate (see the module docstring).

    ``budget``: a `Budget` (shared with other measurements of the run), or
    seconds for a new one (default `DEFAULT_BUDGET_SECONDS`); ``clock``: the
    budget's, else `time.perf_counter`. ``scope(candidate)``:
    the context each build and run happens in (default none; `tfgan2.precision`
    passes the global Keras policy).

    Raises:
      OverBudget: a further candidate's build and warm-up would not fit the budget.
    """
    if not candidates:
        raise ValueError("measure needs at least one candidate.")
    if steps < 1 or rounds < 1:
        raise ValueError(f"steps and rounds must be >= 1, got steps={steps}, rounds={rounds}.")
    if isinstance(budget, Budget):
        clock = clock or budget.clock
    else:
        clock = clock or time.perf_counter
        budget = Budget(DEFAULT_BUDGET_SECONDS if budget is None else budget, clock)
    scope = scope or (lambda candidate: contextlib.nullcontext())
    runs, best, setup = {}, {}, {}
    for candidate in candidates:
        if budget.left() <= 0:
            raise OverBudget(f"no time left of the {budget.seconds:g} s timing budget for "
                             f"{candidate}", {})
        if setup and max(setup.values()) > budget.left():
            raise OverBudget(
                f"building and warming up {_slowest(setup)} took "
                f"{max(setup.values()):.1f} s, so {candidate} would not fit in the "
                f"{budget.left():.1f} s left of the {budget.seconds:g} s timing budget", {})
        start = clock()
        with scope(candidate):
            runs[candidate] = build(candidate)
            runs[candidate](1)
        setup[candidate] = clock() - start
    for candidate in candidates:  # after the others ran: a switch's first step can be slow
        with scope(candidate):
            best[candidate] = _run_seconds(runs[candidate], 1)
    estimate = sum(best.values())  # seconds of one step of every candidate
    steps = min(steps, int(max(budget.left(), 0.0) / (rounds * max(estimate, 1e-9))))
    for r in range(rounds if steps >= 1 else 0):
        round_start = clock()
        for candidate in (candidates if r % 2 == 0 else tuple(reversed(candidates))):
            with scope(candidate):
                best[candidate] = min(best[candidate], _run_seconds(runs[candidate], steps))
        if clock() - round_start > budget.left():
            break
    return {candidate: 1e3 * seconds for candidate, seconds in best.items()}


def _slowest(setup):
    return max(setup, key=setup.get)


def _run_seconds(run, steps):
    seconds = float(run(steps))
    if not seconds > 0:
        raise ValueError(f"A timed run returned {seconds!r} seconds per step; expected > 0.")
    return seconds


def error_summary(error):
    """``"TypeName: first line of the message"`` (at most 200 characters of it) of a
    TensorFlow error, for the reason of a choice that fell back to the safe default."""
    first_line = (str(getattr(error, "message", error)).strip().splitlines()
                  or [type(error).__name__])[0]
    return f"{type(error).__name__}: {first_line[:200]}"


def choose_faster(build, baseline, challenger, *, choice=Choice, min_speedup=1.05,
                  measure_fn=None, prefix="", over_budget=None):
    """The ``choice`` of ``challenger`` if timed ``min_speedup`` times faster than
    ``baseline``, else of ``baseline``.

    ``measure_fn(build, candidates) -> {candidate: ms}`` (default `measure`).
    ``prefix`` starts every reason (e.g. what the hardware offers).
    ``over_budget``: ``(value, why)`` taken when the measurement runs out of
    budget (default: the baseline, ``"not timed"``).
    """
    import tensorflow as tf

    measure_fn = measure_fn or measure
    try:
        ms = measure_fn(build, (baseline, challenger))
    except tf.errors.OpError as error:
        return choice(baseline, f"{prefix}timing {baseline} against {challenger} raised "
                                f"{error_summary(error)}")
    except OverBudget as exc:
        value, why = over_budget or (baseline, "not timed")
        timed = "".join(f"; {c} {v:.1f} ms per step" for c, v in exc.ms.items())
        return choice(value, f"{prefix}{why} ({exc.message}{timed})",
                      {str(c): float(v) for c, v in exc.ms.items()})
    base, other = float(ms[baseline]), float(ms[challenger])
    timing = f"{challenger} {other:.1f} ms vs {baseline} {base:.1f} ms per step"
    source = getattr(ms, "source", None)
    if source:
        timing += f" ({source})"
    ms = {baseline: base, challenger: other}
    if other * min_speedup <= base:
        return choice(challenger, f"{prefix}{timing}", ms)
    return choice(baseline, f"{prefix}{challenger} is not {min_speedup:g}x faster: {timing}", ms)


def choose_method(build, *, features=None, gpus=None, measure_fn=None, min_speedup=1.05,
                  **measure_kwargs):
    """The convolution gradient method (`tfgan2.conv_gradients`) as a `MethodChoice`.

    ``"native"`` without timing on GPUs (``gpus``: their compute capabilities,
    default the visible ones; TensorFlow's cuDNN backward kernels) and on CPUs
    whose ``features`` (default `cpu_features`) include
    `AVX512_CPU_FEATURE` (oneDNN's AVX-512 backward kernels measured faster than
    the forward formulas on every such CPU tried). Otherwise ``"forward"`` if
    training steps measure ``min_speedup`` times faster with it.

    ``build(method) -> run``, ``run(steps) -> seconds per step``: the run's
    training step with its networks built under
    `tfgan2.conv_gradients.method_scope` ``(method)``; ``measure_fn(build,
    methods) -> {method: ms}`` defaults to `measure` with ``measure_kwargs``.
    A measurement that raises a TensorFlow error keeps ``"native"``.
    """
    gpus = gpu_compute_capabilities() if gpus is None else list(gpus)
    if gpus:
        return MethodChoice("native", f"{len(gpus)} GPU(s): TensorFlow's backward kernels; "
                            "forward not timed")
    features = cpu_features() if features is None else frozenset(features)
    if AVX512_CPU_FEATURE in features:
        return MethodChoice("native", f"CPU has {AVX512_CPU_FEATURE}: oneDNN's backward "
                            "kernels beat forward convolutions there; forward not timed")
    if measure_fn is None:
        def measure_fn(build_fn, methods):
            return measure(build_fn, methods, **measure_kwargs)
    return choose_faster(build, "native", "forward", choice=MethodChoice,
                         min_speedup=min_speedup, measure_fn=measure_fn)


class BatchSpan(keras.callbacks.Callback):
    """From the first batch's start to the last batch's end of one ``fit`` (``clock()`` times)."""

    def __init__(self, clock=time.perf_counter):
        super().__init__()
        self.clock = clock
        self.first = self.last = None

    def on_train_batch_begin(self, batch, logs=None):
        if self.first is None:
            self.first = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        self.last = self.clock()


def gan_fit_runner(gan, batch, clock=time.perf_counter):
    """``run(steps) -> seconds per step`` of ``gan.fit`` on one ``batch`` repeated.

    ``batch`` is one element of the training data (images, or ``(images,
    labels)``), held in memory so that input cost is left out. The time is
    the span between ``fit``'s first and last batch callbacks (``fit``'s own
    set-up is not timed), divided by the steps ``gan`` counted. Compiled with
    ``steps_per_execution`` K > 1, the steps are rounded up to a multiple of K.
    """
    import tensorflow as tf

    batches = tf.data.Dataset.from_tensors(batch).repeat()
    per_call = max(1, int(gan.steps_per_execution))

    def run(steps):
        span = BatchSpan(clock)
        before = int(gan.step)
        steps = -(-int(steps) // per_call) * per_call
        gan.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
                callbacks=[span])
        return (span.last - span.first) / max(1, int(gan.step) - before)

    return run


# ------------------------------------------------------------------ memory per machine
def cache_dir(environ=None):
    """Where measurements are remembered: ``$TFGAN2_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/tfgan2``, else ``~/.cache/tfgan2``."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_DIR_ENV):
        return os.path.expanduser(environ[CACHE_DIR_ENV])
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tfgan2")


def _cpu_model(cpuinfo):
    fields = {}
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model", "stepping", "vendor_id",
                           "CPU implementer", "CPU part") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break
    except OSError:
        pass
    return fields or {"processor": platform.processor() or platform.machine()}


def machine_description(*, cpuinfo="/proc/cpuinfo", gpus=None, environ=None):
    """What makes timings of this machine comparable: a JSON-able dict of the CPU (model,
    sorted instruction-set flags, logical CPUs this process may use), the GPUs (name and
    compute capability; default the visible ones), Python, TensorFlow, Keras and tfgan2
    versions, and the oneDNN / threading environment variables that are set."""
    import tensorflow as tf

    environ = os.environ if environ is None else environ
    if gpus is None:
        gpus = []
        for device in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(device)
            gpus.append([details.get("device_name", device.name),
                         list(details.get("compute_capability") or ())])
    try:
        logical = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        logical = os.cpu_count()
    from tfgan2 import __version__

    return {
        "cpu": _cpu_model(cpuinfo),
        "cpu_flags": sorted(cpu_features(cpuinfo)),
        "logical_cpus": logical,
        "gpus": [list(g) for g in gpus],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tfgan2": __version__,
        "environment": {k: environ[k] for k in _KERNEL_ENV if k in environ},
    }


_NAMES = ("name", "shared_object_id")


def _canonical(value):
    """``value`` (a Keras config) without layer names, which differ between two builds of
    the same network in one process."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items()) if k not in _NAMES}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _layer_description(layer):
    sub = [_layer_description(s) for s in getattr(layer, "layers", None) or ()]
    inner = getattr(layer, "layer", None)
    try:
        config = layer.get_config()
    except (NotImplementedError, TypeError, ValueError):  # a layer without a config
        config = {}
    if sub:  # a model: its layers describe it (their order is the graph's)
        config = {k: v for k, v in config.items() if k == "trainable"}
    return {"class": f"{type(layer).__module__}.{type(layer).__qualname__}",
            "config": _canonical(config),
            "weights": [list(w.shape) for w in layer.weights] if not sub else [],
            "layers": sub, "inner": _layer_description(inner) if inner is not None else None}


def network_signature(models, extra=None):
    """A hex digest of ``models`` (their layers' classes, configurations without names, and
    weight shapes, in order; nested models and wrappers included) and ``extra`` (anything
    JSON-able that also shapes the timed step, e.g. the batch size and loss)."""
    description = {"models": [_layer_description(m) for m in models],
                   "extra": _canonical(extra)}
    text = json.dumps(description, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class MachineCache:
    """Timings remembered per machine, one JSON file per key in ``directory/choices``.

    ``machine``: the description to key on (default `machine_description()`).
    Reading never fails: a missing, unreadable or corrupt file is a miss, and
    an unwritable directory only loses the memory.
    """

    def __init__(self, directory=None, machine=None):
        self.directory = os.path.join(directory or cache_dir(), "choices")
        self.machine = machine_description() if machine is None else machine

    def path(self, kind, signature, candidates):
        key = json.dumps({"machine": self.machine, "kind": kind, "signature": signature,
                          "candidates": list(candidates)}, sort_keys=True)
        name = f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
        return os.path.join(self.directory, name)

    def get(self, kind, signature, candidates):
        """The stored record (a dict) for the key, or None."""
        path = self.path(kind, signature, candidates)
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("machine") != self.machine or \
                record.get("candidates") != list(candidates):
            return None
        return record

    def put(self, kind, signature, candidates, ms, over_budget=None, budget_seconds=None):
        """Store ``ms`` ({candidate: ms per step}); ``over_budget``: why the measurement
        stopped short (then ``ms`` holds what it timed). Returns the file's path, or
        None if it could not be written."""
        path = self.path(kind, signature, candidates)
        record = {"kind": kind, "signature": signature, "candidates": list(candidates),
                  "ms_per_step": {str(k): float(v) for k, v in ms.items()},
                  "over_budget": over_budget, "budget_seconds": budget_seconds,
                  "measured": datetime.datetime.now().isoformat(timespec="seconds"),
                  "machine": self.machine}
        try:
            os.makedirs(self.directory, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except OSError:
            return None
        return path

    def remembering(self, kind, signature, measure_fn, budget_seconds=None, announce=None):
        """``measure_fn`` (``(build, candidates) -> {candidate: ms}``) behind this cache:
        a remembered measurement is returned as `Timings` (whose ``source`` names the
        file) without building anything; a new one is stored. A remembered
        `OverBudget` is raised again unless ``budget_seconds`` exceeds its budget.
        ``announce(candidates)`` is called before a new measurement starts."""

        def remembered(build, candidates):
            record = self.get(kind, signature, candidates)
            path = self.path(kind, signature, candidates)
            if record is not None:
                when = f"on this machine {record.get('measured', '')}, remembered in {path}"
                if record.get("over_budget") is None:
                    return Timings(record["ms_per_step"], source=f"timed {when}")
                if budget_seconds is None or budget_seconds <= (record.get("budget_seconds")
                                                                or 0):
                    raise OverBudget(f"{record['over_budget']} {when}",
                                     record["ms_per_step"])
            if announce is not None:
                announce(candidates)
            try:
                ms = measure_fn(build, candidates)
            except OverBudget as exc:
                self.put(kind, signature, candidates, exc.ms, over_budget=exc.message,
                         budget_seconds=budget_seconds)
                raise
            self.put(kind, signature, candidates, ms, budget_seconds=budget_seconds)
            return Timings(ms)

        return remembered
