"""Properties of the fixed-point arithmetic in golden/arith.py.

The random property test checks shift_round_sat against an independent
reference in exact rational arithmetic; the mutant tests show that the same
harness catches plausible mistakes, so a green run means something.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest

from golden import arith
from golden.arith import check_fl, dequantize, qmax, qmin, quantize, shift_round_sat
from golden.errors import UzError

X_MIN, X_MAX = -(1 << 61), (1 << 61) - 1  # the signed 62-bit range


# ------------------------------------------------------------ reference

def ref_shift_round_sat(x: int, rshift: int, bits: int) -> int:
    """floor(x / 2**rshift + 1/2), clamped; exact rationals, no shortcuts."""
    v = math.floor(Fraction(x) / Fraction(2) ** rshift + Fraction(1, 2))
    return max(-(2 ** (bits - 1)), min(2 ** (bits - 1) - 1, v))


def _random_cases(seed: int, n: int):
    """(x, rshift, bits) triples biased towards the interesting inputs: ties,
    values next to ties, saturation boundaries and every magnitude."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        bits = int(rng.integers(2, 63))
        rshift = int(rng.integers(-70, 71))
        kind = int(rng.integers(0, 5))
        if kind == 0:  # any magnitude up to 62 bits
            m = int(rng.integers(0, 62))
            x = int(rng.integers(-(1 << m), 1 << m, endpoint=True))
        elif kind == 1 and rshift > 0:  # an exact tie, or one LSB either side
            s = min(rshift, 61)
            q = int(rng.integers(-(1 << (61 - s)), 1 << (61 - s)))
            x = q * (1 << s) + (1 << (s - 1)) + int(rng.integers(-1, 2))
        elif kind == 2:  # just inside / outside the saturation bound after the shift
            edge = qmax(bits) if rng.integers(0, 2) else qmin(bits)
            if rshift > 0:  # steps of half an output LSB: ties at the edge too
                x = edge * 2 ** rshift + int(rng.integers(-4, 5)) * (1 << (rshift - 1))
            else:
                x = (edge >> -rshift) + int(rng.integers(-2, 3))
        elif kind == 3:  # small values, where left shifts matter
            x = int(rng.integers(-300, 301))
        else:  # the ends of the 62-bit range
            x = int(rng.choice([X_MIN, X_MIN + 1, X_MAX - 1, X_MAX, 0, 1, -1]))
        cases.append((min(max(x, X_MIN), X_MAX), rshift, bits))
    return cases


CASES = _random_cases(seed=20240611, n=6000)


def _mismatches(fn, cases):
    return [(x, s, b, fn(x, s, b), ref_shift_round_sat(x, s, b))
            for x, s, b in cases if fn(x, s, b) != ref_shift_round_sat(x, s, b)]


# ------------------------------------------------------------- rounding

@pytest.mark.parametrize("x, expected", [
    (5, 3), (-5, -2), (3, 2), (-3, -1), (1, 1), (-1, 0),   # ties go towards +inf
    (4, 2), (-4, -2), (6, 3), (7, 4), (-7, -3), (0, 0),   # non-ties / exact
])
def test_shift_by_one_rounds_half_up(x, expected):
    assert shift_round_sat(x, 1, 16) == expected


@pytest.mark.parametrize("x, s, expected", [
    (11, 2, 3),    # 2.75
    (9, 2, 2),     # 2.25
    (10, 2, 3),    # 2.5 tie
    (-10, 2, -2),  # -2.5 tie
    (-11, 2, -3),  # -2.75
    (-9, 2, -2),   # -2.25
    (-6, 2, -1),   # -1.5 tie
    ((1 << 40) + (1 << 29), 30, 1025),  # wide tie
])
def test_shift_rounding_non_unit(x, s, expected):
    assert shift_round_sat(x, s, 16) == expected


@pytest.mark.parametrize("fl", [-8, -1, 0, 3, 12, 31])
def test_quantize_ties_go_up(fl):
    lsb = 2.0 ** -fl
    assert quantize(2.5 * lsb, fl, 16) == 3
    assert quantize(-2.5 * lsb, fl, 16) == -2
    assert quantize(0.5 * lsb, fl, 16) == 1
    assert quantize(-0.5 * lsb, fl, 16) == 0
    assert quantize(-1.5 * lsb, fl, 16) == -1
    assert quantize(2.4 * lsb, fl, 16) == 2
    assert quantize(-2.6 * lsb, fl, 16) == -3


