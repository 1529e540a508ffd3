"""Is a difference in test accuracy real, does a published figure replicate? Thin
calls of ``scipy.stats`` and pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def bootstrap_accuracy_ci(
    correct: np.ndarray, confidence: float = 0.95, n_resamples: int = 10_000, seed=0
) -> tuple[float, float]:
    """Return ``(low, high)``: the percentile-bootstrap interval of the accuracy of
    ``correct``, bool (n,) (whether each test image was classified right), over
    ``n_resamples`` resamples of the n images; the same ``seed``, the same interval."""
    result = stats.bootstrap(
        (np.asarray(correct, dtype=np.float64),),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """McNemar's exact test of two classifiers scored on the same images:
    ``correct_a``, ``correct_b`` bool (n,). Only the images exactly one gets right
    count; under the null hypothesis each is a fair coin, so the p-value is a
    two-sided binomial test. Returns ``only_a``, ``only_b`` (image counts) and
    ``p_value`` (1.0 when no image separates them)."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    p_value = stats.binomtest(only_a, n, 0.5).pvalue if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "p_value": float(p_value)}


def replication_table(runs: pd.DataFrame, published: pd.Series) -> pd.DataFrame:
    """Return one row per recipe and split of the replication ``runs``
    (:func:`helpers.artifacts.load_replication`), in the order of ``published``
    (recipe -> published test accuracy): that figure, the seeds' mean, standard
    deviation (ddof 1), min and max, their number, and whether the published figure
    lies inside the seeds' range."""
    if runs.empty:
        return pd.DataFrame()
    order = {recipe: k for k, recipe in enumerate(published.index)}
    runs = runs.sort_values("recipe", key=lambda r: r.map(order), kind="stable")
    groups = runs.groupby(["recipe", "split"], sort=False)["test_accuracy"]
    table = groups.agg(["mean", "std", "min", "max", "count"]).reset_index()
    table.insert(2, "published", table["recipe"].map(published))
    table["inside"] = table["published"].between(table["min"], table["max"])
    return table.rename(columns={"count": "seeds"})
