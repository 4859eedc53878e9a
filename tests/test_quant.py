"""Fractional-length search (dynamic precision after Qiu et al.), its legal
range, and the quality of the quantized example network."""
from __future__ import annotations

import math
import os
import zlib

import numpy as np
import pytest

from golden import arith, compiler, quant, report
from golden.config import EngineConfig
from golden.errors import NetworkError, UzError
from golden.network import load_network

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "golden", "networks", "example5.json")
ALL_FL = range(arith.FL_MIN, arith.FL_MAX + 1)


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def cfg_for(bits: int) -> EngineConfig:
    return EngineConfig(data_bits=bits, alpha_bits=bits, acc_bits=48 if bits == 16 else 32)


# ------------------------------------------------------------------ fl range

@pytest.mark.parametrize("fl", [arith.FL_MIN - 1, arith.FL_MAX + 1])
def test_check_fl_rejects_out_of_range(fl):
    with pytest.raises(UzError, match=rf"output fl {fl} out of range \[-32, 31\]"):
        arith.check_fl(fl, "output fl")


def test_check_fl_accepts_the_ends():
    assert arith.check_fl(arith.FL_MIN) == -32 and arith.check_fl(arith.FL_MAX) == 31


# -------------------------------------------------------------- best_fl

DISTS = {
    "normal": lambda r, n: r.normal(size=n),
    "negative": lambda r, n: -np.abs(r.normal(size=n)),
    "uniform": lambda r, n: r.uniform(0, 1, n),
    "laplace": lambda r, n: r.laplace(size=n),
}


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("scale", [1e-11, 1e-9, 1e-6, 1e-3, 0.37, 1.0, 13.7, 1e3, 1e6, 1e12])
@pytest.mark.parametrize("dist", sorted(DISTS))
def test_best_fl_is_the_argmin_over_every_legal_fl(bits, scale, dist):
    v = DISTS[dist](_rng("bf", bits, scale, dist), 400) * scale
    errs = np.array([quant.quant_error(v, fl, bits) for fl in ALL_FL])
    fl = quant.best_fl(v, bits)
    assert arith.FL_MIN <= fl <= arith.FL_MAX
    assert quant.quant_error(v, fl, bits) == errs.min()
    if (errs == errs.min()).sum() == 1:
        assert fl == ALL_FL[int(np.argmin(errs))]


def test_best_fl_error_reference():
    """quant_error is the plain sum of |x - Q(x)|, checked on hand-made numbers."""
    v = np.array([0.3, -0.7, 1.26])
    # fl 2: 0.3 -> 1/4, -0.7 -> -3/4 (-2.8 rounds to -3), 1.26 -> 5/4
    assert math.isclose(quant.quant_error(v, 2, 8), 0.05 + 0.05 + 0.01, rel_tol=1e-12)
    # fl 7 at 8 bits: 1.26 * 128 = 161.3 saturates to 127.
    assert math.isclose(quant.quant_error([1.26], 7, 8), 1.26 - 127 / 128, rel_tol=1e-12)


def test_best_fl_special_inputs():
    assert quant.best_fl(np.zeros(5), 16) == 0
    assert quant.best_fl(np.zeros(0), 8) == 0
    assert quant.best_fl([2.0 ** -20], 16) == arith.FL_MAX  # wants fl 33..43: the nearest legal end
    for bad in ([1.0, np.nan], [np.inf]):
        with pytest.raises(UzError, match="NaN or infinite"):
            quant.best_fl(bad, 16)


def test_best_fl_against_picks_the_closest_candidate():
    ref = np.array([0.3, -1.1, 2.6])

    def make_q(fl):
        return arith.quantize(ref + (0.05 if fl == 5 else 0.0), fl, 16)

    errs = {fl: float(np.abs(ref - arith.dequantize(make_q(fl), fl)).sum()) for fl in range(0, 10)}
    best = quant.best_fl_against(ref, make_q, range(0, 10))
    assert errs[best] == min(errs.values())
    assert best != 5


