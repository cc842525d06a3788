"""ps1_dsc: a depthwise separable convolution, its equivalent standard kernel, its parameter count."""
from build_notebooks import GRADER, answer, md, readonly, tests

# Hidden checks, run in the grader's private namespace (grading_guard.py is already loaded there).
CHECKS = r"""
RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)
import mnlib.cost, mnlib.layers

guard = Guard(["layers.py", "cost.py"])
TRACE = kernel_function("trace_layers")  # the probe that lists a module's layer calls, where the module lives

# (C_in, C_out, K, stride, H, W): odd and even sizes, K = 1, 3, 5, 7, stride 1 and 2, C_in = 1.
CASES = [(8, 16, 3, 1, 10, 10), (3, 5, 3, 2, 9, 9), (1, 4, 5, 1, 7, 11), (6, 6, 5, 2, 13, 8),
         (5, 12, 1, 1, 6, 6), (4, 7, 7, 2, 15, 15), (16, 8, 3, 2, 8, 7), (2, 3, 3, 1, 1, 5)]
DSC_REF = []
for i, (ci, co, k, s, h, w) in enumerate(CASES):
    ref = mnlib.layers.DepthwiseSeparableConv(ci, co, k, s)
    state = reference_state(ref, seed=100 + i)
    x = torch.randn(2, ci, h, w, generator=torch.Generator().manual_seed(i))
    with torch.no_grad():
        y = ref(x)
    DSC_REF.append(((ci, co, k, s), x, state, y, trace_layers(ref, x)))

# equivalent kernel: (C_in, C_out, K, stride); the oracle is torch's own two-step convolution.
KCASES = [(3, 4, 3, 1), (1, 5, 5, 1), (6, 2, 1, 1), (4, 7, 3, 2), (5, 5, 7, 2), (2, 9, 5, 1)]
KERNEL_REF = []
for i, (ci, co, k, s) in enumerate(KCASES):
    g = torch.Generator().manual_seed(200 + i)
    w_dw, w_pw = torch.randn(ci, 1, k, k, generator=g), torch.randn(co, ci, 1, 1, generator=g)
    x = torch.randn(2, ci, 11, 9, generator=g)
    y = torch.conv2d(torch.conv2d(x, w_dw, None, s, (k - 1) // 2, 1, ci), w_pw)
    KERNEL_REF.append((w_dw, w_pw, x, s, (k - 1) // 2, y))

PCASES = [(3, 64, 3), (32, 64, 3), (1, 1, 1), (7, 13, 5), (512, 512, 3), (24, 144, 7), (5, 3, 4)]
PARAM_REF = [(c, mnlib.cost.dsc_params(*c), mnlib.cost.standard_conv_params(*c)) for c in PCASES]

STEP = ("depthwise", "pointwise")


def _convs(rows):
    return [r for r in rows if r["type"] == "Conv2d"]


def check_dsc_shapes(DSC):
    scan(DSC, "DSC")

    def case(ref):
        (ci, co, k, s), x, state, y, ref_rows = ref
        what = f"DSC({ci}, {co}, kernel_size={k}, stride={s}) on input {tuple(x.shape)}"
        m = guard.call(what, DSC, ci, co, k, s)
        m.eval()
        out = guard.call(what, m, x)
        plain_tensor(out, what + ": the output")
        need(tuple(out.shape) == tuple(y.shape),
             f"{what}: expected output shape {tuple(y.shape)}, got {tuple(out.shape)} (check padding and where the stride goes)")
        mine, want = _convs(guard.call(what, TRACE, m, x)), _convs(ref_rows)
        need(len(mine) == len(want), f"{what}: the forward pass should run {len(want)} nn.Conv2d layers "
                                     f"(depthwise, then pointwise), yours runs {len(mine)}")
        for step, a, b in zip(STEP, mine, want):
            need(a["groups"] == b["groups"] and a["kernel_size"] == b["kernel_size"],
                 f"{what}: the {step} conv should be {b['kernel_size'][0]}x{b['kernel_size'][1]} with groups={b['groups']}, "
                 f"yours is {a['kernel_size'][0]}x{a['kernel_size'][1]} with groups={a['groups']}")
            need(a["out"] == b["out"],
                 f"{what}: the {step} conv should output shape {tuple(b['out'])}, yours outputs {tuple(a['out'])}"
                 + (" (the stride belongs to the depthwise step: applied later, it leaves the depthwise conv "
                    f"{s * s}x the work)" if step == "depthwise" and s > 1 else ""))

    each_case("DSC shapes", DSC_REF, case)


def _bn_hint(m, x, ref_rows, what):
    mine = [r for r in guard.call(what, TRACE, m, x) if r["type"].startswith("BatchNorm")]
    want = [r for r in ref_rows if r["type"].startswith("BatchNorm")]
    for a, b in zip(mine, want):
        if a.get("eps") != b.get("eps"):
            return (f"; your batch norm has eps={a.get('eps')!r} where the described layer uses PyTorch's "
                    f"default eps={b.get('eps')!r}, which changes every output")
    return ""


def check_dsc_outputs(DSC):
    scan(DSC, "DSC")

    def case(ref):
        (ci, co, k, s), x, state, y, ref_rows = ref
        args = without_defaults((ci, co, k, s), (3, 1))  # the defaults left out where they apply
        what = "DSC(" + ", ".join([str(ci), str(co), f"kernel_size={k}", f"stride={s}"][:len(args)]) + ")" + (
            f" (your defaults: the grader left out {' and '.join(['kernel_size', 'stride'][len(args) - 2:])})"
            if len(args) < 4 else "")
        m = guard.call(what, DSC, *args)
        load_by_position(m, [t.clone() for t in state], what)
        m.eval()
        with torch.no_grad():
            out = guard.call(what, m, x)
        try:
            close_tensor(out, y, what + f" on input {tuple(x.shape)} with the reference weights and BN statistics, in eval mode")
        except Fail as exc:
            raise Fail(str(exc) + _bn_hint(m, x, ref_rows, what)) from None

    each_case("DSC outputs", DSC_REF, case)


def check_equivalent_kernel(equivalent_kernel):
    scan(equivalent_kernel, "equivalent_kernel")

    def case(ref):
        w_dw, w_pw, x, s, p, y = ref
        what = f"equivalent_kernel for C_in={w_dw.shape[0]}, C_out={w_pw.shape[0]}, K={w_dw.shape[-1]}"
        kern = guard.call(what, equivalent_kernel, w_dw.clone(), w_pw.clone())
        plain_tensor(kern, what)
        expect = (w_pw.shape[0], w_dw.shape[0], w_dw.shape[-1], w_dw.shape[-1])
        need(tuple(kern.shape) == expect, f"{what}: expected shape (C_out, C_in, K, K) = {expect}, "
                                          f"got {tuple(kern.shape)}")
        close_tensor(torch.conv2d(x, kern.detach(), None, s, p), y,
                     what + f", stride {s}: a standard conv with your kernel vs depthwise-then-pointwise")

    each_case("equivalent_kernel", KERNEL_REF, case)


def check_param_counts(dsc_params, standard_params):
    scan(dsc_params, "dsc_params")
    scan(standard_params, "standard_params")

    def case(ref):
        (ci, co, k), dsc, std = ref
        same_int(guard.call("dsc_params", dsc_params, ci, co, k), dsc, f"dsc_params({ci}, {co}, {k})")
        same_int(guard.call("standard_params", standard_params, ci, co, k), std,
                 f"standard_params({ci}, {co}, {k})")

    each_case("parameter counts", PARAM_REF, case)
"""


