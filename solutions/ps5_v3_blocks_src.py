"""ps5_v3_blocks: MobileNetV3's hard-sigmoid, hard-swish and squeeze-and-excitation."""
from build_notebooks import GRADER, answer, md, readonly, tests

CHECKS = r"""
RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)
import mnlib.layers

guard = Guard(["layers.py"])

# Points on and around the breakpoints -3 and 3, far outside them, and random ones; float32 and float64.
_g = torch.Generator().manual_seed(5)
POINTS = [torch.tensor([-1e4, -6.0, -3.0, -2.999, -1.5, 0.0, 1e-7, 1.5, 2.999, 3.0, 3.001, 6.0, 1e4]),
          torch.randn(4, 7, 5, generator=_g) * 4, (torch.randn(3, 3, generator=_g) * 5).double()]
ACT_REF = [(x, mnlib.layers.HardSigmoid()(x), mnlib.layers.HardSwish()(x),
            torch.nn.functional.hardsigmoid(x), torch.nn.functional.hardswish(x)) for x in POINTS]

# (C, C_sq, N, H, W)
SE_CASES = [(16, 8, 2, 5, 5), (72, 24, 1, 7, 9), (8, 8, 3, 1, 1), (40, 16, 2, 4, 3)]
SE_REF = []
for i, (c, sq, n, h, w) in enumerate(SE_CASES):
    ref = mnlib.layers.SqueezeExcitation(c, sq)
    state = reference_state(ref, seed=500 + i)
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(i))
    with torch.no_grad():
        SE_REF.append(((c, sq), x, state, ref(x), n_params(ref)))


# The notebook asks for the formulas written with tensor operations: torch's own versions are watched for.
FORBIDDEN = ("hardsigmoid", "hardsigmoid_", "hardswish", "hardswish_")
WATCH = kernel_function("watched_call")  # the probe that runs f(x), where f lives, and reports what it called


def _watched(f, x, what):
    out, called, intact = guard.call(what, WATCH, f, x, FORBIDDEN)
    need(not called, f"{what} calls torch's {called[0]} when it runs; the exercise is to write the formula "
                     "yourself with tensor operations (torch.clamp, arithmetic)" if called else "")
    need(intact, f"{what} changed its input tensor in place (the caller's x is destroyed): compute a new "
                 "tensor and leave the input as it was")
    return out


def _act(f, name, mnlib_col, torch_col):
    scan(f, name)

    def case(row):
        x = row[0]
        what = f"{name} on a {str(x.dtype).replace('torch.', '')} tensor of shape {tuple(x.shape)}"
        out = _watched(f, x.clone(), what)
        close_tensor(out, row[mnlib_col], what + " (mnlib's reference)", rtol=1e-6, atol=1e-6)
        close_tensor(out, row[torch_col], what + " (torch's reference)", rtol=1e-6, atol=1e-6)

    each_case(name, ACT_REF, case)


def check_hard_sigmoid(hard_sigmoid):
    _act(hard_sigmoid, "hard_sigmoid", 1, 3)


def check_hard_swish(hard_swish):
    _act(hard_swish, "hard_swish", 2, 4)


def check_se(SE):
    scan(SE, "SE")

    def case(ref):
        (c, sq), x, state, y, n = ref
        what = f"SE({c}, {sq})"
        m = guard.call(what, SE, c, sq)
        load_by_position(m, [v.clone() for v in state], what)
        m.eval()
        out = _watched(m, x.clone(), what + f" on input {tuple(x.shape)}")
        close_tensor(out, y, what + f" on input {tuple(x.shape)} with the reference weights")

    each_case("SE", SE_REF, case)


def check_se_params(se_params):
    scan(se_params, "se_params")
    each_case("se_params", SE_REF, lambda ref: same_int(
        guard.call("se_params", se_params, *ref[0]), ref[4], "se_params({}, {})".format(*ref[0])))
"""


