"""What each ingredient of cnn-plus buys, on the validation split only.

Usage::

    python -m benchmarks.ablation [--epochs N] [--only CHANGE ...] [--fast]

Runs ``notebooks/04_cnn_plus.ipynb`` through papermill once per row, each with one
parameter changed, and stops every run before the notebook's test-split section
(the cell tagged ``test-split``): the test images stay untouched. Each row records
the validation accuracy, plain and averaged over 10 views, the training compute
(``train_flops``), time and CPU share. Rows go to ``benchmarks/results/ablation.json``
(committed), replacing earlier rows of the same change and epochs; the 04 notebook
shows them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nbformat
import papermill

from benchmarks import head_commit, results_file
from helpers import artifacts, pipeline

RESULTS = Path(__file__).parent / "results" / "ablation.json"
# The one-ingredient rows change the recipe as it was before the 28x28 stem became
# its default (``stem="strided"``, 10 epochs), as they were measured.
ROWS = {
    "all ingredients": {"stem": "strided"},
    "no augmentation": {"stem": "strided", "augment": False},
    "no label smoothing": {"stem": "strided", "label_smoothing": 0.0},
    "peak learning rate 1e-3": {"stem": "strided", "learning_rate": 1e-3},
    "batch 256": {"stem": "strided", "batch_size": 256},
    "12 epochs": {"stem": "strided", "epochs": 12},
    "12 epochs, peak learning rate 5e-3": {
        "stem": "strided",
        "epochs": 12,
        "learning_rate": 5e-3,
    },
    "28x28 stem, 9 epochs": {"stem": "full", "epochs": 9},
    "28x28 stem, 11 epochs (the recipe)": {"stem": "full", "epochs": 11},
    "28x28 stem, batch 64, 10 epochs": {"stem": "full", "batch_size": 64, "epochs": 10},
}
# Appended to the truncated notebook: what the row records.
RECORD = """summary = training.summary()
artifacts.write_json(row_file, dict(
    val_accuracy=val_plain, val_accuracy_averaged=val_averaged,
    **{k: summary[k] for k in ("epochs_run", "train_seconds", "cpu_busy")},
    **training.cost(model, summary["epochs_run"])))"""


def validation_notebook() -> nbformat.NotebookNode:
    """The 04 notebook up to its test-split section, plus the recording cell."""
    nb = nbformat.read(pipeline.NOTEBOOK_DIR / "04_cnn_plus.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    nb.cells = nb.cells[: next(i for i, t in enumerate(tags) if "test-split" in t)]
    nb.cells.append(nbformat.v4.new_code_cell(RECORD))
    return nb


def main() -> None:
    """Run every row; the results file is rewritten after each row."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--only", nargs="+", metavar="CHANGE", choices=list(ROWS))
    parser.add_argument("--fast", action="store_true", help="tiny data (a check)")
    parser.add_argument(
        "--output", type=Path, help="default: results/ (--fast: artifacts-fast/)"
    )
    args = parser.parse_args()
    args.output = args.output or results_file(RESULTS, args.fast)
    commit = head_commit()
    rows = artifacts.read_json_if_exists(args.output) or []
    for change, parameters in ROWS.items():
        if args.only and change not in args.only:
            continue
        with tempfile.TemporaryDirectory() as folder:
            row_file = Path(folder) / "row.json"
            parameters = {"epochs": args.epochs, **parameters, "fast": args.fast}
            papermill.execute_notebook(
                validation_notebook(),
                Path(folder) / "run.ipynb",
                parameters={
                    **parameters,
                    "output_dir": folder,
                    "row_file": str(row_file),
                },
                progress_bar=False,
                cwd=pipeline.NOTEBOOK_DIR,
            )
            row = {"change": change, **parameters, **artifacts.read_json(row_file)}
        same = (change, parameters["epochs"], args.fast)
        rows = [r for r in rows if (r["change"], r["epochs"], r["fast"]) != same]
        rows.append({**row, "commit": commit})
        print(rows[-1], flush=True)
        artifacts.write_json(args.output, rows)


if __name__ == "__main__":
    main()
