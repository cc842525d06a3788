"""ps6_roofline: operational intensity of conv and linear layers, machine balance, attainable rate,
memory/compute bound, a roofline plot and a short measurement of this machine.

The hidden checks compare every intensity, balance and bound with mnlib.roofline, read the plot as
plain data in the kernel, and time measure_gemm and measure_bandwidth with a clock that witnesses
the work (assignments/ps6_roofline/kernel.py).

The notebook in percent format, one cell per ``# %%`` header (assignments/build.py documents them):
explanations, the reference answers (between ``### BEGIN/END SOLUTION``), visible self-checks and the
hidden check each tests cell calls (assignments/ps6_roofline/checks.py).
"""


# %% [markdown]
# # Problem set 6: the roofline
#
# A layer's MAC count says how much arithmetic it needs; it does not say how long it takes. The
# processor must also bring every operand from memory and write every result back. The **roofline**
# (Williams, Waterman and Patterson, 2009) turns this into two numbers per layer and two per machine.
# You will compute the operational intensity of the layers of a MobileNet, classify them as memory- or
# compute-bound on several machines, draw a roofline, and measure your own machine. Chapter 8 of the
# book explains all of it.
#
# **Conventions.** Work is counted in MACs (one multiply-accumulate; a FLOP count is twice as large),
# so intensity is in **MAC/byte**, peaks in MAC/s and bandwidth in bytes/s.
#
# **Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` in your
# answers (the grader compares with it, and an answer that uses it scores zero for that part). The
# visible tests check a few cases; the grader checks many more shapes, strides, groups, batch sizes and
# data types. Nothing here asserts how fast your machine is.


# %% setup
from assignments.ps6_roofline import checks as _ps_grader  # the build writes the setup cell here


# %% readonly ps6_imports
import math
import time
import numpy as np
import torch
import matplotlib.pyplot as plt


# %% [markdown]
# ## 1. Operational intensity of a convolution
#
# The **operational intensity** of a layer is $I = W / Q$: its work $W$ in MACs over the bytes $Q$ it
# moves to and from main memory. Use the **minimum-traffic model**: the input is read once, the weights
# are read once, the output is written once (no re-reads, no caches, no bias). Every element takes
# `dtype_bytes` bytes (4 for fp32, 2 for fp16).
#
# A $K \times K$ convolution with stride $s$, `groups` $g$ and "same" padding $P = \lfloor (K-1)/2
# \rfloor$ maps a batch of $N$ inputs $(C_{in}, H, W)$ to outputs $(C_{out}, H', W')$ with
# $H' = \lfloor (H + 2P - K)/s \rfloor + 1$ (and the same for $W'$). Each output element is a dot
# product of length $(C_{in}/g) K^2$, and the weights hold $C_{out} (C_{in}/g) K^2$ elements:
#
# $$W = N H' W' C_{out} \frac{C_{in}}{g} K^2, \qquad
# Q = \text{dtype\_bytes} \times \Big(N C_{in} H W + C_{out} \frac{C_{in}}{g} K^2 + N C_{out} H' W'\Big).$$
#
# A depthwise convolution is the case $g = C_{in} = C_{out}$; a pointwise one is $K = 1$. Return a
# number (a Python `float` or `int`, a numpy scalar, or a one-element array or tensor: any will do;
# the grader compares its value to within a relative $10^{-9}$, so compute in float64, not float32).
#
# *Hand check.* A $3 \times 3$ depthwise convolution, stride 1, on $112 \times 112 \times C$ in fp32 does
# $112^2 \cdot 9\, C$ MACs and moves $4 (2 \cdot 112^2 + 9)\, C$ bytes: $I = 28224/25097 \approx 1.12$
# MAC/byte whatever $C$ is, and about $K^2/8$ on any large map.


# %% answer ps6_answer_conv
def out_size(size, k, stride=1):
    """Output length along one axis with 'same' padding P = (K - 1) // 2."""
    ### BEGIN SOLUTION
    p = (k - 1) // 2
    return (size + 2 * p - k) // stride + 1
    ### END SOLUTION


