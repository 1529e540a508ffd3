"""Where a run's files go, written so an interrupted run never leaves half a file:
``metrics/<run>.json``, ``models/<run>.keras``, ``predictions/<run>.npy``,
``figures/``, ``checkpoints/<run>/`` (training state, removed once the run is saved)
under ``artifacts/`` (``artifacts-fast/`` in fast mode)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import operator
import os
import platform
import re
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from unittest import mock

import filelock
import numpy as np
import pandas as pd
from packaging.version import Version

from helpers import cost

if TYPE_CHECKING:
    import keras

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEPT_ROOT = PROJECT_ROOT / "benchmarks" / "results"  # <group>/<run>.json, committed


def load_kept(group: str) -> pd.DataFrame:
    """The committed runs of ``group`` (``seeds``, ``replication``, ``ablation``):
    each one's metrics and the commit it was made at, a row per run."""
    kept = [read_json(path) for path in sorted((KEPT_ROOT / group).glob("*.json"))]
    return pd.DataFrame([copy["metrics"] | {"commit": copy["commit"]} for copy in kept])


def default_output_dir(fast: bool = False) -> Path:
    """Return ``<project>/artifacts``, or ``<project>/artifacts-fast`` in fast mode."""
    return PROJECT_ROOT / ("artifacts-fast" if fast else "artifacts")


class OutputFolderError(RuntimeError):
    """An output folder cannot be written (full, read-only) or another run holds it."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, renamed over it if the block succeeds
    (else ``path`` keeps its content). A full or read-only folder raises
    OutputFolderError naming the folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.errno not in _UNWRITABLE:
            raise
        fix = "free space there" if err.errno == errno.ENOSPC else "fix its permissions"
        raise OutputFolderError(
            f"Cannot write {path.name} in {path.parent}: {err.strerror}. Fix: {fix}, "
            "or choose another output folder (output_dir, --output-dir)."
        ) from err
    finally:
        tmp.unlink(missing_ok=True)


_UNWRITABLE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


OUTPUT_ENV = "FASHION_MNIST_OUTPUT_DIR"  # the pipeline's output folder, for its kernels
LOCK_FILE = ".lock"  # in an output folder: held by the run writing there
HOLDER_FILE = ".lock-holder"  # JSON: that run's pid, command and start time
RUNNER_ENV = "FASHION_MNIST_RUNNER"  # the pid of that run; its kernels inherit it


@contextlib.contextmanager
def hold_output_dir(folder: str | os.PathLike, command: str) -> Iterator[None]:
    """Hold ``folder``'s lock (``filelock``: it goes with the process, even after
    ``kill -9``) while the block runs: the notebook kernels it starts may write
    there, nothing else may. Raises OutputFolderError naming the holder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(folder / LOCK_FILE)
    try:
        lock.acquire(timeout=1)  # a notebook's check holds it for an instant
    except filelock.Timeout:
        raise OutputFolderError(_in_use(folder)) from None
    holder = folder / HOLDER_FILE
    try:
        started = time.strftime("%H:%M:%S")
        write_json(holder, dict(pid=os.getpid(), command=command, started=started))
        with environment_set({RUNNER_ENV: str(os.getpid())}):
            yield
    finally:
        holder.unlink(missing_ok=True)  # no stale holder for the next message
        lock.release()


@contextlib.contextmanager
def environment_set(values: dict[str, str | None]) -> Iterator[None]:
    """Set environment variables for the block (None unsets one), then restore them."""
    with mock.patch.dict(
        os.environ, {k: v for k, v in values.items() if v is not None}
    ):
        for name in (name for name, value in values.items() if value is None):
            os.environ.pop(name, None)
        yield


def check_not_in_use(folder: str | os.PathLike) -> None:
    """Raise OutputFolderError if a run other than this process's own runner holds
    ``folder`` (see :func:`hold_output_dir`)."""
    folder = Path(folder)
    if not (folder / LOCK_FILE).is_file():
        return
    try:
        with filelock.FileLock(folder / LOCK_FILE).acquire(timeout=1):
            return  # held by nobody (another check holds it for an instant)
    except filelock.Timeout:
        if str(_holder(folder).get("pid")) != os.environ.get(RUNNER_ENV):
            raise OutputFolderError(_in_use(folder)) from None


def _holder(folder: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):  # not written yet
        return read_json(folder / HOLDER_FILE)
    return {}


def _in_use(folder: Path) -> str:
    holder = _holder(folder)
    return (
        f"{folder} is in use by another run: `{holder.get('command', '?')}` (pid "
        f"{holder.get('pid', '?')}, started {holder.get('started', '?')}). Wait for "
        "it to finish, or write elsewhere (output_dir, --output-dir)."
    )


