"""ps3_receptive_field's hidden checks: the receptive-field recurrence, the conv layers and RF of a
model, and the empirical RF measured by gradients, against mnlib.receptive_field (on networks from
mnlib.models).

Run in the grader's private namespace (assignments/loader.py); the references are computed here,
when the setup cell runs, before any answer cell.
"""
import numbers
import random

import mnlib.models
import mnlib.receptive_field as mrf
import torch

from assignments.toolkit import Guard, Tensor, each_case, kind, need, same_int, scan

RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)

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
              ([(3, 1), (5, 1)], 17, (1, 2, 2, 0, None)), ([(5, 1), (3, 1)], 17, (0, 2, 1, None, 0)),
              # a field of 9 on a 9 x 9 input: only the centre output pixel sees all of it, any other is cut off
              ([(5, 1), (5, 1)], 9, None)]
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
        got = [tuple(l) if isinstance(l, (tuple, list)) else l for l in got]
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
        # isinstance: a torch.Size or a namedtuple is a tuple in the learner's kernel as in the course grader
        need(isinstance(got, (tuple, list)) and len(got) == 2, f"{what} should return a (rows, cols) tuple, got {kind(got)}"
             + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
        same_int(_count(got[0]), rows, f"{what}: rows")
        same_int(_count(got[1]), cols, f"{what}: cols")

    each_case("empirical_rf", EMP_REF, case)
