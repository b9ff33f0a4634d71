"""The launcher explains itself: --helpshort, shipped configs from anywhere, clean failed
starts, MNIST without data, and launch.sample --export."""
import filecmp
import os
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
import tensorflow as tf

from launch import config, run_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = sorted(name for name in os.listdir(ROOT) if name.endswith(".cfg"))


def run(env, *args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, timeout=timeout,
                          capture_output=True, text=True)


def test_helpshort_lists_the_launchers_own_flags(subprocess_env):
    proc = run(subprocess_env, "launch.train", "--helpshort")
    text = proc.stdout + proc.stderr
    for flag in ("--data_source", "--workdir", "--train_steps", "--loss", "--precision"):
        assert flag in text, flag
    assert "--data_source:" in text and "Global batch size." in text


def test_shipped_configs_are_found_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resolved = config.resolve_flagfiles(["train", "--flagfile=digits.cfg", "--flagfile=x/y.cfg",
                                         "--batch_size=8"])
    assert resolved[0] == "train" and resolved[2:] == ["--flagfile=x/y.cfg", "--batch_size=8"]
    assert os.path.samefile(resolved[1][len("--flagfile="):], os.path.join(ROOT, "digits.cfg"))
    (tmp_path / "digits.cfg").write_text("--batch_size=4\n")  # a local file wins
    assert config.resolve_flagfiles(["--flagfile=digits.cfg"]) == ["--flagfile=digits.cfg"]


def test_installed_package_ships_the_root_configs(tmp_path, subprocess_env):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    prefix = tmp_path / "prefix"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--prefix", str(prefix), str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    installed = prefix / config.CONFIGS_INSTALL_DIR
    assert sorted(os.listdir(installed)) == SHIPPED
    _, mismatch, errors = filecmp.cmpfiles(ROOT, installed, SHIPPED, shallow=False)
    assert not mismatch and not errors  # the root files are the one source
    site = sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)})
    env = dict(subprocess_env, PYTHONPATH=site)  # the installed copy, not the checkout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # gaussian.cfg sets --data_source=gaussian: with --network=mlp the flag check says so,
    # which proves the installed file was read; no run directory is made.
    proc = run(env, "launch.train", "--flagfile=gaussian.cfg", "--network=mlp",
               f"--workdir={elsewhere}/run", cwd=elsewhere)
    assert proc.returncode != 0
    assert "does not fit --data_source=gaussian" in proc.stderr, proc.stderr[-2000:]
    assert not (elsewhere / "run").exists()


def test_failed_start_leaves_the_run_directory_as_it_was(tmp_path):
    new = tmp_path / "a" / "b"
    with pytest.raises(ValueError):
        with run_dir.undone_on_failed_start(str(new), ValueError):
            new.mkdir(parents=True)
            (new / "flags.cfg").write_text("--x=1\n")
            raise ValueError("no data")
    assert not (tmp_path / "a").exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "flags.cfg").write_text("--train_steps=5\n")
    with pytest.raises(ValueError):
        with run_dir.undone_on_failed_start(str(old), ValueError):
            (old / "flags.cfg").write_text("--train_steps=9\n")
            raise ValueError("no data")
    assert (old / "flags.cfg").read_text() == "--train_steps=5\n"
    # Other failures (during training) keep everything.
    with pytest.raises(RuntimeError):
        with run_dir.undone_on_failed_start(str(new), ValueError):
            new.mkdir(parents=True)
            raise RuntimeError("diverged")
    assert new.is_dir()


def test_mnist_without_data_says_how_to_provide_it(tmp_path, subprocess_env):
    empty = tmp_path / "tfds"
    empty.mkdir()
    workdir = tmp_path / "runs" / "mnist"
    proc = run(subprocess_env, "launch.train", "--flagfile=mnist.cfg", f"--data_dir={empty}",
               f"--workdir={workdir}", "--g_hidden=8", "--d_hidden=8", timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "MNIST is not prepared in" in proc.stderr and "tfds build mnist" in proc.stderr
    assert "--data_source=image_folder" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_sample_export_writes_a_servable_saved_model(tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    proc = run(subprocess_env, "launch.train", f"--workdir={workdir}", "--train_steps=3",
               "--log_every=3", "--sample_every=0", "--checkpoint_every=0", "--batch_size=8",
               "--latent_dim=4", "--num_grid=4", "--steps_per_execution=3", "--g_hidden=8",
               "--d_hidden=8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    exported = tmp_path / "served"
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", f"--export={exported}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "serving_default: z -> images" in proc.stdout
    signature = tf.saved_model.load(str(exported)).signatures["serving_default"]
    images = signature(z=tf.zeros([3, 4]))["images"].numpy()
    assert images.shape == (3, 8, 8, 1) and np.all(np.abs(images) <= 1)
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}")
    assert proc.returncode != 0 and "--export=DIR" in proc.stderr


NOISE = ("I0000", "WARNING: All log messages before absl::InitializeLog",
         "Sharding callback duration", "Value in checkpoint could not be found", "cuInit")


def test_launchers_print_only_their_own_lines_unless_asked(tmp_path, subprocess_env):
    env = dict(subprocess_env)
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # what a user's shell has: the launcher quiets TensorFlow
    workdir = tmp_path / "run"
    tiny = ["--train_steps=3", "--log_every=3", "--sample_every=0", "--batch_size=8",
            "--latent_dim=4", "--num_grid=4", "--steps_per_execution=3", "--g_hidden=8",
            "--d_hidden=8"]
    proc = run(env, "launch.train", f"--workdir={workdir}", *tiny)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for noise in NOISE:
        assert noise not in proc.stdout + proc.stderr, noise
    # An uncompiled GAN restores G and D only: no line per optimizer value left unread.
    proc = run(env, "launch.sample", f"--workdir={workdir}", "--num=4", f"--out={tmp_path}/s.npz")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for noise in NOISE:
        assert noise not in proc.stdout + proc.stderr, noise
    # --verbosity brings TensorFlow's and absl's informational lines back.
    proc = run(env, "launch.train", f"--workdir={workdir}", *tiny, "--train_steps=6",
               "--verbosity=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Sharding callback duration" in proc.stderr


def test_a_usage_error_is_the_message_and_a_pointer_to_helpshort(tmp_path, subprocess_env):
    proc = run(subprocess_env, "launch.train", f"--workdir={tmp_path}/run", "--train_steps=25",
               timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "launch.train: --train_steps=25 is invalid: it must be a multiple of "
        "--steps_per_execution=10.",
        "Pass --helpshort to list this launcher's flags (--helpfull: all of them)."]
    proc = run(subprocess_env, "launch.sample", f"--workdir={tmp_path}", "--out=x.jpg",
               timeout=60)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 2
    assert "--out=x.jpg: the file must end in .npz or .png." in proc.stderr


def test_launcher_help_names_every_metric_and_the_new_flags(subprocess_env):
    text = run(subprocess_env, "launch.evaluate", "--helpshort", timeout=60).stdout
    metrics_help = text[text.index("--metrics:"):]
    metrics_help = metrics_help[:metrics_help.index("\n  --", 1)]
    for name in ("fid", "kid", "is", "pr", "tstr", "confusion", "swd", "cas", "intra_fid",
                 "moments"):
        assert name in metrics_help, name
    assert "--data_dir" in text and "--verbosity" in text
    text = run(subprocess_env, "launch.sample", "--helpshort", timeout=60).stdout
    assert "--data_dir" in text and "--verbosity" in text
    text = run(subprocess_env, "launch.train", "--helpshort", timeout=60).stdout
    assert "--allow_changed_flags" in text and "--verbosity" in text
