"""ps7_timing: a correct benchmark (warm-up, synchronisation, repeats, median and IQR) and a ratio with a CI.

The hidden checks judge the method, never the machine's speed: the learner's functions time fake
devices whose every call costs a known time (assignments/ps7_timing/kernel.py), so the right samples,
ratio and bootstrap interval are known exactly, and a log shows the order of the calls (warm-up of
both sides, A and B interleaved). measure_speedup is run with its compare watched: the timed calls
must run the two layers without autograd, and what it returns must be what compare measured.

The notebook in percent format, one cell per ``# %%`` header (assignments/build.py documents them):
explanations, the reference answers (between ``### BEGIN/END SOLUTION``), visible self-checks and the
hidden check each tests cell calls (assignments/ps7_timing/checks.py).
"""


# %% [markdown]
# # Problem set 7: timing done right
#
# A timing means something only when it is taken carefully: calls before the first timed one are
# slower (caches, lazy initialisation), an accelerator runs asynchronously so the clock must be read
# only after synchronising, and one sample is noise. You will write a small benchmark harness and
# use it to measure how much faster a depthwise separable convolution really is. The grader checks
# your *method* with a fake clock and instrumented functions, never how fast your machine is.
#
# **Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` (or
# `timeit`) in your answers.


# %% setup
from assignments.ps7_timing import checks as _ps_grader  # the build writes the setup cell here


# %% readonly ps7_imports
import time
import numpy as np
import torch
from torch import nn


# %% [markdown]
# ## 1. `benchmark`
#
# `benchmark(fn, *, warmup, repeats, sync=None, clock=time.perf_counter)`:
#
# 1. call `fn()` `warmup` times without timing it;
# 2. then `repeats` times: call `sync()` (if given), read `clock()`, call `fn()` once, call `sync()`
#    again, read `clock()`: the difference is one sample;
# 3. return a dict with `"samples"` (the list of the `repeats` times, in seconds), `"median"` and
#    `"iqr"` (`np.percentile(samples, 75) - np.percentile(samples, 25)`, numpy's default definition
#    of a percentile, which interpolates linearly between the sorted samples; other definitions, such
#    as `statistics.quantiles`' default, give other numbers on a few samples and are not accepted).
#
# Use only the `clock` you are given (the grader passes a fake one).


# %% answer ps7_answer_benchmark
def benchmark(fn, *, warmup=3, repeats=10, sync=None, clock=time.perf_counter):
    """Median and IQR of `repeats` timed calls of fn after `warmup` untimed ones."""
    ### BEGIN SOLUTION
    sync = sync or (lambda: None)
    for _ in range(warmup):  # caches, lazy init, allocator growth: not the function's steady cost
        fn()
    samples = []
    for _ in range(repeats):
        sync()  # nothing queued earlier may land in this sample
        t0 = clock()
        fn()
        sync()  # the work must be finished before the clock is read
        samples.append(clock() - t0)
    q25, q75 = np.percentile(samples, [25, 75])
    return {"samples": samples, "median": float(np.median(samples)), "iqr": float(q75 - q25)}
    ### END SOLUTION


# %% tests ps7_warmup points=2
"""Are the warm-up calls made but never counted, and is fn called exactly warmup + repeats times?"""
calls = []
res = benchmark(lambda: calls.append(1), warmup=2, repeats=3)
assert len(calls) == 5, f"expected 2 warm-up + 3 timed calls, got {len(calls)}"
assert len(res["samples"]) == 3
### BEGIN HIDDEN TESTS
_ps_grader.check_warmup(benchmark)
### END HIDDEN TESTS


# %% tests ps7_sync points=2
"""On an asynchronous (fake) device, does benchmark synchronise before every clock read?"""
log = []
benchmark(lambda: log.append("fn"), warmup=0, repeats=1, sync=lambda: log.append("sync"), clock=lambda: log.append("clock") or 0.0)
assert log.index("sync") < log.index("clock"), "synchronise before you read the clock"
### BEGIN HIDDEN TESTS
_ps_grader.check_sync(benchmark)
### END HIDDEN TESTS


