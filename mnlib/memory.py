"""Activation memory of one forward pass: what must be live at each step, and the peak.

MobileNetV2 (Sandler et al. 2018, §5.1, eq. 2) bounds the memory of a network whose only parallel
structure is residual connections by M(G) = max over operations of [sum |inputs| + sum |outputs|
+ |op|]. This module computes that for any mnlib model, one step per operation.

Conventions (the course states them once, here):
- a step is one row of ``cost.count``'s report: a leaf module (conv, BN, activation, pool, linear)
  or an operator that a composite module runs itself (a residual ``x + y``, SE's ``x * s``).
- live at a step = the tensors it reads + the tensor it writes + every tensor written earlier and
  read later (a residual's x, kept until its add; SE's input, kept until ``x * s``). A tensor is
  freed after its last reader. The model's input counts until its last reader; views (Flatten,
  Identity, Dropout in eval) allocate nothing. |op|, a kernel's own scratch (im2col buffers), is 0
  except for a fused block's streamed channels (below).
- sizes are elements including the batch N; bytes = elements x ``dtype_bytes`` (4 fp32, 2 for the
  paper's 16-bit activations, 1 int8). Weights are not activations: ``MemoryReport.params`` apart.
- ``schedule`` says what a runtime may skip:
  ``"layers"``: every leaf writes a new tensor (PyTorch eager without Python's own references);
  ``"folded"`` (default): BN is folded into the conv and BN/activations run in place on a tensor
  nothing else reads, so a conv-BN-activation is one step; adds and SE products write new tensors;
  ``"fused"``: folded, and every block whose inner transformation is per channel (a V1 DSC, a
  V2/V3 inverted residual without SE) is one operation that never materialises its expanded
  tensor whole: it computes ``chunk`` of the t C_in expanded channels at a time (expand, depthwise)
  and accumulates their projection into the output (§5.1's t-way split), so |op| = chunk (HW +
  H'W') N (chunk H'W' N without an expansion). A block with SE is not fused: SE pools the whole
  depthwise output before it can scale any channel, so that tensor must exist whole.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from ._checks import check_positive_int
from .cost import CostReport, conv_output_size, count

SCHEDULES = ("layers", "folded", "fused")
_IN_PLACE_KINDS = ("bn", "act")  # element-wise layers a runtime applies in place ("folded")


@dataclass(frozen=True)
class Step:
    """One operation of the schedule and the memory live while it runs (elements, batch included)."""
    name: str            # the layer, operator row (``features.3.add``) or fused block
    kind: str            # cost.count's kind, or "block" for a fused block
    out_shape: tuple     # shape of the tensor it writes (its input's shape for an in-place step)
    live: int            # reads + writes + held + workspace
    held: int            # tensors written earlier, read later, not touched by this step
    new: int             # elements of the tensor it allocates (0 for a view or in-place step)
    workspace: int = 0   # |op|: a fused block's streamed expanded channels


@dataclass
class MemoryReport:
    """The steps of one forward pass under one schedule; sizes in elements, ``peak`` in bytes."""
    steps: list[Step]
    dtype_bytes: int
    schedule: str
    params: int                      # sum(p.numel()): the weights, not counted in ``live``
    params_without_bn: int
    input_shape: tuple = ()
    materialised: list[tuple] = field(default_factory=list)  # shapes of every tensor written

    @property
    def peak(self) -> int:
        """Peak live activation memory in bytes: M(G) of §5.1 eq. 2 (times dtype_bytes)."""
        return self.peak_elements * self.dtype_bytes

    @property
    def peak_elements(self) -> int:
        return max(s.live for s in self.steps)

    @property
    def peak_step(self) -> Step:
        """The first step at which the peak is reached."""
        return max(self.steps, key=lambda s: s.live)

    def live_bytes(self) -> list[int]:
        """Live bytes at each step, in order."""
        return [s.live * self.dtype_bytes for s in self.steps]

    def largest_by_resolution(self) -> dict[tuple[int, int], tuple[int, int]]:
        """{(H, W): (C, bytes)} of the widest tensor written at each spatial size ((1, 1) for (N, C)).

        The MobileNetV2 paper's Table 3 quantity: the most that must be materialised per resolution
        (the model's input is not counted, as there).
        """
        out: dict[tuple[int, int], tuple[int, int]] = {}
        for shape in self.materialised:
            n, c = shape[0], shape[1]
            hw = tuple(shape[2:4]) if len(shape) == 4 else (1, 1)
            size = n * c * hw[0] * hw[1] * self.dtype_bytes
            if hw not in out or c > out[hw][0]:
                out[hw] = (c, size)
        return dict(sorted(out.items(), reverse=True))


def tensor_bytes(c: int, h: int, w: int, dtype_bytes: int = 2, batch: int = 1) -> int:
    """N C H W x bytes per element: one activation tensor (the paper's Table 3 uses 2 bytes)."""
    for name, v in (("c", c), ("h", h), ("w", w), ("dtype_bytes", dtype_bytes), ("batch", batch)):
        check_positive_int(name, v)
    return batch * c * h * w * dtype_bytes


def inverted_residual_live(c_in: int, c_out: int, h: int, w: int, t: float, stride: int = 1,
                           kernel_size: int = 3, schedule: str = "folded", chunk: int = 1) -> list[int]:
    """Live elements at each step of one V2 block on a (1, C_in, H, W) input, from shapes alone.

    folded: [expand, depthwise, project(, add)], each reads + writes + the held input x when the
    block adds it (stride 1 and C_in = C_out); no expand step when t C_in = C_in.
    fused: [|x| + |y| + chunk (H W + H'W')], one step (chunk H'W' without an expansion).
    """
    _check_schedule(schedule)
    check_positive_int("chunk", chunk)
    hidden = int(round(c_in * t))
    pad = (kernel_size - 1) // 2
    ho, wo = conv_output_size(h, kernel_size, stride, pad), conv_output_size(w, kernel_size, stride, pad)
    x, e, d, y = c_in * h * w, hidden * h * w, hidden * ho * wo, c_out * ho * wo
    residual = stride == 1 and c_in == c_out
    expands = hidden != c_in
    if schedule == "fused":
        k = min(chunk, hidden)
        return [x + y + k * ((h * w if expands else 0) + ho * wo)]
    if schedule == "layers":
        raise ValueError("inverted_residual_live gives the 'folded' and 'fused' schedules; "
                         "use live_memory for 'layers'")
    keep = x if residual else 0  # the input, held from the block's start to its add
    steps = [x + e] if expands else []
    steps.append((e if expands else x) + d + (keep if expands else 0))
    steps.append(d + y + keep)
    if residual:
        steps.append(x + y + y)  # x + F(x) writes a new tensor
    return steps


def live_memory(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), dtype_bytes: int = 4,
                schedule: str = "folded", chunk: int = 1, report: CostReport | None = None) -> MemoryReport:
    """Live activation memory at every step of one forward pass of ``model`` on ``input_size``.

    The steps are ``cost.count``'s rows (shapes from a real forward pass on zeros); which tensor each
    reads follows the chain: a leaf reads the previous output, a composite's operator reads that
    and the composite's input (a residual add, SE's product). Anything else raises ValueError.
    """
    from .layers import DepthwiseSeparableConv, InvertedResidual, SqueezeExcitation

    _check_schedule(schedule)
    check_positive_int("dtype_bytes", dtype_bytes)
    check_positive_int("chunk", chunk)
    input_size = tuple(input_size)
    if report is None:
        report = count(model, input_size)
    elif not report.layers or tuple(report.layers[0].in_shape) != input_size:
        raise ValueError(f"report was not counted on input_size {input_size}")
    rows = report.layers

    # --- pass 1: the dataflow of the "layers" schedule -----------------------------------------
    sizes: list[int] = [_numel(input_size)]   # tensor id -> elements; tensor 0 is the input
    shapes: list[tuple] = [input_size]
    reads: list[list[int]] = []
    writes: list[int | None] = []
    current = 0
    entry: dict[str, int] = {"": 0}           # composite module name -> its input tensor
    for row in rows:
        owner = row.name.rsplit(".", 1)[0] if row.op and "." in row.name else ("" if row.op else None)
        path = row.name if not row.op else owner
        parts = path.split(".") if path else []
        for i in range(1, len(parts) + 1):
            entry.setdefault(".".join(parts[:i]), current)
        if not row.op:  # a leaf module reads the previous output
            r = [current]
            if tuple(shapes[current]) != tuple(row.in_shape):
                raise ValueError(f"live_memory follows a chain, but {row.name!r} reads a "
                                 f"{list(row.in_shape)} tensor after a {list(shapes[current])} one")
        else:
            r = _operands(row, entry[owner], current, shapes)
        reads.append(r)
        if row.kind == "free":  # a view: no new tensor
            writes.append(None)
            shapes[current] = tuple(row.out_shape)
            continue
        sizes.append(_numel(row.out_shape))
        shapes.append(tuple(row.out_shape))
        writes.append(len(sizes) - 1)
        current = len(sizes) - 1

    names = [row.name for row in rows]
    kinds = [row.kind for row in rows]
    out_shapes = [tuple(row.out_shape) for row in rows]
    workspace = [0] * len(rows)

    # --- pass 2: in place BN/activations ("folded", "fused") ------------------------------------
    alias: dict[int, int] = {}  # a dropped in-place step's output -> the tensor it overwrote
    if schedule != "layers":
        last = _last_reader(reads)
        keep = []
        for i in range(len(rows)):
            original = reads[i]
            reads[i] = [alias.get(t, t) for t in original]
            w = writes[i]
            if kinds[i] in _IN_PLACE_KINDS and w is not None and len(original) == 1 \
                    and last[original[0]] == i and sizes[w] == sizes[original[0]]:
                alias[w] = reads[i][0]
                continue  # merged into the step that wrote its input
            keep.append(i)
        names, kinds, out_shapes, reads, writes, workspace = (
            [seq[i] for i in keep] for seq in (names, kinds, out_shapes, reads, writes, workspace))

    # --- pass 3: fused blocks ------------------------------------------------------------------
    if schedule == "fused":
        modules = dict(model.named_modules())
        fusable = [n for n, m in modules.items()
                   if isinstance(m, (InvertedResidual, DepthwiseSeparableConv))
                   and not any(isinstance(s, SqueezeExcitation) for s in m.modules())]
        for block in fusable:
            idx = [i for i, n in enumerate(names) if not block or n.startswith(block + ".")]
            if not idx:
                continue
            a, b = idx[0], idx[-1]
            x_id, y_id = alias.get(entry[block], entry[block]), writes[b]
            m = modules[block]
            hidden = getattr(m, "expanded_channels", m.in_channels)
            n_, _, h, w = shapes[x_id]
            ho, wo = out_shapes[b][2:4]
            expands = isinstance(m, InvertedResidual) and hidden != m.in_channels
            ws = n_ * min(chunk, hidden) * ((h * w if expands else 0) + ho * wo)
            names[a:b + 1] = [block]
            kinds[a:b + 1] = ["block"]
            out_shapes[a:b + 1] = [out_shapes[b]]
            reads[a:b + 1] = [[x_id]]
            writes[a:b + 1] = [y_id]
            workspace[a:b + 1] = [ws]

    # --- live memory at each step --------------------------------------------------------------
    last = _last_reader(reads)
    first = {w: i for i, w in enumerate(writes) if w is not None}
    first[0] = -1
    steps = []
    for i in range(len(names)):
        touched = set(reads[i]) | ({writes[i]} if writes[i] is not None else set())
        held = sum(sizes[t] for t in first if t not in touched and first[t] < i < last.get(t, -2))
        new = sizes[writes[i]] if writes[i] is not None and first[writes[i]] == i else 0
        live = sum(sizes[t] for t in touched) + held + workspace[i]
        steps.append(Step(names[i], kinds[i], out_shapes[i], live, held, new, workspace[i]))
    materialised = [shapes[w] for i, w in enumerate(writes) if w is not None and first[w] == i]
    return MemoryReport(steps, dtype_bytes, schedule, report.params, report.params_without_bn,
                        input_size, materialised)


def split_inverted_residual(block: nn.Module, x: torch.Tensor, chunk: int = 1) -> torch.Tensor:
    """§5.1's t-way split: a V2 block computed ``chunk`` expanded channels at a time (eval mode).

    F(x) = sum_i (B_i o N o A_i)(x): expand channels [i, i + chunk) (BN folded, ReLU6), filter them
    depthwise, and accumulate their projection into the output in place. Never holds more than
    ``chunk`` expanded channels; equal to ``block(x)`` up to float rounding.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    from .layers import InvertedResidual, SqueezeExcitation

    if not isinstance(block, InvertedResidual) or any(isinstance(m, SqueezeExcitation)
                                                      for m in block.modules()):
        raise ValueError("split_inverted_residual takes an InvertedResidual without SE "
                         "(SE needs the whole depthwise output)")
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"x must be (1, C, H, W), got {tuple(x.shape)}")
    check_positive_int("chunk", chunk)

    def folded(unit):  # a ConvBNAct as (weight, bias, conv, activation)
        conv, bn = unit[0], unit[1]
        wt, b = fuse_conv_bn_weights(conv.weight, None, bn.running_mean, bn.running_var, bn.eps,
                                     bn.weight, bn.bias)
        return wt.detach(), b.detach(), conv, (unit[2] if len(unit) > 2 else None)

    units = list(block.block)
    expand = folded(units[0]) if len(units) == 3 else None
    dw, project = folded(units[-2]), folded(units[-1])
    hidden, c_out = block.expanded_channels, block.out_channels
    with torch.no_grad():
        ho, wo = (conv_output_size(s, block.kernel_size, block.stride, (block.kernel_size - 1) // 2)
                  for s in x.shape[2:])
        y = project[1].view(c_out, 1).repeat(1, ho * wo)  # (C_out, H'W'): starts at the bias
        for i in range(0, hidden, chunk):
            j = min(i + chunk, hidden)
            if expand is None:  # t = 1: the depthwise reads x's channels directly (a view)
                e = x[:, i:j]
            else:
                e = _act_(expand[3], nn.functional.conv2d(x, expand[0][i:j], expand[1][i:j]))
            d = nn.functional.conv2d(e, dw[0][i:j], dw[1][i:j], dw[2].stride, dw[2].padding,
                                     groups=j - i)
            d = _act_(dw[3], d)
            del e
            y.addmm_(project[0][:, i:j, 0, 0], d.view(j - i, ho * wo))  # in place: no H'W' C_out temporary
            del d
        y = y.view(1, c_out, ho, wo)
        return y.add_(x) if block.use_res_connect else y


def _act_(act, t: torch.Tensor) -> torch.Tensor:
    """Apply a block's activation, in place for ReLU/ReLU6 (so the split holds no extra chunk)."""
    if act is None:
        return t
    if isinstance(act, nn.ReLU6):
        return t.clamp_(0.0, 6.0)
    if isinstance(act, nn.ReLU):
        return t.clamp_(min=0.0)
    return act(t)


def _operands(row, held: int, current: int, shapes: list[tuple]) -> list[int]:
    """The tensors an operator row reads: the previous output and, for two operands, the
    composite's input."""
    want = sorted(tuple(s) for s in row.operand_shapes)
    for cand in ([current], [held, current], [current, current]):
        if sorted(tuple(shapes[t]) for t in cand) == want:
            return sorted(set(cand))
    raise ValueError(f"live_memory follows a chain with residuals, but {row.name!r} (aten.{row.op}) "
                     f"reads tensors of shapes {[list(s) for s in row.operand_shapes]} that are "
                     f"neither the previous output nor its module's input")


def _last_reader(reads: list[list[int]]) -> dict[int, int]:
    """tensor id -> index of the last step that reads it."""
    last: dict[int, int] = {}
    for i, r in enumerate(reads):
        for t in r:
            last[t] = i
    return last


def _numel(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def _check_schedule(schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
