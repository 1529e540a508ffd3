"""Plot functions return what they drew on, draw on a given Axes, and save PNGs."""

from __future__ import annotations

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from helpers import data, evaluation, plotting

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (60, 28, 28), dtype=np.uint8)
Y = np.arange(60) % 10
CM = evaluation.confusion_matrix(Y, (Y + (np.arange(60) % 3 == 0)) % 10)
HISTORIES = {
    "cnn-baseline": {
        "loss": [0.9, 0.5, 0.4],
        "val_loss": [0.7, 0.6, 0.55],
        "accuracy": [0.7, 0.8, 0.85],
        "val_accuracy": [0.75, 0.8, 0.82],
    },
    "ann-baseline": {
        "loss": [1.0, 0.7],
        "val_loss": [0.8, 0.75],
        "accuracy": [0.6, 0.7],
        "val_accuracy": [0.65, 0.7],
    },
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_image_grids_return_figures_with_class_titles():
    fig = plotting.plot_sample_grid(X, Y, per_class=2)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == list(data.CLASS_NAMES)
    fig = plotting.plot_mean_images(data.class_mean_images(X, Y))
    assert len(fig.axes) == 10


@pytest.mark.parametrize(
    "draw",
    [
        lambda ax: plotting.plot_class_counts({"train": Y, "val": Y[:20]}, ax=ax),
        lambda ax: plotting.plot_pixel_heatmap(data.scale_images(X).mean(0), ax=ax),
        lambda ax: plotting.plot_intensity_distribution(X, ax=ax),
        lambda ax: plotting.plot_class_distances(
            evaluation.mean_image_distances(data.class_mean_images(X, Y)), ax=ax
        ),
        lambda ax: plotting.plot_confusion_matrix(CM, ax=ax),
        lambda ax: plotting.plot_history(HISTORIES, "accuracy", ax=ax),
    ],
    ids=["counts", "heatmap", "intensity", "distances", "confusion", "history"],
)
def test_axes_plots_draw_on_the_given_axes_with_labels(draw):
    _, ax = plt.subplots()
    returned = draw(ax)
    assert returned is ax
    assert ax.get_title()
    fresh = draw(None)
    assert isinstance(fresh, Axes)
    assert fresh is not ax


def test_class_counts_bars_match_the_labels():
    ax = plotting.plot_class_counts({"train": Y})
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == [6] * 10


def test_save_figure_writes_a_png_in_figures(tmp_path):
    fig = plotting.plot_sample_grid(X, Y, per_class=1)
    path = plotting.save_figure(fig, "grid", tmp_path)
    assert path == tmp_path / "figures" / "grid.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_run_colors_are_distinct_palette_colours_and_stable_for_new_runs():
    assert list(plotting.RUN_PALETTE) == sns.color_palette("colorblind").as_hex()
    known = [plotting.run_color(name) for name in plotting.RUN_COLORS]
    assert len(set(known)) == len(known) == 7
    assert set(known) <= set(plotting.RUN_PALETTE)
    assert plotting.run_color("cnn-plus") == plotting.RUN_COLORS["cnn-plus"]
    # Unknown runs: picked by SHA-256 of the name, so the same in every session.
    assert plotting.run_color("cnn-wide") == "#ca9161"
    assert plotting.run_color("my-run") == "#949494"
    others = {plotting.run_color(f"run-{i}") for i in range(20)}
    assert others <= set(plotting.RUN_PALETTE)
    assert len(others) > 1


def _heatmap_values(ax: Axes) -> np.ndarray:
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    return np.asarray(mesh.get_array()).reshape(10, 10)


def test_confusion_matrix_normalised_rows_sum_to_one():
    ax = plotting.plot_confusion_matrix(CM)
    shown = _heatmap_values(ax)
    np.testing.assert_allclose(shown.sum(axis=1), 1.0)
    np.testing.assert_allclose(shown, CM / CM.sum(axis=1, keepdims=True))
    assert ax.get_title() == "Confusion matrix (row-normalised)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    assert [t.get_text() for t in ax.get_xticklabels()] == list(data.CLASS_NAMES)
    assert ax.get_xticklabels()[0].get_rotation() > 0  # ten long names fit
    # Six images per class; two of class 0 are predicted as class 1.
    assert {t.get_text() for t in ax.texts} >= {"0.67", "0.33", "0.00"}


def test_confusion_matrix_counts_and_empty_rows():
    cm = CM.copy()
    cm[3] = 0  # a class with no images shows zeros, not NaN
    ax = plotting.plot_confusion_matrix(cm, normalize=False, title="Test set")
    np.testing.assert_array_equal(_heatmap_values(ax), cm)
    assert ax.get_title() == "Test set"
    assert "4" in {t.get_text() for t in ax.texts}
    assert plotting.plot_confusion_matrix(cm).get_title().endswith("(row-normalised)")
    shown = _heatmap_values(plotting.plot_confusion_matrix(cm))
    np.testing.assert_array_equal(shown[3], 0.0)
    assert plotting.plot_confusion_matrix(cm, normalize=False).get_title() == (
        "Confusion matrix (counts)"
    )


def test_misclassified_shows_the_most_confident_mistakes_first():
    y_true = np.array([0, 1, 2, 3, 4])
    probs = np.full((5, 10), 0.01)
    probs[0, 0] = 0.95  # right
    probs[1, 0] = 0.60  # Trouser taken for a T-shirt/top, 60%
    probs[2, 4] = 0.90  # Pullover taken for a Coat, 90%
    probs[3, 3] = 0.99  # right
    probs[4, 6] = 0.80  # Coat taken for a Shirt, 80%
    fig = plotting.plot_misclassified(X[:5], y_true, probs)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [
        "true: Pullover\npred: Coat (90%)",
        "true: Coat\npred: Shirt (80%)",
        "true: Trouser\npred: T-shirt/top (60%)",
    ]
    fig = plotting.plot_misclassified(
        data.add_channel_axis(data.scale_images(X[:5])), y_true, probs, n=2
    )
    assert len([ax for ax in fig.axes if ax.images]) == 2


def test_misclassified_without_mistakes_says_so():
    probs = np.eye(10)[Y[:10]]
    fig = plotting.plot_misclassified(X[:10], Y[:10], probs)
    assert len(fig.axes) == 1
    assert [t.get_text() for t in fig.axes[0].texts] == ["no misclassified images"]


def test_history_draws_train_solid_and_val_dashed_in_the_run_colour():
    ax = plotting.plot_history(HISTORIES, "loss")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(lines) == [
        "ann-baseline train",
        "ann-baseline val",
        "cnn-baseline train",
        "cnn-baseline val",
    ]
    for run, history in HISTORIES.items():
        train, val = lines[f"{run} train"], lines[f"{run} val"]
        assert train.get_linestyle() == "-"
        assert val.get_linestyle() == "--"
        assert train.get_color() == val.get_color() == plotting.run_color(run)
        np.testing.assert_array_equal(
            train.get_xdata(), [1, 2, 3][: len(history["loss"])]
        )
        np.testing.assert_array_equal(val.get_ydata(), history["val_loss"])
    assert ax.get_title() == "loss per epoch"
    assert ax.get_xlabel() == "epoch"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "cnn-baseline val" in legend


def test_learning_curves_show_loss_and_accuracy_side_by_side():
    fig = plotting.plot_learning_curves(HISTORIES)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == [
        "loss per epoch",
        "accuracy per epoch",
    ]
    assert fig.get_suptitle() == "Learning curves"


# --- Comparing runs -------------------------------------------------------------

ACCURACY = {"ann-baseline": 0.875, "cnn-baseline": 0.898, "cnn-plus": 0.921}
CI = {
    "ann-baseline": (0.868, 0.881),
    "cnn-baseline": (0.892, 0.904),
    "cnn-plus": (0.916, 0.926),
}


def _bar_colors(ax: Axes) -> list[str]:
    return [matplotlib.colors.to_hex(patch.get_facecolor()) for patch in ax.patches]


def test_accuracy_ci_draws_one_bar_per_run_with_its_interval():
    ax = plotting.plot_accuracy_ci(ACCURACY, CI)
    assert len(ax.patches) == 3
    assert [patch.get_width() for patch in ax.patches] == list(ACCURACY.values())
    assert _bar_colors(ax) == [plotting.run_color(run) for run in ACCURACY]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(ACCURACY)
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    segments = bars.errorbar.lines[2][0].get_segments()
    np.testing.assert_allclose([s[:, 0] for s in segments], list(CI.values()))
    assert {"0.8750", "0.9210"} <= {t.get_text() for t in ax.texts}
    left, right = ax.get_xlim()
    assert 0 < left < 0.868  # zoomed to the intervals, and the label says so
    assert right > 0.926
    assert "95% bootstrap CI" in ax.get_xlabel()
    assert f"starts at {left:.3f}" in ax.get_xlabel()
    assert ax.get_title()
    assert ax.figure.get_size_inches()[0] <= 7.5  # legible at PDF page width


def test_params_and_time_draws_two_panels_of_one_bar_per_run():
    metrics = {
        run: {"params": 1000 * (i + 1), "train_seconds": 10.0 * (i + 1)}
        for i, run in enumerate(plotting.RUN_COLORS)
    }
    fig = plotting.plot_params_and_time(metrics)
    assert isinstance(fig, Figure)
    params_ax, time_ax = fig.axes
    assert [p.get_width() for p in params_ax.patches] == [
        1000.0 * i for i in range(1, 8)
    ]
    assert [p.get_width() for p in time_ax.patches] == [10.0 * i for i in range(1, 8)]
    assert _bar_colors(time_ax) == list(plotting.RUN_COLORS.values())
    assert (params_ax.get_title(), time_ax.get_title()) == (
        "Parameters",
        "Training time",
    )
    assert "70 s" in {t.get_text() for t in time_ax.texts}
    assert fig.get_size_inches()[0] <= 7.5


def test_per_class_f1_heatmap_has_a_cell_per_class_and_run():
    table = pd.DataFrame(
        RNG.uniform(0.6, 1.0, (10, 7)),
        index=list(data.CLASS_NAMES),
        columns=list(plotting.RUN_COLORS),
    )
    ax = plotting.plot_per_class_f1(table)
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(10, 7), table)
    assert len(ax.texts) == 70
    assert f"{table.iloc[6, 2]:.3f}" in {t.get_text() for t in ax.texts}
    assert [t.get_text() for t in ax.get_xticklabels()] == list(plotting.RUN_COLORS)
    assert ax.get_xticklabels()[0].get_rotation() > 0
    _, given = plt.subplots()
    assert plotting.plot_per_class_f1(table.iloc[:, :2], ax=given) is given


