"""What a student hands in: anonymous, warning-free, typeset PDFs with HTML twins.

Every test reads the shared fast run (``fast_run``): no path of this machine (the
project's folder, the home folder) may appear in its exports or executed notebooks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import nbformat
import pytest
from conftest import needs_real_data

from helpers import artifacts, pipeline

needs_pdftotext = pytest.mark.skipif(
    not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) not installed"
)


def exported_texts(fast_run):
    """Yield (file name, text) of every PDF (pdftotext), HTML file and executed
    notebook (its whole JSON, metadata included) of the run."""
    reports = fast_run / "reports"
    for pdf in sorted(reports.glob("*.pdf")):
        done = subprocess.run(
            ["pdftotext", pdf, "-"], capture_output=True, text=True, check=True
        )
        yield pdf.name, done.stdout
    for path in [*(reports / "html").glob("*.html"), *fast_run.glob("notebooks/*")]:
        yield path.name, path.read_text()


@needs_real_data
@needs_pdftotext
def test_no_export_or_executed_notebook_names_a_folder_of_this_machine(fast_run):
    assert fast_run.is_relative_to(artifacts.PROJECT_ROOT)  # its paths are secrets
    secrets = {str(artifacts.PROJECT_ROOT), os.path.expanduser("~")}
    texts = list(exported_texts(fast_run))
    assert len(texts) >= 3 * len(pipeline.RUNS)  # PDFs, HTML files, notebooks
    for name, text in texts:
        for secret in secrets:
            assert secret not in text, f"{name} shows {secret}"


@needs_real_data
def test_executed_notebooks_have_no_stderr_and_no_warning(fast_run):
    for path in sorted((fast_run / "notebooks").glob("*.ipynb")):
        for k, cell in enumerate(nbformat.read(path, 4).cells):
            for output in cell.get("outputs", []):
                shown = json.dumps(output)
                assert output.get("name") != "stderr", f"{path.name} cell {k}: {shown}"
                assert not re.search(r"\w+Warning\b", shown), f"{path.name} cell {k}"


@needs_real_data
def test_every_pdf_has_an_html_twin_and_prose_cells_show_only_their_prose(fast_run):
    reports = fast_run / "reports"
    for run in pipeline.RUNS:
        assert (reports / f"{run.name}.pdf").is_file(), run.name
        html = (reports / "html" / f"{run.name}.html").read_text()
        assert "data:image/png;base64," in html, run.name  # figures embedded
    replication = (reports / "html" / "07_replication.html").read_text()
    assert "published figure" in replication  # the verdicts, rendered
    assert "words = {" not in replication  # without the code that writes them
    assert "runs[columns].to_markdown" not in replication  # the long table: dropped
    ann = re.sub(r"<[^>]+>", "", (reports / "html" / "ann-baseline.html").read_text())
    assert "model.fit" in ann  # the model, training and evaluation keep their code
    assert "study.published_accuracy" not in ann  # the Conclusions' f-string does not


@needs_real_data
@needs_pdftotext
def test_report_has_its_title_once_references_and_at_most_8_pages(fast_run):
    pdf = fast_run / "reports" / "report.pdf"
    text = subprocess.run(
        ["pdftotext", pdf, "-"], capture_output=True, text=True, check=True
    ).stdout
    title = "Fashion-MNIST image classification with Keras: summary report"
    assert text.count(title) == 1
    assert "References" in text
    assert "arXiv:1708.07747" in text
    pages = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True).stdout
    assert int(re.search(r"Pages:\s+(\d+)", pages)[1]) <= 8
