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


def check_float(name: str, value: Any, minimum: float = 0.0) -> float:
    """Return ``value`` as a float if it is a real number > ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > minimum
    ):
        raise ValueError(
            f"Parameter {name}={value!r} is not allowed: use a number > {minimum}."
        )
    return float(value)


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


def check_training_parameters(
    variants: Iterable[str],
    variant: Any,
    epochs: Any,
    batch_size: Any,
    learning_rate: Any,
    seed: Any,
    fast: Any,
    data_dir: Any,
) -> None:
    """Check the parameters every modelling notebook shares; raise on the first bad one.

    Args:
        variants: The known variants of the notebook's model.
        variant, epochs, batch_size, learning_rate, seed, fast, data_dir: The
            notebook's parameters.
    """
    check_choice("variant", variant, variants)
    check_int("epochs", epochs, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_float("learning_rate", learning_rate)
    check_int("seed", seed)
    check_bool("fast", fast)
    check_optional_dir("data_dir", data_dir, must_exist=True)


def check_batch_size(batch_size: int, train_size: int) -> int:
    """Return ``batch_size`` if it is at most the number of training images."""
    if batch_size > train_size:
        raise ValueError(
            f"Parameter batch_size={batch_size!r} is not allowed: use at most the "
            f"{train_size:,} training images."
        )
    return batch_size
