"""--precision=auto: tfgan2.precision's decision rules, tfgan2.timing's measurement and
memory per machine, and the launcher's resolution (explicit, recorded on resume, remembered,
measured within a budget), with injected CPU features, timings and clocks."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

import tfgan2
from launch import choices, config, run_dir
from tfgan2 import precision, timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZEN3 = frozenset({"avx2", "fma", "sse4_2"})  # no bfloat16 instructions
ZEN4 = ZEN3 | {"avx512f", "avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN4 | {"amx_bf16", "amx_tile"}


class Timings:
    """An injected ``measure``: fixed ms per policy, and a record of the calls."""

    def __init__(self, **ms):
        self.ms, self.calls = ms, []

    def __call__(self, build, policies):
        self.calls.append(tuple(policies))
        return {p: self.ms[p] for p in policies}


def never_build(policy):
    raise AssertionError(f"built a {policy} model although nothing is to be measured")


# ------------------------------------------------------------------ decision rules
def test_cpu_without_bf16_is_float32_without_measuring():
    timings = Timings(float32=100.0, mixed_bfloat16=10.0)
    choice = precision.choose_precision(never_build, features=ZEN3, gpus=[], measure=timings)
    assert choice.policy == "float32" and choice.ms_per_step == {}
    assert timings.calls == [] and "no bfloat16 instructions" in choice.reason


@pytest.mark.parametrize("features,f32,bf16,expected", [
    (SAPPHIRE_RAPIDS, 488.0, 212.0, "mixed_bfloat16"),  # 2.3x
    (SAPPHIRE_RAPIDS, 616.2, 359.5, "mixed_bfloat16"),  # 1.71x: images.cfg at 64x64 RGB
    (ZEN4, 349.0, 265.0, "mixed_bfloat16"),             # 1.32x: a 64x64 DCGAN
    (SAPPHIRE_RAPIDS, 16.7, 13.5, "float32"),           # 1.24x: digits.cfg's MLPs
    (ZEN4, 27.4, 25.8, "float32"),                      # the 1.06x of gaussian.cfg
    (SAPPHIRE_RAPIDS, 11.9, 15.2, "float32"),           # slower
])
def test_bf16_cpu_picks_bf16_only_when_measured_much_faster(features, f32, bf16, expected):
    timings = Timings(float32=f32, mixed_bfloat16=bf16)
    choice = precision.choose_precision(never_build, features=features, gpus=[],
                                        measure=timings, environ={})
    assert timings.calls == [("float32", "mixed_bfloat16")]
    assert choice.policy == expected
    assert choice.ms_per_step == {"float32": f32, "mixed_bfloat16": bf16}
    assert f"mixed_bfloat16 {bf16:.1f} ms vs float32 {f32:.1f} ms" in choice.reason
    assert ("amx_bf16" in choice.reason) == ("amx_bf16" in features)
    assert (expected == "mixed_bfloat16") == (bf16 * precision.MIN_BF16_SPEEDUP <= f32)


@pytest.mark.parametrize("gpus", [[], [(8, 0)]])
def test_regression_outputs_stay_float32_on_every_device(gpus):
    timings = Timings(float32=100.0, mixed_bfloat16=10.0)
    choice = precision.choose_precision(never_build, features=SAPPHIRE_RAPIDS, gpus=gpus,
                                        measure=timings, environ={}, regression=True)
    assert choice.policy == "float32" and timings.calls == []
    assert "regression outputs" in choice.reason and choice.ms_per_step == {}


def test_a_measurement_over_its_budget_takes_the_given_policy():
    def over(build, policies):
        raise timing.OverBudget("building float32 took 9.0 s", {"float32": 120.0})

    for fallback in ("float32", "mixed_bfloat16"):
        choice = precision.choose_precision(never_build, features=ZEN4, gpus=[], measure=over,
                                            environ={}, over_budget=fallback)
        assert choice.policy == fallback and choice.ms_per_step == {"float32": 120.0}
        assert f"{fallback} untimed (building float32 took 9.0 s; float32 120.0 ms" \
            in choice.reason


@pytest.mark.parametrize("isa,measured", [
    ("AVX2", False), ("avx512_core", False), ("AVX2_VNNI_2", False),
    ("AVX512_CORE_BF16", True), ("AVX512_CORE_AMX", True), ("ALL", True), ("", True),
])
def test_onednn_isa_limit_below_bf16_is_float32_without_measuring(isa, measured):
    timings = Timings(float32=100.0, mixed_bfloat16=10.0)
    choice = precision.choose_precision(never_build, features=SAPPHIRE_RAPIDS, gpus=[],
                                        measure=timings, environ={"ONEDNN_MAX_CPU_ISA": isa})
    assert bool(timings.calls) == measured
    assert choice.policy == ("mixed_bfloat16" if measured else "float32")
    if not measured:
        assert f"ONEDNN_MAX_CPU_ISA={isa.upper()}" in choice.reason
        assert "not measured" in choice.reason


def test_a_failing_bf16_measurement_falls_back_to_float32():
    def failing(build, policies):
        raise tf.errors.AbortedError(None, None, "could not create a primitive descriptor\n"
                                     "for the convolution")

    choice = precision.choose_precision(never_build, features=ZEN4, gpus=[], measure=failing,
                                        environ={})
    assert choice.policy == "float32" and choice.ms_per_step == {}
    assert "AbortedError: could not create a primitive descriptor" in choice.reason
    assert "for the convolution" not in choice.reason  # first line only


def test_error_summary_keeps_the_type_and_at_most_200_characters_of_the_first_line():
    error = tf.errors.InternalError(None, None, "x" * 300 + "\nsecond line")
    assert precision.error_summary(error) == "InternalError: " + "x" * 200
    assert precision.error_summary(tf.errors.UnknownError(None, None, "")) == \
        "UnknownError: UnknownError"


def test_bf16_cpu_without_a_build_is_float32():
    choice = precision.choose_precision(None, features=SAPPHIRE_RAPIDS, gpus=[])
    assert choice.policy == "float32" and "not measured" in choice.reason


@pytest.mark.parametrize("gpus,expected,text", [
    ([(7, 0)], "mixed_float16", "7.0 >= 7.0"),
    ([(8, 6), (7, 5)], "mixed_float16", "7.5 >= 7.0"),
    ([(6, 1)], "float32", "6.1"),
    ([(8, 0), (6, 0)], "float32", "8.0, 6.0"),
    ([None], "float32", "unknown"),
])
def test_gpus_by_compute_capability_without_measuring(gpus, expected, text):
    timings = Timings(float32=1.0, mixed_bfloat16=0.1)
    choice = precision.choose_precision(never_build, features=SAPPHIRE_RAPIDS, gpus=gpus,
                                        measure=timings)
    assert choice.policy == expected and text in choice.reason and timings.calls == []


def test_check_policy():
    precision.check_policy("mixed_float16", [(7, 0)])
    precision.check_policy("mixed_bfloat16", [])
    with pytest.raises(ValueError, match="mixed_float16 needs a GPU"):
        precision.check_policy("mixed_float16", [])
    with pytest.raises(ValueError, match="Unknown precision policy 'float64'"):
        precision.check_policy("float64", [])


def test_cpu_features_read_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16\n")
    assert precision.cpu_features(str(info)) == {"fpu", "avx2", "amx_bf16"}
    assert precision.cpu_features(str(tmp_path / "missing")) == frozenset()


def test_choice_round_trips_through_json():
    choice = precision.PrecisionChoice("mixed_bfloat16", "why", {"float32": 2.0,
                                                                "mixed_bfloat16": 1.0})
    assert precision.PrecisionChoice.from_json(choice.to_json()) == choice
    assert choice.describe() == "mixed_bfloat16: why"
    assert json.loads(choice.to_json())["policy"] == "mixed_bfloat16"  # the run files' key
    with pytest.raises(ValueError, match="Unknown precision policy 'float64'"):
        precision.PrecisionChoice.from_json('{"policy": "float64", "reason": ""}')


# ------------------------------------------------------------------ measurement
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def fake_build(clock, per_step, log, build_seconds=0.0):
    """``build`` that advances ``clock`` by ``build_seconds``, and whose runs advance it by
    the policy's next per-step seconds."""
    def build(policy):
        assert keras.mixed_precision.global_policy().name == policy
        log.append((policy, "build"))
        clock.now += build_seconds
        times = iter(per_step[policy])

        def run(steps):
            assert keras.mixed_precision.global_policy().name == policy
            seconds = next(times)
            log.append((policy, steps))
            clock.now += seconds * steps
            return seconds
        return run
    return build


