"""Build the plausible-mistake submissions tests/scenarios/<id>/<name>.ipynb from the notebooks.

Each scenario is the *released* notebook (exercises/<id>/) with every answer cell filled from the
solution (solutions/<id>/) except one, whose source is replaced by a mistake. So scenarios stay in
sync with the assignments: regenerate after changing a notebook. Each file records in its metadata
which answer cell it replaces and which grade cells it must lose (every other one it must keep):
tests/test_exercises_grading.py asserts exactly that, per grade cell.

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
}


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


if __name__ == "__main__":
    for aid in sys.argv[1:] or sorted(SCENARIOS):
        for p in build(aid):
            print(p)
