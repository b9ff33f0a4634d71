"""benchmarks/device_check.py --quick: the CPU subset at tiny sizes, its rows and skip notes."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_device_check_quick_prints_the_cpu_rows_and_says_what_it_skipped(subprocess_env,
                                                                          tmp_path):
    out = tmp_path / "device.json"
    # A budget no loaded machine reaches: every --quick row runs (none skipped for time).
    # The DCGAN alone keeps the test short (the residual families train in
    # test_modern_networks; their device-check rows are the same code with other builders).
    done = subprocess.run([sys.executable, "-m", "benchmarks.device_check", "--quick",
                           "--budget_minutes=60", "--timed_families=dcgan", "--timed_steps=10",
                           f"--json_out={out}"], cwd=ROOT,
                          env=subprocess_env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {(r["section"], r["check"]): r["result"] for r in report["rows"]}
    skipped = {s["what"]: s["why"] for s in report["skipped"]}

    # The printed table holds the same rows, one line each.
    lines = done.stdout.splitlines()
    for (section, check), result in rows.items():
        assert any(line.startswith(section) and f" {check} " in line and line.endswith(result)
                   for line in lines), (section, check, result)
    for item in report["skipped"]:
        assert f"  - {item['what']}: {item['why']}" in lines

    assert rows["device", "GPU / compute capability"] == "none: CPU only"
    assert "no GPU" in skipped["compute capability"]
    assert rows["precision", "--precision=auto picks (DCGAN)"].startswith("float32: ")

    # float16 penalties match float32 at every D output scale (loss-scaled input gradients).
    penalties = {check: result for (section, check), result in rows.items()
                 if section == "penalties"}
    assert len(penalties) == 6
    for scale in ("1", "0.001", "1e-05"):
        for name in ("R1", "GP"):
            result = penalties[f"{name}, D logit x {scale}: float32 / float16"]
            assert float(result.split("rel. error ")[1].split()[0]) < 1e-2, result
            assert "NON-FINITE" not in result

    assert rows["replicas", "float16 overflow on replica 1 of 2 logical CPUs"].startswith(
        "PASS: D weights unchanged, loss scale 32768 -> 16384, 16384 on 2 replicas")
    assert "logical CPUs" in skipped["replica check on GPUs"]
    # Several replicas: several steps per execution run (unrolled), XLA refused (GAN.compile).
    assert rows["replicas", "steps_per_execution=10 on 2 logical CPUs"] == (
        "runs 10 steps per execution")
    assert rows["replicas", "XLA (jit_compile=True) on 2 logical CPUs"].startswith("refused: ")

    steps = {check: result for (section, check), result in rows.items()
             if section == "step time"}
    assert sorted(steps) == ["dcgan float32, 2 logical CPUs, fit, 1 step/execution",
                             "dcgan float32, fit, 1 step/execution",
                             "dcgan float32, fit, 10 steps/execution",
                             "dcgan float32, tfgan2.train, 10 steps/execution"]
    for result in steps.values():  # "<wall> ms  <speed>x  CPU <cpu> ms  peak RSS <n> MiB"
        wall, _, speed, _, cpu, _, _, _, peak, unit = result.split()
        assert float(wall) > 0 and float(cpu) > 0 and speed.endswith("x"), result
        assert int(peak) > 0 and unit == "MiB", result
    assert steps["dcgan float32, fit, 1 step/execution"].split()[2] == "1.00x"  # the reference
    assert "float16" in skipped["float16 step times"] and "CPU" in skipped["float16 step times"]
    assert skipped["bfloat16 step times"] == "--quick times float32 only"
    assert "--quick" in skipped["XLA step times"]
    assert "step-time objectives: dcgan " in " ".join(report["notes"])

    # Keras drops XLA under op determinism, so the determinism runs go without it.
    assert rows["determinism", "XLA (jit_compile=True) under op determinism"] == (
        "dropped by Keras, with GAN.compile's warning")
    assert rows["determinism", "dcgan float32, 2 runs x 3 steps, no XLA"].startswith(
        "bit-identical")
    assert set(report["sections"]) == {"device", "precision", "penalties", "replicas",
                                       "step time", "two replicas", "determinism"}
