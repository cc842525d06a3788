"""ps9_latency_search's devices: trusted helpers that run where the learner's code runs (the kernel).

The hidden checks (assignments/ps9_latency_search/checks.py) place this file's text in the kernel with
``kernel_define`` and drive the learner's functions with it; what the runners return is plain data
(numbers, strings, lists, dicts) and the verdict is computed in the grader.

- ``Machine`` is a fake machine: a clock that only moves when a fake call spends time, a speed that
  drifts in steps (every ``segment`` seconds of its time it runs at the next of ``speeds``), a slow
  outlier on the calls of every layer (never the reference) whose number is in ``slow_calls`` (counted
  per function from 0, so whatever order a learner calls them in, each layer has the same slow rounds),
  and ``cold`` slow first calls of every function.
  A layer's cost is known exactly, so is its time normalised by the reference block: in a round
  where the layer and the reference run at the same speed, t_layer / t_ref is exactly
  cost(layer) / cost(reference), and the cases are built so that at most a minority of the rounds
  of any measurement are spoilt (an outlier, a speed step between the two calls of a round).
- ``FakeDevice`` is a set of fake networks on a Machine with the interface of ``TorchDevice``:
  ``layers(net)``, ``network(net)``, ``features(net)``, ``reference`` and ``clock``. A layer of kind
  k costs (o_k + a_k MMAC + b_k MB) reference units, times a per-network factor (1 on the networks a
  predictor is fitted on; others differ, as real networks do); a whole network costs the sum of its
  layers times another per-network factor (fusion, caches).
- ``TorchDevice`` is the real device of the notebook's last part: small convolutional networks
  timed with time.perf_counter. The notebook shows learners the same class in a read-only cell.
- ``run_measure`` / ``run_holdout`` / ``run_pick`` call the learner's functions on fake devices and
  return what came back, and the device's call log, as data.
"""
import torch  # TorchDevice's methods use it; in the notebook, its read-only cell finds the notebook's own


