"""ps7_timing's hidden checks: benchmark (warm-up, synchronisation, repeats, median and IQR), compare
(A and B interleaved, the ratio and its bootstrap interval) and measure_speedup, judged on fake devices
whose every call costs a known time (assignments/ps7_timing/kernel.py), against mnlib.timing and
mnlib.cost.

Run in the grader's private namespace (assignments/loader.py); the references are computed here,
when the setup cell runs, before any answer cell.
"""
import math

import mnlib.cost
import mnlib.timing
import numpy as np

from assignments.ps7_timing import kernel
from assignments.ps7_timing.kernel import Fake, Line  # here: the references are computed with them
from assignments.toolkit import (Fail, Guard, Tensor, _scalar_kind, close_float, isclose, kernel_define, kind, need,
                                 off_by, real_value, scan)

RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)

guard = Guard(["timing.py"])

# the same classes where the learner's code runs (in the kernel when the grader runs these checks)
KFake, KLine, SPY = (kernel_define(kernel, n) for n in ("Fake", "Line", "spy_speedup"))


def _number(value, what):
    # a float from a Python, numpy or one-element torch number (never a bool)
    if isinstance(value, np.ndarray) and value.size == 1 or isinstance(value, Tensor) and value.numel() == 1:
        value = value.reshape(())
    return real_value(value, what)


# ---------------------------------------------------------------- benchmark
def _reference(durations, warmup, repeats, asynchronous=False):
    f = Fake(durations, asynchronous)
    return mnlib.timing.benchmark(f.fn, warmup=warmup, repeats=repeats, sync=f.sync, clock=f.clock, inner_loops=1)


def _run(benchmark, durations, warmup, repeats, asynchronous=False):
    f = KFake(list(durations), asynchronous)
    counts = {} if warmup is None else {"warmup": warmup, "repeats": repeats}  # None: the defaults left out
    shown_wr = f"warmup={warmup}, repeats={repeats}" if warmup is not None else "default warmup and repeats"
    res = guard.call(f"benchmark(fn, {shown_wr}) on a fake device", benchmark, f.fn,
                     sync=f.sync, clock=f.clock, **counts)
    need(isinstance(res, dict), f"benchmark should return a dict, got {kind(res)}")
    for key in ("samples", "median", "iqr"):
        need(key in res, f"benchmark's result has no {key!r}")
    need(type(res["samples"]) is list, f"result['samples'] should be a list, got {kind(res['samples'])}")
    return f, res


UNITS = {1e3: "milliseconds", 1e6: "microseconds", 1e9: "nanoseconds"}


def _unit_scale(got, ref):
    # 1e3, 1e6 or 1e9 when every sample is that many times the seconds spent (a unit slip), else None
    try:
        ratios = [real_value(g, "a sample") / r for g, r in zip(got, ref)]
    except Fail:
        return None
    for scale in UNITS:
        if ratios and all(isclose(x, scale, rel_tol=1e-9) for x in ratios):
            return scale
    return None


def _same_samples(got, ref, what, units=False):
    # One bug, one cell: samples in milliseconds (or micro-, nanoseconds) are a unit slip, charged once,
    # by the statistics cell (``units=True``), which says so; the warm-up and sync cells judge the
    # method, which a consistent unit does not change.
    need(len(got) == len(ref), f"{what}: expected {len(ref)} samples (one per repeat), got {len(got)}")
    scale = _unit_scale(got, ref)
    if scale is not None:
        need(not units, f"{what}: every sample is {scale:g} times the seconds the fake device spent: the times "
                        f"look like {UNITS[scale]}; report them in seconds (the difference of two clock() readings)")
        return
    for g, r in zip(got, ref):
        close_float(_number(g, what + ": a sample"), r, what + ": the per-call times differ from what the fake device spent",
                    rel=1e-9)


