"""tfgan2.timing's memory per machine (`MachineCache`, `network_signature`) and the launcher's
one path for measured choices (`launch.choices.resolve`): a second run of a recipe on the
same machine reuses the first one's timings, and all timing of a start fits one budget."""
import json
import os

import pytest
from absl import flags

import tfgan2
from launch import choices, config
from tfgan2 import timing

SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
ZEN3 = frozenset({"avx2", "fma"})
MACHINE = {"cpu": {"model name": "Some CPU"}, "tensorflow": "2.21.0"}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def train_flags(*args):
    fv = config.define_train_flags(flags.FlagValues())
    fv(["x", "--precision=auto", "--conv_gradients=auto", *args])
    return fv


def networks(capacity=2):
    return [tfgan2.networks.dcgan_generator(latent_dim=4, resolution=8, channels=1,
                                            capacity=capacity, filter_size=3),
            tfgan2.networks.dcgan_discriminator(resolution=8, channels=1, capacity=capacity,
                                                filter_size=3)]


def test_cache_dir_from_the_environment(tmp_path):
    assert timing.cache_dir({"TFGAN2_CACHE_DIR": str(tmp_path), "XDG_CACHE_HOME": "/x"}) == \
        str(tmp_path)
    assert timing.cache_dir({"XDG_CACHE_HOME": "/x"}) == os.path.join("/x", "tfgan2")
    assert timing.cache_dir({}) == os.path.join(os.path.expanduser("~"), ".cache", "tfgan2")


