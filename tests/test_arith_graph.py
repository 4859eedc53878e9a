"""The arithmetic of graph-network layers: residual and standalone add, average
and global average pooling, asymmetric max pooling, Clip/ReLU6 and grouped
convolution (golden/arith.py, golden/layers.py, docs/arithmetic.md).

Integer results are checked bit for bit against slow references that share no
code with the vectorised path (per-position loops, Python ints, Fractions).
The average-pool division is checked at the extremes of every divisor, through
the golden model and through a step-by-step copy of the hardware's long
division (its widths must hold there); a divider too short fails the harness. Float operators are checked
against onnxruntime on inputs whose float32 results are exact, so the
comparison can be (and is) exact too.
"""
from __future__ import annotations

import math
import zlib
from fractions import Fraction

import numpy as np
import pytest

from golden import arith, layers
from golden.arith import qmax, qmin, shift_round_sat
from golden.errors import UzError
from golden.layers import compare
from onnx_util import onnx_pads, run_single

I16 = (-(1 << 15), (1 << 15) - 1)
RTOL = 1e-9  # float32-exact inputs: any real difference is far above this


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def rhu(num: int, den: int = 1) -> int:
    """Round half up of num/den in exact rationals."""
    return math.floor(Fraction(num, den) + Fraction(1, 2))


def sat(v: int, bits: int) -> int:
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, v))


def ref_shift(v: int, rshift: int, bits: int) -> int:
    """shift_round_sat restated with Fractions."""
    return sat(rhu(v * (1 << max(0, -rshift)), 1 << max(0, rshift)), bits)


# ----------------------------------------------------------- references

def ref_conv_acc(x, w, stride, pads, groups=1):
    """Per-position, per-output-channel loop; each output channel reads only its
    group's input channels."""
    cout, cin_g, k, _ = w.shape
    pt, pb, pl, pr = pads
    c, h, wd = x.shape
    xp = np.zeros((c, h + pt + pb, wd + pl + pr), dtype=np.int64)
    xp[:, pt:pt + h, pl:pl + wd] = x
    oh = (h + pt + pb - k) // stride + 1
    ow = (wd + pl + pr - k) // stride + 1
    cout_g = cout // groups
    out = np.zeros((cout, oh, ow), dtype=np.int64)
    for o in range(cout):
        g = o // cout_g
        xs = xp[g * cin_g:(g + 1) * cin_g]
        for oy in range(oh):
            for ox in range(ow):
                win = xs[:, oy * stride:oy * stride + k, ox * stride:ox * stride + k]
                out[o, oy, ox] = int((w[o] * win).sum())
    return out


def ref_pool_windows(x, k, s, pads):
    """Yield (oy, ox, real cells (C, rows, cols)) for every output position."""
    kh, kw = (k, k) if np.ndim(k) == 0 else k
    sh, sw = (s, s) if np.ndim(s) == 0 else s
    pt, pb, pl, pr = (pads,) * 4 if np.ndim(pads) == 0 else pads
    _, h, w = x.shape
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * sh - pt, ox * sw - pl
            yield oy, ox, x[:, max(y0, 0):min(y0 + kh, h), max(x0, 0):min(x0 + kw, w)]


def ref_maxpool(x, k, s, pads):
    cells = list(ref_pool_windows(x, k, s, pads))
    oh, ow = cells[-1][0] + 1, cells[-1][1] + 1
    out = np.zeros((x.shape[0], oh, ow), dtype=np.int64)
    for oy, ox, win in cells:
        assert win.size > 0  # never a window of padding only
        out[:, oy, ox] = win.max(axis=(1, 2))
    return out


def ref_avgpool(x, k, s, pads, cip):
    kh, kw = (k, k) if np.ndim(k) == 0 else k
    cells = list(ref_pool_windows(x, k, s, pads))
    oh, ow = cells[-1][0] + 1, cells[-1][1] + 1
    out = np.zeros((x.shape[0], oh, ow), dtype=np.int64)
    for oy, ox, win in cells:
        n = kh * kw if cip else win.shape[1] * win.shape[2]
        for c in range(x.shape[0]):
            out[c, oy, ox] = rhu(int(win[c].sum()), n)
    return out


def ref_layer(x, w, b, *, stride, pads, groups, bias_shift, residual, res_shift, relu,
              data_shift, clip_hi, pool, data_bits, acc_bits):
    """The layer pipeline per element in Python ints."""
    acc = ref_conv_acc(x, w, stride, pads, groups)
    y = np.zeros_like(acc)
    for idx in np.ndindex(acc.shape):
        a = int(acc[idx])
        if b is not None:
            a += ref_shift(int(b[idx[0]]), bias_shift, acc_bits)
        if residual is not None:
            a = sat(a + ref_shift(int(residual[idx]), res_shift, acc_bits), acc_bits)
        if relu:
            a = max(a, 0)
        v = ref_shift(a, data_shift, data_bits)
        if clip_hi is not None:
            v = min(max(v, 0), clip_hi)
        y[idx] = v
    return ref_maxpool(y, pool[0], pool[1], pool[2]) if pool is not None else y


# ------------------------------------------------- residual: alignment

