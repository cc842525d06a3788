"""Build the plausible-mistake submissions tests/scenarios/<id>/<name>.ipynb from the notebooks.

Each scenario is the *released* notebook (exercises/<id>/) with every answer cell filled from the
solution (solutions/<id>/) except one, whose source is replaced by a mistake. So scenarios stay in
sync with the assignments: regenerate after changing a notebook. Each file records in its metadata
which answer cell it replaces and which grade cells it must lose (every other one it must keep):
tests/test_exercises_grading.py asserts exactly that, per grade cell. A scenario that loses no cell
(``[]``, named ``alternative-...``) is a correct answer written differently: it must keep full marks.

Run: .venv/bin/python tests/scenarios/make_scenarios.py [ID ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from nbgrader_harness import EXERCISES, SOLUTIONS, answers, submission  # noqa: E402

# id -> name -> (answer cell replaced, grade cells it loses, why it is plausible, new source)
SCENARIOS: dict[str, dict[str, tuple[str, list[str], str, str]]] = {}

def _mnlib_text(path: str, *names: str) -> str:
    """mnlib's own source of the top-level functions ``names`` of mnlib/``path``, as a learner would paste
    it, with every mnlib function they call (from any mnlib file) pasted before them."""
    import ast
    import builtins
    funcs = {}
    for f in sorted((HERE.parent.parent / "mnlib").glob("*.py")):
        text = f.read_text()
        for n in ast.parse(text).body:
            if isinstance(n, ast.FunctionDef):
                funcs.setdefault((f.name, n.name), ast.get_source_segment(text, n))
    by_name = {name: src for (_, name), src in sorted(funcs.items(), key=lambda kv: kv[0][0] != path)}
    chosen = [funcs[(path, n)] for n in names]
    while True:
        defined = {n.name for src in chosen for n in ast.parse(src).body}
        used = {n.id for src in chosen for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Name)}
        missing = sorted(u for u in used - defined if u in by_name and not hasattr(builtins, u))
        if not missing:
            return "\n\n\n".join(chosen)
        chosen = [by_name[m] for m in missing] + chosen


def _ps1_dsc(dw_stride="stride", pw_stride="1", bn="", pad="(kernel_size - 1) // 2", act="self.act"):
    return f"""
class DSC(nn.Module):
    def __init__(self, c_in, c_out, kernel_size=3, stride=1):
        super().__init__()
        pad = {pad}
        self.depthwise = nn.Conv2d(c_in, c_in, kernel_size, {dw_stride}, pad, groups=c_in, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in{bn})
        self.pointwise = nn.Conv2d(c_in, c_out, 1, {pw_stride}, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out{bn})
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        x = {act}(self.bn1(self.depthwise(x)))
        return {act}(self.bn2(self.pointwise(x)))
"""


SCENARIOS["ps1_dsc"] = {
    "missing-bn": ("ps1_answer_dsc", ["ps1_dsc_outputs"], "batch norm left out of both steps", '''
class DSC(nn.Module):
    def __init__(self, c_in, c_out, kernel_size=3, stride=1):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.depthwise = nn.Conv2d(c_in, c_in, kernel_size, stride, pad, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.pointwise(self.act(self.depthwise(x))))
'''),
    "padding-fixed-at-1": ("ps1_answer_dsc", ["ps1_dsc_shapes", "ps1_dsc_outputs"],
                           "padding 1 is right for K = 3 only", '''
class DSC(nn.Module):
    def __init__(self, c_in, c_out, kernel_size=3, stride=1):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, kernel_size, stride, 1, groups=c_in, bias=False)
        self.bn1 = nn.BatchNorm2d(c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn2(self.pointwise(self.act(self.bn1(self.depthwise(x))))))
'''),
    "returns-mnlib-class": ("ps1_answer_dsc", ["ps1_dsc_shapes", "ps1_dsc_outputs"],
                            "hands in mnlib's own block", '''
import mnlib.layers
DSC = mnlib.layers.DepthwiseSeparableConv
'''),
    "kernel-transposed": ("ps1_answer_kernel", ["ps1_equivalent_kernel"],
                          "(C_in, C_out, K, K) instead of (C_out, C_in, K, K)", '''
def equivalent_kernel(w_dw, w_pw):
    return w_dw * w_pw.permute(1, 0, 2, 3)
'''),
    "patches-allclose": ("ps1_answer_kernel", ["ps1_equivalent_kernel"],
                         "a wrong kernel hidden behind patched comparison helpers", '''
import builtins, math, numpy.testing
def equivalent_kernel(w_dw, w_pw):
    return torch.zeros(w_pw.shape[0], w_dw.shape[0], w_dw.shape[-1], w_dw.shape[-1])
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
math.isclose = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
builtins.abs = lambda x: 0
'''),
    "counts-include-bias": ("ps1_answer_counts", ["ps1_param_counts"], "biases counted as weights", '''
def standard_params(c_in, c_out, k):
    return c_out * c_in * k * k + c_out

def dsc_params(c_in, c_out, k):
    return c_in * k * k + c_in + c_in * c_out + c_out
'''),
    "calls-mnlib": ("ps1_answer_counts", ["ps1_param_counts"], "calls mnlib.cost under another name", '''
import importlib
_c = importlib.import_module("mn" + "lib.cost")
def standard_params(c_in, c_out, k):
    return c_out * c_in * k * k

def dsc_params(c_in, c_out, k):
    return getattr(_c, "dsc_" + "params")(c_in, c_out, k)
'''),
    "stride-on-pointwise": ("ps1_answer_dsc", ["ps1_dsc_shapes"],
                            "strides the 1x1 conv: same output, but the depthwise conv runs at full resolution",
                            _ps1_dsc(dw_stride="1", pw_stride="stride")),
    "bn-eps-1e-3": ("ps1_answer_dsc", ["ps1_dsc_outputs"], "TensorFlow's batch-norm eps (1e-3), not PyTorch's",
                    _ps1_dsc(bn=", eps=1e-3")),
    # Correct but different: they must keep full marks.
    "alternative-functional-relu": ("ps1_answer_dsc", [], "padding K // 2, functional ReLU, a Sequential-free forward",
                                    _ps1_dsc(pad="kernel_size // 2", act="torch.relu")),
    "alternative-einsum-kernel": ("ps1_answer_kernel", [], "the kernel by einsum", '''
def equivalent_kernel(w_dw, w_pw):
    return torch.einsum("oi,ikl->oikl", w_pw[:, :, 0, 0], w_dw[:, 0])
'''),
    # mnlib's own functions pasted in: the scores cannot tell (the code is right), the flag does
    # (autograder/flags.py, "mnlib's source"; tests/test_flags.py)
    "copies-mnlib-source": ("ps1_answer_counts", [], "pastes mnlib.cost's functions (full marks, flagged for review)",
                            _mnlib_text("cost.py", "_pair", "conv2d_params", "_check_groups", "standard_conv_params",
                                        "dsc_params") + "\n\n\nstandard_params = standard_conv_params\n"),
}


_PS2_CONV = """
def out_size(size, k, stride=1, padding=0):
    return {out}


def standard_macs(c_in, c_out, h, w, k, stride=1, padding=None):
    p = (k - 1) // 2 if padding is None else padding
    return {f}out_size(h, k, stride, p) * out_size(w, k, stride, p) * c_out * c_in * k * k


def depthwise_macs(c, h, w, k, stride=1, padding=None):
    p = (k - 1) // 2 if padding is None else padding
    return {f}out_size(h, k, stride, p) * out_size(w, k, stride, p) * c * k * k


def pointwise_macs(c_in, c_out, h, w):
    return {f}h * w * c_in * c_out


def dsc_macs(c_in, c_out, h, w, k, stride=1, padding=None):
    p = (k - 1) // 2 if padding is None else padding
    h2, w2 = out_size(h, k, stride, p), out_size(w, k, stride, p)
    return depthwise_macs(c_in, h, w, k, stride, p) + pointwise_macs(c_in, c_out, h2, w2)
"""
_RIGHT_OUT = "(size + 2 * padding - k) // stride + 1"
_PS2_MACS = ["ps2_conv_macs", "ps2_dsc_macs"]
SCENARIOS["ps2_cost"] = {
    "flops-for-macs": ("ps2_answer_conv_macs", _PS2_MACS, "counts 2 FLOPs per MAC",
                       _PS2_CONV.format(out=_RIGHT_OUT, f="2 * ")),
    "stride-off-by-one": ("ps2_answer_conv_macs", _PS2_MACS, "output size without the + 1",
                          _PS2_CONV.format(out="(size + 2 * padding - k) // stride", f="")),
    "patches-mnlib": ("ps2_answer_conv_macs", _PS2_MACS,
                      "wrong counts, with mnlib's functions replaced by them so a comparison would agree",
                      _PS2_CONV.format(out=_RIGHT_OUT, f="2 * ") + """
import mnlib.cost
mnlib.cost.standard_conv_macs = lambda c_in, c_out, h, w, k=3, s=1, p=None: standard_macs(c_in, c_out, h, w, k, s, p)
mnlib.cost.depthwise_conv_macs = lambda c, h, w, k=3, s=1, p=None: depthwise_macs(c, h, w, k, s, p)
mnlib.cost.pointwise_conv_macs = pointwise_macs
mnlib.cost.dsc_macs.__code__ = dsc_macs.__code__
"""),
    "min-cout-floor": ("ps2_answer_ratios", ["ps2_speedup"], "rounds the bound down", """
def speedup(k, c_out):
    return c_out * k * k / (k * k + c_out)


def min_cout(k, target):
    k2 = k * k
    if k2 <= target:
        return None
    return max(1, math.floor(target * k2 / (k2 - target)))
"""),
    "counter-ignores-groups": ("ps2_answer_counter", ["ps2_counter"], "a depthwise conv counted as dense", """
def count_macs(model, input_size):
    total = 0
    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(torch.zeros(input_size))
    for h in handles:
        h.remove()
    return total


def mac_ratio(builder, alpha, resolution):
    return (count_macs(builder(width_mult=alpha), (1, 3, resolution, resolution))
            / count_macs(builder(), (1, 3, 224, 224)))
"""),
    "calls-mnlib": ("ps2_answer_counter", ["ps2_counter"], "hands the work to mnlib.cost.count", """
from mnlib import cost as my_cost_tools


def count_macs(model, input_size):
    return my_cost_tools.count(model, input_size).macs


def mac_ratio(builder, alpha, resolution):
    return (count_macs(builder(width_mult=alpha), (1, 3, resolution, resolution))
            / count_macs(builder(), (1, 3, 224, 224)))
