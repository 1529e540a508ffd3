"""Metrics and comparisons of classes and models.

Everything here is plain numpy: no TensorFlow import, so the metrics of a saved
predictions file can be recomputed without loading a model.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

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
