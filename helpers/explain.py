"""Where a CNN looks: Grad-CAM heat maps and the test images to show them on.

Grad-CAM (Selvaraju et al., 2017) weights each channel of a convolutional feature
map by the spatial mean of the class score's gradient with respect to it, sums the
weighted channels and keeps the positive part: the regions whose features raise the
score. Works with functional and ``keras.Sequential`` models, built or loaded from a
``.keras`` file, on the TensorFlow backend. The model runs with ``training=False``,
so augmentation layers are identity and batch normalisation uses its moving
statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from helpers.data import CLASS_NAMES, NUM_CLASSES

# Layers whose 4-D output is a coarser or identical copy of their input: the map
# just before them is the sharper one to explain.
_PASS_THROUGH_LAYERS = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
)
_CONV_LAYERS = (
    keras.layers.Conv2D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
)
_SOFTMAX_LAYERS = (keras.layers.Softmax, keras.layers.Activation)
_LOG_EPSILON = 1e-12  # floor under probabilities before the log (fallback score)


def _output_rank(layer: keras.layers.Layer) -> int | None:
    """Rank of the layer's (single) symbolic output, None if it has none or several."""
    try:
        output = layer.output
    except (AttributeError, ValueError):  # never called on a symbolic input
        return None
    return len(output.shape) if hasattr(output, "shape") else None


def find_last_conv_layer(model: keras.Model) -> str:
    """Name the layer whose feature map Grad-CAM should explain.

    That is the last layer with a 4-D output ``(n, height, width, channels)`` at or
    after the model's last convolution, skipping pooling and dropout layers (their
    map is a coarser copy of the one before them): the last Conv2D, its
    BatchNormalization, ReLU or residual Add, before pooling to a vector.

    Args:
        model: A built functional or Sequential model. Only its top-level layers are
            searched; a nested model counts as one layer.

    Returns:
        The layer name, for ``model.get_layer``.

    Raises:
        ValueError: the model has no convolutional layer (e.g. the ANN), or none
            of its layers after the last convolution has a 4-D output.
    """
    conv_positions = [
        i for i, layer in enumerate(model.layers) if isinstance(layer, _CONV_LAYERS)
    ]
    if not conv_positions:
        raise ValueError(
            f"Model {model.name!r} has no convolutional layer among its top-level "
            "layers, so no feature map for Grad-CAM (an ANN cannot be explained "
            "this way; for a wrapper around a CNN, pass the inner model)."
        )
    candidates = [
        layer
        for layer in model.layers[conv_positions[-1] :]
        if _output_rank(layer) == 4 and not isinstance(layer, _PASS_THROUGH_LAYERS)
    ]
    if not candidates:
        raise ValueError(
            f"No layer of model {model.name!r} from its last convolution on has a "
            "4-D output (n, height, width, channels)."
        )
    return candidates[-1].name


