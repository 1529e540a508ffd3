"""No Linux-only code on the import path: Jupyter on Windows and macOS imports the
same ``helpers`` (Windows has no ``fcntl``, neither has a ``/proc``)."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
from conftest import needs_real_data

from helpers import artifacts

LINUX_ONLY = ("/proc", "import fcntl", "SIGKILL", "statvfs", "sched_getaffinity")


def test_helpers_hold_no_linux_only_code():
    for path in sorted((artifacts.PROJECT_ROOT / "helpers").glob("*.py")):
        text = path.read_text()
        found = [pattern for pattern in LINUX_ONLY if pattern in text]
        assert not found, f"helpers/{path.name}: {found}"


@needs_real_data
def test_helpers_import_and_a_notebook_runs_where_fcntl_cannot_be_imported(tmp_path):
    blocker = tmp_path / "no-fcntl"
    blocker.mkdir()  # Python imports sitecustomize at start-up, kernels included
    (blocker / "sitecustomize.py").write_text(
        'import sys\nsys.modules["fcntl"] = None  # as on Windows\n'
    )
    path = os.pathsep.join([str(blocker), str(artifacts.PROJECT_ROOT)])
    env = {**os.environ, "PYTHONPATH": path}
    imports = (
        "import importlib, pkgutil, helpers\n"
        "try:\n    import fcntl\nexcept ImportError:\n    pass\n"
        "else:\n    raise SystemExit('fcntl was imported')\n"
        "for module in pkgutil.iter_modules(helpers.__path__):\n"
        "    importlib.import_module('helpers.' + module.name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", imports], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    output = tmp_path / "out"  # papermill as the Jupyter of a Windows user runs it
    notebook = artifacts.PROJECT_ROOT / "notebooks" / "02_ann.ipynb"
    command = ["-m", "papermill", notebook, tmp_path / "02_ann.ipynb", "-p", "fast"]
    command += ["True", "-p", "output_dir", output, "--cwd", notebook.parent]
    done = subprocess.run(
        [sys.executable, *map(str, command)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (output / "metrics" / "ann-baseline.json").is_file()
    # The kernel ran without fcntl too: filelock fell back to its soft lock there.
    notebook = nbformat.read(tmp_path / "02_ann.ipynb", 4)
    shown = [o.get("text", "") for c in notebook.cells for o in c.get("outputs", [])]
    assert any("only soft file lock is available" in text for text in shown)
