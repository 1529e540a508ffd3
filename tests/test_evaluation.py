"""Evaluation helpers on hand-made inputs with answers computed by hand."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest
from scipy import stats

from helpers import data, evaluation


def test_mean_image_distances_by_hand():
    means = np.zeros((3, 2, 2))
    means[1] = 1.0  # RMS distance to class 0: 1
    means[2, 0, 0] = 2.0  # to class 0: sqrt(4/4) = 1; to class 1: sqrt((1+1+1+1)/4) = 1
    means[2, 0, 1] = 1.0  # now to 0: sqrt(5/4); to 1: sqrt((1+0+1+1)/4) = sqrt(3/4)
    d = evaluation.mean_image_distances(means)
    assert d[0, 1] == pytest.approx(1.0)
    assert d[0, 2] == pytest.approx(np.sqrt(5 / 4))
    assert d[1, 2] == pytest.approx(np.sqrt(3 / 4))
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_allclose(np.diag(d), 0)


def test_closest_class_pairs_nearest_first():
    d = np.array([[0, 3, 1], [3, 0, 2], [1, 2, 0]], float)
    pairs = evaluation.closest_class_pairs(d, k=2, class_names=["a", "b", "c"])
    assert pairs == [("a", "c", 1.0), ("b", "c", 2.0)]


# Three classes, six images: 0->0, 0->1, 1->1, 1->1, 2->0, 2->2.
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 0, 2])
CM = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
ABC = ["a", "b", "c"]


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    cm = evaluation.confusion_matrix(Y_TRUE, Y_PRED, num_classes=3)
    np.testing.assert_array_equal(cm, CM)
    assert cm.dtype == np.int64
    ten = evaluation.confusion_matrix([6, 6, 4], [4, 4, 6])
    assert ten.shape == (10, 10)
    assert ten[6, 4] == 2  # Shirt predicted as Coat twice
    assert ten[4, 6] == 1
    assert ten.sum() == 3


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([0, 1, 2], [0, 1], "differ in length"),
        ([0, 1, 3], [0, 1, 2], r"y_true has labels in \[0, 3\]"),
        ([0, 1, 2], [0, -1, 2], r"y_pred has labels in \[-1, 2\]"),
        ([0.0, 1.0], [0, 1], "integer labels"),
    ],
    ids=["lengths", "too-large", "negative", "floats"],
)
def test_confusion_matrix_rejects_bad_labels_with_a_clear_message(
    y_true, y_pred, message
):
    with pytest.raises(ValueError, match=message):
        evaluation.confusion_matrix(y_true, y_pred, num_classes=3)


def test_per_class_metrics_by_hand():
    metrics = evaluation.per_class_metrics(CM, class_names=ABC)
    assert list(metrics) == ABC
    # precision = diagonal / column sum (2, 3, 1); recall = diagonal / row sum (2 each)
    expected = {
        "a": {"precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "support": 2},
        "b": {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2},
        "c": {"precision": 1.0, "recall": 1 / 2, "f1": 2 / 3, "support": 2},
    }
    for name, values in expected.items():
        got = metrics[name]
        assert got["precision"] == pytest.approx(values["precision"])
        assert got["recall"] == pytest.approx(values["recall"])
        assert got["f1"] == pytest.approx(values["f1"])
        assert got["accuracy"] == pytest.approx(values["recall"])  # right / support
        assert got["support"] == values["support"]
        assert isinstance(got["support"], int)


def test_per_class_metrics_zero_division_gives_zero_without_warnings():
    cm = evaluation.confusion_matrix([0, 0], [0, 1], num_classes=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = evaluation.per_class_metrics(cm, class_names=ABC)
    # b is predicted once but never right; c never occurs and is never predicted.
    assert metrics["b"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "accuracy": 0.0,
        "support": 0,
    }
    assert metrics["c"]["precision"] == metrics["c"]["f1"] == 0.0
    assert metrics["a"]["precision"] == 1.0
    assert metrics["a"]["recall"] == 0.5


def test_most_confused_pairs_largest_first_ties_in_index_order():
    pairs = evaluation.most_confused_pairs(CM, k=5, class_names=ABC)
    # Two mistakes of one image each: a->b (row 0) comes before c->a (row 2);
    # the zero cells are not mistakes and are left out.
    assert pairs == [
        {"true": "a", "predicted": "b", "count": 1, "rate": 0.5},
        {"true": "c", "predicted": "a", "count": 1, "rate": 0.5},
    ]
    cm = np.array([[5, 1, 3], [2, 9, 3], [0, 4, 6]])
    pairs = evaluation.most_confused_pairs(cm, k=3, class_names=ABC)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("c", "b", 4),
        ("a", "c", 3),
        ("b", "c", 3),
    ]
    assert pairs[0]["rate"] == pytest.approx(4 / 10)
    assert pairs[1]["rate"] == pytest.approx(3 / 9)


def test_named_pair_counts_read_true_to_predicted_cells():
    cm = np.zeros((10, 10), dtype=np.int64)
    cm[6, 4] = 7  # Shirt -> Coat
    cm[2, 6] = 5  # Pullover -> Shirt
    cm[6, 0] = 3  # Shirt -> T-shirt/top
    cm[4, 6] = 100  # Coat -> Shirt: the other direction, not asked for
    assert evaluation.named_pair_counts(cm) == {
        "Shirt->Coat": 7,
        "Pullover->Shirt": 5,
        "Shirt->T-shirt/top": 3,
    }
    assert evaluation.named_pair_counts(cm, pairs=[("Coat", "Shirt")]) == {
        "Coat->Shirt": 100
    }
    with pytest.raises(ValueError, match="'Jacket'"):
        evaluation.named_pair_counts(cm, pairs=[("Jacket", "Coat")])


def test_summarize_predictions_by_hand_and_json_ready():
    probs = np.full((6, 3), 0.1)
    probs[np.arange(6), Y_PRED] = 0.8
    summary = evaluation.summarize_predictions(Y_TRUE, probs, class_names=ABC)
    assert summary["test_accuracy"] == pytest.approx(4 / 6)
    assert summary["macro_precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert summary["macro_recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert summary["macro_f1"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    assert summary["confusion_matrix"] == CM.tolist()
    assert summary["per_class"] == evaluation.per_class_metrics(CM, ABC)
    assert summary["most_confused"] == evaluation.most_confused_pairs(CM, 5, ABC)
    assert summary["literature_pairs"] == {}  # none of the pairs' classes exist
    assert json.loads(json.dumps(summary)) == summary


def test_summarize_predictions_on_ten_classes_counts_literature_pairs():
    y_true = np.array([6, 6, 2, 0, 1])
    y_pred = np.array([4, 6, 6, 0, 1])
    probs = np.eye(10, dtype=np.float32)[y_pred]
    summary = evaluation.summarize_predictions(y_true, probs)
    assert summary["test_accuracy"] == pytest.approx(3 / 5)
    assert summary["literature_pairs"] == {
        "Shirt->Coat": 1,
        "Pullover->Shirt": 1,
        "Shirt->T-shirt/top": 0,
    }
    assert list(summary["per_class"]) == list(data.CLASS_NAMES)
    text = json.dumps(summary)  # numpy scalars would raise here
    assert json.loads(text)["confusion_matrix"][6][4] == 1
    with pytest.raises(ValueError, match=r"shape \(n, 10\)"):
        evaluation.summarize_predictions(y_true, probs[:, :9])


class FakeModel:
    """Records the batches it is given; optionally sleeps like a slow model."""

    def __init__(self, seconds_per_call: float = 0.0):
        self.seconds_per_call = seconds_per_call
        self.batches: list[np.ndarray] = []

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(x)
        if self.seconds_per_call:
            time.sleep(self.seconds_per_call)
        return np.zeros((len(x), 10), dtype=np.float32)


def test_measure_inference_calls_single_images_then_the_whole_batch():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) * np.ones((28, 28, 1))
    model = FakeModel()
    result = evaluation.measure_inference(
        model, x, batch_sizes=(1, 1024), repeats=(4, 3), warmup=2
    )
    assert set(result) == {
        "inference_ms_per_image",
        "throughput_images_per_s",
        "inference_batch_sizes",
    }
    assert result["inference_ms_per_image"] > 0
    assert result["throughput_images_per_s"] > 0
    assert result["inference_batch_sizes"] == [1, 10]  # only 10 images to give
    shapes = [b.shape for b in model.batches]
    assert shapes == [(1, 28, 28, 1)] * (2 + 4) + [(10, 28, 28, 1)] * (2 + 3)
    assert [b[0, 0, 0, 0] for b in model.batches[:6]] == [0, 1, 2, 3, 4, 5]
    json.dumps(result)


def test_measure_inference_reports_milliseconds_and_images_per_second():
    x = np.zeros((8, 28, 28), dtype=np.float32)
    model = FakeModel(seconds_per_call=0.002)
    result = evaluation.measure_inference(
        model, x, batch_sizes=(1, 4), repeats=3, warmup=0
    )
    assert len(model.batches) == 3 + 3  # an int repeats counts for both sizes
    assert result["inference_batch_sizes"] == [1, 4]
    assert result["inference_ms_per_image"] >= 2.0  # each call sleeps 2 ms
    assert result["throughput_images_per_s"] <= 4 / 0.002
    with pytest.raises(ValueError, match="no images"):
        evaluation.measure_inference(model, x[:0])


def test_cross_entropy_by_hand():
    probs = np.array([[0.5, 0.5], [0.25, 0.75]])
    # -(ln 0.5 + ln 0.75) / 2
    expected = -(np.log(0.5) + np.log(0.75)) / 2
    assert evaluation.cross_entropy(np.array([0, 1]), probs) == pytest.approx(expected)
    assert evaluation.cross_entropy(
        np.array([1]), np.array([[1.0, 0.0]])
    ) == pytest.approx(-np.log(1e-7))  # clipped like Keras, never infinite


def test_describe_run_renders_the_numbers_of_the_record():
    y = np.repeat(np.arange(10), 10)
    probs = np.eye(10)[y]
    probs[:5] = np.eye(10)[6]  # five T-shirts predicted as Shirt
    scores = evaluation.summarize_predictions(y, probs)
    record = {
        "run": "cnn-x",
        "params": 1234,
        "epochs_run": 3,
        "train_seconds": 12.0,
        "seconds_per_epoch": 4.0,
        "best_val_accuracy": 0.9,
        "best_epoch": 2,
        "inference_ms_per_image": 0.5,
        "throughput_images_per_s": 1000.0,
        "inference_batch_sizes": [1, 1024],
        **scores,
    }
    text = evaluation.describe_run(record)
    assert "**0.9500**" in text  # 95 of 100 right
    assert "1,234 parameters" in text
    assert "T-shirt/top predicted as Shirt (5 test images, 50.0% of that class)" in text
    assert "Shirt->T-shirt/top 0" in text
    assert "Fast mode" not in text
    assert "Fast mode" in evaluation.describe_run(
        {**record, "fast": True, "train_size": 10}
    )


# --- Comparing runs -------------------------------------------------------------


def paired(only_a: int, only_b: int, both: int, neither: int) -> tuple[np.ndarray, ...]:
    """Right/wrong arrays of two models with the given 2x2 table, images shuffled."""
    a = np.repeat([True, False, True, False], [only_a, only_b, both, neither])
    b = np.repeat([False, True, True, False], [only_a, only_b, both, neither])
    order = np.random.default_rng(only_a + 7 * only_b).permutation(len(a))
    return a[order], b[order]


def test_mcnemar_on_a_hand_made_table_matches_the_hand_value_and_binomtest():
    a, b = paired(only_a=1, only_b=5, both=3, neither=2)
    result = evaluation.mcnemar_exact(a, b)
    assert result["only_a"] == 1
    assert result["only_b"] == 5
    assert result["both"] == 3
    assert result["neither"] == 2
    assert result["n_discordant"] == 6
    assert result["statistic"] == 1
    # P(X <= 1) for X ~ Binomial(6, 1/2) is (1 + 6) / 64; two-sided doubles it.
    assert result["p_value"] == pytest.approx(2 * (1 + 6) / 64)
    assert result["p_value"] == pytest.approx(0.21875)
    assert result["p_value"] == pytest.approx(stats.binomtest(1, 6, 0.5).pvalue)


@pytest.mark.parametrize(
    ("only_a", "only_b"),
    [(0, 7), (3, 20), (10, 10), (11, 10), (120, 80), (346, 298), (1, 0)],
)
def test_mcnemar_p_value_agrees_with_scipy_binomtest(only_a, only_b):
    a, b = paired(only_a, only_b, both=50, neither=4)
    result = evaluation.mcnemar_exact(a, b)
    expected = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert result["p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert 0 < result["p_value"] <= 1.0


def test_mcnemar_without_discordant_images_gives_p_one():
    a, b = paired(only_a=0, only_b=0, both=8, neither=2)
    result = evaluation.mcnemar_exact(a, b)
    assert result["p_value"] == 1.0
    assert result["n_discordant"] == result["statistic"] == 0
    assert evaluation.mcnemar_exact(a, a)["p_value"] == 1.0


def test_mcnemar_is_symmetric_in_the_two_models():
    a, b = paired(only_a=4, only_b=15, both=30, neither=6)
    ab, ba = evaluation.mcnemar_exact(a, b), evaluation.mcnemar_exact(b, a)
    assert ab["p_value"] == ba["p_value"]
    assert (ab["only_a"], ab["only_b"]) == (ba["only_b"], ba["only_a"]) == (4, 15)
    assert ab["both"] == ba["both"]
    assert ab["neither"] == ba["neither"]


def test_mcnemar_rejects_unpaired_or_non_boolean_inputs():
    with pytest.raises(ValueError, match="same images: 3 != 2"):
        evaluation.mcnemar_exact(np.ones(3, bool), np.ones(2, bool))
    with pytest.raises(ValueError, match="True/False"):
        evaluation.mcnemar_exact(np.array([0.5, 1.0]), np.ones(2, bool))
    with pytest.raises(ValueError, match=">= 0"):
        evaluation.mcnemar_exact_p_value(-1, 3)
    # 0/1 integers are read as right/wrong.
    assert evaluation.mcnemar_exact(np.array([1, 0]), np.array([0, 0]))["only_a"] == 1


def test_correct_predictions_compares_arg_max_with_labels():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    np.testing.assert_array_equal(
        evaluation.correct_predictions(np.array([0, 0, 0]), probs), [True, False, True]
    )
    with pytest.raises(ValueError, match="n = 2 labels"):
        evaluation.correct_predictions(np.array([0, 1]), probs)


def accuracy_of(n: int, accuracy: float = 0.9) -> np.ndarray:
    """bool (n,) with exactly round(accuracy * n) True values, shuffled."""
    correct = np.arange(n) < round(accuracy * n)
    return np.random.default_rng(n).permutation(correct)


def test_bootstrap_interval_contains_the_accuracy_and_narrows_with_more_images():
    small = evaluation.bootstrap_accuracy_ci(accuracy_of(100), n_resamples=2000)
    large = evaluation.bootstrap_accuracy_ci(accuracy_of(10_000), n_resamples=2000)
    for low, high in (small, large):
        assert low < 0.9 < high
    assert large[1] - large[0] < (small[1] - small[0]) / 5  # ~sqrt(100) narrower


def test_bootstrap_interval_matches_the_binomial_quantiles():
    # The number right in a resample of n images is Binomial(n, accuracy), so the
    # percentile interval should be close to that distribution's quantiles / n.
    n = 10_000
    low, high = evaluation.bootstrap_accuracy_ci(accuracy_of(n), n_resamples=10_000)
    expected = stats.binom.ppf([0.025, 0.975], n, 0.9) / n
    assert low == pytest.approx(expected[0], abs=0.001)
    assert high == pytest.approx(expected[1], abs=0.001)
    assert high - low == pytest.approx(2 * 1.96 * np.sqrt(0.9 * 0.1 / n), rel=0.1)
    narrow = evaluation.bootstrap_accuracy_ci(accuracy_of(n), confidence=0.5)
    assert narrow[1] - narrow[0] < (high - low) / 2


def test_bootstrap_interval_is_reproducible_and_independent_of_chunking():
    correct = accuracy_of(1000, 0.8)
    first = evaluation.bootstrap_accuracy_ci(correct, n_resamples=3000, seed=3)
    assert evaluation.bootstrap_accuracy_ci(correct, n_resamples=3000, seed=3) == first
    assert evaluation.bootstrap_accuracy_ci(correct, n_resamples=3000, seed=4) != first
    chunked = evaluation.bootstrap_accuracy_ci(
        correct, n_resamples=3000, seed=3, max_chunk_elements=2500
    )
    assert chunked == first
    assert evaluation.bootstrap_accuracy_ci(np.ones(50, bool)) == (1.0, 1.0)


def test_bootstrap_rejects_bad_arguments():
    with pytest.raises(ValueError, match="confidence"):
        evaluation.bootstrap_accuracy_ci(accuracy_of(10), confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        evaluation.bootstrap_accuracy_ci(accuracy_of(10), n_resamples=0)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        evaluation.bootstrap_accuracy_ci(np.ones((2, 5), bool))


def test_bootstrap_cis_gives_every_run_an_interval_in_order():
    cis = evaluation.bootstrap_accuracy_cis(
        {"b": accuracy_of(500, 0.7), "a": accuracy_of(500, 0.9)}, n_resamples=500
    )
    assert list(cis) == ["b", "a"]
    assert cis["b"][1] < cis["a"][0]  # 0.7 and 0.9 on 500 images do not overlap


def test_pairwise_mcnemar_covers_every_pair_once():
    a, b = paired(only_a=2, only_b=30, both=60, neither=8)
    c = b.copy()
    c[np.flatnonzero(c)[:3]] = False  # c: b with three more mistakes
    pairs = evaluation.pairwise_mcnemar({"a": a, "b": b, "c": c})
    assert [(p["run_a"], p["run_b"]) for p in pairs] == [
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
    ]
    ab = pairs[0]
    assert ab["accuracy_a"] == pytest.approx(62 / 100)
    assert ab["accuracy_b"] == pytest.approx(90 / 100)
    assert ab["difference"] == pytest.approx(-0.28)
    assert (ab["only_a"], ab["only_b"]) == (2, 30)
    assert ab["p_value"] == pytest.approx(stats.binomtest(2, 32).pvalue)
    assert ab["significant"] is True
    bc = pairs[2]
    assert (bc["only_a"], bc["only_b"]) == (3, 0)
    assert bc["p_value"] == pytest.approx(0.25)  # 2 * (1/2)^3
    assert bc["significant"] is False
    assert evaluation.pairwise_mcnemar({"a": a}) == []
    with pytest.raises(ValueError, match="different numbers of test images"):
        evaluation.pairwise_mcnemar({"a": a, "short": b[:10]})


def test_confusion_difference_is_b_minus_a():
    cm_a = np.array([[8, 2], [3, 7]])
    cm_b = np.array([[10, 0], [4, 6]])
    diff = evaluation.confusion_difference(cm_a, cm_b)
    np.testing.assert_array_equal(diff, [[2, -2], [1, -1]])  # fixed 0->1, added 1->0
    assert diff.dtype == np.int64
    np.testing.assert_array_equal(diff.sum(axis=1), 0)
    with pytest.raises(ValueError, match="equal in shape"):
        evaluation.confusion_difference(cm_a, np.eye(3))


def record(run: str, accuracy: float, f1: dict[str, float], **extra) -> dict:
    """A metrics record with the keys the comparison reads."""
    per_class = {name: {"f1": value} for name, value in f1.items()}
    return {"run": run, "test_accuracy": accuracy, "per_class": per_class, **extra}


F1 = {"Shirt": 0.6, "Coat": 0.8, "Bag": 0.95, "Trouser": 0.97}


def test_best_run_by_family_and_mean_class_f1():
    runs = {
        "ann-a": record("ann-a", 0.85, F1, model="ann"),
        "cnn-a": record("cnn-a", 0.91, F1, model="cnn"),
        "ann-b": record("ann-b", 0.87, {**F1, "Coat": 0.7}, model="ann"),
        "cnn-b": record("cnn-b", 0.91, F1),  # a tie: the first listed wins
    }
    assert evaluation.best_run_by_family(runs) == {"ann": "ann-b", "cnn": "cnn-a"}
    means = evaluation.mean_class_f1(runs)
    assert list(means)[:2] == ["Shirt", "Coat"]
    assert means["Coat"] == pytest.approx((0.8 * 3 + 0.7) / 4)


def comparison_of(only_best: int, only_other: int) -> tuple[dict, list]:
    """An ANN and a CNN run whose McNemar table has the given discordant counts."""
    cnn, ann = paired(only_a=only_best, only_b=only_other, both=900, neither=40)
    runs = {
        "ann-x": record("ann-x", float(ann.mean()), {**F1, "Shirt": 0.5}, model="ann"),
        "cnn-y": record("cnn-y", float(cnn.mean()), F1, model="cnn"),
    }
    return runs, evaluation.pairwise_mcnemar({"ann-x": ann, "cnn-y": cnn})


def test_describe_comparison_names_the_best_run_and_a_significant_margin():
    runs, pairs = comparison_of(only_best=40, only_other=10)
    p_value = pairs[0]["p_value"]
    assert p_value < 0.05
    text = evaluation.describe_comparison(runs, pairs, ci_by_run={"cnn-y": (0.9, 0.95)})
    assert "`cnn-y` (CNN) has the highest test accuracy of the 2 runs" in text
    assert f"**{runs['cnn-y']['test_accuracy']:.4f}**" in text
    assert "95% bootstrap CI 0.9000 to 0.9500" in text
    assert "Runner-up and best ANN" in text
    margin = 100 * (runs["cnn-y"]["test_accuracy"] - runs["ann-x"]["test_accuracy"])
    assert f"ahead by {margin:.2f} percentage points" in text
    assert "only `cnn-y` is right on 40 test images, only `ann-x` on 10" in text
    assert evaluation.format_p_value(p_value) in text
    assert "**significant** at the 0.05 level" in text
    assert "not significant" not in text
    assert "Shirt (0.550), Coat (0.800), Bag (0.950)" in text


def test_describe_comparison_says_not_significant_when_p_is_large():
    runs, pairs = comparison_of(only_best=12, only_other=10)
    assert pairs[0]["p_value"] >= 0.05
    text = evaluation.describe_comparison(runs, pairs)
    assert "**not significant** at the 0.05 level" in text
    assert "bootstrap CI" not in text  # no intervals given
    assert "**significant**" not in text


def test_describe_comparison_with_one_kind_or_one_run_says_what_is_missing():
    runs, pairs = comparison_of(only_best=40, only_other=10)
    cnns = {
        "cnn-y": runs["cnn-y"],
        "cnn-z": record("cnn-z", 0.5, F1, model="cnn", fast=True),
    }
    text = evaluation.describe_comparison(cnns, pairs)
    assert "Only CNN runs were found" in text
    assert "No paired predictions" in text  # cnn-z has no McNemar result
    assert "Fast mode" in text
    one = evaluation.describe_comparison({"ann-x": runs["ann-x"]}, [])
    assert "Only one run was found" in one
    assert "`ann-x` (ANN) reaches test accuracy" in one
    with pytest.raises(ValueError, match="no runs"):
        evaluation.describe_comparison({}, [])


def test_describe_comparison_with_many_runs_compares_runner_up_and_best_ann():
    runs, pairs = comparison_of(only_best=40, only_other=10)
    runs["cnn-w"] = record("cnn-w", runs["ann-x"]["test_accuracy"] + 0.001, F1)
    text = evaluation.describe_comparison(runs, pairs)
    assert "**Runner-up:** `cnn-w`" in text
    assert "**Best ANN:** `ann-x`" in text
    assert "of the 3 runs compared" in text


def test_test_time_averaging_averages_the_image_and_its_mirror():
    class LeftHalfBrightness:  # "probabilities" from the brightness of the left half
        def predict_on_batch(self, x):
            left = x[:, :, :14].mean(axis=(1, 2, 3))
            return np.stack([left, 1 - left], axis=1)

        def predict(self, x, batch_size=None, verbose=0):
            return self.predict_on_batch(x)

    x = np.zeros((2, 28, 28, 1), np.float32)
    x[0, :, :14] = 1.0  # bright left half: 1.0 plain, 0.0 mirrored
    averaged = evaluation.TestTimeAveraged(LeftHalfBrightness(), flip=True)
    np.testing.assert_allclose(averaged.predict(x), [[0.5, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(averaged.predict_on_batch(x), averaged.predict(x))
    plain = evaluation.TestTimeAveraged(LeftHalfBrightness(), flip=False)
    np.testing.assert_allclose(plain.predict(x), [[1.0, 0.0], [0.0, 1.0]])


def test_shifted_views_move_the_image_and_fill_with_background():
    x = np.zeros((1, 28, 28, 1), np.float32)
    x[0, 10, 20] = 1.0
    assert evaluation.shift_images(x, 1, 0)[0, 11, 20] == 1.0
    assert evaluation.shift_images(x, 0, -2)[0, 10, 18] == 1.0
    assert evaluation.shift_images(x, 0, 8).sum() == 0  # moved out of the frame
    views = evaluation.TestTimeAveraged(None, flip=True, shift=1).views(x)
    assert len(views) == 10
    assert sorted(np.argwhere(v[0, ..., 0])[0].tolist() for v in views[:5]) == [
        [9, 20],
        [10, 19],
        [10, 20],
        [10, 21],
        [11, 20],
    ]
    assert views[5][0, 10, 7] == 1.0  # the mirror of the unshifted view


def test_test_time_averaging_over_shifts_averages_every_view():
    class RowOfBrightest:  # "probabilities": is the brightest pixel in the top half?
        def predict_on_batch(self, x):
            top = x[:, :14].sum(axis=(1, 2, 3)) > 0
            return np.stack([top, ~top], axis=1).astype(np.float32)

        def predict(self, x, batch_size=None, verbose=0):
            return self.predict_on_batch(x)

    x = np.zeros((1, 28, 28, 1), np.float32)
    x[0, 13, 5] = 1.0  # one row above the middle: the "down" view crosses it
    averaged = evaluation.TestTimeAveraged(RowOfBrightest(), flip=False, shift=1)
    np.testing.assert_allclose(averaged.predict(x), [[0.8, 0.2]])
    np.testing.assert_allclose(averaged.predict_on_batch(x), [[0.8, 0.2]])
    with pytest.raises(ValueError, match="shift"):
        evaluation.TestTimeAveraged(RowOfBrightest(), shift=-1)
