"""`GAN`: a `keras.Model` whose `train_step` alternates discriminator and generator updates.

The model orchestrates; the pieces it wires together live in modules that do
not import it: `tfgan2.objective` (every loss term of both phases),
`tfgan2.labels` (what a conditional GAN accepts), `tfgan2.noise` (the random
streams), `tfgan2.replicas` (one device's share of a distributed step),
`tfgan2.ema` (the generator's moving average) and `tfgan2.batches` (splitting,
checking and packing real batches).
"""
import random
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfgan2 import batches, distribute, ema, executions, infogan
from tfgan2 import layers as layers_lib
from tfgan2 import noise as noise_lib
from tfgan2 import optimizer_pair, regularizers, replicas, sample_metrics, serialization
from tfgan2 import step_metrics
from tfgan2.labels import LabelSpec
from tfgan2.objective import Objective
from tfgan2.optimizer_pair import OptimizerPair, optimizers_for

__all__ = ["GAN", "LATENT_DISTRIBUTIONS"]

LATENT_DISTRIBUTIONS = noise_lib.LATENT_DISTRIBUTIONS


class _Arguments:
    """The arguments of a call, kept out of Keras' attribute tracking (the networks are
    tracked once, as ``generator`` / ``discriminator``)."""

    def __init__(self, values):
        self.values = values


