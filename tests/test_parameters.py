"""Parameter checks: one line naming the parameter, the value and what is allowed."""

from __future__ import annotations

import math

import pytest

from helpers import parameters


@pytest.mark.parametrize(
    ("check", "value", "named"),
    [
        (lambda v: parameters.check_float("learning_rate", v, 0, 1), math.inf, "inf"),
        (lambda v: parameters.check_float("learning_rate", v, 0, 1), math.nan, "nan"),
        (lambda v: parameters.check_float("learning_rate", v, 0, 1), 0, "0"),
        (lambda v: parameters.check_float("learning_rate", v, 0, 1), "1e-3", "'1e-3'"),
        (lambda v: parameters.check_float("label_smoothing", v, 0, 0.5), True, "True"),
        (lambda v: parameters.check_int("epochs", v, 1, 1000), 2.0, "2.0"),
        (lambda v: parameters.check_int("epochs", v, 1, 1000), True, "True"),
        (lambda v: parameters.check_int("seed", v, 0, 2**32 - 1), -1, "-1"),
        (lambda v: parameters.check_bool("fast", v), "False", "'False'"),
        (lambda v: parameters.check_choice("variant", v, ["a", "b"]), "c", "'c'"),
        (
            lambda v: parameters.check_folder("data_dir", v),
            "/no/such/folder",
            "missing",
        ),
        (lambda v: parameters.check_folder("data_dir", v), __file__, "a file"),
        (lambda v: parameters.check_output_dir(v, False), __file__, "it is a file"),
    ],
)
def test_a_bad_value_is_refused_in_one_line_naming_it(check, value, named):
    with pytest.raises(ValueError, match="is not allowed") as err:
        check(value)
    assert named in str(err.value)
    assert "\n" not in str(err.value)


def test_good_values_pass_through():
    assert parameters.check_float("label_smoothing", 0, 0, 0.5, low_allowed=True) == 0
    assert parameters.check_float("label_smoothing", 0.5, 0, 0.5) == 0.5
    assert parameters.check_int("epochs", 10, 1, 1000) == 10
    assert parameters.check_folder("data_dir", None) is None
