"""Evaluation helpers on hand-made inputs with answers computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import evaluation


def test_mean_image_distances_by_hand():
    means = np.zeros((3, 2, 2))
    means[1] = 1.0  # RMS distance to class 0: 1
    means[2, 0, 0] = 2.0  # to class 0: sqrt(4/4) = 1; to class 1: sqrt((1+1+1+1)/4) = 1
    means[2, 0, 1] = 1.0  # now to 0: sqrt(5/4); to 1: sqrt((1+0+1+1)/4) = sqrt(3/4)
    d = evaluation.mean_image_distances(means)
    assert d[0, 1] == pytest.approx(1.0)
    assert d[0, 2] == pytest.approx(np.sqrt(5 / 4))
    assert d[1, 2] == pytest.approx(np.sqrt(3 / 4))
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_allclose(np.diag(d), 0)


def test_closest_class_pairs_nearest_first():
    d = np.array([[0, 3, 1], [3, 0, 2], [1, 2, 0]], float)
    pairs = evaluation.closest_class_pairs(d, k=2, class_names=["a", "b", "c"])
    assert pairs == [("a", "c", 1.0), ("b", "c", 2.0)]
