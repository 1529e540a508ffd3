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
    ``correct``, bool (n,), over ``n_resamples`` resamples; seeded by ``seed``."""
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
    """McNemar's exact test of two classifiers on the same images (bool (n,) each):
    a two-sided binomial test of the images only one gets right. Returns ``only_a``,
    ``only_b`` (counts) and ``p_value`` (1.0 when no image separates them)."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    p_value = stats.binomtest(only_a, n, 0.5).pvalue if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "p_value": float(p_value)}


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of ``p_values`` (m tests): the k-th smallest times
    m - k + 1, kept monotone, capped at 1; a NaN p-value (no spread) counts as 1."""
    p = np.nan_to_num(np.asarray(p_values, dtype=np.float64), nan=1.0)
    order = np.argsort(p)
    steps = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    return np.minimum(steps, 1.0)[np.argsort(order)]


def prediction_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Return the ``level`` prediction interval for one new draw like ``values`` (n
    seeds' accuracies): mean ± t(n - 1) · sd · √(1 + 1/n); (nan, nan) for n < 2."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    t = stats.t.ppf(1 - (1 - level) / 2, n - 1)
    half = t * values.std(ddof=1) * np.sqrt(1 + 1 / n)
    return float(values.mean() - half), float(values.mean() + half)


def replication_table(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Return one row per recipe and split of the replication ``runs``, ordered as
    ``published`` (:func:`helpers.data.published`): the figure, the recipe it reads
    (``reading_of``), the seeds' mean, sd, number, :func:`prediction_interval`, the
    figure's ``verdict`` (``consistent`` inside it, ``above``, ``below``, ``one
    seed``), and ``p``: the two-sided p of the figure as one more run (the interval's
    t; below 0.05 exactly outside it), ``p_holm`` adjusted over the rows with two
    seeds or more. A run of a recipe not in ``published``: ValueError."""
    if runs.empty:
        return pd.DataFrame()
    if unknown := set(runs["recipe"]) - set(published.index):
        raise ValueError(f"runs of recipes not in published.csv: {sorted(unknown)}")
    order = {recipe: k for k, recipe in enumerate(published.index)}
    runs = runs.sort_values("recipe", key=lambda r: r.map(order), kind="stable")
    groups = runs.groupby(["recipe", "split"], sort=False)["test_accuracy"]
    table = groups.agg(["mean", "std", "count"]).reset_index()
    table.insert(2, "published", table["recipe"].map(published["published_accuracy"]))
    table.insert(3, "reading_of", table["recipe"].map(published["reading_of"]))
    bounds = groups.agg(prediction_interval).tolist()
    table["pi_low"], table["pi_high"] = zip(*bounds, strict=True)
    figure, low, high = table["published"], table["pi_low"], table["pi_high"]
    verdicts = [low.isna(), figure > high, figure < low]
    table["verdict"] = np.select(verdicts, ["one seed", "above", "below"], "consistent")
    n, judged = table["count"], low.notna()  # one seed: no test, not counted
    t = (figure - table["mean"]) / (table["std"] * np.sqrt(1 + 1 / n))
    table["p"] = pd.Series(2 * stats.t.sf(np.abs(t), np.maximum(n - 1, 1))).where(
        judged
    )
    table["p_holm"] = np.nan
    table.loc[judged, "p_holm"] = holm(table.loc[judged, "p"])
    return table.rename(columns={"count": "seeds"})


def seed_spread(accuracies) -> str:
    """Return a recipe's seed accuracies as prose: ``"93.27% ± 0.03% (seed mean ±
    sd, n = 3)"`` (sd with ddof 1; ``"± –"`` for one seed)."""
    values = pd.Series(accuracies, dtype=np.float64)
    sd = f"{values.std():.2%}" if len(values) > 1 else "–"
    return f"{values.mean():.2%} ± {sd} (seed mean ± sd, n = {len(values)})"
