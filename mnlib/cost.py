"""Cost of convolutions and whole networks: multiply-accumulates (MACs) and parameters.

Conventions (the course states them once, here):
- one MAC is one multiply-accumulate. A model's MACs are the convolution and linear-layer MACs,
  the papers' "Mult-Adds". FLOPs = 2 x MACs where a FLOP count is asked for.
- batch norm, activations, pooling, bias additions, residual additions and the SE scaling
  multiply are *not* MACs; ``count`` reports each of them separately, never silently drops them.
- params are every trainable parameter (``sum(p.numel())``), batch-norm affine included;
  ``params_without_bn`` is reported beside it.
- the arithmetic a composite module does in its own forward (a residual ``x + y``, a product,
  ``F.relu``, ``torch.cat``) is counted one aten operator at a time: an add of two tensors in
  ``add_ops``, activations in ``activation_ops``, SE's product in ``se_ops``, the rest in
  ``other_ops``; copies (``cat``, padding) get a row with no ops. Never MACs: a convolution or a
  matrix product called functionally raises.
- a leaf module, or an operator, that ``count`` has no rule for raises ``ValueError`` naming it.

The formulas are pure functions of shapes; ``count`` walks a real module tree with forward hooks
and a TorchDispatchMode.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ._checks import check_int, check_number, check_positive_int
from .layers import HardSigmoid, HardSwish, SqueezeExcitation


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
        check_int(name, v, low)
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
    check_number("target", target)
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
    """One counted layer: a leaf module, or one tensor operator that a composite module's forward
    runs itself (a residual ``x + y``, the SE ``x * s``, a ``torch.cat`` or ``F.relu``)."""
    name: str
    kind: str          # conv, depthwise, grouped, pointwise, linear, se, bn, act, pool, free,
    #                    add, scale, copy, elementwise
    in_shape: tuple
    out_shape: tuple
    params: int
    macs: int          # conv/linear multiply-accumulates; 0 for the other kinds
    ops: int = 0       # element-wise work of non-MAC layers (BN, activation, pooling, adds, bias)
    module_type: str = ""    # qualified class of the leaf module, or of the composite running the op
    kernel_size: tuple = ()  # a convolution's kernel, stride and groups; () / 1 for other layers
    stride: tuple = ()
    groups: int = 1
    op: str = ""             # the aten operator of an operator-level row ("add", "cat"); "" for a module
    operand_shapes: tuple = ()  # the shapes of every tensor operand of an operator-level row


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
    add_ops: int       # additions of two tensors (residual additions)
    other_ops: int = 0  # the other element-wise operators composite modules run (scalar arithmetic,
    #                     products of two tensors outside SE, reductions, interpolation)
    layers: list[LayerCost] = field(default_factory=list)
    # every module call of the forward pass in call order: (name, True for a composite module)
    module_calls: list[tuple[str, bool]] = field(default_factory=list)

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


def qualified_name(cls: type) -> str:
    """'torch.nn.modules.activation.ReLU': the name ``LayerCost.module_type`` holds."""
    return f"{cls.__module__}.{cls.__qualname__}"


# --- leaf-module rules: how count() counts a module with no children --------------------------
# One row per family of leaf modules, as the operator tables below are per family of operators:
# its types, its kind (or how a module's kind is read), its MACs, its element-wise ops and the
# report total those ops add to. The first row whose types a leaf is an instance of counts it; a
# leaf in no row raises, naming it: nothing counts as zero.

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.GELU,
                nn.Tanh, nn.LeakyReLU, HardSwish, HardSigmoid)
_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AvgPool1d,
          nn.AvgPool2d, nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
          nn.AdaptiveMaxPool2d)
_FREE = (nn.Identity, nn.Dropout, nn.Flatten)  # no arithmetic


def _is_activation(m: nn.Module) -> bool:
    return isinstance(m, _ACTIVATIONS)


def _conv_kind(m: nn.modules.conv._ConvNd, in_se: bool) -> str:
    if in_se:
        return "se"
    if m.groups == 1:
        return "pointwise" if all(k == 1 for k in m.kernel_size) else "conv"
    if m.groups == m.in_channels:
        return "depthwise"
    return "grouped"


_Size = Callable[[nn.Module, torch.Tensor, torch.Tensor], int]  # (module, its input, its output) -> a count


@dataclass(frozen=True)
class _LeafRule:
    types: tuple[type, ...]
    kind: str | Callable[[nn.Module, bool], str]  # or (module, inside an SE block) -> its kind
    macs: _Size | None = None   # None: no multiply-accumulates
    ops: _Size | None = None    # None: no element-wise work
    total: str = ""            # the CostReport total ``ops`` adds to ("bias", "bn", "act", "pool")
    geometry: bool = False     # the row records the module's kernel_size, stride and groups


def _conv_macs(m, x, out) -> int:  # each output element is a dot product of C_in / groups x K values
    return out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)


def _linear_macs(m, x, out) -> int:  # each output element is a dot product of in_features values
    return out.numel() * m.in_features


def _bias_ops(m, x, out) -> int:  # one addition per output element when the layer has a bias
    return out.numel() if m.bias is not None else 0


def _out_numel(m, x, out) -> int:
    return out.numel()


def _in_numel(m, x, out) -> int:  # pooling: every input element is read once
    return x.numel()


_LEAF_RULES = (
    _LeafRule(_CONVS, _conv_kind, macs=_conv_macs, ops=_bias_ops, total="bias", geometry=True),
    _LeafRule((nn.Linear,), "linear", macs=_linear_macs, ops=_bias_ops, total="bias"),
    _LeafRule(_BNS, "bn", ops=_out_numel, total="bn"),
    _LeafRule(_ACTIVATIONS, "act", ops=_out_numel, total="act"),
    _LeafRule(_POOLS, "pool", ops=_in_numel, total="pool"),
    _LeafRule(_FREE, "free"),
)


def _leaf_rule(m: nn.Module) -> _LeafRule | None:
    """The first row of ``_LEAF_RULES`` that counts ``m``; None when no row does."""
    return next((r for r in _LEAF_RULES if isinstance(m, r.types)), None)


# --- operator-level rules: what a composite module's own forward computes --------------------
# count() walks leaf modules with hooks; the arithmetic a composite (non-leaf) module does itself
# (a residual add, a product, torch.cat, F.relu) is seen one aten operator at a time by a
# TorchDispatchMode (as fvcore's and torch.utils.flop_counter's counters do) and counted by this
# table. None of it is MACs. An operator in no table raises, naming it: nothing counts as zero.

# no arithmetic and no data of their own: views, metadata, allocation
_OP_FREE = frozenset("""
    view _unsafe_view reshape _reshape_alias flatten unflatten squeeze unsqueeze permute transpose t
    expand expand_as slice select split split_with_sizes chunk unbind narrow alias detach as_strided
    lift_fresh empty empty_like empty_strided zeros zeros_like ones ones_like full full_like
    new_empty new_zeros new_ones new_full scalar_tensor dim size sym_size stride sym_stride
    is_contiguous""".split())
# one op per output element; a sum or product of two tensors becomes an "add" or "scale" row
_OP_ARITHMETIC = frozenset("add sub rsub mul div".split())
_OP_ACT = frozenset("""relu relu6 hardtanh hardswish hardsigmoid sigmoid silu gelu tanh leaky_relu elu
    softplus mish clamp clamp_min clamp_max threshold""".split())
_OP_POINTWISE = frozenset("""exp log sqrt rsqrt neg abs pow reciprocal maximum minimum where addcmul
    addcdiv lerp _softmax _log_softmax softmax log_softmax upsample_bilinear2d upsample_linear1d
    upsample_bicubic2d upsample_trilinear3d""".split())
_OP_REDUCE = frozenset("mean sum amax amin max min var std norm logsumexp".split())  # per input element
_OP_POOL = frozenset("""avg_pool1d avg_pool2d avg_pool3d max_pool1d max_pool2d max_pool3d
    max_pool2d_with_indices max_pool3d_with_indices _adaptive_avg_pool2d _adaptive_avg_pool3d
    adaptive_avg_pool1d adaptive_max_pool1d adaptive_max_pool2d""".split())
_OP_BN = frozenset("native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training"
                   .split())
# data movement only: a row (the bytes count on the roofline), no arithmetic
_OP_COPY = frozenset("""cat stack constant_pad_nd clone _to_copy copy contiguous upsample_nearest1d
    upsample_nearest2d upsample_nearest3d pixel_shuffle pixel_unshuffle roll flip repeat
    index_select gather""".split())
# multiply-accumulate work done functionally: count() counts it only as modules
_OP_MACS = frozenset("""convolution _convolution conv1d conv2d conv3d mm addmm bmm baddbmm matmul
    linear einsum""".split())


def _tensors(args) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(_tensors(a))
    return out


def _op_rule(op: str, operands: list[torch.Tensor], out: torch.Tensor) -> tuple[str, int] | None:
    """(kind, element-wise ops) of one aten operator, None when it does no work; KeyError if unknown."""
    if op in _OP_FREE:
        return None
    if op in _OP_ARITHMETIC:
        if sum(t.dim() > 0 for t in operands) >= 2:  # two tensors, not a tensor and a scalar
            return ("add" if op in ("add", "sub", "rsub") else "scale"), out.numel()
        return "elementwise", out.numel()
    if op in _OP_ACT:
        return "act", out.numel()
    if op in _OP_POINTWISE:
        return "elementwise", out.numel()
    if op in _OP_REDUCE:
        return "elementwise", operands[0].numel()
    if op in _OP_POOL:
        return "pool", operands[0].numel()
    if op in _OP_BN:
        return "bn", out.numel()
    if op in _OP_COPY:
        return "copy", 0
    raise KeyError(op)


def count(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> CostReport:
    """Run one forward pass on zeros of ``input_size`` and count every leaf module's cost, and every
    tensor operator that a composite module runs in its own forward.

    MACs include the batch dimension (use batch 1 for the papers' per-image figures).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    input_size = tuple(input_size)
    layers: list[LayerCost] = []
    totals = dict(bn=0, act=0, pool=0, bias=0, se=0, add=0, other=0)
    se_members: set[int] = set()
    for mod in model.modules():
        if isinstance(mod, SqueezeExcitation):
            se_members.update(id(m) for m in mod.modules())

    names = {id(m): n for n, m in model.named_modules()}
    leaves = {id(m) for m in model.modules() if not any(True for _ in m.children())}
    stack: list[nn.Module] = []  # the modules whose forward is running, innermost last
    calls: list[tuple[str, bool]] = []

    def leaf_row(mod, x, output) -> LayerCost:
        name = names[id(mod)]
        rule = _leaf_rule(mod)
        if rule is None:
            raise _Unknown(f"count() has no rule for leaf module {name!r} "
                           f"({type(mod).__module__}.{type(mod).__name__}); add one to mnlib.cost")
        kind = rule.kind if isinstance(rule.kind, str) else rule.kind(mod, id(mod) in se_members)
        ops = rule.ops(mod, x, output) if rule.ops else 0
        row = LayerCost(name, kind, tuple(x.shape), tuple(output.shape),
                        sum(p.numel() for p in mod.parameters(recurse=False)),
                        rule.macs(mod, x, output) if rule.macs else 0, ops, module_type=qualified_name(type(mod)))
        if rule.geometry:
            row.kernel_size, row.stride, row.groups = tuple(mod.kernel_size), tuple(mod.stride), mod.groups
        if rule.total:
            totals[rule.total] += ops
        return row

    def pre_hook(mod, inputs):
        stack.append(mod)
        calls.append((names[id(mod)], id(mod) not in leaves))

    def post_hook(mod, inputs, output):
        if id(mod) in leaves:
            layers.append(leaf_row(mod, inputs[0], output))
        stack.pop()

    def on_op(func, args, kwargs, out) -> None:
        owner = stack[-1] if stack else model
        if id(owner) in leaves:  # a leaf's own operators: its module rule counted them
            return
        op = func.overloadpacket.__name__
        op = op[:-1] if op.endswith("_") and not op.endswith("__") else op  # in-place add_ -> add
        owner_name = names[id(owner)]
        where = f"{owner_name!r} ({qualified_name(type(owner))})"
        if op in _OP_MACS:
            raise _Unknown(f"count() counts convolutions and linear layers only as modules, but {where} "
                           f"calls the operator aten.{op} in its forward; use nn.Conv*/nn.Linear there")
        operands = _tensors(list(args) + list(kwargs.values()))
        result = out if isinstance(out, torch.Tensor) else next(iter(_tensors([out])), None)
        try:
            rule = _op_rule(op, operands, result) if result is not None else None
        except KeyError:
            raise _Unknown(f"count() has no rule for the operator aten.{op} called by {where}; "
                           f"add one to mnlib.cost") from None
        if rule is None:
            return
        kind, ops = rule
        suffix = kind if kind in ("add", "scale") else op
        first = operands[0].shape if operands else result.shape
        layers.append(LayerCost(f"{owner_name}.{suffix}" if owner_name else suffix, kind, tuple(first),
                                tuple(result.shape), 0, 0, ops, module_type=qualified_name(type(owner)),
                                op=op, operand_shapes=tuple(tuple(t.shape) for t in operands)))
        if kind == "scale" and isinstance(owner, SqueezeExcitation):
            totals["se"] += ops
        else:
            totals[{"add": "add", "act": "act", "pool": "pool", "bn": "bn"}.get(kind, "other")] += ops

    class _OpCounter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            on_op(func, args, kwargs, out)
            return out

    handles = []
    for mod in model.modules():
        handles.append(mod.register_forward_pre_hook(pre_hook))
        handles.append(mod.register_forward_hook(post_hook))
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        device = param.device if param is not None else "cpu"
        x = torch.zeros(input_size, dtype=dtype, device=device)
        with torch.no_grad(), _OpCounter():
            model(x)
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
                      other_ops=totals["other"], layers=layers, module_calls=calls)


class _Unknown(Exception):
    """Raised inside a hook or the operator counter; turned into a ValueError outside the forward pass."""


def scaled_macs(builder, width_mult: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> int:
    """MACs of a whole mnlib model at width multiplier alpha and input size (resolution multiplier)."""
    return count(builder(width_mult=width_mult, num_classes=num_classes),
                 (1, 3, resolution, resolution)).macs


def flops_from_torch(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> int:
    """FLOPs of one forward pass as torch.utils.flop_counter counts them (2 per MAC): an oracle."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(tuple(input_size)))
    finally:
        model.train(was_training)
    return counter.get_total_flops()
