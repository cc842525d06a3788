"""mnlib.search: a shrunk network computes what the original computes with the removed channels
silenced, its parameter and MAC counts are those of the same architecture built narrower, residual
groups shrink together, and the NetAdapt loop makes the choice its rule says.

No test asserts a time: latency.calibrate_on runs on three tiny networks only to check its structure.
"""
import numpy as np
import pytest
import torch
from torch import nn

from mnlib import cost, latency, search
from mnlib.layers import ConvBNAct, InvertedResidual, SqueezeExcitation
from mnlib.models import mobilenet_v1, mobilenet_v2, mobilenet_v3_small
from mnlib.roofline import Machine

MACHINE = Machine("toy", peak_macs_per_s=50e9, bandwidth_bytes_per_s=10e9)
X = (4, 1, 8, 8)


def tiny(c0=16, h1=64, c1=32, h2=128, h3=128, c2=48, last=128):
    """The chapter's digits network with every width explicit (t = 4 at the default widths)."""
    torch.manual_seed(0)
    return nn.Sequential(
        ConvBNAct(1, c0, 3, activation=nn.ReLU6),
        InvertedResidual(c0, c1, 2, expanded_channels=h1),
        InvertedResidual(c1, c1, 1, expanded_channels=h2),     # residual add: c1 on both sides
        InvertedResidual(c1, c2, 2, expanded_channels=h3),
        ConvBNAct(c2, last, 1, activation=nn.ReLU6),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, 10))