def test_measurement_interleaves_warms_up_and_keeps_the_best_round():
    clock, log = FakeClock(), []
    per_step = {"float32": [9.0, 0.0105, 0.012, 0.011, 0.013],  # warm-up steps count too
                "mixed_bfloat16": [9.0, 0.020, 0.018, 0.025, 0.019]}
    ms = precision.measure_step_times(fake_build(clock, per_step, log),
                                      ("float32", "mixed_bfloat16"), steps=4, rounds=3,
                                      budget_seconds=60.0, clock=clock)
    assert ms == pytest.approx({"float32": 10.5, "mixed_bfloat16": 18.0})
    # a warm-up step each, another in turn, then rounds in alternating order
    assert [entry for entry in log if entry[1] != "build"] == [
        ("float32", 1), ("mixed_bfloat16", 1), ("float32", 1), ("mixed_bfloat16", 1),
        ("float32", 4), ("mixed_bfloat16", 4), ("mixed_bfloat16", 4),
        ("float32", 4), ("float32", 4), ("mixed_bfloat16", 4)]
    assert keras.mixed_precision.global_policy().name == "float32"


def test_measurement_counts_building_and_warm_up_against_its_budget():
    per_step = {"float32": [4.0, 1.0, 1.0, 1.0], "mixed_bfloat16": [4.0, 1.0, 0.5, 0.5]}
    # float32 takes 1 + 4 s to build and warm up; mixed_bfloat16 would not fit in 8 - 5 s.
    clock, log = FakeClock(), []
    with pytest.raises(timing.OverBudget) as raised:
        precision.measure_step_times(fake_build(clock, per_step, log, build_seconds=1.0),
                                     ("float32", "mixed_bfloat16"), budget_seconds=8.0,
                                     clock=clock)
    assert "float32 took 5.0 s, so mixed_bfloat16 would not fit in the 3.0 s left of the " \
           "8 s timing budget" in raised.value.message
    assert log == [("float32", "build"), ("float32", 1)] and clock.now == 5.0
    # 20 s: both built (10 s), one step each in turn (2 s), then rounds sized so that both
    # fit in the 8 s left: 2 steps of each (3 s per round).
    clock, log = FakeClock(), []
    ms = precision.measure_step_times(fake_build(clock, per_step, log, build_seconds=1.0),
                                      ("float32", "mixed_bfloat16"), steps=10, rounds=2,
                                      budget_seconds=20.0, clock=clock)
    assert log[6:] == [("float32", 2), ("mixed_bfloat16", 2),
                       ("mixed_bfloat16", 2), ("float32", 2)]
    assert ms == {"float32": 1000.0, "mixed_bfloat16": 500.0} and clock.now <= 20.0
    # No time left after the single steps: no rounds.
    clock, log = FakeClock(), []
    ms = precision.measure_step_times(fake_build(clock, per_step, log),
                                      ("float32", "mixed_bfloat16"), rounds=3,
                                      budget_seconds=10.0, clock=clock)
    assert len(log) == 6 and ms == {"float32": 1000.0, "mixed_bfloat16": 1000.0}
    with pytest.raises(ValueError, match="budget must be > 0"):
        precision.measure_step_times(fake_build(clock, per_step, []), ("float32",),
                                     budget_seconds=0)