# ------------------------------------------------------- candidate window

@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("m", [0.3, 1.0, 1.5, 7.9, 100.0, 0.01, 3e5])
def test_candidate_window_around_the_fit(bits, m):
    fit = quant.range_fl(m, bits)
    if not math.log2(m).is_integer():
        assert m * 2.0 ** fit <= arith.qmax(bits)   # the largest magnitude fits at fit...
        assert m * 2.0 ** (fit + 1) > arith.qmax(bits)  # ...and not one fl above
    c = quant.candidate_fls(m, bits)
    assert list(c) == list(range(fit - quant.FL_BELOW, fit + quant.FL_ABOVE + 1))


def _m_for_fit(fit, bits):
    """A magnitude (not a power of two) whose fit fl is ``fit``."""
    return 0.75 * 2.0 ** (bits - 1 - fit)


@pytest.mark.parametrize("bits", [8, 16])
def test_candidate_window_at_the_extremes(bits):
    for m in (0.0, -1.0, math.inf, math.nan):
        assert list(quant.candidate_fls(m, bits)) == [0]
    # Entirely above the legal range: the top end only.
    assert list(quant.candidate_fls(1e-30, bits)) == [arith.FL_MAX]
    # Entirely below: the bottom end only.
    assert list(quant.candidate_fls(1e30, bits)) == [arith.FL_MIN]
    # Partly outside: clipped, never beyond the legal range.
    top = _m_for_fit(arith.FL_MAX - 2, bits)
    assert quant.range_fl(top, bits) == arith.FL_MAX - 2
    assert list(quant.candidate_fls(top, bits)) == list(range(arith.FL_MAX - 4, arith.FL_MAX + 1))
    low = _m_for_fit(arith.FL_MIN - 4, bits)
    assert quant.range_fl(low, bits) == arith.FL_MIN - 4
    assert list(quant.candidate_fls(low, bits)) == list(range(arith.FL_MIN, arith.FL_MIN - 4 + quant.FL_ABOVE + 1))
    # One step beyond each end of the window: a single legal fl remains.
    assert list(quant.candidate_fls(_m_for_fit(arith.FL_MAX + quant.FL_BELOW, bits), bits)) == [arith.FL_MAX]
    assert list(quant.candidate_fls(_m_for_fit(arith.FL_MIN - quant.FL_ABOVE, bits), bits)) == [arith.FL_MIN]
    for e in range(-60, 60, 3):
        c = quant.candidate_fls(1.3 * 2.0 ** e, bits)
        assert len(c) >= 1 and arith.FL_MIN <= c[0] and c[-1] <= arith.FL_MAX


# ------------------------------------------------ values beyond the fl range

def _conv_net(tmp_path, weight_scale, bias_scale=0.1):
    rng = _rng("net", weight_scale)
    np.savez(tmp_path / "w.npz", **{"c.weight": rng.normal(size=(4, 3, 3, 3)) * weight_scale,
                                     "c.bias": rng.normal(size=4) * bias_scale})
    return load_network({"name": "scale", "input_shape": [3, 8, 8], "weights": str(tmp_path / "w.npz"),
                         "layers": [{"name": "c", "type": "conv", "out_channels": 4, "kernel": 3, "pad": 1}]})


def test_tiny_weights_clip_to_fl_max_and_stay_bit_exact(tmp_path):
    """Weights near 1e-12 would want fl ~ 54: the compiler clips to 31, where
    they quantize to zero, and the program is still bit exact and meaningful
    (the output is the bias, which is what the float network computes too)."""
    net = _conv_net(tmp_path, 1e-12)
    x = _rng("tiny").normal(size=(2, 3, 8, 8))
    prog = compiler.compile_network(net, cfg_for(16), x)
    q = prog.layers[0]
    assert q.fl_w == arith.FL_MAX and not q.w_q.any()
    rep = report.golden_report(net, prog, x)
    assert rep["bit_exact"] and rep["layers"][0]["mismatches"] == 0
    assert rep["layers"][0]["sqnr_db"] > 60