@pytest.mark.parametrize("data_bits, acc_bits", [(8, 32), (16, 48), (16, 53)])
def test_align_left_shift_is_exact(data_bits, acc_bits):
    """fl_acc >= fl_res: a left shift by fl_acc - fl_res, exact for every
    data_bits value up to the last shift that fits acc_bits."""
    rng = _rng("align-left", data_bits, acc_bits)
    r = rng.integers(qmin(data_bits), qmax(data_bits), size=4000, endpoint=True)
    r[:2] = (qmin(data_bits), qmax(data_bits))
    for n in range(0, acc_bits - data_bits + 1):
        got = arith.align_to_acc(r, -n, acc_bits)
        assert got.tolist() == [int(v) << n for v in r], n
    # One more bit and the extremes no longer fit: they saturate.
    n = acc_bits - data_bits + 1
    got = arith.align_to_acc(np.array([qmax(data_bits), qmin(data_bits), 1, -1, 0]), -n, acc_bits)
    assert got.tolist() == [qmax(acc_bits), qmin(acc_bits), 1 << n, -(1 << n), 0]


@pytest.mark.parametrize("res_shift", [1, 2, 3, 7, 15, 20])
def test_align_right_shift_rounds_like_shift_round_sat(res_shift):
    """fl_res > fl_acc: round half up, ties included, exactly shift_round_sat."""
    rng = _rng("align-right", res_shift)
    r = rng.integers(*I16, size=3000, endpoint=True)
    ties = (rng.integers(-(1 << 14) >> res_shift, (1 << 14) >> res_shift, size=200) << res_shift) \
        + (1 << (res_shift - 1))
    r = np.concatenate([r, ties, [I16[0], I16[1], 0, -1, 1]])
    got = arith.align_to_acc(r, res_shift, 48)
    assert np.array_equal(got, shift_round_sat(r, res_shift, 48))
    assert got.tolist() == [ref_shift(int(v), res_shift, 48) for v in r]
    assert type(arith.align_to_acc(5, 1, 48)) is int and arith.align_to_acc(-5, 1, 48) == -2


def test_add_sat_saturates_the_sum():
    hi, lo = qmax(20), qmin(20)
    assert arith.add_sat(np.array([hi, lo, hi, 5]), np.array([1, -1, -hi, -7]), 20).tolist() == \
        [hi, lo, 0, -2]
    assert arith.add_sat(hi, hi, 20) == hi and type(arith.add_sat(1, 2, 8)) is int


# ----------------------------------------------------- residual layers

RES_CASES = [
    # k, stride, pads, groups, bias_shift, res_shift, relu, data_shift, clip, pool, data_bits
    (3, 1, (1, 1, 1, 1), 1, -3, -9, True, 9, False, None, 16),
    (3, 1, (1, 1, 1, 1), 1, 4, -2, False, 7, False, (2, 2, 0), 16),
    (1, 1, (0, 0, 0, 0), 1, 0, 0, True, 6, False, None, 16),
    (3, 2, (0, 1, 0, 1), 2, -2, 3, False, 8, False, None, 16),         # right-shifted residual
    (3, 1, (1, 1, 1, 1), 4, 1, -5, True, 10, True, (3, 2, (0, 0, 1, 1)), 8),
    (5, 1, (2, 2, 2, 2), 4, 0, -40, False, 12, False, None, 16),       # residual saturates at acc_bits
]


