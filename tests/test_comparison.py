"""Loading runs back and tabulating them, on fake runs written to a temporary folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import artifacts, comparison, data, evaluation

Y_TEST = np.arange(200) % 10  # 20 test images per class
SEVEN_RUNS = (
    "ann-baseline",
    "ann-dropout",
    "cnn-baseline",
    "cnn-dropout",
    "cnn-plus",
    "cnn-bn",
    "cnn-deep",
)


def fake_probs(errors: int, seed: int = 0) -> np.ndarray:
    """float32 (200, 10) probabilities wrong on ``errors`` random test images."""
    rng = np.random.default_rng(seed)
    predicted = Y_TEST.copy()
    wrong = rng.choice(len(Y_TEST), size=errors, replace=False)
    predicted[wrong] = (predicted[wrong] + 1 + rng.integers(0, 9, errors)) % 10
    probs = np.full((len(Y_TEST), 10), 0.02, dtype=np.float32)
    probs[np.arange(len(Y_TEST)), predicted] = 0.82
    return probs


def fake_metrics(run: str, probs: np.ndarray, i: int = 0) -> dict:
    """A metrics record as ``artifacts.run_metrics`` writes it, with made-up costs."""
    return {
        "run": run,
        "model": run.split("-")[0],
        "params": 100_000 + 12_345 * i,
        "epochs_run": 10 + i,
        "train_seconds": 12.345 * (i + 1),
        "seconds_per_epoch": 12.345 * (i + 1) / (10 + i),
        "inference_ms_per_image": 0.5 + 0.1 * i,
        "throughput_images_per_s": 150_000.4 / (i + 1),
        "fast": False,
        **evaluation.summarize_predictions(Y_TEST, probs),
    }


def write_run(folder, run: str, errors: int, i: int = 0) -> dict:
    probs = fake_probs(errors, seed=i)
    metrics = fake_metrics(run, probs, i)
    artifacts.write_json(
        artifacts.artifact_path(folder, "metrics", f"{run}.json"), metrics
    )
    artifacts.save_array(
        artifacts.artifact_path(folder, "predictions", f"{run}.npy"), probs
    )
    return metrics


def test_load_runs_reads_metrics_and_predictions_ann_first(tmp_path):
    write_run(tmp_path, "cnn-baseline", errors=10, i=1)
    write_run(tmp_path, "ann-baseline", errors=30, i=0)
    runs = comparison.load_runs(tmp_path)
    assert [run.name for run in runs] == ["ann-baseline", "cnn-baseline"]
    assert runs[1].probabilities.shape == (200, 10)
    assert runs[1].probabilities.dtype == np.float32
    assert runs[1].metrics["run"] == "cnn-baseline"
    assert np.count_nonzero(runs[0].predicted != Y_TEST) == 30
    assert comparison.load_runs(tmp_path / "empty") == []


def test_load_runs_follows_a_given_order_then_kind_and_name(tmp_path):
    for i, run in enumerate(("cnn-plus", "cnn-bn", "ann-dropout", "alex-x", "cnn-a")):
        write_run(tmp_path, run, errors=5, i=i)
    order = [run.name for run in comparison.load_runs(tmp_path, order=["cnn-plus"])]
    assert order == [
        "cnn-plus",
        "ann-dropout",
        "cnn-a",
        "cnn-bn",
        "alex-x",
    ]  # other kinds last


def test_load_runs_skips_runs_without_usable_predictions_with_a_warning(tmp_path):
    write_run(tmp_path, "ann-baseline", errors=30)
    write_run(tmp_path, "cnn-missing", errors=10)
    (tmp_path / "predictions" / "cnn-missing.npy").unlink()
    write_run(tmp_path, "cnn-short", errors=10)
    artifacts.save_array(tmp_path / "predictions" / "cnn-short.npy", np.zeros((50, 10)))
    write_run(tmp_path, "cnn-garbled", errors=10)
    (tmp_path / "predictions" / "cnn-garbled.npy").write_bytes(b"not a numpy file")
    with pytest.warns(comparison.RunSkippedWarning) as caught:
        runs = comparison.load_runs(tmp_path)
    assert [run.name for run in runs] == ["ann-baseline"]
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 3
    assert "'cnn-garbled'" in messages[0]
    assert "cnn-missing.npy are missing" in messages[1]
    assert "(50, 10), expected float (200, 10)" in messages[2]


def test_correct_by_run_pairs_only_runs_scored_on_these_labels(tmp_path):
    write_run(tmp_path, "ann-baseline", errors=30)
    write_run(tmp_path, "cnn-baseline", errors=10, i=1)
    runs = comparison.load_runs(tmp_path)
    correct = comparison.correct_by_run(runs, Y_TEST)
    assert list(correct) == ["ann-baseline", "cnn-baseline"]
    assert correct["ann-baseline"].dtype == np.bool_
    assert correct["cnn-baseline"].sum() == 190
    other_labels = np.roll(Y_TEST, 1)  # e.g. a differently ordered test split
    with pytest.raises(ValueError, match=r"'ann-baseline'.*other test labels"):
        comparison.correct_by_run(runs, other_labels)
    with pytest.raises(ValueError, match="200 predictions for 199 test labels"):
        comparison.correct_by_run(runs, Y_TEST[:199])


def test_results_table_of_two_runs_reads_every_column_from_the_metrics():
    ann = fake_metrics("ann-baseline", fake_probs(30), 0)
    cnn = fake_metrics("cnn-baseline", fake_probs(10), 1)
    table = comparison.results_table({"ann-baseline": ann, "cnn-baseline": cnn})
    assert list(table.columns) == [
        "run",
        "parameters",
        "epochs run",
        "training time (s)",
        "time per epoch (s)",
        "test accuracy",
        "test loss",
        "macro F1",
        "inference (ms/image)",
        "throughput (images/s)",
    ]
    assert table["run"].tolist() == ["ann-baseline", "cnn-baseline"]
    row = table.iloc[1]
    assert row["parameters"] == cnn["params"]
    assert row["epochs run"] == 11
    assert row["training time (s)"] == pytest.approx(24.69)
    assert row["time per epoch (s)"] == pytest.approx(24.69 / 11)
    assert row["test accuracy"] == pytest.approx(190 / 200)
    assert row["test loss"] == pytest.approx(cnn["test_loss"])
    assert row["macro F1"] == pytest.approx(cnn["macro_f1"])
    assert row["inference (ms/image)"] == pytest.approx(0.6)
    assert row["throughput (images/s)"] == pytest.approx(75_000.2)
    without = {k: v for k, v in ann.items() if k != "seconds_per_epoch"}
    fallback = comparison.results_table({"ann-baseline": without})
    assert fallback["time per epoch (s)"][0] == pytest.approx(12.345 / 10)


def test_results_table_and_markdown_of_seven_runs_keep_the_given_order():
    metrics = {
        run: fake_metrics(run, fake_probs(5 * i, seed=i), i)
        for i, run in enumerate(SEVEN_RUNS)
    }
    table = comparison.results_table(metrics)
    assert table.shape == (7, 10)
    assert table["run"].tolist() == list(SEVEN_RUNS)
    assert table["test accuracy"].tolist() == [1 - 5 * i / 200 for i in range(7)]
    lines = comparison.results_markdown(metrics).splitlines()
    assert len(lines) == 2 + 7
    assert lines[0].startswith("| run | parameters | epochs run |")
    assert lines[1].split("|")[2].strip().endswith(":")  # numbers right-aligned
    assert lines[1].split("|")[1].strip() == "-" * len("ann-baseline")
    cells = [cell.strip() for cell in lines[-1].strip("|").split("|")]
    assert cells == [
        "cnn-deep",
        "174,070",
        "16",
        "86.4",
        "5.40",
        "0.8500",
        f"{metrics['cnn-deep']['test_loss']:.4f}",
        f"{metrics['cnn-deep']['macro_f1']:.4f}",
        "1.100",
        "21,429",
    ]


def test_to_markdown_escapes_pipes_and_leaves_missing_values_blank():
    frame = pd.DataFrame({"name": ["a|b", "c"], "value": [1.5, np.nan]})
    lines = comparison.to_markdown(frame, {"value": "{:.2f}"}).splitlines()
    assert lines == [
        "| name | value |",
        "| ---- | ----: |",
        r"| a\|b | 1.50 |",
        "| c |  |",
    ]


def test_per_class_f1_table_has_classes_down_and_runs_across():
    metrics = {
        "ann-baseline": fake_metrics("ann-baseline", fake_probs(30), 0),
        "cnn-baseline": fake_metrics("cnn-baseline", fake_probs(10), 1),
    }
    table = comparison.per_class_f1_table(metrics)
    assert table.shape == (10, 2)
    assert table.index.tolist() == list(data.CLASS_NAMES)
    assert table.columns.tolist() == ["ann-baseline", "cnn-baseline"]
    shirt = metrics["cnn-baseline"]["per_class"]["Shirt"]["f1"]
    assert table.loc["Shirt", "cnn-baseline"] == shirt


def test_statistics_tables_show_intervals_and_mcnemar_results():
    correct = {
        "ann-baseline": fake_probs(30).argmax(1) == Y_TEST,
        "cnn-baseline": fake_probs(10, seed=1).argmax(1) == Y_TEST,
    }
    metrics = {run: {"test_accuracy": float(c.mean())} for run, c in correct.items()}
    cis = evaluation.bootstrap_accuracy_cis(correct, n_resamples=500)
    ci_table = comparison.accuracy_ci_table(metrics, cis)
    assert ci_table.columns.tolist() == ["run", "test accuracy", "CI low", "CI high"]
    assert (ci_table["CI low"] < ci_table["test accuracy"]).all()
    assert (ci_table["test accuracy"] < ci_table["CI high"]).all()
    pairs = evaluation.pairwise_mcnemar(correct)
    table = comparison.mcnemar_table(pairs)
    assert table.shape == (1, 7)
    row = table.iloc[0]
    assert row["accuracy A - B (points)"] == pytest.approx(-10.0)
    assert (row["only A right"], row["only B right"]) == (
        pairs[0]["only_a"],
        pairs[0]["only_b"],
    )
    assert row["significant"] == ("yes" if pairs[0]["p_value"] < 0.05 else "no")
    text = comparison.to_markdown(table, comparison.MCNEMAR_FORMATS)
    assert "| ann-baseline | cnn-baseline | -10.00 |" in text
