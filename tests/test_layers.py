"""The integer layer operators against slow direct references.

The references loop over output positions and compute each one on its own
(pure numpy or Python ints per position, golden.arith per element), so they
share nothing with the im2col/matmul path they check.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from golden import arith, layers
from golden.layers import compare, conv_acc, layer_int, maxpool_int

I16 = (-(1 << 15), (1 << 15) - 1)


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# ----------------------------------------------------------- references

def ref_conv_acc(x, w, stride, pads):
    cout, cin, k, _ = w.shape
    pt, pb, pl, pr = pads
    _, h, wd = x.shape
    xp = np.zeros((cin, h + pt + pb, wd + pl + pr), dtype=np.int64)
    xp[:, pt:pt + h, pl:pl + wd] = x
    oh = (h + pt + pb - k) // stride + 1
    ow = (wd + pl + pr - k) // stride + 1
    out = np.zeros((cout, oh, ow), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            win = xp[:, oy * stride:oy * stride + k, ox * stride:ox * stride + k]
            out[:, oy, ox] = (w * win[None]).sum(axis=(1, 2, 3))  # int64, exact
    return out


def ref_maxpool(x, k, s, pad):
    """Max over the window's cells that lie inside the input."""
    c, h, w = x.shape
    oh = (h + 2 * pad - k) // s + 1
    ow = (w + 2 * pad - k) // s + 1
    out = np.zeros((c, oh, ow), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * s - pad, ox * s - pad
            win = x[:, max(y0, 0):min(y0 + k, h), max(x0, 0):min(x0 + k, w)]
            assert win.shape[1] > 0 and win.shape[2] > 0  # never all padding
            out[:, oy, ox] = win.max(axis=(1, 2))
    return out


def ref_layer_int(x, w, b, *, stride, pads, bias_shift, data_shift, relu, pool,
                  data_bits, acc_bits):
    """Per-element Python-int pipeline: acc + shifted bias, ReLU, data shift."""
    acc = ref_conv_acc(x, w, stride, pads)
    cout, oh, ow = acc.shape
    y = np.zeros_like(acc)
    for co in range(cout):
        bias = 0 if b is None else arith.shift_round_sat(int(b[co]), bias_shift, acc_bits)
        for oy in range(oh):
            for ox in range(ow):
                a = int(acc[co, oy, ox]) + bias
                if relu:
                    a = arith.relu(a)
                y[co, oy, ox] = arith.shift_round_sat(a, data_shift, data_bits)
    return ref_maxpool(y, *pool) if pool is not None else y


# -------------------------------------------------------------- conv_acc

def _pads_for(k):
    h = k // 2
    return [(0, 0, 0, 0)] if k == 1 else [(0, 0, 0, 0), (h, h, h, h), (k - 1, 0, 1, h)]


CONV_CASES = [(k, s, p) for k in (1, 3, 5, 7, 11) for s in (1, 2, 3, 4) for p in _pads_for(k)]


@pytest.mark.parametrize("k, stride, pads", CONV_CASES,
                         ids=[f"k{k}-s{s}-p{'_'.join(map(str, p))}" for k, s, p in CONV_CASES])
def test_conv_acc_matches_loops(k, stride, pads):
    rng = _rng("conv", k, stride, pads)
    x = rng.integers(*I16, size=(3, 17, 14), endpoint=True)
    w = rng.integers(*I16, size=(5, 3, k, k), endpoint=True)
    got = conv_acc(x, w, stride, pads)
    assert got.dtype == np.int64
    want = ref_conv_acc(x, w, stride, pads)
    assert got.shape == want.shape
    assert compare(want, got) == ([], 0)


def test_conv_acc_exact_beyond_float32():
    """Products and sums well past 2**24 (float32) and close to 2**53 must be
    exact: catches any single-precision or lossy path."""
    rng = _rng("wide")
    x = rng.integers(-(1 << 24), 1 << 24, size=(2, 9, 9), endpoint=True)
    w = rng.integers(-(1 << 23), 1 << 23, size=(3, 2, 3, 3), endpoint=True)
    x[0, 4, 4] = (1 << 24) - 1  # an odd product near the top
    w[:, 0, 1, 1] = (1 << 23) - 1
    got = conv_acc(x, w, 1, (1, 1, 1, 1))
    want = ref_conv_acc(x, w, 1, (1, 1, 1, 1))
    assert np.abs(want).max() > 1 << 48
    assert compare(want, got) == ([], 0)


def test_conv_acc_fc_shape():
    """FC is a 1x1 convolution on a (N, 1, 1) input."""
    rng = _rng("fc")
    x = rng.integers(*I16, size=(300, 1, 1), endpoint=True)
    w = rng.integers(*I16, size=(10, 300, 1, 1), endpoint=True)
    got = conv_acc(x, w, 1, (0, 0, 0, 0))
    want = (w[:, :, 0, 0] @ x[:, 0, 0]).reshape(10, 1, 1)
    assert compare(want, got) == ([], 0)


def test_conv_acc_rejects_unsafe_accumulation():
    one = np.ones((1, 1, 1), dtype=np.int64)
    # One product of exactly 2**53: out of exact float64 range.
    with pytest.raises(ValueError, match="2\\*\\*53"):
        conv_acc(one << 26, np.full((1, 1, 1, 1), 1 << 27), 1, (0, 0, 0, 0))
    # Each product is small, but the sum over taps could reach 2**53.
    with pytest.raises(ValueError):
        conv_acc(np.full((4, 1, 1), 1 << 26), np.full((1, 4, 1, 1), 1 << 25), 1, (0, 0, 0, 0))
    # Negative values count by magnitude.
    with pytest.raises(ValueError):
        conv_acc(-(one << 26), np.full((1, 1, 1, 1), -(1 << 27)), 1, (0, 0, 0, 0))
    # Just under the bound is accepted and exact.
    got = conv_acc(one << 26, np.full((1, 1, 1, 1), (1 << 27) - 1), 1, (0, 0, 0, 0))
    assert int(got[0, 0, 0]) == (1 << 26) * ((1 << 27) - 1)


def test_conv_acc_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="channels"):
        conv_acc(np.zeros((3, 4, 4)), np.zeros((2, 4, 3, 3)), 1, (0, 0, 0, 0))


