"""tfgan2: GAN training on TensorFlow 2 and Keras 3.

The public API: `GAN` (a `keras.Model` with a two-tape `train_step`), `train`
(fit into a resumable run directory), and the modules `losses`,
`regularizers`, `networks`, `augment` (DiffAugment, ADA), `layers`,
`callbacks`, `visualize`, `metrics` (the math of FID, KID, IS, precision/recall), `classifier` (a small domain classifier
for evaluation features), `features` (Inception-v3 and classifier feature
extractors), `evaluation` (metric registry, TSTR, D's confusion matrix,
evaluation callback), `summaries` (TensorBoard events), `latent`
(interpolation and latent arithmetic), `sliced_wasserstein` (SWD of image
patches), `task_losses` (cycle consistency, adversarial + task loss
weighting), `run_directory` (the run lock and end marker), `watch`
(continuous evaluation of new checkpoints),
`conditioning` (conditional batch norm, projection logit), `infogan`
(InfoGAN's latent codes), `sample_metrics` (streaming FD and KID as Keras
metrics for ``evaluate``), `export` (SavedModel of the sampler),
`objective` (every loss term of both phases), `labels` (what a conditional
GAN accepts), `noise` (the random streams), `replicas` (one device's share of a
distributed step), `ema` (the generator's moving average), `batches`
(splitting, checking and packing real batches), `step_metrics` (what a step
logs), `schedules` (hyperparameters that follow the step: R3GAN's burn-in),
`resnet_networks` and `r3gan_networks` (the residual families, also reachable
from `networks`), `attention` (SAGAN self-attention), `resampling` (the
[1, 2, 1] up/downsampling of R3GAN),
`serialization` and `optimizer_pair` (what makes `GAN` a whole
`keras.Model`: configs and ``model.optimizer`` for callbacks), `precision`
(the compute precision chosen by hardware and by timed training steps),
`optimizers` (`FusedAdam`: Keras's Adam update in one fused kernel),
`conv_gradients` (convolution gradients and transposed convolutions as
forward convolutions).
"""
# First: a too-old TensorFlow or Keras fails here with the fix, not later inside a layer.
from tfgan2 import _versions

_versions.check_installed()

from tfgan2 import (augment, callbacks, classifier, conditioning, distribute, infogan, layers,
                    losses, metrics, networks, regularizers, visualize)
from tfgan2 import evaluation, features, latent, run_directory, summaries, watch
from tfgan2 import conv_gradients, optimizers, precision, sliced_wasserstein, task_losses
from tfgan2 import batches, ema, labels, noise, objective, replicas, schedules, step_metrics
from tfgan2 import attention, r3gan_networks, resampling, resnet_networks
# Registers every tfgan2 Keras class, so keras.models.load_model needs only `import tfgan2`.
from tfgan2 import export, optimizer_pair, sample_metrics, serialization
from tfgan2.gan import GAN
from tfgan2.training import train

__version__ = "0.1.0"
__all__ = ["GAN", "train", "attention", "augment", "batches", "callbacks", "classifier",
           "conditioning", "conv_gradients", "ema", "evaluation", "export", "features",
           "infogan", "labels", "latent", "layers", "losses", "metrics", "networks", "noise",
           "objective", "optimizer_pair", "optimizers", "precision", "r3gan_networks",
           "regularizers", "replicas", "resampling", "resnet_networks", "run_directory",
           "sample_metrics", "schedules", "serialization", "sliced_wasserstein",
           "step_metrics", "summaries", "task_losses", "visualize", "watch", "__version__"]
