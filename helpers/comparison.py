"""Gather the runs of a study into tables: metrics, predictions, results, statistics.

The comparison notebook reads whatever runs exist with :func:`load_runs`, checks
that their predictions pair up with :func:`correct_by_run`, and shows
:func:`results_table` (or :func:`results_markdown` for the README and the PDF, where
a wide DataFrame would run off the page). The statistics themselves live in
``evaluation``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers.artifacts import load_run_metrics, resolve_output_dir
from helpers.evaluation import (
    best_run_by_family,
    bootstrap_accuracy_cis,
    confusion_difference,
    confusion_matrix,
    correct_predictions,
    describe_comparison,
    model_family,
    pairwise_mcnemar,
)

# Model kinds in the order their runs are listed; other kinds follow, by name.
FAMILY_ORDER: tuple[str, ...] = ("ann", "cnn")

# Results-table column -> (metrics key or function of the record, format).
RESULT_COLUMNS: dict[str, tuple[str | Callable[[Mapping[str, Any]], Any], str]] = {
    "run": ("run", "{}"),
    "parameters": ("params", "{:,}"),
    "epochs run": ("epochs_run", "{:d}"),
    "training time (s)": ("train_seconds", "{:.1f}"),
    "time per epoch (s)": (
        lambda m: m.get(
            "seconds_per_epoch", m["train_seconds"] / max(m["epochs_run"], 1)
        ),
        "{:.2f}",
    ),
    "test accuracy": ("test_accuracy", "{:.4f}"),
    "test loss": ("test_loss", "{:.4f}"),
    "macro F1": ("macro_f1", "{:.4f}"),
    "inference (ms/image)": ("inference_ms_per_image", "{:.3f}"),
    "throughput (images/s)": ("throughput_images_per_s", "{:,.0f}"),
}
RESULT_FORMATS: dict[str, str] = {col: fmt for col, (_, fmt) in RESULT_COLUMNS.items()}


class RunSkippedWarning(UserWarning):
    """A run's metrics exist but its predictions are missing or unusable."""


@dataclass(frozen=True)
class RunResult:
    """One finished run: its metrics record and its test-set probabilities.

    Attributes:
        name: Run name, e.g. ``"cnn-baseline"``.
        metrics: The ``metrics/<run>.json`` record.
        probabilities: float32 (n, k) test-set class probabilities.
    """

    name: str
    metrics: dict[str, Any]
    probabilities: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        """Predicted labels, int64 (n,): the arg-max of :attr:`probabilities`."""
        return self.probabilities.argmax(axis=1)


def _expected_shape(metrics: Mapping[str, Any]) -> tuple[int, int]:
    """(test images, classes) a run's predictions must have, from its record."""
    cm = np.asarray(metrics["confusion_matrix"])
    return int(cm.sum()), len(cm)


def _read_predictions(
    run: str, path: Path, shape: tuple[int, int]
) -> np.ndarray | None:
    """Load ``path`` as an (n, k) float array, or warn and return None."""
    if not path.is_file():
        warnings.warn(
            f"skipping run {run!r}: its predictions {path} are missing",
            RunSkippedWarning,
            stacklevel=3,
        )
        return None
    try:
        probs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        warnings.warn(
            f"skipping run {run!r}: {path} cannot be read ({err})",
            RunSkippedWarning,
            stacklevel=3,
        )
        return None
    if probs.shape != shape or not np.issubdtype(probs.dtype, np.floating):
        warnings.warn(
            f"skipping run {run!r}: {path} holds {probs.dtype} {probs.shape}, "
            f"expected float {shape} (test images, classes) from its metrics",
            RunSkippedWarning,
            stacklevel=3,
        )
        return None
    return probs


