"""ps6_roofline: operational intensity of conv and linear layers, machine balance, attainable rate,
memory/compute bound, a roofline plot and a short measurement of this machine."""
from build_notebooks import GRADER, answer, md, readonly, tests

CHECKS = r"""
RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)
import random

import numpy as np

import mnlib.roofline as R

guard = Guard(["roofline.py", "cost.py", "timing.py"])
rng = random.Random(6)

# Helpers that must run where the learner's objects live: in the kernel when the grader runs these
# checks itself (autograder/remote.py), else here. Both are set up now, before any answer cell runs.
# (lines, not triple-quoted strings: these checks are pasted into one)
AXES_SRC = "\n".join([
    'import matplotlib.axes',
    'import matplotlib.pyplot as plt',
    'import numpy as np',
    'from matplotlib.lines import Line2D',
    '',
    '# References taken when this runs (before any answer cell), so a patched method cannot fake the data.',
    '_AXES = matplotlib.axes.Axes',
    '_xscale, _yscale, _xlabel, _ylabel = _AXES.get_xscale, _AXES.get_yscale, _AXES.get_xlabel, _AXES.get_ylabel',
    '_lines, _collections = _AXES.get_lines, _AXES.collections.fget',
    '_xdata, _ydata, _marker = Line2D.get_xdata, Line2D.get_ydata, Line2D.get_marker',
    '_subplots, _close = plt.subplots, plt.close',
    '',
    '',
    'def _floats(values):',
    '    return np.asarray(values, float).ravel().tolist()',
    '',
    '',
    'class Tools:',
    '    @staticmethod',
    '    def describe(ax):',
    '        # What the checks read from an Axes, as plain data.',
    '        if not (isinstance(ax, _AXES) and type(ax).__module__.startswith("matplotlib.")):',
    '            return {"axes": False, "type": type(ax).__name__}',
    '        lines, offsets = [], []',
    '        for line in _lines(ax):',
    '            marker = _marker(line)',
    '            try:',
    '                lines.append({"x": _floats(_xdata(line)), "y": _floats(_ydata(line)),',
    '                              "marker": None if marker is None else str(marker)})',
    '            except (TypeError, ValueError):',
    '                continue',
    '        for coll in _collections(ax):',
    '            try:',
    '                offsets.append(np.asarray(coll.get_offsets(), float).reshape(-1, 2).tolist())',
    '            except (TypeError, ValueError):',
    '                continue',
    '        return {"axes": True, "type": type(ax).__name__, "xscale": str(_xscale(ax)), "yscale": str(_yscale(ax)),',
    '                "xlabel": str(_xlabel(ax)), "ylabel": str(_ylabel(ax)), "lines": lines, "offsets": offsets}',
    '',
    '    @staticmethod',
    '    def new_axes():',
    '        return _subplots()[1]',
    '',
    '    @staticmethod',
    '    def close(ax):',
    '        if isinstance(ax, _AXES):',
    '            _close(ax.figure)',
])
WATCH_SRC = "\n".join([
    'import time',
    '',
    'import torch',
    '',
    '_perf_counter, _allclose = time.perf_counter, torch.allclose',
    '',
    '',
    'class Watch:',
    '    # The real clock, plus a witness: at every read it checks that the buffer being written (out or dst)',
    '    # was rewritten with the right values since the previous read, then plants sentinels in it again.',
    '    # So a call that times a smaller copy, or does the work outside the timed interval, is seen.',
    '    def __init__(self, buf, ref):',
    '        self.buf = buf.view(-1)',
    '        self.idx = torch.linspace(0, self.buf.numel() - 1, min(64, self.buf.numel())).long()',
    '        self.want = ref.reshape(-1)[self.idx].clone()',
    '        self.sentinel = self.want + 1000  # far from every right value, representable in fp16',
    '        self.reads = self.full = 0',
    '        self.last, self.intervals = None, []  # the intervals, between two reads, that did the whole work',
    '        self.warm = None  # at the first read: had an untimed call already written the result?',
    '        self.buf[self.idx] = self.sentinel',
    '',
    '    def __call__(self):',
    '        t = _perf_counter()',
    '        done = bool(_allclose(self.buf[self.idx], self.want, rtol=1e-4, atol=1e-3))',
    '        if self.reads == 0:',
    '            self.warm = done',
    '        elif done:',
    '            self.full += 1',
    '            self.intervals.append(t - self.last)',
    '        self.last = t',
    '        self.buf[self.idx] = self.sentinel',
    '        self.reads += 1',
    '        return t',
    '',
    '',
    'class Case:',
    "    # The arguments of one measurement and the watch on its output buffer, where the learner's code runs.",
    '    def __init__(self, args, buf_index, ref):',
    '        self.args = tuple(args)',
    '        self.watch = Watch(self.args[buf_index], ref)',
    '',
    '    def run(self, fn, warmup, repeats):',
    '        return fn(*self.args, warmup=warmup, repeats=repeats, clock=self.watch)',
])


TOOLS = kernel_define(AXES_SRC, "Tools")
CASE = kernel_define(WATCH_SRC, "Case")

# conv: (C_in, C_out, H, W, K, stride, groups, batch, dtype_bytes): odd sizes, K 1-7 (even too), strides 1-3, groups,
# batches 1-64, fp16 (2), fp32 (4), fp64 (8) and int8 (1).
CONV_CASES = [(3, 32, 224, 224, 3, 2, 1, 1, 4), (32, 64, 112, 112, 3, 1, 1, 1, 4), (16, 24, 7, 9, 5, 2, 1, 8, 2),
              (12, 20, 15, 15, 7, 2, 4, 3, 4), (64, 64, 13, 11, 3, 3, 8, 2, 2), (5, 7, 1, 1, 1, 1, 1, 1, 8),
              (6, 9, 17, 17, 3, 2, 3, 64, 2), (96, 96, 14, 14, 3, 1, 96, 1, 1), (1, 1, 5, 3, 5, 1, 1, 2, 4),
              # even K: P = floor((K - 1) / 2) is then not K // 2 (the text's formula holds for every K)
              (8, 16, 12, 10, 4, 1, 1, 2, 4), (6, 6, 9, 9, 2, 2, 3, 1, 2)]
for _ in range(16):
    g = rng.choice([1, 1, 2, 3, 4])
    CONV_CASES.append((g * rng.randint(1, 12), g * rng.randint(1, 12), rng.randint(1, 40), rng.randint(1, 40),
                       rng.choice([1, 3, 5, 7]), rng.choice([1, 2, 3]), g, rng.choice([1, 2, 5, 16]),
                       rng.choice([2, 4])))
CONV_REF = [(c, R.conv_intensity(*c)) for c in CONV_CASES]

# depthwise: (C, H, W, K, stride, batch, dtype_bytes); the first is the hand check 28224 / 25097.
DW_CASES = [(32, 112, 112, 3, 1, 1, 4), (144, 56, 56, 3, 2, 1, 4), (7, 9, 13, 5, 2, 3, 2), (96, 14, 14, 7, 1, 8, 2),
            (1, 1, 1, 3, 1, 1, 4), (24, 15, 17, 3, 3, 2, 4), (480, 7, 7, 5, 1, 64, 2)]
DW_REF = [(c, R.depthwise_intensity(*c)) for c in DW_CASES]
# pointwise: (C_in, C_out, H, W, batch, dtype_bytes)
PW_CASES = [(32, 16, 112, 112, 1, 4), (320, 1280, 7, 7, 1, 4), (3, 5, 9, 11, 2, 2), (960, 160, 7, 7, 64, 2),
            (1, 1, 1, 1, 1, 8), (24, 144, 13, 13, 3, 4)]
PW_REF = [(c, R.pointwise_intensity(*c)) for c in PW_CASES]
# DSC: (C_in, C_out, H, W, K, stride, batch, dtype_bytes, fused)
DSC_CASES = [(32, 64, 112, 112, 3, 1, 1, 4, False), (32, 64, 112, 112, 3, 1, 1, 4, True),
             (16, 24, 15, 13, 5, 2, 2, 2, False), (16, 24, 15, 13, 5, 2, 2, 2, True),
             (512, 512, 14, 14, 3, 1, 1, 4, False), (3, 7, 9, 9, 7, 3, 8, 2, True), (8, 8, 1, 1, 3, 2, 1, 4, False)]
DSC_REF = [(c, R.dsc_intensity(*c)) for c in DSC_CASES]
# linear: (in, out, batch, dtype_bytes, bias)
LIN_CASES = [(1280, 1000, 1, 4, True), (1280, 1000, 256, 2, True), (1024, 10, 3, 4, False), (7, 13, 64, 8, True),
             (1, 1, 1, 4, False), (960, 1280, 17, 2, False)]
LIN_REF = [(c, R.linear_intensity(*c)) for c in LIN_CASES]

# Machines (peak MAC/s, bandwidth bytes/s): the recorded H100 anchors of the course (fp32 and bf16 GEMM
# 26e12 and 393e12 MAC/s, copy 3.0e12 B/s) and two illustrative CPUs.
MACHINES = [(26e12, 3.0e12), (393e12, 3.0e12), (100e9, 20e9), (40e9, 25e9)]
INTENSITIES = [0.25, 1.1246, 3, 8.0, 8.6667, 20.5, 131, 500] + [r for _, r in DW_REF[:2] + PW_REF[:2]]
MACHINE_REF = []
for peak, bw in MACHINES:
    m = R.Machine("reference", peak, bw)
    # Exactly at the ridge too, where the balance is exact in floating point (so I B == P whichever
    # way a correct answer compares).
    ridge = [peak / bw] if (peak / bw).is_integer() else []
    MACHINE_REF.append((peak, bw, m.balance, [(i, R.attainable(i, m), R.bound(i, m)) for i in INTENSITIES + ridge]))

# Plot: MobileNet-like layers on two machines (intensities computed by mnlib).
LAYERS = {"stem 3x3 s2": R.conv_intensity(3, 32, 224, 224, 3, 2), "dw 3x3 112": DW_REF[0][1],
          "pw 32->16 112": PW_REF[0][1], "pw 320->1280 7": PW_REF[1][1], "classifier": LIN_REF[0][1],
          "dw 5x5 s2 fp16": DW_REF[2][1]}
PLOT_REF = []
for peak, bw in (MACHINES[2], MACHINES[0]):
    m = R.Machine("reference", peak, bw)
    PLOT_REF.append((peak, bw, m.balance, {k: (i, R.attainable(i, m) / 1e9) for k, i in LAYERS.items()}))

# (M, K, N, dtype, warmup) and (numel, dtype, warmup): warmup=0 in one case of each, so a warmup= that
# is ignored (the default's one untimed call made whatever the caller asks) is seen
GEMM_CASES = [(384, 256, 320, torch.float32, 2), (200, 96, 129, torch.float64, 0), (512, 512, 512, torch.float32, 3)]
COPY_CASES = [(8 << 20, torch.float32, 2), (3_000_001, torch.float16, 0)]  # 32 MiB; an odd number of halves
REPEATS = 3
MAX_MACS_PER_S = 1e16   # 25x an H100's bf16 dense peak: no real measurement comes near it
MAX_BYTES_PER_S = 1e14  # 20x an H200's HBM bandwidth


DEFAULTS = {"conv_intensity": {"k": 3, "stride": 1, "groups": 1, "batch": 1, "dtype_bytes": 4},
            "depthwise_intensity": {"k": 3, "stride": 1, "batch": 1, "dtype_bytes": 4},
            "pointwise_intensity": {"batch": 1, "dtype_bytes": 4},
            "dsc_intensity": {"k": 3, "stride": 1, "batch": 1, "dtype_bytes": 4, "fused": False},
            "linear_intensity": {"batch": 1, "dtype_bytes": 4, "bias": True}}


def _intensity(fn, name, args, kwargs, expected):
    if sum(int(a) for a in args) % 2 == 0:  # about half the cases leave out the keywords equal to the defaults
        kwargs = {k: v for k, v in kwargs.items() if not (type(v) is type(DEFAULTS[name].get(k, ...))
                                                          and v == DEFAULTS[name][k])}
    shown = ", ".join([str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()])
    close_float(guard.call(name, fn, *args, **kwargs), expected, f"{name}({shown})")


def check_conv(conv_intensity):
    scan(conv_intensity, "conv_intensity")
    each_case("conv_intensity", CONV_REF, lambda r: _intensity(
        conv_intensity, "conv_intensity", r[0][:4], dict(zip(("k", "stride", "groups", "batch", "dtype_bytes"), r[0][4:])), r[1]))


def check_dw_pw(depthwise_intensity, pointwise_intensity):
    scan(depthwise_intensity, "depthwise_intensity")
    scan(pointwise_intensity, "pointwise_intensity")
    each_case("depthwise_intensity and pointwise_intensity", [("dw", r) for r in DW_REF] + [("pw", r) for r in PW_REF],
              lambda c: _intensity(depthwise_intensity, "depthwise_intensity", c[1][0][:3],
                                   dict(zip(("k", "stride", "batch", "dtype_bytes"), c[1][0][3:])), c[1][1])
              if c[0] == "dw" else _intensity(pointwise_intensity, "pointwise_intensity", c[1][0][:4],
                                              dict(zip(("batch", "dtype_bytes"), c[1][0][4:])), c[1][1]))


def check_dsc(dsc_intensity):
    scan(dsc_intensity, "dsc_intensity")
    each_case("dsc_intensity", DSC_REF, lambda r: _intensity(
        dsc_intensity, "dsc_intensity", r[0][:4], dict(zip(("k", "stride", "batch", "dtype_bytes", "fused"), r[0][4:])), r[1]))


def check_linear(linear_intensity):
    scan(linear_intensity, "linear_intensity")
    each_case("linear_intensity", LIN_REF, lambda r: _intensity(
        linear_intensity, "linear_intensity", r[0][:2], dict(zip(("batch", "dtype_bytes", "bias"), r[0][2:])), r[1]))


def check_balance_attainable(machine_balance, attainable):
    scan(machine_balance, "machine_balance")
    scan(attainable, "attainable")

    def case(ref):
        peak, bw, balance, rows = ref
        close_float(guard.call("machine_balance", machine_balance, peak, bw), balance,
                    f"machine_balance({peak:g}, {bw:g})")
        for i, rate, _ in rows:
            close_float(guard.call("attainable", attainable, i, peak, bw), rate,
                        f"attainable({i:.6g}, {peak:g}, {bw:g})")

    each_case("machine_balance and attainable", MACHINE_REF, case)


def check_bound(bound):
    scan(bound, "bound")

    def case(ref):
        peak, bw, balance, rows = ref
        for i, _, which in rows:
            got = guard.call("bound", bound, i, peak, bw)
            need(type(got) is str and got in ("memory", "compute"),
                 f"bound(...) should return the string 'memory' or 'compute', got {got!r}")
            need(got == which, f"bound({i:.6g}, peak={peak:g}, bandwidth={bw:g}): a layer with this intensity on "
                               f"a machine of balance {balance:.4g} MAC/byte is not {got}-bound")

    each_case("bound", MACHINE_REF, case)


def _marked_points(desc):
    # Data points drawn with a marker: lines with a visible marker, and scatter collections.
    pts = []
    for line in desc["lines"]:
        if line["marker"] in (None, "None", "none", "", " "):
            continue
        pts += list(zip(line["x"], line["y"]))
    for offs in desc["offsets"]:
        pts += [tuple(p) for p in offs]
    return pts


def _near(p, q, rel=1e-6):
    return isclose(p[0], q[0], rel_tol=rel) and isclose(p[1], q[1], rel_tol=rel)


def _roof_ok(line, peak, bw, lo, hi):
    # Every vertex on min(peak, I B) in GMAC/s, spanning [lo, hi], and the knee drawn (not cut off).
    xs, ys = np.asarray(line["x"], float), np.asarray(line["y"], float)
    if len(xs) < 2 or len(xs) != len(ys) or not np.all(np.isfinite(xs)) or not np.all(xs > 0):
        return False
    if not all(isclose(y, min(peak, x * bw) / 1e9, rel_tol=1e-6) for x, y in zip(xs.tolist(), ys.tolist())):
        return False
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if not (xs[0] <= lo * (1 + 1e-9) and xs[-1] >= hi * (1 - 1e-9)):
        return False
    if any(isclose(x, peak / bw, rel_tol=1e-6) for x in xs.tolist()):
        return True  # the corner itself is a vertex
    # sampled (np.geomspace): between two samples the straight chord cuts the corner; up to 15% is a
    # rounded corner (20 samples over the four decades cut 11%), more is a roof that misses the ridge
    knee = 10 ** np.interp(np.log10(peak / bw), np.log10(xs), np.log10(ys))
    return knee >= 0.85 * peak / 1e9


def _check_axes(desc, peak, bw, balance, layers, what):
    need(desc["axes"], f"{what} should return the matplotlib Axes it drew on, got {desc['type']}")
    need(desc["xscale"] == "log" and desc["yscale"] == "log",
         f"{what}: both axes should be logarithmic (got x {desc['xscale']!r}, y {desc['yscale']!r})")
    need(bool(desc["xlabel"].strip()) and bool(desc["ylabel"].strip()), f"{what}: label both axes (with units)")
    lo = min([balance / 100] + [i for i, _ in layers.values()])
    hi = max([balance * 100] + [i for i, _ in layers.values()])
    need(any(_roof_ok(line, peak, bw, lo, hi) for line in desc["lines"]),
         f"{what}: no line follows the roof min(peak, I x bandwidth) in GMAC/s from I = {lo:.3g} to {hi:.3g} "
         "MAC/byte through the ridge point")
    pts = _marked_points(desc)
    need(any(_near(p, (balance, peak / 1e9)) for p in pts),
         f"{what}: mark the ridge point (machine balance, peak in GMAC/s) with a marker")
    for name, (i, rate) in layers.items():
        need(any(_near(p, (i, rate)) for p in pts),
             f"{what}: layer {name!r} should be a point at (its intensity, its attainable rate in GMAC/s)")


def check_plot(plot_roofline):
    scan(plot_roofline, "plot_roofline")
    for peak, bw, balance, ref in PLOT_REF:
        layers = {k: i for k, (i, _) in ref.items()}
        what = f"plot_roofline(peak={peak:g}, bandwidth={bw:g}, ...)"
        ax = guard.call("plot_roofline", plot_roofline, peak, bw, dict(layers))
        try:
            _check_axes(TOOLS.describe(ax), peak, bw, balance, ref, what)
        finally:
            TOOLS.close(ax)
    given = TOOLS.new_axes()
    try:
        peak, bw, balance, ref = PLOT_REF[0]
        ax = guard.call("plot_roofline", plot_roofline, peak, bw, {k: i for k, (i, _) in ref.items()}, ax=given)
        need(ax is given or (remote(ax) and ax == given),
             "plot_roofline(..., ax=ax) should draw on the Axes it is given and return it")
    finally:
        TOOLS.close(given)


def _real(v, what):
    v = real_value(v, what)
    need(math.isfinite(v) and v > 0, f"{what} should be finite and > 0, got {v!r}")
    return v


def _result(res, key, what):
    need(isinstance(res, dict) and key in res and "seconds" in res,
         f"{what} should return a dict with {key!r} and 'seconds'")
    secs = res["seconds"]
    if isinstance(secs, Tensor) and secs.dim() == 1:
        secs = secs.tolist()  # the text asks for a list; a 1-d tensor of the times says the same
    need(isinstance(secs, (list, tuple, np.ndarray)),
         f"{what}: 'seconds' should be the list of the per-call times, got {kind(secs)}")
    need(len(secs) == REPEATS,
         f"{what}: 'seconds' should hold one time per repeat ({REPEATS} with repeats={REPEATS})")
    secs = [_real(s, f"{what}: every entry of 'seconds'") for s in secs]
    return _real(res[key], f"{what}[{key!r}]"), float(np.median(secs))


def _watched(what, fn, work, args, buf_index, ref, key, unit, limit, warmup):
    case = CASE(list(args), buf_index, ref)
    res = guard.call(what.split(" ")[0], case.run, fn, warmup, REPEATS)
    rate, med = _result(res, key, what)
    if warmup:
        need(case.watch.warm, f"{what}: with warmup={warmup}, the first clock read came before any untimed call "
                              f"had done the {unit}: run the warm-up calls first, then start timing")
    else:
        need(not case.watch.warm, f"{what}: with warmup=0, an untimed {unit} came before the first clock read: "
                                  "make exactly `warmup` untimed calls (none here), whatever its default")
    full = case.watch.full
    need(full >= REPEATS,
         f"{what}: only {full} of the intervals between two clock reads did the whole {unit}; each of the "
         f"{REPEATS} timed calls should (use the clock you are given, just before and just after each call)")
    secs = [float(v) for v in res["seconds"]]
    got = [float(v) for v in case.watch.intervals]
    need(all(any(isclose(v, g, rel_tol=1e-9, abs_tol=1e-12) for g in got) for v in secs),
         f"{what}: each entry of 'seconds' should be the time of one timed call: clock() read just after it "
         "minus clock() read just before it")
    need(isclose(rate * med, work, rel_tol=1e-6),
         f"{what}: {key} x median(seconds) should be the work of one call "
         f"(yours is {rate * med / work:.3g} times that)")
    need(rate < limit, f"{what}: {rate:.3g} {key.replace('_per_s', '')}/s is beyond any machine; is the work really timed?")


def check_gemm(measure_gemm):
    scan(measure_gemm, "measure_gemm")
    g = torch.Generator().manual_seed(6)
    inputs = [(m, k, n, dtype, w, torch.randn(m, k, generator=g, dtype=dtype), torch.randn(k, n, generator=g, dtype=dtype))
              for m, k, n, dtype, w in GEMM_CASES]

    def case(c):
        m, k, n, dtype, w, a, b = c
        what = f"measure_gemm on ({m} x {k}) @ ({k} x {n}) {str(dtype).replace('torch.', '')}, warmup={w}"
        # the work of one product is M K N MACs
        _watched(what, measure_gemm, m * k * n, (a, b, torch.zeros(m, n, dtype=dtype)), 2, torch.mm(a, b), "macs_per_s",
                 "product a @ b into out", MAX_MACS_PER_S, w)

    each_case("measure_gemm", inputs, case)


def check_bandwidth(measure_bandwidth):
    scan(measure_bandwidth, "measure_bandwidth")
    g = torch.Generator().manual_seed(7)
    inputs = [(numel, dtype, w, torch.rand(numel, generator=g).to(dtype)) for numel, dtype, w in COPY_CASES]

    def case(c):
        numel, dtype, w, src = c
        nbytes = numel * src.element_size()
        what = f"measure_bandwidth on {nbytes} bytes of {str(dtype).replace('torch.', '')}, warmup={w}"
        # one copy reads src and writes dst: 2 x nbytes
        _watched(what, measure_bandwidth, 2 * nbytes, (src, torch.zeros(numel, dtype=dtype)), 1, src, "bytes_per_s",
                 "copy of src into dst", MAX_BYTES_PER_S, w)

    each_case("measure_bandwidth", inputs, case)
"""


