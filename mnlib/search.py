"""Latency-aware channel search in the manner of NetAdapt (Yang et al., ECCV 2018).

A network is made narrower one *channel group* at a time. A channel group is one set of feature
channels that several layers must agree on:

- its producers: the convolutions (with their batch norms) or linear layers whose output channels
  the group is; a residual ``x + y`` joins the channels of both operands into ONE group, because
  channel i of x is added to channel i of y: removing channel i from one operand and not from the
  other, or different channels from each, would change what is added to what;
- its depthwise layers: a depthwise convolution maps channel i to channel i (groups = C), so it
  passes the group through and shrinks with it (its weights, its groups, its BN);
- its consumers: the convolutions or linear layers that read the group as input channels.

Removing n channels of a group slices all of these at the same indices, so the narrower network
computes exactly what the original computes with those channels' producer weights set to zero
(up to the batch norm of the removed channels, whose output is then zero: see ``zero_channels``).
Which channels go: the ones whose producer filters have the smallest norm (summed over the
producers of a joined group). NetAdapt keeps "the N filters that have the largest l2-norm
magnitude" (Sec. 3.2.2); ``p=1`` gives the L1 ranking of Li et al. (ICLR 2017).

Supported: ``nn.Sequential`` models or ``mnlib.models.MobileNet`` built from ConvBNAct,
DepthwiseSeparableConv, InvertedResidual (without squeeze-and-excitation), Linear, and
parameter-free modules (pooling, Flatten, Dropout, activations). Anything else raises.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from ._checks import check_int
from .layers import ConvBNAct, DepthwiseSeparableConv, HardSigmoid, HardSwish, InvertedResidual
from .models import MobileNet

# Modules that keep the channels they receive (no weights over channels, or none at all).
_PASS = (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Identity,
         nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, HardSwish, HardSigmoid)


@dataclass(frozen=True)
class ChannelGroup:
    """One set of channels that must shrink together (module names as in ``named_modules``)."""
    name: str                                   # its producers, e.g. "1.project + 2.project"
    width: int                                  # current number of channels
    producers: tuple[tuple[str, str | None], ...]  # (conv or linear, its batch norm or None)
    depthwise: tuple[tuple[str, str], ...]      # (depthwise conv, its batch norm): channel i -> i
    consumers: tuple[str, ...]                  # conv or linear reading the group as input channels


class _Open:
    """A group while the walk is still adding members to it."""

    def __init__(self, width: int):
        self.width, self.labels = width, []
        self.producers, self.depthwise, self.consumers = [], [], []

    def produce(self, label, conv, bn):
        self.labels.append(label)
        self.producers.append((conv, bn))


def _blocks(model: nn.Module):
    """(name, module) of the top-level blocks, in forward order."""
    if isinstance(model, MobileNet):
        yield from ((f"features.{n}", m) for n, m in model.features.named_children())
        yield "pool", model.pool
        yield "flatten", model.flatten
        yield from ((f"classifier.{n}", m) for n, m in model.classifier.named_children())
    elif isinstance(model, nn.Sequential) and not isinstance(model, (ConvBNAct, DepthwiseSeparableConv)):
        for n, m in model.named_children():
            if type(m) is nn.Sequential:  # a plain Sequential inside: its children run in order
                yield from ((f"{n}.{k}", c) for k, c in _blocks(m))
            else:
                yield n, m
    else:
        raise ValueError(f"channel groups are found in an nn.Sequential or a mnlib MobileNet, "
                         f"got {type(model).__name__}")


def _conv_bn(name: str, cba: ConvBNAct) -> tuple[str, str, nn.Conv2d]:
    return f"{name}.0", f"{name}.1", cba[0]


def channel_groups(model: nn.Module, input_channels: int | None = None) -> list[ChannelGroup]:
    """The shrinkable channel groups of ``model``, in forward order.

    The network's input channels (no producer) and its outputs (no consumer) are not shrinkable and
    are left out.
    """
    groups: list[_Open] = []
    cur = _Open(input_channels or 0)

    def new(width):
        nonlocal cur
        cur = _Open(width)
        groups.append(cur)
        return cur

    def conv_layer(label, name, cba: ConvBNAct):
        c, b, conv = _conv_bn(name, cba)
        if conv.groups == 1:
            cur.consumers.append(c)
            new(conv.out_channels).produce(label, c, b)
        elif conv.groups == conv.in_channels == conv.out_channels:
            cur.depthwise.append((c, b))
        else:
            raise ValueError(f"{name}: grouped convolution (groups={conv.groups}) is not supported")

    for name, m in _blocks(model):
        if isinstance(m, DepthwiseSeparableConv):
            conv_layer(name + ".depthwise", name + ".depthwise", m.depthwise)
            conv_layer(name + ".pointwise", name + ".pointwise", m.pointwise)
        elif isinstance(m, ConvBNAct):
            conv_layer(name, name, m)
        elif isinstance(m, InvertedResidual):
            if any(not isinstance(layer, ConvBNAct) for layer in m.block):
                raise ValueError(f"{name}: squeeze-and-excitation blocks are not supported")
            entry = cur
            *body, project = list(m.block)
            for i, layer in enumerate(body):  # expand (if any) then depthwise
                label = f"{name}.expand" if layer[0].groups == 1 else f"{name}.depthwise"
                conv_layer(label, f"{name}.block.{i}", layer)
            c, b, conv = _conv_bn(f"{name}.block.{len(body)}", project)
            cur.consumers.append(c)
            if m.use_res_connect:  # x + y: the output is the entry group itself, one more producer
                cur = entry
                entry.produce(f"{name}.project", c, b)
            else:
                new(conv.out_channels).produce(f"{name}.project", c, b)
        elif isinstance(m, nn.Linear):
            cur.consumers.append(name)
            new(m.out_features).produce(name, name, None)
        elif isinstance(m, _PASS):
            continue
        else:
            raise ValueError(f"{name}: no channel rule for {type(m).__name__}")
    return [ChannelGroup(" + ".join(g.labels), g.width, tuple(g.producers), tuple(g.depthwise),
                         tuple(g.consumers)) for g in groups if g.consumers]


def group_by_name(model: nn.Module, name: str) -> ChannelGroup:
    found = [g for g in channel_groups(model) if g.name == name]
    if not found:
        raise ValueError(f"no channel group {name!r}; the groups are "
                         f"{[g.name for g in channel_groups(model)]}")
    return found[0]


def filter_norms(model: nn.Module, group: ChannelGroup, p: float = 2) -> torch.Tensor:
    """Per channel of ``group``: the sum over its producers of the p-norm of that channel's filter."""
    mods = dict(model.named_modules())
    total = torch.zeros(group.width)
    for conv, _ in group.producers:
        w = mods[conv].weight.detach()
        total += w.reshape(w.shape[0], -1).norm(p=p, dim=1)
    return total


