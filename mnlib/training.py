"""The small training set-up that chapters 12 to 15 share: scikit-learn's digits, a split, a tiny
MobileNetV2, one training recipe and the accuracy (one copy, so the pages cannot drift apart).

- ``digits()``: the 1,797 8x8 digits shipped inside scikit-learn (nothing is downloaded), as a
  float tensor (N, 1, 8, 8) in [0, 1] and integer labels.
- ``split(n, fractions, seed)``: one seeded permutation cut into consecutive parts, the last part
  taking the rest (80/20: ``(0.8,)``; 60/20/20: ``(0.6, 0.2)``).
- ``tiny_mobilenet``: stem 3x3 -> three inverted residuals (t = 4; 8x8 -> 4x4 -> 2x2) -> 1x1 ->
  pool -> linear, built from mnlib's blocks.
- ``fit``: Adam with a one-cycle learning-rate schedule on minibatches (chapter 12's recipe).
- ``accuracy`` / ``correct``: the share right, and per item whether it is right (the paired tests
  of ``mnlib.stats`` need the items).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_int
from .layers import ConvBNAct, InvertedResidual


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as (X, y): X (N, 1, 8, 8) float32 in [0, 1] (pixel values / 16), y int64."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0, torch.tensor(d.target)


def split(n: int, fractions=(0.8,), seed: int = 0) -> list[torch.Tensor]:
    """Indices of ``len(fractions) + 1`` disjoint parts of one seeded permutation of range(n).

    Part i has int(fractions[i] * n) items; the last part has the rest.
    """
    check_int("n", n, 1)
    if not fractions or any(not 0 < f < 1 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(f"fractions must be in (0, 1) with a sum below 1, got {fractions!r}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts, start = [], 0
    for f in fractions:
        parts.append(perm[start:start + int(f * n)])
        start += int(f * n)
    return parts + [perm[start:]]


def tiny_mobilenet(act=nn.ReLU6, width=(32, 64, 96), last: int = 512, in_channels: int = 1,
                   num_classes: int = 10) -> nn.Sequential:
    """stem 3x3 -> inverted residuals (t = 4) -> 1x1 to ``last`` -> pool -> linear."""
    c0, c1, c2 = width
    return nn.Sequential(
        ConvBNAct(in_channels, c0, 3, activation=act),
        InvertedResidual(c0, c1, stride=2, t=4, activation=act),            # 8x8 -> 4x4
        InvertedResidual(c1, c1, stride=1, t=4, activation=act),            # with the residual add
        InvertedResidual(c1, c2, stride=2, t=4, activation=act),            # 4x4 -> 2x2
        ConvBNAct(c2, last, 1, activation=act),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(last, num_classes))


def fit(model: nn.Module, x: torch.Tensor, t: torch.Tensor, epochs: int, lr: float = 1e-2,
        seed: int | None = 0, batch: int = 64, loss_fn=None) -> nn.Module:
    """Adam with a one-cycle schedule (peak ``lr``) for ``epochs`` passes over minibatches of ``batch``.

    ``seed``: torch's global seed for the minibatch order (None: leave it as the caller set it, e.g.
    before building the model). ``loss_fn(model, xb, tb)`` may replace the cross-entropy. Returns the
    model in eval mode.
    """
    check_int("epochs", epochs, 1)
    check_int("batch", batch, 1)
    if seed is not None:
        torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * ((len(x) + batch - 1) // batch))
    loss_fn = loss_fn or (lambda m, xb, tb: F.cross_entropy(m(xb), tb))
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(batch):
            opt.zero_grad()
            loss_fn(model, x[idx], t[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()


def correct(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> np.ndarray:
    """Per item: is the model's top class the label? (bool array)"""
    with torch.no_grad():
        return (model(x).argmax(1) == t).numpy()


def accuracy(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> float:
    """Share of items whose top class is the label."""
    return float(correct(model, x, t).mean())
