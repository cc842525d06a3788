"""ps6_roofline's hidden checks: operational intensity of conv, depthwise, pointwise, DSC and linear
layers, machine balance, attainable rate, memory/compute bound and the roofline plot, against
mnlib.roofline; measure_gemm and measure_bandwidth, judged with a clock that witnesses the work
(assignments/ps6_roofline/kernel.py).

Run in the grader's private namespace (assignments/loader.py); the references are computed here,
when the setup cell runs, before any answer cell.
"""
import math
import random

import mnlib.roofline as R
import numpy as np
import torch

from assignments.ps6_roofline import kernel
from assignments.toolkit import (Guard, Tensor, close_float, each_case, isclose, kernel_define, kind, need, real_value,
                                 remote, scan)

RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)

guard = Guard(["roofline.py", "cost.py", "timing.py"])
rng = random.Random(6)

# Helpers that must run where the learner's objects live (assignments/ps6_roofline/kernel.py): in the
# kernel when the grader runs these checks itself (autograder/remote.py), else here. Both are set up
# now, before any answer cell runs.
TOOLS = kernel_define(kernel, "Tools")
CASE = kernel_define(kernel, "Case")

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
