"""08_deployment: the LiteRT copies of the CNNs, their sidecars and their measures.

The tests read the shared fast run (``fast_run``), whose 08 exported the fast models.
"""

from __future__ import annotations

import hashlib
import json

import nbformat
import numpy as np
import pytest
from conftest import needs_real_data

from helpers import artifacts, data, pipeline, runner, stats

SHIPPED = ("cnn-baseline", "cnn-plus")
ROUTES = ["model.predict", "compiled", "LiteRT float32", "LiteRT int8"]


def deployment(fast_run) -> dict:
    return artifacts.read_json(fast_run / "deployment.json")


def files(fast_run) -> dict[str, dict]:
    return {row["file"]: row for row in deployment(fast_run)["files"]}


def averaged(fast_run) -> bool:
    metrics = artifacts.read_json(fast_run / "metrics" / "cnn-plus.json")
    return metrics["test_time_averaging"]


@needs_real_data
def test_08_writes_each_models_copies_with_sidecars_an_app_can_use_alone(fast_run):
    expected = {f"{run}{kind}.tflite" for run in SHIPPED for kind in ("", "-int8")}
    expected |= {"cnn-plus-tta.tflite"}  # whether 04 chose it or not
    assert set(files(fast_run)) == expected
    y_test = data.load_splits(fast=True).y_test
    for name, row in files(fast_run).items():
        path = fast_run / "models" / name
        sidecar = artifacts.read_json(f"{path}.json")
        assert sidecar["classes"] == list(data.CLASS_NAMES)
        assert sidecar["run"] in SHIPPED
        assert sidecar["views"] == (10 if name.endswith("-tta.tflite") else 1)
        assert sidecar["input"]["shape"] == ["n", 28, 28, 1]
        assert sidecar["output"]["shape"] == ["n", 10]
        int8 = name.endswith("-int8.tflite")
        assert sidecar["input"]["dtype"] == ("int8" if int8 else "float32")
        assert sidecar["input"]["range"] == ([-128, 127] if int8 else [0, 255])
        if int8:  # pixel - 128 exactly; the softmax in steps of 1/256
            assert (sidecar["input"]["scale"], sidecar["input"]["zero_point"]) == (
                1.0,
                -128,
            )
            assert sidecar["output"]["scale"] == pytest.approx(1 / 256)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert sidecar["sha256"] == row["sha256"] == digest
        saved = np.load(fast_run / "predictions" / "litert" / f"{path.stem}.npy")
        accuracy = (saved.argmax(1) == y_test).mean()
        assert sidecar["test_accuracy"] == row["test_accuracy"] == accuracy


@needs_real_data
def test_the_copies_sizes_are_ordered_and_int8_is_under_three_tenths(fast_run):
    record, sizes = deployment(fast_run), files(fast_run)
    for run in SHIPPED:
        keras_bytes = (fast_run / "models" / f"{run}.keras").stat().st_size
        assert record["keras"][run]["bytes"] == keras_bytes
        f32, int8 = (
            sizes[f"{run}.tflite"]["bytes"],
            sizes[f"{run}-int8.tflite"]["bytes"],
        )
        assert keras_bytes > f32 > int8
        assert int8 <= 0.3 * f32


@needs_real_data
def test_float32_copies_compute_what_the_keras_graphs_compute(fast_run):
    for name, row in files(fast_run).items():
        assert 0 <= row["agreement"] <= 1
        assert row["ci_low"] <= row["test_accuracy"] <= row["ci_high"]
        if row["precision"] == "float32":
            assert row["largest_difference"] < 1e-4, name
            assert row["agreement"] >= 0.998, name
    # the Keras graphs give the predictions their notebooks saved: 04's averaged
    # ones where it chose to average
    saved = deployment(fast_run)["saved_difference"]
    assert set(saved) == {"cnn-baseline", f"cnn-plus{'-tta' * averaged(fast_run)}"}
    assert max(saved.values()) < 1e-5
    if averaged(fast_run):  # and the averaged file gives 04's reported accuracy
        reported = artifacts.read_json(fast_run / "metrics" / "cnn-plus.json")
        tta = files(fast_run)["cnn-plus-tta.tflite"]["test_accuracy"]
        assert tta == pytest.approx(reported["test_accuracy"], abs=0.001)


