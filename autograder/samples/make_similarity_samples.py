"""Write the similarity sample class autograder/samples/similarity/ (class/, archive/, expected.json).

One assignment, ps4_inverted_residual (three answer cells: the block, the network, the MACs), filled
into the released notebook:

- ``s01``-``s05``: five independent correct solutions written differently (nn.Sequential steps, a
  helper that builds conv-BN-act, explicit conv/BN attributes, a ModuleList over a spec list, an
  OrderedDict), each with its own network builder and MAC formula;
- ``s06``, ``s07``: two blank notebooks (only the released stubs: boilerplate, never a match);
- ``s08``: a copy of ``s03`` with every name changed and independent lines reordered;
- ``s09``: the reference answer (solutions/) reformatted: one argument per line, other quotes, no
  comments, a different layout;
- ``s10``: mnlib's implementation (ConvBNAct and InvertedResidual of mnlib/layers.py, mnlib's
  mobilenet_v2 loop, cost.py's MAC helpers) adapted to the exercise's signatures;
- ``s11``: a copy of ``old02`` of an earlier term (archive/fall2025/, ``<student>/<notebook>``
  layout, passed with ``--against``), lightly renamed.

``expected.json`` lists the pairs that must be flagged (each copy against its true source) and
``tests/test_similarity.py`` checks that exactly those are. Every solution here but the copies is a
correct answer (the test runs the visible checks on them).

    python autograder/samples/make_similarity_samples.py --workspace workspace/similarity
    python -m autograder similarity --assignment ps4_inverted_residual --workspace workspace/similarity \\
        --against autograder/samples/similarity/archive/fall2025
"""
from __future__ import annotations

import json
import pathlib
import shutil

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[2]
ASSIGNMENT = "ps4_inverted_residual"
OUT = pathlib.Path(__file__).resolve().parent / "similarity"
BLOCK, NET, MACS = "ps4_answer_block", "ps4_answer_v2", "ps4_answer_macs"

# --- five independent correct solutions --------------------------------------------------------

S01 = {
    BLOCK: '''class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        mid = int(round(t * c_in))
        if mid != c_in:
            self.expand = nn.Sequential(
                nn.Conv2d(c_in, mid, kernel_size=1, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU6(inplace=True),
            )
        else:
            self.expand = nn.Identity()
        self.depthwise = nn.Sequential(
            nn.Conv2d(mid, mid, kernel_size=3, stride=stride, padding=1, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU6(inplace=True),
        )
        self.project = nn.Sequential(nn.Conv2d(mid, c_out, kernel_size=1, bias=False), nn.BatchNorm2d(c_out))
        self.use_res_connect = (stride == 1) and (c_in == c_out)

    def forward(self, x):
        out = self.project(self.depthwise(self.expand(x)))
        if self.use_res_connect:
            out = out + x
        return out
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    stem = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
    blocks = []
    channels = 32
    for expansion, width, repeats, first_stride in V2_TABLE:
        strides = [first_stride] + [1] * (repeats - 1)
        for s in strides:
            blocks.append(InvertedResidual(channels, width, s, expansion))
            channels = width
    head = nn.Sequential(nn.Conv2d(channels, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6())
    classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes))
    return nn.Sequential(stem, *blocks, head, classifier)
''',
    MACS: '''def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    import math
    mid = int(round(t * c_in))
    ho, wo = math.ceil(h / stride), math.ceil(w / stride)
    total = 0
    if mid != c_in:
        total += h * w * c_in * mid
    total += ho * wo * mid * k * k
    total += ho * wo * mid * c_out
    return total
''',
}

S02 = {
    BLOCK: '''def conv_bn(cin, cout, ksize, s=1, g=1, relu=True):
    mods = [nn.Conv2d(cin, cout, ksize, s, ksize // 2, groups=g, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        mods.append(nn.ReLU6())
    return nn.Sequential(*mods)


class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        hid = int(round(c_in * t))
        steps = []
        if hid != c_in:
            steps.append(conv_bn(c_in, hid, 1))
        steps += [conv_bn(hid, hid, 3, stride, hid), conv_bn(hid, c_out, 1, relu=False)]
        self.body = nn.Sequential(*steps)
        self.use_res_connect = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.body(x) if self.use_res_connect else self.body(x)
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    def stage(cin, t, cout, n, s):
        return [InvertedResidual(cin if j == 0 else cout, cout, s if j == 0 else 1, t) for j in range(n)]

    mods = [conv_bn(3, 32, 3, 2)]
    prev = 32
    for t, c, n, s in V2_TABLE:
        mods.extend(stage(prev, t, c, n, s))
        prev = c
    mods.append(conv_bn(prev, 1280, 1))
    mods.append(nn.AdaptiveAvgPool2d((1, 1)))
    mods.append(nn.Flatten(1))
    mods.append(nn.Dropout(p=0.2))
    mods.append(nn.Linear(1280, num_classes))
    return nn.Sequential(*mods)
''',
    MACS: '''def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    hid = int(round(c_in * t))
    oh = (h + stride - 1) // stride
    ow = (w + stride - 1) // stride
    expand = 0 if hid == c_in else c_in * hid * h * w
    return expand + hid * oh * ow * (k * k + c_out)
''',
}

