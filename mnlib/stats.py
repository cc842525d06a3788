"""Statistics for comparing two models on one test set, and tie-aware rank correlation.

Two classifiers scored on the *same* test images are paired: most images are right (or wrong) for
both, and only the discordant ones carry information about which is better. Comparing the two
accuracies as if independent (two binomial errors) ignores that pairing.

- ``mcnemar``: McNemar's exact test (McNemar 1947; Dietterich 1998 for classifiers). Of the n
  discordant images, b are right only for A and c only for B; under "equally accurate" b is
  Binomial(n, 1/2), and the two-sided p-value is min(1, 2 P(X <= min(b, c))).
- ``paired_bootstrap``: a percentile interval for acc(A) - acc(B), resampling images (both models'
  answers on an image stay together), as ``mnlib.timing`` resamples paired timing samples.
- ``spearman``: Spearman's rank correlation with average ranks for ties (the Pearson correlation
  of the ranks), which ``argsort(argsort(v))`` gets wrong when values repeat.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _paired(correct_a, correct_b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(correct_a).astype(bool)
    b = np.asarray(correct_b).astype(bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError("correct_a and correct_b must be 1-D and of the same non-zero length "
                         "(one entry per test item, True where the model was right)")
    return a, b


@dataclass(frozen=True)
class PairedComparison:
    """acc(A) - acc(B) on one test set, McNemar's exact p-value and a paired bootstrap interval."""
    n: int                 # test items
    only_a: int            # right for A only (b in McNemar's notation)
    only_b: int            # right for B only (c)
    diff: float            # acc(A) - acc(B)
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float

    @property
    def better(self) -> str | None:
        """'a' or 'b' when McNemar's test rejects equal accuracy at ``alpha``, else None (cannot tell)."""
        if self.p_value >= self.alpha or self.only_a == self.only_b:
            return None
        return "a" if self.only_a > self.only_b else "b"


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the two discordant counts."""
    for name, v in (("only_a", only_a), ("only_b", only_b)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    n = int(only_a) + int(only_b)
    if n == 0:
        return 1.0
    k = min(int(only_a), int(only_b))
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_bootstrap(correct_a, correct_b, confidence: float = 0.95, n_boot: int = 4000,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile interval of acc(A) - acc(B), resampling test items with both answers together."""
    a, b = _paired(correct_a, correct_b)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    d = a.astype(float) - b.astype(float)           # +1, 0 or -1 per item
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def compare_predictions(correct_a, correct_b, alpha: float = 0.05, n_boot: int = 4000,
                        seed: int = 0) -> PairedComparison:
    """Compare two models' per-item correctness on one test set (McNemar exact + paired bootstrap)."""
    a, b = _paired(correct_a, correct_b)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    lo, hi = paired_bootstrap(a, b, 1 - alpha, n_boot, seed)
    return PairedComparison(len(a), only_a, only_b, float(a.mean() - b.mean()), mcnemar_p(only_a, only_b),
                            lo, hi, alpha)


def average_ranks(values) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of the ranks they occupy."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    sorted_v = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x, y) -> float:
    """Spearman's rho with average ranks for ties: the Pearson correlation of the ranks."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError("x and y must be 1-D and of the same length >= 2")
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        raise ValueError("a constant sequence has no rank correlation")
    return float(np.corrcoef(rx, ry)[0, 1])