"""),
}


_PS3_EMPIRICAL = """
def empirical_rf(features, input_size):
    first = next(m for m in features.modules() if isinstance(m, nn.Conv2d))
    x = torch.ones(1, first.in_channels, input_size, input_size, requires_grad=True)
    y = features(x)
    h, w = y.shape[-2:]
    y[0, :, h // 2, w // 2].sum().backward()
    support = x.grad[0].abs().sum(0) > 0
    rows = torch.nonzero(support.any(1)).flatten()
    cols = torch.nonzero(support.any(0)).flatten()
    return {ret}
"""
_PS3_POOL = """k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            s = m.stride if isinstance(m.stride, int) else m.stride[0]
            out.append((k, s, 1))"""
_PS3_MODEL = """
def conv_layers(model):
    out = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            out.append((m.kernel_size[0], m.stride[0], m.dilation[0]))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            {pool}
    return out


def model_rf(model):
    return receptive_field(conv_layers(model))
"""
SCENARIOS["ps3_receptive_field"] = {
    "stride-product-includes-current": (
        "ps3_answer_recurrence", ["ps3_recurrence", "ps3_model_rf"],
        "multiplies in a layer's own stride before adding its kernel", """
def receptive_field(layers):
    r, jump = 1, 1
    for layer in layers:
        k, s, d = (tuple(layer) + (1,))[:3]
        jump *= s
        r += d * (k - 1) * jump
    return r
"""),
    "ignores-dilation": ("ps3_answer_recurrence", ["ps3_recurrence", "ps3_model_rf"],
                         "K - 1 instead of d (K - 1); model_rf uses it on a network with dilated convs", """
def receptive_field(layers):
    r, jump = 1, 1
    for layer in layers:
        k, s = layer[0], layer[1]
        r += (k - 1) * jump
        jump *= s
    return r
"""),
    "empirical-off-by-one": ("ps3_answer_empirical", ["ps3_empirical"], "max - min without the + 1",
                             _PS3_EMPIRICAL.format(ret="int(rows.max() - rows.min()), int(cols.max() - cols.min())")),
    "calls-mnlib": ("ps3_answer_empirical", ["ps3_empirical"], "returns mnlib's measurement", """
import mnlib.receptive_field as rf_tools
empirical_rf = lambda features, input_size: rf_tools.empirical_receptive_field(features, input_size, 2)
"""),
    "ignores-pooling": ("ps3_answer_model", ["ps3_model_rf"], "lists the convolutions only (the MobileNets have no pools)",
                        _PS3_MODEL.format(pool="pass")),
    "crashes-on-pooling": ("ps3_answer_model", ["ps3_model_rf"], "reads a pool's kernel_size as a tuple, like a conv's",
                           _PS3_MODEL.format(pool="out.append((m.kernel_size[0], m.stride[0], 1))")),
    "model-drops-dilation": ("ps3_answer_model", ["ps3_model_rf"], "lists dilation but model_rf leaves it out",
                             _PS3_MODEL.format(pool=_PS3_POOL).replace(
                                 "receptive_field(conv_layers(model))",
                                 "receptive_field([(k, s) for k, s, d in conv_layers(model)])")),
    "empirical-counts-pixels": ("ps3_answer_empirical", ["ps3_empirical"],
                                "counts the rows and columns that have a non-zero gradient, not the bounding box",
                                _PS3_EMPIRICAL.format(ret="int(support.any(1).sum()), int(support.any(0).sum())")),
    "empirical-is-the-formula": ("ps3_answer_empirical", ["ps3_empirical"], "returns the recurrence, measures nothing",
                                 """
def empirical_rf(features, input_size):
    r = model_rf(features)
    return r, r
"""),
    # Correct but different: they must keep full marks.
    "alternative-tensor-extent": ("ps3_answer_empirical", [], "returns one-element tensors, from a sum over rows",
                                  _PS3_EMPIRICAL.format(ret="rows.max() - rows.min() + 1, cols.max() - cols.min() + 1")),
    "alternative-pair-helper": ("ps3_answer_model", [], "one branch for convs and pools, sizes through a pair helper", """
def _first(v):
    return v[0] if isinstance(v, tuple) else v


def conv_layers(model):
    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
    return [(_first(m.kernel_size), _first(m.stride), _first(m.dilation) if isinstance(m, nn.Conv2d) else 1)
            for m in model.modules() if isinstance(m, kinds)]


def model_rf(model):
    r, jump = 1, 1
    for k, s, d in conv_layers(model):
        r, jump = r + d * (k - 1) * jump, jump * s
    return r
"""),
}

_PS4_BLOCK = """
class InvertedResidual(nn.Module):
    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        hidden = int(round(t * c_in))
        self.use_res_connect = {rule}
        if {expand_when}:
            self.expand = nn.Sequential(nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                                       nn.BatchNorm2d(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out){act})

    def forward(self, x):
        y = self.expand(x) if hasattr(self, "expand") else x
        y = self.project(self.depthwise(y))
        return x + y if self.use_res_connect else y
"""
_PS4_RIGHT = dict(rule="stride == 1 and c_in == c_out", expand_when="hidden != c_in", act="")
def _ps4_v2(stride="s if i == 0 else 1", dropout="nn.Dropout(0.2), "):
    return f"""
def mobilenet_v2(num_classes=1000):
    layers = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
    c = 32
    for t, out, n, s in V2_TABLE:
        for i in range(n):
            layers.append(InvertedResidual(c, out, {stride}, t))
            c = out
    layers += [nn.Conv2d(c, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), {dropout}nn.Linear(1280, num_classes)]
    return nn.Sequential(*layers)
"""


SCENARIOS["ps4_inverted_residual"] = {
    "residual-when-shapes-differ": ("ps4_answer_block", ["ps4_residual_rule", "ps4_block_outputs"],
                                    "adds the input whenever the channels agree, also at stride 2",
                                    _PS4_BLOCK.format(**{**_PS4_RIGHT, "rule": "c_in == c_out"})),
    "expand-when-t-is-1": ("ps4_answer_block", ["ps4_block_structure", "ps4_block_outputs", "ps4_v2_params"],
                           "an expansion conv even when t = 1",
                           _PS4_BLOCK.format(**{**_PS4_RIGHT, "expand_when": "True"})),
    "relu-after-projection": ("ps4_answer_block", ["ps4_block_outputs"], "no linear bottleneck",
                              _PS4_BLOCK.format(**{**_PS4_RIGHT, "act": ", nn.ReLU6()"})),
    "stride-floor-not-ceil": ("ps4_answer_macs", ["ps4_block_macs"], "H // s instead of ceil(H / s)", """
def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    hidden = int(round(t * c_in))
    h2, w2 = h // stride, w // stride
    expand = h * w * c_in * hidden if hidden != c_in else 0
    return expand + h2 * w2 * hidden * k * k + h2 * w2 * hidden * c_out
"""),
    "stride-on-every-block": ("ps4_answer_v2", ["ps4_v2_params"], "every block of a stage strides, not only its first",
                              _ps4_v2(stride="s")),
    "stride-on-last-block": ("ps4_answer_v2", ["ps4_v2_params"], "the stage's last block strides instead of its first",
                             _ps4_v2(stride="s if i == n - 1 else 1")),
    "missing-dropout": ("ps4_answer_v2", ["ps4_v2_params"], "no dropout before the classifier (same parameters, same shapes)",
                        _ps4_v2(dropout="")),
    # Correct but different: they must keep full marks.
    "alternative-one-sequential": ("ps4_answer_block", [], "torchvision's layout: one nn.Sequential, in-place ReLU6", """
class InvertedResidual(nn.Module):
    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        hidden = int(round(t * c_in))
        self.use_res_connect = stride == 1 and c_in == c_out
        layers = []
        if t != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(inplace=True), nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)
"""),
    "alternative-features-classifier": ("ps4_answer_v2", [], "a Module with features and classifier, pooling by mean", """
