"""A small image classifier used as the feature extractor of domain-specific sample metrics.

Inception-v3 features mean little for 8x8 or 28x28 images, so quality of
small-image GANs is measured with a classifier trained on the real data of
the domain: its softmax output gives an Inception-Score analogue, its hidden
"features" layer the activations for Fréchet distance, KID and
precision/recall (see `tfgan2.metrics`). Nothing here knows which dataset it
is given: every function takes arrays.

    model, accuracy = train_classifier(images, labels, epochs=20, seed=0)
    probs, feats = classifier_outputs(model, generated_images)
    model.save("classifier.keras")
    model = keras.models.load_model("classifier.keras", safe_mode=True)

The multi-label variant (`build_attribute_classifier`, one sigmoid per
attribute, e.g. CelebA's 40) serves latent arithmetic by attribute:

    model, info = load_or_train_attribute_classifier("attributes.keras", images, attributes)
    probs, _ = classifier_outputs(model, generated_images)   # (N, A) in [0, 1]

Every classifier here computes in float32 whatever the global Keras policy a
run trains under (`tfgan2.full_precision`): built, trained, loaded and run so,
its metrics do not change with the training precision.
"""
import json
import os

import keras
import numpy as np

from tfgan2 import full_precision

__all__ = ["build_classifier", "train_classifier", "classifier_outputs", "stratified_split",
           "FEATURES_LAYER", "PROBABILITIES_LAYER", "build_attribute_classifier",
           "train_attribute_classifier", "load_or_train_attribute_classifier",
           "attribute_accuracy", "random_split", "ATTRIBUTE_THRESHOLD"]

FEATURES_LAYER = "features"
PROBABILITIES_LAYER = "probabilities"


