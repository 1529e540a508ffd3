"""Speed of every model variant on the real data: training and inference.

Usage::

    python -m benchmarks.speed [--variants ann-baseline cnn-plus ...]
                               [--train-images 50000] [--output FILE]

For each variant: training images per second over one epoch of the training split
(after a short warm-up fit that traces the graph), inference milliseconds per image
at batch size 1 and images per second at batch size 1024. Writes
``benchmarks/results/speed.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import print_table, save_results
from helpers import data, evaluation, models, training

COLUMNS = {
    "variant": "{}",
    "params": "{:,}",
    "train_images_per_s": "{:,.0f}",
    "epoch_seconds": "{:.1f}",
    "inference_ms_per_image": "{:.3f}",
    "throughput_images_per_s": "{:,.0f}",
}


def all_variants() -> list[str]:
    """Every registered variant, as ``model-variant``."""
    return [
        f"{model}-{variant}"
        for model, variants in models.MODEL_VARIANTS.items()
        for variant in variants
    ]


def measure_variant(name: str, splits: data.Splits, seed: int = 42) -> dict:
    """Time one epoch of training and the inference of one variant."""
    kind, variant = name.split("-", 1)
    recipe = models.get_recipe(kind, variant)
    x_train, _, x_test = data.prepare_inputs(splits, kind)
    build = models.build_ann if kind == "ann" else models.build_cnn
    training.seed_everything(seed)
    model = build(variant)
    warm = recipe.batch_size * 4
    fit = {"batch_size": recipe.batch_size, "epochs": 1, "verbose": 0}
    model.fit(x_train[:warm], splits.y_train[:warm], **fit)
    start = time.perf_counter()
    model.fit(
        x_train, splits.y_train, batch_size=recipe.batch_size, epochs=1, verbose=0
    )
    seconds = time.perf_counter() - start
    return {
        "variant": name,
        "params": int(model.count_params()),
        "batch_size": recipe.batch_size,
        "train_images": len(x_train),
        "epoch_seconds": seconds,
        "train_images_per_s": len(x_train) / seconds,
        **evaluation.measure_inference(model, x_test),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed")
    parser.add_argument("--variants", nargs="+", default=all_variants())
    parser.add_argument("--train-images", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.variants) - set(all_variants()))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {all_variants()}")
    splits = data.load_splits()
    if args.train_images:
        splits = splits.subset(args.train_images, len(splits.y_val))
    rows = []
    for name in args.variants:
        rows.append(measure_variant(name, splits))
        print(f"{name}: {rows[-1]['epoch_seconds']:.1f} s per epoch", flush=True)
    path = save_results("speed", {"rows": rows}, args.output)
    print_table(rows, COLUMNS)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
