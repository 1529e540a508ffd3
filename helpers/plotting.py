"""Figures several notebooks draw, one look and one colour per model: each draws on
``ax`` if given (else a new figure), labels its axes, returns what it drew on and
never calls ``plt.show()``."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from helpers.artifacts import atomic_path
from helpers.data import CLASS_NAMES

IMAGE_CMAP = "gray_r"  # dark garment on white paper reads best in print
PAGE_WIDTH = 7.0  # inches: figures meant for a PDF page are drawn at this width
PALETTE = tuple(sns.color_palette("colorblind").as_hex())  # fixed, whatever the theme
RUN_COLORS = {
    "ann-baseline": "#0173b2",
    "ann-dropout": "#56b4e9",
    "cnn-baseline": "#de8f05",
    "cnn-dropout": "#029e73",
    "cnn-plus": "#d55e00",
}


def set_plot_style() -> None:
    """Apply the bundle's shared matplotlib/seaborn look (once per notebook)."""
    rc = {"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight"}
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.9, rc=rc)


def run_color(run: str) -> str:
    """Return the hex colour of ``run``: the same in every notebook and session."""
    digest = hashlib.sha256(run.encode()).digest()
    return RUN_COLORS.get(run, PALETTE[digest[0] % len(PALETTE)])


def save_figure(fig: Figure, name: str, output_dir: str | os.PathLike) -> None:
    """Save ``fig`` as ``<output_dir>/figures/<name>.png``, atomically."""
    with atomic_path(Path(output_dir) / "figures" / f"{name}.png") as tmp:
        fig.savefig(tmp, format="png")


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return ax or plt.subplots(figsize=figsize, layout="constrained")[1]


def image_grid(
    n_rows: int, n_cols: int, cell: float = 1.0
) -> tuple[Figure, np.ndarray]:
    """Return a figure of ``n_rows`` x ``n_cols`` axis-less panels, ``cell`` inches."""
    size = (n_cols * cell, n_rows * cell * 1.2)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=size, squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def plot_sample_grid(
    x: np.ndarray, y: np.ndarray, per_class: int = 3, seed: int = 0
) -> Figure:
    """Show ``per_class`` random images (uint8 (n, 28, 28[, 1])) of each class."""
    rng = np.random.default_rng(seed)
    fig, axes = image_grid(per_class, len(CLASS_NAMES))
    for c, name in enumerate(CLASS_NAMES):
        picks = rng.choice(np.flatnonzero(y == c), size=per_class, replace=False)
        for row, i in enumerate(picks):
            axes[row, c].imshow(x[i].squeeze(), cmap=IMAGE_CMAP, vmin=0, vmax=255)
        axes[0, c].set_title(name, fontsize=8)
    fig.suptitle(f"{per_class} random images per class")
    return fig


def plot_class_heatmap(
    matrix: np.ndarray | pd.DataFrame,
    title: str,
    fmt: str = ".2f",
    ax: Axes | None = None,
    **heatmap_kws,
) -> Axes:
    """Draw a class-by-class matrix (10, 10) as an annotated seaborn heatmap; extra
    keywords go to ``sns.heatmap`` (e.g. ``cmap``, ``center``, ``vmin``)."""
    ax = _axes(ax, (7.0, 5.8))
    labels = CLASS_NAMES if not isinstance(matrix, pd.DataFrame) else "auto"
    kws = dict(cmap="viridis", xticklabels=labels, yticklabels=labels) | heatmap_kws
    sns.heatmap(matrix, ax=ax, annot=True, fmt=fmt, annot_kws={"fontsize": 7}, **kws)
    ax.tick_params(axis="both", labelsize=8)
    plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
    plt.setp(ax.get_yticklabels(), rotation=0)
    ax.set_title(title)
    return ax


def plot_confusion_matrix(cm: np.ndarray, title: str, ax: Axes | None = None) -> Axes:
    """Draw a confusion matrix (10, 10) of counts, each row shown as fractions."""
    cm = np.asarray(cm, dtype=np.float64)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax = plot_class_heatmap(rates, title, ax=ax, vmin=0, vmax=1)
    ax.set(xlabel="predicted class", ylabel="true class")
    return ax


