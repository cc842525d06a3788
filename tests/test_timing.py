"""mnlib.timing checked with a fake clock and instrumented functions: no test reads a real time."""
import mmap
import time

import numpy as np
import pytest
import torch

from mnlib.timing import BenchmarkError, benchmark, bootstrap_ratio_ci, compare


class FakeMachine:
    """A clock that only moves when the instrumented functions say they did work; logs every event."""

    def __init__(self):
        self.now = 0.0
        self.log = []

    def clock(self):
        self.log.append("clock")
        return self.now

    def sync(self):
        self.log.append("sync")

    def work(self, name, costs):
        """A function whose i-th call takes costs(i) seconds of fake time."""
        calls = []

        def fn():
            self.now += costs(len(calls))
            calls.append(self.now)
            self.log.append(name)
        fn.calls = calls
        return fn


def test_warmup_calls_happen_and_are_not_counted():
    """The first (slow, 'cold') calls are the warm-up: none of their cost appears in the samples."""
    m = FakeMachine()
    fn = m.work("f", lambda i: 1.0 if i < 3 else 0.01)  # 3 cold calls, then steady 10 ms
    s = benchmark(fn, warmup=3, repeats=7, inner_loops=1, sync=m.sync, clock=m.clock)
    assert len(fn.calls) == 3 + 7
    assert s.samples == pytest.approx([0.01] * 7)
    assert s.warmup == 3


@pytest.mark.parametrize("warmup,repeats,loops", [(0, 1, 1), (2, 5, 3), (5, 12, 4)])
def test_repeats_and_inner_loops_are_honoured(warmup, repeats, loops):
    """Exactly warmup + repeats x inner_loops calls; each sample is the per-call time of its loop."""
    m = FakeMachine()
    fn = m.work("f", lambda i: 0.001 * (1 + i % 3))
    s = benchmark(fn, warmup=warmup, repeats=repeats, inner_loops=loops, sync=m.sync, clock=m.clock)
    assert len(fn.calls) == warmup + repeats * loops
    assert len(s.samples) == repeats and s.inner_loops == loops
    # the samples add up to the timed work divided by the loop count
    timed = sum(0.001 * (1 + i % 3) for i in range(warmup, warmup + repeats * loops))
    assert sum(s.samples) * loops == pytest.approx(timed)


def test_sync_is_called_before_every_clock_read():
    """Asynchronous work must be finished when the clock is read: every read follows a sync."""
    m = FakeMachine()
    fn = m.work("f", lambda i: 0.002)
    benchmark(fn, warmup=2, repeats=4, sync=m.sync, clock=m.clock, min_sample_s=0.01)
    reads = [i for i, e in enumerate(m.log) if e == "clock"]
    assert len(reads) >= 2 * 4
    assert all(i > 0 and m.log[i - 1] == "sync" for i in reads)
    # and no work sits between the last sync and the read
    assert m.log.count("sync") >= len(reads)


def test_inner_loops_make_a_sample_long_enough_for_the_clock():
    """A ~1 us call with min_sample_s ~1 ms is looped 1024 times per sample (powers of 2: exact)."""
    m = FakeMachine()
    fn = m.work("f", lambda i: 2.0 ** -20)
    s = benchmark(fn, warmup=2, repeats=3, min_sample_s=2.0 ** -10, sync=m.sync, clock=m.clock)
    assert s.inner_loops == 1024
    assert len(fn.calls) == 2 + 3 * 1024
    assert s.median == pytest.approx(2.0 ** -20)


def test_no_warmup_still_learns_the_loop_count_from_one_uncounted_probe():
    m = FakeMachine()
    fn = m.work("f", lambda i: 0.5 if i == 0 else 0.001)
    s = benchmark(fn, warmup=0, repeats=2, min_sample_s=0.0, sync=m.sync, clock=m.clock)
    assert s.inner_loops == 1 and len(fn.calls) == 1 + 2
    assert s.samples == pytest.approx([0.001, 0.001])


