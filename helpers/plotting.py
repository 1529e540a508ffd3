"""Every figure of the bundle, with one look.

Each function draws on ``ax`` when one is given (else makes a new figure), sets its
title and axis labels, and returns what it drew on. None calls ``plt.show()``:
notebooks display the returned figure, and :func:`save_figure` writes it as PNG.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.artifacts import artifact_path, atomic_path
from helpers.data import CLASS_NAMES, NUM_CLASSES

SPLIT_COLORS = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}
IMAGE_CMAP = "gray_r"  # dark garment on white paper reads best in print
HEATMAP_CMAP = "viridis"


def set_plot_style() -> None:
    """Apply the bundle's shared matplotlib/seaborn look (call once per notebook)."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.9)
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "axes.titleweight": "bold",
            "image.cmap": IMAGE_CMAP,
        }
    )


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _image_grid(
    n_rows: int, n_cols: int, cell: float = 1.0
) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(n_cols * cell, n_rows * cell * 1.15),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def plot_sample_grid(
    x: np.ndarray,
    y: np.ndarray,
    per_class: int = 3,
    seed: int = 0,
    class_names: Sequence[str] = CLASS_NAMES,
) -> Figure:
    """Show ``per_class`` random images of each class, one column per class.

    Args:
        x: uint8 images (n, 28, 28).
        y: Integer labels (n,).
        per_class: Rows of examples.
        seed: Which random examples are drawn.
        class_names: Column titles, in label order.

    Returns:
        The figure.
    """
    rng = np.random.default_rng(seed)
    fig, axes = _image_grid(per_class, len(class_names))
    for c, name in enumerate(class_names):
        picks = rng.choice(np.flatnonzero(y == c), size=per_class, replace=False)
        for row, idx in enumerate(picks):
            axes[row, c].imshow(x[idx], cmap=IMAGE_CMAP, vmin=0, vmax=255)
        axes[0, c].set_title(name, fontsize=8)
    fig.suptitle(f"{per_class} random training images per class")
    return fig


def plot_class_counts(labels: Mapping[str, np.ndarray], ax: Axes | None = None) -> Axes:
    """Draw grouped bars: images per class in each split.

    Args:
        labels: Split name -> integer labels, e.g. ``splits.labels()``.
        ax: Axes to draw on.

    Returns:
        The axes.
    """
    ax = _axes(ax, (9, 3.2))
    width = 0.8 / len(labels)
    positions = np.arange(NUM_CLASSES)
    for i, (split, y) in enumerate(labels.items()):
        counts = np.bincount(y, minlength=NUM_CLASSES)
        ax.bar(
            positions + (i - (len(labels) - 1) / 2) * width,
            counts,
            width=width,
            label=f"{split} (n={len(y):,})",
            color=SPLIT_COLORS.get(split),
        )
    ax.set_xticks(positions, CLASS_NAMES, rotation=30, ha="right")
    ax.set(title="Images per class in each split", xlabel="class", ylabel="images")
    ax.legend(loc="upper right", ncols=len(labels), fontsize=8)
    return ax


def plot_mean_images(
    means: np.ndarray, class_names: Sequence[str] = CLASS_NAMES
) -> Figure:
    """Show the mean image of each class, (10, 28, 28) floats in [0, 1]."""
    fig, axes = _image_grid(1, len(class_names), cell=1.1)
    for c, name in enumerate(class_names):
        axes[0, c].imshow(means[c], cmap=IMAGE_CMAP, vmin=0, vmax=1)
        axes[0, c].set_title(name, fontsize=8)
    fig.suptitle("Mean image per class (training split)")
    return fig


def plot_pixel_heatmap(
    image: np.ndarray, ax: Axes | None = None, title: str = "Mean pixel intensity"
) -> Axes:
    """Draw one 28x28 float image as a heatmap with a colour bar.

    Args:
        image: float array (28, 28) in [0, 1], e.g. the mean over all images.
        ax: Axes to draw on.
        title: Axes title.

    Returns:
        The axes.
    """
    ax = _axes(ax, (4.2, 3.6))
    mappable = ax.imshow(image, cmap=HEATMAP_CMAP, vmin=0, vmax=float(image.max()))
    ax.figure.colorbar(mappable, ax=ax, label="intensity (0-1)")
    ax.set(title=title, xlabel="column (pixel)", ylabel="row (pixel)")
    ax.grid(False)
    return ax


def plot_intensity_distribution(x: np.ndarray, ax: Axes | None = None) -> Axes:
    """Draw the histogram of pixel values (0-255) over ``x``, log-scaled counts."""
    ax = _axes(ax, (6, 3.2))
    counts = np.bincount(x.ravel(), minlength=256)
    ax.bar(np.arange(256), counts, width=1.0, color=SPLIT_COLORS["train"])
    ax.set_yscale("log")
    ax.set(
        title="Pixel intensity distribution",
        xlabel="pixel value (0 = background)",
        ylabel="pixels (log scale)",
        xlim=(-2, 257),
    )
    return ax


def plot_class_distances(
    distances: np.ndarray,
    ax: Axes | None = None,
    class_names: Sequence[str] = CLASS_NAMES,
) -> Axes:
    """Draw a (10, 10) class-to-class distance matrix as an annotated heatmap."""
    ax = _axes(ax, (6.4, 5.2))
    sns.heatmap(
        distances,
        ax=ax,
        annot=True,
        fmt=".2f",
        annot_kws={"fontsize": 7},
        cmap="rocket",
        xticklabels=class_names,
        yticklabels=class_names,
        square=True,
        cbar_kws={"label": "RMS distance of mean images"},
    )
    ax.set(title="How far apart the class mean images are", xlabel="", ylabel="")
    return ax


def save_figure(
    fig: Figure, name: str, output_dir: str | os.PathLike | None = None
) -> Path:
    """Save ``fig`` as ``<output_dir>/figures/<name>.png`` (atomic) and return the path.

    Args:
        fig: The figure (``ax.figure`` for an Axes).
        name: File stem, e.g. ``"eda_sample_grid"``.
        output_dir: Artifacts folder; None means the project's ``artifacts/``.
    """
    path = artifact_path(output_dir, "figures", f"{name}.png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
