"""mnlib.quant against torch's own quantization: quantize_per_tensor / quantize_per_channel, the
observers' scales, fuse_conv_bn_eval, F.conv2d, and torch's quantized convolution as it runs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

from mnlib import quant


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_quantize_per_tensor_matches_torch():
    """Does quantize() give torch.quantize_per_tensor's integers, clipping included?"""
    x = torch.randn(4000, dtype=torch.float32) * 3
    for scale, zp, dtype, lo, hi in [(0.02, 0, torch.qint8, -128, 127), (0.05, 128, torch.quint8, 0, 255),
                                      (0.013, 37, torch.quint8, 0, 255)]:
        ours = quant.quantize(x.numpy(), scale, zp, lo, hi)
        theirs = torch.quantize_per_tensor(x, scale, zp, dtype).int_repr().numpy()
        assert np.array_equal(ours, theirs)
        assert ours.min() == lo and ours.max() == hi        # the test reaches the saturation


def test_quantize_per_channel_matches_torch():
    """Does quantize(..., axis=0) give torch.quantize_per_channel's integers?"""
    w = torch.randn(16, 3, 3, 3) * torch.logspace(-2, 1, 16).reshape(-1, 1, 1, 1)
    scales = torch.logspace(-3, -1, 16, dtype=torch.float64)
    zps = torch.zeros(16, dtype=torch.long)
    theirs = torch.quantize_per_channel(w, scales, zps, 0, torch.qint8).int_repr().numpy()
    ours = quant.quantize(w.numpy(), scales.numpy(), zps.numpy(), -128, 127, axis=0)
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("per_channel", [True, False])
def test_quantize_weight_scales_match_torch_observers(per_channel):
    """Are quantize_weight's symmetric scales those of torch's (PerChannel)MinMaxObserver, and its
    integers those that torch quantizes with them?"""
    w = torch.randn(24, 1, 3, 3) * torch.logspace(-1, 1, 24).reshape(-1, 1, 1, 1)
    if per_channel:
        obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    else:
        obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    obs(w)
    scale, zp = obs.calculate_qparams()
    q, s = quant.quantize_weight(w.numpy(), bits=8, per_channel=per_channel)
    np.testing.assert_allclose(s, scale.double().numpy().reshape(-1), rtol=1e-6)
    if per_channel:
        theirs = torch.quantize_per_channel(w, scale, zp, 0, torch.qint8).int_repr().numpy()
    else:
        theirs = torch.quantize_per_tensor(w, float(scale), int(zp), torch.qint8).int_repr().numpy()
    # The largest |w| lands on a tie, +-127.5 steps, which torch (float32 arithmetic) and we (float64)
    # may round apart; everywhere else the integers must be equal.
    steps = w.double().numpy() / s.reshape((-1, 1, 1, 1) if per_channel else 1)
    tie = np.abs(np.abs(steps - np.trunc(steps)) - 0.5) < 1e-4
    assert np.array_equal(q[~tie], theirs[~tie])
    assert np.abs(q[tie] - theirs[tie]).max(initial=0) <= 1


def test_low_bit_weight_range():
    """4-bit weights stay in [-8, 7] and, like torch's observer with that range, use scale max|w| / 7.5."""
    w = torch.randn(8, 4, 1, 1)
    obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=-8, quant_max=7)
    obs(w)
    q, s = quant.quantize_weight(w.numpy(), bits=4, per_channel=False)
    assert q.min() >= -8 and q.max() <= 7
    np.testing.assert_allclose(s[0], float(obs.calculate_qparams()[0]), rtol=1e-6)


def test_dequantize_inverts_on_the_grid():
    """Values on the quantization grid come back exactly."""
    q = np.arange(-128, 128)
    x = quant.dequantize(q, 0.25, 3)
    assert np.array_equal(quant.quantize(x, 0.25, 3, -128, 127), np.clip(q, -128, 127))


def test_sqnr_of_known_noise():
    """x = 1 everywhere, error 0.1 everywhere: SQNR = 10 log10(1 / 0.01) = 20 dB; no error: inf."""
    x = np.ones(100)
    assert quant.sqnr_db(x, x * 1.1) == pytest.approx(20.0)
    assert quant.sqnr_db(x, x) == float("inf")


def test_fold_bn_matches_torch_fusion():
    """fold_bn gives the weight and bias of torch.nn.utils.fusion.fuse_conv_bn_eval."""
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.01, 4)
        bn.weight.uniform_(0.1, 2)
        bn.bias.uniform_(-1, 1)
    conv.eval(), bn.eval()
    fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
    w, b = quant.fold_bn(conv, bn)
    np.testing.assert_allclose(w, fused.weight.detach().double().numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b, fused.bias.detach().double().numpy(), rtol=1e-5, atol=1e-7)


def test_quantize_multiplier_represents_m():
    """M0 is an int32 in [2^30, 2^31) and M0 2^-(31 + shift) equals M to 31 bits, including an M whose
    mantissa rounds up to 1 (carry) and an M above 1."""
    m = np.array([1e-4, 0.0123, 0.5, 0.999, 1 - 2.0 ** -40, 3.7])
    m0, shift = quant.quantize_multiplier(m)
    assert np.all((m0 >= 2 ** 30) & (m0 < 2 ** 31))
    back = m0 * 2.0 ** (-(31 + shift))
    np.testing.assert_allclose(back, m, rtol=2.0 ** -30)
    with pytest.raises(ValueError, match="> 0"):
        quant.quantize_multiplier(0.0)


