"""Seeding, callbacks, and one training function that times the fit."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from helpers.artifacts import atomic_path, read_json, write_json
from helpers.models import Recipe
from helpers.pipeline import HEADLESS_ENV


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend, and drop the models built so far.

    TensorFlow's op determinism is switched on too, so the same seed on the same
    machine gives the same weights, batches and predictions.
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def is_headless() -> bool:
    """Return True when running under the pipeline (papermill) rather than a person."""
    return os.environ.get(HEADLESS_ENV) == "1"


class EpochLogger(keras.callbacks.Callback):
    """Print one line per epoch: epoch, duration and every logged metric.

    The duration is read from ``seconds``, the list :class:`StateRecorder` appends
    each epoch's time to (it runs first), so an epoch is timed once.
    """

    def __init__(self, epochs: int, seconds: list[float]):
        super().__init__()
        self.epochs = epochs
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs=None):
        metrics = " - ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())
        print(
            f"epoch {epoch + 1}/{self.epochs} - {self.seconds[-1]:.1f} s - {metrics}",
            flush=True,
        )


@dataclass
class TrainResult:
    """A trained model and how it got there.

    Attributes:
        model: The model with the weights kept (best validation epoch with early
            stopping or ``keep_best_weights``, else the last epoch).
        history: Per-epoch lists, e.g. ``{"loss": [...], "val_accuracy": [...]}``.
        train_seconds: Wall time of the fit (all sessions, when resumed).
        epoch_seconds: Wall time of each epoch.
        best_epoch: 1-based epoch with the highest validation accuracy.
        resumed_from_epoch: Epochs restored from a checkpoint (0: a fresh start).
    """

    model: keras.Model
    history: dict[str, list[float]]
    train_seconds: float
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0
    resumed_from_epoch: int = 0

    @property
    def epochs_run(self) -> int:
        """Number of epochs actually trained (fewer than asked after early stopping)."""
        return len(self.epoch_seconds)

    @property
    def best_val_accuracy(self) -> float:
        """Highest validation accuracy over the epochs."""
        return max(self.history["val_accuracy"])


@dataclass
class TrainingState:
    """Everything needed to continue a fit: written after every completed epoch.

    Attributes:
        fingerprint: Identifies the run's settings; a checkpoint with another
            fingerprint belongs to another run and is discarded.
        history: Per-epoch metric lists so far.
        epoch_seconds: Wall time of each completed epoch.
        weights_file: File (in the checkpoint folder) with the model and optimizer
            state after the last completed epoch.
    """

    fingerprint: str
    history: dict[str, list[float]] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    weights_file: str = ""

    @property
    def epochs_done(self) -> int:
        return len(self.epoch_seconds)

    @property
    def best_epoch(self) -> int:
        """1-based epoch with the highest validation accuracy (0 before any)."""
        scores = self.history.get("val_accuracy", [])
        return int(np.argmax(scores)) + 1 if scores else 0


STATE_FILE = "state.json"
BEST_WEIGHTS_FILE = "best.weights.h5"


def load_training_state(folder: Path, fingerprint: str) -> TrainingState:
    """Read the checkpoint in ``folder``; a fresh state when absent or foreign."""
    path = folder / STATE_FILE
    if path.is_file():
        try:
            state = TrainingState(**read_json(path))
        except (ValueError, TypeError) as error:
            print(f"Ignoring unreadable checkpoint {path}: {error}", flush=True)
        else:
            if (
                state.fingerprint == fingerprint
                and (folder / state.weights_file).is_file()
            ):
                return state
        shutil.rmtree(folder)
    return TrainingState(fingerprint)


def _save_weights_atomic(model: keras.Model, path: Path) -> None:
    # Keras insists on the ".weights.h5" suffix, so the temporary name keeps it.
    with atomic_path(path) as tmp:
        keras_tmp = tmp.with_name(tmp.name + ".weights.h5")
        try:
            model.save_weights(keras_tmp)
            os.replace(keras_tmp, tmp)
        finally:
            keras_tmp.unlink(missing_ok=True)


class BestEpochKeeper(keras.callbacks.Callback):
    """Track the best validation accuracy, keep its weights, stop when patience ends.

    Unlike ``keras.callbacks.EarlyStopping``, it knows the epochs of earlier sessions
    of a resumed fit, so patience and the best weights survive an interruption.
    """

    def __init__(self, state: TrainingState, patience: int | None, folder: Path | None):
        super().__init__()
        self.state = state
        self.patience = patience
        self.folder = folder
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch, logs=None):
        # Runs after StateRecorder, which has already saved the best weights to disk.
        if self.state.best_epoch == self.state.epochs_done:  # this epoch is the best
            self.best_weights = self.model.get_weights()
        if _patience_exhausted(self.state, self.patience):
            self.model.stop_training = True

    def restore_best(self) -> None:
        """Load the best epoch's weights into the model."""
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        elif self.folder is not None and (self.folder / BEST_WEIGHTS_FILE).is_file():
            self.model.load_weights(self.folder / BEST_WEIGHTS_FILE)


