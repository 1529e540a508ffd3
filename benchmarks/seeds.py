"""Is cnn-plus's test accuracy a lucky seed? Its recipe at seeds 42, 43 and 44.

Usage::

    python -m benchmarks.seeds [--seeds N ...] [--reuse METRICS_JSON] [--fast]

Runs ``notebooks/04_cnn_plus.ipynb`` through papermill once per seed, with the
parameters ``make run`` gives it, each into its own temporary folder, and records
each seed's test and validation accuracy, training compute and CPU share, with the
mean and standard deviation of the test accuracy, in ``benchmarks/results/seeds.json``
(committed; rewritten after each seed). The 04 notebook shows it. ``--reuse
artifacts/metrics/cnn-plus.json`` takes the seed ``make run`` trained from its
metrics instead of training it again.
"""

from __future__ import annotations

import argparse
import ast
import tempfile
from pathlib import Path

import pandas as pd
import papermill

from benchmarks import head_commit, results_file
from helpers import artifacts, pipeline

RESULTS = Path(__file__).parent / "results" / "seeds.json"
KEPT = ("test_accuracy", "val_accuracy", "val_accuracy_averaged", "train_images")
KEPT += ("epochs_run", "forward_macs", "train_flops", "train_seconds", "cpu_busy")
RECIPE = ("epochs", "batch_size", "learning_rate", "label_smoothing", "augment", "stem")


def main() -> None:
    """Run every seed; the results file is rewritten after each one."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--fast", action="store_true", help="tiny data (a check)")
    parser.add_argument(
        "--output", type=Path, help="default: results/ (--fast: artifacts-fast/)"
    )
    parser.add_argument("--reuse", type=Path, help="a finished run's metrics JSON")
    args = parser.parse_args()
    args.output = args.output or results_file(RESULTS, args.fast)
    run = next(run for run in pipeline.RUNS if run.name == "cnn-plus")
    reused = artifacts.read_json(args.reuse) if args.reuse else {}
    notebook = papermill.inspect_notebook(str(pipeline.NOTEBOOK_DIR / run.notebook))
    recipe = {k: ast.literal_eval(notebook[k]["default"]) for k in RECIPE}
    if reused and {k: reused.get(k) for k in RECIPE} != recipe:
        parser.error(f"{args.reuse} is not a run of cnn-plus's recipe {recipe}")
    commit = head_commit()
    rows = []
    for seed in args.seeds:
        if reused.get("seed") == seed and reused.get("fast") == args.fast:
            metrics = reused  # make run trained this seed already
        else:
            with tempfile.TemporaryDirectory() as folder:
                papermill.execute_notebook(
                    pipeline.NOTEBOOK_DIR / run.notebook,
                    Path(folder) / "run.ipynb",
                    parameters={**run.parameters, "seed": seed, "fast": args.fast}
                    | {"output_dir": folder},
                    progress_bar=False,
                    cwd=pipeline.NOTEBOOK_DIR,
                )
                metrics = artifacts.read_json(Path(folder) / "metrics/cnn-plus.json")
        rows.append({"seed": seed, **{k: metrics.get(k) for k in KEPT}})
        rows[-1]["from"] = "make run" if metrics is reused else "this benchmark"
        accuracy = pd.Series([row["test_accuracy"] for row in rows])
        std = accuracy.std() if len(rows) > 1 else None  # ddof 1
        summary = dict(mean=accuracy.mean(), std=std, seeds=len(rows))
        summary |= dict(min=accuracy.min(), max=accuracy.max())
        record = dict(run=run.name, commit=commit, fast=args.fast)
        record |= dict(test_accuracy=summary, rows=rows)
        artifacts.write_json(args.output, record)
        print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
