"""ps5_v3_blocks' hidden checks: hard-sigmoid and hard-swish (written with tensor operations, not
torch's own), squeeze-and-excitation with the reference weights, and its parameter count, against
mnlib.layers and torch.

Run in the grader's private namespace (assignments/loader.py); the references are computed here,
when the setup cell runs, before any answer cell.
"""
import mnlib.layers
import torch

from assignments.toolkit import (Guard, close_tensor, each_case, kernel_function, load_by_position, n_params, need,
                                 need_own, reference_state, same_int, scan)

RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)

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
    # calling torch's own version is not the learner's work: the whole check fails, not one case
    need_own(not called, f"{what} calls torch's {called[0]} when it runs; the exercise is to write the formula "
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