def test_budget_takes_as_many_short_samples_as_fit():
    """budget_s = 0.5 s of 2 ms calls with min_sample_s = 8 ms: samples of 4 calls, 0.5 / 0.008 of them."""
    m = FakeMachine()
    fn = m.work("f", lambda i: 2.0 ** -9)  # 1.953125 ms, exact in binary
    s = benchmark(fn, warmup=2, repeats=3, budget_s=0.5, min_sample_s=2.0 ** -7, sync=m.sync, clock=m.clock)
    assert s.inner_loops == 4
    assert s.repeats == int(0.5 / 2.0 ** -7) == 64
    assert len(fn.calls) == 2 + 64 * 4
    # a budget smaller than one sample still gives the requested minimum of samples
    m2 = FakeMachine()
    s2 = benchmark(m2.work("g", lambda i: 0.1), warmup=1, repeats=3, budget_s=0.01, sync=m2.sync, clock=m2.clock)
    assert s2.repeats == 3


def test_statistics_are_median_iqr_mean_min_of_the_samples():
    m = FakeMachine()
    costs = [9.0, 1.0, 5.0, 3.0, 2.0, 4.0, 100.0]  # one huge outlier
    fn = m.work("f", lambda i: costs[i])
    s = benchmark(fn, warmup=0, repeats=7, inner_loops=1, sync=m.sync, clock=lambda: m.now)
    # warmup=0 and inner_loops given: no probe, so the samples are exactly the costs
    assert s.samples == pytest.approx(costs)
    assert s.median == np.median(costs) and s.min == 1.0 and s.mean == pytest.approx(np.mean(costs))
    q25, q75 = np.percentile(costs, [25, 75])
    assert s.iqr == pytest.approx(q75 - q25)
    assert s.median == 4.0  # the outlier moves the mean, not the median


def test_environment_is_recorded():
    s = benchmark(lambda: None, warmup=1, repeats=2, inner_loops=1)
    for key in ("device", "torch", "threads", "date", "page_faults_per_call"):
        assert key in s.env
    assert s.env["threads"] == torch.get_num_threads()
    assert s.env["torch"] == torch.__version__


