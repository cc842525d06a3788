"""Receptive fields: the recurrence, the layers of an mnlib model, and an empirical check.

For a stack of layers l = 1..L with kernel K_l, stride s_l and dilation d_l,
    R_L = 1 + sum_l (d_l (K_l - 1)) * prod_{i < l} s_i.
A depthwise separable layer grows it exactly like a standard KxK conv: its 1x1 part adds nothing.
Residual branches do not change it (the identity path sees less, the conv path sets the maximum).
Squeeze-and-excitation pools globally, so in MobileNetV3 every output after the first SE block
depends on the whole image; ``model_layers`` lists the convolution path only, and says so.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
from torch import nn

from ._checks import check_positive_int


@dataclass(frozen=True)
class RFLayer:
    kernel: int
    stride: int = 1
    dilation: int = 1


def _as_layer(layer) -> RFLayer:
    if isinstance(layer, RFLayer):
        return layer
    if isinstance(layer, (tuple, list)) and 1 <= len(layer) <= 3:
        return RFLayer(*layer)
    raise ValueError(f"a layer must be an RFLayer or a (kernel, stride[, dilation]) tuple, got {layer!r}")


def receptive_field(layers: Iterable) -> int:
    """R_L of a stack given as RFLayer or (kernel, stride[, dilation]) tuples, input first.

    >>> receptive_field([(3, 1), (3, 1)])        # two 3x3 convs see 5x5
    5
    >>> receptive_field([(3, 2), (3, 2), (3, 1)])
    15
    """
    r, jump = 1, 1
    for layer in map(_as_layer, layers):
        for name in ("kernel", "stride", "dilation"):
            check_positive_int(name, getattr(layer, name), str(layer))
        r += layer.dilation * (layer.kernel - 1) * jump
        jump *= layer.stride
    return r


def receptive_field_growth(layers: Iterable) -> list[int]:
    """R after each layer (the curve the book plots)."""
    layers = [_as_layer(l) for l in layers]
    return [receptive_field(layers[: i + 1]) for i in range(len(layers))]


def model_layers(model: nn.Module) -> list[RFLayer]:
    """The spatial layers of a model's convolution path in forward order (convs and pools).

    1x1 convs are included (they add 0) so the list lines up with the per-layer cost table.
    Convolutions inside squeeze-and-excitation and global pools are skipped.
    """
    from .layers import SqueezeExcitation

    skip: set[int] = set()
    for m in model.modules():
        if isinstance(m, SqueezeExcitation):
            skip.update(id(x) for x in m.modules())
    out = []
    for m in model.modules():
        if id(m) in skip:
            continue
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            if kh != kw:
                raise ValueError(f"non-square kernel {m.kernel_size} is not supported")
            out.append(RFLayer(kh, m.stride[0], m.dilation[0]))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            out.append(RFLayer(k, s))
    return out


def model_receptive_field(model: nn.Module) -> int:
    """Theoretical receptive field of a model's last feature map (before global pooling)."""
    return receptive_field(model_layers(model))


def _linearised(module: nn.Module) -> nn.Module:
    """A copy whose activations are identities and whose conv weights are positive.

    Then no gradient can vanish by cancellation or a dead ReLU, and the support of the input
    gradient is exactly the receptive field.
    """
    from .cost import _is_activation
    from .layers import SqueezeExcitation

    m = copy.deepcopy(module).eval()
    for se in [x for x in m.modules() if isinstance(x, SqueezeExcitation)]:
        # the gate multiplies activations: keep it bounded (0, 1) with a gradient everywhere,
        # or the products overflow through the blocks
        se.gate = nn.Sigmoid()
        se.relu = nn.Identity()
    for child in list(m.modules()):
        if isinstance(child, SqueezeExcitation):
            continue
        for cname, c in list(child.named_children()):
            if _is_activation(c) or isinstance(c, nn.Dropout):
                setattr(child, cname, nn.Identity())
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.abs() + 0.1)
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0)
    return m


def empirical_receptive_field(features: nn.Module, input_size: int, in_channels: int = 3,
                              linearise: bool = True) -> tuple[int, int]:
    """Extent (rows, cols) of the input pixels that the centre output pixel depends on.

    Computes d y[centre] / d x by back-propagation and measures the bounding box of its non-zero
    support. ``features`` must be a purely convolutional module (no global pooling).
    Choose ``input_size`` comfortably larger than the receptive field, or padding cuts it off.
    """
    check_positive_int("input_size", input_size)
    net = _linearised(features) if linearise else copy.deepcopy(features).eval()
    x = torch.ones(1, in_channels, input_size, input_size, requires_grad=True)
    y = net(x)
    if y.dim() != 4:
        raise ValueError(f"features must return (N, C, H, W), got shape {tuple(y.shape)}")
    h, w = y.shape[-2:]
    y[0, :, h // 2, w // 2].sum().backward()
    grad = x.grad[0]
    if not torch.isfinite(grad).all():
        raise ValueError("the input gradient overflowed; use a smaller network or linearise=False")
    support = grad.abs().sum(0) > 0
    if not support.any():
        raise ValueError("the centre output does not depend on the input (all gradients are zero)")
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def stack_from_layers(layers: Sequence, channels: int = 2) -> nn.Sequential:
    """Conv2d stack realising an RF description (for checking the recurrence empirically)."""
    mods = []
    for layer in map(_as_layer, layers):
        pad = layer.dilation * (layer.kernel - 1) // 2
        mods.append(nn.Conv2d(channels, channels, layer.kernel, layer.stride, pad,
                              dilation=layer.dilation))
    return nn.Sequential(*mods)
