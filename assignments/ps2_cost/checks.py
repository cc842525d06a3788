"""ps2_cost's hidden checks: the MAC counts of standard, depthwise, pointwise and separable convolutions,
the speed-up and the smallest C_out for a given reduction, the model counter and the MAC ratio of a
scaled MobileNetV1, against mnlib.cost (on networks from mnlib.models).

Run in the grader's private namespace (assignments/loader.py); the references are computed here,
when the setup cell runs, before any answer cell.
"""
import random

import mnlib.cost
import mnlib.models
import torch

from assignments.toolkit import Guard, close_float, need, same_int, scan, without_defaults

RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)

guard = Guard(["cost.py"])
rng = random.Random(2)

# (C_in, C_out, H, W, K, stride, padding or None for 'same'): odd sizes, strides 1-3, K = 1..7.
CONV_CASES = [(3, 64, 224, 224, 3, 1, None), (32, 64, 112, 112, 3, 2, None), (16, 24, 7, 9, 5, 2, None),
              (5, 7, 1, 1, 1, 1, None), (8, 8, 13, 11, 3, 3, 0), (12, 20, 15, 15, 7, 2, 1)]
CONV_CASES += [(rng.randint(1, 40), rng.randint(1, 40), rng.randint(5, 40), rng.randint(5, 40),
                rng.choice([1, 3, 5]), rng.choice([1, 2, 3]), rng.choice([None, 0, 1, 2])) for _ in range(20)]
# even kernels with padding=None: P = (K - 1) // 2 (1 for K = 4), not K // 2
CONV_CASES += [(6, 10, 9, 9, 2, 1, None), (5, 8, 12, 10, 4, 2, None), (4, 6, 11, 8, 4, 1, None), (7, 3, 8, 8, 2, 2, None)]
CONV_REF = []
for ci, co, h, w, k, s, p in CONV_CASES:
    CONV_REF.append(((ci, co, h, w, k, s, p), mnlib.cost.standard_conv_macs(ci, co, h, w, k, s, p),
                     mnlib.cost.depthwise_conv_macs(ci, h, w, k, s, p), mnlib.cost.pointwise_conv_macs(ci, co, h, w),
                     mnlib.cost.dsc_macs(ci, co, h, w, k, s, p)))

RATIO_REF = [((k, c), mnlib.cost.dsc_speedup(k, c)) for k in (1, 3, 4, 5, 7) for c in (1, 8, 27, 64, 1000)]
MIN_REF = [((k, t), mnlib.cost.min_cout_for_reduction(k, t))
           for k, t in ((3, 10), (4, 10), (5, 10), (7, 10), (3, 8), (3, 9), (5, 20), (6, 20), (2, 3.5), (7, 48.5))]


def _net(seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))
    c1, c2 = 4 * r(1, 4), 4 * r(1, 4)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, c1, 3, r(1, 2), 1), torch.nn.BatchNorm2d(c1), torch.nn.ReLU(),
        torch.nn.Conv2d(c1, c1, 5, r(1, 2), 2, groups=c1), torch.nn.ReLU6(),
        torch.nn.Conv2d(c1, c2, 1, groups=2 if c2 % 2 == 0 and c1 % 2 == 0 else 1),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(c2, r(2, 9)))


COUNT_REF = []
for seed, size in ((1, (1, 3, 17, 17)), (2, (2, 3, 32, 31)), (3, (3, 3, 9, 12))):
    net = _net(seed)
    COUNT_REF.append((f"a small network on {size}", net, size, mnlib.cost.count(net, size).macs))
v2 = mnlib.models.mobilenet_v2()
COUNT_REF.append(("MobileNetV2 at 224x224", v2, (1, 3, 224, 224), mnlib.cost.count(v2).macs))
SCALE_REF = [((a, r), mnlib.cost.scaled_macs(mnlib.models.mobilenet_v1, a, r) / mnlib.cost.scaled_macs(mnlib.models.mobilenet_v1))
             for a, r in ((0.75, 112), (0.5, 160))]
V1 = mnlib.models.mobilenet_v1


def _args(n, ci, co, h, w, k, s, p):
    # every other case leaves out the trailing arguments equal to the defaults (stride=1, padding=None),
    # so the learner's defaults are graded too; the others pass every argument
    full, dw = (ci, co, h, w, k, s, p), (ci, h, w, k, s, p)
    if n % 2:
        return full, dw, ""
    std_args, dw_args = without_defaults(full, (1, None)), without_defaults(dw, (1, None))
    return std_args, dw_args, " (called with the defaults left out)" if len(std_args) < len(full) else ""


def check_conv_macs(standard_macs, depthwise_macs, pointwise_macs):
    for name, f in (("standard_macs", standard_macs), ("depthwise_macs", depthwise_macs),
                    ("pointwise_macs", pointwise_macs)):
        scan(f, name)
    for n, ((ci, co, h, w, k, s, p), std, dw, pw, _) in enumerate(CONV_REF):
        std_args, dw_args, left = _args(n, ci, co, h, w, k, s, p)
        same_int(guard.call("standard_macs", standard_macs, *std_args), std,
                 f"standard_macs(c_in={ci}, c_out={co}, h={h}, w={w}, k={k}, stride={s}, padding={p}){left}")
        same_int(guard.call("depthwise_macs", depthwise_macs, *dw_args), dw,
                 f"depthwise_macs(c={ci}, h={h}, w={w}, k={k}, stride={s}, padding={p}){left}")
        same_int(guard.call("pointwise_macs", pointwise_macs, ci, co, h, w), pw,
                 f"pointwise_macs(c_in={ci}, c_out={co}, h={h}, w={w})")


def check_dsc_macs(dsc_macs):
    scan(dsc_macs, "dsc_macs")
    for n, ((ci, co, h, w, k, s, p), _, _, _, dsc) in enumerate(CONV_REF):
        std_args, _, left = _args(n, ci, co, h, w, k, s, p)
        same_int(guard.call("dsc_macs", dsc_macs, *std_args), dsc,
                 f"dsc_macs(c_in={ci}, c_out={co}, h={h}, w={w}, k={k}, stride={s}, padding={p}){left}")


def check_ratios(speedup, min_cout):
    scan(speedup, "speedup")
    scan(min_cout, "min_cout")
    for (k, c), rho in RATIO_REF:
        close_float(guard.call("speedup", speedup, k, c), rho, f"speedup(k={k}, c_out={c})")
    for (k, t), c in MIN_REF:
        got = guard.call("min_cout", min_cout, k, t)
        if c is None:
            need(got is None, f"min_cout(k={k}, target={t}): no C_out reaches this target, so return None")
        else:
            same_int(got, c, f"min_cout(k={k}, target={t})")


def check_counter(count_macs, mac_ratio):
    scan(count_macs, "count_macs")
    scan(mac_ratio, "mac_ratio")
    for what, net, size, macs in COUNT_REF:
        same_int(guard.call("count_macs", count_macs, net, size), macs, f"count_macs on {what}")
    for (a, r), ratio in SCALE_REF:
        # rel 1e-6: a ratio of two exact counts taken in float32 (0-d tensors) is right to 1e-7; every
        # wrong scaling rule (9/64, alpha on the FC, rounded widths) is off by far more than 1e-6
        close_float(guard.call("mac_ratio", mac_ratio, V1, a, r), ratio,
                    f"mac_ratio(MobileNetV1, alpha={a}, resolution={r})", rel=1e-6)
