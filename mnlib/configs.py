"""The papers' architecture tables as typed data, one row per table row.

Width multipliers are applied in one place only: ``make_divisible`` (called by mnlib.models).
"""
from __future__ import annotations

from dataclasses import dataclass

from ._checks import check_number


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never dropping more than 10%.

    This is the rule of the TensorFlow reference implementation of MobileNetV2
    (``_make_divisible`` in tensorflow/models, research/slim/nets/mobilenet/mobilenet.py), which
    torchvision also uses; hardware likes channel counts in multiples of 8.

    >>> make_divisible(32 * 1.0)
    32
    >>> make_divisible(32 * 0.35)   # 11.2 rounds to 8, but 8 < 0.9 * 11.2, so one more step
    16
    >>> make_divisible(1280 * 1.4)
    1792
    >>> make_divisible(3.0)         # never below the divisor
    8
    >>> make_divisible(-1)
    Traceback (most recent call last):
    ...
    ValueError: value must be a number > 0, got -1
    """
    check_number("value", value)
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


# --- MobileNetV1 (Howard et al. 2017, "MobileNets", Table 1) -------------------------------
@dataclass(frozen=True)
class V1Layer:
    """One depthwise separable layer of Table 1: depthwise 3x3 with ``stride``, then 1x1 to ``out``."""
    out: int
    stride: int


# The stem is a standard 3x3 conv, 3 -> 32, stride 2. Table 1 prints the last depthwise layer
# (the 13th, "Conv dw / s2" on 7x7x1024) as stride 2; it is stride 1: the feature map is already
# 7x7, every implementation uses 1, and only stride 1 gives the paper's own 569M Mult-Adds.
V1_STEM = 32
V1_LAYERS: tuple[V1Layer, ...] = (
    V1Layer(64, 1),
    V1Layer(128, 2), V1Layer(128, 1),
    V1Layer(256, 2), V1Layer(256, 1),
    V1Layer(512, 2),
    V1Layer(512, 1), V1Layer(512, 1), V1Layer(512, 1), V1Layer(512, 1), V1Layer(512, 1),
    V1Layer(1024, 2), V1Layer(1024, 1),
)


# --- MobileNetV2 (Sandler et al. 2018, Table 2) -----------------------------------------------
@dataclass(frozen=True)
class V2Stage:
    """One row of Table 2: expansion factor t, output channels c, repeats n, first stride s."""
    t: int
    c: int
    n: int
    s: int


V2_STEM = 32
V2_LAST = 1280  # the final 1x1 conv; the paper keeps it at 1280 for width multipliers < 1
V2_STAGES: tuple[V2Stage, ...] = (
    V2Stage(1, 16, 1, 1),
    V2Stage(6, 24, 2, 2),
    V2Stage(6, 32, 3, 2),
    V2Stage(6, 64, 4, 2),
    V2Stage(6, 96, 3, 1),
    V2Stage(6, 160, 3, 2),
    V2Stage(6, 320, 1, 1),
)


# --- MobileNetV3 (Howard et al. 2019, "Searching for MobileNetV3", Tables 1 and 2) ------------
@dataclass(frozen=True)
class V3Block:
    """One bneck row: kernel K, exact expanded width, output channels, SE on/off, activation, stride."""
    kernel: int
    expanded: int
    out: int
    se: bool
    activation: str  # "relu" or "hswish"
    stride: int


@dataclass(frozen=True)
class V3Config:
    stem: int           # conv2d 3x3, stride 2, hard-swish
    blocks: tuple[V3Block, ...]
    last_conv_ratio: int  # the 1x1 conv after the blocks (hard-swish) is this many times the last width
    head: int             # the 1x1 "conv2d NBN" layer after pooling, as a Linear layer


V3_LARGE = V3Config(  # Table 1
    stem=16,
    blocks=(
        V3Block(3, 16, 16, False, "relu", 1),
        V3Block(3, 64, 24, False, "relu", 2),
        V3Block(3, 72, 24, False, "relu", 1),
        V3Block(5, 72, 40, True, "relu", 2),
        V3Block(5, 120, 40, True, "relu", 1),
        V3Block(5, 120, 40, True, "relu", 1),
        V3Block(3, 240, 80, False, "hswish", 2),
        V3Block(3, 200, 80, False, "hswish", 1),
        V3Block(3, 184, 80, False, "hswish", 1),
        V3Block(3, 184, 80, False, "hswish", 1),
        V3Block(3, 480, 112, True, "hswish", 1),
        V3Block(3, 672, 112, True, "hswish", 1),
        V3Block(5, 672, 160, True, "hswish", 2),
        V3Block(5, 960, 160, True, "hswish", 1),
        V3Block(5, 960, 160, True, "hswish", 1),
    ),
    last_conv_ratio=6,  # 960 = 6 x 160
    head=1280,
)

V3_SMALL = V3Config(  # Table 2
    stem=16,
    blocks=(
        V3Block(3, 16, 16, True, "relu", 2),
        V3Block(3, 72, 24, False, "relu", 2),
        V3Block(3, 88, 24, False, "relu", 1),
        V3Block(5, 96, 40, True, "hswish", 2),
        V3Block(5, 240, 40, True, "hswish", 1),
        V3Block(5, 240, 40, True, "hswish", 1),
        V3Block(5, 120, 48, True, "hswish", 1),
        V3Block(5, 144, 48, True, "hswish", 1),
        V3Block(5, 288, 96, True, "hswish", 2),
        V3Block(5, 576, 96, True, "hswish", 1),
        V3Block(5, 576, 96, True, "hswish", 1),
    ),
    last_conv_ratio=6,  # 576 = 6 x 96
    head=1024,
)

# SE squeezes to a quarter of the expanded width (paper, section 5.3), rounded by make_divisible.
V3_SE_REDUCTION = 4