def _sort_key(metrics: Mapping[str, Any], order: Sequence[str]) -> tuple:
    """Named runs first in ``order``; then by model kind (ANN, CNN, ...) and name."""
    run = metrics["run"]
    family = model_family(metrics)
    rank = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
    if run in order:
        return (0, order.index(run), 0, "", "")
    return (1, 0, rank, family, run)


def load_runs(
    output_dir: str | os.PathLike | None = None, order: Sequence[str] = ()
) -> list[RunResult]:
    """Read every run's metrics JSON and test predictions from an artifacts folder.

    A run whose ``predictions/<run>.npy`` is missing, unreadable or not of shape
    (test images, classes) as its confusion matrix says is skipped with a
    :class:`RunSkippedWarning` naming the file.

    Args:
        output_dir: Artifacts folder; None means the project's ``artifacts/``.
        order: Run names to list first, in this order (e.g. the pipeline's runs);
            the others follow by model kind (ANN before CNN) and then by name.

    Returns:
        The runs, in that order; empty when there are none.
    """
    folder = resolve_output_dir(output_dir) / "predictions"
    order = list(order)
    records = sorted(
        (
            {**metrics, "run": run}
            for run, metrics in load_run_metrics(output_dir).items()
        ),
        key=lambda m: _sort_key(m, order),
    )
    runs = []
    for metrics in records:
        run = metrics["run"]
        probs = _read_predictions(run, folder / f"{run}.npy", _expected_shape(metrics))
        if probs is not None:
            runs.append(RunResult(run, metrics, probs))
    return runs


def metrics_by_run(runs: Sequence[RunResult]) -> dict[str, dict[str, Any]]:
    """Return run name -> metrics record, in the order of ``runs``."""
    return {run.name: run.metrics for run in runs}


def correct_by_run(
    runs: Sequence[RunResult], y_true: np.ndarray
) -> dict[str, np.ndarray]:
    """Mark each run's right and wrong test images, checking they are the same images.

    McNemar's test pairs image ``i`` of one run with image ``i`` of another, so every
    run must have been scored on ``y_true`` in this order. This is checked by
    recomputing each run's confusion matrix from its predictions and ``y_true`` and
    comparing it with the one stored when the run was scored.

    Args:
        runs: Runs from :func:`load_runs`.
        y_true: Integer test labels (n,), e.g. ``data.load_splits(seed).y_test``.

    Returns:
        Run name -> bool array (n,), True where the run is right.

    Raises:
        ValueError: a run's predictions do not cover ``y_true``, or do not
            reproduce its stored confusion matrix (it was scored on other labels).
    """
    y_true = np.asarray(y_true)
    correct = {}
    for run in runs:
        if len(run.probabilities) != len(y_true):
            raise ValueError(
                f"run {run.name!r} has {len(run.probabilities):,} predictions for "
                f"{len(y_true):,} test labels"
            )
        stored = np.asarray(run.metrics["confusion_matrix"])
        recomputed = confusion_matrix(y_true, run.predicted, num_classes=len(stored))
        if not np.array_equal(recomputed, stored):
            raise ValueError(
                f"run {run.name!r}: its predictions scored against these labels do "
                "not give its stored confusion matrix, so it was evaluated on other "
                "test labels (another split or order) and cannot be paired"
            )
        correct[run.name] = correct_predictions(y_true, run.probabilities)
    return correct


def _cell(metrics: Mapping[str, Any], source: str | Callable) -> Any:
    return source(metrics) if callable(source) else metrics[source]


