"""On-the-fly weights generation with OVSF codes (after unzipFPGA).

A layer's weights are not stored. Each output channel's weights, flattened in
(ci, ky, kx) order and zero-padded to a multiple of ``L``, are cut into blocks
of ``L``; each block is stored as ``n_codes = rho * L`` fixed-point
coefficients ``alpha`` on a per-layer subset of the ``L`` orthogonal OVSF
(Walsh-Hadamard) codes of length ``L``. The engine rebuilds a block with
additions and subtractions only, then one shift of ``arith.shift_round_sat``.
docs/ovsf.md states the same rules in prose.

Code ``j``, element ``i``: ``+1`` if ``popcount(i & j)`` is even, else ``-1``
(Sylvester / natural Hadamard order). The hardware derives each sign from the
two indices, so no code table is stored anywhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import arith
from .quant import best_fl  # the one fl rule, shared with weights and activations
from .errors import UzError

#: Legal OVSF block lengths (EngineConfig.ovsf_len uses the same range).
L_MIN = 2
L_MAX = 32


def _check_L(L: int) -> int:
    if int(L) != L or not L_MIN <= L <= L_MAX or (int(L) & (int(L) - 1)):
        raise UzError(f"OVSF block length L={L} must be a power of two in {L_MIN}..{L_MAX}")
    return int(L)


def _log2(L: int) -> int:
    return int(L).bit_length() - 1


def _parity(v: np.ndarray) -> np.ndarray:
    """Parity of the popcount of each element (elements below 2 * L_MAX)."""
    p = np.zeros_like(v)
    for b in range(L_MAX.bit_length()):
        p ^= (v >> b) & 1
    return p


# --------------------------------------------------------------------------
# Codes
# --------------------------------------------------------------------------

def code(j: int, L: int) -> np.ndarray:
    """OVSF code ``j`` of length ``L`` as an int64 vector of +1/-1."""
    L = _check_L(L)
    if int(j) != j or not 0 <= j < L:
        raise UzError(f"OVSF code index {j} outside 0..{L - 1}")
    i = np.arange(L, dtype=np.int64)
    return 1 - 2 * _parity(i & np.int64(j))


def code_matrix(L: int) -> np.ndarray:
    """All ``L`` codes as rows of an (L, L) int64 matrix; ``C @ C.T == L * I``."""
    L = _check_L(L)
    i = np.arange(L, dtype=np.int64)
    return 1 - 2 * _parity(i[:, None] & i[None, :])


def codes_mask(codes) -> int:
    """Bit mask of a code list: bit ``j`` set when code ``j`` is kept."""
    m = 0
    for j in codes:
        m |= 1 << int(j)
    return m


def n_codes_for(rho, L: int) -> int:
    """Number of codes kept for ratio ``rho``: ``rho * L``, a whole number in 1..L."""
    L = _check_L(L)
    try:
        # limit_denominator: a float such as 0.1 means 1/10, not its binary approximation.
        n = Fraction(rho).limit_denominator(1 << 20) * L
    except (TypeError, ValueError, OverflowError):
        raise UzError(f"OVSF ratio rho={rho!r} is not a number") from None
    if n.denominator != 1 or not 1 <= n <= L:
        raise UzError(
            f"OVSF ratio rho={rho} with L={L} gives rho*L={float(n):g} codes; "
            f"it must be a whole number in 1..{L}")
    return int(n)


# --------------------------------------------------------------------------
# Blocking
# --------------------------------------------------------------------------

def to_blocks(w_q: np.ndarray, L: int) -> np.ndarray:
    """(Cout, ...) weights -> (Cout, nblocks, L) blocks.

    Each output channel is flattened row-major ((ci, ky, kx) for conv weights)
    and zero-padded at the end to a multiple of ``L``.
    """
    L = _check_L(L)
    w = np.asarray(w_q)
    if w.ndim < 2:
        raise UzError(f"weights must have an output-channel axis and at least one more, got shape {w.shape}")
    flat = w.reshape(w.shape[0], -1)
    n = flat.shape[1]
    nblocks = -(-n // L)
    out = np.zeros((w.shape[0], nblocks * L), dtype=np.int64)
    out[:, :n] = flat
    return out.reshape(w.shape[0], nblocks, L)


def from_blocks(blocks: np.ndarray, shape) -> np.ndarray:
    """(Cout, nblocks, L) blocks -> weights of ``shape``, padding dropped."""
    b = np.asarray(blocks)
    shape = tuple(int(s) for s in shape)
    per_out = math.prod(shape[1:])
    if b.ndim != 3 or b.shape[0] != shape[0] or b.shape[1] * b.shape[2] < per_out \
            or b.shape[1] != -(-per_out // b.shape[2]):
        raise UzError(f"blocks of shape {b.shape} do not match weights of shape {shape}")
    return b.reshape(shape[0], -1)[:, :per_out].reshape(shape).astype(np.int64)


# --------------------------------------------------------------------------
# Fixed-point format of the coefficients
# --------------------------------------------------------------------------

def gen_acc_bits(alpha_bits: int, n_codes: int) -> int:
    """Generator accumulator width that can never overflow.

    ``|acc| <= n_codes * 2**(alpha_bits-1)``, which fits in
    ``alpha_bits + ceil(log2(n_codes))`` signed bits.
    """
    if n_codes < 1:
        raise UzError(f"n_codes must be at least 1, not {n_codes}")
    return int(alpha_bits) + (int(n_codes) - 1).bit_length()


def gen_shift_bounds(L: int, alpha_bits: int, data_bits: int) -> tuple:
    """The generator shifts ``(lo, hi)`` an engine of block length ``L`` covers.

    hi = log2 L: at ``fl_alpha = fl_w + log2 L`` the alphas are exact (integer
    sums of +-weights over L), so a larger fl_alpha adds nothing and
    :func:`decompose` never chooses one. lo: an alpha is an average of
    +-weights, so ``max|alpha| <= max|w|`` and the fl at which the alphas just
    fit is at least ``fl_w + alpha_bits - data_bits``; ``best_fl`` tries down
    to two below it. The same two below also hold the testbench's retuned
    shifts 0, -1, -2, which provoke generator saturation. The engine's
    generator shifts over this range only (isa.gen_shift_range, BAD_SHIFT).
    """
    L = _check_L(L)
    return min(0, int(alpha_bits) - int(data_bits)) - 2, _log2(L)


# --------------------------------------------------------------------------
# Decomposition (compiler side)
# --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class OvsfLayer:
    """One layer's weights in OVSF form, exactly as the engine reads them."""

    #: Kept code indices, ascending (the order of alphas within a block).
    codes: tuple
    #: Bit ``j`` set when code ``j`` is kept.
    mask: int
    n_codes: int
    L: int
    #: Fractional length of the alphas (one per layer).
    fl_alpha: int
    #: (Cout, nblocks, n_codes) int64 coefficients.
    alpha_q: np.ndarray
    #: Signed right shift from the generator accumulator to weights: fl_alpha - fl_w.
    gen_shift: int
    #: Shape of the weights this layer regenerates.
    shape: tuple


