"""The 50k/10k/10k split: sizes, disjointness, stratification, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import needs_real_data

from helpers import data

LABELS = np.repeat(np.arange(10, dtype=np.uint8), 600)  # 6,000 labels, 600 per class


def test_split_is_disjoint_complete_and_stratified():
    train_idx, val_idx = data.split_indices(LABELS, val_size=1000, seed=1)
    assert (len(train_idx), len(val_idx)) == (5000, 1000)
    assert np.intersect1d(train_idx, val_idx).size == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train_idx, val_idx])), np.arange(6000)
    )
    assert np.bincount(LABELS[val_idx]).tolist() == [100] * 10


def test_split_is_deterministic_and_depends_on_the_seed():
    first = data.split_indices(LABELS, val_size=1000, seed=7)[1]
    again = data.split_indices(LABELS, val_size=1000, seed=7)[1]
    other = data.split_indices(LABELS, val_size=1000, seed=8)[1]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_unstratified_without_seed_takes_the_last_images():
    train_idx, val_idx = data.split_indices(
        LABELS, val_size=1000, seed=None, stratify=False
    )
    np.testing.assert_array_equal(val_idx, np.arange(5000, 6000))
    np.testing.assert_array_equal(train_idx, np.arange(5000))


@pytest.mark.parametrize("val_size", [0, -5, 9, 5991, 6000, 2.5, True])
def test_bad_validation_sizes_are_rejected_with_the_range(val_size):
    with pytest.raises(ValueError, match="from 10 to 5,990"):
        data.split_indices(LABELS, val_size=val_size)


def test_unstratified_range_allows_a_single_image():
    assert len(data.split_indices(LABELS, 1, stratify=False)[1]) == 1
    with pytest.raises(ValueError, match="from 1 to 5,999"):
        data.split_indices(LABELS, 0, stratify=False)


@needs_real_data
def test_default_splits_are_50k_10k_10k_and_cover_the_training_set():
    splits = data.load_splits()
    assert splits.sizes() == {"train": 50000, "val": 10000, "test": 10000}
    assert np.bincount(splits.y_val).tolist() == [1000] * 10
    assert np.bincount(splits.y_train).tolist() == [5000] * 10
    (x_train, _), (x_test, y_test) = data.load_fashion_mnist()
    together = np.concatenate([splits.x_train, splits.x_val]).reshape(60000, -1)

    # Same multiset of images as the official training set (rows sorted bytewise).
    def rows(a):
        return np.sort(a.view(np.dtype((np.void, a.shape[1]))).ravel())

    np.testing.assert_array_equal(rows(together), rows(x_train.reshape(60000, -1)))
    np.testing.assert_array_equal(splits.x_test, x_test)
    np.testing.assert_array_equal(splits.y_test, y_test)
    with pytest.raises(dataclasses.FrozenInstanceError):
        splits.x_train = None


@needs_real_data
def test_fast_mode_shrinks_every_split_the_test_split_included():
    full, fast = data.load_splits(), data.load_splits(fast=True)
    sizes = dict(zip(("train", "val", "test"), data.FAST_SIZES, strict=True))
    assert fast.sizes() == sizes
    np.testing.assert_array_equal(fast.x_test, full.x_test[: data.FAST_SIZES[2]])
    np.testing.assert_array_equal(fast.y_val, full.y_val[: data.FAST_SIZES[1]])
