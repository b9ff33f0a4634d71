"""Several machines: NCCL all-reduce on GPUs, one share of the image files per worker,
GPU memory growth in the launchers (GPUs faked; no GPU needed)."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from PIL import Image

import pipelines
import tfgan2
from launch import builders, cli, config

NCCL = tf.distribute.experimental.CommunicationImplementation.NCCL
RING = tf.distribute.experimental.CommunicationImplementation.RING
FAKE_GPUS = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU"),
             tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU")]


def test_all_reduce_is_nccl_with_gpus_and_ring_without():
    options = tfgan2.distribute.communication_options(collective_timeout=30, gpus=FAKE_GPUS)
    assert options.implementation == NCCL and options.timeout_seconds == 30.0
    options = tfgan2.distribute.communication_options(gpus=[])
    assert options.implementation == RING and options.timeout_seconds is None


@pytest.mark.parametrize("gpus, expected", [(FAKE_GPUS, NCCL), ([], RING)])
def test_multi_worker_strategy_gets_the_options_of_its_machine(monkeypatch, gpus, expected):
    seen = {}
    real_list = tf.config.list_physical_devices

    def listed(kind=None):
        return list(gpus) if kind == "GPU" else real_list(kind)

    def strategy(communication_options=None):
        seen["options"] = communication_options
        return "strategy"

    monkeypatch.setattr(tf.config, "list_physical_devices", listed)
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", strategy)
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"worker": ["localhost:1", "localhost:2"]},
         "task": {"type": "worker", "index": 0}}))
    assert tfgan2.distribute.make_strategy("multi_worker", collective_timeout=5) == "strategy"
    assert seen["options"].implementation == expected
    assert seen["options"].timeout_seconds == 5.0


def test_launchers_turn_on_gpu_memory_growth_before_main(monkeypatch):
    grown = []
    real_list = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: list(FAKE_GPUS) if kind == "GPU" else real_list(kind))
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth",
                        lambda device, enable: grown.append((device.name, enable)))
    at_main = []

    def main(argv):
        at_main.append(list(grown))

    with pytest.raises(SystemExit) as exit_info:
        cli.run(main, "launch.test", argv=["launch.test"])
    assert exit_info.value.code in (0, None)
    assert at_main == [[(gpu.name, True) for gpu in FAKE_GPUS]]


def test_growth_that_comes_too_late_is_skipped(monkeypatch):
    real_list = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: list(FAKE_GPUS) if kind == "GPU" else real_list(kind))

    def initialized(device, enable):
        raise RuntimeError("Physical devices cannot be modified after being initialized")

    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", initialized)
    assert cli.enable_gpu_memory_growth() == []


def test_sharded_input_fn_gives_each_pipeline_its_share_and_resume_point():
    calls = []

    def make(**kwargs):
        calls.append(kwargs)
        return kwargs

    input_fn = pipelines.sharded_input_fn(make, 64, steps_done=10)
    # Two workers with two replicas each: per-replica batch 16, two batches a step each.
    for index in range(2):
        input_fn(tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index,
                                            num_replicas_in_sync=4))
    assert calls == [dict(batch_size=16, shard=(2, 0), skip_batches=20),
                     dict(batch_size=16, shard=(2, 1), skip_batches=20)]
    with pytest.raises(ValueError, match="steps_done"):
        pipelines.sharded_input_fn(make, 64, steps_done=-1)


class _TwoWorkers:
    """What `build_dataset` uses of a two-worker strategy: the worker datasets, built here."""

    def distribute_datasets_from_function(self, input_fn):
        return [input_fn(tf.distribute.InputContext(num_input_pipelines=2,
                                                    input_pipeline_id=index,
                                                    num_replicas_in_sync=2))
                for index in range(2)]


def _gray_folder(path, count):
    path.mkdir()
    for i in range(count):  # image i is uniformly gray level 10 * i: its identity
        Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(path / f"{i:02d}.png")


@pytest.mark.parametrize("start_step", [0, 3])
def test_each_worker_decodes_its_own_share_of_the_files(tmp_path, monkeypatch, start_step):
    _gray_folder(tmp_path / "images", 16)
    fv = config.define_train_flags(flags.FlagValues())
    fv(["x", "--data_source=image_folder", f"--data_dir={tmp_path / 'images'}",
        "--resolution=8", "--batch_size=8", "--crop=none", "--network=mlp"])
    monkeypatch.setattr(builders, "_multi_worker", lambda strategy: True)
    decoded = []
    import pipelines.decode_files as decode_files

    real_read = tf.io.read_file

    def counted_read(path):  # every file the pipeline decodes is read first
        return tf.numpy_function(lambda p: (decoded.append(p.decode()), real_read(p).numpy())[1],
                                 [path], tf.string, stateful=True)

    monkeypatch.setattr(decode_files.tf.io, "read_file", counted_read)
    workers = builders.build_dataset(fv, start_step, strategy=_TwoWorkers())
    levels = []
    for dataset in workers:
        decoded.clear()
        batches = list(dataset.take(4).as_numpy_iterator())
        assert all(batch.shape == (4, 8, 8, 3) for batch in batches)  # per-replica batches
        names = {name.rsplit("/", 1)[1] for name in decoded}
        levels.append({round((float(batch[k].mean()) + 1) * 127.5 / 10)
                       for batch in batches for k in range(4)})
        # Only this worker's eight files are ever read (each pass reads all eight).
        assert len(names) == 8, names
        assert levels[-1] == {int(name[:2]) for name in names}
    assert levels[0].isdisjoint(levels[1]) and levels[0] | levels[1] == set(range(16))


def test_one_machine_and_in_memory_sources_keep_the_global_dataset(monkeypatch):
    fv = config.define_train_flags(flags.FlagValues())
    fv(["x"])  # digits: held in memory, Keras splits its global batches
    monkeypatch.setattr(builders, "_multi_worker", lambda strategy: True)
    dataset = builders.build_dataset(fv, 0, strategy=_TwoWorkers())
    assert isinstance(dataset, tf.data.Dataset)
    assert dataset.element_spec.shape[0] == fv.batch_size


def test_batches_of_a_distributed_dataset_are_checked_per_replica(mirrored):
    def per_replica(batch):
        def input_fn(context):
            return tf.data.Dataset.from_tensors(tf.zeros([batch, 4, 4, 1])).repeat()
        return mirrored.distribute_datasets_from_function(input_fn)

    assert tfgan2.batches.replica_element_spec(per_replica(3)).shape == (3, 4, 4, 1)
    tfgan2.batches.check_data(per_replica(3), replicas=2, sample_shape=(4, 4, 1))
    with pytest.raises(ValueError, match="not a multiple of pack=2"):
        tfgan2.batches.check_data(per_replica(3), replicas=2, pack=2)
    with pytest.raises(ValueError, match=r"samples have shape \(4, 4, 1\)"):
        tfgan2.batches.check_data(per_replica(3), replicas=2, sample_shape=(8, 8, 1))


def test_two_workers_each_decode_only_their_share_of_the_files(tmp_path, subprocess_env):
    from tests.localhost_cluster import ROOT, cluster_envs, read, start, wait

    _gray_folder(tmp_path / "images", 16)
    script = os.path.join(ROOT, "tests", "shard_worker_run.py")
    args = ["--strategy=multi_worker", f"--workdir={tmp_path / 'run'}",
            "--data_source=image_folder", f"--data_dir={tmp_path / 'images'}",
            "--resolution=8", "--crop=none", "--network=mlp", "--batch_size=8",
            "--train_steps=2", "--log_every=2", "--steps_per_execution=1", "--sample_every=0",
            "--checkpoint_every=1000", "--tensorboard=false", "--g_hidden=8", "--d_hidden=8"]
    procs = [start([script, str(tmp_path / f"counts{i}.json"), *args], env,
                   tmp_path / f"log{i}") for i, env in enumerate(cluster_envs(subprocess_env))]
    codes = wait(procs)
    assert codes == [0, 0], "\n".join(read(tmp_path / f"log{i}")[-3000:] for i in range(2))
    assert (tmp_path / "run" / "checkpoints" / "ckpt-2.index").exists()
    shares = []
    for i in range(2):
        counts = json.loads((tmp_path / f"counts{i}.json").read_text())
        assert counts["task"] == i and counts["code"] == 0
        # Worker i decodes only files i, i + 2, ... (its half), at least the two per-replica
        # batches of 4 it trained on (more read ahead).
        assert set(counts["files"]) <= {f"{k:02d}.png" for k in range(i, 16, 2)}, counts
        assert len(counts["files"]) >= 8
        shares.append(set(counts["files"]))
    assert shares[0].isdisjoint(shares[1])
