"""The training flags, shared by `launch.train` (which parses them) and `launch.sample`
(which re-reads them from a run directory's ``flags.cfg``).

Defaults are the built-in digits run (``digits.cfg`` spells the same values
out). Flags are defined on a given `absl.flags.FlagValues`, so a second,
independent set can be parsed from a run directory.
"""
import os
import sys

from absl import flags

from launch import data_sources, network_families

__all__ = ["define_train_flags", "TRAIN_FLAGS", "DATA_SOURCES", "NETWORKS", "LOSSES",
           "LABEL_SMOOTHING_LOSSES", "GRADIENT_PENALTY_MODES",
           "NETWORK_FLAGS", "network_flag_changes", "write_flagfile", "read_flagfile",
           "validate", "CONFIGS_INSTALL_DIR", "shipped_config_dirs", "find_config",
           "resolve_flagfiles", "PATH_FLAGS", "absolute_path", "RESUME_FREE_FLAGS",
           "training_flag_changes", "free_flag_changes", "describe_changes",
           "run_directory_flagfiles", "flagfile_lines"]

# The registries are the single source of these choices.
DATA_SOURCES = data_sources.names()
# Sources read from --data_dir, and what it must name for each.
DATA_DIR_MEANING = {s.name: s.data_dir for s in data_sources.SOURCES.values() if s.data_dir}
NETWORKS = network_families.names()
G_CONDITIONINGS = ("embedding", "cbn")
D_CONDITIONINGS = ("projection", "acgan")
# The flag choices, read before TensorFlow is imported (importing tfgan2 pulls it in):
# these mirror tfgan2.losses.names(), the losses whose spec takes label_smoothing and
# tfgan2.regularizers.GRADIENT_PENALTY_MODES; tests/test_launch.py keeps them in agreement.
LOSSES = ("minimax", "non_saturating", "least_squares", "wasserstein", "hinge",
          "relativistic_average", "relativistic_average_least_squares",
          "relativistic_average_hinge", "relativistic_pairing")
LABEL_SMOOTHING_LOSSES = ("minimax", "non_saturating", "relativistic_average")
GRADIENT_PENALTY_MODES = ("two_sided", "one_sided")
NORMALIZATIONS = ("batch", "none", "spectral")
# "auto" and tfgan2.precision.POLICIES (tests/test_precision_choice.py keeps them in agreement).
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# The environment variable that replaces "auto" as --precision's default (a machine image
# or a test environment that wants one policy without a measurement at every start).
PRECISION_ENV = "TFGAN2_PRECISION"


# --conv_gradients: "auto" and tfgan2.conv_gradients.METHODS; its default comes from this
# variable when set (the tests fix it so that no start measures).
CONV_GRADIENTS = ("auto", "native", "forward")
CONV_GRADIENTS_ENV = "TFGAN2_CONV_GRADIENTS"


def conv_gradients_default():
    """``--conv_gradients``' default: ``$TFGAN2_CONV_GRADIENTS`` if set, else ``"auto"``."""
    value = os.environ.get(CONV_GRADIENTS_ENV, "auto")
    if value not in CONV_GRADIENTS:
        raise ValueError(f"{CONV_GRADIENTS_ENV}={value!r} is not a convolution gradient "
                         f"method: use one of {', '.join(CONV_GRADIENTS)} (or unset it for auto).")
    return value


def precision_default():
    """``--precision``'s default: ``$TFGAN2_PRECISION`` if set, else ``"auto"``."""
    value = os.environ.get(PRECISION_ENV, "auto")
    if value not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV}={value!r} is not a precision: use one of "
                         f"{', '.join(PRECISIONS)} (or unset it for auto).")
    return value

# Every flag that defines a run; exactly these are written to flags.cfg.
TRAIN_FLAGS = []


def _define(kind, name, default, help_text, flag_values, **kwargs):
    getattr(flags, f"DEFINE_{kind}")(name=name, default=default, help=help_text,
                                     flag_values=flag_values, **kwargs)
    if name not in TRAIN_FLAGS:
        TRAIN_FLAGS.append(name)


