"""Conditional and InfoGAN runs through the launchers; registries as the single source of choices."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags

from launch import builders, config, data_sources, network_families

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = ["--train_steps=20", "--log_every=10", "--sample_every=10", "--checkpoint_every=10",
        "--batch_size=16", "--latent_dim=8", "--num_grid=20", "--steps_per_execution=10",
        "--g_hidden=32", "--d_hidden=32"]


def run(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True)


def parsed(*args):
    fv = flags.FlagValues()
    config.define_train_flags(fv)
    fv(["launch", *args])
    return fv


def test_conditional_run_samples_and_evaluates_by_class(tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    proc = run(subprocess_env, "launch.train", f"--workdir={workdir}", *TINY, "--conditional",
               "--conditioning=cbn", "--discriminator_conditioning=acgan")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert "class_loss" in rows[-1] and 0.0 <= rows[-1]["class_accuracy"] <= 1.0

    out = tmp_path / "by_class.npz"
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--per_class=3",
               f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as data:
        assert data["images"].shape == (30, 8, 8, 1)
        np.testing.assert_array_equal(data["labels"], np.repeat(np.arange(10), 3))
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--labels=3,3,7",
               f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as data:
        np.testing.assert_array_equal(data["labels"], [3, 3, 7])
        assert data["images"].shape == (3, 8, 8, 1)
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--labels=3,12",
               f"--out={out}")
    assert proc.returncode != 0 and "[0, 10)" in proc.stderr
    walk = tmp_path / "walk.png"
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--mode=interpolate",
               "--labels=4", "--num=1", "--steps=3", f"--out={walk}")
    assert proc.returncode == 0 and walk.exists(), proc.stderr[-3000:]
    # The README's example, without --num: a few pairs, not the 64 of a grid's default.
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--mode=interpolate",
               "--labels=4", f"--out={walk}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Wrote 4 pairs x 2 paths x 8 steps" in proc.stdout
    from PIL import Image

    width, height = Image.open(walk).size
    assert height < 1000 and width < 1000, (width, height)

    proc = run(subprocess_env, "launch.evaluate", f"--workdir={workdir}",
               "--metrics=cas,intra_fid,confusion", "--num_samples=20", "--classifier_epochs=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((workdir / "eval.json").read_text())
    assert 0.0 <= result["cas"] <= 1.0 and len(result["cas_per_class"]) == 10
    assert result["cas"] == pytest.approx(np.mean(result["cas_per_class"]))
    assert result["intra_fid"] > 0 and len(result["intra_fid_per_class"]) == 10
    assert "class agreement (CAS)" in proc.stdout and "agreement, class 9" in proc.stdout


def test_infogan_run_draws_its_code_traversal(tmp_path, subprocess_env):
    workdir = tmp_path / "info"
    proc = run(subprocess_env, "launch.train", f"--workdir={workdir}", *TINY,
               "--infogan_codes=categorical:3,continuous:1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert np.isfinite(rows[-1]["info_penalty"])
    png = tmp_path / "codes.png"
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--mode=codes",
               "--num=2", "--steps=3", f"--out={png}")
    assert proc.returncode == 0 and png.exists(), proc.stderr[-3000:]
    assert "Wrote 6 rows x 2 latents varying each of 2 codes" in proc.stdout


@pytest.mark.parametrize("args,message", [
    (["--conditional", "--data_source=image_folder", "--data_dir=/tmp", "--network=dcgan"],
     "has no labels"),
    (["--conditional", "--num_classes=7"], "does not match the data"),
    (["--conditional", "--network=gaussian", "--data_source=gaussian"], "has no labels"),
    (["--infogan_codes=categorical:1"], "at least 2 values"),
    (["--infogan_codes=discrete:3"], "bad item"),
    (["--network=infogan"], "28x28"),
    (["--data_source=mnist", "--network=dcgan"], "power of two"),
])
def test_bad_conditioning_flags_are_clear_errors(args, message):
    with pytest.raises(ValueError, match=message):
        config.validate(parsed(*args))


def test_launcher_choices_come_from_the_registries():
    import tfgan2

    fv = parsed()
    assert tuple(fv["data_source"].parser.enum_values) == data_sources.names()
    assert tuple(fv["network"].parser.enum_values) == network_families.names()
    assert config.G_CONDITIONINGS == tfgan2.networks.G_CONDITIONINGS
    assert config.D_CONDITIONINGS == tfgan2.networks.D_CONDITIONINGS
    for name in data_sources.names():
        source = data_sources.get(name)
        assert (name in config.DATA_DIR_MEANING) == bool(source.data_dir)
    with pytest.raises(ValueError, match="valid choices: digits"):
        data_sources.get("cifar")
    # Labels of the conditional digits run come from the source.
    assert builders.label_spec(parsed("--conditional")) == (10, False)
    assert builders.label_spec(parsed()) == (None, False)


def test_a_new_source_is_one_registration():
    source = data_sources.DataSource(
        "tiny_test_source", "four constant images", lambda fv: (8, 8, 1),
        lambda fv, start, labels: None, num_classes=2)
    data_sources.register(source)
    try:
        with pytest.raises(ValueError, match="registered already"):
            data_sources.register(source)
        assert data_sources.get("tiny_test_source").has_labels
    finally:
        del data_sources.SOURCES["tiny_test_source"]


def test_digits_conditional_config_is_the_default_plus_conditioning():
    base = parsed(f"--flagfile={os.path.join(ROOT, 'digits.cfg')}")
    cond = parsed(f"--flagfile={os.path.join(ROOT, 'digits_conditional.cfg')}")
    assert cond.conditional and not base.conditional
    differing = {name for name in config.TRAIN_FLAGS if base[name].value != cond[name].value}
    assert differing == {"workdir", "conditional", "conditioning", "r1_gamma"}, differing
    assert cond.conditioning == "cbn" and cond.discriminator_conditioning == "projection"
