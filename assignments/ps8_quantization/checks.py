"""ps8_quantization's hidden checks: affine qparams, per-tensor and per-channel quantization, dequantization,
the fixed-point multiplier, requantization, one depthwise layer in integers and the depthwise pitfall,
against torch's own quantization as the oracle and exact integer arithmetic in Python ints.

Every call of a learner's function goes through a probe (assignments/ps8_quantization/kernel.py) that
records calls of torch's quantization and of mnlib: an answer that hands the work to them is not the
learner's own work (``need_own``: NotOwnWork fails the whole check). int8_depthwise_conv and
depthwise_pitfall run with the solution's helpers in place of the learner's (the module ``reference``,
the cells marked ``reference`` in notebook.py), so a mistake in a helper costs its own cells only.

Run in the grader's private namespace (assignments/loader.py); the references are computed here,
when the setup cell runs, before any answer cell.
"""
import math
import warnings

import torch
import torch.nn.functional as F

from assignments.ps8_quantization import kernel, reference
from assignments.toolkit import (Guard, Tensor, close_float, close_tensor, each_case, kernel_define, kind, need,
                                 need_own, real_value, scan)

RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch.ao.quantization prints deprecation notices
    import torch.ao.nn.quantized.functional as QF
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
# torch's quantized tensors (the oracles below) warn that they are deprecated, once per process
warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")

guard = Guard([])  # mnlib has no quantization module; the probe below watches all of mnlib
WATCH = kernel_define(kernel, "watched")
WATCH_ALONE = kernel_define(kernel, "watched_alone")
# the notebook's imports and the solution's quantize_per_channel, quantize_multiplier and requantize
# (the module ``reference``, built from the cells): the text watched_alone runs in the kernel
REFERENCE_SRC = reference.__loader__.get_source(reference.__name__)
QRANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127)}
QDTYPE = {torch.uint8: torch.quint8, torch.int8: torch.qint8}
NAME = {torch.uint8: "torch.uint8", torch.int8: "torch.int8"}


def _call(what, fn, *args, alone=()):
    # alone: the learner's helpers that this call runs with the reference ones in their place
    res = (guard.call(what, WATCH_ALONE, fn, REFERENCE_SRC, list(alone), *args) if alone
           else guard.call(what, WATCH, fn, *args))
    need(type(res) is dict and "used" in res, f"{what}: the grader's probe did not come back")
    used = res["used"]
    need_own(not used, f"{what} calls {', '.join(map(str, used[:3]))}: the exercise is to write it yourself "
                   "with tensor (or numpy) arithmetic; torch's quantization functions and mnlib are off limits")
    return res["out"]


def _int(v, what):
    x = real_value(v, what)
    need(math.isfinite(x) and x == int(x), f"{what} should be an integer, got {x!r}")
    return int(x)


def _int_tensor(v, dtype, shape, what):
    need(type(v) is Tensor, f"{what} should be a torch.Tensor, got {kind(v)}")
    need(v.dtype == dtype, f"{what} should have dtype {NAME.get(dtype, dtype)}, got {v.dtype}")
    need(tuple(v.shape) == tuple(shape), f"{what}: expected shape {tuple(shape)}, got {tuple(v.shape)}")
    return v.to(torch.int64)


def _same_ints(got, ref, what, ambiguous=None):
    # exact equality, except 1 apart where the exact real value sits within a hair of a rounding tie
    diff = (got - ref).abs()
    if ambiguous is not None:
        diff = torch.where(ambiguous & (diff <= 1), torch.zeros_like(diff), diff)
    bad = int((diff > 0).sum())
    need(bad == 0, f"{what}: {bad} of {diff.numel()} integers differ from the reference "
                   f"(largest difference {int(diff.max())})")


def _near_tie(r, tol):
    return ((r - torch.floor(r)) - 0.5).abs() < tol


def _obs(observer, t):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        observer(t)
        return observer.calculate_qparams()


# ---------------------------------------------------------------- 1. per-tensor affine
def _qparams_formula(lo, hi, dtype):
    qmin, qmax = QRANGE[dtype]
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (qmax - qmin)
    return scale, int(min(max(qmin - round(lo / scale), qmin), qmax))