_to_builtin = operator.methodcaller("tolist")  # numpy arrays and scalars to lists


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically; numpy values become plain ones."""
    text = json.dumps(data, indent=2, default=_to_builtin, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def read_json_if_exists(path: str | os.PathLike) -> Any:
    """Read a JSON file, or return None when there is none."""
    return read_json(path) if Path(path).is_file() else None


def environment() -> dict[str, Any]:
    """Return ``device`` (a GPU's name or ``CPU (N cores)``) and the ``versions``
    of Python and the libraries that shape the results."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    gpu = gpus and tf.config.experimental.get_device_details(gpus[0])
    device = gpu.get("device_name", "GPU") if gpus else f"CPU ({os.cpu_count()} cores)"
    packages = ("tensorflow", "keras", "numpy", "scikit-learn")
    versions = {"python": platform.python_version()} | {p: version(p) for p in packages}
    return {"device": device, "versions": versions}


def show_environment() -> None:
    """Print the versions and the device, and one line of what is tested where
    TensorFlow or Keras differs in major.minor from the pins (as Colab's may)."""
    env = environment()
    v = env["versions"]
    print(
        f"Python {v['python']} | TensorFlow {v['tensorflow']} | Keras {v['keras']}"
        f" | {env['device']}"
    )
    pins, floors = pinned("requirements.txt"), pinned("requirements-compat.txt")
    for name in ("tensorflow", "keras"):
        installed, pin, floor = Version(v[name]), pins.get(name), floors.get(name)
        if not pin or installed.release[:2] == pin.release[:2]:
            continue
        if floor and installed < floor:
            print(
                f"Warning: {name} {installed} is older than the tested floor {floor}"
                f' (requirements-compat.txt): pip install -U "{name}>={floor}".'
            )
        else:
            print(
                f"Note: {name} {installed} is installed; tested are {pin.major}."
                f"{pin.minor}.* (requirements.txt) and {floor} (make test-compat)."
                " Results may differ from the recorded ones in the last digits."
            )


def pinned(file: str) -> dict[str, Version]:
    """The versions a requirements file pins (``name~=X.Y`` or ``name==X.Y.Z``)."""
    path = PROJECT_ROOT / file
    text = path.read_text() if path.is_file() else ""
    found = re.findall(r"^([\w-]+)\s*(?:~=|==)\s*([\d.]+)", text, re.M)
    return {name: Version(number) for name, number in found}


@contextlib.contextmanager
def stderr_to(path: str | os.PathLike) -> Iterator[TextIO]:
    """Send this process's file descriptor 2 (child processes inherit it; TensorFlow's
    C++ lines use it) to the end of ``path``; yield the open file."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a") as file:
        os.dup2(file.fileno(), 2)
        try:
            yield file
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


TRAINING_LOCKS: dict[str, filelock.BaseFileLock] = {}  # by path, held by this kernel


class TrainingFolder:
    """``checkpoints/<run>/``, what lets training survive ``kill -9``: the
    ``BackupAndRestore`` folder (``backup_dir``), the ``CSVLogger`` file
    (``log_path``, every epoch of every session) and the run's ``settings`` (JSON;
    ``train_images``: one epoch's) and compiled model. If those changed, it is
    cleared and training restarts. One kernel at a time holds a run's lock."""

    def __init__(self, output_dir, run: str, settings: dict, model: keras.Model):
        self.folder = Path(output_dir) / "checkpoints" / run
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        # held until finish() or this process exits: a run retried elsewhere waits
        self.lock_path = path = f"{self.folder}.lock"
        lock = TRAINING_LOCKS.setdefault(path, filelock.FileLock(path))
        try:
            lock.acquire(timeout=60)
        except filelock.Timeout:
            raise OutputFolderError(
                f"{run}: another kernel is still training it; stop that kernel, or"
                " give this run another output_dir"
            ) from None
        self.backup_dir = self.folder / "backup"
        self.log_path = self.folder / "log.csv"
        self.train_images = int(settings["train_images"])
        layers = [{**layer.get_config(), "name": None} for layer in model.layers]
        optimizer = {**model.optimizer.get_config(), "name": None}
        design = json.dumps([layers, optimizer], default=repr)
        started = {**settings, "design": hashlib.sha256(design.encode()).hexdigest()}
        started = json.loads(json.dumps(started, default=_to_builtin))
        started_path = self.folder / "started.json"
        if started_path.is_file() and read_json(started_path) != started:
            print(f"{run}: settings or model changed since the last attempt; restart.")
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(started_path, started)
        backup = read_json_if_exists(self.backup_dir / "training_metadata.json")
        self.resumed_from_epoch = backup["epoch"] if backup else None
        if backup:
            print(f"{run}: resuming after epoch {backup['epoch']} of an earlier run.")

    def finish(self) -> None:
        """Once the run's files are saved: remove the folder, release the lock."""
        shutil.rmtree(self.folder, ignore_errors=True)
        if lock := TRAINING_LOCKS.pop(self.lock_path, None):
            lock.release(force=True)

    def read_log(self, every_session: bool = False) -> pd.DataFrame:
        """Return the training log, a row per epoch (the last row of an epoch repeated
        after a resume wins; ``every_session``: every row), index from 0."""
        if not self.log_path.is_file() or self.log_path.stat().st_size == 0:
            return pd.DataFrame()
        log = pd.read_csv(self.log_path)
        if every_session:
            return log
        return log.drop_duplicates("epoch", keep="last").set_index("epoch").sort_index()

    def cost(self, model: keras.Model, epochs_run: int) -> dict[str, float]:
        """Return ``forward_macs`` and ``train_flops`` (``train_images`` per epoch)."""
        macs = cost.forward_macs(model)
        seen = self.train_images * epochs_run
        return {"forward_macs": macs, "train_flops": cost.train_flops(macs, seen)}

    def summary(self) -> dict[str, Any]:
        """Return what the metrics file records of training, from the log."""
        log, every_row = self.read_log(), self.read_log(every_session=True)
        seconds = float(every_row["seconds"].sum())  # every session, repeats included
        return {
            "epochs_run": len(log),
            "train_seconds": seconds,
            "epoch_seconds": log["seconds"].round(2).tolist(),
            "cpu_busy": float(every_row["cpu_seconds"].sum())
            / seconds
            / os.cpu_count(),
            "resumed_from_epoch": self.resumed_from_epoch,
            "history": {key: log[key].tolist() for key in log.columns},
        }


def save_run(
    output_dir: str | os.PathLike,
    run: str,
    model: keras.Model,
    training: TrainingFolder,
    probabilities: np.ndarray,
    report: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """Write ``models/<run>.keras``, ``predictions/<run>.npy`` (test probabilities,
    float32 (n, 10)) and, last (it marks a complete run), ``metrics/<run>.json``:
    the cost, the scores of ``report`` (``classification_report(...,
    output_dict=True)``), ``metrics``, the training summary and the environment.
    Remove the training folder; return the metrics."""
    output_dir = Path(output_dir)
    (output_dir / "metrics" / f"{run}.json").unlink(missing_ok=True)  # not complete
    with atomic_path(output_dir / "models" / f"{run}.keras") as tmp:
        model.save(tmp)
    with atomic_path(output_dir / "predictions" / f"{run}.npy") as tmp:
        np.save(tmp, probabilities.astype(np.float32), allow_pickle=False)
    summary = training.summary()
    record = {
        "run": run,
        "params": model.count_params(),
        **training.cost(model, summary["epochs_run"]),
        "test_accuracy": report["accuracy"],
        "macro_f1": report["macro avg"]["f1-score"],
        "per_class": {k: v for k, v in report.items() if isinstance(v, dict)},
        "val_accuracy": summary["history"].get("val_accuracy", [None])[-1],
        **metrics,
        **summary,
        **environment(),
    }
    write_json(output_dir / "metrics" / f"{run}.json", record)
    training.finish()
    return record


SEED_RUN = re.compile(r"(?P<of>.+)-s(?P<seed>\d+)")  # <run>-s<seed>: make seeds


def load_runs(output_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Return run name -> metrics of every main run with predictions (not a seed or
    replication run), in name order, with ``probabilities`` and ``history`` (a
    DataFrame) added."""
    output_dir = Path(output_dir)
    runs = {}
    for path in sorted((output_dir / "metrics").glob("*.json")):
        predictions = output_dir / "predictions" / f"{path.stem}.npy"
        if not predictions.is_file() or SEED_RUN.fullmatch(path.stem):
            continue
        metrics = read_json(path)
        if "recipe" not in metrics:  # not a replication
            metrics["probabilities"] = np.load(predictions)
            metrics["history"] = pd.DataFrame(metrics["history"])
            runs[path.stem] = metrics
    return runs


def load_seed_runs(output_dir: str | os.PathLike) -> pd.DataFrame:
    """Return one row per seed run ``<run>-s<seed>`` (``make seeds``): its metrics,
    ``of`` (the main run) and ``stale`` (None, or the commit of a run made with
    other code); in name order."""
    rows = []
    for path in sorted((Path(output_dir) / "metrics").glob("*.json")):
        match = SEED_RUN.fullmatch(path.stem)
        metrics = read_json(path) if match else {}
        if match and "recipe" not in metrics:
            rows.append({"stale": None, **metrics, "of": match["of"]})
    columns = ["of", "seed", "test_accuracy", "val_accuracy", "train_flops", "stale"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


def load_replication(output_dir: str | os.PathLike) -> pd.DataFrame:
    """Return one row per replication run (``06_published_recipes``), in name order."""
    paths = sorted((Path(output_dir) / "metrics").glob("*.json"))
    return pd.DataFrame([m for m in map(read_json, paths) if "recipe" in m])