def _res_inputs(case):
    """The layer inputs and keyword arguments of one RES_CASES entry."""
    k, stride, pads, groups, bias_shift, res_shift, relu, data_shift, clip, pool, data_bits = case
    rng = _rng("res", case)
    cin, cout = 4, 4
    x = rng.integers(-3000, 3000, size=(cin, 11, 10), endpoint=True)
    w = rng.integers(-300, 300, size=(cout, cin // groups, k, k), endpoint=True)
    b = rng.integers(-(1 << 20), 1 << 20, size=cout, endpoint=True)
    oh = layers.out_size(11, k, stride, pads[0], pads[1])
    ow = layers.out_size(10, k, stride, pads[2], pads[3])
    res = rng.integers(qmin(data_bits), qmax(data_bits), size=(cout, oh, ow), endpoint=True)
    res[0, 0, :3] = (qmin(data_bits), qmax(data_bits), 0)
    clip_hi = arith.quantize(6.0, 3, data_bits) if clip else None
    kw = dict(stride=stride, pads=pads, groups=groups, bias_shift=bias_shift, residual=res,
              res_shift=res_shift, relu=relu, data_shift=data_shift, clip_hi=clip_hi, pool=pool,
              data_bits=data_bits, acc_bits=48)
    return x, w, b, kw


@pytest.mark.parametrize("case", RES_CASES, ids=[f"case{i}" for i in range(len(RES_CASES))])
def test_layer_int_residual_matches_reference(case):
    x, w, b, kw = _res_inputs(case)
    got = layers.layer_int(x, w, b, **kw)
    want = ref_layer(x, w, b, **kw)
    assert compare(want, got) == ([], 0)
    # Without the residual the result must differ: the operand was really used.
    kw["residual"] = None
    assert compare(ref_layer(x, w, b, **kw), got)[1] > 0


def test_residual_cases_exercise_ties_and_saturation():
    """The cases above are worth something only if a right-shifted residual
    hits exact ties and some aligned residual and some sum saturate."""
    ties = sat_align = sat_sum = 0
    for case in RES_CASES:
        x, w, b, kw = _res_inputs(case)
        r, s = kw["residual"], kw["res_shift"]
        if s > 0:
            ties += int((r % (1 << s) == 1 << (s - 1)).sum())
        aligned = arith.align_to_acc(r, s, 48)
        sat_align += int((np.abs(aligned) >= qmax(48)).sum())
        acc = ref_conv_acc(x, w, kw["stride"], kw["pads"], kw["groups"]) + np.array(
            [ref_shift(int(v), kw["bias_shift"], 48) for v in b])[:, None, None]
        total = acc + aligned  # int64 holds it: both terms are below 2**48
        sat_sum += int(((total > qmax(48)) | (total < qmin(48))).sum())
    assert ties > 0 and sat_align > 0 and sat_sum > 0


def test_residual_joins_the_unrounded_accumulator():
    """One rounding for conv + residual, not one each: 0.5 + 0.5 = 1, where
    rounding the two halves apart would give 2 (hand-checked)."""
    x = np.ones((1, 1, 1), dtype=np.int64)     # 1 at fl_in = 1: 0.5
    w = np.ones((1, 1, 1, 1), dtype=np.int64)  # 1 at fl_w = 0: fl_acc = 1
    r = np.ones((1, 1, 1), dtype=np.int64)     # 1 at fl_res = 1: 0.5, res_shift 0
    assert layers.layer_int(x, w, None, residual=r, res_shift=0, data_shift=1).item() == 1
    # fl_res = 0 (r = 1.0): res_shift = -1, a left shift onto fl_acc = 1: 1.5 -> 2
    assert layers.layer_int(x, w, None, residual=r, res_shift=-1, data_shift=1).item() == 2
    # fl_res = 2 (r = 0.25): res_shift = 1 rounds 1/2 -> 1 on the acc grid: 0.5 + 0.5
    assert layers.layer_int(x, w, None, residual=r, res_shift=1, data_shift=1).item() == 1
    # ReLU comes after the add (-0.5 + 0.5 = 0); -0.5 and -2.5 round half up
    assert layers.layer_int(-x, w, None, residual=r, res_shift=0, data_shift=1, relu=True).item() == 0
    assert layers.layer_int(x, w, None, residual=-r, res_shift=-1, data_shift=1, relu=False).item() == 0
    assert layers.layer_int(x, w, None, residual=-r, res_shift=-1, data_shift=2, relu=False).item() == 0
    assert layers.layer_int(x, w, None, residual=-3 * r, res_shift=-1, data_shift=1).item() == -2


def test_residual_sum_saturates_at_acc_bits():
    x = np.full((1, 1, 2), 1000, dtype=np.int64)
    w = np.full((1, 1, 1, 1), 500, dtype=np.int64)  # acc = 500000 < 2**19
    r = np.array([[[30000, -30000]]])
    y = layers.layer_int(x, w, None, residual=r, res_shift=-4, data_shift=0, data_bits=20, acc_bits=20)
    # 500000 + 480000 saturates at 2**19 - 1; 500000 - 480000 does not.
    assert y.ravel().tolist() == [qmax(20), 20000]


def test_residual_shape_must_match():
    with pytest.raises(ValueError, match="residual shape"):
        layers.layer_int(np.zeros((1, 4, 4)), np.zeros((2, 1, 3, 3)), None, residual=np.zeros((2, 4, 4)))


# ------------------------------------------------------ standalone add

@pytest.mark.parametrize("shift_a, shift_b, data_shift, relu, bits", [
    (0, -3, 3, False, 16), (-2, 0, 5, True, 16), (-4, -1, 1, False, 8),
    (2, -1, -1, False, 16), (0, 0, 0, True, 8), (-30, -30, 26, False, 16)])
def test_add_int_matches_reference(shift_a, shift_b, data_shift, relu, bits):
    rng = _rng("add", shift_a, shift_b, data_shift, relu, bits)
    a = rng.integers(qmin(bits), qmax(bits), size=(3, 7, 9), endpoint=True)
    b = rng.integers(qmin(bits), qmax(bits), size=(3, 7, 9), endpoint=True)
    a[0, 0, :2], b[0, 0, :2] = (qmax(bits), qmin(bits)), (qmax(bits), qmin(bits))
    got = layers.add_int(a, b, shift_a, shift_b, data_shift, relu, bits, 48)
    want = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        acc = sat(ref_shift(int(a[idx]), shift_a, 48) + ref_shift(int(b[idx]), shift_b, 48), 48)
        want[idx] = ref_shift(max(acc, 0) if relu else acc, data_shift, bits)
    assert compare(want, got) == ([], 0)


@pytest.mark.parametrize("m, shift_b, data_shift, relu", [(0, -3, 2, False), (3, 0, 4, True),
                                                          (5, 2, 5, False), (14, -14, 14, True)])
@pytest.mark.parametrize("depthwise", [False, True], ids=["dense", "depthwise"])
def test_add_int_is_an_identity_layer_plus_residual(m, shift_b, data_shift, relu, depthwise):
    """The engine runs Add as a 1x1 conv with weight 2**m (fl_w = m, so
    shift_a = -m) plus the residual: the two must agree bit for bit."""
    rng = _rng("addid", m, shift_b, data_shift, relu, depthwise)
    c = 5
    a = rng.integers(*I16, size=(c, 6, 8), endpoint=True)
    b = rng.integers(*I16, size=(c, 6, 8), endpoint=True)
    if depthwise:
        w, groups = np.full((c, 1, 1, 1), 1 << m, dtype=np.int64), c
    else:
        w, groups = (np.eye(c, dtype=np.int64) << m)[:, :, None, None], 1
    got = layers.layer_int(a, w, None, groups=groups, residual=b, res_shift=shift_b,
                           data_shift=data_shift, relu=relu)
    want = layers.add_int(a, b, -m, shift_b, data_shift, relu, 16, 48)
    assert compare(want, got) == ([], 0)


def test_add_int_rounds_once_and_clips():
    # 0.5 + 0.5 at fl 1 -> 1.0 at fl 0 (rounding each first would give 2)
    assert layers.add_int(np.array([1]), np.array([1]), 0, 0, 1).tolist() == [1]
    # ReLU6 on the add: 5 + 4 = 9 -> 6 at fl 0
    hi = arith.quantize(6.0, 0, 16)
    assert layers.add_int(np.array([5, -5]), np.array([4, 1]), 0, 0, 0, clip_hi=hi).tolist() == [6, 0]
    with pytest.raises(ValueError, match="shape"):
        layers.add_int(np.zeros(3), np.zeros(4), 0, 0, 0)


# -------------------------------------------- average pool: the division

def _extreme_sums(n_lo: int, n_hi: int, bits: int, top: bool):
    """For every n in [n_lo, n_hi], its n largest (top) or n smallest reachable
    window sums, flattened: (S, n)."""
    n = np.arange(n_lo, n_hi + 1, dtype=np.int64)
    n_rep = np.repeat(n, n)
    start = np.repeat(np.cumsum(n) - n, n)
    j = np.arange(n_rep.size, dtype=np.int64) - start  # 0..n-1 within each n
    s = n_rep * qmax(bits) - j if top else n_rep * qmin(bits) + j
    return s, n_rep


def _round_half_up(s, n):
    """round_half_up(s/n) from divmod: an independent form of floor((2s+n)/(2n))."""
    q, r = np.divmod(s, n)
    return q + (2 * r >= n)


def _long_division(s, n, bits: int, qbits: int | None = None):
    """uz_post's divider, step by step: N = 2S + n, d = 2n; a negative N
    divides as -floor((d - 1 - N) / d); radix-4 restoring division of the
    unsigned dividend a, its high part a >> QBits taken as the first partial
    remainder (it must be below d), QBits = bits quotient bits."""
    qbits = bits if qbits is None else qbits
    num = 2 * s + n
    d = 2 * n
    neg = num < 0
    a = np.where(neg, d - 1 - num, num)
    rem = a >> qbits
    if np.any(rem >= d):
        return None                     # the first digit would not fit: widths too small
    low = a & ((1 << qbits) - 1)
    q = np.zeros_like(a)
    for i in range(qbits - 2, -2, -2):
        r = (rem << 2) | ((low >> i) & 3)
        digit = (r >= d).astype(np.int64) + (r >= 2 * d) + (r >= 3 * d)
        rem = r - digit * d
        q = (q << 2) | digit
    return np.where(neg, -q, q)


def _mismatches_worst_case(divide, bits: int, n_max: int = arith.AVG_N_MAX) -> int:
    bad = 0
    for n_lo in range(1, n_max + 1, 512):
        for top in (True, False):
            s, n = _extreme_sums(n_lo, min(n_max, n_lo + 511), bits, top)
            got = divide(s, n, bits)
            bad += s.size if got is None else int((got != _round_half_up(s, n)).sum())
    return bad


@pytest.mark.parametrize("bits", [8, 16])
def test_avg_divide_exact_at_the_extremes(bits):
    """round_half_up(S/n) at the n largest and n smallest reachable sums of
    every n <= 4096, through the golden model and through the hardware's
    long division (uz_post): its quotient width (bits) and the first partial
    remainder below d hold over the whole range."""
    assert _mismatches_worst_case(arith.avg_divide, bits) == 0
    assert _mismatches_worst_case(_long_division, bits) == 0


@pytest.mark.parametrize("bits", [8, 16])
def test_avg_divide_harness_catches_a_short_divider(bits):
    """A quotient two bits short cannot reach the extremes: the harness sees it."""
    assert _mismatches_worst_case(lambda s, n, b: _long_division(s, n, b, b - 2), bits) > 0


@pytest.mark.parametrize("bits, n_max", [(16, 40), (8, 300)])
def test_avg_divide_exhaustive_small_windows(bits, n_max):
    """Every reachable S for every small n (all 3x3, 5x5 and border windows)."""
    for n in range(1, n_max + 1):
        s = np.arange(n * qmin(bits), n * qmax(bits) + 1, dtype=np.int64)
        want = _round_half_up(s, n)
        assert np.array_equal(arith.avg_divide(s, n, bits), want), n
        assert np.array_equal(_long_division(s, np.int64(n), bits), want), n


def test_avg_divide_ties_and_scalars():
    # ties go up at both signs: +-0.5, +-1.5, +-2.5
    cases = [(3, 6, 1), (-3, 6, 0), (9, 6, 2), (-9, 6, -1), (5, 2, 3), (-5, 2, -2), (-1, 2, 0),
             (7, 3, 2), (-7, 3, -2), (-8, 3, -3), (0, 9, 0), (-4096 * 32768, 4096, -32768),
             (4096 * 32767, 4096, 32767), (-2048, 4096, 0), (-2049, 4096, -1)]
    for s, n, want in cases:
        got = arith.avg_divide(s, n, 16)
        assert got == want and type(got) is int, (s, n)


def test_avg_divide_rejects_unreachable_sums():
    with pytest.raises(UzError, match="window sum"):
        arith.avg_divide(9 * 32768, 9, 16)
    with pytest.raises(UzError, match="window sum"):
        arith.avg_divide(-9 * 32768 - 1, 9, 16)
    with pytest.raises(UzError, match="divisor"):
        arith.avg_divide(0, 0, 16)
    # divisors above the engine's AVG_N_MAX still divide exactly in the golden model
    assert arith.avg_divide(np.array([-(1 << 20) * 32768]), 1 << 20, 16).tolist() == [-32768]


# ------------------------------------------- average pool: the layer

AVG_CASES = [
    # k, s, pads
    (3, 1, (1, 1, 1, 1)), (3, 2, (0, 1, 0, 1)), (3, 2, (1, 0, 2, 0)), (2, 2, (0, 0, 0, 0)),
    ((3, 5), (2, 1), (2, 0, 1, 4)), ((1, 3), 1, (0, 0, 1, 1)), (5, 3, (4, 3, 0, 2)), (7, 1, (3, 3, 3, 3)),
]


@pytest.mark.parametrize("cip", [0, 1])
@pytest.mark.parametrize("k, s, pads", AVG_CASES, ids=[f"c{i}" for i in range(len(AVG_CASES))])
def test_avgpool_int_matches_loops(k, s, pads, cip):
    rng = _rng("avg", k, s, pads, cip)
    x = rng.integers(*I16, size=(3, 12, 11), endpoint=True)
    x[1] = I16[0]  # a whole channel at qmin, x[2] with ties likely
    x[2] = rng.integers(-3, 4, size=(12, 11))
    got = layers.avgpool_int(x, k, s, pads, cip)
    want = ref_avgpool(x, k, s, pads, cip)
    assert got.shape == want.shape and got.dtype == np.int64
    assert compare(want, got) == ([], 0)
    if not cip:
        assert np.all(got[1] == I16[0])  # the average of qmin is qmin, at the borders too


def test_count_include_pad_changes_only_border_divisors():
    """x = 90 everywhere, 3x3, stride 1, pad 1: count_include_pad 0 divides by
    the real cells (4 at corners, 6 on edges, 9 inside) and returns 90
    everywhere; 1 divides by 9: 40 at corners, 60 on edges, 90 inside."""
    x = np.full((1, 5, 6), 90, dtype=np.int64)
    y0 = layers.avgpool_int(x, 3, 1, (1, 1, 1, 1), 0)
    y1 = layers.avgpool_int(x, 3, 1, (1, 1, 1, 1), 1)
    assert np.all(y0 == 90)
    assert y1[0, 0, 0] == y1[0, -1, -1] == 40 and y1[0, 0, 2] == y1[0, 2, 0] == 60
    assert np.all(y1[0, 1:-1, 1:-1] == 90)
    # Asymmetric pads: only the padded sides shrink the divisor. 3x3, stride 2,
    # pads (0, 1, 0, 1) on 6x6: windows start at 0, 2, 4; the last one covers
    # rows and columns 4, 5 and the padding, so 4 real cells.
    x = np.arange(36, dtype=np.int64).reshape(1, 6, 6) * 7 - 100
    y0 = layers.avgpool_int(x, 3, 2, (0, 1, 0, 1), 0)
    y1 = layers.avgpool_int(x, 3, 2, (0, 1, 0, 1), 1)
    assert y0.shape == (1, 3, 3)
    s = int(x[0, 4:6, 4:6].sum())
    assert y0[0, 2, 2] == rhu(s, 4) and y1[0, 2, 2] == rhu(s, 9) and rhu(s, 4) != rhu(s, 9)
    s = int(x[0, 0:3, 4:6].sum())
    assert y0[0, 0, 2] == rhu(s, 6) and y1[0, 0, 2] == rhu(s, 9)
    assert y0[0, 0, 0] == y1[0, 0, 0] == rhu(int(x[0, :3, :3].sum()), 9)


def test_avgpool_int_8bit_and_range_checks():
    rng = _rng("avg8")
    x = rng.integers(-128, 128, size=(2, 9, 9))
    assert compare(ref_avgpool(x, 3, 2, (1, 1, 1, 1), 0),
                   layers.avgpool_int(x, 3, 2, (1, 1, 1, 1), 0, data_bits=8)) == ([], 0)
    with pytest.raises(ValueError, match="8-bit"):
        layers.avgpool_int(x * 2, 3, 2, (1, 1, 1, 1), 0, data_bits=8)
    with pytest.raises(ValueError, match="pads"):
        layers.avgpool_int(x, 3, 1, (3, 0, 0, 0), 0)
    with pytest.raises(ValueError, match="count_include_pad"):
        layers.avgpool_int(x, 3, 1, 0, 2)


@pytest.mark.parametrize("h, w", [(1, 1), (7, 7), (5, 9), (64, 64), (100, 90)])
def test_global_avgpool_int(h, w):
    rng = _rng("gap", h, w)
    x = rng.integers(*I16, size=(4, h, w), endpoint=True)
    x[1], x[2] = I16[0], I16[1]
    x[3] = rng.integers(-2, 3, size=(h, w))
    got = layers.global_avgpool_int(x)
    assert got.shape == (4, 1, 1)
    want = [rhu(int(x[c].sum()), h * w) for c in range(4)]
    assert got.ravel().tolist() == want
    assert want[1] == I16[0] and want[2] == I16[1]


# ------------------------------------------------ max pool, asymmetric

MAXPOOL_CASES = [(3, 2, (0, 0, 1, 1)), (3, 1, (0, 0, 1, 1)), (2, 2, (0, 1, 0, 1)),
                 (3, 2, (2, 0, 0, 1)), ((3, 2), (1, 2), (1, 2, 0, 1))]


@pytest.mark.parametrize("negative", [False, True], ids=["mixed", "allneg"])
@pytest.mark.parametrize("k, s, pads", MAXPOOL_CASES, ids=[f"c{i}" for i in range(len(MAXPOOL_CASES))])
def test_maxpool_int_asymmetric_pads(k, s, pads, negative):
    rng = _rng("maxpool", k, s, pads, negative)
    x = rng.integers(*I16, size=(3, 9, 10), endpoint=True)
    if negative:
        x = -np.abs(x) - 1
        x[0] = I16[0]
    got = layers.maxpool_int(x, k, s, pads=pads)
    want = ref_maxpool(x, k, s, pads)
    assert compare(want, got) == ([], 0)
    assert compare(want, layers.maxpool_int(x, k, s, pads)) == ([], 0)  # pad given as a 4-tuple
    if negative:
        assert got.max() < 0 and np.all(got[0] == I16[0])  # padding never wins


def test_maxpool_symmetric_call_unchanged():
    rng = _rng("maxpool-sym")
    x = rng.integers(*I16, size=(2, 8, 7), endpoint=True)
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 1, 2)]:
        assert np.array_equal(layers.maxpool_int(x, k, s, p), ref_maxpool(x, k, s, (p,) * 4))
        assert np.array_equal(layers.maxpool_float(x, k, s, p), ref_maxpool(x, k, s, (p,) * 4))


