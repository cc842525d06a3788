"""ps9_latency_search: a layer-wise latency predictor from measurements, scored with nn-Meter's
+-10% accuracy on held-out networks, then used to pick a network under a latency budget.

The hidden checks judge the method, never the machine's speed: the learner's functions run on fake
devices (solutions/ps9_latency_search_kernel.py) whose every call costs a known time, with slow
first calls, outliers and a machine speed that drifts in steps. A layer's time normalised by the
reference block measured beside it is then known exactly, and so are the coefficients a per-kind
fit recovers, the predictions for held-out networks, the measured whole networks and the score.
The real-machine part is graded for its method only (normalised units, a score that is the share
its own lists give), never for a time or a score value.
"""
import ast
from pathlib import Path

from build_notebooks import GRADER, answer, md, readonly, tests

KERNEL_SRC = (Path(__file__).resolve().parent / "ps9_latency_search_kernel.py").read_text()
assert "'''" not in repr(KERNEL_SRC)  # the setup cell pastes the checks inside r''' ... '''
_node = next(n for n in ast.parse(KERNEL_SRC).body if isinstance(n, ast.ClassDef) and n.name == "TorchDevice")
TORCH_DEVICE_SRC = ast.get_source_segment(KERNEL_SRC, _node)

CHECKS = f"KERNEL_SRC = {KERNEL_SRC!r}\n" + r"""
RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)
import numpy as np

guard = Guard(["timing.py", "latency.py", "roofline.py", "cost.py"])

_local = {"__name__": "grader_helpers"}
exec(KERNEL_SRC, _local)
FakeDevice = _local["FakeDevice"]  # here: the true costs of the fake networks
# The solution's measure_layers, fit_predictor, predict and within_10_percent: a check of holdout_score
# runs it with these in place of the learner's, so a mistake in one of them costs its own cell only.
REFERENCE_SRC = None  # set below, from the notebook's answer cells (solutions/ps9_latency_search_src.py)
# the runners where the learner's code runs (in the kernel when the grader runs these checks)
RUN_MEASURE, RUN_PREDICTOR, RUN_METRIC, RUN_HOLDOUT, RUN_PICK, RUN_REAL = (
    kernel_define(KERNEL_SRC, n) for n in
    ("run_measure", "run_predictor", "run_metric", "run_holdout", "run_pick", "run_real"))


def _number(value, what):
    need(type(value) is float, f"{what} should be a number, got {value if type(value) is str else kind(value)}")
    return value


def _numbers(values, n, what):
    need(type(values) is list, f"{what} should be a list (or array) of numbers, got "
                               f"{values if type(values) is str else kind(values)}")
    need(len(values) == n, f"{what}: expected {n} numbers, got {len(values)}")
    return [_number(v, f"{what}[{i}]") for i, v in enumerate(values)]


def _same(got, want, what, rel=1e-7):
    for i, (g, w) in enumerate(zip(got, want)):
        need(isclose(g, w, rel_tol=rel), f"{what}: entry {i} is off ({off_by(g, w)})")


# ---------------------------------------------------------------- measure_layers
def _measure(measure_layers, costs, warmup, repeats, machine, what):
    res = guard.call(what, RUN_MEASURE, measure_layers, list(costs), warmup, repeats, dict(machine))
    got = _numbers(res["result"], len(costs), f"{what}: the result")
    return got, res


# Case "warm-up": every function's first 3 calls (the reference's too) take 12 times longer.
WARM = ([1.5, 0.4, 3.0, 0.75], 3, 5, {"cold": 3})
# Case "outliers": the 3rd and the 6th call of every layer take 6 times longer; no warm-up needed.
OUTLIERS = ([0.7, 2.0, 1.1, 0.3, 1.6], 0, 7, {"slow_calls": [2, 5]})
# Case "drift": the machine's speed steps between 1.7, 2.4, 1.3 and 2.9 times its nominal speed every
# 0.25 s of its time (longer than any one layer's measurement, shorter than the network's), and the
# 5th call of every layer is an outlier. In each round the layer and the reference run at the same
# speed, except in a round with a step between them (one per step); with the outlier, at most 3 of
# a layer's 7 rounds are spoilt, so the median of its ratios is exact.
DRIFT = ([1.0, 2.5, 0.5, 1.8, 3.0, 0.8, 1.2], 2, 7,
         {"segment": 0.25, "speeds": [1.7, 2.4, 1.3, 2.9], "slow_calls": [4]})


# Case "defaults": warmup and repeats left out, so the signature's defaults (2 and 7) apply; the first
# 2 calls of every function are slow.
WARM_DEFAULTS = ([0.9, 2.2], None, None, {"cold": 2})


def check_measure_warmup(measure_layers):
    scan(measure_layers, "measure_layers")
    for costs, w, r, machine in (WARM, WARM_DEFAULTS):
        shown_wr = f"warmup={w}, repeats={r}" if w is not None else "(default warmup and repeats)"
        what = f"measure_layers(layers, reference, {shown_wr}) with slow first calls"
        got, res = _measure(measure_layers, costs, w, r, machine, what)
        w, r = (2, 7) if w is None else (w, r)
        need(res["calls"] == [w + r] * len(costs),
             f"{what} called the layers {res['calls']} times; expected {w} warm-up + {r} timed calls of each")
        _same(got, costs, what + " (warm up the reference and every layer before timing them)")


def check_measure_median(measure_layers):
    scan(measure_layers, "measure_layers")
    costs, w, r, machine = OUTLIERS
    what = f"measure_layers(layers, reference, warmup={w}, repeats={r}) on a machine with slow outliers"
    got, _ = _measure(measure_layers, costs, w, r, machine, what)
    _same(got, costs, what + " (the median of the per-round ratios, which outliers cannot move)")


def check_measure_reference(measure_layers):
    scan(measure_layers, "measure_layers")
    costs, w, r, machine = DRIFT
    what = (f"measure_layers(layers, reference, warmup={w}, repeats={r}) on a machine whose speed drifts "
            "during the measurement")
    got, res = _measure(measure_layers, costs, w, r, machine, what)
    log = res["log"]
    for i in range(len(costs)):
        # "in each round, one call of the layer and one call of the reference, right after each other":
        # every timed call of the layer has a reference call of its own right before or right after it
        # (A B, or B A: alternating the order between rounds does that too)
        used = set()
        for k in [k for k, name in enumerate(log) if name == str(i)][w:]:
            beside = [j for j in (k - 1, k + 1) if 0 <= j < len(log) and log[j] == "ref" and j not in used]
            need(beside, f"{what}: a timed call of layer {i} has no call of the reference of its own right before "
                         "or right after it: in every round, time the layer and the reference right after each other")
            used.add(beside[0])
    _same(got, costs, what + " (divide each round's layer time by the reference time of the same round, "
                             "then take the median of those ratios)")


# ---------------------------------------------------------------- fit_predictor / predict
LAW = {"conv": (0.05, 0.9, 0.3), "depthwise": (0.08, 2.5, 0.6), "pointwise": (0.03, 0.5, 0.2),
       "linear": (0.02, 0.3, 0.4)}
_g = np.random.default_rng(9)


def _features(kinds):
    return [{"kind": k, "mmacs": float(np.round(_g.uniform(0.05, 5.0), 4)),
             "mbytes": float(np.round(_g.uniform(0.02, 2.0), 4))} for k in kinds]


def _law(f):
    o, a, b = LAW[f["kind"]]
    return o + a * f["mmacs"] + b * f["mbytes"]


FIT_ROWS = [{**f, "time": float(_law(f) * (1 + 0.04 * _g.uniform(-1, 1)))}
            for f in _features([k for k in LAW for _ in range(7)])]
_g.shuffle(FIT_ROWS)
FIT_COEF = {}
for _k in LAW:  # the reference: ordinary least squares per kind, time ~ 1 + MMAC + MB
    _rows = [r for r in FIT_ROWS if r["kind"] == _k]
    _a = np.array([[1.0, r["mmacs"], r["mbytes"]] for r in _rows])
    FIT_COEF[_k] = np.linalg.lstsq(_a, np.array([r["time"] for r in _rows]), rcond=None)[0]
FIT_NETS = [_features(["conv", "depthwise", "pointwise", "depthwise", "pointwise", "linear"]),
            _features(["conv"] + ["depthwise", "pointwise"] * 4 + ["linear"]),
            _features(["pointwise", "pointwise", "linear"])]
FIT_WANT = [sum(float(FIT_COEF[f["kind"]] @ np.array([1.0, f["mmacs"], f["mbytes"]])) for f in net)
            for net in FIT_NETS]


def check_predictor(fit_predictor, predict):
    scan(fit_predictor, "fit_predictor")
    scan(predict, "predict")
    what = f"fit_predictor(rows) on {len(FIT_ROWS)} measured layers of 4 kinds, then predict(coeffs, features)"
    got = guard.call(what, RUN_PREDICTOR, fit_predictor, predict, FIT_ROWS, FIT_NETS)
    got = _numbers(got, len(FIT_NETS), what)
    for k, (net, g, want) in enumerate(zip(FIT_NETS, got, FIT_WANT)):
        need(isclose(g, want, rel_tol=1e-6),
             f"{what}: the prediction for a network of {len(net)} layers (case {k + 1}) is off ({off_by(g, want)}): "
             "fit each kind apart by ordinary least squares on [1, mmacs, mbytes], and predict the sum over "
             "the network's layers")


# ---------------------------------------------------------------- within_10_percent
# (predicted, measured, share): cases away from the 10% boundary, where every formula agrees
METRIC = [([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1.0),
          ([11.05, 9.5, 100.0], [10.0, 10.0, 10.0], 1 / 3),  # 10.5% over, 5% under, 10x
          ([9.05, 20.0], [10.0, 20.0], 1.0),  # 9.5% under the measured time (10.5% of the prediction)
          ([0.5, 1.3, 0.8, 2.09], [0.52, 1.2, 0.95, 2.0], 0.75),
          ([3.0], [2.0], 0.0)]
# seeded random cases over the whole domain (recorded: seed 21): 1 to 40 networks, measured times from
# 0.001 to 1000 units, relative errors from -90% to +300% but never within 0.1% of the +-10% boundary
_gm = np.random.default_rng(21)
for _n in (1, 2, 7, 40):
    _m = 10 ** _gm.uniform(-3, 3, _n)
    _e = np.where(_gm.random(_n) < 0.5, _gm.uniform(-0.099, 0.099, _n),
                  np.where(_gm.random(_n) < 0.5, -_gm.uniform(0.101, 0.9, _n), _gm.uniform(0.101, 3.0, _n)))
    _p = _m * (1 + _e)
    METRIC.append(([float(x) for x in _p], [float(x) for x in _m],
                   float(np.mean(np.abs(_p - _m) / _m <= 0.1))))
assert all(abs(abs(p_ - m_) / m_ - 0.1) > 1e-3 for p, m, _ in METRIC for p_, m_ in zip(p, m))
# on the boundary: predictions exactly 10% under the measured time, where every way of writing the test
# seen (|p - m| / m, |p - m| <= 0.1 m, |p / m - 1|, 0.9 m <= p, in percent, in float32) gives "inside",
# and `< 0.1` gives "outside" (above the measured time, |p / m - 1| is a hair over 0.1: not used)
METRIC.append(([9.0, 36.0, 4.5, 18.0, 90.0, 12.0], [10.0, 40.0, 5.0, 20.0, 100.0, 10.0], 5 / 6))
assert all(abs(p_ - m_) / m_ == 0.1 for p_, m_ in zip(*METRIC[-1][:2]) if p_ < m_)


def check_metric(within_10_percent):
    scan(within_10_percent, "within_10_percent")
    got = guard.call("within_10_percent(predicted, measured)", RUN_METRIC, within_10_percent, METRIC)
    for k, ((p, m, want), g) in enumerate(zip(METRIC, got)):
        what = f"within_10_percent({p}, {m})" if len(p) <= 4 else f"within_10_percent on {len(p)} networks (case {k + 1})"
        g = _number(g, what)
        need(isclose(g, want, rel_tol=1e-9, abs_tol=1e-12),
             f"{what} should be the share (between 0 and 1) of predictions with |predicted - measured| / measured "
             f"<= 0.1, got {g:.4g}")


# ---------------------------------------------------------------- holdout_score
_TRAIN_KINDS = [["conv", "depthwise", "pointwise", "depthwise", "pointwise", "linear"],
                ["conv", "depthwise", "pointwise", "linear"],
                ["conv", "depthwise", "pointwise", "depthwise", "pointwise", "depthwise", "pointwise", "linear"],
                ["conv", "depthwise", "pointwise", "linear"],
                ["conv", "depthwise", "pointwise", "depthwise", "pointwise", "linear"]]
_TEST_KINDS = [["conv", "depthwise", "pointwise", "linear"]] * 2 + \
              [["conv", "depthwise", "pointwise", "depthwise", "pointwise", "linear"]] * 3
_spec_nets = {}
for _i, _kinds in enumerate(_TRAIN_KINDS):
    _spec_nets[f"train{_i}"] = [(f["kind"], f["mmacs"] / 2, f["mbytes"] / 2) for f in _features(_kinds)]
for _i, _kinds in enumerate(_TEST_KINDS):
    _spec_nets[f"test{_i}"] = [(f["kind"], f["mmacs"] / 2, f["mbytes"] / 2) for f in _features(_kinds)]
HOLD_TRAIN = [f"train{i}" for i in range(len(_TRAIN_KINDS))]
HOLD_TEST = [f"test{i}" for i in range(len(_TEST_KINDS))]
# The held-out networks' layers do not all follow the law the training networks follow (1.25, 0.8:
# a fit that sees them changes), and one whole network runs faster than the sum of its layers (0.85).
HOLD_SPEC = {"nets": _spec_nets, "law": {k: list(v) for k, v in LAW.items()},
             "layer_factor": {"test1": 1.25, "test2": 0.8, "test3": 1.105},
             "whole_factor": {"test4": 0.85},
             "segment": 2.0, "speeds": [1.0, 1.6, 2.2, 1.3], "slow_calls": [5], "cold": 2}
_true = FakeDevice(**HOLD_SPEC)
HOLD_PRED = [sum(_law({"kind": k, "mmacs": m, "mbytes": b}) for k, m, b in _spec_nets[n]) for n in HOLD_TEST]
HOLD_MEAS = [_true.whole_cost(n) for n in HOLD_TEST]
HOLD_SCORE = sum(abs(p - m) / m <= 0.1 for p, m in zip(HOLD_PRED, HOLD_MEAS)) / len(HOLD_TEST)
assert 0 < HOLD_SCORE < 1


# The same networks, measured with warmup=3 and repeats=9 (away from the defaults 2 and 7) on a machine
# whose first 3 calls of every function are slow: holdout_score must pass both on to measure_layers.
HOLD_KWARGS = {"warmup": 3, "repeats": 9}
HOLD_SPEC_KW = dict(HOLD_SPEC, cold=3)
_ref_local = {}
exec(REFERENCE_SRC, _ref_local)  # the cases are built so that the solution gets them exactly
for _spec, _kw in ((HOLD_SPEC, {}), (HOLD_SPEC_KW, HOLD_KWARGS)):
    _res = _local["run_holdout"](_ref_local["holdout_score"], _spec, HOLD_TRAIN, HOLD_TEST, _kw)
    assert all(abs(a - b) <= 1e-9 * b for a, b in zip(_res["measured"], HOLD_MEAS)), _res
HELPERS = "with the reference measure_layers, fit_predictor, predict and within_10_percent in place of yours"


def check_holdout(holdout_score):
    scan(holdout_score, "holdout_score")
    for spec, kwargs in ((HOLD_SPEC, {}), (HOLD_SPEC_KW, HOLD_KWARGS)):
        _holdout_case(holdout_score, spec, kwargs)


def _holdout_case(holdout_score, spec, kwargs):
    shown_kw = "".join(f", {k}={v}" for k, v in kwargs.items())
    what = (f"holdout_score(device, train, test{shown_kw}) on a fake device ({len(HOLD_TRAIN)} training and "
            f"{len(HOLD_TEST)} held-out networks; {HELPERS})")
    res = guard.call(what, RUN_HOLDOUT, holdout_score, spec, HOLD_TRAIN, HOLD_TEST, kwargs, REFERENCE_SRC)
    need(res["type"] == "dict", f"{what} should return a dict, got {res['type']}")
    w, r = kwargs.get("warmup", 2), kwargs.get("repeats", 7)
    for name, n in sorted(res["runs"].items()):
        if n != w + r:
            net = name.split("/")[0]
            need(False, f"{what}: {'a layer of ' + net if '/' in name else 'the whole network ' + net} ran {n} "
                        f"times; expected warmup + repeats = {w} + {r} (pass warmup and repeats on to every "
                        "measure_layers call)")
    for key in ("predicted", "measured", "score"):
        need(res[key] is not None, f"{what}: the result has no {key!r}")
    measured = _numbers(res["measured"], len(HOLD_TEST), what + ": result['measured']")
    _same(measured, HOLD_MEAS, what + ": result['measured'] (each held-out network run whole, timed with "
                                      "measure_layers, normalised by the reference)")
    predicted = _numbers(res["predicted"], len(HOLD_TEST), what + ": result['predicted']")
    _same(predicted, HOLD_PRED, what + ": result['predicted'] (fit on the training networks' layers only, "
                                       "never on a held-out network)", rel=1e-6)
    score = _number(res["score"], what + ": result['score']")
    need(isclose(score, HOLD_SCORE, abs_tol=1e-9), f"{what}: result['score'] should be within_10_percent("
                                                   "predicted, measured)")


# ---------------------------------------------------------------- pick_under_budget
def _cand(name, acc, ms):
    return {"name": name, "accuracy": acc, "features": [{"ms": x} for x in ms]}


PICK = [([_cand("A", 0.70, [1.0]), _cand("B", 0.75, [0.5, 1.5]), _cand("C", 0.80, [3.5]), _cand("D", 0.74, [1.25])],
         2.0, "B", "the most accurate candidate whose predicted latency is <= the budget (a budget met exactly is met)"),
        ([_cand("A", 0.70, [3.0]), _cand("B", 0.60, [2.5])], 2.0, None, "None when no candidate fits the budget"),
        ([_cand("E", 0.75, [1.5]), _cand("F", 0.75, [0.75, 0.25]), _cand("G", 0.50, [0.25])], 1.5, "F",
         "between equally accurate candidates, the faster"),
        ([_cand("H", 0.9, [6.0]), _cand("I", 0.8, [4.0]), _cand("J", 0.7, [1.0])], 5.0, "I",
         "the most accurate candidate under the budget")]


def check_pick(pick_under_budget):
    scan(pick_under_budget, "pick_under_budget")
    for cands, budget, want, rule in PICK:
        shown_c = ", ".join(f"{c['name']} (accuracy {c['accuracy']}, predicted {sum(f['ms'] for f in c['features']):g})"
                            for c in cands)
        what = f"pick_under_budget([{shown_c}], predict, budget={budget:g})"
        got = guard.call(what, RUN_PICK, pick_under_budget, cands, budget)
        need(got == want, f"{what} returned {got!r}: expected {rule}")


# ---------------------------------------------------------------- the real machine
REAL_TRAIN = [f"net{i}" for i in range(8)]
REAL_TEST = [f"net{i}" for i in range(8, 12)]
REAL_ROUNDS = 5  # of the 7 rounds (repeats=7 by default) a whole network is timed in, beside the reference


def check_real(holdout_score):
    scan(holdout_score, "holdout_score")
    what = f"holdout_score(TorchDevice(seed=0), TRAIN, TEST) on this machine ({HELPERS})"
    res = guard.call(what, RUN_REAL, holdout_score, 0, REAL_TRAIN, REAL_TEST, REFERENCE_SRC)
    need(res["type"] == "dict", f"{what} should return a dict, got {res['type']}")
    for key in ("predicted", "measured", "score"):
        need(res[key] is not None, f"{what}: the result has no {key!r}")
    seen = sorted(set(res["layers_of"]) & set(REAL_TEST))
    need(not seen, f"{what} asked for the layers of held-out networks ({', '.join(seen)}): the predictor must never "
                   "see a held-out network, and a held-out network is measured whole (device.network)")
    for net, n in res["beside_reference"].items():
        need(n >= REAL_ROUNDS, f"{what}: only {n} calls of the held-out network {net} ran right beside a call of "
                               f"the reference (expected at least {REAL_ROUNDS} of the default 7 rounds): time every "
                               "round of a whole network interleaved with the reference, as measure_layers does")
    measured = _numbers(res["measured"], len(REAL_TEST), what + ": result['measured']")
    predicted = _numbers(res["predicted"], len(REAL_TEST), what + ": result['predicted']")
    need(all(math.isfinite(p) for p in predicted), f"{what}: every prediction should be a finite number")
    # In units of the reference block, each of these networks takes well over a tenth of the block
    # (their MACs, and every layer's fixed overhead), whatever the machine; in seconds, far less.
    need(all(math.isfinite(m) and m >= 0.1 for m in measured),
         f"{what}: result['measured'] should be in units of the reference block (time of the network / time "
         f"of the reference, measured interleaved), got {', '.join(f'{m:.3g}' for m in measured)}")
    _number(res["score"], what + ": result['score']")  # its value is noise here: the fake device judged it
"""


