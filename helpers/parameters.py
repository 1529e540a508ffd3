"""Checks for notebook parameters: a bad value stops the notebook at once.

Each check raises ``ValueError`` naming the parameter, the value given and what is
allowed, so a papermill run fails at the cell after the parameters cell.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """Return ``value`` if it is an int >= ``minimum`` (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"Parameter {name}={value!r} is not allowed: use an integer >= {minimum}."
        )
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is True or False."""
    if not isinstance(value, bool):
        raise ValueError(
            f"Parameter {name}={value!r} is not allowed: use True or False."
        )
    return value


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(
            f"Parameter {name}={value!r} is not allowed: use one of "
            f"{', '.join(repr(a) for a in allowed)}."
        )
    return value


def check_optional_dir(name: str, value: Any, must_exist: bool) -> Path | None:
    """Return ``value`` as a Path or None; ``must_exist`` requires the folder."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ValueError(
            f"Parameter {name}={value!r} is not allowed: use None or a folder path."
        )
    path = Path(value).expanduser()
    if must_exist and not path.is_dir():
        raise ValueError(
            f"Parameter {name}={value!r} is not allowed: the folder does not exist. "
            "Use None (search the default places) or an existing folder."
        )
    return path
