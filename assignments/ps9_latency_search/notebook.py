"""ps9_latency_search: a layer-wise latency predictor from measurements, scored with nn-Meter's
+-10% accuracy on held-out networks, then used to pick a network under a latency budget.

The hidden checks judge the method, never the machine's speed: the learner's functions run on fake
devices (assignments/ps9_latency_search/kernel.py) whose every call costs a known time, with slow
first calls, outliers and a machine speed that drifts in steps. A layer's time normalised by the
reference block measured beside it is then known exactly, and so are the coefficients a per-kind
fit recovers, the predictions for held-out networks, the measured whole networks and the score.
The real-machine part is graded for its method only (normalised units, a score that is the share
its own lists give), never for a time or a score value.

The notebook in percent format, one cell per ``# %%`` header (assignments/build.py documents them):
explanations, the reference answers (between ``### BEGIN/END SOLUTION``), visible self-checks and the
hidden check each tests cell calls (assignments/ps9_latency_search/checks.py). The cells marked ``reference``
are the solution's helpers a learner's function runs with in the hidden checks (assignments/build.py, ``texts``).
"""


# %% [markdown]
# # Problem set 9: a latency predictor and a network under a budget
#
# MACs do not give latency: a depthwise convolution does few MACs and still costs time, every
# layer has a fixed overhead, and memory traffic matters. nn-Meter (Zhang et al., MobiSys 2021)
# predicts a network's latency as the sum of per-layer predictions, each from a model fitted per
# kind of layer on measured layers, and scores a predictor by its **±10% accuracy**: the share of
# held-out networks whose predicted latency is within 10% of the measured one. You will build
# such a predictor from measurements you take, score it on networks it was not fitted on, and use
# it to pick a network under a latency budget.
#
# A shared machine changes speed while you measure. So every time here is **normalised**: each
# layer is timed interleaved with a fixed reference block and reported in units of that block,
# which cancels the machine's drift. The grader checks your *method* on fake devices whose every
# call costs a known time (with slow first calls, outliers and a drifting speed), never how fast
# your machine is.
#
# **Rules.** Write code only where it says `YOUR CODE HERE`; do not import or call `mnlib` (or
# `timeit`) in your answers: the grader watches every call your code makes into either, and a
# check that catches one scores 0. Time with the `clock` you are given; the fake devices' functions,
# like a real layer, tell you nothing but how long they take when you call them.


# %% setup
from assignments.ps9_latency_search import checks as _ps_grader  # the build writes the setup cell here


# %% readonly ps9_imports reference
import math
import time
import numpy as np
import torch


# %% [markdown]
# ## 1. `measure_layers`: normalised per-layer times
#
# `measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter)`: `calls` is a
# list of functions without arguments (each runs one layer on its input); `reference()` runs the
# reference block.
#
# 1. warm up: call `reference()` `warmup` times, and each layer `warmup` times before timing it
#    (first calls are slow: caches, lazy initialisation), without timing these calls;
# 2. for each layer, `repeats` rounds; in each round time one call of the layer and one call of the
#    reference, right after each other (read `clock()` before and after each call), and keep the
#    ratio $r_i = t_\text{layer} / t_\text{ref}$ of that round (which of the two runs first does not
#    matter, and may change from round to round: what counts is that they run right beside each other);
# 3. the layer's normalised time is the **median** of its $r_i$. Return the list of these, one per layer.
#
# The ratio of the same round cancels a change of the machine's speed between rounds; the median
# ignores a round spoilt by an outlier. Use only the `clock` you are given.


# %% answer ps9_answer_measure reference
def measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter):
    """For each layer, the median over rounds of time(layer) / time(reference), timed interleaved."""
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


# %% tests ps9_measure_warmup points=2
"""Are the layers and the reference warmed up before timing, each layer called warmup + repeats times?"""
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
### BEGIN HIDDEN TESTS
_ps_grader.check_measure_warmup(measure_layers)
### END HIDDEN TESTS


# %% tests ps9_measure_median points=2
"""Is a layer's normalised time the median of its per-round ratios, which one outlier cannot move?"""
costs = iter([3.0, 3.0, 300.0, 3.0, 3.0])
res = measure_layers([lambda: spend(next(costs))()], spend(1.0), warmup=0, repeats=5, clock=lambda: t[0])
assert res == [3.0], f"one slow round must not move the median: expected [3.0], got {res}"
### BEGIN HIDDEN TESTS
_ps_grader.check_measure_median(measure_layers)
### END HIDDEN TESTS


