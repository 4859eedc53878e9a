"""Layer operators: the integer ones compute exactly what the engine computes,
the float ones are the reference the quantized network is measured against.

Tensors are (C, H, W) for one image (the engine runs images one at a time).
Weights are (Cout, Cin, K, K). Padding is given per side as (top, bottom,
left, right).

The integer convolution runs as a float64 matrix product: every product and
every partial sum is an integer below 2**53 in magnitude (the compiler proves
the accumulator bound, and acc_bits <= 53), so float64 arithmetic is exact
whatever order BLAS adds in, and much faster than numpy's integer matmul.
"""
from __future__ import annotations

import numpy as np

from . import arith

#: Largest magnitude float64 holds exactly; the integer path checks against it.
EXACT_F64 = 1 << 53
#: Rows of output computed per matrix product, bounding im2col memory.
_CHUNK_ELEMS = 1 << 24


def _pad(x: np.ndarray, pads, value=0) -> np.ndarray:
    pt, pb, pl, pr = pads
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr)), constant_values=value)


def _windows(xp: np.ndarray, k: int, stride: int, oh: int, ow: int, r0: int, r1: int):
    """(r1-r0)*ow x (C*k*k) patch matrix for output rows r0..r1-1, columns in
    (c, ky, kx) order to match weights.reshape(Cout, -1)."""
    c = xp.shape[0]
    v = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))
    v = v[:, r0 * stride:(r1 - 1) * stride + 1:stride, 0:(ow - 1) * stride + 1:stride]
    # v: (C, rows, ow, k, k) -> (rows, ow, C, k, k)
    return v.transpose(1, 2, 0, 3, 4).reshape((r1 - r0) * ow, c * k * k)


def out_size(size: int, k: int, stride: int, pad_lo: int, pad_hi: int) -> int:
    return (size + pad_lo + pad_hi - k) // stride + 1


def _conv_matmul(x: np.ndarray, w2: np.ndarray, k: int, stride: int, pads) -> np.ndarray:
    """Convolution as chunked im2col @ W^T in float64. Returns (Cout, OH, OW)."""
    c, h, wd = x.shape
    pt, pb, pl, pr = pads
    oh, ow = out_size(h, k, stride, pt, pb), out_size(wd, k, stride, pl, pr)
    xp = _pad(x, pads)
    cout = w2.shape[0]
    out = np.empty((cout, oh, ow), dtype=np.float64)
    rows = max(1, _CHUNK_ELEMS // max(1, ow * c * k * k))
    wt = np.ascontiguousarray(w2.T)
    for r0 in range(0, oh, rows):
        r1 = min(oh, r0 + rows)
        patches = _windows(xp, k, stride, oh, ow, r0, r1)
        out[:, r0:r1, :] = (patches @ wt).T.reshape(cout, r1 - r0, ow)
    return out


# ------------------------------------------------------------------ integer

def conv_acc(x_q: np.ndarray, w_q: np.ndarray, stride: int, pads) -> np.ndarray:
    """Integer convolution: the accumulator values (Cout, OH, OW) as int64,
    without bias. Raises if any value could leave exact float64 range."""
    x_q = np.asarray(x_q, dtype=np.int64)
    w_q = np.asarray(w_q, dtype=np.int64)
    cout, cin, k, _ = w_q.shape
    if x_q.shape[0] != cin:
        raise ValueError(f"input has {x_q.shape[0]} channels, weights expect {cin}")
    bound = int(np.abs(w_q).reshape(cout, -1).sum(axis=1).max(initial=0)) * int(np.abs(x_q).max(initial=0))
    if bound >= EXACT_F64:
        raise ValueError("accumulation could exceed 2**53; the compiler must reject this layer")
    acc = _conv_matmul(x_q.astype(np.float64), w_q.reshape(cout, -1).astype(np.float64), k, stride, pads)
    return acc.astype(np.int64)


def maxpool_int(x: np.ndarray, k: int, s: int, pad: int) -> np.ndarray:
    """Max pool on integers. Padded cells never win (they act as -infinity)."""
    x = np.asarray(x, dtype=np.int64)
    c, h, w = x.shape
    oh, ow = out_size(h, k, s, pad, pad), out_size(w, k, s, pad, pad)
    lowest = np.iinfo(np.int64).min
    xp = _pad(x, (pad, pad, pad, pad), value=lowest)
    out = np.full((c, oh, ow), lowest, dtype=np.int64)
    for dy in range(k):
        for dx in range(k):
            out = np.maximum(out, xp[:, dy:dy + (oh - 1) * s + 1:s, dx:dx + (ow - 1) * s + 1:s])
    return out


def layer_int(x_q, w_q, b_q, *, stride=1, pads=(0, 0, 0, 0), bias_shift=0, data_shift=0,
              relu=False, pool=None, data_bits=16, acc_bits=48):
    """One CONV/FC layer exactly as the engine computes it:

    acc = sum(x * w) + shift_round_sat(bias, bias_shift, acc_bits)
    acc = relu(acc)                    (if enabled)
    y   = shift_round_sat(acc, data_shift, data_bits)
    y   = maxpool(y, *pool)            (if enabled; pool = (k, s, pad))

    ReLU and max pool commute with the monotone data shift, so this order is
    the one the hardware uses (pooling on narrow values) without changing the
    result against conv -> ReLU -> pool -> shift.
    """
    acc = conv_acc(x_q, w_q, stride, pads)
    if b_q is not None:
        acc = acc + np.asarray(arith.shift_round_sat(np.asarray(b_q, dtype=np.int64), bias_shift, acc_bits))[:, None, None]
    if relu:
        acc = arith.relu(acc)
    y = arith.shift_round_sat(acc, data_shift, data_bits)
    if pool is not None:
        y = maxpool_int(y, *pool)
    return y


# -------------------------------------------------------------------- float

def conv_float(x, w, b=None, stride=1, pads=(0, 0, 0, 0)) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    cout, _, k, _ = w.shape
    y = _conv_matmul(np.asarray(x, dtype=np.float64), w.reshape(cout, -1), k, stride, pads)
    if b is not None:
        y += np.asarray(b, dtype=np.float64)[:, None, None]
    return y


def fc_float(x, w, b=None) -> np.ndarray:
    y = np.asarray(w, dtype=np.float64) @ np.asarray(x, dtype=np.float64).reshape(-1)
    if b is not None:
        y = y + np.asarray(b, dtype=np.float64)
    return y


def maxpool_float(x, k, s, pad) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    c, h, w = x.shape
    oh, ow = out_size(h, k, s, pad, pad), out_size(w, k, s, pad, pad)
    xp = _pad(x, (pad, pad, pad, pad), value=-np.inf)
    out = np.full((c, oh, ow), -np.inf)
    for dy in range(k):
        for dx in range(k):
            out = np.maximum(out, xp[:, dy:dy + (oh - 1) * s + 1:s, dx:dx + (ow - 1) * s + 1:s])
    return out


def relu_float(x) -> np.ndarray:
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


# ------------------------------------------------------------------ checks

def compare(expected, actual, max_report: int = 5):
    """Bit-exact comparison. Returns a list of (index tuple, expected, actual)
    for the first ``max_report`` mismatches and the total count, or ([], 0)."""
    e = np.asarray(expected)
    a = np.asarray(actual)
    if e.shape != a.shape:
        raise ValueError(f"shape mismatch: expected {e.shape}, got {a.shape}")
    bad = np.argwhere(e != a)
    first = [(tuple(int(i) for i in idx), int(e[tuple(idx)]), int(a[tuple(idx)])) for idx in bad[:max_report]]
    return first, len(bad)