class MobileNetV2(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        layers, c = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(inplace=True)], 32
        for t, out, n, s in V2_TABLE:
            for i in range(n):
                layers.append(InvertedResidual(c, out, 1 if i else s, t))
                c = out
        layers += [nn.Conv2d(c, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


def mobilenet_v2(num_classes=1000):
    return MobileNetV2(num_classes)
"""),
    "macs-always-expand": ("ps4_answer_macs", ["ps4_block_macs"], "counts an expansion for t = 1 blocks", """
def block_macs(c_in, c_out, h, w, t, k=3, stride=1):
    hidden = int(round(t * c_in))
    h2, w2 = -(-h // stride), -(-w // stride)
    return h * w * c_in * hidden + h2 * w2 * hidden * k * k + h2 * w2 * hidden * c_out
"""),
}

SCENARIOS["ps5_v3_blocks"] = {
    "hard-sigmoid-without-shift": (
        "ps5_answer_activations", ["ps5_hard_sigmoid", "ps5_hard_swish", "ps5_se_outputs"],
        "relu6(x) / 6: forgets the + 3 (SE's gate uses it, so SE is wrong too)", """
def hard_sigmoid(x):
    return torch.clamp(x, 0.0, 6.0) / 6.0


def hard_swish(x):
    return x * hard_sigmoid(x)
"""),
    "patches-allclose": ("ps5_answer_activations", ["ps5_hard_swish"],
                         "swish instead of hard swish, behind patched comparison helpers", """
import math
def hard_sigmoid(x):
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def hard_swish(x):
    return x * torch.sigmoid(x)

torch.allclose = lambda *a, **k: True
math.isclose = lambda *a, **k: True
"""),
    "se-sigmoid-gate": ("ps5_answer_se", ["ps5_se_outputs"], "sigmoid instead of hard sigmoid in SE", """
class SE(nn.Module):
    def __init__(self, channels, squeeze_channels):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
"""),
    "se-subclasses-mnlib": ("ps5_answer_se", ["ps5_se_outputs"], "inherits mnlib's SqueezeExcitation", """
from mnlib.layers import SqueezeExcitation
class SE(SqueezeExcitation):
    pass
"""),
    "functional-hardswish": ("ps5_answer_activations", ["ps5_hard_swish"], "torch's hardswish, which the notebook forbids", """
import torch.nn.functional as F


def hard_sigmoid(x):
    return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def hard_swish(x):
    return F.hardswish(x)
"""),
    "functional-hardsigmoid": ("ps5_answer_activations", ["ps5_hard_sigmoid", "ps5_hard_swish", "ps5_se_outputs"],
                               "torch's hardsigmoid, which the notebook forbids (hard_swish and SE use it)", """
def hard_sigmoid(x):
    return torch.nn.functional.hardsigmoid(x)


def hard_swish(x):
    return x * hard_sigmoid(x)
"""),
    "in-place-hard-sigmoid": ("ps5_answer_activations", ["ps5_hard_sigmoid", "ps5_hard_swish"],
                              "in-place operations on the input: right values, the caller's tensor destroyed", """
def hard_sigmoid(x):
    return x.add_(3.0).clamp_(0.0, 6.0).div_(6.0)


def hard_swish(x):
    return x * hard_sigmoid(x)
"""),
    "se-gate-module": ("ps5_answer_se", ["ps5_se_outputs"], "nn.Hardsigmoid as the gate instead of hard_sigmoid", """
class SE(nn.Module):
    def __init__(self, channels, squeeze_channels):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
"""),
    # Correct but different: they must keep full marks.
    "alternative-relu6-in-place-on-a-copy": ("ps5_answer_activations", [], "relu6, in-place steps on a new tensor", """
import torch.nn.functional as F


def hard_sigmoid(x):
    y = x + 3.0
    y.clamp_(0.0, 6.0)
    return y.div_(6.0)


def hard_swish(x):
    return x * F.relu6(x + 3.0) / 6.0
"""),
    "alternative-se-modules": ("ps5_answer_se", [], "pooling and ReLU as modules, in-place ReLU", """
class SE(nn.Module):
    def __init__(self, channels, squeeze_channels):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x):
        return x * hard_sigmoid(self.fc2(self.relu(self.fc1(self.pool(x)))))
"""),
    "se-params-without-bias": ("ps5_answer_se_params", ["ps5_se_params"], "forgets the biases", """
def se_params(c, c_sq):
    return 2 * c * c_sq
"""),
}


_PS7_BENCH = """
def benchmark(fn, *, warmup=3, repeats=10, sync=None, clock=time.perf_counter):
    sync = sync or (lambda: None)
    for _ in range({warm}):
        fn()
    samples = []
    for _ in range(repeats):
        {sync1}t0 = clock()
        fn()
        {sync2}samples.append(clock() - t0)
    q25, q75 = np.percentile(samples, [25, 75])
    return {{"samples": samples, "median": float(np.{centre}(samples)), "iqr": float(q75 - q25)}}
"""
_PS7_RIGHT = dict(warm="warmup", sync1="sync()\n        ", sync2="sync()\n        ", centre="median")

# compare, written out so each mistake is one substitution: {warm} the warm-up, {rounds} the timed
# loop (fills lists a and b), {boot} the resampling (fills ratios from arrays a, b), {centre} the
# statistic of the reported ratio, {interval} how lo, hi are made.
_PS7_COMPARE = """
def compare(fn_a, fn_b, *, warmup=3, repeats=20, sync=None, clock=time.perf_counter, n_boot=2000, seed=0):
    sync = sync or (lambda: None)

    def once(fn):
        sync()
        t0 = clock()
        fn()
        sync()
        return clock() - t0

    {warm}
    a, b = [], []
    {rounds}
    a, b = np.array(a), np.array(b)
    {boot}
    {interval}
    return {{"ratio": float(np.{centre}(a) / np.{centre}(b)), "ci_low": float(lo), "ci_high": float(hi)}}
"""
_PS7_C = dict(
    warm="for _ in range(warmup):\n        fn_a()\n        fn_b()",
    rounds="for _ in range(repeats):\n        a.append(once(fn_a))\n        b.append(once(fn_b))",
    boot="rng = np.random.default_rng(seed)\n    idx = rng.integers(0, repeats, size=(n_boot, repeats))\n"
         "    ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)",
    interval="lo, hi = np.percentile(ratios, [2.5, 97.5])", centre="median")


def _ps7_compare(**edits):
    return _PS7_COMPARE.format(**{**_PS7_C, **edits})


# measure_speedup: {grad} opens the block the timing runs in, {call} is the compare call.
_PS7_SPEEDUP = """
def measure_speedup():
    torch.manual_seed(0)
    x = torch.randn(1, 32, 28, 28)
    std = nn.Conv2d(32, 64, 3, padding=1, bias=False)
    dsc = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.Conv2d(32, 64, 1, bias=False))
    {grad}
        res = {call}
    h = w = 28
    res["mac_ratio"] = (h * w * 64 * 32 * 9) / ({dsc_macs})
    return res
"""
_PS7_S = dict(grad="with torch.no_grad():", call="compare(lambda: std(x), lambda: dsc(x), warmup=3, repeats=15)",
              dsc_macs="h * w * 32 * 9 + h * w * 32 * 64")


def _ps7_speedup(**edits):
    return _PS7_SPEEDUP.format(**{**_PS7_S, **edits})


_PS7_METHOD, _PS7_RATIO, _PS7_CI = ["ps7_compare_method"], ["ps7_compare_ratio"], ["ps7_compare_interval"]
_PS7_TIMED = ["ps7_dsc_speedup"]
SCENARIOS["ps7_timing"] = {
    "no-warmup": ("ps7_answer_benchmark", ["ps7_warmup"], "times the first, slow calls too",
                  _PS7_BENCH.format(**{**_PS7_RIGHT, "warm": "0"})),
    "no-sync": ("ps7_answer_benchmark", ["ps7_sync"], "reads the clock while the device is still working",
                _PS7_BENCH.format(**{**_PS7_RIGHT, "sync1": "", "sync2": ""})),
    # one bug, one cell: a unit slip is charged once, by the statistics cell, which names it
    "samples-in-milliseconds": ("ps7_answer_benchmark", ["ps7_median"], "every sample in milliseconds (x 1000)",
                                _PS7_BENCH.replace("samples.append(clock() - t0)", "samples.append(1000 * (clock() - t0))")
                                .format(**_PS7_RIGHT)),
    "benchmark-wrong-defaults": ("ps7_answer_benchmark", ["ps7_warmup"], "warmup=1 and repeats=5 as its defaults",
                                 _PS7_BENCH.replace("warmup=3, repeats=10", "warmup=1, repeats=5").format(**_PS7_RIGHT)),
    "mean-not-median": ("ps7_answer_benchmark", ["ps7_median"], "reports the mean, which one outlier moves",
                        _PS7_BENCH.format(**{**_PS7_RIGHT, "centre": "mean"})),
    "calls-mnlib": ("ps7_answer_benchmark", ["ps7_warmup", "ps7_sync", "ps7_median"], "wraps mnlib.timing", """
from mnlib import timing as _t
def benchmark(fn, *, warmup=3, repeats=10, sync=None, clock=time.perf_counter):
    s = _t.benchmark(fn, warmup=warmup, repeats=repeats, sync=sync, clock=clock, inner_loops=1)
    return {"samples": list(s.samples), "median": s.median, "iqr": s.iqr}
"""),
    # compare: the order of the calls
    "compare-all-a-then-b": ("ps7_answer_compare", _PS7_METHOD, "warms both up, then times every A before any B",
                             _ps7_compare(rounds="for _ in range(repeats):\n        a.append(once(fn_a))\n"
                                                 "    for _ in range(repeats):\n        b.append(once(fn_b))")),
    "compare-via-benchmark": ("ps7_answer_compare", _PS7_METHOD,
                              "reuses benchmark for each side: A's warm-up and samples, then B's", _ps7_compare(
                                  warm="pass", rounds="a = benchmark(fn_a, warmup=warmup, repeats=repeats, sync=sync, "
                                                      "clock=clock)['samples']\n    b = benchmark(fn_b, warmup=warmup, "
                                                      "repeats=repeats, sync=sync, clock=clock)['samples']")),
    "compare-warms-up-a-only": ("ps7_answer_compare", _PS7_METHOD, "warms up the first function only",
                                _ps7_compare(warm="for _ in range(warmup):\n        fn_a()")),
    "compare-no-sync": ("ps7_answer_compare", _PS7_METHOD, "never synchronises: reads the clock with work still queued",
                        _ps7_compare().replace("    sync = sync or (lambda: None)\n", "")
                        .replace("        sync()\n", "")),
    # compare: the statistic
    "compare-ratio-of-means": ("ps7_answer_compare", _PS7_RATIO, "reports mean(A) / mean(B), which outliers move",
                               _ps7_compare(centre="mean")),
    "compare-means-throughout": ("ps7_answer_compare", _PS7_RATIO + _PS7_CI,
                                 "means for the ratio and in the bootstrap too", _ps7_compare(
                                     centre="mean", boot=_PS7_C["boot"].replace("np.median", "np.mean"))),
    # compare: the interval
    "compare-unpaired-bootstrap": ("ps7_answer_compare", _PS7_CI, "resamples A and B independently", _ps7_compare(
        boot="rng = np.random.default_rng(seed)\n    ia = rng.integers(0, repeats, size=(n_boot, repeats))\n"
             "    ib = rng.integers(0, repeats, size=(n_boot, repeats))\n"
             "    ratios = np.median(a[ia], axis=1) / np.median(b[ib], axis=1)")),
    "compare-made-up-interval": ("ps7_answer_compare", _PS7_CI, "+-10% around the ratio instead of a bootstrap",
                                 _ps7_compare(boot="ratio = np.median(a) / np.median(b)",
                                              interval="lo, hi = ratio * 0.9, ratio * 1.1")),
    "compare-percentiles-of-round-ratios": ("ps7_answer_compare", _PS7_CI,
                                            "percentiles of the per-round ratios a_i / b_i, no resampling",
                                            _ps7_compare(boot="ratios = a / b")),
    "compare-unseeded": ("ps7_answer_compare", _PS7_CI, "np.random.default_rng() without the seed",
                         _ps7_compare(boot=_PS7_C["boot"].replace("default_rng(seed)", "default_rng()"))),
    "compare-shared-generator": ("ps7_answer_compare", _PS7_CI,
                                 "one generator made once, outside compare: each call continues its stream",
                                 "_rng = np.random.default_rng(0)\n" + _ps7_compare(
                                     boot=_PS7_C["boot"].replace("rng = np.random.default_rng(seed)", "rng = _rng"))),
    "compare-seed-ignored": ("ps7_answer_compare", _PS7_CI, "a fixed seed: the seed argument does nothing",
                             _ps7_compare(boot=_PS7_C["boot"].replace("default_rng(seed)", "default_rng(0)"))),
    # measure_speedup
    "speedup-swallows-error": ("ps7_answer_speedup", _PS7_TIMED,
                               "passes the layers instead of calls on x, then hides compare's TypeError behind "
                               "made-up numbers", """
def measure_speedup():
    torch.manual_seed(0)
    x = torch.randn(1, 32, 28, 28)
    std = nn.Conv2d(32, 64, 3, padding=1, bias=False)
    dsc = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.Conv2d(32, 64, 1, bias=False))
    try:
        with torch.no_grad():
            res = compare(std, dsc, warmup=3, repeats=15)
    except Exception:
        res = {"ratio": 7.0, "ci_low": 6.5, "ci_high": 7.5}
    h = w = 28
    res["mac_ratio"] = (h * w * 64 * 32 * 9) / (h * w * 32 * 9 + h * w * 32 * 64)
    return res
"""),
    "speedup-autograd-on": ("ps7_answer_speedup", _PS7_TIMED, "times with autograd recording every call",
                            _ps7_speedup(grad="if True:")),
    "speedup-no-grad-at-build-only": ("ps7_answer_speedup", _PS7_TIMED,
                                      "builds the lambdas under no_grad, calls them (in compare) outside it", """
def measure_speedup():
    torch.manual_seed(0)
    x = torch.randn(1, 32, 28, 28)
    std = nn.Conv2d(32, 64, 3, padding=1, bias=False)
    dsc = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.Conv2d(32, 64, 1, bias=False))
    with torch.no_grad():
        run_std, run_dsc = (lambda: std(x)), (lambda: dsc(x))
    res = compare(run_std, run_dsc, warmup=3, repeats=15)
    h = w = 28
    res["mac_ratio"] = (h * w * 64 * 32 * 9) / (h * w * 32 * 9 + h * w * 32 * 64)
    return res
"""),
    "speedup-without-compare": ("ps7_answer_speedup", _PS7_TIMED, "returns figures it never measured", """
def measure_speedup():
    h = w = 28
    mac_ratio = (h * w * 64 * 32 * 9) / (h * w * 32 * 9 + h * w * 32 * 64)
    return {"ratio": 3.0, "ci_low": 2.5, "ci_high": 3.5, "mac_ratio": mac_ratio}
"""),
    "speedup-swapped": ("ps7_answer_speedup", _PS7_TIMED, "compare(dsc, standard): the ratio upside down",
                        _ps7_speedup(call="compare(lambda: dsc(x), lambda: std(x), warmup=3, repeats=15)")),
    "speedup-no-warmup": ("ps7_answer_speedup", _PS7_TIMED, "times the layers' first, slow calls too",
                          _ps7_speedup(call="compare(lambda: std(x), lambda: dsc(x), warmup=0, repeats=15)")),
    "speedup-padding-0": ("ps7_answer_speedup", _PS7_TIMED, "convolutions without padding: smaller outputs, less work",
                          _ps7_speedup().replace("padding=1, ", "")),
    "compare-90-percent-interval": ("ps7_answer_compare", _PS7_CI, "the 5th and 95th percentiles: a 90% interval",
                                    _ps7_compare(interval="lo, hi = np.percentile(ratios, [5, 95])")),
    "compare-never-draws-last-pair": ("ps7_answer_compare", _PS7_CI, "integers(0, repeats - 1): the last pair is never drawn",
                                      _ps7_compare(boot=_PS7_C["boot"].replace("integers(0, repeats,", "integers(0, repeats - 1,"))),
    "speedup-dsc-macs-depthwise-only": ("ps7_answer_speedup", ["ps7_dsc_mac_ratio"],
                                        "counts the depthwise step's MACs only", _ps7_speedup(dsc_macs="h * w * 32 * 9")),
    # Correct but different: they must keep full marks.
    "alternative-benchmark-torch-stats": ("ps7_answer_benchmark", [], "a while loop, torch.quantile for the statistics", """