def _alpha_int(blocks: np.ndarray, L: int) -> np.ndarray:
    """Exact integer projections ``sum_i w_q[i] * c_j[i]`` for every code.

    float64 matmul is exact here: with data_bits <= 48 and L <= 32 every
    partial sum is below 2**52 in magnitude.
    """
    c = code_matrix(L).astype(np.float64)
    return np.rint(blocks.astype(np.float64) @ c.T).astype(np.int64)


def _energy(alpha_int: np.ndarray) -> list:
    """Per-code sum of squares over all blocks, as exact Python ints."""
    flat = alpha_int.reshape(-1, alpha_int.shape[-1])
    m = int(np.max(np.abs(flat))) if flat.size else 0
    if m * m * max(1, flat.shape[0]) < (1 << 63):
        return [int(e) for e in np.sum(flat * flat, axis=0)]
    # Very large layers: exact sums in Python ints, one code at a time.
    return [sum(int(a) * int(a) for a in flat[:, j]) for j in range(flat.shape[1])]


def select_codes(alpha_int: np.ndarray, n_codes: int) -> tuple:
    """The ``n_codes`` codes with the most energy over the layer, ascending.

    Energy of code ``j`` is ``sum over (o, b) of alpha[o, b, j]**2``; ties go to
    the lower index. Computed on exact integers so the choice never depends on
    floating-point summation order.
    """
    energy = _energy(alpha_int)
    order = sorted(range(len(energy)), key=lambda j: (-energy[j], j))
    return tuple(sorted(order[:n_codes]))


