"""Affine quantization and the integer arithmetic of one quantized layer, written out in numpy.

Conventions (those of PyTorch's observers and of Jacob et al., 2018):
- a real value x is stored as an integer q = clamp(round(x / s) + z, q_min, q_max) and read back as
  s (q - z); ``round`` is round-half-to-even, as torch.quantize_per_tensor does;
- *symmetric* weights have z = 0 and s = max|w| / ((q_max - q_min) / 2), so int8's [-128, 127] gives
  s = max|w| / 127.5 (torch's MinMaxObserver and PerChannelMinMaxObserver do the same);
- *per-tensor*: one s for the whole weight; *per-channel*: one s per output channel (axis 0);
- a quantized layer accumulates (q_x - z_x) q_w in int32, adds an int32 bias with scale s_x s_w, and
  requantizes with M = s_x s_w / s_y, stored as an int32 fixed-point multiplier M0 in [2^30, 2^31)
  and a shift: M = M0 2^-(31 + shift) (Jacob et al., 2018, section 2.2).

The tests (tests/test_quant.py) compare every function with torch's own quantized operators.
"""
from __future__ import annotations

import numpy as np
import torch


def symmetric_scale(absmax, qmin: int = -128, qmax: int = 127):
    """Scale that spreads [-absmax, absmax] over the qmax - qmin steps (zero point 0)."""
    absmax = np.asarray(absmax, dtype=np.float64)
    return np.maximum(absmax, np.finfo(np.float32).tiny) / ((qmax - qmin) / 2)


def quantize(x, scale, zero_point=0, qmin: int = -128, qmax: int = 127, axis: int | None = None):
    """Integers q = clamp(round(x / s) + z, qmin, qmax); with ``axis``, s and z hold one value per
    slice along that axis (per-channel). Returns an int64 numpy array."""
    x = np.asarray(x, dtype=np.float64)
    scale, zero_point = np.asarray(scale, dtype=np.float64), np.asarray(zero_point, dtype=np.int64)
    if axis is not None:  # broadcast one scale per slice along ``axis``
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    return np.clip(np.rint(x / scale) + zero_point, qmin, qmax).astype(np.int64)


def dequantize(q, scale, zero_point=0, axis: int | None = None):
    """Real values s (q - z), float64."""
    q = np.asarray(q, dtype=np.int64)
    scale, zero_point = np.asarray(scale, dtype=np.float64), np.asarray(zero_point, dtype=np.int64)
    if axis is not None:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    return scale * (q - zero_point)


def quantize_weight(w, bits: int = 8, per_channel: bool = True):
    """Symmetric signed quantization of a weight (C_out, ...) to ``bits`` bits.

    Returns (q, scale): q int64 with w's shape, scale a float64 array of C_out values (per-channel)
    or of one value (per-tensor)."""
    w = np.asarray(w, dtype=np.float64)
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if per_channel:
        scale = symmetric_scale(np.abs(w.reshape(len(w), -1)).max(axis=1), qmin, qmax)
        return quantize(w, scale, 0, qmin, qmax, axis=0), scale
    scale = symmetric_scale(np.abs(w).max(), qmin, qmax).reshape(1)
    return quantize(w, scale, 0, qmin, qmax), scale


def sqnr_db(x, x_hat) -> float:
    """Signal-to-quantization-noise ratio 10 log10(sum x^2 / sum (x - x_hat)^2), in dB."""
    x, x_hat = np.asarray(x, dtype=np.float64), np.asarray(x_hat, dtype=np.float64)
    noise = np.sum((x - x_hat) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(x ** 2) / noise))


def fold_bn(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias of the convolution with the batch norm (eval mode) folded in:
    w' = w gamma / sqrt(var + eps), b' = (b - mean) gamma / sqrt(var + eps) + beta."""
    g = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(g)
    w = conv.weight.detach().double() * g.reshape(-1, 1, 1, 1)
    return w.numpy(), ((b - bn.running_mean.double()) * g + bn.bias.detach().double()).numpy()


def quantize_multiplier(m) -> tuple[np.ndarray, np.ndarray]:
    """M (> 0) as M0 2^-(31 + shift) with M0 an int32 in [2^30, 2^31): Jacob et al.'s fixed point.

    np.frexp gives M = f 2^e with f in [0.5, 1); M0 = round(f 2^31) and shift = -e."""
    f, e = np.frexp(np.asarray(m, dtype=np.float64))
    if np.any(f <= 0):
        raise ValueError("the multiplier M must be > 0")
    m0 = np.rint(f * 2.0 ** 31).astype(np.int64)
    carry = m0 == 2 ** 31  # f rounded up to 1.0: halve M0, one more power of two
    m0, e = np.where(carry, m0 // 2, m0), np.where(carry, e + 1, e)
    return m0, -e.astype(np.int64)


def requantize(acc, m0, shift, zero_point: int, qmin: int, qmax: int, axis: int = 1) -> np.ndarray:
    """Output integers z_y + round(acc M) computed as (acc M0 + 2^(n-1)) >> n with n = 31 + shift
    (round half up), then saturated to [qmin, qmax]. acc is int32 (held in int64); ``axis`` is the
    channel axis along which m0 and shift may vary."""
    acc = np.asarray(acc, dtype=np.int64)
    shape = [1] * acc.ndim
    shape[axis] = -1
    n = (31 + np.asarray(shift, dtype=np.int64)).reshape(shape)
    if np.any(n < 1) or np.any(n > 62):
        raise ValueError("the multiplier is outside the range this fixed point represents")
    prod = acc * np.asarray(m0, dtype=np.int64).reshape(shape)  # |acc| < 2^31, M0 < 2^31: fits in int64
    return np.clip(((prod + (np.int64(1) << (n - 1))) >> n) + zero_point, qmin, qmax)


def conv2d_int(qx, x_zero_point: int, qw, stride: int = 1, padding: int = 0, groups: int = 1) -> np.ndarray:
    """Integer convolution: acc = sum (q_x - z_x) q_w over (C_in / groups) x K x K, int64 throughout.

    qx (N, C_in, H, W), qw (C_out, C_in / groups, K, K); zero padding pads with z_x (the real 0)."""
    qx, qw = np.asarray(qx, dtype=np.int64) - x_zero_point, np.asarray(qw, dtype=np.int64)
    n, c_in, h, w = qx.shape
    c_out, cg, k, _ = qw.shape
    xp = np.pad(qx, ((0, 0), (0, 0), (padding, padding), (padding, padding)))  # pads (q - z) with 0
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    xg = xp.reshape(n, groups, cg, xp.shape[2], xp.shape[3])
    wg = qw.reshape(groups, c_out // groups, cg, k, k)
    acc = np.zeros((n, groups, c_out // groups, ho, wo), dtype=np.int64)
    for i in range(k):
        for j in range(k):
            patch = xg[:, :, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            acc += np.einsum("goc,ngchw->ngohw", wg[:, :, :, i, j], patch)
    return acc.reshape(n, c_out, ho, wo)