def test_layer_int_fuses_an_asymmetric_pool():
    rng = _rng("fused-asym")
    x = rng.integers(-1000, 1000, size=(2, 8, 8))
    w = rng.integers(-100, 100, size=(3, 2, 3, 3))
    y = layers.layer_int(x, w, None, pads=(1, 1, 1, 1), data_shift=4, relu=True, pool=(3, 2, (0, 0, 1, 1)))
    y_plain = layers.layer_int(x, w, None, pads=(1, 1, 1, 1), data_shift=4, relu=True)
    assert np.array_equal(y, ref_maxpool(y_plain, 3, 2, (0, 0, 1, 1)))


# ---------------------------------------------------------- Clip / ReLU6

@pytest.mark.parametrize("fl, bits, want", [
    (0, 16, 6), (8, 16, 1536), (12, 16, 24576), (13, 16, 32767), (31, 16, 32767),  # saturates
    (4, 8, 96), (5, 8, 127), (-1, 16, 3), (-2, 16, 2), (-3, 16, 1), (-4, 16, 0)])  # 0.375 -> 0
def test_relu6_bound_quantized_like_any_value(fl, bits, want):
    lo, hi = arith.clip_bounds(0.0, 6.0, fl, bits)
    assert (lo, hi) == (0, want) and hi == arith.quantize(6.0, fl, bits)


