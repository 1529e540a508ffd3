"""Grad-CAM maps have the input's size, lie in [0, 1] and light up the object."""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from helpers import explain, models, plotting

SQUARE = (slice(4, 10), slice(16, 22))  # a 6x6 square, up and right of centre


def square_image() -> np.ndarray:
    """A black float32 (1, 28, 28, 1) image with one bright square at SQUARE."""
    image = np.zeros((1, 28, 28, 1), dtype=np.float32)
    image[0, SQUARE[0], SQUARE[1], 0] = 1.0
    return image


def square_detector(evidence: float = 1.0) -> keras.Sequential:
    """A hand-set CNN: brightness is evidence for class 0 and against class 1.

    A 3x3 averaging convolution with stride 2 (a 14x14 map, so the heat map is
    upsampled), ReLU, global average pooling, and a Dense layer with weight
    ``+evidence`` to class 0 and ``-evidence`` to class 1, then softmax.
    """
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(1, 3, strides=2, padding="same", name="conv"),
            keras.layers.ReLU(name="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax", name="head"),
        ]
    )
    model.get_layer("conv").set_weights(
        [np.full((3, 3, 1, 1), 1 / 9, np.float32), np.zeros(1, np.float32)]
    )
    model.get_layer("head").set_weights(
        [np.array([[evidence, -evidence]], np.float32), np.zeros(2, np.float32)]
    )
    return model


def inside_square(heatmap: np.ndarray) -> np.ndarray:
    mask = np.zeros(heatmap.shape, dtype=bool)
    mask[SQUARE] = True
    return mask


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("variant", ["baseline", "plus"])
def test_grad_cam_maps_have_input_size_and_unit_range(variant):
    keras.utils.set_random_seed(0)
    model = models.build_cnn(variant)
    images = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    maps = explain.grad_cam(model, images, batch_size=2)  # 3 batches: 2, 2, 1
    assert maps.shape == (5, 28, 28)
    assert maps.dtype == np.float32
    assert maps.min() >= 0.0
    assert maps.max() <= 1.0
    peaks = maps.max(axis=(1, 2))
    assert np.all((peaks == 1.0) | (peaks == 0.0)), "each map scaled to its max"


def test_grad_cam_runs_with_augmentation_off():
    keras.utils.set_random_seed(0)
    model = models.build_cnn("plus")  # random translation, flip and erasing inside
    images = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    first = explain.grad_cam(model, images, class_indices=3)
    second = explain.grad_cam(model, images, class_indices=3)
    np.testing.assert_array_equal(first, second)


def test_heat_map_peaks_over_the_bright_square():
    heatmap = explain.grad_cam(square_detector(), square_image(), class_indices=0)[0]
    row, col = np.unravel_index(heatmap.argmax(), heatmap.shape)
    assert inside_square(heatmap)[row, col], f"peak at {(row, col)}, not on square"
    inside = heatmap[inside_square(heatmap)].mean()
    outside = heatmap[~inside_square(heatmap)].mean()
    assert inside > 0.5
    assert inside > 10 * outside


def test_heat_map_of_a_trained_cnn_peaks_over_the_square():
    # About two seconds: 512 images, half with a random bright square, 8 epochs.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = np.zeros((512, 28, 28, 1), dtype=np.float32)
    y = np.arange(512) % 2  # 1: a square somewhere, 0: black
    for i in np.flatnonzero(y):
        row, col = rng.integers(0, 23, size=2)
        x[i, row : row + 6, col : col + 6] = 1.0
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert model.predict(square_image(), verbose=0).argmax() == 1

    heatmap = explain.grad_cam(model, square_image())[0]
    row, col = np.unravel_index(heatmap.argmax(), heatmap.shape)
    assert inside_square(heatmap)[row, col], f"peak at {(row, col)}, not on square"
    inside = heatmap[inside_square(heatmap)].mean()
    assert inside > 5 * heatmap[~inside_square(heatmap)].mean()


def test_predicted_class_is_explained_by_default():
    model, image = square_detector(), square_image()
    assert model.predict(image, verbose=0).argmax() == 0
    np.testing.assert_array_equal(
        explain.grad_cam(model, image), explain.grad_cam(model, image, class_indices=0)
    )


def test_class_with_only_negative_evidence_gets_an_all_zero_map():
    heatmap = explain.grad_cam(square_detector(), square_image(), class_indices=1)
    assert np.all(heatmap == 0.0)


def test_confident_prediction_still_has_a_heat_map():
    # Softmax of 1.0 in float32: the gradient of the probability (and its log) is 0;
    # the logit's is not.
    model = square_detector(evidence=2_000.0)
    assert model.predict(square_image(), verbose=0)[0, 0] == 1.0
    heatmap = explain.grad_cam(model, square_image())[0]
    row, col = np.unravel_index(heatmap.argmax(), heatmap.shape)
    assert heatmap.max() == 1.0
    assert inside_square(heatmap)[row, col]