def _slice_param(module, attr, idx, dim):
    t = getattr(module, attr)
    if t is None:
        return
    new = t.detach().index_select(dim, idx).clone()
    if isinstance(t, nn.Parameter):
        setattr(module, attr, nn.Parameter(new, requires_grad=t.requires_grad))
    else:
        setattr(module, attr, new)


def _slice_bn(bn: nn.BatchNorm2d, idx):
    for attr in ("weight", "bias", "running_mean", "running_var"):
        _slice_param(bn, attr, idx, 0)
    bn.num_features = len(idx)


def _resync(model: nn.Module) -> None:
    """Make the blocks' own channel attributes agree with their (sliced) layers."""
    for m in model.modules():
        if isinstance(m, ConvBNAct):
            m.in_channels, m.out_channels, m.groups = m[0].in_channels, m[0].out_channels, m[0].groups
        elif isinstance(m, DepthwiseSeparableConv):
            m.in_channels, m.out_channels = m.depthwise.in_channels, m.pointwise.out_channels
        elif isinstance(m, InvertedResidual):
            m.in_channels, m.out_channels = m.block[0][0].in_channels, m.block[-1][0].out_channels
            m.expanded_channels = m.block[-1][0].in_channels


def keep_channels(model: nn.Module, group: ChannelGroup | str, keep) -> nn.Module:
    """A copy of ``model`` in which ``group`` keeps only the channels ``keep`` (indices, in order)."""
    if isinstance(group, str):
        group = group_by_name(model, group)
    idx = torch.as_tensor(sorted(int(i) for i in keep), dtype=torch.long)
    if len(idx) == 0 or len(set(idx.tolist())) != len(idx) or idx.min() < 0 or idx.max() >= group.width:
        raise ValueError(f"keep must be distinct channel indices in [0, {group.width}) and not empty")
    new = copy.deepcopy(model)
    mods = dict(new.named_modules())
    k = len(idx)
    for conv, bn in group.producers:
        m = mods[conv]
        _slice_param(m, "weight", idx, 0)
        _slice_param(m, "bias", idx, 0)
        if isinstance(m, nn.Linear):
            m.out_features = k
        else:
            m.out_channels = k
        if bn is not None:
            _slice_bn(mods[bn], idx)
    for conv, bn in group.depthwise:
        m = mods[conv]
        _slice_param(m, "weight", idx, 0)   # (C, 1, K, K): one filter per channel
        _slice_param(m, "bias", idx, 0)
        m.in_channels = m.out_channels = m.groups = k
        _slice_bn(mods[bn], idx)
    for name in group.consumers:
        m = mods[name]
        _slice_param(m, "weight", idx, 1)   # (C_out, C_in, ...) : input channels are dim 1
        if isinstance(m, nn.Linear):
            m.in_features = k
        else:
            m.in_channels = k
    _resync(new)
    return new


