"""ps4_inverted_residual: MobileNetV2's block, the network from its (t, c, n, s) table, and the block's MACs.

The notebook in percent format, one cell per ``# %%`` header (assignments/build.py documents them):
explanations, the reference answers (between ``### BEGIN/END SOLUTION``), visible self-checks and the
hidden check each tests cell calls (assignments/ps4_inverted_residual/checks.py).
"""


# %% [markdown]
# # Problem set 4: the inverted residual block and MobileNetV2
#
# You will build MobileNetV2's inverted residual block (expand, depthwise, linear projection, and a
# residual only where shapes allow it), assemble the whole network from the paper's $(t, c, n, s)$
# table, and count a block's MACs. Chapter 6 of the book explains each piece.
#
# **Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` in your
# answers (the grader compares with it). The grader checks many more shapes than the visible tests.


# %% setup
from assignments.ps4_inverted_residual import checks as _ps_grader  # the build writes the setup cell here


# %% readonly ps4_imports
import torch
from torch import nn


# %% [markdown]
# ## 1. The block
#
# `InvertedResidual(c_in, c_out, stride, t)` with hidden width $tC_{in}$ (`int(round(t * c_in))`:
# $t$ may be a fraction such as 1.5, and $t C_{in}$ then need not be an integer; `round` rounds
# half to even, and truncating with `int(t * c_in)` alone gives another width):
#
# 1. **expand**: 1x1 conv $C_{in} \to tC_{in}$, batch norm, ReLU6 — *only when* the hidden width
#    differs from $C_{in}$ (it equals $C_{in}$ for $t = 1$);
# 2. **depthwise**: 3x3 conv, `groups` = hidden width, the stride, padding 1, batch norm, ReLU6;
# 3. **project**: 1x1 conv to $C_{out}$, batch norm, and **no activation** (the linear bottleneck).
#
# Convolutions have no bias. Create them in this order, each step as an `nn.Sequential` of
# conv, BN (and activation), e.g. `self.expand`, `self.depthwise`, `self.project`. Set
# `self.use_res_connect` (a `bool`): the input is added to the output only when that is possible
# without changing any shape. Use PyTorch's defaults for batch norm (`eps`, `momentum`): the
# reference does. The grader loads the reference weights into your layers in creation order and
# sees each step by its call: `forward` must call the modules themselves (`self.expand(x)`, ...),
# not use their weights through `torch.nn.functional`.


