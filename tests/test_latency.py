"""mnlib.latency: the fit recovers known parameters, predictions add up layer by layer, errors are clear.

No test asserts a time: calibrate() runs once on a tiny grid only to check its structure.
"""
import numpy as np
import pytest
import torch
from torch import nn

from mnlib import cost, latency, timing
from mnlib.latency import Calibration, KindFit
from mnlib.models import MODELS, mobilenet_v1, mobilenet_v3_small
from mnlib.roofline import Machine, layer_table

MACHINE = Machine("toy", peak_macs_per_s=50e9, bandwidth_bytes_per_s=10e9)


@pytest.mark.parametrize("o,s", [(20e-6, 3.0), (0.0, 1.7), (5e-6, 0.0)])
def test_fit_recovers_overhead_and_slowdown(o, s):
    """Data made exactly by t = o + s r (or its clipped forms) gives back o and s."""
    roof = np.array([1e-6, 5e-6, 2e-5, 1e-4, 4e-4])
    got_o, got_s = latency._fit(roof, o + s * roof)
    assert got_o == pytest.approx(o, abs=1e-12) and got_s == pytest.approx(s, abs=1e-9)


def test_fit2_recovers_two_columns_and_context_scales_the_prediction():
    u, v = np.array([1.0, 2.0, 3.0, 5.0]), np.array([40.0, 10.0, 70.0, 20.0])
    assert latency._fit2(u, v, 0.5 * u + 0.25 * v) == pytest.approx((0.5, 0.25))
    model, size = mobilenet_v1(0.25), (1, 3, 64, 64)
    base = latency.predict_latency(model, size, MACHINE, _calibration())
    cal = _calibration()
    cal.context = 1.5
    assert latency.predict_latency(model, size, MACHINE, cal) == pytest.approx(1.5 * base)


def test_fit_never_returns_negative_parameters():
    roof = np.array([1e-5, 2e-5, 4e-5])
    o, s = latency._fit(roof, np.array([1e-6, 3e-5, 9e-5]))  # a line through o < 0
    assert o >= 0 and s >= 0
    o, s = latency._fit(roof, np.array([9e-5, 5e-5, 1e-5]))  # a falling line: s < 0
    assert o > 0 and s == 0


def _calibration(**overrides):
    fits = {k: KindFit(1e-6, 2.0, 3, 0.0) for k in
            ("conv", "depthwise", "pointwise", "linear", "se", "bn", "act:relu", "act:relu6",
             "act:hswish", "act:hsigmoid", "add", "scale", "pool", "free", "container")}
    fits.update(overrides)
    return Calibration(MACHINE, fits, [dict(key="conv", macs=100, measured_s=1e-6)])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_prediction_is_the_sum_of_layer_terms(name):
    """With every kind at o = 1 us, s = 2: prediction = 2 x roofline + 1 us x calls + containers."""
    model = MODELS[name](0.5)
    cal = _calibration(container=KindFit(0.5e-6, 0.0, 3, 0.0))
    size = (1, 3, 64, 64)
    rows = layer_table(model, size, MACHINE, macs_only=False)
    free = sum(1 for m in model.modules() if isinstance(m, (nn.Dropout, nn.Flatten, nn.Identity)))
    containers = sum(1 for m in model.modules() if list(m.children()))
    expected = (2 * sum(r.predicted_s for r in rows) + 1e-6 * (len(rows) + free)
                + 0.5e-6 * containers)
    assert latency.predict_latency(model, size, MACHINE, cal) == pytest.approx(expected)
    assert latency.roofline_latency(model, size, MACHINE) == pytest.approx(sum(r.predicted_s for r in rows))


def test_activations_are_told_apart():
    """V3 has ReLU and hard-swish layers: making hard-swish dearer raises only their share."""
    model = mobilenet_v3_small()
    base = latency.layer_latencies(model, (1, 3, 64, 64), MACHINE, _calibration())
    dear = latency.layer_latencies(model, (1, 3, 64, 64), MACHINE,
                                   _calibration(**{"act:hswish": KindFit(1e-3, 2.0, 3, 0.0)}))
    keys = {k for _, k, _ in base}
    assert {"act:relu", "act:hswish", "act:hsigmoid", "se", "scale"} <= keys
    for (n, k, t0), (_, _, t1) in zip(base, dear):
        assert (t1 > t0) == (k == "act:hswish"), n


def test_macs_only_model_is_proportional_to_macs():
    model = mobilenet_v1(0.5)
    t = latency.macs_latency(model, (1, 3, 128, 128), 1e-10)
    assert t == pytest.approx(cost.count(model, (1, 3, 128, 128)).macs * 1e-10)
    assert _calibration().seconds_per_mac() == pytest.approx(1e-8)


def test_missing_kind_and_bad_arguments_raise():
    cal = _calibration()
    del cal.fits["depthwise"]
    with pytest.raises(ValueError, match="depthwise"):
        latency.predict_latency(mobilenet_v1(0.25), (1, 3, 64, 64), MACHINE, cal)
    with pytest.raises(ValueError, match="SiLU"):
        latency.predict_latency(nn.Sequential(nn.Conv2d(3, 8, 3), nn.SiLU()), (1, 3, 8, 8), MACHINE,
                                _calibration())
    with pytest.raises(ValueError, match="calibration"):
        latency.predict_latency(mobilenet_v1(0.25), (1, 3, 64, 64), MACHINE, None)
    with pytest.raises(ValueError, match="machine"):
        latency.calibrate("cpu")
    with pytest.raises(ValueError, match="per_kind"):
        latency.calibrate(MACHINE, per_kind=1)


def test_calibration_grid_is_synthetic_and_covers_every_kind_the_models_use():
    """The micro-benchmarks are isolated layers on a grid; every key any mnlib model needs is there."""
    cases = latency._cases(1, np.random.default_rng(0), 12)
    keys = {k for k, _, _ in cases}
    for name, build in MODELS.items():
        model = build(0.5)
        for _, k, _ in latency.layer_latencies(model, (1, 3, 64, 64), MACHINE, _calibration()):
            assert k in keys, (name, k)
    assert all(not isinstance(m, nn.Sequential) or k == "container" for k, m, _ in cases)


def test_calibrate_runs_and_fits_every_kind():
    """A tiny real calibration (one sample per case): structure only, no times asserted."""
    with timing.threads(1):
        cal = latency.calibrate(MACHINE, per_kind=2, repeats=1, min_sample_s=0.0, sequences=2)
    assert {"depthwise", "pointwise", "bn", "act:hswish", "container"} <= set(cal.fits)
    assert all(f.overhead_s >= 0 and f.slowdown >= 0 for f in cal.fits.values())
    assert cal.context > 0
    assert cal.env["threads"] == 1
    t = latency.predict_latency(mobilenet_v3_small(0.5), (1, 3, 64, 64), MACHINE, cal)
    assert t > 0 and np.isfinite(t)
    assert torch.get_num_threads() >= 1
