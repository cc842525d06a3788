"""mnlib.latency: the solver and the fit recover known coefficients, predictions add up layer by layer,
the calibration networks cover every kind the published models use, errors are clear.

No test asserts a time: calibrate() runs once on three tiny networks only to check its structure.
"""
import numpy as np
import pytest
import torch
from torch import nn

from mnlib import cost, latency, timing
from mnlib.latency import Calibration
from mnlib.models import MODELS, mobilenet_v1, mobilenet_v3_large, mobilenet_v3_small
from mnlib.roofline import Machine, layer_table

MACHINE = Machine("toy", peak_macs_per_s=50e9, bandwidth_bytes_per_s=10e9)


def test_nnls_matches_scipy_on_random_problems():
    """Same residual as scipy.optimize.nnls (an independent implementation), never a negative entry."""
    scipy_nnls = pytest.importorskip("scipy.optimize").nnls
    rng = np.random.default_rng(1)
    for _ in range(100):
        m, n = int(rng.integers(2, 40)), int(rng.integers(1, 30))
        a = rng.standard_normal((m, n)) * rng.uniform(0.01, 100, size=n)  # badly scaled columns
        b = rng.standard_normal(m)
        x = latency.nnls(a, b)
        y, _ = scipy_nnls(a, b)
        assert (x >= 0).all()
        assert np.linalg.norm(a @ x - b) <= np.linalg.norm(a @ y - b) * (1 + 1e-6) + 1e-9


def test_nnls_recovers_an_exact_non_negative_solution():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, size=(30, 6))
    x_true = np.array([0.0, 2.0, 0.5, 0.0, 7.0, 1e-3])
    assert latency.nnls(a, a @ x_true) == pytest.approx(x_true, abs=1e-9)
    with pytest.raises(ValueError, match="2-D"):
        latency.nnls(np.ones(3), np.ones(3))


def _points(n, coef, seed=0):
    """Feature rows of n random networks, timed by a known model instead of a clock."""
    rng = np.random.default_rng(seed)
    pts = []
    for _ in range(n):
        model, size = latency.random_network(rng)
        f = latency.features(model, size, MACHINE)
        pts.append(dict(features=f, seconds=sum(coef(c) * v for c, v in f.items()), macs=1, model=(model, size)))
    return pts


def _true_coef(column):
    """A made-up machine: every key costs 3 us a call, 50 us per MMAC and 200 us per MB (more for hard-swish)."""
    unit = {"calls": 3e-6, "MMACs": 50e-6, "MB": 200e-6}[column.rsplit(":", 1)[1]]
    return unit * (4.0 if column.startswith("act:hswish") else 1.0)


def test_fit_predicts_exactly_what_a_known_linear_machine_does():
    """Times made by a known model are fitted to ~0 error, and held-out networks are predicted exactly."""
    train = _points(120, _true_coef, seed=0)
    cal = latency.fit(train, MACHINE, reference_s=1e-3)
    assert np.abs(cal.fit_errors()).max() < 1e-6
    assert all(v >= 0 for v in cal.coef.values())
    for p in _points(10, _true_coef, seed=99):
        model, size = p["model"]
        assert latency.predict_latency(model, size, MACHINE, cal) == pytest.approx(p["seconds"], rel=1e-6)


def _calibration(**per_key):
    """Every key the models use at 1 us a call, 2 us per MMAC, 3 us per MB (overrides per key)."""
    keys = {k for build in MODELS.values() for _, k, _, _ in latency._layers(build(0.5), (1, 3, 64, 64), MACHINE)}
    coef = {}
    for k in keys:
        calls, mmacs, mb = per_key.get(k, (1e-6, 2e-6, 3e-6))
        coef.update({f"{k}:calls": calls, f"{k}:MMACs": mmacs, f"{k}:MB": mb})
    return Calibration(MACHINE, coef, 1e-3, [dict(features={}, seconds=2e-3, macs=1_000_000)])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_prediction_is_the_sum_of_layer_terms(name):
    """Prediction = 1 us per layer, module call and container + 2 us/MMAC + 3 us/MB of the roofline table."""
    model, size = MODELS[name](0.5), (1, 3, 64, 64)
    rows = layer_table(model, size, MACHINE, macs_only=False)
    free = sum(1 for m in model.modules() if isinstance(m, (nn.Dropout, nn.Flatten, nn.Identity)))
    containers = sum(1 for m in model.modules() if list(m.children()))
    expected = (1e-6 * (len(rows) + free + containers) + 2e-6 * sum(r.macs for r in rows) / 1e6
                + 3e-6 * sum(r.bytes for r in rows) / 1e6)
    assert latency.predict_latency(model, size, MACHINE, _calibration()) == pytest.approx(expected)
    assert latency.roofline_latency(model, size, MACHINE) == pytest.approx(sum(r.predicted_s for r in rows))