# %% tests ps7_median points=2
"""Does benchmark honour repeats and report the median and the IQR (not the mean) of its samples?"""
t = iter([0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 103.0])
res = benchmark(lambda: None, warmup=0, repeats=4, clock=lambda: next(t))
assert res["samples"] == [1.0, 1.0, 1.0, 100.0], f"each sample is the difference of two clock() readings, in the clock's unit (seconds): expected [1.0, 1.0, 1.0, 100.0], got {res['samples']}"
assert res["median"] == 1.0, "one slow outlier must not move the median"
### BEGIN HIDDEN TESTS
_ps_grader.check_stats(benchmark)
### END HIDDEN TESTS


# %% [markdown]
# ## 2. `compare`: a ratio with a confidence interval
#
# `compare(fn_a, fn_b, *, warmup=3, repeats=20, sync=None, clock=time.perf_counter, n_boot=2000, seed=0)`:
#
# 1. warm **both** up: `warmup` untimed calls of `fn_a` and of `fn_b`;
# 2. then `repeats` rounds, each taking one sample of A and one of B (timed one call at a time as in
#    `benchmark`): the samples are **interleaved** (A, B, A, B, ... or A, B, B, A, ...), so slow drift
#    of the machine hits both alike. Round $i$ gives the pair $(a_i, b_i)$;
# 3. return a dict with `"ratio"` = median(A) / median(B) and a 95% bootstrap interval `"ci_low"`,
#    `"ci_high"`: `n_boot` times, resample the **pairs** $(a_i, b_i)$ with replacement (a pair stays
#    together: both were taken at the same moment), take the ratio of medians of the resample; report
#    the 2.5th and 97.5th percentiles of those ratios. Draw the resamples from a generator made inside
#    `compare` with `np.random.default_rng(seed)`, so the same samples and seed give the same interval.
#
# Claim "A is slower" only when `ci_low > 1`.


# %% answer ps7_answer_compare
def compare(fn_a, fn_b, *, warmup=3, repeats=20, sync=None, clock=time.perf_counter, n_boot=2000, seed=0):
    """median(A) / median(B) with a paired bootstrap 95% interval."""
    ### BEGIN SOLUTION
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn_a()
        fn_b()

    def once(fn):
        sync()
        t0 = clock()
        fn()
        sync()
        return clock() - t0

    a, b = [], []
    for _ in range(repeats):
        a.append(once(fn_a))
        b.append(once(fn_b))
    a, b = np.array(a), np.array(b)
    idx = np.random.default_rng(seed).integers(0, repeats, size=(n_boot, repeats))
    ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return {"ratio": float(np.median(a) / np.median(b)), "ci_low": float(lo), "ci_high": float(hi)}
    ### END SOLUTION


# %% tests ps7_compare_method points=2
"""Does compare warm up both functions, then interleave their timed calls, synchronising before every clock read?"""
log = []
compare(lambda: log.append("a"), lambda: log.append("b"), warmup=2, repeats=4, clock=lambda: float(len(log)))
assert log.count("a") == log.count("b") == 6, "expected 2 warm-up + 4 timed calls of each function"
assert "aaa" not in "".join(log) and "bbb" not in "".join(log), "interleave the two functions"
### BEGIN HIDDEN TESTS
_ps_grader.check_compare_method(compare)
### END HIDDEN TESTS


# %% tests ps7_compare_ratio points=1
"""Is compare's ratio median(A) / median(B) of the timed samples, which slow outliers cannot move?"""
t = [0.0]
def spend(seconds):
    t[0] += seconds