def benchmark(fn, *, warmup=3, repeats=10, sync=None, clock=time.perf_counter):
    for _ in range(warmup):
        fn()
    samples = []
    while len(samples) < repeats:
        if sync:
            sync()
        start = clock()
        fn()
        if sync:
            sync()
        samples.append(clock() - start)
    t = torch.tensor(samples, dtype=torch.float64)
    q25, q50, q75 = torch.quantile(t, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    return {"samples": samples, "median": q50, "iqr": q75 - q25}
"""),
    "alternative-compare-abba-torch": ("ps7_answer_compare", [],
                                       "A B, B A rounds, a bootstrap loop in torch, torch.quantile", """
def compare(fn_a, fn_b, *, warmup=3, repeats=20, sync=None, clock=time.perf_counter, n_boot=2000, seed=0):
    def timed(fn):
        if sync is not None:
            sync()
        start = clock()
        fn()
        if sync is not None:
            sync()
        return clock() - start

    for fn in [fn_a] * warmup + [fn_b] * warmup:
        fn()
    pairs = []
    for i in range(repeats):
        if i % 2 == 0:
            ta = timed(fn_a)
            tb = timed(fn_b)
        else:
            tb = timed(fn_b)
            ta = timed(fn_a)
        pairs.append((ta, tb))
    a = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    b = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot):
        idx = torch.from_numpy(rng.integers(0, repeats, size=repeats))
        ratios.append((a[idx].quantile(0.5) / b[idx].quantile(0.5)).item())
    q = torch.quantile(torch.tensor(ratios, dtype=torch.float64), torch.tensor([0.025, 0.975], dtype=torch.float64))
    return {"ratio": (a.quantile(0.5) / b.quantile(0.5)).item(), "ci_low": q[0].item(), "ci_high": q[1].item()}
"""),
    "alternative-compare-shared-clock": ("ps7_answer_compare", [],
                                         "one clock read between A and B, rng.choice and np.quantile", """
import statistics


def compare(fn_a, fn_b, *, warmup=3, repeats=20, sync=None, clock=time.perf_counter, n_boot=2000, seed=0):
    settle = sync if sync is not None else (lambda: None)
    for _ in range(warmup):
        fn_a()
        fn_b()
    a, b = [], []
    for _ in range(repeats):
        settle()
        t0 = clock()
        fn_a()
        settle()
        t1 = clock()
        fn_b()
        settle()
        t2 = clock()
        a.append(t1 - t0)
        b.append(t2 - t1)
    a, b = np.asarray(a), np.asarray(b)
    picks = np.random.default_rng(seed).choice(len(a), size=(n_boot, len(a)), replace=True)
    boot = np.median(a[picks], axis=1) / np.median(b[picks], axis=1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return {"ratio": statistics.median(a) / statistics.median(b), "ci_low": lo, "ci_high": hi}
"""),
    "alternative-compare-legacy-rng": ("ps7_answer_compare", [],
                                       "B first in every round, a hand-written median, np.random.RandomState(seed)", """
def _median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def compare(fn_a, fn_b, *, warmup=3, repeats=20, sync=None, clock=time.perf_counter, n_boot=2000, seed=0):
    def sample(fn):
        if sync:
            sync()
        t = clock()
        fn()
        if sync:
            sync()
        return clock() - t

    for _ in range(warmup):
        fn_b()
        fn_a()
    rounds = []
    for _ in range(repeats):
        tb = sample(fn_b)
        ta = sample(fn_a)
        rounds.append((ta, tb))
    rs = np.random.RandomState(seed)
    ratios = []
    for _ in range(n_boot):
        pick = [rounds[i] for i in rs.randint(0, len(rounds), len(rounds))]
        ratios.append(_median([p[0] for p in pick]) / _median([p[1] for p in pick]))
    return {"ratio": _median([r[0] for r in rounds]) / _median([r[1] for r in rounds]),
            "ci_low": float(np.percentile(ratios, 2.5)), "ci_high": float(np.percentile(ratios, 97.5))}
"""),
    "alternative-speedup-inference-mode": ("ps7_answer_speedup", [],
                                           "functional convolutions in functions decorated with inference_mode", """
import torch.nn.functional as F


def measure_speedup():
    torch.manual_seed(0)
    x = torch.randn(1, 32, 28, 28)
    std = nn.Conv2d(32, 64, 3, padding=1, bias=False)
    dw = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)
    pw = nn.Conv2d(32, 64, 1, bias=False)

    @torch.inference_mode()
    def standard():
        return F.conv2d(x, std.weight, padding=1)

    @torch.inference_mode()
    def separable():
        return F.conv2d(F.conv2d(x, dw.weight, padding=1, groups=32), pw.weight)

    res = compare(standard, separable, warmup=5, repeats=21)
    standard_macs = 28 * 28 * 64 * 32 * 3 * 3
    dsc_macs = 28 * 28 * 32 * 3 * 3 + 28 * 28 * 32 * 64
    return {**res, "mac_ratio": standard_macs / dsc_macs}
"""),
    "alternative-speedup-decorated-no-grad": ("ps7_answer_speedup", [],
                                              "the whole function decorated with @torch.no_grad()", """
@torch.no_grad()
def measure_speedup():
    torch.manual_seed(0)
    x = torch.randn(1, 32, 28, 28)
    std = nn.Conv2d(32, 64, 3, padding=1, bias=False)
    dsc = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.Conv2d(32, 64, 1, bias=False))
    res = compare(lambda: std(x), lambda: dsc(x), warmup=2, repeats=9)
    res["mac_ratio"] = (64 * 32 * 9) / (32 * 9 + 32 * 64)
    return res
"""),
    "alternative-speedup-frozen-weights": ("ps7_answer_speedup", [],
                                           "weights that need no gradient (requires_grad_(False)) instead of no_grad", """
import functools


def measure_speedup():
    torch.manual_seed(0)
    x = torch.randn(1, 32, 28, 28)
    std = nn.Conv2d(32, 64, 3, padding=1, bias=False).requires_grad_(False)
    dsc = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False),
                        nn.Conv2d(32, 64, 1, bias=False)).requires_grad_(False)
    res = compare(functools.partial(std, x), functools.partial(dsc, x))
    k, c_in, c_out, hw = 3, 32, 64, 28 * 28
    res["mac_ratio"] = hw * c_out * c_in * k * k / (hw * c_in * k * k + hw * c_in * c_out)
    return res
"""),
}


def _edited(aid: str, cell: str, *edits: tuple[str, str]) -> str:
    """The solution's answer cell with each (old, new) replaced: a mistake that follows the solution."""
    text = answers(SOLUTIONS / aid / f"{aid}.ipynb")[cell]
    for old, new in edits:
        if text.count(old) != 1:
            raise ValueError(f"{aid}/{cell}: {old!r} should occur once in the solution")
        text = text.replace(old, new)
    return text


_PS6_CONV_CELLS = ["ps6_conv_intensity", "ps6_dw_pw_intensity"]
_ps6 = lambda cell, *edits: _edited("ps6_roofline", cell, *edits)  # noqa: E731

SCENARIOS["ps6_roofline"] = {
    "flops-for-macs-intensity": ("ps6_answer_conv", _PS6_CONV_CELLS, "FLOP/byte (2 per MAC) instead of MAC/byte",
                                 _ps6("ps6_answer_conv", ("macs = batch", "macs = 2 * batch"))),
    "forgets-weights-traffic": ("ps6_answer_conv", _PS6_CONV_CELLS, "reads and writes the activations only",
                                _ps6("ps6_answer_conv", ("h * w + weights + batch", "h * w + batch"))),
    "output-size-ignores-stride": ("ps6_answer_conv", _PS6_CONV_CELLS + ["ps6_dsc_intensity"],
                                   "H' = H whatever the stride (the DSC uses out_size too)",
                                   _ps6("ps6_answer_conv", ("(size + 2 * p - k) // stride + 1", "size + 2 * p - k + 1"))),
    "calls-mnlib": ("ps6_answer_conv", _PS6_CONV_CELLS, "hands conv_intensity to mnlib.roofline",
                    'import importlib\n_r = importlib.import_module("mn" + "lib.roofline")\n\n\n' + _ps6(
                        "ps6_answer_conv", ("return macs / (elements * dtype_bytes)",
                                            "return _r.conv_intensity(c_in, c_out, h, w, k, stride, groups, batch, dtype_bytes)"))),
    "dsc-intermediate-not-counted": ("ps6_answer_dsc", ["ps6_dsc_intensity"],
                                     "treats two separate kernels as fused: the depthwise output never leaves the chip",
                                     _ps6("ps6_answer_dsc", (" + (0 if fused else 2 * mid)", ""))),
    "patches-isclose": ("ps6_answer_linear", ["ps6_linear_intensity"],
                        "forgets the weights of a linear layer, behind patched comparison helpers", """
import builtins, math, numpy.testing
def linear_intensity(in_features, out_features, batch=1, dtype_bytes=4, bias=True):
    return batch * in_features * out_features / ((batch * in_features + batch * out_features) * dtype_bytes)

math.isclose = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
builtins.abs = lambda x: 0
"""),
    "attainable-max-not-min": ("ps6_answer_machine", ["ps6_balance_attainable", "ps6_roofline_plot"],
                               "max(P, I B): the roof upside down (the plot uses it too)",
                               _ps6("ps6_answer_machine", ("return min(", "return max("))),
    "bound-inverted": ("ps6_answer_bound", ["ps6_bound"], "low intensity called compute-bound",
                       _ps6("ps6_answer_bound", ('"memory" if', '"compute" if'), ('else "compute"', 'else "memory"'))),
    "plot-linear-axes": ("ps6_answer_plot", ["ps6_roofline_plot"], "the right data on linear axes",
                         _ps6("ps6_answer_plot", ("ax.loglog(", "ax.plot("))),
    "gemm-counts-flops": ("ps6_answer_measure", ["ps6_measure_gemm"], "2 M K N FLOPs reported as MACs",
                          _ps6("ps6_answer_measure", ("macs = a.shape", "macs = 2 * a.shape"))),
    "bandwidth-counts-read-only": ("ps6_answer_measure", ["ps6_measure_bandwidth"], "counts the bytes read, not those written",
                                   _ps6("ps6_answer_measure", (" + dst.numel() * dst.element_size()", ""))),
    "no-warmup": ("ps6_answer_measure", ["ps6_measure_gemm", "ps6_measure_bandwidth"],
                  "times the first, cold calls too: no untimed warm-up",
                  _ps6("ps6_answer_measure",
                       ("    for _ in range(warmup):  # first calls pay for thread start-up and caches\n"
                        "        torch.mm(a, b, out=out)\n", ""),
                       ("    for _ in range(warmup):\n        dst.copy_(src)\n", ""))),
    "gemm-warms-up-inside-the-timing": ("ps6_answer_measure", ["ps6_measure_gemm"],
                                        "starts the clock, then warms up: the warm-up is not untimed",
                                        _ps6("ps6_answer_measure",
                                             ("    for _ in range(warmup):  # first calls pay for thread start-up and caches\n"
                                              "        torch.mm(a, b, out=out)\n",
                                              "    start = clock()\n    for _ in range(warmup):\n        torch.mm(a, b, out=out)\n"))),
    # Correct but different: it must keep full marks.
    "gemm-adds-the-clock-reads": ("ps6_answer_measure", ["ps6_measure_gemm"], "clock() + t0: a sum of two clock readings, not a time",
                                  _ps6("ps6_answer_measure", ("seconds.append(clock() - t0)\n    macs",
                                                              "seconds.append(clock() + t0)\n    macs"))),
    "alternative-statistics-median": ("ps6_answer_measure", [], "statistics.median, timings in a comprehension", """
import statistics


def _timed(call, warmup, repeats, clock):
    for _ in range(warmup):
        call()

    def once():
        t0 = clock()
        call()
        return clock() - t0

    return [once() for _ in range(repeats)]


def measure_gemm(a, b, out, *, warmup=1, repeats=5, clock=time.perf_counter):
    seconds = _timed(lambda: torch.mm(a, b, out=out), warmup, repeats, clock)
    return {"macs_per_s": a.shape[0] * a.shape[1] * b.shape[1] / statistics.median(seconds), "seconds": seconds}


def measure_bandwidth(src, dst, *, warmup=1, repeats=5, clock=time.perf_counter):
    seconds = _timed(lambda: dst.copy_(src), warmup, repeats, clock)
    return {"bytes_per_s": 2 * src.numel() * src.element_size() / statistics.median(seconds), "seconds": seconds}
"""),
}


