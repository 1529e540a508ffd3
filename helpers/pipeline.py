"""Run the notebooks headless with papermill, each run a task on Dask distributed,
and export each to PDF and HTML with nbconvert.

A run whose notebook code and parameters are unchanged since it finished is skipped.
The seed, replication and ablation runs are committed in ``benchmarks/results/``:
the main run restores them (a stale one marked ``stale``), only their own group
(``--seeds``, ``--replicate``, ``--ablation``) retrains them. ``--fast`` (CI) writes
to ``artifacts-fast/`` only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import artifacts, data, parameters

NOTEBOOK_DIR = artifacts.PROJECT_ROOT / "notebooks"
KEPT_ROOT = artifacts.KEPT_ROOT
README = artifacts.PROJECT_ROOT / "README.md"
ABLATION_FILE = artifacts.PROJECT_ROOT / "benchmarks" / "ablation.json"  # the rows


@dataclass(frozen=True)
class Run:
    """One execution of a notebook: its name names every file it writes."""

    name: str
    notebook: str
    parameters: dict[str, Any] = field(default_factory=dict)
    summary: bool = False  # reads the other runs' metrics: runs after them
    hide_input: bool = False  # PDF without code (the report)
    kept: str = ""  # its group, committed in KEPT_ROOT / kept; else exported to PDF
    seeds: range = range(0)  # the seeds `make seeds` trains a model run at


RUNS = (
    Run("01_eda", "01_eda.ipynb"),
    Run("ann-baseline", "02_ann.ipynb", {"variant": "baseline"}, seeds=range(42, 47)),
    Run("ann-dropout", "02_ann.ipynb", {"variant": "dropout"}, seeds=range(42, 47)),
    Run("cnn-baseline", "03_cnn.ipynb", {"variant": "baseline"}, seeds=range(42, 47)),
    Run("cnn-dropout", "03_cnn.ipynb", {"variant": "dropout"}, seeds=range(42, 47)),
    Run("cnn-plus", "04_cnn_plus.ipynb", seeds=range(42, 45)),  # 10 min a seed
    Run("05_comparison", "05_comparison.ipynb", summary=True),
    Run("07_replication", "07_replication.ipynb", summary=True),
    Run("report", "report.ipynb", summary=True, hide_input=True),
)


def seed_runs(fast: bool = False) -> tuple[Run, ...]:
    """``make seeds``: each main model run at its seeds, named ``<run>-s<seed>`` (the
    ``name`` parameter of 02-04). Fast mode (CI): ann-baseline at two seeds."""
    plan = [(RUNS[1], 42), (RUNS[1], 43)] if fast else []
    plan += [(run, seed) for run in RUNS for seed in run.seeds if not fast]
    runs = []
    for run, seed in plan:
        name = f"{run.name}-s{seed}"
        given = {**run.parameters, "seed": seed, "name": name}
        runs.append(Run(name, run.notebook, given, kept="seeds"))
    return tuple(runs)


def replication_runs(fast: bool = False) -> tuple[Run, ...]:
    """``make replicate``: each published recipe on its own split at 5 seeds (the
    Enhanced CNN paper's two readings, the longest, last and at 3), the Keras study's
    first and also on our split; then ``07_replication``. Fast mode (CI): one seed
    of each on its own split, and the Keras study's ANN at a second seed and on ours.
    """
    own = data.published()["own_split"]
    plan = [(r, s) for r in ("keras-ann", "keras-cnn") for s in ("tail", "ours")]
    others = [r for r in own.index if r not in ("keras-ann", "keras-cnn")]
    plan += [(r, own[r]) for r in sorted(others, key=lambda r: r[:8] == "enhanced")]
    runs = []
    for recipe, split in plan:
        seeds = range(42, 45 if recipe.startswith("enhanced") else 47)
        if fast:
            seeds = {"tail": [42, 43], "ours": [42]} if recipe == "keras-ann" else {}
            seeds = seeds.get(split, [42] if split == own[recipe] else [])
        given = {"recipe": recipe, "split": split}
        notebook = "06_published_recipes.ipynb"
        runs += [
            Run(
                f"{recipe}-{split}-s{seed}",
                notebook,
                {**given, "seed": seed},
                kept="replication",
            )
            for seed in seeds
        ]
    return (*runs, Run("07_replication", "07_replication.ipynb", summary=True))


def ablation_runs(epochs: int = 10) -> tuple[Run, ...]:
    """``make ablation``: 04 once per row of ``benchmarks/ablation.json`` (a change
    from the recipe: the parameters it sets), at ``epochs`` unless the row sets them,
    named ``ablation-<change>-e<epochs>``. Each stops before the test split."""
    runs = []
    for change, changed in json.loads(ABLATION_FILE.read_text()).items():
        given = {"epochs": epochs, **changed, "ablation_row": change}
        slug = re.sub(r"[^a-z0-9]+", "-", change.lower()).strip("-")
        name = f"ablation-{slug}-e{given['epochs']}"
        runs.append(
            Run(name, "04_cnn_plus.ipynb", {**given, "name": name}, kept="ablation")
        )
    return tuple(runs)


def fingerprint(run: Run, parameters: dict[str, Any], output_dir: Path) -> dict:
    """What a finished run must match to be skipped: its notebook's code cells (not
    its prose, tags or outputs), its parameters but the output folder and, for a
    summary, the files it reads (after a change to ``helpers/``, use ``--force``)."""
    import nbformat

    cells = nbformat.read(NOTEBOOK_DIR / run.notebook, as_version=4).cells
    code = "\n\0".join(cell.source for cell in cells if cell.cell_type == "code")
    reads = [*output_dir.glob("*.json"), *(output_dir / "metrics").glob("*.json")]
    digest = hashlib.sha256()
    for path in [*sorted(reads), data.PUBLISHED_FILE] if run.summary else []:
        digest.update(path.name.encode() + path.read_bytes())
    return {
        "notebook": hashlib.sha256(code.encode()).hexdigest()[:16],
        "inputs": digest.hexdigest()[:16],
        "parameters": {k: v for k, v in parameters.items() if k != "output_dir"},
    }


def kept_path(run: Run) -> Path:
    """Where a seed, replication or ablation run's record and metrics are committed."""
    return KEPT_ROOT / run.kept / f"{run.name}.json"


