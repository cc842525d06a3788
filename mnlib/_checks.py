"""Argument checks shared by mnlib's modules: one wording for each kind of bad argument."""
from __future__ import annotations

import numbers


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


def check_number(name: str, value, *, low: float = 0.0, inclusive: bool = False, none_ok: bool = False):
    """``value`` if it is a real number (int, float or a numpy scalar of either; bool excluded) above ``low`` (or equal to it,
    with ``inclusive``), or None with ``none_ok``; else ValueError naming ``name``: "must be a number
    > 0", ">= 0", "... or None". NaN is no number here (every comparison with it is False)."""
    if value is None and none_ok:
        return value
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and (value >= low if inclusive else value > low))
    if not ok:
        raise ValueError(f"{name} must be a number {'>=' if inclusive else '>'} {low:g}"
                         f"{' or None' if none_ok else ''}, got {value!r}")
    return value