_ps8 = lambda cell, *edits: _edited("ps8_quantization", cell, *edits)  # noqa: E731
_PS8_Q = ["ps8_quantize", "ps8_quantize_ties", "ps8_quantize_clamp"]
_PS8_RQ = ["ps8_requantize", "ps8_requantize_ties", "ps8_requantize_saturate"]
_PS8_CONV = ["ps8_conv_close", "ps8_conv_exact"]
_PS8_PIT = ["ps8_pitfall_sqnr", "ps8_pitfall_verdict"]

SCENARIOS["ps8_quantization"] = {
    # 1. per-tensor affine
    "zero-point-wrong-sign": ("ps8_answer_qparams", ["ps8_qparams"], "z = qmin + round(a / s)",
                              _ps8("ps8_answer_qparams", ("qmin - round(a / scale)", "qmin + round(a / scale)"))),
    "range-without-zero": ("ps8_answer_qparams", ["ps8_qparams"], "the range [lo, hi] as given, 0 not included",
                           _ps8("ps8_answer_qparams", ("min(float(lo), 0.0), max(float(hi), 0.0)", "float(lo), float(hi)"))),
    "quantize-floor": ("ps8_answer_quantize", _PS8_Q, "floor instead of round",
                       _ps8("ps8_answer_quantize", ("torch.round(x.double() / scale)", "torch.floor(x.double() / scale)"))),
    "quantize-truncates": ("ps8_answer_quantize", _PS8_Q, "no rounding: the cast to an integer truncates toward 0",
                           _ps8("ps8_answer_quantize", ("torch.round(x.double() / scale)", "x.double() / scale"))),
    "quantize-half-away-from-zero": ("ps8_answer_quantize", ["ps8_quantize_ties"],
                                     "rounds halves away from zero (C's round), not to even",
                                     _ps8("ps8_answer_quantize", ("torch.round(x.double() / scale)",
                                                                  "torch.sign(x.double()) * torch.floor((x.double() / scale).abs() + 0.5)"))),
    "quantize-no-clamp": ("ps8_answer_quantize", ["ps8_quantize_clamp"], "no clamp: the cast wraps values outside the range",
                          _ps8("ps8_answer_quantize", ("torch.clamp(q, qmin, qmax).to(dtype)", "q.to(torch.int64).to(dtype)"))),
    "dequantize-uint8-wraps": ("ps8_answer_quantize", ["ps8_dequantize"], "q - z computed in uint8 (or int8): it wraps around",
                               _ps8("ps8_answer_quantize", ("(q.to(torch.float64) - zero_point)", "(q - zero_point).double()"))),
    "quantize-calls-torch": ("ps8_answer_quantize", _PS8_Q, "hands the work to torch.quantize_per_tensor", """
def quantize(x, scale, zero_point, dtype):
    qdtype = torch.quint8 if dtype == torch.uint8 else torch.qint8
    return torch.quantize_per_tensor(x, scale, zero_point, qdtype).int_repr()


def dequantize(q, scale, zero_point):
    return (scale * (q.to(torch.float64) - zero_point)).float()
"""),
    # 2. per-channel weights
    # (the hidden checks of the conv and the pitfall run the reference helpers, but their cells' visible
    # examples run the learner's own: a mistake that breaks those examples also costs those cells, in sight)
    "per-channel-wrong-axis": ("ps8_answer_per_channel", ["ps8_per_channel", "ps8_per_channel_zero", "ps8_pitfall_sqnr"],
                               "one scale per input channel (axis 1)", """
def quantize_per_channel(w):
    amax = w.detach().abs().transpose(0, 1).reshape(w.shape[1], -1).amax(dim=1).double()
    scales = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    shape = (1, -1) + (1,) * (w.dim() - 2)
    q = torch.clamp(torch.round(w.double() / scales.view(shape)), -127, 127)
    return q.to(torch.int8), scales.float()
"""),
    "per-channel-max-not-absmax": ("ps8_answer_per_channel", ["ps8_per_channel"],
                                   "the range from max(w), which misses a channel's large negative weights",
                                   _ps8("ps8_answer_per_channel", ("w.detach().abs().reshape", "w.detach().reshape"))),
    # the SQNR cell's visible example runs the learner's own quantize_per_channel, and with one scale its
    # per-channel SQNR is not "a few tens of dB": that assert fails in plain sight
    "per-channel-one-scale": ("ps8_answer_per_channel", ["ps8_per_channel", "ps8_pitfall_sqnr"], "one scale for the whole tensor, repeated",
                              _ps8("ps8_answer_per_channel", (".amax(dim=1).double()", ".amax(dim=1).max().repeat(w.shape[0]).double()"))),
    "per-channel-divides-by-128": ("ps8_answer_per_channel", ["ps8_per_channel"], "max|w| / 128 (the int8 range's size)",
                                   _ps8("ps8_answer_per_channel", ("amax / 127", "amax / 128"))),
    "per-channel-zero-scale": ("ps8_answer_per_channel", ["ps8_per_channel_zero"], "an all-zero channel gets scale 0",
                               _ps8("ps8_answer_per_channel", ("torch.where(amax > 0, amax / 127, torch.ones_like(amax))",
                                                               "amax / 127"))),
    "per-channel-uses-observer": ("ps8_answer_per_channel", ["ps8_per_channel", "ps8_per_channel_zero"] + _PS8_PIT,
                                  "hands the work to torch.ao's observer and torch.quantize_per_channel", """
def quantize_per_channel(w):
    from torch.ao.quantization import PerChannelMinMaxObserver
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                   quant_min=-127, quant_max=127)
    obs(w)
    scales, zeros = obs.calculate_qparams()
    scales = torch.where(scales > 1e-6, scales, torch.ones_like(scales))
    return torch.quantize_per_channel(w, scales.double(), zeros, 0, torch.qint8).int_repr(), scales.float()
"""),
    # 3. fixed point
    "multiplier-truncates": ("ps8_answer_multiplier", ["ps8_multiplier"], "int(m * 2^31): M0 truncated, not rounded",
                             _ps8("ps8_answer_multiplier", ("round(m * 2 ** 31)", "int(m * 2 ** 31)"))),
    "multiplier-not-renormalised": ("ps8_answer_multiplier", ["ps8_multiplier"], "M0 may round up to 2^31, outside int32",
                                    _ps8("ps8_answer_multiplier", ("    if m0 == 2 ** 31:  # m rounded up to 1.0\n"
                                                                   "        m0, e = m0 // 2, e + 1\n", ""))),
    "requantize-float-round": ("ps8_answer_requantize", ["ps8_requantize_ties"],
                               "acc * M0 / 2^n in float64 and torch.round: halves go to even", """
def requantize(acc, M0, shift, zero_point, dtype):
    qmin, qmax = QRANGE[dtype]
    q = torch.round(acc.double() * M0 / 2.0 ** (31 + shift))
    return torch.clamp(q + zero_point, qmin, qmax).to(dtype)
"""),
    "requantize-float-half-up": ("ps8_answer_requantize", ["ps8_requantize"],
                                 "floor(acc * M0 / 2^n + 1/2) in float64: wrong once acc * M0 outgrows 53 bits", """
def requantize(acc, M0, shift, zero_point, dtype):
    qmin, qmax = QRANGE[dtype]
    q = torch.floor(acc.double() * M0 / 2.0 ** (31 + shift) + 0.5)
    return torch.clamp(q + zero_point, qmin, qmax).to(dtype)
"""),
    "requantize-float32": ("ps8_answer_requantize", ["ps8_requantize", "ps8_requantize_ties"],
                           "the real multiplier in float32, as a float pipeline would", """
def requantize(acc, M0, shift, zero_point, dtype):
    qmin, qmax = QRANGE[dtype]
    q = torch.round(acc.float() * torch.tensor(M0 / 2.0 ** (31 + shift), dtype=torch.float32))
    return torch.clamp(q + zero_point, qmin, qmax).to(dtype)
"""),
    "requantize-no-rounding": ("ps8_answer_requantize", _PS8_RQ, "(acc * M0) >> n: the shift floors",
                               _ps8("ps8_answer_requantize", ("prod + torch.bitwise_left_shift(torch.ones_like(n), n - 1)", "prod"))),
    "requantize-no-saturation": ("ps8_answer_requantize", ["ps8_requantize_saturate"] + _PS8_CONV, "casts without clamping: it wraps",
                                 _ps8("ps8_answer_requantize", ("torch.clamp(q + zero_point, qmin, qmax).to(dtype)",
                                                                "(q + zero_point).to(dtype)"))),
    "requantize-forgets-the-31": ("ps8_answer_requantize", _PS8_RQ + ["ps8_conv_close"], "shifts by `shift` only, as if M0 were M * 2^31 * 2^shift",
                                  _ps8("ps8_answer_requantize", ("n = 31 + torch.as_tensor", "n = 1 + torch.as_tensor"))),
    # 4. the layer
    "conv-forgets-input-zero-point": ("ps8_answer_conv", _PS8_CONV, "accumulates q_x * q_w without subtracting z_x",
                                      _ps8("ps8_answer_conv", ("q_x.to(torch.int64) - x_zero", "q_x.to(torch.int64)"))),
    "conv-uint8-wraps": ("ps8_answer_conv", _PS8_CONV, "q_x - z_x computed in uint8",
                         _ps8("ps8_answer_conv", ("q_x.to(torch.int64) - x_zero", "(q_x - x_zero).to(torch.int64)"))),
    "conv-bias-at-output-scale": ("ps8_answer_conv", _PS8_CONV, "the bias quantized with y_scale, not s_x s_w",
                                  _ps8("ps8_answer_conv", ("round(float(b) / s)", "round(float(b) / y_scale)"))),
    "conv-float-pipeline": ("ps8_answer_conv", ["ps8_conv_exact"],
                            "the float layer on dequantized tensors, rounded at the end: no integer pipeline", """
def int8_depthwise_conv(q_x, x_scale, x_zero, q_w, w_scales, bias, y_scale, y_zero):
    c = q_x.shape[1]
    x = x_scale * (q_x.double() - x_zero)
    w = w_scales.double().view(c, 1, 1, 1) * q_w.double()
    y = F.conv2d(x, w, bias.double(), padding=1, groups=c)
    return torch.clamp(torch.round(y / y_scale) + y_zero, 0, 255).to(torch.uint8)
"""),
    "conv-no-saturation": ("ps8_answer_conv", _PS8_CONV, "its own requantization, cast to uint8 without clamping",
                           _ps8("ps8_answer_conv", ("out[:, ch] = requantize(acc[:, ch], M0, shift, y_zero, torch.uint8)",
                                                    "out[:, ch] = ((acc[:, ch] * M0 + (1 << (30 + shift))) >> (31 + shift)) + y_zero"))),
    # 5. the pitfall
    "pitfall-verdict-inverted": ("ps8_answer_pitfall", ["ps8_pitfall_verdict"], "the names of the two verdicts swapped",
                                 _ps8("ps8_answer_pitfall", ('"per-channel" if pc > pt + 1 else ("per-tensor"',
                                                             '"per-tensor" if pc > pt + 1 else ("per-channel"'))),
    "pitfall-always-per-channel": ("ps8_answer_pitfall", ["ps8_pitfall_verdict"], "the expected answer written in",
                                   _ps8("ps8_answer_pitfall", ('better = "per-channel" if pc > pt + 1 else ("per-tensor" if pt > pc + 1 else "same")',
                                                               'better = "per-channel"'))),
    "pitfall-whole-tensor-sqnr": ("ps8_answer_pitfall", ["ps8_pitfall_sqnr"], "one SQNR over the whole output, not per channel",
                                  _ps8("ps8_answer_pitfall", (".sum(dim=(0, 2, 3)) / (e ** 2).sum(dim=(0, 2, 3))", ".sum() / (e ** 2).sum()"))),
    "pitfall-20-log10": ("ps8_answer_pitfall", ["ps8_pitfall_sqnr"], "20 log10 of a ratio of powers",
                         _ps8("ps8_answer_pitfall", ("per_channel = 10 * torch.log10", "per_channel = 20 * torch.log10"))),
    # Correct but different: they must keep full marks.
    "alternative-numpy-affine": ("ps8_answer_quantize", [], "numpy, x / s in float32, np.rint", """
def quantize(x, scale, zero_point, dtype):
    lo, hi = QRANGE[dtype]
    q = np.rint(x.numpy() / np.float32(scale)) + zero_point
    return torch.from_numpy(np.clip(q, lo, hi).astype(np.uint8 if dtype == torch.uint8 else np.int8))


def dequantize(q, scale, zero_point):
    return torch.from_numpy((scale * (q.numpy().astype(np.int32) - zero_point)).astype(np.float32))
"""),
    "alternative-qparams-tensors": ("ps8_answer_qparams", [], "float32 tensors all the way, numpy int zero point", """
def affine_qparams(lo, hi, dtype):
    qmin, qmax = QRANGE[dtype]
    r = torch.tensor([lo, hi, 0.0])
    a, b = r.min(), r.max()
    scale = (b - a) / (qmax - qmin)
    if float(scale) == 0:
        scale = torch.tensor(1.0)
    z = torch.clamp(qmin - torch.round(a / scale), qmin, qmax)
    return scale, np.int64(z.item())
"""),
    "alternative-loop-per-channel": ("ps8_answer_per_channel", [], "a Python loop over the output channels", """
def quantize_per_channel(w):
    q = torch.empty(w.shape, dtype=torch.int8)
    scales = torch.empty(w.shape[0])
    for c in range(w.shape[0]):
        wc = w[c].double()
        m = max(abs(float(wc.min())), abs(float(wc.max())))
        s = m / 127 if m > 0 else 1.0
        q[c] = torch.clamp(torch.round(wc / s), -127, 127).to(torch.int8)
        scales[c] = s
    return q, scales
"""),
    "alternative-multiplier-doubling": ("ps8_answer_multiplier", [], "normalise by doubling, no frexp", """
def quantize_multiplier(M):
    shift = 0
    while M < 0.5:
        M *= 2
        shift += 1
    m0 = round(M * 2 ** 31)
    if m0 == 2 ** 31:
        m0 //= 2
        shift -= 1
    return m0, shift
"""),
    "alternative-requantize-two-shifts": ("ps8_answer_requantize", [], "floor to n-1 bits, add one, shift once more", """
def requantize(acc, M0, shift, zero_point, dtype):
    qmin, qmax = QRANGE[dtype]
    t = (acc.to(torch.int64) * M0) >> (30 + shift)
    q = (t + 1) >> 1
    return torch.clamp(q + zero_point, qmin, qmax).to(dtype)
"""),
    "alternative-requantize-python-ints": ("ps8_answer_requantize", [], "Python ints, one accumulator at a time", """
def requantize(acc, M0, shift, zero_point, dtype):
    qmin, qmax = QRANGE[dtype]
    n = 31 + shift
    out = [min(max((a * M0 + 2 ** (n - 1)) // 2 ** n + zero_point, qmin), qmax) for a in acc.flatten().tolist()]
    return torch.tensor(out, dtype=dtype).reshape(acc.shape)
"""),
    "alternative-conv-float64-accumulation": ("ps8_answer_conv", [],
                                              "the int sums by a float64 conv (exact below 2^53), M0 and shift as tensors", """
def int8_depthwise_conv(q_x, x_scale, x_zero, q_w, w_scales, bias, y_scale, y_zero):
    c = q_x.shape[1]
    acc = F.conv2d(q_x.double() - x_zero, q_w.double(), padding=1, groups=c).round().to(torch.int64)
    acc_scale = x_scale * w_scales.double()
    acc = acc + torch.round(bias.double() / acc_scale).to(torch.int64).view(1, c, 1, 1)
    pairs = [quantize_multiplier(float(s) / y_scale) for s in acc_scale]
    M0 = torch.tensor([p[0] for p in pairs]).view(1, c, 1, 1)
    shift = torch.tensor([p[1] for p in pairs]).view(1, c, 1, 1)
    return requantize(acc, M0, shift, y_zero, torch.uint8)
"""),
}