def test_clip_integer():
    y = np.array([-40000, -1, 0, 1, 1535, 1536, 1537, 40000])
    assert arith.clip(y, 0, 1536).tolist() == [0, 0, 0, 1, 1535, 1536, 1536, 1536]
    assert arith.clip(-7, -3, 5) == -3 and type(arith.clip(2, 0, 5)) is int
    with pytest.raises(UzError, match="reversed"):
        arith.clip(y, 3, 2)


@pytest.mark.parametrize("fl_out, data_shift, bits", [(8, 10, 16), (13, 6, 16), (-2, 20, 16), (4, 14, 8)])
def test_layer_int_relu6(fl_out, data_shift, bits):
    """Clip after the data shift: outputs reach both bounds and stay inside;
    where 6 saturates (fl 13 at 16 bits) the clip is the saturation itself."""
    rng = _rng("relu6", fl_out, data_shift, bits)
    x = rng.integers(-3000, 3000, size=(3, 9, 9), endpoint=True)
    w = rng.integers(-300, 300, size=(4, 3, 3, 3), endpoint=True)
    hi = arith.quantize(6.0, fl_out, bits)
    kw = dict(stride=1, pads=(1, 1, 1, 1), groups=1, bias_shift=0, residual=None, res_shift=0,
              relu=False, data_shift=data_shift, clip_hi=hi, pool=None, data_bits=bits, acc_bits=48)
    got = layers.layer_int(x, w, None, **kw)
    assert compare(ref_layer(x, w, None, **kw), got) == ([], 0)
    assert got.min() == 0 and got.max() == hi
    assert ((got > 0) & (got < hi)).any()
    unclipped = layers.layer_int(x, w, None, pads=(1, 1, 1, 1), data_shift=data_shift, data_bits=bits)
    assert (unclipped > hi).any() or hi == qmax(bits)
    assert (unclipped < 0).any()
    assert np.array_equal(got, np.clip(unclipped, 0, hi))


