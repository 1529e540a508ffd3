"""Model factories: exact parameter counts, fresh compiled models, unknown variants."""

from __future__ import annotations

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
    ],
)
def test_parameter_counts_are_exact(build, variant, params):
    model = build(variant)
    assert model.count_params() == params
    assert model.optimizer is not None  # compiled
    assert model.loss == "sparse_categorical_crossentropy"


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