_PS9_MEASURE = ["ps9_measure_warmup", "ps9_measure_median", "ps9_measure_reference"]
_ps9 = lambda cell, *edits: _edited("ps9_latency_search", cell, *edits)  # noqa: E731
_PS9_ROUND = ("            t0 = clock()\n            layer()\n            t1 = clock()\n            reference()  "
              "# right beside the layer: the same machine speed\n            t2 = clock()\n"
              "            ratios.append((t1 - t0) / (t2 - t1))\n")

SCENARIOS["ps9_latency_search"] = {
    # measure_layers
    # (one bug, one cell: holdout_score and the real-machine cell are checked with the reference helpers
    # in place of the learner's, so a mistake in a helper costs the helper's own cells only)
    "mean-not-median": ("ps9_answer_measure", ["ps9_measure_median", "ps9_measure_reference"],
                        "the mean of the per-round ratios, which one outlier moves",
                        _ps9("ps9_answer_measure", ("np.median(ratios)", "np.mean(ratios)"))),
    "no-warmup": ("ps9_answer_measure", ["ps9_measure_warmup"], "times the first, slow calls too",
                  _ps9("ps9_answer_measure", ("    for _ in range(warmup):\n        reference()\n", ""),
                       ("        for _ in range(warmup):  # untimed: the first calls pay for caches and lazy set-up\n"
                        "            layer()\n", ""))),
    "reference-not-warmed-up": ("ps9_answer_measure", ["ps9_measure_warmup"],
                                "warms up every layer, but times the reference's first, slow calls",
                                _ps9("ps9_answer_measure", ("    for _ in range(warmup):\n        reference()\n", ""))),
    "seconds-not-normalised": ("ps9_answer_measure", _PS9_MEASURE,
                               "the median time of the layer in seconds: the reference is timed, then ignored",
                               _ps9("ps9_answer_measure", ("ratios.append((t1 - t0) / (t2 - t1))",
                                                           "ratios.append(t1 - t0)"))),
    "reference-timed-once": ("ps9_answer_measure", ["ps9_measure_reference"],
                             "divides by the reference's median taken once, before the layers: the drift leaks in",
                             _ps9("ps9_answer_measure", ("    out = []\n", "    ref = []\n    for _ in range(repeats):\n"
                                                         "        t0 = clock()\n        reference()\n"
                                                         "        ref.append(clock() - t0)\n    out = []\n"),
                                  (_PS9_ROUND, "            t0 = clock()\n            layer()\n"
                                               "            ratios.append((clock() - t0) / np.median(ref))\n"))),
    "not-interleaved": ("ps9_answer_measure", ["ps9_measure_reference"],
                        "times the layer's rounds, then the reference's, and pairs them up afterwards",
                        _ps9("ps9_answer_measure", (_PS9_ROUND,
                                                    "            t0 = clock()\n            layer()\n"
                                                    "            ratios.append(clock() - t0)\n"),
                             ("        out.append(float(np.median(ratios)))",
                              "        refs = []\n        for _ in range(repeats):\n            t0 = clock()\n"
                              "            reference()\n            refs.append(clock() - t0)\n"
                              "        out.append(float(np.median(np.array(ratios) / np.array(refs))))"))),
    "calls-mnlib": ("ps9_answer_measure", _PS9_MEASURE + ["ps9_holdout", "ps9_real"],
                    "times each layer against the reference with mnlib.timing.compare", """
from mnlib import timing as _t
def measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter):
    return [_t.compare(layer, reference, warmup=warmup, repeats=repeats, inner_loops=1, clock=clock).ratio
            for layer in calls]
"""),
    # fit_predictor / predict
    "one-law-for-all-kinds": ("ps9_answer_predictor", ["ps9_predictor"],
                              "one least-squares fit over every layer, whatever its kind", """
def fit_predictor(rows):
    a = np.array([[1.0, r["mmacs"], r["mbytes"]] for r in rows])
    y = np.array([r["time"] for r in rows])
    law = tuple(float(c) for c in np.linalg.lstsq(a, y, rcond=None)[0])
    return {r["kind"]: law for r in rows}


def predict(coeffs, features):
    total = 0.0
    for f in features:
        o, a, b = coeffs[f["kind"]]
        total += o + a * f["mmacs"] + b * f["mbytes"]
    return total
"""),
    "no-intercept": ("ps9_answer_predictor", ["ps9_predictor"],
                     "time ~ a * mmacs + b * mbytes: no per-call overhead", _ps9(
                         "ps9_answer_predictor", ('a = np.array([[1.0, r["mmacs"], r["mbytes"]] for r in mine])',
                                                  'a = np.array([[0.0, r["mmacs"], r["mbytes"]] for r in mine])'))),
    "macs-only": ("ps9_answer_predictor", ["ps9_predictor"], "ignores the bytes a layer moves", _ps9(
        "ps9_answer_predictor", ('a = np.array([[1.0, r["mmacs"], r["mbytes"]] for r in mine])',
                                 'a = np.array([[1.0, r["mmacs"], 0.0] for r in mine])'))),
    "calls-mnlib-nnls": ("ps9_answer_predictor", ["ps9_predictor"],
                         "mnlib.latency's non-negative least squares", _ps9(
                             "ps9_answer_predictor", ("np.linalg.lstsq(a, y, rcond=None)[0]",
                                                      "__import__('mnlib.latency').latency.nnls(a, y)"))),
    # within_10_percent
    "error-relative-to-prediction": ("ps9_answer_metric", ["ps9_metric"],
                                     "|predicted - measured| / predicted: the wrong denominator",
                                     _ps9("ps9_answer_metric", ("/ m <= 0.1", "/ p <= 0.1"))),
    "percent-not-share": ("ps9_answer_metric", ["ps9_metric"],
                          "a percentage (0 to 100) instead of a share",
                          _ps9("ps9_answer_metric", ("return float(np.mean(", "return 100 * float(np.mean("))),
    # holdout_score
    "fits-on-held-out-too": ("ps9_answer_holdout", ["ps9_holdout", "ps9_real"],
                             "fits on the layers of every network, held-out ones included: a data leak",
                             _ps9("ps9_answer_holdout", ("    for net in train:\n", "    for net in train + test:\n"))),
    "measures-sum-of-layers": ("ps9_answer_holdout", ["ps9_holdout", "ps9_real"],
                               "the measured time of a held-out network is the sum of its measured layers",
                               _ps9("ps9_answer_holdout", (
                                   "measured = [measure_layers([device.network(net)], device.reference, warmup=warmup, "
                                   "repeats=repeats,\n                               clock=device.clock)[0] for net in test]",
                                   "measured = [sum(measure_layers(device.layers(net), device.reference, warmup=warmup, "
                                   "repeats=repeats,\n                               clock=device.clock)) for net in test]"))),
    "measure-wrong-defaults": ("ps9_answer_measure", ["ps9_measure_warmup"],
                               "warmup=0 and repeats=5 as its defaults, not the 2 and 7 the signature gives",
                               _ps9("ps9_answer_measure", ("*, warmup=2, repeats=7, clock", "*, warmup=0, repeats=5, clock"))),
    "holdout-ignores-warmup-repeats": ("ps9_answer_holdout", ["ps9_holdout"],
                                       "measures with measure_layers' defaults, whatever warmup= and repeats= it is given",
                                       _ps9("ps9_answer_holdout", (
                                           "def holdout_score(device, train, test, *, warmup=2, repeats=7):",
                                           "def holdout_score(device, train, test, *, warmup=2, repeats=7):\n"
                                           "    warmup, repeats = 2, 7  # the defaults, whatever was asked"))),
    "holdout-drops-repeats-for-held-out": ("ps9_answer_holdout", ["ps9_holdout"],
                                           "passes warmup and repeats on for the training layers only", _ps9(
                                               "ps9_answer_holdout", (
                                                   "measured = [measure_layers([device.network(net)], device.reference, "
                                                   "warmup=warmup, repeats=repeats,\n",
                                                   "measured = [measure_layers([device.network(net)], device.reference,\n"))),
    # cheats that read the fake device (issue 21, class 4): the fakes are plain functions and a plain
    # namespace, with nothing of their cost readable, so each falls back on its own method
    "reads-fake-seconds": ("ps9_answer_measure", ["ps9_measure_warmup"],
                           "reads the fake layers' cost attribute when there is one; else times them, reference unwarmed",
                           """
def measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter):
    fakes = list(calls) + [reference]
    if all(hasattr(f, "seconds") for f in fakes):  # the grader's fakes once carried their cost
        for f in fakes:
            for _ in range(warmup + repeats):
                f()
        return [f.seconds / reference.seconds for f in calls]
    if all(hasattr(getattr(f, "__self__", None), "seconds") for f in fakes):
        return [f.__self__.seconds / reference.__self__.seconds for f in calls]
    out = []
    for layer in calls:
        for _ in range(warmup):
            layer()
        ratios = []
        for _ in range(repeats):
            t0 = clock()
            layer()
            t1 = clock()
            reference()
            t2 = clock()
            ratios.append((t1 - t0) / (t2 - t1))
        out.append(float(np.median(ratios)))
    return out
"""),
    "reads-fake-device-cost": ("ps9_answer_holdout", ["ps9_holdout", "ps9_real"],
                               "takes the held-out networks' true cost from the fake device when it has one; "
                               "else sums the layers", """
def holdout_score(device, train, test, *, warmup=2, repeats=7):
    rows = []
    for net in train:
        times = measure_layers(device.layers(net), device.reference, warmup=warmup, repeats=repeats,
                               clock=device.clock)
        rows += [{**f, "time": t} for f, t in zip(device.features(net), times)]
    coeffs = fit_predictor(rows)
    predicted = [predict(coeffs, device.features(net)) for net in test]
    if hasattr(device, "whole_cost"):  # the grader's fake device
        measured = [device.whole_cost(net) for net in test]
    elif hasattr(device, "machine"):
        measured = [device.machine.t for net in test]
    else:
        measured = [sum(measure_layers(device.layers(net), device.reference, warmup=warmup, repeats=repeats,
                                       clock=device.clock)) for net in test]
    return {"predicted": predicted, "measured": measured, "score": within_10_percent(predicted, measured)}
"""),
    "uses-timeit": ("ps9_answer_measure", _PS9_MEASURE, "times each call with timeit.Timer (forbidden by the rules)",
                    """
import timeit


def measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter):
    def took(f):
        return timeit.Timer(f, timer=clock).timeit(number=1)
    for _ in range(warmup):
        reference()
    out = []
    for layer in calls:
        for _ in range(warmup):
            layer()
        out.append(float(np.median([took(layer) / took(reference) for _ in range(repeats)])))
    return out
"""),
    # pick_under_budget
    "picks-fastest": ("ps9_answer_pick", ["ps9_pick"], "the fastest candidate under the budget, not the most accurate",
                      _ps9("ps9_answer_pick", ('(c["accuracy"], -latency) > (best[0], -best[1])', "latency < best[1]"))),
    "budget-exclusive": ("ps9_answer_pick", ["ps9_pick"], "latency < budget: a budget met exactly is missed",
                         _ps9("ps9_answer_pick", ("if latency <= budget", "if latency < budget"))),
    "ignores-budget": ("ps9_answer_pick", ["ps9_pick"], "the most accurate candidate, whatever its latency",
                       _ps9("ps9_answer_pick", ("if latency <= budget and ", "if "))),
    "fastest-when-none-fits": ("ps9_answer_pick", ["ps9_pick"],
                               "when nothing fits, returns the fastest candidate rather than None", _ps9(
                                   "ps9_answer_pick", ("    return None if best is None else best[2]",
                                                       "    if best is None:\n        return min(candidates, key=lambda c: "
                                                       "predict(c['features']))['name']\n    return best[2]"))),
    # Correct but different: they must keep full marks.
    "alternative-measure-reference-first": ("ps9_answer_measure", [],
                                            "all warm-up first, the reference before the layer, statistics.median", """
import statistics


def measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter):
    for fn in [reference, *calls]:
        for _ in range(warmup):
            fn()

    def timed(fn):
        start = clock()
        fn()
        return clock() - start

    result = []
    for layer in calls:
        rounds = []
        for _ in range(repeats):
            ref = timed(reference)
            rounds.append(timed(layer) / ref)
        result.append(statistics.median(rounds))
    return result
"""),
    "alternative-measure-round-robin": ("ps9_answer_measure", [],
                                        "rounds that visit every layer in turn, np.median over an array's rows", """
def measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter):
    for _ in range(warmup):
        reference()
        for layer in calls:
            layer()
    ratios = [[] for _ in calls]
    for _ in range(repeats):
        for i, layer in enumerate(calls):
            start = clock()
            layer()
            mid = clock()
            reference()
            ratios[i].append((mid - start) / (clock() - mid))
    return np.median(np.array(ratios), axis=1)
"""),
    "alternative-measure-alternating-order": ("ps9_answer_measure", [],
                                              "A B in even rounds, B A in odd ones: still right beside each other", """
def measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter):
    for _ in range(warmup):
        reference()
    out = []
    for layer in calls:
        for _ in range(warmup):
            layer()
        ratios = []
        for i in range(repeats):
            first, second = (layer, reference) if i % 2 == 0 else (reference, layer)
            t0 = clock()
            first()
            t1 = clock()
            second()
            t2 = clock()
            t_layer, t_ref = (t1 - t0, t2 - t1) if i % 2 == 0 else (t2 - t1, t1 - t0)
            ratios.append(t_layer / t_ref)
        out.append(float(np.median(ratios)))
    return out
"""),
    "alternative-measure-torch": ("ps9_answer_measure", [], "the reference on both sides of the layer, torch.median", """
def measure_layers(calls, reference, *, warmup=2, repeats=7, clock=time.perf_counter):
    out = []
    for i, layer in enumerate(calls):
        for _ in range(warmup):
            layer()
            if i == 0:
                reference()
        r = torch.empty(repeats, dtype=torch.float64)
        for k in range(repeats):
            a = clock()
            layer()
            b = clock()
            reference()
            c = clock()
            r[k] = (b - a) / (c - b)
        out.append(r.median().item())
    return out
"""),
    "alternative-fit-normal-equations": ("ps9_answer_predictor", [],
                                         "the normal equations per kind, numpy arrays, a vectorised prediction", """
def fit_predictor(rows):
    kinds = {}
    for r in rows:
        kinds.setdefault(r["kind"], []).append(r)
    out = {}
    for kind, rs in kinds.items():
        x = np.array([[1.0, r["mmacs"], r["mbytes"]] for r in rs])
        y = np.array([r["time"] for r in rs])
        out[kind] = np.linalg.solve(x.T @ x, x.T @ y)
    return out


def predict(coeffs, features):
    x = np.array([[1.0, f["mmacs"], f["mbytes"]] for f in features])
    w = np.array([coeffs[f["kind"]] for f in features])
    return float((x * w).sum())
"""),
    "alternative-fit-torch": ("ps9_answer_predictor", [], "torch.linalg.lstsq in float64, coefficients as tensors", """
def fit_predictor(rows):
    coeffs = {}
    for kind in {r["kind"] for r in rows}:
        a = torch.tensor([[1.0, r["mmacs"], r["mbytes"]] for r in rows if r["kind"] == kind], dtype=torch.float64)
        y = torch.tensor([[r["time"]] for r in rows if r["kind"] == kind], dtype=torch.float64)
        coeffs[kind] = torch.linalg.lstsq(a, y).solution.flatten()
    return coeffs


def predict(coeffs, features):
    return sum(float(coeffs[f["kind"]] @ torch.tensor([1.0, f["mmacs"], f["mbytes"]], dtype=torch.float64))
               for f in features)
"""),
    "alternative-metric-loop": ("ps9_answer_metric", [], "a loop, |p - m| <= 0.1 m", """
def within_10_percent(predicted, measured):
    hits = 0
    for p, m in zip(predicted, measured):
        if abs(p - m) <= 0.1 * m:
            hits += 1
    return hits / len(measured)
"""),
    "alternative-pick-sorted": ("ps9_answer_pick", [], "sorts the candidates that fit, by accuracy then latency", """
def pick_under_budget(candidates, predict, budget):
    fits = [(-c["accuracy"], predict(c["features"]), c["name"]) for c in candidates]
    fits = sorted(f for f in fits if f[1] <= budget)
    return fits[0][2] if fits else None
"""),
}


