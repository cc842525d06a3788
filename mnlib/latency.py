"""A whole-model latency model: the roofline per layer, corrected by per-kind efficiency and overhead.

For every layer i of kind k the model says

    t_i = o_k + s_k * r_i,     r_i = max(MACs_i / peak, bytes_i / bandwidth)   (the roofline time)

o_k is a fixed per-call overhead (Python dispatch, kernel set-up) and 1 / s_k the efficiency of the
kind's kernels against the roofline, both fitted by calibrate() on *isolated* layers on a synthetic
grid of shapes. A layer repeated alone finds its weights and input in cache; inside a network it does
not, so calibrate() also times random sequences of the same micro-benchmarks and fits

    T = context * (sum_i t_i + containers * o_container).

All of it is timed with mnlib.timing; the models being predicted are never run to fit it. Scope: eager PyTorch, NCHW,
the dtype and thread count of the calibration.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import cost, timing
from .layers import HardSigmoid, HardSwish
from .roofline import Machine, layer_table

# Activation modules get their own key: mnlib's hard-swish is four element-wise kernels, ReLU one.
_ACT_KEYS = {nn.ReLU: "act:relu", nn.ReLU6: "act:relu6", HardSwish: "act:hswish",
             HardSigmoid: "act:hsigmoid"}


@dataclass
class KindFit:
    """t = overhead_s + slowdown * roofline time, fitted on ``n`` micro-benchmarks of one kind."""
    overhead_s: float
    slowdown: float
    n: int
    median_rel_error: float   # of the fit on its own calibration points

    @property
    def efficiency(self) -> float:
        """Share of the roofline-attainable rate the kind's kernels reach (1 / slowdown)."""
        return 1.0 / self.slowdown if self.slowdown > 0 else float("inf")

    def predict(self, roofline_s: float) -> float:
        return self.overhead_s + self.slowdown * roofline_s


@dataclass
class Calibration:
    machine: Machine
    fits: dict[str, KindFit]
    points: list[dict] = field(default_factory=list)  # key, shape, macs, bytes, roofline_s, measured_s
    env: dict = field(default_factory=dict)
    # In a network, layers run one after another with cold caches; an isolated layer repeated in a
    # loop finds its weights and input warm. Sequences of the same micro-benchmarks give the factor:
    # context = median over sequences of t(sequence) / sum of the isolated predictions.
    context: float = 1.0

    def seconds_per_mac(self) -> float:
        """The MACs-only baseline fitted on the same micro-benchmarks: total time / total MACs."""
        pts = [p for p in self.points if p["macs"]]
        return sum(p["measured_s"] for p in pts) / sum(p["macs"] for p in pts)


