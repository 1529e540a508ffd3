"""The ablation benchmark's bookkeeping: rows merge, older designs drop out."""

import dataclasses
import json

import pytest
from conftest import needs_real_data

from benchmarks import ablation
from helpers import artifacts, data, models


def row(change, epochs, accuracy=0.9, design=None):
    return {
        **dict.fromkeys(ablation.COLUMNS, 1),
        "change": change,
        "epochs": epochs,
        "val_accuracy": accuracy,
        "design": design or models.plus_design(),
    }


def test_a_new_row_replaces_the_same_change_and_epochs_and_keeps_the_rest():
    full, no_aug = list(ablation.ABLATIONS)[:2]
    old = [row(full, 13, 0.93), row(no_aug, 13, 0.92), row(full, 3, 0.90)]
    merged = ablation.merge_rows(old, [row(no_aug, 13, 0.95)])
    assert [(r["change"], r["epochs"], r["val_accuracy"]) for r in merged] == [
        (full, 13, 0.93),
        (no_aug, 13, 0.95),
        (full, 3, 0.90),
    ]


def test_rows_of_an_older_design_are_dropped():
    full = next(iter(ablation.ABLATIONS))
    merged = ablation.merge_rows([row(full, 3, design="0123456789ab")], [])
    assert merged == []


def test_the_design_hash_changes_with_the_recipe_and_the_bn_momentum(monkeypatch):
    before = models.plus_design()
    plus = models.CNN_VARIANTS["plus"]
    changed = dataclasses.replace(plus.recipe, epochs=99)
    monkeypatch.setitem(
        models.CNN_VARIANTS, "plus", dataclasses.replace(plus, recipe=changed)
    )
    assert models.plus_design() != before
    monkeypatch.undo()
    assert models.plus_design() == before
    monkeypatch.setattr(models, "PLUS_BN_MOMENTUM", 0.99)
    assert models.plus_design() != before


def test_main_merges_into_the_file_after_each_row(tmp_path, monkeypatch):
    full, no_aug = list(ablation.ABLATIONS)[:2]
    output = tmp_path / "ablation.json"
    output.write_text(json.dumps({"rows": [row(full, 2, 0.91)]}))
    monkeypatch.setattr(ablation.data, "load_splits", lambda seed: None)
    monkeypatch.setattr(
        ablation,
        "run_ablation",
        lambda change, splits, epochs, seed: {
            **dict.fromkeys(ablation.COLUMNS, 1),
            "change": change,
            "epochs": epochs,
        },
    )
    ablation.main(["--epochs", "2", "--only", no_aug, "--output", str(output)])
    rows = json.loads(output.read_text())["rows"]
    assert [(r["change"], r["epochs"]) for r in rows] == [(full, 2), (no_aug, 2)]
    assert rows[1]["command"].startswith("python -m benchmarks.ablation")


@pytest.mark.parametrize("text", ["", "{", '{"rows": 3}', '{"rows": [1, {"a": 2}]}'])
def test_an_unreadable_results_file_counts_as_no_rows(tmp_path, text):
    path = tmp_path / "ablation.json"
    path.write_text(text)
    assert artifacts.read_ablation_rows(path) == []


@needs_real_data
def test_one_ablation_row_trains_and_scores_on_the_validation_split():
    splits = data.load_splits(seed=42).subset(256, 128)
    row = ablation.run_ablation("wider stages (64/128)", splits, epochs=1, seed=42)
    assert set(row) == set(ablation.COLUMNS)
    assert row["change"] == "wider stages (64/128)"
    assert (row["epochs"], row["best_epoch"]) == (1, 1)
    for key in ("val_accuracy", "val_accuracy_tta"):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["seconds_per_epoch"] > 0
    assert row["params"] > models.build_cnn("plus").count_params()  # the change ran
