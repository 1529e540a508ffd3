"""Committed notebooks are clean; the pipeline runs them headless and exports PDFs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import needs_real_data

from helpers import data, pipeline

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


REQUIRED_METRICS = {
    "run", "model", "variant", "params", "seed", "epochs", "epochs_run", "batch_size",
    "train_seconds", "test_accuracy", "test_loss", "best_val_accuracy", "macro_f1",
    "per_class", "confusion_matrix", "history", "inference_ms_per_image", "versions",
}  # fmt: skip
MODEL_RUNS = {"ann-baseline": 235_146, "cnn-baseline": 225_034}


@pytest.fixture(scope="module")
def fast_model_runs(tmp_path_factory):
    """Run the ANN and CNN notebooks once in fast mode through the pipeline."""
    root = tmp_path_factory.mktemp("fast-runs")
    args = ["--fast", "--quiet", "--only", *MODEL_RUNS]
    code = pipeline.main(
        [*args, "--output-dir", str(root / "a"), "--reports-dir", str(root / "r")]
    )
    assert code == 0
    return root / "a", root / "r"


def test_pipeline_declares_the_four_model_runs():
    runs = {run.name: run for run in pipeline.RUNS}
    for name in ("ann-baseline", "ann-dropout", "cnn-baseline", "cnn-dropout"):
        model, variant = name.split("-")
        assert runs[name].notebook.endswith(f"_{model}.ipynb")
        assert runs[name].parameters == {"variant": variant}


@pytest.mark.notebook
@needs_real_data
@pytest.mark.parametrize("run", MODEL_RUNS)
def test_fast_run_writes_complete_metrics_in_valid_ranges(fast_model_runs, run):
    from helpers.artifacts import read_json

    out, _ = fast_model_runs
    metrics = read_json(out / "metrics" / f"{run}.json")
    assert set(metrics) >= REQUIRED_METRICS
    assert metrics["run"] == run
    assert (metrics["model"], metrics["variant"]) == tuple(run.split("-"))
    assert metrics["params"] == MODEL_RUNS[run]
    assert metrics["epochs"] == metrics["epochs_run"] == 1
    assert metrics["fast"] is True
    for key in ("test_accuracy", "best_val_accuracy", "macro_f1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert (
        metrics["test_accuracy"] > 0.3
    )  # one epoch on 2,000 images beats chance (0.1)
    assert metrics["test_loss"] > 0
    assert metrics["train_seconds"] > 0
    assert metrics["inference_ms_per_image"] > 0
    cm = np.array(metrics["confusion_matrix"])
    assert cm.shape == (10, 10)
    assert cm.sum() == 10_000
    assert np.trace(cm) / cm.sum() == pytest.approx(metrics["test_accuracy"])
    assert list(metrics["per_class"]) == list(data.CLASS_NAMES)
    assert len(metrics["history"]["val_accuracy"]) == 1
    assert {"tensorflow", "keras", "numpy", "python"} <= set(metrics["versions"])


@pytest.mark.notebook
@needs_real_data
@pytest.mark.parametrize("run", MODEL_RUNS)
def test_fast_run_saves_a_model_that_reproduces_its_predictions(fast_model_runs, run):
    import keras

    out, reports = fast_model_runs
    saved = np.load(out / "predictions" / f"{run}.npy")
    assert saved.dtype == np.float32
    assert saved.shape == (10_000, 10)
    model = keras.models.load_model(out / "models" / f"{run}.keras", safe_mode=True)
    splits = data.load_splits()
    x_test = data.prepare_inputs(splits, run.split("-")[0])[2]
    np.testing.assert_allclose(model.predict(x_test, verbose=0), saved, atol=1e-5)
    assert (reports / f"{run}.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / "figures" / f"{run}_confusion_matrix.png").is_file()


def test_pdf_export_drops_tensorflow_startup_lines_but_keeps_warnings():
    nb = nbformat.v4.new_notebook()
    noise = (
        "WARNING: All log messages before absl::InitializeLog() is called are written "
        "to STDERR\n"
        "I0000 00:00:1795256922.939735    9766 cudart_stub.cc:31] Could not find cuda\n"
    )
    cell = nbformat.v4.new_code_cell("import tensorflow")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=noise),
        nbformat.v4.new_output(
            "stream", name="stderr", text=noise + "UserWarning: x\n"
        ),
        nbformat.v4.new_output("stream", name="stdout", text=noise),
    ]
    nb.cells.append(cell)
    outputs = pipeline.strip_startup_noise(nb).cells[0].outputs
    assert [o.text for o in outputs] == ["UserWarning: x\n", noise]
