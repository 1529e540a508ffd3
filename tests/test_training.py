"""Training: seeded, timed, history as plain lists, best weights kept on request."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import models, training
from helpers.pipeline import HEADLESS_ENV

RNG = np.random.default_rng(0)
X = RNG.random((64, 784), dtype=np.float32)
Y = (np.arange(64) % 10).astype(np.uint8)
DATA = (X, Y, X[:32], Y[:32])


def _train(epochs=2, **kwargs):
    return training.train_model(
        lambda: models.build_ann(), DATA, epochs=epochs, batch_size=16, seed=3, **kwargs
    )


def test_history_is_plain_json_and_timing_is_recorded():
    result = _train()
    json.dumps(result.history)
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 2 for v in result.history.values())
    assert result.epochs_run == 2
    assert result.train_seconds >= sum(result.epoch_seconds) > 0
    assert 1 <= result.best_epoch <= 2
    assert result.best_val_accuracy == max(result.history["val_accuracy"])


def test_same_seed_gives_the_same_history():
    assert _train().history == _train().history


def test_early_stopping_keeps_the_best_validation_weights():
    result = _train(epochs=12, early_stopping_patience=2)
    best = result.best_val_accuracy
    _, accuracy = result.model.evaluate(DATA[2], DATA[3], verbose=0)
    assert accuracy == pytest.approx(best, abs=1e-6)


def test_headless_runs_log_one_line_per_epoch(monkeypatch, capsys):
    monkeypatch.setenv(HEADLESS_ENV, "1")
    _train(epochs=2)
    lines = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("epoch")
    ]
    assert len(lines) == 2
    assert lines[1].startswith("epoch 2/2 - ")
    assert "val_accuracy" in lines[1]


def test_keep_best_weights_trains_every_epoch_and_ends_on_the_best_one():
    result = _train(epochs=6, keep_best_weights=True)
    assert result.epochs_run == 6
    _, accuracy = result.model.evaluate(DATA[2], DATA[3], verbose=0)
    assert accuracy == pytest.approx(result.best_val_accuracy, abs=1e-6)
