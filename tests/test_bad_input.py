"""Bad input at every entry point gets one line naming the culprit, before any work.

The three entry points are the notebooks' parameters, the data loader's arguments
and the predict command line (with the pipeline's own options). Most cases call
the code in-process; the ``user_*`` tests run the way users do, through papermill
or as a command, and check that no traceback reaches them.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import papermill
import pytest
from conftest import run_python
from test_predict import dense_model

from helpers import data, parameters, predict, runner


@pytest.fixture
def places(tmp_path):
    """Paths a student might pass by mistake: a file, a missing and an empty folder."""
    (tmp_path / "notes.txt").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    return {
        "file": str(tmp_path / "notes.txt"),
        "missing": str(tmp_path / "no" / "such" / "folder"),
        "empty": str(tmp_path / "empty"),
        "out": str(tmp_path / "out"),
    }


def fill(value, places):
    return value.format(**places) if isinstance(value, str) else value


def one_line(message: str) -> str:
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message
    return message


# --- notebook parameters: each notebook's own check cell, run as it is written ------


def check_cell(notebook: str) -> tuple[str, str]:
    """Return the notebook's parameters cell and the code cell that checks them."""
    cells = nbformat.read(runner.NOTEBOOK_DIR / notebook, as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    i = next(
        i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])
    )
    return code[i].source, code[i + 1].source


NOTEBOOK_CASES = [
    ("02_ann.ipynb", "epochs", 0),
    ("02_ann.ipynb", "epochs", "10"),
    ("02_ann.ipynb", "epochs", 2.5),
    ("02_ann.ipynb", "epochs", 10**6),
    ("02_ann.ipynb", "batch_size", -1),
    ("02_ann.ipynb", "batch_size", True),
    ("02_ann.ipynb", "learning_rate", float("inf")),
    ("02_ann.ipynb", "learning_rate", float("nan")),
    ("02_ann.ipynb", "learning_rate", 0),
    ("02_ann.ipynb", "learning_rate", "1e-3"),
    ("02_ann.ipynb", "variant", "dropuot"),
    ("03_cnn.ipynb", "variant", ""),
    ("03_cnn.ipynb", "seed", -1),
    ("03_cnn.ipynb", "seed", 2**32),
    ("03_cnn.ipynb", "seed", 4.2),
    ("03_cnn.ipynb", "fast", "yes"),
    ("03_cnn.ipynb", "data_dir", "{file}"),
    ("03_cnn.ipynb", "data_dir", "{missing}"),
    ("03_cnn.ipynb", "data_dir", ""),
    ("04_cnn_plus.ipynb", "output_dir", "{file}"),
    ("04_cnn_plus.ipynb", "output_dir", ""),
    ("04_cnn_plus.ipynb", "label_smoothing", 0.7),
    ("04_cnn_plus.ipynb", "label_smoothing", -0.1),
    ("04_cnn_plus.ipynb", "augment", 1),
    ("04_cnn_plus.ipynb", "flips", "sometimes"),
    ("04_cnn_plus.ipynb", "bn_bias_lr", 0.5),
    ("05_comparison.ipynb", "seed", None),
    ("01_eda.ipynb", "output_dir", 42),
    ("06_published_recipes.ipynb", "recipe", "keras"),
    ("06_published_recipes.ipynb", "split", "head"),
    ("06_published_recipes.ipynb", "seed", "1"),
    ("07_replication.ipynb", "fast", "no"),
    ("08_deployment.ipynb", "timed_calls", 0),
    ("08_deployment.ipynb", "threads", -1),
    ("08_deployment.ipynb", "calibration_images", 2.5),
    ("08_deployment.ipynb", "output_dir", "{empty}"),  # no trained models in it
]


@pytest.mark.parametrize(("notebook", "name", "value"), NOTEBOOK_CASES)
def test_bad_notebook_parameter_is_named_in_one_line(notebook, name, value, places):
    defaults, check = check_cell(notebook)
    namespace = {"parameters": parameters, "data": data}
    exec(defaults, namespace)
    namespace |= {"output_dir": places["out"], name: fill(value, places)}
    with pytest.raises(parameters.ParameterError) as error:
        exec(check, namespace)
    message = one_line(str(error.value))
    assert message.startswith(f"Parameter {name}={fill(value, places)!r} ")
    assert "not allowed: " in message


