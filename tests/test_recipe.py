"""images.cfg (the recipe for any image folder) and the augmentation/packing flags, end to end."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--resolution=8", "--capacity=2", "--filter_size=3", "--latent_dim=4", "--batch_size=8",
        "--train_steps=6", "--log_every=3", "--sample_every=0", "--checkpoint_every=3",
        "--num_grid=4", "--steps_per_execution=3", "--tensorboard=false"]


def run(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True)


def image_folder(path, n=16):
    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), "RGB").save(
            path / f"{i}.png")
    return path


def test_recipe_trains_with_ada_packing_and_minibatch_std(tmp_path, subprocess_env):
    data = image_folder(tmp_path / "images")
    workdir = tmp_path / "run"
    proc = run(subprocess_env, "launch.train", f"--flagfile={ROOT}/images.cfg",
               f"--data_dir={data}", f"--workdir={workdir}", *TINY, "--augment=ada",
               "--ada_speed=64", "--pack=2", "--minibatch_std=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # images.cfg gives R1 gamma 4 at 32x32: a quarter as many pixels take a sixteenth.
    assert "R1 gamma 0.25 (--r1_gamma=4 at 32x32, scaled to 8x8)" in proc.stdout
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6]
    for row in rows:
        assert 0.0 <= row["ada_p"] <= 1.0 and -1.0 <= row["ada_r_t"] <= 1.0
    # ADA moves p by sign(r_t - 0.6) * 32 / 64 every 4 steps from 0: 0 or 0.5 after step 4.
    assert rows[-1]["ada_p"] in (0.0, 0.5)
    cfg = (workdir / "flags.cfg").read_text()
    assert "--augment=ada" in cfg and "--pack=2" in cfg and "--ema_decay=0.999" in cfg
    assert "--minibatch_std=2" in cfg
    png = tmp_path / "augmented.png"
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--mode=augment",
               "--num=3", "--scale=1", f"--out={png}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Image.open(png).size == (8 * 9 + 1, 3 * 9 + 1)


@pytest.mark.parametrize("flag,message", [
    ("--augment=blur", "--augment=blur is invalid"),
    ("--pack=3", "--batch_size=8 is invalid with --pack=3"),
    ("--minibatch_std=1", "--minibatch_std=1 is invalid"),
    ("--network=mlp --minibatch_std=4", "--minibatch_std=4 needs --network=dcgan"),
])
def test_invalid_recipe_flags(tmp_path, subprocess_env, flag, message):
    data = image_folder(tmp_path / "images")
    proc = run(subprocess_env, "launch.train", f"--flagfile={ROOT}/images.cfg",
               f"--data_dir={data}", f"--workdir={tmp_path / 'never'}", *TINY, *flag.split(),
               timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (tmp_path / "never").exists()


def test_r3gan_recipe_trains_and_resumes_on_its_burn_in(tmp_path, subprocess_env):
    data = image_folder(tmp_path / "images")
    workdir = tmp_path / "r3"
    tiny = ["--resolution=8", "--g_hidden=16", "--d_hidden=16", "--latent_dim=4",
            "--batch_size=8", "--log_every=3", "--sample_every=0", "--checkpoint_every=3",
            "--num_grid=4", "--steps_per_execution=3", "--tensorboard=false",
            "--burn_in_steps=6"]
    proc = run(subprocess_env, "launch.train", f"--flagfile={ROOT}/r3gan.cfg",
               f"--data_dir={data}", f"--workdir={workdir}", *tiny, "--train_steps=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # gamma 0.05 at 32x32 is 0.05 / 16 at 8x8, for R1 and R2 alike.
    assert "R1 gamma 0.003125 (--r1_gamma=0.05 at 32x32, scaled to 8x8)" in proc.stdout
    assert "R2 gamma 0.003125 (--r2_gamma=0.05 at 32x32, scaled to 8x8)" in proc.stdout
    proc = run(subprocess_env, "launch.train", f"--flagfile={workdir}/flags.cfg",
               "--train_steps=6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    cfg = (workdir / "flags.cfg").read_text()
    assert "--loss=relativistic_pairing" in cfg and "--lr_schedule=burn_in" in cfg
