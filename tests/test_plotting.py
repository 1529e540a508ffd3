"""Plot functions return what they drew on, draw on a given Axes, and save PNGs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers import data, evaluation, plotting

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (60, 28, 28), dtype=np.uint8)
Y = np.arange(60) % 10


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
    ],
    ids=["counts", "heatmap", "intensity", "distances"],
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
