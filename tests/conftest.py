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


ABLATION_ROW = "ablation-no-label-smoothing-e4"  # the fast runs' one ablation row


@pytest.fixture(scope="session")
def fast_runs(tmp_path_factory):
    """The fast runs the tests read, once per test session, by the command line and
    side by side (one alone leaves a core idle): every notebook into a fresh
    ``artifacts-fast/`` (where ``make test-compat`` finds its models), ``make
    replicate``'s runs and one ablation row. Returns their folders by group, each
    with the command's console output in ``console.txt``, and ``kept_ablation``:
    the committed ablation rows as they were before."""
    if not all(data.find_idx_file(REAL_DATA_DIR, s) for s in data.FASHION_MNIST_FILES):
        pytest.skip(f"Fashion-MNIST not installed in {REAL_DATA_DIR}")
    ablation = artifacts.KEPT_ROOT / "ablation"
    kept = {path: path.read_bytes() for path in ablation.glob("*")}
    groups = {"main": [], "replication": ["--replicate"]}
    groups["ablation"] = ["--ablation", "--only", ABLATION_ROW]
    folders = {"main": artifacts.default_output_dir(fast=True)}
    started = {}
    for group, options in groups.items():
        folder = folders.get(group) or tmp_path_factory.mktemp(f"fast-{group}")
        folders[group] = folder
        shutil.rmtree(folder, ignore_errors=True)  # nothing from an earlier run
        folder.mkdir()
        command = ["-m", "helpers.pipeline", "--fast", *options, "--output-dir"]
        with open(folder / "console.txt", "w") as console:
            started[group] = subprocess.Popen(
                [sys.executable, *command, folder],
                cwd=folder,
                stdout=console,
                stderr=subprocess.STDOUT,
            )
    for group, process in started.items():
        process.wait()
        assert process.returncode == 0, (folders[group] / "console.txt").read_text()
    return {**folders, "kept_ablation": kept}


@pytest.fixture(scope="session")
def fast_run(fast_runs):
    """Every notebook, run once per test session in fast mode (see fast_runs)."""
    return fast_runs["main"]


@pytest.fixture(scope="session")
def fast_replication(fast_runs):
    """``make replicate``'s runs in fast mode (one seed of each recipe, two of one)."""
    return fast_runs["replication"]
