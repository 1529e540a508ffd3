"""The runner on Dask distributed: a real scheduler and workers, one of them killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
from conftest import needs_real_data
from test_faults import wait_for

from helpers import artifacts, runner

SWEEP = ["ann-baseline", "cnn-plus"]  # two notebooks; cnn-plus is lost


@contextlib.contextmanager
def processes(*commands, env) -> list[subprocess.Popen]:
    """Start ``commands``; stop them (by pid) afterwards, whatever happened."""
    started = []
    try:
        for command in commands:
            started.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        yield started
    finally:
        for process in started:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(process.pid).children(recursive=True):
                    child.kill()
            process.kill()
            process.wait()


@needs_real_data
def test_a_run_on_a_killed_worker_resumes_on_another_after_its_kernel_exits(
    fast_run, tmp_path
):
    from dask.distributed import Client

    dask = Path(sys.executable).with_name("dask")
    file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(artifacts.PROJECT_ROOT)}
    common = ["--scheduler-file", file, "--no-dashboard", "--host", "127.0.0.1"]
    scheduler = [dask, "scheduler", *common]
    worker = [dask, "worker", *common, "--no-nanny", "--nthreads", "1"]
    with processes(scheduler, worker, worker, env=env) as (_, *workers):
        wait_for(file.is_file, 60, "the scheduler file")
        with Client(scheduler_file=str(file), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            output = tmp_path / "out"
            command = ["-m", "helpers.pipeline", "--fast", "--only", *SWEEP]
            command += ["--output-dir", output, "--scheduler", client.scheduler.address]
            runner = subprocess.Popen(
                [sys.executable, *map(str, command)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            backup = output / "checkpoints" / "cnn-plus" / "backup"
            wait_for((backup / "training_metadata.json").is_file, 600, "a backup")

            def kernel_of_cnn_plus() -> psutil.Process | None:  # holds its lock
                for worker in workers:
                    for kernel in psutil.Process(worker.pid).children():
                        with contextlib.suppress(psutil.Error):
                            if any(
                                f.path.endswith("cnn-plus.lock")
                                for f in kernel.open_files()
                            ):
                                return kernel
                return None

            kernel = wait_for(kernel_of_cnn_plus, 30, "cnn-plus's kernel")
            pid = kernel.ppid()  # its worker
            os.kill(pid, signal.SIGKILL)
            log = output / "logs" / "cnn-plus.log"

            def resumed() -> bool:
                return log.is_file() and "resuming after epoch" in log.read_text()

            while kernel.is_running() and kernel.status() != psutil.STATUS_ZOMBIE:
                assert not resumed(), "the retry resumed while the lost kernel ran"
                time.sleep(0.05)
            out, _ = runner.communicate(timeout=900)
    assert runner.returncode == 0, out
    assert pid not in {w.pid for w in workers if w.poll() is None}
    metrics = {r: artifacts.read_json(output / "metrics" / f"{r}.json") for r in SWEEP}
    assert metrics["cnn-plus"]["resumed_from_epoch"] >= 1
    assert metrics["cnn-plus"]["epochs_run"] == 2
    for run in SWEEP[:-1]:  # not interrupted: as in the shared fast run
        ours = np.load(output / "predictions" / f"{run}.npy")
        shared = np.load(fast_run / "predictions" / f"{run}.npy")
        np.testing.assert_array_equal(ours, shared, err_msg=run)


def test_the_local_default_is_single_threaded_workers_without_dasks_thread_limits(
    monkeypatch,
):
    for name in runner.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with runner.dask_client(None, 2) as client:
        workers = client.scheduler_info()["workers"].values()
        assert [w["nthreads"] for w in workers] == [1, 1]
        seen = client.run(lambda: [os.environ.get(n) for n in runner.THREAD_VARIABLES])
    assert all(values == [None] * 3 for values in seen.values())
