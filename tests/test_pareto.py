"""mnlib.pareto against a brute-force oracle: every pair of points checked for dominance."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mnlib.pareto import dominates, non_dominated, pareto_front, staircase


def brute_force_front(points, maximize):
    """Oracle: i is on the frontier iff no j is >= on every objective and > on one (as wanted)."""
    sign = [-1 if m else 1 for m in maximize]  # compare as quantities to minimise
    pts = [[s * x for s, x in zip(sign, row)] for row in points]
    front = []
    for i, p in enumerate(pts):
        beaten = any(all(q[k] <= p[k] for k in range(len(p))) and any(q[k] < p[k] for k in range(len(p)))
                     for j, q in enumerate(pts) if j != i)
        if not beaten:
            front.append(i)
    return front


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda d: st.tuples(
    st.lists(st.lists(st.integers(0, 6), min_size=d, max_size=d), min_size=1, max_size=40),
    st.lists(st.booleans(), min_size=d, max_size=d))))
def test_non_dominated_equals_brute_force(case):
    """Small integer grids make ties and duplicates frequent: they must be kept exactly as the
    all-pairs definition keeps them."""
    points, maximize = case
    assert non_dominated(points, maximize).tolist() == brute_force_front(points, maximize)


@pytest.mark.parametrize("seed", range(5))
def test_random_real_points_and_frontier_properties(seed):
    rng = np.random.default_rng(seed)
    pts = rng.random((300, 2))
    front = non_dominated(pts, [False, True])
    assert front.tolist() == brute_force_front(pts.tolist(), [False, True])
    on = set(front.tolist())
    for i in range(len(pts)):  # every point off the frontier is beaten by one on it
        if i not in on:
            assert any(dominates(pts[j], pts[i], [False, True]) for j in on)
    for i in on:               # and no frontier point beats another
        assert not any(dominates(pts[j], pts[i], [False, True]) for j in on if j != i)


def test_pareto_front_is_ordered_by_cost_and_value_rises():
    rng = np.random.default_rng(7)
    cost, acc = rng.random(200), rng.random(200)
    front = pareto_front(cost, acc)
    assert sorted(front.tolist()) == brute_force_front(np.stack([cost, acc], 1).tolist(), [False, True])
    assert np.all(np.diff(cost[front]) > 0) and np.all(np.diff(acc[front]) > 0)


def test_hand_example_with_a_tie():
    # (cost, accuracy): b beats a (cheaper and as accurate); c and d are the same point
    cost = [2.0, 1.0, 3.0, 3.0, 4.0]
    acc = [0.8, 0.8, 0.9, 0.9, 0.85]
    assert pareto_front(cost, acc).tolist() == [1, 2, 3]
    assert dominates([1.0, 0.8], [2.0, 0.8], [False, True])
    assert not dominates([3.0, 0.9], [3.0, 0.9], [False, True])


def test_staircase_holds_the_cheaper_value_until_the_next_point():
    cost, acc = [1.0, 2.0, 4.0], [0.5, 0.7, 0.9]
    xs, ys = staircase(cost, acc, pareto_front(cost, acc))
    assert xs.tolist() == [1.0, 2.0, 2.0, 4.0, 4.0]
    assert ys.tolist() == [0.5, 0.5, 0.7, 0.7, 0.9]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        non_dominated([[1.0, np.nan]])
    with pytest.raises(ValueError, match="one flag per objective"):
        non_dominated([[1.0, 2.0]], maximize=[True])
    with pytest.raises(ValueError, match="same length"):
        pareto_front([1.0, 2.0], [1.0])


def test_published_accuracy_tables_match_the_cost_tables(published):
    """The accuracy tables of Howard et al. 2017 (Tables 6 and 7, used by chapter 14) were typed
    in separately from the Mult-Adds/params grids of chapters 3 and 5: the shared columns agree."""
    pub = published["v1_accuracy_width_resolution"]
    width = {name.split()[0]: row for name, row in pub["width_at_224"].items()}
    for alpha, row in published["v1_width_grid"].items():
        if alpha.startswith("_"):
            continue
        madds, params = row
        assert (width[alpha]["mult_adds_m"], width[alpha]["params_m"]) == (madds, params)
    res = {name.split("-")[1]: row for name, row in pub["resolution_at_width_1"].items()}
    for size, madds in published["v1_resolution_grid"].items():
        if size.startswith("_"):
            continue
        assert res[size]["mult_adds_m"] == madds and res[size]["params_m"] == width["1.0"]["params_m"]
    assert width["1.0"]["top1"] == res["224"]["top1"]  # the same network in both tables
    for table in (pub["width_at_224"], pub["resolution_at_width_1"]):
        rows = sorted(table.values(), key=lambda r: r["mult_adds_m"])
        assert all(a["top1"] < b["top1"] for a, b in zip(rows, rows[1:]))  # as printed: monotone
