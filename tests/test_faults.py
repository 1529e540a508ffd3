"""Faults lose nothing: kill -9 mid-training, a full or read-only disk, two runs.

The mounts need root (as on the project's machines and in CI); elsewhere those
tests are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import needs_real_data
from test_artifacts import fit

from helpers import artifacts, parameters

PROJECT_ROOT = artifacts.PROJECT_ROOT


def python(*args, **options) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid``, and by them, and so on."""
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@needs_real_data
def test_kill_9_mid_training_then_rerun_continues_and_the_kernel_stops(tmp_path):
    output = tmp_path / "out"
    command = ["-m", "helpers.pipeline", "--fast", "--only", "cnn-plus"]
    command += ["--output-dir", output]
    runner = python(*command, cwd=tmp_path)
    backup = output / "checkpoints" / "cnn-plus" / "backup" / "training_metadata.json"

    def first_epoch_saved():
        with contextlib.suppress(OSError, ValueError):
            return json.loads(backup.read_text())["epoch"] == 1
        return False

    wait_for(first_epoch_saved, 240, "the first epoch's backup")
    started = descendants(runner.pid)  # the pool worker and its notebook kernel
    assert len(started) >= 2
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    # The worker polls its parent, kills its kernel and exits once it is gone.
    wait_for(lambda: not any(map(alive, started)), 15, "the orphans to exit")
    assert not (output / "metrics" / "cnn-plus.json").exists()
    # The kernel may finish the second epoch before it sees its parent gone.
    saved = json.loads(backup.read_text())["epoch"]

    again = python(*command, cwd=tmp_path)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, out + err
    metrics = artifacts.read_json(output / "metrics" / "cnn-plus.json")
    assert metrics["resumed_from_epoch"] == saved
    assert metrics["epochs_run"] == 2
    assert len(metrics["history"]["loss"]) == len(metrics["epoch_seconds"]) == 2
    log = (output / "logs" / "cnn-plus.log").read_text()
    assert f"resuming after epoch {saved} of an earlier run" in log
    assert "Epoch 1/2" not in log  # no saved epoch was trained again


def test_a_second_run_in_one_folder_stops_at_once_naming_the_first(tmp_path):
    hold = (
        "import sys, time; from helpers import artifacts\n"
        "with artifacts.hold_output_dir(sys.argv[1], 'make run'):\n"
        "    print('holding', flush=True); time.sleep(120)\n"
    )
    first = python("-c", hold, tmp_path, cwd=tmp_path)
    assert first.stdout.readline() == "holding\n"
    try:
        second = python(
            "-m", "helpers.pipeline", "--fast", "--output-dir", tmp_path, cwd=tmp_path
        )
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2
        assert out == ""  # no notebook started
        (line,) = err.splitlines()
        assert (
            f"{tmp_path} is in use by another run: `make run` (pid {first.pid}" in line
        )
        with pytest.raises(artifacts.OutputFolderError, match=f"pid {first.pid}"):
            parameters.check_output_dir(tmp_path, fast=True)  # a notebook's check
        with pytest.raises(artifacts.OutputFolderError, match=f"pid {first.pid}"):
            artifacts.hold_output_dir(tmp_path, "make run").__enter__()
    finally:
        first.kill()
        first.wait()
    assert parameters.check_output_dir(tmp_path, fast=True) == tmp_path  # released


def test_the_runs_own_kernels_may_write_where_it_holds_the_lock(tmp_path, monkeypatch):
    with artifacts.hold_output_dir(tmp_path, "make run"):
        assert os.environ[artifacts.RUNNER_ENV] == str(os.getpid())
        assert parameters.check_output_dir(tmp_path, fast=True) == tmp_path
        # A kernel left by another (killed) runner is refused.
        monkeypatch.setenv(artifacts.RUNNER_ENV, "1")
        with pytest.raises(artifacts.OutputFolderError, match=f"pid {os.getpid()}"):
            parameters.check_output_dir(tmp_path, fast=True)
    assert not (tmp_path / artifacts.HOLDER_FILE).exists()  # no stale holder


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str, read_only: bool = False):
    folder.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path):
    folder = tmp_path / "ro"
    with (
        mounted_tmpfs(folder, "1m", read_only=True),
        pytest.raises(parameters.ParameterError) as error,
    ):
        parameters.check_output_dir(folder, fast=True)
    message = str(error.value)
    assert message.startswith(f"Parameter output_dir={folder!r} ")
    assert f"cannot write to {folder} (Read-only file system)" in message


def test_a_nearly_full_output_folder_is_refused_before_any_work(tmp_path):
    folder = tmp_path / "small"
    with (
        mounted_tmpfs(folder, "1m"),
        pytest.raises(parameters.ParameterError, match=f"only 1 MB free in {folder};"),
    ):
        parameters.check_output_dir(folder, fast=True)


def test_a_disk_full_while_saving_names_the_folder_and_leaves_nothing_partial(
    tmp_path,
):
    training, model = fit(tmp_path / "work", {"epochs": 1}, 1)
    with mounted_tmpfs(tmp_path / "full", "64k") as folder:
        (folder / "filler").write_bytes(b"\0" * (64 * 1024 - 8192))  # 8 KB left
        artifacts.write_json(folder / "metrics" / "run.json", {"old": "run"})
        probabilities = np.full((5, 10), 0.1)
        report = {"accuracy": 0.5, "macro avg": {"f1-score": 0.5}}
        with pytest.raises(artifacts.OutputFolderError) as error:
            artifacts.save_run(
                folder, "run", model, training, probabilities, report, {}
            )
        message = str(error.value)
        assert f"in {folder / 'models'}: No space left on device" in message
        left = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    assert left == [Path("filler")]  # no model, no metrics: not taken for complete
    assert training.folder.is_dir()  # the checkpoints stay, to save again later
