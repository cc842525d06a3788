"""ps1_dsc's hidden checks: the DSC module (shapes, layer calls, outputs with the reference weights),
its equivalent standard kernel, and its parameter counts, against mnlib.layers and mnlib.cost.

Run in the grader's private namespace (assignments/loader.py); the references are computed here,
when the setup cell runs, before any answer cell.
"""
import mnlib.cost
import mnlib.layers
import torch

from assignments.toolkit import (Fail, Guard, close_tensor, each_case, kernel_function, load_by_position, need,
                                 plain_tensor, reference_state, same_int, scan, trace_layers, without_defaults)

RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)

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
        out = guard.call(what, m, x.clone())  # copies: a forward that writes into its input must not change x
        plain_tensor(out, what + ": the output")
        need(tuple(out.shape) == tuple(y.shape),
             f"{what}: expected output shape {tuple(y.shape)}, got {tuple(out.shape)} (check padding and where the stride goes)")
        mine, want = _convs(guard.call(what, TRACE, m, x.clone())), _convs(ref_rows)
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
    mine = [r for r in guard.call(what, TRACE, m, x.clone()) if r["type"].startswith("BatchNorm")]
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
            out = guard.call(what, m, x.clone())
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
        need(kern.dtype == w_dw.dtype, f"{what}: return a kernel of the same dtype as w_dw ({w_dw.dtype}), "
                                       f"got {kern.dtype}")
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
