"""ps2_cost: MACs of standard, depthwise, pointwise and separable convolutions; rho and R; a model counter.

The notebook in percent format, one cell per ``# %%`` header (assignments/build.py documents them):
explanations, the reference answers (between ``### BEGIN/END SOLUTION``), visible self-checks and the
hidden check each tests cell calls (assignments/ps2_cost/checks.py).
"""


# %% [markdown]
# # Problem set 2: the cost of a convolution
#
# You will write the multiply-accumulate (MAC) counts of standard, depthwise, pointwise and depthwise
# separable convolutions, the speedup $\rho$ of a DSC, the smallest $C_{out}$ that reaches a given
# reduction, and a counter that walks a real PyTorch model. Chapter 3 of the book derives them.
#
# **Conventions.** One MAC is one multiply-accumulate (a FLOP count would be twice as large). Bias,
# batch norm and activations are *not* MACs. Return Python `int`s for counts.
#
# **Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` in your
# answers (the grader compares with it, and an answer that uses it scores zero for that part).
# The visible tests check a few cases; the grader checks many more shapes, strides and paddings.


# %% setup
from assignments.ps2_cost import checks as _ps_grader  # the build writes the setup cell here


# %% readonly ps2_imports
import math
import torch
from torch import nn


# %% [markdown]
# ## 1. MACs of one convolution
#
# A convolution with kernel $K$, stride $s$ and padding $P$ on an $H \times W$ input has output
# height $H' = \lfloor (H + 2P - K)/s \rfloor + 1$ (and the same for $W'$); each output element is a
# dot product of length $C_{in} K^2$ (standard) or $K^2$ (depthwise). `padding=None` means "same":
# $P = \lfloor (K-1)/2 \rfloor$ for every $K$, even ones too ($P = 1$ for $K = 4$). Write the four
# counts; the DSC applies the stride in its depthwise step.


# %% answer ps2_answer_conv_macs
def out_size(size, k, stride=1, padding=0):
    """Output length along one axis: floor((size + 2P - K) / s) + 1."""
    ### BEGIN SOLUTION
    return (size + 2 * padding - k) // stride + 1
    ### END SOLUTION


def standard_macs(c_in, c_out, h, w, k, stride=1, padding=None):
    """H' W' C_out C_in K^2."""
    ### BEGIN SOLUTION
    p = (k - 1) // 2 if padding is None else padding
    return out_size(h, k, stride, p) * out_size(w, k, stride, p) * c_out * c_in * k * k
    ### END SOLUTION


def depthwise_macs(c, h, w, k, stride=1, padding=None):
    """H' W' C K^2 (one KxK filter per channel)."""
    ### BEGIN SOLUTION
    p = (k - 1) // 2 if padding is None else padding
    return out_size(h, k, stride, p) * out_size(w, k, stride, p) * c * k * k
    ### END SOLUTION


def pointwise_macs(c_in, c_out, h, w):
    """H W C_in C_out (a 1x1 convolution)."""
    ### BEGIN SOLUTION
    return h * w * c_in * c_out
    ### END SOLUTION


def dsc_macs(c_in, c_out, h, w, k, stride=1, padding=None):
    """Depthwise KxK with the stride, then pointwise 1x1 on the (smaller) depthwise output."""
    ### BEGIN SOLUTION
    p = (k - 1) // 2 if padding is None else padding
    h2, w2 = out_size(h, k, stride, p), out_size(w, k, stride, p)
    return depthwise_macs(c_in, h, w, k, stride, p) + pointwise_macs(c_in, c_out, h2, w2)
    ### END SOLUTION


# %% tests ps2_conv_macs points=3
"""Are standard_macs, depthwise_macs and pointwise_macs exact for many shapes, strides and paddings?"""
assert not isinstance(standard_macs(3, 64, 224, 224, 3), float), "standard_macs should return an int (a count of MACs), not a float"
assert standard_macs(3, 64, 224, 224, 3) == 86_704_128, "a 3x3 conv 3 -> 64 at 224x224 is 86,704,128 MACs"
assert depthwise_macs(3, 224, 224, 3) == 1_354_752
assert pointwise_macs(3, 64, 224, 224) == 9_633_792
assert standard_macs(8, 8, 9, 9, 3, stride=2) == 5 * 5 * 8 * 8 * 9, "a 9x9 input at stride 2 gives 5x5"
### BEGIN HIDDEN TESTS
_ps_grader.check_conv_macs(standard_macs, depthwise_macs, pointwise_macs)
### END HIDDEN TESTS


