"""mnlib.training: the digits split, the tiny network and the recipe the chapters 12-15 share."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from mnlib import cost, training


def test_digits_are_sklearns_scaled_to_unit_range():
    X, y = training.digits()
    d = load_digits()
    assert X.shape == (len(d.images), 1, 8, 8) and X.dtype == torch.float32
    assert np.array_equal(X[:, 0].numpy() * 16, d.images) and np.array_equal(y.numpy(), d.target)
    assert 0 <= X.min() and X.max() <= 1


def test_split_is_a_partition_of_one_seeded_permutation():
    parts = training.split(1797, (0.6, 0.2), seed=0)
    assert [len(p) for p in parts] == [int(0.6 * 1797), int(0.2 * 1797), 1797 - int(0.6 * 1797) - int(0.2 * 1797)]
    allidx = torch.cat(parts)
    assert sorted(allidx.tolist()) == list(range(1797))
    # the same permutation the chapters drew by hand before: torch.randperm with a seeded Generator
    assert torch.equal(allidx, torch.randperm(1797, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(training.split(100, (0.5,), seed=1)[0], training.split(100, (0.5,), seed=0)[0])
    for bad in ((), (0.5, 0.6), (1.0,), (0.0,)):
        with pytest.raises(ValueError):
            training.split(10, bad)


def test_tiny_mobilenet_shapes_and_parameters_against_sum_of_numel():
    m = training.tiny_mobilenet(last=256).eval()
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert cost.count(m, (1, 1, 8, 8)).params == sum(p.numel() for p in m.parameters())
    assert any(isinstance(mod, nn.ReLU) for mod in training.tiny_mobilenet(act=nn.ReLU).modules())


def test_fit_learns_a_separable_task_and_is_reproducible():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 1, 8, 8, generator=g)
    t = (x.mean(dim=(1, 2, 3)) > 0).long()                     # a label the network can read off
    # The model's initial weights come from torch's global generator, seeded here: unseeded, the test depended on
    # what ran before it (it failed 2 runs in 3 alone). 16 epochs: every one of 16 initial seeds reaches 1.0
    # (8 epochs left 6 of them at 0.73-0.90), so the bound does not hang on a lucky seed.
    torch.manual_seed(0)
    a = training.fit(training.tiny_mobilenet(width=(8, 8, 8), last=16, num_classes=2), x, t, epochs=16, seed=3)
    assert not a.training
    assert training.accuracy(a, x, t) > 0.9
    torch.manual_seed(0)
    m1 = training.tiny_mobilenet(width=(8, 8, 8), last=16, num_classes=2)
    torch.manual_seed(0)
    m2 = training.tiny_mobilenet(width=(8, 8, 8), last=16, num_classes=2)
    b1 = training.fit(m1, x, t, epochs=1, seed=5)
    b2 = training.fit(m2, x, t, epochs=1, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(b1.parameters(), b2.parameters()))


def test_correct_is_per_item_and_accuracy_its_mean():
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    x, t = torch.randn(10, 1, 8, 8), torch.randint(0, 3, (10,))
    c = training.correct(m, x, t)
    assert c.dtype == bool and c.shape == (10,)
    with torch.no_grad():
        assert np.array_equal(c, (m(x).argmax(1) == t).numpy())
    assert training.accuracy(m, x, t) == c.mean()
