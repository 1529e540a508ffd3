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


def test_holm_multiplies_the_kth_smallest_by_m_minus_k_plus_1_and_stays_monotone():
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.5])
    # sorted: 0.01*4 = 0.04, 0.03*3 = 0.09, 0.04*2 = 0.08 -> 0.09 (monotone), 0.5
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 0.5])
    assert stats.holm([0.9, 0.6])[0] == 1.0  # capped
    assert stats.holm([0.001]).tolist() == [0.001]  # one test: unchanged


def test_prediction_interval_is_mean_plus_t_sd_sqrt_1_plus_1_over_n():
    values = [0.88, 0.89, 0.90]  # mean 0.89, sd 0.01, t(0.975, 2) = 4.3027
    low, high = stats.prediction_interval(values)
    half = 4.302653 * 0.01 * np.sqrt(1 + 1 / 3)
    assert (low, high) == pytest.approx((0.89 - half, 0.89 + half), abs=1e-6)
    assert all(map(np.isnan, stats.prediction_interval([0.9])))


def test_replication_verdict_judges_the_figure_against_the_prediction_interval():
    import pandas as pd

    runs = pd.DataFrame(
        {
            "recipe": ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["d"],
            "split": ["s"] * 10,
            "test_accuracy": [0.88, 0.89, 0.90] * 3 + [0.9],
        }
    )
    runs.loc[3:5, "test_accuracy"] += 0.05  # b, a reading of a: 0.93, 0.94, 0.95
    published = pd.DataFrame(
        {"published_accuracy": [0.95, 0.95, 0.83, 0.9], "reading_of": list("aacd")},
        index=list("abcd"),
    )
    table = stats.replication_table(runs, published)
    assert table["verdict"].tolist() == ["above", "consistent", "below", "one seed"]
    assert table["seeds"].tolist() == [3, 3, 3, 1]
    assert table.loc[0, "pi_high"] == pytest.approx(0.89 + 0.0497, abs=1e-4)
    # the p of the figure as one more run: below 0.05 exactly outside the interval
    assert (table["p"][:3] < 0.05).tolist() == [True, False, True]
    t = (0.95 - 0.89) / (0.01 * np.sqrt(1 + 1 / 3))
    assert table.loc[0, "p"] == pytest.approx(2 * scipy_stats.t.sf(t, 2))
    # Holm over the three rows with seeds (d, one seed, is no test)
    holm = stats.holm(table["p"][:3])
    assert table["p_holm"][:3].tolist() == pytest.approx(holm.tolist())
    assert np.isnan(table.loc[3, "p_holm"])
    assert table.loc[0, "p"] < 0.05  # outside the interval ...
    assert table.loc[0, "p_holm"] >= 0.05  # ... but within chance after Holm
    with pytest.raises(ValueError, match=r"not in published\.csv"):
        stats.replication_table(runs.assign(recipe="z"), published)