# %% tests ps2_dsc_macs points=2
"""Is dsc_macs exact for many shapes, including strided DSCs on odd sizes?"""
assert dsc_macs(3, 64, 224, 224, 3) == 10_988_544, "the DSC 3 -> 64 at 224x224 is 10,988,544 MACs"
### BEGIN HIDDEN TESTS
_ps_grader.check_dsc_macs(dsc_macs)
### END HIDDEN TESTS


# %% [markdown]
# ## 2. Speedup and reduction
#
# The speedup of a DSC over a standard convolution is
# $\rho = \dfrac{C_{out} K^2}{K^2 + C_{out}}$ (the parameter reduction $R$ has the same form).
# Write `speedup(k, c_out)` and `min_cout(k, target)`: the smallest integer $C_{out} \ge 1$ with
# $R \ge$ `target`, as an `int`, or `None` if no $C_{out}$ reaches it (hint: $R < K^2$ for every $C_{out}$).


# %% answer ps2_answer_ratios
def speedup(k, c_out):
    """rho = C_out K^2 / (K^2 + C_out)."""
    ### BEGIN SOLUTION
    return c_out * k * k / (k * k + c_out)
    ### END SOLUTION


def min_cout(k, target):
    """Smallest C_out with C_out K^2 / (K^2 + C_out) >= target, or None."""
    ### BEGIN SOLUTION
    k2 = k * k
    if k2 <= target:
        return None  # R approaches K^2 but never reaches it
    c = max(1, math.ceil(target * k2 / (k2 - target)))
    while c > 1 and speedup(k, c - 1) >= target:  # float rounding at exact boundaries
        c -= 1
    while speedup(k, c) < target:
        c += 1
    return c
    ### END SOLUTION


# %% tests ps2_speedup points=2
"""Does speedup give rho for many K and C_out, and min_cout the smallest C_out (or None)?"""
assert math.isclose(speedup(3, 64), 64 * 9 / 73)
assert min_cout(3, 10) is None, "K = 3 can never give R >= 10"
assert not isinstance(min_cout(7, 10), float), "min_cout should return an int (a channel count) or None, not a float"
assert min_cout(7, 10) == 13
### BEGIN HIDDEN TESTS
_ps_grader.check_ratios(speedup, min_cout)
### END HIDDEN TESTS


# %% [markdown]
# ## 3. Counting a whole model
#
# Write `count_macs(model, input_size)`: run the model once on `torch.zeros(input_size)` and add up
# the MACs of every `nn.Conv2d` (mind `groups`) and `nn.Linear`, batch included. Forward hooks
# (`module.register_forward_hook`) see each layer's input and output shapes; remove them afterwards.
# Then `mac_ratio(builder, alpha, resolution)`: the MACs of `builder(width_mult=alpha)` at
# `resolution` x `resolution` divided by those of `builder()` at 224 x 224 (batch 1).


# %% answer ps2_answer_counter
def count_macs(model, input_size):
    """Conv2d + Linear multiply-accumulates of one forward pass on zeros of input_size."""
    ### BEGIN SOLUTION
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_size))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return total
    ### END SOLUTION


def mac_ratio(builder, alpha, resolution):
    """MACs at width multiplier alpha and input resolution, relative to alpha = 1 at 224."""
    ### BEGIN SOLUTION
    return (count_macs(builder(width_mult=alpha), (1, 3, resolution, resolution))
            / count_macs(builder(), (1, 3, 224, 224)))
    ### END SOLUTION


# %% tests ps2_counter points=3
"""Does count_macs count the conv and linear MACs of small networks and MobileNetV2, and mac_ratio scale MobileNetV1?"""
net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1, groups=8),
                    nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
assert count_macs(net, (1, 3, 8, 8)) == 8 * 8 * 8 * 3 * 9 + 4 * 4 * 8 * 9 + 128 * 10
### BEGIN HIDDEN TESTS
_ps_grader.check_counter(count_macs, mac_ratio)
### END HIDDEN TESTS


# %% [markdown]
# Try it: with the book's `mnlib.models.mobilenet_v1` as `builder`, how far is `mac_ratio(builder, 0.75, 112)`
# from $0.75^2 \cdot 0.5^2 = 9/64$, and why (chapter 5)? You are done when *Restart & Run All* runs
# without errors.