def test_a_shared_budget_spans_measurements():
    clock = FakeClock()
    budget = timing.Budget(12.0, clock)
    per_step = {"float32": [3.0, 1.0], "mixed_bfloat16": [3.0, 1.0]}
    timing.measure(fake_build(clock, per_step, [], build_seconds=1.0),
                   ("float32", "mixed_bfloat16"), budget=budget, scope=precision.policy_scope,
                   clock=clock)
    assert budget.spent() == 10.0
    built = []

    def build_method(method):
        built.append(method)

        def run(steps):
            clock.now += 1.5 * steps
            return 1.5
        return run

    # 2 s left: native is built and warmed up (1.5 s), forward would not fit in 0.5 s.
    with pytest.raises(timing.OverBudget, match="0.5 s left of the 12 s timing budget"):
        timing.measure(build_method, ("native", "forward"), budget=budget, clock=clock)
    assert built == ["native"]
    # Nothing left: not even the first candidate is built.
    clock.now += 1.0
    with pytest.raises(timing.OverBudget, match="no time left of the 12 s timing budget"):
        timing.measure(build_method, ("native", "forward"), budget=budget, clock=clock)
    assert built == ["native"]


def test_gan_fit_runner_times_the_span_of_the_batches():
    keras.utils.set_random_seed(0)
    g = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh")])
    d = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
    gan = tfgan2.GAN(g, d, latent_dim=4)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    ticks = iter(range(1000))
    run = precision.gan_fit_runner(gan, np.zeros((4, 6), np.float32),
                                   clock=lambda: float(next(ticks)))
    # clock reads: first batch begin, then every batch end: 3 steps span 3 ticks
    assert run(3) == pytest.approx(1.0)
    assert gan.step == 3