def restore(run: Run, expected: dict, output_dir: Path, stale_too: bool) -> str:
    """Copy a kept run's committed metrics into ``output_dir``; return ``restored``
    (it then counts as finished) if made with the same notebook code and parameters,
    ``missing`` if none is committed, else the commit it was made at (a stale copy,
    written with ``stale`` set to that commit only if ``stale_too``)."""
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
    """Copy the committed metrics of ``runs`` into ``output_dir``, retraining none
    and keeping a run trained there with the current code; name the stale ones (made
    with other code or parameters, marked with their commit) in one line."""
    restored, stale, missing = 0, [], []
    for run in runs:
        expected = fingerprint(run, {**run.parameters, "fast": False}, output_dir)
        if (
            artifacts.read_json_if_exists(output_dir / "runs" / f"{run.name}.json")
            == expected
        ):
            continue  # trained here with the current code
        status = restore(run, expected, output_dir, stale_too=True)
        restored += status != "missing"
        if status == "missing":
            missing.append(run.name)
        elif status != "restored":
            stale.append(f"{run.name} ({status})")
    print(f"restored {restored} committed runs", flush=True)
    if stale:
        print(
            f"stale, shown as such until their group retrains them: {', '.join(stale)}",
            flush=True,
        )
    if missing:
        print(
            f"not trained yet (`make seeds`, `make replicate`): {', '.join(missing)}",
            flush=True,
        )


# The box-drawing characters of ``model.summary()``, which the PDF's font lacks.
BOX_TO_ASCII = str.maketrans("┏┳┓┡╇┩└┴┘├┼┤┃│━─", "++++++++++++||=-")
HIDDEN = dict(  # cell tags the exports honour (nbconvert's TagRemovePreprocessor)
    remove_input_tags={"remove_input"},  # prose rendered from numbers: the text only
    remove_cell_tags={"remove_cell"},  # a long table: summarised in the next cell
)


