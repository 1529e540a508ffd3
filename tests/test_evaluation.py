"""Evaluation helpers on hand-made inputs with answers computed by hand."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest

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
