"""ps1_dsc: a depthwise separable convolution, its equivalent standard kernel, its parameter count.

The notebook in percent format, one cell per ``# %%`` header (assignments/build.py documents them):
explanations, the reference answers (between ``### BEGIN/END SOLUTION``), visible self-checks and the
hidden check each tests cell calls (assignments/ps1_dsc/checks.py).
"""


# %% [markdown]
# # Problem set 1: depthwise separable convolution
#
# You will build MobileNetV1's depthwise separable convolution (DSC) as a PyTorch module, prove
# numerically that it equals a standard convolution with a special (rank-limited) kernel, and count
# its parameters. Chapter 2 of the book explains all three.
#
# **Rules.** Write your code only where it says `YOUR CODE HERE`. Do not import or call `mnlib` in
# your answers: the grader compares your work with mnlib, and an answer that uses it scores zero for
# that part ("the exercise is to write it"). Run the whole notebook (*Kernel → Restart & Run All*)
# before you submit; the cells marked as tests must run without errors. They check a few cases you
# can see; the grader checks many more (other kernel sizes, strides, odd sizes).


# %% setup
from assignments.ps1_dsc import checks as _ps_grader  # the build writes the setup cell here


# %% readonly ps1_imports
import torch
from torch import nn


# %% [markdown]
# ## 1. The module
#
# A DSC layer with kernel size $K$ and stride $s$ maps $(N, C_{in}, H, W)$ to
# $(N, C_{out}, \lceil H/s \rceil, \lceil W/s \rceil)$ in two steps:
#
# 1. **depthwise**: a $K \times K$ convolution with `groups = C_in` (one filter per channel), stride $s$,
#    padding $(K-1)/2$ rounded down, no bias; then batch norm and ReLU;
# 2. **pointwise**: a $1 \times 1$ convolution $C_{in} \to C_{out}$, no bias; then batch norm and ReLU.
#
# Create the layers in `__init__` **in this order** and with these names (the grader loads the same
# weights into your module and into the reference, in this order): `self.depthwise` (`nn.Conv2d`),
# `self.bn1` (`nn.BatchNorm2d`), `self.pointwise` (`nn.Conv2d`), `self.bn2` (`nn.BatchNorm2d`),
# `self.act` (`nn.ReLU`). Use PyTorch's defaults for batch norm (`eps`, `momentum`): the reference does.
# The grader also checks the shape each convolution outputs, so the stride must be where step 1 puts it.
# It sees each step by its call: `forward` must call the modules themselves (`self.depthwise(x)`,
# `self.bn1(...)`, `self.pointwise(...)`, ...), not use their weights through `torch.nn.functional`.
# If the layers are created in another order, the grader's weights land in the wrong layers and the
# message says which parameter has the wrong shape.


