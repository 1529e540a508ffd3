"""Bootstrap intervals and McNemar's test, against scipy and values worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from helpers import gradcam, stats


def test_bootstrap_interval_brackets_the_accuracy_with_the_binomial_width():
    correct = np.zeros(10_000, bool)
    correct[:9_000] = True
    low, high = stats.bootstrap_accuracy_ci(correct)
    assert low < 0.9 < high
    half_width = 1.96 * np.sqrt(0.9 * 0.1 / 10_000)  # normal approximation: 0.0059
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    assert stats.bootstrap_accuracy_ci(correct) == (low, high)  # seeded


def test_mcnemar_counts_the_discordant_images_and_matches_the_hand_value():
    a = np.array([True] * 10 + [False] * 2 + [True] * 5)
    b = np.array([False] * 10 + [True] * 2 + [True] * 5)
    result = stats.mcnemar_exact(a, b)
    assert (result["only_a"], result["only_b"]) == (10, 2)
    # two-sided: 2 * P(X <= 2), X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66) / 4096
    assert result["p_value"] == pytest.approx(158 / 4096)
    assert result["p_value"] == pytest.approx(scipy_stats.binomtest(10, 12).pvalue)


def test_mcnemar_of_identical_classifiers_is_one():
    same = np.array([True, False, True])
    assert stats.mcnemar_exact(same, same) == {"only_a": 0, "only_b": 0, "p_value": 1.0}


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