def test_quantize_special_values():
    assert quantize(-0.5, 0, 8) == 0
    # Just below a tie must round down: adding 0.5 in float would give 1.0.
    assert quantize(0.49999999999999994, 0, 8) == 0
    assert quantize(-0.5000000000000001, 0, 8) == -1
    # Odd integers above 2**52 are exact in float64 and must stay so.
    assert quantize(2.0 ** 52 + 1, 0, 62) == 2 ** 52 + 1
    assert quantize(-(2.0 ** 52) - 1, 0, 62) == -(2 ** 52) - 1


def test_quantize_returns_python_int_or_int64_array():
    assert type(quantize(1.25, 2, 8)) is int
    a = quantize(np.array([1.25, -1.125]), 3, 8)
    assert a.dtype == np.int64 and a.tolist() == [10, -9]


# ----------------------------------------------------------- saturation

@pytest.mark.parametrize("bits", [8, 16, 48])
def test_saturation_both_ends(bits):
    hi, lo = qmax(bits), qmin(bits)
    # rshift 0: pure clamp, extremes themselves do not move.
    assert shift_round_sat(hi, 0, bits) == hi
    assert shift_round_sat(lo, 0, bits) == lo
    assert shift_round_sat(hi + 1, 0, bits) == hi
    assert shift_round_sat(lo - 1, 0, bits) == lo
    assert shift_round_sat(X_MAX, 0, bits) == hi
    assert shift_round_sat(X_MIN, 0, bits) == lo
    # Right shift: 2*hi is exactly hi; 2*hi + 1 rounds up to hi + 1 and saturates.
    assert shift_round_sat(2 * hi, 1, bits) == hi
    assert shift_round_sat(2 * hi + 1, 1, bits) == hi
    assert shift_round_sat(2 * lo, 1, bits) == lo
    assert shift_round_sat(2 * lo - 2, 1, bits) == lo
    assert shift_round_sat(2 * lo - 1, 1, bits) == lo  # tie lo - 0.5 rounds up to lo
    # Left shift: the largest exact multiplicands stay exact, one more saturates.
    for n in (1, 3, bits - 2):
        assert shift_round_sat(hi >> n, -n, bits) == (hi >> n) << n
        assert shift_round_sat((hi >> n) + 1, -n, bits) == hi
        assert shift_round_sat(lo >> n, -n, bits) == lo  # exactly representable
        assert shift_round_sat((lo >> n) - 1, -n, bits) == lo
    # Shifting 1 left by bits-1 overflows; -1 lands exactly on the minimum.
    assert shift_round_sat(1, -(bits - 1), bits) == hi
    assert shift_round_sat(-1, -(bits - 1), bits) == lo
    assert shift_round_sat(1, -(bits - 2), bits) == 1 << (bits - 2)


@pytest.mark.parametrize("bits", [8, 16, 48, 62])
def test_huge_left_shift_saturates(bits):
    assert shift_round_sat(0, -70, bits) == 0
    assert shift_round_sat(1, -70, bits) == qmax(bits)
    assert shift_round_sat(-1, -70, bits) == qmin(bits)
    assert shift_round_sat(X_MAX, -70, bits) == qmax(bits)
    assert shift_round_sat(X_MIN, -70, bits) == qmin(bits)
    got = shift_round_sat(np.array([5, -5, 0, X_MAX, X_MIN]), -70, bits)
    assert got.tolist() == [qmax(bits), qmin(bits), 0, qmax(bits), qmin(bits)]


@pytest.mark.parametrize("bits", [8, 16, 48])
def test_quantize_saturates(bits):
    assert quantize(1e30, 0, bits) == qmax(bits)
    assert quantize(-1e30, 0, bits) == qmin(bits)
    assert quantize(float(qmax(bits)), 0, bits) == qmax(bits)
    assert quantize(float(qmin(bits)), 0, bits) == qmin(bits)
    assert quantize(qmax(bits) + 0.5, 0, bits) == qmax(bits)
    assert quantize(qmin(bits) - 0.5, 0, bits) == qmin(bits)  # tie rounds up to qmin
    assert quantize(qmin(bits) - 0.50001, 0, bits) == qmin(bits)