def _fit2(u: np.ndarray, v: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    """Least squares on relative error of t = a u + b v, with a, b >= 0."""
    w = 1.0 / measured
    uw, vw = u * w, v * w
    (a, b), *_ = np.linalg.lstsq(np.stack([uw, vw], axis=1), np.ones_like(measured), rcond=None)
    if a >= 0 and b >= 0:
        return float(a), float(b)
    # one coefficient hits zero: the better of the two one-column fits
    a_only = float(np.sum(uw) / np.sum(uw * uw)) if np.any(uw) else 0.0
    b_only = float(np.sum(vw) / np.sum(vw * vw)) if np.any(vw) else 0.0
    err_a, err_b = np.sum((a_only * uw - 1) ** 2), np.sum((b_only * vw - 1) ** 2)
    return (a_only, 0.0) if err_a <= err_b else (0.0, b_only)


def _fit(roof: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    """(overhead o, slowdown s) of t = o + s r, with o, s >= 0."""
    return _fit2(np.ones_like(roof), roof, measured)


class _Scale(nn.Module):
    """The SE scaling x * s with s of shape (N, C, 1, 1), as SqueezeExcitation does it."""

    def forward(self, x):
        return x * x[:, :, :1, :1]


class _Add(nn.Module):
    """A residual addition of two tensors of the same shape."""

    def forward(self, x):
        return x + x


def _cases(batch: int, rng: np.random.Generator, per_kind: int):
    """(key, module, input shape) on a synthetic grid of sizes and multiple-of-8 channel counts."""
    sizes = [6, 10, 16, 24, 40, 64, 100, 128]
    chans = [16, 24, 40, 64, 96, 160, 256, 384, 640, 1024]

    def pick(options, n):
        return [options[i] for i in rng.choice(len(options), size=min(n, len(options)), replace=False)]

    grid = [(c, h) for c in chans for h in sizes if 2e3 <= c * h * h <= 1.2e6]
    out = []
    for c, h in pick(grid, per_kind):
        k, s = int(rng.choice([3, 5])), int(rng.choice([1, 2]))
        out.append(("depthwise", nn.Conv2d(c, c, k, s, k // 2, groups=c, bias=False), (batch, c, h, h)))
    pw = [(ci, co, h) for ci in chans for co in chans for h in sizes if 2e5 <= ci * co * h * h <= 6e7]
    for ci, co, h in pick(pw, per_kind):
        out.append(("pointwise", nn.Conv2d(ci, co, 1, bias=False), (batch, ci, h, h)))
    for co, h in pick([(co, h) for co in (8, 16, 24, 32, 48) for h in (64, 100, 160, 240, 300)], per_kind // 2):
        out.append(("conv", nn.Conv2d(3, co, 3, 2, 1, bias=False), (batch, 3, h, h)))
    for fi, fo in pick([(fi, fo) for fi in (256, 640, 1024, 1536) for fo in (100, 500, 1000, 1280)], per_kind // 2):
        out.append(("linear", nn.Linear(fi, fo), (batch, fi)))
    for c in pick(chans, per_kind // 2):
        out.append(("se", nn.Conv2d(c, max(8, c // 4), 1), (batch, c, 1, 1)))
    elementwise = [("bn", lambda c: nn.BatchNorm2d(c).eval()), ("act:relu", lambda c: nn.ReLU()),
                   ("act:relu6", lambda c: nn.ReLU6()), ("act:hswish", lambda c: HardSwish()),
                   ("act:hsigmoid", lambda c: HardSigmoid()), ("add", lambda c: _Add()),
                   ("scale", lambda c: _Scale()), ("pool", lambda c: nn.AdaptiveAvgPool2d(1))]
    for key, make in elementwise:
        for c, h in pick(grid, per_kind // 2):
            out.append((key, make(c), (batch, c, h, h)))
    for key, make in (("free", nn.Identity), ("container", lambda: nn.Sequential(nn.Identity()))):
        for c, h in pick(grid, 3):
            out.append((key, make(), (batch, c, h, h)))
    return out


def _roofline_s(key: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor, machine: Machine,
                dtype_bytes: int) -> tuple[int, int, float]:
    """(MACs, bytes, roofline seconds) of one micro-benchmark, with the traffic model of layer_table."""
    if key in ("free", "container"):
        return 0, 0, 0.0
    params = sum(p.numel() for p in module.parameters())
    if isinstance(module, nn.Conv2d):
        macs = y.numel() * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
    elif isinstance(module, nn.Linear):
        macs = y.numel() * module.in_features
    else:
        macs = 0
    n_in = x.numel() * (2 if key == "add" else 1) + (x.shape[0] * x.shape[1] if key == "scale" else 0)
    nbytes = (n_in + y.numel() + params) * dtype_bytes
    t = max(macs / machine.peak_macs_per_s, nbytes / machine.bandwidth_bytes_per_s)
    return macs, nbytes, t


def calibrate(machine: Machine, *, batch: int = 1, per_kind: int = 12, repeats: int = 5,
              min_sample_s: float = 0.005, seed: int = 0, clock=time.perf_counter, sequences: int = 12,
              verbose: bool = False) -> Calibration:
    """Time isolated layers of every kind on a synthetic grid and fit (overhead, slowdown) per kind.

    ``clock`` is passed to mnlib.timing.benchmark (time.process_time with one thread measures CPU
    time, which other processes on a shared machine do not inflate).
    """
    if not isinstance(machine, Machine):
        raise ValueError(f"machine must be a mnlib.roofline.Machine, got {type(machine).__name__}")
    timing._check_int("batch", batch, 1)
    timing._check_int("per_kind", per_kind, 2)
    timing._check_int("sequences", sequences, 2)
    rng = np.random.default_rng(seed)
    points, runs = [], []
    with torch.no_grad():
        for key, module, shape in _cases(batch, rng, per_kind):
            module.eval()
            x = torch.randn(shape)
            y = module(x)
            s = timing.benchmark(lambda: module(x), warmup=2, repeats=repeats, min_sample_s=min_sample_s,
                                 clock=clock)
            macs, nbytes, roof = _roofline_s(key, module, x, y, machine, 4)
            points.append(dict(key=key, shape=list(shape), macs=macs, bytes=nbytes, roofline_s=roof,
                               measured_s=s.median))
            runs.append(lambda module=module, x=x: module(x))
            if verbose:
                print(f"{key:12s} {str(list(shape)):22s} {s.median * 1e6:9.1f} us  roofline {roof * 1e6:8.1f} us")
    fits = {}
    for key in sorted({p["key"] for p in points}):
        pts = [p for p in points if p["key"] == key]
        roof = np.array([p["roofline_s"] for p in pts])
        meas = np.array([p["measured_s"] for p in pts])
        o, s = _fit(roof, meas)
        err = np.median(np.abs((o + s * roof) / meas - 1))
        fits[key] = KindFit(o, s, len(pts), float(err))
    # a container's own cost is a Sequential(Identity) call minus the Identity inside it
    if "container" in fits and "free" in fits:
        c = fits["container"]
        fits["container"] = KindFit(max(0.0, c.overhead_s - fits["free"].overhead_s), 0.0, c.n,
                                    c.median_rel_error)
    cal = Calibration(machine, fits, points, timing.environment("cpu"))
    # the same micro-benchmarks run back to back, in random subsets and orders: the in-network context
    isolated = np.array([fits[p["key"]].predict(p["roofline_s"]) for p in points])
    ratios = []
    with torch.no_grad():
        for _ in range(sequences):
            idx = rng.choice(len(runs), size=min(len(runs), int(rng.integers(20, 60))), replace=False)

            def chain(idx=idx):
                for i in idx:
                    runs[i]()
            s = timing.benchmark(chain, warmup=1, repeats=repeats, min_sample_s=min_sample_s, clock=clock)
            ratios.append(s.median / isolated[idx].sum())
    cal.context = float(np.median(ratios))  # a median: one sequence hit by a burst of load moves it little
    return cal


def _key(model: nn.Module, row) -> str:
    if row.kind == "act":
        mod = model.get_submodule(row.name)
        for cls, key in _ACT_KEYS.items():
            if type(mod) is cls:
                return key
        raise ValueError(f"no latency calibration for activation {type(mod).__name__} ({row.name})")
    return row.kind


def layer_latencies(model: nn.Module, input_size, machine: Machine,
                    calibration: Calibration) -> list[tuple[str, str, float]]:
    """(layer name, calibration key, predicted seconds) for every counted layer of ``model``."""
    out = []
    for row in layer_table(model, input_size, machine, macs_only=False):
        key = _key(model, row)
        if key not in calibration.fits:
            raise ValueError(f"the calibration has no fit for layer kind {key!r} ({row.name})")
        out.append((row.name, key, calibration.fits[key].predict(row.predicted_s)))
    # count() drops the free layers (Dropout, Flatten, Identity): each is still a module call
    for name, mod in model.named_modules():
        if isinstance(mod, cost._FREE) and not any(True for _ in mod.children()):
            out.append((name, "free", calibration.fits["free"].overhead_s))
    return out


def predict_latency(model: nn.Module, input_size, machine: Machine, calibration: Calibration) -> float:
    """Predicted seconds for one forward pass of ``model`` on zeros of ``input_size``."""
    if not isinstance(calibration, Calibration):
        raise ValueError(f"calibration must be a mnlib.latency.Calibration, got {type(calibration).__name__}")
    layers = layer_latencies(model, input_size, machine, calibration)
    containers = sum(1 for m in model.modules() if any(True for _ in m.children()))
    isolated = sum(t for _, _, t in layers) + containers * calibration.fits["container"].overhead_s
    return calibration.context * isolated


def roofline_latency(model: nn.Module, input_size, machine: Machine) -> float:
    """The plain roofline: sum of max(MACs / peak, bytes / bandwidth) over all layers, no overhead."""
    return sum(r.predicted_s for r in layer_table(model, input_size, machine, macs_only=False))


def macs_latency(model: nn.Module, input_size, seconds_per_mac: float) -> float:
    """The MACs-only model: latency proportional to the MAC count."""
    return cost.count(model, tuple(input_size)).macs * seconds_per_mac
