"""The notebooks teach Keras, are committed clean, and run headless in fast mode.

Every notebook runs once per session (the ``fast_run`` fixture); the tests read it.
"""

from __future__ import annotations

import ast
import copy
import itertools
import json
import re
import subprocess
import sys
import sysconfig

import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest
from conftest import needs_real_data

from helpers import artifacts, data, parameters, pipeline, runner, stats

NOTEBOOKS = sorted(runner.NOTEBOOK_DIR.glob("*.ipynb"))
MODEL_RUNS = ["ann-baseline", "ann-dropout", "cnn-baseline", "cnn-dropout", "cnn-plus"]
MODEL_NOTEBOOKS = ["02_ann.ipynb", "03_cnn.ipynb", "04_cnn_plus.ipynb"]


def read(path):
    return nbformat.read(path, as_version=4)


def code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_every_run_has_its_notebook_and_every_notebook_runs():
    assert [r.name for r in pipeline.RUNS if r.parameters or "cnn" in r.name] == [
        *MODEL_RUNS
    ]
    runs = (*pipeline.RUNS, *pipeline.replication_runs())
    assert {r.notebook for r in runs} == {p.name for p in NOTEBOOKS}


def test_notebooks_are_committed_stripped_of_outputs():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbstripout",
            "--verify",
            "--keep-id",
            *map(str, NOTEBOOKS),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_literal_parameters_cell(path):
    nb = read(path)
    parameters = papermill.inspect_notebook(str(path))
    reads_images = path.name != "07_replication.ipynb"  # 07 reads metrics only
    assert {"fast", "output_dir"} <= set(parameters)
    assert not reads_images or {"seed", "data_dir"} <= set(parameters)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for line in tagged[0].source.splitlines():
        value = line.split("#")[0].split("=", 1)[1].strip()
        assert value in ("True", "False", "None") or eval(value, {}) is not None, line
        assert not any(ch in value for ch in "()[]{}"), f"not a literal: {line}"


def test_every_notebook_starts_with_the_same_first_code_cell():
    first = {
        p.name: next(c for c in read(p).cells if c.cell_type == "code").source
        for p in NOTEBOOKS
    }
    assert len(set(first.values())) == 1, first


# The first cell run as in Colab: a Python without site processing, so the editable
# install's .pth is never read, the virtual environment's packages added by hand.
COLAB = """
import importlib.util, sys, types
sys.path.append({site!r})
assert importlib.util.find_spec("helpers") is None, "helpers importable before"
sys.modules["google.colab"] = types.ModuleType("google.colab")
exec(compile({cell!r}, "first cell", "exec"))
from helpers import data
print(data.__file__, data.load_splits(fast=True).sizes())
"""


@needs_real_data
@pytest.mark.skipif(
    not (artifacts.PROJECT_ROOT / ".git").exists(), reason="not a git clone"
)
def test_first_cell_in_colab_clones_repo_url_and_helpers_imports_without_restart(
    tmp_path,
):
    cell = next(c for c in read(NOTEBOOKS[0]).cells if c.cell_type == "code").source
    content = tmp_path / "content"
    content.mkdir()

    def kernel(url: str) -> subprocess.CompletedProcess:
        source = cell.replace('REPO_URL = ""', f"REPO_URL = {url!r}", 1)
        site = sysconfig.get_paths()["purelib"]
        script = COLAB.format(site=site, cell=source)
        command = [sys.executable, "-S", "-c", script]  # from /content, as in Colab
        return subprocess.run(
            command, cwd=content, capture_output=True, text=True, check=False
        )

    unset = kernel("")
    assert unset.returncode == 1
    assert unset.stderr.strip() == (
        "Set REPO_URL in this cell to your fork's URL and run it again."
    )
    done = kernel(str(artifacts.PROJECT_ROOT))  # a local clone stands for GitHub
    assert done.returncode == 0, done.stderr
    clone = content / "fashion-mnist-keras"
    assert done.stdout.startswith(str(clone / "helpers" / "data.py")), done.stdout
    assert "'train': 2000" in done.stdout or "2000" in done.stdout
    assert (clone / "requirements-colab.txt").is_file()