def cells(setup_cell):
    return [
        md("""
# Problem set 6: the roofline

A layer's MAC count says how much arithmetic it needs; it does not say how long it takes. The
processor must also bring every operand from memory and write every result back. The **roofline**
(Williams, Waterman and Patterson, 2009) turns this into two numbers per layer and two per machine.
You will compute the operational intensity of the layers of a MobileNet, classify them as memory- or
compute-bound on several machines, draw a roofline, and measure your own machine. Chapter 8 of the
book explains all of it.

**Conventions.** Work is counted in MACs (one multiply-accumulate; a FLOP count is twice as large),
so intensity is in **MAC/byte**, peaks in MAC/s and bandwidth in bytes/s.

**Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` in your
answers (the grader compares with it, and an answer that uses it scores zero for that part). The
visible tests check a few cases; the grader checks many more shapes, strides, groups, batch sizes and
data types. Nothing here asserts how fast your machine is.
"""),
        setup_cell,
        readonly("ps6_imports", """
import math
import time
import numpy as np
import torch
import matplotlib.pyplot as plt
"""),
        md("""
## 1. Operational intensity of a convolution

The **operational intensity** of a layer is $I = W / Q$: its work $W$ in MACs over the bytes $Q$ it
moves to and from main memory. Use the **minimum-traffic model**: the input is read once, the weights
are read once, the output is written once (no re-reads, no caches, no bias). Every element takes
`dtype_bytes` bytes (4 for fp32, 2 for fp16).

A $K \\times K$ convolution with stride $s$, `groups` $g$ and "same" padding $P = \\lfloor (K-1)/2
\\rfloor$ maps a batch of $N$ inputs $(C_{in}, H, W)$ to outputs $(C_{out}, H', W')$ with
$H' = \\lfloor (H + 2P - K)/s \\rfloor + 1$ (and the same for $W'$). Each output element is a dot
product of length $(C_{in}/g) K^2$, and the weights hold $C_{out} (C_{in}/g) K^2$ elements:

$$W = N H' W' C_{out} \\frac{C_{in}}{g} K^2, \\qquad
Q = \\text{dtype\\_bytes} \\times \\Big(N C_{in} H W + C_{out} \\frac{C_{in}}{g} K^2 + N C_{out} H' W'\\Big).$$

A depthwise convolution is the case $g = C_{in} = C_{out}$; a pointwise one is $K = 1$. Return a
number (a Python `float` or `int`, a numpy scalar, or a one-element array or tensor: any will do;
the grader compares its value to within a relative $10^{-9}$, so compute in float64, not float32).

*Hand check.* A $3 \\times 3$ depthwise convolution, stride 1, on $112 \\times 112 \\times C$ in fp32 does
$112^2 \\cdot 9\\, C$ MACs and moves $4 (2 \\cdot 112^2 + 9)\\, C$ bytes: $I = 28224/25097 \\approx 1.12$
MAC/byte whatever $C$ is, and about $K^2/8$ on any large map.
"""),
        answer("ps6_answer_conv", """
def out_size(size, k, stride=1):
    \"\"\"Output length along one axis with 'same' padding P = (K - 1) // 2.\"\"\"
    ### BEGIN SOLUTION
    p = (k - 1) // 2
    return (size + 2 * p - k) // stride + 1
    ### END SOLUTION


def conv_intensity(c_in, c_out, h, w, k=3, stride=1, groups=1, batch=1, dtype_bytes=4):
    \"\"\"MAC/byte of a KxK conv C_in -> C_out (groups g, stride s) on N x C_in x H x W.\"\"\"
    ### BEGIN SOLUTION
    ho, wo = out_size(h, k, stride), out_size(w, k, stride)
    weights = c_out * (c_in // groups) * k * k
    macs = batch * ho * wo * weights  # each output pixel of each image uses every weight once
    elements = batch * c_in * h * w + weights + batch * c_out * ho * wo  # read x, read W, write y
    return macs / (elements * dtype_bytes)
    ### END SOLUTION


def depthwise_intensity(c, h, w, k=3, stride=1, batch=1, dtype_bytes=4):
    \"\"\"MAC/byte of a depthwise KxK conv (groups = C) on N x C x H x W.\"\"\"
    ### BEGIN SOLUTION
    return conv_intensity(c, c, h, w, k, stride, groups=c, batch=batch, dtype_bytes=dtype_bytes)
    ### END SOLUTION


def pointwise_intensity(c_in, c_out, h, w, batch=1, dtype_bytes=4):
    \"\"\"MAC/byte of a 1x1 conv C_in -> C_out on N x C_in x H x W.\"\"\"
    ### BEGIN SOLUTION
    return conv_intensity(c_in, c_out, h, w, 1, 1, 1, batch, dtype_bytes)
    ### END SOLUTION
"""),
        tests("ps6_conv_intensity", 3,
              "Is conv_intensity the MACs per byte of the minimum traffic, for many shapes, strides, groups, batches and dtypes?",
              """
# An independent count with torch: MACs from the output size, bytes from the tensors' own sizes.
conv = torch.nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2, bias=False)
x = torch.zeros(2, 6, 9, 9)
y = conv(x)
macs = y.numel() * (6 // 2) * 3 * 3
nbytes = 4 * (x.numel() + conv.weight.numel() + y.numel())
mine = conv_intensity(6, 8, 9, 9, k=3, stride=2, groups=2, batch=2, dtype_bytes=4)
assert math.isclose(mine, macs / nbytes), f"conv_intensity(6, 8, 9, 9, k=3, stride=2, groups=2, batch=2): expected {macs / nbytes:.6g}, got {mine}"
assert math.isclose(conv_intensity(6, 8, 9, 9, 3, 2, 2, 2, dtype_bytes=2), 2 * mine), "fp16 moves half the bytes"
""", f"{GRADER}.check_conv(conv_intensity)"),
        tests("ps6_dw_pw_intensity", 2,
              "Are depthwise_intensity (the 28224/25097 hand check included) and pointwise_intensity right on many layers?",
              """
assert math.isclose(depthwise_intensity(32, 112, 112), 28224 / 25097), "the hand check: 3x3 depthwise, 112x112, fp32"
assert math.isclose(depthwise_intensity(7, 112, 112), 28224 / 25097), "a depthwise conv's intensity does not depend on C"
assert abs(depthwise_intensity(8, 1000, 1000, dtype_bytes=2) - 9 / 4) < 0.01, "about K^2 / (2 dtype_bytes) on a large map"
mine = pointwise_intensity(32, 16, 112, 112)
expected = 112 * 112 * 32 * 16 / (4 * (112 * 112 * (32 + 16) + 32 * 16))
assert math.isclose(mine, expected), f"pointwise_intensity(32, 16, 112, 112): expected {expected:.6g}, got {mine}"
""", f"{GRADER}.check_dw_pw(depthwise_intensity, pointwise_intensity)"),
        md("""
## 2. A separable convolution and a linear layer

A **depthwise separable convolution** (DSC) is a depthwise $K \\times K$ convolution (stride $s$) then a
pointwise $1 \\times 1$ convolution $C_{in} \\to C_{out}$. Run as two separate kernels, the depthwise
output $(N, C_{in}, H', W')$ is written to memory and read back by the pointwise step. A *fused*
kernel keeps it on chip: then only $x$ is read, both weights are read and $y$ is written. Write
`dsc_intensity` for both (`fused=False` and `fused=True`) as total MACs over total bytes.

A **linear layer** `in_features -> out_features` on a batch of $N$ does $N \\cdot in \\cdot out$ MACs; it reads
the input $(N, in)$ and the weights $(out, in)$ plus the bias $(out)$ when `bias=True`, and writes
$(N, out)$. At batch 1 it uses each weight for a single MAC: what does that mean for its intensity?
"""),
        answer("ps6_answer_dsc", """
def dsc_intensity(c_in, c_out, h, w, k=3, stride=1, batch=1, dtype_bytes=4, fused=False):
    \"\"\"MAC/byte of depthwise KxK (stride s) then pointwise 1x1, as one unit.\"\"\"
    ### BEGIN SOLUTION
    ho, wo = out_size(h, k, stride), out_size(w, k, stride)
    macs = batch * ho * wo * c_in * k * k + batch * ho * wo * c_in * c_out
    x, mid, y = batch * c_in * h * w, batch * c_in * ho * wo, batch * c_out * ho * wo
    weights = c_in * k * k + c_in * c_out
    # Unfused, the depthwise output is written by the first kernel and read back by the second.
    elements = x + weights + y + (0 if fused else 2 * mid)
    return macs / (elements * dtype_bytes)
    ### END SOLUTION
"""),
        tests("ps6_dsc_intensity", 2,
              "Is dsc_intensity right, with the intermediate tensor's traffic when unfused and without it when fused?",
              """
unfused, fused = dsc_intensity(32, 64, 112, 112), dsc_intensity(32, 64, 112, 112, fused=True)
assert fused > unfused, "fusing removes traffic, so it raises the intensity"
macs = 112 * 112 * 32 * 9 + 112 * 112 * 32 * 64
assert math.isclose(macs / unfused - macs / fused, 4 * 2 * 112 * 112 * 32), "unfused moves the intermediate twice more"
""", f"{GRADER}.check_dsc(dsc_intensity)"),
        answer("ps6_answer_linear", """
def linear_intensity(in_features, out_features, batch=1, dtype_bytes=4, bias=True):
    \"\"\"MAC/byte of a fully connected layer in -> out on a batch of N.\"\"\"
    ### BEGIN SOLUTION
    weights = in_features * out_features + (out_features if bias else 0)
    elements = batch * in_features + weights + batch * out_features
    return batch * in_features * out_features / (elements * dtype_bytes)
    ### END SOLUTION
"""),
        tests("ps6_linear_intensity", 1,
              "Is linear_intensity right for many sizes, batches, dtypes, with and without bias?",
              """
lin = torch.nn.Linear(1280, 1000)
n_bytes = 4 * (1280 + sum(p.numel() for p in lin.parameters()) + 1000)
assert math.isclose(linear_intensity(1280, 1000), 1280 * 1000 / n_bytes), "linear_intensity(1280, 1000): read the input, the weights and the bias, write the output"
assert linear_intensity(1280, 1000) < 1 / 4, "at batch 1 every weight is read for one MAC"
""", f"{GRADER}.check_linear(linear_intensity)"),
        md("""
## 3. Machine balance, attainable rate, bound

A machine with peak arithmetic rate $P$ (MAC/s) and memory bandwidth $B$ (bytes/s) has **balance**
(the ridge point) $P / B$ in MAC/byte. A layer of intensity $I$ cannot go faster than the arithmetic
units ($P$) nor than memory can feed it ($I \\cdot B$), so its **attainable rate** is
$\\min(P, I \\cdot B)$. It is **memory-bound** when $I$ is below the balance and **compute-bound**
otherwise (at the ridge itself both roofs meet: call it compute-bound). The same layer can be
memory-bound on one machine and compute-bound on another.
"""),
        answer("ps6_answer_machine", """
def machine_balance(peak_macs_per_s, bandwidth_bytes_per_s):
    \"\"\"The ridge point P / B in MAC/byte.\"\"\"
    ### BEGIN SOLUTION
    return peak_macs_per_s / bandwidth_bytes_per_s
    ### END SOLUTION


def attainable(intensity, peak_macs_per_s, bandwidth_bytes_per_s):
    \"\"\"Attainable MAC/s = min(P, I x B).\"\"\"
    ### BEGIN SOLUTION
    return min(peak_macs_per_s, intensity * bandwidth_bytes_per_s)
    ### END SOLUTION
"""),
        tests("ps6_balance_attainable", 2,
              "Are machine_balance and attainable right on several machines, below, at and above the ridge?",
              """
assert math.isclose(machine_balance(100e9, 20e9), 5.0), "machine_balance(100e9, 20e9): P / B = 5 MAC/byte"
assert math.isclose(attainable(1.0, 100e9, 20e9), 20e9), "below the ridge, memory sets the rate"
assert math.isclose(attainable(50.0, 100e9, 20e9), 100e9), "above the ridge, the peak does"
""", f"{GRADER}.check_balance_attainable(machine_balance, attainable)"),
        answer("ps6_answer_bound", """
def bound(intensity, peak_macs_per_s, bandwidth_bytes_per_s):
    \"\"\"'memory' when I is below the machine balance, else 'compute'.\"\"\"
    ### BEGIN SOLUTION
    return "memory" if intensity < machine_balance(peak_macs_per_s, bandwidth_bytes_per_s) else "compute"
    ### END SOLUTION
"""),
        tests("ps6_bound", 2,
              "Does bound classify layers as memory- or compute-bound on several machines, the ridge itself included?",
              """
assert bound(1.12, 100e9, 20e9) == "memory", "a 3x3 depthwise conv on a CPU of balance 5"
assert bound(30.0, 100e9, 20e9) == "compute", "intensity 30 above a balance of 5: compute-bound"
assert bound(30.0, 393e12, 3.0e12) == "memory", "the same layer on a GPU of balance 131"
""", f"{GRADER}.check_bound(bound)"),
        md("""
## 4. The roofline plot

Write `plot_roofline(peak_macs_per_s, bandwidth_bytes_per_s, layers, ax=None)`. `layers` maps a
layer's name to its intensity. Draw on `ax` (create a figure with `plt.subplots()` when it is `None`)
and return the Axes:

- both axes **logarithmic**: intensity in MAC/byte on $x$, attainable rate in **GMAC/s** on $y$
  (MAC/s divided by $10^9$); label both axes with their units;
- the **roof** $\\min(P, I B)$ as one line with no markers, from $I$ = balance/100 (or the smallest
  layer intensity, if smaller) to balance × 100 (or the largest): on log-log axes it is two straight
  segments, so its three corners are enough, or use `np.geomspace` (with enough points that the
  corner is not cut by more than 15%: its default 50 do, or put the balance among the $x$ values);
- the **ridge point** (balance, $P$) marked with a marker;
- each layer as a marked point at (its intensity, its attainable rate), e.g. with `ax.scatter`,
  labelled as you like.

The grader reads the data back from the Axes (scales, lines, points), never the pixels.
"""),
        answer("ps6_answer_plot", """
def plot_roofline(peak_macs_per_s, bandwidth_bytes_per_s, layers, ax=None):
    \"\"\"Log-log roofline (GMAC/s vs MAC/byte) with the ridge point and the layers; returns the Axes.\"\"\"
    ### BEGIN SOLUTION
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    peak, bw = peak_macs_per_s, bandwidth_bytes_per_s
    ridge = machine_balance(peak, bw)
    lo = min([ridge / 100] + list(layers.values()))
    hi = max([ridge * 100] + list(layers.values()))
    xs = [lo, ridge, hi]  # two straight segments on log-log axes: the corners are the whole roof
    ax.loglog(xs, [attainable(x, peak, bw) / 1e9 for x in xs], color="black", lw=2, label="roofline")
    ax.plot([ridge], [peak / 1e9], "k^", ms=8, label=f"ridge {ridge:.3g} MAC/byte")
    for name, i in layers.items():
        ax.scatter([i], [attainable(i, peak, bw) / 1e9], s=25, zorder=3, label=name)
    ax.set_xlabel("operational intensity (MAC/byte)")
    ax.set_ylabel("attainable rate (GMAC/s)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    return ax
    ### END SOLUTION
"""),
        tests("ps6_roofline_plot", 2,
              "Is the plot log-log, with the roof, the ridge point and every layer at the right coordinates?",
              """
ax = plot_roofline(100e9, 20e9, {"dw 3x3": 28224 / 25097, "pw": 30.0})
assert ax.get_xscale() == "log" and ax.get_yscale() == "log", "use logarithmic axes (ax.loglog or set_xscale/set_yscale)"
assert ax.get_xlabel() and ax.get_ylabel(), "label both axes"
plt.close(ax.figure)
""", f"{GRADER}.check_plot(plot_roofline)"),
        md("""
## 5. Measure your machine

Two short benchmarks give this machine's roofline. Time each call with `clock()` read just before and
just after it, after `warmup` untimed calls, `repeats` times, and return the per-call times as a list
`"seconds"` with a rate computed from their **median**:

- `measure_gemm(a, b, out, ...)` times `torch.mm(a, b, out=out)` for `a` of shape $(M, K)$ and `b` of
  shape $(K, N)$; one product does $M K N$ MACs. Return `{"macs_per_s": ..., "seconds": [...]}`.
- `measure_bandwidth(src, dst, ...)` times `dst.copy_(src)`; one copy reads all of `src` and writes all
  of `dst`. Return `{"bytes_per_s": ..., "seconds": [...]}` where the bytes are what one copy moves.

The grader checks that the warm-up calls happen before the first clock read, that the product and the
copy really happen in every timed interval, that rate × median time is the work of one call, and that
the figures are positive and physically possible: never how fast your machine is.
Read the time only through the `clock` you are given: the grader passes one that also watches that
every timed call really does the whole product or the whole copy.
"""),
        answer("ps6_answer_measure", """
def measure_gemm(a, b, out, *, warmup=1, repeats=5, clock=time.perf_counter):
    \"\"\"Peak-ish MAC/s of torch.mm(a, b, out=out): M K N MACs per product over the median time.\"\"\"
    ### BEGIN SOLUTION
    for _ in range(warmup):  # first calls pay for thread start-up and caches
        torch.mm(a, b, out=out)
    seconds = []
    for _ in range(repeats):
        t0 = clock()
        torch.mm(a, b, out=out)
        seconds.append(clock() - t0)
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    return {"macs_per_s": macs / float(np.median(seconds)), "seconds": seconds}
    ### END SOLUTION


def measure_bandwidth(src, dst, *, warmup=1, repeats=5, clock=time.perf_counter):
    \"\"\"Copy bandwidth in bytes/s of dst.copy_(src): read src + write dst per copy, over the median time.\"\"\"
    ### BEGIN SOLUTION
    for _ in range(warmup):
        dst.copy_(src)
    seconds = []
    for _ in range(repeats):
        t0 = clock()
        dst.copy_(src)
        seconds.append(clock() - t0)
    moved = src.numel() * src.element_size() + dst.numel() * dst.element_size()
    return {"bytes_per_s": moved / float(np.median(seconds)), "seconds": seconds}
    ### END SOLUTION
"""),
        tests("ps6_measure_gemm", 1,
              "Does measure_gemm compute the product and report M K N MACs over the median time, a plausible rate?",
              """
a, b, out = torch.randn(256, 128), torch.randn(128, 192), torch.empty(256, 192)
res = measure_gemm(a, b, out, repeats=3)
assert torch.allclose(out, a @ b, atol=1e-4), "out should hold a @ b"
assert len(res["seconds"]) == 3, f"repeats=3 should give 3 times, got {len(res['seconds'])}"
assert math.isclose(res["macs_per_s"] * np.median(res["seconds"]), 256 * 128 * 192), "macs_per_s x median(seconds) should be M K N = 256 * 128 * 192"
""", f"{GRADER}.check_gemm(measure_gemm)"),
        tests("ps6_measure_bandwidth", 1,
              "Does measure_bandwidth really copy src into dst and count the bytes read and written per copy?",
              """
src, dst = torch.rand(1 << 20), torch.zeros(1 << 20)
res = measure_bandwidth(src, dst, repeats=3)
assert torch.equal(dst, src), "dst should hold a copy of src"
assert math.isclose(res["bytes_per_s"] * np.median(res["seconds"]), 2 * 4 * (1 << 20)), "a copy reads 4 MiB and writes 4 MiB"
""", f"{GRADER}.check_bandwidth(measure_bandwidth)"),
        md("""
Now put it together: measure this machine (about a second: a 512 × 512 fp32 product and a 64 MiB
copy, large enough to leave the caches) and place a few MobileNetV2 layers on its roofline. Which
ones are memory-bound here? Run it twice: the figures move, the classification rarely does.
"""),
        readonly("ps6_your_machine", """
torch.manual_seed(0)
gemm = measure_gemm(torch.randn(512, 512), torch.randn(512, 512), torch.empty(512, 512), repeats=5)
n = 16 << 20  # 16M fp32 elements = 64 MiB per buffer
copy = measure_bandwidth(torch.rand(n), torch.empty(n), repeats=5)
peak, bw = gemm["macs_per_s"], copy["bytes_per_s"]
print(f"peak {peak / 1e9:.1f} GMAC/s, copy bandwidth {bw / 1e9:.1f} GB/s, balance {machine_balance(peak, bw):.2f} MAC/byte")
layers = {"stem 3x3 s2 3->32": conv_intensity(3, 32, 224, 224, 3, 2),
          "dw 3x3 112x112": depthwise_intensity(32, 112, 112),
          "pw 32->16 112x112": pointwise_intensity(32, 16, 112, 112),
          "dsc 160->320 7x7": dsc_intensity(160, 320, 7, 7),
          "pw 320->1280 7x7": pointwise_intensity(320, 1280, 7, 7),
          "classifier 1280->1000": linear_intensity(1280, 1000)}
for name, i in layers.items():
    print(f"{name:24s} I = {i:7.3f} MAC/byte  {bound(i, peak, bw)}-bound")
plot_roofline(peak, bw, layers)
plt.show()
"""),
        md("""
You are done when *Restart & Run All* runs without errors. Chapter 8 of the book places every layer
of MobileNetV2 on this roofline and compares it with recorded GPU measurements.
"""),
    ]
