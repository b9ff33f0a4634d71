"""Choosing the compute precision of a run by hardware and by measurement.

`choose_precision` returns a `PrecisionChoice` (the Keras policy name, the
reason and the milliseconds per training step measured for each candidate):

* GPUs (the ones the run computes on): ``mixed_float16`` when every one has
  compute capability >= 7.0 (float16 tensor cores, Volta and newer), else
  ``float32``. Not measured: float16 is chosen by capability.
* CPU only: ``float32`` without measuring when the CPU lacks bfloat16
  instructions (`BF16_CPU_FEATURES`: AVX-512 BF16 or AMX-BF16); otherwise a
  few training steps are timed under ``float32`` and ``mixed_bfloat16`` and
  bfloat16 is chosen only when its step is at least ``min_speedup`` times
  faster. Without bfloat16 instructions TensorFlow emulates bfloat16 (slower
  than float32), and even with them a network of small layers can run
  slower in bfloat16 (the casts and the float32 batch norm cost more than
  the convolutions save), hence the measurement.
* ``$ONEDNN_MAX_CPU_ISA`` set to an instruction set without bfloat16
  (`ONEDNN_ISAS_WITHOUT_BF16`, e.g. ``AVX2``) hides those instructions from
  oneDNN, whose bfloat16 convolutions then fail: ``float32``, not measured.
  A measurement that raises a TensorFlow error (such as that failing
  convolution) gives ``float32`` too, with the error in the reason.

The measurement (`measure_step_times`) knows nothing of GANs: it calls
``build(policy)`` once per candidate with that global policy set, which
returns ``run(steps) -> seconds per step``; the candidates are warmed up
(tracing, kernel selection) and then timed in interleaved rounds, so a burst
of load from other processes hits every candidate, and each candidate's best
round counts. `gan_fit_runner` makes such a ``run`` from a compiled
`tfgan2.GAN` and one training batch (the span between ``fit``'s batch
callbacks, so ``fit``'s own set-up is not timed).
"""
import dataclasses
import json
import os
import time

import keras

__all__ = ["POLICIES", "BF16_CPU_FEATURES", "ONEDNN_ISAS_WITHOUT_BF16",
           "MIN_FLOAT16_CAPABILITY", "PrecisionChoice",
           "cpu_features", "gpu_compute_capabilities", "check_policy", "choose_precision",
           "error_summary", "measure_step_times", "BatchSpan", "gan_fit_runner",
           "policy_scope"]

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# /proc/cpuinfo flags of CPUs with bfloat16 arithmetic (dot products / tile matmuls).
BF16_CPU_FEATURES = ("amx_bf16", "avx512_bf16")
# Values of oneDNN's $ONEDNN_MAX_CPU_ISA that stop below its bfloat16 kernels
# (AVX512_CORE_BF16 and above, AVX10_*, ALL and DEFAULT keep them).
ONEDNN_ISAS_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                            "AVX512_CORE_VNNI")
# Volta (7.0) introduced the float16 tensor cores.
MIN_FLOAT16_CAPABILITY = (7, 0)