def export(
    notebook: Path, name: str, reports_dir: Path, hide_input: bool, passes: int = 3
) -> Path:
    """Export an executed notebook to ``reports/html/<name>.html`` (images embedded)
    and, where XeLaTeX is installed, ``reports/<name>.pdf`` (``passes`` of XeLaTeX:
    three settle the outline), each atomically; return the last one written."""
    import nbformat
    from nbconvert import HTMLExporter, PDFExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(notebook, as_version=4)
    for output in (output for cell in nb.cells for output in cell.get("outputs", [])):
        for texts, key in ((output, "text"), (output.get("data", {}), "text/plain")):
            if key in texts:
                texts[key] = texts[key].translate(BOX_TO_ASCII)
    title, _, rest = nb.cells[0].source.partition("\n")
    nb.metadata["title"] = title.lstrip("# ")
    hide = {f"exclude_{part}": hide_input for part in ("input", "input_prompt")}
    hide["exclude_output_prompt"] = hide_input
    path = reports_dir / "html" / f"{name}.html"
    exports = [(HTMLExporter(embed_images=True, **hide), path)]
    if shutil.which("xelatex"):
        pdf = PDFExporter(latex_count=passes, **hide)
        exports.append((pdf, reports_dir / f"{name}.pdf"))
    for exporter, path in exports:
        if isinstance(exporter, PDFExporter):  # LaTeX prints the title once, above,
            nb.cells[0].source = rest  # and numbers the "##" sections 1, 2, ...
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    cell.source = re.sub(r"^#(#+) ", r"\1 ", cell.source, flags=re.M)
        exporter.register_preprocessor(TagRemovePreprocessor(**HIDDEN), enabled=True)
        body, _ = exporter.from_notebook_node(nb)
        with artifacts.atomic_path(path) as tmp:
            tmp.write_bytes(body if isinstance(body, bytes) else body.encode())
    return path


class RunFailed(Exception):
    """A notebook failed; the message names the cell, the error and the files."""


def execute(run: Run, parameters: dict[str, Any], output_dir: Path) -> Path:
    """Execute ``run``'s notebook with papermill; return the executed notebook.

    The kernel's output (Keras' epoch lines, TensorFlow's C++ lines) goes to
    ``logs/<run>.log``. A failing cell, or one running over ``$CELL_TIMEOUT``
    seconds (default 3600), raises RunFailed naming the cell and the error. An
    ablation row stops before the test split (the cell tagged ``test-split``).
    """
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
    """On the client: whether ``run`` finished with the same inputs (its record
    matches and its exports exist) or was restored from its kept copy; says which."""
    record = output_dir / "runs" / f"{run.name}.json"
    expected = fingerprint(run, {**run.parameters, "fast": fast}, output_dir)
    exported = (reports_dir / "html" / f"{run.name}.html").is_file() and (
        (reports_dir / f"{run.name}.pdf").is_file() or not shutil.which("xelatex")
    )
    if (exported or run.kept) and artifacts.read_json_if_exists(record) == expected:
        print(f"{tag}: up to date, skipped", flush=True)
        return True
    if not fast and restore(run, expected, output_dir, False) == "restored":
        print(f"{tag}: restored from {_shown(kept_path(run))}", flush=True)
        return True
    return False