def test_conv_acc_vgg16_sized():
    """A full-size VGG16 conv layer (64x224x224, 3x3, pad 1): shape and a
    sample of positions, including the borders, against the per-position loop."""
    rng = _rng("vgg")
    x = rng.integers(*I16, size=(64, 224, 224), endpoint=True)
    w = rng.integers(*I16, size=(64, 64, 3, 3), endpoint=True)
    got = conv_acc(x, w, 1, (1, 1, 1, 1))
    assert got.shape == (64, 224, 224) and got.dtype == np.int64
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    pos = [(0, 0), (0, 223), (223, 0), (223, 223), (111, 0), (0, 97)]
    pos += [tuple(p) for p in rng.integers(0, 224, size=(40, 2))]
    for oy, ox in pos:
        want = (w * xp[None, :, oy:oy + 3, ox:ox + 3]).sum(axis=(1, 2, 3))
        assert np.array_equal(got[:, oy, ox], want), (oy, ox)


# ------------------------------------------------------------- maxpool

POOL_CASES = [(k, s, p) for k in (2, 3) for s in (1, 2, 3) for p in range(k)]


@pytest.mark.parametrize("negative", [False, True], ids=["mixed", "allneg"])
@pytest.mark.parametrize("k, s, pad", POOL_CASES, ids=[f"k{k}-s{s}-p{p}" for k, s, p in POOL_CASES])
def test_maxpool_int_matches_loops(k, s, pad, negative):
    rng = _rng("pool", k, s, pad, negative)
    x = rng.integers(*I16, size=(4, 11, 8), endpoint=True)
    if negative:
        x = -np.abs(x) - 1
        x[0] = I16[0]  # a whole channel at the most negative data value
    got = maxpool_int(x, k, s, pad)
    want = ref_maxpool(x, k, s, pad)
    assert got.shape == want.shape
    assert compare(want, got) == ([], 0)
    if negative:
        assert got.max() < 0  # no padded cell (a zero or the sentinel) leaked out
        assert np.all(got[0] == I16[0])


# ----------------------------------------------------------- layer_int

LAYER_CASES = [
    # k, stride, pads, bias_shift, data_shift, relu, pool, data_bits
    (3, 1, (1, 1, 1, 1), -3, 9, True, (2, 2, 0), 16),
    (3, 1, (1, 1, 1, 1), 5, 7, False, None, 16),
    (5, 2, (2, 1, 0, 3), -2, 14, True, (3, 2, 1), 8),
    (1, 1, (0, 0, 0, 0), 4, 6, False, (3, 2, 1), 8),
    (7, 3, (3, 3, 3, 3), 0, 16, True, None, 16),
    (11, 4, (5, 0, 10, 2), 2, 20, False, (2, 2, 1), 16),
    (3, 2, (0, 2, 1, 0), -6, -2, False, None, 16),  # negative data shift: left
    (3, 1, (1, 1, 1, 1), 1, 3, True, None, 8),
]


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", LAYER_CASES, ids=[f"case{i}" for i in range(len(LAYER_CASES))])
def test_layer_int_matches_loops(case, with_bias):
    k, stride, pads, bias_shift, data_shift, relu, pool, data_bits = case
    rng = _rng("layer", case, with_bias)
    x = rng.integers(-3000, 3000, size=(4, 23, 21), endpoint=True)
    w = rng.integers(-200, 200, size=(6, 4, k, k), endpoint=True)
    b = rng.integers(-(1 << 20), 1 << 20, size=6, endpoint=True) if with_bias else None
    kw = dict(stride=stride, pads=pads, bias_shift=bias_shift, data_shift=data_shift,
              relu=relu, pool=pool, data_bits=data_bits, acc_bits=48)
    got = layer_int(x, w, b, **kw)
    want = ref_layer_int(x, w, b, **kw)
    assert got.shape == want.shape
    assert compare(want, got) == ([], 0)
    assert got.min() >= arith.qmin(data_bits) and got.max() <= arith.qmax(data_bits)


