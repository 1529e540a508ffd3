"""Optional benchmarks: inference speed and the cnn-plus ablation."""

from pathlib import Path

from helpers import artifacts
from helpers.pipeline import head_commit  # noqa: F401  (recorded beside each result)


def results_file(committed: Path, fast: bool) -> Path:
    """Where a benchmark writes: its committed results file (a ``Path``), or with
    ``--fast`` (a check on tiny data) the same name in ``artifacts-fast/``, so that a
    check never overwrites a committed result."""
    return (
        artifacts.default_output_dir(fast=True) / committed.name if fast else committed
    )
