"""Grad-CAM: which pixels raised the predicted class's score.

The keras-io example (``examples/vision/grad_cam.py``, by fchollet), batched.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def last_conv_layer_name(model: keras.Model) -> str:
    """Return the name of the model's last ``Conv2D`` layer."""
    convs = [
        layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    if not convs:
        raise ValueError(f"{model.name} has no Conv2D layer: Grad-CAM needs one.")
    return convs[-1]


def make_gradcam_heatmap(
    images: np.ndarray, model: keras.Model, layer_name: str | None = None
) -> np.ndarray:
    """Grad-CAM heat maps of each image's predicted class.

    Args:
        images: A batch the model takes, e.g. uint8 (n, 28, 28, 1).
        model: A functional or Sequential model ending in class scores.
        layer_name: The convolution whose feature maps are weighted; default the
            last ``Conv2D``.

    Returns:
        float32 (n, h, w) maps in [0, 1] at that layer's resolution.
    """
    layer = model.get_layer(layer_name or last_conv_layer_name(model))
    if isinstance(model, keras.Sequential):  # trace it again: layer.output may
        x = inputs = keras.Input(model.input_shape[1:])  # belong to an older graph
        outputs = {}
        for each in model.layers:
            x = outputs[each.name] = each(x)
        grad_model = keras.Model(inputs, [outputs[layer.name], x])
    else:
        grad_model = keras.Model(model.inputs, [layer.output, model.outputs[0]])
    with tf.GradientTape() as tape:
        feature_maps, predictions = grad_model(tf.cast(images, tf.float32))
        top_class = tf.argmax(predictions, axis=1)
        class_score = tf.gather(predictions, top_class, batch_dims=1)
    grads = tape.gradient(class_score, feature_maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # one per channel
    heatmaps = tf.nn.relu(tf.reduce_sum(feature_maps * weights, axis=-1))
    peak = tf.reduce_max(heatmaps, axis=(1, 2), keepdims=True)
    return (heatmaps / tf.maximum(peak, 1e-12)).numpy()
