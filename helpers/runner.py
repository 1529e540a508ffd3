"""How a run runs: skipped while its notebook code and parameters are unchanged,
restored from its committed copy, or executed by papermill as a task on Dask
distributed (a local cluster, or the one at ``--scheduler``)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpers import artifacts, data, exports, parameters

if TYPE_CHECKING:
    from helpers.pipeline import Run

NOTEBOOK_DIR = artifacts.PROJECT_ROOT / "notebooks"
KEPT_ROOT = artifacts.KEPT_ROOT  # <group>/<run>.json: the committed runs


def fingerprint(run: Run, parameters: dict[str, Any], output_dir: Path) -> dict:
    """What a finished run must match to be skipped: its notebook's code cells, its
    parameters and the files it reads (a summary: every run's metrics; ``helpers/``:
    ``--force``)."""
    import nbformat

    cells = nbformat.read(NOTEBOOK_DIR / run.notebook, as_version=4).cells
    code = "\n\0".join(cell.source for cell in cells if cell.cell_type == "code")
    reads = [output_dir / name for name in run.reads]
    if run.summary:
        reads += [*output_dir.glob("*.json"), *(output_dir / "metrics").glob("*.json")]
        reads = [*sorted(reads), data.PUBLISHED_FILE]
    digest = hashlib.sha256()
    for path in reads:
        read = path.read_bytes() if path.is_file() else b"missing"
        digest.update(path.name.encode() + read)
    return {
        "notebook": hashlib.sha256(code.encode()).hexdigest()[:16],
        "inputs": digest.hexdigest()[:16],
        "parameters": {k: v for k, v in parameters.items() if k != "output_dir"},
    }


def kept_path(run: Run) -> Path:
    """Where a kept run's record and metrics are committed."""
    return KEPT_ROOT / run.kept / f"{run.name}.json"


def restore(run: Run, expected: dict, output_dir: Path, stale_too: bool) -> str:
    """Copy a kept run's committed metrics into ``output_dir``: ``restored`` if made
    with the same code and parameters, ``missing``, or the commit of a stale copy
    (written with ``stale`` set to it if ``stale_too``)."""
    copy = artifacts.read_json_if_exists(kept_path(run)) if run.kept else None
    if not copy:
        return "missing"
    metrics = output_dir / "metrics" / f"{run.name}.json"
    if copy["record"] == expected:
        artifacts.write_json(metrics, copy["metrics"])
        artifacts.write_json(output_dir / "runs" / f"{run.name}.json", expected)
        return "restored"
    if stale_too:
        artifacts.write_json(metrics, {**copy["metrics"], "stale": copy["commit"]})
    return copy["commit"]


def restore_committed(runs: Sequence[Run], output_dir: Path) -> None:
    """Restore the committed ``runs`` but those trained here with the current code,
    retraining none; name the stale ones in one line."""
    restored, stale, missing = 0, [], []
    for run in runs:
        expected = fingerprint(run, {**run.parameters, "fast": False}, output_dir)
        record = output_dir / "runs" / f"{run.name}.json"
        if artifacts.read_json_if_exists(record) == expected:
            continue  # trained here with the current code
        status = restore(run, expected, output_dir, stale_too=True)
        restored += status != "missing"
        if status == "missing":
            missing.append(run.name)
        elif status != "restored":
            stale.append(f"{run.name} ({status})")
    print(f"restored {restored} committed runs")
    if stale:
        print(
            f"stale, shown as such until their group retrains them: {', '.join(stale)}"
        )
    if missing:
        print(f"not trained yet (`make seeds`, `make replicate`): {', '.join(missing)}")


class RunFailed(Exception):
    """A notebook failed; the message names the cell, the error and the files."""