def test_tiny_weights_at_8_bits_name_the_fl(tmp_path):
    """At 8 bits the same bias, moved to fl_in + 31, no longer fits a 32-bit
    accumulator: an error naming the fls, not a saturated bias."""
    net = _conv_net(tmp_path, 1e-12)
    with pytest.raises(NetworkError, match=r"layer 'c': the bias at fl_b=\d+ shifted onto the accumulator's fl "
                                           r"\d+ \(fl_in \d+ \+ fl_w 31\) overflows the 32-bit accumulator"):
        compiler.compile_network(net, cfg_for(8), _rng("tiny").normal(size=(2, 3, 8, 8)))


@pytest.mark.parametrize("bits", [8, 16])
def test_huge_weights_are_an_error_naming_the_fl(tmp_path, bits):
    net = _conv_net(tmp_path, 1e20)
    with pytest.raises(NetworkError, match=r"layer 'c': weights: magnitudes up to .* need fractional length "
                                           r"-\d+ .* below the smallest legal fl -32"):
        compiler.compile_network(net, cfg_for(bits), _rng("huge").normal(size=(1, 3, 8, 8)))


def test_huge_bias_and_input_are_errors(tmp_path):
    x = _rng("hb").normal(size=(1, 3, 8, 8))
    with pytest.raises(NetworkError, match=r"layer 'c': bias: magnitudes up to"):
        compiler.compile_network(_conv_net(tmp_path, 1.0, bias_scale=1e18), cfg_for(16), x)
    with pytest.raises(NetworkError, match=r"network input: magnitudes up to .*e\+30"):
        compiler.compile_network(_conv_net(tmp_path, 1.0), cfg_for(16), x * 1e30)
    with pytest.raises(NetworkError, match=r"layer 'c': output: magnitudes up to .* below the smallest legal fl"):
        # Input and weights each representable in 8 bits, their sums not.
        compiler.compile_network(_conv_net(tmp_path, 1e6), cfg_for(8), x * 1e6)


# -------------------------------------------------- quality of the example

@pytest.fixture(scope="module")
def example_reports():
    net = load_network(EXAMPLE)
    x = _rng("example").normal(size=(2, 3, 32, 32))
    out = {}
    for bits in (16, 8):
        for static in (False, True):
            prog = compiler.compile_network(net, cfg_for(bits), x, static=static)
            out[bits, static] = report.golden_report(net, prog, x)
    return out


def test_example_sqnr_per_layer(example_reports):
    r16, r8 = example_reports[16, False], example_reports[8, False]
    assert [r["name"] for r in r16["layers"]] == [r["name"] for r in r8["layers"]]
    for a, b in zip(r16["layers"], r8["layers"]):
        assert a["sqnr_db"] > 60, a
        assert b["sqnr_db"] > 20, b
        assert a["sqnr_db"] > b["sqnr_db"] + 20, (a["name"], a["sqnr_db"], b["sqnr_db"])
    for rep in example_reports.values():
        assert rep["bit_exact"]


def test_dynamic_precision_beats_static_at_8_bits(example_reports):
    dyn, sta = example_reports[8, False], example_reports[8, True]
    assert dyn["layers"][-1]["sqnr_db"] >= sta["layers"][-1]["sqnr_db"]
    # Static mode really uses one format: every activation fl is the same.
    assert len({r["fl_out"] for r in sta["layers"]} | {sta["fl_input"]}) == 1
    assert len({r["fl_out"] for r in dyn["layers"]}) > 1


def test_sqnr_definition():
    ref = np.array([3.0, -4.0])
    assert report.sqnr_db(ref, ref) == math.inf
    assert math.isclose(report.sqnr_db(ref, ref + np.array([0.3, 0.4])), 20.0, rel_tol=1e-12)
    assert report.sqnr_db(np.zeros(2), np.ones(2)) == -math.inf
