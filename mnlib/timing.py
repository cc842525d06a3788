"""A small, careful timing harness: warm-up, synchronisation, inner loops, medians, paired ratios.

What it does, and why:
- warm-up calls run first and are never counted (caches, lazy initialisation, allocator growth);
- ``sync`` is called after the work and before *every* clock read, so asynchronous work (a CUDA
  kernel queue) is finished when the clock is read;
- one sample is ``inner_loops`` back-to-back calls, with ``inner_loops`` chosen so a sample lasts at
  least ``min_sample_s``: short enough calls are then not lost in the clock's resolution;
- the summary is the median and the inter-quartile range, which one slow outlier cannot move;
- ``compare`` interleaves A and B (A B B A ...) so slow drift of the machine hits both, and gives
  the ratio of medians with a paired bootstrap interval: "A is faster" only when it excludes 1.
- minor page faults per call are read with ``resource.getrusage``: with glibc's default malloc a
  large temporary buffer is returned to the OS and faulted back in on every call, which can double
  a CPU layer's time (book page "Measuring time correctly"). A non-zero figure here is that trap;
  ``ALLOCATOR_TUNABLES`` removes it.

``clock`` and ``sync`` are injection points: tests drive the harness with a fake clock.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import math
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ._checks import check_int, check_number

try:  # not on every platform (Windows); page faults are then reported as None
    import resource
except ImportError:  # pragma: no cover
    resource = None

MAX_INNER_LOOPS = 100_000  # a call faster than min_sample_s / 1e5 is timed with this many loops

# glibc's malloc hands a block above its mmap threshold (dynamic, at most 32 MiB) straight to the OS
# and unmaps it on free, and trims the heap top above trim_threshold: a kernel that allocates a large
# temporary per call then page-faults the whole buffer in again on every call. Raising both
# thresholds to their maximum keeps freed memory in the process. glibc reads GLIBC_TUNABLES once, at
# process start, so it must be set in the environment of a new process (mnlib.measure re-executes).
ALLOCATOR_TUNABLES = "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295"


class BenchmarkError(RuntimeError):
    """The benchmarked function raised; the message names the phase and the call that failed."""



def cuda_sync(device: str = "cuda") -> Callable[[], None]:
    """torch.cuda.synchronize for ``device``; ValueError when CUDA is asked for and absent."""
    import torch

    check_device(device)
    return lambda: torch.cuda.synchronize(device)


def check_device(device: str) -> str:
    """Return ``device`` if torch can use it; a clear ValueError otherwise (e.g. 'cuda' on a CPU box)."""
    import torch

    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for, but torch.cuda.is_available() is False "
                             f"on this machine (torch {torch.__version__}); use device='cpu'")
    elif device != "cpu":
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    return device


@contextlib.contextmanager
def threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` (None: leave it), restoring it afterwards.

    On a machine shared with other work, one thread per process avoids the worst case of OpenMP:
    a thread that is descheduled holds every other thread at the next barrier.
    """
    import torch

    if n is None:
        yield
        return
    check_int("threads", n, 1)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def environment(device: str = "cpu") -> dict:
    """What a timing depends on: device, versions, thread count, date, host load."""
    import torch

    env = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
           "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "processor": _cpu_name(),
           "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
           "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
           "libc": " ".join(platform.libc_ver()).strip() or None, "numpy": np.__version__}
    if hasattr(os, "getloadavg"):
        env["loadavg_1min"] = round(os.getloadavg()[0], 2)
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def tunables_applied(environ=None) -> bool:
    """True when ``environ`` (default: this process's) sets both of ALLOCATOR_TUNABLES' thresholds."""
    value = (os.environ if environ is None else environ).get("GLIBC_TUNABLES") or ""
    have = set(value.split(":"))
    return all(t in have for t in ALLOCATOR_TUNABLES.split(":"))


def allocator_env(tuned: bool, environ=None) -> dict:
    """A copy of ``environ`` (default: os.environ) for a child process with glibc's malloc tuned
    (ALLOCATOR_TUNABLES added to any other tunables) or at its defaults (both thresholds removed)."""
    env = dict(os.environ if environ is None else environ)
    names = {t.split("=")[0] for t in ALLOCATOR_TUNABLES.split(":")}
    kept = [t for t in (env.get("GLIBC_TUNABLES") or "").split(":") if t and t.split("=")[0] not in names]
    if tuned:
        kept += ALLOCATOR_TUNABLES.split(":")
    if kept:
        env["GLIBC_TUNABLES"] = ":".join(kept)
    else:
        env.pop("GLIBC_TUNABLES", None)
    return env