# ------------------------------------------------------------------ the launcher
@pytest.fixture(autouse=True)
def default_auto(monkeypatch):
    """These tests see the launcher's own default (conftest pins float32 for the others)."""
    monkeypatch.delenv(config.PRECISION_ENV, raising=False)


def train_flags(*args):
    fv = config.define_train_flags(flags.FlagValues())
    fv(["x", *args])
    return fv


def fake_run(workdir, policy):
    """A run directory holding flags.cfg (in ``policy``) and a checkpoint."""
    os.makedirs(workdir / "checkpoints")
    config.write_flagfile(train_flags(f"--precision={policy}"), str(workdir / "flags.cfg"))
    tf.train.Checkpoint(v=tf.Variable(1.0)).save(str(workdir / "checkpoints" / "ckpt"))


def test_flag_choices_and_default(monkeypatch):
    assert config.PRECISIONS == ("auto",) + precision.POLICIES
    assert train_flags().precision == "auto"
    monkeypatch.setenv(config.PRECISION_ENV, "float32")
    assert train_flags().precision == "float32"
    assert train_flags("--precision=auto").precision == "auto"
    monkeypatch.setenv(config.PRECISION_ENV, "bf16")
    with pytest.raises(ValueError, match="TFGAN2_PRECISION='bf16' is not a precision: use one "
                                         "of auto, float32, mixed_bfloat16, mixed_float16"):
        train_flags()


def test_launcher_explicit_policies(tmp_path):
    timings = Timings(float32=1.0, mixed_bfloat16=0.1)
    for policy in ("float32", "mixed_bfloat16"):
        choice, fresh = choices.resolve_precision(
            train_flags(f"--precision={policy}"), str(tmp_path), never_build,
            features=SAPPHIRE_RAPIDS, gpus=[], measure=timings)
        assert (choice.policy, fresh, choice.reason) == (policy, True, f"--precision={policy}")
    with pytest.raises(ValueError, match="--precision=mixed_float16: mixed_float16 needs a GPU"):
        choices.resolve_precision(train_flags("--precision=mixed_float16"), str(tmp_path),
                                 never_build, features=SAPPHIRE_RAPIDS, gpus=[])
    choice, _ = choices.resolve_precision(train_flags("--precision=mixed_float16"),
                                         str(tmp_path), never_build, gpus=[(6, 1)])
    assert choice.policy == "mixed_float16"
    assert timings.calls == []


def test_launcher_auto_measures_a_fresh_run_and_keeps_a_resumed_ones(tmp_path):
    fresh_dir = tmp_path / "fresh"
    timings = Timings(float32=20.0, mixed_bfloat16=10.0)
    choice, fresh = choices.resolve_precision(train_flags(), str(fresh_dir), never_build,
                                             features=SAPPHIRE_RAPIDS, gpus=[],
                                             measure=timings)
    assert (choice.policy, fresh, len(timings.calls)) == ("mixed_bfloat16", True, 1)
    # Resumed: the recorded float32 is kept, whatever a measurement would say.
    fake_run(tmp_path / "old", "float32")
    choices.write(choices.PRECISION,
                  precision.PrecisionChoice("float32", "measured then", {"x": 1.0}),
                  str(tmp_path / "old"))
    choice, fresh = choices.resolve_precision(train_flags(), str(tmp_path / "old"), never_build,
                                             features=SAPPHIRE_RAPIDS, gpus=[],
                                             measure=timings)
    assert (choice.policy, fresh, len(timings.calls)) == ("float32", False, 1)
    assert "recorded by the run being resumed" in choice.reason and "measured then" in choice.reason
    assert choice.ms_per_step == {"x": 1.0}
    # ... also when the run's flags.cfg (naming float32) is passed again.
    assert choices.resolve_precision(train_flags("--precision=float32"), str(tmp_path / "old"),
                                    never_build, gpus=[])[0] == choice
    # Runs that must not measure (workers that must agree, reproducible runs).
    choice, _ = choices.resolve_precision(train_flags(), str(fresh_dir), never_build,
                                         features=SAPPHIRE_RAPIDS, gpus=[], measure=timings,
                                         not_measured="workers must agree")
    assert choice.policy == "float32" and "(workers must agree;" in choice.reason
    choice, _ = choices.resolve_precision(train_flags(), str(fresh_dir), never_build,
                                         gpus=[(7, 5)], not_measured="workers must agree")
    assert choice.policy == "mixed_float16"
    assert len(timings.calls) == 1