def randomise_bn(model, seed=0):
    """Non-trivial batch-norm statistics and affine parameters, so that slicing them wrongly shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.3)
    return model.eval()


# The tiny network's groups written out by hand (independent of channel_groups): the width argument
# of tiny() each group is, and the batch norms that produce it (and pass it through, for depthwise).
HAND_GROUPS = {
    "0": ("c0", lambda m: [m[0][1]]),
    "1.expand": ("h1", lambda m: [m[1].block[0][1], m[1].block[1][1]]),
    "1.project + 2.project": ("c1", lambda m: [m[1].block[2][1], m[2].block[2][1]]),
    "2.expand": ("h2", lambda m: [m[2].block[0][1], m[2].block[1][1]]),
    "3.expand": ("h3", lambda m: [m[3].block[0][1], m[3].block[1][1]]),
    "3.project": ("c2", lambda m: [m[3].block[2][1]]),
    "4": ("last", lambda m: [m[4][1]]),
}


def test_the_groups_of_the_digits_network_are_the_hand_written_ones():
    groups = search.channel_groups(tiny())
    assert [g.name for g in groups] == list(HAND_GROUPS)
    widths = dict(c0=16, h1=64, c1=32, h2=128, h3=128, c2=48, last=128)
    assert [g.width for g in groups] == [widths[a] for a, _ in HAND_GROUPS.values()]
    res = {g.name: g for g in groups}["1.project + 2.project"]
    assert res.consumers == ("2.block.0.0", "3.block.0.0")   # read by block 2's expand and block 3's


@pytest.mark.parametrize("name", list(HAND_GROUPS))
def test_shrunk_network_equals_the_original_with_the_removed_channels_silenced(name):
    """Oracle: the original network with the dropped channels' BN scale and shift set to 0 by hand
    (so they output exactly 0 after ReLU6, a depthwise layer and a residual add alike)."""
    model = randomise_bn(tiny())
    group = search.group_by_name(model, name)
    rng = np.random.default_rng(1)
    drop = sorted(rng.choice(group.width, size=group.width // 4, replace=False).tolist())
    keep = [i for i in range(group.width) if i not in drop]
    silenced = randomise_bn(tiny())
    with torch.no_grad():
        for bn in HAND_GROUPS[name][1](silenced):
            bn.weight[drop] = 0
            bn.bias[drop] = 0
    shrunk = search.keep_channels(model, group, keep)
    x = torch.randn(*X)
    with torch.no_grad():
        expected, got = silenced(x), shrunk(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # the silencing matters: the unsilenced original differs (else the test could not fail)
    with torch.no_grad():
        assert not torch.allclose(model(x), expected, atol=1e-4)


@pytest.mark.parametrize("name", list(HAND_GROUPS))
def test_shrunk_counts_equal_the_same_architecture_built_narrower(name):
    """Parameters (sum of p.numel(), and cost.count) and MACs equal those of tiny() with the smaller width."""
    model = tiny()
    arg, _ = HAND_GROUPS[name]
    width = search.group_by_name(model, name).width
    shrunk = search.shrink_layer(model, name, 8)
    fresh = tiny(**{arg: width - 8})
    assert sum(p.numel() for p in shrunk.parameters()) == sum(p.numel() for p in fresh.parameters())
    a, b = cost.count(shrunk, X), cost.count(fresh, X)
    assert (a.params, a.macs, a.bn_ops, a.activation_ops, a.add_ops) == \
        (b.params, b.macs, b.bn_ops, b.activation_ops, b.add_ops)
    assert a.params == sum(p.numel() for p in shrunk.parameters())
    assert {k: v.shape for k, v in shrunk.state_dict().items()} == \
        {k: v.shape for k, v in fresh.state_dict().items()}


def test_a_residual_group_shrinks_on_both_sides_and_keeps_its_add():
    shrunk = search.shrink_layer(tiny(), "1.project + 2.project", 12)
    block = shrunk[2]
    assert block.use_res_connect and block.in_channels == block.out_channels == 20
    assert shrunk[1].out_channels == 20 and shrunk[3].in_channels == 20
    assert cost.count(shrunk, X).add_ops == 4 * 20 * 4 * 4   # the add still runs, on 20 channels


@pytest.mark.parametrize("builder", [lambda: mobilenet_v2(0.35, num_classes=10),
                                     lambda: mobilenet_v1(0.25, num_classes=10)])
def test_every_group_of_published_networks_shrinks_exactly(builder):
    """On V2 (residual chains of up to four blocks, t = 1 blocks without expand) and V1: each group
    shrunk equals the original with the same channels silenced (zero_channels), counts agree."""
    model = randomise_bn(builder())
    x = torch.randn(1, 3, 32, 32)
    for group in search.channel_groups(model):
        drop = list(range(1, group.width, 3))
        keep = [i for i in range(group.width) if i not in drop]
        shrunk = search.keep_channels(model, group, keep)
        with torch.no_grad():
            torch.testing.assert_close(shrunk(x), search.zero_channels(model, group, drop)(x),
                                       rtol=1e-4, atol=1e-5)
        assert cost.count(shrunk, (1, 3, 32, 32)).params == sum(p.numel() for p in shrunk.parameters())


def test_shrink_layer_removes_the_filters_of_smallest_norm():
    model = tiny()
    group = search.group_by_name(model, "1.project + 2.project")
    w1, w2 = model[1].block[2][0].weight.detach(), model[2].block[2][0].weight.detach()
    for p in (1, 2):  # oracle: the norms summed over both producers, ranked with numpy
        norms = (w1.reshape(32, -1).norm(p=p, dim=1) + w2.reshape(32, -1).norm(p=p, dim=1)).numpy()
        kept = sorted(np.argsort(-norms, kind="stable")[:22].tolist())
        shrunk = search.shrink_layer(model, group, 10, p=p)
        torch.testing.assert_close(shrunk[1].block[2][0].weight, w1[kept])
        torch.testing.assert_close(shrunk[2].block[0][0].weight, model[2].block[0][0].weight[:, kept])


def test_recompute_bn_gives_the_exact_statistics_of_the_data():
    """Oracle: the first BN's input is the stem conv's output; its mean and (unbiased) variance."""
    model = randomise_bn(tiny())
    x = torch.randn(50, 1, 8, 8)
    search.recompute_bn(model, x, batch=50)
    with torch.no_grad():
        h = model[0][0](x)
    torch.testing.assert_close(model[0][1].running_mean, h.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model[0][1].running_var, h.var((0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-5)
    assert not model.training and model[0][1].momentum == 0.1


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="squeeze-and-excitation"):
        search.channel_groups(mobilenet_v3_small(0.5))
    with pytest.raises(ValueError, match="cannot remove 16 of the 16"):
        search.shrink_layer(tiny(), "0", 16)
    with pytest.raises(ValueError, match="no channel group"):
        search.shrink_layer(tiny(), "9.expand", 1)
    with pytest.raises(ValueError, match="distinct channel indices"):
        search.keep_channels(tiny(), "0", [0, 0, 1])
    with pytest.raises(ValueError, match="no channel rule for SqueezeExcitation"):
        search.channel_groups(nn.Sequential(ConvBNAct(3, 8), SqueezeExcitation(8, 4)))


def macs(model):
    return cost.count(model, X).macs


def test_smallest_cut_is_the_fewest_channels_that_meet_the_target():
    """Oracle: trying every allowed n in turn."""
    model = tiny()
    start = macs(model)
    for group in search.channel_groups(model):
        target = start * 0.95
        allowed = range(4, group.width - 4 + 1, 4)
        brute = next((n for n in allowed if macs(search.shrink_layer(model, group, n)) <= target), None)
        cut = search.smallest_cut(model, group, macs, target, granularity=4, min_width=4)
        assert (cut[0] if cut else None) == brute


def test_netadapt_chooses_the_least_accuracy_lost_per_unit_saved():
    """A made-up accuracy: each channel removed from the stem costs 0.01, from anywhere else 0.001
    per 1000 MACs saved... the loop must never cut the stem, stop when done, and lower MACs by >= step."""
    model = tiny()
    start = macs(model)

    def evaluate(m):
        stem = 16 - m[0].out_channels
        return 1.0 - 0.05 * stem - 1e-9 * (start - macs(m))

    path = search.netadapt(model, resource=macs, step=0.1 * start, done=lambda m: macs(m) <= 0.6 * start,
                           evaluate=evaluate, short_tune=lambda m: m, tune=lambda m: m)
    assert path[0].group is None and path[0].resource == start
    assert all(s.group != "0" for s in path[1:])
    assert all(b.resource <= a.resource - 0.1 * start for a, b in zip(path, path[1:]))
    assert path[-1].resource <= 0.6 * start < path[-2].resource
    for s in path[1:]:   # the chosen proposal has the smallest score among those weighed
        assert min(q["score"] for q in s.proposals) == pytest.approx(
            next(q["score"] for q in s.proposals if q["group"] == s.group))
        assert any(q["group"] == "0" for q in s.proposals)


def test_calibrate_on_fits_a_model_that_covers_the_network():
    rng = np.random.default_rng(0)
    nets = [search.random_widths(tiny(), rng) for _ in range(3)]
    assert len({tuple(g.width for g in search.channel_groups(n)) for n in nets}) == 3
    cal = latency.calibrate_on([(n, X) for n in nets], MACHINE, repeats=2, min_sample_s=0.001)
    assert isinstance(cal, latency.Calibration) and len(cal.points) == 3
    assert latency.predict_latency(tiny(), X, MACHINE, cal) > 0
    assert {k for _, k, _ in latency.layer_latencies(tiny(), X, MACHINE, cal)} <= cal.keys
    # with a reference of one's choice: the first network timed against itself has ratio ~1
    ref = (nets[0].eval(), torch.randn(*X))
    cal2 = latency.calibrate_on([(n, X) for n in nets], MACHINE, reference=ref, repeats=2, min_sample_s=0.001)
    assert len(cal2.points) == 3 and cal2.reference_s > 0
    c = latency.time_against(nets[1], X, ref, repeats=2, min_sample_s=0.001)
    assert c.b.repeats == 2 and c.ratio > 0
    normalised, raw = latency.measure_normalised(nets[1], X, cal2.reference_s, reference=ref, repeats=2,
                                                 min_sample_s=0.001)
    assert normalised > 0 and raw > 0
    with pytest.raises(ValueError, match="at least 2"):
        latency.calibrate_on([(nets[0], X)], MACHINE, repeats=1, min_sample_s=0.0)
