"""One worker of a two-worker `launch.train` run that counts the image files it decodes.

    python tests/shard_worker_run.py COUNTS_OUT [--global_dataset] LAUNCH_TRAIN_FLAGS...

``TF_CONFIG`` names the cluster and this worker. Every file the input pipeline
reads goes through `tf.io.read_file` before it is decoded; here that call also
records the file's name (in the tf.data graph, so the count is exactly what
the pipeline decodes). After training, ``COUNTS_OUT`` (JSON) holds the
worker's index, the launcher's exit code and the names read, in order.

``--global_dataset``: build the one dataset of global batches (what the
launcher gave every worker before it sharded by file: Keras splits it by
data, so each worker decodes every image and keeps its share), for a side by
side count.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402


def main(counts_out, *argv):
    read_file = tf.io.read_file
    names = []

    def recorded(path):
        names.append(os.path.basename(path.decode()))
        return path

    def counted_read_file(path, name=None):
        noted = tf.numpy_function(recorded, [path], tf.string, stateful=True)
        noted.set_shape(path.shape)
        return read_file(noted, name=name)

    tf.io.read_file = counted_read_file
    from launch import builders, train

    if "--global_dataset" in argv:
        argv = [arg for arg in argv if arg != "--global_dataset"]
        build_dataset = builders.build_dataset

        def global_dataset(fv, start_step=0, skipped=None, strategy=None):
            return build_dataset(fv, start_step, skipped=skipped)

        builders.build_dataset = global_dataset
    code = 0
    try:
        train.cli.run(train.main, "launch.train", argv=["launch.train", *argv])
    except SystemExit as exc:
        code = exc.code or 0
    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    with open(counts_out, "w", encoding="utf-8") as f:
        json.dump({"task": task, "code": code, "files": names}, f)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