# %% tests ps9_measure_reference points=2
"""Is every round's layer time divided by the reference time of the same round (drift cancels)?"""
n = [0]
def drifting(seconds):
    def call():
        t[0] += seconds * 1.5 ** (n[0] // 2)  # the machine slows down after every second call
        n[0] += 1
    return call
res = measure_layers([drifting(2.0)], drifting(1.0), warmup=0, repeats=3, clock=lambda: t[0])
assert abs(res[0] - 2.0) < 1e-9, f"in every round the layer takes twice the reference: expected [2.0], got {res}"
### BEGIN HIDDEN TESTS
_ps_grader.check_measure_reference(measure_layers)
### END HIDDEN TESTS


# %% [markdown]
# ## 2. A per-kind predictor
#
# A *row* describes one measured layer: `{"kind": ..., "mmacs": ..., "mbytes": ..., "time": ...}`
# (its kind, millions of MACs, megabytes it moves, normalised time). The kinds here are `"conv"`,
# `"depthwise"`, `"pointwise"` and `"linear"`; they differ a lot in time per MAC, so one law for all
# would be poor.
#
# - `fit_predictor(rows)`: for **each kind apart**, the ordinary least-squares fit of
#   `time ≈ o + a * mmacs + b * mbytes` on that kind's rows (an intercept: a per-call overhead).
#   Return the coefficients in any form you like (for example `{kind: (o, a, b)}`).
# - `predict(coeffs, features)`: a network's predicted time, the **sum** over its layers (dicts with
#   `"kind"`, `"mmacs"`, `"mbytes"`) of their kind's law.


# %% answer ps9_answer_predictor reference
def fit_predictor(rows):
    """{kind: (o, a, b)}: least squares of time on [1, mmacs, mbytes], one fit per kind."""
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
    """A network's predicted time: the sum of its layers' predictions."""
    ### BEGIN SOLUTION
    total = 0.0
    for f in features:
        o, a, b = coeffs[f["kind"]]
        total += o + a * f["mmacs"] + b * f["mbytes"]
    return total
    ### END SOLUTION


# %% tests ps9_predictor points=3
"""Is the predictor an ordinary least-squares fit per kind, summed over a network's layers?"""
law = {"conv": (0.1, 1.0, 0.5), "depthwise": (0.2, 3.0, 0.1)}
rows = [{"kind": k, "mmacs": m, "mbytes": b, "time": law[k][0] + law[k][1] * m + law[k][2] * b}
        for k in law for m, b in [(1.0, 0.5), (2.0, 0.3), (0.5, 1.0), (3.0, 2.0)]]
coeffs = fit_predictor(rows)
net = [{"kind": "conv", "mmacs": 1.5, "mbytes": 0.4}, {"kind": "depthwise", "mmacs": 0.2, "mbytes": 0.6}]
want = (0.1 + 1.5 + 0.2) + (0.2 + 0.6 + 0.06)
assert abs(predict(coeffs, net) - want) < 1e-9, f"exact data: the fit recovers each law; expected {want}"
### BEGIN HIDDEN TESTS
_ps_grader.check_predictor(fit_predictor, predict)
### END HIDDEN TESTS


# %% [markdown]
# ## 3. nn-Meter's metric
#
# `within_10_percent(predicted, measured)`: the share (a number between 0 and 1; a Python float, a
# numpy float or a one-element array or tensor will do) of networks whose prediction is within ±10% of the
# measured time: $|\text{predicted} - \text{measured}| / \text{measured} \le 0.1$. The error is
# relative to the **measured** time. A prediction exactly 10% off is inside. In floating point,
# `abs(1.1 - 1.0) / 1.0` is a hair above 0.1, so the grader's cases on the boundary are ones where every
# correct way of writing the test gives exactly 10% (a prediction of 9 for a measured 10, 36 for 40);
# its other cases keep at least 0.1% of the measured time away from the boundary.


# %% answer ps9_answer_metric reference
def within_10_percent(predicted, measured):
    """Share of networks with |predicted - measured| / measured <= 0.1."""
    ### BEGIN SOLUTION
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    return float(np.mean(np.abs(p - m) / m <= 0.1))
    ### END SOLUTION


# %% tests ps9_metric points=1
"""Is the metric the share within 10% of the measured time?"""
assert within_10_percent([1.05, 2.0, 5.0, 0.5], [1.0, 2.0, 4.0, 1.0]) == 0.5
### BEGIN HIDDEN TESTS
_ps_grader.check_metric(within_10_percent)
### END HIDDEN TESTS


# %% [markdown]
# ## 4. Score on held-out networks
#
# A *device* gives you: `device.layers(net)` (the layer functions of network `net`, for
# `measure_layers`), `device.features(net)` (one dict per layer: kind, mmacs, mbytes, in the same
# order), `device.network(net)` (a function running the whole network), `device.reference` and
# `device.clock`.
#
# `holdout_score(device, train, test, *, warmup=2, repeats=7)`:
#
# 1. measure the layers of every network in `train` (with your `measure_layers`, the device's
#    reference and clock, and the `warmup` and `repeats` you were given: pass both on to every
#    `measure_layers` call, here and in step 3) and make the rows;
# 2. fit the predictor on those rows **only**: the networks of `test` are held out, never seen by the fit;
# 3. for every network of `test`, predict its time from its features, and measure it **whole**
#    (`measure_layers([device.network(net)], ...)`: a network is more than the sum of its layers);
# 4. return `{"predicted": [...], "measured": [...], "score": within_10_percent(predicted, measured)}`,
#    in the order of `test`.
#
# The grader checks `holdout_score` with its own (correct) `measure_layers`, `fit_predictor`,
# `predict` and `within_10_percent` in place of yours, so a mistake in one of those costs that
# function's own cell, not this one: call them by these names.


# %% answer ps9_answer_holdout reference
def holdout_score(device, train, test, *, warmup=2, repeats=7):
    """Fit on the train networks' layers, predict and measure the held-out ones, score them."""
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


# %% tests ps9_holdout points=3
"""Is the predictor fitted on the training networks only, and scored on held-out networks measured whole?"""
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
### BEGIN HIDDEN TESTS
_ps_grader.check_holdout(holdout_score)
### END HIDDEN TESTS


# %% [markdown]
# ## 5. On this machine
#
# `TorchDevice` below is a real device: twelve small convolutional networks timed on this CPU
# with `time.perf_counter`. The cell after it fits on eight and scores on the other four. The grader
# runs the same on its machine and checks the method only: the measured times in units of the
# reference block, a score that is the share your own lists give. It never grades how fast the
# machine is, nor how high the score is (a 2-core machine shared with others is noisy), and it
# checks that no layer of a held-out network was measured and that each held-out network was
# timed interleaved with the reference. Compare your score with the ones
# nn-Meter reports for real devices.


# %% readonly ps9_torch_device
from assignments.ps9_latency_search.kernel import TorchDevice  # pasted by the build


TRAIN = [f"net{i}" for i in range(8)]
TEST = [f"net{i}" for i in range(8, 12)]


# %% tests ps9_real points=2
"""On this machine: held-out networks never measured layer by layer, measured times in reference units?"""
real = holdout_score(TorchDevice(seed=0), TRAIN, TEST)
for p, m in zip(real["predicted"], real["measured"]):
    print(f"predicted {p:6.2f}   measured {m:6.2f}   (reference units)")
print(f"within +-10%: {real['score']:.0%} of {len(TEST)} held-out networks")
assert len(real["predicted"]) == len(real["measured"]) == len(TEST), "one prediction and one measurement per network"
### BEGIN HIDDEN TESTS
_ps_grader.check_real(holdout_score)
### END HIDDEN TESTS


# %% [markdown]
# ## 6. A network under a latency budget
#
# `pick_under_budget(candidates, predict, budget)`: `candidates` is a list of dicts with `"name"`,
# `"accuracy"` and `"features"`; `predict(features)` gives a candidate's predicted latency. Return
# the **name** of the most accurate candidate whose predicted latency is **at most** `budget` (a
# budget met exactly is met); between equally accurate ones, the faster; `None` when no candidate
# fits. (The grader passes its own `predict`.)


# %% answer ps9_answer_pick
def pick_under_budget(candidates, predict, budget):
    """The name of the most accurate candidate with predicted latency <= budget, or None."""
    ### BEGIN SOLUTION
    best = None
    for c in candidates:
        latency = predict(c["features"])
        if latency <= budget and (best is None or (c["accuracy"], -latency) > (best[0], -best[1])):
            best = (c["accuracy"], latency, c["name"])
    return None if best is None else best[2]
    ### END SOLUTION


# %% tests ps9_pick points=2
"""Is the pick the most accurate candidate within the budget, or None when none fits?"""
cands = [{"name": "small", "accuracy": 0.6, "features": [1.0]}, {"name": "large", "accuracy": 0.9, "features": [9.0]}]
assert pick_under_budget(cands, sum, 2.0) == "small"
assert pick_under_budget(cands, sum, 0.5) is None
### BEGIN HIDDEN TESTS
_ps_grader.check_pick(pick_under_budget)
### END HIDDEN TESTS


# %% [markdown]
# You are done when *Restart & Run All* runs without errors.