def test_quantize_saturates_wider_than_float_mantissa():
    # qmax(62) is not a float64 value; saturation must still land on it.
    assert quantize(1e30, 0, 62) == qmax(62)
    assert quantize(-1e30, 0, 62) == qmin(62)
    assert quantize(2.0 ** 61, 0, 62) == qmax(62)
    assert quantize(-(2.0 ** 61), 0, 62) == qmin(62)


def test_saturate():
    assert arith.saturate(200, 8) == 127
    assert arith.saturate(-200, 8) == -128
    assert arith.saturate(np.array([127, -128, 0]), 8).tolist() == [127, -128, 0]


# ------------------------------------------------------- negative shifts

def test_negative_shift_multiplies_exactly():
    rng = np.random.default_rng(7)
    for _ in range(2000):
        bits = int(rng.integers(4, 63))
        n = int(rng.integers(1, bits - 1))
        room = 1 << (bits - 1 - n)  # |x| * 2**n stays in range
        x = int(rng.integers(-room, room))
        assert shift_round_sat(x, -n, bits) == x * 2 ** n
    xs = np.arange(-64, 64, dtype=np.int64)
    assert np.array_equal(shift_round_sat(xs, -9, 16), xs * 512)


# ------------------------------------------------------ property test

def test_shift_round_sat_matches_reference_scalars():
    assert _mismatches(shift_round_sat, CASES) == []


def test_shift_round_sat_returns_python_int_for_scalars():
    assert type(shift_round_sat(5, 1, 16)) is int
    assert type(shift_round_sat(np.int64(5), -1, 16)) is int


def test_shift_round_sat_matches_reference_arrays():
    rng = np.random.default_rng(99)
    by_shift = {}
    for x, s, b in CASES:
        by_shift.setdefault((s, b), []).append(x)
    # Plus full-width arrays for every shift at a few widths.
    for s in range(-70, 71):
        for b in (2, 8, 16, 33, 48, 62):
            m = rng.integers(0, 62, size=64)
            xs = [int(rng.integers(-(1 << int(k)), 1 << int(k), endpoint=True)) for k in m]
            by_shift.setdefault((s, b), []).extend(xs)
    for (s, b), xs in by_shift.items():
        xs = [min(max(x, X_MIN), X_MAX) for x in xs]
        got = shift_round_sat(np.array(xs, dtype=np.int64), s, b)
        assert got.dtype == np.int64
        want = [ref_shift_round_sat(x, s, b) for x in xs]
        assert got.tolist() == want, (s, b)


def test_case_generator_hits_ties_and_saturation():
    """The property test is only as good as its inputs: make sure they cover
    exact ties, both saturation ends and left shifts that overflow."""
    ties = sum(1 for x, s, _ in CASES if 0 < s < 62 and x % (1 << s) == 1 << (s - 1))
    sat_hi = sum(1 for c in CASES if ref_shift_round_sat(*c) == qmax(c[2]))
    sat_lo = sum(1 for c in CASES if ref_shift_round_sat(*c) == qmin(c[2]))
    left_overflow = sum(1 for x, s, b in CASES if s < 0 and x * 2 ** -s > qmax(b))
    assert ties > 100 and sat_hi > 100 and sat_lo > 100 and left_overflow > 50


# ------------------------------------------ the harness can fail (mutants)

def _mutant_half_down(x, s, bits):
    """Round-half-down: differs from the real rule on ties only."""
    if s <= 0:
        return shift_round_sat(x, s, bits)
    v = (x + (1 << (s - 1)) - 1) >> s
    return max(qmin(bits), min(qmax(bits), v))


def _mutant_half_even(x, s, bits):
    """Banker's rounding (what Python's round() and numpy's rint do)."""
    if s <= 0:
        return shift_round_sat(x, s, bits)
    v = round(Fraction(x, 1 << s))
    return max(qmin(bits), min(qmax(bits), v))


