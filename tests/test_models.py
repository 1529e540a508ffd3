"""Model factories: exact parameter counts, fresh compiled models, unknown variants."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import models


@pytest.mark.parametrize(
    ("build", "variant", "params"),
    [
        (models.build_ann, "baseline", 235_146),
        (models.build_ann, "dropout", 235_146),
        (models.build_cnn, "baseline", 225_034),
        (models.build_cnn, "dropout", 225_034),
        (models.build_cnn, "bn", 316_650),
        (models.build_cnn, "deep", 787_274),
        (models.build_cnn, "plus", 251_962),
    ],
)
def test_parameter_counts_are_exact(build, variant, params):
    model = build(variant)
    assert model.count_params() == params
    assert model.optimizer is not None  # compiled


def test_dropout_variants_have_the_stated_rates():
    ann_rates = [
        layer.rate
        for layer in models.build_ann("dropout").layers
        if hasattr(layer, "rate")
    ]
    cnn_rates = [
        layer.rate
        for layer in models.build_cnn("dropout").layers
        if hasattr(layer, "rate")
    ]
    assert ann_rates == [0.3, 0.3]
    assert cnn_rates == [0.5, 0.5]
    assert not [layer for layer in models.build_cnn().layers if hasattr(layer, "rate")]


def test_reference_variants_use_plain_cross_entropy_and_adam():
    for model in (models.build_ann(), models.build_cnn("dropout")):
        assert model.loss == "sparse_categorical_crossentropy"
        assert type(model.optimizer) is keras.optimizers.Adam


def _layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def test_published_recipes_have_their_stated_layers_and_training():
    bn = models.build_cnn("bn")
    kinds = _layer_types(bn)
    assert kinds.count("Conv2D") == 3
    assert kinds.count("BatchNormalization") == 3
    assert [layer.units for layer in bn.layers if hasattr(layer, "units")] == [192, 10]
    assert [layer.rate for layer in bn.layers if type(layer).__name__ == "Dropout"] == [
        0.35
    ]
    assert {"RandomRotation", "RandomTranslation", "RandomHorizontalFlip"} <= set(kinds)
    assert "RandomErasing" in kinds
    assert "Normalization" in kinds
    recipe = models.get_recipe("cnn", "bn")
    assert (recipe.optimizer, recipe.learning_rate, recipe.weight_decay) == (
        "adamw",
        3e-4,
        3e-4,
    )
    assert (recipe.label_smoothing, recipe.clipnorm) == (0.05, 1.0)
    assert recipe.reduce_lr_on_plateau
    assert recipe.early_stopping_patience == 5
    assert type(bn.optimizer) is keras.optimizers.AdamW

    deep = models.build_cnn("deep")
    convs = [layer for layer in deep.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [64, 64, 128, 128]
    assert {c.padding for c in convs} == {"valid"}
    assert [
        layer.rate for layer in deep.layers if type(layer).__name__ == "Dropout"
    ] == [
        0.25,
        0.25,
        0.5,
    ]
    recipe = models.get_recipe("cnn", "deep")
    assert (recipe.learning_rate, recipe.batch_size, recipe.epochs) == (5e-4, 64, 30)


def test_plus_is_residual_with_global_pooling_and_a_one_cycle_schedule():
    model = models.build_cnn("plus", epochs=4, steps_per_epoch=10)
    kinds = _layer_types(model)
    assert kinds.count("Add") == 2
    assert "GlobalAveragePooling2D" in kinds
    assert "Flatten" not in kinds
    recipe = models.get_recipe("cnn", "plus")
    lr = models.learning_rate_schedule(recipe, epochs=4, steps_per_epoch=10)
    peak = max(float(lr(step)) for step in range(40))
    assert peak == pytest.approx(recipe.learning_rate, rel=1e-3)
    assert float(lr(0)) < peak / 5
    assert float(lr(39)) < peak / 20


def test_augmentation_is_off_at_inference_and_models_reload_in_safe_mode(tmp_path):
    x = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    for variant in ("bn", "plus"):
        model = models.build_cnn(variant)
        first = model.predict(x, verbose=0)
        np.testing.assert_allclose(model.predict(x, verbose=0), first, atol=1e-6)
        path = tmp_path / f"{variant}.keras"
        model.save(path)
        reloaded = keras.models.load_model(path, safe_mode=True)
        np.testing.assert_allclose(reloaded.predict(x, verbose=0), first, atol=1e-6)


def test_training_time_augmentation_changes_the_images():
    x = np.zeros((64, 28, 28, 1), np.float32)
    x[:, 4:24, 2:10] = 1.0  # a bar on the left: mirroring moves it to the right
    flipped = models.RandomHorizontalFlip(0.5, seed=0)(x, training=True).numpy()
    moved = flipped[:, :, 18:].sum(axis=(1, 2, 3)) > 0
    assert 10 < moved.sum() < 54  # about half flipped
    erased = models.RandomErasing(1.0, size=8, seed=0)(x + 1.0, training=True).numpy()
    zeros = (erased == 0).sum(axis=(1, 2, 3))
    assert (zeros > 0).all()
    assert (zeros <= 9 * 9).all()
    np.testing.assert_array_equal(models.RandomErasing(1.0)(x + 1.0), x + 1.0)


def test_label_smoothing_loss_matches_the_hand_computed_value():
    probs = np.array([[0.7, 0.2, 0.1]], np.float32)
    loss = models.SparseCategoricalCrossentropy(label_smoothing=0.3)
    # targets: 1 - 0.3 + 0.1 = 0.8 for the true class, 0.1 elsewhere
    expected = -(0.8 * np.log(0.7) + 0.1 * np.log(0.2) + 0.1 * np.log(0.1))
    assert float(loss(np.array([0]), probs)) == pytest.approx(expected, rel=1e-5)


def test_outputs_are_probabilities_of_the_right_shape():
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    probs = models.build_cnn()(x).numpy()
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert models.build_ann()(x.reshape(3, 784)).shape == (3, 10)


def test_each_call_returns_a_fresh_model():
    first, second = models.build_ann(), models.build_ann()
    assert first is not second
    assert first.layers[0] is not second.layers[0]


@pytest.mark.parametrize("build", [models.build_ann, models.build_cnn])
def test_unknown_variant_is_rejected_listing_the_known_ones(build):
    with pytest.raises(ValueError, match="baseline, dropout"):
        build("resnet")


def test_learning_rate_reaches_the_optimizer():
    model = models.build_cnn(learning_rate=3e-4)
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-4)


def test_layer_table_lists_every_layer_with_its_parameters():
    model = models.build_cnn("baseline")
    rows = models.layer_table(model)
    assert [row["type"] for row in rows][:2] == ["Conv2D", "MaxPooling2D"]
    assert rows[0]["output shape"] == "(None, 26, 26, 32)"
    assert rows[0]["parameters"] == 3 * 3 * 32 + 32
    assert sum(row["parameters"] for row in rows) == model.count_params()