def test_layer_int_cases_exercise_saturation_and_rounding():
    """The cases above are only worth something if they hit saturation at both
    ends and rounding ties somewhere: check the reference pipeline does."""
    hit_hi = hit_lo = ties = 0
    for case in LAYER_CASES:
        k, stride, pads, bias_shift, data_shift, relu, pool, data_bits = case
        rng = _rng("layer", case, True)
        x = rng.integers(-3000, 3000, size=(4, 23, 21), endpoint=True)
        w = rng.integers(-200, 200, size=(6, 4, k, k), endpoint=True)
        b = rng.integers(-(1 << 20), 1 << 20, size=6, endpoint=True)
        acc = ref_conv_acc(x, w, stride, pads) + np.array(
            [arith.shift_round_sat(int(v), bias_shift, 48) for v in b])[:, None, None]
        if relu:
            acc = np.maximum(acc, 0)
        y = arith.shift_round_sat(acc, data_shift, data_bits)
        hit_hi += int((y == arith.qmax(data_bits)).sum())
        hit_lo += int((y == arith.qmin(data_bits)).sum())
        if data_shift > 0:
            ties += int((acc % (1 << data_shift) == 1 << (data_shift - 1)).sum())
    assert hit_hi > 0 and hit_lo > 0 and ties > 0


def test_layer_int_bias_shift_both_signs():
    """Hand-checked: a 1x1 identity conv isolates the bias path."""
    x = np.zeros((1, 1, 1), dtype=np.int64)
    w = np.ones((2, 1, 1, 1), dtype=np.int64)
    b = np.array([5, -5])
    # bias_shift 1: 5/2 = 2.5 -> 3, -2.5 -> -2 (ties up)
    assert layer_int(x, w, b, bias_shift=1).ravel().tolist() == [3, -2]
    # bias_shift -3: exact multiply by 8
    assert layer_int(x, w, b, bias_shift=-3).ravel().tolist() == [40, -40]
    # data shift after the bias: (5 << 3) >> 4 = 2.5 -> 3
    assert layer_int(x, w, b, bias_shift=-3, data_shift=4).ravel().tolist() == [3, -2]
    # ReLU before the data shift; saturation at 8 bits after a left data shift
    assert layer_int(x, w, b, bias_shift=-3, relu=True).ravel().tolist() == [40, 0]
    assert layer_int(x, w, b, data_shift=-5, data_bits=8).ravel().tolist() == [127, -128]


# -------------------------------------------------------------- compare

def test_compare_reports_a_single_corruption():
    rng = _rng("cmp")
    e = rng.integers(*I16, size=(3, 5, 7), endpoint=True)
    assert compare(e, e.copy()) == ([], 0)
    a = e.copy()
    a[1, 2, 3] += 1
    first, n = compare(e, a)
    assert n == 1
    assert first == [((1, 2, 3), int(e[1, 2, 3]), int(e[1, 2, 3]) + 1)]


def test_compare_counts_all_and_reports_first_in_order():
    e = np.zeros((4, 6, 6), dtype=np.int64)
    a = e.copy()
    spots = [(3, 5, 5), (0, 0, 1), (2, 3, 4), (1, 1, 1), (0, 4, 0), (2, 0, 0), (3, 0, 2)]
    for i, s in enumerate(spots):
        a[s] = -(i + 1)
    first, n = compare(e, a)
    assert n == len(spots)
    assert len(first) == 5
    assert [f[0] for f in first] == sorted(spots)[:5]
    assert all(exp == 0 and act < 0 for _, exp, act in first)
    first, n = compare(e, a, max_report=100)
    assert n == len(spots) and len(first) == len(spots)


def test_compare_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        compare(np.zeros((2, 3)), np.zeros((3, 2)))


def test_compare_catches_a_broken_conv():
    """The checker fails a conv whose one output is off by one."""
    rng = _rng("broken")
    x = rng.integers(*I16, size=(2, 6, 6), endpoint=True)
    w = rng.integers(*I16, size=(2, 2, 3, 3), endpoint=True)
    got = conv_acc(x, w, 1, (1, 1, 1, 1))
    got[1, 5, 0] -= 1
    first, n = compare(ref_conv_acc(x, w, 1, (1, 1, 1, 1)), got)
    assert n == 1 and first[0][0] == (1, 5, 0) and first[0][1] - first[0][2] == 1


def test_out_size():
    assert layers.out_size(224, 3, 1, 1, 1) == 224
    assert layers.out_size(227, 11, 4, 0, 0) == 55
    assert layers.out_size(13, 3, 2, 0, 0) == 6