QP_CASES = [(-1.0, 3.0, torch.uint8), (-2.5, 0.7, torch.int8), (0.5, 4.0, torch.uint8),
            (-6.0, -1.5, torch.int8), (3.0, 3.0, torch.uint8), (-0.8, 0.8, torch.int8), (1.0, 7.0, torch.int8)]
QP_REF = []
for lo, hi, dt in QP_CASES:
    s, z = _qparams_formula(lo, hi, dt)
    os_, oz = _obs(MinMaxObserver(dtype=QDTYPE[dt]), torch.tensor([lo, hi]))  # torch's observer: the oracle
    assert math.isclose(float(os_), s, rel_tol=1e-6) and int(oz) == z, (lo, hi, dt, s, z, os_, oz)
    QP_REF.append((lo, hi, dt, float(os_), int(oz)))


def check_qparams(affine_qparams):
    scan(affine_qparams, "affine_qparams")

    def case(row):
        lo, hi, dt, s, z = row
        what = f"affine_qparams({lo}, {hi}, {NAME[dt]})"
        res = _call(what, affine_qparams, lo, hi, dt)
        need(isinstance(res, (tuple, list)) and len(res) == 2, f"{what} should return (scale, zero_point)")
        scale, zp = real_value(res[0], what + "'s scale"), _int(res[1], what + "'s zero point")
        close_float(scale, s, what + ": the scale", rel=1e-6)
        need(zp == z, f"{what}: the zero point is off by {zp - z} (the real 0 must map exactly to it, "
                      "and the range must include 0)")

    each_case("affine_qparams", QP_REF, case)
    for dt in (torch.uint8, torch.int8):  # an all-zero tensor: any positive scale, 0 exactly representable
        what = f"affine_qparams(0.0, 0.0, {NAME[dt]}) (an all-zero tensor)"
        res = _call(what, affine_qparams, 0.0, 0.0, dt)
        need(isinstance(res, (tuple, list)) and len(res) == 2, f"{what} should return (scale, zero_point)")
        scale, zp = real_value(res[0], what + "'s scale"), _int(res[1], what + "'s zero point")
        need(math.isfinite(scale) and scale > 0, f"{what}: the scale should be a positive number, got {scale!r}")
        need(QRANGE[dt][0] <= zp <= QRANGE[dt][1], f"{what}: the zero point {zp} is outside {QRANGE[dt]}")


def _torch_quantize(x, s, z, dt):
    return torch.quantize_per_tensor(x, s, z, QDTYPE[dt]).int_repr().to(torch.int64)


_g = torch.Generator().manual_seed(8)
Q_CASES = []
for (lo, hi, dt, s, z), shape in zip(QP_REF, [(2, 3, 5, 5), (4, 17), (1, 8, 6, 6), (3, 40), (5, 5), (2, 2, 9), (64,)]):
    a, b = min(lo, 0.0), max(hi, 0.0)
    x = a + (b - a) * (0.001 + 0.998 * torch.rand(shape, generator=_g))
    if lo == hi:
        x = torch.full(shape, lo)  # a constant tensor, its range extended to include 0
    Q_CASES.append((x, s, z, dt))
Q_REF = []
for x, s, z, dt in Q_CASES:
    r = x.double() / s
    ref = _torch_quantize(x, s, z, dt)
    exact = (torch.round(r) + z).to(torch.int64)
    amb = _near_tie(r, 1e-3)
    assert bool(((ref - exact).abs() <= amb.long()).all()), "torch's quantize and round-half-even disagree"
    assert bool(((exact >= QRANGE[dt][0]) & (exact <= QRANGE[dt][1])).all())  # in range: no clamping here
    Q_REF.append((x, s, z, dt, ref, amb))
# Ties: x / s = k + 1/2 exactly (s = 0.5): the course rounds half to even, as torch.round and torch do.
# (torch rounds x / s + z as a whole, the course round(x / s) + z: the same when z is even, as here.)
TIE_X = torch.tensor([0.25, 0.75, 1.25, 1.75, -0.25, -0.75, -1.25, 2.25, 3.0, -2.75])
TIE_REF = [(TIE_X, 0.5, z, dt, _torch_quantize(TIE_X, 0.5, z, dt)) for z, dt in ((0, torch.int8), (10, torch.uint8), (-8, torch.int8))]
for x, s, z, dt, ref in TIE_REF:
    assert torch.equal(ref, (torch.round(x.double() / s) + z).to(torch.int64))
