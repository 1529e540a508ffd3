"""Outputs are written atomically and read back by run name."""

from __future__ import annotations

import pytest

from helpers import artifacts


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = artifacts.write_json(tmp_path / "m.json", {"ok": 1})

    def interrupted_write():
        with artifacts.atomic_path(path) as tmp:
            tmp.write_text('{"half')
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_write()
    assert artifacts.read_json(path) == {"ok": 1}
    assert list(tmp_path.iterdir()) == [path]


def test_metrics_are_read_back_keyed_by_run(tmp_path):
    for run in ("cnn-baseline", "ann-baseline"):
        path = artifacts.artifact_path(tmp_path, "metrics", f"{run}.json")
        artifacts.write_json(path, {"run": run})
    runs = artifacts.load_run_metrics(tmp_path)
    assert list(runs) == ["ann-baseline", "cnn-baseline"]
    assert runs["cnn-baseline"] == {"run": "cnn-baseline"}


def test_unknown_artifact_kind_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="figures"):
        artifacts.artifact_path(tmp_path, "plots", "x.png")
