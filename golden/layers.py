"""Layer operators: the integer ones compute exactly what the engine computes,
the float ones are the reference the quantized network is measured against.

Tensors are (C, H, W) for one image (the engine runs images one at a time).
Weights are (Cout, Cin / groups, K, K). Padding is given per side as (top,
bottom, left, right).

The integer convolution runs as a float64 matrix product: every product and
every partial sum is an integer below 2**53 in magnitude (the compiler proves
the accumulator bound, and acc_bits <= 53), so float64 arithmetic is exact
whatever order BLAS adds in, and much faster than numpy's integer matmul.
Grouped convolutions run as one batched matrix product over the groups, with
the same property (each output is one group's dot product, still below 2**53).
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


def _check_groups(cin: int, cout: int, w_cin: int, groups: int) -> None:
    if int(groups) != groups or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups}")
    if cin % groups or cout % groups:
        raise ValueError(f"{cin} input and {cout} output channels do not split into {groups} groups")
    if cin // groups != w_cin:
        raise ValueError(f"input has {cin} channels, weights expect {w_cin * groups} "
                         f"({w_cin} per group x {groups} groups)")


def _conv_matmul(x: np.ndarray, w2: np.ndarray, k: int, stride: int, pads, groups: int = 1) -> np.ndarray:
    """Convolution as chunked im2col @ W^T in float64. Returns (Cout, OH, OW).

    With groups > 1 the patch matrix's columns split into ``groups`` runs of
    (Cin/groups)*k*k (channel-major order) and each group multiplies its own
    Cout/groups rows of weights: one batched matmul, no Python loop over groups.
    Depthwise layers (Cin/groups == 1) instead sum k*k shifted, weighted maps.
    Every path adds integer products whose partial sums stay below 2**53 (the
    caller's bound), so each is exact and all agree bit for bit.
    """
    c, h, wd = x.shape
    pt, pb, pl, pr = pads
    oh, ow = out_size(h, k, stride, pt, pb), out_size(wd, k, stride, pl, pr)
    xp = _pad(x, pads)
    cout = w2.shape[0]
    rows = max(1, _CHUNK_ELEMS // max(1, ow * c * k * k))
    if groups == 1:
        out = np.empty((cout, oh, ow), dtype=np.float64)
        wt = np.ascontiguousarray(w2.T)
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            patches = _windows(xp, k, stride, oh, ow, r0, r1)
            out[:, r0:r1, :] = (patches @ wt).T.reshape(cout, r1 - r0, ow)
        return out
    kk = w2.shape[1]  # (Cin / groups) * k * k
    cg = cout // groups
    if kk == k * k:
        # Depthwise (one input channel per group): k*k multiply-adds of whole
        # shifted maps beat im2col, which would copy the input k*k times.
        wk = w2.reshape(c, cg, k, k)
        acc = np.zeros((c, cg, oh, ow), dtype=np.float64)
        for dy in range(k):
            for dx in range(k):
                v = xp[:, dy:dy + (oh - 1) * stride + 1:stride, dx:dx + (ow - 1) * stride + 1:stride]
                acc += wk[:, :, dy, dx][:, :, None, None] * v[:, None]
        return acc.reshape(cout, oh, ow)
    out = np.empty((cout, oh, ow), dtype=np.float64)
    wt = np.ascontiguousarray(w2.reshape(groups, cg, kk).transpose(0, 2, 1))  # (G, kk, Cout/G)
    for r0 in range(0, oh, rows):
        r1 = min(oh, r0 + rows)
        patches = _windows(xp, k, stride, oh, ow, r0, r1)  # (P, C*k*k)
        pg = patches.reshape(-1, groups, kk).transpose(1, 0, 2)  # (G, P, kk)
        res = np.matmul(pg, wt)  # (G, P, Cout/G)
        out[:, r0:r1, :] = res.transpose(0, 2, 1).reshape(cout, r1 - r0, ow)
    return out


def _pair(v, what: str) -> tuple[int, int]:
    """An int or an (h, w) pair -> (h, w)."""
    if np.ndim(v) == 0:
        return int(v), int(v)
    if len(v) != 2:
        raise ValueError(f"{what} must be an int or an (h, w) pair, got {v!r}")
    return int(v[0]), int(v[1])


def _pads4(pad, pads) -> tuple[int, int, int, int]:
    """The pooling padding: ``pads`` (top, bottom, left, right) if given, else
    ``pad``, an int for all four sides or itself a 4-tuple."""
    p = pad if pads is None else pads
    if np.ndim(p) == 0:
        return (int(p),) * 4
    if len(p) != 4:
        raise ValueError(f"pads must be (top, bottom, left, right), got {p!r}")
    return tuple(int(v) for v in p)


def _pool_views(xp: np.ndarray, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int):
    """The kh*kw strided views of a padded (C, H, W) input, one per window offset."""
    for dy in range(kh):
        for dx in range(kw):
            yield xp[:, dy:dy + (oh - 1) * sh + 1:sh, dx:dx + (ow - 1) * sw + 1:sw]


# ------------------------------------------------------------------ integer

def conv_acc(x_q: np.ndarray, w_q: np.ndarray, stride: int, pads, groups: int = 1) -> np.ndarray:
    """Integer convolution: the accumulator values (Cout, OH, OW) as int64,
    without bias. Raises if any value could leave exact float64 range.

    ``groups`` splits the channels as ONNX Conv's ``group``: weights are
    (Cout, Cin/groups, K, K) and output channel o sees input channels
    [g*Cin/groups, (g+1)*Cin/groups) with g = o // (Cout/groups). Depthwise is
    groups == Cin (Cout = multiplier * Cin)."""
    x_q = np.asarray(x_q, dtype=np.int64)
    w_q = np.asarray(w_q, dtype=np.int64)
    cout, w_cin, k, _ = w_q.shape
    if groups == 1:
        if x_q.shape[0] != w_cin:
            raise ValueError(f"input has {x_q.shape[0]} channels, weights expect {w_cin}")
    else:
        _check_groups(x_q.shape[0], cout, w_cin, groups)
    # Each output is one group's dot product, so the per-output-channel bound
    # is the same whatever the grouping.
    bound = int(np.abs(w_q).reshape(cout, -1).sum(axis=1).max(initial=0)) * int(np.abs(x_q).max(initial=0))
    if bound >= EXACT_F64:
        raise ValueError("accumulation could exceed 2**53; the compiler must reject this layer")
    acc = _conv_matmul(x_q.astype(np.float64), w_q.reshape(cout, -1).astype(np.float64), k, stride, pads,
                       groups)
    return acc.astype(np.int64)


def maxpool_int(x: np.ndarray, k, s, pad=0, *, pads=None) -> np.ndarray:
    """Max pool on integers. Padded cells never win (they act as -infinity).

    ``k`` and ``s`` are ints or (h, w) pairs. Padding is ``pad`` on every side,
    or per side with ``pads=(top, bottom, left, right)`` (``pad`` may also be
    that 4-tuple, so a fused ``pool=(k, s, pads)`` works)."""
    x = np.asarray(x, dtype=np.int64)
    c, h, w = x.shape
    kh, kw = _pair(k, "kernel")
    sh, sw = _pair(s, "stride")
    pt, pb, pl, pr = _pads4(pad, pads)
    oh, ow = out_size(h, kh, sh, pt, pb), out_size(w, kw, sw, pl, pr)
    lowest = np.iinfo(np.int64).min
    xp = _pad(x, (pt, pb, pl, pr), value=lowest)
    out = np.full((c, oh, ow), lowest, dtype=np.int64)
    for v in _pool_views(xp, kh, kw, sh, sw, oh, ow):
        out = np.maximum(out, v)
    return out


def _avg_geometry(shape, k, s, pads, count_include_pad):
    """Shared by the integer and float average pools: normalised kernel,
    stride and pads, output size and the divisor n per output position."""
    _, h, w = shape
    kh, kw = _pair(k, "kernel")
    sh, sw = _pair(s, "stride")
    pt, pb, pl, pr = _pads4(pads, None)
    if count_include_pad not in (0, 1, False, True):
        raise ValueError(f"count_include_pad must be 0 or 1, got {count_include_pad!r}")
    if min(pt, pb, pl, pr) < 0 or max(pt, pb) >= kh or max(pl, pr) >= kw:
        # onnxruntime's rule too: a pad as wide as the window could leave a
        # window with no real cell, and nothing to divide by.
        raise ValueError(f"average pool pads {(pt, pb, pl, pr)} must be in [0, kernel) for kernel {(kh, kw)}")
    oh, ow = out_size(h, kh, sh, pt, pb), out_size(w, kw, sw, pl, pr)
    if oh < 1 or ow < 1:
        raise ValueError(f"average pool window {(kh, kw)} larger than the padded input")
    if count_include_pad:
        n = np.full((oh, ow), kh * kw, dtype=np.int64)
    else:
        # Real (unpadded) rows and columns under each window.
        y0 = np.arange(oh) * sh - pt
        x0 = np.arange(ow) * sw - pl
        rows = np.minimum(y0 + kh, h) - np.maximum(y0, 0)
        cols = np.minimum(x0 + kw, w) - np.maximum(x0, 0)
        n = rows[:, None].astype(np.int64) * cols[None, :]
    return (kh, kw), (sh, sw), (pt, pb, pl, pr), (oh, ow), n


def _window_sums_int(x: np.ndarray, kh, kw, sh, sw, pads, oh, ow) -> np.ndarray:
    """Exact int64 window sums (padded cells are 0) through an integral image:
    four lookups per output whatever the window size."""
    xp = _pad(x, pads)
    c, hp, wp = xp.shape
    ii = np.zeros((c, hp + 1, wp + 1), dtype=np.int64)
    np.cumsum(np.cumsum(xp, axis=1), axis=2, out=ii[:, 1:, 1:])
    y0 = np.arange(oh) * sh
    x0 = np.arange(ow) * sw
    y1, x1 = y0 + kh, x0 + kw
    return (ii[:, y1[:, None], x1[None, :]] - ii[:, y0[:, None], x1[None, :]]
            - ii[:, y1[:, None], x0[None, :]] + ii[:, y0[:, None], x0[None, :]])


def avgpool_int(x: np.ndarray, k, s, pads=(0, 0, 0, 0), count_include_pad=0, *,
                data_bits: int = 16) -> np.ndarray:
    """Average pool on integers, as the engine computes it.

    S = the exact window sum (padded cells count as 0); n = the number of real
    cells under the window (count_include_pad 0: it shrinks at the borders) or
    kh*kw (count_include_pad 1); y = arith.avg_divide(S, n) = round-half-up of
    S / n, exactly, floor((2S + n) / (2n)) (the hardware's long division). The
    output keeps the input's fl. ``k``, ``s`` are ints or (h, w) pairs; ``pads``
    an int or (top, bottom, left, right); output size uses the floor rule
    (ONNX ceil_mode 0). ``x`` must hold ``data_bits`` values: exactness is
    proven for the sums those can reach."""
    x = np.asarray(x, dtype=np.int64)
    if x.size and (x.min() < arith.qmin(data_bits) or x.max() > arith.qmax(data_bits)):
        raise ValueError(f"average pool input outside the {data_bits}-bit range")
    (kh, kw), (sh, sw), p4, (oh, ow), n = _avg_geometry(x.shape, k, s, pads, count_include_pad)
    ssum = _window_sums_int(x, kh, kw, sh, sw, p4, oh, ow)
    return arith.avg_divide(ssum, n[None], data_bits)


def global_avgpool_int(x: np.ndarray, *, data_bits: int = 16) -> np.ndarray:
    """Global average pool on integers: (C, H, W) -> (C, 1, 1), the average
    pool whose one window is the whole map (n = H*W)."""
    x = np.asarray(x, dtype=np.int64)
    _, h, w = x.shape
    return avgpool_int(x, (h, w), 1, (0, 0, 0, 0), 0, data_bits=data_bits)


def layer_int(x_q, w_q, b_q, *, stride=1, pads=(0, 0, 0, 0), bias_shift=0, data_shift=0,
              relu=False, pool=None, data_bits=16, acc_bits=48, groups=1,
              residual=None, res_shift=0, clip_hi=None, clip_lo=0):
    """One CONV/FC layer exactly as the engine computes it:

    acc = sum(x * w) + shift_round_sat(bias, bias_shift, acc_bits)
    acc = add_sat(acc, align_to_acc(residual, res_shift, acc_bits), acc_bits)
                                       (if a residual is given)
    acc = relu(acc)                    (if enabled)
    y   = shift_round_sat(acc, data_shift, data_bits)
    y   = clip(y, clip_lo, clip_hi)    (if clip_hi is given: Clip / ReLU6)
    y   = maxpool(y, *pool)            (if enabled; pool = (k, s, pad), pad an
                                        int or (top, bottom, left, right))

    ReLU, clip and max pool commute with the monotone data shift, so this order
    is the one the hardware uses (pooling on narrow values) without changing
    the result against conv -> ReLU -> pool -> shift. The residual is a
    (Cout, OH, OW) data_bits tensor at its own fl; ``res_shift = fl_res -
    fl_acc`` (negative: exact left shift). It joins the unrounded accumulator,
    so the layer rounds once. ``groups`` as in :func:`conv_acc`.
    """
    acc = conv_acc(x_q, w_q, stride, pads, groups)
    if b_q is not None:
        acc = acc + np.asarray(arith.shift_round_sat(np.asarray(b_q, dtype=np.int64), bias_shift, acc_bits))[:, None, None]
    if residual is not None:
        r = np.asarray(residual, dtype=np.int64)
        if r.shape != acc.shape:
            raise ValueError(f"residual shape {r.shape} differs from the convolution output {acc.shape}")
        acc = arith.add_sat(acc, arith.align_to_acc(r, res_shift, acc_bits), acc_bits)
    if relu:
        acc = arith.relu(acc)
    y = arith.shift_round_sat(acc, data_shift, data_bits)
    if clip_hi is not None:
        y = arith.clip(y, clip_lo, clip_hi)
    if pool is not None:
        y = maxpool_int(y, *pool)
    return y


def add_int(a, b, shift_a, shift_b, data_shift, relu=False, data_bits=16, acc_bits=48, *,
            clip_hi=None, clip_lo=0):
    """Standalone element-wise add of two data tensors (ONNX Add), as the engine
    runs it: the same pipeline as a residual layer.

    acc = add_sat(align_to_acc(a, shift_a, acc_bits), align_to_acc(b, shift_b, acc_bits), acc_bits)
    acc = relu(acc)                              (if enabled)
    y   = shift_round_sat(acc, data_shift, data_bits)
    y   = clip(y, clip_lo, clip_hi)              (if clip_hi is given)

    with ``shift_a = fl_a - fl_acc``, ``shift_b = fl_b - fl_acc`` and
    ``data_shift = fl_acc - fl_out`` for a chosen accumulator fl. With
    ``shift_a = -m <= 0`` this equals ``layer_int(a, 2**m * identity, None,
    residual=b, res_shift=shift_b, ...)`` (a 1x1 conv with weight 2**m at
    fl_w = m), which is how the engine runs it; fl_acc = max(fl_a, fl_b) makes
    both shifts exact left shifts, so the add rounds only once.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"add operands differ in shape: {a.shape} and {b.shape}")
    acc = arith.add_sat(arith.align_to_acc(a, shift_a, acc_bits), arith.align_to_acc(b, shift_b, acc_bits),
                        acc_bits)
    if relu:
        acc = arith.relu(acc)
    y = arith.shift_round_sat(acc, data_shift, data_bits)
    if clip_hi is not None:
        y = arith.clip(y, clip_lo, clip_hi)
    return y


# -------------------------------------------------------------------- float

def conv_float(x, w, b=None, stride=1, pads=(0, 0, 0, 0), groups=1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    cout, w_cin, k, _ = w.shape
    if groups != 1:
        _check_groups(x.shape[0], cout, w_cin, groups)
    y = _conv_matmul(x, w.reshape(cout, -1), k, stride, pads, groups)
    if b is not None:
        y += np.asarray(b, dtype=np.float64)[:, None, None]
    return y


def fc_float(x, w, b=None) -> np.ndarray:
    y = np.asarray(w, dtype=np.float64) @ np.asarray(x, dtype=np.float64).reshape(-1)
    if b is not None:
        y = y + np.asarray(b, dtype=np.float64)
    return y


def maxpool_float(x, k, s, pad=0, *, pads=None) -> np.ndarray:
    """Float max pool; ``k``, ``s``, ``pad``/``pads`` as in :func:`maxpool_int`."""
    x = np.asarray(x, dtype=np.float64)
    c, h, w = x.shape
    kh, kw = _pair(k, "kernel")
    sh, sw = _pair(s, "stride")
    pt, pb, pl, pr = _pads4(pad, pads)
    oh, ow = out_size(h, kh, sh, pt, pb), out_size(w, kw, sw, pl, pr)
    xp = _pad(x, (pt, pb, pl, pr), value=-np.inf)
    out = np.full((c, oh, ow), -np.inf)
    for v in _pool_views(xp, kh, kw, sh, sw, oh, ow):
        out = np.maximum(out, v)
    return out


def avgpool_float(x, k, s, pads=(0, 0, 0, 0), count_include_pad=0) -> np.ndarray:
    """Float average pool (ONNX AveragePool, ceil_mode 0): window sum over real
    cells divided by their count (count_include_pad 0) or by kh*kw (1)."""
    x = np.asarray(x, dtype=np.float64)
    (kh, kw), (sh, sw), p4, (oh, ow), n = _avg_geometry(x.shape, k, s, pads, count_include_pad)
    xp = _pad(x, p4)
    total = np.zeros((x.shape[0], oh, ow))
    for v in _pool_views(xp, kh, kw, sh, sw, oh, ow):
        total += v
    return total / n[None]


def global_avgpool_float(x) -> np.ndarray:
    """Float global average pool: (C, H, W) -> (C, 1, 1)."""
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=(1, 2), keepdims=True)


def relu_float(x) -> np.ndarray:
    return np.maximum(np.asarray(x, dtype=np.float64), 0.0)


def clip_float(x, lo, hi) -> np.ndarray:
    """Float Clip (ReLU6 is clip_float(x, 0, 6))."""
    return np.clip(np.asarray(x, dtype=np.float64), lo, hi)


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
