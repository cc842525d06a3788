"""ps8_quantization: affine int8 quantization, per-channel weights, one layer in integers, the depthwise pitfall.

The hidden checks compare with torch's own quantization as the oracle (torch.quantize_per_tensor,
torch.quantize_per_channel, the MinMax observers, a quantized depthwise conv2d), and with exact
integer arithmetic done here in Python ints, all computed before any answer cell runs. Every call
of a learner's function goes through a probe (assignments/ps8_quantization/kernel.py) that records
calls of torch's quantization and of mnlib: an answer that hands the work to them scores nothing.

Conventions (the notebook states them): round half to even where a real value is rounded
(torch.round, np.round, torch.quantize_per_tensor); the fixed-point requantization of TFLite's
single-rounding path, (acc * M0 + 2^(n-1)) >> n with n = 31 + shift, i.e. round half up.

The notebook in percent format, one cell per ``# %%`` header (assignments/build.py documents them):
explanations, the reference answers (between ``### BEGIN/END SOLUTION``), visible self-checks and the
hidden check each tests cell calls (assignments/ps8_quantization/checks.py). The cells marked ``reference``
are the solution's helpers a learner's function runs with in the hidden checks (assignments/build.py, ``texts``).
"""


# %% [markdown]
# # Problem set 8: int8 quantization as it runs
#
# An int8 network stores every tensor as integers $q$ with a real *scale* $s$ and an integer *zero
# point* $z$, so that the real value is $\hat x = s\,(q - z)$, and it runs each layer in integer
# arithmetic: int32 sums of int8 products, then one fixed-point multiply and shift that brings the
# result back to int8 (Jacob et al., 2018; the scheme of gemmlowp and TFLite). You will write the
# quantization of a tensor, the per-channel quantization of weights, the requantization of one
# depthwise layer in integers (checked against the float layer and against torch's own quantized
# convolution), and measure why MobileNet's depthwise layers need a scale per channel.
#
# **Conventions of this problem set.** Wherever a real value is rounded to an integer, round half to
# **even** (what `torch.round`, `np.round`, Python's `round` and `torch.quantize_per_tensor` do).
# The one exception is the fixed-point requantization in section 3, whose rounding is spelt out there.
#
# **Rules.** Write code only where it says `YOUR CODE HERE`. Use tensor (or numpy) arithmetic: do not
# call torch's quantization functions (`torch.quantize_per_tensor`, `torch.quantize_per_channel`,
# `torch.ao...`, `Tensor.int_repr`, `Tensor.dequantize`) nor `mnlib` in your answers; the grader
# watches for them. You may use them in your own scratch cells to check your work.


# %% setup
from assignments.ps8_quantization import checks as _ps_grader  # the build writes the setup cell here


# %% readonly ps8_imports reference
import math
import numpy as np
import torch
import torch.nn.functional as F

QRANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127)}  # [qmin, qmax] of each integer type


# %% [markdown]
# ## 1. Per-tensor affine quantization
#
# `affine_qparams(lo, hi, dtype)` returns `(scale, zero_point)` (a float and an int) for real values
# in $[lo, hi]$ stored as `dtype` (`torch.uint8` or `torch.int8`, range $[q_{min}, q_{max}]$ from `QRANGE`):
#
# 1. extend the range to include 0: $a = \min(lo, 0)$, $b = \max(hi, 0)$ (zero padding and ReLU
#    outputs must be exact, so the real 0 must be one of the levels);
# 2. $s = (b - a) / (q_{max} - q_{min})$;
# 3. $z = q_{min} - \mathrm{round}(a / s)$, clamped to $[q_{min}, q_{max}]$ (as TFLite writes it; with
#    $a \le 0 \le b$ the clamp never acts, since $z$ always lands in the range, so leaving it out is
#    right too).
#
# When $a = b = 0$ (an all-zero tensor) use $s = 1.0$, $z = q_{min}$.