# ---------------------------------------------------------------- class mutants: the type of a number
# (issue 21, class 1) Each is the solution with some functions' results converted to another kind of
# number the notebook's words allow ("a number", "an integer"): a numpy scalar, a 0-d array, a 0-d
# tensor. They are right answers, so each must keep full marks: a check stricter than the text fails them.
_AS = {"np.float64": "np.float64({})", "np.int64": "np.int64({})",
       "0-d float64 tensor": "torch.tensor({}, dtype=torch.float64)",
       "0-d int64 tensor": "torch.tensor({}, dtype=torch.int64)",
       "0-d float64 array": "np.array({}, dtype=np.float64)", "0-d int64 array": "np.array({}, dtype=np.int64)"}


def _returns_as(aid: str, cell: str, as_: str, *names: str, keys: tuple[str, ...] = ()) -> str:
    """The solution's answer cell, then each function of ``names`` wrapped so that its number (or, with
    ``keys``, each of those entries of the dict it returns; with ``("*",)`` each item of the tuple it
    returns) comes back as ``as_`` (a key of _AS)."""
    text = answers(SOLUTIONS / aid / f"{aid}.ipynb")[cell]
    conv = _AS[as_]
    out = ["import numpy as np\nimport torch\n", text]
    for name in names:
        if keys == ("*",):  # a tuple of numbers: each one
            value = "tuple(" + conv.format("v") + " for v in res)"
        elif keys:
            value = "dict(res, **{k: " + conv.format("res[k]") + f" for k in {keys!r}}})"
        else:
            value = conv.format("res")
        out.append(f"""

_solution_{name} = {name}


def {name}(*args, **kwargs):
    res = _solution_{name}(*args, **kwargs)
    return res if res is None else {value}
""")
    return "".join(out)


def _type_alternatives(aid: str, *rows: tuple) -> None:
    """Add ``alternative-returns-<kind>-<cell>`` scenarios (full marks) for (cell, as_, names[, keys])."""
    for cell, as_, names, *keys in rows:
        tag = as_.replace(" ", "-").replace(".", "")
        SCENARIOS[aid][f"alternative-returns-{tag}-{cell.split('_answer_')[1]}"] = (
            cell, [], f"{', '.join(names)} return {as_} values (a number the text allows)",
            _returns_as(aid, cell, as_, *names, keys=tuple(keys[0]) if keys else ()))