class StateRecorder(keras.callbacks.Callback):
    """Append each epoch's metrics and time to the state; checkpoint it to disk.

    The best epoch's weights (when this epoch is the best) and this epoch's weights
    (with the optimizer state) go to their files first, then the state naming them is
    written atomically: a kill at any moment leaves a consistent checkpoint of the
    last completed epoch.
    """

    def __init__(self, state: TrainingState, folder: Path | None):
        super().__init__()
        self.state = state
        self.folder = folder
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.state.epoch_seconds.append(time.perf_counter() - self._start)
        for key, value in (logs or {}).items():
            if key != "learning_rate":
                self.state.history.setdefault(key, []).append(float(value))
        if self.folder is None:
            return
        if self.state.best_epoch == self.state.epochs_done:  # before the state names it
            _save_weights_atomic(self.model, self.folder / BEST_WEIGHTS_FILE)
        old = self.state.weights_file
        self.state.weights_file = f"epoch-{epoch + 1}.weights.h5"
        _save_weights_atomic(self.model, self.folder / self.state.weights_file)
        write_json(self.folder / STATE_FILE, asdict(self.state))
        if old and old != self.state.weights_file:
            (self.folder / old).unlink(missing_ok=True)


def train_model(
    build: Callable[[], keras.Model],
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    seed: int,
    early_stopping_patience: int | None = None,
    keep_best_weights: bool = False,
    callbacks: list[keras.callbacks.Callback] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    fingerprint: str = "",
) -> TrainResult:
    """Seed everything, build a fresh model and fit it, monitoring the validation split.

    With ``checkpoint_dir``, the model, optimizer state and history are saved after
    every epoch; calling again with the same folder and ``fingerprint`` (e.g. after
    the process was killed) continues from the last completed epoch, or returns the
    finished model at once when training had completed. The folder is kept: the
    caller removes it (``artifacts.save_run`` does) once the results are saved.

    Args:
        build: Returns a fresh compiled model (called after seeding).
        data: ``(x_train, y_train, x_val, y_val)``, inputs already preprocessed.
        epochs: Maximum number of epochs.
        batch_size: Mini-batch size.
        seed: Seed for weights initialisation, shuffling and dropout.
        early_stopping_patience: Stop after this many epochs without a better
            validation accuracy and keep the best epoch's weights; None trains all
            epochs.
        keep_best_weights: Without early stopping, train all epochs but end with the
            weights of the epoch with the best validation accuracy (else the last).
        callbacks: Extra callbacks (e.g. ``keras.callbacks.ReduceLROnPlateau``).
        checkpoint_dir: Folder for the resumable checkpoint, or None.
        fingerprint: Identifies the settings of this fit; a checkpoint made with
            another fingerprint is discarded instead of resumed.

    Returns:
        A :class:`TrainResult`.
    """
    x_train, y_train, x_val, y_val = data
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    state = TrainingState(fingerprint)
    if folder is not None:
        state = load_training_state(folder, fingerprint)
        folder.mkdir(parents=True, exist_ok=True)
    resumed_from = state.epochs_done
    # A resumed fit draws fresh random numbers: seeding with the epoch keeps it
    # reproducible without replaying the batches of the epochs already done.
    seed_everything(seed + resumed_from)
    model = build()
    if resumed_from:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(folder / state.weights_file)
        print(f"Resuming from epoch {resumed_from} ({folder})", flush=True)
    recorder = StateRecorder(state, folder)
    keeper = BestEpochKeeper(state, early_stopping_patience, folder)
    keeper.set_model(model)  # also when fit is skipped (training already finished)
    all_callbacks = [recorder, keeper, *(callbacks or [])]
    headless = is_headless()
    if headless:
        all_callbacks.append(EpochLogger(epochs, state.epoch_seconds))
    start = time.perf_counter()
    if resumed_from < epochs and not _patience_exhausted(
        state, early_stopping_patience
    ):
        model.fit(
            x_train,
            y_train,
            validation_data=(x_val, y_val),
            epochs=epochs,
            initial_epoch=resumed_from,
            batch_size=batch_size,
            callbacks=all_callbacks,
            verbose=0 if headless else 1,
        )
    if early_stopping_patience is not None or keep_best_weights:
        keeper.restore_best()
    train_seconds = sum(state.epoch_seconds[:resumed_from]) + (
        time.perf_counter() - start
    )
    return TrainResult(
        model,
        state.history,
        train_seconds,
        state.epoch_seconds,
        state.best_epoch,
        resumed_from,
    )


def _patience_exhausted(state: TrainingState, patience: int | None) -> bool:
    return patience is not None and state.epochs_done - state.best_epoch >= patience


def recipe_callbacks(recipe: Recipe) -> list[keras.callbacks.Callback]:
    """Callbacks a training recipe asks for (e.g. ReduceLROnPlateau)."""
    if recipe.reduce_lr_on_plateau:
        return [
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=2, min_lr=1e-6
            )
        ]
    return []