def test_grad_cam_of_a_reloaded_sequential_model_matches_the_original(tmp_path):
    model = square_detector()
    model.save(tmp_path / "detector.keras")
    reloaded = keras.saving.load_model(tmp_path / "detector.keras")
    np.testing.assert_allclose(
        explain.grad_cam(reloaded, square_image()),
        explain.grad_cam(model, square_image()),
        atol=1e-6,
    )


def test_find_last_conv_layer_picks_the_last_feature_map():
    baseline = models.build_cnn("baseline")
    last_conv = [
        layer for layer in baseline.layers if isinstance(layer, keras.layers.Conv2D)
    ][-1]
    assert explain.find_last_conv_layer(baseline) == last_conv.name  # not the pool

    plus = models.build_cnn("plus")
    pooling = next(
        layer
        for layer in plus.layers
        if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    )
    chosen = plus.get_layer(explain.find_last_conv_layer(plus))
    assert chosen.output is pooling.input  # the residual stage's final ReLU
    assert tuple(chosen.output.shape) == (None, 7, 7, 96)

    assert explain.find_last_conv_layer(square_detector()) == "relu"


def test_find_last_conv_layer_rejects_a_model_without_convolutions():
    with pytest.raises(ValueError, match="no convolutional layer"):
        explain.find_last_conv_layer(models.build_ann())


def test_grad_cam_rejects_unscaled_images_and_unknown_classes():
    model = square_detector()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        explain.grad_cam(model, (square_image() * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="class_indices"):
        explain.grad_cam(model, square_image(), class_indices=2)


def test_select_examples_picks_a_right_and_a_wrong_image_per_class():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 0, 1])
    y_pred = np.array([0, 1, 0, 2, 1, 1, 0, 1, 0, 1])
    picks = explain.select_examples(y_true, y_pred, n_classes=4, seed=3)
    assert len(picks) == 4
    for c, (right, wrong) in enumerate(picks[:3]):
        if right is not None:
            assert y_true[right] == c == y_pred[right]
        if wrong is not None:
            assert y_true[wrong] == c != y_pred[wrong]
    assert picks[0][0] is not None
    assert picks[0][1] is not None
    assert picks[1][1] is None  # class 1 is never misclassified
    assert picks[2][0] is None  # class 2 is never right
    assert picks[3] == (None, None)  # class 3 has no images
    assert picks == explain.select_examples(y_true, y_pred, n_classes=4, seed=3)


def test_explain_examples_gives_one_titled_panel_per_pick():
    model = square_detector()
    kernel, _ = model.get_layer("head").get_weights()
    model.get_layer("head").set_weights([kernel, np.array([0, 0.01], np.float32)])
    images = np.concatenate([square_image(), np.zeros((1, 28, 28, 1), np.float32)])
    y_true = np.array([0, 0])  # the empty image is labelled 0 but predicted 1
    probs = model.predict(images, verbose=0)
    picks = explain.select_examples(y_true, probs.argmax(axis=1), n_classes=2)
    panels = explain.explain_examples(
        model, images, y_true, probs, picks, class_names=["square", "empty"]
    )
    assert panels.correct == [True, False, None, None]
    assert panels.titles[0].startswith("square\n✓")
    assert panels.titles[1].startswith("square\n→ empty")
    assert panels.titles[2:] == ["empty\nnone right", "empty\nno mistake"]
    assert panels.images[2] is None
    assert panels.heatmaps[0].shape == (28, 28)


def test_plot_grad_cam_draws_one_overlay_per_example_and_blanks_missing_ones():
    rng = np.random.default_rng(0)
    images = [rng.random((28, 28), dtype=np.float32) for _ in range(8)]
    heatmaps = [rng.random((28, 28), dtype=np.float32) for _ in range(8)]
    images[3] = heatmaps[3] = images[6] = heatmaps[6] = None
    correct = [True, False] * 4
    fig = plotting.plot_grad_cam(
        images, heatmaps, [f"panel {i}" for i in range(8)], correct, ncols=4
    )
    assert isinstance(fig, Figure)
    panels = fig.axes[:8]
    drawn = [
        len([a for a in ax.get_children() if isinstance(a, AxesImage)]) for ax in panels
    ]
    assert drawn == [2, 2, 2, 0, 2, 2, 0, 2]  # image + heat map; None is blank
    assert panels[1].title.get_color() == plotting.VERDICT_COLORS[False]
    assert fig.get_size_inches()[0] == pytest.approx(plotting.PAGE_WIDTH)
    with pytest.raises(ValueError, match="differ in length"):
        plotting.plot_grad_cam(images, heatmaps[:7], ["t"] * 8)
