"""Training: seeded, timed, history as plain lists, best weights kept on request."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

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


TRAIN_SCRIPT = """
import sys, time, keras, numpy as np
from helpers import models, training
rng = np.random.default_rng(0)
x = rng.random((64, 784), dtype=np.float32)
y = (np.arange(64) % 10).astype(np.uint8)

class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(sys.argv[2]))

result = training.train_model(
    lambda: models.build_ann(), (x, y, x[:32], y[:32]), epochs=6, batch_size=16,
    seed=3, keep_best_weights=True, callbacks=[Slow()], checkpoint_dir=sys.argv[1],
    fingerprint="ann-test",
)
print("resumed_from", result.resumed_from_epoch, "epochs", result.epochs_run)
"""


def _run_script(tmp_path, folder, pause):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    return subprocess.Popen(
        [sys.executable, str(script), str(folder), str(pause)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_killed_fit_resumes_from_its_last_completed_epoch(tmp_path):
    folder = tmp_path / "checkpoint"
    state_file = folder / training.STATE_FILE
    process = _run_script(tmp_path, folder, pause=1.5)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (
            state_file.is_file()
            and len(json.loads(state_file.read_text())["epoch_seconds"]) >= 2
        ):
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(json.loads(state_file.read_text())["epoch_seconds"])
    assert 2 <= done < 6
    before = json.loads(state_file.read_text())["history"]

    rerun = _run_script(tmp_path, folder, pause=0)
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0
    assert f"resumed_from {done} epochs 6" in out
    finished = json.loads(state_file.read_text())
    assert len(finished["epoch_seconds"]) == 6  # kept until the results are saved
    rerun = _run_script(tmp_path, folder, pause=0)  # e.g. killed while evaluating
    out, _ = rerun.communicate(timeout=180)
    assert "resumed_from 6 epochs 6" in out  # no epoch trained twice

    uninterrupted = _train(epochs=6, keep_best_weights=True)
    for (
        key,
        values,
    ) in before.items():  # the same seed: identical epochs before the kill
        assert values == pytest.approx(uninterrupted.history[key][:done], abs=1e-6)


def test_a_checkpoint_of_other_settings_is_discarded_not_resumed(tmp_path):
    folder = tmp_path / "checkpoint"
    state = training.TrainingState("other-run", {"loss": [1.0]}, [0.1], "w.weights.h5")
    folder.mkdir()
    (folder / "w.weights.h5").write_bytes(b"not weights")
    (folder / training.STATE_FILE).write_text(json.dumps(dataclasses.asdict(state)))
    result = _train(epochs=2, checkpoint_dir=folder, fingerprint="this-run")
    assert result.resumed_from_epoch == 0
    assert result.epochs_run == 2


def test_a_finished_checkpoint_returns_the_same_best_model_without_training(tmp_path):
    first = _train(epochs=3, keep_best_weights=True, checkpoint_dir=tmp_path / "c")
    again = _train(epochs=3, keep_best_weights=True, checkpoint_dir=tmp_path / "c")
    assert again.resumed_from_epoch == 3
    assert again.history == first.history
    for a, b in zip(first.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_patience_counts_epochs_from_before_a_resume():
    state = training.TrainingState("x", {"val_accuracy": [0.5, 0.9, 0.8, 0.7]}, [1] * 4)
    assert training._patience_exhausted(state, 2)
    assert not training._patience_exhausted(state, 3)
    assert not training._patience_exhausted(state, None)
