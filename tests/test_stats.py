"""mnlib.stats against scipy (an independent implementation) and hand cases."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from mnlib import stats


@pytest.mark.parametrize("b,c", [(0, 0), (0, 1), (1, 0), (3, 9), (9, 3), (6, 6), (0, 20), (17, 40), (100, 130)])
def test_mcnemar_exact_is_scipys_two_sided_binomial_test_on_the_discordant_pairs(b, c):
    want = 1.0 if b + c == 0 else sps.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert math.isclose(stats.mcnemar_p(b, c), want, rel_tol=1e-12, abs_tol=1e-15)


def test_mcnemar_by_hand():
    # 1 of 5 discordant pairs for A: P(X <= 1) = (1 + 5) / 32, doubled
    assert stats.mcnemar_p(1, 4) == 2 * 6 / 32
    with pytest.raises(ValueError):
        stats.mcnemar_p(-1, 3)


def test_compare_predictions_counts_only_the_discordant_items():
    rng = np.random.default_rng(1)
    a = rng.random(360) < 0.9
    b = a.copy()
    b[np.flatnonzero(a)[:4]] = False            # 4 images right for A only
    b[np.flatnonzero(~a)[:2]] = True            # 2 right for B only
    r = stats.compare_predictions(a, b)
    assert (r.only_a, r.only_b, r.n) == (4, 2, 360)
    assert math.isclose(r.diff, a.mean() - b.mean())
    assert r.better is None                     # 4 against 2 discordant images cannot decide at 5%
    one_sided = stats.compare_predictions(a, a & (np.arange(360) != np.flatnonzero(a)[0]) &
                                          (np.arange(360) != np.flatnonzero(a)[1]))
    assert one_sided.p_value == 0.5              # 2 of 2 discordant for A: 2 * (1/4)
    assert r.ci_low <= r.diff <= r.ci_high


def test_a_large_paired_difference_is_decided_and_the_interval_matches_the_normal_approximation():
    rng = np.random.default_rng(2)
    n = 2000
    a = rng.random(n) < 0.9
    b = a & (rng.random(n) > 0.1)               # B loses ~10% of A's right answers, never gains
    r = stats.compare_predictions(a, b, n_boot=4000)
    assert r.better == "a" and r.p_value < 1e-6 and r.ci_low > 0
    d = a.astype(float) - b.astype(float)
    se = d.std(ddof=1) / math.sqrt(n)
    assert math.isclose(r.ci_high - r.ci_low, 2 * 1.96 * se, rel_tol=0.15)


def test_identical_predictions_have_no_difference():
    a = np.array([True, False, True, True])
    r = stats.compare_predictions(a, a)
    assert r.p_value == 1.0 and r.ci_low == r.ci_high == 0.0 and r.better is None


@pytest.mark.parametrize("seed", range(5))
def test_spearman_with_ties_is_scipys(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, 25)                   # many ties, like a layer count with two values
    y = x + rng.normal(0, 1.5, 25)
    assert math.isclose(stats.spearman(x, y), sps.spearmanr(x, y).statistic, rel_tol=1e-12)
    assert np.allclose(stats.average_ranks(x), sps.rankdata(x))


def test_argsort_of_argsort_is_not_a_rank_correlation_under_ties():
    """The reason for average ranks: with ties, arbitrary tie-breaking changes the answer."""
    x = np.array([31, 43, 43, 31, 43, 43])
    y = np.array([1.0, 6.0, 2.0, 3.0, 5.0, 4.0])
    naive = np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1]
    assert not math.isclose(naive, sps.spearmanr(x, y).statistic)
    assert math.isclose(stats.spearman(x, y), sps.spearmanr(x, y).statistic)
