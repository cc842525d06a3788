"""ps7_timing: a correct benchmark (warm-up, synchronisation, repeats, median and IQR) and a ratio with a CI."""
from build_notebooks import GRADER, answer, md, readonly, tests

CHECKS = r"""
RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)
import mnlib.timing, mnlib.cost

guard = Guard(["timing.py"])


# (lines, not a triple-quoted string: these checks are pasted into one)
FAKE_SRC = "\n".join([
    'class Fake:',
    '    # A device with a fake clock: each call of fn costs durations[i] seconds; when asynchronous, the',
    '    # work is only queued and lands on the clock at the next sync (like a CUDA stream).',
    '    def __init__(self, durations, asynchronous=False, line=None):',
    '        self.durations, self.asynchronous = list(durations), asynchronous',
    '        self.t, self.pending, self.calls = 0.0, 0.0, 0',
    '        self.line = self if line is None else line  # two fakes may share one time line',
    '',
    '    def fn(self):',
    '        d = self.durations[min(self.calls, len(self.durations) - 1)]',
    '        self.calls += 1',
    '        if self.asynchronous:',
    '            self.pending += d',
    '        else:',
    '            self.line.t += d',
    '',
    '    def sync(self):',
    '        self.line.t, self.pending = self.line.t + self.pending, 0.0',
    '',
    '    def clock(self):',
    '        return self.line.t',
])
exec(FAKE_SRC)  # Fake, here: the references are computed with it


def _device(durations, asynchronous=False, line=None):
    # A Fake where the learner's code runs: in the kernel when the grader runs these checks itself.
    return kernel_define(FAKE_SRC, "Fake")(list(durations), asynchronous, line)


def _reference(durations, warmup, repeats, asynchronous=False):
    f = Fake(durations, asynchronous)
    return mnlib.timing.benchmark(f.fn, warmup=warmup, repeats=repeats, sync=f.sync, clock=f.clock, inner_loops=1)


def _run(benchmark, durations, warmup, repeats, asynchronous=False):
    f = _device(durations, asynchronous)
    res = guard.call("benchmark", benchmark, f.fn, warmup=warmup, repeats=repeats, sync=f.sync, clock=f.clock)
    need(type(res) is dict, f"benchmark should return a dict, got {type(res).__name__}")
    for key in ("samples", "median", "iqr"):
        need(key in res, f"benchmark's result has no {key!r}")
    need(type(res["samples"]) is list, "result['samples'] should be a list")
    return f, res


def _same_samples(got, ref, what):
    need(len(got) == len(ref), f"{what}: expected {len(ref)} samples (one per repeat), got {len(got)}")
    for g, r in zip(got, ref):
        close_float(float(g), r, what + ": the per-call times differ from what the fake device spent", rel=1e-9)


WARM = [([0.5] * 3 + [0.001] * 5, 3, 5), ([0.2] * 2 + [0.003, 0.002, 0.004] * 3, 2, 9), ([0.01] * 4, 0, 4)]
WARM_REF = [(d, w, r, _reference(d, w, r).samples) for d, w, r in WARM]
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
        need(f.calls == w + r, f"benchmark(warmup={w}, repeats={r}) called fn {f.calls} times; expected {w + r}")
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
        _same_samples(res["samples"], ref.samples, f"benchmark(warmup={w}, repeats={r})")
        close_float(float(res["median"]), ref.median, f"median of {r} samples with an outlier")
        close_float(float(res["iqr"]), ref.iqr, f"IQR (75th - 25th percentile) of {r} samples")


def check_compare(compare):
    scan(compare, "compare")
    cases = [([0.002, 0.0021, 0.0019, 0.002] * 6, [0.001, 0.0011, 0.001, 0.0009] * 6),
             ([0.001, 0.0011, 0.0009] * 8, [0.001, 0.0009, 0.0011] * 8)]
    for da, db in cases:
        line = Fake([0.0])
        ra, rb = Fake(da, line=line), Fake(db, line=line)
        ref = mnlib.timing.compare(ra.fn, rb.fn, warmup=0, repeats=10, inner_loops=1, clock=line.clock)
        line = _device([0.0])
        fa, fb = _device(da, line=line), _device(db, line=line)
        res = guard.call("compare", compare, fa.fn, fb.fn, warmup=0, repeats=10, sync=None, clock=line.clock)
        need(type(res) is dict and all(k in res for k in ("ratio", "ci_low", "ci_high")),
             "compare should return a dict with 'ratio', 'ci_low' and 'ci_high'")
        need(fa.calls == 10 and fb.calls == 10, f"compare(repeats=10) called fn_a {fa.calls} and fn_b {fb.calls} times")
        lo, ratio, hi = float(res["ci_low"]), float(res["ratio"]), float(res["ci_high"])
        need(lo <= ratio <= hi, f"the interval [{lo:.3g}, {hi:.3g}] should contain the ratio {ratio:.3g}")
        need(isclose(ratio, ref.ratio, rel_tol=0.05),
             "compare's ratio should be median(time A) / median(time B)")
        need((lo > 1 or hi < 1) == (ref.ci_low > 1 or ref.ci_high < 1),
             "compare's interval should exclude 1 exactly when the two functions clearly differ")


def check_dsc_speedup(measure_speedup):
    scan(measure_speedup, "measure_speedup")
    res = guard.call("measure_speedup", measure_speedup)
    need(type(res) is dict and all(k in res for k in ("ratio", "ci_low", "ci_high", "mac_ratio")),
         "measure_speedup should return compare's dict plus 'mac_ratio'")
    close_float(float(res["mac_ratio"]), MAC_RATIO, "mac_ratio (standard MACs / DSC MACs of the layer)")
    lo, ratio, hi = float(res["ci_low"]), float(res["ratio"]), float(res["ci_high"])
    need(lo <= ratio <= hi, "the interval should contain the measured ratio")
    if lo > 1:  # asserted only when the interval excludes 1: then the DSC is measurably faster
        need(ratio <= 2 * MAC_RATIO, "a measured speedup far beyond the MAC ratio means the timing is wrong")


MAC_RATIO = mnlib.cost.standard_conv_macs(32, 64, 28, 28, 3) / mnlib.cost.dsc_macs(32, 64, 28, 28, 3)
"""


