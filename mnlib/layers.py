"""Building blocks of the MobileNets, each from one conv-norm-activation unit.

Symbols follow the papers: K is the kernel size, C_in/C_out the channels, t the
expansion factor of an inverted residual (MobileNetV2, Sandler et al. 2018).
Every block takes explicit channel counts (no lazy modules): this is a course
about counting parameters.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from ._checks import check_number, check_positive_int

Activation = Optional[Callable[[], nn.Module]]


class HardSigmoid(nn.Module):
    """relu6(x + 3) / 6: a piecewise-linear sigmoid (MobileNetV3, Howard et al. 2019, eq. 2).

    It needs no exponential, and its breakpoints at -3 and 3 are exact in int8.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


class HardSwish(nn.Module):
    """x * relu6(x + 3) / 6: the piecewise version of swish (MobileNetV3, eq. 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (torch.clamp(x + 3.0, 0.0, 6.0) / 6.0)


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias: BN follows) -> BatchNorm2d -> activation (omitted when None).

    Padding is (K - 1) // 2 * dilation, so stride 1 keeps H and W and stride s gives ceil(H / s).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, dilation: int = 1, activation: Activation = nn.ReLU,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1):
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride), ("groups", groups),
                        ("dilation", dilation)):
            check_positive_int(name, v)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        padding = (kernel_size - 1) // 2 * dilation
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                      dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups


class DepthwiseSeparableConv(nn.Sequential):
    """MobileNetV1's block: depthwise KxK (groups = C_in) then pointwise 1x1, each with BN and activation.

    MACs: H'W'C_in K^2 (depthwise) + H'W'C_in C_out (pointwise), against H'W'C_in C_out K^2 for a
    standard convolution: a ratio of 1/C_out + 1/K^2.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 activation: Activation = nn.ReLU):
        super().__init__()
        self.depthwise = ConvBNAct(in_channels, in_channels, kernel_size, stride,
                                   groups=in_channels, activation=activation)  # spatial filtering
        self.pointwise = ConvBNAct(in_channels, out_channels, 1,
                                   activation=activation)  # channel mixing
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al. 2018) as MobileNetV3 uses it.

    Global average pool -> 1x1 conv to C_sq (ReLU) -> 1x1 conv back to C (hard-sigmoid) -> scale x.
    The 1x1 convs carry biases, as in the paper's reference implementation and torchvision.
    """

    def __init__(self, channels: int, squeeze_channels: int,
                 gate: Callable[[], nn.Module] = HardSigmoid):
        super().__init__()
        check_positive_int("channels", channels)
        check_positive_int("squeeze_channels", squeeze_channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W)
        s = self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))  # (N, C, 1, 1)
        return x * s


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 block: expand 1x1 (C_in -> t C_in), depthwise KxK, optional SE, linear 1x1 projection.

    Give either the expansion factor ``t`` (V2: the hidden width is round(t * C_in)) or the exact
    ``expanded_channels`` (V3's table lists them: 72, 88, ...). There is no expansion conv when the
    hidden width equals C_in (t = 1). The projection has no activation: the linear bottleneck.
    The residual is added exactly when stride == 1 and C_in == C_out.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, t: float | None = None,
                 expanded_channels: int | None = None, kernel_size: int = 3,
                 squeeze_channels: int | None = None, activation: Activation = nn.ReLU6,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1):
        super().__init__()
        if (t is None) == (expanded_channels is None):
            raise ValueError("give exactly one of t (expansion factor) or expanded_channels")
        if t is not None:
            check_number("t (expansion factor)", t)
            expanded_channels = int(round(in_channels * t))
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("expanded_channels", expanded_channels)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        bn = dict(bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.expanded_channels, self.stride, self.kernel_size = expanded_channels, stride, kernel_size
        self.use_res_connect = stride == 1 and in_channels == out_channels

        layers: list[nn.Module] = []
        if expanded_channels != in_channels:  # expand
            layers.append(ConvBNAct(in_channels, expanded_channels, 1, activation=activation, **bn))
        layers.append(ConvBNAct(expanded_channels, expanded_channels, kernel_size, stride,  # depthwise
                                groups=expanded_channels, activation=activation, **bn))
        if squeeze_channels is not None:
            layers.append(SqueezeExcitation(expanded_channels, squeeze_channels))
        layers.append(ConvBNAct(expanded_channels, out_channels, 1, activation=None, **bn))  # project
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res_connect else y


class DepthwiseSeparableConv1d(nn.Sequential):
    """1-D DSC for time series (N, C, L): depthwise K taps per channel, then pointwise 1x1 mixing."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 1,
                 dilation: int = 1, activation: Activation = nn.ReLU):
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            check_positive_int(name, v)
        padding = (kernel_size - 1) // 2 * dilation
        act = (lambda: activation()) if activation is not None else nn.Identity
        super().__init__(
            nn.Conv1d(in_channels, in_channels, kernel_size, stride, padding, dilation=dilation,
                      groups=in_channels, bias=False),
            nn.BatchNorm1d(in_channels), act(),
            nn.Conv1d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm1d(out_channels), act(),
        )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
