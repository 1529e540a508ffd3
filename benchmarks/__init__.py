"""Optional benchmarks: inference speed, the cnn-plus ablation and seeds."""

import subprocess


def head_commit() -> str:
    """The short hash of the checked-out commit, recorded beside each result."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip()
