"""ps3_receptive_field: the receptive-field recurrence, the layers of a model, and an empirical RF by gradients."""
from build_notebooks import GRADER, answer, md, readonly, tests

CHECKS = r"""
RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)
import numbers
import random
import mnlib.models, mnlib.receptive_field as mrf

guard = Guard(["receptive_field.py"])
rng = random.Random(3)
nn = torch.nn

STACKS = [[(3, 1), (3, 1)], [(3, 2), (3, 2), (3, 1)], [(7, 2), (3, 2), (1, 1), (3, 1)], [(5, 1, 2), (3, 2, 3)]]
STACKS += [[(rng.choice([1, 2, 3, 5, 7]), rng.choice([1, 1, 2, 3]), rng.choice([1, 1, 2]))
            for _ in range(rng.randint(1, 8))] for _ in range(20)]
RF_REF = [(s, mrf.receptive_field(s)) for s in STACKS]


def _pools_and_dilation():
    # max and average pools (int and tuple sizes), dilated convs, nested containers
    return nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                         nn.Sequential(nn.Conv2d(8, 8, 3, 1, 2, dilation=2), nn.BatchNorm2d(8), nn.ReLU()),
                         nn.AvgPool2d(2), nn.Conv2d(8, 16, 1), nn.Conv2d(16, 16, 5, 1, 4, dilation=2),
                         nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)), nn.Conv2d(16, 16, 3, padding=3, dilation=3))


MODELS = [("MobileNetV1", mnlib.models.mobilenet_v1()), ("MobileNetV2", mnlib.models.mobilenet_v2()),
          ("MobileNetV1 (alpha = 0.5)", mnlib.models.mobilenet_v1(width_mult=0.5)),
          ("a network with max and average pooling and dilated convolutions", _pools_and_dilation())]
MODEL_REF = [(name, m, [tuple((l.kernel, l.stride, l.dilation)) for l in mrf.model_layers(m)],
              mrf.model_receptive_field(m)) for name, m in MODELS]


def _zero_taps(net, layer, rows, cols, out_ch=None, in_ch=None):
    # Zero the outer rows and/or columns of one conv's kernels: the field shrinks below the formula.
    # With out_ch (in_ch), only that output (input) channel's kernels: the channels then have different
    # fields, and the field of the sum over channels is the largest of them.
    w = net[layer].weight
    w = w[out_ch:out_ch + 1] if out_ch is not None else w
    w = w[:, in_ch:in_ch + 1] if in_ch is not None else w
    with torch.no_grad():
        if rows:
            w[:, :, :rows], w[:, :, -rows:] = 0, 0
        if cols:
            w[:, :, :, :cols], w[:, :, :, -cols:] = 0, 0
    return net


# (layers, input size, zero taps (layer, rows, cols) or None). The later cases have a field with
# holes (one dilated conv: its bounding box is larger than its count of pixels) and kernels whose
# outer taps are zero (the measured field is smaller than the formula, and not square).
EMP_STACKS = [([(3, 1), (3, 1)], 15, None), ([(3, 2), (5, 1), (3, 2)], 41, None), ([(5, 1, 2), (3, 1)], 25, None),
              ([(1, 1), (3, 2), (3, 2), (3, 1)], 40, None), ([(7, 1)], 12, None), ([(3, 1, 2)], 15, None),
              ([(3, 2), (3, 1, 3)], 31, None), ([(5, 1), (3, 1)], 17, (0, 1, 1)), ([(3, 1), (7, 1)], 21, (1, 0, 2)),
              # output (input) channels with different fields: channel 0's is smaller than channel 1's
              ([(3, 1), (5, 1)], 17, (1, 2, 2, 0, None)), ([(5, 1), (3, 1)], 17, (0, 2, 1, None, 0))]
EMP_REF, taps_of = [], {}
for i, (layers, size, taps) in enumerate(EMP_STACKS):
    torch.manual_seed(30 + i)
    net = mrf.stack_from_layers(layers, channels=2)
    if taps is not None:
        net = _zero_taps(net, *taps)
    # the zeroed taps must stay zero in the reference: measure the network as it is
    assert taps is None or len(taps) == 3 or mrf.empirical_receptive_field(net, size, in_channels=2, linearise=False) \
        == (1 + sum(k - 1 for k, *_ in layers),) * 2  # the sum over channels sees the largest field
    taps_of[id(net)] = taps or ()
    EMP_REF.append((layers, taps is not None, net, size,
                    mrf.empirical_receptive_field(net, size, in_channels=2, linearise=taps is None)))
torch.manual_seed(0)


def check_recurrence(receptive_field):
    scan(receptive_field, "receptive_field")
    each_case("receptive_field", RF_REF, lambda ref: same_int(
        guard.call("receptive_field", receptive_field, [tuple(l) for l in ref[0]]), ref[1],
        f"receptive_field({ref[0]})"))


def check_model_rf(conv_layers, model_rf):
    scan(conv_layers, "conv_layers")
    scan(model_rf, "model_rf")

    def case(ref):
        name, m, layers, r = ref
        got = guard.call(f"conv_layers({name})", conv_layers, m)
        need(type(got) is list, f"conv_layers({name}) should return a list, got {kind(got)}")
        need(len(got) == len(layers), f"conv_layers({name}): expected {len(layers)} spatial layers "
                                      f"(convolutions and pools), got {len(got)}")
        got = [tuple(l) if type(l) in (tuple, list) else l for l in got]
        for i, (a, b) in enumerate(zip(got, layers)):
            need(a == b, f"conv_layers({name}): layer {i + 1} should be (kernel, stride, dilation) = {b}, got {a!r}")
        same_int(guard.call(f"model_rf({name})", model_rf, m), r, f"model_rf({name})")

    each_case("conv_layers and model_rf", MODEL_REF, case)


def _count(v):
    # an int, or a one-element integer-valued tensor or numpy integer (the notebook accepts them)
    if type(v) is Tensor and v.numel() == 1 and not v.dtype.is_complex and not v.dtype == torch.bool:
        item = v.item()
        return int(item) if float(item).is_integer() else item
    if isinstance(v, numbers.Integral) and not isinstance(v, bool) and type(v) is not int:
        return int(v)
    return v


def check_empirical(empirical_rf):
    scan(empirical_rf, "empirical_rf")

    def case(ref):
        layers, zeroed, net, size, (rows, cols) = ref
        what = f"empirical_rf for a stack {layers}{' with zero outer kernel taps' if zeroed else ''} on {size}x{size}"
        if zeroed and len(taps_of.get(id(net), ())) == 5:
            what += " (its channels have fields of different sizes: sum the centre pixel over all output channels, " \
                    "and look at the gradient of every input channel)"
        got = guard.call(what, empirical_rf, net, size)
        need(type(got) in (tuple, list) and len(got) == 2, f"{what} should return a (rows, cols) tuple, got {kind(got)}"
             + (f" of length {len(got)}" if type(got) in (tuple, list) else ""))
        same_int(_count(got[0]), rows, f"{what}: rows")
        same_int(_count(got[1]), cols, f"{what}: cols")

    each_case("empirical_rf", EMP_REF, case)
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
assert receptive_field([(3, 2), (3, 2), (3, 1)]) == 15, "a layer's kernel counts in units of the strides *before* it: 1 + 2 + 2*2 + 2*4"
assert receptive_field([(3, 1, 2)]) == 5, "a 3x3 conv with dilation 2 spans 5 pixels"
""", f"{GRADER}.check_recurrence(receptive_field)"),
        md("""
## 2. The receptive field of a model

`conv_layers(model)` lists `(kernel, stride, dilation)` for every `nn.Conv2d` (and `nn.MaxPool2d`
or `nn.AvgPool2d`, if any) in the order `model.modules()` gives them (for these networks that is the
forward order); 1x1 convolutions are included (they add nothing). Square kernels only. A pool's
kernel size and stride may be an `int` or a tuple, and it counts with dilation 1. The grader checks
the MobileNets and a network with max and average pooling and dilated convolutions.
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
assert conv_layers(net) == [(3, 2, 1), (3, 1, 2), (1, 1, 1)], f"expected [(3, 2, 1), (3, 1, 2), (1, 1, 1)], got {conv_layers(net)}"
assert model_rf(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 8, 3, 1, 1))) == 7, "3x3 s2 then 3x3: 1 + 2 + 2*2"
""", f"{GRADER}.check_model_rf(conv_layers, model_rf)"),
        md("""
## 3. Measuring it

`empirical_rf(features, input_size)`: feed `torch.ones(1, C, input_size, input_size)` (with
`requires_grad=True`; `C` is the first conv's `in_channels`), take the sum over channels of the
centre output pixel `y[0, :, h // 2, w // 2]`, back-propagate, and return the height and width
`(rows, cols)` of the bounding box of the input pixels whose gradient is non-zero, as two `int`s
(a one-element tensor is accepted too). The grader passes plain convolution stacks with random
weights and an input large enough for the whole field. Measure, do not compute: in some of them a
dilated kernel leaves holes in the field (the bounding box still counts them), and some kernels have
zero outer taps, so the field is smaller than the recurrence says.
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
