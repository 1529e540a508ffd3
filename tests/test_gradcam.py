"""Grad-CAM, the keras-io recipe, on a model built the way the notebooks build one."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from helpers import gradcam


def small_cnn(name: str = "last"):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential()  # built layer by layer, as the notebooks do
    model.add(keras.Input((28, 28, 1)))
    model.add(keras.layers.Rescaling(1 / 255))
    model.add(keras.layers.Conv2D(4, 3, activation="relu"))
    model.add(keras.layers.Conv2D(4, 3, activation="relu", name=name))
    model.add(keras.layers.MaxPooling2D())
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model


def direct_gradcam(model, images, use_softmax: bool) -> np.ndarray:
    """Grad-CAM written out for ``small_cnn``: a copy of the model whose last Dense
    has no activation (keras-io's ``model.layers[-1].activation = None``), the
    gradient of the top class's score at the last convolution, upsampled to 28x28."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    if not use_softmax:
        copy.layers[-1].activation = None
    x = tf.cast(images, tf.float32)
    with tf.GradientTape() as tape:
        maps = x
        for layer in copy.layers[:3]:  # Rescaling, Conv2D, Conv2D "last"
            maps = layer(maps)
        tape.watch(maps)
        out = maps
        for layer in copy.layers[3:]:
            out = layer(out)
        top = tf.argmax(out, axis=1)
        score = tf.reduce_sum(tf.gather(out, top, batch_dims=1))
    grads = tape.gradient(score, maps).numpy()
    maps = maps.numpy()
    heat = np.maximum((maps * grads.mean(axis=(1, 2), keepdims=True)).sum(-1), 0)
    heat = tf.image.resize(heat[..., None], (28, 28), "bilinear")[..., 0].numpy()
    return heat / np.maximum(heat.max(axis=(1, 2), keepdims=True), 1e-12)


def test_gradcam_is_the_class_score_gradient_upsampled_to_the_image():
    model = small_cnn()
    images = np.random.default_rng(0).integers(0, 255, (3, 28, 28, 1))
    heatmaps = gradcam.make_gradcam_heatmap(images, model)
    assert gradcam.last_conv_layer_name(model) == "last"
    assert heatmaps.shape == (3, 28, 28)  # resized from the 24x24 feature maps
    assert heatmaps.min() >= 0
    assert heatmaps.max() == pytest.approx(1.0)
    expected = direct_gradcam(model, images, use_softmax=False)
    np.testing.assert_allclose(heatmaps, expected, atol=1e-4)
    # the probability's gradient (the softmax kept) gives other maps
    softmax = direct_gradcam(model, images, use_softmax=True)
    assert np.abs(softmax - expected).max() > 1e-3


def test_gradcam_of_a_functional_model_equals_its_sequential_twin():
    import keras

    sequential = small_cnn()
    x = inputs = keras.Input((28, 28, 1))  # the same layers, as 04 builds a model
    for layer in sequential.layers:
        x = keras.layers.deserialize(keras.layers.serialize(layer))(x)
    functional = keras.Model(inputs, x)
    functional.set_weights(sequential.get_weights())
    images = np.random.default_rng(1).integers(0, 255, (2, 28, 28, 1))
    np.testing.assert_allclose(
        gradcam.make_gradcam_heatmap(images, functional),
        gradcam.make_gradcam_heatmap(images, sequential),
        atol=1e-5,
    )
