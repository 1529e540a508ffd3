"""Where outputs go, and writing them so an interrupted run never leaves half a file.

Layout under the output folder (default ``artifacts/`` at the project root)::

    figures/*.png   metrics/*.json   models/*.keras   predictions/*.npy
    notebooks/*.ipynb (papermill outputs)   data_summary.json
    checkpoints/<run>/ (resumable training state)   runs/<run>.json (finished runs)
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

CODE_VERSION_ENV = "HELPERS_CODE_VERSION"  # set by the pipeline for each run
ARTIFACT_KINDS = (
    "figures",
    "metrics",
    "models",
    "predictions",
    "notebooks",
    "checkpoints",
    "runs",
)


def find_project_root(start: Path | None = None) -> Path | None:
    """Return the nearest folder at or above ``start`` holding ``pyproject.toml``."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "helpers").is_dir():
            return folder
    return None


def resolve_output_dir(output_dir: str | os.PathLike | None = None) -> Path:
    """Return the artifacts folder: ``output_dir``, else ``<project>/artifacts``.

    Outside a checkout of the project (e.g. a bare Colab kernel) the default is
    ``./artifacts``.
    """
    if output_dir is not None:
        return Path(output_dir).expanduser().resolve()
    root = find_project_root() or Path.cwd()
    return root / "artifacts"


def artifact_path(
    output_dir: str | os.PathLike | None, kind: str, filename: str
) -> Path:
    """Return ``<output_dir>/<kind>/<filename>``, creating the folder.

    Raises:
        ValueError: ``kind`` is not one of :data:`ARTIFACT_KINDS`.
    """
    if kind not in ARTIFACT_KINDS:
        raise ValueError(f"kind must be one of {ARTIFACT_KINDS}, got {kind!r}")
    folder = resolve_output_dir(output_dir) / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder / filename


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    If the block raises (or the process dies), ``path`` keeps its old content and the
    temporary file is removed (or left as ``.<name>.*.tmp``, never as ``path``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically; numpy values become plain ones."""
    text = json.dumps(data, indent=2, default=_to_builtin, allow_nan=False)
    return write_bytes_atomic(path, (text + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text())


def save_model(model: Any, path: str | os.PathLike) -> Path:
    """Save a Keras model to ``path`` (``.keras``) atomically and return the path."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save ``array`` as ``.npy`` atomically and return the path."""
    with atomic_path(path) as tmp:
        np.save(tmp, array, allow_pickle=False)
    return Path(path)


def library_versions() -> dict[str, str]:
    """Return the versions of Python and the libraries that shape the results."""
    versions = {"python": platform.python_version()}
    for package in ("tensorflow", "keras", "numpy", "scikit-learn"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def save_run(
    run: str,
    metrics: dict[str, Any],
    model: Any,
    probabilities: np.ndarray,
    output_dir: str | os.PathLike | None = None,
) -> dict[str, Path]:
    """Write a run's model, test predictions and metrics, each atomically.

    The metrics JSON is written last; then the run's training checkpoint is removed.
    (The pipeline's ``runs/<run>.json`` record marks a finished run.)

    Args:
        run: Run name, e.g. ``"cnn-baseline"``.
        metrics: JSON-serialisable metrics dict.
        model: The trained Keras model.
        probabilities: Test-set predicted probabilities, float32 (n, 10).
        output_dir: Artifacts folder.

    Returns:
        The paths written, keyed ``model``, ``predictions`` and ``metrics``.
    """
    paths = {
        "model": save_model(model, artifact_path(output_dir, "models", f"{run}.keras")),
        "predictions": save_array(
            artifact_path(output_dir, "predictions", f"{run}.npy"),
            probabilities.astype(np.float32),
        ),
    }
    paths["metrics"] = write_json(
        artifact_path(output_dir, "metrics", f"{run}.json"), metrics
    )
    # The results are safe on disk: the training checkpoint is no longer needed.
    shutil.rmtree(checkpoint_dir(output_dir, run), ignore_errors=True)
    return paths


def load_run_metrics(output_dir: str | os.PathLike | None = None) -> dict[str, dict]:
    """Read every ``metrics/*.json`` of a run folder, keyed by run name (sorted)."""
    folder = resolve_output_dir(output_dir) / "metrics"
    return {path.stem: read_json(path) for path in sorted(folder.glob("*.json"))}


def ablation_file() -> Path:
    """The ablation record of the ``plus`` CNN (``benchmarks/results/ablation.json``).

    Outside a checkout of the project: ``./benchmarks/results/ablation.json``.
    """
    root = find_project_root() or Path.cwd()
    return root / "benchmarks" / "results" / "ablation.json"


def read_ablation_rows(
    path: str | os.PathLike, design: str | None = None
) -> list[dict[str, Any]]:
    """The rows recorded in an ablation file; none if it is missing or unreadable.

    Args:
        path: The JSON file ``benchmarks/ablation.py`` writes.
        design: Keep only the rows measured against this design
            (:func:`helpers.models.plus_design`); None keeps every row.
    """
    try:
        rows = read_json(path)["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not isinstance(rows, list):
        return []
    return [
        row
        for row in rows
        if isinstance(row, dict)
        and "epochs" in row
        and (design is None or row.get("design") == design)
    ]


def checkpoint_dir(output_dir: str | os.PathLike | None, run: str) -> Path:
    """Return the folder of ``run``'s resumable training checkpoint."""
    return resolve_output_dir(output_dir) / "checkpoints" / run


def run_fingerprint(run: str, parameters: dict[str, Any]) -> str:
    """Identify a run's settings and code, so a checkpoint resumes only itself."""
    settings = json.dumps(parameters, sort_keys=True, default=_to_builtin)
    return f"{run}|{os.environ.get(CODE_VERSION_ENV)}|{settings}"


def run_metrics(
    run: str,
    parameters: dict[str, Any],
    result: Any,
    scores: dict[str, Any],
    timing: dict[str, Any],
) -> dict[str, Any]:
    """Assemble the metrics record of one run (the ``metrics/<run>.json`` content).

    Args:
        run: Run name, e.g. ``"ann-baseline"``.
        parameters: The notebook parameters: model, variant, seed, epochs,
            batch_size, learning_rate, fast, train_size, val_size, ... The code
            version the pipeline set (``HELPERS_CODE_VERSION``) is recorded too.
        result: A ``training.TrainResult``.
        scores: ``evaluation.summarize_predictions`` output.
        timing: ``evaluation.measure_inference`` output.

    Returns:
        A JSON-serialisable dict.
    """
    return {
        "run": run,
        **parameters,
        "code_version": os.environ.get(CODE_VERSION_ENV),
        "params": int(result.model.count_params()),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "train_seconds": result.train_seconds,
        "seconds_per_epoch": result.train_seconds / max(result.epochs_run, 1),
        "epoch_seconds": result.epoch_seconds,
        "best_val_accuracy": result.best_val_accuracy,
        **scores,
        **timing,
        "history": result.history,
        "versions": library_versions(),
    }