def test_colab_requirements_never_reinstall_what_colab_has():
    lines = (artifacts.PROJECT_ROOT / "requirements-colab.txt").read_text()
    names = [
        line.split("~")[0].split(">")[0].split("=")[0]
        for line in lines.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert names
    assert not {"tensorflow", "keras", "numpy"} & set(names)


@pytest.mark.parametrize("name", [*MODEL_NOTEBOOKS, "06_published_recipes.ipynb"])
def test_model_notebooks_seed_before_building_any_dataset_or_model(name):
    # the statements the notebook runs, in order; a def or class builds nothing
    source = "\n".join(
        ast.get_source_segment(cell.source, statement)
        for cell in read(runner.NOTEBOOK_DIR / name).cells
        if cell.cell_type == "code"
        for statement in ast.parse(cell.source).body
        if not isinstance(statement, ast.FunctionDef | ast.ClassDef)
    )
    seeded = source.index("keras.utils.set_random_seed(seed)")
    for built in ("data.to_dataset(", "model = ", "layers.Random"):
        assert built not in source or seeded < source.index(built), built


@pytest.mark.parametrize("name", MODEL_NOTEBOOKS)
def test_model_notebook_shows_the_model_its_compile_fit_and_sklearn_scores(name):
    source = code(read(runner.NOTEBOOK_DIR / name))
    assert "keras.Sequential(" in source or "keras.Model(inputs" in source
    assert "def make_model(" in source
    for call in (
        "model.summary(line_length=",
        "model.compile(",
        "model.fit(",
        "BackupAndRestore(",
        "CSVLogger(",
        "classification_report(",
        "confusion_matrix(",
        "log_loss(",
    ):
        assert call in source, f"{name} does not show {call}"


@needs_real_data
@pytest.mark.parametrize("run", MODEL_RUNS)
def test_fast_run_writes_the_metrics_contract(fast_run, run):
    metrics = artifacts.read_json(fast_run / "metrics" / f"{run}.json")
    for key in ("run", "test_accuracy", "epochs", "train_seconds", "fast", "params"):
        assert key in metrics, key
    assert metrics["run"] == run
    assert metrics["fast"] is True
    assert metrics["epochs"] == metrics["epochs_run"] == 2
    assert metrics["resumed_from_epoch"] is None
    assert metrics["val_accuracy"] == metrics["history"]["val_accuracy"][-1] or (
        run == "cnn-plus"  # 04 records its plain validation accuracy itself
    )
    assert len(metrics["epoch_seconds"]) == 2
    assert metrics["train_seconds"] == pytest.approx(
        sum(metrics["epoch_seconds"]), 0.01
    )
    assert 0 <= metrics["test_accuracy"] <= 1
    assert 0 < metrics["cpu_busy"] <= 1.05
    assert metrics["history"]["loss"][1] < metrics["history"]["loss"][0]  # it learns
    assert set(metrics["versions"]) >= {"python", "tensorflow", "keras", "numpy"}
    assert {k: metrics[k] for k in ("device", "versions")} == artifacts.environment()
    probabilities = np.load(fast_run / "predictions" / f"{run}.npy")
    assert probabilities.shape == (500, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    assert not (fast_run / "checkpoints" / run).exists()  # removed once saved


@needs_real_data
def test_parameter_counts_are_those_of_the_published_networks(fast_run):
    params = {
        r: artifacts.read_json(fast_run / "metrics" / f"{r}.json")["params"]
        for r in MODEL_RUNS
    }
    assert params["ann-baseline"] == params["ann-dropout"] == 235_146
    assert params["cnn-baseline"] == params["cnn-dropout"] == 225_034


@needs_real_data
def test_saved_models_load_with_plain_keras_and_take_raw_pixels(fast_run, tmp_path):
    # A fresh interpreter that never imports helpers predicts the raw test pixels:
    # the models are self-contained and scale their input themselves.
    np.save(tmp_path / "x.npy", data.load_splits(fast=True).x_test[..., np.newaxis])
    script = f"""
import sys, numpy as np, keras
x = np.load(r"{tmp_path}/x.npy").astype("float32")
for run in {MODEL_RUNS!r}:
    model = keras.saving.load_model(r"{fast_run}/models/" + run + ".keras")
    np.save(r"{tmp_path}/" + run + ".npy", model.predict(x, verbose=0))
assert "helpers" not in sys.modules
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd="/"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for run in MODEL_RUNS:
        metrics = artifacts.read_json(fast_run / "metrics" / f"{run}.json")
        ours = np.load(tmp_path / f"{run}.npy")
        saved = np.load(fast_run / "predictions" / f"{run}.npy")
        if not metrics.get("test_time_averaging"):  # averaged views differ, rightly
            np.testing.assert_allclose(ours, saved, atol=1e-5)
        assert (ours.argmax(1) == saved.argmax(1)).mean() > 0.9, run


@needs_real_data
def test_every_run_exports_a_pdf_and_the_report_quotes_every_accuracy(fast_run):
    for run in pipeline.RUNS:
        pdf = fast_run / "reports" / f"{run.name}.pdf"
        assert pdf.read_bytes()[:5] == b"%PDF-", run.name
    report = read(fast_run / "notebooks" / "report.ipynb")
    text = json.dumps([c.get("outputs", []) for c in report.cells])
    for run in MODEL_RUNS:
        accuracy = artifacts.read_json(fast_run / "metrics" / f"{run}.json")
        assert f"{accuracy['test_accuracy']:.2%}" in text, run
    environment = artifacts.environment()
    assert environment["device"] in text
    assert f"| {environment['versions']['tensorflow']} " in text  # the "ran on" table


TF_NOISE = re.compile(r"cuInit|NodeDef|cudart|absl|oneDNN|^[EWI]0000", re.M)


@needs_real_data
def test_console_has_a_start_and_an_end_line_per_notebook_and_no_tensorflow_noise(
    fast_run,
):
    lines = (fast_run / "console.txt").read_text().splitlines()
    restored = lines[0]  # then one line each for stale and untrained ones, if any
    assert re.fullmatch(r"restored \d+ committed runs", restored)
    lines = [
        line for line in lines[1:] if not line.startswith(("stale", "not trained"))
    ]
    assert not TF_NOISE.findall("\n".join(lines))
    assert all(a != b for a, b in itertools.pairwise(lines))
    n = len(pipeline.RUNS)
    for k, run in enumerate(pipeline.RUNS, 1):
        mine = [line for line in lines if line.startswith(f"[{k}/{n}] {run.name}: ")]
        assert len(mine) == 2, mine
        assert mine[0].endswith(f"started ({run.notebook})")
        assert re.search(rf"done in \d+ s -> .*{run.name}\.pdf$", mine[1]), mine
    assert len(lines) == 2 * n


@needs_real_data
@pytest.mark.parametrize("run", MODEL_RUNS)
def test_keras_epoch_lines_go_to_the_runs_log(fast_run, run):
    log = (fast_run / "logs" / f"{run}.log").read_text()
    assert "Epoch 2/2" in log
    assert re.search(r"\d+/\d+ - .* - loss: [\d.]+ .* val_loss", log)


@needs_real_data
def test_a_second_run_with_nothing_changed_skips_every_run(fast_run, capfd):
    runner.run_all(pipeline.RUNS, fast_run, fast_run / "reports", fast=True)
    skipped = capfd.readouterr().out.count("up to date, skipped")
    assert skipped == len(pipeline.RUNS)  # 08, 05 and the report among them


def test_fast_mode_never_writes_into_artifacts():
    with pytest.raises(SystemExit):
        pipeline.main(["--fast", "--output-dir", str(artifacts.default_output_dir())])
    with pytest.raises(ValueError, match="fast run never writes to artifacts"):
        parameters.check_output_dir(str(artifacts.default_output_dir()), fast=True)
    assert parameters.check_output_dir(None, fast=True).name == "artifacts-fast"


@needs_real_data
def test_running_a_model_notebook_twice_in_one_kernel_gives_identical_predictions(
    fast_run, tmp_path
):
    # Every cell of 02 in fast mode, then every cell again, in one kernel: the seed
    # is set before the shuffled pipeline and the model are built, so the second
    # pass trains on the same order from the same weights. Both passes also match
    # the shared fast run's fresh kernel.
    nb = read(runner.NOTEBOOK_DIR / "02_ann.ipynb")
    given = f"fast = True\noutput_dir = {str(tmp_path)!r}"
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if "parameters" in cell.metadata.get("tags", []):
            cells.append(nbformat.v4.new_code_cell(given))
    keep = nbformat.v4.new_code_cell("first = probabilities.copy()")
    compare = "import numpy as np\nnp.testing.assert_array_equal(first, probabilities)"
    again = copy.deepcopy(cells)
    for k, cell in enumerate(again):
        cell.id = f"again-{k}"  # cell ids are unique in a notebook
    nb.cells = [*cells, keep, *again]
    nb.cells.append(nbformat.v4.new_code_cell(compare))
    papermill.execute_notebook(
        nb,
        tmp_path / "twice.ipynb",
        progress_bar=False,
        cwd=runner.NOTEBOOK_DIR,
    )  # raises if the assertion cell fails
    np.testing.assert_array_equal(
        np.load(tmp_path / "predictions" / "ann-baseline.npy"),
        np.load(fast_run / "predictions" / "ann-baseline.npy"),
    )


def test_a_cell_running_over_cell_timeout_fails_naming_notebook_and_cell(
    tmp_path, monkeypatch
):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(s)
        for s in ("x = 1", "import time; time.sleep(60)", "y = 2")
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.metadata["kernelspec"]["language"] = "python"
    nbformat.write(nb, tmp_path / "sleepy.ipynb")
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", tmp_path)
    monkeypatch.setenv("CELL_TIMEOUT", "3")
    run = pipeline.Run("nap", "sleepy.ipynb")
    with pytest.raises(runner.RunFailed) as err:
        runner.run_one(run, "[1/1] nap", tmp_path, tmp_path, True, "abc1234")
    message = str(err.value)
    assert message.startswith("[1/1] nap: failed after ")
    assert "sleepy.ipynb, cell 2 ran over CELL_TIMEOUT=3 s" in message  # 1: injected
    assert "time.sleep(60)" in message
    assert "\n" not in message
    assert str(tmp_path / "logs" / "nap.log") in message


def test_every_test_the_readme_names_for_a_promise_exists():
    readme = (artifacts.PROJECT_ROOT / "README.md").read_text()
    named = re.findall(r"`(tests/test_\w+\.py)(?:::(test_\w+))?`", readme)
    assert len(named) >= 10
    for path, test in named:
        source = (artifacts.PROJECT_ROOT / path).read_text()
        assert not test or f"def {test}(" in source, f"{path}::{test}"


@needs_real_data
def test_comparison_tests_recipes_on_seeds_and_models_by_mcnemar_both_holm_adjusted(
    fast_run,
):
    comparison = artifacts.read_json(fast_run / "comparison.json")
    seeds = artifacts.load_seed_runs(fast_run)
    counts = seeds.groupby("of").size()
    recipes = [r for r in MODEL_RUNS if counts.get(r, 0) >= 2]
    welch = pd.DataFrame(comparison["welch"])
    assert len(welch) == len(recipes) * (len(recipes) - 1) // 2
    if not welch.empty:
        np.testing.assert_allclose(welch["p (Holm)"], stats.holm(welch["p"]))
    mcnemar = pd.DataFrame(comparison["mcnemar"])
    assert len(mcnemar) == 10  # every pair of the five main runs
    np.testing.assert_allclose(mcnemar["p (Holm)"], stats.holm(mcnemar["p_value"]))
    spread = pd.DataFrame(comparison["spread"]).set_index("run")
    for run in recipes:  # the seed mean beside the run, the run not pooled in
        accuracy = seeds.loc[seeds["of"] == run, "test_accuracy"]
        assert spread.loc[run, "seed mean ± sd (n)"] == stats.seed_spread(accuracy)
    assert (fast_run / "figures" / "comparison_accuracy_per_flops.png").is_file()
    nb = read(fast_run / "notebooks" / "05_comparison.ipynb")
    text = "\n".join(str(o) for c in nb.cells for o in c.get("outputs", []))
    assert "McNemar's exact test, Holm-adjusted over 10 pairs of trained models" in text
    assert "significant" not in text  # every verdict names its test instead


@needs_real_data
def test_cnn_notebook_computes_where_grad_cam_looks(fast_run):
    nb = read(fast_run / "notebooks" / "cnn-baseline.ipynb")
    text = "\n".join(str(o) for c in nb.cells for o in c.get("outputs", []))
    sentence = re.search(
        r"Over 500 test images, Grad-CAM's mass against area is highest on", text
    )
    assert sentence, "the sentence is computed over the fast run's 500 test images"
    assert "| edge band " in text  # the table the sentence reads, with its control
    assert "control: mask's ratio" in text
    assert "Grad-CAM shows the network reading silhouettes" not in text
