"""Run files are written atomically and readable; training resumes after a kill."""

from __future__ import annotations

import os
import stat

import keras
import numpy as np
import pytest

from helpers import artifacts


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = artifacts.write_json(tmp_path / "m.json", {"ok": 1})

    def interrupted_write():
        with artifacts.atomic_path(path) as tmp:
            tmp.write_text('{"half')
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_write()
    assert artifacts.read_json(path) == {"ok": 1}
    assert list(tmp_path.iterdir()) == [path]


def test_written_files_keep_the_usual_mode_so_others_can_read_them(tmp_path):
    old = os.umask(0o022)
    try:
        path = artifacts.write_json(tmp_path / "m.json", {"ok": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_infinite_values_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="Out of range float"):
        artifacts.write_json(tmp_path / "m.json", {"loss": float("inf")})
    assert list(tmp_path.iterdir()) == []


class Kill(keras.callbacks.Callback):
    """Interrupts training after a given epoch, as a kill would between epochs."""

    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise KeyboardInterrupt


def fit(training, epochs, *extra):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [
        keras.callbacks.BackupAndRestore(
            training.backup_dir, double_checkpoint=True, delete_checkpoint=False
        ),
        artifacts.epoch_timer(),
        keras.callbacks.CSVLogger(training.log_path, append=True),
        *extra,
    ]
    x, y = np.random.default_rng(0).normal(size=(64, 4)), np.arange(64) % 3
    model.fit(
        x, y, epochs=epochs, validation_data=(x, y), callbacks=callbacks, verbose=0
    )
    return model


def test_interrupted_training_resumes_after_its_last_epoch_and_logs_every_epoch(
    tmp_path, capsys
):
    settings = {"epochs": 4}
    first = artifacts.TrainingFolder(tmp_path, "run", settings)
    assert first.resumed_from_epoch is None
    with pytest.raises(KeyboardInterrupt):
        fit(first, 4, Kill(after_epoch=1))  # epochs 0 and 1 finish
    second = artifacts.TrainingFolder(tmp_path, "run", settings)
    assert second.resumed_from_epoch == 2
    assert "resuming after epoch 2" in capsys.readouterr().out
    fit(second, 4)
    summary = second.summary()
    assert summary["epochs_run"] == 4
    assert summary["resumed_from_epoch"] == 2
    assert len(summary["history"]["loss"]) == 4
    assert summary["train_seconds"] == pytest.approx(sum(summary["epoch_seconds"]), 0.1)


def test_changed_settings_start_training_over(tmp_path):
    training = artifacts.TrainingFolder(tmp_path, "run", {"epochs": 2})
    fit(training, 2)
    again = artifacts.TrainingFolder(tmp_path, "run", {"epochs": 3})
    assert again.resumed_from_epoch is None
    assert again.read_log().empty


def test_a_resumed_finished_fit_trains_no_more_epochs(tmp_path):
    training = artifacts.TrainingFolder(tmp_path, "run", {"epochs": 2})
    fit(training, 2)
    rerun = artifacts.TrainingFolder(tmp_path, "run", {"epochs": 2})
    fit(rerun, 2)
    assert rerun.summary()["epochs_run"] == 2
    assert len(rerun.log_path.read_text().splitlines()) == 3  # header + 2 epochs


def test_saved_run_is_read_back_with_its_predictions_and_checkpoints_dropped(
    tmp_path,
):
    training = artifacts.TrainingFolder(tmp_path, "ann-x", {"epochs": 2})
    model = fit(training, 2)
    probabilities = np.full((5, 10), 0.1)
    report = {"accuracy": 0.8, "macro avg": {"f1-score": 0.7}, "Bag": {"f1-score": 1}}
    metrics = artifacts.save_run(
        tmp_path, "ann-x", model, training, probabilities, report, {"fast": True}
    )
    assert not training.folder.exists()
    assert metrics["test_accuracy"] == 0.8
    assert metrics["per_class"] == {
        "macro avg": {"f1-score": 0.7},
        "Bag": {"f1-score": 1},
    }
    runs = artifacts.load_runs(tmp_path)
    assert list(runs) == ["ann-x"]
    assert runs["ann-x"]["probabilities"].dtype == np.float32
    assert list(runs["ann-x"]["history"].columns)[:2] == ["accuracy", "cpu_seconds"]
    reloaded = keras.saving.load_model(tmp_path / "models" / "ann-x.keras")
    assert reloaded.count_params() == model.count_params()