WARM = [([0.5] * 3 + [0.001] * 5, 3, 5), ([0.2] * 2 + [0.003, 0.002, 0.004] * 3, 2, 9), ([0.01] * 4, 0, 4)]
WARM_REF = [(d, w, r, _reference(d, w, r).samples) for d, w, r in WARM]
# the signature's defaults (warmup=3, repeats=10), left out of the call
WARM_REF.append(([0.4] * 3 + [0.002, 0.003] * 5, None, None, _reference([0.4] * 3 + [0.002, 0.003] * 5, 3, 10).samples))
# Constant durations after warm-up (or no warm-up): these cases test synchronisation only, whatever
# a benchmark does about warm-up; work queued by the warm-up must still not land in the first sample.
SYNC = [([0.002] * 9, 3, 6), ([0.005, 0.001, 0.003] * 4, 0, 7)]
SYNC_REF = [(d, w, r, _reference(d, w, r, True).samples) for d, w, r in SYNC]
STAT = [([0.001, 0.001, 0.002, 0.001, 0.05, 0.001, 0.003], 0, 7), ([1.0, 2.0, 3.0, 100.0, 4.0], 0, 5),
        ([0.004, 0.002] * 5, 0, 10)]  # no warm-up: these cases test the statistics only
STAT_REF = [(d, w, r, _reference(d, w, r)) for d, w, r in STAT]


def check_warmup(benchmark):
    scan(benchmark, "benchmark")
    for d, w, r, ref in WARM_REF:
        f, res = _run(benchmark, d, w, r)
        label = f"benchmark(warmup={w}, repeats={r})" if w is not None else \
            "benchmark(fn) with the defaults left out (warmup=3, repeats=10)"
        w, r = (3, 10) if w is None else (w, r)
        calls = f.calls
        need(calls == w + r, f"{label} called fn {calls} times; expected {w + r}")
        _same_samples(res["samples"], ref, f"benchmark(warmup={w}, repeats={r}) with slow first calls")


def check_sync(benchmark):
    scan(benchmark, "benchmark")
    for d, w, r, ref in SYNC_REF:
        f, res = _run(benchmark, d, w, r, asynchronous=True)
        _same_samples(res["samples"], ref, f"benchmark(warmup={w}, repeats={r}) on an asynchronous device "
                                           "(call sync before every clock read)")


def check_stats(benchmark):
    scan(benchmark, "benchmark")
    for d, w, r, ref in STAT_REF:
        f, res = _run(benchmark, d, w, r)
        _same_samples(res["samples"], ref.samples, f"benchmark(warmup={w}, repeats={r})", units=True)
        close_float(real_value(res["median"], "median"), ref.median, f"median of {r} samples with an outlier")
        close_float(real_value(res["iqr"], "iqr"), ref.iqr, f"IQR (75th - 25th percentile) of {r} samples")


# ---------------------------------------------------------------- compare
def _compare(compare, da, db, what, asynchronous=False, **kwargs):
    # the learner's compare on two fake functions sharing one fake machine: (result, fn_a, fn_b, line)
    line = KLine(asynchronous)
    fa, fb = KFake(list(da), line=line, name="a"), KFake(list(db), line=line, name="b")
    kwargs = {"warmup": 0, **kwargs}
    shown = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    what = f"compare(fn_a, fn_b, {shown}) {what}"
    res = guard.call(what, compare, fa.fn, fb.fn, sync=line.sync, clock=line.clock, **kwargs)
    need(isinstance(res, dict), f"{what} should return a dict, got {kind(res)}")
    out = {}
    for key in ("ratio", "ci_low", "ci_high"):
        need(key in res, f"{what}: the result has no {key!r}")
        out[key] = _number(res[key], f"{what}: result[{key!r}]")
    return out, fa, fb, line


def _longest_run(seq):
    best = run = 0
    for i, x in enumerate(seq):
        run = run + 1 if i and seq[i - 1] == x else 1
        best = max(best, run)
    return best


# Method: slow warm-up calls, then constant times; an asynchronous device (sync before each clock read).
# With two rounds, work the warm-up left queued would land in the first sample, and move the median,
# if the clock were read without a sync first.
METHOD = [(3, 9, [0.2, 0.3, 0.25] + [0.003] * 9, [0.4, 0.1, 0.2] + [0.001] * 9),
          (2, 7, [0.05, 0.04] + [0.002] * 7, [0.03, 0.06] + [0.004] * 7),
          (2, 2, [0.5, 0.5, 0.002], [0.5, 0.5, 0.004])]
METHOD_REF = [(w, r, da, db, da[w] / db[w]) for w, r, da, db in METHOD]


