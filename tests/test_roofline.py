"""mnlib.roofline against hand-derived cases, torch's own tensor sizes and the definitions."""
import math
from fractions import Fraction

import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

from mnlib import cost, roofline, timing  # noqa: E402
from mnlib.models import mobilenet_v2, mobilenet_v3_small  # noqa: E402
from mnlib.roofline import Machine  # noqa: E402


def test_depthwise_3x3_on_112_fp32_is_28224_over_25097():
    """Hand check: 112^2*9*C MACs over 4*(2*112^2 + 9)*C bytes, for any channel count C."""
    expected = 28224 / 25097
    for c in (1, 32, 96):
        assert roofline.depthwise_intensity(c, 112, 112) == pytest.approx(expected, rel=1e-12)
    assert Fraction(112 * 112 * 9, 4 * (2 * 112 * 112 + 9)) == Fraction(28224, 25097)
    assert expected == pytest.approx(1.1246, abs=5e-5)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_depthwise_tends_to_k2_over_8_on_large_maps(k):
    """With H W >> K^2 the weights vanish: K^2 MACs per (4 + 4) bytes of input and output."""
    i = roofline.depthwise_intensity(8, 4096, 4096, kernel_size=k)
    assert i == pytest.approx(k * k / 8, rel=1e-5)
    assert i < k * k / 8  # approached from below: the weights always cost something


def test_intensity_matches_torch_tensor_sizes():
    """Bytes from the formula = element_size * numel of the input, weight and output torch makes."""
    for c_in, c_out, h, k, s, g, n in [(32, 64, 112, 3, 1, 1, 1), (96, 96, 56, 3, 2, 96, 8),
                                       (40, 120, 28, 5, 1, 40, 2), (64, 128, 14, 1, 1, 1, 4)]:
        conv = nn.Conv2d(c_in, c_out, k, s, (k - 1) // 2, groups=g, bias=False)
        x = torch.zeros(n, c_in, h, h)
        y = conv(x)
        nbytes = sum(t.numel() * t.element_size() for t in (x, conv.weight, y))
        macs = y.numel() * (c_in // g) * k * k
        assert roofline.conv_traffic(c_in, c_out, h, h, k, s, g, n) == (macs, nbytes)
        assert roofline.conv_intensity(c_in, c_out, h, h, k, s, g, n) == pytest.approx(macs / nbytes)


def test_half_precision_doubles_intensity_and_batch_helps_dense_layers_only():
    fp32 = roofline.pointwise_intensity(256, 256, 28, 28)
    assert roofline.pointwise_intensity(256, 256, 28, 28, dtype_bytes=2) == pytest.approx(2 * fp32)
    # batching amortises the weights: large gain for the FC layer, almost none for depthwise
    assert roofline.linear_intensity(1280, 1000, batch=64) > 30 * roofline.linear_intensity(1280, 1000)
    dw1, dw64 = roofline.depthwise_intensity(32, 112, 112), roofline.depthwise_intensity(32, 112, 112, batch=64)
    assert dw64 / dw1 < 1.001


def test_linear_at_batch_1_reads_each_weight_for_one_mac():
    i = roofline.linear_intensity(1280, 1000)
    assert i < 1 / 4
    assert i == pytest.approx(1280 * 1000 / (4 * (1280 + 1000 + 1280 * 1000 + 1000)))


def test_dsc_intensity_is_total_macs_over_total_bytes():
    c_in, c_out, h = 32, 64, 112
    dw = roofline.conv_traffic(c_in, c_in, h, h, 3, 1, c_in)
    pw = roofline.conv_traffic(c_in, c_out, h, h, 1)
    assert roofline.dsc_intensity(c_in, c_out, h, h) == pytest.approx((dw[0] + pw[0]) / (dw[1] + pw[1]))
    assert dw[0] + pw[0] == cost.dsc_macs(c_in, c_out, h, h)
    # fusing removes the round trip of the (C_in, H, W) intermediate, so intensity rises
    fused = roofline.dsc_intensity(c_in, c_out, h, h, fused=True)
    assert fused == pytest.approx((dw[0] + pw[0]) / (dw[1] + pw[1] - 2 * 4 * c_in * h * h))
    # and the standard conv has far more reuse than either
    assert roofline.conv_intensity(c_in, c_out, h, h) > 5 * fused


def test_machine_balance_attainable_and_bound():
    m = Machine("toy", peak_macs_per_s=100e9, bandwidth_bytes_per_s=20e9)
    assert m.balance == 5.0
    assert roofline.attainable(1.0, m) == 20e9          # memory roof: I x B
    assert roofline.attainable(50.0, m) == 100e9        # compute roof: the peak
    assert roofline.attainable(5.0, m) == 100e9         # the ridge: both
    assert roofline.bound(4.99, m) == "memory" and roofline.bound(5.0, m) == "compute"
    dw = roofline.depthwise_intensity(32, 112, 112)
    assert roofline.bound(dw, m) == "memory"


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "1", None])
def test_bad_intensity_raises(bad):
    m = Machine("toy", 1e9, 1e9)
    with pytest.raises(ValueError, match="intensity"):
        roofline.attainable(bad, m)