def cells(setup_cell):
    return [
        md("""
# Problem set 5: the blocks of MobileNetV3

MobileNetV3 replaces sigmoid and swish by piecewise-linear versions that need no exponential and
stay exact under int8 quantization, and adds squeeze-and-excitation (SE) to some blocks. You will
write all three. Chapter 7 of the book explains them.

**Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` in your
answers, and write the formulas yourself with tensor operations (`torch.clamp`, arithmetic) rather
than `torch.nn.functional.hardsigmoid`/`hardswish` (or `nn.Hardsigmoid`/`nn.Hardswish`): the grader
watches for them, and compares your values with both mnlib's and torch's.
"""),
        setup_cell,
        readonly("ps5_imports", """
import torch
from torch import nn
"""),
        md("""
## 1. Hard sigmoid and hard swish

$$\\text{h-sigmoid}(x) = \\frac{\\text{ReLU6}(x + 3)}{6}, \\qquad \\text{h-swish}(x) = x \\cdot \\text{h-sigmoid}(x)$$

Both take and return a tensor of the same shape and dtype, and leave their input as it was (an
in-place `x.add_(3)` would change the caller's tensor).
"""),
        answer("ps5_answer_activations", """
def hard_sigmoid(x):
    \"\"\"relu6(x + 3) / 6.\"\"\"
    ### BEGIN SOLUTION
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0
    ### END SOLUTION


def hard_swish(x):
    \"\"\"x * relu6(x + 3) / 6.\"\"\"
    ### BEGIN SOLUTION
    return x * hard_sigmoid(x)
    ### END SOLUTION
"""),
        tests("ps5_hard_sigmoid", 2,
              "Does hard_sigmoid match relu6(x + 3) / 6 everywhere, breakpoints and float64 included?",
              """
x = torch.tensor([-4.0, -3.0, 0.0, 3.0, 4.0])
assert torch.allclose(hard_sigmoid(x), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0])), f"hard_sigmoid({x.tolist()}) should be [0, 0, 0.5, 1, 1], got {hard_sigmoid(x).tolist()}"
""", f"{GRADER}.check_hard_sigmoid(hard_sigmoid)"),
        tests("ps5_hard_swish", 2,
              "Does hard_swish match x * relu6(x + 3) / 6 everywhere, breakpoints and float64 included?",
              """
x = torch.tensor([-4.0, -3.0, 0.0, 3.0, 4.0])
assert torch.allclose(hard_swish(x), torch.tensor([0.0, 0.0, 0.0, 3.0, 4.0])), f"hard_swish({x.tolist()}) should be [0, 0, 0, 3, 4], got {hard_swish(x).tolist()}"
""", f"{GRADER}.check_hard_swish(hard_swish)"),
        md("""
## 2. Squeeze-and-excitation

`SE(channels, squeeze_channels)`: global average pooling to $(N, C, 1, 1)$, a 1x1 conv
$C \\to C_{sq}$ **with bias**, ReLU, a 1x1 conv $C_{sq} \\to C$ **with bias**, your `hard_sigmoid`,
and finally the input multiplied channel-wise by that gate. Create `self.fc1` then `self.fc2`
(both `nn.Conv2d`) in this order; pooling and activations have no parameters. Like the
activations, `SE` returns a new tensor and leaves its input as it was (`x * gate`, not
`x.mul_(gate)`: the caller, a residual connection for one, still needs `x`).
"""),
        answer("ps5_answer_se", """
class SE(nn.Module):
    \"\"\"x * h-sigmoid(fc2(relu(fc1(avgpool(x))))).\"\"\"

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
"""),
        tests("ps5_se_outputs", 3,
              "With mnlib's SqueezeExcitation weights loaded in order, does SE compute the same outputs?",
              """
se = SE(16, 8)
y = se(torch.randn(2, 16, 5, 5))
assert y.shape == (2, 16, 5, 5), "SE keeps the shape of its input"
""", f"{GRADER}.check_se(SE)"),
        md("""
## 3. What SE costs

`se_params(c, c_sq)`: the number of parameters of your `SE(c, c_sq)` (weights and biases).
"""),
        answer("ps5_answer_se_params", """
def se_params(c, c_sq):
    \"\"\"Weights and biases of the two 1x1 convs of SE.\"\"\"
    ### BEGIN SOLUTION
    return c * c_sq + c_sq + c_sq * c + c
    ### END SOLUTION
"""),
        tests("ps5_se_params", 1,
              "Does se_params count the weights and biases of SE exactly?",
              """
assert se_params(16, 8) == sum(p.numel() for p in nn.Conv2d(16, 8, 1).parameters()) + sum(p.numel() for p in nn.Conv2d(8, 16, 1).parameters()), "se_params(16, 8): weights and biases of two 1x1 convs, 16 -> 8 and 8 -> 16"
""", f"{GRADER}.check_se_params(se_params)"),
        md("You are done when *Restart & Run All* runs without errors."),
    ]
