"""Every figure of the bundle, with one look.

Each function draws on ``ax`` when one is given (else makes a new figure), sets its
title and axis labels, and returns what it drew on. None calls ``plt.show()``:
notebooks display the returned figure, and :func:`save_figure` writes it as PNG.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from helpers.artifacts import artifact_path, atomic_path
from helpers.data import CLASS_NAMES, IMAGE_SHAPE, NUM_CLASSES

SPLIT_COLORS = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}
IMAGE_CMAP = "gray_r"  # dark garment on white paper reads best in print
HEATMAP_CMAP = "viridis"

# seaborn's "colorblind" palette, written out so the colours never depend on a theme.
RUN_PALETTE: tuple[str, ...] = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
)
# One colour per model in every notebook; the pale pink, grey and yellow are left
# for runs not listed here.
RUN_COLORS: dict[str, str] = {
    "ann-baseline": "#0173b2",
    "ann-dropout": "#56b4e9",
    "cnn-baseline": "#de8f05",
    "cnn-dropout": "#029e73",
    "cnn-plus": "#d55e00",
    "cnn-bn": "#cc78bc",
    "cnn-deep": "#ca9161",
}


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
    n_rows: int,
    n_cols: int,
    cell: float = 1.0,
    figsize: tuple[float, float] | None = None,
) -> tuple[Figure, np.ndarray]:
    """A grid of axis-less panels: ``cell`` inches each, unless ``figsize`` is given."""
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=figsize or (n_cols * cell, n_rows * cell * 1.15),
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


def run_color(name: str) -> str:
    """Return the hex colour of run ``name``, the same in every notebook and session.

    Known runs get their :data:`RUN_COLORS` entry; any other name gets a colour of
    :data:`RUN_PALETTE` chosen by the SHA-256 of the name (``hash()`` changes
    between Python sessions).
    """
    if name in RUN_COLORS:
        return RUN_COLORS[name]
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return RUN_PALETTE[int.from_bytes(digest[:8], "big") % len(RUN_PALETTE)]


def plot_confusion_matrix(
    cm: np.ndarray,
    ax: Axes | None = None,
    normalize: bool = True,
    class_names: Sequence[str] = CLASS_NAMES,
    title: str | None = None,
) -> Axes:
    """Draw a confusion matrix as an annotated heatmap, true class down the side.

    Args:
        cm: int confusion matrix (k, k), rows = true class, columns = predicted,
            e.g. from ``evaluation.confusion_matrix``.
        ax: Axes to draw on.
        normalize: Show each row as fractions of that true class (2 decimals)
            instead of image counts; a row with no images shows zeros.
        class_names: Tick labels, in label order.
        title: Axes title; default says whether rates or counts are shown.

    Returns:
        The axes.
    """
    cm = np.asarray(cm, dtype=np.int64)
    ax = _axes(ax, (7.2, 6.0))
    if normalize:
        rows = cm.sum(axis=1, keepdims=True).astype(np.float64)
        shown = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows != 0)
        fmt, cbar_label, vmax = ".2f", "fraction of the true class", 1.0
    else:
        shown, fmt, cbar_label, vmax = cm, "d", "images", None
    sns.heatmap(
        shown,
        ax=ax,
        annot=True,
        fmt=fmt,
        annot_kws={"fontsize": 7},
        cmap=HEATMAP_CMAP,
        vmin=0,
        vmax=vmax,
        xticklabels=class_names,
        yticklabels=class_names,
        square=True,
        cbar_kws={"label": cbar_label, "shrink": 0.8},
    )
    ax.tick_params(axis="both", labelsize=8)
    plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
    plt.setp(ax.get_yticklabels(), rotation=0)
    default = "row-normalised" if normalize else "counts"
    ax.set(
        title=title or f"Confusion matrix ({default})",
        xlabel="predicted class",
        ylabel="true class",
    )
    return ax


def plot_misclassified(
    x: np.ndarray,
    y_true: np.ndarray,
    probs: np.ndarray,
    n: int = 15,
    n_cols: int = 5,
    class_names: Sequence[str] = CLASS_NAMES,
    seed: int = 0,
) -> Figure:
    """Show the model's most confident mistakes, each titled true vs predicted.

    Args:
        x: Images, uint8 (m, 28, 28) or float (m, 28, 28) / (m, 28, 28, 1).
        y_true: Integer labels (m,).
        probs: float class probabilities (m, k); the prediction is the arg-max.
        n: Most images shown.
        n_cols: Images per row.
        class_names: Names in label order.
        seed: Breaks ties between equally confident mistakes.

    Returns:
        The figure: mistakes sorted by predicted-class probability, highest first,
        titled ``"true: X\npred: Y (87%)"``; a one-line notice when there are none.
    """
    probs = np.asarray(probs)
    y_true = np.asarray(y_true)
    y_pred = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(4, 1.2), layout="constrained")
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        ax.set_axis_off()
        return fig
    wrong = np.random.default_rng(seed).permutation(wrong)
    picks = wrong[np.argsort(-confidence[wrong], kind="stable")[:n]]
    images = np.asarray(x)[picks].reshape(len(picks), *IMAGE_SHAPE)
    vmin, vmax = (0, 255) if images.dtype == np.uint8 else (images.min(), images.max())
    n_cols = min(n_cols, len(picks))
    fig, axes = _image_grid(math.ceil(len(picks) / n_cols), n_cols, cell=1.45)
    for ax, idx, image in zip(axes.flat, picks, images, strict=False):
        ax.imshow(image, cmap=IMAGE_CMAP, vmin=vmin, vmax=vmax)
        ax.set_title(
            f"true: {class_names[y_true[idx]]}\n"
            f"pred: {class_names[y_pred[idx]]} ({confidence[idx]:.0%})",
            fontsize=7,
        )
    fig.suptitle(
        f"The {len(picks)} most confident of {len(wrong):,} misclassified images"
    )
    return fig


def plot_history(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    metric: str = "loss",
    ax: Axes | None = None,
) -> Axes:
    """Draw one metric per epoch for several runs: training solid, validation dashed.

    Args:
        histories: Run name -> Keras ``History.history`` dict holding ``metric``
            and, when validated, ``"val_" + metric`` (lists of floats, one per epoch).
        metric: Key to draw, e.g. ``"loss"`` or ``"accuracy"``.
        ax: Axes to draw on.

    Returns:
        The axes; each run drawn in :func:`run_color` of its name.

    Raises:
        KeyError: a history lacks ``metric``.
    """
    ax = _axes(ax, (6.4, 4.0))
    for run, history in histories.items():
        if metric not in history:
            raise KeyError(f"history of {run!r} has no {metric!r}: {list(history)}")
        color = run_color(run)
        for key, style, split in (
            (metric, "-", "train"),
            (f"val_{metric}", "--", "val"),
        ):
            if key in history:
                values = history[key]
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, color=color, label=f"{run} {split}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=f"{metric} per epoch", xlabel="epoch", ylabel=metric)
    ax.legend(fontsize=7, ncols=2 if len(histories) > 3 else 1)
    return ax


def plot_learning_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    stacked: bool | None = None,
) -> Figure:
    """Draw loss and accuracy per epoch (see :func:`plot_history`).

    Args:
        histories: Run name -> history dict.
        stacked: Loss above accuracy (page width, room for many runs' legends)
            instead of side by side; default: stacked for more than two runs.
    """
    stacked = len(histories) > 2 if stacked is None else stacked
    shape, size = ((2, 1), (7, 7)) if stacked else ((1, 2), (11, 4))
    fig, axes = plt.subplots(*shape, figsize=size, layout="constrained")
    plot_history(histories, "loss", ax=axes[0])
    plot_history(histories, "accuracy", ax=axes[1])
    fig.suptitle("Learning curves")
    return fig


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


# --- Comparing runs -----------------------------------------------------------------

DIVERGING_CMAP = "RdBu_r"  # blue below zero (errors fixed), red above (errors added)
PAGE_WIDTH = 7.0  # inches: figures meant for the PDF report are drawn at this width


def _rotate_xticklabels(ax: Axes, rotation: float = 30) -> None:
    plt.setp(
        ax.get_xticklabels(), rotation=rotation, ha="right", rotation_mode="anchor"
    )


def plot_accuracy_ci(
    accuracy_by_run: Mapping[str, float],
    ci_by_run: Mapping[str, tuple[float, float]],
    ax: Axes | None = None,
    confidence: float = 0.95,
) -> Axes:
    """Draw each run's test accuracy as a horizontal bar with its confidence interval.

    The accuracy axis is zoomed to the intervals (it does not start at 0, and the
    label says where it starts), so intervals a point wide stay visible; each bar is
    labelled with its accuracy.

    Args:
        accuracy_by_run: Run name -> test accuracy in [0, 1]; bars top to bottom in
            this order, each in :func:`run_color` of its run.
        ci_by_run: Run name -> ``(low, high)`` interval around that accuracy, e.g.
            ``evaluation.bootstrap_accuracy_cis``.
        ax: Axes to draw on.
        confidence: Coverage of the intervals, for the axis label.

    Returns:
        The axes.
    """
    runs = list(accuracy_by_run)
    accuracy = np.array([accuracy_by_run[run] for run in runs], dtype=np.float64)
    low = np.array([ci_by_run[run][0] for run in runs], dtype=np.float64)
    high = np.array([ci_by_run[run][1] for run in runs], dtype=np.float64)
    ax = _axes(ax, (PAGE_WIDTH, 1.3 + 0.45 * len(runs)))
    y = np.arange(len(runs))
    ax.barh(
        y,
        accuracy,
        color=[run_color(run) for run in runs],
        xerr=np.vstack([accuracy - low, high - accuracy]),
        error_kw={"capsize": 4, "elinewidth": 1.2, "ecolor": "0.15"},
    )
    span = max(float(high.max() - low.min()), 0.01)
    left = max(0.0, float(low.min()) - span)
    for yi, value, upper in zip(y, accuracy, high, strict=True):
        ax.text(upper + 0.04 * span, yi, f"{value:.4f}", va="center", fontsize=8)
    ax.set_xlim(left, float(high.max()) + 0.5 * span)
    ax.set_yticks(y, runs)
    ax.invert_yaxis()  # first run on top
    ax.grid(axis="y", visible=False)
    ax.set(
        title="Test accuracy per run",
        xlabel=f"test accuracy, {confidence:.0%} bootstrap CI "
        f"(axis starts at {left:.3f}, not 0)",
        ylabel="",
    )
    return ax


def _barh_panel(
    ax: Axes, runs: Sequence[str], values: np.ndarray, fmt: str, title: str, xlabel: str
) -> None:
    """One horizontal bar per run in its colour, each labelled with ``fmt``."""
    bars = ax.barh(runs, values, color=[run_color(run) for run in runs])
    ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, float(values.max()) * 1.3 if values.max() > 0 else 1)
    ax.grid(axis="y", visible=False)
    ax.set(title=title, xlabel=xlabel)


def plot_params_and_time(metrics_by_run: Mapping[str, Mapping[str, object]]) -> Figure:
    """Draw the parameter count and the training time of every run, side by side.

    Args:
        metrics_by_run: Run name -> metrics record with ``params`` and
            ``train_seconds``; bars top to bottom in this order.

    Returns:
        The figure, two Axes sharing the run axis.
    """
    runs = list(metrics_by_run)
    params = np.array([metrics_by_run[run]["params"] for run in runs], dtype=np.float64)
    seconds = np.array(
        [metrics_by_run[run]["train_seconds"] for run in runs], dtype=np.float64
    )
    fig, axes = plt.subplots(
        1,
        2,
        figsize=(PAGE_WIDTH, 1.4 + 0.45 * len(runs)),
        sharey=True,
        layout="constrained",
    )
    _barh_panel(axes[0], runs, params, "{:,.0f}", "Parameters", "parameters")
    _barh_panel(axes[1], runs, seconds, "{:,.0f} s", "Training time", "seconds")
    axes[0].invert_yaxis()  # shared: first run on top in both panels
    axes[0].xaxis.set_major_formatter(lambda value, _: f"{value / 1000:,.0f}k")
    fig.suptitle("Model size and training cost")
    return fig


def plot_per_class_f1(f1_table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Draw per-class F1 scores as an annotated heatmap, classes down and runs across.

    The colour scale spans the table's own range, so differences of a few points
    between runs show.

    Args:
        f1_table: float DataFrame (classes, runs), e.g.
            ``comparison.per_class_f1_table``.
        ax: Axes to draw on.

    Returns:
        The axes.
    """
    ax = _axes(ax, (PAGE_WIDTH, 5.0))
    sns.heatmap(
        f1_table,
        ax=ax,
        annot=True,
        fmt=".3f",
        annot_kws={"fontsize": 8},
        cmap=HEATMAP_CMAP,
        cbar_kws={"label": "F1"},
    )
    ax.tick_params(axis="both", labelsize=8)
    _rotate_xticklabels(ax)
    plt.setp(ax.get_yticklabels(), rotation=0)
    ax.set(title="Per-class F1 of every run", xlabel="run", ylabel="class")
    return ax


def plot_confusion_difference(
    cm_diff: np.ndarray,
    class_names: Sequence[str] = CLASS_NAMES,
    ax: Axes | None = None,
    run_a: str = "A",
    run_b: str = "B",
) -> Axes:
    """Draw a confusion-matrix difference ``B - A`` on a colour scale centred at 0.

    Off the diagonal, blue (negative) cells are mistakes of ``run_a`` that ``run_b``
    no longer makes, red (positive) ones mistakes ``run_b`` adds. The diagonal
    (change in images right per class) is printed in bold on grey, outside the
    colour scale, so it neither dominates the scale nor reads as an error. Zero
    cells are left blank.

    Args:
        cm_diff: int (k, k) difference, rows = true class, e.g.
            ``evaluation.confusion_difference(cm_a, cm_b)``.
        class_names: Tick labels, in label order.
        ax: Axes to draw on.
        run_a: Name of the run subtracted.
        run_b: Name of the run it is subtracted from.

    Returns:
        The axes, titled ``"<run_b> minus <run_a>"``.
    """
    diff = np.asarray(cm_diff, dtype=np.int64)
    k = len(diff)
    diagonal = np.eye(k, dtype=bool)
    off = np.abs(diff[~diagonal])
    limit = max(int(off.max()) if off.size else 0, 1)
    labels = np.where(diff == 0, "", np.char.mod("%+d", diff))
    ax = _axes(ax, (PAGE_WIDTH, 6.0))
    sns.heatmap(
        diff,
        ax=ax,
        mask=diagonal,
        annot=labels,
        fmt="",
        annot_kws={"fontsize": 8},
        cmap=DIVERGING_CMAP,
        vmin=-limit,  # symmetric, so white is 0
        vmax=limit,
        xticklabels=class_names,
        yticklabels=class_names,
        square=True,
        linewidths=0.5,
        linecolor="white",
        cbar_kws={"label": "images (blue: errors fixed, red: errors added)"},
    )
    for c in range(k):
        ax.add_patch(Rectangle((c, c), 1, 1, facecolor="0.88", edgecolor="white"))
        ax.text(
            c + 0.5,
            c + 0.5,
            labels[c, c],
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold",
        )
    ax.tick_params(axis="both", labelsize=8)
    _rotate_xticklabels(ax, 40)
    plt.setp(ax.get_yticklabels(), rotation=0)
    ax.set(
        title=f"{run_b} minus {run_a}",
        xlabel="predicted class",
        ylabel="true class (diagonal: change in images right)",
    )
    return ax


# --- Where the CNN looks -------------------------------------------------------------

GRAD_CAM_CMAP = "turbo"  # the usual jet-like Grad-CAM look, perceptually smoother
VERDICT_COLORS = {True: "#029e73", False: "#d55e00", None: "0.45"}  # right/wrong/none


def _draw_heat_overlay(
    ax: Axes, image: np.ndarray, heat: np.ndarray | None, alpha: float, cmap: str
) -> None:
    """Draw a greyscale image, framed, with ``heat`` laid over it (opacity ~ heat)."""
    image = np.asarray(image).reshape(IMAGE_SHAPE)
    vmax = 255 if image.dtype == np.uint8 else 1
    ax.imshow(image, cmap=IMAGE_CMAP, vmin=0, vmax=vmax)
    if heat is not None:
        heat = np.clip(np.asarray(heat, dtype=np.float32).reshape(IMAGE_SHAPE), 0, 1)
        ax.imshow(heat, cmap=cmap, alpha=alpha * heat, vmin=0, vmax=1)
    ax.set_axis_on()  # a thin frame: white backgrounds would merge otherwise
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set(color="0.75", linewidth=0.5)


def plot_grad_cam(
    images: Sequence[np.ndarray | None],
    heatmaps: Sequence[np.ndarray | None],
    titles: Sequence[str],
    correct: Sequence[bool | None] | None = None,
    ncols: int = 6,
    alpha: float = 0.7,
    cmap: str = GRAD_CAM_CMAP,
    title: str = "Grad-CAM of the predicted class: where the CNN looks",
) -> Figure:
    """Show images with their Grad-CAM heat maps laid over them, page-wide.

    Drawn :data:`PAGE_WIDTH` inches wide with 7 pt titles, so the figure stays
    legible printed at page width. The heat's opacity grows with its value, up to
    ``alpha``: cold regions leave the garment visible, hot ones are coloured. A
    colour bar below the panels reads the heat.

    Args:
        images: One greyscale image per panel, float (28, 28) in [0, 1] or uint8
            (a trailing channel axis is dropped); None leaves the panel blank.
        heatmaps: float (28, 28) maps in [0, 1], e.g. ``explain.grad_cam``; None
            shows the image alone.
        titles: Panel titles, e.g. ``explain.describe_prediction``.
        correct: Per panel True (title in green), False (red) or None (grey);
            None for all grey.
        ncols: Panels per row; even keeps a right/wrong pair on one row.
        alpha: Opacity of the hottest pixels (heat 1); heat 0 is transparent.
        cmap: Colour map of the heat.
        title: Figure title.

    Returns:
        The figure; ``fig.axes`` holds the panels in order, then the colour bar.

    Raises:
        ValueError: ``images``, ``heatmaps``, ``titles`` (and ``correct``) differ
            in length.
    """
    correct = [None] * len(images) if correct is None else list(correct)
    if not len(images) == len(heatmaps) == len(titles) == len(correct):
        raise ValueError(
            "images, heatmaps, titles and correct differ in length: "
            f"{len(images)}, {len(heatmaps)}, {len(titles)}, {len(correct)}."
        )
    ncols = max(1, min(ncols, len(images)))
    nrows = max(1, math.ceil(len(images) / ncols))
    cell = PAGE_WIDTH / ncols
    fig, axes = _image_grid(
        nrows, ncols, figsize=(PAGE_WIDTH, nrows * (cell + 0.3) + 0.8)
    )
    for ax, image, heat, text, verdict in zip(
        axes.flat, images, heatmaps, titles, correct, strict=False
    ):
        ax.set_title(text, fontsize=7, color=VERDICT_COLORS[verdict])
        if image is not None:
            _draw_heat_overlay(ax, image, heat, alpha, cmap)
    colorbar = fig.colorbar(
        plt.cm.ScalarMappable(cmap=cmap),
        ax=axes,
        orientation="horizontal",
        shrink=0.5,
        aspect=40,
    )
    colorbar.set_label("Grad-CAM heat (1 = strongest evidence)", fontsize=7)
    colorbar.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    return fig
