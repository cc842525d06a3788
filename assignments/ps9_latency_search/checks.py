"""ps9_latency_search's hidden checks: measure_layers (warm-up, interleaving with the reference block,
the median of normalised times), the per-kind predictor, nn-Meter's +-10% metric, holdout_score and
pick_under_budget, judged on fake devices whose every call costs a known time
(assignments/ps9_latency_search/kernel.py), and the real-machine part for its method only.

holdout_score is run with the solution's measure_layers, fit_predictor, predict and within_10_percent
in place of the learner's (the module ``reference``, the answer cells marked ``reference`` in
notebook.py), so a mistake in one of them costs its own cell only.

Run in the grader's private namespace (assignments/loader.py); the references are computed here,
when the setup cell runs, before any answer cell.
"""
import math

import numpy as np

from assignments.ps9_latency_search import kernel, reference
from assignments.ps9_latency_search.kernel import FakeDevice, run_holdout  # here: the true costs of the fake networks
from assignments.toolkit import Guard, isclose, kernel_define, kind, need, off_by, scan

RUNS_IN_GRADER = True  # the autograder runs these checks in its own process (autograder/remote.py)

guard = Guard(["timing.py", "latency.py", "roofline.py", "cost.py"])

# The solution's measure_layers, fit_predictor, predict and within_10_percent: a check of holdout_score
# runs it with these in place of the learner's, so a mistake in one of them costs its own cell only.
REFERENCE_SRC = reference.__loader__.get_source(reference.__name__)  # the text the kernel runs
# the runners where the learner's code runs (in the kernel when the grader runs these checks)
RUN_MEASURE, RUN_PREDICTOR, RUN_METRIC, RUN_HOLDOUT, RUN_PICK, RUN_REAL = (
    kernel_define(kernel, n) for n in
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
for _spec, _kw in ((HOLD_SPEC, {}), (HOLD_SPEC_KW, HOLD_KWARGS)):  # the cases are built so that the solution gets them exactly
    _res = run_holdout(reference.holdout_score, _spec, HOLD_TRAIN, HOLD_TEST, _kw)
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
