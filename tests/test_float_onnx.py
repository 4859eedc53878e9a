"""The golden float operators against onnxruntime on single-node models.

Data are float32 (what onnxruntime computes in); golden computes in float64
from the same values, so the tolerance only has to cover float32 rounding.
Weights are scaled by 1/sqrt(fan-in) to keep outputs near 1, where rtol and
atol of 1e-5 are both meaningful.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from golden import layers
from golden.isa import KERNELS, STRIDES
from onnx_util import onnx_pads, run_single, single_node_model

RTOL = ATOL = 1e-5


def _rng(*key) -> np.random.Generator:
    """A generator seeded by the test's parameters (crc32: stable across runs,
    unlike hash())."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _check(actual, expected):
    assert np.shape(actual) == np.shape(expected)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=RTOL, atol=ATOL)


def test_onnx_pads_order():
    assert onnx_pads((1, 2, 3, 4)) == [1, 3, 2, 4]


def test_model_ir_version_loads():
    m = single_node_model("Relu", {"x": np.zeros((1, 2), np.float32)})
    assert m.ir_version == 8 and m.opset_import[0].version == 13


# ------------------------------------------------------------------ Conv

def _conv_pads(k: int):
    """Zero, symmetric and two asymmetric paddings, each side < k."""
    if k == 1:
        return [(0, 0, 0, 0)]
    h = k // 2
    return [(0, 0, 0, 0), (h, h, h, h), (k - 1, 0, 1, h), (0, 1, k - 1, 0)]


CONV_CASES = [(k, s, p) for k in KERNELS for s in STRIDES for p in _conv_pads(k)]


@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("k, stride, pads", CONV_CASES,
                         ids=[f"k{k}-s{s}-p{'_'.join(map(str, p))}" for k, s, p in CONV_CASES])
def test_conv(k, stride, pads, bias):
    rng = _rng(k, stride, *pads, bias)
    cin, cout, h, w = 3, 4, 19, 23  # odd, non-square, larger than K=11
    x = rng.uniform(-1, 1, (1, cin, h, w)).astype(np.float32)
    wt = (rng.uniform(-1, 1, (cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
    b = rng.uniform(-1, 1, cout).astype(np.float32) if bias else None
    inits = {"w": wt, **({"b": b} if bias else {})}
    got = run_single("Conv", {"x": x}, inits, kernel_shape=[k, k], strides=[stride, stride],
                     pads=onnx_pads(pads))
    want = layers.conv_float(x[0], wt, b, stride=stride, pads=pads)
    assert want.shape == (cout, layers.out_size(h, k, stride, pads[0], pads[1]),
                          layers.out_size(w, k, stride, pads[2], pads[3]))
    _check(got[0], want)


# ------------------------------------------------------------------- FC

@pytest.mark.parametrize("n_in, n_out", [(1, 1), (25, 10), (300, 17), (4096, 37)])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
def test_gemm_transb(n_in, n_out, bias):
    rng = _rng("gemm", n_in, n_out, bias)
    x = rng.uniform(-1, 1, (1, n_in)).astype(np.float32)
    w = (rng.uniform(-1, 1, (n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
    b = rng.uniform(-1, 1, n_out).astype(np.float32)
    inits = {"w": w, **({"b": b} if bias else {})}
    got = run_single("Gemm", {"x": x}, inits, transB=1)
    _check(got[0], layers.fc_float(x, w, b if bias else None))


@pytest.mark.parametrize("n_in, n_out", [(1, 3), (25, 10), (300, 17), (4096, 37)])
def test_matmul(n_in, n_out):
    rng = _rng("matmul", n_in, n_out)
    x = rng.uniform(-1, 1, (1, n_in)).astype(np.float32)
    w_onnx = (rng.uniform(-1, 1, (n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)  # (in, out)
    got = run_single("MatMul", {"x": x}, {"w": w_onnx})
    _check(got[0], layers.fc_float(x, w_onnx.T))


# --------------------------------------------------------------- MaxPool

POOL_CASES = [(k, s, p) for k, s in ((2, 2), (3, 2)) for p in (0, 1)]


@pytest.mark.parametrize("h, w", [(13, 17), (7, 9), (3, 5)])
@pytest.mark.parametrize("k, s, pad", POOL_CASES, ids=[f"k{k}-s{s}-p{p}" for k, s, p in POOL_CASES])
@pytest.mark.parametrize("negative", [False, True], ids=["mixed", "allneg"])
def test_maxpool(k, s, pad, h, w, negative):
    rng = _rng("pool", k, s, pad, h, w, negative)
    x = rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32)
    if negative:  # padding must never win, even against all-negative data
        x = x - np.float32(2)
    got = run_single("MaxPool", {"x": x}, kernel_shape=[k, k], strides=[s, s],
                     pads=[pad] * 4, ceil_mode=0)
    want = layers.maxpool_float(x[0], k, s, pad)
    assert np.all(np.isfinite(want))
    _check(got[0], want)


# ------------------------------------------------------------------ Relu

def test_relu():
    rng = _rng("relu")
    x = rng.uniform(-1, 1, (1, 5, 11, 13)).astype(np.float32)
    x[0, 0, 0, :4] = [0.0, -0.0, 1e-30, -1e-30]
    got = run_single("Relu", {"x": x})
    want = layers.relu_float(x[0])
    assert np.all(want >= 0)
    _check(got[0], want)