# Values outside the range the parameters were made for: they clamp to [qmin, qmax].
CLAMP_REF = []
for s, z, dt in ((0.02, 128, torch.uint8), (0.05, -20, torch.int8), (0.05, 60, torch.uint8)):
    x = torch.randn(3, 50, generator=_g) * 8
    r = x.double() / s
    CLAMP_REF.append((x, s, z, dt, _torch_quantize(x, s, z, dt), _near_tie(r, 1e-3)))
    assert bool((CLAMP_REF[-1][4] == QRANGE[dt][0]).any() and (CLAMP_REF[-1][4] == QRANGE[dt][1]).any())


def _quantize_case(quantize, x, s, z, dt, ref, amb, label):
    what = f"quantize(x, {s:.6g}, {z}, {NAME[dt]}) on {label} of shape {tuple(x.shape)}"
    out = _int_tensor(_call(what, quantize, x.clone(), s, z, dt), dt, x.shape, what)
    _same_ints(out, ref, what + " against torch.quantize_per_tensor", amb)


def check_quantize(quantize):
    scan(quantize, "quantize")
    each_case("quantize", Q_REF, lambda r: _quantize_case(quantize, *r, "values inside the range"))


def check_quantize_ties(quantize):
    scan(quantize, "quantize")
    each_case("quantize (x / scale exactly halfway between two integers: round half to even)", TIE_REF,
              lambda r: _quantize_case(quantize, *r, None, "ties"))


def check_quantize_clamp(quantize):
    scan(quantize, "quantize")
    each_case("quantize (values outside the range clamp to [qmin, qmax])", CLAMP_REF,
              lambda r: _quantize_case(quantize, *r, "values outside the range"))


DQ_REF = []
for s, z, dt in ((0.05, 128, torch.uint8), (0.013, -3, torch.int8), (0.2, 0, torch.uint8), (1.5, 100, torch.int8)):
    lo, hi = QRANGE[dt]
    q = torch.randint(lo, hi + 1, (4, 33), generator=_g).to(dt)
    q[0, 0], q[0, 1] = lo, hi
    ref = torch._make_per_tensor_quantized_tensor(q, s, z).dequantize()  # torch's dequantize: the oracle
    assert torch.allclose(ref.double(), s * (q.double() - z), rtol=1e-6, atol=1e-6)
    DQ_REF.append((q, s, z, ref))


def check_dequantize(dequantize):
    scan(dequantize, "dequantize")

    def case(row):
        q, s, z, ref = row
        what = f"dequantize(q, {s}, {z}) on a {str(q.dtype).replace('torch.', '')} tensor"
        out = _call(what, dequantize, q.clone(), s, z)
        need(type(out) is Tensor and out.dtype.is_floating_point, f"{what} should return a float tensor, got "
             + (str(out.dtype) if type(out) is Tensor else kind(out)))
        close_tensor(out.float(), ref, what + " against torch's dequantize", rtol=1e-6, atol=1e-6)

    each_case("dequantize", DQ_REF, case)


# ---------------------------------------------------------------- 2. per-channel symmetric weights
def _spread(c, *rest, seed, lo=1e-2, hi=2.0):
    # weights whose output channels differ widely in range, as in a trained MobileNet's depthwise layers
    g = torch.Generator().manual_seed(seed)
    ranges = torch.exp(torch.empty(c).uniform_(math.log(lo), math.log(hi), generator=g))
    return torch.randn(c, *rest, generator=g) * ranges.view(-1, *([1] * len(rest)))


PC_W = [_spread(8, 1, 3, 3, seed=1), _spread(16, 8, 1, 1, seed=2), torch.randn(10, 20, generator=_g)]
_w = torch.randn(4, 3, 3, 3, generator=_g) * 0.3
_w[1] -= 0.4  # a channel whose largest magnitude is its minimum: max(|min|, |max|), not max
_w[3] = _w[3].abs() * 0.1
PC_W.append(_w)
_w = torch.randn(6, 1, 3, 3, generator=_g)
_w[2] = 0.0  # a pruned (all-zero) channel
PC_ZERO = _w


