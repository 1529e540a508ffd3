"""Run every notebook headless with papermill and export each to PDF with nbconvert.

Usage::

    python -m helpers.pipeline [--fast] [--only NAME ...] [--output-dir DIR]
                               [--reports-dir DIR] [--data-dir DIR] [--quiet]

Each run in :data:`RUNS` executes one notebook with its parameters; the executed
notebook goes to ``<output-dir>/notebooks/<run>.ipynb`` and its PDF to
``<reports-dir>/<run>.pdf``. A failing run stops the pipeline (exit 1) with the run,
the cell and the error, and leaves the partly executed notebook for inspection.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.artifacts import artifact_path, resolve_output_dir, write_bytes_atomic

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
DEFAULT_REPORTS_DIR = PROJECT_ROOT / "reports"
KERNEL_NAME = "python3"
HEADLESS_ENV = "HELPERS_HEADLESS"  # tells the kernels: log lines, no progress bars


@dataclass(frozen=True)
class NotebookRun:
    """One execution of a notebook: a name, the notebook file and its parameters."""

    name: str
    notebook: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


# The runs in order; one notebook may appear several times with other parameters.
RUNS: tuple[NotebookRun, ...] = (
    NotebookRun("01_eda", "01_eda.ipynb"),
    NotebookRun("ann-baseline", "02_ann.ipynb", {"variant": "baseline"}),
    NotebookRun("ann-dropout", "02_ann.ipynb", {"variant": "dropout"}),
    NotebookRun("cnn-baseline", "03_cnn.ipynb", {"variant": "baseline"}),
    NotebookRun("cnn-dropout", "03_cnn.ipynb", {"variant": "dropout"}),
)


# TensorFlow's C++ start-up lines (absl logs them before TF_CPP_MIN_LOG_LEVEL applies).
_TF_STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IWE]\d{4} [\d:.]+ +\d+ \S+\.cc:\d+\] "
    r"|To enable the following instructions: "
)


class PipelineError(RuntimeError):
    """A run failed; the message names the run, the cell and the error."""


def select_runs(only: Sequence[str] | None, runs: Sequence[NotebookRun] = RUNS) -> list:
    """Return the runs named in ``only`` (in pipeline order), or all of them.

    Raises:
        PipelineError: a name in ``only`` is not a known run.
    """
    if not only:
        return list(runs)
    known = [run.name for run in runs]
    unknown = sorted(set(only) - set(known))
    if unknown:
        raise PipelineError(
            f"Unknown run(s) {', '.join(unknown)}; known runs: {', '.join(known)}."
        )
    return [run for run in runs if run.name in only]


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

    parameters = {**run.parameters, "fast": fast, "output_dir": str(output_dir)}
    if data_dir is not None:
        parameters["data_dir"] = data_dir
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
) -> list[Path]:
    """Execute and export ``runs`` in order; return the PDFs written.

    Raises:
        PipelineError: at the first run that fails.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by the kernels
    os.environ[HEADLESS_ENV] = "1"
    pdfs = []
    for i, run in enumerate(runs, start=1):
        start = time.perf_counter()
        print(f"[{i}/{len(runs)}] {run.name}: running {run.notebook}", flush=True)
        executed = execute_notebook(run, output_dir, fast, data_dir, quiet)
        pdfs.append(export_pdf(executed, reports_dir / f"{run.name}.pdf"))
        elapsed = time.perf_counter() - start
        print(
            f"[{i}/{len(runs)}] {run.name}: done in {elapsed:.1f} s -> {pdfs[-1]}",
            flush=True,
        )
    return pdfs


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
        runs = select_runs(args.only)
        if args.list:
            for run in runs:
                print(f"{run.name:<16} {run.notebook:<20} {dict(run.parameters)}")
            return 0
        output_dir = resolve_output_dir(args.output_dir)
        run_pipeline(
            runs,
            output_dir,
            args.reports_dir.resolve(),
            args.fast,
            args.data_dir,
            args.quiet,
        )
    except PipelineError as err:
        print(f"pipeline failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