def test_activations_and_depthwise_shapes_are_told_apart():
    """V3 has ReLU and hard-swish, 3x3 and 5x5 depthwise convs: making one key dearer raises only its terms."""
    model = mobilenet_v3_large()
    keys = {k for _, k, _ in latency.layer_latencies(model, (1, 3, 64, 64), MACHINE, _calibration())}
    assert {"act:relu", "act:hswish", "act:hsigmoid", "se", "scale", "depthwise3x3/s1",
            "depthwise5x5/s2", "depthwise3x3/s2", "depthwise5x5/s1"} <= keys
    base = latency.layer_latencies(model, (1, 3, 64, 64), MACHINE, _calibration())
    for dear_key in ("act:hswish", "depthwise5x5/s1"):
        dear = latency.layer_latencies(model, (1, 3, 64, 64), MACHINE, _calibration(**{dear_key: (1e-3, 0, 0)}))
        for (n, k, t0), (_, _, t1) in zip(base, dear):
            assert (t1 > t0) == (k == dear_key), n


def test_random_networks_cover_every_key_the_published_models_use_and_run():
    """Sixty calibration networks contain every key of V1, V2, V3-Large and V3-Small; they run at their size."""
    rng = np.random.default_rng(0)
    nets = [latency.random_network(rng) for _ in range(60)]
    seen = {c.rsplit(":", 1)[0] for m, s in nets for c in latency.features(m, s, MACHINE)}
    for name, build in MODELS.items():
        for _, k, _, _ in latency._layers(build(0.75), (1, 3, 96, 96), MACHINE):
            assert k in seen, (name, k)
    families = {type(m.features[0][-1]).__name__ for m, _ in nets}
    assert families == {"ReLU", "ReLU6", "HardSwish"}  # the three families, by their stem activation
    again = latency.random_network(np.random.default_rng(0))
    assert again[1] == nets[0][1] and cost.count(again[0], again[1]).macs == cost.count(*nets[0]).macs
    with torch.no_grad():
        for model, size in nets[:3]:
            assert model(torch.zeros(size)).shape == (1, 1000)


def test_macs_only_model_is_proportional_to_macs():
    model = mobilenet_v1(0.5)
    t = latency.macs_latency(model, (1, 3, 128, 128), 1e-10)
    assert t == pytest.approx(cost.count(model, (1, 3, 128, 128)).macs * 1e-10)
    assert _calibration().seconds_per_mac() == pytest.approx(2e-9)


def test_missing_kind_and_bad_arguments_raise():
    cal = _calibration()
    cal.coef = {k: v for k, v in cal.coef.items() if not k.startswith("depthwise3x3/s2")}
    with pytest.raises(ValueError, match="depthwise3x3/s2"):
        latency.predict_latency(mobilenet_v1(0.25), (1, 3, 64, 64), MACHINE, cal)
    with pytest.raises(ValueError, match="SiLU"):
        latency.predict_latency(nn.Sequential(nn.Conv2d(3, 8, 3), nn.SiLU()), (1, 3, 8, 8), MACHINE,
                                _calibration())
    with pytest.raises(ValueError, match="calibration"):
        latency.predict_latency(mobilenet_v1(0.25), (1, 3, 64, 64), MACHINE, None)
    with pytest.raises(ValueError, match="machine"):
        latency.calibrate("cpu")
    with pytest.raises(ValueError, match="networks"):
        latency.calibrate(MACHINE, networks=1)
    with pytest.raises(ValueError, match="at least 2"):
        latency.fit(_points(1, _true_coef), MACHINE, 1e-3)


def test_calibrate_runs_and_fits_every_kind_it_saw():
    """A tiny real calibration (three networks, one sample each): structure only, no times asserted."""
    with timing.threads(1):
        cal = latency.calibrate(MACHINE, networks=3, repeats=1, min_sample_s=0.0, seed=5)
    assert len(cal.points) == 3 and cal.reference_s > 0 and cal.env["threads"] == 1
    assert all(v >= 0 for v in cal.coef.values())
    assert {"conv", "pointwise", "linear", "container"} <= cal.keys
    for p in cal.points:
        assert p["seconds"] > 0 and p["raw_s"] > 0 and p["macs"] > 0
    normalised, raw = latency.measure_normalised(mobilenet_v3_small(0.35), (1, 3, 64, 64), cal.reference_s,
                                                 repeats=1, min_sample_s=0.0)
    assert normalised > 0 and raw > 0


def test_layers_come_from_one_count_report():
    """Keys come from the report's module class and conv geometry (no second walk of the model):
    every depthwise key names its module's real kernel and stride, every call is listed once."""
    model = mobilenet_v3_small(0.5)
    terms = latency._layers(model, (1, 3, 64, 64), MACHINE)
    for name, key, _, _ in terms:
        if key.startswith("depthwise"):
            conv = model.get_submodule(name)
            assert key == f"depthwise{conv.kernel_size[0]}x{conv.kernel_size[0]}/s{conv.stride[0]}"
        if key.startswith("act:"):
            assert key == {"ReLU": "act:relu", "HardSwish": "act:hswish",
                           "HardSigmoid": "act:hsigmoid"}[type(model.get_submodule(name)).__name__]
    containers = [n for n, m in model.named_modules() if any(True for _ in m.children())]
    assert [n for n, k, _, _ in terms if k == "container"] == containers

    class FunctionalRelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return torch.relu(self.conv(x))
    with pytest.raises(ValueError, match="aten.relu"):
        latency.predict_latency(FunctionalRelu(), (1, 3, 8, 8), MACHINE, _calibration())
