"""Dynamic-precision fractional-length search (after Qiu et al., FPGA 2016).

Every rule here picks a fractional length ``fl`` for a fixed bit width by
minimising the sum of absolute errors between float values and their
quantized-then-dequantized copies. Weights and biases are searched directly
on their values; activations are chosen greedily layer by layer by the
compiler (golden/compiler.py), which calls ``best_fl_against`` with the
quantized pipeline's output and the float network's output.
"""
from __future__ import annotations

import math

import numpy as np

from . import arith
from .errors import UzError


#: Candidates tried around the fl at which the largest magnitude just fits: a
#: smaller fl only loses resolution (two below covers rounding corner cases),
#: a larger one saturates rare outliers in exchange for resolution.
FL_BELOW = 2
FL_ABOVE = 8


def range_fl(max_abs: float, bits: int) -> int:
    """The largest fl at which ``max_abs`` still fits in ``bits`` bits (unclipped)."""
    return bits - 1 - math.ceil(math.log2(max_abs))


def candidate_fls(max_abs: float, bits: int) -> range:
    """Fractional lengths worth trying, clipped to the legal range (when the
    whole window lies outside it, its nearest legal end)."""
    if max_abs <= 0 or not math.isfinite(max_abs):
        return range(0, 1)
    fit = range_fl(max_abs, bits)
    lo = max(arith.FL_MIN, fit - FL_BELOW)
    hi = min(arith.FL_MAX, fit + FL_ABOVE)
    if lo > hi:
        end = arith.FL_MAX if lo > arith.FL_MAX else arith.FL_MIN
        return range(end, end + 1)
    return range(lo, hi + 1)


def quant_error(values, fl: int, bits: int) -> float:
    v = np.asarray(values, dtype=np.float64)
    return float(np.abs(v - arith.dequantize(arith.quantize(v, fl, bits), fl)).sum())


def best_fl(values, bits: int) -> int:
    """fl minimising sum |x - Q(x)| over ``values``; ties go to the smaller fl
    (more headroom). All-zero input returns 0."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)):
        raise UzError("cannot choose a fractional length for NaN or infinite values")
    m = float(np.abs(v).max()) if v.size else 0.0
    if m == 0.0:
        return 0
    best, best_err = None, math.inf
    for fl in candidate_fls(m, bits):
        err = quant_error(v, fl, bits)
        if err < best_err:
            best, best_err = fl, err
    return int(best)


def best_fl_against(float_ref, make_q, candidates) -> int:
    """Greedy activation rule: ``make_q(fl)`` returns the quantized pipeline's
    output (as integers at that fl) for candidate ``fl``; pick the fl whose
    dequantized output is closest (sum |.|) to ``float_ref``."""
    ref = np.asarray(float_ref, dtype=np.float64)
    best, best_err = None, math.inf
    for fl in candidates:
        err = float(np.abs(ref - arith.dequantize(make_q(fl), fl)).sum())
        if err < best_err:
            best, best_err = fl, err
    return int(best)