class Machine:
    """A fake machine's time line (seconds): speed steps, outliers, cold first calls, a call log."""

    def __init__(self, segment=0.0, speeds=(1.0,), slow_calls=(), outlier_factor=6.0, cold=0, cold_factor=12.0):
        self.t, self.calls, self.log = 0.0, 0, []
        self.segment, self.speeds = float(segment), [float(s) for s in speeds]
        self.slow_calls, self.outlier_factor = {int(n) for n in slow_calls}, float(outlier_factor)
        self.cold, self.cold_factor = int(cold), float(cold_factor)

    def clock(self):
        return self.t

    def speed(self):
        if self.segment <= 0:
            return self.speeds[0]
        return self.speeds[int(self.t // self.segment) % len(self.speeds)]

    def spend(self, seconds, nth_call, name):
        self.calls += 1
        d = seconds * self.speed()
        if nth_call < self.cold:
            d *= self.cold_factor
        if nth_call in self.slow_calls and name != "ref":
            d *= self.outlier_factor
        self.log.append(name)
        self.t += d

    def count(self, name):
        """How many calls of the fake function ``name`` the machine has run."""
        return sum(1 for n in self.log if n == name)


def fake_call(machine, seconds, name):
    """A fake function on ``machine`` that costs ``seconds`` (at speed 1) per call.

    It is a plain function: like a real layer it has no attribute that tells its cost, and its state
    (the machine, the cost, the calls made) lives in its closure, where the machine's counters are the
    only record of the calls (``Machine.count``).
    """
    seconds, counter = float(seconds), [0]

    def call(*args, **kwargs):
        machine.spend(seconds, counter[0], name)
        counter[0] += 1
    return call


def fake_clock(machine):
    """The machine's clock as a plain function (a bound method would hand out the machine itself)."""
    def clock():
        return machine.t
    return clock


REF_SECONDS = 0.002  # the reference block's cost at speed 1: normalised times are in these units


class FakeDevice:
    """Fake networks: nets = {name: [(kind, mmacs, mbytes), ...]}, law = {kind: (o, a, b)} in reference
    units; layer_factor / whole_factor = {name: factor} (1 when absent)."""

    def __init__(self, nets, law, layer_factor=None, whole_factor=None, **machine):
        self.machine = Machine(**machine)
        self.nets, self.law = {k: [tuple(r) for r in v] for k, v in nets.items()}, dict(law)
        self.layer_factor, self.whole_factor = dict(layer_factor or {}), dict(whole_factor or {})
        self.reference = fake_call(self.machine, REF_SECONDS, "ref")
        self.asked = []  # (what, net) for every layers() / network() request

    def clock(self):
        return self.machine.clock()

    def cost(self, net, i):
        kind, mmacs, mbytes = self.nets[net][i]
        o, a, b = self.law[kind]
        return (o + a * mmacs + b * mbytes) * self.layer_factor.get(net, 1.0)

    def whole_cost(self, net):
        return sum(self.cost(net, i) for i in range(len(self.nets[net]))) * self.whole_factor.get(net, 1.0)

    def layers(self, net):
        self.asked.append(("layers", net))
        return [fake_call(self.machine, self.cost(net, i) * REF_SECONDS, f"{net}/{i}") for i in range(len(self.nets[net]))]

    def network(self, net):
        self.asked.append(("network", net))
        return fake_call(self.machine, self.whole_cost(net) * REF_SECONDS, f"{net}")

    def features(self, net):
        return [{"kind": k, "mmacs": m, "mbytes": b} for k, m, b in self.nets[net]]

    def view(self):
        """What a learner's code is given: the device's interface and nothing else.

        A namespace of plain functions (``layers``, ``network``, ``features``, ``reference``, ``clock``):
        no attribute of it, or of what its functions return, holds the fake's costs, law or machine.
        """
        import types
        return types.SimpleNamespace(layers=lambda net: self.layers(net), network=lambda net: self.network(net),
                                     features=lambda net: self.features(net), reference=self.reference,
                                     clock=fake_clock(self.machine))


def _number(v):
    """A float from a Python or numpy number or a one-element float tensor; else the type's name."""
    import numbers
    import numpy as np
    if isinstance(v, (bool, np.bool_)):
        return type(v).__name__
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "iuf":
        return float(v.reshape(()))
    if isinstance(v, torch.Tensor) and v.numel() == 1 and v.dtype != torch.bool and not v.dtype.is_complex:
        return float(v.reshape(()).item())
    return type(v).__name__


def _numbers(v):
    """A list of floats (or type names) from a list, tuple, array or tensor; else the type's name."""
    try:
        import numpy as np
        import torch
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().tolist()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
    except ImportError:
        pass
    if isinstance(v, (list, tuple)):
        return [_number(x) for x in v]
    return type(v).__name__


FORBIDDEN_MODULES = ("timeit",)  # the notebook's rules: no mnlib (watched by the grader) and no timeit


class ForbiddenModule(Exception):
    """The learner's code called into a module the notebook's rules forbid."""


def watched(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` while a profile hook notes any call into a forbidden module (timeit),
    handing every event on to the profile hook already set (the grader's watch for mnlib)."""
    import importlib
    import sys
    paths = tuple(importlib.import_module(m).__file__ for m in FORBIDDEN_MODULES)
    hit, previous = [], sys.getprofile()

    def hook(frame, event, arg):
        if event == "call" and not hit and frame.f_code.co_filename in paths:
            hit.append(frame.f_code.co_filename.rsplit("/", 1)[-1][:-3] + "." + frame.f_code.co_name)
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(hook)
    try:
        out = fn(*args, **kwargs)
    finally:
        sys.setprofile(previous)
    if hit:
        raise ForbiddenModule(f"it called {hit[0]}: the notebook's rules forbid timeit (time with the clock "
                              "you are given)")
    return out


def swapped(fn, functions):
    """A function running ``fn`` with the names in ``functions`` bound in ``fn``'s globals to those
    functions (the reference ones), and the learner's own put back afterwards: a check of ``fn``
    then judges ``fn`` alone, and a mistake in a helper it calls is charged to the helper's own cell."""
    glb = getattr(fn, "__globals__", None)

    def run(*args, **kwargs):
        if not isinstance(glb, dict) or not functions:
            return fn(*args, **kwargs)
        missing = object()
        saved = {k: glb.get(k, missing) for k in functions}
        glb.update(functions)
        try:
            return fn(*args, **kwargs)
        finally:
            for k, v in saved.items():
                if v is missing:
                    glb.pop(k, None)
                else:
                    glb[k] = v
    return run


def references(src):
    """The reference functions (the solution's) defined from ``src``: {name: function}."""
    env = {"__name__": "grader_reference"}
    exec(src, env)
    return {k: v for k, v in env.items() if k in ("measure_layers", "fit_predictor", "predict", "within_10_percent")}


def run_measure(measure_layers, costs, warmup, repeats, machine):
    """measure_layers on fake layers costing ``costs`` reference units: what it returned, how often each
    layer ran, and the call log (layer indices and "ref", in order)."""
    m = Machine(**machine)
    ref = fake_call(m, REF_SECONDS, "ref")
    calls = [fake_call(m, c * REF_SECONDS, str(i)) for i, c in enumerate(costs)]
    kwargs = {"clock": fake_clock(m)}
    if warmup is not None:
        kwargs["warmup"] = warmup
    if repeats is not None:
        kwargs["repeats"] = repeats
    out = watched(measure_layers, calls, ref, **kwargs)
    return {"result": _numbers(out), "calls": [m.count(str(i)) for i in range(len(costs))], "log": list(m.log)}


def run_holdout(holdout_score, spec, train, test, kwargs=None, reference_src=None):
    """holdout_score on a FakeDevice(**spec) (the learner gets only its ``view``), called with ``kwargs``,
    the reference helpers from ``reference_src`` in place of the learner's: its dict as data, which nets
    it asked for, and how often each layer and whole network ran."""
    dev = FakeDevice(**spec)
    fn = swapped(holdout_score, references(reference_src) if reference_src else {})
    out = watched(fn, dev.view(), list(train), list(test), **dict(kwargs or {}))
    if not isinstance(out, dict):
        return {"type": type(out).__name__}
    runs = {name: dev.machine.count(name) for name in set(dev.machine.log) if name != "ref"}
    res = {"type": "dict", "asked": list(dev.asked), "runs": runs}
    for key in ("predicted", "measured"):
        res[key] = _numbers(out[key]) if key in out else None
    res["score"] = _number(out["score"]) if "score" in out else None
    return res


def run_predictor(fit_predictor, predict, rows, nets):
    """fit_predictor(rows), then predict(coeffs, features) for each network: the predictions as data."""
    coeffs = watched(fit_predictor, [dict(r) for r in rows])
    return [_number(watched(predict, coeffs, [dict(f) for f in net])) for net in nets]


def run_metric(within_10_percent, cases):
    """within_10_percent(predicted, measured) for each (predicted, measured, _) case, as data."""
    return [_number(watched(within_10_percent, list(p), list(m))) for p, m, _ in cases]


def run_real(holdout_score, seed, train, test, reference_src=None):
    """holdout_score on TorchDevice(seed) (the reference helpers from ``reference_src`` in place of the
    learner's): its dict as data."""
    holdout_score = swapped(holdout_score, references(reference_src) if reference_src else {})
    dev = TorchDevice(seed)
    asked, log = [], []  # the networks whose layers were asked for; every call, in order
    ref, layers, network = dev.reference, dev.layers, dev.network

    def tagged(fn, tag):
        def run(*args, **kwargs):
            log.append(tag)
            return fn(*args, **kwargs)
        return run

    dev.reference = tagged(ref, "ref")
    dev.layers = lambda net: asked.append(net) or [tagged(f, ("layer", net)) for f in layers(net)]
    dev.network = lambda net: tagged(network(net), ("network", net))
    out = watched(holdout_score, dev, list(train), list(test))
    if not isinstance(out, dict):
        return {"type": type(out).__name__}
    # for each held-out network: how many of its whole-network calls ran right beside a reference call
    beside = {net: sum(1 for i, tag in enumerate(log) if tag == ("network", net) and "ref" in log[max(i - 1, 0):i + 2])
              for net in test}
    res = {"type": "dict", "layers_of": [n if isinstance(n, str) else type(n).__name__ for n in asked],
           "beside_reference": beside}
    for key in ("predicted", "measured"):
        res[key] = _numbers(out[key]) if key in out else None
    res["score"] = _number(out["score"]) if "score" in out else None
    return res


def fake_predict(features):
    """The predictor the budget cases use: a network's latency is the sum of its layers' 'ms'."""
    return sum(f["ms"] for f in features)


def run_pick(pick_under_budget, candidates, budget):
    """pick_under_budget with fake_predict; the name it returned (or None, or the type's name)."""
    got = watched(pick_under_budget, [dict(c) for c in candidates], fake_predict, budget)
    if isinstance(got, str):
        return str.__str__(got)  # a plain str of its characters (numpy's str_ and other subclasses too)
    return got if got is None else type(got).__name__


class TorchDevice:
    """Small convolutional networks on this CPU, timed with time.perf_counter.

    net0 ... net11: a 3x3 stem, then 3x3 depthwise + 1x1 pointwise pairs (some with stride 2), a
    global pooling and a linear classifier; widths and input sizes vary with the network. Only the
    convolutions and the linear layer are timed layers (their kinds: "conv", "depthwise",
    "pointwise", "linear"); features: MMACs (millions of multiply-accumulates) and MB moved
    (input, weights and output, 4 bytes each). The reference block is one fixed 3x3 convolution.
    """

    def __init__(self, seed=0):
        import random
        import time
        from torch import nn
        self.clock = time.perf_counter
        g = torch.Generator().manual_seed(seed)
        self._nets = {}
        rng = random.Random(seed)
        for n in range(12):
            size, width = rng.choice([16, 24, 32]), rng.choice([8, 16, 24])
            mods = [nn.Conv2d(3, width, 3, padding=1, bias=False)]
            c = width
            for _ in range(rng.choice([2, 3])):
                stride, c_out = rng.choice([1, 2]), min(2 * c, rng.choice([c, 2 * c]))
                mods += [nn.Conv2d(c, c, 3, stride=stride, padding=1, groups=c, bias=False),
                         nn.Conv2d(c, c_out, 1, bias=False)]
                c = c_out
            mods.append(nn.Linear(c, 10))
            x = torch.randn(1, 3, size, size, generator=g)
            layers = []
            with torch.no_grad():
                for m in mods:
                    if isinstance(m, nn.Linear):
                        x = x.mean(dim=(2, 3))
                    y = m(x)
                    layers.append((m, x, y))
                    x = y
            self._nets[f"net{n}"] = layers
        self._ref_x = torch.randn(1, 16, 32, 32, generator=g)
        self._ref = nn.Conv2d(16, 16, 3, padding=1, bias=False)

    def _kind(self, m):
        from torch import nn
        if isinstance(m, nn.Linear):
            return "linear"
        if m.groups == m.in_channels and m.groups > 1:
            return "depthwise"
        return "pointwise" if m.kernel_size == (1, 1) else "conv"

    def names(self):
        return list(self._nets)

    def features(self, net):
        rows = []
        for m, x, y in self._nets[net]:
            weights = m.weight.numel()
            per_out = weights // (m.out_features if self._kind(m) == "linear" else m.out_channels)
            macs = y.numel() * per_out
            rows.append({"kind": self._kind(m), "mmacs": macs / 1e6,
                         "mbytes": 4 * (x.numel() + weights + y.numel()) / 1e6})
        return rows

    def layers(self, net):

        def call(m, x):
            def run():
                with torch.no_grad():
                    m(x)
            return run
        return [call(m, x) for m, x, _ in self._nets[net]]

    def network(self, net):
        layers = self._nets[net]
        x0 = layers[0][1]

        def run():
            with torch.no_grad():
                x = x0
                for m, _, _ in layers:
                    if x.dim() == 4 and m is layers[-1][0]:
                        x = x.mean(dim=(2, 3))
                    x = m(x)
        return run

    def reference(self):
        with torch.no_grad():
            self._ref(self._ref_x)
