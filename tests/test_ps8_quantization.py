"""ps8_quantization's references and probe, against oracles that share no code with them.

The hidden checks (assignments/ps8_quantization/checks.py) compute their references at setup, with
torch's quantized ops as oracles for some; here the rest is checked independently: the fixed-point
references against exact rational arithmetic (fractions.Fraction), the integer depthwise layer
against torch's quantized conv on a second engine, and the probe that watches the learner's calls
against real calls of what it must catch and of what it must let through.
"""
from __future__ import annotations

import math
import sys
import warnings
from fractions import Fraction

import pytest
import torch

sys.dont_write_bytecode = True  # nothing written into solutions/ (nbgrader reads its folders as assignments)


@pytest.fixture(scope="module")
def grader():
    """The namespace the grader setup builds (the toolkit + the ps8 checks), loaded here in-process."""
    from assignments import build

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vars(build.load("ps8_quantization"))


def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def test_multiplier_references_are_the_nearest_fixed_point(grader):
    """Is each reference (M0, shift) the int32 mantissa in [2^30, 2^31) nearest to M, exactly?"""
    for m, m0, shift in grader["M_REF"]:
        exact = Fraction(m)  # the float64 M, exactly
        assert 2 ** 30 <= m0 < 2 ** 31
        scaled = exact * 2 ** (31 + shift)
        assert abs(scaled - m0) <= Fraction(1, 2), (m, m0, shift)
        # no other shift gives a mantissa in range
        assert 2 ** 30 <= round(scaled) <= 2 ** 31


def test_requantize_references_are_exact_rounding(grader):
    """Does every requantize reference equal round-half-up(acc * M0 / 2^n) + z, clamped, in rationals?"""
    for acc, m0, shift, z, dt, ref in grader["RQ_REF"] + grader["RQ_TIES"] + grader["RQ_SAT"]:
        lo, hi = grader["QRANGE"][dt]
        want = [min(max(_round_half_up(Fraction(a * m0, 2 ** (31 + shift))) + z, lo), hi) for a in acc.tolist()]
        assert ref.tolist() == want


def test_large_accumulator_cases_defeat_float64(grader):
    """The cases meant to catch float64 requantization: does float64 really get them wrong?"""
    caught = 0
    for acc, m0, shift, z, dt, ref in grader["RQ_REF"]:
        as_float = torch.floor(acc.double() * m0 / 2.0 ** (31 + shift) + 0.5).to(torch.int64) + z
        caught += int((as_float != ref).sum())
    assert caught >= 2


def test_requantize_ties_separate_the_rounding_rules(grader):
    """Half to even and half away from zero each get some tie case wrong; half up gets none."""
    for rule in (torch.round, lambda v: torch.sign(v) * torch.floor(v.abs() + 0.5)):
        wrong = 0
        for acc, m0, shift, z, dt, ref in grader["RQ_TIES"]:
            exact = [Fraction(a * m0, 2 ** (31 + shift)) for a in acc.tolist()]
            assert all(Fraction(float(v)) == v for v in exact)  # small dyadic rationals: exact in float64
            got = rule(torch.tensor([float(v) for v in exact], dtype=torch.float64))
            wrong += int((got.to(torch.int64) + z != ref).sum())
        assert wrong > 0


@pytest.mark.parametrize("engine", ["qnnpack", "onednn"])
def test_integer_layer_matches_torch_quantized_conv(grader, engine):
    """The reference integer depthwise layer, within one step of torch's quantized conv on this engine."""
    import torch.ao.nn.quantized.functional as qf
    if engine not in torch.backends.quantized.supported_engines:
        pytest.skip(f"torch has no {engine} engine here")
    before = torch.backends.quantized.engine
    try:
        torch.backends.quantized.engine = engine
        for args, out, fl, amb in grader["CONV_REF"]:
            qx, sx, zx, qw, sw, bias, sy, zy = args
            c = qx.shape[1]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x = torch._make_per_tensor_quantized_tensor(qx, sx, zx)
                w = torch._make_per_channel_quantized_tensor(qw, sw.double(), torch.zeros(c, dtype=torch.int64), 0)
                y = qf.conv2d(x, w, bias, padding=1, groups=c, scale=sy, zero_point=zy).int_repr().to(torch.int64)
            assert int((y - out).abs().max()) <= 1
            assert int((fl - out).abs().max()) <= 1
    finally:
        torch.backends.quantized.engine = before


def test_probe_catches_torch_quantization_and_mnlib(grader):
    """The probe reports torch's quantization (C functions, Tensor.int_repr, torch.ao) and mnlib; plain code passes."""
    watched = grader["kernel_define"](grader["kernel"], "watched")
    x = torch.tensor([0.1, -0.4, 2.0])

    def plain(t):
        return torch.clamp(torch.round(t / 0.1), -128, 127).to(torch.int8)

    def by_torch(t):
        return torch.quantize_per_tensor(t, 0.1, 0, torch.qint8).int_repr()

    def by_observer(t):
        from torch.ao.quantization import MinMaxObserver
        return MinMaxObserver()(t)

    def by_mnlib(t):
        import mnlib.cost
        return mnlib.cost.conv_output_size(int(t.numel()), 3, 1, 1)

    res = watched(plain, x)
    assert res["used"] == [] and res["out"].tolist() == [1, -4, 20]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "quantize_per_tensor" in watched(by_torch, x)["used"]
        assert "int_repr" in watched(by_torch, x)["used"]
        assert any(u.startswith("torch.ao.") for u in watched(by_observer, x)["used"])
    assert any(u.startswith("mnlib.") for u in watched(by_mnlib, x)["used"])
