"""Checks of notebook parameters: a bad value stops the notebook before any work."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from helpers import artifacts

FAST_EPOCHS = 2  # the fast mode trains two epochs: enough to see the loss fall
MIN_FREE_MB = 100  # a full run writes about 30 MB (models, figures, PDFs)


class ParameterError(ValueError):
    """A notebook parameter or a command-line option has a value that is not allowed."""


def _fail(name: str, value: Any, allowed: str) -> ParameterError:
    return ParameterError(f"Parameter {name}={value!r} is not allowed: {allowed}.")


def show_input_errors_in_one_line() -> None:
    """In IPython, show ParameterError, DatasetError, OutputFolderError in one line."""
    from IPython import get_ipython

    from helpers.data import DatasetError  # here: data checks with this module

    def one_line(shell, etype, value, tb, tb_offset=None):  # ipykernel sends the line
        shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])

    if (shell := get_ipython()) is not None:
        errors = (ParameterError, DatasetError, artifacts.OutputFolderError)
        shell.set_custom_exc(errors, one_line)


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """Return ``value`` if it is an int in [``low``, ``high``] (bools are refused)."""
    if type(value) is bool or not isinstance(value, int) or not low <= value <= high:
        raise _fail(name, value, f"use a whole number from {low:,} to {high:,}")
    return value


def check_float(
    name: str, value: Any, low: float, high: float, low_allowed: bool = False
) -> float:
    """Return float(value) if low < value <= high (or low <= value with low_allowed)."""
    ok = isinstance(value, int | float) and type(value) is not bool
    if not (ok and low <= value <= high and (low_allowed or value != low)):  # no NaN
        above = "from" if low_allowed else "above"
        raise _fail(name, value, f"use a number {above} {low:g} up to {high:g}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is True or False."""
    if not isinstance(value, bool):
        raise _fail(name, value, "use True or False")
    return value


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``."""
    if value not in (allowed := tuple(allowed)):
        raise _fail(name, value, "use one of " + ", ".join(map(repr, allowed)))
    return value


def check_name(name: str, value: Any) -> str | None:
    r"""Return None, or ``value`` if it can name a run's files (``[\w-][\w.-]*``)."""
    if value is not None and not re.fullmatch(r"[\w-][\w.-]*", str(value), re.A):
        raise _fail(name, value, "use None or letters, digits, '-', '_' and '.'")
    return value


def _as_path(name: str, value: Any) -> Path | None:
    if value is None or (isinstance(value, str | os.PathLike) and str(value).strip()):
        return None if value is None else Path(value).expanduser()
    raise _fail(name, value, "use None or the path of a folder")


def check_folder(name: str, value: Any) -> Path | None:
    """Return None, or ``value`` as the Path of an existing folder."""
    if (path := _as_path(name, value)) is not None and not path.is_dir():
        what = "a file" if path.exists() else "missing"
        raise _fail(name, value, f"it is {what}; use None or an existing folder")
    return path


def check_output_dir(value: Any, fast: bool) -> Path:
    """Return the output folder, created, writable, with room and used by no other run;
    None means ``$FASHION_MNIST_OUTPUT_DIR`` if set, else ``artifacts[-fast]``."""
    name = "output_dir"
    value = os.environ.get(artifacts.OUTPUT_ENV) if value is None else value
    path = (_as_path(name, value) or artifacts.default_output_dir(fast)).resolve()
    if fast and path == artifacts.default_output_dir(False):
        raise _fail(name, value, "a fast run never writes to artifacts/")
    if path.exists() and not path.is_dir():
        raise _fail(name, value, "it is a file; use None or a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        raise _fail(name, value, f"cannot write to {path} ({err.strerror})") from None
    if (free_mb := shutil.disk_usage(path).free / 2**20) < MIN_FREE_MB:
        room = f"only {free_mb:.0f} MB free in {path}; a run needs {MIN_FREE_MB} MB"
        raise _fail(name, value, room)
    artifacts.check_not_in_use(path)
    return path


def check_run(seed: Any, fast: Any, data_dir: Any, output_dir: Any) -> Path:
    """Check the parameters every notebook has; return the output folder."""
    check_int("seed", seed, 0, 2**32 - 1)
    check_bool("fast", fast)
    check_folder("data_dir", data_dir)
    return check_output_dir(output_dir, fast)


def check_training(epochs: Any, batch_size: Any, learning_rate: Any) -> None:
    """Check the parameters every model notebook has."""
    check_int("epochs", epochs, 1, 1000)
    check_int("batch_size", batch_size, 1, 10_000)
    check_float("learning_rate", learning_rate, 0.0, 1.0)