S03 = {
    BLOCK: '''import torch.nn.functional as F


class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        width = int(round(t * c_in))
        self.has_expand = width != c_in
        if self.has_expand:
            self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=width, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.use_res_connect = stride == 1 and c_in == c_out
        self.relu6 = nn.ReLU6()

    def forward(self, x):
        h = x
        if self.has_expand:
            h = F.relu6(self.bn1(self.conv1(h)))
        h = F.relu6(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        if self.use_res_connect:
            return h + x
        return h
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    features = [nn.Conv2d(3, 32, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(32),
                nn.ReLU6()]
    c_prev = 32
    for row in V2_TABLE:
        t, c, n, s = row
        features.append(InvertedResidual(c_prev, c, s, t))
        for _ in range(n - 1):
            features.append(InvertedResidual(c, c, 1, t))
        c_prev = c
    features += [nn.Conv2d(c_prev, 1280, kernel_size=1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()]
    net = nn.Sequential(*features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                        nn.Linear(1280, num_classes))
    return net
''',
    MACS: '''def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    width = int(round(t * c_in))
    h_out = -(-h // stride)
    w_out = -(-w // stride)
    expand_macs = h * w * c_in * width if width != c_in else 0
    depthwise_macs = h_out * w_out * width * k ** 2
    project_macs = h_out * w_out * width * c_out
    return expand_macs + depthwise_macs + project_macs
''',
}

S04 = {
    BLOCK: '''class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        e = int(round(t * c_in))
        spec = []  # (in, out, kernel, stride, groups, activation?)
        if e != c_in:
            spec.append((c_in, e, 1, 1, 1, True))
        spec.append((e, e, 3, stride, e, True))
        spec.append((e, c_out, 1, 1, 1, False))
        self.stages = nn.ModuleList()
        for i, o, kk, ss, gg, act in spec:
            parts = [nn.Conv2d(i, o, kk, ss, (kk - 1) // 2, groups=gg, bias=False), nn.BatchNorm2d(o)]
            if act:
                parts.append(nn.ReLU6())
            self.stages.append(nn.Sequential(*parts))
        self.use_res_connect = c_in == c_out and stride == 1

    def forward(self, x):
        y = x
        for stage in self.stages:
            y = stage(y)
        return y + x if self.use_res_connect else y
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    seq = nn.Sequential()
    seq.append(nn.Conv2d(3, 32, 3, 2, 1, bias=False))
    seq.append(nn.BatchNorm2d(32))
    seq.append(nn.ReLU6())
    cin = 32
    i = 0
    while i < len(V2_TABLE):
        t, cout, reps, s = V2_TABLE[i]
        for r in range(reps):
            seq.append(InvertedResidual(cin, cout, 1 if r else s, t))
            cin = cout
        i += 1
    for m in (nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(), nn.AdaptiveAvgPool2d(1),
              nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes)):
        seq.append(m)
    return seq
''',
    MACS: '''def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    e = int(round(t * c_in))
    size_in = h * w
    size_out = ((h - 1) // stride + 1) * ((w - 1) // stride + 1)
    parts = [size_out * e * k * k, size_out * e * c_out]
    if e != c_in:
        parts.insert(0, size_in * c_in * e)
    return sum(parts)
''',
}

