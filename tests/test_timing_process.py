"""launch.timing_process: the launcher's timings run in a child process that is stopped
when the timing budget runs out."""
import json
import subprocess
import time

import pytest
import tensorflow as tf
from absl import flags

from launch import config, timing_process
from tfgan2 import timing


@pytest.fixture
def fv():
    values = config.define_train_flags(flags.FlagValues())
    values(["prog", "--network=mlp", "--data_source=digits", "--g_hidden=8", "--d_hidden=8",
            "--batch_size=8", "--latent_dim=4"])
    return values


def fake_child(result=None, returncode=0, stderr="", timeout=False, calls=None):
    def run(command, **kwargs):
        if calls is not None:
            calls.append((command, kwargs))
        if timeout:
            raise subprocess.TimeoutExpired(command, kwargs["timeout"])
        if result is not None:
            out = next(a for a in command if a.startswith("--timing_out="))
            with open(out.split("=", 1)[1], "w", encoding="utf-8") as f:
                json.dump(result, f)
        return subprocess.CompletedProcess(command, returncode, "", stderr)
    return run


def test_the_child_gets_the_run_flags_the_candidates_and_what_is_left_of_the_budget(fv):
    calls = []
    measure = timing_process.measure_in_child(
        fv, runner=fake_child({"ms_per_step": {"native": 3.0, "forward": 2.0}}, calls=calls))
    budget = timing.Budget(10.0)
    ms = measure("conv_gradients", ("native", "forward"), "mixed_bfloat16", budget)
    assert ms == {"native": 3.0, "forward": 2.0}
    (command, kwargs), = calls
    assert command[1:3] == ["-m", "launch.timing_process"]
    assert "--timing_kind=conv_gradients" in command
    assert "--timing_candidates=native,forward" in command
    assert "--timing_policy=mixed_bfloat16" in command
    seconds = float(next(a for a in command if a.startswith("--timing_seconds="))[17:])
    assert 9.0 < seconds <= 10.0
    assert kwargs["timeout"] == pytest.approx(seconds + timing_process.EXIT_GRACE_SECONDS)
    flagfile = next(a for a in command if a.startswith("--flagfile="))
    assert flagfile  # written to a temporary directory that is gone afterwards


def test_a_stopped_child_is_over_budget_and_a_failed_one_a_timing_error(fv):
    budget = timing.Budget(5.0)
    with pytest.raises(timing.OverBudget, match="did not finish within the 5 s timing budget"):
        timing_process.measure_in_child(fv, runner=fake_child(timeout=True))(
            "precision", ("float32", "mixed_bfloat16"), None, budget)
    with pytest.raises(tf.errors.OpError, match=r"exit code 3\): ValueError: bad"):
        timing_process.measure_in_child(
            fv, runner=fake_child(returncode=3, stderr="Traceback\nValueError: bad\n"))(
            "precision", ("float32", "mixed_bfloat16"), None, budget)
    over = {"ms_per_step": {"float32": 12.5}, "over_budget": "mixed_bfloat16 would not fit"}
    with pytest.raises(timing.OverBudget, match="would not fit") as exc:
        timing_process.measure_in_child(fv, runner=fake_child(over))(
            "precision", ("float32", "mixed_bfloat16"), None, budget)
    assert exc.value.ms == {"float32": 12.5}
    spent = timing.Budget(1.0, clock=lambda: 100.0)
    spent.start = 98.0
    with pytest.raises(timing.OverBudget, match="no time left"):
        timing_process.measure_in_child(fv, runner=fake_child(timeout=True))(
            "precision", ("float32",), None, spent)


def test_a_real_child_is_stopped_when_the_budget_runs_out(fv, subprocess_env, monkeypatch):
    # Importing TensorFlow alone takes the child longer than this budget.
    for key, value in subprocess_env.items():
        monkeypatch.setenv(key, value)
    started = time.perf_counter()
    with pytest.raises(timing.OverBudget, match="did not finish within the 0.5 s"):
        timing_process.measure_in_child(fv)("precision", ("float32", "mixed_bfloat16"), None,
                                            timing.Budget(0.5))
    assert time.perf_counter() - started < 0.5 + timing_process.EXIT_GRACE_SECONDS + 1.5
