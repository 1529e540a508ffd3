"""The tested floor: Colab's stack of mid-2025, as ``requirements-compat.txt`` pins it.

``make test-compat`` runs this file in ``.venv-compat``; in any other environment it
is skipped. The model notebooks run there in fast mode, and every model that
``make test``'s fast run saved in ``artifacts-fast/`` (under the pins) is loaded.
"""

from __future__ import annotations

import json
from importlib.metadata import version

import keras
import numpy as np
import pytest
from conftest import needs_real_data, run_python
from packaging.version import Version
from test_notebooks import MODEL_RUNS

from helpers import artifacts, data, predict

FLOOR = artifacts.pinned("requirements-compat.txt")
AT_FLOOR = all(
    Version(version(name)) == FLOOR[name] for name in ("tensorflow", "keras")
)
pytestmark = [
    needs_real_data,
    pytest.mark.skipif(not AT_FLOOR, reason="runs in .venv-compat: make test-compat"),
]
SAMPLES = sorted((artifacts.PROJECT_ROOT / "samples").glob("*.png"))
DEPLOYMENT = "08_deployment"


@pytest.fixture(scope="module")
def floor_run(tmp_path_factory):
    """The model notebooks and 08 in fast mode, run by the command line at the floor."""
    output = tmp_path_factory.mktemp("floor-run")
    command = ["-m", "helpers.pipeline", "--fast", "--only", *MODEL_RUNS, DEPLOYMENT]
    done = run_python(*command, "--output-dir", output, cwd=output, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    return output


def test_the_model_notebooks_run_at_the_floor(floor_run):
    for run in MODEL_RUNS:
        metrics = artifacts.read_json(floor_run / "metrics" / f"{run}.json")
        assert metrics["versions"]["keras"] == str(FLOOR["keras"])
        assert metrics["versions"]["tensorflow"] == str(FLOOR["tensorflow"])


def test_models_saved_at_the_floor_predict_as_they_did_when_saved(floor_run):
    x = data.load_splits(fast=True).x_test[..., np.newaxis].astype("float32")
    for run in MODEL_RUNS:
        model = predict.load_model(floor_run / "models" / f"{run}.keras")
        saved = np.load(floor_run / "predictions" / f"{run}.npy")
        ours = model.predict(x, verbose=0)
        metrics = artifacts.read_json(floor_run / "metrics" / f"{run}.json")
        if not metrics.get("test_time_averaging"):  # averaged views differ, rightly
            np.testing.assert_allclose(ours, saved, atol=1e-5)
    model = floor_run / "models" / "cnn-plus.keras"
    done = run_python(
        "-m", "helpers.predict", *SAMPLES, "--model", model, "--json", cwd=floor_run
    )
    assert done.returncode == 0, done.stderr
    assert [len(r["top_k"]) for r in json.loads(done.stdout)] == [3] * len(SAMPLES)


def test_models_saved_under_the_pins_load_or_name_both_kerases_in_one_line(tmp_path):
    fast_models = artifacts.default_output_dir(fast=True) / "models"
    paths = sorted(fast_models.glob("*.keras"))
    assert {path.stem for path in paths} >= set(MODEL_RUNS), "run make test first"
    for path in paths:
        saved = predict.saved_by(path)
        if Version(saved) <= Version(keras.version()):
            assert predict.load_model(path).output_shape == (None, 10)
            continue
        with pytest.raises(predict.ModelLoadError) as error:
            predict.load_model(path)
        assert str(error.value) == (
            f"{path}: saved by Keras {saved}, which Keras {keras.version()} (the one "
            f'installed) cannot read: pip install -U "keras>={saved}", or retrain in '
            "this environment"
        )
    newer = [
        p for p in paths if Version(predict.saved_by(p)) > Version(keras.version())
    ]
    if newer:  # the command line: one line, no traceback
        command = ["-m", "helpers.predict", SAMPLES[0], "--model", newer[0]]
        done = run_python(*command, cwd=tmp_path)
        assert (done.returncode, done.stdout) == (2, "")
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"error: {newer[0]}: saved by Keras "), line


def litert_probabilities(path, x):
    """Run a ``.tflite`` file on raw pixels ``x`` with ai_edge_litert, as a phone
    app would (int8 in and out quantised by the file's own scales)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=2)
    given = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(given["index"], x.shape)
    interpreter.allocate_tensors()
    scale, zero = given["quantization"]
    if given["dtype"] == np.int8:
        x = np.round(x / scale + zero).astype(np.int8)
    interpreter.set_tensor(given["index"], x)
    interpreter.invoke()
    taken = interpreter.get_output_details()[0]
    y = interpreter.get_tensor(taken["index"])
    scale, zero = taken["quantization"]
    return (y.astype(np.float32) - zero) * scale if scale else y


def test_08_exports_at_the_floor_by_the_saved_model_route(floor_run):
    record = artifacts.read_json(floor_run / "deployment.json")
    assert record["versions"]["keras"] == str(FLOOR["keras"])
    assert record["versions"]["ai-edge-litert"] == str(FLOOR["ai-edge-litert"])
    names = {row["file"] for row in record["files"]}
    assert names == {
        "cnn-baseline.tflite",
        "cnn-baseline-int8.tflite",
        "cnn-plus.tflite",
        "cnn-plus-int8.tflite",
        "cnn-plus-tta.tflite",
    }
    for row in record["files"]:
        assert (floor_run / "models" / f"{row['file']}.json").is_file()
        if row["precision"] == "float32":
            assert row["largest_difference"] < 1e-4, row["file"]


def test_tflite_files_made_under_the_pins_predict_the_same_at_the_floor():
    fast = artifacts.default_output_dir(fast=True)
    paths = sorted((fast / "models").glob("*.tflite"))
    assert len(paths) == 5, "run make test first"
    x = data.load_splits(fast=True).x_test[..., np.newaxis].astype("float32")
    for path in paths:
        pinned = np.load(fast / "predictions" / "litert" / f"{path.stem}.npy")
        here = litert_probabilities(path, x)
        step = 1 / 256 if path.stem.endswith("-int8") else 0  # one int8 step
        np.testing.assert_allclose(here, pinned, atol=step + 1e-5, err_msg=path.name)
