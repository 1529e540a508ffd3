"""Inference speed of the saved models of the last run.

Usage::

    python -m benchmarks.speed [--output-dir artifacts] [--output FILE]

Loads the ``<output-dir>/models/<run>.keras`` of every run of ``make run`` (not the
replication's) with plain Keras and times, on the test images, milliseconds per
image at batch size 1 (median of 200 calls) and images per second at batch size
1,024 (best of three passes). Both depend on the machine:
compare models measured in one call, as ratios. Writes ``results/speed.json``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from helpers import artifacts, data

RESULTS = Path(__file__).parent / "results" / "speed.json"


def time_model(model, x: np.ndarray) -> dict[str, float]:
    """Return ms per image at batch size 1 (median of 200 calls) and images per
    second at batch size 1,024 (best of three passes)."""
    model.predict_on_batch(x[:1])  # trace once
    single = []
    for i in range(200):
        start = time.perf_counter()
        model.predict_on_batch(x[i : i + 1])
        single.append(time.perf_counter() - start)
    passes = []  # the best of three passes over the test images
    for _ in range(3):
        start = time.perf_counter()
        model.predict(x, batch_size=1024, verbose=0)
        passes.append(time.perf_counter() - start)
    throughput = len(x) / min(passes)
    return {"ms_per_image": 1000 * float(np.median(single)), "images_per_s": throughput}


def main() -> None:
    """Time every saved model and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output-dir", type=Path, default=artifacts.default_output_dir()
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    import keras

    x = data.load_splits().x_test[..., np.newaxis].astype(np.float32)
    rows = []
    for run in artifacts.load_runs(args.output_dir):  # not the replication runs
        path = args.output_dir / "models" / f"{run}.keras"
        model = keras.saving.load_model(path)
        rows.append(
            {"run": path.stem, "params": model.count_params(), **time_model(model, x)}
        )
        print(
            f"{path.stem:14} {rows[-1]['ms_per_image']:7.3f} ms/image "
            f"{rows[-1]['images_per_s']:10,.0f} images/s"
        )
    if not rows:
        raise SystemExit(f"No models in {args.output_dir / 'models'}: run `make run`.")
    machine = {"machine": platform.machine(), **artifacts.environment()}
    artifacts.write_json(args.output, {**machine, "rows": rows})


if __name__ == "__main__":
    main()