def define_train_flags(flag_values=flags.FLAGS):
    """Define the training flags on ``flag_values`` (the global FLAGS by default)."""
    d = lambda *a, **k: _define(*a, flag_values=flag_values, **k)  # noqa: E731
    # Run directory and schedule.
    d("string", "workdir", "runs/digits",
      "Run directory: flags.cfg, checkpoints/, samples/, metrics.jsonl, losses.png. "
      "A directory holding a checkpoint is resumed.")
    d("integer", "train_steps", 15000, "Total training steps (batches).", lower_bound=1)
    d("integer", "log_every", 500, "Steps between metrics.jsonl rows (one Keras epoch).",
      lower_bound=1)
    d("integer", "sample_every", 1000, "Steps between sample pictures (0: only at the end).",
      lower_bound=0)
    d("integer", "checkpoint_every", 2000, "Steps between checkpoints (0: only at the end).",
      lower_bound=0)
    d("integer", "keep_checkpoints", 3, "Checkpoints kept.", lower_bound=1)
    d("integer", "keep_samples", 20, "Sample pictures kept in samples/ (the newest; 0: all).",
      lower_bound=0)
    d("integer", "num_grid", 64, "Samples in each sample grid.", lower_bound=1)
    d("integer", "seed", 0, "Seed of the data order, initial weights and training noise.")
    d("bool", "deterministic", False,
      "Reproducible to the bit: TensorFlow op determinism and ordered input pipelines (slower). "
      "A run interrupted and resumed then ends with the same weights as an uninterrupted one.")
    # Data.
    d("enum", "data_source", "digits", "Training data: " + "; ".join(
        f"{s.name}: {s.description}" for s in data_sources.SOURCES.values()) + ".",
      enum_values=list(DATA_SOURCES))
    d("string", "data_dir", None,
      "celeba: the CelebA folder or prepared TFRecords (folder or glob); image_folder: the "
      "image folder; mnist, celeba_tfds: the TFDS data directory.")
    d("string", "split", "train", "Data split of mnist and the celeba sources "
      "(celeba: train, validation, test or all).")
    d("string", "crop", "auto",
      "Crop before resizing: 'auto' (celeba: the 108 x 108 face box; image_folder: "
      "'center'), N (celeba: an N x N box centred on the face), 'center' (the largest "
      "centred square) or 'none'.")
    d("integer", "channels", 3, "Channels of image_folder data (1 or 3).", lower_bound=1,
      upper_bound=3)
    d("integer", "batch_size", 64, "Global batch size.", lower_bound=1)
    d("float", "gaussian_mean", 4.0, "Mean of the gaussian data source.")
    d("float", "gaussian_std", 1.25, "Standard deviation of the gaussian data source.",
      lower_bound=1e-12)
    d("integer", "gaussian_size", 200, "Length of each gaussian vector.", lower_bound=1)
    # Networks.
    d("enum", "network", "mlp", "Generator/discriminator pair: " + "; ".join(
        f"{f.name}: {f.description}" for f in network_families.FAMILIES.values()) + ".",
      enum_values=list(NETWORKS))
    # Conditioning.
    d("bool", "conditional", False,
      "Class-conditional GAN on the data's labels (digits, mnist: 10 classes; celeba: 40 "
      "binary attributes). G and D get the labels; generate by label with launch.sample "
      "--labels or --per_class.")
    d("integer", "num_classes", 0, "Classes (or binary attributes) of a --conditional run; 0 "
      "takes them from the data.", lower_bound=0)
    d("enum", "conditioning", "embedding", "How labels enter G: a learned embedding "
      "concatenated to z, or conditional batch norm (cbn). resnet always uses BigGAN's cbn "
      "(shared embedding and hierarchical z), r3gan an embedding.",
      enum_values=list(G_CONDITIONINGS))
    d("enum", "discriminator_conditioning", "projection", "How D uses labels: a projection "
      "discriminator (Miyato & Koyama 2018) or an auxiliary classifier head with ACGAN losses "
      "(Odena et al. 2017).", enum_values=list(D_CONDITIONINGS))
    d("float", "classifier_weight", 1.0, "Weight of the ACGAN class losses.", lower_bound=0.0)
    d("string", "infogan_codes", "", "InfoGAN latent codes, e.g. 'categorical:10,continuous:2' "
      "(Chen et al. 2016): appended to z, predicted by a Q head on D; empty: none.")
    d("float", "info_weight", 1.0, "Weight lambda of InfoGAN's mutual-information penalty.",
      lower_bound=0.0)
    d("integer", "resolution", 8, "Image size (power of two >= 8) for dcgan; 8 to 256 for "
      "resnet and r3gan.")
    d("integer", "capacity", 16, "dcgan NET_CAPACITY: filters of the first D block.",
      lower_bound=1)
    d("integer", "filter_size", 5, "dcgan convolution kernel size.", lower_bound=1)
    d("enum", "d_normalization", "batch", "Normalization in the dcgan discriminator.",
      enum_values=list(NORMALIZATIONS))
    d("integer", "minibatch_std", 0, "dcgan discriminator: group size of the minibatch "
      "standard deviation feature map added before its last block (Karras et al. 2018; "
      "0: none, else >= 2).", lower_bound=0)
    d("integer", "g_hidden", 0, "Width of the generator: hidden units of mlp/gaussian, the "
      "base width ch of resnet (blocks have multiples of it), the stage width of r3gan (0: "
      "the network's published width: mlp 1024, gaussian 256, resnet 64, r3gan 768).",
      lower_bound=0)
    d("integer", "d_hidden", 0, "Width of the discriminator, as --g_hidden (0: mlp 256, "
      "gaussian 256, resnet 64, r3gan 768).", lower_bound=0)
    d("integer", "attention", 0, "resnet: side of the feature maps after which G and D get a "
      "self-attention block (SAGAN; e.g. 16 at --resolution=32; 0: none).", lower_bound=0)
    d("bool", "g_spectral_norm", False, "resnet: spectral normalization in G as well (SAGAN, "
      "BigGAN; D always has it).")
    d("integer", "latent_dim", 64, "Size of the latent vector z.", lower_bound=1)
    d("enum", "latent_distribution", "normal", "p(z).", enum_values=["normal", "uniform"])
    # Optimization.
    d("enum", "loss", "non_saturating", "GAN loss.", enum_values=list(LOSSES))
    d("float", "d_lr", 2e-4, "Discriminator Adam learning rate.", lower_bound=0.0)
    d("float", "g_lr", 2e-4, "Generator Adam learning rate.", lower_bound=0.0)
    d("float", "beta1", 0.5, "Adam beta_1 of both optimizers.", lower_bound=0.0, upper_bound=1.0)
    d("float", "beta2", 0.999, "Adam beta_2 of both optimizers.", lower_bound=0.0,
      upper_bound=1.0)
    d("enum", "lr_schedule", "constant", "Learning rates: constant, linear_decay to 0 at "
      "--train_steps, or burn_in: R3GAN's cosine from the rate to --burn_in_lr_ratio times it "
      "over --burn_in_steps, then held.", enum_values=["constant", "linear_decay", "burn_in"])
    d("integer", "burn_in_steps", 0, "Length in steps of R3GAN's cosine burn-in (0: none). Over "
      "it R1/R2 gamma fall to --burn_in_gamma_ratio of their value, Adam's beta_2 rises from "
      "--beta2 to --beta2_final, the EMA half-life grows from 0 to --ema_half_life, and with "
      "--lr_schedule=burn_in the learning rates fall to --burn_in_lr_ratio of theirs.",
      lower_bound=0)
    d("float", "burn_in_lr_ratio", 0.25, "Learning rate at the end of the burn-in, as a share "
      "of --d_lr / --g_lr (R3GAN: 2e-4 -> 5e-5).", lower_bound=0.0)
    d("float", "burn_in_gamma_ratio", 0.1, "R1/R2 gamma at the end of the burn-in, as a share of "
      "--r1_gamma / --r2_gamma (R3GAN: 10x smaller).", lower_bound=0.0)
    d("float", "beta2_final", 0.0, "Adam beta_2 at the end of the burn-in (R3GAN: 0.99; 0: "
      "--beta2 throughout).", lower_bound=0.0, upper_bound=1.0)
    d("integer", "d_steps", 1, "Discriminator updates per step.", lower_bound=1)
    d("integer", "g_steps", 1, "Generator updates per step.", lower_bound=1)
    d("float", "gradient_penalty", 0.0, "WGAN-GP weight (0: off).", lower_bound=0.0)
    d("enum", "gp_mode", "two_sided", "Gradient penalty: two_sided (||g|| - 1)^2 (WGAN-GP) or "
      "one_sided max(0, ||g|| - 1)^2 (Petzka et al. 2018).",
      enum_values=list(GRADIENT_PENALTY_MODES))
    d("float", "label_smoothing", 0.0, "One-sided label smoothing s: D's real target becomes "
      "1 - s/2 (TF-GAN's convention; its default is 0.25). Cross-entropy losses only: "
      + ", ".join(LABEL_SMOOTHING_LOSSES) + ".", lower_bound=0.0, upper_bound=1.0)
    d("float", "weight_clip", 0.0, "Clip every D weight to [-c, c] after each D update "
      "(WGAN weight clipping, e.g. 0.01; 0: off).", lower_bound=0.0)
    d("float", "r1_gamma", 0.0, "R1 penalty gamma (0: off).", lower_bound=0.0)
    d("float", "r2_gamma", 0.0, "R2 penalty gamma: R1 on generated samples (R3GAN; 0: off); "
      "scaled like --r1_gamma by --r1_reference_size.", lower_bound=0.0)
    d("integer", "r1_reference_size", 0,
      "Image size S at which --r1_gamma is given: the gamma used is r1_gamma * H * W / S^2 for "
      "H x W images, since R1 sums the squared gradient over pixels (e.g. 32 with "
      "--r1_gamma=4 uses 16 at --resolution=64). 0: --r1_gamma as given.", lower_bound=0)
    d("float", "ema_decay", 0.999, "Generator EMA decay (0: no EMA copy).", lower_bound=0.0,
      upper_bound=0.999999)
    d("float", "ema_half_life", 0.0, "Generator EMA half-life in steps, instead of --ema_decay "
      "(0: use --ema_decay). With --burn_in_steps it grows from 0 (a plain copy) to this.",
      lower_bound=0.0)
    # Augmentation of D's inputs and packing.
    d("string", "augment", "none",
      "Augmentation of everything D sees: none, diffaugment:POLICY (POLICY: ops from color, "
      "translation, cutout joined by '+'; 'diffaugment' alone uses all three) or ada "
      "(adaptive augmentation, probability p driven toward --ada_target).")
    d("float", "ada_target", 0.6, "ADA target of r_t = E[sign(D(real))] (--augment=ada).",
      lower_bound=0.0, upper_bound=1.0)
    d("integer", "ada_speed", 500000, "ADA: real images for p to cross [0, 1] "
      "(--augment=ada; the paper's 500k).", lower_bound=1)
    d("integer", "pack", 1, "PacGAN packing: samples per D input (--batch_size must be a "
      "multiple of pack times the replicas).", lower_bound=1)
    # Distribution.
    d("enum", "strategy", "default", "Distribution strategy: default (one device), mirrored "
      "(all local GPUs or --devices), multi_worker (from TF_CONFIG), tpu (--tpu).",
      enum_values=["default", "mirrored", "multi_worker", "tpu"])
    d("list", "devices", None, "Devices for --strategy=mirrored, e.g. /gpu:0,/gpu:1.")
    d("string", "tpu", None, "TPU name or address for --strategy=tpu.")
    d("float", "collective_timeout", 300.0,
      "--strategy=multi_worker: seconds a collective operation (each step's all-reduce) may "
      "wait for the other workers before the run fails naming the peer (0: forever). Must "
      "exceed the chief's longest pause between steps (evaluations, samples, checkpoints). "
      "A worker that dies is noticed sooner: at once when its connection closes, after 10 s "
      "without heartbeats otherwise.", lower_bound=0.0)
    d("integer", "logical_cpus", 0, "Split the CPU into this many logical devices (0: don't), "
      "so --strategy=mirrored can be tried without GPUs.", lower_bound=0)
    d("bool", "sync_batchnorm", False, "dcgan, resnet: batch statistics over all replicas' "
      "batches.")
    d("enum", "precision", precision_default(), "Compute precision: float32, mixed_bfloat16, "
      "mixed_float16 (variables, D logits and losses stay float32; float16 adds loss "
      "scaling; GPUs only) or auto: mixed_float16 on GPUs of compute capability >= 7.0; on a "
      "CPU with avx512_bf16 or amx_bf16, mixed_bfloat16 if a few timed training steps of "
      "this run's networks are faster in it than in float32; float32 otherwise. A resumed "
      "run keeps its recorded precision; the choice and its measurement go to "
      f"<workdir>/precision.json. ${PRECISION_ENV} replaces the default auto.",
      enum_values=list(PRECISIONS))
    d("enum", "conv_gradients", conv_gradients_default(), "How convolutions take their "
      "gradients (and transposed convolutions their outputs): native (TensorFlow's "
      "backward kernels), forward (as forward convolutions, tfgan2.conv_gradients; same "
      "values to float rounding) or auto: forward "
      "if a few timed training steps of this run's networks are 1.05x faster with it. A "
      "resumed run keeps its recorded method; the choice goes to "
      f"<workdir>/conv_gradients.json. ${CONV_GRADIENTS_ENV} replaces the default auto.",
      enum_values=list(CONV_GRADIENTS))
    d("bool", "jit_compile", False, "Compile the training step with XLA.")
    d("integer", "steps_per_execution", 10,
      "Training steps run per call into the compiled step function (fewer Python round "
      "trips; callbacks see the step counter advance in jumps).", lower_bound=1)
    # Monitoring and evaluation during training.
    d("bool", "tensorboard", True,
      "Write TensorBoard events (training scalars every --log_every steps, sample grids "
      "every --sample_every steps, evaluation metrics) to <workdir>/tensorboard/.")
    d("integer", "eval_every", 0,
      "Steps between evaluations during training (0: none); results go to metrics.jsonl "
      "as eval/<name> and to TensorBoard.", lower_bound=0)
    d("string", "eval_metrics", "fid,kid",
      "Comma-separated metrics of the evaluations during training (launch.evaluate lists "
      "them: fid, kid, is, pr, tstr, confusion, swd, cas, intra_fid; vector data: fid, kid, "
      "pr, confusion, moments).")
    d("integer", "eval_num_samples", 500, "Generated samples per evaluation during training.",
      lower_bound=2)
    d("enum", "eval_features", "classifier",
      "Features of image metrics: 'classifier' (a CNN trained on the run's labelled data, "
      "saved as <workdir>/eval/classifier.keras; data without class labels use inception) "
      "or 'inception' (Inception-v3, see --inception_weights).",
      enum_values=["classifier", "inception"])
    d("string", "inception_weights", None,
      "inception_v3_weights_tf_dim_ordering_tf_kernels.h5 (the Keras applications release "
      "file) for Inception features; default: Keras' cache ~/.keras/models/, where Keras "
      "downloads it when missing (offline: copy the file there).")
    d("integer", "classifier_epochs", 30, "Training epochs of the domain classifier.",
      lower_bound=1)
    return flag_values


