"""The one definition of uz's fixed-point arithmetic.

Every number the engine touches is a signed two's-complement integer ``q`` of
``bits`` bits standing for the real value ``q * 2**-fl`` (``fl`` is the
fractional length and may be negative). The RTL, the golden model and the
testbench all follow the functions in this module; docs/arithmetic.md states
the same rules in prose. Anything that rounds, saturates or shifts calls into
here: there is no second copy.

Rules:

* Rounding is round-half-up: add half an LSB of the result, then shift right
  arithmetically (floor). Ties go towards +infinity (2.5 -> 3, -2.5 -> -2).
  In hardware this is one adder and a wire shift; the adder is one bit wider
  than its operand so the rounding constant can never wrap.
* Saturation clamps to [-2**(bits-1), 2**(bits-1) - 1].
* A shift amount ``s`` is a signed *right* shift: ``s > 0`` divides by 2**s
  with rounding, ``s < 0`` multiplies by 2**-s (exact, then saturated),
  ``s == 0`` only saturates.
* The accumulator never saturates or wraps in a legal program: the compiler
  proves, from the actual weights and the worst-case inputs, that every
  partial sum fits in the accumulator and rejects the layer otherwise.

All functions accept Python ints or numpy integer arrays and return int64
arrays (or Python ints for int inputs). Widths up to 62 bits are supported,
so int64 never overflows inside them.
"""
from __future__ import annotations

import numpy as np

from .errors import UzError

#: Legal fractional lengths. Six bits signed, as the compiler stores them.
FL_MIN = -32
FL_MAX = 31
#: Widest value these functions handle without int64 overflow.
MAX_BITS = 62


def _check_bits(bits: int) -> None:
    if not 2 <= bits <= MAX_BITS:
        raise UzError(f"bit width {bits} outside the supported range 2..{MAX_BITS}")


def check_fl(fl: int, what: str = "fractional length") -> int:
    """Return ``fl`` if it is a legal fractional length, else raise naming it."""
    if int(fl) != fl or not FL_MIN <= fl <= FL_MAX:
        raise UzError(f"{what} {fl} out of range [{FL_MIN}, {FL_MAX}]")
    return int(fl)


def qmin(bits: int) -> int:
    return -(1 << (bits - 1))


def qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def _wrap(x, like):
    """Return a Python int for scalar input, an int64 array otherwise."""
    if np.isscalar(like) and not isinstance(like, np.ndarray):
        return int(x)
    return x


def saturate(x, bits: int):
    """Clamp to the signed range of ``bits`` bits."""
    _check_bits(bits)
    return _wrap(np.clip(np.asarray(x, dtype=np.int64), qmin(bits), qmax(bits)), x)


def shift_round_sat(x, rshift: int, bits: int):
    """THE shift: signed right shift with round-half-up, then saturate to ``bits``.

    ``rshift > 0``: ``floor((x + 2**(rshift-1)) / 2**rshift)``.
    ``rshift < 0``: ``x * 2**-rshift``, saturated (the product is never formed
    wider than needed: values that would leave the range saturate directly).
    """
    _check_bits(bits)
    rshift = int(rshift)
    v = np.asarray(x, dtype=np.int64)
    if rshift > 0:
        # A shift of 62 or more leaves only the sign of a 62-bit value, and the
        # rounding constant then makes every input round to 0: cap it there.
        s = min(rshift, MAX_BITS)
        v = (v + (np.int64(1) << np.int64(s - 1))) >> np.int64(s)
        out = np.clip(v, qmin(bits), qmax(bits))
    elif rshift < 0:
        n = min(-rshift, bits)  # beyond `bits` every non-zero value saturates
        lo, hi = qmin(bits), qmax(bits)
        # Clip one step beyond the last in-range multiplicand so overflowing
        # values still land outside [lo, hi] after the shift and saturate,
        # while the product stays inside int64.
        v = np.clip(v, (lo >> n) - 1, (hi >> n) + 1) << np.int64(n)
        out = np.clip(v, lo, hi)
    else:
        out = np.clip(v, qmin(bits), qmax(bits))
    return _wrap(out, x)


