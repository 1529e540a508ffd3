"""Grad-CAM: which pixels raised the predicted class's score.

The keras-io example (``examples/vision/grad_cam.py``, by fchollet), batched: the
gradient of the class *score* (the last ``Dense`` without its softmax), the map
resized smoothly (bilinear) to the image and scaled to [0, 1].
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
    """Return float32 (n, height, width) Grad-CAM maps of each image's predicted
    class, resized bilinearly to the images and scaled to a maximum of 1. ``images``:
    e.g. uint8 (n, 28, 28, 1); ``model``: its last layer a ``Dense``, whose softmax
    is left out (keras-io's choice); ``layer_name``: default the last ``Conv2D``."""
    layer = model.get_layer(layer_name or last_conv_layer_name(model))
    head = model.layers[-1]  # the class scores: features @ kernel + bias
    if isinstance(model, keras.Sequential):  # trace it again: layer.output may
        x = inputs = keras.Input(model.input_shape[1:])  # belong to an older graph
        outputs = {}
        for each in model.layers[:-1]:
            x = outputs[each.name] = each(x)
        grad_model = keras.Model(inputs, [outputs[layer.name], x])
    else:
        grad_model = keras.Model(model.inputs, [layer.output, head.input])
    with tf.GradientTape() as tape:
        feature_maps, features = grad_model(tf.cast(images, tf.float32))
        scores = tf.matmul(features, head.kernel) + head.bias  # before the softmax
        class_score = tf.gather(scores, tf.argmax(scores, axis=1), batch_dims=1)
    grads = tape.gradient(class_score, feature_maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # one per channel
    heatmaps = tf.nn.relu(tf.reduce_sum(feature_maps * weights, axis=-1))
    heatmaps = tf.image.resize(heatmaps[..., None], images.shape[1:3], "bilinear")
    peak = tf.reduce_max(heatmaps, axis=(1, 2, 3), keepdims=True)
    return (heatmaps / tf.maximum(peak, 1e-12))[..., 0].numpy()
