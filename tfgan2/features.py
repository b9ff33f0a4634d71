"""Feature extractors for `tfgan2.metrics`: Inception-v3 and a domain classifier.

An extractor maps images ``(N, H, W, C)`` in [-1, 1] to
``(probabilities, features)``: class probabilities ``(N, K)`` (for the
Inception Score and for labelling samples) and activations ``(N, F)`` (for
Fréchet distance, KID and precision/recall), both float64 NumPy arrays.

* `InceptionExtractor`: Keras' ImageNet Inception-v3. Features are the 2,048
  activations of the global average pool in front of the classifier (what
  FID calls "pool3"), probabilities the softmax of its 1,000 logits. Weights
  come from a local file: this module never downloads.
* `ClassifierExtractor`: the small domain CNN of `tfgan2.classifier`, trained
  on the real data of the run (`load_or_train_classifier`): its ``features``
  layer and softmax output. For 8x8 or 28x28 images this measures far more
  than Inception-v3 upsampled from a few pixels.

Values are only comparable for the same extractor and the same sample counts.
Both extractors compute in float32 whatever the global Keras policy a run
trains under (`tfgan2.full_precision`), so a run in ``mixed_bfloat16`` or
``mixed_float16`` gets the numbers of a float32 run.
"""
import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfgan2 import classifier as classifier_lib
from tfgan2 import full_precision

__all__ = ["INCEPTION_WEIGHTS_FILE", "INCEPTION_WEIGHTS_URL", "INCEPTION_SIZE",
           "prepare_inception_images", "InceptionExtractor", "ClassifierExtractor",
           "load_or_train_classifier"]

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
INCEPTION_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                         "inception_v3/" + INCEPTION_WEIGHTS_FILE)
INCEPTION_RELEASES = "https://github.com/fchollet/deep-learning-models/releases"
INCEPTION_SIZE = 299