# %% answer ps4_answer_block
class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        ### BEGIN SOLUTION
        hidden = int(round(t * c_in))
        self.use_res_connect = stride == 1 and c_in == c_out
        if hidden != c_in:
            self.expand = nn.Sequential(nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                                       nn.BatchNorm2d(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        y = self.expand(x) if hasattr(self, "expand") else x
        y = self.project(self.depthwise(y))
        return x + y if self.use_res_connect else y
        ### END SOLUTION


# %% tests ps4_block_structure points=2
"""Does InvertedResidual have the right convolutions (no expansion when t = 1) and parameter count?"""
b = InvertedResidual(16, 24, 2, 6)
assert sum(p.numel() for p in b.parameters()) == 5_136, "InvertedResidual(16, 24, 2, 6) has 5,136 parameters"
assert sum(isinstance(m, nn.Conv2d) for m in InvertedResidual(32, 16, 1, 1).modules()) == 2, "t = 1: no expansion conv, so 2 convolutions"
### BEGIN HIDDEN TESTS
_ps_grader.check_block_structure(InvertedResidual)
### END HIDDEN TESTS


# %% tests ps4_residual_rule points=2
"""Is use_res_connect True exactly when the input can be added to the output?"""
assert InvertedResidual(16, 16, 1, 6).use_res_connect is True, "stride 1 and C_in == C_out: the input can be added"
assert InvertedResidual(16, 24, 1, 6).use_res_connect is False, "C_in != C_out: the shapes differ, no residual"
### BEGIN HIDDEN TESTS
_ps_grader.check_residual_rule(InvertedResidual)
### END HIDDEN TESTS


# %% tests ps4_block_outputs points=3
"""With mnlib's weights and BN statistics loaded in order, does the block compute the same outputs?"""
y = InvertedResidual(16, 24, 2, 6)(torch.randn(1, 16, 9, 9))
assert y.shape == (1, 24, 5, 5), f"expected (1, 24, 5, 5), got {tuple(y.shape)}"
### BEGIN HIDDEN TESTS
_ps_grader.check_block_outputs(InvertedResidual)
### END HIDDEN TESTS


# %% [markdown]
# ## 2. MobileNetV2 from its table
#
# Table 2 of the paper, one row per stage: expansion $t$, output channels $c$, repeats $n$, and the
# stride $s$ of the stage's *first* block (the others have stride 1). Before the stages: a 3x3 conv
# 3 → 32, stride 2, padding 1, BN, ReLU6. After them: a 1x1 conv to 1280, BN, ReLU6; then global
# average pooling, flattening, `nn.Dropout(0.2)` and `nn.Linear(1280, num_classes)`. The stem
# conv and the last 1x1 conv have no bias; batch norm keeps PyTorch's defaults. As in §1, the
# grader sees each layer by its call, so the forward pass must call the layer modules themselves.


# %% readonly ps4_table
V2_TABLE = [  # (t, c, n, s), Sandler et al. 2018, Table 2
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


# %% answer ps4_answer_v2
def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    ### BEGIN SOLUTION
    layers = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
    c = 32
    for t, out, n, s in V2_TABLE:
        for i in range(n):
            layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
            c = out
    layers += [nn.Conv2d(c, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes)]
    return nn.Sequential(*layers)
    ### END SOLUTION


# %% tests ps4_v2_params points=2
"""Does mobilenet_v2 have MobileNetV2's parameter count (also with 10 classes) and output shape?"""
net = mobilenet_v2()
assert sum(p.numel() for p in net.parameters()) == 3_504_872, "MobileNetV2 has 3,504,872 parameters"
### BEGIN HIDDEN TESTS
_ps_grader.check_v2(mobilenet_v2)
### END HIDDEN TESTS


# %% [markdown]
# ## 3. MACs of a block
#
# `block_macs(c_in, c_out, h, w, t, k=3, stride=1)`: the MACs of the three convolutions of a block on
# an $H \times W$ input, $HWC_{in}tC_{in} + H'W'tC_{in}K^2 + H'W'tC_{in}C_{out}$ with
# $H' = \lceil H/s \rceil$ (padding $(K-1)/2$), hidden width `int(round(t * c_in))`, and no expansion
# term when the hidden width equals $C_{in}$. Return a Python `int` (a count).


# %% answer ps4_answer_macs
def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    ### BEGIN SOLUTION
    hidden = int(round(t * c_in))
    h2, w2 = -(-h // stride), -(-w // stride)  # ceil(H / s)
    expand = h * w * c_in * hidden if hidden != c_in else 0
    return expand + h2 * w2 * hidden * k * k + h2 * w2 * hidden * c_out
    ### END SOLUTION


# %% tests ps4_block_macs points=2
"""Is block_macs exact for many blocks, including t = 1, odd sizes and stride 2?"""
macs = block_macs(16, 24, 112, 112, 6, 3, 2)
assert not isinstance(macs, float), "block_macs should return an int (a count of MACs), not a float"
assert macs == 112 * 112 * 16 * 96 + 56 * 56 * 96 * 9 + 56 * 56 * 96 * 24, "expand at 112x112, depthwise and projection at 56x56"
### BEGIN HIDDEN TESTS
_ps_grader.check_block_macs(block_macs)
### END HIDDEN TESTS


# %% [markdown]
# You are done when *Restart & Run All* runs without errors.