def check_compare_method(compare):
    scan(compare, "compare")
    for w, r, da, db, ratio in METHOD_REF:
        res, fa, fb, line = _compare(compare, da, db, "on an asynchronous fake device", asynchronous=True,
                                     warmup=w, repeats=r)
        what = f"compare(warmup={w}, repeats={r})"
        ca, cb = fa.calls, fb.calls
        need(ca == w + r and cb == w + r,
             f"{what} called fn_a {ca} times and fn_b {cb} times; expected {w} warm-up + {r} timed calls "
             "of each (warm up both functions)")
        log = list(line.log)
        pos = {n: [i for i, x in enumerate(log) if x == n] for n in "ab"}
        warm, timed = pos["a"][:w] + pos["b"][:w], pos["a"][w:] + pos["b"][w:]
        need(not warm or max(warm) < min(timed),
             f"{what} made a warm-up call after a timed one: warm both functions up first, then time them")
        order = [log[i] for i in sorted(timed)]
        balance = [order[:k + 1].count("a") - order[:k + 1].count("b") for k in range(len(order))]
        need(max(abs(x) for x in balance) <= 1,
             f"{what} timed the same function {_longest_run(order)} times in a row: interleave them "
             "(A, B, A, B, ...) so that slow drift of the machine hits both alike")
        need(isclose(res["ratio"], ratio, rel_tol=1e-6),
             f"{what}: time(A) / time(B) should be {ratio:.3g} after the warm-up on an asynchronous device, "
             f"got {res['ratio']:.3g} (sync before every clock read; do not count warm-up calls)")


# Ratio: no warm-up, slow outliers; each function's i-th call costs the same whatever the order.
RATIO = [([0.0020, 0.0031, 0.0019, 0.0500, 0.0022, 0.0018, 0.0450, 0.0021, 0.0024, 0.0019, 0.0600],
          [0.0010, 0.0012, 0.0009, 0.0011, 0.0300, 0.0010, 0.0013, 0.0008, 0.0011, 0.0010, 0.0012]),
         ([0.0040, 0.0041, 0.0039, 0.0043, 0.0038, 0.0900, 0.0042, 0.0040, 0.0037],
          [0.0050, 0.0800, 0.0052, 0.0049, 0.0051, 0.0048, 0.0700, 0.0053, 0.0050])]


def _ref_compare(da, db, **kwargs):
    line = Line()
    fa, fb = Fake(da, line=line, name="a"), Fake(db, line=line, name="b")
    return mnlib.timing.compare(fa.fn, fb.fn, warmup=0, repeats=len(da), inner_loops=1, clock=line.clock, **kwargs)


RATIO_REF = [(da, db, _ref_compare(da, db).ratio) for da, db in RATIO]


def check_compare_ratio(compare):
    scan(compare, "compare")
    for k, (da, db, ratio) in enumerate(RATIO_REF, 1):
        res = _compare(compare, da, db, f"(case {k}: samples with slow outliers)", repeats=len(da))[0]
        need(isclose(res["ratio"], ratio, rel_tol=1e-6),
             f"compare(repeats={len(da)}), case {k} with slow outliers: the ratio should be median(A) / median(B) "
             f"of the timed samples, got {res['ratio']:.4g} ({off_by(res['ratio'], ratio)})")


# Interval, case 1: every round's A takes exactly twice its B, the rounds differ a lot: the paired
# bootstrap interval is exactly [2, 2]; resampling A and B apart gives a wide one.
_g = np.random.default_rng(7)
PAIRED_B = [float(x) for x in 0.001 * (1 + 3 * _g.random(13))]
PAIRED_A = [2 * x for x in PAIRED_B]
# Case 2: the same, with 5% noise on each and one slow outlier: the interval is known from the
# reference over many bootstrap seeds (it hardly depends on the seed: a median is one of the samples).
_e, _f = _g.uniform(-1, 1, 13), _g.uniform(-1, 1, 13)
NOISY_A = [float(2 * s * (1 + 0.05 * e)) for s, e in zip(PAIRED_B, _e)]
NOISY_B = [float(s * (1 + 0.05 * f)) for s, f in zip(PAIRED_B, _f)]
NOISY_A[4] *= 8
_cis = [mnlib.timing.bootstrap_ratio_ci(NOISY_A, NOISY_B, seed=s) for s in range(100)]
_lo, _hi = [c[0] for c in _cis], [c[1] for c in _cis]
_margin = 0.1 * (float(np.median(_hi)) - float(np.median(_lo)))
NOISY_BAND = (min(_lo) - _margin, max(_lo) + _margin, min(_hi) - _margin, max(_hi) + _margin)
# Case 4: 7 rounds, 50000 resamples. Every resample is a multiset of the 7 pairs (1716 of them), so the
# bootstrap distribution of median(A*) / median(B*) is known exactly: its 2.5th and 97.5th percentiles
# sit inside atoms that hold them with a margin of > 0.5% of probability (7 standard errors of a
# 50000-draw estimate), so every correct bootstrap reports those two values; a 90% interval, or
# resamples that never draw the first or the last pair, report others.
EXACT_A = [0.004377, 0.00224, 0.002613, 0.002334, 0.003529, 0.002601, 0.002535]
EXACT_B = [0.001959, 0.001163, 0.001088, 0.001305, 0.001643, 0.00127, 0.001706]
EXACT_BOOT = 50000


