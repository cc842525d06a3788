"""ps8_quantization: affine int8 quantization, per-channel weights, one layer in integers, the depthwise pitfall.

The hidden checks compare with torch's own quantization as the oracle (torch.quantize_per_tensor,
torch.quantize_per_channel, the MinMax observers, a quantized depthwise conv2d), and with exact
integer arithmetic done here in Python ints, all computed before any answer cell runs. Every call
of a learner's function goes through a probe (solutions/ps8_quantization_kernel.py) that records
calls of torch's quantization and of mnlib: an answer that hands the work to them scores nothing.

Conventions (the notebook states them): round half to even where a real value is rounded
(torch.round, np.round, torch.quantize_per_tensor); the fixed-point requantization of TFLite's
single-rounding path, (acc * M0 + 2^(n-1)) >> n with n = 31 + shift, i.e. round half up.
"""
from pathlib import Path

from build_notebooks import GRADER, answer, md, readonly, tests

KERNEL_SRC = (Path(__file__).resolve().parent / "ps8_quantization_kernel.py").read_text()
assert "'''" not in repr(KERNEL_SRC)  # the setup cell pastes the checks inside r''' ... '''

CHECKS = f"KERNEL_SRC = {KERNEL_SRC!r}\n" + r"""
RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)
import warnings
import numpy as np
import torch.nn.functional as F
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch.ao.quantization prints deprecation notices
    import torch.ao.nn.quantized.functional as QF
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
# torch's quantized tensors (the oracles below) warn that they are deprecated, once per process
warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")

guard = Guard([])  # mnlib has no quantization module; the probe below watches all of mnlib
WATCH = kernel_define(KERNEL_SRC, "watched")
WATCH_ALONE = kernel_define(KERNEL_SRC, "watched_alone")
REFERENCE_SRC = None  # set below, from the notebook's imports and answer cells (solutions/ps8_quantization_src.py)
QRANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127)}
QDTYPE = {torch.uint8: torch.quint8, torch.int8: torch.qint8}
NAME = {torch.uint8: "torch.uint8", torch.int8: "torch.int8"}


def _call(what, fn, *args, alone=()):
    # alone: the learner's helpers that this call runs with the reference ones in their place
    res = (guard.call(what, WATCH_ALONE, fn, REFERENCE_SRC, list(alone), *args) if alone
           else guard.call(what, WATCH, fn, *args))
    need(type(res) is dict and "used" in res, f"{what}: the grader's probe did not come back")
    used = res["used"]
    need(not used, f"{what} calls {', '.join(map(str, used[:3]))}: the exercise is to write it yourself "
                   "with tensor (or numpy) arithmetic; torch's quantization functions and mnlib are off limits")
    return res["out"]


def _float(v, what):
    return real_value(v, what)  # every number the words allow: numpy scalars, 0-d and one-element arrays, tensors


def _int(v, what):
    x = _float(v, what)
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
        scale, zp = _float(res[0], what + "'s scale"), _int(res[1], what + "'s zero point")
        close_float(scale, s, what + ": the scale", rel=1e-6)
        need(zp == z, f"{what}: the zero point is off by {zp - z} (the real 0 must map exactly to it, "
                      "and the range must include 0)")

    each_case("affine_qparams", QP_REF, case)
    for dt in (torch.uint8, torch.int8):  # an all-zero tensor: any positive scale, 0 exactly representable
        what = f"affine_qparams(0.0, 0.0, {NAME[dt]}) (an all-zero tensor)"
        res = _call(what, affine_qparams, 0.0, 0.0, dt)
        need(isinstance(res, (tuple, list)) and len(res) == 2, f"{what} should return (scale, zero_point)")
        scale, zp = _float(res[0], what + "'s scale"), _int(res[1], what + "'s zero point")
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
            got = _float(res[key], f"{what}[{key!r}]")
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
        pt, pc = _float(res["per_tensor_db"], f"{what}['per_tensor_db']"), _float(res["per_channel_db"], f"{what}['per_channel_db']")
        own = "per-channel" if pc > pt + 1 else ("per-tensor" if pt > pc + 1 else "same")
        near = min(abs(pc - pt - 1), abs(pt - pc - 1)) < 1e-9  # exactly on the rule: either side will do
        need(str.__str__(res["better"]) == own or near,
             f"{what}: 'better' is {res['better']!r}, but your own numbers ({pt:.3f} dB per tensor, {pc:.3f} dB per "
             f"channel) give {own!r} by the rule (more than 1 dB apart)")

    each_case("depthwise_pitfall's verdict", PIT_REF, case)
"""


