"""mnlib/_checks.py: the one home of mnlib's argument checks (every module words a bad argument alike)."""
from __future__ import annotations

import math

import pytest

from mnlib._checks import check_int, check_number, check_positive_int


@pytest.mark.parametrize("value", [1, 7, 2**40])
def test_positive_int_accepts(value):
    assert check_positive_int("n", value) == value


@pytest.mark.parametrize("value", [0, -1, True, 1.0, "3", None])
def test_positive_int_refuses_naming_the_argument(value):
    with pytest.raises(ValueError, match=rf"^n must be a positive integer, got {value!r} in layer$"):
        check_positive_int("n", value, "layer")


def test_int_with_a_lower_bound():
    assert check_int("warmup", 0, 0) == 0
    for bad in (-1, False, 0.0):
        with pytest.raises(ValueError, match=rf"^warmup must be an integer >= 0, got {bad!r}$"):
            check_int("warmup", bad, 0)


@pytest.mark.parametrize("kwargs, good, bad, words", [
    ({}, [1e-9, 3, 2.5], [0, 0.0, -1, math.nan, True, "1", None], "must be a number > 0"),
    ({"inclusive": True}, [0, 0.0, 4], [-1e-9, math.nan, False], "must be a number >= 0"),
    ({"none_ok": True}, [None, 0.5], [0, -2.0, "x"], "must be a number > 0 or None"),
    ({"low": 1, "inclusive": True}, [1, 1.5], [0.999], "must be a number >= 1"),
])
def test_number(kwargs, good, bad, words):
    for v in good:
        assert check_number("x", v, **kwargs) is v
    for v in bad:
        with pytest.raises(ValueError) as info:
            check_number("x", v, **kwargs)
        assert str(info.value) == f"x {words}, got {v!r}"
