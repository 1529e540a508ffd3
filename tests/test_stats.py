"""Bootstrap intervals and McNemar's test, against scipy and values worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from helpers import stats


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