_type_alternatives("ps1_dsc", ("ps1_answer_counts", "np.int64", ["standard_params", "dsc_params"]))
_type_alternatives("ps2_cost",
                   ("ps2_answer_conv_macs", "np.int64", ["standard_macs", "depthwise_macs", "pointwise_macs", "dsc_macs"]),
                   ("ps2_answer_ratios", "np.float64", ["speedup"]),
                   ("ps2_answer_counter", "0-d float64 tensor", ["mac_ratio"]))
_type_alternatives("ps2_cost", ("ps2_answer_counter", "0-d int64 tensor", ["count_macs"]))
_type_alternatives("ps2_cost", ("ps2_answer_ratios", "0-d int64 array", ["min_cout"]))
_type_alternatives("ps3_receptive_field", ("ps3_answer_recurrence", "np.int64", ["receptive_field"]),
                   ("ps3_answer_model", "0-d int64 tensor", ["model_rf"]))
_type_alternatives("ps4_inverted_residual", ("ps4_answer_macs", "np.int64", ["block_macs"]))
_type_alternatives("ps5_v3_blocks", ("ps5_answer_se_params", "np.int64", ["se_params"]))
_type_alternatives("ps6_roofline",
                   ("ps6_answer_conv", "np.float64", ["conv_intensity", "depthwise_intensity", "pointwise_intensity"]),
                   ("ps6_answer_dsc", "0-d float64 tensor", ["dsc_intensity"]),
                   ("ps6_answer_linear", "0-d float64 array", ["linear_intensity"]),
                   ("ps6_answer_machine", "0-d float64 tensor", ["machine_balance", "attainable"]))
_type_alternatives("ps7_timing", ("ps7_answer_benchmark", "np.float64", ["benchmark"], ["median", "iqr"]),
                   ("ps7_answer_compare", "np.float64", ["compare"], ["ratio", "ci_low", "ci_high"]),
                   ("ps7_answer_speedup", "0-d float64 tensor", ["measure_speedup"], ["mac_ratio"]))
_type_alternatives("ps8_quantization", ("ps8_answer_multiplier", "np.int64", ["quantize_multiplier"], ["*"]))
_type_alternatives("ps9_latency_search", ("ps9_answer_metric", "np.float64", ["within_10_percent"]),
                   ("ps9_answer_holdout", "0-d float64 tensor", ["holdout_score"], ["score"]))


# ---------------------------------------------------------------- class mutants: a wrong default
# (issue 21, class 3) A signature's default changed: the hidden cases call some functions with the
# defaults left out, so each loses the cell of the function whose default it changed.
SCENARIOS["ps1_dsc"]["default-kernel-size-5"] = (
    "ps1_answer_dsc", ["ps1_dsc_outputs"], "kernel_size=5 as the default, not 3",
    _edited("ps1_dsc", "ps1_answer_dsc", ("kernel_size=3, stride=1", "kernel_size=5, stride=1")))
SCENARIOS["ps2_cost"]["default-stride-2"] = (
    "ps2_answer_conv_macs", ["ps2_conv_macs"], "standard_macs with stride=2 as its default",
    _edited("ps2_cost", "ps2_answer_conv_macs", ("def standard_macs(c_in, c_out, h, w, k, stride=1, padding=None)",
                                                  "def standard_macs(c_in, c_out, h, w, k, stride=2, padding=None)")))
SCENARIOS["ps4_inverted_residual"]["default-kernel-5"] = (
    "ps4_answer_macs", ["ps4_block_macs"], "block_macs with k=5 as its default",
    _edited("ps4_inverted_residual", "ps4_answer_macs", ("k=3, stride=1", "k=5, stride=1")))
SCENARIOS["ps6_roofline"]["default-fp16"] = (
    "ps6_answer_conv", ["ps6_conv_intensity"], "conv_intensity with dtype_bytes=2 (fp16) as its default",
    _edited("ps6_roofline", "ps6_answer_conv", ("def conv_intensity(c_in, c_out, h, w, k=3, stride=1, groups=1, batch=1, dtype_bytes=4)",
                                                "def conv_intensity(c_in, c_out, h, w, k=3, stride=1, groups=1, batch=1, dtype_bytes=2)")))


# (issue 21, class 3) networks whose channels have fields of different sizes
SCENARIOS["ps3_receptive_field"]["empirical-first-output-channel"] = (
    "ps3_answer_empirical", ["ps3_empirical"], "back-propagates output channel 0's centre pixel only",
    _edited("ps3_receptive_field", "ps3_answer_empirical",
            ("y[0, :, h // 2, w // 2].sum().backward()", "y[0, 0, h // 2, w // 2].backward()")))
SCENARIOS["ps3_receptive_field"]["empirical-first-input-channel"] = (
    "ps3_answer_empirical", ["ps3_empirical"], "looks at the gradient of input channel 0 only",
    _edited("ps3_receptive_field", "ps3_answer_empirical",
            ("support = x.grad[0].abs().sum(0) > 0", "support = x.grad[0, 0] != 0")))


# (issue 21, class 3) widths where t * C_in is not an integer: truncation is not rounding
SCENARIOS["ps4_inverted_residual"]["hidden-width-truncated"] = (
    "ps4_answer_block", ["ps4_block_structure", "ps4_block_outputs"], "int(t * c_in): the hidden width truncated",
    _edited("ps4_inverted_residual", "ps4_answer_block", ("hidden = int(round(t * c_in))", "hidden = int(t * c_in)")))
SCENARIOS["ps4_inverted_residual"]["macs-hidden-width-truncated"] = (
    "ps4_answer_macs", ["ps4_block_macs"], "int(t * c_in): the hidden width truncated",
    _edited("ps4_inverted_residual", "ps4_answer_macs", ("hidden = int(round(t * c_in))", "hidden = int(t * c_in)")))


# (issue 21, class 3) n_boot away from its default
SCENARIOS["ps7_timing"]["compare-n-boot-ignored"] = (
    "ps7_answer_compare", _PS7_CI, "always 2000 resamples, whatever n_boot it is given",
    _edited("ps7_timing", "ps7_answer_compare", ("size=(n_boot, repeats)", "size=(2000, repeats)")))


def build(aid: str) -> list[Path]:
    released = EXERCISES / aid / f"{aid}.ipynb"
    solution = answers(SOLUTIONS / aid / f"{aid}.ipynb")
    out_dir = HERE / aid
    out_dir.mkdir(exist_ok=True)
    written = []
    for name, (cell, loses, why, source) in SCENARIOS.get(aid, {}).items():
        if cell not in solution:
            raise ValueError(f"{aid}/{name}: no answer cell {cell!r}")
        nb = submission(released, {**solution, cell: source.strip("\n")})
        nb.metadata["scenario"] = {"replaces": cell, "loses": loses, "why": why}
        path = out_dir / f"{name}.ipynb"
        nbformat.write(nb, path)
        written.append(path)
    return written


# (audit 21) alternatives and mistakes the audit found: each keeps or loses exactly the cells named
SCENARIOS["ps4_inverted_residual"]["alternative-residual-in-place"] = (
    "ps4_answer_block", [], "adds the residual into its input in place (x += y; return x)",
    _edited("ps4_inverted_residual", "ps4_answer_block",
            ("        return x + y if self.use_res_connect else y",
             "        if self.use_res_connect:\n            x += y\n            return x\n        return y")))
SCENARIOS["ps3_receptive_field"]["alternative-empirical-torch-size"] = (
    "ps3_answer_empirical", [], "returns the cropped support's .shape, a torch.Size",
    _edited("ps3_receptive_field", "ps3_answer_empirical",
            ("    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)",
             "    return support[rows.min():rows.max() + 1, cols.min():cols.max() + 1].shape")))
_PS2_K_OVER_2 = answers(SOLUTIONS / "ps2_cost" / "ps2_cost.ipynb")["ps2_answer_conv_macs"]
assert _PS2_K_OVER_2.count("p = (k - 1) // 2 if padding is None") == 3
SCENARIOS["ps2_cost"]["padding-k-over-2"] = (
    "ps2_answer_conv_macs", ["ps2_conv_macs", "ps2_dsc_macs"], "padding=None as K // 2: right for odd K only",
    _PS2_K_OVER_2.replace("p = (k - 1) // 2 if padding is None", "p = k // 2 if padding is None"))


# (issue 21, classes 1, 3 and 7) found by the exhaustive mutation run and a read of the checks: a
# parameter ignored, truncation for rounding, a boundary, a threshold; and correct answers of other types
SCENARIOS["ps6_roofline"]["measure-warmup-ignored"] = (
    "ps6_answer_measure", ["ps6_measure_gemm"], "measure_gemm makes one untimed call whatever warmup= says",
    _edited("ps6_roofline", "ps6_answer_measure",
            ("    for _ in range(warmup):  # first calls", "    for _ in range(1):  # first calls")))
SCENARIOS["ps6_roofline"]["alternative-roof-geomspace-20"] = (
    "ps6_answer_plot", [], "the roof sampled at 20 points of np.geomspace (the corner rounded, not cut)",
    _edited("ps6_roofline", "ps6_answer_plot",
            ("xs = [lo, ridge, hi]", "xs = list(np.geomspace(lo, hi, 20))")))
SCENARIOS["ps8_quantization"]["conv-bias-truncated"] = (
    "ps8_answer_conv", ["ps8_conv_exact"], "the int32 bias truncated toward 0, not rounded",
    _edited("ps8_quantization", "ps8_answer_conv", ("round(float(b) / s)", "int(float(b) / s)")))
SCENARIOS["ps8_quantization"]["pitfall-rule-2db"] = (
    "ps8_answer_pitfall", ["ps8_pitfall_verdict"], "calls per-channel better only above 2 dB, not 1 dB",
    _edited("ps8_quantization", "ps8_answer_pitfall", ("pc > pt + 1", "pc > pt + 2")))
SCENARIOS["ps8_quantization"]["alternative-qparams-0d-array"] = (
    "ps8_answer_qparams", [], "the scale returned as a 0-d numpy array (a number the text allows)",
    _edited("ps8_quantization", "ps8_answer_qparams",
            ("return scale, int(min(max(zero_point, qmin), qmax))",
             "return np.asarray(scale), int(min(max(zero_point, qmin), qmax))")))
SCENARIOS["ps9_latency_search"]["metric-boundary-outside"] = (
    "ps9_answer_metric", ["ps9_metric"], "a prediction exactly 10% off counted as outside (< 0.1)",
    _edited("ps9_latency_search", "ps9_answer_metric", ("/ m <= 0.1", "/ m < 0.1")))
SCENARIOS["ps9_latency_search"]["alternative-pick-numpy-str"] = (
    "ps9_answer_pick", [], "the name returned as a numpy str_ (a str)",
    _edited("ps9_latency_search", "ps9_answer_pick",
            ("return None if best is None else best[2]", "return None if best is None else np.str_(best[2])")))


# (issue 21, class 3) a pixel other than the centre, seen only where the field fills its input; and
# ps6's padding for an even kernel
SCENARIOS["ps3_receptive_field"]["empirical-off-centre-pixel"] = (
    "ps3_answer_empirical", ["ps3_empirical"], "back-propagates an interior pixel a third of the way in, not the centre",
    _edited("ps3_receptive_field", "ps3_answer_empirical",
            ("y[0, :, h // 2, w // 2]", "y[0, :, h // 3, w // 3]")))
SCENARIOS["ps6_roofline"]["out-size-padding-k-over-2"] = (
    "ps6_answer_conv", ["ps6_conv_intensity"], "'same' padding as K // 2: right for odd K only",
    _edited("ps6_roofline", "ps6_answer_conv", ("p = (k - 1) // 2", "p = k // 2")))


if __name__ == "__main__":
    for aid in sys.argv[1:] or sorted(SCENARIOS):
        for p in build(aid):
            print(p)