def results_table(metrics_by_run: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run: size, training cost, test scores and speed.

    Rows keep the order of ``metrics_by_run`` (:func:`load_runs` lists ANNs, then
    CNNs), so the table reads in the order the models were built.

    Args:
        metrics_by_run: Run name -> metrics record (``metrics/<run>.json``).

    Returns:
        DataFrame with the columns of :data:`RESULT_COLUMNS` (``run``,
        ``parameters``, ``epochs run``, ``training time (s)``, ``time per epoch
        (s)``, ``test accuracy``, ``test loss``, ``macro F1``, ``inference
        (ms/image)``, ``throughput (images/s)``) and a default integer index.
    """
    rows = [
        {col: _cell({**m, "run": run}, src) for col, (src, _) in RESULT_COLUMNS.items()}
        for run, m in metrics_by_run.items()
    ]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _format_value(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    return fmt.format(value)


WRAP_WIDTH = 24  # share of the page width a long text column may claim, in characters


def to_markdown(frame: pd.DataFrame, formats: Mapping[str, str] | None = None) -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table (index left out).

    Numeric columns are right-aligned. The dashes under each header are as many as
    the column's widest value or header word (at most :data:`WRAP_WIDTH` for text,
    which can wrap), so pandoc, when it fits a wide table to the page in a PDF,
    gives each column a share of the width in proportion and numbers stay whole.

    Args:
        frame: The table.
        formats: Column -> ``str.format`` pattern, e.g. ``"{:.4f}"``; other columns
            use ``str``.

    Returns:
        Markdown text, one line per row after the header and separator lines.
    """
    formats = formats or {}
    columns = [str(col) for col in frame.columns]
    cells = [
        [
            _format_value(value, formats.get(col, "{}")).replace("|", r"\|")
            for col, value in zip(columns, row, strict=True)
        ]
        for row in frame.itertuples(index=False, name=None)
    ]
    numeric = [pd.api.types.is_numeric_dtype(frame[col]) for col in frame.columns]
    widths = [
        max([3, *(len(word) for word in col.split()), *(len(r[i]) for r in cells)])
        for i, col in enumerate(columns)
    ]
    separator = [
        "-" * (w - 1) + ":" if is_number else "-" * min(w, WRAP_WIDTH)
        for w, is_number in zip(widths, numeric, strict=True)
    ]
    lines = [columns, separator, *cells]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def results_markdown(metrics_by_run: Mapping[str, Mapping[str, Any]]) -> str:
    """Render :func:`results_table` as a Markdown table with fixed precision.

    Parameters with thousands separators, times to 0.1 s (training) and 0.01 s
    (per epoch), accuracy, loss and F1 to 4 decimals, inference to 0.001 ms,
    throughput to whole images per second.

    Args:
        metrics_by_run: Run name -> metrics record.

    Returns:
        Markdown text (no trailing newline).
    """
    return to_markdown(results_table(metrics_by_run), RESULT_FORMATS)


def per_class_f1_table(metrics_by_run: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per-class F1 of every run: classes down, runs across.

    Args:
        metrics_by_run: Run name -> metrics record with ``per_class`` scores.

    Returns:
        float DataFrame (classes, runs); classes in label order (as stored), runs
        in the order given; suitable for ``plotting.plot_per_class_f1``.
    """
    return pd.DataFrame(
        {
            run: {name: s["f1"] for name, s in m["per_class"].items()}
            for run, m in metrics_by_run.items()
        }
    )


def accuracy_ci_table(
    metrics_by_run: Mapping[str, Mapping[str, Any]],
    ci_by_run: Mapping[str, tuple[float, float]],
) -> pd.DataFrame:
    """Test accuracy of each run with its confidence interval.

    Args:
        metrics_by_run: Run name -> metrics record.
        ci_by_run: Run name -> ``(low, high)``, e.g. from
            ``evaluation.bootstrap_accuracy_cis``.

    Returns:
        DataFrame with columns ``run``, ``test accuracy``, ``CI low``, ``CI high``,
        one row per run of ``ci_by_run``.
    """
    return pd.DataFrame(
        [
            {
                "run": run,
                "test accuracy": metrics_by_run[run]["test_accuracy"],
                "CI low": low,
                "CI high": high,
            }
            for run, (low, high) in ci_by_run.items()
        ],
        columns=["run", "test accuracy", "CI low", "CI high"],
    )


MCNEMAR_FORMATS: dict[str, str] = {
    "run A": "{}",
    "run B": "{}",
    "accuracy A - B (points)": "{:+.2f}",
    "only A right": "{:,}",
    "only B right": "{:,}",
    "p-value": "{:.4g}",
    "significant": "{}",
}


def mcnemar_table(pairs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """McNemar results as a table, one row per pair of runs.

    Args:
        pairs: ``evaluation.pairwise_mcnemar`` output.

    Returns:
        DataFrame with the columns of :data:`MCNEMAR_FORMATS`: the runs, the
        accuracy difference in percentage points, the discordant counts, the exact
        p-value and whether it is below the level used (``"yes"``/``"no"``).
    """
    return pd.DataFrame(
        [
            {
                "run A": p["run_a"],
                "run B": p["run_b"],
                "accuracy A - B (points)": 100 * p["difference"],
                "only A right": p["only_a"],
                "only B right": p["only_b"],
                "p-value": p["p_value"],
                "significant": "yes" if p["significant"] else "no",
            }
            for p in pairs
        ],
        columns=list(MCNEMAR_FORMATS),
    )


@dataclass
class Comparison:
    """Everything the comparison notebook and the report show, computed once.

    Attributes:
        runs: The runs, in pipeline order.
        metrics: Run name -> metrics record.
        correct: Run name -> bool (n,) right/wrong per test image.
        cis: Run name -> (low, high) bootstrap interval of the test accuracy.
        pairs: McNemar's exact test for every pair of runs.
        best: Model kind ("ann", "cnn") -> its run with the best test accuracy.
    """

    runs: list[RunResult]
    metrics: dict[str, dict[str, Any]]
    correct: dict[str, np.ndarray]
    cis: dict[str, tuple[float, float]]
    pairs: list[dict[str, Any]]
    best: dict[str, str]

    @property
    def histories(self) -> dict[str, dict[str, list[float]]]:
        """Run name -> per-epoch history, for the learning curves."""
        return {name: m["history"] for name, m in self.metrics.items()}

    def best_confusion_difference(self) -> tuple[np.ndarray, str, str] | None:
        """``(best CNN minus best ANN confusion matrix, ann run, cnn run)``, or None
        when either kind is missing."""
        if not {"ann", "cnn"} <= set(self.best):
            return None
        ann, cnn = self.best["ann"], self.best["cnn"]
        diff = confusion_difference(
            self.metrics[ann]["confusion_matrix"], self.metrics[cnn]["confusion_matrix"]
        )
        return diff, ann, cnn

    def conclusions(self) -> str:
        """Markdown conclusions rendered from the numbers above."""
        return describe_comparison(self.metrics, self.pairs, self.cis)


def compare_runs(
    y_true: np.ndarray,
    output_dir: str | os.PathLike | None = None,
    order: Sequence[str] = (),
    n_resamples: int = 10_000,
) -> Comparison:
    """Load every run of an artifacts folder and compute the statistics.

    Args:
        y_true: Integer test labels (n,) the runs were scored on.
        output_dir: Artifacts folder; None means the project's ``artifacts/``.
        order: Run names to list first (e.g. the pipeline's order).
        n_resamples: Bootstrap resamples for the accuracy intervals.

    Raises:
        ValueError: no run has metrics and predictions in ``output_dir``.
    """
    runs = load_runs(output_dir, order)
    if not runs:
        raise ValueError(
            f"No finished runs in {resolve_output_dir(output_dir)}: run the model "
            "notebooks first (`make run`, or `make fast` for a quick check)."
        )
    metrics = metrics_by_run(runs)
    correct = correct_by_run(runs, y_true)
    return Comparison(
        runs=runs,
        metrics=metrics,
        correct=correct,
        cis=bootstrap_accuracy_cis(correct, n_resamples=n_resamples),
        pairs=pairwise_mcnemar(correct),
        best=best_run_by_family(metrics),
    )
