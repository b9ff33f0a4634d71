"""``--conv_gradients``: the choice (`tfgan2.timing.choose_method`: untimed rules, then a
measurement) and the launcher's resolution of it (`launch.choices`)."""
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from absl import flags

import tfgan2
from launch import choices, config
from tfgan2 import conv_gradients, timing
from tests.conftest import ROOT

ZEN3 = frozenset({"avx2", "fma", "sse4_2"})  # AVX2 only: forward gradients can win
ZEN4 = ZEN3 | {"avx512f", "avx512_bf16"}
ZEN3_CPU = dict(features=ZEN3, gpus=[])


class Timings:
    """A fake ``measure``: fixed ms per step per method, calls logged."""

    def __init__(self, **ms):
        self.ms, self.calls = ms, []

    def __call__(self, build, methods):
        self.calls.append(tuple(methods))
        return dict(self.ms)


def never_build(method):
    raise AssertionError("a fake measurement builds nothing")


def train_flags(*args):
    fv = config.define_train_flags(flags.FlagValues())
    fv(["x", *args])
    return fv


def conv_networks():
    return [tfgan2.networks.dcgan_discriminator(resolution=8, channels=1, capacity=2,
                                                filter_size=3)]


@pytest.fixture(autouse=True)
def default_auto(monkeypatch):
    monkeypatch.delenv(config.CONV_GRADIENTS_ENV, raising=False)


@pytest.mark.parametrize("native, forward, expected", [
    (100.0, 80.0, "forward"), (100.0, 96.0, "native"), (100.0, 120.0, "native")])
def test_forward_only_when_measured_five_percent_faster(native, forward, expected):
    timings = Timings(native=native, forward=forward)
    choice = timing.choose_method(never_build, features=ZEN3, gpus=[], measure_fn=timings)
    assert choice.method == expected and timings.calls == [("native", "forward")]
    assert choice.ms_per_step == {"native": native, "forward": forward}
    assert f"forward {forward:.1f} ms vs native {native:.1f} ms" in choice.reason
    assert timing.MethodChoice.from_json(choice.to_json()) == choice
    assert json.loads(choice.to_json())["method"] == choice.method  # the run files' key


@pytest.mark.parametrize("features, gpus, why", [
    (ZEN3, [(8, 0)], "1 GPU(s)"), (ZEN3, [(7, 0), (6, 1)], "2 GPU(s)"),
    (ZEN4, [], "CPU has avx512f")])
def test_gpus_and_avx512_cpus_keep_native_without_timing(features, gpus, why):
    timings = Timings(native=100.0, forward=10.0)
    choice = timing.choose_method(never_build, features=features, gpus=gpus,
                                  measure_fn=timings)
    assert choice.method == "native" and timings.calls == [] and choice.ms_per_step == {}
    assert why in choice.reason and "not timed" in choice.reason


def test_a_failing_measurement_keeps_native():
    def failing(build, methods):
        raise tf.errors.InternalError(None, None, "no primitive\nmore")

    choice = timing.choose_method(never_build, features=ZEN3, gpus=[], measure_fn=failing)
    assert choice.method == "native" and "InternalError: no primitive" in choice.reason


def test_measurement_builds_each_method_and_times_it():
    built = []

    def build(method):
        built.append((method, conv_gradients.default_method()))
        with conv_gradients.method_scope(method):
            layer = tfgan2.layers.Conv2D(2, 3, padding="same")
        built.append(layer.gradient)
        return lambda steps: {"native": 0.010, "forward": 0.005}[method]

    choice = timing.choose_method(build, features=ZEN3, gpus=[], steps=2, rounds=1, budget=5.0)
    assert choice.method == "forward" and choice.ms_per_step == {"native": 10.0, "forward": 5.0}
    assert built[:4] == [("native", "native"), "native", ("forward", "native"), "forward"]


def test_uses_forward_gradients_looks_through_wrappers():
    assert tfgan2.layers.uses_forward_gradients(conv_networks())
    spectral = tfgan2.networks.dcgan_discriminator(resolution=8, channels=1, capacity=2,
                                                   filter_size=3, normalization="spectral")
    assert tfgan2.layers.uses_forward_gradients([spectral])
    mlp = tfgan2.networks.mlp_discriminator(image_shape=(8, 8, 1))
    assert not tfgan2.layers.uses_forward_gradients([mlp])


def fake_run(workdir, *args):
    """A run directory holding flags.cfg (of ``args``) and a checkpoint."""
    os.makedirs(workdir / "checkpoints")
    config.write_flagfile(train_flags(*args), str(workdir / "flags.cfg"))
    tf.train.Checkpoint(v=tf.Variable(1.0)).save(str(workdir / "checkpoints" / "ckpt"))


def test_flag_default_and_environment(monkeypatch):
    assert config.CONV_GRADIENTS == ("auto",) + conv_gradients.METHODS
    assert train_flags().conv_gradients == "auto"
    monkeypatch.setenv(config.CONV_GRADIENTS_ENV, "forward")
    assert train_flags().conv_gradients == "forward"
    monkeypatch.setenv(config.CONV_GRADIENTS_ENV, "fast")
    with pytest.raises(ValueError, match="TFGAN2_CONV_GRADIENTS='fast' is not a convolution "
                                         "gradient method: use one of auto, native, forward"):
        train_flags()


