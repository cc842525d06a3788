"""The Pareto frontier of a set of trade-offs: the points that no other point beats on every count.

A network A *dominates* a network B when A is at least as good as B on every objective and
strictly better on at least one (cheaper or equally cheap, and more or equally accurate, not
both equal). The non-dominated set is the Pareto frontier: for any point off it there is a point
on it that is no worse in every respect. Exact ties are kept: two identical points do not
dominate each other, so both are on the frontier or neither is.

``non_dominated`` works in any number of objectives: sort the points lexicographically (a
dominating point always comes before the points it dominates), then keep a point exactly when no
point already kept dominates it. Checking against the kept points suffices: domination is
transitive, so whatever dominates a point is itself dominated by, or is, a kept point.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_points(points) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n points x d objectives), got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("points must be finite (no NaN or infinity): a missing measurement "
                         "cannot be ranked")
    return p


def _oriented(points, maximize: Sequence[bool] | None) -> np.ndarray:
    """The points with every objective turned into one to minimise (maximised columns negated)."""
    p = _as_points(points)
    if maximize is None:
        return p
    flags = np.asarray(maximize, dtype=bool)
    if flags.shape != (p.shape[1],):
        raise ValueError(f"maximize needs one flag per objective ({p.shape[1]}), got {list(maximize)!r}")
    return np.where(flags, -p, p)


def dominates(a, b, maximize: Sequence[bool] | None = None) -> bool:
    """True when point ``a`` dominates point ``b``: no worse on every objective, better on one."""
    p = _oriented([np.atleast_1d(a), np.atleast_1d(b)], maximize)
    return bool((p[0] <= p[1]).all() and (p[0] < p[1]).any())


def non_dominated(points, maximize: Sequence[bool] | None = None) -> np.ndarray:
    """Indices (ascending) of the points no other point dominates.

    ``points``: n x d array-like; every objective is minimised unless its flag in ``maximize`` is
    True (for example ``maximize=[False, True]`` for (cost, accuracy)).
    """
    p = _oriented(points, maximize)
    order = np.lexsort(p.T[::-1])  # lexicographic: first column first
    kept: list[int] = []
    for i in order:
        if kept:
            front = p[kept]
            if ((front <= p[i]).all(axis=1) & (front < p[i]).any(axis=1)).any():
                continue
        kept.append(int(i))
    return np.sort(np.asarray(kept, dtype=int))


def pareto_front(cost, value) -> np.ndarray:
    """Indices of the (cost, value) frontier, low cost and high value wanted, ordered by cost.

    Ties in cost are ordered by value, best first.
    """
    cost, value = np.asarray(cost, dtype=float), np.asarray(value, dtype=float)
    if cost.ndim != 1 or cost.shape != value.shape:
        raise ValueError(f"cost and value must be 1-D and of the same length, got {cost.shape} "
                         f"and {value.shape}")
    idx = non_dominated(np.stack([cost, value], axis=1), maximize=[False, True])
    return idx[np.lexsort((-value[idx], cost[idx]))]


def staircase(cost, value, front: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the frontier drawn as a staircase: the best value obtainable at each cost.

    Between two frontier points the best value is the cheaper point's, so the line is flat until
    the next point and steps up there (``front`` as ``pareto_front`` returns it).
    """
    c, v = np.asarray(cost, dtype=float)[list(front)], np.asarray(value, dtype=float)[list(front)]
    if len(c) == 0:
        return np.array([]), np.array([])
    xs, ys = [c[0]], [v[0]]
    for k in range(1, len(c)):
        xs += [c[k], c[k]]
        ys += [v[k - 1], v[k]]
    return np.asarray(xs), np.asarray(ys)