@dataclasses.dataclass(frozen=True)
class PrecisionChoice:
    """A chosen Keras policy: ``policy``, the human-readable ``reason`` and the
    measured ``ms_per_step`` of each timed candidate (empty when nothing was timed)."""

    policy: str
    reason: str
    ms_per_step: dict = dataclasses.field(default_factory=dict)

    def describe(self):
        """One line: ``"<policy>: <reason>"``."""
        return f"{self.policy}: {self.reason}"

    def to_json(self):
        return json.dumps({"policy": self.policy, "reason": self.reason,
                           "ms_per_step": self.ms_per_step}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        data = json.loads(text)
        return cls(data["policy"], data["reason"], dict(data.get("ms_per_step", {})))


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


def _bf16_features(features):
    return [name for name in BF16_CPU_FEATURES if name in features]


def check_policy(policy, gpus):
    """ValueError unless ``policy`` is a known policy that the devices can run.

    ``gpus``: compute capabilities of the run's GPUs (`gpu_compute_capabilities`);
    ``mixed_float16`` needs at least one (a CPU has no float16 arithmetic).
    """
    if policy not in POLICIES:
        raise ValueError(f"Unknown precision policy {policy!r}; expected one of "
                         f"{', '.join(POLICIES)}.")
    if policy == "mixed_float16" and not gpus:
        raise ValueError("mixed_float16 needs a GPU (compute capability >= "
                         f"{MIN_FLOAT16_CAPABILITY[0]}.{MIN_FLOAT16_CAPABILITY[1]}); this run "
                         "computes on the CPU: use float32 or mixed_bfloat16 (CPUs with "
                         "avx512_bf16 or amx_bf16).")


def choose_precision(build, *, features=None, gpus=None, measure=None, min_speedup=1.05,
                     environ=None, **measure_kwargs):
    """The `PrecisionChoice` for the devices (see the module docstring for the rules).

    Args:
      build: ``build(policy) -> run``, ``run(steps) -> seconds per step`` (see
        `measure_step_times`); called only when a measurement is needed. None:
        never measure (a bfloat16 CPU then gets float32).
      features: CPU feature flags (default `cpu_features()`).
      gpus: compute capabilities of the GPUs the run computes on (default
        `gpu_compute_capabilities()`; ``[]`` for a CPU run).
      measure: ``measure(build, policies) -> {policy: ms per step}`` (default
        `measure_step_times` with ``measure_kwargs``).
      min_speedup: bfloat16 must be this many times faster than float32.
      environ: the environment read for ``ONEDNN_MAX_CPU_ISA`` (default
        `os.environ`).
    """
    features = cpu_features() if features is None else frozenset(features)
    gpus = gpu_compute_capabilities() if gpus is None else list(gpus)
    if gpus:
        known = [cc for cc in gpus if cc is not None]
        if len(known) == len(gpus) and min(known) >= MIN_FLOAT16_CAPABILITY:
            low = min(known)
            return PrecisionChoice("mixed_float16", f"GPU compute capability "
                                   f"{low[0]}.{low[1]} >= 7.0 (float16 tensor cores)")
        shown = ", ".join("unknown" if cc is None else f"{cc[0]}.{cc[1]}" for cc in gpus)
        return PrecisionChoice("float32", f"GPU compute capability {shown}: no float16 "
                               f"tensor cores (need >= 7.0)")
    has = _bf16_features(features)
    if not has:
        return PrecisionChoice("float32", "CPU has no bfloat16 instructions (none of "
                               f"{', '.join(BF16_CPU_FEATURES)}); not measured")
    environ = os.environ if environ is None else environ
    isa = environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if isa in ONEDNN_ISAS_WITHOUT_BF16:
        return PrecisionChoice("float32", f"CPU has {'+'.join(has)}, but ONEDNN_MAX_CPU_ISA="
                               f"{isa} keeps oneDNN below its bfloat16 kernels; not measured")
    if build is None:
        return PrecisionChoice("float32", f"CPU has {'+'.join(has)}; bfloat16 not measured")
    if measure is None:
        def measure(build_fn, policies):
            return measure_step_times(build_fn, policies, **measure_kwargs)
    import tensorflow as tf

    try:
        ms = measure(build, ("float32", "mixed_bfloat16"))
    except tf.errors.OpError as error:
        return PrecisionChoice("float32", f"CPU has {'+'.join(has)}, but timing float32 "
                               f"against mixed_bfloat16 raised {error_summary(error)}")
    f32, bf16 = float(ms["float32"]), float(ms["mixed_bfloat16"])
    timing = f"mixed_bfloat16 {bf16:.1f} ms vs float32 {f32:.1f} ms per step"
    ms = {"float32": f32, "mixed_bfloat16": bf16}
    if bf16 * min_speedup <= f32:
        return PrecisionChoice("mixed_bfloat16", f"CPU has {'+'.join(has)}, {timing}", ms)
    return PrecisionChoice("float32", f"CPU has {'+'.join(has)} but bfloat16 is not "
                           f"{min_speedup:g}x faster: {timing}", ms)


class policy_scope:
    """Set the global Keras policy inside the block; the previous one is restored."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.previous = keras.mixed_precision.global_policy().name
        keras.mixed_precision.set_global_policy(self.name)

    def __exit__(self, *exc):
        keras.mixed_precision.set_global_policy(self.previous)


def error_summary(error):
    """``"TypeName: first line of the message"`` (at most 200 characters of it) of a
    TensorFlow error, for the reason of a choice that fell back to the safe default."""
    first_line = (str(getattr(error, "message", error)).strip().splitlines()
                  or [type(error).__name__])[0]
    return f"{type(error).__name__}: {first_line[:200]}"


def measure_step_times(build, policies, *, steps=20, rounds=3, budget_seconds=6.0,
                       clock=time.perf_counter, scope=None):
    """``{policy: best milliseconds per step}`` of ``run = build(policy)`` per policy.

    ``scope(policy)``: the context each build and run happens in (default
    `policy_scope`, the global Keras policy); candidates that are not
    policies (e.g. `tfgan2.conv_gradients` methods) pass their own.

    Each ``run`` is built under its policy and warmed up with a single
    untimed step (tracing). Then every policy runs one timed step in turn:
    the first step after another policy's can be several times slower, which
    this absorbs (these steps count as samples, and their times size the
    rounds). Then up to
    ``rounds`` rounds run ``steps`` steps of every policy in turn, the order
    reversed every other round; ``steps`` is lowered so that the rounds fit
    ``budget_seconds`` by the warm-up estimate, and no further round starts
    once the next would end past the budget (one round always runs).
    Building and the single steps are outside the budget.
    """
    if not policies:
        raise ValueError("measure_step_times needs at least one policy.")
    if steps < 1 or rounds < 1 or budget_seconds <= 0:
        raise ValueError(f"steps and rounds must be >= 1 and budget_seconds > 0, got "
                         f"steps={steps}, rounds={rounds}, budget_seconds={budget_seconds}.")
    scope = policy_scope if scope is None else scope
    runs, best = {}, {}
    for policy in policies:
        with scope(policy):
            runs[policy] = build(policy)
            runs[policy](1)
    for policy in policies:  # after the others ran: a switch's first step can be slow
        with scope(policy):
            best[policy] = _run_seconds(runs[policy], 1)
    estimate = sum(best.values())  # seconds of one step of every policy
    steps = max(1, min(steps, int(budget_seconds / (rounds * max(estimate, 1e-9)))))
    start = clock()
    for r in range(rounds):
        round_start = clock()
        for policy in (policies if r % 2 == 0 else tuple(reversed(policies))):
            with scope(policy):
                best[policy] = min(best[policy], _run_seconds(runs[policy], steps))
        now = clock()
        if now - start + (now - round_start) > budget_seconds:
            break
    return {policy: 1e3 * seconds for policy, seconds in best.items()}


def _run_seconds(run, steps):
    seconds = float(run(steps))
    if not seconds > 0:
        raise ValueError(f"A timed run returned {seconds!r} seconds per step; expected > 0.")
    return seconds


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
