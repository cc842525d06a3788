"""MobileNetV1, V2 and V3 built from mnlib.configs and mnlib.layers.

The width multiplier alpha (``width_mult``) scales every layer's channels through
``make_divisible``; the resolution multiplier rho is simply the input size you feed in.
V2 and V3 have torchvision's layer shapes at every width, so their parameter counts match it.
"""
from __future__ import annotations

from torch import nn

from ._checks import check_number, check_positive_int
from .configs import (V1_LAYERS, V1_STEM, V2_LAST, V2_STAGES, V2_STEM, V3_LARGE, V3_SE_REDUCTION,
                      V3_SMALL, V3Config, make_divisible)
from .layers import ConvBNAct, DepthwiseSeparableConv, HardSwish, InvertedResidual

ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": HardSwish}


def _check_args(width_mult: float, num_classes: int) -> None:
    check_number("width_mult", width_mult)
    check_positive_int("num_classes", num_classes)


class MobileNet(nn.Module):
    """features -> global average pool -> classifier. ``min_input`` is the smallest usable size."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, total_stride: int):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = classifier
        self.total_stride = total_stride

    def forward(self, x):  # (N, 3, H, W) -> (N, num_classes)
        if x.dim() != 4:
            raise ValueError(f"input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != 3:
            raise ValueError(f"input must have 3 channels, got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.total_stride:
            raise ValueError(f"input {tuple(x.shape[-2:])} is too small: this network downsamples "
                             f"by {self.total_stride}, so H and W must be >= {self.total_stride}")
        return self.classifier(self.flatten(self.pool(self.features(x))))


def mobilenet_v1(width_mult: float = 1.0, num_classes: int = 1000,
                 activation=nn.ReLU) -> MobileNet:
    """MobileNetV1 (paper Table 1): conv 3x3/s2, 13 DSC layers, average pool, FC with bias."""
    _check_args(width_mult, num_classes)
    c = make_divisible(V1_STEM * width_mult)
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, stride=2, activation=activation)]
    for row in V1_LAYERS:
        out = make_divisible(row.out * width_mult)
        layers.append(DepthwiseSeparableConv(c, out, 3, row.stride, activation=activation))
        c = out
    return MobileNet(nn.Sequential(*layers), v1_classifier(c, num_classes), 32)


def v1_classifier(c: int, num_classes: int) -> nn.Sequential:
    """V1's classifier: one fully connected layer (with bias) on the pooled C features."""
    return nn.Sequential(nn.Linear(c, num_classes))


def v2_tail(c: int, width_mult: float, num_classes: int, dropout: float) -> tuple[ConvBNAct, nn.Sequential]:
    """V2's last 1x1 conv (C -> 1280, ReLU6; the paper keeps 1280 for alpha < 1) and classifier."""
    last = make_divisible(V2_LAST * max(1.0, width_mult))
    return (ConvBNAct(c, last, 1, activation=nn.ReLU6),
            nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes)))


def v3_tail(c: int, last_conv_ratio: int, head: int, width_mult: float, num_classes: int, dropout: float,
            **bn) -> tuple[ConvBNAct, nn.Sequential]:
    """V3's last 1x1 conv (C -> ratio x C, hard-swish) and classifier (the 1x1 "conv2d NBN" head
    as a Linear layer of make_divisible(head x alpha), hard-swish, dropout, Linear)."""
    last_conv = last_conv_ratio * c
    head = make_divisible(head * width_mult)
    return (ConvBNAct(c, last_conv, 1, activation=HardSwish, **bn),
            nn.Sequential(nn.Linear(last_conv, head), HardSwish(), nn.Dropout(dropout),
                          nn.Linear(head, num_classes)))


def mobilenet_v2(width_mult: float = 1.0, num_classes: int = 1000, dropout: float = 0.2) -> MobileNet:
    """MobileNetV2 (paper Table 2): the (t, c, n, s) rows, ReLU6, linear bottlenecks."""
    _check_args(width_mult, num_classes)
    c = make_divisible(V2_STEM * width_mult)
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, stride=2, activation=nn.ReLU6)]
    for stage in V2_STAGES:
        out = make_divisible(stage.c * width_mult)
        for i in range(stage.n):  # only the first block of a stage strides
            layers.append(InvertedResidual(c, out, stage.s if i == 0 else 1, t=stage.t))
            c = out
    last_conv, classifier = v2_tail(c, width_mult, num_classes, dropout)
    layers.append(last_conv)
    return MobileNet(nn.Sequential(*layers), classifier, 32)


def _mobilenet_v3(config: V3Config, width_mult: float, num_classes: int, dropout: float) -> MobileNet:
    _check_args(width_mult, num_classes)
    bn = dict(bn_eps=1e-3, bn_momentum=0.01)  # the TF reference's BN settings, as in torchvision
    c = make_divisible(config.stem * width_mult)
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, stride=2, activation=HardSwish, **bn)]
    for b in config.blocks:
        expanded = make_divisible(b.expanded * width_mult)
        out = make_divisible(b.out * width_mult)
        squeeze = make_divisible(expanded // V3_SE_REDUCTION) if b.se else None
        layers.append(InvertedResidual(c, out, b.stride, expanded_channels=expanded,
                                       kernel_size=b.kernel, squeeze_channels=squeeze,
                                       activation=ACTIVATIONS[b.activation], **bn))
        c = out
    last_conv, classifier = v3_tail(c, config.last_conv_ratio, config.head, width_mult, num_classes,
                                    dropout, **bn)
    layers.append(last_conv)
    return MobileNet(nn.Sequential(*layers), classifier, 32)


def mobilenet_v3_large(width_mult: float = 1.0, num_classes: int = 1000,
                       dropout: float = 0.2) -> MobileNet:
    """MobileNetV3-Large (paper Table 1)."""
    return _mobilenet_v3(V3_LARGE, width_mult, num_classes, dropout)


def mobilenet_v3_small(width_mult: float = 1.0, num_classes: int = 1000,
                       dropout: float = 0.2) -> MobileNet:
    """MobileNetV3-Small (paper Table 2)."""
    return _mobilenet_v3(V3_SMALL, width_mult, num_classes, dropout)


MODELS = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large": mobilenet_v3_large,
    "mobilenet_v3_small": mobilenet_v3_small,
}