def cells(setup_cell):
    return [
        md("""
# Problem set 7: timing done right

A timing means something only when it is taken carefully: calls before the first timed one are
slower (caches, lazy initialisation), an accelerator runs asynchronously so the clock must be read
only after synchronising, and one sample is noise. You will write a small benchmark harness and
use it to measure how much faster a depthwise separable convolution really is. The grader checks
your *method* with a fake clock and instrumented functions, never how fast your machine is.

**Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` (or
`timeit`) in your answers.
"""),
        setup_cell,
        readonly("ps7_imports", """
import time
import numpy as np
import torch
from torch import nn
"""),
        md("""
## 1. `benchmark`

`benchmark(fn, *, warmup, repeats, sync=None, clock=time.perf_counter)`:

1. call `fn()` `warmup` times without timing it;
2. then `repeats` times: call `sync()` (if given), read `clock()`, call `fn()` once, call `sync()`
   again, read `clock()`: the difference is one sample;
3. return a dict with `"samples"` (the list of the `repeats` times, in seconds), `"median"` and
   `"iqr"` (`np.percentile(samples, 75) - np.percentile(samples, 25)`).

Use only the `clock` you are given (the grader passes a fake one).
"""),
        answer("ps7_answer_benchmark", """
def benchmark(fn, *, warmup=3, repeats=10, sync=None, clock=time.perf_counter):
    \"\"\"Median and IQR of `repeats` timed calls of fn after `warmup` untimed ones.\"\"\"
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
"""),
        tests("ps7_warmup", 2,
              "Are the warm-up calls made but never counted, and is fn called exactly warmup + repeats times?",
              """
calls = []
res = benchmark(lambda: calls.append(1), warmup=2, repeats=3)
assert len(calls) == 5, f"expected 2 warm-up + 3 timed calls, got {len(calls)}"
assert len(res["samples"]) == 3
""", f"{GRADER}.check_warmup(benchmark)"),
        tests("ps7_sync", 2,
              "On an asynchronous (fake) device, does benchmark synchronise before every clock read?",
              """
log = []
benchmark(lambda: log.append("fn"), warmup=0, repeats=1, sync=lambda: log.append("sync"), clock=lambda: log.append("clock") or 0.0)
assert log.index("sync") < log.index("clock"), "synchronise before you read the clock"
""", f"{GRADER}.check_sync(benchmark)"),
        tests("ps7_median", 2,
              "Does benchmark honour repeats and report the median and the IQR (not the mean) of its samples?",
              """
t = iter([0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 103.0])
res = benchmark(lambda: None, warmup=0, repeats=4, clock=lambda: next(t))
assert res["samples"] == [1.0, 1.0, 1.0, 100.0] and res["median"] == 1.0, "one slow outlier must not move the median"
""", f"{GRADER}.check_stats(benchmark)"),
        md("""
## 2. `compare`: a ratio with a confidence interval

`compare(fn_a, fn_b, *, warmup=3, repeats=20, sync=None, clock=time.perf_counter, n_boot=2000, seed=0)`
warms both up, then takes `repeats` samples of each, **interleaved** (A, B, A, B, ...: slow drift of
the machine then hits both), and returns a dict with `"ratio"` = median(A) / median(B) and a 95%
bootstrap interval `"ci_low"`, `"ci_high"`: resample the pairs $(a_i, b_i)$ with replacement
`n_boot` times (`np.random.default_rng(seed)`), take the ratio of medians each time, and report its
2.5th and 97.5th percentiles. Claim "A is slower" only when `ci_low > 1`.
"""),
        answer("ps7_answer_compare", """
def compare(fn_a, fn_b, *, warmup=3, repeats=20, sync=None, clock=time.perf_counter, n_boot=2000, seed=0):
    \"\"\"median(A) / median(B) with a paired bootstrap 95% interval.\"\"\"
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
"""),
        tests("ps7_compare", 2,
              "Does compare interleave repeats of both functions and give a ratio of medians inside its interval?",
              """
res = compare(lambda: time.sleep(0.002), lambda: time.sleep(0.001), warmup=1, repeats=5)
assert res["ci_low"] <= res["ratio"] <= res["ci_high"]
""", f"{GRADER}.check_compare(compare)"),
        md("""
## 3. DSC against a standard convolution

`measure_speedup()`: with `torch.manual_seed(0)`, an input `torch.randn(1, 32, 28, 28)`, a standard
3x3 conv 32 → 64 (padding 1, no bias) and a DSC (depthwise 3x3 with `groups=32`, then 1x1 to 64,
no bias, no BN), run `compare(standard, dsc)` under `torch.no_grad()` and return its dict with one
more entry `"mac_ratio"`: the standard convolution's MACs divided by the DSC's (write the formula).
Is the measured speedup near the MAC ratio? Claim a speedup only when its interval excludes 1.
"""),
        answer("ps7_answer_speedup", """
def measure_speedup():
    \"\"\"compare(standard 3x3 conv, DSC) on (1, 32, 28, 28) -> dict with ratio, ci_low, ci_high, mac_ratio.\"\"\"
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
"""),
        tests("ps7_dsc_speedup", 2,
              "Is the MAC ratio exact, and is the measured speedup reported with an interval that contains it?",
              """
res = measure_speedup()
print(f"measured time(standard) / time(DSC) = {res['ratio']:.2f} (95% CI {res['ci_low']:.2f}-{res['ci_high']:.2f}); MAC ratio {res['mac_ratio']:.2f}")
""", f"{GRADER}.check_dsc_speedup(measure_speedup)"),
        md("You are done when *Restart & Run All* runs without errors."),
    ]
