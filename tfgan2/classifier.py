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
"""
import keras
import numpy as np

__all__ = ["build_classifier", "train_classifier", "classifier_outputs", "stratified_split",
           "FEATURES_LAYER", "PROBABILITIES_LAYER"]

FEATURES_LAYER = "features"
PROBABILITIES_LAYER = "probabilities"


def build_classifier(input_shape, num_classes, *, features=128, dropout=0.5, name="classifier"):
    """A compact CNN for images of shape ``input_shape = (H, W, C)``.

    Conv 32 - Conv 64 (3x3, same padding, ReLU) - 2x2 max-pool (skipped when
    H or W < 2) - flatten - Dense ``features`` ReLU (layer name
    ``"features"``) - dropout - Dense ``num_classes`` softmax (layer name
    ``"probabilities"``). Not compiled.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"input_shape must be (H, W, C) with positive sizes, got {input_shape}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
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
    float64 NumPy arrays, computed in batches of ``batch_size``.
    """
    images = _check_images(images)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    extractor = keras.Model(inputs, [model.outputs[0], model.get_layer(features_layer).output])
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
