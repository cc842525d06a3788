"""The roofline model (Williams, Waterman and Patterson 2009) for the layers of a MobileNet.

Units and the traffic model (stated once, here):
- operational intensity I is in **MACs per byte** (one multiply-accumulate = 2 FLOPs, so
  FLOP/byte = 2 I); a machine's peak is in MAC/s and its bandwidth in bytes/s.
- bytes are the minimum traffic to main memory: read the input once, read the weights once,
  write the output once (no re-reads, no cache effects): the compulsory DRAM traffic when nothing
  stays in a cache between layers. At batch 1 a CPU keeps much of it in L2/L3, so a kernel can move
  less to and from DRAM (a cache-aware roofline has one roof per memory level).
- attainable rate = min(peak, I x bandwidth); the ridge point (machine balance) is peak / bandwidth.
  A layer with I below the balance is memory-bound, above it compute-bound.

Hand check: a 3x3 depthwise conv, stride 1, on 112x112xC in fp32 does 112^2 * 9 * C MACs and moves
4 (2 * 112^2 + 9) C bytes, so I = 28224 / 25097 = 1.1246 MAC/byte for any C, and K^2 / 8 as H W grows.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from . import cost, timing
from ._checks import check_int, check_number, check_positive_int


def conv_traffic(c_in: int, c_out: int, h: int, w: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, batch: int = 1, dtype_bytes: int = 4,
                 bias: bool = False) -> tuple[int, int]:
    """(MACs, bytes) of a KxK conv with 'same' padding: N H'W'C_out (C_in/g) K^2 and the minimum traffic."""
    for name, v in (("batch", batch), ("dtype_bytes", dtype_bytes)):
        check_positive_int(name, v)
    pad = (kernel_size - 1) // 2
    macs = batch * cost.conv2d_macs(c_in, c_out, h, w, kernel_size, stride, pad, groups=groups)
    ho = cost.conv_output_size(h, kernel_size, stride, pad)
    wo = cost.conv_output_size(w, kernel_size, stride, pad)
    weights = cost.conv2d_params(c_in, c_out, kernel_size, groups, bias)
    elements = batch * c_in * h * w + batch * c_out * ho * wo + weights  # read x, read W, write y
    return macs, elements * dtype_bytes


def conv_intensity(c_in: int, c_out: int, h: int, w: int, kernel_size: int = 3, stride: int = 1,
                   groups: int = 1, batch: int = 1, dtype_bytes: int = 4) -> float:
    """MACs per byte of a KxK convolution (C_in -> C_out on H x W, groups g)."""
    macs, nbytes = conv_traffic(c_in, c_out, h, w, kernel_size, stride, groups, batch, dtype_bytes)
    return macs / nbytes


def depthwise_intensity(c: int, h: int, w: int, kernel_size: int = 3, stride: int = 1,
                        batch: int = 1, dtype_bytes: int = 4) -> float:
    """A depthwise KxK conv (groups = C): about K^2 / (2 dtype_bytes) at stride 1 on a large map."""
    return conv_intensity(c, c, h, w, kernel_size, stride, c, batch, dtype_bytes)


def pointwise_intensity(c_in: int, c_out: int, h: int, w: int, batch: int = 1,
                        dtype_bytes: int = 4) -> float:
    """A 1x1 conv: N H W C_in C_out MACs over (N H W (C_in + C_out) + C_in C_out) elements."""
    return conv_intensity(c_in, c_out, h, w, 1, 1, 1, batch, dtype_bytes)


def dsc_intensity(c_in: int, c_out: int, h: int, w: int, kernel_size: int = 3, stride: int = 1,
                  batch: int = 1, dtype_bytes: int = 4, fused: bool = False) -> float:
    """Depthwise then pointwise as one unit. Unfused, the depthwise output is written and read back;
    ``fused=True`` keeps it on chip (one read of x, one write of y, both weights)."""
    dw_macs, dw_bytes = conv_traffic(c_in, c_in, h, w, kernel_size, stride, c_in, batch, dtype_bytes)
    ho = cost.conv_output_size(h, kernel_size, stride, (kernel_size - 1) // 2)
    wo = cost.conv_output_size(w, kernel_size, stride, (kernel_size - 1) // 2)
    pw_macs, pw_bytes = conv_traffic(c_in, c_out, ho, wo, 1, 1, 1, batch, dtype_bytes)
    nbytes = dw_bytes + pw_bytes
    if fused:  # the intermediate (N, C_in, H', W') is neither written nor read again
        nbytes -= 2 * batch * c_in * ho * wo * dtype_bytes
    return (dw_macs + pw_macs) / nbytes


def linear_intensity(in_features: int, out_features: int, batch: int = 1, dtype_bytes: int = 4,
                     bias: bool = True) -> float:
    """A fully connected layer: N in out MACs over (N in + N out + in out [+ out]) elements.

    At batch 1 it reads every weight for one MAC: I < 1 / dtype_bytes, always memory-bound.
    """
    for name, v in (("in_features", in_features), ("out_features", out_features), ("batch", batch),
                    ("dtype_bytes", dtype_bytes)):
        check_positive_int(name, v)
    weights = in_features * out_features + (out_features if bias else 0)
    elements = batch * (in_features + out_features) + weights
    return batch * in_features * out_features / (elements * dtype_bytes)


@dataclass(frozen=True)
class Machine:
    """A roofline: peak MAC/s and memory bandwidth in bytes/s, with where the figures came from."""
    name: str
    peak_macs_per_s: float
    bandwidth_bytes_per_s: float
    details: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        for n in ("peak_macs_per_s", "bandwidth_bytes_per_s"):
            v = getattr(self, n)
            if math.isinf(check_number(n, v)):
                raise ValueError(f"{n} must be a finite number > 0, got {v!r}")

    @property
    def balance(self) -> float:
        """Machine balance (the ridge point) in MAC/byte: below it a layer is memory-bound."""
        return self.peak_macs_per_s / self.bandwidth_bytes_per_s


def _check_intensity(intensity) -> float:
    return float(check_number("intensity (MAC/byte)", intensity))


def attainable(intensity: float, machine: Machine) -> float:
    """Attainable MAC/s = min(peak, I x bandwidth)."""
    i = _check_intensity(intensity)
    return min(machine.peak_macs_per_s, i * machine.bandwidth_bytes_per_s)


def bound(intensity: float, machine: Machine) -> str:
    """'memory' when I is below the machine balance, else 'compute'."""
    return "memory" if _check_intensity(intensity) < machine.balance else "compute"


# --- measuring this machine ------------------------------------------------------------------

def _gemm_rate(n: int, dtype, device: str, repeats: int, clock=time.perf_counter) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    s = timing.benchmark(lambda: torch.mm(a, b, out=out), warmup=2, repeats=repeats,
                         min_sample_s=0.05, device=device, clock=clock)
    return n ** 3 / s.median  # n^3 MACs per product


def _bandwidths(n_bytes: int, device: str, repeats: int, clock=time.perf_counter) -> dict:
    """Large copy (read + write: 2 n_bytes) and STREAM triad a = b + s c (3 n_bytes), fp32."""
    n = n_bytes // 4
    b, c = torch.rand(n, device=device), torch.rand(n, device=device)
    a = torch.empty(n, device=device)
    copy = timing.benchmark(lambda: a.copy_(b), warmup=2, repeats=repeats, min_sample_s=0.05,
                            device=device, clock=clock)
    triad = timing.benchmark(lambda: torch.add(b, c, alpha=3.0, out=a), warmup=2, repeats=repeats,
                             min_sample_s=0.05, device=device, clock=clock)
    return {"copy_bytes_per_s": 2 * n * 4 / copy.median, "triad_bytes_per_s": 3 * n * 4 / triad.median}


def measure_machine(device: str = "cpu", *, gemm_size: int | None = None,
                    stream_bytes: int | None = None, repeats: int = 5,
                    dtype: str = "float32", clock=time.perf_counter) -> Machine:
    """Measure this machine's roofline: peak GEMM rate (fp32; on CUDA also fp16 and bf16) and
    memory bandwidth (large copy and STREAM triad; the roof is the faster of the two).

    ``dtype`` picks which GEMM peak is the roof. Sizes default to ones that overflow the caches
    (64 MiB arrays on CPU, 1 GiB on GPU) and keep the run to seconds.

    ``clock`` and the caller's thread setting (``timing.threads``) must be the ones the layers are
    timed with: a peak taken on another clock or with other threads is not a roof for them (a
    one-thread CPU-time layer can then "beat" it; ``roof_violations`` finds such layers).
    """
    timing.check_device(device)
    check_int("repeats", repeats, 1)
    cuda = device.startswith("cuda")
    gemm_size = gemm_size or (8192 if cuda else 1024)
    stream_bytes = stream_bytes or ((1 << 30) if cuda else (64 << 20))
    dtypes = {"float32": torch.float32}
    if cuda:
        dtypes.update(float16=torch.float16, bfloat16=torch.bfloat16)
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)} on {device}, got {dtype!r}")
    tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, not TF32
        peaks = {k: _gemm_rate(gemm_size, v, device, repeats, clock) for k, v in dtypes.items()}
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    bw = _bandwidths(stream_bytes, device, repeats, clock)
    env = timing.environment(device)
    name = env.get("gpu", f"{env['processor']} ({env['threads']} thread{'s' if env['threads'] != 1 else ''})")
    details = {"gemm_macs_per_s": peaks, "gemm_size": gemm_size, "stream_bytes": stream_bytes,
               "roof_dtype": dtype, "clock": getattr(clock, "__name__", str(clock)), **bw, "env": env}
    return Machine(name, peaks[dtype], max(bw.values()), details)


def roof_violations(machine: Machine, layers, tolerance: float = 1.0) -> list[dict]:
    """The measured layers that ran faster than ``machine``'s peak (by more than ``tolerance``x).

    ``layers``: records with ``macs`` and ``median_s`` (as ``mnlib.measure`` stores them). A layer
    above the roof means the "peak" was not measured as the layers were (another clock, other
    threads, other load): the roof is then no bound, and neither is any memory/compute verdict on it.
    """
    check_number("tolerance", tolerance)
    out = []
    for layer in layers:
        rate = layer["macs"] / layer["median_s"]
        if rate > tolerance * machine.peak_macs_per_s:
            out.append(dict(layer, macs_per_s=rate, over_peak=rate / machine.peak_macs_per_s))
    return sorted(out, key=lambda r: -r["macs_per_s"])


def machine_from_record(record: dict, dtype: str = "float32") -> Machine:
    """The roofline of a ``mnlib.measure`` record, with a peak that is a roof for its own layers.

    peak = max(the recorded GEMM rate, the fastest recorded layer of ``dtype``): nothing measured on
    that machine went faster, so no layer can sit above the roof. ``details`` says which one set the
    peak (``peak_from``: 'gemm' or 'layer'), the GEMM rate, the fastest layer and how many layers
    beat the GEMM (``layers_over_gemm``): when that is not 0 the recorded GEMM peak was not a roof.
    """
    m = record["machine"]
    gemm = m.get("gemm_macs_per_s", {}).get(dtype, m["peak_macs_per_s"])
    layers = [lay for lay in record.get("layers", []) if lay.get("dtype", "float32") == dtype]
    fastest = max(layers, key=lambda lay: lay["macs"] / lay["median_s"], default=None)
    top = fastest["macs"] / fastest["median_s"] if fastest else 0.0
    over = roof_violations(Machine("gemm", gemm, m["bandwidth_bytes_per_s"]), layers)
    details = {"gemm_macs_per_s": gemm, "fastest_layer": fastest, "fastest_layer_macs_per_s": top,
               "layers_over_gemm": len(over), "n_layers": len(layers),
               "peak_from": "layer" if top > gemm else "gemm",
               "record_clock": record.get("clock"), "threads": record.get("env", {}).get("threads")}
    return Machine(m["name"], max(gemm, top), m["bandwidth_bytes_per_s"], details)


# --- the layers of a model on the roofline ---------------------------------------------------

@dataclass
class LayerRow:
    """One layer on the roofline: its work, its traffic, and what the roofline predicts for it."""
    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    macs: int
    bytes: int
    intensity: float          # MAC/byte; 0 for element-wise layers (no MACs)
    attainable_macs_per_s: float
    predicted_s: float        # max(MACs / peak, bytes / bandwidth)
    bound: str                # 'memory' or 'compute'


MAC_KINDS = ("conv", "depthwise", "grouped", "pointwise", "linear", "se")


def layer_bytes(layer: cost.LayerCost, dtype_bytes: int = 4) -> int:
    """Minimum traffic of one counted layer: read input and weights once, write output once.

    An operator row reads each of its tensor operands (a residual add reads two tensors; the SE
    scale reads x and the (N, C, 1, 1) gate).
    """
    n_in, n_out = math.prod(layer.in_shape), math.prod(layer.out_shape)
    if layer.operand_shapes:
        n_in = sum(math.prod(s) for s in layer.operand_shapes)
    elif layer.kind == "add":
        n_in *= 2
    elif layer.kind == "scale":
        n_in += layer.out_shape[0] * layer.out_shape[1]
    return (n_in + n_out + layer.params) * dtype_bytes


def layer_table(model: torch.nn.Module, input_size=(1, 3, 224, 224), machine: Machine | None = None,
                dtype_bytes: int = 4, macs_only: bool = True) -> list[LayerRow]:
    """Every conv and linear layer of ``model`` (all layers but the free ones if not ``macs_only``)
    with MACs, bytes, intensity, attainable rate, roofline time and bound on ``machine``."""
    _check_machine(machine)
    return report_table(cost.count(model, input_size), machine, dtype_bytes, macs_only)


def _check_machine(machine) -> None:
    if not isinstance(machine, Machine):
        raise ValueError(f"machine must be a mnlib.roofline.Machine, got {type(machine).__name__}")


def report_table(report: cost.CostReport, machine: Machine, dtype_bytes: int = 4,
                 macs_only: bool = True) -> list[LayerRow]:
    """``layer_table`` of a ``cost.count`` report: one row per counted layer, in the report's order."""
    _check_machine(machine)
    rows = []
    for layer in report.layers:
        if layer.kind == "free" or (macs_only and not layer.macs):
            continue
        nbytes = layer_bytes(layer, dtype_bytes)
        t_mem = nbytes / machine.bandwidth_bytes_per_s
        if layer.macs:
            i = layer.macs / nbytes
            rate = attainable(i, machine)
            t = layer.macs / rate
            which = bound(i, machine)
        else:  # element-wise work: only the traffic counts
            i, rate, t, which = 0.0, 0.0, t_mem, "memory"
        rows.append(LayerRow(layer.name, layer.kind, layer.in_shape, layer.out_shape, layer.macs,
                             nbytes, i, rate, t, which))
    return rows


