"""mnlib.receptive_field: the recurrence against gradients of real networks."""
import doctest

import pytest
from hypothesis import given, settings, strategies as st

import mnlib.receptive_field as rf
from mnlib.models import mobilenet_v1, mobilenet_v2


def test_doctests():
    assert doctest.testmod(rf).failed == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 3, 5]), st.integers(1, 2), st.integers(1, 2)),
                min_size=1, max_size=5))
def test_recurrence_equals_gradient_support_on_random_stacks(layers):
    """For random conv stacks, the recurrence equals the extent of d y_centre / d x."""
    theory = rf.receptive_field(layers)
    net = rf.stack_from_layers(layers)
    size = 4 * theory + 16
    assert rf.empirical_receptive_field(net, size, in_channels=2) == (theory, theory)


def test_dsc_grows_like_standard_conv():
    """A DW KxK + PW 1x1 stack has the receptive field of the KxK stack."""
    std = [(3, 2), (3, 1), (3, 2)]
    dsc = [(3, 2), (1, 1), (3, 1), (1, 1), (3, 2), (1, 1)]
    assert rf.receptive_field(std) == rf.receptive_field(dsc)


@pytest.mark.parametrize("builder", [mobilenet_v1, mobilenet_v2])
def test_model_receptive_field_matches_gradients(builder):
    """The model's recurrence value equals the empirical one on the real features (width 0.25 for speed)."""
    model = builder(0.25)
    theory = rf.model_receptive_field(model)
    assert theory == rf.model_receptive_field(builder(1.0))   # independent of the width
    size = (theory + 200) // 32 * 32
    assert rf.empirical_receptive_field(model.features, size) == (theory, theory)


def test_growth_is_monotone_and_ends_at_total():
    layers = rf.model_layers(mobilenet_v2(0.5))
    growth = rf.receptive_field_growth(layers)
    assert growth == sorted(growth) and growth[-1] == rf.receptive_field(layers)


def test_bad_layers():
    with pytest.raises(ValueError, match="stride"):
        rf.receptive_field([(3, 0)])
    with pytest.raises(ValueError, match="layer"):
        rf.receptive_field(["3x3"])
    with pytest.raises(ValueError, match="input_size"):
        rf.empirical_receptive_field(rf.stack_from_layers([(3, 1)]), 0)


def test_squeeze_excitation_makes_the_field_global():
    """After an SE block (global pooling) the centre output depends on every input pixel."""
    from mnlib.models import mobilenet_v3_small
    model = mobilenet_v3_small(0.35)
    assert rf.empirical_receptive_field(model.features, 96) == (96, 96)
    assert rf.model_receptive_field(model) < 1000   # the conv path alone is finite