def test_launcher_switches_of_a_resumed_run(tmp_path):
    fake_run(tmp_path / "bf16", "mixed_bfloat16")
    choice, fresh = choices.resolve_precision(train_flags("--precision=float32"),
                                             str(tmp_path / "bf16"), never_build, gpus=[])
    assert choice.policy == "float32" and "the run was in mixed_bfloat16" in choice.reason
    fake_run(tmp_path / "f16", "mixed_float16")
    with pytest.raises(ValueError, match="holds checkpoints of a run in mixed_float16; "
                                         "--precision=float32 cannot restore them"):
        choices.resolve_precision(train_flags("--precision=float32"), str(tmp_path / "f16"),
                                 never_build, gpus=[(8, 0)])
    with pytest.raises(ValueError, match="holds a run in mixed_float16, which it must keep"):
        choices.resolve_precision(train_flags(), str(tmp_path / "f16"), never_build, gpus=[])


def test_failed_start_removes_its_precision_file(tmp_path):
    (tmp_path / "precision.json").write_text("old")
    with pytest.raises(KeyError):
        with run_dir.undone_on_failed_start(str(tmp_path), KeyError):
            (tmp_path / "precision.json").write_text("new")
            raise KeyError("x")
    assert (tmp_path / "precision.json").read_text() == "old"
    with pytest.raises(KeyError):
        with run_dir.undone_on_failed_start(str(tmp_path / "run"), KeyError):
            os.makedirs(tmp_path / "run")
            (tmp_path / "run" / "precision.json").write_text("new")
            raise KeyError("x")
    assert not (tmp_path / "run").exists()


def test_train_auto_records_the_choice_resume_keeps_it_and_a_new_run_remembers_it(
        tmp_path, subprocess_env):
    subprocess_env.pop(config.PRECISION_ENV, None)
    subprocess_env[timing.CACHE_DIR_ENV] = str(tmp_path / "cache")
    # The timing runs in a child process (launch.timing_process): give it time to start.
    subprocess_env[choices.BUDGET_ENV] = "300"
    tiny = ["--log_every=3", "--sample_every=0", "--checkpoint_every=3", "--batch_size=8",
            "--latent_dim=4", "--num_grid=4", "--steps_per_execution=3", "--g_hidden=8",
            "--d_hidden=8", "--tensorboard=false"]

    def train(workdir, *args):
        return subprocess.run([sys.executable, "-m", "launch.train", f"--workdir={workdir}",
                               *tiny, *args], cwd=ROOT, env=subprocess_env, timeout=300,
                              capture_output=True, text=True)

    workdir = tmp_path / "run"
    proc = train(workdir, "--train_steps=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((workdir / "precision.json").read_text())
    assert f"tfgan2: precision {saved['policy']}: {saved['reason']}" in proc.stdout
    assert f"--precision={saved['policy']}" in (workdir / "flags.cfg").read_text()
    ms = saved["ms_per_step"]
    timed = bool(set(precision.BF16_CPU_FEATURES) & precision.cpu_features())
    if not timed:
        assert saved["policy"] == "float32" and ms == {}
    else:  # measured within the budget (the printed line says how much): bfloat16 only
        # if it was much faster
        assert "--precision=auto: timing float32 against mixed_bfloat16 on this machine" \
            in proc.stdout and "s timing budget" in proc.stdout
        assert set(ms) == {"float32", "mixed_bfloat16"} and min(ms.values()) > 0
        assert (saved["policy"] == "mixed_bfloat16") == (
            ms["mixed_bfloat16"] * precision.MIN_BF16_SPEEDUP <= ms["float32"])
    before = (workdir / "precision.json").read_text()
    proc = train(workdir, "--train_steps=6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from step 3" in proc.stdout and "timing float32" not in proc.stdout
    assert f"tfgan2: precision {saved['policy']}: recorded by the run being resumed" in proc.stdout
    assert (workdir / "precision.json").read_text() == before
    assert f"--precision={saved['policy']}" in (workdir / "flags.cfg").read_text()
    # A new run of the same recipe on this machine: the timings are remembered.
    other = tmp_path / "other"
    proc = train(other, "--train_steps=3", "--seed=5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((other / "precision.json").read_text())
    assert "timing float32" not in proc.stdout
    assert again["policy"] == saved["policy"] and again["ms_per_step"] == ms
    assert ("remembered in " + str(tmp_path / "cache")) in again["reason"] or not timed