def test_confusion_difference_is_centred_at_zero_and_names_both_runs():
    diff = evaluation.confusion_difference(CM, CM.T)  # some cells up, some down
    ax = plotting.plot_confusion_difference(diff, run_a="ann-x", run_b="cnn-y")
    assert ax.get_title() == "cnn-y minus ann-x"
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert mesh.norm.vmin == -mesh.norm.vmax == -np.abs(diff).max()
    hidden = np.ma.getmaskarray(mesh.get_array()).reshape(10, 10)
    np.testing.assert_array_equal(hidden, np.eye(10, dtype=bool))  # diagonal on grey
    texts = [t.get_text() for t in ax.texts if t.get_text()]
    assert len(texts) == np.count_nonzero(diff)  # zeros are left blank
    assert {f"{v:+d}" for v in diff[diff != 0]} == set(texts)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(data.CLASS_NAMES)
    assert ax.get_xticklabels()[0].get_rotation() > 0
    _, given = plt.subplots()
    assert plotting.plot_confusion_difference(diff, ax=given) is given
    assert given.get_title() == "B minus A"


def test_confusion_difference_prints_the_diagonal_in_bold_outside_the_scale():
    perfect = evaluation.confusion_matrix(Y, Y)  # fixes every error of CM
    diff = evaluation.confusion_difference(CM, perfect)
    ax = plotting.plot_confusion_difference(diff)
    bold = {t.get_text() for t in ax.texts if t.get_fontweight() == "bold"}
    assert bold == {f"{v:+d}" for v in np.diag(diff) if v}
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert mesh.norm.vmax == np.abs(diff[~np.eye(10, dtype=bool)]).max()