def test_bn_bias_learning_rate_on_keras_without_multioptimizer(places):
    defaults, check = check_cell("04_cnn_plus.ipynb")
    old_keras = SimpleNamespace(optimizers=SimpleNamespace(), __version__="3.10.0")
    namespace = {"parameters": parameters, "data": data, "keras": old_keras}
    exec(defaults, namespace)
    namespace |= {"output_dir": places["out"], "bn_bias_lr": 64}
    with pytest.raises(parameters.ParameterError) as error:
        exec(check, namespace)
    message = one_line(str(error.value))
    assert message.startswith("Parameter bn_bias_lr=64 is not allowed: ")
    assert "Keras 3.15 or later" in message
    assert "3.10.0" in message


# --- the data loader ----------------------------------------------------------------


def write_truncated_files(folder: str) -> None:
    for spec in data.FASHION_MNIST_FILES:
        Path(folder, spec.name).write_bytes(b"\x00\x00\x08\x01")


LOADER_CASES = [
    ({"data_dir": "{file}"}, "notes.txt (data_dir) is a file, not a folder"),
    ({"data_dir": "{missing}"}, "folder (data_dir) does not exist"),
    ({"data_dir": "{empty}"}, "train-images-idx3-ubyte(.gz) is missing from"),
    ({"data_dir": 5}, "data_dir=5 is not a folder path"),
    ({"data_dir": ""}, "data_dir='' is not a folder path"),
    ({"seed": "42"}, "seed='42' is not allowed"),
    ({"seed": -3}, "seed=-3 is not allowed"),
    ({"val_size": 0}, "val_size=0 is not allowed"),
    ({"val_size": 60_000}, "val_size=60000 is not allowed"),
    ({"fast": "no"}, "fast='no' is not allowed"),
    ({"env": "{file}"}, "(FASHION_MNIST_DIR) is a file, not a folder"),
    ({"truncated": "{empty}"}, "is truncated: 4 bytes"),
]


@pytest.mark.parametrize(("arguments", "named"), LOADER_CASES)
def test_bad_loader_argument_is_named_in_one_line(
    arguments, named, places, isolated_search, monkeypatch
):
    arguments = {key: fill(value, places) for key, value in arguments.items()}
    if "env" in arguments:
        monkeypatch.setenv(data.ENV_VAR, arguments.pop("env"))
    if "truncated" in arguments:
        write_truncated_files(arguments["truncated"])
        arguments["data_dir"] = arguments.pop("truncated")
    with pytest.raises((ValueError, data.DatasetError)) as error:
        data.load_splits(**arguments)
    assert named in one_line(str(error.value))


# --- predict, in-process ------------------------------------------------------------


def tiny_model(path: Path, lambda_layer: bool = False) -> Path:
    dense_model(lambda_layer=lambda_layer).save(path)
    return path


PREDICT_CASES = [
    (["{file}", "--model", "{missing}.keras"], "model file not found"),
    (["{file}", "--model", "{empty}"], "a folder, not a model file"),
    (["{file}", "--model", "{file}"], "notes.txt: not a .keras file"),
    (["{file}", "--model", "{empty}/old.h5"], "a legacy HDF5 model"),
    (["{file}", "--output-dir", "{file}"], "is a file, not a folder; run `make run`"),
    (["{file}", "--output-dir", "{missing}"], "does not exist; run `make run`"),
    (["{file}", "--top-k", "0"], "argument --top-k: invalid choice: 0"),
    (["{file}", "--top-k", "3.5"], "argument --top-k: invalid int value: '3.5'"),
    (["--model", "{file}"], "the following arguments are required: IMAGE"),
    (["{file}", "--model", ""], "argument --model: an empty path"),
    (["{file}", "--output-dir", " "], "argument --output-dir: an empty path"),
]


