"""Metrics and comparisons of classes and models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from helpers.data import CLASS_NAMES


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