def execute(run: Run, parameters: dict[str, Any], output_dir: Path) -> Path:
    """Execute ``run``'s notebook with papermill, its kernel's output to
    ``logs/<run>.log``; a failing cell, or one over ``$CELL_TIMEOUT`` seconds (3600),
    raises RunFailed naming the cell and the error."""
    import nbformat
    import papermill

    executed = output_dir / "notebooks" / f"{run.name}.ipynb"
    log = output_dir / "logs" / f"{run.name}.log"
    for folder in (executed.parent, log.parent):
        folder.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    timeout = int(os.environ.get("CELL_TIMEOUT", 3600))
    notebook = nbformat.read(NOTEBOOK_DIR / run.notebook, as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
    if parameters.get("ablation_row"):  # stops before the test split
        del notebook.cells[tags.index(["test-split"]) :]
    problem = None
    try:
        with artifacts.stderr_to(log) as stdout:  # the kernel inherits descriptor 2
            papermill.execute_notebook(
                notebook,
                executed,
                parameters=parameters,
                kernel_name="python3",
                progress_bar=False,
                stdout_file=stdout,
                cwd=NOTEBOOK_DIR,
                execution_timeout=timeout,
                # TensorFlow's C++ lines go to the log, not into the notebook
                extra_arguments=["--IPKernelApp.capture_fd_output=False"],
            )
    except papermill.PapermillExecutionError as err:
        problem = f"cell {err.exec_count}: {err.ename}: {err.evalue}"
    except TimeoutError:  # nbclient's CellTimeoutError: papermill then marks every
        cells = nbformat.read(executed, as_version=4).cells  # cell completed; the
        started = [c.metadata.get("papermill", {}).get("start_time") for c in cells]
        i = max(k for k, time in enumerate(started) if time)  # last one started
        problem = f"cell {i} ran over CELL_TIMEOUT={timeout} s: {cells[i].source!r}"
    if executed.is_file():  # papermill's record: paths relative to the project
        nb = nbformat.read(executed, as_version=4)
        nb.metadata.papermill |= dict(input_path=f"notebooks/{run.notebook}")
        nb.metadata.papermill |= dict(output_path=f"notebooks/{run.name}.ipynb")
        with artifacts.atomic_path(executed) as tmp:
            nbformat.write(nb, tmp)
    if problem:
        problem = " ".join(problem.split())  # one line
        where = f"see {_shown(executed)}, {_shown(log)}"
        raise RunFailed(f"{run.notebook}, {problem}; {where}")
    return executed


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it."""
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def is_done(
    run: Run, tag: str, output_dir: Path, reports_dir: Path, fast: bool
) -> bool:
    """On the client: whether ``run`` finished with the same inputs and was exported,
    or was restored from its kept copy; says which."""
    record = output_dir / "runs" / f"{run.name}.json"
    expected = fingerprint(run, {**run.parameters, "fast": fast}, output_dir)
    exported = (reports_dir / "html" / f"{run.name}.html").is_file() and (
        (reports_dir / f"{run.name}.pdf").is_file() or not shutil.which("xelatex")
    )
    if (exported or run.kept) and artifacts.read_json_if_exists(record) == expected:
        print(f"{tag}: up to date, skipped")
        return True
    if not fast and restore(run, expected, output_dir, False) == "restored":
        print(f"{tag}: restored from {_shown(kept_path(run))}")
        return True
    return False


def run_one(
    run: Run, tag: str, output_dir: Path, reports_dir: Path, fast: bool, commit: str
) -> None:
    """On a worker: run one notebook, export or keep it, then write its record (what
    makes it count as finished)."""
    parameters = {**run.parameters, "fast": fast}
    record = output_dir / "runs" / f"{run.name}.json"
    record.unlink(missing_ok=True)
    say(f"{tag}: started ({run.notebook})")
    start = time.perf_counter()
    try:
        executed = execute(run, parameters, output_dir)
    except RunFailed as err:
        seconds = time.perf_counter() - start
        raise RunFailed(f"{tag}: failed after {seconds:.0f} s in {err}") from None
    finished = fingerprint(run, parameters, output_dir)  # with the files it wrote
    made = metrics = output_dir / "metrics" / f"{run.name}.json"
    if not run.kept:
        made = exports.export(
            executed, run.name, reports_dir, run.hide_input, 1 if fast else 3
        )
    artifacts.write_json(record, finished)
    if run.kept and not fast:  # committed: a fresh clone need not retrain it
        copy = {"record": finished, "commit": commit}
        artifacts.write_json(
            kept_path(run), copy | {"metrics": artifacts.read_json(metrics)}
        )
    say(f"{tag}: done in {time.perf_counter() - start:.0f} s -> {_shown(made)}")


TOPIC = "fashion-mnist-pipeline"  # the runs' console lines, from worker to client
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def run_all(
    runs: Sequence[Run],
    output_dir: Path,
    reports_dir: Path,
    fast: bool = False,
    force: bool = False,
    data_dir: str | None = None,
    committed: Sequence[Run] = (),
    scheduler: str | None = None,
    workers: int | None = None,
) -> None:
    """Run ``runs`` not done yet, each a task on Dask distributed: the model runs,
    then one by one those that read their files (08, the summaries)."""
    # Each task carries what its kernel needs: the folders (not as parameters: no
    # path shows in a notebook), the lock's permission, the client's thread settings.
    data_dir = data_dir or os.environ.get(data.ENV_VAR)
    env = {artifacts.OUTPUT_ENV: str(output_dir), data.ENV_VAR: data_dir}
    env |= {artifacts.RUNNER_ENV: str(os.getpid()), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env |= {name: os.environ.get(name) for name in (*THREAD_VARIABLES, "CELL_TIMEOUT")}
    tags = {run.name: f"[{k}/{len(runs)}] {run.name}" for k, run in enumerate(runs, 1)}
    git = ["git", "-C", artifacts.PROJECT_ROOT, "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True).stdout.strip()
    from dask.distributed import as_completed

    def start(run: Run) -> Any:  # None when the run is up to date or restored
        if not force and is_done(run, tags[run.name], output_dir, reports_dir, fast):
            return None
        job = (run, tags[run.name], output_dir, reports_dir, fast, commit or "unknown")
        key = f"{run.name}-{secrets.token_hex(4)}"
        first = len(runs) - runs.index(run)  # in the plan's order (the longest last)
        return client.submit(_task, job, env, key=key, priority=first)

    if any(not run.kept for run in runs) and not shutil.which("xelatex"):
        print(
            "PDFs skipped: xelatex is not installed (as in Colab); the HTML exports"
            f" in {_shown(reports_dir / 'html')} are what to hand in."
        )
    with dask_client(scheduler, workers or (2 if fast else 1)) as client:
        if committed:  # after the scheduler answered
            restore_committed(committed, output_dir)
        client.subscribe_topic(TOPIC, lambda event: print(event[1]))
        try:
            after = [run for run in runs if run.summary or run.reads]
            started = [f for run in runs if run not in after if (f := start(run))]
            for future in as_completed(started) if started else ():
                future.result()  # a failed run stops the pipeline here
            for run in after:
                if future := start(run):  # after the files it reads
                    future.result()
        except RunFailed as err:
            raise SystemExit(str(err)) from None


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A client of the cluster at ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``), or
    of a ``LocalCluster`` of ``workers`` single-threaded processes."""
    import dask
    from dask.distributed import Client, LocalCluster

    if address := scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS"):
        try:
            client = Client(address, timeout=10)
        except OSError as err:
            raise parameters.ParameterError(
                f"--scheduler {address}: no Dask scheduler answers ({err}); start one"
                " (dask scheduler), or leave out --scheduler for a local cluster"
            ) from None
        with client:
            yield client
        return
    with (  # no thread limits in our workers: a run keeps the machine's cores
        dask.config.set({"distributed.nanny.pre-spawn-environ": {}}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # one kernel per worker thread
            memory_limit=0,  # the kernels, not the workers, hold the data
            dashboard_address=":0",  # any free port: clusters side by side never clash
            silence_logs=logging.CRITICAL,  # a failed run: the client's one line
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _task(job: tuple, env: dict[str, str | None]) -> None:
    """One run, on a Dask worker: its kernel gets the environment in ``env``."""
    from dask.distributed import get_worker

    if get_worker().state.nthreads != 1:  # the runs change process-wide state
        raise RunFailed(f"{job[1]}: start the Dask workers with --nthreads 1")
    with artifacts.environment_set(env):
        run_one(*job)


def say(line: str) -> None:
    """Print ``line`` on the client's console (from a Dask task) or here."""
    from dask.distributed import get_worker

    try:
        get_worker().log_event(TOPIC, line)
    except ValueError:  # not in a task
        print(line)