def test_bad_machine_and_shapes_raise():
    with pytest.raises(ValueError, match="peak_macs_per_s"):
        Machine("x", 0, 1e9)
    with pytest.raises(ValueError, match="bandwidth_bytes_per_s"):
        Machine("x", 1e9, -5)
    with pytest.raises(ValueError, match="batch"):
        roofline.conv_intensity(3, 8, 32, 32, batch=0)
    with pytest.raises(ValueError, match="dtype_bytes"):
        roofline.depthwise_intensity(8, 32, 32, dtype_bytes=0)
    with pytest.raises(ValueError, match="groups"):
        roofline.conv_intensity(6, 8, 32, 32, groups=4)
    with pytest.raises(ValueError, match="in_features"):
        roofline.linear_intensity(0, 10)
    with pytest.raises(ValueError, match="machine"):
        roofline.layer_table(mobilenet_v3_small(), (1, 3, 64, 64), None)


def test_layer_table_covers_every_mac_and_classifies_by_balance():
    m = Machine("toy", 50e9, 10e9)
    model = mobilenet_v2()
    rows = roofline.layer_table(model, (1, 3, 224, 224), m)
    # the oracle: torch's FlopCounterMode (2 FLOPs per MAC), not a number taken from mnlib
    assert sum(r.macs for r in rows) == cost.count(model).macs == cost.flops_from_torch(model, (1, 3, 224, 224)) // 2
    n_conv_linear = sum(isinstance(x, (nn.Conv2d, nn.Linear)) for x in model.modules())
    assert len(rows) == n_conv_linear
    for r in rows:
        assert r.intensity == pytest.approx(r.macs / r.bytes)
        assert r.bound == ("memory" if r.intensity < m.balance else "compute")
        assert r.predicted_s == pytest.approx(max(r.macs / m.peak_macs_per_s,
                                                  r.bytes / m.bandwidth_bytes_per_s))
    stem = rows[0]
    assert stem.bytes == 4 * (3 * 224 * 224 + 32 * 112 * 112 + 32 * 3 * 9)
    assert all(r.bound == "memory" for r in rows if r.kind == "depthwise")
    assert {r.kind for r in rows} == {"conv", "depthwise", "pointwise", "linear"}


def test_layer_table_with_elementwise_layers():
    m = Machine("toy", 50e9, 10e9)
    rows = roofline.layer_table(mobilenet_v3_small(), (2, 3, 96, 96), m, macs_only=False)
    kinds = {r.kind for r in rows}
    assert {"bn", "act", "add", "scale", "pool", "se"} <= kinds
    for r in rows:
        if r.kind == "add":
            assert r.bytes == 4 * 3 * math.prod(r.out_shape)
        if not r.macs:
            assert r.bound == "memory" and r.predicted_s == r.bytes / m.bandwidth_bytes_per_s


def test_plot_roofline_draws_layers_and_ridge():
    m = Machine("toy", 50e9, 10e9)
    rows = roofline.layer_table(mobilenet_v3_small(), (1, 3, 96, 96), m)
    ax = roofline.plot_roofline(m, rows)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "depthwise" in labels and any("ridge" in s for s in labels)
    matplotlib.pyplot.close(ax.figure)