def decompose(w_q: np.ndarray, fl_w: int, rho, L: int, alpha_bits: int, data_bits: int) -> OvsfLayer:
    """Integer weights (Cout, Cin, K, K) at ``fl_w`` -> OvsfLayer.

    ``alpha_real[o,b,j] = (1/L) * sum_i w_real[o,b,i] * c_j[i]`` with
    ``w_real = w_q * 2**-fl_w``. One code list per layer (top energy). The
    alpha fractional length minimises the summed absolute quantization error
    of the kept alphas, except that rho == 1 with
    ``alpha_bits >= data_bits + log2(L)`` uses ``fl_w + log2(L)``, which makes
    the alphas the exact integer transform and generation lossless. An
    all-zero layer also uses ``fl_w + log2(L)``.

    fl_alpha is at most ``fl_w + log2(L)``: every larger fl holds the alphas
    exactly too (``best_fl`` picks one when the alphas' range allows), and the
    generated weights are the same at ``fl_w + log2(L)``, so gen_shift stays
    within :func:`gen_shift_bounds`, the range the engine's generator covers.
    """
    L = _check_L(L)
    lg = _log2(L)
    fl_w = arith.check_fl(fl_w, "weight fractional length")
    if not 2 <= data_bits <= 48:
        raise UzError(f"data_bits {data_bits} outside 2..48")
    if not 2 <= alpha_bits <= arith.MAX_BITS - lg:
        raise UzError(f"alpha_bits {alpha_bits} outside 2..{arith.MAX_BITS - lg}")
    n_codes = n_codes_for(rho, L)
    w = np.asarray(w_q)
    if not np.issubdtype(w.dtype, np.integer):
        raise UzError(f"OVSF decomposition needs integer weights, got dtype {w.dtype}")
    w = w.astype(np.int64)
    if w.size and (w.min() < arith.qmin(data_bits) or w.max() > arith.qmax(data_bits)):
        raise UzError(f"weights do not fit in {data_bits} bits")

    blocks = to_blocks(w, L)
    a_int = _alpha_int(blocks, L)  # alpha_real = a_int * 2**-(fl_w + lg)
    codes = select_codes(a_int, n_codes)
    kept = a_int[..., list(codes)]

    exact = n_codes == L and alpha_bits >= data_bits + lg
    if exact or not np.any(kept):
        fl_alpha = fl_w + lg
    else:
        fl_alpha = best_fl(arith.dequantize(kept, fl_w + lg), alpha_bits)
    lo, hi = gen_shift_bounds(L, alpha_bits, data_bits)
    # Lossless: above fl_w + lg the alphas are a_int * 2**k exactly, and the
    # generator's sum shifted k further rounds to the same weights.
    fl_alpha = min(fl_alpha, fl_w + hi)
    if fl_alpha - fl_w < lo:
        # max|alpha| <= max|w| keeps best_fl's choice above this bound
        raise UzError(f"alpha fractional length {fl_alpha} gives gen_shift={fl_alpha - fl_w} below the "
                      f"generator's lowest shift {lo} (alpha_bits={alpha_bits}, data_bits={data_bits})")
    fl_alpha = arith.check_fl(fl_alpha, "alpha fractional length")
    # Scaling by a power of two is exact in float64, so this is the exact
    # round-half-up of alpha_real at fl_alpha.
    alpha_q = arith.quantize(arith.dequantize(kept, fl_w + lg - fl_alpha), 0, alpha_bits)
    return OvsfLayer(codes=codes, mask=codes_mask(codes), n_codes=n_codes, L=L,
                     fl_alpha=fl_alpha, alpha_q=np.asarray(alpha_q, dtype=np.int64),
                     gen_shift=fl_alpha - fl_w, shape=tuple(int(s) for s in w.shape))