# %% answer ps8_answer_qparams
def affine_qparams(lo, hi, dtype):
    """(scale, zero_point) for real values in [lo, hi] stored as dtype (torch.uint8 or torch.int8)."""
    ### BEGIN SOLUTION
    qmin, qmax = QRANGE[dtype]
    a, b = min(float(lo), 0.0), max(float(hi), 0.0)  # the real 0 must be a level
    if a == b:
        return 1.0, qmin
    scale = (b - a) / (qmax - qmin)
    zero_point = qmin - round(a / scale)
    return scale, int(min(max(zero_point, qmin), qmax))
    ### END SOLUTION


# %% tests ps8_qparams points=2
"""Are the scale and zero point right, with the range extended to include 0?"""
s, z = affine_qparams(-1.0, 3.0, torch.uint8)
assert math.isclose(s, 4.0 / 255, rel_tol=1e-6) and z == 64, (s, z)
s, z = affine_qparams(2.0, 6.0, torch.uint8)
assert math.isclose(s, 6.0 / 255, rel_tol=1e-6) and z == 0, "the range [2, 6] must be extended to [0, 6]"
### BEGIN HIDDEN TESTS
_ps_grader.check_qparams(affine_qparams)
### END HIDDEN TESTS


# %% [markdown]
# `quantize(x, scale, zero_point, dtype)` returns the tensor of `dtype` holding
# $q = \mathrm{clamp}(\mathrm{round}(x / s) + z,\ q_{min},\ q_{max})$ (values outside the range
# clamp). The rounding is of $x / s$, half to even, *before* $z$ is added: when $x / s$ is exactly
# halfway between two integers it goes to the even integer, so with an odd $z$ the level reached is odd.
# (`torch.quantize_per_tensor` rounds $x / s + z$ as a whole; the two agree when $z$ is even, and the
# grader's halfway cases use even zero points, so either way passes them.) `dequantize(q, scale, zero_point)` returns the float32 tensor $s\,(q - z)$.
# Careful: arithmetic on a `torch.uint8` tensor stays in uint8 (and wraps around below 0).


# %% answer ps8_answer_quantize
def quantize(x, scale, zero_point, dtype):
    """clamp(round(x / scale) + zero_point, qmin, qmax) as a tensor of dtype."""
    ### BEGIN SOLUTION
    qmin, qmax = QRANGE[dtype]
    q = torch.round(x.double() / scale) + zero_point
    return torch.clamp(q, qmin, qmax).to(dtype)
    ### END SOLUTION


def dequantize(q, scale, zero_point):
    """The real values scale * (q - zero_point), float32."""
    ### BEGIN SOLUTION
    return (scale * (q.to(torch.float64) - zero_point)).float()
    ### END SOLUTION


# %% tests ps8_quantize points=2
"""Does quantize match torch.quantize_per_tensor for values inside the range (uint8 and int8)?"""
q = quantize(torch.tensor([-1.0, 0.0, 0.3, 3.0]), 4.0 / 255, 64, torch.uint8)
assert q.dtype == torch.uint8 and q.tolist() == [0, 64, 83, 255], q
### BEGIN HIDDEN TESTS
_ps_grader.check_quantize(quantize)
### END HIDDEN TESTS


# %% tests ps8_quantize_ties points=1
"""Does quantize round x / scale, exactly halfway between two integers, to the even one (before adding z)?"""
q = quantize(torch.tensor([0.25, 0.75, 1.25, -0.25]), 0.5, 0, torch.int8)
assert q.tolist() == [0, 2, 2, 0], f"0.5, 1.5, 2.5 and -0.5 round half to even: {q.tolist()}"
### BEGIN HIDDEN TESTS
_ps_grader.check_quantize_ties(quantize)
### END HIDDEN TESTS


# %% tests ps8_quantize_clamp points=1
"""Do values outside the range clamp to [qmin, qmax]?"""
q = quantize(torch.tensor([-5.0, 100.0]), 0.1, 10, torch.uint8)
assert q.tolist() == [0, 255], f"-5.0 and 100.0 lie outside the range: they clamp, got {q.tolist()}"
### BEGIN HIDDEN TESTS
_ps_grader.check_quantize_clamp(quantize)
### END HIDDEN TESTS