# The DiffAugment operations --augment=diffaugment:POLICY may name (tfgan2.augment.DIFFAUGMENT_OPS).
DIFFAUGMENT_OPS = ("color", "translation", "cutout")


def _check_augment(spec):
    """--augment checked without importing TensorFlow (the grammar of
    `tfgan2.augment.from_spec`)."""
    name, _, policy = spec.strip().partition(":")
    name = name.lower()
    ops = [op.strip() for op in policy.replace("+", ",").split(",") if op.strip()]
    if (name in ("none", "ada") and not policy) or (
            name == "diffaugment" and all(op in DIFFAUGMENT_OPS for op in ops)
            and (ops or not policy)):
        return
    raise ValueError(f"--augment={spec} is invalid: use none, ada, diffaugment or "
                     f"diffaugment:POLICY with POLICY ops from {', '.join(DIFFAUGMENT_OPS)} "
                     f"joined by '+'.")


def validate(fv):
    """Cross-flag checks that absl's per-flag bounds cannot express.

    Raises:
      ValueError: naming the flag, its value and the valid values.
    """
    if fv.lr_schedule == "burn_in" and not fv.burn_in_steps:
        raise ValueError("--lr_schedule=burn_in needs --burn_in_steps > 0 (the length of the "
                         "cosine burn-in in steps).")
    per_call = fv.steps_per_execution
    for name in ("train_steps", "log_every"):
        if fv[name].value % per_call:
            raise ValueError(f"--{name}={fv[name].value} is invalid: it must be a multiple of "
                             f"--steps_per_execution={per_call}.")
    res = fv.resolution
    if res < 8 or res & (res - 1):
        raise ValueError(f"--resolution={res} is invalid: it must be a power of two >= 8 "
                         f"(8, 16, 32, 64, 128, ...).")
    source = data_sources.get(fv.data_source)
    family = network_families.get(fv.network)
    source.check(fv)
    if source.data_dir and not fv.data_dir:
        raise ValueError(f"--data_source={fv.data_source} needs --data_dir: "
                         f"{source.data_dir}.")
    crop = fv.crop.strip().lower()
    face_box = source.face_crop and crop.isdigit() and int(crop) > 0
    if not (crop in ("auto", "center", "none") or face_box):
        raise ValueError(f"--crop={fv.crop} is invalid for --data_source={fv.data_source}: use "
                         f"'auto', 'center', 'none'"
                         f"{' or a face box size such as 108 or 140' if source.face_crop else ''}.")
    if source.is_vector(fv) != family.vector:
        raise ValueError(f"--network={fv.network} does not fit --data_source={fv.data_source}: "
                         f"vector data needs --network=gaussian and the reverse.")
    if fv.label_smoothing and fv.loss not in LABEL_SMOOTHING_LOSSES:
        raise ValueError(f"--label_smoothing={fv.label_smoothing} is invalid with "
                         f"--loss={fv.loss}: it smooths a cross-entropy target, use one of "
                         f"{', '.join(LABEL_SMOOTHING_LOSSES)} (or --label_smoothing=0).")
    if fv.r1_reference_size and source.is_vector(fv):
        raise ValueError(f"--r1_reference_size={fv.r1_reference_size} is invalid with "
                         f"--data_source={fv.data_source}: its examples are vectors, not images "
                         f"to scale R1 by; use --r1_reference_size=0.")
    family.check(source.shape(fv))
    if fv.conditional and not source.has_labels:
        labelled = [s.name for s in data_sources.SOURCES.values() if s.has_labels]
        raise ValueError(f"--conditional needs labelled data, and --data_source={fv.data_source} "
                         f"has no labels (labelled sources: {', '.join(labelled)}).")
    if (fv.conditional or fv.infogan_codes) and not family.conditional:
        conditional = [f.name for f in network_families.FAMILIES.values() if f.conditional]
        raise ValueError(f"--network={fv.network} has no conditional or InfoGAN variant; use "
                         f"one of: {', '.join(conditional)}.")
    if fv.conditional and fv.num_classes and fv.num_classes != source.num_classes:
        raise ValueError(f"--num_classes={fv.num_classes} does not match the data: "
                         f"--data_source={fv.data_source} has {source.num_classes} (use "
                         f"--num_classes=0 to take them from the data).")
    if fv.infogan_codes:
        _check_codes(fv.infogan_codes)
    _check_augment(fv.augment)
    if fv.augment.strip().lower() != "none" and len(source.shape(fv)) != 3:
        raise ValueError(f"--augment={fv.augment} augments images; --data_source="
                         f"{fv.data_source} holds vectors: use --augment=none.")
    if fv.minibatch_std and fv.network != "dcgan":
        raise ValueError(f"--minibatch_std={fv.minibatch_std} needs --network=dcgan (the other "
                         f"discriminators have no minibatch standard deviation feature); "
                         f"use --minibatch_std=0 with --network={fv.network}.")
    for name in ("attention", "g_spectral_norm"):
        if fv[name].value and fv.network != "resnet":
            raise ValueError(f"--{name}={fv[name].value} needs --network=resnet (the other "
                             f"networks have no such option); leave it unset with "
                             f"--network={fv.network}.")
    if fv.attention:
        # The feature-map sides G and D of tfgan2.resnet_networks both have.
        side = source.shape(fv)[0]
        sides = [2 ** k for k in range(3, 9) if 2 ** k <= side // 2]
        if fv.attention not in sides:
            raise ValueError(f"--attention={fv.attention} is invalid for {side}x{side} images: "
                             f"use the side of feature maps both networks have ("
                             f"{', '.join(map(str, sides)) or 'none at this size'}) or 0.")
    if fv.minibatch_std == 1:
        raise ValueError("--minibatch_std=1 is invalid: a group of one sample has no spread; "
                         "use 0 (off) or a group size >= 2, e.g. 4.")
    if fv.batch_size % fv.pack:
        raise ValueError(f"--batch_size={fv.batch_size} is invalid with --pack={fv.pack}: it "
                         f"must be a multiple of --pack.")
    if fv.pack > 1 and (fv.conditional or fv.infogan_codes):
        raise ValueError(f"--pack={fv.pack} needs an unconditional run without InfoGAN codes: "
                         f"a packed D input has no single label or code.")


def _check_codes(spec):
    """The InfoGAN code text, checked without importing TensorFlow (same grammar as
    `tfgan2.infogan.LatentCodes.parse`)."""
    items = [part.strip() for part in spec.split(",") if part.strip()]
    for item in items:
        kind, _, number = item.partition(":")
        if kind not in ("categorical", "continuous") or not number.isdigit() or (
                kind == "categorical" and int(number) < 2):
            raise ValueError(f"--infogan_codes={spec}: bad item {item!r}; expected items like "
                             f"categorical:10 (at least 2 values) or continuous:2, separated by "
                             f"commas.")
    if not items:
        raise ValueError(f"--infogan_codes={spec!r}: no code given.")


# Flags that change the variables a checkpoint holds: resuming with other values
# cannot restore it.
NETWORK_FLAGS = ("data_source", "network", "resolution", "channels", "capacity",
                 "filter_size", "d_normalization", "latent_dim", "g_hidden", "d_hidden",
                 "gaussian_size", "conditional", "num_classes", "conditioning",
                 "discriminator_conditioning", "infogan_codes", "pack", "minibatch_std",
                 "attention", "g_spectral_norm")


def network_flag_changes(old, new):
    """``[(flag, old value, new value)]`` for the `NETWORK_FLAGS` that differ.

    Also ``ema_decay`` when one run keeps an EMA generator (> 0) and the other
    not (0): the checkpoints then hold different networks.
    """
    changes = [(name, old[name].value, new[name].value) for name in NETWORK_FLAGS
               if old[name].value != new[name].value]
    if keeps_ema(old) != keeps_ema(new):
        changes.append(("ema_decay", old.ema_decay, new.ema_decay))
    return changes


def keeps_ema(fv):
    """Whether the run keeps an EMA generator (``--ema_decay`` or ``--ema_half_life`` > 0)."""
    return fv.ema_decay > 0 or fv["ema_half_life"].value > 0


# Flags a resumed run may change without changing what it computes: how long it runs and how
# often it writes, how it is monitored, where the data lies, where it runs and how fast.
# (--train_steps is one of them unless the learning rates decay over it.)
RESUME_FREE_FLAGS = (
    "workdir", "train_steps", "log_every", "sample_every", "checkpoint_every",
    "keep_checkpoints", "keep_samples", "num_grid", "data_dir", "strategy", "devices", "tpu",
    "collective_timeout", "logical_cpus", "jit_compile", "steps_per_execution", "tensorboard",
    "eval_every", "eval_metrics", "eval_num_samples", "eval_features", "inception_weights",
    "classifier_epochs")
# Chosen once per run and kept by its resumes (launch.precision_choice,
# launch.conv_gradient_choice): not compared here.
RESUME_RECORDED_FLAGS = ("precision", "conv_gradients")
# Flags holding file-system paths: flags.cfg records them absolute, so that the run
# directory's flags mean the same from any working directory.
PATH_FLAGS = ("workdir", "data_dir", "inception_weights")


def absolute_path(value):
    """``value`` as an absolute path (``~`` expanded); None, empty values and URLs
    (``gs://...``) as they are."""
    if not value or "://" in str(value):
        return value
    return os.path.abspath(os.path.expanduser(str(value)))


def _value(fv, name):
    value = fv[name].value
    return absolute_path(value) if name in PATH_FLAGS else value


def _changed(old, new, names):
    return [(name, old[name].value, new[name].value) for name in names
            if _value(old, name) != _value(new, name)]


def training_flag_changes(old, new):
    """``[(flag, old value, new value)]`` of the flags whose change alters what a resumed run
    computes: every training flag but `NETWORK_FLAGS` (those cannot resume at all, see
    `network_flag_changes`), `RESUME_FREE_FLAGS` and the recorded precision choices. Also
    ``train_steps`` when the learning rates decay over it (``--lr_schedule=linear_decay``)."""
    skip = set(NETWORK_FLAGS) | set(RESUME_FREE_FLAGS) | set(RESUME_RECORDED_FLAGS)
    changes = _changed(old, new, [n for n in TRAIN_FLAGS if n not in skip])
    if "linear_decay" in (old.lr_schedule, new.lr_schedule):
        changes += _changed(old, new, ["train_steps"])
    network = {name for name, _, _ in network_flag_changes(old, new)}
    return [c for c in changes if c[0] not in network]


def free_flag_changes(old, new):
    """``[(flag, old value, new value)]`` of the `RESUME_FREE_FLAGS` that differ (not
    ``workdir``, nor ``train_steps`` when `training_flag_changes` lists it)."""
    names = [n for n in RESUME_FREE_FLAGS if n != "workdir"]
    if "linear_decay" in (old.lr_schedule, new.lr_schedule):
        names.remove("train_steps")
    return _changed(old, new, names)


def describe_changes(changes, sep="; "):
    """``--loss was 'non_saturating', now 'wasserstein'; ...`` of ``[(flag, old, new)]``."""
    return sep.join(f"--{name} was {old!r}, now {new!r}" for name, old, new in changes)


def flagfile_lines(fv):
    """The run-defining flags as flagfile lines (`PATH_FLAGS` absolute), as `write_flagfile`
    writes them."""
    lines = []
    for name in TRAIN_FLAGS:
        if name in PATH_FLAGS and fv[name].value:
            lines.append(f"--{name}={absolute_path(fv[name].value)}")
        else:
            lines.append(fv[name].serialize())
    return [line for line in lines if line]


def write_flagfile(fv, path):
    """Write the run-defining flags as a flagfile that reproduces the run from any directory
    (`PATH_FLAGS` are written as absolute paths)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("# Resolved training flags; reproduce with "
                "python -m launch.train --flagfile=<this file>\n")
        f.write("\n".join(flagfile_lines(fv)) + "\n")
    os.replace(tmp, path)


def read_flagfile(path):
    """A fresh `FlagValues` holding the training flags parsed from ``path``.

    Raises:
      FileNotFoundError: ``path`` does not exist.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No flags file at {path}: is this a tfgan2 run directory "
                                f"written by launch.train?")
    fv = flags.FlagValues()
    define_train_flags(fv)
    fv(["launch", f"--flagfile={path}"])
    return fv


