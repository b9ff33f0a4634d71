"""launch.train / launch.sample end to end in subprocesses, and the flag checks."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from launch import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(env, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True)


TINY = ["--train_steps=6", "--log_every=3", "--sample_every=3", "--checkpoint_every=3",
        "--batch_size=8", "--latent_dim=4", "--num_grid=4", "--steps_per_execution=3"]


def test_train_then_sample_end_to_end(tmp_path, subprocess_env):
    workdir = tmp_path / "run"
    proc = run(subprocess_env, "launch.train", f"--workdir={workdir}", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done: step 6" in proc.stdout
    for name in ("flags.cfg", "metrics.jsonl", "losses.png", "checkpoints/checkpoint",
                 "samples/step_0000003.png", "samples/step_0000006.png"):
        assert (workdir / name).exists(), name
    rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6]
    cfg = (workdir / "flags.cfg").read_text()
    assert "--steps_per_execution=3" in cfg and "--loss=non_saturating" in cfg and f"--workdir={workdir}" in cfg

    out = tmp_path / "s.npz"
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--num=10", f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    images = np.load(out)["images"]
    assert images.shape == (10, 8, 8, 1) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0

    png = tmp_path / "s.png"
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--num=9", f"--out={png}",
               "--scale=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Image.open(png).size == (2 * (3 * 9 + 1), 2 * (3 * 9 + 1))

    # The run directory's flags.cfg reproduces the run; on the same workdir it resumes.
    proc = run(subprocess_env, "launch.train", f"--flagfile={workdir}/flags.cfg",
               "--train_steps=9")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from step 6" in proc.stdout and "Done: step 9" in proc.stdout

    # Flags that change the networks cannot resume this run: a clear error, nothing touched.
    before = (workdir / "flags.cfg").read_text()
    proc = run(subprocess_env, "launch.train", f"--flagfile={workdir}/flags.cfg",
               "--train_steps=12", "--latent_dim=5", "--network=dcgan")
    assert proc.returncode != 0
    assert "--network was 'mlp', now 'dcgan'" in proc.stderr
    assert "--latent_dim was 4, now 5" in proc.stderr
    assert (workdir / "flags.cfg").read_text() == before


def test_relative_workdir_resumes_and_samples(tmp_path, subprocess_env):
    # The shipped flagfiles give relative run directories (--workdir=runs/images).
    def launch(*args):
        return subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, env=subprocess_env,
                              timeout=300, capture_output=True, text=True)

    proc = launch("launch.train", "--workdir=runs/a", *TINY, "--sample_every=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = launch("launch.train", "--workdir=runs/a", *TINY, "--sample_every=0",
                  "--train_steps=9")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from step 6" in proc.stdout and "Done: step 9" in proc.stdout
    proc = launch("launch.sample", "--workdir=runs/a", "--num=4", "--out=s.npz")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "runs/a/checkpoints/ckpt-9 to s.npz" in proc.stdout
    assert np.load(tmp_path / "s.npz")["images"].shape == (4, 8, 8, 1)


def test_gaussian_run_writes_histograms_and_vectors(tmp_path, subprocess_env):
    workdir = tmp_path / "g"
    proc = run(subprocess_env, "launch.train", f"--flagfile={ROOT}/gaussian.cfg",
               f"--workdir={workdir}", "--train_steps=20", "--sample_every=10", "--log_every=10")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (workdir / "samples" / "step_0000020.png").exists()
    out = tmp_path / "g.npz"
    proc = run(subprocess_env, "launch.sample", f"--workdir={workdir}", "--num=5", f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert np.load(out)["images"].shape == (5, 200)


@pytest.mark.parametrize("flag,message", [
    ("--loss=vanilla", "flag --loss=vanilla: value should be one of <minimax|non_saturating|"
                       "least_squares|wasserstein|hinge|relativistic_average|"
                       "relativistic_average_least_squares|relativistic_average_hinge|"
                       "relativistic_pairing>"),
    ("--train_steps=0", "flag --train_steps=0"),
    ("--batch_size=-4", "flag --batch_size=-4"),
    ("--resolution=12", "--resolution=12 is invalid: it must be a power of two >= 8"),
    ("--resolution=16", "the digits are 8x8, use --resolution=8"),
    ("--data_source=cifar", "flag --data_source=cifar: value should be one of"),
    ("--network=gaussian", "--network=gaussian does not fit --data_source=digits"),
    ("--train_steps=25", "--train_steps=25 is invalid: it must be a multiple of "
                         "--steps_per_execution=10"),
    ("--data_source=celeba", "--data_source=celeba needs --data_dir"),
    ("--crop=sideways", "--crop=sideways is invalid"),
    ("--label_smoothing=0.25 --loss=hinge", "--label_smoothing=0.25 is invalid with --loss=hinge"),
    ("--data_source=gaussian --network=gaussian --r1_gamma=1 --r1_reference_size=32",
     "--r1_reference_size=32 is invalid with --data_source=gaussian"),
])
def test_invalid_flags_fail_before_any_work(tmp_path, subprocess_env, flag, message):
    workdir = tmp_path / "never"
    proc = run(subprocess_env, "launch.train", f"--workdir={workdir}", *flag.split(),
               timeout=60)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not workdir.exists()


def test_sample_errors_name_the_problem(tmp_path, subprocess_env):
    proc = run(subprocess_env, "launch.sample", f"--workdir={tmp_path}", "--out=x.npz")
    assert proc.returncode != 0 and "No flags file" in proc.stderr
    proc = run(subprocess_env, "launch.sample", f"--workdir={tmp_path}", "--out=x.jpg")
    assert proc.returncode != 0 and "must end in .npz or .png" in proc.stderr


def test_default_flags_equal_digits_cfg():
    from absl import flags

    from launch import config

    defaults = config.define_train_flags(flags.FlagValues())
    defaults(["x"])
    from_file = config.read_flagfile(os.path.join(ROOT, "digits.cfg"))
    for name in config.TRAIN_FLAGS:
        assert from_file[name].value == defaults[name].value, name


def test_flag_choices_agree_with_the_library():
    import tfgan2
    from launch import config

    assert config.LOSSES == tfgan2.losses.names()
    assert config.LABEL_SMOOTHING_LOSSES == tuple(
        n for n in tfgan2.losses.names() if tfgan2.losses.spec(n).label_smoothing)
    assert config.GRADIENT_PENALTY_MODES == tfgan2.regularizers.GRADIENT_PENALTY_MODES


def test_training_option_flags_reach_compile():
    from absl import flags

    from launch import builders, config

    fv = config.define_train_flags(flags.FlagValues())
    fv(["x", "--loss=relativistic_average", "--label_smoothing=0.1", "--weight_clip=0.02",
        "--gradient_penalty=1", "--gp_mode=one_sided", "--steps_per_execution=1"])
    config.validate(fv)
    gan = builders.build_gan(fv)
    assert gan.loss_name == "relativistic_average" and gan.objective.relativistic
    assert gan.objective.label_smoothing == 0.1
    assert gan.weight_clip == 0.02 and gan.gradient_penalty_mode == "one_sided"
    fv(["x", "--weight_clip=0"])
    assert builders.build_gan(fv).weight_clip is None


def test_r1_gamma_scales_with_the_pixel_count():
    from absl import flags

    from launch import builders, config

    fv = config.define_train_flags(flags.FlagValues())
    fv(["x", "--r1_gamma=4", "--steps_per_execution=1"])
    config.validate(fv)
    assert builders.r1_gamma(fv) == 4.0 and builders.build_gan(fv).r1_gamma == 4.0
    fv(["x", "--r1_reference_size=32"])  # the digits are 8x8: 4 * 64 / 1024
    config.validate(fv)
    assert builders.r1_gamma(fv) == 0.25 and builders.build_gan(fv).r1_gamma == 0.25
    fv(["x", "--data_source=image_folder", "--resolution=64", "--channels=3"])
    assert builders.r1_gamma(fv) == 16.0
    fv(["x", "--resolution=32", "--r1_gamma=0"])
    assert builders.r1_gamma(fv) == 0.0


def test_mirrored_on_logical_cpus(tmp_path, subprocess_env):
    workdir = tmp_path / "m"
    proc = run(subprocess_env, "launch.train", f"--workdir={workdir}", *TINY,
               "--strategy=mirrored", "--logical_cpus=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "over 2 replica(s)" in proc.stdout and "Done: step 6" in proc.stdout
    proc = run(subprocess_env, "launch.train", f"--workdir={tmp_path / 'odd'}", *TINY,
               "--strategy=mirrored", "--logical_cpus=2", "--batch_size=7")
    assert proc.returncode != 0
    assert "--batch_size=7 does not split evenly across 2 replicas" in proc.stderr


FOLDER_RUN = ["--data_source=image_folder", "--channels=1", "--network=dcgan", "--resolution=8",
              "--capacity=2", "--latent_dim=4", "--batch_size=8", "--train_steps=6",
              "--log_every=3", "--sample_every=0", "--checkpoint_every=3",
              "--steps_per_execution=3", "--num_grid=4", "--tensorboard=false",
              "--augment=diffaugment:translation"]


def test_run_directory_paths_resolve_from_any_directory(tmp_path, subprocess_env, png_folder):
    def launch(cwd, *args):
        return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=subprocess_env,
                              timeout=300, capture_output=True, text=True)

    project = tmp_path / "project"
    png_folder(project / "imgs")
    proc = launch(project, "launch.train", "--workdir=runs/img", "--data_dir=imgs", *FOLDER_RUN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = (project / "runs" / "img" / "flags.cfg").read_text().splitlines()
    # Recorded absolute: the file means the same from any working directory.
    assert f"--workdir={project / 'runs' / 'img'}" in cfg
    assert f"--data_dir={project / 'imgs'}" in cfg

    # From elsewhere, a moved data folder is named by --data_dir.
    (project / "imgs").rename(project / "moved")
    proc = launch(tmp_path, "launch.evaluate", "--workdir=project/runs/img", "--metrics=swd",
                  "--num_samples=16")
    assert proc.returncode != 0 and "Pass --data_dir=PATH" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = launch(tmp_path, "launch.evaluate", "--workdir=project/runs/img", "--metrics=swd",
                  "--num_samples=16", "--data_dir=project/moved")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((project / "runs" / "img" / "eval.json").read_text())["swd"] > 0
    proc = launch(tmp_path, "launch.sample", "--workdir=project/runs/img", "--mode=augment",
                  "--num=2", "--out=aug.png", "--data_dir=project/moved")
    assert proc.returncode == 0 and (tmp_path / "aug.png").exists(), proc.stderr[-3000:]

    # The run's own flags.cfg resumes the run in its directory, from anywhere, also when it
    # recorded a relative --workdir (as older versions did).
    flagfile = project / "runs" / "img" / "flags.cfg"
    flagfile.write_text(flagfile.read_text().replace(f"--workdir={project / 'runs' / 'img'}",
                                                     "--workdir=runs/img"))
    proc = launch(tmp_path, "launch.train", "--flagfile=project/runs/img/flags.cfg",
                  "--train_steps=9", "--data_dir=project/moved")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from step 6" in proc.stdout and "Done: step 9" in proc.stdout
    assert not (tmp_path / "runs").exists()


def test_a_resume_with_changed_training_flags_is_refused_unless_allowed(tmp_path,
                                                                       subprocess_env):
    workdir = tmp_path / "run"
    small = ["--g_hidden=8", "--d_hidden=8"]
    proc = run(subprocess_env, "launch.train", f"--workdir={workdir}", *TINY, *small)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = (workdir / "flags.cfg").read_text()
    changed = ["--train_steps=9", "--loss=wasserstein", "--d_lr=0.001"]
    proc = run(subprocess_env, "launch.train", f"--flagfile={workdir}/flags.cfg", *changed)
    assert proc.returncode != 0
    assert "--loss was 'non_saturating', now 'wasserstein'" in proc.stderr
    assert "--d_lr was 0.0002, now 0.001" in proc.stderr and "--allow_changed_flags" in proc.stderr
    assert (workdir / "flags.cfg").read_text() == first
    assert callbacks_step(workdir) == 6

    proc = run(subprocess_env, "launch.train", f"--flagfile={workdir}/flags.cfg", *changed,
               "--allow_changed_flags")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("resuming " + str(workdir) + " with changed flags: --loss was 'non_saturating', "
            "now 'wasserstein'; --d_lr was 0.0002, now 0.001; --train_steps was 6, now 9"
            ) in proc.stdout
    assert "Resuming from step 6" in proc.stdout and "Done: step 9" in proc.stdout
    assert "--loss=wasserstein" in (workdir / "flags.cfg").read_text()
    history = [json.loads(l) for l in (workdir / "flags_history.jsonl").read_text().splitlines()]
    assert [row["start_step"] for row in history] == [0, 6]
    assert "--loss=non_saturating" in history[0]["flags"]
    assert "--loss=wasserstein" in history[1]["flags"]
    assert history[1]["changed"] == {"loss": ["non_saturating", "wasserstein"],
                                     "d_lr": [0.0002, 0.001], "train_steps": [6, 9]}
    # The first segment's flags still reproduce it.
    assert [line for line in first.splitlines() if not line.startswith("#")] == history[0]["flags"]


def callbacks_step(workdir):
    import tensorflow as tf

    return int(tf.train.latest_checkpoint(str(workdir / "checkpoints")).rsplit("-", 1)[-1])


def test_which_flag_changes_a_resume_may_make():
    def parsed(*args):
        from absl import flags

        fv = flags.FlagValues()
        config.define_train_flags(fv)
        fv(["launch", *args])
        return fv

    old = parsed("--train_steps=100", "--data_dir=imgs")
    new = parsed("--train_steps=200", f"--data_dir={os.path.abspath('imgs')}", "--seed=3",
                 "--log_every=50", "--batch_size=32")
    assert config.training_flag_changes(old, new) == [("seed", 0, 3), ("batch_size", 64, 32)]
    assert config.free_flag_changes(old, new) == [("train_steps", 100, 200),
                                                  ("log_every", 500, 50)]
    # The learning rates decay over --train_steps: changing it changes the training.
    decay = parsed("--lr_schedule=linear_decay", "--train_steps=100")
    longer = parsed("--lr_schedule=linear_decay", "--train_steps=200")
    assert config.training_flag_changes(decay, longer) == [("train_steps", 100, 200)]
    assert config.free_flag_changes(decay, longer) == []
    # Network flags are left to network_flag_changes (they cannot resume at all).
    assert config.training_flag_changes(old, parsed("--latent_dim=5", "--train_steps=100",
                                                    "--data_dir=imgs")) == []