def cells(setup_cell):
    return [
        md("""
# Problem set 1: depthwise separable convolution

You will build MobileNetV1's depthwise separable convolution (DSC) as a PyTorch module, prove
numerically that it equals a standard convolution with a special (rank-limited) kernel, and count
its parameters. Chapter 2 of the book explains all three.

**Rules.** Write your code only where it says `YOUR CODE HERE`. Do not import or call `mnlib` in
your answers: the grader compares your work with mnlib, and an answer that uses it scores zero for
that part ("the exercise is to write it"). Run the whole notebook (*Kernel → Restart & Run All*)
before you submit; the cells marked as tests must run without errors. They check a few cases you
can see; the grader checks many more (other kernel sizes, strides, odd sizes).
"""),
        setup_cell,
        readonly("ps1_imports", """
import torch
from torch import nn
"""),
        md("""
## 1. The module

A DSC layer with kernel size $K$ and stride $s$ maps $(N, C_{in}, H, W)$ to
$(N, C_{out}, \\lceil H/s \\rceil, \\lceil W/s \\rceil)$ in two steps:

1. **depthwise**: a $K \\times K$ convolution with `groups = C_in` (one filter per channel), stride $s$,
   padding $(K-1)/2$ rounded down, no bias; then batch norm and ReLU;
2. **pointwise**: a $1 \\times 1$ convolution $C_{in} \\to C_{out}$, no bias; then batch norm and ReLU.

Create the layers in `__init__` **in this order** and with these names (the grader loads the same
weights into your module and into the reference, in this order): `self.depthwise` (`nn.Conv2d`),
`self.bn1` (`nn.BatchNorm2d`), `self.pointwise` (`nn.Conv2d`), `self.bn2` (`nn.BatchNorm2d`),
`self.act` (`nn.ReLU`). Use PyTorch's defaults for batch norm (`eps`, `momentum`): the reference does.
The grader also checks the shape each convolution outputs, so the stride must be where step 1 puts it.
It sees each step by its call: `forward` must call the modules themselves (`self.depthwise(x)`,
`self.bn1(...)`, `self.pointwise(...)`, ...), not use their weights through `torch.nn.functional`.
If the layers are created in another order, the grader's weights land in the wrong layers and the
message says which parameter has the wrong shape.
"""),
        answer("ps1_answer_dsc", """
class DSC(nn.Module):
    \"\"\"Depthwise KxK (groups = C_in, stride s) -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU.\"\"\"

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
"""),
        tests("ps1_dsc_shapes", 2,
              "Does DSC give the output shape (N, C_out, ceil(H/s), ceil(W/s)) for many kernels, strides and odd sizes?",
              """
y = DSC(8, 16)(torch.randn(2, 8, 10, 10))
assert y.shape == (2, 16, 10, 10), f"DSC(8, 16) on (2, 8, 10, 10): expected (2, 16, 10, 10), got {tuple(y.shape)}"
y = DSC(8, 16, stride=2)(torch.randn(2, 8, 9, 9))
assert y.shape == (2, 16, 5, 5), f"stride 2 on a 9x9 input should give 5x5 (ceil(9 / 2)), got {tuple(y.shape)}"
""", f"{GRADER}.check_dsc_shapes(DSC)"),
        tests("ps1_dsc_outputs", 3,
              "With the same weights and BN statistics as mnlib's DepthwiseSeparableConv, does DSC compute the same outputs?",
              """
m = DSC(4, 8)
assert isinstance(m.depthwise, nn.Conv2d) and m.depthwise.groups == 4, "depthwise must be a Conv2d with groups = C_in"
assert isinstance(m.pointwise, nn.Conv2d) and m.pointwise.kernel_size == (1, 1), "pointwise must be a 1x1 Conv2d"
assert m.depthwise.bias is None and m.pointwise.bias is None, "no bias: batch norm follows each conv"
""", f"{GRADER}.check_dsc_outputs(DSC)"),
        md("""
## 2. A DSC is a standard convolution with a rank-limited kernel

Without batch norm and activation, depthwise-then-pointwise is linear, so it equals one standard
$K \\times K$ convolution. Write `equivalent_kernel(w_dw, w_pw)` that takes the depthwise weight
(shape $(C_{in}, 1, K, K)$) and the pointwise weight (shape $(C_{out}, C_{in}, 1, 1)$) and returns the
standard kernel $W$ of shape $(C_{out}, C_{in}, K, K)$ with
`conv2d(x, W) == conv2d(conv2d(x, w_dw, groups=C_in), w_pw)` for any input, stride and padding.
"""),
        answer("ps1_answer_kernel", """
def equivalent_kernel(w_dw, w_pw):
    \"\"\"Standard kernel (C_out, C_in, K, K) equal to depthwise w_dw (C_in, 1, K, K) then pointwise w_pw (C_out, C_in, 1, 1).\"\"\"
    ### BEGIN SOLUTION
    # W[o, i] = w_pw[o, i] * w_dw[i]: each output channel sums the input channels' spatial filters
    return w_pw * w_dw.permute(1, 0, 2, 3)
    ### END SOLUTION
"""),
        tests("ps1_equivalent_kernel", 3,
              "Is a standard convolution with equivalent_kernel(w_dw, w_pw) the same map as depthwise then pointwise?",
              """
w_dw, w_pw, x = torch.randn(3, 1, 3, 3), torch.randn(4, 3, 1, 1), torch.randn(1, 3, 8, 8)
W = equivalent_kernel(w_dw, w_pw)
assert W.shape == (4, 3, 3, 3), f"expected shape (C_out, C_in, K, K) = (4, 3, 3, 3), got {tuple(W.shape)}"
two_step = torch.conv2d(torch.conv2d(x, w_dw, padding=1, groups=3), w_pw)
assert torch.allclose(torch.conv2d(x, W, padding=1), two_step, atol=1e-5), "the two maps differ"
""", f"{GRADER}.check_equivalent_kernel(equivalent_kernel)"),
        md("""
## 3. Parameter counts

Count the convolution **weights** only (no bias, no batch norm): `standard_params(c_in, c_out, k)`
for a standard $K \\times K$ convolution and `dsc_params(c_in, c_out, k)` for the depthwise and
pointwise convolutions of a DSC. Return Python `int`s.
"""),
        answer("ps1_answer_counts", """
def standard_params(c_in, c_out, k):
    \"\"\"Weights of a standard KxK conv C_in -> C_out.\"\"\"
    ### BEGIN SOLUTION
    return c_out * c_in * k * k
    ### END SOLUTION


def dsc_params(c_in, c_out, k):
    \"\"\"Weights of a depthwise KxK conv on C_in channels plus a pointwise 1x1 conv C_in -> C_out.\"\"\"
    ### BEGIN SOLUTION
    return c_in * k * k + c_in * c_out
    ### END SOLUTION
"""),
        tests("ps1_param_counts", 2,
              "Do standard_params and dsc_params count the convolution weights exactly, for many shapes?",
              """
assert standard_params(3, 64, 3) == sum(p.numel() for p in nn.Conv2d(3, 64, 3, bias=False).parameters()), "standard_params(3, 64, 3): the weights of nn.Conv2d(3, 64, 3, bias=False)"
dw, pw = nn.Conv2d(32, 32, 3, groups=32, bias=False), nn.Conv2d(32, 64, 1, bias=False)
assert dsc_params(32, 64, 3) == dw.weight.numel() + pw.weight.numel(), "dsc_params(32, 64, 3): the weights of a 3x3 depthwise conv on 32 channels and a 1x1 conv 32 -> 64"
""", f"{GRADER}.check_param_counts(dsc_params, standard_params)"),
        md("""
You are done when *Restart & Run All* runs without errors. For the ideas behind each part, see
chapter 2 (depthwise separable convolution) and chapter 3 (cost analysis) of the book.
"""),
    ]