@pytest.mark.parametrize("kwargs,name", [
    (dict(warmup=-1), "warmup"), (dict(repeats=0), "repeats"), (dict(repeats=-3), "repeats"),
    (dict(warmup=1.5), "warmup"), (dict(inner_loops=0), "inner_loops"),
    (dict(min_sample_s=-1.0), "min_sample_s"), (dict(sync=42), "sync"), (dict(device="tpu"), "device"),
    (dict(budget_s=0), "budget_s"), (dict(budget_s=-1.0), "budget_s"), (dict(budget_s="1s"), "budget_s"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        benchmark(lambda: None, **kwargs)


def test_not_callable_raises():
    with pytest.raises(ValueError, match="callable"):
        benchmark(42)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
@pytest.mark.parametrize("kwargs", [dict(device="cuda"), dict(sync="cuda")])
def test_cuda_asked_for_where_there_is_none(kwargs):
    with pytest.raises(ValueError, match="cuda.is_available"):
        benchmark(lambda: None, **kwargs)


def test_a_function_that_raises_is_reraised_naming_the_call():
    m = FakeMachine()
    state = {"n": 0}

    def flaky():
        state["n"] += 1
        if state["n"] == 6:  # the 6th call overall: warm-up 2, then timed call 4
            raise ZeroDivisionError("boom")
    with pytest.raises(BenchmarkError, match=r"timed call 4 of 10: ZeroDivisionError: boom") as info:
        benchmark(flaky, warmup=2, repeats=10, inner_loops=1, sync=m.sync, clock=m.clock)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    with pytest.raises(BenchmarkError, match="warm-up call 1 of 3"):
        benchmark(lambda: 1 / 0, warmup=3)


def test_compare_interleaves_a_and_b():
    """Order ABBA...: each function runs first in half of the rounds, so drift hits both."""
    m = FakeMachine()
    fa, fb = m.work("a", lambda i: 0.01), m.work("b", lambda i: 0.01)
    compare(fa, fb, warmup=1, repeats=6, inner_loops=1, sync=m.sync, clock=m.clock)
    order = [e for e in m.log if e in ("a", "b")][2:]  # drop the two warm-up calls
    assert order == list("ab" "ba" "ab" "ba" "ab" "ba")


def test_compare_different_costs_excludes_one():
    """B costs twice A (with 20% deterministic jitter): A is faster and the interval says so."""
    m = FakeMachine()
    rng = np.random.default_rng(1)
    jitter = rng.uniform(0.9, 1.1, size=1000)
    fa = m.work("a", lambda i: 0.010 * jitter[i])
    fb = m.work("b", lambda i: 0.020 * jitter[-1 - i])
    c = compare(fa, fb, warmup=2, repeats=15, inner_loops=1, sync=m.sync, clock=m.clock)
    assert c.ci_high < 1 and c.faster == "a"
    assert c.ci_low <= c.ratio <= c.ci_high
    assert c.speedup == pytest.approx(1 / c.ratio)
    swapped = compare(fb, fa, warmup=2, repeats=15, inner_loops=1, sync=m.sync, clock=m.clock)
    assert swapped.faster == "b"


def test_compare_same_function_twice_contains_one():
    """One function with noisy (but deterministic) costs compared with itself: no claim is made."""
    m = FakeMachine()
    jitter = np.random.default_rng(2).lognormal(0.0, 0.3, size=1000)
    calls = {"n": 0}

    def f():
        m.now += 0.005 * jitter[calls["n"]]
        calls["n"] += 1
    c = compare(f, f, warmup=2, repeats=20, inner_loops=1, sync=m.sync, clock=m.clock)
    assert c.ci_low <= 1 <= c.ci_high
    assert c.faster is None


def test_compare_real_sleeps_of_very_different_length():
    """Real clock: sleeping 10 ms vs 0.2 ms. Only the interval is asserted, never a time."""
    c = compare(lambda: time.sleep(0.01), lambda: time.sleep(0.0002), warmup=1, repeats=6,
                min_sample_s=0.0, inner_loops=1)
    assert c.faster == "b" and c.ci_low > 1


def test_bootstrap_interval_of_identical_samples_is_a_point():
    low, high = bootstrap_ratio_ci([2.0] * 5, [1.0] * 5)
    assert low == high == 2.0
    with pytest.raises(ValueError):
        bootstrap_ratio_ci([1.0, 2.0], [1.0])


@pytest.mark.parametrize("kwargs,name", [(dict(confidence=1.0), "confidence"),
                                         (dict(n_boot=0), "n_boot"), (dict(repeats=0), "repeats")])
def test_compare_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        compare(lambda: None, lambda: None, **kwargs)


def test_compare_names_which_function_failed():
    with pytest.raises(BenchmarkError, match=r"fn_b"):
        compare(lambda: None, lambda: [][1], warmup=1, repeats=2, inner_loops=1)


def test_page_faults_are_counted_per_call():
    """A function that maps and touches 1024 fresh pages per call shows ~1024 faults per call."""
    def touch():
        m = mmap.mmap(-1, 1024 * mmap.PAGESIZE)  # fresh anonymous pages: each first write faults
        a = np.frombuffer(m, dtype=np.uint8)
        a[::mmap.PAGESIZE] = 1
        del a
        m.close()
    s = benchmark(touch, warmup=1, repeats=3, inner_loops=2)
    if s.page_faults_per_call is None:
        pytest.skip("resource.getrusage is not available here")
    assert s.page_faults_per_call >= 1000
    assert benchmark(lambda: None, warmup=1, repeats=3, inner_loops=1000).page_faults_per_call < 1