def _pc_ref(w):
    s, z = _obs(PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                         quant_min=-127, quant_max=127), w)
    amax = w.abs().reshape(w.shape[0], -1).amax(1)
    live = amax > 0
    assert torch.allclose(s[live].double(), amax[live].double() / 127, rtol=1e-6)
    s = torch.where(live, s, torch.ones_like(s))
    q = torch.quantize_per_channel(w, s.double(), torch.zeros_like(z), 0, torch.qint8).int_repr().to(torch.int64)
    r = w.double() / s.double().view(-1, *([1] * (w.dim() - 1)))
    return s.float(), q, _near_tie(r, 1e-3)


PC_REF = [(w, *_pc_ref(w)) for w in PC_W]
PC_ZERO_REF = (PC_ZERO, *_pc_ref(PC_ZERO))


def _pc_result(quantize_per_channel, w, what):
    res = _call(what, quantize_per_channel, w.clone())
    need(isinstance(res, (tuple, list)) and len(res) == 2, f"{what} should return (q, scales)")
    q = _int_tensor(res[0], torch.int8, w.shape, what + "'s q")
    scales = res[1]
    need(type(scales) is Tensor and scales.dtype.is_floating_point,
         f"{what}'s scales should be a float tensor, got {kind(scales)}")
    need(tuple(scales.shape) == (w.shape[0],), f"{what}'s scales should have shape ({w.shape[0]},), one per "
         f"output channel (axis 0), got {tuple(scales.shape)}")
    return q, scales.double()


def check_per_channel(quantize_per_channel):
    scan(quantize_per_channel, "quantize_per_channel")

    def case(row):
        w, s, q, amb = row
        what = f"quantize_per_channel(w) for w of shape {tuple(w.shape)}"
        mine, scales = _pc_result(quantize_per_channel, w, what)
        bad = int((~torch.isclose(scales, s.double(), rtol=1e-6, atol=0)).sum())
        need(bad == 0, f"{what}: {bad} of {len(s)} scales differ from max|w| / 127 over each output channel")
        _same_ints(mine, q, what + ": q against torch.quantize_per_channel", amb)

    each_case("quantize_per_channel", PC_REF, case)


def check_per_channel_zero(quantize_per_channel):
    scan(quantize_per_channel, "quantize_per_channel")
    w, s, q, amb = PC_ZERO_REF
    what = f"quantize_per_channel(w) for w of shape {tuple(w.shape)} whose channel 2 is all zeros"
    mine, scales = _pc_result(quantize_per_channel, w, what)
    need(bool(torch.isfinite(scales).all()) and bool((scales > 0).all()),
         f"{what}: every scale should be a positive number (an all-zero channel has no range: use 1.0)")
    need(bool((mine[2] == 0).all()), f"{what}: the all-zero channel should quantize to zeros")
    # (the other channels are check_per_channel's business)


# ---------------------------------------------------------------- 3. fixed-point requantization
def _multiplier(m):
    mant, exp = math.frexp(m)  # m = mant * 2^exp, mant in [0.5, 1)
    m0 = round(mant * 2 ** 31)
    if m0 == 2 ** 31:
        m0, exp = m0 // 2, exp + 1
    return m0, -exp


M_CASES = [0.0123456789, 0.3, 0.75, 2 ** -10 * 1.234, 7.77e-4, 0.125 * (1 - 2 ** -35), 0.4999999, 3.3e-6]
M_REF = []
for m in M_CASES:
    m0, shift = _multiplier(m)
    frac = (math.frexp(m)[0] * 2 ** 31) % 1
    assert frac != 0.5 and 2 ** 30 <= m0 < 2 ** 31 and abs(m0 * 2.0 ** -(31 + shift) - m) <= m * 2 ** -31
    M_REF.append((m, m0, shift))


