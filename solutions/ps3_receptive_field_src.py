"""ps3_receptive_field: the receptive-field recurrence, the layers of a model, and an empirical RF by gradients."""
from build_notebooks import GRADER, answer, md, readonly, tests

CHECKS = r"""
RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)
import random
import mnlib.models, mnlib.receptive_field as mrf

guard = Guard(["receptive_field.py"])
rng = random.Random(3)

STACKS = [[(3, 1), (3, 1)], [(3, 2), (3, 2), (3, 1)], [(7, 2), (3, 2), (1, 1), (3, 1)], [(5, 1, 2), (3, 2, 3)]]
STACKS += [[(rng.choice([1, 2, 3, 5, 7]), rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2]))
            for _ in range(rng.randint(1, 8))] for _ in range(20)]
RF_REF = [(s, mrf.receptive_field(s)) for s in STACKS]

MODELS = [("MobileNetV1", mnlib.models.mobilenet_v1()), ("MobileNetV2", mnlib.models.mobilenet_v2()),
          ("MobileNetV1 (alpha = 0.5)", mnlib.models.mobilenet_v1(width_mult=0.5))]
MODEL_REF = [(name, m, [tuple((l.kernel, l.stride, l.dilation)) for l in mrf.model_layers(m)],
              mrf.model_receptive_field(m)) for name, m in MODELS]

EMP_STACKS = [([(3, 1), (3, 1)], 15), ([(3, 2), (5, 1), (3, 2)], 41), ([(5, 1, 2), (3, 1)], 25),
              ([(1, 1), (3, 2), (3, 2), (3, 1)], 40), ([(7, 1)], 12)]
EMP_REF = []
for i, (layers, size) in enumerate(EMP_STACKS):
    torch.manual_seed(30 + i)
    net = mrf.stack_from_layers(layers, channels=2)
    EMP_REF.append((layers, net, size, mrf.empirical_receptive_field(net, size, in_channels=2)))
torch.manual_seed(0)


def check_recurrence(receptive_field):
    scan(receptive_field, "receptive_field")
    for layers, r in RF_REF:
        same_int(guard.call("receptive_field", receptive_field, [tuple(l) for l in layers]), r,
                 f"receptive_field({layers})")


def check_model_rf(conv_layers, model_rf):
    scan(conv_layers, "conv_layers")
    scan(model_rf, "model_rf")
    for name, m, layers, r in MODEL_REF:
        got = guard.call("conv_layers", conv_layers, m)
        need(type(got) is list, f"conv_layers({name}) should return a list, got {type(got).__name__}")
        need(len(got) == len(layers), f"conv_layers({name}): expected {len(layers)} spatial layers, got {len(got)}")
        need([tuple(l) for l in got] == layers,
             f"conv_layers({name}): the (kernel, stride, dilation) tuples differ from the model's layers")
        same_int(guard.call("model_rf", model_rf, m), r, f"model_rf({name})")


def check_empirical(empirical_rf):
    scan(empirical_rf, "empirical_rf")
    for layers, net, size, (rows, cols) in EMP_REF:
        got = guard.call("empirical_rf", empirical_rf, net, size)
        need(type(got) is tuple and len(got) == 2, f"empirical_rf should return a (rows, cols) tuple, got {got!r}")
        same_int(got[0], rows, f"empirical_rf rows for a stack {layers} on {size}x{size}")
        same_int(got[1], cols, f"empirical_rf cols for a stack {layers} on {size}x{size}")
"""


