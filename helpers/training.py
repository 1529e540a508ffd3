"""Seeding, callbacks, and one training function that times the fit."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from helpers.pipeline import HEADLESS_ENV


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend, and drop the models built so far."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)


def is_headless() -> bool:
    """Return True when running under the pipeline (papermill) rather than a person."""
    return os.environ.get(HEADLESS_ENV) == "1"


class EpochTimer(keras.callbacks.Callback):
    """Record the wall time of each epoch in ``self.seconds``."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class EpochLogger(EpochTimer):
    """Print one line per epoch: epoch, duration and every logged metric."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
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
        train_seconds: Wall time of the whole fit.
        epoch_seconds: Wall time of each epoch.
        best_epoch: 1-based epoch with the highest validation accuracy.
    """

    model: keras.Model
    history: dict[str, list[float]]
    train_seconds: float
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0

    @property
    def epochs_run(self) -> int:
        """Number of epochs actually trained (fewer than asked after early stopping)."""
        return len(self.epoch_seconds)

    @property
    def best_val_accuracy(self) -> float:
        """Highest validation accuracy over the epochs."""
        return max(self.history["val_accuracy"])


def train_model(
    build: Callable[[], keras.Model],
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    epochs: int,
    batch_size: int,
    seed: int,
    early_stopping_patience: int | None = None,
    keep_best_weights: bool = False,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainResult:
    """Seed everything, build a fresh model and fit it, monitoring the validation split.

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
        callbacks: Extra callbacks (e.g. a learning-rate schedule).

    Returns:
        A :class:`TrainResult`.
    """
    x_train, y_train, x_val, y_val = data
    seed_everything(seed)
    model = build()
    timer = EpochTimer()
    all_callbacks = [timer, *(callbacks or [])]
    if early_stopping_patience is not None or keep_best_weights:
        all_callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                patience=early_stopping_patience or epochs,
                restore_best_weights=True,
            )
        )
    headless = is_headless()
    if headless:
        all_callbacks.append(EpochLogger(epochs))
    start = time.perf_counter()
    fit = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=all_callbacks,
        verbose=0 if headless else 1,
    )
    train_seconds = time.perf_counter() - start
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    best_epoch = int(np.argmax(history["val_accuracy"])) + 1
    return TrainResult(model, history, train_seconds, timer.seconds, best_epoch)