# ---------------------------------------------------------------- shipped configs
# setup.py installs the root *.cfg files here, relative to the installation
# prefix (data_files), so the repository's copies are the only source.
CONFIGS_INSTALL_DIR = os.path.join("share", "tfgan2", "configs")


def shipped_config_dirs():
    """Directories that may hold the shipped flagfiles, in search order.

    The repository root next to this package (a source checkout), then
    ``<prefix>/share/tfgan2/configs`` for every directory above the
    installed package (a virtualenv, ``--user`` or ``--prefix`` install) and
    for ``sys.prefix``.
    """
    package = os.path.dirname(os.path.abspath(__file__))
    dirs = [os.path.dirname(package)]
    parent = package
    while True:
        dirs.append(os.path.join(parent, CONFIGS_INSTALL_DIR))
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    dirs.append(os.path.join(sys.prefix, CONFIGS_INSTALL_DIR))
    return list(dict.fromkeys(dirs))


def find_config(name):
    """Path of the shipped flagfile ``name`` (e.g. ``digits.cfg``), or None."""
    if os.path.dirname(name) or not name.endswith(".cfg"):
        return None
    for directory in shipped_config_dirs():
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


RUN_FLAGFILE = "flags.cfg"


def run_directory_flagfiles(argv):
    """``argv`` with ``--workdir=DIR`` after each ``--flagfile=DIR/flags.cfg`` whose DIR holds
    checkpoints: a run directory's own flags resume that run wherever it is now (it may have
    been moved, or written by a version that recorded a relative ``--workdir``). A later
    ``--workdir`` on the command line still chooses another directory.
    """
    out = []
    for arg in argv:
        out.append(arg)
        for prefix in ("--flagfile=", "-flagfile="):
            if arg.startswith(prefix):
                path = os.path.expanduser(arg[len(prefix):])
                directory = os.path.dirname(os.path.abspath(path))
                if os.path.basename(path) == RUN_FLAGFILE and os.path.isfile(path) and \
                        os.path.isfile(os.path.join(directory, "checkpoints", "checkpoint")):
                    out.append(f"--workdir={directory}")
    return out


def resolve_flagfiles(argv):
    """``argv`` with ``--flagfile=NAME.cfg`` pointing at the shipped copy when ``NAME.cfg``
    is not a file of the current directory, so the shipped configs work from anywhere.

    Paths that exist, and names that are not shipped, are left as they are
    (absl then reports a missing file).
    """
    out = []
    for arg in argv:
        for prefix in ("--flagfile=", "-flagfile="):
            if arg.startswith(prefix):
                name = arg[len(prefix):]
                if not os.path.exists(name):
                    found = find_config(name)
                    if found:
                        arg = prefix + found
        out.append(arg)
    return out