# %% tests ps8_dequantize points=1
"""Does dequantize give scale * (q - zero_point), without uint8 wrap-around?"""
x = dequantize(torch.tensor([0, 64, 255], dtype=torch.uint8), 0.5, 64)
assert x.dtype == torch.float32 and x.tolist() == [-32.0, 0.0, 95.5], x
### BEGIN HIDDEN TESTS
_ps_grader.check_dequantize(dequantize)
### END HIDDEN TESTS


# %% [markdown]
# ## 2. Per-channel symmetric weights
#
# Weights are quantized *symmetrically* ($z = 0$) to int8, with one scale per **output channel**
# (axis 0 of a conv weight `(C_out, C_in/groups, K, K)` or a linear weight `(out, in)`), as TFLite's
# int8 scheme does: for channel $c$, $s_c = \max(|\min w_c|, |\max w_c|) / 127$ and
# $q = \mathrm{clamp}(\mathrm{round}(w / s_c), -127, 127)$ (the level $-128$ is left unused so the
# range is symmetric). A channel whose weights are all 0 gets $s_c = 1.0$.
#
# `quantize_per_channel(w)` returns `(q, scales)`: `q` an int8 tensor shaped like `w`, `scales` a
# float32 tensor of shape `(C_out,)`.


# %% answer ps8_answer_per_channel reference
def quantize_per_channel(w):
    """Symmetric int8 quantization with one scale per output channel (axis 0): (q, scales)."""
    ### BEGIN SOLUTION
    amax = w.detach().abs().reshape(w.shape[0], -1).amax(dim=1).double()
    scales = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    shape = (-1,) + (1,) * (w.dim() - 1)  # one scale per output channel, broadcast over the rest
    q = torch.clamp(torch.round(w.double() / scales.view(shape)), -127, 127)
    return q.to(torch.int8), scales.float()
    ### END SOLUTION


# %% tests ps8_per_channel points=2
"""Are the scales max|w| / 127 per output channel, and q the rounded, clamped weights?"""
w = torch.tensor([[1.0, -2.54], [0.5, 0.3]])
q, scales = quantize_per_channel(w)
assert scales.shape == (2,) and torch.allclose(scales, torch.tensor([2.54 / 127, 0.5 / 127])), scales
assert q.dtype == torch.int8 and q.tolist() == [[50, -127], [127, 76]], q
### BEGIN HIDDEN TESTS
_ps_grader.check_per_channel(quantize_per_channel)
### END HIDDEN TESTS


# %% tests ps8_per_channel_zero points=1
"""Does an all-zero (pruned) channel get a usable scale and zero weights?"""
q, scales = quantize_per_channel(torch.zeros(2, 3))
assert bool(torch.isfinite(scales).all()) and bool((scales > 0).all()), f"scales {scales}"
### BEGIN HIDDEN TESTS
_ps_grader.check_per_channel_zero(quantize_per_channel)
### END HIDDEN TESTS


