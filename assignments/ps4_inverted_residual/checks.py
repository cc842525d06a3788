"""ps4_inverted_residual's hidden checks: the inverted residual block (its layers, its residual rule,
its outputs with the reference weights), MobileNetV2 built from its (t, c, n, s) table, and the
block's MACs, against mnlib.layers, mnlib.models and mnlib.cost (tables from mnlib.configs).

Run in the grader's private namespace (assignments/loader.py); the references are computed here,
when the setup cell runs, before any answer cell.
"""
import mnlib.configs
import mnlib.cost
import mnlib.layers
import mnlib.models
import torch

from assignments.toolkit import (Fail, Guard, check_reference_outputs, each_case, kernel_eval, kernel_function, kind,
                                 n_params, need, plain_tensor, reference_state, same_int, scan, trace_layers,
                                 without_defaults)

RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)

guard = Guard(["layers.py", "models.py", "cost.py"])
TRACE = kernel_function("trace_layers")  # the probe that lists a module's layer calls, where the module lives
STRUCTURE = ("Conv2d", "BatchNorm2d", "Dropout", "Linear")  # the layers compared one by one with mnlib's


def _layers(rows):
    return [r for r in rows if r["type"] in STRUCTURE]


def _shown_layer(r):
    if r["type"] == "Conv2d":
        k, dw = r["kernel_size"], r["groups"] > 1 and r["groups"] == r["in_channels"]
        return (f"a {k[0]}x{k[1]} {'depthwise ' if dw else ''}conv {r['in_channels']}->{r['out_channels']}, "
                f"stride {r['stride'][0]}")
    if r["type"] == "BatchNorm2d":
        return f"BatchNorm2d({r['num_features']})"
    if r["type"] == "Dropout":
        return f"Dropout(p={r['p']})"
    if r["type"] == "Linear":
        return f"Linear({r['in_features']}, {r['out_features']}{'' if r['bias'] else ', bias=False'})"
    return r["type"]


def _key(r):
    keys = {"Conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "groups", "bias", "out"),
            "BatchNorm2d": ("num_features", "out"), "Dropout": ("p",),
            "Linear": ("in_features", "out_features", "bias", "out")}[r["type"]]
    return (r["type"],) + tuple(str(r.get(k)) for k in keys)


def _where(r, blocks):
    # "block 4 (stage 3, (t, c, n, s) = (6, 32, 3, 2), its 1st block)" from mnlib's module name
    parts = r["name"].split(".")
    if parts[0] == "features" and len(parts) > 1 and parts[1].isdigit():
        b = int(parts[1])
        if 1 <= b <= len(blocks):
            stage, i, row = blocks[b - 1]
            return f"block {b} (stage {stage}, (t, c, n, s) = {row}, block {i} of the stage)"
        return "the stem" if b == 0 else "the last 1x1 conv"
    return "the classifier"


def compare_layers(mine, ref, what, blocks=None):
    # The learner's layers (convs, batch norms, dropout, linear) in call order against mnlib's.
    a, b = _layers(mine), _layers(ref)
    for i, (x, y) in enumerate(zip(a, b)):
        if _key(x) != _key(y):
            where = f" in {_where(y, blocks)}" if blocks else ""
            if x["type"] == y["type"] and x["type"] in ("Conv2d", "BatchNorm2d", "Linear") and x.get("out") != y.get("out") \
                    and _key(x)[:-1] == _key(y)[:-1]:
                raise Fail(f"{what}: layer {i + 1}{where}, {_shown_layer(y)}, should output shape {tuple(y['out'])}, "
                           f"yours outputs {tuple(x['out'])}" + (" (check which block of each stage has the stride)"
                                                                  if blocks else ""))
            raise Fail(f"{what}: layer {i + 1}{where} should be {_shown_layer(y)}, yours is {_shown_layer(x)}")
    if len(a) != len(b):
        extra = a[len(b):] or b[len(a):]
        raise Fail(f"{what}: {len(b)} layers with parameters or dropout expected, yours has {len(a)}; "
                   f"{'the first extra one' if len(a) > len(b) else 'the first missing one'} is {_shown_layer(extra[0])}")


# (C_in, C_out, stride, t, H, W): with and without residual, t = 1 (no expansion), odd sizes.
BLOCKS = [(16, 16, 1, 6, 9, 9), (16, 24, 2, 6, 9, 8), (32, 32, 2, 6, 7, 7), (8, 8, 1, 1, 6, 5),
          (8, 16, 1, 1, 5, 5), (24, 24, 1, 4, 4, 6), (12, 20, 1, 3, 5, 5), (4, 4, 2, 1, 11, 11),
          # fractional t: t * C_in = 13.5 and 17.5, where rounding and truncation give different widths
          (9, 9, 1, 1.5, 5, 6), (7, 12, 2, 2.5, 7, 7)]