def _cpu_name() -> str:
    try:  # Linux names the CPU model here; platform.processor() often says only 'x86_64'
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _minor_faults() -> int | None:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else None


@dataclass
class Stats:
    """Per-call times in seconds, one per sample (each sample averages ``inner_loops`` calls)."""
    samples: list[float]
    inner_loops: int
    warmup: int
    env: dict = field(default_factory=dict)
    page_faults_per_call: float | None = None

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr(self) -> float:
        """Inter-quartile range q75 - q25: the spread that ignores the slowest and fastest quarter."""
        q25, q75 = np.percentile(self.samples, [25, 75])
        return float(q75 - q25)

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples))

    @property
    def min(self) -> float:
        return float(np.min(self.samples))

    @property
    def max(self) -> float:
        return float(np.max(self.samples))

    @property
    def repeats(self) -> int:
        return len(self.samples)

    def to_dict(self) -> dict:
        return {"median_s": self.median, "iqr_s": self.iqr, "mean_s": self.mean, "min_s": self.min,
                "max_s": self.max, "samples_s": list(self.samples), "inner_loops": self.inner_loops,
                "warmup": self.warmup, "page_faults_per_call": self.page_faults_per_call}

    def __str__(self) -> str:
        return (f"median {_fmt(self.median)} (IQR {_fmt(self.iqr)}, min {_fmt(self.min)}) "
                f"over {self.repeats} samples x {self.inner_loops} calls")


def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _call(fn: Callable, phase: str, index: int, total: int):
    try:
        return fn()
    except Exception as e:  # re-raised with the call that failed; the original is the __cause__
        raise BenchmarkError(f"the benchmarked function raised on {phase} call {index} of {total}: "
                             f"{type(e).__name__}: {e}") from e


class _Timer:
    """Times one function: warm-up, choice of inner loops, then one sample per ``sample()`` call."""

    def __init__(self, fn, warmup, sync, min_sample_s, clock, inner_loops, label=""):
        if not callable(fn):
            raise ValueError(f"fn{label} must be callable, got {type(fn).__name__}")
        self.fn, self.sync, self.clock = fn, sync or (lambda: None), clock
        self.warmup, self.label = warmup, label
        self.min_sample_s, self.inner_loops = min_sample_s, inner_loops
        self.taken = 0

    def _timed(self, n: int, phase: str, first: int, total: int) -> float:
        self.sync()  # nothing queued may leak into this sample
        t0 = self.clock()
        for i in range(n):
            _call(self.fn, phase, first + i, total)
        self.sync()  # the work must be done before the clock is read
        return self.clock() - t0

    def prepare(self) -> None:
        """Warm-up calls (timed one by one, never counted); their fastest sets the inner loop count."""
        fastest = math.inf
        for i in range(self.warmup):
            fastest = min(fastest, self._timed(1, f"warm-up{self.label}", i + 1, self.warmup))
        if self.inner_loops is None:
            if self.warmup == 0:  # one probe call to learn the cost; not counted either
                fastest = self._timed(1, f"probe{self.label}", 1, 1)
            per_call = max(fastest, 1e-9)
            self.inner_loops = int(min(MAX_INNER_LOOPS, max(1, math.ceil(self.min_sample_s / per_call))))
        # what one sample should take, for budget_s (the fastest warm-up call; none: the target)
        self.sample_estimate_s = (fastest * self.inner_loops if math.isfinite(fastest)
                                  else self.min_sample_s)

    def sample(self, repeats: int) -> float:
        self.taken += 1
        n = self.inner_loops
        first = (self.taken - 1) * n + 1
        return self._timed(n, f"timed{self.label}", first, repeats * n) / n


def _resolve_sync(sync, device: str):
    check_device(device)
    if sync is None and device.startswith("cuda"):
        return cuda_sync(device)
    if sync == "cuda" or (isinstance(sync, str) and sync.startswith("cuda")):
        return cuda_sync(sync)
    if sync is not None and not callable(sync):
        raise ValueError(f"sync must be None, 'cuda' or a callable, got {sync!r}")
    return sync


def _check_common(warmup, repeats, min_sample_s, inner_loops):
    check_int("warmup", warmup, 0)
    check_int("repeats", repeats, 1)
    if inner_loops is not None:
        check_int("inner_loops", inner_loops, 1)
    check_number("min_sample_s", min_sample_s, inclusive=True)


class _Quiet:
    """Garbage collection off while timing (as timeit does): a collection is not the function's cost."""

    def __enter__(self):
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was:
            gc.enable()