def _exact_interval(a, b, margin=0.005):
    import itertools
    n, atoms = len(a), {}
    for pick in itertools.combinations_with_replacement(range(n), n):
        weight = math.factorial(n)
        for i in set(pick):
            weight //= math.factorial(pick.count(i))
        r = float(np.median([a[i] for i in pick]) / np.median([b[i] for i in pick]))
        atoms[r] = atoms.get(r, 0) + weight / n ** n
    values, cdf, total = sorted(atoms), [], 0.0
    for v in values:
        total += atoms[v]
        cdf.append(total)
    out = []
    for q in (0.025, 0.975):
        k = next(i for i, c in enumerate(cdf) if c > q)
        assert q - (cdf[k - 1] if k else 0.0) > margin and cdf[k] - q > margin, "case 4 needs other samples"
        out.append(values[k])
    return out


EXACT_CI = _exact_interval(EXACT_A, EXACT_B)
# Case 3 (the seed): 31 noisy rounds, 100 resamples: two seeds give different intervals.
SEEDED_A = [float(x) for x in 0.002 * (1 + 0.3 * _g.random(31))]
SEEDED_B = [float(x) for x in 0.001 * (1 + 0.3 * _g.random(31))]


def check_compare_interval(compare):
    scan(compare, "compare")
    res = _compare(compare, PAIRED_A, PAIRED_B, "(case 1: A takes exactly twice B in every round)",
                   repeats=len(PAIRED_A))[0]
    lo, hi = res["ci_low"], res["ci_high"]
    need(isclose(lo, 2.0, rel_tol=1e-6) and isclose(hi, 2.0, rel_tol=1e-6),
         f"case 1: A takes exactly twice as long as B in every round, but the rounds differ: the interval "
         f"should be [2, 2], got [{lo:.3g}, {hi:.3g}]. Resample the pairs (a_i, b_i) together, never A and "
         "B apart, and take the percentiles of the resampled ratios")
    res = _compare(compare, NOISY_A, NOISY_B, "(case 2: noisy rounds, one slow outlier)", repeats=len(NOISY_A))[0]
    lo, hi = res["ci_low"], res["ci_high"]
    lo_min, lo_max, hi_min, hi_max = NOISY_BAND
    need(lo_min <= lo <= lo_max and hi_min <= hi <= hi_max,
         f"case 2 (noisy rounds, one slow outlier): the interval [{lo:.3g}, {hi:.3g}] is not the paired bootstrap "
         "interval of median(A) / median(B) (2.5th and 97.5th percentiles of the resampled ratios of medians)")
    res = _compare(compare, EXACT_A, EXACT_B, "(case 4: 7 rounds, many resamples)", repeats=len(EXACT_A),
                   n_boot=EXACT_BOOT, seed=0)[0]
    need(all(isclose(res[k], v, rel_tol=1e-6) for k, v in zip(("ci_low", "ci_high"), EXACT_CI)),
         f"case 4 ({len(EXACT_A)} rounds, n_boot={EXACT_BOOT}): the interval [{res['ci_low']:.4g}, {res['ci_high']:.4g}] "
         "is not the 95% paired bootstrap interval, which is known here (check the 2.5th and 97.5th percentiles, "
         "and that every pair can be drawn)")
    kw = {"repeats": len(SEEDED_A), "n_boot": 100}
    first = _compare(compare, SEEDED_A, SEEDED_B, "(case 3)", seed=5, **kw)[0]
    again = _compare(compare, SEEDED_A, SEEDED_B, "(case 3, again)", seed=5, **kw)[0]
    need((first["ci_low"], first["ci_high"]) == (again["ci_low"], again["ci_high"]),
         "case 3: compare(seed=5) gave two different intervals for the same samples: draw the resamples "
         "from np.random.default_rng(seed), made inside compare")
    seen = {(first["ci_low"], first["ci_high"])}
    for s in (1, 2, 3):
        r = _compare(compare, SEEDED_A, SEEDED_B, f"(case 3, seed {s})", seed=s, **kw)[0]
        seen.add((r["ci_low"], r["ci_high"]))
    need(len(seen) > 1, "case 3: compare gave the same interval for seeds 5, 1, 2 and 3 "
                        "with 100 resamples: use its seed argument (np.random.default_rng(seed))")
    # Case 5 (n_boot away from its default): one resample, whose ratio is both ends of the interval,
    # whatever way the resample is drawn; the same noisy rounds give a wide interval with many.
    one = _compare(compare, SEEDED_A, SEEDED_B, "(case 5, n_boot=1)", seed=5, repeats=len(SEEDED_A), n_boot=1)[0]
    need(one["ci_low"] == one["ci_high"], "case 5: compare(n_boot=1) gave an interval of width "
         f"{one['ci_high'] - one['ci_low']:.3g}; one resample has one ratio, both ends of the interval: "
         "draw n_boot resamples, the n_boot you are given")