def shrink_layer(model: nn.Module, group: ChannelGroup | str, n: int, p: float = 2) -> nn.Module:
    """A copy of ``model`` with the ``n`` channels of ``group`` of smallest filter norm removed."""
    if isinstance(group, str):
        group = group_by_name(model, group)
    check_int("n", n, 0)
    if n >= group.width:
        raise ValueError(f"cannot remove {n} of the {group.width} channels of {group.name!r}")
    norms = filter_norms(model, group, p)
    keep = torch.argsort(norms, descending=True, stable=True)[:group.width - n]
    return keep_channels(model, group, keep)


def zero_channels(model: nn.Module, group: ChannelGroup | str, drop) -> nn.Module:
    """A copy of ``model`` whose channels ``drop`` of ``group`` output exactly zero.

    The producers' filters (and biases) and the weight and bias of their batch norms and of the
    group's depthwise batch norms are zeroed, so the dropped channels carry 0 into every consumer
    (ReLU, ReLU6 and hard-swish map 0 to 0): the reference ``keep_channels`` must equal.
    """
    if isinstance(group, str):
        group = group_by_name(model, group)
    new = copy.deepcopy(model)
    mods = dict(new.named_modules())
    idx = torch.as_tensor(list(drop), dtype=torch.long)
    with torch.no_grad():
        for conv, bn in group.producers:
            mods[conv].weight[idx] = 0
            if mods[conv].bias is not None:
                mods[conv].bias[idx] = 0
            if bn is not None:
                mods[bn].weight[idx] = 0
                mods[bn].bias[idx] = 0
        for conv, bn in group.depthwise:  # a depthwise BN would turn the zeros into its bias again
            mods[bn].weight[idx] = 0
            mods[bn].bias[idx] = 0
    return new