def quantize(x, fl: int, bits: int):
    """Float -> fixed point: round-half-up of ``x * 2**fl``, then saturate."""
    _check_bits(bits)
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise UzError("cannot quantize NaN or infinite values")
    scaled = a * np.ldexp(1.0, int(fl))  # a power-of-two scale: exact
    low = np.floor(scaled)
    # Compare the (exact) fraction with 1/2: adding 0.5 first rounds in float
    # (0.49999999999999994 + 0.5 == 1.0, and above 2**52 ties go to even).
    with np.errstate(invalid="ignore"):  # inf - inf: saturates below anyway
        rounded = low + (scaled - low >= 0.5)
    # Saturate in int64: qmax(bits) for bits > 53 is not a float64 value.
    rounded = np.clip(rounded, -2.0 ** 62, 2.0 ** 62).astype(np.int64)
    out = np.clip(rounded, qmin(bits), qmax(bits))
    return _wrap(out, x)


def dequantize(q, fl: int):
    """Fixed point -> float (exact in float64 for the widths used here)."""
    return np.asarray(q, dtype=np.float64) * np.ldexp(1.0, -int(fl))


def relu(x):
    """ReLU on integers (exact at any fractional length)."""
    return _wrap(np.maximum(np.asarray(x, dtype=np.int64), 0), x)


def bits_for_magnitude(m: int) -> int:
    """Smallest signed width that holds every value in [-m, m]."""
    m = int(m)
    if m < 0:
        raise ValueError("magnitude must be non-negative")
    return max(2, m.bit_length() + 1)


# ------------------------------------------------------------ graph layers
#
# The rules below serve residual networks and the pooling/activation layers
# of MobileNet/Inception-style graphs. Each one is stated again, with its
# reasoning, in docs/arithmetic.md.

def align_to_acc(r, res_shift: int, acc_bits: int):
    """Bring a residual operand onto the accumulator's grid.

    ``res_shift = fl_res - fl_acc`` is a signed right shift, the convention of
    :func:`shift_round_sat`: negative means a left shift by ``fl_acc - fl_res``
    (exact), positive a right shift with round-half-up. Either way the result
    saturates to ``acc_bits``. It *is* shift_round_sat, given its own name so
    callers say what the shift is for.
    """
    return shift_round_sat(r, res_shift, acc_bits)


def add_sat(a, b, bits: int):
    """``saturate(a + b, bits)``: the residual add into the accumulator.
    Operands are values of at most 62 bits (what every function here returns),
    so their int64 sum never wraps before the clamp."""
    _check_bits(bits)
    s = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    return _wrap(np.clip(s, qmin(bits), qmax(bits)), a if np.ndim(a) >= np.ndim(b) else b)


def clip(y, lo_q: int, hi_q: int):
    """Clamp integers to ``[lo_q, hi_q]`` (Clip / ReLU6 after the data shift)."""
    lo_q, hi_q = int(lo_q), int(hi_q)
    if lo_q > hi_q:
        raise UzError(f"clip bounds reversed: {lo_q} > {hi_q}")
    return _wrap(np.clip(np.asarray(y, dtype=np.int64), lo_q, hi_q), y)


def clip_bounds(lo: float, hi: float, fl: int, bits: int) -> tuple[int, int]:
    """The integer bounds of a float Clip on a tensor at ``fl``: each bound is
    quantized like any value (round half up, then saturate), so ReLU6 at
    fl_out is ``clip(y, 0, quantize(6.0, fl_out, bits))``."""
    return quantize(float(lo), fl, bits), quantize(float(hi), fl, bits)


#: Largest averaging divisor the hardware's divider covers (64 x 64 cells).
AVG_N_MAX = 64 * 64


def avg_divide(s, n, data_bits: int):
    """``round_half_up(s / n)`` for window sums of ``data_bits`` inputs, as the
    hardware computes it: ``floor((2s + n) / (2n))`` in exact integers (uz_post
    divides by long division; docs/arithmetic.md). ``s`` and ``n`` broadcast;
    ``n`` is the divisor per output position. The result lies within the
    inputs' range, so nothing saturates.
    """
    _check_bits(data_bits)
    s_arr = np.asarray(s, dtype=np.int64)
    n_arr = np.asarray(n, dtype=np.int64)
    if n_arr.size and n_arr.min() < 1:
        raise UzError("averaging divisor must be at least 1")
    # The hardware's widths cover the sums n inputs can reach, no more.
    if np.any(s_arr < n_arr * qmin(data_bits)) or np.any(s_arr > n_arr * qmax(data_bits)):
        raise UzError(f"window sum outside the range of n {data_bits}-bit inputs")
    out = np.floor_divide(2 * s_arr + n_arr, 2 * n_arr)
    return _wrap(out, s if np.ndim(s) >= np.ndim(n) else n)