def test_machine_description_names_the_cpu_and_versions(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon X\n"
                    "flags\t\t: avx2 amx_bf16\n\nprocessor\t: 1\nmodel name\t: Xeon X\n")
    machine = timing.machine_description(cpuinfo=str(info), gpus=[["A100", [8, 0]]],
                                         environ={"ONEDNN_MAX_CPU_ISA": "AVX2", "HOME": "/h"})
    assert machine["cpu"] == {"vendor_id": "GenuineIntel", "model name": "Xeon X"}
    assert machine["cpu_flags"] == ["amx_bf16", "avx2"] and machine["gpus"] == [["A100", [8, 0]]]
    assert machine["environment"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert machine["tfgan2"] == tfgan2.__version__ and machine["keras"]
    json.dumps(machine)


def test_network_signature_ignores_names_and_sees_the_architecture():
    first, second = timing.network_signature(networks()), timing.network_signature(networks())
    assert first == second  # the second build's layer names differ (counters)
    assert timing.network_signature(networks(capacity=4)) != first
    assert timing.network_signature(networks(), extra={"batch_size": 8}) != first


def test_machine_cache_round_trip_and_keys(tmp_path):
    cache = timing.MachineCache(str(tmp_path), machine=MACHINE)
    assert cache.get("precision", "sig", ("float32", "mixed_bfloat16")) is None
    path = cache.put("precision", "sig", ("float32", "mixed_bfloat16"),
                     {"float32": 20.0, "mixed_bfloat16": 10.0}, budget_seconds=10.0)
    assert path.startswith(str(tmp_path / "choices"))
    record = cache.get("precision", "sig", ("float32", "mixed_bfloat16"))
    assert record["ms_per_step"] == {"float32": 20.0, "mixed_bfloat16": 10.0}
    # Another machine, recipe or candidate list is another key.
    other = timing.MachineCache(str(tmp_path), machine={**MACHINE, "tensorflow": "2.22.0"})
    assert other.get("precision", "sig", ("float32", "mixed_bfloat16")) is None
    assert cache.get("precision", "other", ("float32", "mixed_bfloat16")) is None
    assert cache.get("conv_gradients", "sig", ("float32", "mixed_bfloat16")) is None
    # A corrupt file is a miss, an unwritable directory only loses the memory.
    with open(path, "w") as f:
        f.write("{not json")
    assert cache.get("precision", "sig", ("float32", "mixed_bfloat16")) is None
    (tmp_path / "file").write_text("")
    blocked = timing.MachineCache(str(tmp_path / "file"), machine=MACHINE)
    assert blocked.put("precision", "sig", ("a", "b"), {"a": 1.0, "b": 2.0}) is None


def test_remembered_measurements_are_not_timed_again(tmp_path):
    cache = timing.MachineCache(str(tmp_path), machine=MACHINE)
    calls, announced = [], []

    def measure(build, candidates):
        calls.append(candidates)
        return {"native": 10.0, "forward": 5.0}

    remembered = cache.remembering("conv_gradients", "sig", measure, 10.0, announced.append)
    first = remembered(None, ("native", "forward"))
    second = remembered(None, ("native", "forward"))
    assert calls == [("native", "forward")] and announced == [("native", "forward")]
    assert dict(first) == dict(second) == {"native": 10.0, "forward": 5.0}
    assert first.source is None and "remembered in " + str(tmp_path) in second.source
    choice = timing.choose_method(None, features=ZEN3, gpus=[], measure_fn=remembered)
    assert choice.method == "forward" and "remembered in" in choice.reason


def test_a_measurement_over_budget_is_remembered_until_the_budget_grows(tmp_path):
    cache = timing.MachineCache(str(tmp_path), machine=MACHINE)
    calls = []

    def over(build, candidates):
        calls.append(candidates)
        raise timing.OverBudget("float32 took 12.0 s", {"float32": 300.0})

    for _ in range(2):
        with pytest.raises(timing.OverBudget, match="float32 took 12.0 s"):
            cache.remembering("precision", "sig", over, 10.0)(None, ("float32", "mixed_bfloat16"))
    assert len(calls) == 1
    with pytest.raises(timing.OverBudget):
        cache.remembering("precision", "sig", over, 60.0)(None, ("float32", "mixed_bfloat16"))
    assert len(calls) == 2


def fake_gan_build(clock, ms, built, build_seconds=1.0):
    """``build(policy, method)`` whose build and warm-up cost ``build_seconds`` of ``clock``
    and whose steps take ``ms[(policy, method)]``."""
    def build(policy, method):
        built.append((policy, method))
        clock.now += build_seconds

        def run(steps):
            clock.now += ms[(policy, method)] / 1e3 * steps
            return ms[(policy, method)] / 1e3
        return run
    return build


def resolve(tmp_path, workdir, build, clock, budget_seconds=10.0, **kwargs):
    lines = []
    results = choices.resolve(
        train_flags(), str(tmp_path / workdir), build, networks(), (8, 8, 1),
        budget=timing.Budget(budget_seconds, clock),
        cache=timing.MachineCache(str(tmp_path / "cache"), machine=MACHINE), say=lines.append,
        **kwargs)
    return results, lines


@pytest.mark.parametrize("features, kind, candidates", [
    (SAPPHIRE_RAPIDS, "precision", ["float32", "mixed_bfloat16"]),
    (ZEN3, "conv_gradients", ["native", "forward"])])
def test_a_second_run_on_the_same_machine_starts_without_timing(tmp_path, features, kind,
                                                                candidates):
    clock, built = Clock(), []  # the budget's clock: the measurement runs on it
    ms = {("float32", "native"): 30.0, ("mixed_bfloat16", "native"): 10.0,
          ("float32", "forward"): 10.0, ("mixed_bfloat16", "forward"): 5.0}
    build = fake_gan_build(clock, ms, built)
    first, lines = resolve(tmp_path, "a", build, clock, features=features, gpus=[])
    choice, fresh, seconds = first[kind]
    assert choice.value == candidates[1] and fresh and seconds > 0
    assert set(choice.ms_per_step) == set(candidates)
    assert len(lines) == 1 and f"--{kind}=auto: timing {' against '.join(candidates)}" in \
        lines[0] and "10 s timing budget" in lines[0]
    timed_builds = len(built)
    assert timed_builds == 2
    second, lines = resolve(tmp_path, "b", build, clock, features=features, gpus=[])
    again, fresh, seconds = second[kind]
    assert len(built) == timed_builds and lines == [] and seconds == 0.0 and fresh
    assert again.value == choice.value and again.ms_per_step == choice.ms_per_step
    assert "remembered in " + str(tmp_path / "cache") in again.reason


@pytest.mark.parametrize("over_budget, expected", [
    ("float32", "float32"), (None, "mixed_bfloat16")])  # default: bfloat16 for convolutions
def test_all_timing_of_a_start_fits_one_budget(tmp_path, over_budget, expected):
    clock, built = Clock(), []
    ms = {("float32", "native"): 300.0, ("mixed_bfloat16", "native"): 100.0}
    # Building and warming up a candidate costs 7 s: the second would pass the 10 s budget.
    build = fake_gan_build(clock, ms, built, build_seconds=7.0)
    results, lines = resolve(tmp_path, "a", build, clock, features=SAPPHIRE_RAPIDS, gpus=[],
                             over_budget=over_budget)
    choice, _, seconds = results["precision"]
    assert built == [("float32", "native")] and seconds == clock.now == 7.3  # build + 1 step
    assert choice.policy == expected and "would not fit" in choice.reason
    assert choice.ms_per_step == {} and len(lines) == 2
    assert "TFGAN2_TIMING_BUDGET=<seconds> gives them more time" in lines[1]
    # Remembered: the next start does not try again.
    results, lines = resolve(tmp_path, "b", build, clock, features=SAPPHIRE_RAPIDS, gpus=[],
                             over_budget=over_budget)
    assert built == [("float32", "native")] and "timing float32" not in "".join(lines)
    assert results["precision"][0].policy == expected
    assert "remembered in" in results["precision"][0].reason
    # A larger budget measures.
    results, _ = resolve(tmp_path, "c", build, clock, budget_seconds=30.0,
                         features=SAPPHIRE_RAPIDS, gpus=[])
    assert results["precision"][0].policy == "mixed_bfloat16" and len(built) == 3


def test_budget_from_the_environment():
    assert choices.budget_seconds({}) == timing.DEFAULT_BUDGET_SECONDS
    assert choices.budget_seconds({"TFGAN2_TIMING_BUDGET": "30"}) == 30.0
    for bad in ("0", "-1", "ten"):
        with pytest.raises(ValueError, match=f"TFGAN2_TIMING_BUDGET='{bad}' is not a number"):
            choices.budget_seconds({"TFGAN2_TIMING_BUDGET": bad})