# %% [markdown]
# ## 3. Requantization in fixed point
#
# A quantized layer sums int8 products in int32: `acc`. The real output is
# $y = s_x s_w \cdot \mathrm{acc}$, and its int8 code is $y / s_y + z_y$, so the accumulator must be
# multiplied by the real number $M = s_x s_w / s_y$ (between 0 and 1 in practice). Integer hardware
# does that with an int32 *multiplier* $M_0 \in [2^{30}, 2^{31})$ and a right shift:
# $M \approx M_0 \cdot 2^{-31} \cdot 2^{-\text{shift}}$ (Jacob et al., 2018, §2.2).
#
# `quantize_multiplier(M)` for $0 < M < 1$ returns the ints `(M0, shift)`: write $M = m \cdot 2^{e}$
# with $m \in [0.5, 1)$ (`math.frexp`), then $M_0 = \mathrm{round}(m \cdot 2^{31})$ and
# $\text{shift} = -e$; if the rounding gives $M_0 = 2^{31}$, halve it and decrease the shift by one.
#
# `requantize(acc, M0, shift, zero_point, dtype)` takes an int32 tensor `acc` and returns the tensor
# of `dtype` holding
# $$q = \mathrm{clamp}\Big(\big\lfloor (\mathrm{acc}\cdot M_0 + 2^{n-1}) / 2^{n} \big\rfloor + z,\ q_{min},\ q_{max}\Big),
# \qquad n = 31 + \text{shift},$$
# i.e. $\mathrm{acc}\cdot M_0 / 2^n$ rounded **half up**, exactly as TFLite's single-rounding path does
# it with one 64-bit multiply, an add and an arithmetic right shift. It must be exact for every int32
# accumulator: `acc * M0` needs 62 bits, more than a float64 holds exactly (and far more than a float32),
# so compute it in integers (`torch.int64`, numpy `int64` or Python ints). `M0` and `shift` are Python
# ints here; in section 4 you may also pass int64 tensors that broadcast against `acc` (one per channel).


# %% answer ps8_answer_multiplier reference
def quantize_multiplier(M):
    """(M0, shift) with M0 in [2^30, 2^31) and M ~= M0 * 2^-(31 + shift), for 0 < M < 1."""
    ### BEGIN SOLUTION
    m, e = math.frexp(M)  # M = m * 2^e, m in [0.5, 1)
    m0 = round(m * 2 ** 31)
    if m0 == 2 ** 31:  # m rounded up to 1.0
        m0, e = m0 // 2, e + 1
    return int(m0), int(-e)
    ### END SOLUTION


# %% tests ps8_multiplier points=2
"""Are M0 and the shift right, M0 normalised into [2^30, 2^31)?"""
assert quantize_multiplier(0.25) == (2 ** 30, 1), quantize_multiplier(0.25)
M0, shift = quantize_multiplier(0.0123)
assert 2 ** 30 <= M0 < 2 ** 31 and abs(M0 * 2.0 ** -(31 + shift) - 0.0123) < 1e-11, (M0, shift)
### BEGIN HIDDEN TESTS
_ps_grader.check_multiplier(quantize_multiplier)
### END HIDDEN TESTS


# %% answer ps8_answer_requantize reference
def requantize(acc, M0, shift, zero_point, dtype):
    """clamp(round_half_up(acc * M0 / 2^(31 + shift)) + zero_point, qmin, qmax) in integers, as dtype."""
    ### BEGIN SOLUTION
    qmin, qmax = QRANGE[dtype]
    n = 31 + torch.as_tensor(shift, dtype=torch.int64)
    prod = acc.to(torch.int64) * torch.as_tensor(M0, dtype=torch.int64)  # < 2^62: fits in int64
    q = torch.bitwise_right_shift(prod + torch.bitwise_left_shift(torch.ones_like(n), n - 1), n)
    return torch.clamp(q + zero_point, qmin, qmax).to(dtype)
    ### END SOLUTION


# %% tests ps8_requantize points=2
"""Is requantize exact in integers, for small and large int32 accumulators?"""
q = requantize(torch.tensor([1000, -1000, 0], dtype=torch.int32), 2 ** 30, 5, 0, torch.int8)
assert q.dtype == torch.int8 and q.tolist() == [16, -16, 0], q  # 1000 / 64 = 15.6, -15.6
### BEGIN HIDDEN TESTS
_ps_grader.check_requantize(requantize)
### END HIDDEN TESTS


# %% tests ps8_requantize_ties points=1
"""Does requantize round exact halves up (toward +infinity)?"""
q = requantize(torch.tensor([4, 12, -4, -12], dtype=torch.int32), 2 ** 30, 2, 0, torch.int8)
assert q.tolist() == [1, 2, 0, -1], f"0.5, 1.5, -0.5, -1.5 round half up: {q.tolist()}"
### BEGIN HIDDEN TESTS
_ps_grader.check_requantize_ties(requantize)
### END HIDDEN TESTS


