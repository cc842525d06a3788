"""ps5_v3_blocks: MobileNetV3's hard-sigmoid, hard-swish and squeeze-and-excitation.

The notebook in percent format, one cell per ``# %%`` header (assignments/build.py documents them):
explanations, the reference answers (between ``### BEGIN/END SOLUTION``), visible self-checks and the
hidden check each tests cell calls (assignments/ps5_v3_blocks/checks.py).
"""


# %% [markdown]
# # Problem set 5: the blocks of MobileNetV3
#
# MobileNetV3 replaces sigmoid and swish by piecewise-linear versions that need no exponential and
# stay exact under int8 quantization, and adds squeeze-and-excitation (SE) to some blocks. You will
# write all three. Chapter 7 of the book explains them.
#
# **Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` in your
# answers, and write the formulas yourself with tensor operations (`torch.clamp`, arithmetic) rather
# than `torch.nn.functional.hardsigmoid`/`hardswish` (or `nn.Hardsigmoid`/`nn.Hardswish`): the grader
# watches for them, and compares your values with both mnlib's and torch's.


# %% setup
from assignments.ps5_v3_blocks import checks as _ps_grader  # the build writes the setup cell here


# %% readonly ps5_imports
import torch
from torch import nn


# %% [markdown]
# ## 1. Hard sigmoid and hard swish
#
# $$\text{h-sigmoid}(x) = \frac{\text{ReLU6}(x + 3)}{6}, \qquad \text{h-swish}(x) = x \cdot \text{h-sigmoid}(x)$$
#
# Both take and return a tensor of the same shape and dtype, and leave their input as it was (an
# in-place `x.add_(3)` would change the caller's tensor).


# %% answer ps5_answer_activations
def hard_sigmoid(x):
    """relu6(x + 3) / 6."""
    ### BEGIN SOLUTION
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0
    ### END SOLUTION


def hard_swish(x):
    """x * relu6(x + 3) / 6."""
    ### BEGIN SOLUTION
    return x * hard_sigmoid(x)
    ### END SOLUTION


# %% tests ps5_hard_sigmoid points=2
"""Does hard_sigmoid match relu6(x + 3) / 6 everywhere, breakpoints and float64 included?"""
x = torch.tensor([-4.0, -3.0, 0.0, 3.0, 4.0])
assert torch.allclose(hard_sigmoid(x), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0])), f"hard_sigmoid({x.tolist()}) should be [0, 0, 0.5, 1, 1], got {hard_sigmoid(x).tolist()}"
### BEGIN HIDDEN TESTS
_ps_grader.check_hard_sigmoid(hard_sigmoid)
### END HIDDEN TESTS


# %% tests ps5_hard_swish points=2
"""Does hard_swish match x * relu6(x + 3) / 6 everywhere, breakpoints and float64 included?"""
x = torch.tensor([-4.0, -3.0, 0.0, 3.0, 4.0])
assert torch.allclose(hard_swish(x), torch.tensor([0.0, 0.0, 0.0, 3.0, 4.0])), f"hard_swish({x.tolist()}) should be [0, 0, 0, 3, 4], got {hard_swish(x).tolist()}"
### BEGIN HIDDEN TESTS
_ps_grader.check_hard_swish(hard_swish)
### END HIDDEN TESTS


# %% [markdown]
# ## 2. Squeeze-and-excitation
#
# `SE(channels, squeeze_channels)`: global average pooling to $(N, C, 1, 1)$, a 1x1 conv
# $C \to C_{sq}$ **with bias**, ReLU, a 1x1 conv $C_{sq} \to C$ **with bias**, your `hard_sigmoid`,
# and finally the input multiplied channel-wise by that gate. Create `self.fc1` then `self.fc2`
# (both `nn.Conv2d`) in this order; pooling and activations have no parameters. Like the
# activations, `SE` returns a new tensor and leaves its input as it was (`x * gate`, not
# `x.mul_(gate)`: the caller, a residual connection for one, still needs `x`).


# %% answer ps5_answer_se
class SE(nn.Module):
    """x * h-sigmoid(fc2(relu(fc1(avgpool(x)))))."""

    def __init__(self, channels, squeeze_channels):
        super().__init__()
        ### BEGIN SOLUTION
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        ### END SOLUTION

    def forward(self, x):  # (N, C, H, W)
        ### BEGIN SOLUTION
        s = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        return x * hard_sigmoid(self.fc2(torch.relu(self.fc1(s))))
        ### END SOLUTION


# %% tests ps5_se_outputs points=3
"""With mnlib's SqueezeExcitation weights loaded in order, does SE compute the same outputs?"""
se = SE(16, 8)
y = se(torch.randn(2, 16, 5, 5))
assert y.shape == (2, 16, 5, 5), "SE keeps the shape of its input"
### BEGIN HIDDEN TESTS
_ps_grader.check_se(SE)
### END HIDDEN TESTS


# %% [markdown]
# ## 3. What SE costs
#
# `se_params(c, c_sq)`: the number of parameters of your `SE(c, c_sq)` (weights and biases), as a
# Python `int` (a count).


# %% answer ps5_answer_se_params
def se_params(c, c_sq):
    """Weights and biases of the two 1x1 convs of SE."""
    ### BEGIN SOLUTION
    return c * c_sq + c_sq + c_sq * c + c
    ### END SOLUTION


# %% tests ps5_se_params points=1
"""Does se_params count the weights and biases of SE exactly?"""
assert not isinstance(se_params(16, 8), float), "se_params should return an int (a count of parameters), not a float"
assert se_params(16, 8) == sum(p.numel() for p in nn.Conv2d(16, 8, 1).parameters()) + sum(p.numel() for p in nn.Conv2d(8, 16, 1).parameters()), "se_params(16, 8): weights and biases of two 1x1 convs, 16 -> 8 and 8 -> 16"
### BEGIN HIDDEN TESTS
_ps_grader.check_se_params(se_params)
### END HIDDEN TESTS


# %% [markdown]
# You are done when *Restart & Run All* runs without errors.
