"""Argument checks shared by mnlib's modules: one wording for each kind of bad argument."""
from __future__ import annotations


def check_positive_int(name: str, value, where: str = "") -> int:
    """``value`` if it is an int > 0 (bool excluded), else ValueError naming ``name`` (and ``where``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        suffix = f" in {where}" if where else ""
        raise ValueError(f"{name} must be a positive integer, got {value!r}{suffix}")
    return value


def check_int(name: str, value, low: int) -> int:
    """``value`` if it is an int >= ``low`` (bool excluded), else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value