BLOCK_REF = []
for i, (ci, co, s, t, h, w) in enumerate(BLOCKS):
    ref = mnlib.layers.InvertedResidual(ci, co, s, t=t)
    state = reference_state(ref, seed=400 + i)
    x = torch.randn(2, ci, h, w, generator=torch.Generator().manual_seed(i))
    with torch.no_grad():
        BLOCK_REF.append(((ci, co, s, t), x, state, ref(x), ref.use_res_connect, n_params(ref), trace_layers(ref, x)))

V2_X = torch.zeros(1, 3, 64, 64)
V2_REF = []
for classes in (1000, 10):
    ref = mnlib.models.mobilenet_v2(num_classes=classes)
    V2_REF.append((classes, n_params(ref), trace_layers(ref, V2_X)))
V2_BLOCKS = [(stage + 1, i + 1, (st.t, st.c, st.n, st.s))
             for stage, st in enumerate(mnlib.configs.V2_STAGES) for i in range(st.n)]

MAC_CASES = [(32, 16, 112, 112, 1, 3, 1), (16, 24, 112, 112, 6, 3, 2), (24, 24, 56, 56, 6, 3, 1),
             (24, 32, 15, 15, 6, 3, 2), (40, 80, 7, 9, 6, 5, 2), (8, 8, 13, 13, 1, 3, 2), (96, 160, 13, 14, 6, 3, 2),
             (16, 16, 1, 1, 4, 3, 1), (10, 12, 21, 5, 3, 7, 2),
             (9, 16, 10, 10, 1.5, 3, 2), (7, 7, 9, 9, 2.5, 5, 1)]  # t * C_in = 13.5, 17.5: round, not truncate
MAC_REF = [(c, mnlib.cost.inverted_residual_macs(*c)) for c in MAC_CASES]


def _what(ci, co, s, t):
    return f"InvertedResidual({ci}, {co}, stride={s}, t={t})"


def check_block_structure(InvertedResidual):
    scan(InvertedResidual, "InvertedResidual")

    def case(ref):
        (ci, co, s, t), x, state, y, res, n, rows = ref
        what = _what(ci, co, s, t)
        m = guard.call(what, InvertedResidual, ci, co, s, t)
        convs = kernel_eval("sum(isinstance(c, torch.nn.Conv2d) for c in m.modules())", m=m)
        need(convs == (2 if t == 1 else 3),
             f"{what}: expected {'2 convolutions (t = 1 has no expansion)' if t == 1 else '3 convolutions'}, got {convs}")
        same_int(n_params(m), n, f"{what}: number of parameters")
        # partial: a forward pass that crashes (at the residual, say) is the outputs check's concern
        compare_layers(guard.call(what, TRACE, m, x.clone(), True), rows, f"{what} on input {tuple(x.shape)}")

    each_case("InvertedResidual structure", BLOCK_REF, case)


def check_residual_rule(InvertedResidual):
    scan(InvertedResidual, "InvertedResidual")

    def case(ref):
        (ci, co, s, t), x, state, y, res, n, rows = ref
        what = _what(ci, co, s, t)
        m = guard.call(what, InvertedResidual, ci, co, s, t)
        got = getattr(m, "use_res_connect", None)
        need(type(got) is bool, f"{what}.use_res_connect should be a bool, got {kind(got)}")
        need(got == res, f"{what}.use_res_connect is {got}: when may the input be added to the output?")

    each_case("use_res_connect", BLOCK_REF, case)


def check_block_outputs(InvertedResidual):
    scan(InvertedResidual, "InvertedResidual")

    def case(ref):
        (ci, co, s, t), x, state, y, res, n, rows = ref
        check_reference_outputs(guard, InvertedResidual, (ci, co, s, t), x, state, y,
                                _what(ci, co, s, t) + f" on input {tuple(x.shape)}")

    each_case("InvertedResidual outputs", BLOCK_REF, case)


def check_v2(mobilenet_v2):
    scan(mobilenet_v2, "mobilenet_v2")

    def case(ref):
        classes, n, rows = ref
        what = f"mobilenet_v2(num_classes={classes})"
        m = guard.call(what, mobilenet_v2, classes)
        same_int(n_params(m), n, f"{what}: number of parameters")
        compare_layers(guard.call(what, TRACE, m, V2_X.clone()), rows, f"{what} on a {tuple(V2_X.shape)} input", V2_BLOCKS)
        m.eval()
        with torch.no_grad():
            out = guard.call(what, m, torch.zeros(2, 3, 64, 64))
        plain_tensor(out, f"{what} output")
        need(tuple(out.shape) == (2, classes), f"{what} on (2, 3, 64, 64): expected output shape {(2, classes)}, "
                                                f"got {tuple(out.shape)}")

    each_case("mobilenet_v2", V2_REF, case)


def check_block_macs(block_macs):
    scan(block_macs, "block_macs")
    each_case("block_macs", MAC_REF, lambda ref: same_int(
        guard.call("block_macs", block_macs, *without_defaults(ref[0], (3, 1))), ref[1],
        "block_macs(c_in={}, c_out={}, h={}, w={}, t={}, k={}, stride={})".format(*ref[0])
        + (" (called with the defaults left out)" if len(without_defaults(ref[0], (3, 1))) < 7 else "")))
