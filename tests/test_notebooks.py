"""Committed notebooks are clean; the pipeline runs them headless and exports PDFs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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
    "code_version",
}  # fmt: skip
# Every model run of the pipeline and its parameter count (pinned).
MODEL_RUNS = {
    "ann-baseline": 235_146,
    "ann-dropout": 235_146,
    "cnn-baseline": 225_034,
    "cnn-dropout": 225_034,
    "cnn-plus": 251_962,
    "cnn-bn": 316_650,
    "cnn-deep": 787_274,
}


def _main(root: Path, *args: str) -> int:
    return pipeline.main(
        [
            "--fast",
            "--quiet",
            *args,
            "--output-dir",
            str(root / "a"),
            "--reports-dir",
            str(root / "r"),
        ]
    )


@pytest.fixture(scope="module")
def fast_all_runs(tmp_path_factory):
    """Run every notebook of every group once in fast mode through the pipeline."""
    root = tmp_path_factory.mktemp("fast-runs")
    assert _main(root, "--group", "all") == 0
    return root / "a", root / "r"


def test_pipeline_declares_every_model_run_with_its_notebook():
    runs = {run.name: run for run in pipeline.RUNS}
    assert {name for name, run in runs.items() if "variant" in run.parameters} == set(
        MODEL_RUNS
    )
    for name in ("ann-baseline", "ann-dropout", "cnn-baseline", "cnn-dropout"):
        model, variant = name.split("-")
        assert runs[name].notebook.endswith(f"_{model}.ipynb")
        assert runs[name].parameters == {"variant": variant}
    assert [r.name for r in pipeline.select_runs(None, group="literature")] == [
        "cnn-bn",
        "cnn-deep",
        "05_comparison",
        "report",
    ]
    assert "cnn-bn" not in [r.name for r in pipeline.select_runs(None)]
    assert pipeline.RUNS[-1].name == "report"


@pytest.mark.notebook
@needs_real_data
@pytest.mark.parametrize("run", MODEL_RUNS)
def test_fast_run_writes_complete_metrics_in_valid_ranges(fast_all_runs, run):
    from helpers.artifacts import read_json

    out, _ = fast_all_runs
    metrics = read_json(out / "metrics" / f"{run}.json")
    assert set(metrics) >= REQUIRED_METRICS
    assert metrics["run"] == run
    assert (metrics["model"], metrics["variant"]) == tuple(run.split("-"))
    assert metrics["params"] == MODEL_RUNS[run]
    assert metrics["epochs"] == metrics["epochs_run"] == 1
    assert metrics["fast"] is True
    assert len(metrics["code_version"]) == 16
    for key in ("test_accuracy", "best_val_accuracy", "macro_f1"):
        assert 0.0 <= metrics[key] <= 1.0, key
    # One epoch on 2,000 images beats chance (0.1), except for cnn-deep, whose batch
    # normalisation statistics are not settled after 32 steps: its predictions must
    # still be probabilities.
    if run == "cnn-deep":
        probs = np.load(out / "predictions" / f"{run}.npy")
        assert np.isfinite(probs).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)
    else:
        assert metrics["test_accuracy"] > 0.2
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
    assert not (out / "checkpoints" / run).exists()  # removed after training


@pytest.mark.notebook
@needs_real_data
@pytest.mark.parametrize("run", MODEL_RUNS)
def test_fast_run_saves_a_model_that_reproduces_its_predictions(fast_all_runs, run):
    import keras

    from helpers import evaluation

    out, reports = fast_all_runs
    saved = np.load(out / "predictions" / f"{run}.npy")
    assert saved.dtype == np.float32
    assert saved.shape == (10_000, 10)
    model = keras.models.load_model(out / "models" / f"{run}.keras", safe_mode=True)
    splits = data.load_splits()
    x_test = data.prepare_inputs(splits, run.split("-")[0])[2]
    metrics = json.loads((out / "metrics" / f"{run}.json").read_text())
    predictor = evaluation.TestTimeAveraged(
        model, metrics.get("test_time_flip", False), metrics.get("test_time_shift", 0)
    )
    np.testing.assert_allclose(predictor.predict(x_test, verbose=0), saved, atol=1e-5)
    assert (reports / f"{run}.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / "figures" / f"{run}_confusion_matrix.png").is_file()


def _pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True)
    return int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))


@pytest.mark.notebook
@needs_real_data
def test_comparison_and_report_cover_every_run(fast_all_runs):
    out, reports = fast_all_runs
    executed = (out / "notebooks" / "05_comparison.ipynb").read_text()
    assert f"{len(MODEL_RUNS)} runs: " in executed
    for run in MODEL_RUNS:
        assert run in executed
    assert "McNemar" in executed
    assert (out / "figures" / "comparison_accuracy_ci.png").is_file()
    report = reports / "report.pdf"
    assert report.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdfinfo"):
        assert 2 <= _pdf_pages(report) <= 8
    report_nb = nbformat.read(out / "notebooks" / "report.ipynb", as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in report_nb.cells])
    assert "Fast mode" in outputs  # a fast run says its numbers are not results
    assert "Error" not in outputs


@pytest.mark.notebook
@needs_real_data
def test_comparison_works_with_only_two_runs(fast_all_runs, tmp_path):
    out, _ = fast_all_runs
    for run in ("ann-baseline", "cnn-baseline"):
        for kind, suffix in (("metrics", "json"), ("predictions", "npy")):
            target = tmp_path / "a" / kind / f"{run}.{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(out / kind / f"{run}.{suffix}", target)
    assert _main(tmp_path, "--only", "05_comparison") == 0
    executed = (tmp_path / "a" / "notebooks" / "05_comparison.ipynb").read_text()
    assert "2 runs: ann-baseline, cnn-baseline" in executed


@pytest.mark.notebook
@needs_real_data
def test_finished_runs_are_skipped_and_force_reruns_them(fast_all_runs, capsys):
    out, _ = fast_all_runs
    root = out.parent
    capsys.readouterr()
    assert _main(root, "--only", "ann-baseline") == 0
    assert "ann-baseline: up to date, skipped" in capsys.readouterr().out
    model = out / "models" / "ann-baseline.keras"
    before = model.stat().st_mtime_ns
    assert _main(root, "--only", "ann-baseline", "--force") == 0
    assert "ann-baseline: running" in capsys.readouterr().out
    assert model.stat().st_mtime_ns > before


@pytest.mark.notebook
@needs_real_data
def test_changed_parameters_or_damaged_outputs_are_not_taken_for_finished(
    fast_all_runs,
):
    out, reports = fast_all_runs
    run = next(r for r in pipeline.RUNS if r.name == "ann-dropout")
    params = pipeline.run_parameters(run, out, True, None)
    assert pipeline.is_complete(run, params, out, reports)
    assert not pipeline.is_complete(run, {**params, "fast": False}, out, reports)
    other_seed = pipeline.NotebookRun(
        run.name, run.notebook, {"variant": "dropout", "seed": 1}
    )
    assert not pipeline.is_complete(
        other_seed, pipeline.run_parameters(other_seed, out, True, None), out, reports
    )
    metrics = out / "metrics" / "ann-dropout.json"
    good = metrics.read_bytes()
    metrics.write_bytes(good[: len(good) // 2])  # a truncated file
    try:
        assert not pipeline.is_complete(run, params, out, reports)
    finally:
        metrics.write_bytes(good)
    assert pipeline.is_complete(run, params, out, reports)
    summary = next(r for r in pipeline.RUNS if r.summary)
    assert not pipeline.is_complete(
        summary, pipeline.run_parameters(summary, out, True, None), out, reports
    )


@pytest.mark.notebook
@needs_real_data
def test_a_failed_run_leaves_no_completion_record(tmp_path):
    bad = pipeline.NotebookRun("ann-bad", "02_ann.ipynb", {"variant": "nope"})
    with pytest.raises(pipeline.PipelineError, match="variant='nope'"):
        pipeline.run_pipeline(
            [bad], tmp_path / "a", tmp_path / "r", fast=True, quiet=True
        )
    assert not (tmp_path / "a" / "runs" / "ann-bad.json").exists()
    params = pipeline.run_parameters(bad, tmp_path / "a", True, None)
    assert not pipeline.is_complete(bad, params, tmp_path / "a", tmp_path / "r")


@pytest.mark.notebook
@needs_real_data
def test_same_seed_gives_identical_predictions_run_twice(fast_all_runs, tmp_path):
    out, _ = fast_all_runs
    assert _main(tmp_path, "--only", "cnn-baseline") == 0
    first = np.load(out / "predictions" / "cnn-baseline.npy")
    second = np.load(tmp_path / "a" / "predictions" / "cnn-baseline.npy")
    np.testing.assert_array_equal(first, second)


# Each notebook's validation cell (right after the parameters) rejects bad values.
BAD_PARAMETERS = [
    ("02_ann.ipynb", {"epochs": 0}, "epochs=0"),
    ("02_ann.ipynb", {"epochs": -3}, "epochs=-3"),
    ("02_ann.ipynb", {"epochs": "10"}, "epochs='10'"),
    ("02_ann.ipynb", {"batch_size": 2.5}, "batch_size=2.5"),
    ("03_cnn.ipynb", {"variant": "resnet"}, "variant='resnet'"),
    ("03_cnn.ipynb", {"batch_size": 4_096}, "batch_size=4096"),
    ("03_cnn.ipynb", {"data_dir": "/no/such/folder"}, "data_dir='/no/such/folder'"),
    ("04_cnn_plus.ipynb", {"learning_rate": -1.0}, "learning_rate=-1.0"),
    ("04_cnn_plus.ipynb", {"test_time_flip": "yes"}, "test_time_flip='yes'"),
    ("04_cnn_plus.ipynb", {"test_time_shift": -1}, "test_time_shift=-1"),
    ("01_eda.ipynb", {"seed": "42"}, "seed='42'"),
    ("05_comparison.ipynb", {"seed": -1}, "seed=-1"),
]


@pytest.mark.notebook
@pytest.mark.parametrize(("notebook", "bad", "named"), BAD_PARAMETERS)
def test_bad_parameter_stops_the_notebook_in_its_validation_cell(
    tmp_path, notebook, bad, named
):
    run = pipeline.NotebookRun("bad-parameter", notebook, bad)
    with pytest.raises(pipeline.PipelineError) as err:
        pipeline.run_pipeline(
            [run], tmp_path / "a", tmp_path / "r", fast=True, quiet=True
        )
    message = str(err.value)
    assert named in message
    assert "not allowed" in message
    source = nbformat.read(pipeline.NOTEBOOK_DIR / notebook, as_version=4)
    tagged = next(
        i
        for i, c in enumerate(source.cells)
        if "parameters" in c.metadata.get("tags", [])
    )
    # papermill inserts its cell after the parameters cell; validation comes next
    # (a markdown cell may sit between them).
    assert (
        f"cell index {tagged + 2})" in message or f"cell index {tagged + 3})" in message
    )


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


def _fake_run(folder: Path, run: str, accuracy: float, fast: bool = False) -> None:
    """Write a minimal metrics JSON and predictions for ``run`` into ``folder``."""
    from helpers.artifacts import save_array, write_json

    labels = np.arange(100) % 10
    probs = np.full((100, 10), 0.01, np.float32)
    right = int(accuracy * 100)
    probs[
        np.arange(100), np.where(np.arange(100) < right, labels, (labels + 1) % 10)
    ] = 0.91
    cm = np.zeros((10, 10), int)
    np.add.at(cm, (labels, probs.argmax(axis=1)), 1)
    model, variant = run.split("-")
    metrics = {
        "run": run, "model": model, "variant": variant, "params": 1234,
        "epochs_run": 3, "train_seconds": 12.5, "test_accuracy": accuracy,
        "test_loss": 0.5, "macro_f1": accuracy, "inference_ms_per_image": 0.5,
        "throughput_images_per_s": 9000.0, "confusion_matrix": cm.tolist(),
        "fast": fast, "history": {"loss": [1.0], "val_loss": [1.0]},
        "per_class": {name: {"f1": accuracy} for name in data.CLASS_NAMES},
    }  # fmt: skip
    write_json(folder / "metrics" / f"{run}.json", metrics)
    save_array(folder / "predictions" / f"{run}.npy", probs)


def test_readme_results_table_is_rewritten_between_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    start, end = pipeline.RESULTS_START, pipeline.RESULTS_END
    readme.write_text(f"# Title\n\n{start}\nold table\n{end}\n\nEnd\n")
    _fake_run(tmp_path / "a", "ann-baseline", 0.87)
    _fake_run(tmp_path / "a", "cnn-plus", 0.93)
    assert pipeline.update_readme(tmp_path / "a", readme)
    text = readme.read_text()
    assert "old table" not in text
    assert text.startswith("# Title\n")
    assert text.endswith("\n\nEnd\n")
    table = text.split(pipeline.RESULTS_START)[1].split(pipeline.RESULTS_END)[0]
    assert "| ann-baseline |" in table
    assert "| cnn-plus |" in table
    assert "0.8700" in table
    assert "0.9300" in table
    assert "--update-readme" in table
    assert "Fast mode" not in table
    assert pipeline.update_readme(tmp_path / "a", readme)  # idempotent
    assert readme.read_text() == text


def test_readme_without_markers_or_runs_is_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# No markers\n")
    _fake_run(tmp_path / "a", "ann-baseline", 0.87)
    assert not pipeline.update_readme(tmp_path / "a", readme)
    assert readme.read_text() == "# No markers\n"
    readme.write_text(f"{pipeline.RESULTS_START}\n{pipeline.RESULTS_END}\n")
    assert not pipeline.update_readme(tmp_path / "empty", readme)