def plot_misclassified(
    x: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray, n: int = 15
) -> Figure:
    """Show the ``n`` most confident mistakes, five per row, titled true vs
    predicted: ``x`` uint8 (m, 28, 28[, 1]), ``probabilities`` (m, 10)."""
    y_pred, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    picks = wrong[np.argsort(-confidence[wrong], kind="stable")][:n]
    fig, axes = image_grid(max(1, math.ceil(len(picks) / 5)), 5, cell=1.4)
    for ax, i in zip(axes.flat, picks, strict=False):
        ax.imshow(x[i].squeeze(), cmap=IMAGE_CMAP, vmin=0, vmax=255)
        title = f"true: {CLASS_NAMES[y_true[i]]}\npred: {CLASS_NAMES[y_pred[i]]}"
        ax.set_title(f"{title} ({confidence[i]:.0%})", fontsize=7)
    fig.suptitle(f"The {len(picks)} most confident of {len(wrong):,} mistakes")
    return fig


def plot_learning_curves(histories: Mapping[str, pd.DataFrame]) -> Figure:
    """Draw loss and accuracy per epoch, training solid, validation dashed, of each
    run's ``CSVLogger`` log in ``histories`` (``loss``, ``val_loss``...; epoch 0 up)."""
    fig, axes = plt.subplots(
        1, 2, figsize=(PAGE_WIDTH * 1.4, 3.8), layout="constrained"
    )
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for run, log in histories.items():
            epochs = np.asarray(log.index) + 1
            for key, style in ((metric, "-"), (f"val_{metric}", "--")):
                label = f"{run} {'val' if style == '--' else 'train'}"
                ax.plot(epochs, log[key], style, color=run_color(run), label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=f"{metric} per epoch", xlabel="epoch", ylabel=metric)
    axes[1].legend(fontsize=7, ncols=2 if len(histories) > 2 else 1)
    return fig


def plot_accuracy_ci(
    accuracy: Mapping[str, float],
    intervals: Mapping[str, tuple[float, float]],
    ax: Axes | None = None,
) -> Axes:
    """Draw each run's test accuracy as a bar with its 95% confidence interval, the
    axis zoomed to the intervals (its label says where it starts)."""
    runs = list(accuracy)
    acc = np.array([accuracy[r] for r in runs])
    low, high = (np.array([intervals[r][k] for r in runs]) for k in (0, 1))
    ax = _axes(ax, (PAGE_WIDTH, 1.2 + 0.45 * len(runs)))
    colors = [run_color(r) for r in runs]
    ax.barh(runs, acc, color=colors, xerr=np.vstack([acc - low, high - acc]), capsize=4)
    span = max(float(high.max() - low.min()), 0.01)
    left = max(0.0, float(low.min()) - span)
    for y, (value, upper) in enumerate(zip(acc, high, strict=True)):
        ax.text(upper + 0.04 * span, y, f"{value:.4f}", va="center", fontsize=8)
    ax.set(xlim=(left, float(high.max()) + 0.5 * span), title="Test accuracy per run")
    ax.set_xlabel(f"test accuracy with 95% bootstrap CI (axis starts at {left:.3f})")
    ax.invert_yaxis()
    return ax


def plot_accuracy_vs_flops(points: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Draw test accuracy against training FLOPs (log x) of ``points``, one row per
    seed run (``name``, ``group`` "main run" or "replication", ``train_flops``,
    ``test_accuracy``): each network's seed mean, a bar over their range, each seed."""
    ax = _axes(ax, (PAGE_WIDTH, 4.2))
    markers = {"main run": "o", "replication": "s"}
    for (group, name), rows in points.groupby(["group", "name"], sort=False):
        x, y = rows["train_flops"].median(), rows["test_accuracy"]
        colour = run_color(name) if group == "main run" else "0.45"
        ax.scatter(rows["train_flops"], y, s=8, color=colour, alpha=0.5)
        yerr = [[y.mean() - y.min()], [y.max() - y.mean()]]
        ax.errorbar(x, y.mean(), yerr=yerr, fmt=markers[group], color=colour, capsize=3)
        ax.annotate(name, (x, y.mean()), (4, 3), textcoords="offset points", size=6)
    handles = [
        plt.Line2D([], [], marker=m, ls="", color="0.3", label=g)
        for g, m in markers.items()
        if g in set(points["group"])
    ]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set(xscale="log", xlabel="training FLOPs (log scale)", ylabel="test accuracy")
    ax.set_title("Accuracy per unit of compute: seed mean, range and every seed")
    return ax