def benchmark(fn: Callable[[], object], *, warmup: int = 3, repeats: int = 10, sync=None,
              min_sample_s: float = 0.02, clock: Callable[[], float] = time.perf_counter,
              inner_loops: int | None = None, device: str = "cpu", budget_s: float | None = None) -> Stats:
    """Time ``fn()``: ``warmup`` uncounted calls, then ``repeats`` samples of ``inner_loops`` calls.

    ``sync`` (a callable, or 'cuda') runs before every clock read; with ``device='cuda'`` it defaults
    to torch.cuda.synchronize. ``inner_loops=None`` picks the loop count so a sample lasts at least
    ``min_sample_s`` by the fastest warm-up call. Returns per-call seconds.

    ``budget_s``: spend about this many seconds in timed samples, as *many short* samples as fit
    (at least ``repeats``), as torch's Timer.blocked_autorange does: a short burst of load then
    spoils a few samples out of many, which the median ignores. bench/bench_timing_stability.py
    compares the two harnesses at the same budget.
    """
    _check_common(warmup, repeats, min_sample_s, inner_loops)
    check_number("budget_s", budget_s, none_ok=True)
    sync = _resolve_sync(sync, device)
    timer = _Timer(fn, warmup, sync, min_sample_s, clock, inner_loops)
    with _Quiet():
        timer.prepare()
        if budget_s is not None:
            repeats = max(repeats, int(budget_s / max(timer.sample_estimate_s, 1e-9)))
        faults0 = _minor_faults()
        samples = [timer.sample(repeats) for _ in range(repeats)]
        faults1 = _minor_faults()
    faults = None if faults0 is None else (faults1 - faults0) / (repeats * timer.inner_loops)
    env = environment(device)
    env["page_faults_per_call"] = faults
    return Stats(samples, timer.inner_loops, warmup, env, faults)


@dataclass
class Comparison:
    """time(A) / time(B) as a ratio of medians, with a paired bootstrap confidence interval."""
    a: Stats
    b: Stats
    ratio: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def faster(self) -> str | None:
        """'a' or 'b' when the interval lies wholly on one side of 1, else None (no claim)."""
        if self.ci_high < 1.0:
            return "a"
        if self.ci_low > 1.0:
            return "b"
        return None

    @property
    def speedup(self) -> float:
        """time(B) / time(A): how many times faster A is than B."""
        return 1.0 / self.ratio

    def __str__(self) -> str:
        verdict = {"a": "A is faster", "b": "B is faster", None: "no difference shown"}[self.faster]
        return (f"time(A)/time(B) = {self.ratio:.3f} ({self.confidence:.0%} CI "
                f"{self.ci_low:.3f}-{self.ci_high:.3f}): {verdict}")


def bootstrap_ratio_ci(a, b, confidence: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of median(a)/median(b), resampling the (a_i, b_i) pairs together.

    Pairs are resampled as pairs because sample i of A and of B were taken side by side and share
    the machine's state at that moment.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 1:
        raise ValueError("a and b must be 1-D sequences of the same, non-zero length")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def compare(fn_a: Callable[[], object], fn_b: Callable[[], object], *, warmup: int = 3,
            repeats: int = 20, sync=None, min_sample_s: float = 0.02,
            clock: Callable[[], float] = time.perf_counter, inner_loops: int | None = None,
            device: str = "cpu", confidence: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> Comparison:
    """Time A and B interleaved (A B, B A, A B, ...) and return time(A)/time(B) with its interval.

    Each function gets its own inner loop count; samples are per-call seconds, so they compare.
    """
    _check_common(warmup, repeats, min_sample_s, inner_loops)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    check_int("n_boot", n_boot, 1)
    sync = _resolve_sync(sync, device)
    ta = _Timer(fn_a, warmup, sync, min_sample_s, clock, inner_loops, label=" (fn_a)")
    tb = _Timer(fn_b, warmup, sync, min_sample_s, clock, inner_loops, label=" (fn_b)")
    sa, sb = [], []
    with _Quiet():
        ta.prepare()
        tb.prepare()
        for i in range(repeats):  # alternate the order so neither always runs second
            if i % 2 == 0:
                sa.append(ta.sample(repeats))
                sb.append(tb.sample(repeats))
            else:
                sb.append(tb.sample(repeats))
                sa.append(ta.sample(repeats))
    env = environment(device)
    a = Stats(sa, ta.inner_loops, warmup, env)
    b = Stats(sb, tb.inner_loops, warmup, env)
    low, high = bootstrap_ratio_ci(sa, sb, confidence, n_boot, seed)
    return Comparison(a, b, a.median / b.median, low, high, confidence)