# ----------------------------------------------------- grouped conv

GROUP_CASES = [
    # cin, cout, groups, k, stride, pads
    (4, 6, 2, 3, 1, (1, 1, 1, 1)),
    (6, 6, 3, 1, 1, (0, 0, 0, 0)),
    (8, 8, 8, 3, 1, (1, 1, 1, 1)),    # depthwise
    (8, 8, 8, 3, 2, (0, 1, 0, 1)),    # depthwise, stride 2, TF-style pads
    (5, 10, 5, 5, 2, (2, 2, 1, 3)),   # depthwise with channel multiplier 2
    (4, 12, 4, 3, 1, (0, 2, 2, 0)),   # multiplier 3
    (12, 8, 4, 3, 3, (1, 0, 0, 1)),   # 3 in, 2 out per group
    (3, 4, 1, 3, 1, (1, 1, 1, 1)),    # groups = 1 through the new argument
]


@pytest.mark.parametrize("case", GROUP_CASES, ids=[f"c{i}" for i in range(len(GROUP_CASES))])
def test_grouped_conv_matches_loops_and_per_group_dense(case):
    cin, cout, groups, k, stride, pads = case
    rng = _rng("group", case)
    x = rng.integers(*I16, size=(cin, 11, 9), endpoint=True)
    w = rng.integers(*I16, size=(cout, cin // groups, k, k), endpoint=True)
    got = layers.conv_acc(x, w, stride, pads, groups=groups)
    assert got.dtype == np.int64
    assert compare(ref_conv_acc(x, w, stride, pads, groups), got) == ([], 0)
    ci, co = cin // groups, cout // groups
    dense = np.concatenate([layers.conv_acc(x[g * ci:(g + 1) * ci], w[g * co:(g + 1) * co], stride, pads)
                            for g in range(groups)])
    assert np.array_equal(got, dense)
    fgot = layers.conv_float(x, w, None, stride, pads, groups=groups)
    assert np.array_equal(fgot, got.astype(np.float64))  # integer data: the float path is exact too


@pytest.mark.parametrize("groups, cin_g", [(3, 1), (3, 2)], ids=["depthwise", "grouped"])
def test_grouped_conv_exact_near_2_53(groups, cin_g):
    """Products and sums near 2**53 stay exact on both grouped paths."""
    rng = _rng("group-wide", groups, cin_g)
    x = rng.integers(-(1 << 24), 1 << 24, size=(groups * cin_g, 7, 7), endpoint=True)
    w = rng.integers(-(1 << 23), 1 << 23, size=(groups, cin_g, 3, 3), endpoint=True)
    x[:, 3, 3] = (1 << 24) - 1
    w[:, :, 1, 1] = (1 << 23) - 1
    got = layers.conv_acc(x, w, 1, (1, 1, 1, 1), groups=groups)
    want = ref_conv_acc(x, w, 1, (1, 1, 1, 1), groups)
    assert np.abs(want).max() > 1 << 47
    assert compare(want, got) == ([], 0)
    with pytest.raises(ValueError, match="2\\*\\*53"):
        layers.conv_acc(x << 5, w, 1, (1, 1, 1, 1), groups=groups)


def test_grouped_conv_rejects_bad_splits():
    with pytest.raises(ValueError, match="groups"):
        layers.conv_acc(np.zeros((6, 4, 4)), np.zeros((4, 2, 3, 3)), 1, (0,) * 4, groups=4)  # 6 % 4
    with pytest.raises(ValueError, match="per group"):
        layers.conv_acc(np.zeros((6, 4, 4)), np.zeros((4, 2, 3, 3)), 1, (0,) * 4, groups=2)  # 3 per group
    with pytest.raises(ValueError, match="groups"):
        layers.conv_float(np.zeros((4, 4, 4)), np.zeros((3, 2, 3, 3)), groups=2)  # 3 % 2


def test_layer_int_depthwise_relu6():
    """A MobileNet block's depthwise layer through layer_int equals the loop pipeline."""
    rng = _rng("dw-layer")
    x = rng.integers(-4000, 4000, size=(6, 10, 10), endpoint=True)
    w = rng.integers(-500, 500, size=(6, 1, 3, 3), endpoint=True)
    b = rng.integers(-(1 << 18), 1 << 18, size=6, endpoint=True)
    kw = dict(stride=2, pads=(0, 1, 0, 1), groups=6, bias_shift=-2, residual=None, res_shift=0,
              relu=True, data_shift=8, clip_hi=arith.quantize(6.0, 10, 16), pool=None, data_bits=16,
              acc_bits=48)
    assert compare(ref_layer(x, w, b, **kw), layers.layer_int(x, w, b, **kw)) == ([], 0)


# --------------------------------------------- floats against onnxruntime

def _exact(got, want):
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=RTOL, atol=0)


def _avg_scale(kh: int, kw: int) -> int:
    """A multiple of every possible divisor (rows * cols of a window), so every
    average of inputs scaled by it is an integer, exact in float32."""
    return math.lcm(*[i * j for i in range(1, kh + 1) for j in range(1, kw + 1)])


ORT_AVG_CASES = [
    ((3, 3), (1, 1), (1, 1, 1, 1)), ((3, 3), (2, 2), (0, 1, 0, 1)), ((3, 3), (2, 1), (1, 2, 0, 1)),
    ((2, 3), (1, 2), (1, 0, 2, 0)), ((5, 5), (3, 2), (4, 1, 0, 3)), ((1, 3), (1, 1), (0, 0, 1, 1)),
]


@pytest.mark.parametrize("cip", [0, 1])
@pytest.mark.parametrize("k, s, pads", ORT_AVG_CASES, ids=[f"c{i}" for i in range(len(ORT_AVG_CASES))])
def test_avgpool_float_against_onnxruntime(k, s, pads, cip):
    rng = _rng("ort-avg", k, s, pads, cip)
    kh, kw = k
    scale = _avg_scale(kh, kw)
    ints = rng.integers(-50, 51, size=(1, 3, 11, 13))
    x = (ints * scale).astype(np.float32)
    assert np.abs(x).max() * kh * kw < 1 << 24  # every sum exact in float32
    got = run_single("AveragePool", {"x": x}, kernel_shape=list(k), strides=list(s),
                     pads=onnx_pads(pads), count_include_pad=cip, ceil_mode=0)
    want = layers.avgpool_float(x[0], k, s, pads, cip)
    _exact(got[0], want)
    # The integer pool on the integer data agrees (every average is exact),
    # where the data fit 16 bits.
    if np.abs(ints).max() * scale <= qmax(16):
        yi = layers.avgpool_int(ints[0] * scale, k, s, pads, cip)
        assert np.array_equal(yi.astype(np.float64), want)


def test_avgpool_float_divisor_matters():
    """The ONNX check above can tell count_include_pad 0 from 1 (borders differ)."""
    x = np.full((1, 5, 5), 36.0)
    assert not np.array_equal(layers.avgpool_float(x, 3, 1, (1, 1, 1, 1), 0),
                              layers.avgpool_float(x, 3, 1, (1, 1, 1, 1), 1))


@pytest.mark.parametrize("h, w", [(7, 7), (5, 9), (8, 8), (1, 1)])
def test_global_avgpool_float_against_onnxruntime(h, w):
    rng = _rng("ort-gap", h, w)
    x = (rng.integers(-100, 101, size=(1, 4, h, w)) * h * w).astype(np.float32)
    got = run_single("GlobalAveragePool", {"x": x})
    want = layers.global_avgpool_float(x[0])
    assert want.shape == (4, 1, 1)
    _exact(got[0], want)


@pytest.mark.parametrize("case", GROUP_CASES, ids=[f"c{i}" for i in range(len(GROUP_CASES))])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
def test_grouped_conv_float_against_onnxruntime(case, bias):
    cin, cout, groups, k, stride, pads = case
    rng = _rng("ort-group", case, bias)
    x = rng.integers(-20, 21, size=(1, cin, 11, 9)).astype(np.float32)  # small ints: exact in float32
    wt = rng.integers(-20, 21, size=(cout, cin // groups, k, k)).astype(np.float32)
    b = rng.integers(-100, 101, size=cout).astype(np.float32) if bias else None
    inits = {"w": wt, **({"b": b} if bias else {})}
    got = run_single("Conv", {"x": x}, inits, kernel_shape=[k, k], strides=[stride, stride],
                     pads=onnx_pads(pads), group=groups)
    want = layers.conv_float(x[0], wt, b, stride, pads, groups=groups)
    _exact(got[0], want)


@pytest.mark.parametrize("k, s, pads", [(3, 2, (0, 0, 1, 1)), (3, 1, (0, 0, 1, 1)), (2, 2, (1, 0, 0, 1)),
                                        (3, 2, (2, 1, 0, 2))])
@pytest.mark.parametrize("negative", [False, True], ids=["mixed", "allneg"])
def test_maxpool_float_asymmetric_against_onnxruntime(k, s, pads, negative):
    rng = _rng("ort-max", k, s, pads, negative)
    x = rng.uniform(-1, 1, (1, 3, 13, 12)).astype(np.float32)
    if negative:
        x = x - np.float32(2)
    got = run_single("MaxPool", {"x": x}, kernel_shape=[k, k], strides=[s, s], pads=onnx_pads(pads),
                     ceil_mode=0)
    want = layers.maxpool_float(x[0], k, s, pads=pads)
    assert np.all(np.isfinite(want))
    _exact(got[0], want)


def test_clip_float_against_onnxruntime():
    rng = _rng("ort-clip")
    x = rng.uniform(-10, 10, (1, 3, 7, 9)).astype(np.float32)
    x[0, 0, 0, :4] = [0.0, 6.0, -0.0, 6.000001]
    got = run_single("Clip", {"x": x}, {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)})
    want = layers.clip_float(x[0], 0.0, 6.0)
    assert want.min() == 0.0 and want.max() == 6.0
    _exact(got[0], want)