def run_one(
    run: Run, tag: str, output_dir: Path, reports_dir: Path, fast: bool, commit: str
) -> None:
    """On a worker: run one notebook, export it (PDF and HTML), and write its record
    (what makes it count as finished) last; a kept run's copy records ``commit``."""
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
        made = export(executed, run.name, reports_dir, run.hide_input, 1 if fast else 3)
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
    scheduler: str | None = None,
    workers: int | None = None,
) -> None:
    """Run ``runs``, skipping those finished with the same inputs, each as a task on
    Dask distributed (:func:`dask_client`): the model runs first, then one after
    another the summaries, which read their metrics."""
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
        return client.submit(_task, job, env, key=f"{run.name}-{secrets.token_hex(4)}")

    if any(not run.kept for run in runs) and not shutil.which("xelatex"):
        print(
            "PDFs skipped: xelatex is not installed (as in Colab); the HTML exports"
            f" in {_shown(reports_dir / 'html')} are what to hand in.",
            flush=True,
        )
    with dask_client(scheduler, workers or (2 if fast else 1)) as client:
        client.subscribe_topic(TOPIC, lambda event: print(event[1], flush=True))
        try:
            started = [f for run in runs if not run.summary if (f := start(run))]
            for future in as_completed(started) if started else ():
                future.result()  # a failed run stops the pipeline here
            for run in [run for run in runs if run.summary]:
                if future := start(run):  # after the metrics it reads
                    future.result()
        except RunFailed as err:
            raise SystemExit(str(err)) from None


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A Dask client: of the cluster at ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``),
    whose workers must see this project folder, or of a ``LocalCluster`` of
    ``workers`` single-threaded worker processes on this machine."""
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
            dashboard_address=None,
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
        print(line, flush=True)


def update_readme(output_dir: Path, readme: Path = README) -> None:
    """Put the tables 05 and 07 wrote (``tables/results.md``, ``replication.md``,
    from full runs only) between their markers in the README; a table not written
    is left as it is (`make replicate` alone keeps the results table)."""
    text = readme.read_text()
    for name in ("results", "replication"):
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        table = output_dir / "tables" / f"{name}.md"
        if not table.is_file():
            print(f"README: {name} table left as it is (no {_shown(table)})")
            continue
        before, rest = text.split(start, 1)
        text = f"{before}{start}\n{table.read_text().strip()}\n\nFrom"
        text += f" `artifacts/metrics/*.json`; regenerate with `make readme`.\n{end}"
        text += rest.split(end, 1)[1]
    with artifacts.atomic_path(readme) as tmp:
        tmp.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--fast", action="store_true", help="CI mode: tiny data, artifacts-fast/")
    add("--force", action="store_true", help="rerun finished runs")
    add("--only", nargs="+", metavar="RUN", help="these runs only (see --list)")
    add("--list", action="store_true", help="list the runs and exit")
    add("--seeds", action="store_true", help="the main model runs at several seeds")
    add("--replicate", action="store_true", help="the published recipes")
    add("--ablation", action="store_true", help="04 with one change (validation)")
    add("--epochs", type=int, default=10, help="the ablation's epochs (default 10)")
    add("--update-readme", action="store_true", help="the README tables, from runs")
    add("--output-dir", type=Path, help="default: artifacts/")
    add("--reports-dir", type=Path, help="default: reports/")
    add("--data-dir", help="folder with the Fashion-MNIST files")
    add("--scheduler", metavar="ADDRESS", help="a Dask scheduler (README: Scaling out)")
    add("--workers", type=int, metavar="N", help="local runs at once (1; --fast: 2)")
    args = parser.parse_args(argv)
    for option, value in (("--workers", args.workers), ("--epochs", args.epochs)):
        if value is not None and value < 1:
            parser.exit(2, f"error: {option} {value}: give 1 or more\n")
    every = seed_runs(args.fast) if args.seeds else ()
    every += replication_runs(args.fast) if args.replicate else ()
    every += ablation_runs(args.epochs) if args.ablation else ()
    if args.list:
        print("\n".join(f"{r.name:24} notebooks/{r.notebook}" for r in every or RUNS))
        return 0
    if unknown := set(args.only or ()) - {run.name for run in every or RUNS}:
        known = ", ".join(run.name for run in every or RUNS)
        unknown = ", ".join(sorted(unknown))
        parser.exit(2, f"error: unknown run(s) {unknown}; known: {known}\n")
    runs = [run for run in every or RUNS if not args.only or run.name in args.only]
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m helpers.pipeline", *map(str, given)])
    with contextlib.ExitStack() as stack:
        try:  # the notebooks' own checks, before any of them starts
            parameters.check_folder("data_dir", args.data_dir)
            output_dir = parameters.check_output_dir(args.output_dir, args.fast)
            stack.enter_context(artifacts.hold_output_dir(output_dir, command))
            if args.update_readme:
                return update_readme(output_dir) or 0
            if not every:  # the main run shows every committed run
                restore_committed((*seed_runs(), *replication_runs()[:-1]), output_dir)
            root = output_dir if args.fast else artifacts.PROJECT_ROOT
            reports = (args.reports_dir or root / "reports").resolve()
            data_dir = args.data_dir and str(Path(args.data_dir).resolve())
            options = dict(fast=args.fast, force=args.force, data_dir=data_dir)
            options |= dict(scheduler=args.scheduler, workers=args.workers)
            run_all(runs, output_dir, reports, **options)
        except (parameters.ParameterError, artifacts.OutputFolderError) as err:
            parser.exit(2, f"error: {err}\n")  # an unreachable scheduler, too
    return 0


if __name__ == "__main__":
    sys.exit(main())
