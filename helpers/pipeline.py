"""Run every notebook headless with papermill and export each to PDF with nbconvert.

Usage::

    python -m helpers.pipeline [--group main|literature|all] [--only NAME ...]
                               [--fast] [--force] [--output-dir DIR]
                               [--reports-dir DIR] [--data-dir DIR] [--quiet]
    python -m helpers.pipeline --update-readme   # results table from the metrics

Each run in :data:`RUNS` executes one notebook with its parameters; the executed
notebook goes to ``<output-dir>/notebooks/<run>.ipynb`` and its PDF to
``<reports-dir>/<run>.pdf`` (the report without its code). A run whose outputs are
complete and were made with the same parameters and code is skipped (``--force``
reruns it). A failing run stops the pipeline (exit 1) with the run, the cell and the
error, and leaves the partly executed notebook for inspection; it is never taken for
a finished run.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.artifacts import (
    CODE_VERSION_ENV,
    artifact_path,
    read_json,
    resolve_output_dir,
    write_bytes_atomic,
    write_json,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
DEFAULT_REPORTS_DIR = PROJECT_ROOT / "reports"
KERNEL_NAME = "python3"
HEADLESS_ENV = "HELPERS_HEADLESS"  # tells the kernels: log lines, no progress bars
README = PROJECT_ROOT / "README.md"
RESULTS_START = "<!-- results:start -->"
RESULTS_END = "<!-- results:end -->"
GROUPS = ("main", "literature", "all")


@dataclass(frozen=True)
class NotebookRun:
    """One execution of a notebook.

    Attributes:
        name: Run name; names the executed notebook, the PDF and the metrics file.
        notebook: Notebook file in ``notebooks/``.
        parameters: Papermill parameters of this run.
        groups: Pipeline groups the run belongs to.
        summary: Reads the other runs' results: never skipped, always rerun.
        hide_input: Export the PDF without code cells (the report).
    """

    name: str
    notebook: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ("main",)
    summary: bool = False
    hide_input: bool = False


_BOTH = ("main", "literature")

# The runs in order; one notebook may appear several times with other parameters.
RUNS: tuple[NotebookRun, ...] = (
    NotebookRun("01_eda", "01_eda.ipynb"),
    NotebookRun("ann-baseline", "02_ann.ipynb", {"variant": "baseline"}),
    NotebookRun("ann-dropout", "02_ann.ipynb", {"variant": "dropout"}),
    NotebookRun("cnn-baseline", "03_cnn.ipynb", {"variant": "baseline"}),
    NotebookRun("cnn-dropout", "03_cnn.ipynb", {"variant": "dropout"}),
    NotebookRun("cnn-plus", "04_cnn_plus.ipynb", {"variant": "plus"}),
    NotebookRun("cnn-bn", "04_cnn_plus.ipynb", {"variant": "bn"}, ("literature",)),
    NotebookRun("cnn-deep", "04_cnn_plus.ipynb", {"variant": "deep"}, ("literature",)),
    NotebookRun("05_comparison", "05_comparison.ipynb", groups=_BOTH, summary=True),
    NotebookRun("report", "report.ipynb", groups=_BOTH, summary=True, hide_input=True),
)


# TensorFlow's C++ start-up lines (absl logs them before TF_CPP_MIN_LOG_LEVEL applies).
_TF_STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IWE]\d{4} [\d:.]+ +\d+ \S+\.cc:\d+\] "
    r"|To enable the following instructions: "
)


class PipelineError(RuntimeError):
    """A run failed; the message names the run, the cell and the error."""


def select_runs(
    only: Sequence[str] | None,
    runs: Sequence[NotebookRun] = RUNS,
    group: str = "main",
) -> list:
    """Return the runs named in ``only`` (in pipeline order), or those of ``group``.

    Raises:
        PipelineError: a name in ``only`` is not a known run, or the group is unknown.
    """
    if group not in GROUPS:
        raise PipelineError(f"Unknown group {group!r}; groups: {', '.join(GROUPS)}.")
    if not only:
        return [run for run in runs if group == "all" or group in run.groups]
    known = [run.name for run in runs]
    unknown = sorted(set(only) - set(known))
    if unknown:
        raise PipelineError(
            f"Unknown run(s) {', '.join(unknown)}; known runs: {', '.join(known)}."
        )
    return [run for run in runs if run.name in only]


def run_parameters(
    run: NotebookRun, output_dir: Path, fast: bool, data_dir: str | None
) -> dict[str, Any]:
    """Return the papermill parameters of ``run`` in this pipeline invocation."""
    parameters = {**run.parameters, "fast": fast, "output_dir": str(output_dir)}
    if data_dir is not None:
        parameters["data_dir"] = data_dir
    return parameters


def code_version(run: NotebookRun) -> str:
    """Return a hash of the code a run depends on: helpers, its notebook, the pins.

    Any edit to ``helpers/*.py``, the run's notebook or ``requirements.txt`` changes
    it, so the run is redone rather than skipped.
    """
    digest = hashlib.sha256()
    files = [
        *sorted((PROJECT_ROOT / "helpers").glob("*.py")),
        NOTEBOOK_DIR / run.notebook,
        PROJECT_ROOT / "requirements.txt",
    ]
    for path in files:
        digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode())
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()[:16]


def run_outputs(run: NotebookRun, output_dir: Path, reports_dir: Path) -> list[Path]:
    """Return the files a finished ``run`` leaves behind."""
    outputs = [
        output_dir / "notebooks" / f"{run.name}.ipynb",
        reports_dir / f"{run.name}.pdf",
    ]
    if "variant" in run.parameters:  # a model run
        outputs += [
            output_dir / "metrics" / f"{run.name}.json",
            output_dir / "models" / f"{run.name}.keras",
            output_dir / "predictions" / f"{run.name}.npy",
        ]
    return outputs


def completion_record(
    run: NotebookRun,
    parameters: Mapping[str, Any],
    outputs: Sequence[Path],
    version: str | None = None,
) -> dict[str, Any]:
    """Return what marks ``run`` as finished: parameters, code version, outputs.

    ``version`` is the code version the run was started with (default: now).
    """
    return {
        "run": run.name,
        "notebook": run.notebook,
        "parameters": dict(parameters),
        "code_version": version or code_version(run),
        "outputs": [str(path) for path in outputs],
    }


def is_complete(
    run: NotebookRun, parameters: Mapping[str, Any], output_dir: Path, reports_dir: Path
) -> bool:
    """True when ``run`` finished before with these parameters and this code.

    The record is written only after the notebook ran and its PDF was exported, and
    removed when a run starts, so a failed or interrupted run never counts.
    """
    record_path = output_dir / "runs" / f"{run.name}.json"
    if run.summary or not record_path.is_file():
        return False
    try:
        record = read_json(record_path)
    except ValueError:
        return False
    outputs = run_outputs(run, output_dir, reports_dir)
    if record != completion_record(run, parameters, outputs):
        return False
    if not all(path.is_file() and path.stat().st_size > 0 for path in outputs):
        return False
    metrics = output_dir / "metrics" / f"{run.name}.json"
    if metrics in outputs:
        try:
            return read_json(metrics).get("code_version") == record["code_version"]
        except ValueError:
            return False
    return True


def execute_notebook(
    run: NotebookRun,
    output_dir: Path,
    fast: bool = False,
    data_dir: str | None = None,
    quiet: bool = False,
) -> Path:
    """Execute ``run`` with papermill and return the executed notebook's path.

    Raises:
        PipelineError: a cell raised, or the kernel died.
    """
    import papermill as pm  # imported here: `--help` should not pay for it

    parameters = run_parameters(run, output_dir, fast, data_dir)
    executed = artifact_path(output_dir, "notebooks", f"{run.name}.ipynb")
    try:
        pm.execute_notebook(
            str(NOTEBOOK_DIR / run.notebook),
            str(executed),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            cwd=str(NOTEBOOK_DIR),
            progress_bar=False,
            log_output=not quiet,
        )
    except pm.PapermillExecutionError as err:
        raise PipelineError(
            f"Run {run.name} ({run.notebook}) failed in cell {err.exec_count} "
            f"(cell index {err.cell_index}): {err.ename}: {err.evalue}\n"
            f"The partly executed notebook is kept at {executed}."
        ) from err
    except Exception as err:
        raise PipelineError(
            f"Run {run.name} ({run.notebook}) could not be executed: "
            f"{type(err).__name__}: {err}\nPartial output (if any): {executed}."
        ) from err
    return executed


def strip_startup_noise(notebook: Any) -> Any:
    """Drop TensorFlow's start-up log lines from a notebook's stderr outputs.

    Other stderr lines (real warnings) are kept; emptied outputs are removed.
    """
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = output["text"].splitlines(keepends=True)
                output["text"] = "".join(
                    line for line in lines if not _TF_STARTUP_NOISE.match(line)
                )
                if not output["text"].strip():
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    return notebook


def export_pdf(notebook: Path, pdf: Path, exclude_input: bool = False) -> Path:
    """Export an executed notebook to PDF through nbconvert's LaTeX route (atomic).

    TensorFlow's start-up log lines are left out of the PDF (they stay in the
    executed notebook).

    Args:
        notebook: The executed ``.ipynb``.
        pdf: Where the PDF goes.
        exclude_input: Hide code cells (for reports).

    Raises:
        PipelineError: nbconvert or XeLaTeX failed (the message says what to install).
    """
    import nbformat
    from nbconvert import PDFExporter

    exporter = PDFExporter()
    exporter.exclude_input = exclude_input
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    try:
        node = strip_startup_noise(nbformat.read(notebook, as_version=4))
        body, _ = exporter.from_notebook_node(node)
    except Exception as err:
        raise PipelineError(
            f"PDF export of {notebook} failed: {type(err).__name__}: {err}\n"
            "nbconvert needs XeLaTeX and pandoc: `sudo apt-get install texlive-xetex "
            "texlive-fonts-recommended texlive-plain-generic pandoc` (or `make setup`)."
        ) from err
    return write_bytes_atomic(pdf, body)


def run_pipeline(
    runs: Sequence[NotebookRun],
    output_dir: Path,
    reports_dir: Path,
    fast: bool = False,
    data_dir: str | None = None,
    quiet: bool = False,
    force: bool = False,
) -> list[Path]:
    """Execute and export ``runs`` in order; return the PDFs written.

    Runs already complete with the same parameters and code are skipped unless
    ``force``.

    Raises:
        PipelineError: at the first run that fails.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by the kernels
    os.environ[HEADLESS_ENV] = "1"
    pdfs = []
    for i, run in enumerate(runs, start=1):
        step = f"[{i}/{len(runs)}] {run.name}"
        parameters = run_parameters(run, output_dir, fast, data_dir)
        if not force and is_complete(run, parameters, output_dir, reports_dir):
            print(f"{step}: up to date, skipped (--force reruns it)", flush=True)
            continue
        record_path = artifact_path(output_dir, "runs", f"{run.name}.json")
        record_path.unlink(missing_ok=True)  # not finished until it finishes again
        version = code_version(run)  # of the code this run starts with
        os.environ[CODE_VERSION_ENV] = version
        start = time.perf_counter()
        print(f"{step}: running {run.notebook}", flush=True)
        executed = execute_notebook(run, output_dir, fast, data_dir, quiet)
        pdf = reports_dir / f"{run.name}.pdf"
        pdfs.append(export_pdf(executed, pdf, exclude_input=run.hide_input))
        outputs = run_outputs(run, output_dir, reports_dir)
        write_json(record_path, completion_record(run, parameters, outputs, version))
        elapsed = time.perf_counter() - start
        print(f"{step}: done in {elapsed:.1f} s -> {pdf}", flush=True)
    return pdfs


def update_readme(output_dir: Path, readme: Path = README) -> bool:
    """Rewrite the results table between the README's markers from the metrics.

    Returns:
        False when the README has no markers or there are no metrics (nothing done).
    """
    from helpers import comparison  # pandas: imported only when needed

    text = readme.read_text(encoding="utf-8")
    if RESULTS_START not in text or RESULTS_END not in text:
        return False
    runs = comparison.load_runs(output_dir, order=[run.name for run in RUNS])
    if not runs:
        return False
    metrics = comparison.metrics_by_run(runs)
    table = comparison.results_markdown(metrics)
    fast = any(m.get("fast") for m in metrics.values())
    note = (
        "Generated from every run in `artifacts/metrics/*.json` (the last full "
        "`make run`, plus `make literature` when it ran); regenerate with "
        "`python -m helpers.pipeline --update-readme`."
    )
    if fast:
        note += " **Fast mode (tiny subset, one epoch): not real results.**"
    head, rest = text.split(RESULTS_START, 1)
    _, tail = rest.split(RESULTS_END, 1)
    body = f"{RESULTS_START}\n{table}\n\n{note}\n{RESULTS_END}"
    write_bytes_atomic(readme, (head + body + tail).encode("utf-8"))
    return True


def _drop_cell_markers(record: logging.LogRecord) -> bool:
    """Keep the notebooks' output in the log, drop papermill's per-cell markers."""
    return not str(record.msg).startswith(("Executing Cell", "Ending Cell"))


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.pipeline", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--fast", action="store_true", help="tiny subset, one epoch (for CI)"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="run only these runs (in order)"
    )
    parser.add_argument(
        "--group",
        choices=GROUPS,
        default="main",
        help="main (default), literature (the published recipes, tens of minutes) "
        "or all",
    )
    parser.add_argument(
        "--force", action="store_true", help="rerun runs that are up to date"
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="only rewrite the README results table from the metrics files",
    )
    parser.add_argument("--output-dir", type=Path, help="artifacts folder")
    parser.add_argument(
        "--reports-dir", type=Path, default=DEFAULT_REPORTS_DIR, help="PDF folder"
    )
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST files")
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    parser.add_argument(
        "--quiet", action="store_true", help="do not stream notebook output"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="    %(message)s")
    logging.getLogger("traitlets").setLevel(logging.ERROR)  # nbconvert's LaTeX chatter
    papermill_log = logging.getLogger("papermill")
    papermill_log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    papermill_log.addFilter(_drop_cell_markers)
    try:
        runs = select_runs(args.only, group=args.group)
        if args.list:
            for run in runs:
                print(f"{run.name:<16} {run.notebook:<20} {dict(run.parameters)}")
            return 0
        output_dir = resolve_output_dir(args.output_dir)
        if args.update_readme:
            if not update_readme(output_dir):
                print(f"No metrics in {output_dir} or no markers in {README}.")
                return 1
            print(f"Results table rewritten in {README}")
            return 0
        run_pipeline(
            runs,
            output_dir,
            args.reports_dir.resolve(),
            args.fast,
            args.data_dir,
            args.quiet,
            args.force,
        )
        full = not args.fast and args.output_dir is None and not args.only
        if full and update_readme(output_dir):
            print(f"Results table rewritten in {README}")
    except PipelineError as err:
        print(f"pipeline failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
