"""Metrics and comparisons of classes and models.

Everything here is plain numpy: no TensorFlow import, so the metrics of a saved
predictions file can be recomputed without loading a model.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from scipy import stats

from helpers.data import CLASS_NAMES, NUM_CLASSES

# Confusions the Fashion-MNIST literature singles out, as (true class, predicted class).
LITERATURE_PAIRS: tuple[tuple[str, str], ...] = (
    ("Shirt", "Coat"),
    ("Pullover", "Shirt"),
    ("Shirt", "T-shirt/top"),
)


def mean_image_distances(means: np.ndarray) -> np.ndarray:
    """Return the RMS pixel distance between every pair of class mean images.

    Args:
        means: float array (k, 28, 28), e.g. from ``data.class_mean_images``.

    Returns:
        Symmetric float64 array (k, k) with zeros on the diagonal.
    """
    flat = means.reshape(len(means), -1).astype(np.float64)
    diff = flat[:, None, :] - flat[None, :, :]
    return np.sqrt((diff**2).mean(axis=-1))


def closest_class_pairs(
    distances: np.ndarray, k: int = 5, class_names: Sequence[str] = CLASS_NAMES
) -> list[tuple[str, str, float]]:
    """Return the ``k`` closest distinct class pairs, nearest first.

    Args:
        distances: Symmetric (n, n) distance matrix.
        k: Number of pairs.
        class_names: Names in label order.

    Returns:
        ``(class_a, class_b, distance)`` tuples with ``a`` before ``b`` in label order.
    """
    rows, cols = np.triu_indices(len(distances), k=1)
    order = np.argsort(distances[rows, cols], kind="stable")[:k]
    return [
        (class_names[rows[i]], class_names[cols[i]], float(distances[rows[i], cols[i]]))
        for i in order
    ]


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    num_classes: int = NUM_CLASSES,
) -> np.ndarray:
    """Count how often each true class was predicted as each class.

    Args:
        y_true: Integer labels (n,).
        y_pred: Integer predicted labels (n,), e.g. ``probs.argmax(axis=1)``.
        num_classes: Number of classes ``k``; labels must lie in ``[0, k)``.

    Returns:
        int64 array (k, k): row = true class, column = predicted class; it sums to n.

    Raises:
        ValueError: the inputs are not 1-D integer arrays of equal length, or a
            label is outside ``[0, num_classes)``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{name} must hold integer labels, got {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"{name} has labels in [{labels.min()}, {labels.max()}], "
                f"outside [0, {num_classes - 1}] for num_classes={num_classes}"
            )
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred differ in length: {len(y_true)} != {len(y_pred)}"
        )
    cells = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    counts = np.bincount(cells, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _check_square(cm: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (k, k), got {cm.shape}")
    if len(class_names) != len(cm):
        raise ValueError(
            f"{len(class_names)} class names for a {len(cm)}-class confusion matrix"
        )
    return cm


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den`` as float64, 0.0 where ``den`` is 0 (no warning)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def per_class_metrics(
    cm: np.ndarray, class_names: Sequence[str] = CLASS_NAMES
) -> dict[str, dict[str, float]]:
    """Compute precision, recall, F1, accuracy and support of every class.

    Per-class accuracy is the fraction of that class's images classified right
    (correct / support), which equals its recall. A ratio with a zero
    denominator is 0.0.

    Args:
        cm: Confusion matrix (k, k), rows = true class, from :func:`confusion_matrix`.
        class_names: ``k`` names in label order.

    Returns:
        Class name -> ``{"precision", "recall", "f1", "accuracy", "support"}``, in
        label order; the metrics are floats, ``support`` (true images) an int.
    """
    cm = _check_square(cm, class_names)
    correct = np.diag(cm)
    support = cm.sum(axis=1)
    precision = _ratio(correct, cm.sum(axis=0))
    recall = _ratio(correct, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {
        name: {
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "accuracy": float(recall[c]),
            "support": int(support[c]),
        }
        for c, name in enumerate(class_names)
    }


def most_confused_pairs(
    cm: np.ndarray, k: int = 5, class_names: Sequence[str] = CLASS_NAMES
) -> list[dict[str, Any]]:
    """Return the ``k`` largest off-diagonal cells of a confusion matrix.

    Cells with a zero count are never returned, so fewer than ``k`` pairs come
    back when fewer than ``k`` kinds of mistake were made.

    Args:
        cm: Confusion matrix (k, k), rows = true class.
        k: Number of pairs.
        class_names: Names in label order.

    Returns:
        Dicts ``{"true", "predicted", "count", "rate"}``, largest count first, ties
        in (true index, predicted index) order; ``rate`` is ``count`` over the
        number of images of the true class.
    """
    cm = _check_square(cm, class_names)
    support = cm.sum(axis=1)
    mistakes = cm.astype(np.int64)
    np.fill_diagonal(mistakes, 0)
    true_idx, pred_idx = np.nonzero(mistakes)
    # np.nonzero is row-major, so a stable sort on -count keeps index order on ties.
    order = np.argsort(-mistakes[true_idx, pred_idx], kind="stable")[:k]
    return [
        {
            "true": class_names[true_idx[i]],
            "predicted": class_names[pred_idx[i]],
            "count": int(mistakes[true_idx[i], pred_idx[i]]),
            "rate": float(mistakes[true_idx[i], pred_idx[i]] / support[true_idx[i]]),
        }
        for i in order
    ]


def named_pair_counts(
    cm: np.ndarray,
    pairs: Sequence[tuple[str, str]] = LITERATURE_PAIRS,
    class_names: Sequence[str] = CLASS_NAMES,
) -> dict[str, int]:
    """Read the counts of named (true class, predicted class) confusions.

    Args:
        cm: Confusion matrix (k, k), rows = true class.
        pairs: ``(true name, predicted name)`` pairs.
        class_names: Names in label order.

    Returns:
        ``"<true>-><predicted>"`` (e.g. ``"Shirt->Coat"``) -> number of images, in
        the order of ``pairs``.

    Raises:
        ValueError: a name is not in ``class_names``.
    """
    cm = _check_square(cm, class_names)
    index = {name: c for c, name in enumerate(class_names)}
    for name in (name for pair in pairs for name in pair):
        if name not in index:
            raise ValueError(f"unknown class name {name!r}; known: {list(index)}")
    return {f"{t}->{p}": int(cm[index[t], index[p]]) for t, p in pairs}


def cross_entropy(y_true: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    """Return the mean negative log-probability of the true class.

    The same quantity as Keras' sparse categorical cross-entropy, with probabilities
    clipped to ``[eps, 1 - eps]`` as Keras does.

    Args:
        y_true: Integer labels (n,).
        probs: Predicted probabilities (n, k).
    """
    y_true = np.asarray(y_true).astype(np.int64)
    picked = np.asarray(probs, dtype=np.float64)[np.arange(len(y_true)), y_true]
    return float(-np.log(np.clip(picked, eps, 1 - eps)).mean())


def summarize_predictions(
    y_true: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str] = CLASS_NAMES,
) -> dict[str, Any]:
    """Summarise a model's predictions on a labelled set as JSON-ready metrics.

    Args:
        y_true: Integer labels (n,).
        probs: float class probabilities (n, k), e.g. ``model.predict(x)``; the
            prediction is the arg-max.
        class_names: ``k`` names in label order.

    Returns:
        ``{"test_accuracy", "macro_precision", "macro_recall", "macro_f1",
        "per_class", "confusion_matrix", "most_confused", "literature_pairs"}``,
        built from plain floats, ints, lists and dicts (``json.dumps`` works).
        Macro averages weigh all ``k`` classes equally. ``literature_pairs`` lists
        those of :data:`LITERATURE_PAIRS` whose classes are in ``class_names``.

    Raises:
        ValueError: ``probs`` is not (n, k) with ``k == len(class_names)``.
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != len(class_names):
        raise ValueError(
            f"probs must have shape (n, {len(class_names)}), got {probs.shape}"
        )
    cm = confusion_matrix(y_true, probs.argmax(axis=1), num_classes=len(class_names))
    per_class = per_class_metrics(cm, class_names)
    known = set(class_names)
    pairs = [(t, p) for t, p in LITERATURE_PAIRS if t in known and p in known]

    def macro(metric: str) -> float:
        return float(np.mean([m[metric] for m in per_class.values()]))

    return {
        "test_accuracy": float(_ratio(np.trace(cm), cm.sum())),
        "test_loss": cross_entropy(y_true, probs),
        "macro_precision": macro("precision"),
        "macro_recall": macro("recall"),
        "macro_f1": macro("f1"),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "most_confused": most_confused_pairs(cm, k=5, class_names=class_names),
        "literature_pairs": named_pair_counts(cm, pairs, class_names),
    }


class SupportsPredictOnBatch(Protocol):
    """Anything with Keras's ``predict_on_batch(x)`` (a model, or a test fake)."""

    def predict_on_batch(self, x: np.ndarray) -> Any: ...


def _median_call_seconds(
    model: SupportsPredictOnBatch, x: np.ndarray, size: int, calls: int, warmup: int
) -> float:
    """Median seconds of ``calls`` timed ``size``-image calls after ``warmup`` more.

    Call ``i`` gets images ``i * size ...`` of ``x``, wrapping round at the end.
    """
    times = []
    for i in range(warmup + calls):
        batch = np.take(x, range(i * size, (i + 1) * size), axis=0, mode="wrap")
        start = time.perf_counter()
        model.predict_on_batch(batch)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return max(statistics.median(times), 1e-9)  # a zero would divide below


def measure_inference(
    model: SupportsPredictOnBatch,
    x: np.ndarray,
    batch_sizes: tuple[int, int] = (1, 1024),
    repeats: int | tuple[int, int] = (50, 5),
    warmup: int = 2,
) -> dict[str, Any]:
    """Time a model's predictions: latency per image and batched throughput.

    Each timed call is one ``model.predict_on_batch``; ``warmup`` untimed calls
    at each batch size come first (the first Keras call traces the graph). The
    median over the timed calls is reported, so one slow call does not count.

    Args:
        model: Object with ``predict_on_batch(x)``, e.g. a compiled Keras model.
        x: Model-ready inputs (n, ...), e.g. float32 (n, 28, 28, 1); images are
            taken from the front, cycling when more are needed.
        batch_sizes: ``(latency batch, throughput batch)``. The throughput batch
            is cut to ``n`` when ``x`` holds fewer images.
        repeats: Timed calls at each batch size, or one count for both.
        warmup: Untimed calls before timing, at each batch size.

    Returns:
        ``{"inference_ms_per_image": float, "throughput_images_per_s": float,
        "inference_batch_sizes": [latency batch, throughput batch used]}``.

    Raises:
        ValueError: ``x`` is empty, or a batch size or repeat count is below 1.
    """
    n = len(x)
    counts = (repeats, repeats) if isinstance(repeats, int) else tuple(repeats)
    if n == 0:
        raise ValueError("x holds no images to time the model on")
    if min(batch_sizes) < 1 or min(counts) < 1 or warmup < 0:
        raise ValueError(
            f"batch sizes and repeats must be >= 1 and warmup >= 0, got "
            f"batch_sizes={batch_sizes}, repeats={repeats}, warmup={warmup}"
        )
    sizes = (min(batch_sizes[0], n), min(batch_sizes[1], n))
    medians = [
        _median_call_seconds(model, x, size, calls, warmup)
        for size, calls in zip(sizes, counts, strict=True)
    ]
    return {
        "inference_ms_per_image": 1000.0 * medians[0] / sizes[0],
        "throughput_images_per_s": sizes[1] / medians[1],
        "inference_batch_sizes": list(sizes),
    }


def describe_run(metrics: dict[str, Any]) -> str:
    """Render a run's conclusions as Markdown bullet points from its metrics record.

    Args:
        metrics: A ``metrics/<run>.json`` record (``artifacts.run_metrics``).

    Returns:
        Markdown text; every number in it comes from ``metrics``.
    """
    m = metrics
    f1 = {name: scores["f1"] for name, scores in m["per_class"].items()}
    hardest = sorted(f1, key=f1.get)[:3]
    top = m["most_confused"][0] if m["most_confused"] else None
    lines = []
    if m.get("fast"):
        lines.append(
            f"- **Fast mode (CI):** {m['train_size']:,} training images and "
            f"{m['epochs_run']} epoch; these numbers check the code, not the model."
        )
    lines += [
        f"- **Result:** `{m['run']}` ({m['params']:,} parameters) reaches test "
        f"accuracy **{m['test_accuracy']:.4f}** (loss {m['test_loss']:.4f}, macro F1 "
        f"{m['macro_f1']:.4f}) after {m['epochs_run']} epochs.",
        f"- **Training:** {m['train_seconds']:.1f} s "
        f"({m['seconds_per_epoch']:.1f} s per epoch); best validation accuracy "
        f"{m['best_val_accuracy']:.4f} at epoch {m['best_epoch']}.",
        "- **Hardest classes** (lowest F1): "
        + ", ".join(f"{name} ({f1[name]:.3f})" for name in hardest)
        + ".",
    ]
    if top:
        lines.append(
            f"- **Most frequent error:** {top['true']} predicted as {top['predicted']} "
            f"({top['count']} test images, {top['rate']:.1%} of that class). "
            "The literature's pairs: "
            + ", ".join(f"{pair} {n}" for pair, n in m["literature_pairs"].items())
            + "."
        )
    lines.append(
        f"- **Speed:** {m['inference_ms_per_image']:.2f} ms per image at batch 1, "
        f"{m['throughput_images_per_s']:,.0f} images/s at batch "
        f"{m['inference_batch_sizes'][-1]:,}."
    )
    return "\n".join(lines)


# --- Comparing runs: confidence intervals, McNemar's test, conclusions -------------

SIGNIFICANCE_LEVEL = 0.05


def _as_correct(
    correct: np.ndarray | Sequence[bool], name: str = "correct"
) -> np.ndarray:
    """Return ``correct`` as a non-empty 1-D bool array (0/1 integers are accepted).

    Raises:
        ValueError: not 1-D, empty, or holding values other than True/False (0/1).
    """
    array = np.asarray(correct)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got {array.shape}")
    if array.dtype != np.bool_:
        if (
            not np.issubdtype(array.dtype, np.integer)
            or not np.isin(array, (0, 1)).all()
        ):
            raise ValueError(
                f"{name} must hold True/False per image (e.g. y_pred == y_true), "
                f"got dtype {array.dtype}"
            )
        array = array.astype(bool)
    return array


def correct_predictions(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Mark which images a model classifies right.

    Args:
        y_true: Integer labels (n,).
        probs: float class probabilities (n, k); the prediction is the arg-max.

    Returns:
        bool array (n,): True where the arg-max equals the label.

    Raises:
        ValueError: ``probs`` is not (n, k) for the n labels.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    if probs.ndim != 2 or len(probs) != len(y_true):
        raise ValueError(
            f"probs must have shape (n, k) with n = {len(y_true)} labels, "
            f"got {probs.shape}"
        )
    return probs.argmax(axis=1) == y_true


def bootstrap_accuracy_ci(
    correct: np.ndarray,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    max_chunk_elements: int = 1 << 22,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of an accuracy.

    Each resample draws ``n`` images with replacement and takes the fraction right;
    the interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of the ``n_resamples`` accuracies. Resamples are drawn in chunks of
    at most ``max_chunk_elements`` indices (32 MiB), so 10,000 resamples of 10,000
    images take about half a second and bounded memory.

    Args:
        correct: bool array (n,), True where the model is right
            (:func:`correct_predictions`).
        n_resamples: Number of bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling; the same seed gives the same interval.
        max_chunk_elements: Most indices drawn at once.

    Returns:
        ``(low, high)`` floats in [0, 1], ``low <= high``.

    Raises:
        ValueError: ``correct`` is not a non-empty 1-D bool array, ``n_resamples``
            is below 1, or ``confidence`` is outside (0, 1).
    """
    correct = _as_correct(correct)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = correct.size
    rng = np.random.default_rng(seed)
    chunk = max(1, max_chunk_elements // n)
    accuracies = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        index = rng.integers(0, n, size=(stop - start, n), dtype=np.int64)
        accuracies[start:stop] = np.count_nonzero(correct[index], axis=1) / n
    tail = (1 - confidence) / 2
    low, high = np.quantile(accuracies, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_accuracy_cis(
    correct_by_run: Mapping[str, np.ndarray],
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Apply :func:`bootstrap_accuracy_ci` to every run, each with the same seed.

    Args:
        correct_by_run: Run name -> bool array (n,) of right/wrong per image.
        n_resamples: Resamples per run.
        confidence: Coverage of each interval.
        seed: Seed of every run's resampling.

    Returns:
        Run name -> ``(low, high)``, in the order of ``correct_by_run``.
    """
    return {
        run: bootstrap_accuracy_ci(correct, n_resamples, confidence, seed)
        for run, correct in correct_by_run.items()
    }


def mcnemar_exact_p_value(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts.

    Under the null hypothesis that both models are equally accurate, each of the
    ``n = only_a + only_b`` discordant images is equally likely to favour either
    model, so ``min(only_a, only_b)`` follows Binomial(n, 1/2); the p-value is twice
    its lower tail, capped at 1.

    Args:
        only_a: Images model A gets right and model B wrong.
        only_b: Images model B gets right and model A wrong.

    Returns:
        The p-value in (0, 1]; exactly 1.0 when there are no discordant images.

    Raises:
        ValueError: a count is negative.
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"counts must be >= 0, got only_a={only_a}, only_b={only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = stats.binom.cdf(min(only_a, only_b), n, 0.5)
    return float(min(1.0, 2.0 * tail))


def mcnemar_exact(
    correct_a: np.ndarray, correct_b: np.ndarray
) -> dict[str, int | float]:
    """McNemar's exact test of two models on the same images (paired predictions).

    Args:
        correct_a: bool array (n,), True where model A is right.
        correct_b: bool array (n,) for model B, on the same n images in the same
            order.

    Returns:
        ``{"only_a", "only_b", "both", "neither", "n_discordant", "statistic",
        "p_value"}``: the 2x2 table's counts (``only_a``: A right, B wrong), the
        number of discordant images, the test statistic ``min(only_a, only_b)``
        and the two-sided exact p-value (:func:`mcnemar_exact_p_value`). Counts
        are ints, the p-value a float.

    Raises:
        ValueError: the arrays are not bool (n,) of the same length.
    """
    a = _as_correct(correct_a, "correct_a")
    b = _as_correct(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(
            f"paired predictions must cover the same images: {a.size} != {b.size}"
        )
    only_a = int(np.count_nonzero(a & ~b))
    only_b = int(np.count_nonzero(~a & b))
    return {
        "only_a": only_a,
        "only_b": only_b,
        "both": int(np.count_nonzero(a & b)),
        "neither": int(np.count_nonzero(~a & ~b)),
        "n_discordant": only_a + only_b,
        "statistic": min(only_a, only_b),
        "p_value": mcnemar_exact_p_value(only_a, only_b),
    }


def pairwise_mcnemar(
    correct_by_run: Mapping[str, np.ndarray], alpha: float = SIGNIFICANCE_LEVEL
) -> list[dict[str, Any]]:
    """Run :func:`mcnemar_exact` on every pair of runs.

    The arrays must be paired: the same test images in the same order, which
    ``comparison.correct_by_run`` checks against each run's stored confusion
    matrix.

    Args:
        correct_by_run: Run name -> bool array (n,), the same n for every run.
        alpha: Significance level.

    Returns:
        One dict per pair ``(run_a, run_b)``, in the order of
        ``itertools.combinations`` over the runs: ``run_a``, ``run_b``,
        ``accuracy_a``, ``accuracy_b``, ``difference`` (``accuracy_a -
        accuracy_b``), the :func:`mcnemar_exact` keys, and ``significant``
        (``p_value < alpha``).

    Raises:
        ValueError: the runs do not all cover the same number of images.
    """
    arrays = {
        run: _as_correct(c, f"correct of {run!r}") for run, c in correct_by_run.items()
    }
    sizes = {run: a.size for run, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"runs cover different numbers of test images: {sizes}")
    pairs = []
    for run_a, run_b in itertools.combinations(arrays, 2):
        accuracy_a = float(arrays[run_a].mean())
        accuracy_b = float(arrays[run_b].mean())
        test = mcnemar_exact(arrays[run_a], arrays[run_b])
        pairs.append(
            {
                "run_a": run_a,
                "run_b": run_b,
                "accuracy_a": accuracy_a,
                "accuracy_b": accuracy_b,
                "difference": accuracy_a - accuracy_b,
                **test,
                "significant": bool(test["p_value"] < alpha),
            }
        )
    return pairs


def confusion_difference(cm_a: np.ndarray, cm_b: np.ndarray) -> np.ndarray:
    """Return ``cm_b - cm_a``: where model B's errors differ from model A's.

    Off the diagonal, a negative cell counts mistakes of A that B no longer makes
    (errors fixed) and a positive one mistakes only B makes (errors added); on the
    diagonal, a positive cell means B gets more images of that class right.

    Args:
        cm_a: int confusion matrix (k, k) of model A, rows = true class.
        cm_b: int confusion matrix (k, k) of model B on the same images.

    Returns:
        int64 array (k, k); every row sums to 0 when both saw the same images.

    Raises:
        ValueError: the matrices are not square or differ in shape.
    """
    cm_a = np.asarray(cm_a, dtype=np.int64)
    cm_b = np.asarray(cm_b, dtype=np.int64)
    if cm_a.ndim != 2 or cm_a.shape[0] != cm_a.shape[1] or cm_a.shape != cm_b.shape:
        raise ValueError(
            f"confusion matrices must be square and equal in shape, got "
            f"{cm_a.shape} and {cm_b.shape}"
        )
    return cm_b - cm_a


def model_family(metrics: Mapping[str, Any]) -> str:
    """Return a run's model kind, e.g. ``"ann"`` or ``"cnn"``.

    Read from the record's ``model`` key, else from the run name before its first
    ``-`` (``"cnn-plus"`` -> ``"cnn"``).
    """
    return str(metrics.get("model") or str(metrics["run"]).split("-")[0]).lower()


def best_run_by_family(
    metrics_by_run: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """Return the run with the highest test accuracy of each model kind.

    Args:
        metrics_by_run: Run name -> metrics record (``metrics/<run>.json``).

    Returns:
        Model kind (:func:`model_family`) -> run name, kinds in order of first
        appearance; on a tie the run listed first wins.
    """
    best: dict[str, str] = {}
    for run, metrics in metrics_by_run.items():
        family = model_family({**metrics, "run": run})
        current = best.get(family)
        if current is None or (
            metrics["test_accuracy"] > metrics_by_run[current]["test_accuracy"]
        ):
            best[family] = run
    return best


def mean_class_f1(metrics_by_run: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Return every class's F1 averaged over the runs, lowest (hardest) first.

    Args:
        metrics_by_run: Run name -> metrics record with ``per_class`` F1 scores.

    Returns:
        Class name -> mean F1, sorted ascending; ties keep label order.
    """
    classes = list(next(iter(metrics_by_run.values()))["per_class"])
    means = {
        name: float(
            np.mean([m["per_class"][name]["f1"] for m in metrics_by_run.values()])
        )
        for name in classes
    }
    return dict(sorted(means.items(), key=lambda item: item[1]))


def format_p_value(p_value: float) -> str:
    """Format a p-value for prose: ``"p = 0.2188"``, or ``"p < 0.0001"`` below that."""
    return "p < 0.0001" if p_value < 1e-4 else f"p = {p_value:.4f}"


def _find_pair(
    pairs: Sequence[Mapping[str, Any]], run_a: str, run_b: str
) -> dict[str, Any] | None:
    """Return the McNemar result of ``run_a`` vs ``run_b``, oriented that way."""
    for pair in pairs:
        if (pair["run_a"], pair["run_b"]) == (run_a, run_b):
            return dict(pair)
        if (pair["run_a"], pair["run_b"]) == (run_b, run_a):
            return {
                **pair,
                "run_a": run_a,
                "run_b": run_b,
                "accuracy_a": pair["accuracy_b"],
                "accuracy_b": pair["accuracy_a"],
                "difference": -pair["difference"],
                "only_a": pair["only_b"],
                "only_b": pair["only_a"],
            }
    return None


def _describe_margin(
    label: str,
    best: str,
    other: str,
    metrics_by_run: Mapping[str, Mapping[str, Any]],
    pairs: Sequence[Mapping[str, Any]],
    alpha: float,
) -> str:
    """One bullet: ``best`` against ``other``, the margin and McNemar's verdict."""
    accuracy = metrics_by_run[other]["test_accuracy"]
    margin = 100 * (metrics_by_run[best]["test_accuracy"] - accuracy)
    line = (
        f"- **{label}:** `{other}` reaches {accuracy:.4f}, so `{best}` is ahead by "
        f"{margin:.2f} percentage points."
    )
    pair = _find_pair(pairs, best, other)
    if pair is None:
        return line + " No paired predictions were available to test the difference."
    verdict = "significant" if pair["p_value"] < alpha else "not significant"
    return line + (
        f" McNemar's exact test: only `{best}` is right on {pair['only_a']:,} test "
        f"images, only `{other}` on {pair['only_b']:,}; "
        f"{format_p_value(pair['p_value'])}, so the difference is **{verdict}** at "
        f"the {alpha:g} level."
    )


def _describe_rivals(
    ranked: Sequence[str],
    family: Mapping[str, str],
    metrics_by_run: Mapping[str, Mapping[str, Any]],
    pairs: Sequence[Mapping[str, Any]],
    alpha: float,
) -> list[str]:
    """Bullets comparing the best run with the runner-up and the other kind's best."""
    best, runner_up = ranked[0], ranked[1]
    best_of = best_run_by_family(metrics_by_run)
    others = [kind for kind in best_of if kind != family[best]]
    rival = best_of[others[0]] if len(others) == 1 else None
    label = "Runner-up"
    if runner_up == rival:
        label = f"Runner-up and best {family[rival].upper()}"
    lines = [_describe_margin(label, best, runner_up, metrics_by_run, pairs, alpha)]
    if rival is not None and rival != runner_up:
        label = f"Best {family[rival].upper()}"
        lines.append(_describe_margin(label, best, rival, metrics_by_run, pairs, alpha))
    if not others:
        lines.append(
            f"- Only {family[best].upper()} runs were found, so there is no "
            "comparison across model kinds."
        )
    elif len(others) > 1:
        lines.append(
            "- Best run of each kind: "
            + ", ".join(f"{kind.upper()} `{run}`" for kind, run in best_of.items())
            + "."
        )
    return lines


def describe_comparison(
    metrics_by_run: Mapping[str, Mapping[str, Any]],
    pairs: Sequence[Mapping[str, Any]],
    ci_by_run: Mapping[str, tuple[float, float]] | None = None,
    alpha: float = SIGNIFICANCE_LEVEL,
    confidence: float = 0.95,
    n_hardest: int = 3,
) -> str:
    """Render the comparison's conclusions as Markdown bullets, every number computed.

    Covers the best run by test accuracy (with its interval when given), its margin
    over the runner-up and over the best run of the other model kind (ANN vs CNN),
    each with McNemar's p-value and whether it is significant at ``alpha``, and the
    hardest classes by F1 averaged over the runs. With one run, or runs of one kind
    only, the text says what cannot be compared.

    Args:
        metrics_by_run: Run name -> metrics record (``test_accuracy``, ``model``,
            ``per_class``; ``fast`` marks a CI run).
        pairs: :func:`pairwise_mcnemar` output for these runs.
        ci_by_run: Run name -> ``(low, high)`` accuracy interval, e.g. from
            :func:`bootstrap_accuracy_cis`.
        alpha: Significance level.
        confidence: Coverage of ``ci_by_run``, for the label.
        n_hardest: Number of hardest classes named.

    Returns:
        Markdown text.

    Raises:
        ValueError: ``metrics_by_run`` is empty.
    """
    if not metrics_by_run:
        raise ValueError("no runs to compare")
    ranked = sorted(
        metrics_by_run, key=lambda run: -metrics_by_run[run]["test_accuracy"]
    )  # sorted is stable: on a tie the run listed first ranks higher
    best = ranked[0]
    family = {run: model_family({**m, "run": run}) for run, m in metrics_by_run.items()}
    lines = []
    if any(m.get("fast") for m in metrics_by_run.values()):
        lines.append(
            "- **Fast mode (CI):** some runs trained on a small subset for one epoch; "
            "these numbers check the code, not the models."
        )
    interval = ""
    if ci_by_run and best in ci_by_run:
        low, high = ci_by_run[best]
        interval = f" ({confidence:.0%} bootstrap CI {low:.4f} to {high:.4f})"
    accuracy = f"**{metrics_by_run[best]['test_accuracy']:.4f}**{interval}."
    if len(ranked) == 1:
        lines += [
            f"- **Result:** `{best}` ({family[best].upper()}) reaches test accuracy "
            + accuracy,
            "- Only one run was found, so there is nothing to compare it with.",
        ]
    else:
        lines.append(
            f"- **Best run:** `{best}` ({family[best].upper()}) has the highest test "
            f"accuracy of the {len(ranked)} runs compared, " + accuracy
        )
        lines += _describe_rivals(ranked, family, metrics_by_run, pairs, alpha)
    f1 = mean_class_f1(metrics_by_run)
    hardest = list(f1)[:n_hardest]
    scope = "" if len(ranked) == 1 else f", averaged over the {len(ranked)} runs"
    lines.append(
        f"- **Hardest classes** (lowest F1{scope}): "
        + ", ".join(f"{name} ({f1[name]:.3f})" for name in hardest)
        + "."
    )
    return "\n".join(lines)


def shift_images(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move images ``dy`` pixels down and ``dx`` right, filling with 0 (background).

    Args:
        x: Images (n, height, width, ...).
        dy: Rows to move down (negative: up).
        dx: Columns to move right (negative: left).
    """
    x = np.asarray(x)
    out = np.zeros_like(x)
    height, width = x.shape[1:3]
    if abs(dy) >= height or abs(dx) >= width:
        return out
    rows_to = slice(max(dy, 0), height + min(dy, 0))
    rows_from = slice(max(-dy, 0), height + min(-dy, 0))
    cols_to = slice(max(dx, 0), width + min(dx, 0))
    cols_from = slice(max(-dx, 0), width + min(-dx, 0))
    out[:, rows_to, cols_to] = x[:, rows_from, cols_from]
    return out


class TestTimeAveraged:
    """Test-time augmentation: average a model's predictions over several views of
    each image.

    The views are the image itself, the image moved ``shift`` pixels up, down, left
    and right (when ``shift`` > 0), and the left-right mirror image of each of those
    (when ``flip``): up to 10 predictions per image. Offers ``predict`` and
    ``predict_on_batch`` like a Keras model, so it can be timed with
    :func:`measure_inference`. Inputs are (n, 28, 28, 1) images.

    Args:
        model: Object with Keras-style ``predict`` and ``predict_on_batch``.
        flip: Add the mirror image of every view.
        shift: Pixels of the four shifted views; 0 for none.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, model: Any, flip: bool = True, shift: int = 0):
        if shift < 0:
            raise ValueError(f"shift must be >= 0 pixels, got {shift}")
        self.model = model
        self.flip = flip
        self.shift = shift

    def views(self, x: np.ndarray) -> list[np.ndarray]:
        """The views of ``x`` whose predictions are averaged."""
        x = np.asarray(x)
        offsets = [(0, 0)]
        if self.shift:
            s = self.shift
            offsets += [(-s, 0), (s, 0), (0, -s), (0, s)]
        views = [
            x if offset == (0, 0) else shift_images(x, *offset) for offset in offsets
        ]
        if self.flip:
            views += [view[:, :, ::-1] for view in views]
        return views

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        views = self.views(x)
        stacked = np.asarray(self.model.predict_on_batch(np.concatenate(views)))
        return stacked.reshape(len(views), len(x), -1).mean(axis=0)

    def predict(self, x: np.ndarray, batch_size: int = 1024, **kwargs) -> np.ndarray:
        views = self.views(x)
        total = sum(
            self.model.predict(view, batch_size=batch_size, verbose=0) for view in views
        )
        return (total / len(views)).astype(np.float32)


def accuracy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Share of images whose arg-max probability is the true label.

    Args:
        y_true: Integer labels (n,).
        probs: Class probabilities (n, k).
    """
    return float(correct_predictions(y_true, probs).mean())
