"""OVSF weights generation: codes, blocking, decomposition and the bit-exact
generator the engine implements."""
from fractions import Fraction

import numpy as np
import pytest

from golden import arith, ovsf
from golden.errors import UzError


def sylvester(L):
    h = np.array([[1]], dtype=np.int64)
    while h.shape[0] < L:
        h = np.block([[h, h], [h, -h]])
    return h


def random_weights(rng, shape, bits):
    return rng.integers(arith.qmin(bits), arith.qmax(bits) + 1, size=shape, dtype=np.int64)


def smooth_weights(rng, shape, bits=16):
    """Per-channel random walk plus a little noise: energy concentrates in a
    few codes, as in trained filters."""
    cout = shape[0]
    n = int(np.prod(shape[1:]))
    walk = np.cumsum(rng.normal(size=(cout, n)), axis=1) + 0.3 * rng.normal(size=(cout, n))
    real = walk / np.max(np.abs(walk))
    fl = bits - 1
    return arith.quantize(real, fl, bits).reshape(shape), fl


# ---------------------------------------------------------------- codes

@pytest.mark.parametrize("L", [2, 4, 8, 16, 32])
def test_codes_match_sylvester_and_are_orthogonal(L):
    c = ovsf.code_matrix(L)
    assert c.dtype == np.int64
    assert np.array_equal(c, sylvester(L))
    assert np.array_equal(c @ c.T, L * np.eye(L, dtype=np.int64))
    for j in range(L):
        assert np.array_equal(ovsf.code(j, L), c[j])


@pytest.mark.parametrize("L", [0, 1, 3, 12, 64])
def test_bad_block_length_rejected(L):
    with pytest.raises(UzError, match="L="):
        ovsf.code_matrix(L)


def test_codes_mask():
    assert ovsf.codes_mask((0, 3, 5)) == 0b101001
    assert ovsf.codes_mask(()) == 0


# ---------------------------------------------------------------- blocking