# --------------------------------------------------------------------------
# Generation (engine side)
# --------------------------------------------------------------------------

def _check_codes(codes, L: int, n: int) -> list:
    codes = [int(j) for j in codes]
    if len(codes) != n:
        raise UzError(f"{len(codes)} codes given for {n} alphas per block")
    if any(not 0 <= j < L for j in codes):
        raise UzError(f"OVSF code indices {codes} outside 0..{L - 1}")
    return codes


def generate(alpha_q, codes, L: int, gen_shift: int, data_bits: int) -> np.ndarray:
    """Alphas (..., n_codes) -> weight blocks (..., L), int64.

    ``acc_i = sum_j sign(c_j[i]) * alpha_q[j]`` exactly, then
    ``arith.shift_round_sat(acc, gen_shift, data_bits)``. Works on one block
    or a whole layer at once.
    """
    L = _check_L(L)
    a = np.asarray(alpha_q, dtype=np.int64)
    codes = _check_codes(codes, L, a.shape[-1] if a.ndim else -1)
    bound = max(-int(a.min()), int(a.max())) * len(codes) if a.size else 0
    if bound >= 1 << arith.MAX_BITS:
        raise UzError("OVSF alphas too large: the generator sum would exceed 62 bits")
    csel = code_matrix(L)[codes]  # (n_codes, L)
    acc = np.matmul(a, csel)  # int64 matmul: exact, bounded above
    return np.asarray(arith.shift_round_sat(acc, gen_shift, data_bits), dtype=np.int64)


def generate_reference(alpha_q, codes, L: int, gen_shift: int, data_bits: int) -> np.ndarray:
    """Scalar reference of :func:`generate`: Python ints, add/sub only, the
    sign taken from the indices as the hardware does."""
    L = _check_L(L)
    a = np.asarray(alpha_q, dtype=np.int64)
    codes = _check_codes(codes, L, a.shape[-1] if a.ndim else -1)
    flat = a.reshape(-1, len(codes))
    out = np.zeros((flat.shape[0], L), dtype=np.int64)
    for r in range(flat.shape[0]):
        row = [int(x) for x in flat[r]]
        for i in range(L):
            acc = 0
            for k, j in enumerate(codes):
                if bin(i & j).count("1") % 2 == 0:
                    acc = acc + row[k]
                else:
                    acc = acc - row[k]
            out[r, i] = arith.shift_round_sat(acc, gen_shift, data_bits)
    return out.reshape(a.shape[:-1] + (L,))


def generate_layer(layer: OvsfLayer, data_bits: int) -> np.ndarray:
    """All blocks of a layer, (Cout, nblocks, L) int64."""
    return generate(layer.alpha_q, layer.codes, layer.L, layer.gen_shift, data_bits)


def reconstruct(layer: OvsfLayer, data_bits: int) -> np.ndarray:
    """The weights the engine generates, shaped like the original (int64)."""
    return from_blocks(generate_layer(layer, data_bits), layer.shape)


def relative_error(w_q, w_gen) -> float:
    """``||w_q - w_gen||_2 / ||w_q||_2``; 0 when both are zero, inf when only w_q is."""
    a = np.asarray(w_q, dtype=np.float64)
    b = np.asarray(w_gen, dtype=np.float64)
    if a.shape != b.shape:
        raise UzError(f"shapes differ: {a.shape} vs {b.shape}")
    num = float(np.linalg.norm((a - b).ravel()))
    den = float(np.linalg.norm(a.ravel()))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den
