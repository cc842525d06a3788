"""ps3_receptive_field: the receptive-field recurrence, the layers of a model, and an empirical RF by gradients.

The notebook in percent format, one cell per ``# %%`` header (assignments/build.py documents them):
explanations, the reference answers (between ``### BEGIN/END SOLUTION``), visible self-checks and the
hidden check each tests cell calls (assignments/ps3_receptive_field/checks.py).
"""


# %% [markdown]
# # Problem set 3: receptive fields
#
# The receptive field of a stack of layers is the size of the input patch that one output pixel
# depends on. For layers $l = 1 \dots L$ with kernel $K_l$, stride $s_l$ and dilation $d_l$:
#
# $$R_L = 1 + \sum_{l=1}^{L} d_l (K_l - 1) \prod_{i<l} s_i .$$
#
# You will implement this recurrence, apply it to MobileNetV1 and V2, and check it empirically with
# gradients. Chapter 4 of the book explains why a depthwise separable layer grows $R$ exactly like a
# standard $K \times K$ convolution.
#
# **Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` in your
# answers (the grader compares with it). The grader checks many more stacks than the visible tests.


# %% setup
from assignments.ps3_receptive_field import checks as _ps_grader  # the build writes the setup cell here


# %% readonly ps3_imports
import torch
from torch import nn


# %% [markdown]
# ## 1. The recurrence
#
# `receptive_field(layers)` takes a list of `(kernel, stride)` or `(kernel, stride, dilation)` tuples,
# input side first, and returns $R_L$ as an `int`.


# %% answer ps3_answer_recurrence
def receptive_field(layers):
    """R_L = 1 + sum_l d_l (K_l - 1) prod_{i<l} s_i for (K, s[, d]) tuples, input first."""
    ### BEGIN SOLUTION
    r, jump = 1, 1  # jump: distance in input pixels between neighbouring outputs of the stack so far
    for layer in layers:
        k, s, d = (tuple(layer) + (1,))[:3]
        r += d * (k - 1) * jump
        jump *= s
    return r
    ### END SOLUTION


# %% tests ps3_recurrence points=3
"""Does receptive_field follow the recurrence for many stacks of kernels, strides and dilations?"""
assert not isinstance(receptive_field([(3, 1), (3, 1)]), float), "receptive_field should return an int (a count of pixels), not a float"
assert receptive_field([(3, 1), (3, 1)]) == 5, "two 3x3 convs see 5x5"
assert receptive_field([(3, 2), (3, 2), (3, 1)]) == 15, "a layer's kernel counts in units of the strides *before* it: 1 + 2 + 2*2 + 2*4"
assert receptive_field([(3, 1, 2)]) == 5, "a 3x3 conv with dilation 2 spans 5 pixels"
### BEGIN HIDDEN TESTS
_ps_grader.check_recurrence(receptive_field)
### END HIDDEN TESTS


# %% [markdown]
# ## 2. The receptive field of a model
#
# `conv_layers(model)` lists `(kernel, stride, dilation)` for every `nn.Conv2d` (and `nn.MaxPool2d`
# or `nn.AvgPool2d`, if any) in the order `model.modules()` gives them (for these networks that is the
# forward order); 1x1 convolutions are included (they add nothing). Square kernels only. A pool's
# kernel size and stride may be an `int` or a tuple, and it counts with dilation 1. The grader checks
# the MobileNets and a network with max and average pooling and dilated convolutions.
# `model_rf(model)` is the receptive field of the last feature map, an `int` as in §1. Test them on the MobileNets:
# `from mnlib.models import mobilenet_v1` is fine in a *test* cell of your own, not in the answer.


# %% answer ps3_answer_model
def conv_layers(model):
    """[(K, s, d), ...] of every Conv2d / MaxPool2d / AvgPool2d in module order."""
    ### BEGIN SOLUTION
    out = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            out.append((m.kernel_size[0], m.stride[0], m.dilation[0]))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            out.append((k, s, 1))
    return out
    ### END SOLUTION


def model_rf(model):
    """Theoretical receptive field of the model's last feature map."""
    ### BEGIN SOLUTION
    return receptive_field(conv_layers(model))
    ### END SOLUTION


# %% tests ps3_model_rf points=3
"""Do conv_layers and model_rf give the layers and receptive field of MobileNetV1 and V2?"""
net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 2, dilation=2), nn.Conv2d(8, 4, 1))
assert conv_layers(net) == [(3, 2, 1), (3, 1, 2), (1, 1, 1)], f"expected [(3, 2, 1), (3, 1, 2), (1, 1, 1)], got {conv_layers(net)}"
rf = model_rf(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 1, 1)))
assert not isinstance(rf, float), "model_rf should return an int (a count of pixels), not a float"
assert rf == 7, "3x3 s2 then 3x3: 1 + 2 + 2*2"
### BEGIN HIDDEN TESTS
_ps_grader.check_model_rf(conv_layers, model_rf)
### END HIDDEN TESTS


# %% [markdown]
# ## 3. Measuring it
#
# `empirical_rf(features, input_size)`: feed `torch.ones(1, C, input_size, input_size)` (with
# `requires_grad=True`; `C` is the first conv's `in_channels`), take the sum over channels of the
# centre output pixel `y[0, :, h // 2, w // 2]`, back-propagate, and return the height and width
# `(rows, cols)` of the bounding box of the input pixels whose gradient is non-zero, as a tuple
# (or list) of two `int`s (a one-element tensor is accepted too; a `torch.Size` is a tuple of ints). The grader passes plain convolution stacks with random
# weights and an input large enough for the whole field. Measure, do not compute: in some of them a
# dilated kernel leaves holes in the field (the bounding box still counts them), and some kernels have
# zero outer taps, so the field is smaller than the recurrence says.


# %% answer ps3_answer_empirical
def empirical_rf(features, input_size):
    """(rows, cols) extent of the input pixels the centre output pixel depends on."""
    ### BEGIN SOLUTION
    first = next(m for m in features.modules() if isinstance(m, nn.Conv2d))
    x = torch.ones(1, first.in_channels, input_size, input_size, requires_grad=True)
    y = features(x)
    h, w = y.shape[-2:]
    y[0, :, h // 2, w // 2].sum().backward()
    support = x.grad[0].abs().sum(0) > 0  # (H, W)
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    ### END SOLUTION


# %% tests ps3_empirical points=4
"""Does empirical_rf measure the receptive field of random convolution stacks by back-propagation?"""
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1))
box = empirical_rf(net, 11)
assert not any(isinstance(v, float) for v in box), "empirical_rf should return two ints (counts of pixels), not floats"
assert tuple(box) == (5, 5), "two 3x3 convs: the centre pixel sees a 5x5 patch"
### BEGIN HIDDEN TESTS
_ps_grader.check_empirical(empirical_rf)
### END HIDDEN TESTS


# %% [markdown]
# You are done when *Restart & Run All* runs without errors. Compare `model_rf` of MobileNetV1 with
# the input size 224: what does a receptive field larger than the image mean?