# %% tests ps8_requantize_saturate points=1
"""Do results beyond the output range saturate instead of wrapping around?"""
q = requantize(torch.tensor([100000, -100000], dtype=torch.int32), 2 ** 30, 0, 0, torch.int8)
assert q.tolist() == [127, -128], q
### BEGIN HIDDEN TESTS
_ps_grader.check_requantize_saturate(requantize)
### END HIDDEN TESTS


# %% [markdown]
# ## 4. One depthwise layer in integers
#
# `int8_depthwise_conv(q_x, x_scale, x_zero, q_w, w_scales, bias, y_scale, y_zero)` runs a 3x3
# depthwise convolution (stride 1, padding 1, `groups = C`) in integer arithmetic:
#
# - `q_x`: uint8 input `(N, C, H, W)` with `x_scale`, `x_zero`; `q_w`: int8 weights `(C, 1, 3, 3)`
#   with per-channel `w_scales` `(C,)` (symmetric, zero point 0); `bias`: float32 `(C,)`;
# - accumulate $\sum (q_x - z_x)\, q_w$ over the 3x3 window in int32 (or int64). Padding adds real
#   zeros, whose code is $z_x$: after subtracting $z_x$ they are integer zeros;
# - add the bias as an integer at the accumulator's scale: $\mathrm{round}(b_c / (s_x s_{w,c}))$;
# - requantize each channel with $M_c = s_x s_{w,c} / s_y$ (compute it in float64: Python floats),
#   your `quantize_multiplier` and `requantize`, to uint8 with `y_zero`. (The grader runs this function
#   with its own `quantize_multiplier` and `requantize` in place of yours, and `depthwise_pitfall` below
#   with its own `quantize_per_channel`: a mistake in one of those costs that function's cells only.)
#
# Return the uint8 output `(N, C, H, W)`. It must be within one step of
# $\mathrm{round}(y / s_y) + z_y$ for the float layer $y$ run on the dequantized tensors, and equal,
# integer for integer, to the pipeline above.


# %% answer ps8_answer_conv
def int8_depthwise_conv(q_x, x_scale, x_zero, q_w, w_scales, bias, y_scale, y_zero):
    """3x3 depthwise conv (stride 1, padding 1) of uint8 q_x with int8 per-channel q_w, in integers -> uint8."""
    ### BEGIN SOLUTION
    n, c, h, w = q_x.shape
    x = F.pad(q_x.to(torch.int64) - x_zero, (1, 1, 1, 1))  # padded real zeros are integer zeros now
    k = q_w.to(torch.int64)
    acc = torch.zeros(n, c, h, w, dtype=torch.int64)
    for i in range(3):
        for j in range(3):
            acc += x[:, :, i:i + h, j:j + w] * k[:, 0, i, j].view(1, c, 1, 1)
    acc_scales = [x_scale * float(s) for s in w_scales]
    bias_q = torch.tensor([round(float(b) / s) for b, s in zip(bias, acc_scales)], dtype=torch.int64)
    acc += bias_q.view(1, c, 1, 1)
    out = torch.empty(n, c, h, w, dtype=torch.uint8)
    for ch in range(c):
        M0, shift = quantize_multiplier(acc_scales[ch] / y_scale)
        out[:, ch] = requantize(acc[:, ch], M0, shift, y_zero, torch.uint8)
    return out
    ### END SOLUTION