def cells(setup_cell):
    return [
        md("""
# Problem set 3: receptive fields

The receptive field of a stack of layers is the size of the input patch that one output pixel
depends on. For layers $l = 1 \\dots L$ with kernel $K_l$, stride $s_l$ and dilation $d_l$:

$$R_L = 1 + \\sum_{l=1}^{L} d_l (K_l - 1) \\prod_{i<l} s_i .$$

You will implement this recurrence, apply it to MobileNetV1 and V2, and check it empirically with
gradients. Chapter 4 of the book explains why a depthwise separable layer grows $R$ exactly like a
standard $K \\times K$ convolution.

**Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` in your
answers (the grader compares with it). The grader checks many more stacks than the visible tests.
"""),
        setup_cell,
        readonly("ps3_imports", """
import torch
from torch import nn
"""),
        md("""
## 1. The recurrence

`receptive_field(layers)` takes a list of `(kernel, stride)` or `(kernel, stride, dilation)` tuples,
input side first, and returns $R_L$ as an `int`.
"""),
        answer("ps3_answer_recurrence", """
def receptive_field(layers):
    \"\"\"R_L = 1 + sum_l d_l (K_l - 1) prod_{i<l} s_i for (K, s[, d]) tuples, input first.\"\"\"
    ### BEGIN SOLUTION
    r, jump = 1, 1  # jump: distance in input pixels between neighbouring outputs of the stack so far
    for layer in layers:
        k, s, d = (tuple(layer) + (1,))[:3]
        r += d * (k - 1) * jump
        jump *= s
    return r
    ### END SOLUTION
"""),
        tests("ps3_recurrence", 3,
              "Does receptive_field follow the recurrence for many stacks of kernels, strides and dilations?",
              """
assert receptive_field([(3, 1), (3, 1)]) == 5, "two 3x3 convs see 5x5"
assert receptive_field([(3, 2), (3, 2), (3, 1)]) == 15
assert receptive_field([(3, 1, 2)]) == 5, "a 3x3 conv with dilation 2 spans 5 pixels"
""", f"{GRADER}.check_recurrence(receptive_field)"),
        md("""
## 2. The receptive field of a model

`conv_layers(model)` lists `(kernel, stride, dilation)` for every `nn.Conv2d` (and `nn.MaxPool2d`
or `nn.AvgPool2d`, if any) in the order `model.modules()` gives them (for these networks that is the
forward order); 1x1 convolutions are included (they add nothing). Square kernels only.
`model_rf(model)` is the receptive field of the last feature map. Test them on the MobileNets:
`from mnlib.models import mobilenet_v1` is fine in a *test* cell of your own, not in the answer.
"""),
        answer("ps3_answer_model", """
def conv_layers(model):
    \"\"\"[(K, s, d), ...] of every Conv2d / MaxPool2d / AvgPool2d in module order.\"\"\"
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
    \"\"\"Theoretical receptive field of the model's last feature map.\"\"\"
    ### BEGIN SOLUTION
    return receptive_field(conv_layers(model))
    ### END SOLUTION
"""),
        tests("ps3_model_rf", 3,
              "Do conv_layers and model_rf give the layers and receptive field of MobileNetV1 and V2?",
              """
net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 2, dilation=2), nn.Conv2d(8, 4, 1))
assert conv_layers(net) == [(3, 2, 1), (3, 1, 2), (1, 1, 1)]
assert model_rf(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 1, 1))) == 7
""", f"{GRADER}.check_model_rf(conv_layers, model_rf)"),
        md("""
## 3. Measuring it

`empirical_rf(features, input_size)`: feed `torch.ones(1, C, input_size, input_size)` (with
`requires_grad=True`; `C` is the first conv's `in_channels`), take the sum over channels of the
centre output pixel `y[0, :, h // 2, w // 2]`, back-propagate, and return the height and width
`(rows, cols)` of the bounding box of the input pixels whose gradient is non-zero. The grader
passes plain convolution stacks with random weights and an input large enough for the whole field.
"""),
        answer("ps3_answer_empirical", """
def empirical_rf(features, input_size):
    \"\"\"(rows, cols) extent of the input pixels the centre output pixel depends on.\"\"\"
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
"""),
        tests("ps3_empirical", 4,
              "Does empirical_rf measure the receptive field of random convolution stacks by back-propagation?",
              """
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1))
assert empirical_rf(net, 11) == (5, 5), "two 3x3 convs: the centre pixel sees a 5x5 patch"
""", f"{GRADER}.check_empirical(empirical_rf)"),
        md("""
You are done when *Restart & Run All* runs without errors. Compare `model_rf` of MobileNetV1 with
the input size 224: what does a receptive field larger than the image mean?
"""),
    ]