def build_classifier(input_shape, num_classes, *, features=128, dropout=0.5, name="classifier"):
    """A compact CNN for images of shape ``input_shape = (H, W, C)``.

    Conv 32 - Conv 64 (3x3, same padding, ReLU) - 2x2 max-pool (skipped when
    H or W < 2) - flatten - Dense ``features`` ReLU (layer name
    ``"features"``) - dropout - Dense ``num_classes`` softmax (layer name
    ``"probabilities"``). Not compiled. Computes in float32 under any global
    policy.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"input_shape must be (H, W, C) with positive sizes, got {input_shape}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    with full_precision.float32_scope():
        return _classifier_network(input_shape, num_classes, features, dropout, name)


def _classifier_network(input_shape, num_classes, features, dropout, name):
    inputs = keras.Input(shape=input_shape, name="images")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    if min(input_shape[:2]) >= 2:
        x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(features, activation="relu", name=FEATURES_LAYER)(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=PROBABILITIES_LAYER)(x)
    return keras.Model(inputs, outputs, name=name)


def stratified_split(labels, holdout_fraction, seed=0):
    """Indices ``(train, holdout)`` with ``holdout_fraction`` of every class held out.

    Each class with ``n_c`` examples contributes ``round(holdout_fraction * n_c)``
    randomly chosen examples to the hold-out set (at least one when
    ``n_c >= 2`` and the fraction is positive). Both index arrays are sorted.
    """
    labels = np.asarray(labels).reshape(-1)
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    rng = np.random.default_rng(seed)
    holdout = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = int(round(holdout_fraction * len(members)))
        if holdout_fraction > 0 and len(members) >= 2:
            take = min(max(take, 1), len(members) - 1)
        holdout.append(rng.choice(members, size=take, replace=False))
    holdout = np.sort(np.concatenate(holdout)) if holdout else np.zeros(0, dtype=int)
    train = np.setdiff1d(np.arange(len(labels)), holdout)
    return train, holdout


def _check_images(images, name="images"):
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"{name} must be (N, H, W, C), got shape {images.shape}")
    return images


def train_classifier(images, labels, *, num_classes=None, epochs=20, batch_size=64, seed=0,
                     validation_split=0.25, validation_data=None, learning_rate=1e-3,
                     verbose=0):
    """Trains `build_classifier` on ``images`` ``(N, H, W, C)`` and integer ``labels`` ``(N,)``.

    The held-out set is ``validation_data = (images, labels)`` when given,
    otherwise a stratified ``validation_split`` of the inputs
    (`stratified_split` with ``seed``); with ``validation_split=0`` and no
    validation data every example is used for training and the accuracy is
    ``None``. Adam with sparse categorical cross-entropy. ``seed`` also seeds
    Keras (weights, dropout, shuffling) through `keras.utils.set_random_seed`,
    which sets the process-wide Python, NumPy and TensorFlow seeds.

    Returns ``(model, accuracy)``: the trained model and its accuracy on the
    held-out set (a float in [0, 1]).
    """
    images = _check_images(images)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")

    if validation_data is not None:
        x_train, y_train = images, labels
        x_val = _check_images(validation_data[0], "validation images")
        y_val = np.asarray(validation_data[1]).astype(np.int64).reshape(-1)
    elif validation_split > 0:
        train_idx, val_idx = stratified_split(labels, validation_split, seed)
        x_train, y_train = images[train_idx], labels[train_idx]
        x_val, y_val = images[val_idx], labels[val_idx]
    else:
        x_train, y_train, x_val, y_val = images, labels, None, None

    keras.utils.set_random_seed(seed)
    model = build_classifier(images.shape[1:], num_classes)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True,
              verbose=verbose)
    if x_val is None:
        return model, None
    probs, _ = classifier_outputs(model, x_val, batch_size=max(batch_size, 256))
    accuracy = float(np.mean(probs.argmax(axis=1) == y_val))
    return model, accuracy


def classifier_outputs(model, images, batch_size=256, features_layer=FEATURES_LAYER):
    """Runs ``model`` in inference mode and returns ``(probabilities, features)``.

    ``probabilities`` are the model outputs ``(N, num_classes)``, ``features``
    the activations of the layer named ``features_layer`` ``(N, F)``; both
    float64 NumPy arrays, computed in batches of ``batch_size``. The model
    computes in float32: layers built under a mixed policy are switched
    (`tfgan2.full_precision.float32_model`, in place).
    """
    images = _check_images(images)
    full_precision.float32_model(model)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    with full_precision.float32_scope():
        extractor = keras.Model(inputs, [model.outputs[0],
                                         model.get_layer(features_layer).output])
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
        p, f = extractor.predict_on_batch(images[start:start + batch_size])
        probs.append(np.asarray(p))
        feats.append(np.asarray(f))
    if not probs:
        num_classes = model.outputs[0].shape[-1]
        features = model.get_layer(features_layer).output.shape[-1]
        return np.zeros((0, num_classes)), np.zeros((0, features))
    return (np.concatenate(probs).astype(np.float64),
            np.concatenate(feats).astype(np.float64))


# ------------------------------------------------------------------ multi-label attributes
ATTRIBUTE_THRESHOLD = 0.5


def build_attribute_classifier(input_shape, num_attributes, *, features=128, dropout=0.5,
                               name="attribute_classifier"):
    """`build_classifier`'s CNN with ``num_attributes`` independent sigmoid outputs.

    ``p_k(x) = sigmoid(w_k . h(x) + b_k)`` is the probability that image
    ``x`` has attribute ``k``, ``h`` the ``"features"`` layer. The output
    layer is named ``"probabilities"`` as in `build_classifier`, so
    `classifier_outputs` works on both. Not compiled. Computes in float32
    under any global policy.
    """
    if int(num_attributes) != num_attributes or num_attributes < 1:
        raise ValueError(f"num_attributes must be a positive integer, got {num_attributes!r}")
    trunk = build_classifier(input_shape, 2, features=features, dropout=dropout, name=name)
    hidden = trunk.get_layer("dropout").output
    with full_precision.float32_scope():
        outputs = keras.layers.Dense(int(num_attributes), activation="sigmoid",
                                     name=PROBABILITIES_LAYER)(hidden)
        return keras.Model(trunk.inputs, outputs, name=name)


def _check_attributes(attributes, num_images):
    attributes = np.asarray(attributes, dtype=np.float32)
    if attributes.ndim == 1:
        attributes = attributes[:, None]
    if attributes.ndim != 2 or len(attributes) != num_images:
        raise ValueError(f"attributes must be (N, A) with one row per image ({num_images}), "
                         f"got shape {attributes.shape}")
    if not np.all((attributes == 0) | (attributes == 1)):
        raise ValueError("attributes must hold 0/1 values")
    return attributes


def attribute_accuracy(probabilities, attributes, threshold=ATTRIBUTE_THRESHOLD):
    """Per-attribute accuracy ``acc_k = mean_i [ (p_ik > threshold) == a_ik ]``, shape ``(A,)``."""
    probabilities = np.asarray(probabilities, np.float64)
    attributes = np.asarray(attributes).reshape(probabilities.shape)
    return np.mean((probabilities > threshold) == (attributes > 0.5), axis=0)


def random_split(num_examples, holdout_fraction, seed=0):
    """Sorted indices ``(train, holdout)``, ``round(holdout_fraction * N)`` random ones held out.

    The multi-label counterpart of `stratified_split` (no single class to
    stratify on); at least one example is held out when the fraction is
    positive and ``N >= 2``, and at least one is kept for training.
    """
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    n = int(num_examples)
    take = int(round(holdout_fraction * n))
    if holdout_fraction > 0 and n >= 2:
        take = min(max(take, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[take:]), np.sort(order[:take])


def train_attribute_classifier(images, attributes, *, epochs=10, batch_size=64, seed=0,
                               validation_split=0.25, validation_data=None, learning_rate=1e-3,
                               verbose=0):
    """Trains `build_attribute_classifier` on ``images`` (N, H, W, C) and 0/1 ``attributes`` (N, A).

    Loss: the binary cross-entropy averaged over attributes,
    ``-1/A sum_k [a_k log p_k + (1 - a_k) log(1 - p_k)]``, with Adam. The
    held-out set is ``validation_data = (images, attributes)`` when given,
    otherwise a random ``validation_split`` of the inputs (`random_split`
    with ``seed``); ``seed`` also seeds Keras (`keras.utils.set_random_seed`).

    Returns ``(model, accuracy)``: ``accuracy`` is `attribute_accuracy` on
    the held-out set, ``(A,)`` float64, or ``None`` without a held-out set.
    """
    images = _check_images(images)
    attributes = _check_attributes(attributes, len(images))
    if validation_data is not None:
        x_train, y_train = images, attributes
        x_val = _check_images(validation_data[0], "validation images")
        y_val = _check_attributes(validation_data[1], len(x_val))
    elif validation_split > 0:
        train_idx, val_idx = random_split(len(images), validation_split, seed)
        x_train, y_train = images[train_idx], attributes[train_idx]
        x_val, y_val = images[val_idx], attributes[val_idx]
    else:
        x_train, y_train, x_val, y_val = images, attributes, None, None

    keras.utils.set_random_seed(seed)
    model = build_attribute_classifier(images.shape[1:], attributes.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True,
              verbose=verbose)
    if x_val is None or not len(x_val):
        return model, None
    probs, _ = classifier_outputs(model, x_val, batch_size=max(batch_size, 256))
    return model, attribute_accuracy(probs, y_val)


def load_or_train_attribute_classifier(path, images, attributes, *, epochs=10, seed=0,
                                       holdout_fraction=0.25, names=None):
    """The attribute classifier stored at ``path`` (``.keras``), trained and saved first if needed.

    Trained with `train_attribute_classifier` on a random ``1 -
    holdout_fraction`` of the examples (`random_split` with ``seed``). Its
    settings, attribute ``names`` and held-out accuracy per attribute go to
    ``path`` with ``.json`` in place of ``.keras``; a stored model is loaded
    with ``safe_mode=True`` only when those settings match, else retrained;
    either way it computes in float32 (`tfgan2.full_precision`).

    Returns ``(model, info)``: ``info`` holds the settings, ``accuracy`` (a
    list, one per attribute, or None) and ``trained`` (True when trained by
    this call).
    """
    images = _check_images(images)
    attributes = _check_attributes(attributes, len(images))
    names = list(names) if names is not None else None
    if names is not None and len(names) != attributes.shape[1]:
        raise ValueError(f"{len(names)} names for {attributes.shape[1]} attributes")
    settings = {"epochs": int(epochs), "seed": int(seed),
                "holdout_fraction": float(holdout_fraction), "num_examples": int(len(images)),
                "image_shape": list(images.shape[1:]), "num_attributes": int(attributes.shape[1]),
                "names": names}
    info_path = os.path.splitext(path)[0] + ".json"
    if os.path.isfile(path) and os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as f:
            stored = json.load(f)
        if all(stored.get(k) == v for k, v in settings.items()):
            model = keras.models.load_model(path, safe_mode=True)
            return full_precision.float32_model(model), dict(stored, trained=False)
    train_idx, holdout_idx = random_split(len(images), holdout_fraction, seed)
    holdout = (images[holdout_idx], attributes[holdout_idx]) if len(holdout_idx) else None
    model, accuracy = train_attribute_classifier(
        images[train_idx], attributes[train_idx], epochs=epochs, seed=seed, validation_split=0.0,
        validation_data=holdout)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
    stored = dict(settings, accuracy=None if accuracy is None else accuracy.tolist())
    tmp_info = f"{info_path}.{os.getpid()}.tmp"
    with open(tmp_info, "w", encoding="utf-8") as f:
        json.dump(stored, f, indent=2)
    os.replace(tmp_info, info_path)
    return model, dict(stored, trained=True)