# %% readonly ps8_conv_example
# A small layer to try your function on (the grader uses others).
_g = torch.Generator().manual_seed(0)
x_ex = torch.rand(1, 4, 5, 5, generator=_g) * 4 - 1
w_ex = torch.randn(4, 1, 3, 3, generator=_g) * torch.tensor([1.0, 0.1, 0.5, 0.02]).view(4, 1, 1, 1)
b_ex = torch.randn(4, generator=_g) * 0.1
sx_ex, zx_ex = 4.0 / 255, 64          # the range [-1, 3]
sy_ex, zy_ex = 8.0 / 255, 128         # the range [-4, 4] (near enough)
sw_ex = w_ex.abs().reshape(4, -1).amax(1) / 127
qx_ex = torch.clamp(torch.round(x_ex / sx_ex) + zx_ex, 0, 255).to(torch.uint8)
qw_ex = torch.clamp(torch.round(w_ex / sw_ex.view(4, 1, 1, 1)), -127, 127).to(torch.int8)
y_ex = F.conv2d(sx_ex * (qx_ex.double() - zx_ex), (sw_ex.view(4, 1, 1, 1) * qw_ex).double(), b_ex.double(),
                padding=1, groups=4)
expected_ex = torch.clamp(torch.round(y_ex / sy_ex) + zy_ex, 0, 255)   # the float layer, on the uint8 grid


# %% tests ps8_conv_close points=2
"""Is the integer layer within one step of the float layer (and of torch's quantized conv)?"""
got = int8_depthwise_conv(qx_ex, sx_ex, zx_ex, qw_ex, sw_ex, b_ex, sy_ex, zy_ex)
assert got.dtype == torch.uint8 and got.shape == (1, 4, 5, 5), (got.dtype, got.shape)
assert (got.double() - expected_ex).abs().max() <= 1, "more than one step away from the float layer"
### BEGIN HIDDEN TESTS
_ps_grader.check_conv_close(int8_depthwise_conv)
### END HIDDEN TESTS


# %% tests ps8_conv_exact points=1
"""Is it the integer pipeline exactly (int32 bias, per-channel M0 and shift)?"""
print(f"{int((got.double() != expected_ex).sum())} of {got.numel()} outputs are one step from the float layer's")
# output (0, 0, 2, 2) by hand: its 3x3 window, the int32 bias, the multiplier, the rounding, the zero point
acc = int(((qx_ex[0, 0, 1:4, 1:4].long() - zx_ex) * qw_ex[0, 0].long()).sum())
acc += round(float(b_ex[0]) / (sx_ex * float(sw_ex[0])))
M0, shift = quantize_multiplier(sx_ex * float(sw_ex[0]) / sy_ex)
by_hand = min(max(((acc * M0 + (1 << (30 + shift))) >> (31 + shift)) + zy_ex, 0), 255)
assert int(got[0, 0, 2, 2]) == by_hand, f"output (0, 0, 2, 2) is {int(got[0, 0, 2, 2])}, the integer pipeline gives {by_hand}"
### BEGIN HIDDEN TESTS
_ps_grader.check_conv_exact(int8_depthwise_conv)
### END HIDDEN TESTS


# %% [markdown]
# ## 5. The depthwise pitfall
#
# A trained MobileNet's depthwise filters differ widely in size from one channel to the next, once batch
# norm is folded into them (Krishnamoorthi, 2018; Nagel et al., 2019). With one scale for the whole tensor,
# the large channels set the step and the small ones are left with a few levels, or none.
#
# `depthwise_pitfall(w, x)` takes a depthwise weight `w` `(C, 1, 3, 3)` and an input `x` `(N, C, H, W)`,
# quantizes the weights symmetrically to int8 ($[-127, 127]$, zero point 0) in two ways: **per-tensor**
# (one scale $\max|w| / 127$) and **per-channel** (your `quantize_per_channel`), and runs the float
# layer `F.conv2d(x, w_hat, padding=1, groups=C)` with each dequantized $\hat w$ (activations stay
# float, so only the weights' error is measured). It returns a dict with
#
# - `"per_tensor_db"`, `"per_channel_db"`: the signal-to-quantization-noise ratio of each output
#   channel $c$, $\mathrm{SQNR}_c = 10 \log_{10}\big(\sum y_c^2 / \sum (y_c - \hat y_c)^2\big)$ dB
#   (sums over the batch and the positions; $y$ is the output with the unquantized weights; compute in
#   float64), averaged over the channels. Per channel, because the batch norm that follows a depthwise
#   layer rescales every channel to a similar spread: each channel's *relative* error is what the next
#   layer sees, while a ratio over the whole tensor would be dominated by its few largest channels;
# - `"better"`: `"per-channel"` if its SQNR is more than 1 dB above the other's, `"per-tensor"` in the
#   opposite case, `"same"` otherwise: your conclusion, computed from the two numbers.