def cells(setup_cell):
    return [
        md("""
# Problem set 8: int8 quantization as it runs

An int8 network stores every tensor as integers $q$ with a real *scale* $s$ and an integer *zero
point* $z$, so that the real value is $\\hat x = s\\,(q - z)$, and it runs each layer in integer
arithmetic: int32 sums of int8 products, then one fixed-point multiply and shift that brings the
result back to int8 (Jacob et al., 2018; the scheme of gemmlowp and TFLite). You will write the
quantization of a tensor, the per-channel quantization of weights, the requantization of one
depthwise layer in integers (checked against the float layer and against torch's own quantized
convolution), and measure why MobileNet's depthwise layers need a scale per channel.

**Conventions of this problem set.** Wherever a real value is rounded to an integer, round half to
**even** (what `torch.round`, `np.round`, Python's `round` and `torch.quantize_per_tensor` do).
The one exception is the fixed-point requantization in section 3, whose rounding is spelt out there.

**Rules.** Write code only where it says `YOUR CODE HERE`. Use tensor (or numpy) arithmetic: do not
call torch's quantization functions (`torch.quantize_per_tensor`, `torch.quantize_per_channel`,
`torch.ao...`, `Tensor.int_repr`, `Tensor.dequantize`) nor `mnlib` in your answers; the grader
watches for them. You may use them in your own scratch cells to check your work.
"""),
        setup_cell,
        readonly("ps8_imports", """
import math
import numpy as np
import torch
import torch.nn.functional as F

QRANGE = {torch.uint8: (0, 255), torch.int8: (-128, 127)}  # [qmin, qmax] of each integer type
"""),
        md("""
## 1. Per-tensor affine quantization

`affine_qparams(lo, hi, dtype)` returns `(scale, zero_point)` (a float and an int) for real values
in $[lo, hi]$ stored as `dtype` (`torch.uint8` or `torch.int8`, range $[q_{min}, q_{max}]$ from `QRANGE`):

1. extend the range to include 0: $a = \\min(lo, 0)$, $b = \\max(hi, 0)$ (zero padding and ReLU
   outputs must be exact, so the real 0 must be one of the levels);
2. $s = (b - a) / (q_{max} - q_{min})$;
3. $z = q_{min} - \\mathrm{round}(a / s)$, clamped to $[q_{min}, q_{max}]$ (as TFLite writes it; with
   $a \\le 0 \\le b$ the clamp never acts, since $z$ always lands in the range, so leaving it out is
   right too).

When $a = b = 0$ (an all-zero tensor) use $s = 1.0$, $z = q_{min}$.
"""),
        answer("ps8_answer_qparams", """
def affine_qparams(lo, hi, dtype):
    \"\"\"(scale, zero_point) for real values in [lo, hi] stored as dtype (torch.uint8 or torch.int8).\"\"\"
    ### BEGIN SOLUTION
    qmin, qmax = QRANGE[dtype]
    a, b = min(float(lo), 0.0), max(float(hi), 0.0)  # the real 0 must be a level
    if a == b:
        return 1.0, qmin
    scale = (b - a) / (qmax - qmin)
    zero_point = qmin - round(a / scale)
    return scale, int(min(max(zero_point, qmin), qmax))
    ### END SOLUTION
"""),
        tests("ps8_qparams", 2,
              "Are the scale and zero point right, with the range extended to include 0?",
              """
s, z = affine_qparams(-1.0, 3.0, torch.uint8)
assert math.isclose(s, 4.0 / 255, rel_tol=1e-6) and z == 64, (s, z)
s, z = affine_qparams(2.0, 6.0, torch.uint8)
assert math.isclose(s, 6.0 / 255, rel_tol=1e-6) and z == 0, "the range [2, 6] must be extended to [0, 6]"
""", f"{GRADER}.check_qparams(affine_qparams)"),
        md("""
`quantize(x, scale, zero_point, dtype)` returns the tensor of `dtype` holding
$q = \\mathrm{clamp}(\\mathrm{round}(x / s) + z,\\ q_{min},\\ q_{max})$ (values outside the range
clamp). The rounding is of $x / s$, half to even, *before* $z$ is added: when $x / s$ is exactly
halfway between two integers it goes to the even integer, so with an odd $z$ the level reached is odd.
(`torch.quantize_per_tensor` rounds $x / s + z$ as a whole; the two agree when $z$ is even, and the
grader's halfway cases use even zero points, so either way passes them.) `dequantize(q, scale, zero_point)` returns the float32 tensor $s\\,(q - z)$.
Careful: arithmetic on a `torch.uint8` tensor stays in uint8 (and wraps around below 0).
"""),
        answer("ps8_answer_quantize", """
def quantize(x, scale, zero_point, dtype):
    \"\"\"clamp(round(x / scale) + zero_point, qmin, qmax) as a tensor of dtype.\"\"\"
    ### BEGIN SOLUTION
    qmin, qmax = QRANGE[dtype]
    q = torch.round(x.double() / scale) + zero_point
    return torch.clamp(q, qmin, qmax).to(dtype)
    ### END SOLUTION


def dequantize(q, scale, zero_point):
    \"\"\"The real values scale * (q - zero_point), float32.\"\"\"
    ### BEGIN SOLUTION
    return (scale * (q.to(torch.float64) - zero_point)).float()
    ### END SOLUTION
"""),
        tests("ps8_quantize", 2,
              "Does quantize match torch.quantize_per_tensor for values inside the range (uint8 and int8)?",
              """
q = quantize(torch.tensor([-1.0, 0.0, 0.3, 3.0]), 4.0 / 255, 64, torch.uint8)
assert q.dtype == torch.uint8 and q.tolist() == [0, 64, 83, 255], q
""", f"{GRADER}.check_quantize(quantize)"),
        tests("ps8_quantize_ties", 1,
              "Does quantize round x / scale, exactly halfway between two integers, to the even one (before adding z)?",
              """
q = quantize(torch.tensor([0.25, 0.75, 1.25, -0.25]), 0.5, 0, torch.int8)
assert q.tolist() == [0, 2, 2, 0], f"0.5, 1.5, 2.5 and -0.5 round half to even: {q.tolist()}"
""", f"{GRADER}.check_quantize_ties(quantize)"),
        tests("ps8_quantize_clamp", 1, "Do values outside the range clamp to [qmin, qmax]?", """
q = quantize(torch.tensor([-5.0, 100.0]), 0.1, 10, torch.uint8)
assert q.tolist() == [0, 255], f"-5.0 and 100.0 lie outside the range: they clamp, got {q.tolist()}"
""", f"{GRADER}.check_quantize_clamp(quantize)"),
        tests("ps8_dequantize", 1, "Does dequantize give scale * (q - zero_point), without uint8 wrap-around?", """
x = dequantize(torch.tensor([0, 64, 255], dtype=torch.uint8), 0.5, 64)
assert x.dtype == torch.float32 and x.tolist() == [-32.0, 0.0, 95.5], x
""", f"{GRADER}.check_dequantize(dequantize)"),
        md("""
## 2. Per-channel symmetric weights

Weights are quantized *symmetrically* ($z = 0$) to int8, with one scale per **output channel**
(axis 0 of a conv weight `(C_out, C_in/groups, K, K)` or a linear weight `(out, in)`), as TFLite's
int8 scheme does: for channel $c$, $s_c = \\max(|\\min w_c|, |\\max w_c|) / 127$ and
$q = \\mathrm{clamp}(\\mathrm{round}(w / s_c), -127, 127)$ (the level $-128$ is left unused so the
range is symmetric). A channel whose weights are all 0 gets $s_c = 1.0$.

`quantize_per_channel(w)` returns `(q, scales)`: `q` an int8 tensor shaped like `w`, `scales` a
float32 tensor of shape `(C_out,)`.
"""),
        answer("ps8_answer_per_channel", """
def quantize_per_channel(w):
    \"\"\"Symmetric int8 quantization with one scale per output channel (axis 0): (q, scales).\"\"\"
    ### BEGIN SOLUTION
    amax = w.detach().abs().reshape(w.shape[0], -1).amax(dim=1).double()
    scales = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    shape = (-1,) + (1,) * (w.dim() - 1)  # one scale per output channel, broadcast over the rest
    q = torch.clamp(torch.round(w.double() / scales.view(shape)), -127, 127)
    return q.to(torch.int8), scales.float()
    ### END SOLUTION
"""),
        tests("ps8_per_channel", 2,
              "Are the scales max|w| / 127 per output channel, and q the rounded, clamped weights?",
              """
w = torch.tensor([[1.0, -2.54], [0.5, 0.3]])
q, scales = quantize_per_channel(w)
assert scales.shape == (2,) and torch.allclose(scales, torch.tensor([2.54 / 127, 0.5 / 127])), scales
assert q.dtype == torch.int8 and q.tolist() == [[50, -127], [127, 76]], q
""", f"{GRADER}.check_per_channel(quantize_per_channel)"),
        tests("ps8_per_channel_zero", 1, "Does an all-zero (pruned) channel get a usable scale and zero weights?", """
q, scales = quantize_per_channel(torch.zeros(2, 3))
assert bool(torch.isfinite(scales).all()) and bool((scales > 0).all()), f"scales {scales}"
""", f"{GRADER}.check_per_channel_zero(quantize_per_channel)"),
        md("""
## 3. Requantization in fixed point

A quantized layer sums int8 products in int32: `acc`. The real output is
$y = s_x s_w \\cdot \\mathrm{acc}$, and its int8 code is $y / s_y + z_y$, so the accumulator must be
multiplied by the real number $M = s_x s_w / s_y$ (between 0 and 1 in practice). Integer hardware
does that with an int32 *multiplier* $M_0 \\in [2^{30}, 2^{31})$ and a right shift:
$M \\approx M_0 \\cdot 2^{-31} \\cdot 2^{-\\text{shift}}$ (Jacob et al., 2018, §2.2).

`quantize_multiplier(M)` for $0 < M < 1$ returns the ints `(M0, shift)`: write $M = m \\cdot 2^{e}$
with $m \\in [0.5, 1)$ (`math.frexp`), then $M_0 = \\mathrm{round}(m \\cdot 2^{31})$ and
$\\text{shift} = -e$; if the rounding gives $M_0 = 2^{31}$, halve it and decrease the shift by one.

`requantize(acc, M0, shift, zero_point, dtype)` takes an int32 tensor `acc` and returns the tensor
of `dtype` holding
$$q = \\mathrm{clamp}\\Big(\\big\\lfloor (\\mathrm{acc}\\cdot M_0 + 2^{n-1}) / 2^{n} \\big\\rfloor + z,\\ q_{min},\\ q_{max}\\Big),
\\qquad n = 31 + \\text{shift},$$
i.e. $\\mathrm{acc}\\cdot M_0 / 2^n$ rounded **half up**, exactly as TFLite's single-rounding path does
it with one 64-bit multiply, an add and an arithmetic right shift. It must be exact for every int32
accumulator: `acc * M0` needs 62 bits, more than a float64 holds exactly (and far more than a float32),
so compute it in integers (`torch.int64`, numpy `int64` or Python ints). `M0` and `shift` are Python
ints here; in section 4 you may also pass int64 tensors that broadcast against `acc` (one per channel).
"""),
        answer("ps8_answer_multiplier", """
def quantize_multiplier(M):
    \"\"\"(M0, shift) with M0 in [2^30, 2^31) and M ~= M0 * 2^-(31 + shift), for 0 < M < 1.\"\"\"
    ### BEGIN SOLUTION
    m, e = math.frexp(M)  # M = m * 2^e, m in [0.5, 1)
    m0 = round(m * 2 ** 31)
    if m0 == 2 ** 31:  # m rounded up to 1.0
        m0, e = m0 // 2, e + 1
    return int(m0), int(-e)
    ### END SOLUTION
"""),
        tests("ps8_multiplier", 2, "Are M0 and the shift right, M0 normalised into [2^30, 2^31)?", """
assert quantize_multiplier(0.25) == (2 ** 30, 1), quantize_multiplier(0.25)
M0, shift = quantize_multiplier(0.0123)
assert 2 ** 30 <= M0 < 2 ** 31 and abs(M0 * 2.0 ** -(31 + shift) - 0.0123) < 1e-11, (M0, shift)
""", f"{GRADER}.check_multiplier(quantize_multiplier)"),
        answer("ps8_answer_requantize", """
def requantize(acc, M0, shift, zero_point, dtype):
    \"\"\"clamp(round_half_up(acc * M0 / 2^(31 + shift)) + zero_point, qmin, qmax) in integers, as dtype.\"\"\"
    ### BEGIN SOLUTION
    qmin, qmax = QRANGE[dtype]
    n = 31 + torch.as_tensor(shift, dtype=torch.int64)
    prod = acc.to(torch.int64) * torch.as_tensor(M0, dtype=torch.int64)  # < 2^62: fits in int64
    q = torch.bitwise_right_shift(prod + torch.bitwise_left_shift(torch.ones_like(n), n - 1), n)
    return torch.clamp(q + zero_point, qmin, qmax).to(dtype)
    ### END SOLUTION
"""),
        tests("ps8_requantize", 2, "Is requantize exact in integers, for small and large int32 accumulators?", """
q = requantize(torch.tensor([1000, -1000, 0], dtype=torch.int32), 2 ** 30, 5, 0, torch.int8)
assert q.dtype == torch.int8 and q.tolist() == [16, -16, 0], q  # 1000 / 64 = 15.6, -15.6
""", f"{GRADER}.check_requantize(requantize)"),
        tests("ps8_requantize_ties", 1, "Does requantize round exact halves up (toward +infinity)?", """
q = requantize(torch.tensor([4, 12, -4, -12], dtype=torch.int32), 2 ** 30, 2, 0, torch.int8)
assert q.tolist() == [1, 2, 0, -1], f"0.5, 1.5, -0.5, -1.5 round half up: {q.tolist()}"
""", f"{GRADER}.check_requantize_ties(requantize)"),
        tests("ps8_requantize_saturate", 1, "Do results beyond the output range saturate instead of wrapping around?", """
q = requantize(torch.tensor([100000, -100000], dtype=torch.int32), 2 ** 30, 0, 0, torch.int8)
assert q.tolist() == [127, -128], q
""", f"{GRADER}.check_requantize_saturate(requantize)"),
        md("""
## 4. One depthwise layer in integers

`int8_depthwise_conv(q_x, x_scale, x_zero, q_w, w_scales, bias, y_scale, y_zero)` runs a 3x3
depthwise convolution (stride 1, padding 1, `groups = C`) in integer arithmetic:

- `q_x`: uint8 input `(N, C, H, W)` with `x_scale`, `x_zero`; `q_w`: int8 weights `(C, 1, 3, 3)`
  with per-channel `w_scales` `(C,)` (symmetric, zero point 0); `bias`: float32 `(C,)`;
- accumulate $\\sum (q_x - z_x)\\, q_w$ over the 3x3 window in int32 (or int64). Padding adds real
  zeros, whose code is $z_x$: after subtracting $z_x$ they are integer zeros;
- add the bias as an integer at the accumulator's scale: $\\mathrm{round}(b_c / (s_x s_{w,c}))$;
- requantize each channel with $M_c = s_x s_{w,c} / s_y$ (compute it in float64: Python floats),
  your `quantize_multiplier` and `requantize`, to uint8 with `y_zero`. (The grader runs this function
  with its own `quantize_multiplier` and `requantize` in place of yours, and `depthwise_pitfall` below
  with its own `quantize_per_channel`: a mistake in one of those costs that function's cells only.)

Return the uint8 output `(N, C, H, W)`. It must be within one step of
$\\mathrm{round}(y / s_y) + z_y$ for the float layer $y$ run on the dequantized tensors, and equal,
integer for integer, to the pipeline above.
"""),
        answer("ps8_answer_conv", """
def int8_depthwise_conv(q_x, x_scale, x_zero, q_w, w_scales, bias, y_scale, y_zero):
    \"\"\"3x3 depthwise conv (stride 1, padding 1) of uint8 q_x with int8 per-channel q_w, in integers -> uint8.\"\"\"
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
"""),
        readonly("ps8_conv_example", """
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
"""),
        tests("ps8_conv_close", 2,
              "Is the integer layer within one step of the float layer (and of torch's quantized conv)?", """
got = int8_depthwise_conv(qx_ex, sx_ex, zx_ex, qw_ex, sw_ex, b_ex, sy_ex, zy_ex)
assert got.dtype == torch.uint8 and got.shape == (1, 4, 5, 5), (got.dtype, got.shape)
assert (got.double() - expected_ex).abs().max() <= 1, "more than one step away from the float layer"
""", f"{GRADER}.check_conv_close(int8_depthwise_conv)"),
        tests("ps8_conv_exact", 1,
              "Is it the integer pipeline exactly (int32 bias, per-channel M0 and shift)?", """
print(f"{int((got.double() != expected_ex).sum())} of {got.numel()} outputs are one step from the float layer's")
# output (0, 0, 2, 2) by hand: its 3x3 window, the int32 bias, the multiplier, the rounding, the zero point
acc = int(((qx_ex[0, 0, 1:4, 1:4].long() - zx_ex) * qw_ex[0, 0].long()).sum())
acc += round(float(b_ex[0]) / (sx_ex * float(sw_ex[0])))
M0, shift = quantize_multiplier(sx_ex * float(sw_ex[0]) / sy_ex)
by_hand = min(max(((acc * M0 + (1 << (30 + shift))) >> (31 + shift)) + zy_ex, 0), 255)
assert int(got[0, 0, 2, 2]) == by_hand, f"output (0, 0, 2, 2) is {int(got[0, 0, 2, 2])}, the integer pipeline gives {by_hand}"
""", f"{GRADER}.check_conv_exact(int8_depthwise_conv)"),
        md("""
## 5. The depthwise pitfall

A trained MobileNet's depthwise filters differ widely in size from one channel to the next, once batch
norm is folded into them (Krishnamoorthi, 2018; Nagel et al., 2019). With one scale for the whole tensor,
the large channels set the step and the small ones are left with a few levels, or none.

`depthwise_pitfall(w, x)` takes a depthwise weight `w` `(C, 1, 3, 3)` and an input `x` `(N, C, H, W)`,
quantizes the weights symmetrically to int8 ($[-127, 127]$, zero point 0) in two ways: **per-tensor**
(one scale $\\max|w| / 127$) and **per-channel** (your `quantize_per_channel`), and runs the float
layer `F.conv2d(x, w_hat, padding=1, groups=C)` with each dequantized $\\hat w$ (activations stay
float, so only the weights' error is measured). It returns a dict with

- `"per_tensor_db"`, `"per_channel_db"`: the signal-to-quantization-noise ratio of each output
  channel $c$, $\\mathrm{SQNR}_c = 10 \\log_{10}\\big(\\sum y_c^2 / \\sum (y_c - \\hat y_c)^2\\big)$ dB
  (sums over the batch and the positions; $y$ is the output with the unquantized weights; compute in
  float64), averaged over the channels. Per channel, because the batch norm that follows a depthwise
  layer rescales every channel to a similar spread: each channel's *relative* error is what the next
  layer sees, while a ratio over the whole tensor would be dominated by its few largest channels;
- `"better"`: `"per-channel"` if its SQNR is more than 1 dB above the other's, `"per-tensor"` in the
  opposite case, `"same"` otherwise: your conclusion, computed from the two numbers.
"""),
        answer("ps8_answer_pitfall", """
def depthwise_pitfall(w, x):
    \"\"\"Mean per-channel SQNR (dB) of a depthwise layer's output, per-tensor vs per-channel int8 weights; verdict.\"\"\"
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
"""),
        readonly("ps8_mobilenet_like", """
# Depthwise weights like a trained MobileNet's: channel ranges spread log-uniformly over two and a half decades.
_g = torch.Generator().manual_seed(1)
C = 32
ranges = torch.exp(torch.empty(C).uniform_(math.log(5e-3), math.log(3.0), generator=_g))
W_DW = torch.randn(C, 1, 3, 3, generator=_g) * ranges.view(C, 1, 1, 1)
X_DW = torch.randn(1, C, 14, 14, generator=_g)
"""),
        tests("ps8_pitfall_sqnr", 2, "Are the two SQNRs the mean over the output channels of each channel's SQNR, in dB?", """
pitfall = depthwise_pitfall(W_DW, X_DW)
print(f"output SQNR: per-tensor {pitfall['per_tensor_db']:.1f} dB, per-channel {pitfall['per_channel_db']:.1f} dB "
      f"-> {pitfall['better']}")
assert 30 < pitfall["per_channel_db"] < 60, "int8 weights with a scale per channel give a few tens of dB"
""", f"{GRADER}.check_pitfall_sqnr(depthwise_pitfall)"),
        tests("ps8_pitfall_verdict", 1, "Is the verdict computed from the two SQNRs, by the rule stated?", """
same = torch.randn(3, 1, 3, 3)
same = same / same.abs().amax(dim=(1, 2, 3), keepdim=True)  # every channel's max|w| is 1
r = depthwise_pitfall(same, torch.randn(1, 3, 6, 6))
gap = r["per_channel_db"] - r["per_tensor_db"]
rule = "per-channel" if gap > 1 else ("per-tensor" if gap < -1 else "same")
assert r["better"] == rule, f"your two SQNRs are {gap:+.2f} dB apart, so the rule says {rule!r}, not {r['better']!r}"
print(f"equal ranges: {r['better']!r} (equal ranges give equal scales, so 'same' once quantize_per_channel is right)")
""", f"{GRADER}.check_pitfall_verdict(depthwise_pitfall)"),
        md("You are done when *Restart & Run All* runs without errors."),
    ]


def _reference_src():
    """The notebook's imports and the solution's quantize_per_channel, quantize_multiplier and requantize,
    as the cells hold them (markers removed): what int8_depthwise_conv and depthwise_pitfall run with."""
    keep = ("ps8_imports", "ps8_answer_per_channel", "ps8_answer_multiplier", "ps8_answer_requantize")
    parts = []
    for c in cells(None):
        if c is not None and c.metadata.get("nbgrader", {}).get("grade_id") in keep:
            parts.append("\n".join(line for line in c.source.split("\n")
                                   if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")))
    return "\n\n\n".join(parts)


assert CHECKS.count("REFERENCE_SRC = None") == 1
CHECKS = CHECKS.replace("REFERENCE_SRC = None", f"REFERENCE_SRC = {_reference_src()!r}")
assert "'''" not in CHECKS