def check_multiplier(quantize_multiplier):
    scan(quantize_multiplier, "quantize_multiplier")

    def case(row):
        m, m0, shift = row
        what = f"quantize_multiplier({m!r})"
        res = _call(what, quantize_multiplier, m)
        need(isinstance(res, (tuple, list)) and len(res) == 2, f"{what} should return (M0, shift)")
        mine0, mine_s = _int(res[0], what + "'s M0"), _int(res[1], what + "'s shift")
        need(2 ** 30 <= mine0 < 2 ** 31, f"{what}: M0 = {mine0} is not in [2^30, 2^31) (an int32 with its top bit "
                                         "used: normalise the mantissa, and handle it rounding up to 2^31)")
        need(mine_s == shift, f"{what}: the shift is off by {mine_s - shift}")
        need(mine0 == m0, f"{what}: M0 is off by {mine0 - m0} (round M * 2^(31 + shift) to the nearest integer)")

    each_case("quantize_multiplier", M_REF, case)


def _requant_ref(acc, m0, shift, z, dt):
    n = 31 + shift
    qmin, qmax = QRANGE[dt]
    return torch.tensor([min(max(((a * m0 + (1 << (n - 1))) >> n) + z, qmin), qmax) for a in acc.tolist()])


def _requant_cases():
    g = torch.Generator().manual_seed(31)
    cases = []
    for m, z, dt in ((0.0123456789, 128, torch.uint8), (7.77e-4, -5, torch.int8), (0.3, 0, torch.int8)):
        m0, shift = _multiplier(m)
        n = 31 + shift
        span = int(120 / m)
        acc = torch.randint(-span, span + 1, (400,), generator=g)
        # the accumulators whose exact value acc * M0 / 2^n lies closest to a tie (float32 misjudges them)
        cand = torch.arange(-span, span + 1, dtype=torch.int64)
        off = ((cand * m0) % (1 << n) - (1 << (n - 1))).abs()
        off = torch.where(off == 0, torch.full_like(off, 1 << n), off)  # exact ties are another cell's
        near = cand[torch.topk(off, 40, largest=False).indices]
        cases.append((torch.cat([acc, near]).to(torch.int32), m0, shift, z, dt))
    # Large accumulators where float64 cannot hold acc * M0 exactly: it lands on the tie and rounds up
    # (found by factoring k 2^47 + 2^46 - 1; the setup re-checks that float64 gets them wrong).
    for a, m0 in ((7124249, 1353197783), (5829723, 1895097389)):
        acc = torch.tensor([a, a - 1, a + 1, -a, 12345, -98765], dtype=torch.int32)
        cases.append((acc, m0, 16, 0, torch.int8))
        n = 47
        assert math.floor(a * m0 / 2 ** n + 0.5) != (a * m0 + (1 << (n - 1))) >> n
    return [(acc, m0, shift, z, dt, _requant_ref(acc, m0, shift, z, dt)) for acc, m0, shift, z, dt in cases]


RQ_REF = _requant_cases()
for acc, m0, shift, z, dt, ref in RQ_REF:  # in range: the saturation is the third cell's business
    assert bool(((ref > QRANGE[dt][0]) & (ref < QRANGE[dt][1])).all())
# Exact ties: M0 = 2^30, shift 2: acc * M0 / 2^33 = acc / 8; acc = 4, 12, 20 give 0.5, 1.5, 2.5: half up.
TIE_ACC = torch.tensor([4, 12, 20, 28, -4, -12, -20, -28, 8, -8, 3, -3], dtype=torch.int32)
RQ_TIES = [(TIE_ACC, 2 ** 30, 2, z, dt, _requant_ref(TIE_ACC, 2 ** 30, 2, z, dt))
           for z, dt in ((0, torch.int8), (10, torch.uint8))]
