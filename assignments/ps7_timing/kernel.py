"""ps7_timing's probes: trusted helpers that run where the learner's code runs (the kernel).

The hidden checks (assignments/ps7_timing/checks.py) place this file's text in the kernel with
``kernel_define`` and drive the learner's functions with it; what the probes record comes back as
plain data (numbers, strings, lists) and the verdict is computed in the grader. The grader also
runs the same fake device itself to compute the references (the checks import it: the loader makes
it a private module there). It must stay self-contained, since it is defined in the kernel from its
text alone: it imports what it uses inside its functions, never from assignments/.

- ``Line`` is a fake machine: a clock that only moves when a fake function spends time, a ``sync``
  that lands queued (asynchronous) work on the clock, and a log of which function ran, in order.
- ``Fake`` is a function on a Line whose i-th call costs ``durations[i]`` seconds (the last entry
  repeats): warm-up cost, outliers and noise are known exactly, so the right answer is too.
- ``spy_speedup`` runs the learner's ``measure_speedup`` with its ``compare`` watched: which
  convolutions each timed function runs, whether autograd records them, and what compare returned.
"""


class Line:
    """A fake machine's time line: ``clock()``, ``sync()`` and the order in which functions ran."""

    def __init__(self, asynchronous=False):
        self.t, self.pending, self.asynchronous = 0.0, 0.0, bool(asynchronous)
        self.log = []  # names of the fake functions, one entry per call

    def sync(self):
        self.t, self.pending = self.t + self.pending, 0.0

    def clock(self):
        return self.t


class Fake:
    """A function whose i-th call costs durations[i] seconds on ``line`` (its own Line if None).

    On an asynchronous line the work is only queued and lands on the clock at the next sync (like
    a CUDA stream). ``sync`` and ``clock`` are the line's, so a Fake can stand for a whole device.
    """

    def __init__(self, durations, asynchronous=False, line=None, name="f"):
        self.durations = [float(d) for d in durations]
        self.line = Line(asynchronous) if line is None else line
        self.name, self.calls = name, 0

    def fn(self):
        d = self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1
        self.line.log.append(self.name)
        if self.line.asynchronous:
            self.line.pending += d
        else:
            self.line.t += d

    def sync(self):
        self.line.sync()

    def clock(self):
        return self.line.clock()

    @property
    def log(self):
        return list(self.line.log)


def _number(v):
    try:
        return float(v)
    except Exception:  # the learner's value is not a number: say what it was
        return type(v).__name__


def spy_speedup(measure_speedup):
    """Run ``measure_speedup()`` with its global ``compare`` watched; return what was seen, as data.

    {"raised": "Name: message" or None, "result": {key: float or type name} or a type name,
     "calls": [{"raised", "result", "warmup", "a", "b"} per compare call]} where "a" and "b" record,
    for the two timed functions, how often they ran, each distinct convolution they ran (input,
    weight and output shapes, with or without a bias) and whether any output carried autograd
    history (an output that requires grad).
    """
    import inspect
    import torch
    from torch.overrides import TorchFunctionMode

    keys = ("ratio", "ci_low", "ci_high", "mac_ratio")
    try:  # a decorated function (@torch.no_grad()) looks compare up in the globals of the one it wraps
        inner = inspect.unwrap(measure_speedup)
    except ValueError:
        inner = measure_speedup
    g = getattr(inner, "__globals__", None)
    if not isinstance(g, dict) or not callable(g.get("compare")):
        return {"raised": None, "result": None, "calls": None}
    original = g["compare"]
    calls = []

    class Watch(TorchFunctionMode):
        def __init__(self, rec):
            super().__init__()
            self.rec = rec

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if getattr(func, "__name__", "") == "conv2d":
                x = args[0] if args else kwargs.get("input")
                w = args[1] if len(args) > 1 else kwargs.get("weight")
                b = args[2] if len(args) > 2 else kwargs.get("bias")
                if all(isinstance(t, torch.Tensor) for t in (x, w, out)):
                    conv = [list(x.shape), list(w.shape), list(out.shape), b is not None]
                    if conv not in self.rec["convs"]:
                        self.rec["convs"].append(conv)
            if isinstance(out, torch.Tensor) and out.requires_grad:
                self.rec["graph"] = True
            return out

    def watched(fn, rec):
        def timed(*args, **kwargs):
            rec["calls"] += 1
            with Watch(rec):
                return fn(*args, **kwargs)
        return timed

    def compare_spy(fn_a, fn_b, *args, **kwargs):
        rec = {"raised": None, "result": None, "warmup": _number(kwargs["warmup"]) if "warmup" in kwargs else None,
               "a": {"calls": 0, "convs": [], "graph": False}, "b": {"calls": 0, "convs": [], "graph": False}}
        calls.append(rec)
        try:
            out = original(watched(fn_a, rec["a"]), watched(fn_b, rec["b"]), *args, **kwargs)
        except Exception as exc:
            rec["raised"] = f"{type(exc).__name__}: {exc}"[:300]
            raise
        if isinstance(out, dict):
            rec["result"] = {k: _number(out[k]) for k in keys[:3] if k in out}
        return out

    g["compare"] = compare_spy
    try:
        try:
            res = measure_speedup()
        except Exception as exc:
            return {"raised": f"{type(exc).__name__}: {exc}"[:300], "result": None, "calls": calls}
    finally:
        g["compare"] = original
    result = {k: _number(res[k]) for k in keys if k in res} if isinstance(res, dict) else type(res).__name__
    return {"raised": None, "result": result, "calls": calls}