# %% answer ps1_answer_dsc
class DSC(nn.Module):
    """Depthwise KxK (groups = C_in, stride s) -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU."""

    def __init__(self, c_in, c_out, kernel_size=3, stride=1):
        super().__init__()
        ### BEGIN SOLUTION
        pad = (kernel_size - 1) // 2  # 'same' for odd K; with stride s the output is ceil(H / s)
        self.depthwise = nn.Conv2d(c_in, c_in, kernel_size, stride, pad, groups=c_in, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()
        ### END SOLUTION

    def forward(self, x):  # (N, C_in, H, W) -> (N, C_out, ceil(H / s), ceil(W / s))
        ### BEGIN SOLUTION
        x = self.act(self.bn1(self.depthwise(x)))
        return self.act(self.bn2(self.pointwise(x)))
        ### END SOLUTION


# %% tests ps1_dsc_shapes points=2
"""Does DSC give the output shape (N, C_out, ceil(H/s), ceil(W/s)) for many kernels, strides and odd sizes?"""
y = DSC(8, 16)(torch.randn(2, 8, 10, 10))
assert y.shape == (2, 16, 10, 10), f"DSC(8, 16) on (2, 8, 10, 10): expected (2, 16, 10, 10), got {tuple(y.shape)}"
y = DSC(8, 16, stride=2)(torch.randn(2, 8, 9, 9))
assert y.shape == (2, 16, 5, 5), f"stride 2 on a 9x9 input should give 5x5 (ceil(9 / 2)), got {tuple(y.shape)}"
### BEGIN HIDDEN TESTS
_ps_grader.check_dsc_shapes(DSC)
### END HIDDEN TESTS


# %% tests ps1_dsc_outputs points=3
"""With the same weights and BN statistics as mnlib's DepthwiseSeparableConv, does DSC compute the same outputs?"""
m = DSC(4, 8)
assert isinstance(m.depthwise, nn.Conv2d) and m.depthwise.groups == 4, "depthwise must be a Conv2d with groups = C_in"
assert isinstance(m.pointwise, nn.Conv2d) and m.pointwise.kernel_size == (1, 1), "pointwise must be a 1x1 Conv2d"
assert m.depthwise.bias is None and m.pointwise.bias is None, "no bias: batch norm follows each conv"
### BEGIN HIDDEN TESTS
_ps_grader.check_dsc_outputs(DSC)
### END HIDDEN TESTS


# %% [markdown]
# ## 2. A DSC is a standard convolution with a rank-limited kernel
#
# Without batch norm and activation, depthwise-then-pointwise is linear, so it equals one standard
# $K \times K$ convolution. Write `equivalent_kernel(w_dw, w_pw)` that takes the depthwise weight
# (shape $(C_{in}, 1, K, K)$) and the pointwise weight (shape $(C_{out}, C_{in}, 1, 1)$) and returns the
# standard kernel $W$ of shape $(C_{out}, C_{in}, K, K)$, a tensor of the same dtype as `w_dw`, with
# `conv2d(x, W) == conv2d(conv2d(x, w_dw, groups=C_in), w_pw)` for any input, stride and padding.


# %% answer ps1_answer_kernel
def equivalent_kernel(w_dw, w_pw):
    """Standard kernel (C_out, C_in, K, K) equal to depthwise w_dw (C_in, 1, K, K) then pointwise w_pw (C_out, C_in, 1, 1)."""
    ### BEGIN SOLUTION
    # W[o, i] = w_pw[o, i] * w_dw[i]: each output channel sums the input channels' spatial filters
    return w_pw * w_dw.permute(1, 0, 2, 3)
    ### END SOLUTION


# %% tests ps1_equivalent_kernel points=3
"""Is a standard convolution with equivalent_kernel(w_dw, w_pw) the same map as depthwise then pointwise?"""
w_dw, w_pw, x = torch.randn(3, 1, 3, 3), torch.randn(4, 3, 1, 1), torch.randn(1, 3, 8, 8)
W = equivalent_kernel(w_dw, w_pw)
assert W.shape == (4, 3, 3, 3), f"expected shape (C_out, C_in, K, K) = (4, 3, 3, 3), got {tuple(W.shape)}"
two_step = torch.conv2d(torch.conv2d(x, w_dw, padding=1, groups=3), w_pw)
assert torch.allclose(torch.conv2d(x, W, padding=1), two_step, atol=1e-5), "the two maps differ"
### BEGIN HIDDEN TESTS
_ps_grader.check_equivalent_kernel(equivalent_kernel)
### END HIDDEN TESTS


# %% [markdown]
# ## 3. Parameter counts
#
# Count the convolution **weights** only (no bias, no batch norm): `standard_params(c_in, c_out, k)`
# for a standard $K \times K$ convolution and `dsc_params(c_in, c_out, k)` for the depthwise and
# pointwise convolutions of a DSC. Return Python `int`s.


# %% answer ps1_answer_counts
def standard_params(c_in, c_out, k):
    """Weights of a standard KxK conv C_in -> C_out."""
    ### BEGIN SOLUTION
    return c_out * c_in * k * k
    ### END SOLUTION


def dsc_params(c_in, c_out, k):
    """Weights of a depthwise KxK conv on C_in channels plus a pointwise 1x1 conv C_in -> C_out."""
    ### BEGIN SOLUTION
    return c_in * k * k + c_in * c_out
    ### END SOLUTION


# %% tests ps1_param_counts points=2
"""Do standard_params and dsc_params count the convolution weights exactly, for many shapes?"""
assert standard_params(3, 64, 3) == sum(p.numel() for p in nn.Conv2d(3, 64, 3, bias=False).parameters()), "standard_params(3, 64, 3): the weights of nn.Conv2d(3, 64, 3, bias=False)"
dw, pw = nn.Conv2d(32, 32, 3, groups=32, bias=False), nn.Conv2d(32, 64, 1, bias=False)
assert dsc_params(32, 64, 3) == dw.weight.numel() + pw.weight.numel(), "dsc_params(32, 64, 3): the weights of a 3x3 depthwise conv on 32 channels and a 1x1 conv 32 -> 64"
### BEGIN HIDDEN TESTS
_ps_grader.check_param_counts(dsc_params, standard_params)
### END HIDDEN TESTS


# %% [markdown]
# You are done when *Restart & Run All* runs without errors. For the ideas behind each part, see
# chapter 2 (depthwise separable convolution) and chapter 3 (cost analysis) of the book.