costs_a, costs_b = iter([2.0, 2.0, 50.0]), iter([1.0, 9.0, 1.0])
res = compare(lambda: spend(next(costs_a)), lambda: spend(next(costs_b)), warmup=0, repeats=3, clock=lambda: t[0])
assert res["ratio"] == 2.0, f"median(A) / median(B) is 2.0 here, got {res['ratio']}"
### BEGIN HIDDEN TESTS
_ps_grader.check_compare_ratio(compare)
### END HIDDEN TESTS


# %% tests ps7_compare_interval points=2
"""Is the interval a seeded bootstrap of the paired samples (a_i, b_i)?"""
t[0] = 0.0  # the fake clock and spend() of the cell above
costs_a, costs_b = iter([2.0, 6.0, 4.0, 10.0, 8.0]), iter([1.0, 3.0, 2.0, 5.0, 4.0])  # A = 2 B in every round
res = compare(lambda: spend(next(costs_a)), lambda: spend(next(costs_b)), warmup=0, repeats=5, clock=lambda: t[0])
interval = (res["ci_low"], res["ci_high"])
assert interval == (2.0, 2.0), f"A takes twice as long as B in every round: every resampled ratio is 2; got {interval}"
### BEGIN HIDDEN TESTS
_ps_grader.check_compare_interval(compare)
### END HIDDEN TESTS


# %% [markdown]
# ## 3. DSC against a standard convolution
#
# `measure_speedup()`: with `torch.manual_seed(0)`, an input `torch.randn(1, 32, 28, 28)`, a standard
# 3x3 conv 32 → 64 (padding 1, no bias) and a DSC (depthwise 3x3 with `groups=32`, then 1x1 to 64,
# no bias, no BN), time them with your `compare(standard, dsc)`, called by that name (the grader watches
# `compare`), with warm-up (its default, or any `warmup` of at least 1) (`fn_a` runs the standard conv on the
# input, `fn_b` the DSC) with autograd off (`torch.no_grad()` or `torch.inference_mode()`: otherwise
# you time the bookkeeping for a backward pass too). Return the dict `compare` returned with one more
# entry `"mac_ratio"`: the standard convolution's MACs divided by the DSC's (write the formula). If
# something fails, let the error show: never return numbers you did not measure.
# Is the measured speedup near the MAC ratio? Claim a speedup only when its interval excludes 1.


# %% answer ps7_answer_speedup
def measure_speedup():
    """compare(standard 3x3 conv, DSC) on (1, 32, 28, 28) -> dict with ratio, ci_low, ci_high, mac_ratio."""
    ### BEGIN SOLUTION
    torch.manual_seed(0)
    x = torch.randn(1, 32, 28, 28)
    std = nn.Conv2d(32, 64, 3, padding=1, bias=False)
    dsc = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.Conv2d(32, 64, 1, bias=False))
    with torch.no_grad():
        res = compare(lambda: std(x), lambda: dsc(x), warmup=3, repeats=15)
    h = w = 28
    res["mac_ratio"] = (h * w * 64 * 32 * 9) / (h * w * 32 * 9 + h * w * 32 * 64)
    return res
    ### END SOLUTION


# %% tests ps7_dsc_mac_ratio points=1
"""Is the MAC ratio of the two layers exact?"""
speedup = measure_speedup()
print(f"measured time(standard) / time(DSC) = {speedup['ratio']:.2f} "
      f"(95% CI {speedup['ci_low']:.2f}-{speedup['ci_high']:.2f}); MAC ratio {speedup['mac_ratio']:.2f}")
### BEGIN HIDDEN TESTS
_ps_grader.check_dsc_mac_ratio(measure_speedup)
### END HIDDEN TESTS


# %% tests ps7_dsc_speedup points=2
"""Does measure_speedup time the two layers with compare, without autograd, and return what it measured?"""
assert {"ratio", "ci_low", "ci_high", "mac_ratio"} <= set(speedup), "return compare's dict plus 'mac_ratio'"
### BEGIN HIDDEN TESTS
_ps_grader.check_dsc_speedup(measure_speedup)
### END HIDDEN TESTS


# %% [markdown]
# You are done when *Restart & Run All* runs without errors.
