"""mnlib.models: parameter counts against published data and sum(p.numel()); shapes; bad input."""
import doctest

import pytest
import torch

import mnlib.configs
from mnlib import cost
from mnlib.configs import make_divisible
from mnlib.models import MODELS, mobilenet_v1, mobilenet_v2

WIDTHS = (0.25, 0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def test_make_divisible_doctests():
    """The doctests in mnlib.configs pass."""
    assert doctest.testmod(mnlib.configs).failed == 0


def test_make_divisible_properties():
    """Always a multiple of the divisor, never more than 10% below the value."""
    for v in torch.linspace(0.5, 3000, 2001).tolist():
        d = make_divisible(v)
        assert d % 8 == 0 and d >= 8 and d >= 0.9 * v


@pytest.mark.parametrize("name", sorted(MODELS))
def test_params_equal_published(name, published):
    """Width 1.0 parameter counts equal the published numbers (torchvision's meta, V1 paper table)."""
    model = MODELS[name]()
    assert sum(p.numel() for p in model.parameters()) == published["params"][name]["value"]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("width", WIDTHS)
def test_count_params_equal_numel(name, width):
    """count().params is sum(p.numel()) at every width; params_without_bn drops exactly the BN affine."""
    model = MODELS[name](width)
    report = cost.count(model, (1, 3, 64, 64))
    assert report.params == sum(p.numel() for p in model.parameters())
    bn = sum(m.weight.numel() + m.bias.numel() for m in model.modules()
             if isinstance(m, torch.nn.BatchNorm2d))
    assert report.params_without_bn == report.params - bn
    # the per-layer rows hold every parameter exactly once
    assert sum(row.params for row in report.layers) == report.params


def test_width_multiplier_channels():
    """alpha scales the channels through make_divisible; V2 keeps 1280 for alpha < 1 (paper, sec. 5.1)."""
    m = mobilenet_v2(0.5)
    assert m.features[0][0].out_channels == 16 and m.classifier[-1].in_features == 1280
    assert mobilenet_v2(1.4).classifier[-1].in_features == 1792
    assert mobilenet_v1(0.5).classifier[-1].in_features == 512


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("size", [224, 192, 160, 128, 96])
def test_output_shapes(name, size):
    """Every model maps (2, 3, S, S) to (2, num_classes) at the paper's input sizes."""
    model = MODELS[name](0.5, num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, size, size)).shape == (2, 10)


def test_v1_last_but_one_depthwise_is_stride_1():
    """Table 1's misprinted 's2' on the 7x7 depthwise layer is stride 1 here."""
    m = mobilenet_v1()
    assert m.features[-1].depthwise[0].stride == (1, 1)
    assert m.features[-2].depthwise[0].stride == (2, 2)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_width(name):
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="width_mult"):
            MODELS[name](bad)


def test_bad_inputs():
    """Non-4-D input, wrong channel count and inputs too small for the strides raise ValueError."""
    m = mobilenet_v2(0.35).eval()
    with pytest.raises(ValueError, match="4-D"):
        m(torch.randn(3, 224, 224))
    with pytest.raises(ValueError, match="3 channels"):
        m(torch.randn(1, 1, 224, 224))
    with pytest.raises(ValueError, match="too small"):
        m(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="num_classes"):
        mobilenet_v1(num_classes=0)