@pytest.mark.parametrize(("args", "message"), PREDICT_CASES)
def test_bad_predict_option_is_one_line(args, message, places, capsys):
    Path(places["empty"], "old.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    assert predict.main([fill(arg, places) for arg in args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in one_line(err)
    assert err.startswith("error: ")


# --- as users meet them: papermill, the pipeline and predict as commands -----------


USER_NOTEBOOK_CASES = [
    ("02_ann.ipynb", {"learning_rate": float("inf")}, "learning_rate=inf"),
    ("03_cnn.ipynb", {"data_dir": "{file}"}, "data_dir="),
    ("04_cnn_plus.ipynb", {"epochs": "ten"}, "epochs='ten'"),
    ("01_eda.ipynb", {"output_dir": "{file}"}, "output_dir="),
]


@pytest.mark.parametrize(("notebook", "overrides", "named"), USER_NOTEBOOK_CASES)
def test_user_papermill_run_with_a_bad_parameter_stops_in_one_line(
    notebook, overrides, named, places, tmp_path
):
    overrides = {k: fill(v, places) for k, v in overrides.items()}
    executed = tmp_path / "executed.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as error:
        papermill.execute_notebook(
            runner.NOTEBOOK_DIR / notebook,
            executed,
            parameters={"output_dir": places["out"], **overrides},
            progress_bar=False,
            cwd=runner.NOTEBOOK_DIR,
        )
    assert error.value.ename == "ParameterError"
    assert named in error.value.evalue
    failed = [
        output
        for cell in nbformat.read(executed, as_version=4).cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    (cell,) = [
        c
        for c in nbformat.read(executed, as_version=4).cells
        if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert "parameters.check_" in cell.source  # it stopped at the check cell
    (traceback,) = [output["traceback"] for output in failed]
    assert len(traceback) == 1  # the one line, no traceback frames
    assert f"ParameterError: Parameter {named}" in traceback[0]
    assert not Path(places["out"], "checkpoints").exists()  # no work was started


PIPELINE_CASES = [
    (["--fast", "--output-dir", "{file}"], "output_dir="),
    (["--fast", "--data-dir", "{missing}"], "data_dir="),
    (["--only", "cnn-plsu"], "unknown run(s) cnn-plsu"),
    (["--fast", "--workers", "0"], "--workers 0: give 1 or more"),
    (
        ["--fast", "--output-dir", "{out}", "--scheduler", "tcp://127.0.0.1:9"],
        "--scheduler tcp://127.0.0.1:9: no Dask scheduler answers",
    ),
]


@pytest.mark.parametrize(("args", "named"), PIPELINE_CASES)
def test_user_pipeline_option_is_refused_before_any_notebook(
    args, named, places, tmp_path
):
    done = run_python(
        "-m", "helpers.pipeline", *[fill(a, places) for a in args], cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stdout == ""  # no notebook started
    assert named in one_line(done.stderr)


BAD_IMAGES = {  # one command names each bad image on its own line
    "{empty}": "a folder, not an image file",
    "{file}": "not an image (Pillow cannot identify it)",
    "{missing}.png": "file not found",
}


def test_user_predict_command_names_each_bad_image(places, tmp_path):
    model = tiny_model(tmp_path / "tiny.keras")
    args = [fill(arg, places) for arg in BAD_IMAGES]
    done = run_python("-m", "helpers.predict", *args, "--model", model, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == len(BAD_IMAGES)
    for line, arg, message in zip(lines, args, BAD_IMAGES.values(), strict=True):
        assert line == f"error: {arg}: {message}"


def test_user_predict_command_refuses_a_lambda_model_by_safe_mode(places, tmp_path):
    model = tiny_model(tmp_path / "lambda.keras", lambda_layer=True)
    image = tmp_path / "shirt.png"
    from PIL import Image

    Image.fromarray(np.full((40, 30), 200, np.uint8)).save(image)
    done = run_python("-m", "helpers.predict", image, "--model", model, cwd=tmp_path)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert str(model) in line
    assert "Lambda" in line
    assert "safe_mode" in line
