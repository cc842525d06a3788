"""ps9_latency_search's devices: trusted helpers that run where the learner's code runs (the kernel).

The hidden checks (CHECKS in ps9_latency_search_src.py) place this file's text in the kernel with
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


class Call:
    """A fake function on ``machine`` that costs ``seconds`` (at speed 1) per call."""

    def __init__(self, machine, seconds, name):
        self.machine, self.seconds, self.name, self.n = machine, float(seconds), name, 0

    def __call__(self, *args, **kwargs):
        self.machine.spend(self.seconds, self.n, self.name)
        self.n += 1


REF_SECONDS = 0.002  # the reference block's cost at speed 1: normalised times are in these units


class FakeDevice:
    """Fake networks: nets = {name: [(kind, mmacs, mbytes), ...]}, law = {kind: (o, a, b)} in reference
    units; layer_factor / whole_factor = {name: factor} (1 when absent)."""

    def __init__(self, nets, law, layer_factor=None, whole_factor=None, **machine):
        self.machine = Machine(**machine)
        self.nets, self.law = {k: [tuple(r) for r in v] for k, v in nets.items()}, dict(law)
        self.layer_factor, self.whole_factor = dict(layer_factor or {}), dict(whole_factor or {})
        self.reference = Call(self.machine, REF_SECONDS, "ref")
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
        return [Call(self.machine, self.cost(net, i) * REF_SECONDS, f"{net}/{i}") for i in range(len(self.nets[net]))]

    def network(self, net):
        self.asked.append(("network", net))
        return Call(self.machine, self.whole_cost(net) * REF_SECONDS, f"{net}")

    def features(self, net):
        return [{"kind": k, "mmacs": m, "mbytes": b} for k, m, b in self.nets[net]]


def _number(v):
    """A float from a Python or numpy number or a one-element float tensor; else the type's name."""
    import numbers
    if isinstance(v, bool):
        return type(v).__name__
    if isinstance(v, numbers.Real):
        return float(v)
    try:
        import torch
        if isinstance(v, torch.Tensor) and v.numel() == 1 and v.dtype.is_floating_point:
            return float(v)
    except ImportError:
        pass
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


def run_measure(measure_layers, costs, warmup, repeats, machine):
    """measure_layers on fake layers costing ``costs`` reference units: what it returned, how often each
    layer ran, and the call log (layer indices and "ref", in order)."""
    m = Machine(**machine)
    ref = Call(m, REF_SECONDS, "ref")
    calls = [Call(m, c * REF_SECONDS, str(i)) for i, c in enumerate(costs)]
    out = measure_layers(calls, ref, warmup=warmup, repeats=repeats, clock=m.clock)
    return {"result": _numbers(out), "calls": [c.n for c in calls], "log": list(m.log)}


def run_holdout(holdout_score, spec, train, test):
    """holdout_score on a FakeDevice(**spec): its dict as data, and which nets it asked for."""
    dev = FakeDevice(**spec)
    out = holdout_score(dev, list(train), list(test))
    if not isinstance(out, dict):
        return {"type": type(out).__name__}
    res = {"type": "dict", "asked": list(dev.asked)}
    for key in ("predicted", "measured"):
        res[key] = _numbers(out[key]) if key in out else None
    res["score"] = _number(out["score"]) if "score" in out else None
    return res


def run_predictor(fit_predictor, predict, rows, nets):
    """fit_predictor(rows), then predict(coeffs, features) for each network: the predictions as data."""
    coeffs = fit_predictor([dict(r) for r in rows])
    return [_number(predict(coeffs, [dict(f) for f in net])) for net in nets]


def run_metric(within_10_percent, cases):
    """within_10_percent(predicted, measured) for each (predicted, measured, _) case, as data."""
    return [_number(within_10_percent(list(p), list(m))) for p, m, _ in cases]


def run_real(holdout_score, seed, train, test):
    """holdout_score on TorchDevice(seed): its dict as data."""
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
    out = holdout_score(dev, list(train), list(test))
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
    got = pick_under_budget([dict(c) for c in candidates], fake_predict, budget)
    return got if got is None or isinstance(got, str) else type(got).__name__


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