@pytest.mark.parametrize("shape,L", [((4, 3, 3, 3), 16), ((2, 5, 1, 1), 8), ((3, 16, 1, 1), 16), ((1, 1, 1, 1), 32)])
def test_blocks_round_trip_with_padding(shape, L):
    rng = np.random.default_rng(1)
    w = random_weights(rng, shape, 16)
    b = ovsf.to_blocks(w, L)
    per_out = int(np.prod(shape[1:]))
    nblocks = -(-per_out // L)
    assert b.shape == (shape[0], nblocks, L)
    flat = b.reshape(shape[0], -1)
    assert np.array_equal(flat[:, :per_out], w.reshape(shape[0], -1))  # (ci, ky, kx) order
    assert not flat[:, per_out:].any()  # zero padding at the end
    assert np.array_equal(ovsf.from_blocks(b, shape), w)


def test_from_blocks_shape_mismatch():
    b = np.zeros((2, 3, 16), dtype=np.int64)
    assert ovsf.from_blocks(b, (2, 4, 3, 3)).shape == (2, 4, 3, 3)  # 36 per output: 3 blocks
    with pytest.raises(UzError):
        ovsf.from_blocks(b, (2, 4, 4, 4))  # 64 per output needs 4 blocks
    with pytest.raises(UzError):
        ovsf.from_blocks(b, (3, 4, 3, 3))


# ---------------------------------------------------------------- ratio

@pytest.mark.parametrize("rho", [0.3, 0, 1.5, -0.25, Fraction(1, 32), float("nan"), "x"])
def test_bad_rho_rejected(rho):
    w = np.ones((2, 4, 3, 3), dtype=np.int64)
    with pytest.raises(UzError, match="rho"):
        ovsf.decompose(w, 8, rho, 16, 16, 16)


@pytest.mark.parametrize("rho,n", [(1 / 16, 1), (0.125, 2), (Fraction(3, 16), 3), (0.5, 8), (1, 16)])
def test_rho_to_codes(rho, n):
    assert ovsf.n_codes_for(rho, 16) == n


# ---------------------------------------------------------------- exactness

@pytest.mark.parametrize("data_bits,L,alpha_bits", [(8, 8, 16), (8, 16, 12), (16, 16, 20), (16, 32, 21)])
def test_rho1_exact_with_wide_alphas(data_bits, L, alpha_bits):
    rng = np.random.default_rng(data_bits * 100 + L)
    w = random_weights(rng, (6, 5, 3, 3), data_bits)
    # Full-range corner cases: every weight at the negative and positive limits.
    w[0] = arith.qmin(data_bits)
    w[1] = arith.qmax(data_bits)
    fl_w = 7
    layer = ovsf.decompose(w, fl_w, 1, L, alpha_bits, data_bits)
    lg = L.bit_length() - 1
    assert layer.n_codes == L and layer.codes == tuple(range(L))
    assert layer.mask == (1 << L) - 1
    assert layer.fl_alpha == fl_w + lg and layer.gen_shift == lg
    # The alphas are the exact integer Hadamard transform.
    assert np.array_equal(layer.alpha_q, ovsf.to_blocks(w, L) @ ovsf.code_matrix(L).T)
    assert int(np.max(np.abs(layer.alpha_q))) <= 1 << (alpha_bits - 1)
    w_gen = ovsf.reconstruct(layer, data_bits)
    assert w_gen.dtype == np.int64
    assert np.array_equal(w_gen, w)
    assert ovsf.relative_error(w, w_gen) == 0.0


def test_rho1_default_alpha_bits_is_lossy_but_close():
    # alpha_bits == data_bits cannot hold the log2(L)-bit wider transform.
    rng = np.random.default_rng(7)
    w = random_weights(rng, (8, 8, 3, 3), 16)
    layer = ovsf.decompose(w, 15, 1, 16, 16, 16)
    w_gen = ovsf.reconstruct(layer, 16)
    err = ovsf.relative_error(w, w_gen)
    assert 0 < err < 1e-3
    assert not np.array_equal(w_gen, w)


# ---------------------------------------------------------------- error vs rho

def test_error_strictly_decreases_with_rho():
    rng = np.random.default_rng(3)
    w, fl_w = smooth_weights(rng, (8, 16, 3, 3))
    errs = []
    for rho in (1 / 16, 1 / 8, 1 / 4, 1 / 2):
        layer = ovsf.decompose(w, fl_w, rho, 16, 16, 16)
        assert layer.alpha_q.shape == (8, 9, layer.n_codes)
        assert int(np.max(np.abs(layer.alpha_q))) <= arith.qmax(16) + 1
        errs.append(ovsf.relative_error(w, ovsf.reconstruct(layer, 16)))
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.2


# ---------------------------------------------------------------- selection

def test_selection_keeps_the_codes_the_weights_are_made_of():
    rng = np.random.default_rng(5)
    L, cout, nblocks = 16, 4, 6
    c = ovsf.code_matrix(L)
    a3 = rng.integers(-200, 201, size=(cout, nblocks, 1))
    a5 = rng.integers(-200, 201, size=(cout, nblocks, 1))
    blocks = a3 * c[3] + a5 * c[5]
    w = ovsf.from_blocks(blocks, (cout, nblocks * L // 4, 2, 2))
    layer = ovsf.decompose(w, 4, Fraction(2, 16), L, 16, 16)
    assert layer.codes == (3, 5)
    assert layer.mask == (1 << 3) | (1 << 5)
    # Two codes carry all the energy, so the generated weights are exact.
    assert np.array_equal(ovsf.reconstruct(layer, 16), w)


def test_selection_ties_go_to_lower_index_and_result_is_ascending():
    a = np.zeros((1, 2, 8), dtype=np.int64)
    a[0, 0, [6, 1, 4]] = 10
    a[0, 1, 2] = 9
    assert ovsf.select_codes(a, 2) == (1, 4)
    assert ovsf.select_codes(a, 4) == (1, 2, 4, 6)


def test_all_zero_layer():
    w = np.zeros((2, 3, 3, 3), dtype=np.int64)
    layer = ovsf.decompose(w, 10, 0.25, 16, 16, 16)
    assert layer.fl_alpha == 14 and layer.gen_shift == 4
    assert not layer.alpha_q.any()
    assert not ovsf.reconstruct(layer, 16).any()
    assert ovsf.relative_error(w, w) == 0.0


# ---------------------------------------------------------------- generator shift range

BIT_PAIRS = [(16, 16), (16, 8), (8, 8), (8, 16)]   # (data_bits, alpha_bits)


def extreme_weights(rng, shape, bits):
    """Weight distributions at the corners of the alphas' range."""
    lo, hi = arith.qmin(bits), arith.qmax(bits)
    n = int(np.prod(shape))
    out = {}
    for v in (hi, lo, 1, -1):
        w = np.zeros(n, dtype=np.int64)
        w[int(rng.integers(n))] = v
        out[f"single_{v}"] = w.reshape(shape)
        out[f"all_{v}"] = np.full(shape, v, dtype=np.int64)
    c = rng.standard_cauchy(n)
    out["cauchy"] = np.clip(np.rint(c / np.max(np.abs(c)) * hi), lo, hi).astype(np.int64).reshape(shape)
    out["cauchy_small"] = np.clip(np.rint(c), lo, hi).astype(np.int64).reshape(shape)
    sparse = random_weights(rng, (n,), bits)
    sparse[rng.random(n) < 0.95] = 0
    out["sparse"] = sparse.reshape(shape)
    out["uniform"] = random_weights(rng, shape, bits)
    out["alternating"] = np.where(np.arange(n) % 2, lo, hi).astype(np.int64).reshape(shape)
    return out


@pytest.mark.parametrize("data_bits,alpha_bits", BIT_PAIRS)
@pytest.mark.parametrize("L", [2, 4, 8, 16, 32])
def test_gen_shift_within_the_generators_range(data_bits, alpha_bits, L):
    lo, hi = ovsf.gen_shift_bounds(L, alpha_bits, data_bits)
    rng = np.random.default_rng(data_bits * 1000 + alpha_bits * 100 + L)
    seen = set()
    for name, w in extreme_weights(rng, (3, 4, 3, 3), data_bits).items():
        for fl_w in (0, data_bits - 1, 20):
            for rho in (Fraction(1, L), Fraction(1, 2), 1):
                layer = ovsf.decompose(w, fl_w, rho, L, alpha_bits, data_bits)
                assert lo <= layer.gen_shift <= hi, (name, fl_w, rho, layer.gen_shift)
                seen.add(layer.gen_shift)
    assert hi in seen


def test_gen_shift_bounds():
    assert ovsf.gen_shift_bounds(16, 16, 16) == (-2, 4)
    assert ovsf.gen_shift_bounds(32, 8, 16) == (-10, 5)
    assert ovsf.gen_shift_bounds(2, 16, 8) == (-2, 1)
    with pytest.raises(UzError):
        ovsf.gen_shift_bounds(12, 16, 16)


def test_gen_shift_below_the_range_is_an_error(monkeypatch):
    # best_fl never goes there (max|alpha| <= max|w|); if it did, say so.
    monkeypatch.setattr(ovsf, "best_fl", lambda values, bits: -10)
    w = np.full((2, 16, 1, 1), 100, dtype=np.int64)
    with pytest.raises(UzError, match=r"gen_shift=-10 below the generator's lowest shift -2"):
        ovsf.decompose(w, 0, 0.5, 16, 16, 16)


def _unclamped(w, fl_w, rho, L, alpha_bits, data_bits):
    """decompose's weights with best_fl's fl_alpha as it comes, unclamped."""
    lg = L.bit_length() - 1
    a_int = ovsf._alpha_int(ovsf.to_blocks(w, L), L)
    codes = ovsf.select_codes(a_int, ovsf.n_codes_for(rho, L))
    kept = a_int[..., list(codes)]
    fl = ovsf.best_fl(arith.dequantize(kept, fl_w + lg), alpha_bits)
    alpha = arith.quantize(arith.dequantize(kept, fl_w + lg - fl), 0, alpha_bits)
    return fl, ovsf.from_blocks(ovsf.generate(alpha, codes, L, fl - fl_w, data_bits), w.shape)


@pytest.mark.parametrize("L", [2, 4, 8, 16, 32])
def test_clamped_fl_alpha_generates_the_same_weights(L):
    # 8-bit data, 16-bit alphas: best_fl's window lies above fl_w + log2 L,
    # where the alphas are exact; the clamp brings fl_alpha down to it.
    rng = np.random.default_rng(40 + L)
    clamped = 0
    weights = [w for _, w in sorted(extreme_weights(rng, (4, 4, 3, 3), 8).items())]
    weights += [smooth_weights(rng, (4, 4, 3, 3), 8)[0] for _ in range(3)]
    for w in weights:
        for rho in (Fraction(1, L), Fraction(1, 2)):
            for fl_w in (0, 7):
                layer = ovsf.decompose(w, fl_w, rho, L, 16, 8)
                fl, w_un = _unclamped(w, fl_w, rho, L, 16, 8)
                assert layer.fl_alpha == min(fl, fl_w + L.bit_length() - 1)
                clamped += fl != layer.fl_alpha
                assert np.array_equal(ovsf.reconstruct(layer, 8), w_un)
    assert clamped >= len(weights)


# ---------------------------------------------------------------- generator

@pytest.mark.parametrize("gen_shift", [-3, -1, 0, 1, 4, 5, 9])
def test_vectorised_generate_equals_reference(gen_shift):
    rng = np.random.default_rng(11 + gen_shift)
    L, data_bits = 16, 16
    codes = (0, 2, 3, 7, 9, 15)
    alpha = rng.integers(-(1 << 15), 1 << 15, size=(3, 5, len(codes)), dtype=np.int64)
    alpha[0, 0] = 1 << 15  # all at one extreme: saturates after a small shift
    alpha[0, 1] = -(1 << 15)
    alpha[1, 0] = 1 << 40  # huge: saturates whatever the shift
    alpha[1, 1] = -(1 << 40) + 3
    got = ovsf.generate(alpha, codes, L, gen_shift, data_bits)
    ref = ovsf.generate_reference(alpha, codes, L, gen_shift, data_bits)
    assert got.dtype == np.int64 and got.shape == (3, 5, L)
    assert np.array_equal(got, ref)
    assert got.min() >= arith.qmin(data_bits) and got.max() <= arith.qmax(data_bits)
    if gen_shift <= 0:
        assert got.max() == arith.qmax(data_bits) and got.min() == arith.qmin(data_bits)


def test_generate_one_block_and_rounding():
    # acc = alpha0 * c0 + alpha1 * c1 = (5+3, 5-3) repeated; shift 2 rounds half up.
    got = ovsf.generate(np.array([5, 3]), (0, 1), 4, 2, 8)
    assert np.array_equal(got, [2, 1, 2, 1])  # 8/4 = 2, 2/4 = 0.5 -> 1
    got = ovsf.generate(np.array([-5, 3]), (0, 1), 4, 2, 8)
    assert np.array_equal(got, [0, -2, 0, -2])  # -2/4 = -0.5 -> 0, -8/4 = -2


def test_generate_rejects_mismatched_codes():
    with pytest.raises(UzError):
        ovsf.generate(np.zeros((2, 3), dtype=np.int64), (0, 1), 8, 0, 16)
    with pytest.raises(UzError):
        ovsf.generate(np.zeros((2, 2), dtype=np.int64), (0, 8), 8, 0, 16)


@pytest.mark.parametrize("alpha_bits,n_codes,expected", [(16, 1, 16), (16, 2, 17), (16, 3, 18), (16, 4, 18), (8, 16, 12), (16, 32, 21)])
def test_gen_acc_bits(alpha_bits, n_codes, expected):
    assert ovsf.gen_acc_bits(alpha_bits, n_codes) == expected
    # The extreme sums of n_codes alphas fit the stated width.
    assert -n_codes * (1 << (alpha_bits - 1)) >= arith.qmin(expected)
    assert n_codes * arith.qmax(alpha_bits) <= arith.qmax(expected)


def test_layer_generation_matches_reference():
    rng = np.random.default_rng(13)
    w, fl_w = smooth_weights(rng, (3, 4, 3, 3))
    layer = ovsf.decompose(w, fl_w, 0.25, 16, 16, 16)
    got = ovsf.generate_layer(layer, 16)
    ref = ovsf.generate_reference(layer.alpha_q, layer.codes, layer.L, layer.gen_shift, 16)
    assert np.array_equal(got, ref)


def test_corrupted_weight_breaks_bit_exact_comparison():
    rng = np.random.default_rng(17)
    w = random_weights(rng, (4, 4, 3, 3), 8)
    layer = ovsf.decompose(w, 6, 1, 8, 16, 8)
    w_gen = ovsf.reconstruct(layer, 8)
    assert np.array_equal(w_gen, w)
    bad = w_gen.copy()
    bad[2, 1, 0, 2] ^= 1
    assert not np.array_equal(bad, w)


# ---------------------------------------------------------------- helpers

def test_best_fl():
    v = np.array([0.75, -0.5, 2.0**-7])
    assert ovsf.best_fl(v, 8) == 7  # exact only from fl 7; fl 8 would saturate 0.75 (192 > 127)
    assert ovsf.best_fl(np.array([0.75, -0.5]), 8) == 5  # exact from fl 2: tie -> lowest in window
    assert ovsf.best_fl(np.zeros(4), 16) == 0
    assert arith.FL_MIN <= ovsf.best_fl([1e-30], 16) <= arith.FL_MAX
    assert arith.FL_MIN <= ovsf.best_fl([1e30], 16) <= arith.FL_MAX


def test_relative_error():
    assert ovsf.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert ovsf.relative_error(np.array([3, 4]), np.array([3, 4])) == 0.0
    assert ovsf.relative_error(np.array([3, 4]), np.array([0, 0])) == pytest.approx(1.0)
    with pytest.raises(UzError):
        ovsf.relative_error(np.zeros(3), np.zeros(4))


def test_decompose_input_checks():
    w = np.ones((2, 4, 3, 3), dtype=np.int64)
    with pytest.raises(UzError, match="integer"):
        ovsf.decompose(w.astype(float), 8, 0.5, 16, 16, 16)
    with pytest.raises(UzError, match="8 bits"):
        ovsf.decompose(w * 200, 8, 0.5, 16, 16, 8)
    with pytest.raises(UzError, match="weight fractional length"):
        ovsf.decompose(w, 40, 0.5, 16, 16, 16)
    # The exact choice fl_w + log2(L) must itself be legal.
    with pytest.raises(UzError, match="alpha fractional length"):
        ovsf.decompose(w, 30, 1, 16, 20, 16)