def cells(setup_cell):
    return [
        md("""
# Problem set 9: a latency predictor and a network under a budget

MACs do not give latency: a depthwise convolution does few MACs and still costs time, every
layer has a fixed overhead, and memory traffic matters. nn-Meter (Zhang et al., MobiSys 2021)
predicts a network's latency as the sum of per-layer predictions, each from a model fitted per
kind of layer on measured layers, and scores a predictor by its **±10% accuracy**: the share of
held-out networks whose predicted latency is within 10% of the measured one. You will build
such a predictor from measurements you take, score it on networks it was not fitted on, and use
it to pick a network under a latency budget.

A shared machine changes speed while you measure. So every time here is **normalised**: each
layer is timed interleaved with a fixed reference block and reported in units of that block,
which cancels the machine's drift. The grader checks your *method* on fake devices whose every
call costs a known time (with slow first calls, outliers and a drifting speed), never how fast
your machine is.

**Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` (or
`timeit`) in your answers: the grader watches every call your code makes into either, and a
check that catches one scores 0. Time with the `clock` you are given; the fake devices' functions,
like a real layer, tell you nothing but how long they take when you call them.
"""),
        setup_cell,
        readonly("ps9_imports", """
import math
import time
import numpy as np
import torch
"""),
        md("""
## 1. `measure_layers`: normalised per-layer times

`measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter)`: `calls` is a
list of functions without arguments (each runs one layer on its input); `reference()` runs the
reference block.

1. warm up: call `reference()` `warmup` times, and each layer `warmup` times before timing it
   (first calls are slow: caches, lazy initialisation), without timing these calls;
2. for each layer, `repeats` rounds; in each round time one call of the layer and one call of the
   reference, right after each other (read `clock()` before and after each call), and keep the
   ratio $r_i = t_\\text{layer} / t_\\text{ref}$ of that round (which of the two runs first does not
   matter, and may change from round to round: what counts is that they run right beside each other);
3. the layer's normalised time is the **median** of its $r_i$. Return the list of these, one per layer.

The ratio of the same round cancels a change of the machine's speed between rounds; the median
ignores a round spoilt by an outlier. Use only the `clock` you are given.
"""),
        answer("ps9_answer_measure", """
def measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter):
    \"\"\"For each layer, the median over rounds of time(layer) / time(reference), timed interleaved.\"\"\"
    ### BEGIN SOLUTION
    for _ in range(warmup):
        reference()
    out = []
    for layer in calls:
        for _ in range(warmup):  # untimed: the first calls pay for caches and lazy set-up
            layer()
        ratios = []
        for _ in range(repeats):
            t0 = clock()
            layer()
            t1 = clock()
            reference()  # right beside the layer: the same machine speed
            t2 = clock()
            ratios.append((t1 - t0) / (t2 - t1))
        out.append(float(np.median(ratios)))
    return out
    ### END SOLUTION
"""),
        tests("ps9_measure_warmup", 2,
              "Are the layers and the reference warmed up before timing, each layer called warmup + repeats times?",
              """
t = [0.0]
def spend(seconds):
    def call():
        t[0] += seconds
    return call
calls = []
def layer():
    calls.append(1)
    t[0] += 2.0
res = measure_layers([layer], spend(1.0), warmup=2, repeats=3, clock=lambda: t[0])
assert len(calls) == 5, f"expected 2 warm-up + 3 timed calls of the layer, got {len(calls)}"
assert res == [2.0], f"a layer that takes twice as long as the reference has normalised time 2.0, got {res}"
""", f"{GRADER}.check_measure_warmup(measure_layers)"),
        tests("ps9_measure_median", 2,
              "Is a layer's normalised time the median of its per-round ratios, which one outlier cannot move?",
              """
costs = iter([3.0, 3.0, 300.0, 3.0, 3.0])
res = measure_layers([lambda: spend(next(costs))()], spend(1.0), warmup=0, repeats=5, clock=lambda: t[0])
assert res == [3.0], f"one slow round must not move the median: expected [3.0], got {res}"
""", f"{GRADER}.check_measure_median(measure_layers)"),
        tests("ps9_measure_reference", 2,
              "Is every round's layer time divided by the reference time of the same round (drift cancels)?",
              """
n = [0]
def drifting(seconds):
    def call():
        t[0] += seconds * 1.5 ** (n[0] // 2)  # the machine slows down after every second call
        n[0] += 1
    return call
res = measure_layers([drifting(2.0)], drifting(1.0), warmup=0, repeats=3, clock=lambda: t[0])
assert abs(res[0] - 2.0) < 1e-9, f"in every round the layer takes twice the reference: expected [2.0], got {res}"
""", f"{GRADER}.check_measure_reference(measure_layers)"),
        md("""
## 2. A per-kind predictor

A *row* describes one measured layer: `{"kind": ..., "mmacs": ..., "mbytes": ..., "time": ...}`
(its kind, millions of MACs, megabytes it moves, normalised time). The kinds here are `"conv"`,
`"depthwise"`, `"pointwise"` and `"linear"`; they differ a lot in time per MAC, so one law for all
would be poor.

- `fit_predictor(rows)`: for **each kind apart**, the ordinary least-squares fit of
  `time ≈ o + a * mmacs + b * mbytes` on that kind's rows (an intercept: a per-call overhead).
  Return the coefficients in any form you like (for example `{kind: (o, a, b)}`).
- `predict(coeffs, features)`: a network's predicted time, the **sum** over its layers (dicts with
  `"kind"`, `"mmacs"`, `"mbytes"`) of their kind's law.
"""),
        answer("ps9_answer_predictor", """
def fit_predictor(rows):
    \"\"\"{kind: (o, a, b)}: least squares of time on [1, mmacs, mbytes], one fit per kind.\"\"\"
    ### BEGIN SOLUTION
    coeffs = {}
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        a = np.array([[1.0, r["mmacs"], r["mbytes"]] for r in mine])
        y = np.array([r["time"] for r in mine])
        coeffs[kind] = tuple(float(c) for c in np.linalg.lstsq(a, y, rcond=None)[0])
    return coeffs
    ### END SOLUTION


def predict(coeffs, features):
    \"\"\"A network's predicted time: the sum of its layers' predictions.\"\"\"
    ### BEGIN SOLUTION
    total = 0.0
    for f in features:
        o, a, b = coeffs[f["kind"]]
        total += o + a * f["mmacs"] + b * f["mbytes"]
    return total
    ### END SOLUTION
"""),
        tests("ps9_predictor", 3,
              "Is the predictor an ordinary least-squares fit per kind, summed over a network's layers?",
              """
law = {"conv": (0.1, 1.0, 0.5), "depthwise": (0.2, 3.0, 0.1)}
rows = [{"kind": k, "mmacs": m, "mbytes": b, "time": law[k][0] + law[k][1] * m + law[k][2] * b}
        for k in law for m, b in [(1.0, 0.5), (2.0, 0.3), (0.5, 1.0), (3.0, 2.0)]]
coeffs = fit_predictor(rows)
net = [{"kind": "conv", "mmacs": 1.5, "mbytes": 0.4}, {"kind": "depthwise", "mmacs": 0.2, "mbytes": 0.6}]
want = (0.1 + 1.5 + 0.2) + (0.2 + 0.6 + 0.06)
assert abs(predict(coeffs, net) - want) < 1e-9, f"exact data: the fit recovers each law; expected {want}"
""", f"{GRADER}.check_predictor(fit_predictor, predict)"),
        md("""
## 3. nn-Meter's metric

`within_10_percent(predicted, measured)`: the share (a number between 0 and 1; a Python float, a
numpy float or a one-element array or tensor will do) of networks whose prediction is within ±10% of the
measured time: $|\\text{predicted} - \\text{measured}| / \\text{measured} \\le 0.1$. The error is
relative to the **measured** time. A prediction exactly 10% off is inside. In floating point,
`abs(1.1 - 1.0) / 1.0` is a hair above 0.1, so the grader's cases on the boundary are ones where every
correct way of writing the test gives exactly 10% (a prediction of 9 for a measured 10, 36 for 40);
its other cases keep at least 0.1% of the measured time away from the boundary.
"""),
        answer("ps9_answer_metric", """
def within_10_percent(predicted, measured):
    \"\"\"Share of networks with |predicted - measured| / measured <= 0.1.\"\"\"
    ### BEGIN SOLUTION
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    return float(np.mean(np.abs(p - m) / m <= 0.1))
    ### END SOLUTION
"""),
        tests("ps9_metric", 1, "Is the metric the share within 10% of the measured time?", """
assert within_10_percent([1.05, 2.0, 5.0, 0.5], [1.0, 2.0, 4.0, 1.0]) == 0.5
""", f"{GRADER}.check_metric(within_10_percent)"),
        md("""
## 4. Score on held-out networks

A *device* gives you: `device.layers(net)` (the layer functions of network `net`, for
`measure_layers`), `device.features(net)` (one dict per layer: kind, mmacs, mbytes, in the same
order), `device.network(net)` (a function running the whole network), `device.reference` and
`device.clock`.

`holdout_score(device, train, test, *, warmup=2, repeats=7)`:

1. measure the layers of every network in `train` (with your `measure_layers`, the device's
   reference and clock, and the `warmup` and `repeats` you were given: pass both on to every
   `measure_layers` call, here and in step 3) and make the rows;
2. fit the predictor on those rows **only**: the networks of `test` are held out, never seen by the fit;
3. for every network of `test`, predict its time from its features, and measure it **whole**
   (`measure_layers([device.network(net)], ...)`: a network is more than the sum of its layers);
4. return `{"predicted": [...], "measured": [...], "score": within_10_percent(predicted, measured)}`,
   in the order of `test`.

The grader checks `holdout_score` with its own (correct) `measure_layers`, `fit_predictor`,
`predict` and `within_10_percent` in place of yours, so a mistake in one of those costs that
function's own cell, not this one: call them by these names.
"""),
        answer("ps9_answer_holdout", """
def holdout_score(device, train, test, *, warmup=2, repeats=7):
    \"\"\"Fit on the train networks' layers, predict and measure the held-out ones, score them.\"\"\"
    ### BEGIN SOLUTION
    rows = []
    for net in train:
        times = measure_layers(device.layers(net), device.reference, warmup=warmup, repeats=repeats,
                               clock=device.clock)
        rows += [{**f, "time": t} for f, t in zip(device.features(net), times)]
    coeffs = fit_predictor(rows)
    predicted = [predict(coeffs, device.features(net)) for net in test]
    measured = [measure_layers([device.network(net)], device.reference, warmup=warmup, repeats=repeats,
                               clock=device.clock)[0] for net in test]
    return {"predicted": predicted, "measured": measured, "score": within_10_percent(predicted, measured)}
    ### END SOLUTION
"""),
        tests("ps9_holdout", 3,
              "Is the predictor fitted on the training networks only, and scored on held-out networks measured whole?",
              """
class Tiny:
    # four fake networks of one "pointwise" layer each; every call advances the fake clock t
    def __init__(self):
        self.clock, self.reference = (lambda: t[0]), spend(1.0)
        self.sizes = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    def features(self, net):
        return [{"kind": "pointwise", "mmacs": self.sizes[net], "mbytes": self.sizes[net] ** 2}]
    def layers(self, net):
        return [spend(0.5 + self.sizes[net])]
    def network(self, net):
        return spend(0.5 + self.sizes[net])
res = holdout_score(Tiny(), ["a", "b", "c"], ["d"])
assert {"predicted", "measured", "score"} <= set(res), "return a dict with 'predicted', 'measured' and 'score'"
assert len(res["predicted"]) == len(res["measured"]) == 1, "one prediction and one measurement per held-out network"
assert abs(res["measured"][0] - 4.5) < 1e-9, f"network d run whole takes 4.5 reference units, got {res['measured']}"
assert res["score"] == within_10_percent(res["predicted"], res["measured"]), "score: within_10_percent of your lists"
""", f"{GRADER}.check_holdout(holdout_score)"),
        md("""
## 5. On this machine

`TorchDevice` below is a real device: twelve small convolutional networks timed on this CPU
with `time.perf_counter`. The cell after it fits on eight and scores on the other four. The grader
runs the same on its machine and checks the method only: the measured times in units of the
reference block, a score that is the share your own lists give. It never grades how fast the
machine is, nor how high the score is (a 2-core machine shared with others is noisy), and it
checks that no layer of a held-out network was measured and that each held-out network was
timed interleaved with the reference. Compare your score with the ones
nn-Meter reports for real devices.
"""),
        readonly("ps9_torch_device", TORCH_DEVICE_SRC + """


TRAIN = [f"net{i}" for i in range(8)]
TEST = [f"net{i}" for i in range(8, 12)]
"""),
        tests("ps9_real", 2, "On this machine: held-out networks never measured layer by layer, measured times in reference units?",
              """
real = holdout_score(TorchDevice(seed=0), TRAIN, TEST)
for p, m in zip(real["predicted"], real["measured"]):
    print(f"predicted {p:6.2f}   measured {m:6.2f}   (reference units)")
print(f"within +-10%: {real['score']:.0%} of {len(TEST)} held-out networks")
assert len(real["predicted"]) == len(real["measured"]) == len(TEST), "one prediction and one measurement per network"
""", f"{GRADER}.check_real(holdout_score)"),
        md("""
## 6. A network under a latency budget

`pick_under_budget(candidates, predict, budget)`: `candidates` is a list of dicts with `"name"`,
`"accuracy"` and `"features"`; `predict(features)` gives a candidate's predicted latency. Return
the **name** of the most accurate candidate whose predicted latency is **at most** `budget` (a
budget met exactly is met); between equally accurate ones, the faster; `None` when no candidate
fits. (The grader passes its own `predict`.)
"""),
        answer("ps9_answer_pick", """
def pick_under_budget(candidates, predict, budget):
    \"\"\"The name of the most accurate candidate with predicted latency <= budget, or None.\"\"\"
    ### BEGIN SOLUTION
    best = None
    for c in candidates:
        latency = predict(c["features"])
        if latency <= budget and (best is None or (c["accuracy"], -latency) > (best[0], -best[1])):
            best = (c["accuracy"], latency, c["name"])
    return None if best is None else best[2]
    ### END SOLUTION
"""),
        tests("ps9_pick", 2, "Is the pick the most accurate candidate within the budget, or None when none fits?", """
cands = [{"name": "small", "accuracy": 0.6, "features": [1.0]}, {"name": "large", "accuracy": 0.9, "features": [9.0]}]
assert pick_under_budget(cands, sum, 2.0) == "small"
assert pick_under_budget(cands, sum, 0.5) is None
""", f"{GRADER}.check_pick(pick_under_budget)"),
        md("You are done when *Restart & Run All* runs without errors."),
    ]


def _reference_src():
    """The solution's helper functions and holdout_score, as the answer cells hold them (markers removed)."""
    keep = ("ps9_answer_measure", "ps9_answer_predictor", "ps9_answer_metric", "ps9_answer_holdout")
    parts = ["import time\n\nimport numpy as np"]
    for c in cells(None):
        if c is not None and c.metadata.get("nbgrader", {}).get("grade_id") in keep:
            parts.append("\n".join(line for line in c.source.split("\n")
                                   if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")))
    return "\n\n\n".join(parts)


assert CHECKS.count("REFERENCE_SRC = None") == 1
CHECKS = CHECKS.replace("REFERENCE_SRC = None", f"REFERENCE_SRC = {_reference_src()!r}")
assert "'''" not in CHECKS