# M0 = 3 2^29, shift 0: acc * M0 / 2^31 = 3 acc / 4; acc = 2, 6, 10 give 1.5, 4.5, 7.5.
RQ_TIES.append((TIE_ACC // 2, 3 << 29, 0, -1, torch.int8, _requant_ref(TIE_ACC // 2, 3 << 29, 0, -1, torch.int8)))
# Saturation: results beyond [qmin, qmax] clamp (an int8 cast alone would wrap around).
_sat = torch.tensor([-300000, -40000, -2000, -10, 0, 10, 2000, 40000, 300000, 2 ** 31 - 1, -2 ** 31], dtype=torch.int32)
RQ_SAT = [(_sat, *_multiplier(0.01), z, dt, _requant_ref(_sat, *_multiplier(0.01), z, dt))
          for z, dt in ((0, torch.uint8), (128, torch.uint8), (0, torch.int8), (-100, torch.int8))]


def _requant_case(requantize, acc, m0, shift, z, dt, ref):
    what = f"requantize(acc, {m0}, {shift}, {z}, {NAME[dt]}) on {acc.numel()} int32 accumulators"
    out = _int_tensor(_call(what, requantize, acc.clone(), m0, shift, z, dt), dt, acc.shape, what)
    _same_ints(out, ref, what + ", exactly in integers")


def check_requantize(requantize):
    scan(requantize, "requantize")
    each_case("requantize", RQ_REF, lambda r: _requant_case(requantize, *r))


def check_requantize_ties(requantize):
    scan(requantize, "requantize")
    each_case("requantize (acc * M0 / 2^(31 + shift) exactly halfway: round half up)", RQ_TIES,
              lambda r: _requant_case(requantize, *r))


def check_requantize_saturate(requantize):
    scan(requantize, "requantize")
    each_case("requantize (results beyond the output range saturate)", RQ_SAT, lambda r: _requant_case(requantize, *r))


# ---------------------------------------------------------------- 4. one int8 depthwise layer
def _conv_case(seed, n, c, h, w, x_lo, x_hi, y_lo, y_hi, bias_scale, x_spread=1.0):
    # x_spread < 1: the inputs use only that share of their quantization range (a few levels around 0)
    g = torch.Generator().manual_seed(seed)
    x = (x_lo + (x_hi - x_lo) * torch.rand(n, c, h, w, generator=g)) * x_spread
    wt = _spread(c, 1, 3, 3, seed=seed + 100, lo=0.05, hi=1.0)
    bias = torch.randn(c, generator=g) * bias_scale
    sx, zx = _qparams_formula(x_lo, x_hi, torch.uint8)
    sy, zy = _qparams_formula(y_lo, y_hi, torch.uint8)
    qx = torch.quantize_per_tensor(x, sx, zx, torch.quint8)
    sw = (wt.abs().reshape(c, -1).amax(1) / 127).float()
    qw = torch.quantize_per_channel(wt, sw.double(), torch.zeros(c, dtype=torch.int64), 0, torch.qint8)
    # the reference integer pipeline, in exact integers (Python ints for the multiply and the shift)
    xi = F.pad(qx.int_repr().to(torch.int64) - zx, (1, 1, 1, 1))
    wi = qw.int_repr().to(torch.int64)
    acc = sum(xi[:, :, i:i + h, j:j + w] * wi[:, 0, i, j].view(1, c, 1, 1) for i in range(3) for j in range(3))
    bias_q = torch.round(bias.double() / (sx * sw.double())).to(torch.int64)
    acc = acc + bias_q.view(1, c, 1, 1)
    out = torch.empty_like(acc)
    ideal = torch.empty(acc.shape, dtype=torch.float64)
    for ch in range(c):
        m = sx * float(sw[ch]) / sy
        m0, shift = _multiplier(m)
        out[:, ch] = _requant_ref(acc[:, ch].reshape(-1), m0, shift, zy, torch.uint8).view(n, h, w)
        ideal[:, ch] = acc[:, ch].double() * m + zy
    # oracle 1: the float layer on the dequantized tensors, rounded onto the output grid
    yf = F.conv2d(qx.dequantize().double(), qw.dequantize().double(), bias.double(), padding=1, groups=c)
    fl = torch.clamp(torch.round(yf / sy) + zy, 0, 255).to(torch.int64)
    # oracle 2: torch's quantized depthwise conv on qnnpack or onednn (not fbgemm, which expects 7-bit
    # activations, torch's reduce_range: on these full-range uint8 inputs it was off by tens of steps)
    assert int((out - fl).abs().max()) <= 1, "the integer reference is off the float layer"
    engine = torch.backends.quantized.engine
    for oracle in [e for e in ("qnnpack", "onednn") if e in torch.backends.quantized.supported_engines][:1]:
        try:
            torch.backends.quantized.engine = oracle
            tq = QF.conv2d(qx, qw, bias, padding=1, groups=c, scale=sy, zero_point=zy).int_repr().to(torch.int64)
        finally:
            torch.backends.quantized.engine = engine
        assert int((out - tq).abs().max()) <= 1, f"the integer reference is off torch's quantized conv ({oracle})"
    assert bool((out == 0).any()) and bool((out == 255).any()) if seed == 3 else True
    amb = _near_tie(ideal, 1e-4)
    args = (qx.int_repr(), sx, zx, qw.int_repr(), sw, bias.float(), sy, zy)
    return args, out, fl, amb


CONV_REF = [_conv_case(1, 1, 8, 7, 7, -1.0, 3.0, -4.0, 6.0, 0.5),
            _conv_case(2, 2, 16, 6, 5, 0.0, 6.0, -10.0, 12.0, 1.0),
            _conv_case(3, 1, 12, 9, 9, -2.0, 2.0, 0.0, 3.0, 0.3),  # ReLU-like output range: saturates
            # a narrow output range (M = s_x s_w / s_y up to about 0.3): one accumulator unit moves an output
            # by up to 0.3 of a step, so a bias truncated instead of rounded changes many outputs
            _conv_case(4, 1, 8, 7, 7, -1.0, 3.0, -0.05, 0.05, 0.01, x_spread=0.01)]


def _conv_out(int8_depthwise_conv, args, what):
    out = _call(what, int8_depthwise_conv, *[a.clone() if isinstance(a, Tensor) else a for a in args],
                alone=("quantize_multiplier", "requantize"))
    return _int_tensor(out, torch.uint8, args[0].shape, what)


def _conv_what(args):
    qx, sx, zx, qw, sw, bias, sy, zy = args
    return f"int8_depthwise_conv on q_x of shape {tuple(qx.shape)} (x_zero={zx}, y_zero={zy})"


def check_conv_close(int8_depthwise_conv):
    scan(int8_depthwise_conv, "int8_depthwise_conv")

    def case(row):
        args, out, fl, amb = row
        what = _conv_what(args)
        mine = _conv_out(int8_depthwise_conv, args, what)
        far = int(((mine - fl).abs() > 1).sum())
        need(far == 0, f"{what}: {far} of {fl.numel()} outputs are more than 1 step from round(y / y_scale) + y_zero "
                       f"of the float layer (largest difference {int((mine - fl).abs().max())})")

    each_case("int8_depthwise_conv against the float layer", CONV_REF, case)


def check_conv_exact(int8_depthwise_conv):
    scan(int8_depthwise_conv, "int8_depthwise_conv")

    def case(row):
        args, out, fl, amb = row
        what = _conv_what(args)
        mine = _conv_out(int8_depthwise_conv, args, what)
        _same_ints(mine, out, what + " against the integer pipeline (int32 bias, M0 and shift per channel, "
                                     "round half up)", amb)

    each_case("int8_depthwise_conv in integers", CONV_REF, case)


# ---------------------------------------------------------------- 5. the depthwise pitfall
def _sqnr_db(x, w, w_hat):
    # the mean over output channels of each channel's SQNR in dB
    c = w.shape[0]
    y = F.conv2d(x.double(), w.double(), padding=1, groups=c)
    e = y - F.conv2d(x.double(), w_hat.double(), padding=1, groups=c)
    return float((10 * torch.log10((y * y).sum((0, 2, 3)) / (e * e).sum((0, 2, 3)))).mean())


def _pitfall_ref(w, x):
    c = w.shape[0]
    st = float(w.abs().max()) / 127
    pt = torch.clamp(torch.round(w.double() / st), -127, 127) * st
    sc = w.abs().reshape(c, -1).amax(1).double() / 127
    sc = sc.view(-1, 1, 1, 1)
    pc = torch.clamp(torch.round(w.double() / sc), -127, 127) * sc
    a, b = _sqnr_db(x, w, pt), _sqnr_db(x, w, pc)
    verdict = "per-channel" if b > a + 1 else ("per-tensor" if a > b + 1 else "same")
    return a, b, verdict


def _equal_ranges(c, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(c, 1, 3, 3, generator=g)
    return w / w.abs().reshape(c, -1).amax(1).view(-1, 1, 1, 1) * 0.7  # every channel's max|w| is 0.7


def _ranged(maxes, seed):
    # channels whose max|w| are `maxes`, and an input for them
    g = torch.Generator().manual_seed(seed)
    c = len(maxes)
    w = torch.randn(c, 1, 3, 3, generator=g)
    w = w / w.abs().reshape(c, -1).amax(1).view(-1, 1, 1, 1) * torch.tensor(maxes).view(-1, 1, 1, 1)
    return w, torch.randn(2, c, 8, 8, generator=g)


PIT_CASES = [(_spread(32, 1, 3, 3, seed=11, lo=5e-3, hi=3.0), torch.randn(1, 32, 12, 12, generator=_g)),
             (_spread(24, 1, 3, 3, seed=12, lo=0.05, hi=0.5), torch.rand(2, 24, 8, 8, generator=_g)),
             (_equal_ranges(16, 13), torch.randn(1, 16, 10, 10, generator=_g)),
             # close to the 1 dB rule on both sides: 0.5 dB apart ("same": a rule of 0 dB says per-channel)
             # and 1.57 dB apart ("per-channel": a rule of 2 dB says same)
             _ranged([0.8] * 7 + [0.6], 23), _ranged([0.8] * 6 + [0.5] * 2, 21)]
PIT_REF = [(w, x, *_pitfall_ref(w, x)) for w, x in PIT_CASES]
assert [r[4] for r in PIT_REF] == ["per-channel", "per-channel", "same", "same", "per-channel"], [r[2:] for r in PIT_REF]
assert all(abs(abs(r[3] - r[2]) - 1) > 0.3 for r in PIT_REF), "every case well away from the 1 dB rule"


def _pitfall(depthwise_pitfall, w, x):
    what = f"depthwise_pitfall(w, x) for w of shape {tuple(w.shape)}"
    res = _call(what, depthwise_pitfall, w.clone(), x.clone(), alone=("quantize_per_channel",))
    need(isinstance(res, dict), f"{what} should return a dict, got {kind(res)}")
    for key in ("per_tensor_db", "per_channel_db", "better"):
        need(key in res, f"{what}: the result has no {key!r}")
    return what, res


def check_pitfall_sqnr(depthwise_pitfall):
    scan(depthwise_pitfall, "depthwise_pitfall")

    def case(row):
        w, x, a, b, verdict = row
        what, res = _pitfall(depthwise_pitfall, w, x)
        for key, ref in (("per_tensor_db", a), ("per_channel_db", b)):
            got = real_value(res[key], f"{what}[{key!r}]")
            need(abs(got - ref) <= 0.05, f"{what}: {key} should be the SQNR in dB of the layer's output with "
                                         f"weights quantized that way; yours is off by {got - ref:+.3g} dB")

    each_case("depthwise_pitfall's SQNR", PIT_REF, case)


def check_pitfall_verdict(depthwise_pitfall):
    scan(depthwise_pitfall, "depthwise_pitfall")

    def case(row):
        w, x, a, b, verdict = row
        what, res = _pitfall(depthwise_pitfall, w, x)
        need(isinstance(res["better"], str), f"{what}['better'] should be a string, got {kind(res['better'])}")
        # judged on the function's own numbers (a wrong SQNR costs the SQNR cell, not this one too)
        pt, pc = real_value(res["per_tensor_db"], f"{what}['per_tensor_db']"), real_value(res["per_channel_db"], f"{what}['per_channel_db']")
        own = "per-channel" if pc > pt + 1 else ("per-tensor" if pt > pc + 1 else "same")
        near = min(abs(pc - pt - 1), abs(pt - pc - 1)) < 1e-9  # exactly on the rule: either side will do
        need(str.__str__(res["better"]) == own or near,
             f"{what}: 'better' is {res['better']!r}, but your own numbers ({pt:.3f} dB per tensor, {pc:.3f} dB per "
             f"channel) give {own!r} by the rule (more than 1 dB apart)")

    each_case("depthwise_pitfall's verdict", PIT_REF, case)
