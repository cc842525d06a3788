"""A whole-model latency model, fitted on random networks of the MobileNet design space.

Every counted layer i of a network belongs to a calibration key k (its kind from mnlib.cost, with
depthwise convolutions told apart by kernel size and stride, activations by function). The model is

    T = sum over layers i of ( o_k + a_k * MACs_i + b_k * bytes_i )  +  o_container * containers + o_free * free

o_k is a per-call overhead (Python dispatch, kernel set-up), a_k a time per MAC and b_k a time per
byte of the roofline traffic model (mnlib.roofline.layer_bytes). All coefficients are >= 0, fitted by
non-negative least squares on relative error.

What it is fitted on: ``calibrate`` times whole networks drawn at random from the design space the
course teaches (``random_network``: stem, 6 stages of depthwise separable or inverted-residual
blocks, random widths, depths, expansions, kernel sizes 3 and 5, SE, ReLU / ReLU6 / hard-swish,
input sizes 64 to 256). Whole networks, not isolated layers: a layer inside a network finds cold
caches, which a layer repeated alone does not. The published MobileNets are never timed to fit it.

A shared machine changes speed by up to 2x over minutes (other tenants, SMT siblings). So every
network is timed *interleaved* with a fixed reference block (mnlib.timing.compare), and the target
of the fit is time(network) / time(reference) x the reference's median time over the calibration:
seconds at the machine's typical speed during calibration. ``measure_normalised`` does the same for
any model, which is how bench/bench_latency_model.py compares predictions with measurements.

Scope: eager PyTorch, NCHW, fp32, batch 1, the thread count of the calibration.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import cost, timing
from ._checks import check_int
from .configs import V3_LARGE, V3_SMALL, make_divisible
from .layers import ConvBNAct, DepthwiseSeparableConv, HardSigmoid, InvertedResidual
from .models import ACTIVATIONS, MobileNet, v1_classifier, v2_tail, v3_tail
from .roofline import Machine, layer_table, report_table

# Activation modules get their own key: mnlib's hard-swish is several element-wise kernels, ReLU one.
_ACT_KEYS = {cost.qualified_name(cls): f"act:{name}"
             for name, cls in {**ACTIVATIONS, "hsigmoid": HardSigmoid}.items()}
MB = 1e6  # features are in millions of MACs and of bytes, so the columns have similar scales


def nnls(a: np.ndarray, b: np.ndarray, tol: float = 1e-12, max_iter: int | None = None) -> np.ndarray:
    """x >= 0 minimising ||a x - b||_2 (Lawson and Hanson's active-set method, 1974)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.shape != (a.shape[0],):
        raise ValueError(f"nnls needs a 2-D matrix and a matching vector, got {a.shape} and {b.shape}")
    n = a.shape[1]
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    a = a / scale  # unit columns: one tolerance suits every column
    x, passive = np.zeros(n), np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    for _ in range(max_iter or 3 * n + 10):
        if passive.all() or w[~passive].max() <= tol * max(1.0, np.abs(w).max()):
            break
        passive[np.argmax(np.where(passive, -np.inf, w))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                break
            bad = passive & (z <= 0)
            step = np.min(x[bad] / (x[bad] - z[bad]))
            x = x + step * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        x = z
        w = a.T @ (b - a @ x)
    return x / scale


# ---------------------------------------------------------------- the calibration networks

def random_network(rng: np.random.Generator) -> tuple[nn.Module, tuple[int, int, int, int]]:
    """A random network of the MobileNet design space and its input size (1, 3, R, R).

    One of three families, as in the course: V1-style (depthwise separable blocks, ReLU), V2-style
    (inverted residuals with expansion 1, 3 or 6, ReLU6, residual adds) and V3-style (inverted
    residuals with explicit hidden widths, 3x3 or 5x5 depthwise, SE on about half, ReLU or
    hard-swish). Width scale 0.3-1.5, 6 stages of 1-3 blocks, total stride 32, R in 64..256.
    """
    family = str(rng.choice(["v1", "v2", "v3"]))
    size = int(rng.choice(np.arange(64, 257, 8)))
    width = float(rng.uniform(0.3, 1.5))
    c = make_divisible(int(rng.choice([16, 24, 32])) * width)
    stem_act = ACTIVATIONS[{"v1": "relu", "v2": "relu6", "v3": "hswish"}[family]]
    layers: list[nn.Module] = [ConvBNAct(3, c, 3, stride=2, activation=stem_act)]
    for stage, (base, stride) in enumerate(zip((16, 24, 40, 80, 160, 320), (1, 2, 2, 2, 1, 2))):
        out = make_divisible(base * float(rng.uniform(0.7, 1.5)) * width)
        for i in range(int(rng.integers(1, 4))):
            s = stride if i == 0 else 1
            if family == "v1":
                layers.append(DepthwiseSeparableConv(c, 2 * out, 3, s))
                c = 2 * out
                continue
            if family == "v2":
                t = 1.0 if stage == 0 and i == 0 else float(rng.choice([1, 3, 6]))
                layers.append(InvertedResidual(c, out, s, t=t))
            else:
                hidden = make_divisible(c * float(rng.uniform(1.0, 6.0)))
                se = make_divisible(hidden // 4) if rng.random() < 0.5 else None
                layers.append(InvertedResidual(c, out, s, expanded_channels=hidden,
                                               kernel_size=int(rng.choice([3, 5])), squeeze_channels=se,
                                               activation=ACTIVATIONS[str(rng.choice(["relu", "hswish"]))]))
            c = out
    if family == "v1":
        classifier = v1_classifier(c, 1000)
    elif family == "v2":
        last_conv, classifier = v2_tail(c, width, 1000, 0.2)
        layers.append(last_conv)
    else:  # the head width of V3-Small or of V3-Large
        head = int(rng.choice([V3_SMALL.head, V3_LARGE.head]))
        last_conv, classifier = v3_tail(c, V3_LARGE.last_conv_ratio, head, width, 1000, 0.2)
        layers.append(last_conv)
    return MobileNet(nn.Sequential(*layers), classifier, 32).eval(), (1, 3, size, size)


def reference_block() -> tuple[nn.Module, torch.Tensor]:
    """The fixed workload every timing is paired with: a V2 inverted residual (32 -> 96 -> 32) on 56x56."""
    g = torch.Generator().manual_seed(0)
    block = InvertedResidual(32, 32, 1, t=3).eval()
    return block, torch.randn(1, 32, 56, 56, generator=g)


def time_against(model: nn.Module, input_size, reference=None, *, repeats: int = 10,
                 min_sample_s: float = 0.01, clock=time.perf_counter) -> timing.Comparison:
    """``model`` on random input timed interleaved with ``reference`` (mnlib.timing.compare), no autograd.

    ``reference`` is a (module, input) pair, by default ``reference_block()``; the Comparison's ratio
    is time(model) / time(reference), which a change of the machine's speed moves far less than a
    raw time. The one home of "time a network against a reference" for calibrating and measuring.
    """
    ref, x_ref = reference if reference is not None else reference_block()
    x = torch.randn(tuple(input_size))
    with torch.no_grad():
        return timing.compare(lambda: model(x), lambda: ref(x_ref), warmup=2, repeats=repeats,
                              min_sample_s=min_sample_s, clock=clock)


def measure_normalised(model: nn.Module, input_size, reference_s: float, *, reference=None, repeats: int = 10,
                       min_sample_s: float = 0.01, clock=time.perf_counter) -> tuple[float, float]:
    """(seconds at the reference's speed, raw median seconds) of ``model`` on random input.

    time(model) / time(reference) x ``reference_s``, the two timed interleaved (``time_against``);
    ``reference_s`` is the reference's median time during a calibration (``Calibration.reference_s``),
    and ``reference`` must be the same (module, input) pair the calibration used (default: the block).
    """
    c = time_against(model, input_size, reference, repeats=repeats, min_sample_s=min_sample_s, clock=clock)
    return c.ratio * reference_s, c.a.median


# ---------------------------------------------------------------- features and the fit

def _key(layer: cost.LayerCost) -> str:
    """The calibration key of one layer of a cost.count report."""
    if layer.kind == "act":
        key = None if layer.op else _ACT_KEYS.get(layer.module_type)
        if key is None:
            what = f"aten.{layer.op} (functional)" if layer.op else layer.module_type.rsplit(".", 1)[-1]
            raise ValueError(f"no latency calibration for activation {what} ({layer.name})")
        return key
    if layer.kind == "depthwise":
        k, stride = layer.kernel_size[0], layer.stride[0]
        return f"depthwise{k}x{k}/s{stride}"
    return layer.kind


def _layers(model: nn.Module, input_size, machine: Machine) -> list[tuple[str, str, float, float]]:
    """(name, key, MACs / 1e6, bytes / 1e6) of every counted layer, then every call of a free module
    (Dropout, Flatten: no arithmetic, still a call) and of a container, from one cost.count report."""
    report = cost.count(model, tuple(input_size))
    counted = [layer for layer in report.layers if layer.kind != "free"]
    rows = report_table(report, machine, macs_only=False)
    out = [(r.name, _key(layer), r.macs / MB, r.bytes / MB) for layer, r in zip(counted, rows)]
    free = {layer.name for layer in report.layers if layer.kind == "free"}
    for name, composite in report.module_calls:
        if composite:
            out.append((name, "container", 0.0, 0.0))
        elif name in free:
            out.append((name, "free", 0.0, 0.0))
    return out


def features(model: nn.Module, input_size, machine: Machine) -> dict[str, float]:
    """The model's column values: per key, the number of calls, MACs (M) and bytes (M)."""
    f: dict[str, float] = {}
    for _, key, macs, nbytes in _layers(model, input_size, machine):
        f[key + ":calls"] = f.get(key + ":calls", 0.0) + 1.0
        if key not in ("container", "free"):
            f[key + ":MMACs"] = f.get(key + ":MMACs", 0.0) + macs
            f[key + ":MB"] = f.get(key + ":MB", 0.0) + nbytes
    return {k: v for k, v in f.items() if v or k.endswith(":calls")}


@dataclass
class Calibration:
    """Fitted coefficients (seconds per call, per MMAC, per MB for each key) and what they came from."""
    machine: Machine
    coef: dict[str, float]           # 'depthwise3x3/s1:calls' -> seconds, ...
    reference_s: float               # median time of the reference block during calibration
    points: list[dict] = field(default_factory=list)  # per network: features, seconds (normalised), raw
    env: dict = field(default_factory=dict)

    @property
    def keys(self) -> set[str]:
        return {c.rsplit(":", 1)[0] for c in self.coef}

    def term(self, key: str, macs: float, nbytes: float) -> float:
        """Seconds one layer of ``key`` costs (MACs and bytes in millions)."""
        if key not in self.keys:
            raise ValueError(f"the calibration has no fit for layer kind {key!r}; its networks had "
                             f"{sorted(self.keys)}")
        return (self.coef.get(key + ":calls", 0.0) + self.coef.get(key + ":MMACs", 0.0) * macs
                + self.coef.get(key + ":MB", 0.0) * nbytes)

    def seconds_per_mac(self) -> float:
        """The MACs-only baseline fitted on the same calibration networks (median seconds per MAC)."""
        return float(np.median([p["seconds"] / p["macs"] for p in self.points]))

    def fit_errors(self) -> np.ndarray:
        """Relative error of the fit on its own calibration networks."""
        cols = sorted(self.coef)
        a = np.array([[p["features"].get(c, 0.0) for c in cols] for p in self.points])
        y = np.array([p["seconds"] for p in self.points])
        return a @ np.array([self.coef[c] for c in cols]) / y - 1


def fit(points: list[dict], machine: Machine, reference_s: float, env: dict | None = None) -> Calibration:
    """Non-negative least squares on relative error over ``points`` (dicts with 'features', 'seconds')."""
    if len(points) < 2:
        raise ValueError(f"fit needs at least 2 timed networks, got {len(points)}")
    cols = sorted({c for p in points for c in p["features"]})
    a = np.array([[p["features"].get(c, 0.0) for c in cols] for p in points])
    y = np.array([p["seconds"] for p in points], dtype=float)
    if not (y > 0).all():
        raise ValueError("every timed network needs a positive time")
    x = nnls(a / y[:, None], np.ones(len(y)))
    return Calibration(machine, dict(zip(cols, map(float, x))), reference_s, list(points), env or {})


def calibrate_on(networks, machine: Machine, *, reference=None, repeats: int = 10, min_sample_s: float = 0.01,
                 clock=time.perf_counter, verbose: bool = False) -> Calibration:
    """Time each (model, input_size) of ``networks`` against ``reference`` (``time_against``) and fit the model.

    The fitted seconds are time / time(reference) x the reference's median time over the calibration
    (``Calibration.reference_s``). ``calibrate`` calls this on random networks of the whole design
    space; a search that visits few layer shapes can calibrate on exactly those (chapter 15).
    """
    if not isinstance(machine, Machine):
        raise ValueError(f"machine must be a mnlib.roofline.Machine, got {type(machine).__name__}")
    raw = []
    for i, (model, size) in enumerate(networks):
        model.eval()
        c = time_against(model, size, reference, repeats=repeats, min_sample_s=min_sample_s, clock=clock)
        f = features(model, size, machine)
        macs = round(MB * sum(v for col, v in f.items() if col.endswith(":MMACs")))  # count() ran once
        raw.append((f, c.ratio, c.a.median, c.b.median, macs, tuple(size)))
        if verbose:
            print(f"network {i + 1:3d}: input {size[-1]:3d}, {macs / 1e6:7.1f}M MACs, "
                  f"{c.a.median * 1e3:7.2f} ms, x{c.ratio:.2f} the reference")
    if len(raw) < 2:
        raise ValueError(f"a calibration needs at least 2 networks, got {len(raw)}")
    reference_s = float(np.median([r[3] for r in raw]))
    points = [dict(features=f, seconds=ratio * reference_s, raw_s=t, macs=macs, input=list(size))
              for f, ratio, t, _, macs, size in raw]
    return fit(points, machine, reference_s, timing.environment("cpu"))


def calibrate(machine: Machine, *, networks: int = 200, seed: int = 0, repeats: int = 10,
              min_sample_s: float = 0.01, clock=time.perf_counter, verbose: bool = False) -> Calibration:
    """Time ``networks`` random networks (each interleaved with the reference block) and fit the model."""
    if not isinstance(machine, Machine):
        raise ValueError(f"machine must be a mnlib.roofline.Machine, got {type(machine).__name__}")
    check_int("networks", networks, 2)
    rng = np.random.default_rng(seed)
    return calibrate_on((random_network(rng) for _ in range(networks)), machine, repeats=repeats,
                        min_sample_s=min_sample_s, clock=clock, verbose=verbose)


# ---------------------------------------------------------------- predictions

def layer_latencies(model: nn.Module, input_size, machine: Machine,
                    calibration: Calibration) -> list[tuple[str, str, float]]:
    """(layer or module name, calibration key, predicted seconds) for every term of the model."""
    return [(name, key, calibration.term(key, macs, nbytes))
            for name, key, macs, nbytes in _layers(model, input_size, machine)]


def predict_latency(model: nn.Module, input_size, machine: Machine, calibration: Calibration) -> float:
    """Predicted seconds for one forward pass of ``model`` (at the calibration's machine speed)."""
    if not isinstance(calibration, Calibration):
        raise ValueError(f"calibration must be a mnlib.latency.Calibration, got {type(calibration).__name__}")
    return sum(t for _, _, t in layer_latencies(model, input_size, machine, calibration))


def roofline_latency(model: nn.Module, input_size, machine: Machine) -> float:
    """The plain roofline: sum of max(MACs / peak, bytes / bandwidth) over all layers, no overhead."""
    return sum(r.predicted_s for r in layer_table(model, input_size, machine, macs_only=False))


def macs_latency(model: nn.Module, input_size, seconds_per_mac: float) -> float:
    """The MACs-only model: latency proportional to the MAC count."""
    return cost.count(model, tuple(input_size)).macs * seconds_per_mac