S05 = {
    BLOCK: '''from collections import OrderedDict


class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        n_hidden = int(round(c_in * t))
        named = OrderedDict()
        if n_hidden != c_in:
            named["expand_conv"] = nn.Conv2d(c_in, n_hidden, (1, 1), bias=False)
            named["expand_bn"] = nn.BatchNorm2d(n_hidden)
            named["expand_act"] = nn.ReLU6()
        named["dw_conv"] = nn.Conv2d(n_hidden, n_hidden, (3, 3), (stride, stride), (1, 1), groups=n_hidden,
                                     bias=False)
        named["dw_bn"] = nn.BatchNorm2d(n_hidden)
        named["dw_act"] = nn.ReLU6()
        named["pw_conv"] = nn.Conv2d(n_hidden, c_out, (1, 1), bias=False)
        named["pw_bn"] = nn.BatchNorm2d(c_out)
        self.net = nn.Sequential(named)
        self.use_res_connect = bool(stride == 1 and c_in == c_out)

    def forward(self, inp):
        res = self.net(inp)
        return res + inp if self.use_res_connect else res
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    plan = []
    for t, c, n, s in V2_TABLE:
        plan += [(t, c, s)] + [(t, c, 1)] * (n - 1)
    chans = [32] + [c for _, c, _ in plan]
    body = [InvertedResidual(chans[j], c, s, t) for j, (t, c, s) in enumerate(plan)]
    first = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
    last = [nn.Conv2d(chans[-1], 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()]
    pool_fc = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes)]
    return nn.Sequential(*(first + body + last + pool_fc))
''',
    MACS: '''def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    n_hidden = int(round(c_in * t))

    def out_size(n):
        return (n + 2 * ((k - 1) // 2) - k) // stride + 1

    positions = out_size(h) * out_size(w)
    cost = positions * n_hidden * (k * k) + positions * n_hidden * c_out
    return cost + (c_in * n_hidden * h * w if n_hidden != c_in else 0)
''',
}

# --- an earlier term (the --against archive) ----------------------------------------------------

OLD01 = {
    BLOCK: '''class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        h = int(round(t * c_in))
        layers = []
        if h != c_in:
            layers += [nn.Conv2d(c_in, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6()]
        layers += [nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6()]
        layers += [nn.Conv2d(h, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.f = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and c_in == c_out

    def forward(self, x):
        z = self.f(x)
        if not self.use_res_connect:
            return z
        return x + z
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    c0 = 32
    L = [nn.Conv2d(3, c0, 3, 2, 1, bias=False), nn.BatchNorm2d(c0), nn.ReLU6()]
    for (t, c, n, s) in V2_TABLE:
        L.append(InvertedResidual(c0, c, s, t))
        L.extend(InvertedResidual(c, c, 1, t) for _ in range(1, n))
        c0 = c
    L.extend([nn.Conv2d(c0, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()])
    L.extend([nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes)])
    return nn.Sequential(*L)
''',
    MACS: '''def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    hh = int(round(t * c_in))
    e = 0 if hh == c_in else h * w * c_in * hh
    return e + (-(-h // stride)) * (-(-w // stride)) * hh * (k * k + c_out)
''',
}

OLD02 = {
    BLOCK: '''def _unit(a, b, kernel, step=1, groups=1, activate=True):
    """conv (no bias) + BN (+ ReLU6)"""
    pad = (kernel - 1) // 2
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(a, b, kernel, step, pad, groups=groups, bias=False))
    seq.add_module("bn", nn.BatchNorm2d(b))
    if activate:
        seq.add_module("act", nn.ReLU6())
    return seq


class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        inner = int(round(t * c_in))
        self.use_res_connect = (c_in == c_out) and (stride == 1)
        self.expand = _unit(c_in, inner, 1) if inner != c_in else None
        self.dw = _unit(inner, inner, 3, stride, groups=inner)
        self.pw = _unit(inner, c_out, 1, activate=False)

    def forward(self, x):
        out = x if self.expand is None else self.expand(x)
        out = self.pw(self.dw(out))
        if self.use_res_connect:
            out += x
        return out
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    model = nn.Sequential()
    model.add_module("stem", _unit(3, 32, 3, 2))
    current = 32
    idx = 0
    for expand_ratio, out_ch, count, first in V2_TABLE:
        for rep in range(count):
            model.add_module(f"block{idx}", InvertedResidual(current, out_ch, first if rep == 0 else 1, expand_ratio))
            current = out_ch
            idx += 1
    model.add_module("last", _unit(current, 1280, 1))
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flat", nn.Flatten())
    model.add_module("drop", nn.Dropout(0.2))
    model.add_module("fc", nn.Linear(1280, num_classes))
    return model
''',
    MACS: '''def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    inner = int(round(t * c_in))
    pad = (k - 1) // 2
    out_h = (h + 2 * pad - k) // stride + 1
    out_w = (w + 2 * pad - k) // stride + 1
    macs = {"expand": h * w * c_in * inner if inner != c_in else 0,
            "depthwise": out_h * out_w * inner * k * k,
            "project": out_h * out_w * inner * c_out}
    return sum(macs.values())
''',
}

# --- the copies -------------------------------------------------------------------------------