def _linear_copy(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A layer like ``layer`` (same class and config) without its activation."""
    config = layer.get_config()
    config.update(activation="linear", name=f"{layer.name}_logits")
    return layer.__class__.from_config(config)


def _is_softmax(layer: keras.layers.Layer) -> bool:
    """Whether ``layer`` ends in a softmax (a Softmax layer or that activation)."""
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.softmax or (
        getattr(activation, "__name__", "") == "softmax"
    )


def _trace_graph(
    model: keras.Model, layer_name: str
) -> tuple[keras.KerasTensor, keras.KerasTensor, keras.KerasTensor, keras.KerasTensor]:
    """Return the symbolic input, feature map, head input and output of ``model``.

    A Sequential model is traced again on a fresh input: once loaded from a file, its
    layers hold several call nodes and ``layer.output`` may belong to a stale graph.
    A functional model's own graph is used as it is.
    """
    target = model.get_layer(layer_name)
    head = model.layers[-1]
    if isinstance(model, keras.Sequential):
        x = inputs = keras.Input(shape=model.inputs[0].shape[1:])
        features = head_input = None
        for layer in model.layers:
            head_input = x
            x = layer(x)
            if layer is target:
                features = x
        return inputs, features, head_input, x
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError("grad_cam needs a model with one input and one output.")
    head_input = head.input if head.output is model.outputs[0] else None
    return model.inputs[0], target.output, head_input, model.outputs[0]


def build_score_model(model: keras.Model, layer_name: str) -> tuple[keras.Model, bool]:
    """Build a model giving the feature map of ``layer_name`` and the class scores.

    The class score is the pre-softmax logit when the model ends in a softmax that
    can be split off cleanly: a Dense (or other) layer with ``activation="softmax"``
    (rebuilt as a linear copy with the same weights) or a ``Softmax`` /
    ``Activation("softmax")`` layer (its input). Otherwise the model's output is
    returned and treated as probabilities.

    Args:
        model: A built functional or Sequential model with one input and one output.
        layer_name: The layer whose output is the feature map.

    Returns:
        ``(score_model, gives_logits)``: ``score_model(x)`` returns
        ``[features (n, h, w, c), scores (n, k)]``; ``gives_logits`` says whether
        the scores are logits (True) or softmax probabilities (False).
    """
    inputs, features, head_input, output = _trace_graph(model, layer_name)
    head = model.layers[-1]
    if head_input is not None and _is_softmax(head):
        if isinstance(head, _SOFTMAX_LAYERS):
            return keras.Model(inputs, [features, head_input]), True
        if head.weights:
            linear = _linear_copy(head)
            logits = linear(head_input)
            linear.set_weights(head.get_weights())
            return keras.Model(inputs, [features, logits]), True
    return keras.Model(inputs, [features, output]), False


def _as_image_batch(images: np.ndarray) -> np.ndarray:
    """Check and return float32 images (n, h, w, c); (n, h, w) gets a channel axis."""
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(
            f"grad_cam expects float images scaled to [0, 1], got {images.dtype} "
            "(scale uint8 pixels with data.scale_images first)."
        )
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise ValueError(
            f"grad_cam expects images (n, height, width, channels), got shape "
            f"{images.shape}."
        )
    return images.astype(np.float32, copy=False)


def _as_class_indices(
    class_indices: int | Sequence[int] | np.ndarray | None, n: int, n_classes: int
) -> np.ndarray | None:
    """Return int64 (n,) class indices, or None for "the predicted class"."""
    if class_indices is None:
        return None
    indices = np.broadcast_to(np.asarray(class_indices, dtype=np.int64), (n,))
    if indices.size and (indices.min() < 0 or indices.max() >= n_classes):
        raise ValueError(
            f"class_indices must lie in [0, {n_classes}), got "
            f"{indices.min()}..{indices.max()}."
        )
    return indices


def _class_scores(scores: tf.Tensor, gives_logits: bool) -> tf.Tensor:
    """Logits as they are; probabilities as their (floored) log."""
    if gives_logits:
        return scores
    return tf.math.log(tf.maximum(scores, _LOG_EPSILON))


def _weighted_feature_maps(
    score_model: keras.Model,
    images: np.ndarray,
    class_indices: np.ndarray | None,
    gives_logits: bool,
) -> tf.Tensor:
    """Grad-CAM maps at feature resolution, float32 (n, h', w'), not yet scaled."""
    x = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        features, scores = score_model(x, training=False)
        scores = _class_scores(scores, gives_logits)
        if class_indices is None:
            targets = tf.argmax(scores, axis=-1)
        else:
            targets = tf.convert_to_tensor(class_indices)
        # Each image's score depends on its own features only (inference mode), so
        # the gradient of the sum is every image's own gradient.
        score = tf.reduce_sum(tf.gather(scores, targets, axis=1, batch_dims=1))
    gradients = tape.gradient(score, features)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(channel_weights * features, axis=-1))


def _upsample_and_scale(maps: tf.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Resize maps (n, h', w') bilinearly to ``size`` and divide each by its max."""
    resized = tf.image.resize(maps[..., tf.newaxis], size, method="bilinear")
    resized = resized[..., 0].numpy().astype(np.float32)
    peak = resized.max(axis=(1, 2), keepdims=True)
    scaled = np.divide(resized, peak, out=np.zeros_like(resized), where=peak > 0)
    return np.clip(scaled, 0.0, 1.0)


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    class_indices: int | Sequence[int] | np.ndarray | None = None,
    layer_name: str | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Compute a Grad-CAM heat map per image: where the evidence for a class lies.

    For each image: the class score's gradient with respect to the feature map of
    ``layer_name`` is averaged over height and width, giving one weight per channel;
    the map is the ReLU of the channel-weighted sum of the features, resized
    bilinearly to the image's size and divided by its maximum.

    The class score is the **pre-softmax logit** of the class when the model ends in
    a softmax layer or a layer with ``activation="softmax"`` (every model of
    ``helpers.models``): a confident prediction saturates the softmax, and the
    gradient of the probability (or of its log, which rounds to 0 in float32)
    vanishes. Any other model's output is taken as probabilities and the score is
    their log.

    Args:
        model: A built CNN, functional or Sequential, taking (n, h, w, c) images
            and giving (n, k) class probabilities; run with ``training=False``.
        images: float32 (n, h, w, 1) or (n, h, w) images in [0, 1], as the model
            takes them.
        class_indices: Class explained per image: int (n,) or one int for all;
            None explains each image's predicted class (arg-max of the output).
        layer_name: Layer whose feature map is used; None picks
            :func:`find_last_conv_layer`.
        batch_size: Images per gradient computation.

    Returns:
        float32 heat maps (n, h, w) in [0, 1]: each map's maximum is 1, and a map
        with no positive evidence is all zeros.

    Raises:
        ValueError: integer images, a wrong image rank, a class index out of
            range, or a model without a convolutional feature map.
    """
    images = _as_image_batch(images)
    n, height, width = images.shape[:3]
    score_model, gives_logits = build_score_model(
        model, layer_name or find_last_conv_layer(model)
    )
    targets = _as_class_indices(class_indices, n, model.outputs[0].shape[-1])
    maps = [np.zeros((0, height, width), dtype=np.float32)]
    for start in range(0, n, batch_size):
        batch = slice(start, start + batch_size)
        raw = _weighted_feature_maps(
            score_model,
            images[batch],
            None if targets is None else targets[batch],
            gives_logits,
        )
        maps.append(_upsample_and_scale(raw, (height, width)))
    return np.concatenate(maps)


# --- Choosing the test images to show ---


def select_examples(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_classes: int = NUM_CLASSES,
    seed: int = 0,
) -> list[tuple[int | None, int | None]]:
    """Pick one correctly and one wrongly classified image of each true class.

    Args:
        y_true: int (n,) true labels.
        y_pred: int (n,) predicted labels (e.g. ``probs.argmax(axis=1)``).
        n_classes: Classes 0..n_classes-1, one pair each.
        seed: Which of the candidates is drawn; the same seed gives the same picks.

    Returns:
        For each class ``c`` in order, ``(right, wrong)``: the index of a random
        image with ``y_true == c == y_pred`` and of one with ``y_true == c !=
        y_pred``; None where the class has no such image.

    Raises:
        ValueError: ``y_true`` and ``y_pred`` differ in length.
    """
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred differ in length: {len(y_true)} vs {len(y_pred)}."
        )
    rng = np.random.default_rng(seed)

    def pick(mask: np.ndarray) -> int | None:
        candidates = np.flatnonzero(mask)
        return int(rng.choice(candidates)) if candidates.size else None

    right = y_true == y_pred
    return [
        (pick((y_true == c) & right), pick((y_true == c) & ~right))
        for c in range(n_classes)
    ]


@dataclass(frozen=True)
class GradCamPanels:
    """What :func:`helpers.plotting.plot_grad_cam` draws, one entry per panel.

    Attributes:
        images: float (28, 28) images in [0, 1], None for a missing example.
        heatmaps: float32 (28, 28) Grad-CAM maps in [0, 1], None where missing.
        titles: Panel titles, e.g. ``"Coat\\n→ Shirt 64%"``.
        correct: True / False for a right / wrong prediction, None where missing.
    """

    images: list[np.ndarray | None]
    heatmaps: list[np.ndarray | None]
    titles: list[str]
    correct: list[bool | None]


def describe_prediction(
    true_class: int,
    probs: np.ndarray,
    class_names: Sequence[str] = CLASS_NAMES,
) -> str:
    """Title one prediction: ``"Coat\\n✓ 97%"`` if right, ``"Coat\\n→ Shirt 64%"``.

    Args:
        true_class: The image's label.
        probs: float (k,) class probabilities of the image.
        class_names: Names in label order.
    """
    predicted = int(np.argmax(probs))
    verdict = "✓" if predicted == true_class else f"→ {class_names[predicted]}"
    return f"{class_names[true_class]}\n{verdict} {probs[predicted]:.0%}"


def explain_examples(
    model: keras.Model,
    images: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    picks: Sequence[tuple[int | None, int | None]],
    class_names: Sequence[str] = CLASS_NAMES,
    layer_name: str | None = None,
) -> GradCamPanels:
    """Compute Grad-CAM of the predicted class for picked images, ready to plot.

    The class explained is the arg-max of ``probs``, the prediction the title
    names (with test-time augmentation it may differ from one plain forward pass).

    Args:
        model: The trained CNN.
        images: float32 (n, 28, 28, 1) images in [0, 1], e.g. the test inputs.
        y_true: int (n,) labels.
        probs: float (n, k) predicted probabilities of ``model`` for ``images``.
        picks: ``picks[c]`` is the ``(right, wrong)`` index pair of class ``c``,
            as :func:`select_examples` returns them.
        class_names: Names in label order, for the titles.
        layer_name: Feature layer; None picks :func:`find_last_conv_layer`.

    Returns:
        The panels in order class 0 right, class 0 wrong, class 1 right, ...; a
        None index gives a panel without image, titled ``"<class>\\nnone right"``
        or ``"<class>\\nno mistake"``.
    """
    shown = [index for pair in picks for index in pair if index is not None]
    predicted = np.asarray(probs)[shown].argmax(axis=1)  # the class in the title
    maps = iter(grad_cam(model, images[shown], predicted, layer_name=layer_name))
    panels = GradCamPanels([], [], [], [])
    for c, pair in enumerate(picks):
        for index, missing in zip(pair, ("none right", "no mistake"), strict=True):
            if index is None:
                panels.images.append(None)
                panels.heatmaps.append(None)
                panels.titles.append(f"{class_names[c]}\n{missing}")
                panels.correct.append(None)
                continue
            panels.images.append(np.asarray(images[index]).reshape(images.shape[1:3]))
            panels.heatmaps.append(next(maps))
            panels.titles.append(
                describe_prediction(int(y_true[index]), probs[index], class_names)
            )
            panels.correct.append(bool(np.argmax(probs[index]) == y_true[index]))
    return panels
