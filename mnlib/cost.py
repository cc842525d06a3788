"""Cost of convolutions and whole networks: multiply-accumulates (MACs) and parameters.

Conventions (the course states them once, here):
- one MAC is one multiply-accumulate. A model's MACs are the convolution and linear-layer MACs,
  the papers' "Mult-Adds". FLOPs = 2 x MACs where a FLOP count is asked for.
- batch norm, activations, pooling, bias additions, residual additions and the SE scaling
  multiply are *not* MACs; ``count`` reports each of them separately, never silently drops them.
- params are every trainable parameter (``sum(p.numel())``), batch-norm affine included;
  ``params_without_bn`` is reported beside it.
- a leaf module ``count`` has no rule for raises ``ValueError`` naming it.

The formulas are pure functions of shapes; ``count`` walks a real module tree with forward hooks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from ._checks import check_positive_int


def _pair(v, name: str) -> tuple[int, int]:
    t = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(t) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in t):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """floor((H + 2P - D(K - 1) - 1) / S) + 1, torch.nn.Conv2d's output size along one axis."""
    for name, v, low in (("size", size, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                         ("padding", padding, 0), ("dilation", dilation, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(f"input size {size} is too small for kernel_size={kernel_size}, "
                         f"padding={padding}, dilation={dilation}")
    return out


def conv2d_params(c_in: int, c_out: int, kernel_size=3, groups: int = 1, bias: bool = False) -> int:
    """C_out * (C_in / groups) * K_h * K_w weights, plus C_out biases."""
    kh, kw = _pair(kernel_size, "kernel_size")
    _check_groups(c_in, c_out, groups)
    return c_out * (c_in // groups) * kh * kw + (c_out if bias else 0)


def _check_groups(c_in: int, c_out: int, groups: int) -> None:
    for name, v in (("c_in", c_in), ("c_out", c_out), ("groups", groups)):
        check_positive_int(name, v)
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}")


def conv2d_macs(c_in: int, c_out: int, h: int, w: int, kernel_size=3, stride=1, padding=0,
                dilation=1, groups: int = 1) -> int:
    """H' W' C_out (C_in / groups) K_h K_w: each output element is a dot product of that length."""
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    dh, dw = _pair(dilation, "dilation")
    _check_groups(c_in, c_out, groups)
    ho = conv_output_size(h, kh, sh, ph, dh)
    wo = conv_output_size(w, kw, sw, pw, dw)
    return ho * wo * c_out * (c_in // groups) * kh * kw


def standard_conv_macs(c_in, c_out, h, w, kernel_size=3, stride=1, padding=None) -> int:
    """A dense KxK convolution; padding defaults to 'same' ((K - 1) // 2)."""
    padding = (kernel_size - 1) // 2 if padding is None else padding
    return conv2d_macs(c_in, c_out, h, w, kernel_size, stride, padding)


def depthwise_conv_macs(c, h, w, kernel_size=3, stride=1, padding=None) -> int:
    """One KxK filter per channel (groups = C): H' W' C K^2."""
    padding = (kernel_size - 1) // 2 if padding is None else padding
    return conv2d_macs(c, c, h, w, kernel_size, stride, padding, groups=c)


def pointwise_conv_macs(c_in, c_out, h, w) -> int:
    """A 1x1 convolution: H W C_in C_out."""
    return conv2d_macs(c_in, c_out, h, w, 1)


def dsc_macs(c_in, c_out, h, w, kernel_size=3, stride=1, padding=None) -> int:
    """Depthwise KxK (with the stride) then pointwise 1x1 on the strided map: H'W'C_in(K^2 + C_out)."""
    padding = (kernel_size - 1) // 2 if padding is None else padding
    dw = depthwise_conv_macs(c_in, h, w, kernel_size, stride, padding)
    ho = conv_output_size(h, kernel_size, stride, padding)
    wo = conv_output_size(w, kernel_size, stride, padding)
    return dw + pointwise_conv_macs(c_in, c_out, ho, wo)


def standard_conv_params(c_in, c_out, kernel_size=3, bias=False) -> int:
    return conv2d_params(c_in, c_out, kernel_size, bias=bias)


def dsc_params(c_in, c_out, kernel_size=3, bias=False) -> int:
    """C_in K^2 (depthwise) + C_in C_out (pointwise), biases optional on both."""
    return (conv2d_params(c_in, c_in, kernel_size, groups=c_in, bias=bias)
            + conv2d_params(c_in, c_out, 1, bias=bias))


def dsc_speedup(kernel_size: int, c_out: int) -> float:
    """rho = standard / DSC MACs = C_out K^2 / (K^2 + C_out) (independent of C_in, H, W).

    It is always below K^2 and tends to K^2 as C_out grows.
    """
    k2 = kernel_size * kernel_size
    return c_out * k2 / (k2 + c_out)


def dsc_param_reduction(kernel_size: int, c_out: int) -> float:
    """R = standard / DSC weights = C_in C_out K^2 / (C_in K^2 + C_in C_out): the same form as rho."""
    return dsc_speedup(kernel_size, c_out)


def min_cout_for_reduction(kernel_size: int, target: float) -> int | None:
    """Smallest C_out with R = C_out K^2 / (K^2 + C_out) >= target, or None if no C_out reaches it.

    R >= T  <=>  C_out (K^2 - T) >= T K^2. If K^2 <= T the left side is never large enough
    (R < K^2 for every finite C_out), so K = 3 can never reach R = 10: R < 9.
    Otherwise C_out >= T K^2 / (K^2 - T).

    >>> [min_cout_for_reduction(k, 10) for k in (3, 4, 5, 7)]
    [None, 27, 17, 13]
    """
    if not target > 0:
        raise ValueError(f"target must be > 0, got {target!r}")
    k2 = kernel_size * kernel_size
    if k2 <= target:
        return None
    c = math.ceil(target * k2 / (k2 - target))
    # guard against float rounding at exact boundaries
    while c > 1 and dsc_param_reduction(kernel_size, c - 1) >= target:
        c -= 1
    while dsc_param_reduction(kernel_size, c) < target:
        c += 1
    return c


def inverted_residual_macs(c_in: int, c_out: int, h: int, w: int, t: float, kernel_size: int = 3,
                           stride: int = 1) -> int:
    """MACs of a MobileNetV2 block: H W C_in tC_in + H'W' tC_in K^2 + H'W' tC_in C_out.

    H' = ceil(H / s) (padding (K - 1) // 2). A block with t = 1 has no expansion conv, so the first
    term is dropped; the hidden width is round(t C_in), as in the model.
    """
    hidden = int(round(c_in * t))
    expand = pointwise_conv_macs(c_in, hidden, h, w) if hidden != c_in else 0
    return expand + dsc_macs(hidden, c_out, h, w, kernel_size, stride)


# --- counting a real module tree ------------------------------------------------------------

@dataclass
class LayerCost:
    name: str
    kind: str          # conv, depthwise, grouped, pointwise, linear, se, bn, act, pool, add, scale
    in_shape: tuple
    out_shape: tuple
    params: int
    macs: int          # conv/linear multiply-accumulates; 0 for the other kinds
    ops: int = 0       # element-wise work of non-MAC layers (BN, activation, pooling, adds, bias)


@dataclass
class CostReport:
    params: int
    params_without_bn: int
    macs: int
    bn_ops: int
    activation_ops: int
    pool_ops: int
    bias_ops: int
    se_ops: int        # the SE channel-scaling multiplies (SE's 1x1 convs are MACs, kind "se")
    add_ops: int       # residual additions
    layers: list[LayerCost] = field(default_factory=list)

    @property
    def flops(self) -> int:
        """2 x MACs: the FLOP count of the same convolution and linear work."""
        return 2 * self.macs

    def by_kind(self) -> dict[str, int]:
        """MACs per layer kind."""
        out: dict[str, int] = {}
        for layer in self.layers:
            if layer.macs:
                out[layer.kind] = out.get(layer.kind, 0) + layer.macs
        return out

    def table(self, macs_only: bool = True) -> str:
        """A plain-text per-layer table (only MAC layers unless ``macs_only`` is False)."""
        rows = [f"{'layer':34s} {'kind':10s} {'input':>18s} {'output':>18s} {'params':>10s} {'MACs':>13s}"]
        for l in self.layers:
            if macs_only and not l.macs:
                continue
            rows.append(f"{l.name:34s} {l.kind:10s} {str(list(l.in_shape)):>18s} "
                        f"{str(list(l.out_shape)):>18s} {l.params:>10,d} {l.macs:>13,d}")
        rows.append(f"{'total':34s} {'':10s} {'':>18s} {'':>18s} {self.params:>10,d} {self.macs:>13,d}")
        return "\n".join(rows)


_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.GELU,
                nn.Tanh, nn.LeakyReLU)
_FREE = (nn.Identity, nn.Dropout, nn.Flatten)  # no arithmetic
_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AvgPool1d,
          nn.AvgPool2d, nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
          nn.AdaptiveMaxPool2d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _is_activation(m: nn.Module) -> bool:
    from .layers import HardSigmoid, HardSwish
    return isinstance(m, _ACTIVATIONS + (HardSwish, HardSigmoid))


def _conv_kind(m: nn.modules.conv._ConvNd, in_se: bool) -> str:
    if in_se:
        return "se"
    if m.groups == 1:
        return "pointwise" if all(k == 1 for k in m.kernel_size) else "conv"
    if m.groups == m.in_channels:
        return "depthwise"
    return "grouped"


def count(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> CostReport:
    """Run one forward pass on zeros of ``input_size`` and count every leaf module's cost.

    MACs include the batch dimension (use batch 1 for the papers' per-image figures).
    """
    from .layers import InvertedResidual, SqueezeExcitation

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    input_size = tuple(input_size)
    layers: list[LayerCost] = []
    totals = dict(bn=0, act=0, pool=0, bias=0, se=0, add=0)
    se_members: set[int] = set()
    for mod in model.modules():
        if isinstance(mod, SqueezeExcitation):
            se_members.update(id(m) for m in mod.modules())

    names = {id(m): n for n, m in model.named_modules()}

    def leaf_hook(mod, inputs, output):
        x = inputs[0]
        name = names[id(mod)]
        own = sum(p.numel() for p in mod.parameters(recurse=False))
        row = LayerCost(name, "", tuple(x.shape), tuple(output.shape), own, 0)
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            row.kind = _conv_kind(mod, id(mod) in se_members)
            k = math.prod(mod.kernel_size)
            row.macs = output.numel() * (mod.in_channels // mod.groups) * k
            if mod.bias is not None:
                row.ops = output.numel()
                totals["bias"] += row.ops
        elif isinstance(mod, nn.Linear):
            row.kind = "linear"
            row.macs = output.numel() * mod.in_features
            if mod.bias is not None:
                row.ops = output.numel()
                totals["bias"] += row.ops
        elif isinstance(mod, _BNS):
            row.kind, row.ops = "bn", output.numel()
            totals["bn"] += row.ops
        elif _is_activation(mod):
            row.kind, row.ops = "act", output.numel()
            totals["act"] += row.ops
        elif isinstance(mod, _POOLS):
            row.kind, row.ops = "pool", x.numel()
            totals["pool"] += row.ops
        elif isinstance(mod, _FREE):
            row.kind = "free"
        else:
            raise _Unknown(f"count() has no rule for leaf module {name!r} "
                           f"({type(mod).__module__}.{type(mod).__name__}); add one to mnlib.cost")
        layers.append(row)

    def composite_hook(mod, inputs, output):
        name = names[id(mod)]
        if isinstance(mod, SqueezeExcitation):
            row = LayerCost(name + ".scale", "scale", tuple(inputs[0].shape), tuple(output.shape), 0, 0,
                            output.numel())
            totals["se"] += row.ops
        else:  # an InvertedResidual with a skip connection
            row = LayerCost(name + ".add", "add", tuple(inputs[0].shape), tuple(output.shape), 0, 0,
                            output.numel())
            totals["add"] += row.ops
        layers.append(row)

    handles = []
    for mod in model.modules():
        if not any(True for _ in mod.children()):
            handles.append(mod.register_forward_hook(leaf_hook))
        elif isinstance(mod, SqueezeExcitation) or (isinstance(mod, InvertedResidual)
                                                    and mod.use_res_connect):
            handles.append(mod.register_forward_hook(composite_hook))
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        device = param.device if param is not None else "cpu"
        with torch.no_grad():
            model(torch.zeros(input_size, dtype=dtype, device=device))
    except _Unknown as e:
        raise ValueError(str(e)) from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bn_params = sum(p.numel() for m in model.modules() if isinstance(m, _BNS)
                    for p in m.parameters() if p.requires_grad)
    return CostReport(params=params, params_without_bn=params - bn_params,
                      macs=sum(l.macs for l in layers), bn_ops=totals["bn"],
                      activation_ops=totals["act"], pool_ops=totals["pool"],
                      bias_ops=totals["bias"], se_ops=totals["se"], add_ops=totals["add"],
                      layers=layers)


class _Unknown(Exception):
    """Raised inside a hook; turned into a ValueError outside the forward pass."""


def scaled_macs(builder, width_mult: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> int:
    """MACs of a whole mnlib model at width multiplier alpha and input size (resolution multiplier)."""
    return count(builder(width_mult=width_mult, num_classes=num_classes),
                 (1, 3, resolution, resolution)).macs


def flops_from_torch(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> int:
    """FLOPs of one forward pass as torch.utils.flop_counter counts them (2 per MAC): an oracle."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(tuple(input_size)))
    finally:
        model.train(was_training)
    return counter.get_total_flops()