KIND_COLOURS = {"conv": "tab:blue", "depthwise": "tab:red", "pointwise": "tab:green",
                "grouped": "tab:purple", "linear": "tab:orange", "se": "tab:brown"}
# The kinds in the Chinese edition's figures (the course glossary's terms).
KIND_NAMES_ZH = {"conv": "卷积", "depthwise": "深度卷积", "pointwise": "逐点卷积", "grouped": "分组卷积",
                 "linear": "全连接层", "se": "挤压-激励模块"}


def plot_roofline(machine: Machine, rows=None, ax=None, title: str | None = None, t=None):
    """Log-log roofline of ``machine`` (GMAC/s vs MAC/byte), ridge point marked, layers as points
    coloured by kind (placed at their intensity and their roofline-attainable rate).

    ``t(english, chinese)`` picks the words of the labels (``mnlib.display.figure_editions`` passes it
    to draw the Chinese edition); without it they are English. A ``title`` given is used as it is.
    """
    import matplotlib.pyplot as plt

    t = t or (lambda en, zh: en)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    rows = [r for r in (rows or []) if r.macs]
    lo = min([machine.balance / 100] + [r.intensity / 2 for r in rows])
    hi = max([machine.balance * 100] + [r.intensity * 2 for r in rows])
    xs = [lo * (hi / lo) ** (k / 200) for k in range(201)]
    ax.loglog(xs, [attainable(x, machine) / 1e9 for x in xs], color="black", lw=2, label=t("roofline", "屋顶线"))
    ax.axvline(machine.balance, color="grey", ls=":", lw=1)
    ax.plot([machine.balance], [machine.peak_macs_per_s / 1e9], "k^", ms=8,
            label=t(f"ridge point {machine.balance:.3g} MAC/byte",
                    f"脊点（机器平衡点）{machine.balance:.3g} MAC/byte"))
    for kind in sorted({r.kind for r in rows}):
        pts = [r for r in rows if r.kind == kind]
        ax.scatter([r.intensity for r in pts], [r.attainable_macs_per_s / 1e9 for r in pts],
                   s=22, alpha=0.8, color=KIND_COLOURS.get(kind, "tab:gray"),
                   label=t(kind, KIND_NAMES_ZH.get(kind, kind)), zorder=3)
    ax.set_xlabel(t("operational intensity (MAC/byte; FLOP/byte = 2x)", "算术强度（MAC/byte；FLOP/byte = 2x）"))
    ax.set_ylabel(t("attainable rate (GMAC/s)", "可达速率（GMAC/s）"))
    ax.set_title(title or t(f"roofline of {machine.name}", f"{machine.name} 的屋顶线"))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    return ax