def _images(images, name="images"):
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be (N, H, W, C) with C = 1 or 3, got {images.shape}")
    if not np.all(np.isfinite(images)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return images


def prepare_inception_images(images, size=INCEPTION_SIZE):
    """Images in [-1, 1] as Inception-v3 input: ``(N, size, size, 3)`` float32 in [-1, 1].

    Grayscale is repeated to three channels; images are resized to
    ``size x size`` by bilinear interpolation without antialiasing (as the
    reference FID code, TTUR, and TF-GAN's ``preprocess_image`` do; they
    resize uint8 [0, 255] data and then rescale, which is the same up to
    rounding because both steps are linear); values are clipped to [-1, 1],
    the range Keras' Inception-v3 expects (its ``preprocess_input`` maps
    [0, 255] to it with ``x / 127.5 - 1``).
    """
    x = _images(images)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.shape[1:3] != (size, size):
        x = tf.image.resize(x, (size, size), method="bilinear", antialias=False).numpy()
    return np.clip(x, -1.0, 1.0)


def _softmax(logits):
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


class InceptionExtractor:
    """Inception-v3 pool features (2,048-d) and ImageNet class probabilities.

    Args:
      weights_path: a local copy of Keras' ImageNet Inception-v3 weights with
        the classifier, ``inception_v3_weights_tf_dim_ordering_tf_kernels.h5``
        (from the keras-applications GitHub releases or Keras' own storage,
        `INCEPTION_WEIGHTS_URL`).
      random_weights: build the network with random initial weights instead
        (``weights_path`` must then be None). Only for testing shapes: such
        features measure nothing.
      input_size: side of the square network input (299 for the reference
        preprocessing; Keras accepts 75 and above).
      batch_size: images per forward pass.

    Note the Keras weights are the 1,000-class Inception-v3 of
    ``keras.applications``, not the 2015 TensorFlow graph (1,008 outputs)
    that published FID numbers use; values are close to but not identical
    with those of the TTUR code.

    Raises:
      FileNotFoundError: ``weights_path`` does not name a file.
    """

    name = "inception"

    def __init__(self, weights_path=None, *, random_weights=False, input_size=INCEPTION_SIZE,
                 batch_size=50):
        if random_weights:
            if weights_path is not None:
                raise ValueError("pass either weights_path or random_weights=True, not both")
        else:
            if not weights_path or not os.path.isfile(os.path.expanduser(weights_path)):
                raise FileNotFoundError(
                    f"No Inception-v3 weights at {weights_path!r}. This machine does not "
                    f"download them: get {INCEPTION_WEIGHTS_FILE} (the Keras applications "
                    f"release file, {INCEPTION_RELEASES} or {INCEPTION_WEIGHTS_URL}), copy it "
                    f"here and pass --inception_weights=PATH (in Python: "
                    f"InceptionExtractor(weights_path=PATH)).")
            weights_path = os.path.expanduser(weights_path)
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.weights_path = weights_path
        with full_precision.float32_scope():
            net = keras.applications.InceptionV3(
                include_top=True, weights=None,
                input_shape=(self.input_size, self.input_size, 3), classifier_activation=None)
            if weights_path is not None:
                net.load_weights(weights_path)
            # One pass yields both heads: the pooled features and the logits on top of them.
            self._model = keras.Model(net.inputs,
                                      [net.outputs[0], net.get_layer("avg_pool").output])
        self.network = net  # the whole Inception-v3 (logits), for feature models built on it

    def __call__(self, images):
        """``(probabilities (N, 1000), features (N, 2048))`` of images in [-1, 1]."""
        images = _images(images)
        logits, feats = [], []
        for start in range(0, len(images), self.batch_size):
            batch = prepare_inception_images(images[start:start + self.batch_size],
                                             self.input_size)
            lo, fe = self._model.predict_on_batch(batch)
            logits.append(np.asarray(lo, np.float64))
            feats.append(np.asarray(fe, np.float64))
        if not logits:
            return np.zeros((0, 1000)), np.zeros((0, 2048))
        return _softmax(np.concatenate(logits)), np.concatenate(feats)


class ClassifierExtractor:
    """``(softmax probabilities, hidden "features" activations)`` of a `tfgan2.classifier` model."""

    name = "classifier"

    def __init__(self, model, batch_size=256):
        self.model = full_precision.float32_model(model)
        self.batch_size = int(batch_size)

    @property
    def num_classes(self):
        return int(self.model.outputs[0].shape[-1])

    def __call__(self, images):
        return classifier_lib.classifier_outputs(self.model, _images(images),
                                                 batch_size=self.batch_size)

    def predict(self, images):
        """Predicted class of each image, ``(N,)`` int64."""
        probs, _ = self(images)
        return probs.argmax(axis=1)


def load_or_train_classifier(path, images, labels, *, num_classes=None, epochs=30,
                             holdout_fraction=0.25, seed=0):
    """The domain classifier stored at ``path`` (a ``.keras`` file), trained first if needed.

    The classifier is trained (`tfgan2.classifier.train_classifier`) on a
    stratified ``1 - holdout_fraction`` of ``images`` / ``labels`` and its
    accuracy measured on the rest (`tfgan2.classifier.stratified_split` with
    ``seed``). The model is saved to ``path`` and its settings and accuracy
    to ``path`` with ``.json`` in place of ``.keras``. A stored model is
    loaded with ``safe_mode=True`` and reused when its settings (epochs,
    split, seed, number of examples) match; otherwise it is retrained. Either
    way it computes in float32 (a file saved with mixed-precision layers is
    switched on loading, `tfgan2.full_precision.float32_model`).

    Returns:
      ``(model, info)`` where ``info`` holds ``heldout_accuracy``,
      ``train_indices``, ``heldout_indices`` (into ``images``), ``epochs``,
      ``seed``, ``holdout_fraction``, ``num_examples`` and ``trained`` (True
      when trained by this call).
    """
    images = _images(images)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    train_idx, holdout_idx = classifier_lib.stratified_split(labels, holdout_fraction, seed)
    settings = {"epochs": int(epochs), "seed": int(seed),
                "holdout_fraction": float(holdout_fraction), "num_examples": int(len(images)),
                "num_classes": num_classes, "image_shape": list(images.shape[1:])}
    info_path = os.path.splitext(path)[0] + ".json"
    if os.path.isfile(path) and os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as f:
            stored = json.load(f)
        if all(stored.get(k) == v for k, v in settings.items()):
            model = full_precision.float32_model(keras.models.load_model(path, safe_mode=True))
            return model, dict(stored, train_indices=train_idx, heldout_indices=holdout_idx,
                               trained=False)
    model, accuracy = classifier_lib.train_classifier(
        images[train_idx], labels[train_idx], num_classes=num_classes, epochs=epochs, seed=seed,
        validation_data=(images[holdout_idx], labels[holdout_idx]) if len(holdout_idx) else None,
        validation_split=0.0)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
    stored = dict(settings, heldout_accuracy=accuracy)
    with open(info_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(stored, f, indent=2)
    os.replace(info_path + ".tmp", info_path)
    return model, dict(stored, train_indices=train_idx, heldout_indices=holdout_idx, trained=True)