@keras.saving.register_keras_serializable(package="tfgan2")
class GAN(keras.Model):
    """A generator and a discriminator trained by alternating gradient steps.

    ``fit(dataset)`` runs, per batch of real data ``x`` (or ``(x, labels)``,
    whose labels a conditional GAN uses and an unconditional one ignores):

    1. ``d_steps`` discriminator updates: ``z ~ p(z)``, ``G(z)`` computed outside
       the tape, ``L_D`` of `tfgan2.objective` (adversarial loss plus the
       penalties chosen in `compile`), gradients w.r.t. D's variables only,
       applied by ``d_optimizer``; then weight clipping, if asked.
    2. ``g_steps`` generator updates: fresh ``z``, ``L_G`` (``g_loss(D(G(z)))``,
       or ``g_loss(D(G(z)), D(x))`` with D(x) held constant for the relativistic
       losses), gradients through D into G's variables only, applied by
       ``g_optimizer``; then the EMA copy of G, if kept, is updated.

    Means are over the *global* batch, so a step is the same on 1 or N
    replicas. The same real batch serves all ``d_steps`` updates, each with new
    noise. Logged metrics: `tfgan2.step_metrics`. ``training_failed`` is true
    after `tfgan2.callbacks.NonFiniteGuard` stopped training on a non-finite
    loss; callbacks then save nothing.

    Args:
      generator: a `keras.Model` mapping ``(B, latent_dim)`` to data.
      discriminator: a `keras.Model` mapping data to logits ``(B, 1)``.
      latent_dim: size of ``z``.
      latent_distribution: ``"normal"`` (N(0, 1)) or ``"uniform"`` (U[-1, 1]).
      ema_decay: if set (in [0, 1)), keep an exponential moving average of G's
        weights (`tfgan2.ema.MovingAverage`); `generate` uses the EMA copy.
      ema_half_life: instead of ``ema_decay``, the average's half-life in
        generator steps (a number or a schedule of the step).
      num_classes: makes the GAN conditional: the number of classes (class ids
        in ``[0, num_classes)``, fed to the networks one-hot) or, with
        ``multilabel``, of binary labels (``(B, num_classes)`` 0/1 vectors,
        e.g. CelebA's 40 attributes). G is then called as ``G([z, c])``.
      multilabel: labels are independent binary attributes, not one class.
      discriminator_takes_labels: whether D is called as ``D([x, c])`` (a
        projection discriminator); default: D has two inputs. An auxiliary
        classifier D takes ``x`` only and returns ``{"logits", "class_logits"}``.
      infogan_codes: `tfgan2.infogan.LatentCodes` (or their text) appended to
        ``z``; D then needs a ``"q"`` head.
      seed: base seed of the training noise (random if None): every draw is a
        stateless function of (seed, stream, step) made for the global batch
        (`tfgan2.noise`), so a restored run continues the same streams and 1 or
        N replicas see the same numbers.
      augment: a differentiable Keras layer applied to every input of D during
        training (real, generated, penalty inputs), called as ``augment(x,
        training=True, seed=s, rows=[start, global_batch])`` with ``s`` drawn
        like the noise (see `tfgan2.augment`). A layer with ``observe(logits,
        num_images)`` (ADA) is shown D's real logits after each step, and its
        ``logs()`` join the metrics.
      pack: PacGAN packing (Lin et al. 2018, arXiv:1712.04086): D judges
        groups of ``pack`` consecutive samples concatenated along the last
        axis (`tfgan2.batches.Packing`), so it takes ``pack`` times the
        channels of one sample; losses and penalties are per group; batch
        sizes must be multiples of ``pack`` on every replica. A batch of B
        samples is judged as B / pack groups: feed pack x N samples for D to
        judge N groups per step, as PacGAN's code does.
      pack_generator_per_slot: with ``pack > 1``, call G once per pack slot while
        training (`tfgan2.batches.Packing.by_slot`), as PacGAN's code does, so that a
        G with batch norm takes its statistics over each slot's ``B / pack`` samples.
    """

    def __init__(self, generator, discriminator, latent_dim, latent_distribution="normal",
                 ema_decay=None, seed=None, num_classes=None, multilabel=False,
                 discriminator_takes_labels=None, infogan_codes=None, augment=None, pack=1,
                 ema_half_life=None, pack_generator_per_slot=False, **kwargs):
        arguments = serialization.call_arguments(GAN.__init__, locals())
        super().__init__(**kwargs)
        self._init_arguments = _Arguments(arguments)
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}.")
        self.label_spec = LabelSpec(num_classes, multilabel)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.num_classes = self.label_spec.num_classes
        self.multilabel = self.label_spec.multilabel
        if discriminator_takes_labels is None:
            discriminator_takes_labels = len(getattr(discriminator, "inputs", None) or ()) == 2
        self.discriminator_takes_labels = bool(discriminator_takes_labels)
        if infogan_codes is not None and not isinstance(infogan_codes, infogan.LatentCodes):
            infogan_codes = infogan.LatentCodes.parse(infogan_codes)
        self.infogan_codes = infogan_codes
        # Saved as the text the constructor parses.
        self._init_arguments.values["infogan_codes"] = (infogan_codes.spec() if infogan_codes
                                                        else None)
        heads = getattr(discriminator, "output", None)
        self.auxiliary_classifier = isinstance(heads, dict) and "class_logits" in heads
        if self.auxiliary_classifier and self.num_classes is None:
            raise ValueError("The discriminator has an auxiliary classifier head "
                             "('class_logits') but the GAN is unconditional: pass num_classes.")
        if isinstance(heads, dict) and ("q" in heads) != (infogan_codes is not None):
            raise ValueError("InfoGAN needs both infogan_codes and a discriminator with a 'q' "
                             "head (q_dim=codes.q_dim); got only one of them.")
        if self.discriminator_takes_labels and self.num_classes is None:
            raise ValueError("The discriminator takes labels (two inputs) but the GAN is "
                             "unconditional: pass num_classes.")
        self.packing = batches.Packing(pack)
        self.pack = self.packing.m
        self.pack_generator_per_slot = bool(pack_generator_per_slot)
        if self.pack > 1 and self.discriminator_takes_labels:
            raise ValueError("pack > 1 needs a discriminator that takes no labels: a packed "
                             "input mixes the conditions of several samples.")
        if augment is not None and not callable(augment):
            raise ValueError(f"augment must be a Keras layer (or None), got {augment!r}.")
        self.augment = augment
        # One power iteration per update of each network (tfgan2.layers.SpectralNormalization).
        self._spectral_layers = layers_lib.spectral_normalization_layers(discriminator)
        self._g_spectral_layers = layers_lib.spectral_normalization_layers(generator)
        if layers_lib.has_keras_spectral_normalization(discriminator):
            warnings.warn(
                "The discriminator uses keras.layers.SpectralNormalization, which overwrites its "
                "kernel on every training-mode call (also during the generator's step); use "
                "tfgan2.layers.SpectralNormalization.", stacklevel=2)
        self.latent_distribution = latent_distribution
        seed = random.randrange(2 ** 31) if seed is None else int(seed)
        self._init_arguments.values["seed"] = seed  # the config re-creates this very stream
        # A variable, so a checkpoint carries the noise stream along with the weights.
        self.noise_seed = keras.Variable(seed, dtype="int64", trainable=False,
                                         name="noise_seed")
        self.noise = noise_lib.Noise(self.noise_seed, self.latent_dim, latent_distribution,
                                     infogan_codes)
        # G's input: z, then the InfoGAN codes (one-hot categorical, continuous).
        self.input_dim = self.noise.input_dim
        kept = ema_decay is not None or ema_half_life is not None
        self.moving_average = (ema.MovingAverage(generator, ema_decay, half_life=ema_half_life)
                               if kept else None)
        self.ema_decay = self.moving_average.decay if kept else None
        self.ema_generator = self.moving_average.average if kept else None
        # Set by NonFiniteGuard on a non-finite loss (callbacks then save nothing); reset by fit.
        self.training_failed = False
        # Completed train_step calls (one per real batch); saved in checkpoints.
        self.step_counter = keras.Variable(0, dtype="int64", trainable=False,
                                           aggregation="only_first_replica", name="step")
        self.step_metrics = step_metrics.StepMetrics(self.auxiliary_classifier,
                                                     infogan_codes is not None)
        self._trackers = self.step_metrics.trackers  # an attribute, so Keras tracks them
        # Batches seen by the current evaluate(): a metric, so Keras resets it at the
        # start of each evaluation and it is no weight of the model.
        self._eval_batches = keras.metrics.Sum(name="eval_batches")
        self._sample_metrics = []
        self.d_optimizer = self.g_optimizer = None
        self.objective = None
        # Functional networks already own their variables; marking the model
        # built stops fit() from tracing call() on a batch of real images.
        self.built = all(net.built for net in (generator, discriminator))

    def checkpoint_items(self):
        """What a checkpoint of this GAN holds, by name: everything training needs to resume
        exactly (`tfgan2.callbacks.make_checkpoint`). G, D, step and noise seed; both
        optimizers once compiled; the EMA copy when kept; the augmentation layer when it
        has state (ADA's ``p``; only then, so other runs' checkpoints keep their layout)."""
        items = dict(generator=self.generator, discriminator=self.discriminator,
                     step=self.step_counter, noise_seed=self.noise_seed)
        if self.d_optimizer is not None:
            items.update(d_optimizer=self.d_optimizer, g_optimizer=self.g_optimizer)
        if self.ema_generator is not None:
            items["ema_generator"] = self.ema_generator
        if self.augment is not None and getattr(self.augment, "weights", None):
            items["augment"] = self.augment
        return items

    # ----------------------------------------------------------------- setup
    def compile(self, d_optimizer, g_optimizer, loss="non_saturating", d_steps=1, g_steps=1,
                gradient_penalty=0.0, r1_gamma=0.0, classifier_weight=1.0, info_weight=1.0,
                label_smoothing=0.0, weight_clip=None, gradient_penalty_mode="two_sided",
                metrics=None, r2_gamma=0.0, **kwargs):
        """Choose optimizers, loss, regularization and evaluation metrics.

        Args:
          d_optimizer, g_optimizer: two distinct `keras.optimizers.Optimizer`s or
            identifiers (``"adam"``, a config dict), built here on their network's
            variables (so compile inside the networks' strategy scope); under
            ``mixed_float16`` each is wrapped in a `keras.optimizers.LossScaleOptimizer`.
          loss, gradient_penalty, r1_gamma, r2_gamma, classifier_weight, info_weight,
            label_smoothing, gradient_penalty_mode: the terms of the objective,
            see `tfgan2.objective.Objective` (a loss name of `tfgan2.losses` or
            a pair of per-example callables; penalty weights, 0 disables one).
          d_steps, g_steps: discriminator / generator updates per batch (>= 1).
          weight_clip: if set (> 0), clip every D weight to ``[-c, c]`` after
            each D update (WGAN, Arjovsky et al. 2017; they use 0.01).
          metrics: sample-quality metrics (`tfgan2.sample_metrics`) that `test_step`
            updates with each held-out real batch and as many samples; other Keras
            metrics are refused (D's accuracy is logged as ``real_as_real``...).
          **kwargs: passed to `keras.Model.compile` (``steps_per_execution``,
            ``jit_compile``, ``run_eagerly``); several replicas run the steps of an
            execution unrolled (`make_train_function`). ``jit_compile`` defaults
            to False; with True (XLA, one replica only) the step's in-graph checks
            of label values and of the image range are dropped, so `fit` checks
            the first batch on the host instead and later batches go unchecked.
        """
        compile_arguments = serialization.call_arguments(GAN.compile, locals())
        compile_arguments.update(kwargs)
        d_optimizer, g_optimizer = optimizers_for(d_optimizer, g_optimizer)
        sample_metric_list = sample_metrics.check_metrics(metrics)
        optimizer_pair.check_built(self.generator, "generator", f"(None, {self.input_dim})")
        optimizer_pair.check_built(self.discriminator, "discriminator", "(None, *data_shape)")
        for name, value in (("d_steps", d_steps), ("g_steps", g_steps)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        objective = Objective(
            loss, label_smoothing=label_smoothing, gradient_penalty=gradient_penalty,
            gradient_penalty_mode=gradient_penalty_mode, r1_gamma=r1_gamma, r2_gamma=r2_gamma,
            classifier_weight=classifier_weight, info_weight=info_weight,
            labels=self.label_spec, codes=self.infogan_codes, latent_dim=self.latent_dim,
            packed=self.pack > 1)
        if weight_clip is not None and not (np.isfinite(weight_clip) and weight_clip > 0):
            raise ValueError(f"weight_clip must be None or a finite number > 0, "
                             f"got {weight_clip!r}.")
        _compile_keras(self, kwargs)
        self.objective = objective
        for name in ("loss_name", "gradient_penalty", "gradient_penalty_mode", "r1_gamma",
                     "r2_gamma", "classifier_weight", "info_weight"):
            setattr(self, name, getattr(objective, name))  # the compile arguments, as used
        self.weight_clip = None if weight_clip is None else float(weight_clip)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.d_steps, self.g_steps = int(d_steps), int(g_steps)
        self._sample_metrics = sample_metric_list
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)
        # What Keras callbacks see as model.optimizer (learning rate, iterations).
        self.optimizer = OptimizerPair(d_optimizer, g_optimizer, self.step_counter)
        self._compile_arguments = _Arguments(compile_arguments)

    def make_train_function(self, force=False):
        """Keras's, except for several steps per execution on several replicas: those run
        unrolled (`tfgan2.executions`), as Keras's loop fails there."""
        if not executions.unrolled(self):
            return super().make_train_function(force)
        if self.train_function is None or force:
            self.train_function = executions.train_function(self)
        return self.train_function

    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`, after checking the batches: they split evenly over the
        replicas and into packs, their samples have the shape the networks were
        built for, and a conditional GAN gets labels of the right kind (under XLA
        the first batch's label values and image range, on the host)."""
        y = kwargs.get("y", args[0] if args else None)
        batches.check_data(x, replicas=self.distribute_strategy.num_replicas_in_sync,
                           pack=self.pack, sample_shape=self.data_shape)
        self.check_label_spec(x, y)
        if getattr(self, "jit_compile", False) is True:
            real, labels = batches.first_batch(x, y)
            batches.check_range_numpy(real)
            if self.conditional and labels is not None:
                self.label_spec.check_numpy(labels)
        return super().fit(x, *args, **kwargs)

    @property
    def data_shape(self):
        """The shape of one sample, from G's output (None where G does not say)."""
        output = getattr(self.generator, "output", None)
        shape = getattr(output, "shape", None)
        return None if shape is None or isinstance(output, (dict, list)) else tuple(shape[1:])

    def check_label_spec(self, x, y=None):
        """Raise ValueError if the data's labels cannot condition this GAN (static checks,
        `tfgan2.labels.LabelSpec.check_data`); label values are checked in the step."""
        self.label_spec.check_data(x, y)

    def check_batch_splits(self, dataset):
        """Raise ValueError if ``dataset``'s (static) global batch does not split over the
        replicas and into packs (`tfgan2.batches.check_data`)."""
        batches.check_data(dataset, replicas=self.distribute_strategy.num_replicas_in_sync,
                           pack=self.pack)


    @property
    def metrics(self):
        return list(self._trackers.values()) + [self._eval_batches] + list(self._sample_metrics)

    def get_metrics_result(self):
        """What the logs hold, read from the metrics' state summed over all replicas
        (Keras replaces an evaluation's logs with this, so sample metrics cover all
        replicas' samples); see `tfgan2.step_metrics.results`."""
        return step_metrics.results([m for m in self.metrics if m is not self._eval_batches])

    def call(self, z, training=False):
        """``G(z)``: the training generator when ``training``, else the `sampler` (EMA copy if kept)."""
        network = self.generator if training else self.sampler
        if self.conditional:  # a symbolic build: any condition of the right shape will do
            return self.run_G(z, tf.zeros([tf.shape(z)[0], self.num_classes]), training,
                              network=network)
        return self.run_G(z, training=training, network=network)

    # ------------------------------------------------------- network calls
    @property
    def conditional(self):
        """True when G (and possibly D) is conditioned on labels (``num_classes`` set)."""
        return self.label_spec.conditional

    def condition(self, labels):
        """Labels as the float32 condition vector ``(B, num_classes)`` the networks take
        (`tfgan2.labels.LabelSpec.condition`)."""
        return self.label_spec.condition(labels)

    def sample_latent(self, num, seed=None):
        """``num`` G inputs as a float32 NumPy array ``(num, input_dim)``.

        ``z ~ p(z)``, followed (InfoGAN) by codes drawn from their priors.
        """
        return self.noise.sample_latent(num, seed)

    def run_G(self, z, labels=None, training=True, network=None):
        """The one place G is called: ``G(z)`` or ``G([z, c])`` for a conditional GAN.

        ``network`` replaces the training generator (the EMA copy, for sampling).
        """
        network = self.generator if network is None else network

        def call(z, labels):
            if self.conditional:  # both tensors: Keras refuses a NumPy/tensor mix
                return network([tf.convert_to_tensor(z), self.condition(labels)],
                               training=training)
            return network(z, training=training)
        if training and self.pack_generator_per_slot:
            return self.packing.by_slot(call, z, labels)
        return call(z, labels)

    def run_D(self, x, labels=None, training=True, augment_seed=None):
        """The one place D is called; returns a dict with at least ``"logits"``.

        ``x`` holds single samples ``(B, ...)``: augmented with ``augment_seed``
        (and ``augment``), then packed (``B / pack`` rows of logits). A projection
        D gets ``[x, c]``; a D with several heads returns its dict, a plain one
        its logits wrapped as ``{"logits": ...}``.
        """
        if self.augment is not None and augment_seed is not None:
            rows = replicas.this_replica(tf.shape(x)[0]).as_tensor()
            x = self.augment(x, training=training, seed=augment_seed, rows=rows)
        x = self.packing.pack(x)
        if self.discriminator_takes_labels:
            out = self.discriminator([tf.convert_to_tensor(x), self.condition(labels)],
                                     training=training)
        else:
            out = self.discriminator(x, training=training)
        if not isinstance(out, dict):
            out = {"logits": out}
        return out

    def _d_callable(self, labels, augment_seed=None):
        """``x -> run_D(x, labels)`` on packed inputs (what the objective sees): it unpacks,
        augments and repacks, so penalties are gradients w.r.t. D's packed, un-augmented input."""
        return lambda x, training=True: self.run_D(self.packing.unpack(x), labels,
                                                   training=training, augment_seed=augment_seed)

    def pack_samples(self, x):
        """``(B, ..., C) -> (B / pack, ..., pack * C)``: consecutive samples along the last axis."""
        return self.packing.pack(x)

    def unpack_samples(self, x):
        """The inverse of `pack_samples`."""
        return self.packing.unpack(x)

    def _augment_seed(self, stream, counter):
        """The stateless seed of one augmentation call, or None without ``augment``."""
        return None if self.augment is None else self.noise.seed_for(stream, counter)

    # ----------------------------------------------------------------- steps
    def _split(self, data):
        """``(real, labels)`` of a batch, the labels checked in the graph (None when unconditional)."""
        real, labels = batches.split(data)
        if not self.conditional:
            return real, None
        if labels is None:
            raise ValueError(f"This GAN is conditional (num_classes={self.num_classes}) but the "
                             f"batches carry no labels: feed (images, labels) pairs.")
        return real, self.label_spec.checked(labels)

    def discriminator_step(self, real, labels=None):
        """One update of D on a real batch (and its labels); returns the objective's terms.

        Generated samples are conditioned on the real batch's labels, so fake
        labels follow the data's. The terms: per-example ``"loss"``, the real and
        fake logits (for the metrics) and any auxiliary terms.
        """
        batch = tf.shape(real)[0]
        step = self.d_optimizer.iterations
        layers_lib.advance_power_iterations(self._spectral_layers)
        z = self.noise.latent(batch, self.noise.seed_for(noise_lib.D_NOISE, step))
        fake = tf.stop_gradient(self.run_G(z, labels, training=True))
        real = tf.cast(real, fake.dtype)
        real, fake = self.packing.pack(real), self.packing.pack(fake)
        d_mix = eps = None
        if self.objective.gradient_penalty > 0:
            eps = self.noise.uniform(batch // self.pack,
                                     self.noise.seed_for(noise_lib.GP_MIX, step))
            d_mix = self._d_callable(labels, self._augment_seed(noise_lib.AUG_GP, step))
        with tf.GradientTape() as tape:
            terms = self.objective.discriminator(
                self._d_callable(labels, self._augment_seed(noise_lib.AUG_REAL, step)),
                self._d_callable(labels, self._augment_seed(noise_lib.AUG_FAKE, step)),
                real, fake, labels=labels, latents=z, d_mix=d_mix, eps=eps,
                loss_scale=getattr(self.d_optimizer, "dynamic_scale", None), step=step)
            loss = tf.nn.compute_average_loss(terms["loss"])
            scaled = self.d_optimizer.scale_loss(loss)
        variables = self.discriminator.trainable_variables
        self._apply(self.d_optimizer, tape.gradient(scaled, variables), variables)
        if self.weight_clip is not None:
            regularizers.clip_weights(variables, self.weight_clip)
        return terms

    def generator_step(self, batch_size, labels=None, real=None):
        """One update of G through D on ``batch_size`` fresh latents; returns the G terms.

        The relativistic losses compare with D's logits on ``real`` (the real
        batch), computed outside the tape: D(x) is held constant.
        """
        step = self.g_optimizer.iterations
        layers_lib.advance_power_iterations(self._g_spectral_layers)
        z = self.noise.latent(batch_size, self.noise.seed_for(noise_lib.G_NOISE, step))
        real_logits = None
        if self.objective.relativistic:
            if real is None:
                raise ValueError(f"loss {self.loss_name!r} needs the real batch in the "
                                 f"generator step: generator_step(batch_size, labels, real).")
            real_logits = tf.stop_gradient(self.run_D(
                real, labels, training=True,
                augment_seed=self._augment_seed(noise_lib.AUG_G_REAL, step))["logits"])
        with tf.GradientTape() as tape:
            fake = self.run_G(z, labels, training=True)
            fake_out = self.run_D(fake, labels, training=True,
                                  augment_seed=self._augment_seed(noise_lib.AUG_G, step))
            terms = self.objective.generator(fake_out, real_logits, labels=labels, latents=z)
            loss = tf.nn.compute_average_loss(terms["loss"])
            scaled = self.g_optimizer.scale_loss(loss)
        variables = self.generator.trainable_variables
        self._apply(self.g_optimizer, tape.gradient(scaled, variables), variables)
        if self.moving_average is not None:
            with tf.name_scope("ema_update"):
                self.moving_average.update(self.g_optimizer.iterations)
        return terms

    @staticmethod
    def _apply(optimizer, grads, variables):  # a loss-scale skip decision is everyone's
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            grads = replicas.non_finite_everywhere(grads)
        optimizer.apply(grads, variables)

    def train_step(self, data):
        real, labels = self._split(data)
        self.packing.check_batch(real.shape[0])
        real = batches.checked_range(real, self.step_counter == 0)
        # The name scopes label the phases in profiler traces (benchmarks/profile_step.py).
        for _ in range(self.d_steps):
            with tf.name_scope("discriminator_step"):
                d_out = self.discriminator_step(real, labels)
        if hasattr(self.augment, "observe"):
            self.augment.observe(tf.cast(d_out["real_logits"], tf.float32)
                                 - self.objective.threshold, tf.shape(real)[0])
        for _ in range(self.g_steps):
            with tf.name_scope("generator_step"):
                g_out = self.generator_step(tf.shape(real)[0], labels, real=real)
        # After the label checks and the step itself: a bad batch changes no state at all.
        with tf.control_dependencies([g_out["loss"]] + ([] if labels is None else [labels])):
            self.step_counter.assign_add(1)
        with tf.name_scope("metrics"):
            self.step_metrics.update(d_out["loss"], g_out["loss"], d_out["real_logits"],
                                     d_out["fake_logits"], self.objective.judged_real, d_out)
        return self._logs()

    def _logs(self, extra=()):
        return self.step_metrics.logs(extra, self.augment,
                                      distribute.is_multi_worker(self.distribute_strategy))

    def test_step(self, data):
        """D's view of held-out real data and as many samples of the `sampler`; changes no weight.

        The latents depend only on the noise seed and the batch's index in the
        evaluation, so successive evaluations compare the generator, not the
        noise. Logs what training logs (``d_loss`` without penalties) and the
        result of each metric given to ``compile(metrics=)``.
        """
        real, labels = self._split(data)
        batch = tf.shape(real)[0]
        counter = tf.cast(self._eval_batches.result(), tf.int64)
        self._eval_batches.update_state(1.0)
        z = self.noise.latent(batch, self.noise.seed_for(noise_lib.EVAL_NOISE, counter))
        fake = self.run_G(z, labels, training=False, network=self.sampler)
        real = tf.cast(real, fake.dtype)
        real_out = self.run_D(real, labels, training=False)
        fake_out = self.run_D(fake, labels, training=False)
        d_loss, g_loss = self.objective.adversarial(real_out["logits"], fake_out["logits"])
        self.step_metrics.update(d_loss, g_loss, real_out["logits"], fake_out["logits"],
                                 self.objective.judged_real,
                                 self.objective.auxiliary(real_out, fake_out, labels, z))
        for metric in self._sample_metrics:
            metric.update_state(real, fake)
        return self._logs(self._sample_metrics)

    def predict_step(self, data):
        """Samples of the `sampler` (as `generate`) for a batch of latents ``z``, or of
        ``(z, labels)`` for a conditional GAN (`tfgan2.batches.latents_and_labels`)."""
        z, labels = batches.latents_and_labels(data, self.num_classes)
        return self.run_G(z, labels, training=False, network=self.sampler)

    # ------------------------------------------------------------- inference
    @property
    def step(self):
        """Number of completed training steps (real batches consumed), as an int."""
        return int(self.step_counter.numpy())

    @property
    def sampler(self):
        """The network `generate` uses: the EMA generator if kept, else G."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def sample_labels(self, num, seed=None):
        """``num`` class ids drawn uniformly (class-conditional GANs), as int32 NumPy."""
        return self.label_spec.sample(num, seed)

    def check_labels(self, labels, num=None):
        """``labels`` as the NumPy array the networks are fed, after checking it
        (`tfgan2.labels.LabelSpec.check_numpy`); ValueError names what is wrong."""
        return self.label_spec.check_numpy(labels, num)

    def generate(self, num, seed=None, batch_size=256, latents=None, labels=None,
                 return_labels=False):
        """``num`` samples as a float32 NumPy array ``(num, *data_shape)`` in the data range
        ([-1, 1] for images), from the `sampler` (the EMA copy when kept) in inference mode.

        ``latents`` (shape ``(num, input_dim)``) overrides the random draw.
        ``labels`` (conditional GANs): one class id for all, ``num`` class ids,
        or ``num`` label vectors; class-conditional GANs draw uniform classes
        from ``seed`` when it is omitted. ``return_labels``: return ``(samples,
        labels)``, the labels the samples were generated for (None if unconditional).
        """
        z = self.sample_latent(num, seed) if latents is None else np.asarray(latents, np.float32)
        num = len(z)
        if self.conditional:
            if labels is None:
                labels = self.sample_labels(num, None if seed is None else seed + 7919)
            labels = self.check_labels(labels, num)
        out = [np.asarray(self.run_G(z[i:i + batch_size],
                                     None if labels is None else labels[i:i + batch_size],
                                     training=False, network=self.sampler), np.float32)
               for i in range(0, num, batch_size)]
        shape = tuple(d or 0 for d in (self.data_shape or (0,)))
        samples = np.concatenate(out, axis=0) if out else np.zeros((0,) + shape, np.float32)
        return (samples, labels) if return_labels else samples

    def discriminate(self, data, labels=None, batch_size=256):
        """D's logits ``(N / pack,)`` for ``data`` (and its labels), in inference mode, as float64 NumPy."""
        data = np.asarray(data, np.float32)
        if self.discriminator_takes_labels:
            labels = self.check_labels(labels, len(data))
        if len(data) % self.pack:
            raise ValueError(f"discriminate packs pack={self.pack} samples per logit: pass a "
                             f"multiple of {self.pack} samples, got {len(data)}.")
        batch_size = max(self.pack, batch_size - batch_size % self.pack)
        out = []
        for i in range(0, len(data), batch_size):
            part = None if labels is None else labels[i:i + batch_size]
            logits = self.run_D(data[i:i + batch_size], part, training=False)["logits"]
            out.append(np.asarray(logits, np.float64).reshape(-1))
        return np.concatenate(out) if out else np.zeros(0)

    # -------------------------------------------------------- serialization
    # Every argument of __init__ and compile is recorded when it is called
    # (serialization.call_arguments), so a new argument is saved without an
    # edit here.
    def get_config(self):
        """The constructor arguments (networks as Keras configs), plus ``name`` and ``trainable``."""
        config = {"name": self.name, "trainable": self.trainable}
        config.update(serialization.serialize_arguments(self._init_arguments.values))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**serialization.deserialize_arguments(
            serialization.deserialize_networks(config, ("generator", "discriminator"))))

    def get_compile_config(self):
        """The `compile` arguments (optimizers, loss, steps, penalties, metrics, Keras options)."""
        arguments = getattr(self, "_compile_arguments", None)
        if arguments is None:
            return None
        values = dict(arguments.values)
        # The optimizers as used: their current learning rates and any loss-scale wrapper.
        values["d_optimizer"], values["g_optimizer"] = self.d_optimizer, self.g_optimizer
        values["metrics"] = list(self._sample_metrics)
        return serialization.serialize_arguments(values, owner="GAN.compile")

    def compile_from_config(self, config):
        """`compile` with a `get_compile_config` dict; builds both optimizers for their state."""
        self.compile(**serialization.deserialize_arguments(config))

    # ---------------------------------------------------------------- export
    def export(self, filepath, format="tf_saved_model", verbose=True, **kwargs):
        """Write the `sampler` as a SavedModel whose ``serving_default`` signature maps ``z``
        (and labels, for a conditional GAN) to ``{"images": ...}``; see
        `tfgan2.export.export_sampler`."""
        from tfgan2 import export as export_lib

        if format != "tf_saved_model":
            raise ValueError(f"GAN.export writes format='tf_saved_model' only, got {format!r}; "
                             f"for a .keras file of the generator use gan.sampler.save(path).")
        return export_lib.export_sampler(self, filepath, verbose=verbose, **kwargs)


def _compile_keras(gan, kwargs):
    """`keras.Model.compile` with the execution options a GAN step supports.

    Several steps per execution on several replicas are kept: they run unrolled
    (`tfgan2.executions`, through `GAN.make_train_function`). XLA is off unless
    asked (Keras' "auto" would turn it on on a GPU), refused with several
    replicas, and reported when Keras drops it.
    """
    replica_count = gan.distribute_strategy.num_replicas_in_sync
    if kwargs.setdefault("jit_compile", False) is True and replica_count > 1:
        raise ValueError(
            f"jit_compile=True does not work with {replica_count} replicas: XLA cannot "
            f"compile the step with the mirrored variables of a tf.distribute strategy. "
            f"Use jit_compile=False (the default) with several replicas.")
    keras.Model.compile(gan, optimizer=None, **kwargs)
    if kwargs["jit_compile"] is True and gan.jit_compile is not True:
        warnings.warn(
            "jit_compile=True was dropped by Keras: XLA is not used while op determinism "
            "is enabled (tf.config.experimental.enable_op_determinism) or a layer does "
            "not support it; training runs without XLA.", stacklevel=3)