# ---------------------------------------------------------------- measure_speedup
MAC_RATIO = mnlib.cost.standard_conv_macs(32, 64, 28, 28, 3) / mnlib.cost.dsc_macs(32, 64, 28, 28, 3)
# each convolution the timed functions must run: input, weight and output shapes, bias or not
_X, _Y = [1, 32, 28, 28], [1, 64, 28, 28]
STANDARD, DSC = [[_X, [64, 32, 3, 3], _Y, False]], [[_X, [32, 1, 3, 3], _X, False], [_X, [64, 32, 1, 1], _Y, False]]


def check_dsc_mac_ratio(measure_speedup):
    scan(measure_speedup, "measure_speedup")
    res = guard.call("measure_speedup()", measure_speedup)
    need(isinstance(res, dict) and "mac_ratio" in res, "measure_speedup should return compare's dict plus 'mac_ratio'")
    close_float(_number(res["mac_ratio"], "mac_ratio"), MAC_RATIO, "mac_ratio (standard MACs / DSC MACs of the layer)")


def check_dsc_speedup(measure_speedup):
    scan(measure_speedup, "measure_speedup")
    seen = guard.call("measure_speedup()", SPY, measure_speedup)
    need(seen["raised"] is None, f"measure_speedup() raised {seen['raised']}")
    need(seen["calls"] is not None, "measure_speedup should time the two layers with your compare")
    need(seen["calls"], "measure_speedup() never called your compare: time the two layers with it")
    res = seen["result"]
    need(isinstance(res, dict) and all(_scalar_kind(res.get(k)) for k in ("ratio", "ci_low", "ci_high")),
         "measure_speedup should return compare's dict (numbers 'ratio', 'ci_low', 'ci_high') plus 'mac_ratio'")
    got = tuple(res[k] for k in ("ratio", "ci_low", "ci_high"))
    match = [c for c in seen["calls"] if c["result"] and tuple(c["result"].get(k) for k in ("ratio", "ci_low", "ci_high")) == got]
    if not match:
        raised = [c["raised"] for c in seen["calls"] if c["raised"]]
        need(not raised, f"your compare raised {raised[0]} inside measure_speedup(), which then returned numbers "
                         "it did not measure: let the error show instead of hiding it")
        need(False, "measure_speedup should return the dict compare returned (plus 'mac_ratio'), not other numbers")
    call = match[-1]
    warmup = call["warmup"]
    need(warmup is None or (type(warmup) is float and warmup >= 1),
         f"measure_speedup called compare with warmup={int(warmup) if type(warmup) is float else warmup}: "
         "warm both layers up before timing them")
    for side, want, name in (("a", STANDARD, "the standard 3x3 convolution (32 -> 64, padding 1, no bias)"),
                             ("b", DSC, "the DSC (depthwise 3x3 with groups=32, then 1x1 to 64; padding 1, no bias)")):
        rec = call[side]
        need(rec["calls"] > 0, f"measure_speedup's compare never called fn_{side}")
        need(not rec["graph"], f"the timed calls of fn_{side} record autograd history (an output requires grad): "
                               "time them under torch.no_grad() or torch.inference_mode()")
        need(sorted(map(str, rec["convs"])) == sorted(map(str, want)),
             f"fn_{side} should run {name} on the (1, 32, 28, 28) input: compare(standard, dsc)")