def _mutant_left_clip(x, s, bits):
    """Left shift that clips the multiplicand to the last exact value, so
    positive overflow comes out just below qmax instead of saturating."""
    if s >= 0:
        return shift_round_sat(x, s, bits)
    n = min(-s, bits)
    v = min(max(x, qmin(bits) >> n), qmax(bits) >> n) << n
    return max(qmin(bits), min(qmax(bits), v))


def _mutant_sat_off_by_one(x, s, bits):
    return max(qmin(bits) + 1, shift_round_sat(x, s, bits))


@pytest.mark.parametrize("mutant", [_mutant_half_down, _mutant_half_even,
                                    _mutant_left_clip, _mutant_sat_off_by_one])
def test_reference_comparison_catches_mutants(mutant):
    assert _mismatches(mutant, CASES), f"{mutant.__name__} went unnoticed"


def test_reference_itself_is_independent():
    # Spot values the reference must give, computed by hand.
    assert ref_shift_round_sat(5, 1, 16) == 3
    assert ref_shift_round_sat(-5, 1, 16) == -2
    assert ref_shift_round_sat(3, -2, 16) == 12
    assert ref_shift_round_sat(1, -70, 8) == 127
    assert ref_shift_round_sat(X_MIN, 70, 8) == 0


# ---------------------------------------------- quantize / dequantize

@pytest.mark.parametrize("fl", [-32, -7, -1, 0, 1, 8, 15, 31])
@pytest.mark.parametrize("bits", [8, 16, 32])
def test_quantize_dequantize_round_trip(fl, bits):
    rng = np.random.default_rng(1000 + 100 * bits + fl)
    lsb = 2.0 ** -fl
    # Values up to just inside the representable range.
    x = rng.uniform(qmin(bits) + 1, qmax(bits) - 1, size=5000) * lsb
    q = quantize(x, fl, bits)
    assert q.min() >= qmin(bits) and q.max() <= qmax(bits)
    err = np.abs(dequantize(q, fl) - x)
    assert err.max() <= lsb / 2
    # Integers on the grid come back unchanged.
    grid = rng.integers(qmin(bits), qmax(bits), size=1000, endpoint=True)
    assert np.array_equal(quantize(dequantize(grid, fl), fl, bits), grid)


def test_negative_fl():
    # fl = -4: the LSB is 16.
    assert quantize(1000.0, -4, 16) == 63    # 62.5 rounds up
    assert quantize(-1000.0, -4, 16) == -62  # -62.5 rounds up
    assert dequantize(63, -4) == 1008.0
    assert dequantize(-3, -32) == -3 * 2.0 ** 32


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_rejects_non_finite(bad):
    with pytest.raises(UzError):
        quantize(bad, 0, 16)
    with pytest.raises(UzError):
        quantize(np.array([1.0, bad, 2.0]), 4, 16)


@pytest.mark.parametrize("fl", [arith.FL_MIN - 1, arith.FL_MAX + 1, 100, -1000, 1.5])
def test_check_fl_rejects(fl):
    with pytest.raises(UzError, match=re.escape(str(fl))):
        check_fl(fl)
    with pytest.raises(UzError, match="bias fl"):
        check_fl(fl, "bias fl")


def test_check_fl_accepts_range():
    for fl in range(arith.FL_MIN, arith.FL_MAX + 1):
        assert check_fl(fl) == fl
    assert type(check_fl(np.int64(3))) is int


@pytest.mark.parametrize("bits", [1, 0, 63, 64])
def test_illegal_widths_rejected(bits):
    with pytest.raises(UzError, match=str(bits)):
        shift_round_sat(1, 0, bits)
    with pytest.raises(UzError):
        quantize(1.0, 0, bits)


def test_relu_and_bits_for_magnitude():
    assert arith.relu(-3) == 0 and arith.relu(4) == 4
    assert arith.relu(np.array([-1, 0, 2])).tolist() == [0, 0, 2]
    assert arith.bits_for_magnitude(0) == 2
    assert arith.bits_for_magnitude(127) == 8
    assert arith.bits_for_magnitude(128) == 9
    assert arith.bits_for_magnitude(2 ** 47) == 49
    with pytest.raises(ValueError):
        arith.bits_for_magnitude(-1)