def test_requantize_is_rounded_product():
    """requantize(acc) = clamp(floor(acc M + 1/2) + z) for random accumulators, with M exactly M0 2^-n."""
    rng = _rng(1)
    acc = rng.integers(-2 ** 20, 2 ** 20, size=(2, 5, 7, 7))
    m = rng.uniform(1e-4, 1e-2, size=5)
    m0, shift = quant.quantize_multiplier(m)
    exact = m0 * 2.0 ** (-(31 + shift))                   # the multiplier the integers represent
    expected = np.clip(np.floor(acc * exact.reshape(1, -1, 1, 1) + 0.5) + 10, 0, 255)
    assert np.array_equal(quant.requantize(acc, m0, shift, 10, 0, 255), expected)


@pytest.mark.parametrize("c_in,c_out,groups,stride,padding", [(4, 6, 1, 1, 1), (8, 8, 8, 2, 1), (8, 8, 8, 1, 0),
                                                             (6, 4, 2, 1, 1)])
def test_conv2d_int_matches_float_conv(c_in, c_out, groups, stride, padding):
    """The integer convolution equals F.conv2d on the same integers in float64 (exact below 2^53),
    with the zero point subtracted and padding that is the real 0."""
    rng = _rng(2)
    qx = rng.integers(0, 256, size=(2, c_in, 9, 9))
    qw = rng.integers(-128, 128, size=(c_out, c_in // groups, 3, 3))
    ours = quant.conv2d_int(qx, 77, qw, stride, padding, groups)
    ref = F.conv2d(torch.tensor(qx - 77, dtype=torch.float64), torch.tensor(qw, dtype=torch.float64),
                   stride=stride, padding=padding, groups=groups)
    assert np.array_equal(ours, ref.numpy().astype(np.int64))


def _integer_layer(qconv, qx):
    """The integer pipeline of mnlib.quant for torch's quantized conv module ``qconv`` on input ``qx``."""
    w = qconv.weight()
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        s_w = w.q_per_channel_scales().double().numpy()
    else:
        s_w = np.array([w.q_scale()])
    s_x, z_x, s_y, z_y = qx.q_scale(), qx.q_zero_point(), qconv.scale, qconv.zero_point
    acc = quant.conv2d_int(qx.int_repr().numpy(), z_x, w.int_repr().numpy(), qconv.stride[0],
                           qconv.padding[0], qconv.groups)
    bias = np.rint(qconv.bias().detach().double().numpy() / (s_x * s_w))          # int32, scale s_x s_w
    acc = acc + bias.astype(np.int64).reshape(1, -1, 1, 1)
    m0, shift = quant.quantize_multiplier(np.broadcast_to(s_x * s_w / s_y, (acc.shape[1],)))
    return quant.requantize(acc, m0, shift, z_y, 0, 255)


@pytest.mark.skipif("x86" not in torch.backends.quantized.supported_engines,
                    reason="torch's x86 quantized engine is the oracle here")
@pytest.mark.parametrize("groups,per_channel", [(16, True), (16, False), (1, True)])
def test_integer_layer_matches_torch_quantized_conv(groups, per_channel):
    """Our int8 x int8 -> int32 -> requantized uint8 output is torch's quantized conv's (x86 engine)
    to within 1 LSB, and equal on nearly every element (the engine requantizes in float32)."""
    torch.manual_seed(3)
    from torch.ao.nn.quantized import Conv2d as QConv2d
    c = 16
    w = torch.randn(c, c // groups, 3, 3) * torch.logspace(-1, 0.5, c).reshape(-1, 1, 1, 1)
    if per_channel:
        scales = torch.tensor(quant.quantize_weight(w.numpy())[1])
        qw = torch.quantize_per_channel(w, scales, torch.zeros(c, dtype=torch.long), 0, torch.qint8)
    else:
        qw = torch.quantize_per_tensor(w, float(quant.quantize_weight(w.numpy(), per_channel=False)[1][0]), 0,
                                       torch.qint8)
    qconv = QConv2d(c, c, 3, stride=1, padding=1, groups=groups)
    qconv.set_weight_bias(qw, torch.randn(c) * 0.1)
    qconv.scale, qconv.zero_point = 0.05, 60
    qx = torch.quantize_per_tensor(torch.rand(2, c, 10, 10) * 2, 0.01, 5, torch.quint8)
    with _engine("x86"):
        theirs = qconv(qx).int_repr().numpy().astype(np.int64)
    ours = _integer_layer(qconv, qx)
    diff = np.abs(ours - theirs)
    assert diff.max() <= 1
    assert (diff == 0).mean() >= 0.99
    assert len(np.unique(theirs)) > 50                       # a real spread of outputs, not all saturated


class _engine:
    """Set torch.backends.quantized.engine for a block, restoring it afterwards."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.before = torch.backends.quantized.engine
        torch.backends.quantized.engine = self.name

    def __exit__(self, *exc):
        torch.backends.quantized.engine = self.before
