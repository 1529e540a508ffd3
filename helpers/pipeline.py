"""Run every notebook headless with papermill and export each to PDF with nbconvert.

``python -m helpers.pipeline --help`` lists the options (``--seeds``: the main runs
at several seeds; ``--replicate``: the published recipes; ``--update-readme``: the
README tables from the metrics). A run whose notebook code and parameters are
unchanged since it finished is skipped. Seed and replication runs are committed in
``benchmarks/results/seeds/`` and ``.../replication/``: the main run restores them
(never retrains them; a stale one is marked ``stale``), ``--seeds`` and
``--replicate`` retrain only the missing and stale ones. ``--fast`` (CI) writes to
``artifacts-fast/`` only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
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

import pandas as pd

from helpers import artifacts, data, parameters, stats

NOTEBOOK_DIR = artifacts.PROJECT_ROOT / "notebooks"
README = artifacts.PROJECT_ROOT / "README.md"
RESULTS_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")
REPLICATION_MARKERS = ("<!-- replication:start -->", "<!-- replication:end -->")
KEPT_ROOT = artifacts.KEPT_ROOT


@dataclass(frozen=True)
class Run:
    """One execution of a notebook: its name names every file it writes."""

    name: str
    notebook: str
    parameters: dict[str, Any] = field(default_factory=dict)
    summary: bool = False  # reads the other runs' metrics
    hide_input: bool = False  # PDF without code (the report)
    pdf: bool = True  # exported to reports/ (not each seed or replication run)
    kept: str = ""  # its record and metrics committed in KEPT_ROOT / kept (a group)
    seeds: range = range(0)  # the seeds `make seeds` trains a model run at
    # make ablation: the notebook stops before its test split and runs this instead
    validation_cell: str = ""


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
    """The runs of ``make seeds``: each main model run at its seeds, named
    ``<run>-s<seed>`` (the ``name`` parameter of 02-04), committed in
    ``benchmarks/results/seeds/``. Fast mode (CI): ann-baseline at two seeds."""
    plan = [(run, run.seeds) for run in RUNS if run.seeds]
    if fast:
        plan = [(run, range(42, 44)) for run, _ in plan[:1]]
    return tuple(
        Run(
            f"{run.name}-s{seed}",
            run.notebook,
            {**run.parameters, "seed": seed, "name": f"{run.name}-s{seed}"},
            pdf=False,
            kept="seeds",
        )
        for run, seeds in plan
        for seed in seeds
    )


def replication_runs(fast: bool = False) -> tuple[Run, ...]:
    """The runs of ``make replicate``: each published recipe at several seeds (at 5,
    the Keras study's on our split and on its own, the others on their own; the
    Enhanced CNN paper's two readings, the longest, at 3),
    the Keras study's first, the Enhanced CNN paper's (the longest) last, then
    ``07_replication``. Fast mode (CI): one seed of each on its own split, plus the
    Keras study's ANN at a second seed and on our split."""
    keras_study = [(r, s) for r in ("keras-ann", "keras-cnn") for s in ("tail", "ours")]
    others = ["keras-readme-ann", "torch-b-ann", "torch-a-ann", "torch-b-cnn"]
    others += ["torch-a-cnn", "enhanced-table", "enhanced-text"]
    plan = [(recipe, split, range(42, 47)) for recipe, split in keras_study]
    plan += [(recipe, None, range(42, 47)) for recipe in others[:5]]
    plan += [(recipe, None, range(42, 45)) for recipe in others[5:]]  # 15-30 min
    if fast:
        seeds = {("keras-ann", "tail"): range(42, 44), ("keras-ann", "ours"): [42]}
        plan = [(r, s, seeds.get((r, s), [42])) for r, s, _ in plan]
        plan = [row for row in plan if row[1] != "ours" or row[0] == "keras-ann"]
    own = data.published()["own_split"]
    runs = [
        Run(
            f"{recipe}-{split or own[recipe]}-s{seed}",
            "06_published_recipes.ipynb",
            {"recipe": recipe, "split": split or own[recipe], "seed": seed},
            pdf=False,
            kept="replication",
        )
        for recipe, split, seeds in plan
        for seed in seeds
    ]
    return (*runs, Run("07_replication", "07_replication.ipynb", summary=True))


# make ablation: 04 with one thing changed from the recipe as it was before the 28x28
# stem became its default (stem="strided"), as the first rows were measured.
ABLATION = {
    "all ingredients": {"stem": "strided"},
    "no augmentation": {"stem": "strided", "augment": False},
    "no label smoothing": {"stem": "strided", "label_smoothing": 0.0},
    "peak learning rate 1e-3": {"stem": "strided", "learning_rate": 1e-3},
    "batch 256": {"stem": "strided", "batch_size": 256},
    "12 epochs": {"stem": "strided", "epochs": 12},
    "12 epochs, peak learning rate 5e-3": {
        "stem": "strided",
        "epochs": 12,
        "learning_rate": 5e-3,
    },
    "28x28 stem, 9 epochs": {"stem": "full", "epochs": 9},
    "28x28 stem, 11 epochs (the recipe)": {"stem": "full", "epochs": 11},
    "28x28 stem, batch 64, 10 epochs": {"stem": "full", "batch_size": 64, "epochs": 10},
}
# What an ablation row records, in place of 04's test-split section.
ABLATION_RECORD = """summary = training.summary()
artifacts.write_json(output_dir / "metrics" / f"{{run}}.json", dict(
    run=run, change={change!r}, epochs=epochs, stem=stem, fast=fast,
    val_accuracy=val_plain, val_accuracy_averaged=val_averaged,
    **{{k: summary[k] for k in ("epochs_run", "train_seconds", "cpu_busy")}},
    **training.cost(model, summary["epochs_run"])))
training.finish()  # as save_run does: a rerun trains again"""


def ablation_runs(epochs: int = 10) -> tuple[Run, ...]:
    """The runs of ``make ablation``: 04 once per row of ABLATION, at ``epochs``
    unless the row sets them, scored on the validation split only (the test images
    stay untouched), committed in ``benchmarks/results/ablation/``."""
    runs = []
    for change, changed in ABLATION.items():
        changed = {"epochs": epochs, **changed}
        slug = re.sub(r"[^a-z0-9]+", "-", change.lower()).strip("-")
        name = f"ablation-{slug}-e{changed['epochs']}"
        record = ABLATION_RECORD.format(change=change)
        parameters = {**changed, "name": name}
        runs.append(
            Run(
                name,
                "04_cnn_plus.ipynb",
                parameters,
                pdf=False,
                kept="ablation",
                validation_cell=record,
            )
        )
    return tuple(runs)


def _digest(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def code_digest(notebook: Path) -> str:
    """The digest of a notebook's code cells' source: what can change a run's
    numbers. Markdown, tags, metadata and outputs do not count."""
    import nbformat

    cells = nbformat.read(notebook, as_version=4).cells
    code = "\n\0".join(cell.source for cell in cells if cell.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def fingerprint(run: Run, parameters: dict[str, Any], output_dir: Path) -> dict:
    """Return what a finished run must match to be skipped: its notebook's code,
    its parameters but the output folder and, for a summary, the files it reads
    (after a change to ``helpers/``, rerun with ``--force``)."""
    reads = [*output_dir.glob("*.json"), *(output_dir / "metrics").glob("*.json")]
    inputs = [*sorted(reads), data.PUBLISHED_FILE] if run.summary else []
    notebook = code_digest(NOTEBOOK_DIR / run.notebook)
    given = {k: v for k, v in parameters.items() if k != "output_dir"}
    if run.validation_cell:
        notebook += hashlib.sha256(run.validation_cell.encode()).hexdigest()[:16]
    return {"notebook": notebook, "inputs": _digest(inputs), "parameters": given}


def kept_path(run: Run) -> Path:
    """Where a seed or replication run's record and metrics are committed."""
    return KEPT_ROOT / run.kept / f"{run.name}.json"


def restore_kept(run: Run, expected: dict, output_dir: Path) -> Path | None:
    """Copy a kept run's metrics into ``output_dir`` and mark the run finished, if
    its committed copy was made with the same notebook code and parameters; return
    the copy's path, or None."""
    kept = kept_path(run)
    copy = artifacts.read_json_if_exists(kept) if run.kept else None
    if not copy or copy["record"] != expected:
        return None
    artifacts.write_json(output_dir / "metrics" / f"{run.name}.json", copy["metrics"])
    artifacts.write_json(output_dir / "runs" / f"{run.name}.json", expected)
    return kept


def restore_committed(runs: Sequence[Run], output_dir: Path) -> None:
    """Copy the committed metrics of ``runs`` (seed and replication runs) into
    ``output_dir``, retraining none, but keep a run trained there with the current
    code: a copy made with other notebook code or parameters is restored with
    ``stale`` set to the commit it was made at, and the stale ones are named in one
    line."""
    stale, missing, restored = [], [], 0
    for run in runs:
        full = {**run.parameters, "fast": False, "output_dir": "anywhere"}
        expected = fingerprint(run, full, output_dir)
        record = artifacts.read_json_if_exists(output_dir / "runs" / f"{run.name}.json")
        if record == expected:  # trained or restored here with the current code
            continue
        copy = artifacts.read_json_if_exists(kept_path(run))
        if not copy:
            missing.append(run.name)
            continue
        restored += 1
        if restore_kept(run, expected, output_dir):
            continue
        metrics = {**copy["metrics"], "stale": copy["commit"]}
        artifacts.write_json(output_dir / "metrics" / f"{run.name}.json", metrics)
        stale.append(f"{run.name} ({copy['commit']})")
    print(f"restored {restored} committed seed and replication runs")
    if stale:
        print(
            f"stale, shown as such until `make seeds` or `make replicate` retrains"
            f" them: {', '.join(stale)}",
            flush=True,
        )
    if missing:
        print(f"not trained yet (`make seeds`, `make replicate`): {', '.join(missing)}")


def head_commit() -> str:
    """The short hash of the checked-out commit, recorded beside each kept run."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=artifacts.PROJECT_ROOT,
        check=False,
    )
    return done.stdout.strip() or "unknown"


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
    one gives the pages, three also settle the outline), each atomically; return the
    PDF, or the HTML without XeLaTeX."""
    import nbformat
    from nbconvert import HTMLExporter, PDFExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stdout":
                output.text = output.text.translate(BOX_TO_ASCII)
            elif "text/plain" in output.get("data", {}):
                plain = output.data["text/plain"]
                output.data["text/plain"] = plain.translate(BOX_TO_ASCII)
    title, _, rest = nb.cells[0].source.partition("\n")
    nb.metadata["title"] = title.lstrip("# ")
    hide = dict(
        exclude_input=hide_input,
        exclude_input_prompt=hide_input,
        exclude_output_prompt=hide_input,
    )
    made = []
    for exporter, path in (
        (
            HTMLExporter(embed_images=True, **hide),
            reports_dir / "html" / f"{name}.html",
        ),
        (PDFExporter(latex_count=passes, **hide), reports_dir / f"{name}.pdf"),
    ):
        if isinstance(exporter, PDFExporter):
            if not shutil.which("xelatex"):
                break
            nb.cells[0].source = rest  # LaTeX prints the title once, above,
            for cell in nb.cells:  # and numbers the "##" sections 1, 2, ...
                if cell.cell_type == "markdown":
                    cell.source = re.sub(r"^#(#+) ", r"\1 ", cell.source, flags=re.M)
        exporter.register_preprocessor(TagRemovePreprocessor(**HIDDEN), enabled=True)
        body, _ = exporter.from_notebook_node(nb)
        with artifacts.atomic_path(path) as tmp:
            tmp.write_bytes(body if isinstance(body, bytes) else body.encode())
        made.append(path)
    return made[-1]


def execute(run: Run, parameters: dict[str, Any], output_dir: Path) -> Path:
    """Execute ``run``'s notebook with papermill; return the executed notebook.

    The kernel's output (Keras' epoch lines, TensorFlow's C++ lines) goes to
    ``logs/<run>.log``. A failing cell, or one running over ``$CELL_TIMEOUT``
    seconds (default 3600), raises RunFailed naming the cell and the error.
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
    if run.validation_cell:  # up to the test split, then the validation cell
        tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
        end = next(i for i, t in enumerate(tags) if "test-split" in t)
        notebook.cells = notebook.cells[:end]
        notebook.cells.append(nbformat.v4.new_code_cell(run.validation_cell))
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
    except TimeoutError:  # nbclient's CellTimeoutError
        cells = nbformat.read(executed, as_version=4).cells
        # papermill marks every cell "completed" then; the timed-out one is the
        # last that started
        started = [c.metadata.get("papermill", {}).get("start_time") for c in cells]
        i = max(k for k, time in enumerate(started) if time)
        problem = f"cell {i} ran over CELL_TIMEOUT={timeout} s: {cells[i].source!r}"
    else:
        _anonymise(executed, run)
        return executed
    _anonymise(executed, run)
    problem = " ".join(problem.split())  # one line
    raise RunFailed(f"{run.notebook}, {problem}; see {_shown(executed)}, {_shown(log)}")


def _anonymise(executed: Path, run: Run) -> None:
    """Write papermill's record of where the notebook came from and went relative
    to the project and the output folder: no absolute path, no user name."""
    import nbformat

    if not executed.is_file():
        return
    nb = nbformat.read(executed, as_version=4)
    record = nb.metadata.get("papermill", {})
    record |= dict(input_path=f"notebooks/{run.notebook}")
    record |= dict(output_path=f"notebooks/{run.name}.ipynb")
    with artifacts.atomic_path(executed) as tmp:
        nbformat.write(nb, tmp)


class RunFailed(Exception):
    """A notebook failed; the message names the cell, the error and the files."""


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it."""
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def is_done(
    run: Run, tag: str, output_dir: Path, reports_dir: Path, fast: bool
) -> bool:
    """On the client: whether ``run`` finished with the same inputs (its record
    matches and its exports exist) or was restored from its kept copy; says which."""
    parameters = {**run.parameters, "fast": fast}
    record = output_dir / "runs" / f"{run.name}.json"
    pdf = reports_dir / f"{run.name}.pdf"
    html = reports_dir / "html" / f"{run.name}.html"
    exported = html.is_file() and (pdf.is_file() or not shutil.which("xelatex"))
    expected = fingerprint(run, parameters, output_dir)
    if (not run.pdf or exported) and (
        record.is_file() and artifacts.read_json(record) == expected
    ):
        print(f"{tag}: up to date, skipped", flush=True)
        return True
    kept = None if fast else restore_kept(run, expected, output_dir)
    if kept:
        print(f"{tag}: restored from {_shown(kept)}", flush=True)
    return bool(kept)


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
    if run.pdf:
        made = export(executed, run.name, reports_dir, run.hide_input, 1 if fast else 3)
    artifacts.write_json(record, finished)
    if run.kept and not fast:  # committed: a fresh clone need not retrain it
        copy = {"record": finished, "commit": commit}
        copy |= {"metrics": artifacts.read_json(metrics)}
        artifacts.write_json(kept_path(run), copy)
    seconds = time.perf_counter() - start
    say(f"{tag}: done in {seconds:.0f} s -> {_shown(made)}")


def run_all(
    runs: Sequence[Run],
    output_dir: Path,
    reports_dir: Path,
    fast: bool = False,
    force: bool = False,
    data_dir: str | None = None,
    restore: Sequence[Run] = (),
    scheduler: str | None = None,
    workers: int | None = None,
) -> None:
    """Restore the committed runs ``restore`` (see :func:`restore_committed`), then
    run ``runs``, skipping those already finished with the same inputs, each as a
    task on Dask distributed (see :func:`dask_client`): the model runs first, then
    the summaries, which read their metrics, one after another.
    """
    # What the kernels need travels with each task, not in a worker's environment:
    # the folders (not as parameters: no path of this machine shows in a notebook),
    # the lock's permission, and the client's own thread settings (Dask's nanny
    # sets OMP_NUM_THREADS and the like to 1 in its workers).
    data_dir = data_dir or os.environ.get(data.ENV_VAR)
    env = {artifacts.OUTPUT_ENV: str(output_dir), data.ENV_VAR: data_dir}
    env |= {artifacts.RUNNER_ENV: str(os.getpid()), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env |= {name: os.environ.get(name) for name in (*THREAD_VARIABLES, "CELL_TIMEOUT")}
    tags = {run.name: f"[{k}/{len(runs)}] {run.name}" for k, run in enumerate(runs, 1)}
    commit = head_commit()
    from dask.distributed import as_completed

    def start(run: Run) -> Any:  # None when the run is up to date or restored
        if not force and is_done(run, tags[run.name], output_dir, reports_dir, fast):
            return None
        job = (run, tags[run.name], output_dir, reports_dir, fast, commit)
        return client.submit(_task, job, env, key=f"{run.name}-{secrets.token_hex(4)}")

    with dask_client(scheduler, workers or (2 if fast else 1)) as client:
        if restore:
            restore_committed(restore, output_dir)
        if any(run.pdf for run in runs) and not shutil.which("xelatex"):
            print(
                "PDFs skipped: xelatex is not installed (as in Colab); the HTML"
                f" exports in {_shown(reports_dir / 'html')} are what to hand in.",
                flush=True,
            )
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


TOPIC = "fashion-mnist-pipeline"  # the runs' console lines, from worker to client
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A Dask client: of the cluster at ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``),
    whose workers must see this project folder, or of a ``LocalCluster`` of
    ``workers`` single-threaded worker processes on this machine."""
    import dask
    from dask.distributed import Client, LocalCluster

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
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
    # No thread limits in our workers: a run keeps the whole machine's cores.
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": {}}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,  # one kernel per worker thread
            memory_limit=0,  # the kernels, not the workers, hold the data
            dashboard_address=None,
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


def results_table(output_dir: Path) -> str | None:
    """Return the README results table of every full main run, each beside its
    recipe's seed mean ± sd (n) over the seed runs in ``output_dir``, as Markdown
    (None without any)."""
    columns = dict(run="run", params="parameters", epochs_run="epochs")
    columns |= dict(train_flops="training FLOPs", train_seconds="training (s)")
    columns |= dict(
        test_accuracy="test accuracy", test_loss="test loss", macro_f1="macro F1"
    )
    paths = sorted((output_dir / "metrics").glob("*.json"))
    paths = [path for path in paths if not artifacts.SEED_RUN.fullmatch(path.stem)]
    runs = [artifacts.read_json(path) for path in paths]
    full = [r for r in runs if r.get("fast") is False and "recipe" not in r]
    full = [r for r in full if "test_accuracy" in r]  # not the ablation's rows
    if not full:
        return None
    frame = pd.DataFrame(full, columns=list(columns))
    seeds = artifacts.load_seed_runs(output_dir).groupby("of")
    spread = seeds["test_accuracy"].agg(
        lambda a: stats.seed_spread(a).replace("seed mean ± sd, ", "")
    )
    stale = seeds["stale"].agg(lambda s: ", ".join(s.dropna().unique()))
    spread += stale.map(lambda commits: f", stale: {commits}" if commits else "")
    frame["seeds"] = frame["run"].map(spread).fillna("–")
    columns["seeds"] = "its recipe over seeds: mean ± sd (n)"
    return frame.rename(columns=columns).to_markdown(
        index=False,
        intfmt=",",
        floatfmt=("", "", "", ".2e", ".0f", ".4f", ".4f", ".4f", ""),
    )


def replication_markdown(output_dir: Path) -> str | None:
    """Return the README replication table of the full replication runs, as
    Markdown (None without any): each published figure against the 95% prediction
    interval for one new run of its recipe."""
    runs = artifacts.load_replication(output_dir)
    runs = runs[~runs["fast"].astype(bool)] if not runs.empty else runs
    published = data.published()["published_accuracy"]
    table = stats.replication_table(runs, published)
    if table.empty:
        return None
    low, high = (table[k].map("{:.4f}".format) for k in ("pi_low", "pi_high"))
    table["95% prediction interval"] = low + "–" + high
    table["std"] = table["std"].map(lambda sd: "–" if pd.isna(sd) else f"{sd:.4f}")
    columns = ["recipe", "split", "published", "mean", "std", "seeds"]
    columns += ["95% prediction interval", "verdict"]
    return table[columns].to_markdown(index=False, floatfmt=".4f")


def update_readme(output_dir: Path, readme: Path = README) -> None:
    """Rewrite the README's results and replication tables (between their markers)
    from the metrics; a table with no full runs in `output_dir` is left as it is,
    so `make replicate` alone keeps the results table and `make run` alone the
    replication table."""
    text = readme.read_text()
    source = "\n\nFrom `artifacts/metrics/*.json`; regenerate with `make readme`.\n"
    tables = [
        ("results", RESULTS_MARKERS, results_table(output_dir)),
        ("replication", REPLICATION_MARKERS, replication_markdown(output_dir)),
    ]
    for name, (start, end), table in tables:
        if table is None:
            print(f"README: {name} table left as it is (no full runs in {output_dir})")
            continue
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = f"{before}{start}\n{table}{source}{end}{after}"
    with artifacts.atomic_path(readme) as tmp:
        tmp.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="CI mode: tiny data")
    parser.add_argument("--force", action="store_true", help="rerun finished runs")
    parser.add_argument("--only", nargs="+", metavar="RUN", help="these runs only")
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    parser.add_argument("--output-dir", type=Path, help="default: artifacts/")
    parser.add_argument("--reports-dir", type=Path, help="default: reports/")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST files")
    parser.add_argument("--seeds", action="store_true", help="the seed runs")
    parser.add_argument(
        "--replicate", action="store_true", help="the published recipes"
    )
    parser.add_argument(
        "--ablation", action="store_true", help="04 with one change each (validation)"
    )
    parser.add_argument(
        "--epochs", type=int, default=10, help="the ablation's epochs (default 10)"
    )
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a Dask scheduler whose workers see this folder (default: a local"
        " cluster; also $DASK_SCHEDULER_ADDRESS)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="runs at once on the local cluster (default: 1, --fast: 2)",
    )
    args = parser.parse_args(argv)
    for option, value in (("--workers", args.workers), ("--epochs", args.epochs)):
        if value is not None and value < 1:
            parser.exit(2, f"error: {option} {value}: give 1 or more\n")
    every = seed_runs(args.fast) if args.seeds else ()
    every += replication_runs(args.fast) if args.replicate else ()
    every += ablation_runs(args.epochs) if args.ablation else ()
    every = every or RUNS
    committed = (*seed_runs(), *replication_runs()[:-1])  # restored by the main run
    if args.list:
        print("\n".join(f"{r.name:24} notebooks/{r.notebook}" for r in every))
        return 0
    unknown = set(args.only or ()) - {run.name for run in every}
    if unknown:
        known = ", ".join(run.name for run in every)
        message = f"unknown run(s) {', '.join(sorted(unknown))}; known: {known}"
        parser.exit(2, f"error: {message}\n")
    runs = [run for run in every if not args.only or run.name in args.only]
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m helpers.pipeline", *map(str, given)])
    with contextlib.ExitStack() as stack:
        try:  # the notebooks' own checks, before any of them starts
            parameters.check_folder("data_dir", args.data_dir)
            output_dir = parameters.check_output_dir(args.output_dir, args.fast)
            stack.enter_context(artifacts.hold_output_dir(output_dir, command))
        except (parameters.ParameterError, artifacts.OutputFolderError) as err:
            parser.exit(2, f"error: {err}\n")
        if args.update_readme:
            update_readme(output_dir)
            return 0
        reports_dir = args.reports_dir or (
            output_dir / "reports" if args.fast else artifacts.PROJECT_ROOT / "reports"
        )
        data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
        options = (args.fast, args.force, data_dir)  # the kernels run in notebooks/
        restore = committed if every is RUNS else ()
        try:
            run_all(
                runs,
                output_dir,
                reports_dir.resolve(),
                *options,
                restore=restore,
                scheduler=args.scheduler,
                workers=args.workers,
            )
        except parameters.ParameterError as err:  # an unreachable scheduler
            parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