# %% answer ps8_answer_pitfall
def depthwise_pitfall(w, x):
    """Mean per-channel SQNR (dB) of a depthwise layer's output, per-tensor vs per-channel int8 weights; verdict."""
    ### BEGIN SOLUTION
    c = w.shape[0]
    w, x = w.double(), x.double()
    s = float(w.abs().max()) / 127
    per_tensor = torch.clamp(torch.round(w / s), -127, 127) * s
    q, scales = quantize_per_channel(w)
    per_channel = q.double() * scales.double().view(-1, 1, 1, 1)
    y = F.conv2d(x, w, padding=1, groups=c)

    def sqnr(w_hat):  # the mean over channels of each channel's SQNR
        e = y - F.conv2d(x, w_hat, padding=1, groups=c)
        per_channel = 10 * torch.log10((y ** 2).sum(dim=(0, 2, 3)) / (e ** 2).sum(dim=(0, 2, 3)))
        return float(per_channel.mean())

    pt, pc = sqnr(per_tensor), sqnr(per_channel)
    better = "per-channel" if pc > pt + 1 else ("per-tensor" if pt > pc + 1 else "same")
    return {"per_tensor_db": pt, "per_channel_db": pc, "better": better}
    ### END SOLUTION


# %% readonly ps8_mobilenet_like
# Depthwise weights like a trained MobileNet's: channel ranges spread log-uniformly over two and a half decades.
_g = torch.Generator().manual_seed(1)
C = 32
ranges = torch.exp(torch.empty(C).uniform_(math.log(5e-3), math.log(3.0), generator=_g))
W_DW = torch.randn(C, 1, 3, 3, generator=_g) * ranges.view(C, 1, 1, 1)
X_DW = torch.randn(1, C, 14, 14, generator=_g)


# %% tests ps8_pitfall_sqnr points=2
"""Are the two SQNRs the mean over the output channels of each channel's SQNR, in dB?"""
pitfall = depthwise_pitfall(W_DW, X_DW)
print(f"output SQNR: per-tensor {pitfall['per_tensor_db']:.1f} dB, per-channel {pitfall['per_channel_db']:.1f} dB "
      f"-> {pitfall['better']}")
assert 30 < pitfall["per_channel_db"] < 60, "int8 weights with a scale per channel give a few tens of dB"
### BEGIN HIDDEN TESTS
_ps_grader.check_pitfall_sqnr(depthwise_pitfall)
### END HIDDEN TESTS


# %% tests ps8_pitfall_verdict points=1
"""Is the verdict computed from the two SQNRs, by the rule stated?"""
same = torch.randn(3, 1, 3, 3)
same = same / same.abs().amax(dim=(1, 2, 3), keepdim=True)  # every channel's max|w| is 1
r = depthwise_pitfall(same, torch.randn(1, 3, 6, 6))
gap = r["per_channel_db"] - r["per_tensor_db"]
rule = "per-channel" if gap > 1 else ("per-tensor" if gap < -1 else "same")
assert r["better"] == rule, f"your two SQNRs are {gap:+.2f} dB apart, so the rule says {rule!r}, not {r['better']!r}"
print(f"equal ranges: {r['better']!r} (equal ranges give equal scales, so 'same' once quantize_per_channel is right)")
### BEGIN HIDDEN TESTS
_ps_grader.check_pitfall_verdict(depthwise_pitfall)
### END HIDDEN TESTS


# %% [markdown]
# You are done when *Restart & Run All* runs without errors.
