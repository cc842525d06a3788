"""mnlib.memory against an independent measurement: the tensor storages a real forward pass reads
and writes, recorded by hooks and a TorchDispatchMode, with liveness taken from those storages
(a storage lives from the operation that creates it to the last one that reads it)."""
from __future__ import annotations

import copy
import math
import weakref

import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils._python_dispatch import TorchDispatchMode

from mnlib import layers, memory, models


# --- the oracle: storages seen during a real forward pass ------------------------------------

def _key(t: torch.Tensor) -> tuple[int, int]:
    s = t.untyped_storage()
    return s.data_ptr(), s.nbytes()


def _tensors(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    return []


def traced_live_bytes(model: nn.Module, x: torch.Tensor, shapes: list | None = None) -> list[tuple[int, int]]:
    """(live bytes, new bytes) at each operation that creates a storage, measured on a forward pass.

    ``shapes``, if given, receives the shape of every tensor that owns a new storage.

    Operations are leaf-module calls and the aten operators a composite module runs itself. Every
    tensor is kept referenced until the end, so no address is reused and a storage is identified by
    (data_ptr, nbytes). Reads and writes come from the tensors themselves, not from shapes.
    """
    leaves = {id(m) for m in model.modules() if not any(True for _ in m.children())}
    stack: list[nn.Module] = []
    events: list[tuple[set, set]] = []  # (storages read, storages created)
    seen = {_key(x)}
    keep: list[torch.Tensor] = [x]

    def record(inputs, outputs):
        reads = {_key(t) for t in _tensors(inputs) if t.untyped_storage().nbytes()}
        outs = [t for t in _tensors(outputs) if t.untyped_storage().nbytes()]
        keep.extend(outs)
        created = {_key(t) for t in outs} - seen
        if shapes is not None:
            shapes.extend(tuple(t.shape) for t in outs if _key(t) in created)
        seen.update(created)
        events.append((reads, created))

    def pre(mod, inputs):
        stack.append(mod)

    def post(mod, inputs, output):
        stack.pop()
        if id(mod) in leaves:
            record(inputs, output)

    class Ops(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not stack or id(stack[-1]) not in leaves:  # a composite's own operator
                record(list(args) + list((kwargs or {}).values()), out)
            return out

    handles = [h for m in model.modules()
               for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        with torch.no_grad(), Ops():
            model(x)
    finally:
        for h in handles:
            h.remove()
    size = dict(k for k in seen)  # data_ptr -> nbytes
    first = {_key(x)[0]: -1}
    last: dict[int, int] = {}
    for i, (reads, created) in enumerate(events):
        for k in created:
            first[k[0]] = i
        for k in reads:
            last[k[0]] = i
    out = []
    for i, (reads, created) in enumerate(events):
        if not created:
            continue  # a view or an in-place operator: it allocates nothing
        live = sum(size[p] for p in first if first[p] <= i <= max(first[p], last.get(p, -1)))
        out.append((live, sum(k[1] for k in created)))
    return out


def mnlib_live_bytes(model, size, schedule) -> list[tuple[int, int]]:
    r = memory.live_memory(model, size, dtype_bytes=4, schedule=schedule)
    return [(s.live * 4, s.new * 4) for s in r.steps if s.new]


def folded_copy(model: nn.Module) -> nn.Module:
    """The model as a runtime runs it: BN folded into each conv, activations in place."""
    model = copy.deepcopy(model).eval()
    in_place = {nn.ReLU: lambda: nn.ReLU(inplace=True), nn.ReLU6: lambda: nn.ReLU6(inplace=True),
                layers.HardSwish: lambda: nn.Hardswish(inplace=True),
                layers.HardSigmoid: lambda: nn.Hardsigmoid(inplace=True)}
    for mod in list(model.modules()):
        for name, child in list(mod.named_children()):
            if type(child) in in_place:
                setattr(mod, name, in_place[type(child)]())
        if isinstance(mod, nn.Sequential):
            kids = list(mod.named_children())
            for (n1, a), (n2, b) in zip(kids, kids[1:]):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    setattr(mod, n1, fuse_conv_bn_eval(a, b))
                    setattr(mod, n2, nn.Identity())
    return model


MODELS = [models.mobilenet_v1, models.mobilenet_v2, models.mobilenet_v3_large,
          models.mobilenet_v3_small]


@pytest.mark.parametrize("size", [(1, 3, 64, 64), (2, 3, 96, 80)])
@pytest.mark.parametrize("builder", MODELS, ids=lambda b: b.__name__)
def test_layers_schedule_matches_storages_of_a_real_forward_pass(builder, size):
    """Does every step of the 'layers' schedule hold exactly the bytes a real eager forward pass
    has created and still needs (V1, V2, V3, two input sizes, batch 2), and is the peak the same?"""
    torch.manual_seed(0)
    model = builder(width_mult=0.5, num_classes=10).eval()
    measured = traced_live_bytes(model, torch.randn(size))
    computed = mnlib_live_bytes(model, size, "layers")
    assert computed == measured
    assert memory.live_memory(model, size, 4, "layers").peak == max(m for m, _ in measured)


@pytest.mark.parametrize("size", [(1, 3, 64, 64), (1, 3, 112, 96)])
@pytest.mark.parametrize("builder", MODELS, ids=lambda b: b.__name__)
def test_folded_schedule_matches_a_folded_in_place_model(builder, size):
    """Does the 'folded' schedule equal the storages of the same network with BN folded into its
    convs (torch's fuse_conv_bn_eval) and in-place activations, step by step?"""
    torch.manual_seed(0)
    model = builder(width_mult=0.75, num_classes=10).eval()
    x = torch.randn(size)
    runtime = folded_copy(model)
    torch.testing.assert_close(runtime(x), model(x), rtol=1e-4, atol=1e-4)  # the same function
    shapes: list[tuple] = []
    assert mnlib_live_bytes(model, size, "folded") == traced_live_bytes(runtime, x, shapes)
    widest: dict[tuple, tuple] = {}  # Table 3's quantity from the measured storages
    for shp in shapes:
        hw = tuple(shp[2:4]) if len(shp) == 4 else (1, 1)
        if shp[1] > widest.get(hw, (0, 0))[0]:
            widest[hw] = (shp[1], math.prod(shp) * 4)
    report = memory.live_memory(model, size, 4, "folded")
    assert report.largest_by_resolution() == dict(sorted(widest.items(), reverse=True))


def test_hand_checked_small_networks():
    """A conv-BN-ReLU and one inverted residual, counted by hand (elements, batch 1)."""
    unit = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    # x = 3*4*4 = 48, each output 8*4*4 = 128: conv 48+128, BN 128+128, ReLU 128+128
    assert [s.live for s in memory.live_memory(unit, (1, 3, 4, 4), 1, "layers").steps] == [176, 256, 256]
    assert [s.live for s in memory.live_memory(unit, (1, 3, 4, 4), 1, "folded").steps] == [176]
    block = layers.InvertedResidual(4, 4, 1, t=2)  # x 64, expanded 8*16 = 128, y 64
    folded = memory.live_memory(block, (1, 4, 4, 4), 1, "folded")
    # expand x+E; depthwise E+D+x(held); project D+y+x(held); add x+y+out
    assert [s.live for s in folded.steps] == [192, 320, 256, 192]
    assert [s.held for s in folded.steps] == [0, 64, 64, 0]
    # fused, one expanded channel at a time: x + y + (16 + 16)
    assert [s.live for s in memory.live_memory(block, (1, 4, 4, 4), 1, "fused").steps] == [160]
    assert memory.live_memory(block, (1, 4, 4, 4), 2, "fused", chunk=3).peak == 2 * (128 + 3 * 32)
    assert memory.tensor_bytes(16, 112, 112) == 401408  # the paper's "16/400" at 16 bits


@pytest.mark.parametrize("schedule", ["folded", "fused"])
def test_block_formula_agrees_with_the_walk_on_every_v2_block(schedule):
    """inverted_residual_live (shapes only) against live_memory of each MobileNetV2 block alone."""
    model = models.mobilenet_v2()
    h = 112
    for blk in model.features[1:-1]:
        walked = memory.live_memory(blk, (1, blk.in_channels, h, h), 1, schedule, chunk=4)
        formula = memory.inverted_residual_live(blk.in_channels, blk.out_channels, h, h,
                                                blk.expanded_channels / blk.in_channels,
                                                blk.stride, schedule=schedule, chunk=4)
        assert [s.live for s in walked.steps] == formula
        h = (h + blk.stride - 1) // blk.stride


def test_fusion_needs_per_channel_blocks():
    """A V3 block with SE is not fused (SE pools the whole depthwise output); one without SE is."""
    model = models.mobilenet_v3_large()
    report = memory.live_memory(model, (1, 3, 96, 96), 1, "fused")
    fused = {s.name for s in report.steps if s.kind == "block"}
    with_se = {f"features.{i}" for i, b in enumerate(model.features)
               if any(isinstance(m, layers.SqueezeExcitation) for m in b.modules())}
    blocks = {f"features.{i}" for i, b in enumerate(model.features)
              if isinstance(b, layers.InvertedResidual)}
    assert with_se and fused == blocks - with_se


@pytest.mark.parametrize("idx,chunk", [(1, 1), (2, 1), (3, 4), (4, 3), (14, 7)])
def test_split_block_is_exact_and_holds_what_fused_says(idx, chunk):
    """§5.1's split computes the block's output, and the activation storages alive while it runs
    (measured with weakrefs) never exceed |x| + |y| + chunk (HW + H'W'), the 'fused' step."""
    torch.manual_seed(idx)
    model = models.mobilenet_v2().eval()
    block = model.features[idx]
    for m in block.modules():  # non-trivial BN statistics, so folding is really tested
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    h = 10  # a spatial size no weight shares (K = 3 or 1)
    x = torch.randn(1, block.in_channels, h, h)
    torch.testing.assert_close(memory.split_inverted_residual(block, x, chunk), block(x),
                               rtol=1e-4, atol=1e-4)
    ho = (h + block.stride - 1) // block.stride
    xs = x.untyped_storage()
    alive: dict[int, tuple[weakref.ref, int]] = {xs.data_ptr(): (weakref.ref(xs), xs.nbytes())}
    peak = [0]

    class Watch(TorchDispatchMode):  # activations: tensors whose last dims span H W or H'W'
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in _tensors(out):
                spatial = t.shape[-1] * (t.shape[-2] if t.dim() == 4 else 1)
                if t.dim() in (2, 4) and spatial in (h * h, ho * ho):
                    s = t.untyped_storage()
                    alive.setdefault(s.data_ptr(), (weakref.ref(s), s.nbytes()))
            now = sum(n for r, n in alive.values() if r() is not None)
            peak[0] = max(peak[0], now)
            return out

    with torch.no_grad(), Watch():
        memory.split_inverted_residual(block, x, chunk)
    report = memory.live_memory(block, tuple(x.shape), 4, "fused", chunk=chunk)
    assert len(report.steps) == 1
    assert peak[0] == report.peak


def test_peak_and_tables_for_the_paper_setting():
    """V1 at 224 materialises 64 x 112 x 112 at 16 bits, the widest tensor of all (Table 3's 1600K);
    fusing V2's blocks leaves only bottleneck tensors, V1's do not shrink."""
    v1 = memory.live_memory(models.mobilenet_v1(), (1, 3, 224, 224), 2, "fused")
    table = v1.largest_by_resolution()
    assert table[(112, 112)] == (64, 64 * 112 * 112 * 2)
    assert table[(7, 7)][0] == 1024
    v2 = memory.live_memory(models.mobilenet_v2(), (1, 3, 224, 224), 2, "fused")
    assert v2.peak < memory.live_memory(models.mobilenet_v2(), (1, 3, 224, 224), 2, "folded").peak
    assert max(c for c, _ in v2.largest_by_resolution().values()) == 1280  # the last 1x1 conv
    assert v1.peak_step.name == "features.1"


def test_bad_input_raises():
    with pytest.raises(ValueError, match="schedule"):
        memory.live_memory(models.mobilenet_v2(), (1, 3, 64, 64), schedule="magic")
    with pytest.raises(ValueError, match="dtype_bytes"):
        memory.live_memory(models.mobilenet_v2(), (1, 3, 64, 64), dtype_bytes=0)

    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], 1)

    with pytest.raises(ValueError, match="chain"):
        memory.live_memory(TwoBranches(), (1, 3, 8, 8))
    with pytest.raises(ValueError, match="SE"):
        memory.split_inverted_residual(models.mobilenet_v3_large().features[4], torch.zeros(1, 24, 8, 8))