def recompute_bn(model: nn.Module, x: torch.Tensor, batch: int = 256) -> nn.Module:
    """Replace every batch norm's running statistics by their exact average over ``x`` (in place).

    After channels are removed, the statistics of the layers after them no longer describe their
    inputs; this re-estimates them without training (momentum=None: a cumulative average).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for xb in x.split(batch):
            model(xb)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()


# ---------------------------------------------------------------- a latency model for one network

def random_widths(model: nn.Module, rng: np.random.Generator, low: float = 0.25,
                  granularity: int = 4) -> nn.Module:
    """``model`` with every channel group cut to a random width in [low, 1] x its width (for timing)."""
    for g in channel_groups(model):
        floor = max(granularity, int(np.ceil(low * g.width)))
        width = int(rng.integers(floor, g.width + 1)) if floor < g.width else g.width
        if width < g.width:
            model = keep_channels(model, g, range(width))
    return model


# ---------------------------------------------------------------- the NetAdapt loop

@dataclass
class Step:
    """One iteration of ``netadapt``: the network it chose, and every proposal it weighed."""
    model: nn.Module
    group: str | None             # the group shrunk (None for the starting network)
    removed: int                  # channels removed from it
    resource: float               # resource(model)
    accuracy: float               # evaluate(model) after the fine-tune
    widths: dict[str, int] = field(default_factory=dict)
    proposals: list[dict] = field(default_factory=list)  # group, removed, resource, accuracy, score


def smallest_cut(model: nn.Module, group: ChannelGroup, resource: Callable[[nn.Module], float],
                 target: float, granularity: int = 4, min_width: int = 4, p: float = 2):
    """(n, shrunk model): the fewest channels (a multiple of ``granularity``) to remove from ``group``
    so that resource(shrunk) <= target; None when even the narrowest allowed width misses it.

    NetAdapt's "choose the number of filters" step; bisection assumes the resource does not grow as
    channels are removed."""
    most = (group.width - min_width) // granularity * granularity
    if most <= 0:
        return None
    cache = {}

    def shrunk(n):
        if n not in cache:
            cache[n] = shrink_layer(model, group, n, p)
        return cache[n]

    if resource(shrunk(most)) > target:
        return None
    lo, hi = 0, most // granularity    # in units of granularity; hi is known to meet the target
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if resource(shrunk(mid * granularity)) <= target:
            hi = mid
        else:
            lo = mid
    return hi * granularity, shrunk(hi * granularity)


def netadapt(model: nn.Module, *, resource: Callable[[nn.Module], float], step: float,
             done: Callable[[nn.Module], bool], evaluate: Callable[[nn.Module], float],
             short_tune: Callable[[nn.Module], nn.Module], tune: Callable[[nn.Module], nn.Module],
             granularity: int = 4, min_width: int = 4, p: float = 2, max_iter: int = 50,
             log: Callable[[str], None] | None = None) -> list[Step]:
    """Shrink ``model`` one channel group per iteration until ``done(model)``.

    Each iteration: for every group, remove the fewest channels that lower ``resource`` by ``step``
    (``smallest_cut``, smallest-norm filters), ``short_tune`` the proposal and ``evaluate`` it; keep
    the proposal that loses the least accuracy per unit of resource saved, ``tune`` it, and go on.
    Returns the path: the starting network, then one Step per iteration.
    """
    acc = evaluate(model)
    path = [Step(model, None, 0, resource(model), acc, {g.name: g.width for g in channel_groups(model)})]
    for _ in range(max_iter):
        if done(model):
            break
        now = path[-1].resource
        proposals = []
        for g in channel_groups(model):
            cut = smallest_cut(model, g, resource, now - step, granularity, min_width, p)
            if cut is None:
                continue
            n, candidate = cut
            candidate = short_tune(candidate)
            r, a = resource(candidate), evaluate(candidate)
            proposals.append(dict(group=g.name, removed=n, resource=r, accuracy=a,
                                  score=(acc - a) / (now - r), model=candidate))
        if not proposals:
            if log:
                log("no group can meet the next resource step: stopping")
            break
        best = min(proposals, key=lambda q: q["score"])   # least accuracy lost per unit saved
        model = tune(best["model"])
        acc = evaluate(model)
        path.append(Step(model, best["group"], best["removed"], resource(model), acc,
                         {g.name: g.width for g in channel_groups(model)},
                         [{k: v for k, v in q.items() if k != "model"} for q in proposals]))
        if log:
            log(f"iteration {len(path) - 1}: -{best['removed']} channels of {best['group']}, "
                f"resource {path[-1].resource:.4g}, accuracy {acc:.3f}")
    return path