def test_measure_machine_small_run_is_plausible():
    """Tiny sizes so it is quick; checks structure and positivity, not speed."""
    m = roofline.measure_machine("cpu", gemm_size=128, stream_bytes=1 << 20, repeats=2)
    assert m.peak_macs_per_s > 0 and m.bandwidth_bytes_per_s > 0
    assert m.bandwidth_bytes_per_s == max(m.details["copy_bytes_per_s"], m.details["triad_bytes_per_s"])
    assert m.details["env"]["threads"] == torch.get_num_threads()
    with pytest.raises(ValueError, match="dtype"):
        roofline.measure_machine("cpu", dtype="float16", gemm_size=64, stream_bytes=1 << 16)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_measure_machine_cuda_absent_is_a_clear_error():
    with pytest.raises(ValueError, match="cuda"):
        roofline.measure_machine("cuda")


def test_report_table_is_layer_table_of_a_report_and_operator_rows_read_every_operand():
    m = Machine("toy", 50e9, 10e9)
    model = mobilenet_v3_small()
    report = cost.count(model, (1, 3, 96, 96))
    assert roofline.report_table(report, m, macs_only=False) == \
        roofline.layer_table(model, (1, 3, 96, 96), m, macs_only=False)

    class Concat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1, bias=False), nn.Conv2d(3, 6, 1, bias=False)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], 1)
    x = torch.zeros(2, 3, 5, 7)
    rows = roofline.layer_table(Concat(), tuple(x.shape), m, macs_only=False)
    cat = rows[-1]
    assert cat.kind == "copy" and cat.macs == 0 and cat.bound == "memory"
    assert cat.bytes == 4 * 2 * (4 + 6) * 5 * 7 * 2   # read both pieces, write the whole


def test_measure_machine_times_with_the_clock_it_is_given():
    """The roof must be timed on the layers' clock: a fake clock that ticks 1 s per read makes every
    sample last a known time, so the peak is n^3 MACs over a time we chose, not the wall clock's."""
    ticks = iter(range(10 ** 9))
    m = roofline.measure_machine("cpu", gemm_size=32, stream_bytes=1 << 12, repeats=2,
                                 clock=lambda: float(next(ticks)))
    assert m.details["clock"] == "<lambda>"
    # each sample is one tick (1 s) for inner_loops calls: rate = 32^3 * inner_loops / 1 s, an integer
    # multiple of 32^3 and nowhere near a real 32x32 product's rate on the wall clock
    assert m.peak_macs_per_s % 32 ** 3 == 0 and m.peak_macs_per_s <= 32 ** 3 * timing.MAX_INNER_LOOPS


def _record(gemm, rates, bandwidth=1e10):
    """A minimal mnlib.measure record: layers of 1e9 MACs at the given rates (MAC/s)."""
    return {"machine": {"name": "toy", "peak_macs_per_s": gemm, "bandwidth_bytes_per_s": bandwidth,
                        "gemm_macs_per_s": {"float32": gemm}},
            "layers": [{"shape": f"l{i}", "op": "standard", "dtype": "float32", "macs": 10 ** 9,
                        "median_s": 10 ** 9 / r} for i, r in enumerate(rates)],
            "clock": "CPU time", "env": {"threads": 1}}


def test_a_layer_above_the_gemm_peak_is_flagged_and_lifts_the_roof():
    """Finding 1 of the 2026-12-06 reading: layers at 5.5x the 'peak'. The roof read from such a
    record is the fastest thing measured, and the record says the GEMM was not a roof."""
    rec = _record(20e9, [110e9, 40e9, 5e9])
    over = roofline.roof_violations(Machine("gemm", 20e9, 1e10), rec["layers"])
    assert [o["shape"] for o in over] == ["l0", "l1"]
    assert math.isclose(over[0]["over_peak"], 110e9 / 20e9)
    m = roofline.machine_from_record(rec)
    assert math.isclose(m.peak_macs_per_s, 110e9) and m.details["peak_from"] == "layer"
    assert m.details["layers_over_gemm"] == 2
    assert roofline.roof_violations(m, rec["layers"]) == []       # nothing beats the roof it returns
    assert math.isclose(m.balance, 11.0)


def test_a_valid_gemm_peak_stays_the_roof():
    rec = _record(200e9, [110e9, 40e9])
    m = roofline.machine_from_record(rec)
    assert m.peak_macs_per_s == 200e9 and m.details["peak_from"] == "gemm"
    assert m.details["layers_over_gemm"] == 0
    assert roofline.roof_violations(Machine("x", 100e9, 1e10), rec["layers"], tolerance=1.2) == []
