"""Run files are written atomically and readable; training resumes after a kill."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import keras
import numpy as np
import pytest

from helpers import artifacts, cost


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


def fit(folder, settings, epochs, *extra, units=3):
    """Build, compile and fit a tiny model with the notebooks' callbacks."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    settings = {"train_images": 64, **settings}
    training = artifacts.TrainingFolder(folder, "run", settings, model)
    callbacks = [
        cost.epoch_timer(),
        keras.callbacks.CSVLogger(training.log_path, append=True),
        keras.callbacks.BackupAndRestore(
            training.backup_dir, double_checkpoint=True, delete_checkpoint=False
        ),
        *extra,
    ]
    x, y = np.random.default_rng(0).normal(size=(64, 4)), np.arange(64) % 3
    model.fit(
        x, y, epochs=epochs, validation_data=(x, y), callbacks=callbacks, verbose=0
    )
    return training, model


def test_interrupted_training_resumes_after_its_last_epoch_and_logs_every_epoch(
    tmp_path, capsys
):
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path, {"epochs": 4}, 4, Kill(after_epoch=1))  # epochs 0, 1 finish
    training, _ = fit(tmp_path, {"epochs": 4}, 4)
    assert "resuming after epoch 2" in capsys.readouterr().out
    assert training.resumed_from_epoch == 2
    every_row = training.read_log(every_session=True)
    assert every_row["epoch"].tolist() == [0, 1, 2, 3]  # the rerun trained 2 epochs
    summary = training.summary()
    assert summary["epochs_run"] == 4
    assert summary["resumed_from_epoch"] == 2
    assert len(summary["history"]["loss"]) == 4
    assert summary["train_seconds"] == pytest.approx(sum(summary["epoch_seconds"]), 0.1)


def test_an_epoch_logged_but_not_backed_up_is_trained_again_and_counted_once(
    tmp_path,
):
    training, _ = fit(tmp_path, {"epochs": 3}, 2)
    metadata = training.backup_dir / "training_metadata.json"
    metadata.write_text('{"epoch": 1, "batch": 0}')  # as if killed before the save
    training, _ = fit(tmp_path, {"epochs": 3}, 3)
    assert training.read_log(every_session=True)["epoch"].tolist() == [0, 1, 1, 2]
    summary = training.summary()
    assert summary["epochs_run"] == 3
    assert summary["train_seconds"] > sum(summary["epoch_seconds"][:3]) - 1e-9


@pytest.mark.parametrize(
    ("settings", "units"),
    [({"epochs": 3}, 3), ({"epochs": 2}, 5)],
    ids=["settings", "model"],
)
def test_changed_settings_or_model_start_training_over(tmp_path, settings, units):
    fit(tmp_path, {"epochs": 2}, 2)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    settings = {"train_images": 64, **settings}
    again = artifacts.TrainingFolder(tmp_path, "run", settings, model)
    assert again.resumed_from_epoch is None
    assert again.read_log().empty


def test_the_same_model_built_again_resumes(tmp_path):
    fit(tmp_path, {"epochs": 3}, 2)
    training, _ = fit(tmp_path, {"epochs": 3}, 3)  # layer names differ: dense_1, ...
    assert training.resumed_from_epoch == 2


def test_a_resumed_finished_fit_trains_no_more_epochs(tmp_path):
    fit(tmp_path, {"epochs": 2}, 2)
    rerun, _ = fit(tmp_path, {"epochs": 2}, 2)
    assert rerun.summary()["epochs_run"] == 2
    assert len(rerun.log_path.read_text().splitlines()) == 3  # header + 2 epochs


def test_saved_run_is_read_back_with_its_predictions_and_checkpoints_dropped(
    tmp_path,
):
    training, model = fit(tmp_path, {"epochs": 2}, 2)
    probabilities = np.full((5, 10), 0.1)
    report = {"accuracy": 0.8, "macro avg": {"f1-score": 0.7}, "Bag": {"f1-score": 1}}
    metrics = artifacts.save_run(
        tmp_path, "ann-x", model, training, probabilities, report, {"fast": True}
    )
    assert not training.folder.exists()
    assert metrics["test_accuracy"] == 0.8
    assert metrics["forward_macs"] == 4 * 3  # one Dense layer, 4 inputs, 3 outputs
    assert metrics["train_flops"] == 2 * 3 * 12 * 64 * 2  # 64 images, 2 epochs
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


@pytest.mark.parametrize("floor", ["2.98.0", "99.0.0"])
def test_setup_line_names_versions_and_device_and_what_is_tested(
    tmp_path, monkeypatch, capsys, floor
):
    environment = artifacts.environment()
    tf_version = environment["versions"]["tensorflow"]
    major_minor = ".".join(tf_version.split(".")[:2])
    (tmp_path / "requirements.txt").write_text(
        f"tensorflow~={major_minor}.0  # as pinned\nkeras~=2.99\nnumpy~=1.0\n"
    )
    (tmp_path / "requirements-compat.txt").write_text(f"keras=={floor}\n")
    monkeypatch.setattr(artifacts, "PROJECT_ROOT", tmp_path)
    artifacts.show_environment()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"Python {environment['versions']['python']} | ")
    assert f"TensorFlow {tf_version}" in lines[0]
    assert lines[0].endswith(f" | {environment['device']}")
    keras_version = environment["versions"]["keras"]
    # One line, for Keras only: TensorFlow matches its pin.
    if floor == "2.98.0":  # above the tested floor: tested, numbers may differ
        expected = (
            f"Note: keras {keras_version} is installed; tested are 2.99.* "
            "(requirements.txt) and 2.98.0 (make test-compat). Results may differ "
            "from the recorded ones in the last digits."
        )
    else:
        expected = (
            f"Warning: keras {keras_version} is older than the tested floor 99.0.0 "
            '(requirements-compat.txt): pip install -U "keras>=99.0.0".'
        )
    assert lines[1:] == [expected]


def test_a_run_is_trained_by_one_kernel_at_a_time_until_its_files_are_saved(tmp_path):
    training, _ = fit(tmp_path, {}, 1)
    probe = (  # another process (a retried run's kernel) trying the run's lock
        "import sys, filelock\n"
        "try:\n    filelock.FileLock(sys.argv[1]).acquire(timeout=0)\n"
        "except filelock.Timeout:\n    sys.exit(3)\n"
    )

    def other_kernel_gets_the_lock() -> bool:
        command = [sys.executable, "-c", probe, f"{training.folder}.lock"]
        code = subprocess.run(command, check=False).returncode
        assert code in (0, 3)
        return code == 0

    assert not other_kernel_gets_the_lock()  # held while training may go on
    training.finish()
    assert not training.folder.exists()
    assert other_kernel_gets_the_lock()  # released once the run's files are saved
