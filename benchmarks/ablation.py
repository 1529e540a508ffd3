"""Ablation of the ``plus`` CNN: what each design choice buys, on the validation split.

Usage::

    python -m benchmarks.ablation [--epochs N] [--only NAME ...] [--output FILE]

Trains the ``plus`` recipe and variants that each switch one choice off, with the
same seed, split and number of epochs, and records validation accuracy (plain and
with the recipe's test-time averaging), epochs and seconds per epoch. The test split
is never touched. Writes ``benchmarks/results/ablation.json`` (read by
``04_cnn_plus.ipynb``) and prints a table. Each full-length row costs as much as the
``plus`` run itself; a shorter ``--epochs`` gives a cheaper, noisier ranking.

Rows are merged into the file: a run replaces the rows with the same change and
epochs and keeps the others, so rows can be recorded a few at a time (``--only``).
Each row names the command that made it and the ``plus`` design it was measured
against; rows of an older design are dropped.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import command_line, print_table, save_results
from helpers import artifacts, data, evaluation, models, training

PLUS = models.CNN_VARIANTS["plus"]
RECIPE = PLUS.recipe
# change -> (graph switches, recipe changes)
ABLATIONS: dict[str, tuple[dict, dict]] = {
    "plus (all choices)": ({}, {}),
    "no augmentation": ({"augment": False}, {}),
    "heavier augmentation (10% shifts, random erasing)": (
        {"translation": 0.1, "erasing": 0.25},
        {},
    ),
    "no residual shortcuts": ({"residual": False}, {}),
    "wider stages (64/128)": ({"widths": (64, 128)}, {}),
    "narrower stages (40/80)": ({"widths": (40, 80)}, {}),
    "Flatten + Dense 128 instead of global pooling": ({"global_pool": False}, {}),
    "no label smoothing": ({}, {"label_smoothing": 0.0}),
    "Adam 1e-3, constant rate (no one-cycle, no decay)": (
        {},
        {
            "optimizer": "adam",
            "weight_decay": 0.0,
            "schedule": "constant",
            "learning_rate": 1e-3,
        },
    ),
}
COLUMNS = {
    "change": "{}",
    "epochs": "{}",
    "params": "{:,}",
    "val_accuracy": "{:.4f}",
    "val_accuracy_tta": "{:.4f}",
    "best_epoch": "{}",
    "seconds_per_epoch": "{:.1f}",
}


def run_ablation(change: str, splits: data.Splits, epochs: int, seed: int) -> dict:
    """Train one row of the ablation and score it on the validation split."""
    switches, recipe_changes = ABLATIONS[change]
    recipe = dataclasses.replace(RECIPE, **recipe_changes)
    spec = models.Variant(models.plus_graph(**switches), recipe)
    x_train, x_val, _ = data.prepare_inputs(splits, "cnn")
    steps = math.ceil(len(x_train) / recipe.batch_size)

    def build():
        return models.build_variant(
            spec, "cnn_plus_ablation", epochs=epochs, steps_per_epoch=steps
        )

    result = training.train_model(
        build,
        (x_train, splits.y_train, x_val, splits.y_val),
        epochs=epochs,
        batch_size=recipe.batch_size,
        seed=seed,
        keep_best_weights=True,
        callbacks=training.recipe_callbacks(recipe),
    )
    plain = result.model.predict(x_val, batch_size=1024, verbose=0)
    averaged = evaluation.TestTimeAveraged(
        result.model, recipe.test_time_flip, recipe.test_time_shift
    ).predict(x_val)
    return {
        "change": change,
        "params": int(result.model.count_params()),
        "epochs": epochs,
        "best_epoch": result.best_epoch,
        "val_accuracy": evaluation.accuracy(splits.y_val, plain),
        "val_accuracy_tta": evaluation.accuracy(splits.y_val, averaged),
        "seconds_per_epoch": result.train_seconds / result.epochs_run,
    }


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """Rows of ``old`` for the current design that ``new`` does not replace, plus
    ``new``; longest runs first, then in the order of :data:`ABLATIONS`."""
    design = models.plus_design()
    replaced = {(row["change"], row["epochs"]) for row in new}
    kept = [
        row
        for row in old
        if row.get("design") == design
        and (row.get("change"), row.get("epochs")) not in replaced
    ]
    order = list(ABLATIONS)

    def position(row):
        change = row["change"]
        return -row["epochs"], order.index(change) if change in order else len(order)

    return sorted(kept + new, key=position)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ablation")
    parser.add_argument("--epochs", type=int, default=RECIPE.epochs)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", nargs="+", choices=list(ABLATIONS), default=None)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    output = args.output or artifacts.ablation_file()
    splits = data.load_splits(seed=args.seed)
    rows = []
    for change in args.only or ABLATIONS:
        row = run_ablation(change, splits, args.epochs, args.seed)
        rows.append(
            {**row, "design": models.plus_design(), "command": command_line("ablation")}
        )
        print(f"{change}: val accuracy {row['val_accuracy']:.4f}", flush=True)
        # merged with the file as it is now (another run may have added rows) and
        # written after every row, so an interrupted run keeps what it measured
        save_results(
            "ablation",
            {"rows": merge_rows(artifacts.read_ablation_rows(output), rows)},
            output,
        )
    print_table(merge_rows(artifacts.read_ablation_rows(output), rows), COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