def test_launcher_resolution(tmp_path):
    timings = Timings(native=100.0, forward=50.0)
    nets = conv_networks()
    for method in ("native", "forward"):
        choice, fresh = choices.resolve_conv_gradients(
            train_flags(f"--conv_gradients={method}"), str(tmp_path / "new"), never_build, nets,
            measure=timings, **ZEN3_CPU)
        assert (choice.method, fresh) == (method, True)
    assert timings.calls == []
    choice, fresh = choices.resolve_conv_gradients(
        train_flags(), str(tmp_path / "new"), never_build, nets, measure=timings, **ZEN3_CPU)
    assert (choice.method, fresh, len(timings.calls)) == ("forward", True, 1)
    mlp = [tfgan2.networks.mlp_discriminator(image_shape=(8, 8, 1))]
    choice, _ = choices.resolve_conv_gradients(
        train_flags(), str(tmp_path / "new"), never_build, mlp, measure=timings, **ZEN3_CPU)
    assert choice.method == "native" and "no convolutions" in choice.reason
    choice, _ = choices.resolve_conv_gradients(
        train_flags(), str(tmp_path / "new"), never_build, nets, measure=timings,
        not_measured="workers agree", **ZEN3_CPU)
    assert choice.method == "native" and "workers agree; pass --conv_gradients" in choice.reason
    assert len(timings.calls) == 1
    # A resumed run keeps its recorded method, with the reason saved beside it.
    fake_run(tmp_path / "old", "--conv_gradients=native")
    choices.write(choices.CONV_GRADIENTS,
                  timing.MethodChoice("native", "measured then", {"x": 1.0}),
                  str(tmp_path / "old"))
    choice, fresh = choices.resolve_conv_gradients(
        train_flags(), str(tmp_path / "old"), never_build, nets, measure=timings, **ZEN3_CPU)
    assert (choice.method, fresh, len(timings.calls)) == ("native", False, 1)
    assert "recorded by the run being resumed" in choice.reason and "measured then" in choice.reason
    # A run from before the flag used TensorFlow's gradients.
    fake_run(tmp_path / "older")
    text = (tmp_path / "older" / "flags.cfg").read_text()
    (tmp_path / "older" / "flags.cfg").write_text(
        "".join(l for l in text.splitlines(True) if not l.startswith("--conv_gradients=")))
    choice, fresh = choices.resolve_conv_gradients(
        train_flags(), str(tmp_path / "older"), never_build, nets, measure=timings, **ZEN3_CPU)
    assert (choice.method, fresh) == ("native", False) and "predates" in choice.reason
    # On GPUs auto keeps native without timing the forward method.
    choice, fresh = choices.resolve_conv_gradients(
        train_flags(), str(tmp_path / "gpu"), never_build, nets, measure=timings,
        features=ZEN3, gpus=[(8, 6)])
    assert (choice.method, fresh, len(timings.calls)) == ("native", True, 1)
    assert "GPU" in choice.reason


def test_train_records_the_method_and_resume_keeps_it(tmp_path, subprocess_env):
    subprocess_env.pop(config.CONV_GRADIENTS_ENV, None)
    subprocess_env[timing.CACHE_DIR_ENV] = str(tmp_path / "cache")
    # The timing runs in a child process (launch.timing_process): give it time to start.
    subprocess_env[choices.BUDGET_ENV] = "300"
    workdir = tmp_path / "run"
    tiny = [f"--workdir={workdir}", "--network=dcgan", "--data_source=digits",
            "--resolution=8", "--capacity=2", "--filter_size=3", "--log_every=2",
            "--sample_every=0", "--checkpoint_every=2", "--batch_size=8", "--latent_dim=4",
            "--num_grid=4", "--steps_per_execution=2", "--tensorboard=false"]

    def train(*args):
        return subprocess.run([sys.executable, "-m", "launch.train", *tiny, *args], cwd=ROOT,
                              env=subprocess_env, timeout=300, capture_output=True, text=True)

    proc = train("--train_steps=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((workdir / "conv_gradients.json").read_text())
    assert f"tfgan2: convolution gradients {saved['method']}: {saved['reason']}" in proc.stdout
    if timing.AVX512_CPU_FEATURE in timing.cpu_features():  # native by rule, nothing timed
        assert saved["method"] == "native" and saved["ms_per_step"] == {}
        assert "timing native against forward" not in proc.stdout
    else:
        assert "--conv_gradients=auto: timing native against forward" in proc.stdout
        assert set(saved["ms_per_step"]) == {"native", "forward"}
    assert f"--conv_gradients={saved['method']}\n" in (workdir / "flags.cfg").read_text()
    before = (workdir / "conv_gradients.json").read_text()
    proc = train("--train_steps=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from step 2" in proc.stdout and "timing native" not in proc.stdout
    assert f"convolution gradients {saved['method']}: recorded by the run being resumed" \
        in proc.stdout
    assert (workdir / "conv_gradients.json").read_text() == before