def conv_intensity(c_in, c_out, h, w, k=3, stride=1, groups=1, batch=1, dtype_bytes=4):
    """MAC/byte of a KxK conv C_in -> C_out (groups g, stride s) on N x C_in x H x W."""
    ### BEGIN SOLUTION
    ho, wo = out_size(h, k, stride), out_size(w, k, stride)
    weights = c_out * (c_in // groups) * k * k
    macs = batch * ho * wo * weights  # each output pixel of each image uses every weight once
    elements = batch * c_in * h * w + weights + batch * c_out * ho * wo  # read x, read W, write y
    return macs / (elements * dtype_bytes)
    ### END SOLUTION


def depthwise_intensity(c, h, w, k=3, stride=1, batch=1, dtype_bytes=4):
    """MAC/byte of a depthwise KxK conv (groups = C) on N x C x H x W."""
    ### BEGIN SOLUTION
    return conv_intensity(c, c, h, w, k, stride, groups=c, batch=batch, dtype_bytes=dtype_bytes)
    ### END SOLUTION


def pointwise_intensity(c_in, c_out, h, w, batch=1, dtype_bytes=4):
    """MAC/byte of a 1x1 conv C_in -> C_out on N x C_in x H x W."""
    ### BEGIN SOLUTION
    return conv_intensity(c_in, c_out, h, w, 1, 1, 1, batch, dtype_bytes)
    ### END SOLUTION


# %% tests ps6_conv_intensity points=3
"""Is conv_intensity the MACs per byte of the minimum traffic, for many shapes, strides, groups, batches and dtypes?"""
# An independent count with torch: MACs from the output size, bytes from the tensors' own sizes.
conv = torch.nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2, bias=False)
x = torch.zeros(2, 6, 9, 9)
y = conv(x)
macs = y.numel() * (6 // 2) * 3 * 3
nbytes = 4 * (x.numel() + conv.weight.numel() + y.numel())
mine = conv_intensity(6, 8, 9, 9, k=3, stride=2, groups=2, batch=2, dtype_bytes=4)
assert math.isclose(mine, macs / nbytes), f"conv_intensity(6, 8, 9, 9, k=3, stride=2, groups=2, batch=2): expected {macs / nbytes:.6g}, got {mine}"
assert math.isclose(conv_intensity(6, 8, 9, 9, 3, 2, 2, 2, dtype_bytes=2), 2 * mine), "fp16 moves half the bytes"
### BEGIN HIDDEN TESTS
_ps_grader.check_conv(conv_intensity)
### END HIDDEN TESTS


# %% tests ps6_dw_pw_intensity points=2
"""Are depthwise_intensity (the 28224/25097 hand check included) and pointwise_intensity right on many layers?"""
assert math.isclose(depthwise_intensity(32, 112, 112), 28224 / 25097), "the hand check: 3x3 depthwise, 112x112, fp32"
assert math.isclose(depthwise_intensity(7, 112, 112), 28224 / 25097), "a depthwise conv's intensity does not depend on C"
assert abs(depthwise_intensity(8, 1000, 1000, dtype_bytes=2) - 9 / 4) < 0.01, "about K^2 / (2 dtype_bytes) on a large map"
mine = pointwise_intensity(32, 16, 112, 112)
expected = 112 * 112 * 32 * 16 / (4 * (112 * 112 * (32 + 16) + 32 * 16))
assert math.isclose(mine, expected), f"pointwise_intensity(32, 16, 112, 112): expected {expected:.6g}, got {mine}"
### BEGIN HIDDEN TESTS
_ps_grader.check_dw_pw(depthwise_intensity, pointwise_intensity)
### END HIDDEN TESTS


# %% [markdown]
# ## 2. A separable convolution and a linear layer
#
# A **depthwise separable convolution** (DSC) is a depthwise $K \times K$ convolution (stride $s$) then a
# pointwise $1 \times 1$ convolution $C_{in} \to C_{out}$. Run as two separate kernels, the depthwise
# output $(N, C_{in}, H', W')$ is written to memory and read back by the pointwise step. A *fused*
# kernel keeps it on chip: then only $x$ is read, both weights are read and $y$ is written. Write
# `dsc_intensity` for both (`fused=False` and `fused=True`) as total MACs over total bytes.
#
# A **linear layer** `in_features -> out_features` on a batch of $N$ does $N \cdot in \cdot out$ MACs; it reads
# the input $(N, in)$ and the weights $(out, in)$ plus the bias $(out)$ when `bias=True`, and writes
# $(N, out)$. At batch 1 it uses each weight for a single MAC: what does that mean for its intensity?


# %% answer ps6_answer_dsc
def dsc_intensity(c_in, c_out, h, w, k=3, stride=1, batch=1, dtype_bytes=4, fused=False):
    """MAC/byte of depthwise KxK (stride s) then pointwise 1x1, as one unit."""
    ### BEGIN SOLUTION
    ho, wo = out_size(h, k, stride), out_size(w, k, stride)
    macs = batch * ho * wo * c_in * k * k + batch * ho * wo * c_in * c_out
    x, mid, y = batch * c_in * h * w, batch * c_in * ho * wo, batch * c_out * ho * wo
    weights = c_in * k * k + c_in * c_out
    # Unfused, the depthwise output is written by the first kernel and read back by the second.
    elements = x + weights + y + (0 if fused else 2 * mid)
    return macs / (elements * dtype_bytes)
    ### END SOLUTION


# %% tests ps6_dsc_intensity points=2
"""Is dsc_intensity right, with the intermediate tensor's traffic when unfused and without it when fused?"""
unfused, fused = dsc_intensity(32, 64, 112, 112), dsc_intensity(32, 64, 112, 112, fused=True)
assert fused > unfused, "fusing removes traffic, so it raises the intensity"
macs = 112 * 112 * 32 * 9 + 112 * 112 * 32 * 64
assert math.isclose(macs / unfused - macs / fused, 4 * 2 * 112 * 112 * 32), "unfused moves the intermediate twice more"
### BEGIN HIDDEN TESTS
_ps_grader.check_dsc(dsc_intensity)
### END HIDDEN TESTS


# %% answer ps6_answer_linear
def linear_intensity(in_features, out_features, batch=1, dtype_bytes=4, bias=True):
    """MAC/byte of a fully connected layer in -> out on a batch of N."""
    ### BEGIN SOLUTION
    weights = in_features * out_features + (out_features if bias else 0)
    elements = batch * in_features + weights + batch * out_features
    return batch * in_features * out_features / (elements * dtype_bytes)
    ### END SOLUTION


# %% tests ps6_linear_intensity points=1
"""Is linear_intensity right for many sizes, batches, dtypes, with and without bias?"""
lin = torch.nn.Linear(1280, 1000)
n_bytes = 4 * (1280 + sum(p.numel() for p in lin.parameters()) + 1000)
assert math.isclose(linear_intensity(1280, 1000), 1280 * 1000 / n_bytes), "linear_intensity(1280, 1000): read the input, the weights and the bias, write the output"
assert linear_intensity(1280, 1000) < 1 / 4, "at batch 1 every weight is read for one MAC"
### BEGIN HIDDEN TESTS
_ps_grader.check_linear(linear_intensity)
### END HIDDEN TESTS


# %% [markdown]
# ## 3. Machine balance, attainable rate, bound
#
# A machine with peak arithmetic rate $P$ (MAC/s) and memory bandwidth $B$ (bytes/s) has **balance**
# (the ridge point) $P / B$ in MAC/byte. A layer of intensity $I$ cannot go faster than the arithmetic
# units ($P$) nor than memory can feed it ($I \cdot B$), so its **attainable rate** is
# $\min(P, I \cdot B)$. It is **memory-bound** when $I$ is below the balance and **compute-bound**
# otherwise (at the ridge itself both roofs meet: call it compute-bound). The same layer can be
# memory-bound on one machine and compute-bound on another.


# %% answer ps6_answer_machine
def machine_balance(peak_macs_per_s, bandwidth_bytes_per_s):
    """The ridge point P / B in MAC/byte."""
    ### BEGIN SOLUTION
    return peak_macs_per_s / bandwidth_bytes_per_s
    ### END SOLUTION


def attainable(intensity, peak_macs_per_s, bandwidth_bytes_per_s):
    """Attainable MAC/s = min(P, I x B)."""
    ### BEGIN SOLUTION
    return min(peak_macs_per_s, intensity * bandwidth_bytes_per_s)
    ### END SOLUTION


# %% tests ps6_balance_attainable points=2
"""Are machine_balance and attainable right on several machines, below, at and above the ridge?"""
assert math.isclose(machine_balance(100e9, 20e9), 5.0), "machine_balance(100e9, 20e9): P / B = 5 MAC/byte"
assert math.isclose(attainable(1.0, 100e9, 20e9), 20e9), "below the ridge, memory sets the rate"
assert math.isclose(attainable(50.0, 100e9, 20e9), 100e9), "above the ridge, the peak does"
### BEGIN HIDDEN TESTS
_ps_grader.check_balance_attainable(machine_balance, attainable)
### END HIDDEN TESTS


# %% answer ps6_answer_bound
def bound(intensity, peak_macs_per_s, bandwidth_bytes_per_s):
    """'memory' when I is below the machine balance, else 'compute'."""
    ### BEGIN SOLUTION
    return "memory" if intensity < machine_balance(peak_macs_per_s, bandwidth_bytes_per_s) else "compute"
    ### END SOLUTION


# %% tests ps6_bound points=2
"""Does bound classify layers as memory- or compute-bound on several machines, the ridge itself included?"""
assert bound(1.12, 100e9, 20e9) == "memory", "a 3x3 depthwise conv on a CPU of balance 5"
assert bound(30.0, 100e9, 20e9) == "compute", "intensity 30 above a balance of 5: compute-bound"
assert bound(30.0, 393e12, 3.0e12) == "memory", "the same layer on a GPU of balance 131"
### BEGIN HIDDEN TESTS
_ps_grader.check_bound(bound)
### END HIDDEN TESTS


# %% [markdown]
# ## 4. The roofline plot
#
# Write `plot_roofline(peak_macs_per_s, bandwidth_bytes_per_s, layers, ax=None)`. `layers` maps a
# layer's name to its intensity. Draw on `ax` (create a figure with `plt.subplots()` when it is `None`)
# and return the Axes:
#
# - both axes **logarithmic**: intensity in MAC/byte on $x$, attainable rate in **GMAC/s** on $y$
#   (MAC/s divided by $10^9$); label both axes with their units;
# - the **roof** $\min(P, I B)$ as one line with no markers, from $I$ = balance/100 (or the smallest
#   layer intensity, if smaller) to balance × 100 (or the largest): on log-log axes it is two straight
#   segments, so its three corners are enough, or use `np.geomspace` (with enough points that the
#   corner is not cut by more than 15%: its default 50 do, or put the balance among the $x$ values);
# - the **ridge point** (balance, $P$) marked with a marker;
# - each layer as a marked point at (its intensity, its attainable rate), e.g. with `ax.scatter`,
#   labelled as you like.
#
# The grader reads the data back from the Axes (scales, lines, points), never the pixels.


# %% answer ps6_answer_plot
def plot_roofline(peak_macs_per_s, bandwidth_bytes_per_s, layers, ax=None):
    """Log-log roofline (GMAC/s vs MAC/byte) with the ridge point and the layers; returns the Axes."""
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


# %% tests ps6_roofline_plot points=2
"""Is the plot log-log, with the roof, the ridge point and every layer at the right coordinates?"""
ax = plot_roofline(100e9, 20e9, {"dw 3x3": 28224 / 25097, "pw": 30.0})
assert ax.get_xscale() == "log" and ax.get_yscale() == "log", "use logarithmic axes (ax.loglog or set_xscale/set_yscale)"
assert ax.get_xlabel() and ax.get_ylabel(), "label both axes"
plt.close(ax.figure)
### BEGIN HIDDEN TESTS
_ps_grader.check_plot(plot_roofline)
### END HIDDEN TESTS


# %% [markdown]
# ## 5. Measure your machine
#
# Two short benchmarks give this machine's roofline. Time each call with `clock()` read just before and
# just after it, after `warmup` untimed calls, `repeats` times, and return the per-call times as a list
# `"seconds"` with a rate computed from their **median**:
#
# - `measure_gemm(a, b, out, ...)` times `torch.mm(a, b, out=out)` for `a` of shape $(M, K)$ and `b` of
#   shape $(K, N)$; one product does $M K N$ MACs. Return `{"macs_per_s": ..., "seconds": [...]}`.
# - `measure_bandwidth(src, dst, ...)` times `dst.copy_(src)`; one copy reads all of `src` and writes all
#   of `dst`. Return `{"bytes_per_s": ..., "seconds": [...]}` where the bytes are what one copy moves.
#
# The grader checks that the warm-up calls happen before the first clock read, that the product and the
# copy really happen in every timed interval, that rate × median time is the work of one call, and that
# the figures are positive and physically possible: never how fast your machine is.
# Read the time only through the `clock` you are given: the grader passes one that also watches that
# every timed call really does the whole product or the whole copy.


# %% answer ps6_answer_measure
def measure_gemm(a, b, out, *, warmup=1, repeats=5, clock=time.perf_counter):
    """Peak-ish MAC/s of torch.mm(a, b, out=out): M K N MACs per product over the median time."""
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
    """Copy bandwidth in bytes/s of dst.copy_(src): read src + write dst per copy, over the median time."""
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


# %% tests ps6_measure_gemm points=1
"""Does measure_gemm compute the product and report M K N MACs over the median time, a plausible rate?"""
a, b, out = torch.randn(256, 128), torch.randn(128, 192), torch.empty(256, 192)
res = measure_gemm(a, b, out, repeats=3)
assert torch.allclose(out, a @ b, atol=1e-4), "out should hold a @ b"
assert len(res["seconds"]) == 3, f"repeats=3 should give 3 times, got {len(res['seconds'])}"
assert math.isclose(res["macs_per_s"] * np.median(res["seconds"]), 256 * 128 * 192), "macs_per_s x median(seconds) should be M K N = 256 * 128 * 192"
### BEGIN HIDDEN TESTS
_ps_grader.check_gemm(measure_gemm)
### END HIDDEN TESTS


# %% tests ps6_measure_bandwidth points=1
"""Does measure_bandwidth really copy src into dst and count the bytes read and written per copy?"""
src, dst = torch.rand(1 << 20), torch.zeros(1 << 20)
res = measure_bandwidth(src, dst, repeats=3)
assert torch.equal(dst, src), "dst should hold a copy of src"
assert math.isclose(res["bytes_per_s"] * np.median(res["seconds"]), 2 * 4 * (1 << 20)), "a copy reads 4 MiB and writes 4 MiB"
### BEGIN HIDDEN TESTS
_ps_grader.check_bandwidth(measure_bandwidth)
### END HIDDEN TESTS


# %% [markdown]
# Now put it together: measure this machine (about a second: a 512 × 512 fp32 product and a 64 MiB
# copy, large enough to leave the caches) and place a few MobileNetV2 layers on its roofline. Which
# ones are memory-bound here? Run it twice: the figures move, the classification rarely does.


# %% readonly ps6_your_machine
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


# %% [markdown]
# You are done when *Restart & Run All* runs without errors. Chapter 8 of the book places every layer
# of MobileNetV2 on this roofline and compares it with recorded GPU measurements.