# s08: s03 with every name changed and the order-free lines reordered
S08 = {
    BLOCK: '''import torch.nn.functional as fn


class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        hidden_ch = int(round(t * c_in))
        self.use_res_connect = stride == 1 and c_in == c_out
        self.do_expand = hidden_ch != c_in
        if self.do_expand:
            self.exp_conv = nn.Conv2d(c_in, hidden_ch, 1, bias=False)
            self.exp_norm = nn.BatchNorm2d(hidden_ch)
        self.dw_conv = nn.Conv2d(hidden_ch, hidden_ch, 3, stride=stride, padding=1, groups=hidden_ch, bias=False)
        self.dw_norm = nn.BatchNorm2d(hidden_ch)
        self.proj_conv = nn.Conv2d(hidden_ch, c_out, 1, bias=False)
        self.proj_norm = nn.BatchNorm2d(c_out)
        self.clip = nn.ReLU6()

    def forward(self, inputs):
        feat = inputs
        if self.do_expand:
            feat = fn.relu6(self.exp_norm(self.exp_conv(feat)))
        feat = fn.relu6(self.dw_norm(self.dw_conv(feat)))
        feat = self.proj_norm(self.proj_conv(feat))
        if self.use_res_connect:
            return feat + inputs
        return feat
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    layer_list = [nn.Conv2d(3, 32, kernel_size=3, stride=2, padding=1, bias=False),
                  nn.BatchNorm2d(32),
                  nn.ReLU6()]
    in_ch = 32
    for entry in V2_TABLE:
        exp, out_ch, reps, st = entry
        layer_list.append(InvertedResidual(in_ch, out_ch, st, exp))
        for _ in range(reps - 1):
            layer_list.append(InvertedResidual(out_ch, out_ch, 1, exp))
        in_ch = out_ch
    layer_list += [nn.Conv2d(in_ch, 1280, kernel_size=1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()]
    model = nn.Sequential(*layer_list, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                          nn.Linear(1280, num_classes))
    return model
''',
    MACS: '''def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    hidden_ch = int(round(t * c_in))
    wo = -(-w // stride)
    ho = -(-h // stride)
    proj = ho * wo * hidden_ch * c_out
    dw = ho * wo * hidden_ch * k ** 2
    exp = h * w * c_in * hidden_ch if hidden_ch != c_in else 0
    return exp + dw + proj
''',
}

# s09: the reference answer (solutions/), reformatted
S09 = {
    BLOCK: '''class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        hidden = int(round(t*c_in))
        self.use_res_connect = (stride == 1 and c_in == c_out)
        if hidden != c_in:
            self.expand = nn.Sequential(
                nn.Conv2d(c_in, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6()
            )
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, stride, 1,
                      groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6()
        )
        self.project = nn.Sequential(
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out)
        )

    def forward(self, x):
        y = (self.expand(x)
             if hasattr(self, 'expand')
             else x)
        y = self.project(
            self.depthwise(y)
        )
        return (x + y) if self.use_res_connect else y
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    layers = [
        nn.Conv2d(3, 32, 3, 2, 1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU6(),
    ]
    c = 32
    for t, out, n, s in V2_TABLE:
        for i in range(n):
            layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
            c = out
    layers += [
        nn.Conv2d(c, 1280, 1, bias=False),
        nn.BatchNorm2d(1280),
        nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(1280, num_classes),
    ]
    return nn.Sequential(*layers)
''',
    MACS: '''def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    hidden = int(round(t*c_in))
    h2, w2 = -(-h//stride), -(-w//stride)
    expand = h*w*c_in*hidden if hidden != c_in else 0
    return (expand
            + h2*w2*hidden*k*k
            + h2*w2*hidden*c_out)
''',
}

