"""Optional benchmarks: inference speed, the cnn-plus ablation and seeds."""

import subprocess
from pathlib import Path

from helpers import artifacts


def head_commit() -> str:
    """The short hash of the checked-out commit, recorded beside each result."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip()


def results_file(committed: Path, fast: bool) -> Path:
    """Where a benchmark writes: its committed results file (a ``Path``), or with
    ``--fast`` (a check on tiny data) the same name in ``artifacts-fast/``, so that a
    check never overwrites a committed result."""
    return (
        artifacts.default_output_dir(fast=True) / committed.name if fast else committed
    )
