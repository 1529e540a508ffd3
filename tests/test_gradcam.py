"""Grad-CAM, the keras-io recipe, on a model built the way the notebooks build one."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import gradcam


def test_gradcam_gives_one_map_in_0_1_per_image_at_the_last_convolution():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential()  # built layer by layer, as the notebooks do
    model.add(keras.Input((28, 28, 1)))
    model.add(keras.layers.Conv2D(4, 3, activation="relu"))
    model.add(keras.layers.Conv2D(4, 3, activation="relu", name="last"))
    model.add(keras.layers.GlobalAveragePooling2D())
    model.add(keras.layers.Dense(10, activation="softmax"))
    images = np.random.default_rng(0).integers(0, 255, (3, 28, 28, 1))
    assert gradcam.last_conv_layer_name(model) == "last"
    heatmaps = gradcam.make_gradcam_heatmap(images, model)
    assert heatmaps.shape == (3, 24, 24)
    assert heatmaps.min() >= 0
    assert heatmaps.max() == pytest.approx(1.0)
