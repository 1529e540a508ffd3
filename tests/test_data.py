"""The loader finds, verifies and parses IDX files; the split is 50k/10k/10k."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_DATA_DIR, idx_bytes, needs_real_data

from helpers import data


def test_class_names_in_label_order():
    # The dataset's label order, 0 to 9 (zalandoresearch/fashion-mnist README).
    expected = (
        "T-shirt/top Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag Ankle_boot"
    )
    assert [name.replace(" ", "_") for name in data.CLASS_NAMES] == expected.split()


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_loads_good_files_gz_or_plain(tiny_dataset, tmp_path, gz):
    expected = tiny_dataset(tmp_path / "d", gz=gz)
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(tmp_path / "d")
    for got, want in zip((x_train, y_train, x_test, y_test), expected, strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


def _damage(folder: Path, name: str, change) -> None:
    path = folder / f"{name}.gz"
    path.write_bytes(gzip.compress(change(gzip.decompress(path.read_bytes()))))


def _flip(raw: bytes, at: int) -> bytes:
    return raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda raw: raw[:-7], "truncated"),
        (lambda raw: raw[:5], "truncated"),
        (lambda raw: raw + b"\0", "too long"),
        (lambda raw: b"\0\0\x09" + raw[3:], "magic number"),
        (lambda raw: raw[:4] + (999).to_bytes(4, "big") + raw[8:], "dimensions"),
        (lambda raw: _flip(raw, len(raw) - 1), "altered"),
    ],
    ids=[
        "truncated",
        "header-only",
        "too-long",
        "wrong-magic",
        "wrong-dims",
        "checksum",
    ],
)
def test_bad_file_error_names_file_folder_and_fix(
    tiny_dataset, tmp_path, change, words
):
    folder = tmp_path / "d"
    tiny_dataset(folder)
    _damage(folder, "t10k-images-idx3-ubyte", change)
    with pytest.raises(data.DatasetError) as err:
        data.load_fashion_mnist(folder)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte" in message
    assert str(folder) in message
    assert words in message
    assert data.ENV_VAR in message  # the fix


def test_damaged_gzip_stream_names_the_file(tiny_dataset, tmp_path):
    folder = tmp_path / "d"
    tiny_dataset(folder)
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])  # cut the gzip trailer
    with pytest.raises(data.DatasetError, match=r"train-labels-idx1-ubyte\.gz.*gzip"):
        data.load_fashion_mnist(folder)


def test_missing_file_names_the_file(tiny_dataset, tmp_path):
    folder = tmp_path / "d"
    tiny_dataset(folder)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DatasetError, match=r"train-labels-idx1-ubyte.*missing"):
        data.load_fashion_mnist(folder)


def test_search_order_argument_env_keras_cache_system(
    tiny_dataset, tmp_path, monkeypatch
):
    places = [
        tmp_path / "arg",
        tmp_path / "env",
        data.keras_cache_dir(),
        data.SYSTEM_DATA_DIR,
    ]
    for folder in places:
        tiny_dataset(folder)
    monkeypatch.setenv(data.ENV_VAR, str(places[1]))
    read_from = []
    real_read_idx = data.read_idx
    monkeypatch.setattr(
        data,
        "read_idx",
        lambda path, spec: read_from.append(path.parent) or real_read_idx(path, spec),
    )

    def folder_used(*args):
        read_from.clear()
        data.load_fashion_mnist(*args)
        assert len(set(read_from)) == 1  # all four files from one place
        return read_from[0]

    assert folder_used(places[0]) == places[0]
    assert folder_used() == places[1]
    monkeypatch.delenv(data.ENV_VAR)
    assert folder_used() == places[2]
    shutil.rmtree(places[2])
    assert folder_used() == places[3]


def test_downloads_only_when_no_place_has_files(tiny_dataset, tmp_path, monkeypatch):
    calls = []

    def fake_download():
        calls.append(1)
        return tiny_dataset(data.keras_cache_dir())

    monkeypatch.setattr(data, "_download_with_keras", fake_download)
    data.load_fashion_mnist()
    assert calls == [1]
    data.load_fashion_mnist()  # now cached: no second download
    assert calls == [1]


def test_corrupted_file_is_never_replaced_by_a_download(tiny_dataset):
    tiny_dataset(data.SYSTEM_DATA_DIR)
    _damage(data.SYSTEM_DATA_DIR, "train-images-idx3-ubyte", lambda raw: raw[:-1])
    with pytest.raises(data.DatasetError, match="train-images-idx3-ubyte"):
        data.load_fashion_mnist()  # the fixture's downloader raises AssertionError


@needs_real_data
def test_real_files_load_with_keras_shapes_and_dtypes():
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(REAL_DATA_DIR)
    assert (x_train.shape, y_train.shape) == ((60000, 28, 28), (60000,))
    assert (x_test.shape, y_test.shape) == ((10000, 28, 28), (10000,))
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_test).tolist() == [1000] * 10


@needs_real_data
def test_matches_the_keras_loader_byte_for_byte(tmp_path):
    """Keras reads the same .gz files from a cache we fill, offline; compare all."""
    cache = tmp_path / "keras" / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for spec in data.FASHION_MNIST_FILES:
        shutil.copy(REAL_DATA_DIR / f"{spec.name}.gz", cache)
    out = tmp_path / "keras.npz"
    script = (
        "import sys, numpy as np, keras\n"
        "(a, b), (c, d) = keras.datasets.fashion_mnist.load_data()\n"
        "np.savez(sys.argv[1], a=a, b=b, c=c, d=d)\n"
    )
    env = {
        **os.environ,
        "KERAS_HOME": str(tmp_path / "keras"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
    keras_arrays = np.load(out)
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(REAL_DATA_DIR)
    for ours, key in zip((x_train, y_train, x_test, y_test), "abcd", strict=True):
        theirs = keras_arrays[key]
        assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape)
        assert ours.tobytes() == theirs.tobytes()


@needs_real_data
@pytest.mark.parametrize("spec", data.FASHION_MNIST_FILES, ids=lambda s: s.name)
@pytest.mark.parametrize("where", ["compressed", "decompressed"])
def test_one_flipped_byte_in_a_real_file_names_that_file(tmp_path, spec, where):
    for other in data.FASHION_MNIST_FILES:
        shutil.copy(REAL_DATA_DIR / f"{other.name}.gz", tmp_path)
    path = tmp_path / f"{spec.name}.gz"
    raw = path.read_bytes()
    if where == "compressed":
        path.write_bytes(_flip(raw, len(raw) // 2))
    else:
        plain = gzip.decompress(raw)
        path.unlink()
        (tmp_path / spec.name).write_bytes(_flip(plain, len(plain) - 100))
    with pytest.raises(data.DatasetError) as err:
        data.load_fashion_mnist(tmp_path)
    assert spec.name in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_idx_writer_matches_the_spec_size():
    array = np.zeros((3, 28, 28), np.uint8)
    assert len(idx_bytes(array)) == data.IdxSpec("x", (3, 28, 28), "").size