@needs_real_data
def test_mcnemar_compares_each_int8_copy_with_its_keras_model_holm_adjusted(fast_run):
    tests = deployment(fast_run)["mcnemar"]
    assert [t["pair"] for t in tests] == [
        f"{run} (Keras) vs {run}-int8.tflite" for run in SHIPPED
    ]
    assert all(0 <= t["p_value"] <= 1 for t in tests)
    adjusted = stats.holm([t["p_value"] for t in tests])
    np.testing.assert_allclose([t["p (Holm)"] for t in tests], adjusted)
    nb = nbformat.read(fast_run / "notebooks" / "08_deployment.ipynb", 4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells], ensure_ascii=False)
    assert "McNemar's exact test, Holm-adjusted over 2 int8 copies" in text


@needs_real_data
def test_every_route_is_timed_and_set_beside_predict_and_the_compiled_call(fast_run):
    record = deployment(fast_run)
    assert record["timed_calls"] == 200
    assert record["threads"] >= 1
    assert "ai-edge-litert" in record["versions"]
    assert record["matmul_peak_macs_per_second"] > 0
    speed = record["speed"]
    graphs = [
        "cnn-baseline",
        "cnn-plus",
        "cnn-plus-tta",
    ]
    assert list(dict.fromkeys(row["graph"] for row in speed)) == graphs
    for graph in graphs:
        rows = {row["route"]: row for row in speed if row["graph"] == graph}
        assert list(rows) == ROUTES[: 3 if graph.endswith("-tta") else 4]
        assert rows["model.predict"]["vs_predict"] == 1
        assert rows["compiled"]["vs_compiled"] == 1
        for row in rows.values():
            assert 0 < row["median_ms"] <= row["p99_ms"]
            assert row["images_per_second"] > 0
            assert row["utilisation"] > 0
            assert row["utilisation"] < 1 or row["route"] == "LiteRT int8"
            assert row["vs_compiled"] == pytest.approx(
                row["median_ms"] / rows["compiled"]["median_ms"]
            )


LITERT_NOISE = ("XNNPACK", "tf.lite.Interpreter", "deprecated", "fully_quantize")


@needs_real_data
def test_no_converter_or_interpreter_line_reaches_the_notebook(fast_run):
    nb = nbformat.read(fast_run / "notebooks" / "08_deployment.ipynb", 4)
    for k, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", f"cell {k}: {output}"
            shown = json.dumps(output)
            assert not [word for word in LITERT_NOISE if word in shown], f"cell {k}"


def test_08_reruns_when_a_model_it_ships_changes_and_only_then(tmp_path):
    run = next(run for run in pipeline.RUNS if run.name == "08_deployment")
    order = [r.name for r in pipeline.RUNS]
    assert order.index("cnn-plus") < order.index("08_deployment")
    assert order.index("08_deployment") < order.index("05_comparison")
    for name in run.reads:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("trained")
    (tmp_path / "metrics" / "ann-baseline.json").write_text("{}")
    before = runner.fingerprint(run, {}, tmp_path)
    (tmp_path / "metrics" / "ann-baseline.json").write_text('{"retrained": 1}')
    assert runner.fingerprint(run, {}, tmp_path) == before
    (tmp_path / "models" / "cnn-plus.keras").write_text("retrained")
    assert runner.fingerprint(run, {}, tmp_path) != before


@needs_real_data
def test_the_report_quotes_the_deployment_measures(fast_run):
    nb = nbformat.read(fast_run / "notebooks" / "report.ipynb", 4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells], ensure_ascii=False)
    record = deployment(fast_run)
    for row in record["files"]:
        low, high = row["ci_low"], row["ci_high"]
        assert f"{row['test_accuracy']:.2%} ({low:.2%}–{high:.2%})" in text, row
    assert "exact test (Holm-adjusted over 2 int8 copies, p =" in text
    for graph in ("cnn-baseline", "cnn-plus", "cnn-plus-tta"):
        assert f"- {graph}, one image: LiteRT float32 takes" in text
