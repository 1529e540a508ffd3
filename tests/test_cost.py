"""Training cost is counted in multiply-adds, which do not drift with the machine."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from helpers import cost


def test_reference_cnn_multiply_adds_are_counted_layer_by_layer():
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(32, 3, activation="relu"),  # 26x26 outputs
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),  # 11x11 outputs
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    by_hand = 26 * 26 * 9 * 1 * 32 + 11 * 11 * 9 * 32 * 64 + 1600 * 128 + 128 * 10
    assert cost.forward_macs(model) == by_hand == 2_631_040


def test_strided_grouped_and_nested_layers():
    inputs = keras.Input((28, 28, 8))
    x = layers.Conv2D(16, 3, strides=2, padding="same", groups=2)(inputs)  # 14x14
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(8, 3, padding="same")(x)  # 16 -> 8
    block = keras.Sequential([keras.Input((14, 14, 8)), layers.Conv2D(4, 1)])
    x = layers.add([block(x), layers.Conv2D(4, 1)(x)])  # the addition: not counted
    outputs = layers.Dense(10)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    pixels = 14 * 14
    expected = pixels * 9 * (8 // 2) * 16  # grouped conv
    expected += pixels * 9 * 16 * 8
    expected += 2 * pixels * 8 * 4  # the nested block and its twin beside it
    expected += 4 * 10
    assert cost.forward_macs(model) == expected


def test_train_flops_are_six_per_multiply_add_and_image():
    assert cost.train_flops(18_370_000, 50_000 * 10) == pytest.approx(5.511e13)


def test_depthwise_separable_and_frozen_convolutions_are_counted():
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 2, trainable=False)(inputs)  # a frozen stem: 27x27
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)  # 8 -> 16
    x = layers.SeparableConv2D(32, 3, padding="same")(x)  # 16 -> 16 -> 32
    model = keras.Model(inputs, layers.Dense(10)(layers.GlobalMaxPooling2D()(x)))
    pixels = 27 * 27
    expected = pixels * 4 * 1 * 8  # frozen, but computed all the same
    expected += pixels * 9 * 8 * 2  # each input channel's 3x3 filters
    expected += pixels * (9 * 16 + 16 * 32)  # depthwise, then pointwise
    expected += 32 * 10
    assert cost.forward_macs(model) == expected
