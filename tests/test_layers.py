"""mnlib.layers against torch's own operators."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnlib.layers import (ConvBNAct, DepthwiseSeparableConv, DepthwiseSeparableConv1d, HardSigmoid,
                          HardSwish, InvertedResidual, SqueezeExcitation)


def test_hard_activations_equal_torch():
    """Do our HardSwish/HardSigmoid equal torch's within 1e-6, breakpoints included?"""
    x = torch.cat([torch.linspace(-8, 8, 100001), torch.tensor([-3.0, 3.0, 0.0])])
    assert torch.allclose(HardSwish()(x), F.hardswish(x), atol=1e-6, rtol=0)
    assert torch.allclose(HardSigmoid()(x), F.hardsigmoid(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("c_in,c_out,k,stride,size", [(3, 8, 3, 1, 9), (8, 16, 3, 2, 15), (5, 7, 5, 2, 13),
                                                      (4, 4, 7, 1, 11), (6, 12, 3, 2, 8)])
def test_dsc_equals_standard_conv_with_product_kernel(c_in, c_out, k, stride, size):
    """Is a DSC's linear part exactly a standard conv whose kernel is W[o,i] = P[o,i] * D[i]?"""
    torch.manual_seed(0)
    dsc = DepthwiseSeparableConv(c_in, c_out, k, stride, activation=None).eval()
    dw = dsc.depthwise[0].weight      # (C_in, 1, K, K)
    pw = dsc.pointwise[0].weight      # (C_out, C_in, 1, 1)
    x = torch.randn(2, c_in, size, size)
    pad = (k - 1) // 2
    two_step = F.conv2d(F.conv2d(x, dw, stride=stride, padding=pad, groups=c_in), pw)
    kernel = pw[:, :, 0, 0, None, None] * dw[:, 0][None]   # (C_out, C_in, K, K)
    one_step = F.conv2d(x, kernel, stride=stride, padding=pad)
    assert torch.allclose(two_step, one_step, atol=1e-5)
    # and the module itself (BN in eval with identity statistics is affine 1, 0)
    assert torch.allclose(dsc(x), one_step, atol=1e-5)


def test_dsc_structure():
    """Depthwise has groups = C_in, pointwise is 1x1, each followed by BN and the activation."""
    m = DepthwiseSeparableConv(16, 32, kernel_size=5, stride=2, activation=nn.ReLU6)
    dw, pw = m.depthwise[0], m.pointwise[0]
    assert (dw.groups, dw.kernel_size, dw.stride) == (16, (5, 5), (2, 2))
    assert (pw.groups, pw.kernel_size, pw.out_channels) == (1, (1, 1), 32)
    assert isinstance(m.depthwise[1], nn.BatchNorm2d) and isinstance(m.pointwise[2], nn.ReLU6)
    assert m(torch.randn(1, 16, 15, 15)).shape == (1, 32, 8, 8)


@pytest.mark.parametrize("c_in,c_out,stride,t,expect_res,expect_expand", [
    (16, 16, 1, 6, True, True), (16, 24, 1, 6, False, True), (16, 16, 2, 6, False, True),
    (32, 32, 1, 1, True, False), (32, 16, 1, 1, False, False)])
def test_inverted_residual_rules(c_in, c_out, stride, t, expect_res, expect_expand):
    """Residual exactly when stride 1 and C_in = C_out; no expansion conv when t = 1; linear projection."""
    m = InvertedResidual(c_in, c_out, stride, t=t).eval()
    assert m.use_res_connect is expect_res
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    assert len(convs) == (3 if expect_expand else 2)
    assert not isinstance(m.block[-1][-1], (nn.ReLU, nn.ReLU6))   # the projection ends in BN
    x = torch.randn(2, c_in, 10, 10)
    y = m(x)
    assert y.shape == (2, c_out, 10 // stride, 10 // stride)
    if expect_res:
        assert torch.allclose(y - x, m.block(x), atol=1e-6)


def test_inverted_residual_with_se_and_exact_width():
    """V3 rows give the exact expanded width; SE sits between depthwise and projection."""
    m = InvertedResidual(24, 40, 2, expanded_channels=72, kernel_size=5, squeeze_channels=24,
                         activation=HardSwish)
    assert isinstance(m.block[2], SqueezeExcitation)
    assert m.block[1][0].kernel_size == (5, 5) and m.block[1][0].out_channels == 72
    assert m(torch.randn(1, 24, 7, 7)).shape == (1, 40, 4, 4)


def test_squeeze_excitation_matches_manual():
    """SE output = x * hardsigmoid(W2 relu(W1 mean(x) + b1) + b2), computed with torch ops."""
    torch.manual_seed(1)
    se = SqueezeExcitation(8, 4)
    x = torch.randn(3, 8, 5, 6)
    s = x.mean((2, 3))
    s = F.hardsigmoid(F.linear(F.relu(F.linear(s, se.fc1.weight[:, :, 0, 0], se.fc1.bias)),
                               se.fc2.weight[:, :, 0, 0], se.fc2.bias))
    assert torch.allclose(se(x), x * s[:, :, None, None], atol=1e-6)


def test_dsc1d_equals_product_kernel():
    """The 1-D DSC is a depthwise conv1d then a pointwise conv1d: equal to one conv1d with the product kernel."""
    torch.manual_seed(2)
    m = DepthwiseSeparableConv1d(4, 6, kernel_size=5, activation=None).eval()
    x = torch.randn(2, 4, 31)
    dw, pw = m[0].weight, m[3].weight
    kernel = pw[:, :, 0, None] * dw[:, 0][None]
    assert torch.allclose(m(x), F.conv1d(x, kernel, padding=2), atol=1e-5)
    assert m(x).shape == (2, 6, 31)


@pytest.mark.parametrize("kwargs,arg", [
    (dict(in_channels=6, out_channels=8, groups=4), "groups"),
    (dict(in_channels=0, out_channels=8), "in_channels"),
    (dict(in_channels=4, out_channels=8, stride=0), "stride")])
def test_conv_bn_act_bad_input(kwargs, arg):
    """Bad channel/group arguments raise a ValueError naming the argument."""
    with pytest.raises(ValueError, match=arg):
        ConvBNAct(**kwargs)


def test_inverted_residual_bad_input():
    with pytest.raises(ValueError, match="exactly one"):
        InvertedResidual(8, 8, 1)
    with pytest.raises(ValueError, match="t"):
        InvertedResidual(8, 8, 1, t=0)
    with pytest.raises(ValueError, match="stride"):
        InvertedResidual(8, 8, 3, t=6)
