"""Shared fixtures: tiny IDX files, an isolated data search path, a headless backend."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")  # no screen in CI

from helpers import artifacts, data

REAL_DATA_DIR = data.SYSTEM_DATA_DIR
needs_real_data = pytest.mark.skipif(
    not all(data.find_idx_file(REAL_DATA_DIR, s) for s in data.FASHION_MNIST_FILES),
    reason=f"Fashion-MNIST not installed in {REAL_DATA_DIR} (apt-get install "
    "dataset-fashion-mnist)",
)


def run_python(*args, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run this Python with ``args`` from ``cwd`` as a user would (outside the
    project, ``helpers`` importable); return what it printed and its exit code."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (magic 0x0000080<ndim>, big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def isolated_search(tmp_path, monkeypatch):
    """No env var, an empty Keras cache and an empty system folder; no downloads."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", tmp_path / "system")

    def no_download():
        raise AssertionError("the loader tried to download")

    monkeypatch.setattr(data, "_download_with_keras", no_download)
    return tmp_path


@pytest.fixture
def tiny_dataset(isolated_search, monkeypatch):
    """Write a tiny, valid 4-file dataset and make the loader expect exactly it.

    Returns a function ``write(folder, gz=True) -> arrays`` that writes the four files
    (20 train and 10 test images of 28x28) into ``folder``.
    """
    rng = np.random.default_rng(0)
    arrays = (
        rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        np.arange(20, dtype=np.uint8) % 10,
        rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        np.arange(10, dtype=np.uint8),
    )
    specs = tuple(
        data.IdxSpec(
            spec.name, array.shape, hashlib.sha256(idx_bytes(array)).hexdigest()
        )
        for spec, array in zip(data.FASHION_MNIST_FILES, arrays, strict=True)
    )
    monkeypatch.setattr(data, "FASHION_MNIST_FILES", specs)

    def write(folder: Path, gz: bool = True) -> tuple[np.ndarray, ...]:
        folder.mkdir(parents=True, exist_ok=True)
        for spec, array in zip(specs, arrays, strict=True):
            raw = idx_bytes(array)
            if gz:
                (folder / f"{spec.name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / spec.name).write_bytes(raw)
        return arrays

    return write


@pytest.fixture(scope="session")
def fast_run(tmp_path_factory):
    """Every notebook, run once per test session in fast mode by the command line,
    into a fresh ``artifacts-fast/`` (where ``make test-compat`` finds its models);
    returns that folder, with the command's console output in ``console.txt``.

    Tests read this run instead of executing notebooks again.
    """
    if not all(data.find_idx_file(REAL_DATA_DIR, s) for s in data.FASHION_MNIST_FILES):
        pytest.skip(f"Fashion-MNIST not installed in {REAL_DATA_DIR}")
    output_dir = artifacts.default_output_dir(fast=True)
    shutil.rmtree(output_dir, ignore_errors=True)  # nothing from an earlier run
    output_dir.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.pipeline",
            "--fast",
            "--output-dir",
            output_dir,
        ],
        cwd=output_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    console = done.stdout + done.stderr
    (output_dir / "console.txt").write_text(console)
    assert done.returncode == 0, console
    return output_dir


@pytest.fixture(scope="session")
def fast_replication(tmp_path_factory):
    """``make replicate``'s runs in fast mode (one seed of each recipe, two of one),
    once per session by the command line; returns their folder, with the console
    output in ``console.txt``."""
    if not all(data.find_idx_file(REAL_DATA_DIR, s) for s in data.FASHION_MNIST_FILES):
        pytest.skip(f"Fashion-MNIST not installed in {REAL_DATA_DIR}")
    output_dir = tmp_path_factory.mktemp("fast-replication")
    command = ["-m", "helpers.pipeline", "--fast", "--replicate", "--output-dir"]
    done = subprocess.run(
        [sys.executable, *command, output_dir],
        cwd=output_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    (output_dir / "console.txt").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    return output_dir
