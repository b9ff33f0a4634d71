"""One worker of the two-process multi-worker test (run by tests/test_multi_worker.py).

    python tests/multi_worker_run.py WORKDIR WEIGHTS_OUT TRAIN_STEPS [STRATEGY [TIMEOUT STALL]]

``TF_CONFIG`` names the cluster and this worker. Trains a tiny MLP GAN on the
digits with ``STRATEGY`` (default ``multi_worker``: `MultiWorkerMirroredStrategy`;
``one_device`` gives the one-process reference run) through `tfgan2.train`, then saves
every weight of G, D and the EMA generator to ``WEIGHTS_OUT`` (.npz) so that
the test can compare the workers.

``TIMEOUT``: the collective timeout in seconds; ``STALL``: worker 1 sleeps for a
minute once it reaches that step (alive, but absent from the next collective).
A lost peer ends the process with the message on stderr and exit status 75.
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import pipelines  # noqa: E402
import tfgan2  # noqa: E402


class _Stall(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if self.model.step >= self.step and tfgan2.distribute.task_id()[1] == 1:
            self.step = float("inf")
            time.sleep(60)


def main(workdir, weights_out, train_steps, strategy_name="multi_worker", timeout=None,
         stall=None):
    if strategy_name == "one_device":
        # Like every strategy scope (and unlike no strategy at all), it makes Keras
        # draw one batch for its symbolic build first, which advances a
        # reshuffling dataset to its next order: the reference sees the same data.
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    else:
        strategy = tfgan2.distribute.make_strategy(
            strategy_name, collective_timeout=float(timeout) if timeout else None)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        generator = tfgan2.networks.mlp_generator(latent_dim=8, image_shape=(8, 8, 1), hidden=32)
        discriminator = tfgan2.networks.mlp_discriminator(image_shape=(8, 8, 1), hidden=32)
        gan = tfgan2.GAN(generator, discriminator, latent_dim=8, ema_decay=0.9, seed=0)
        gan.compile(keras.optimizers.Adam(1e-3, beta_1=0.5),
                    keras.optimizers.Adam(1e-3, beta_1=0.5))
    try:
        result = tfgan2.train(gan, lambda start: pipelines.digits(8, seed=0).skip(start),
                              workdir, train_steps, log_every=2, sample_every=4,
                              checkpoint_every=4, num_samples=4, verbose=0,
                              callbacks=[_Stall(int(stall))] if stall else [])
    except tfgan2.distribute.PeerLostError as exc:
        print(f"PeerLostError: {exc}", file=sys.stderr, flush=True)
        os._exit(75)
    arrays = {}
    for name, model in (("g", gan.generator), ("d", gan.discriminator),
                        ("ema", gan.ema_generator)):
        for i, w in enumerate(model.get_weights()):
            arrays[f"{name}{i}"] = w
    arrays["step"] = np.array(gan.step)
    np.savez(weights_out, **arrays)
    print(f"worker done at step {result.final_step}; checkpoint {result.checkpoint}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