# s10: mnlib's implementation (mnlib/layers.py ConvBNAct + InvertedResidual, models.py, cost.py)
S10 = {
    BLOCK: '''class ConvBNAct(nn.Sequential):
    """Conv2d (no bias: BN follows) -> BatchNorm2d -> activation (omitted when None)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1,
                 groups=1, dilation=1, activation=nn.ReLU,
                 bn_eps=1e-5, bn_momentum=0.1):
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        padding = (kernel_size - 1) // 2 * dilation
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                      dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum),
        ]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """Expand 1x1 (t != 1) -> depthwise 3x3 (stride) -> linear 1x1 projection, plus the input when shapes allow."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        in_channels, out_channels, kernel_size, activation = c_in, c_out, 3, nn.ReLU6
        expanded_channels = int(round(in_channels * t))
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.expanded_channels, self.stride, self.kernel_size = expanded_channels, stride, kernel_size
        self.use_res_connect = stride == 1 and in_channels == out_channels

        layers = []
        if expanded_channels != in_channels:  # expand
            layers.append(ConvBNAct(in_channels, expanded_channels, 1, activation=activation))
        layers.append(ConvBNAct(expanded_channels, expanded_channels, kernel_size, stride,  # depthwise
                                groups=expanded_channels, activation=activation))
        layers.append(ConvBNAct(expanded_channels, out_channels, 1, activation=None))  # project
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res_connect else y
''',
    NET: '''def mobilenet_v2(num_classes=1000):
    """MobileNetV2 (width 1.0) built from V2_TABLE and your InvertedResidual."""
    c = 32
    layers = [ConvBNAct(3, c, 3, stride=2, activation=nn.ReLU6)]
    for t, stage_c, n, s in V2_TABLE:
        out = stage_c
        for i in range(n):  # only the first block of a stage strides
            layers.append(InvertedResidual(c, out, s if i == 0 else 1, t))
            c = out
    layers.append(ConvBNAct(c, 1280, 1, activation=nn.ReLU6))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes)))
''',
    MACS: '''def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    return out


def conv2d_macs(c_in, c_out, h, w, kernel_size=3, stride=1, padding=0, groups=1):
    ho = conv_output_size(h, kernel_size, stride, padding)
    wo = conv_output_size(w, kernel_size, stride, padding)
    return ho * wo * c_out * (c_in // groups) * kernel_size * kernel_size


def dsc_macs(c_in, c_out, h, w, kernel_size=3, stride=1, padding=None):
    padding = (kernel_size - 1) // 2 if padding is None else padding
    dw = conv2d_macs(c_in, c_in, h, w, kernel_size, stride, padding, groups=c_in)
    ho = conv_output_size(h, kernel_size, stride, padding)
    wo = conv_output_size(w, kernel_size, stride, padding)
    return dw + conv2d_macs(c_in, c_out, ho, wo, 1)


def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    """MACs of expand (if any) + depthwise KxK with stride + projection."""
    hidden = int(round(c_in * t))
    expand = conv2d_macs(c_in, hidden, h, w, 1) if hidden != c_in else 0
    return expand + dsc_macs(hidden, c_out, h, w, k, stride)
''',
}

# s11: old02 of fall 2025, a few names changed
S11 = {gid: src.replace("_unit", "make_unit").replace("inner", "mid_ch").replace("out_h", "oh").replace("out_w", "ow")
       for gid, src in OLD02.items()}

CLASS = {"s01": S01, "s02": S02, "s03": S03, "s04": S04, "s05": S05, "s06": {}, "s07": {},
         "s08": S08, "s09": S09, "s10": S10, "s11": S11}
ARCHIVE_TERM = "fall2025"
ARCHIVE = {"old01": OLD01, "old02": OLD02}
INDEPENDENT = ["s01", "s02", "s03", "s04", "s05"]
# (copy, its true source) as the report names them: a student id, solutions/<id>, mnlib,
# or <archive folder>/<student>
EXPECTED = [["s08", "s03"], ["s09", f"solutions/{ASSIGNMENT}"], ["s10", "mnlib"],
            ["s11", f"{ARCHIVE_TERM}/old02"]]


def released():
    return nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def fill(answers: dict[str, str]):
    nb = released()
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid].rstrip("\n")
    return nb


def write(out: pathlib.Path = OUT, workspace: pathlib.Path | None = None) -> pathlib.Path:
    """Write class/<student>/<assignment>/ (nbgrader's submitted/ layout), archive/<term>/<student>/
    and expected.json under ``out``; with ``workspace``, the class also into its submitted/ folder."""
    if out.exists():
        shutil.rmtree(out)
    for student, answers in CLASS.items():
        folder = out / "class" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(fill(answers), folder / f"{ASSIGNMENT}.ipynb")
    for student, answers in ARCHIVE.items():
        folder = out / "archive" / ARCHIVE_TERM / student
        folder.mkdir(parents=True)
        nbformat.write(fill(answers), folder / f"{ASSIGNMENT}.ipynb")
    (out / "expected.json").write_text(json.dumps(
        {"assignment": ASSIGNMENT, "independent": INDEPENDENT, "blank": ["s06", "s07"], "flagged": EXPECTED,
         "archive_independent": [f"{ARCHIVE_TERM}/old01"]}, indent=1) + "\n")
    if workspace is not None:
        shutil.copytree(out / "class", pathlib.Path(workspace) / "submitted", dirs_exist_ok=True)
    return out


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(OUT), help="where class/, archive/ and expected.json go")
    ap.add_argument("--workspace", default=None, help="also copy the class into WORKSPACE/submitted/")
    a = ap.parse_args()
    print(f"wrote {write(pathlib.Path(a.out), a.workspace and pathlib.Path(a.workspace))}")
