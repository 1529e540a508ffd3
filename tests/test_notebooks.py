"""Committed notebooks are clean; the pipeline runs them headless and exports PDFs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import needs_real_data

from helpers import pipeline

NOTEBOOKS = sorted(pipeline.NOTEBOOK_DIR.glob("*.ipynb"))


def test_there_are_notebooks_and_every_run_points_at_one():
    assert NOTEBOOKS
    for run in pipeline.RUNS:
        assert (pipeline.NOTEBOOK_DIR / run.notebook).is_file(), run


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {cell.id} has outputs"
            assert cell.execution_count is None, f"{path.name}: cell {cell.id} was run"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_literal_parameters_cell_after_setup(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [
        i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])
    ]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} parameters cells"
    cell = nb.cells[tagged[0]]
    assert cell.cell_type == "code"
    for line in cell.source.splitlines():
        code = line.split("#")[0].strip()
        if code:  # name = literal only
            name, value = (part.strip() for part in code.split("=", 1))
            assert name.isidentifier(), line
            compile(value, "<parameter>", "eval")
            assert not any(ch in value for ch in "()[]{}"), f"not a literal: {line}"
    assert "fast" in cell.source
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith("# ")


def test_unknown_run_name_is_rejected_with_the_known_names():
    with pytest.raises(pipeline.PipelineError, match="01_eda"):
        pipeline.select_runs(["nope"])


@pytest.mark.notebook
@needs_real_data
def test_fast_pipeline_run_of_eda_writes_notebook_figures_summary_and_pdf(tmp_path):
    out, reports = tmp_path / "artifacts", tmp_path / "reports"
    code = pipeline.main(
        [
            "--fast",
            "--only",
            "01_eda",
            "--output-dir",
            str(out),
            "--reports-dir",
            str(reports),
            "--quiet",
        ]
    )
    assert code == 0
    executed = nbformat.read(out / "notebooks" / "01_eda.ipynb", as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
    assert (out / "figures" / "eda_sample_grid.png").stat().st_size > 0
    assert (out / "data_summary.json").is_file()
    pdf = reports / "01_eda.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 50_000  # has the figures, not just text


@pytest.mark.notebook
@needs_real_data
def test_failing_run_names_run_cell_and_error_and_keeps_the_notebook(tmp_path, capsys):
    bad = pipeline.NotebookRun("eda-bad-seed", "01_eda.ipynb", {"seed": -1})
    with pytest.raises(pipeline.PipelineError) as err:
        pipeline.run_pipeline(
            [bad], tmp_path / "a", tmp_path / "r", fast=True, quiet=True
        )
    message = str(err.value)
    assert "eda-bad-seed" in message
    assert "cell" in message
    assert "seed=-1" in message  # the parameter check names the parameter and value
    assert Path(tmp_path / "a" / "notebooks" / "eda-bad-seed.ipynb").is_file()
    assert not (tmp_path / "r" / "eda-bad-seed.pdf").exists()
