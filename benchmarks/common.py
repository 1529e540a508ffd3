"""What every benchmark shares: the machine description and where results go."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

from helpers.artifacts import library_versions, write_json
from helpers.pipeline import HEADLESS_ENV

RESULTS_DIR = Path(__file__).resolve().parent / "results"
os.environ.setdefault(HEADLESS_ENV, "1")  # one log line per epoch, no progress bars


def describe_machine() -> str:
    """One line naming the CPU, its core count and the TensorFlow device in use."""
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(
                line.split(":", 1)[1].strip()
                for line in info
                if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    gpus = tf.config.list_physical_devices("GPU")
    device = f"{len(gpus)} GPU(s)" if gpus else "CPU only"
    return f"{cpu}, {os.cpu_count()} cores, {device}"


def command_line(name: str) -> str:
    """The command that is running benchmark ``name``, as it was typed."""
    return "python -m benchmarks." + name + " " + shlex.join(sys.argv[1:])


def save_results(name: str, record: dict[str, Any], output: Path | None) -> Path:
    """Write ``record`` with the command, machine and versions to a JSON file."""
    record = {
        "command": command_line(name),
        "machine": describe_machine(),
        "versions": library_versions(),
        **record,
    }
    return write_json(output or RESULTS_DIR / f"{name}.json", record)


def print_table(rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    """Print ``rows`` as an aligned text table; ``columns`` maps key -> format."""
    cells = [[fmt.format(row[key]) for key, fmt in columns.items()] for row in rows]
    widths = [
        max(len(key), *(len(line[i]) for line in cells))
        for i, key in enumerate(columns)
    ]
    print("  ".join(key.rjust(w) for key, w in zip(columns, widths, strict=True)))
    for line in cells:
        print("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))
