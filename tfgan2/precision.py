"""Choosing the compute precision of a run: by hardware, by the networks and by measurement.

`choose_precision` returns a `PrecisionChoice` (the Keras policy name, the
reason and the milliseconds per training step measured for each candidate).
A choice of precision may change speed, never results beyond run-to-run
noise, so ``auto`` takes a reduced precision only where it pays clearly:

* Networks with unbounded regression outputs (``regression=True``; the
  generator's linear output *is* the sample, as in the gaussian family):
  ``float32`` on every device, not measured. Their quality is the learned
  moments themselves: in bfloat16 gaussian.cfg's standard deviation missed by
  5.0% of sigma on an AMD Zen 4 (float32: 0.0%) for a 1.06x faster step.
* GPUs (the ones the run computes on): ``mixed_float16`` when every one has
  compute capability >= 7.0 (float16 tensor cores, Volta and newer), else
  ``float32``. Not measured: float16 is chosen by capability.
* CPU only: ``float32`` without measuring when the CPU lacks bfloat16
  instructions (`BF16_CPU_FEATURES`: AVX-512 BF16 or AMX-BF16) or
  ``$ONEDNN_MAX_CPU_ISA`` caps oneDNN below them (`ONEDNN_ISAS_WITHOUT_BF16`,
  e.g. ``AVX2``; its bfloat16 convolutions then fail). Otherwise a few
  training steps are timed under ``float32`` and ``mixed_bfloat16``
  (`tfgan2.timing.measure`) and bfloat16 is chosen only when its step is at
  least `MIN_BF16_SPEEDUP` (1.3) times faster: bfloat16 keeps 8 significant
  bits of float32's 24, worth it for the 1.34-3x that the convolutional
  recipes gained on bfloat16 CPUs, not for the 0.97-1.24x of the small dense
  networks (digits, gaussian). A measurement that raises a TensorFlow error
  gives ``float32`` (the error is in the reason); one that runs out of its
  time budget gives ``over_budget`` (default ``float32``).

The timing itself (`tfgan2.timing`) knows nothing of precision: it calls
``build(policy)`` once per candidate with that global policy set
(`policy_scope`), which returns ``run(steps) -> seconds per step``
(`gan_fit_runner`).
"""
import dataclasses
import os

import keras

from tfgan2 import timing
from tfgan2.timing import (BatchSpan, cpu_features, error_summary, gan_fit_runner,  # noqa: F401
                           gpu_compute_capabilities)

__all__ = ["POLICIES", "BF16_CPU_FEATURES", "ONEDNN_ISAS_WITHOUT_BF16",
           "MIN_FLOAT16_CAPABILITY", "MIN_BF16_SPEEDUP", "PrecisionChoice",
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


# bfloat16 must make the training step this many times faster to be chosen.
MIN_BF16_SPEEDUP = 1.3


@dataclasses.dataclass(frozen=True)
class PrecisionChoice(timing.Choice):
    """A chosen Keras policy: ``policy``, the human-readable ``reason`` and the
    measured ``ms_per_step`` of each timed candidate (empty when nothing was timed)."""

    KEY = "policy"

    @staticmethod
    def check(value):
        if value not in POLICIES:
            raise ValueError(f"Unknown precision policy {value!r}; expected one of "
                             f"{', '.join(POLICIES)}.")
        return value

    @property
    def policy(self):
        return self.value


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


def choose_precision(build, *, features=None, gpus=None, measure=None,
                     min_speedup=MIN_BF16_SPEEDUP, environ=None, regression=False,
                     over_budget="float32", **measure_kwargs):
    """The `PrecisionChoice` for the devices and networks (see the module docstring).

    Args:
      build: ``build(policy) -> run``, ``run(steps) -> seconds per step`` (see
        `tfgan2.timing.measure`); called only when a measurement is needed.
        None: never measure (a bfloat16 CPU then gets float32).
      features: CPU feature flags (default `cpu_features()`).
      gpus: compute capabilities of the GPUs the run computes on (default
        `gpu_compute_capabilities()`; ``[]`` for a CPU run).
      measure: ``measure(build, policies) -> {policy: ms per step}`` (default
        `measure_step_times` with ``measure_kwargs``, e.g. ``budget``).
      min_speedup: bfloat16 must be this many times faster than float32.
      environ: the environment read for ``ONEDNN_MAX_CPU_ISA`` (default
        `os.environ`).
      regression: the generator's outputs are unbounded values whose
        distribution is learned (e.g. a linear output layer): float32.
      over_budget: the policy when the measurement runs out of its budget.
    """
    if regression:
        return PrecisionChoice("float32", "unbounded regression outputs (the generator's "
                               "linear output is the sample): reduced precision moved the "
                               "learned moments; not measured")
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
    check_policy(over_budget, gpus)
    return timing.choose_faster(
        build, "float32", "mixed_bfloat16", choice=PrecisionChoice, min_speedup=min_speedup,
        measure_fn=measure, prefix=f"CPU has {'+'.join(has)}, ",
        over_budget=(over_budget, f"{over_budget} untimed"))


class policy_scope:
    """Set the global Keras policy inside the block; the previous one is restored."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.previous = keras.mixed_precision.global_policy().name
        keras.mixed_precision.set_global_policy(self.name)

    def __exit__(self, *exc):
        keras.mixed_precision.set_global_policy(self.previous)


def measure_step_times(build, policies, *, budget=None, budget_seconds=None, clock=None,
                       scope=None, **kwargs):
    """`tfgan2.timing.measure` of ``policies``, each built and run under its global Keras
    policy (`policy_scope`) unless another ``scope`` is given (``budget_seconds``: the
    seconds of a new budget, as ``budget``)."""
    if budget is None:
        budget = budget_seconds
    if clock is not None:
        kwargs["clock"] = clock
    return timing.measure(build, policies, budget=budget, scope=scope or policy_scope,
                          **kwargs)
