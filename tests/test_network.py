"""Network description: loading and its checks, BatchNorm folding, SVD split
of fully connected layers, fusion into engine layers, and the float runs."""
from __future__ import annotations

import json
import os
import zlib

import numpy as np
import pytest

from golden import compiler, isa, layers
from golden.config import EngineConfig
from golden.errors import NetworkError, UzError
from golden.network import (Network, Op, fold_batchnorm, forward_engine_float, forward_float, forward_float_all,
                            load_network, shuffle_perm, svd_rank_for, svd_split, to_engine_layers)


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def spec(layers, shape=(3, 8, 8), **kw):
    d = {"name": "t", "input_shape": list(shape), "weights": {"seed": 5}, "layers": layers}
    d.update(kw)
    return d


def conv(name="c", **kw):
    d = {"name": name, "type": "conv", "out_channels": 4, "kernel": 3, "pad": 1}
    d.update(kw)
    return d


def assert_close(ref, got):
    """Float agreement to 1e-9 relative to the largest value of the reference."""
    ref, got = np.asarray(ref), np.asarray(got)
    assert ref.shape == got.shape
    scale = max(float(np.abs(ref).max()), 1e-300)
    assert float(np.abs(ref - got).max()) <= 1e-9 * scale


# ------------------------------------------------------------ BatchNorm

def test_batchnorm_folding_equals_conv_then_bn(tmp_path):
    rng = _rng("bn")
    c = 6
    # Stored stats with a negative gamma and a large mean: folding must keep signs and offsets.
    np.savez(tmp_path / "w.npz", **{
        "c.weight": rng.normal(size=(c, 3, 3, 3)), "c.bias": rng.normal(size=c),
        "b.gamma": np.r_[-1.5, rng.uniform(0.2, 2, c - 1)], "b.beta": rng.normal(size=c),
        "b.mean": rng.normal(0, 3, c), "b.var": rng.uniform(0.01, 4, c),
        "f.weight": rng.normal(size=(5, c * 4 * 4)), "f.bias": rng.normal(size=5),
        "fb.gamma": rng.uniform(0.5, 2, 5), "fb.beta": rng.normal(size=5),
        "fb.mean": rng.normal(size=5), "fb.var": rng.uniform(0.5, 2, 5)})
    (tmp_path / "n.json").write_text(json.dumps(spec([
        conv(out_channels=c, stride=2), {"name": "b", "type": "batchnorm", "eps": 1e-3},
        {"name": "f", "type": "fc", "out_features": 5}, {"name": "fb", "type": "batchnorm"}],
        weights="w.npz")))
    net = load_network(str(tmp_path / "n.json"))  # weights path relative to the JSON file
    x = rng.normal(size=(3, 8, 8))
    el = to_engine_layers(net)
    assert [L.name for L in el] == ["c", "f"]
    assert el[0].source == ["c", "b"] and el[1].source == ["f", "fb"]
    outs = forward_engine_float(el, x)
    assert_close(forward_float(net, x), outs[-1])
    # The conv layer alone against conv -> BN done by hand.
    bn = net.ops[1].bn
    ref = forward_float(type(net)(net.name, net.input_shape, net.ops[:1]), x)
    ref = (ref - bn["mean"][:, None, None]) / np.sqrt(bn["var"] + 1e-3)[:, None, None] \
        * bn["gamma"][:, None, None] + bn["beta"][:, None, None]
    assert_close(ref, outs[0])
    assert np.abs(ref - forward_float(type(net)(net.name, net.input_shape, net.ops[:1]), x)).max() > 0.1


def test_fold_batchnorm_without_conv_bias():
    net = load_network(spec([conv(bias=False), {"name": "b", "type": "batchnorm"}]))
    ops = fold_batchnorm(net.ops)
    assert len(ops) == 1 and ops[0].bias is not None and ops[0].attrs["folded"] == ["b"]
    x = _rng("nb").normal(size=(3, 8, 8))
    assert_close(forward_float(net, x), forward_engine_float(to_engine_layers(net), x)[-1])


@pytest.mark.parametrize("layers_", [
    [{"name": "b", "type": "batchnorm"}, conv()],
    [conv(), {"name": "r", "type": "relu"}, {"name": "b", "type": "batchnorm"}],
    [conv(), {"name": "p", "type": "maxpool", "kernel": 2}, {"name": "b", "type": "batchnorm"}],
    [conv(), {"name": "fl", "type": "flatten"}, {"name": "b", "type": "batchnorm"}],
])
def test_batchnorm_not_after_conv_or_fc_is_an_error(layers_):
    net = load_network(spec(layers_))
    with pytest.raises(NetworkError, match=r"layer 'b': BatchNorm must follow a conv or fc"):
        to_engine_layers(net)


# ------------------------------------------------------------------ SVD

def _fc_with_singular_values(tmp_path, s, nin):
    rng = _rng("svd", tuple(s), nin)
    u, _ = np.linalg.qr(rng.normal(size=(len(s), len(s))))
    v, _ = np.linalg.qr(rng.normal(size=(nin, len(s))))
    w = (u * np.asarray(s)) @ v.T
    np.savez(tmp_path / "w.npz", **{"f.weight": w, "f.bias": rng.normal(size=len(s))})
    return w


def test_svd_full_rank_equals_original_fc():
    base = spec([conv(out_channels=5), {"name": "r", "type": "relu"},
                 {"name": "f", "type": "fc", "out_features": 10}], shape=(3, 4, 4))
    split = json.loads(json.dumps(base))
    split["layers"][2]["svd_rank"] = 10
    net, net_s = load_network(base), load_network(split)
    el = to_engine_layers(net_s)
    assert [(L.name, L.out_shape) for L in el] == [("c", (5, 4, 4)), ("f_svd_a", (10, 1, 1)), ("f_svd_b", (10, 1, 1))]
    assert el[1].bias is None and np.array_equal(el[2].bias, net.ops[2].bias)
    x = _rng("svdx").normal(size=(3, 4, 4))
    assert_close(forward_float(net, x), forward_engine_float(el, x)[-1])
    assert_close(forward_float(net_s, x), forward_engine_float(el, x)[-1])


def test_svd_low_rank_is_the_best_approximation(tmp_path):
    s = [4.0, 2.0, 1.0, 0.5]
    w = _fc_with_singular_values(tmp_path, s, 9)
    net = load_network(spec([{"name": "f", "type": "fc", "out_features": 4, "svd_rank": 2}],
                            shape=(9, 1, 1), weights=str(tmp_path / "w.npz")))
    a, b = to_engine_layers(net)
    w2 = b.weight[:, :, 0, 0] @ a.weight[:, :, 0, 0]
    # Eckart-Young: the spectral error of the best rank-2 approximation is s[2].
    assert abs(np.linalg.norm(w - w2, 2) - s[2]) < 1e-9
    # Both factors carry sqrt(S): their row/column norms match.
    assert_close(np.linalg.norm(a.weight[:, :, 0, 0], axis=1), np.linalg.norm(b.weight[:, :, 0, 0], axis=0))


@pytest.mark.parametrize("energy,rank", [(0.5, 1), (0.75, 1), (0.76, 2), (20 / 21.25, 2), (0.95, 3),
                                         (0.99, 4), (1.0, 4)])
def test_svd_energy_picks_the_smallest_rank(tmp_path, energy, rank):
    s = [4.0, 2.0, 1.0, 0.5]  # squared: 16, 4, 1, 0.25 of 21.25
    w = _fc_with_singular_values(tmp_path, s, 7)
    assert svd_rank_for(w, energy) == rank
    net = load_network(spec([{"name": "f", "type": "fc", "out_features": 4, "svd_energy": energy}],
                            shape=(7, 1, 1), weights=str(tmp_path / "w.npz")))
    el = to_engine_layers(net)
    assert el[0].out_shape == (rank, 1, 1) and el[1].in_shape == (rank, 1, 1)


def test_svd_energy_rank_is_minimal_on_random_matrices():
    for seed in range(5):
        w = _rng("svde", seed).normal(size=(12, 20))
        s = np.linalg.svd(w, compute_uv=False)
        cum = np.cumsum(s ** 2) / np.sum(s ** 2)
        for energy in (0.3, 0.6, 0.9, 0.97):
            r = svd_rank_for(w, energy)
            assert cum[r - 1] >= energy - 1e-12
            assert r == 1 or cum[r - 2] < energy


@pytest.mark.parametrize("rank", [0, 5, 2.5])
def test_svd_rank_out_of_range_is_an_error(rank):
    net = load_network(spec([{"name": "f", "type": "fc", "out_features": 4, "svd_rank": rank}], shape=(6, 1, 1)))
    with pytest.raises(NetworkError, match=r"layer 'f': svd_rank .* must be an integer in 1\.\.4"):
        svd_split(net.ops)


# --------------------------------------------------------------- fusion

def test_conv_relu_pool_fuse_into_one_layer():
    net = load_network(spec([conv(out_channels=5), {"name": "r", "type": "relu"},
                             {"name": "p", "type": "maxpool", "kernel": 3, "stride": 2, "pad": 1}]))
    (L,) = to_engine_layers(net)
    assert L.kind == isa.Kind.CONV and L.relu and L.pool == (3, 2, 1)
    assert L.source == ["c", "r", "p"]
    assert L.out_shape == (5, 4, 4)


def test_pool_after_pool_is_a_standalone_pool_layer():
    net = load_network(spec([conv(), {"name": "p1", "type": "maxpool", "kernel": 2},
                             {"name": "p2", "type": "maxpool", "kernel": 2, "stride": 1},
                             {"name": "r", "type": "relu"}]))
    a, b = to_engine_layers(net)
    assert a.kind == isa.Kind.CONV and a.pool == (2, 2, 0) and not a.relu
    assert b.kind == isa.Kind.POOL and b.pool == (2, 1, 0) and b.relu
    assert b.in_shape == (4, 4, 4) and b.out_shape == (4, 3, 3)
    assert b.source == ["p2", "r"]


def test_input_pool_and_dropout_flatten():
    net = load_network(spec([{"name": "p0", "type": "maxpool", "kernel": 2}, conv(),
                             {"name": "d", "type": "dropout"}, {"name": "fl", "type": "flatten"},
                             {"name": "f", "type": "fc", "out_features": 3}]))
    el = to_engine_layers(net)
    assert [(L.name, L.kind) for L in el] == [("p0", isa.Kind.POOL), ("c", isa.Kind.CONV), ("f", isa.Kind.FC)]
    assert el[2].in_shape == (64, 1, 1) and el[2].fc_in_shape == (4, 4, 4)


def test_relu_first_is_an_error():
    net = load_network(spec([{"name": "r0", "type": "relu"}, conv()]))
    with pytest.raises(NetworkError, match=r"layer 'r0': ReLU with no preceding layer"):
        to_engine_layers(net)


def test_engine_float_equals_network_float_without_svd():
    net = load_network(spec([
        {"name": "p0", "type": "maxpool", "kernel": 3, "stride": 1, "pad": 1},
        conv("c1", out_channels=7, kernel=5, pad=[2, 1, 0, 2], stride=2), {"name": "b1", "type": "batchnorm"},
        {"name": "r1", "type": "relu"}, {"name": "p1", "type": "maxpool", "kernel": 2, "stride": 1},
        {"name": "p2", "type": "maxpool", "kernel": 2}, {"name": "r2", "type": "relu"},
        conv("c2", out_channels=9, kernel=1, pad=0), {"name": "d", "type": "dropout"},
        {"name": "fl", "type": "flatten"}, {"name": "f1", "type": "fc", "out_features": 11},
        {"name": "fb", "type": "batchnorm"}, {"name": "r3", "type": "relu"},
        {"name": "f2", "type": "fc", "out_features": 4, "bias": False}], shape=(5, 13, 11)))
    el = to_engine_layers(net)
    assert [L.kind for L in el] == [isa.Kind.POOL, isa.Kind.CONV, isa.Kind.POOL, isa.Kind.CONV,
                                    isa.Kind.FC, isa.Kind.FC]
    for seed in range(3):
        x = _rng("eq", seed).normal(size=(5, 13, 11))
        outs = forward_engine_float(el, x)
        assert_close(forward_float(net, x), outs[-1])
        assert [o.shape for o in outs] == [L.out_shape for L in el]


def test_example_network_loads():
    net = load_network(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "golden", "networks", "example5.json"))
    el = to_engine_layers(net)
    assert [L.name for L in el] == ["conv1", "conv2", "conv3", "fc1_svd_a", "fc1_svd_b", "fc2"]
    assert el[-1].out_shape == (10, 1, 1)


# ------------------------------------------------------------ bad input

BAD = [
    (spec([conv()], shape=(3, 0, 8)), r"input_shape \[3, 0, 8\] has a zero or negative dimension"),
    (spec([conv()], shape=(-3, 8, 8)), r"input_shape \[-3, 8, 8\] has a zero or negative dimension"),
    (spec([conv()], shape=(3, 8)), r"input_shape must be \[C, H, W\]"),
    ({"input_shape": [3, 8, 8]}, "needs 'input_shape' and 'layers'"),
    (spec([conv(out_channels=0)]), r"layer 'c': out_channels must be a positive integer, got 0"),
    (spec([conv(out_channels=-4)]), r"layer 'c': out_channels must be a positive integer, got -4"),
    (spec([conv(out_channels=2.5)]), r"layer 'c': out_channels must be a positive integer, got 2.5"),
    (spec([{"name": "f", "type": "fc", "out_features": 0}]), r"layer 'f': out_features must be a positive"),
    (spec([{"name": "f", "type": "fc"}]), r"layer 'f': missing 'out_features'"),
    (spec([conv(kernel=7, pad=1)], shape=(3, 4, 4)), r"layer 'c': kernel 7 larger than the padded input 6x6"),
    (spec([conv(kernel=5, pad=[0, 0, 2, 2])], shape=(3, 4, 8)), r"layer 'c': kernel 5 larger than the padded input 4x12"),
    (spec([conv(kernel=2, pad=0)]), r"layer 'c': kernel size 2 not supported"),
    (spec([conv(kernel=4)]), r"layer 'c': kernel size 4 not supported"),
    (spec([conv(kernel=9)], shape=(3, 16, 16)), r"layer 'c': kernel size 9 not supported"),
    (spec([conv(kernel=0)]), r"layer 'c': kernel must be a positive integer, got 0"),
    (spec([conv(stride=5)]), r"layer 'c': stride 5 not supported"),
    (spec([conv(stride=0)]), r"layer 'c': stride must be a positive integer, got 0"),
    (spec([conv(pad=3)]), r"layer 'c': padding \(3, 3, 3, 3\) must be smaller than the kernel 3"),
    (spec([conv(pad=[0, 0, 1, 3])]), r"layer 'c': padding \(0, 0, 1, 3\) must be smaller than the kernel 3"),
    (spec([conv(kernel=1, pad=1)]), r"layer 'c': padding .* smaller than the kernel 1"),
    (spec([conv(pad=-1)]), r"layer 'c': negative padding"),
    (spec([conv(pad=[1, 1, -1, 1])]), r"layer 'c': negative padding"),
    (spec([conv(pad="same")]), r"layer 'c': pad must be an int or \[top, bottom, left, right\]"),
    (spec([conv(), {"name": "x", "type": "conv3d"}]), r"layer 'x': unsupported layer type 'conv3d'"),
    (spec([conv(), conv()]), r"layer name 'c' used twice"),
    (spec([conv(), {"name": "nt"}]), r"layer #1 has no 'type'"),
    (spec([conv(), {"name": "p", "type": "maxpool", "kernel": 4}]), r"layer 'p': max pool 4x4/4 not supported"),
    (spec([conv(), {"name": "p", "type": "maxpool", "kernel": 1}]), r"layer 'p': max pool 1x1/1 not supported"),
    (spec([conv(), {"name": "p", "type": "maxpool", "kernel": 2, "stride": 4}]), r"layer 'p': max pool 2x2/4 not supported"),
    (spec([conv(), {"name": "p", "type": "maxpool", "kernel": 2, "pad": 2}]), r"layer 'p': max pool padding 2 must be in 0\.\.1"),
    (spec([conv(pad=0), {"name": "p", "type": "maxpool", "kernel": 3}], shape=(3, 4, 4)), r"layer 'p': pool window 3 larger"),
    (spec([{"name": "f", "type": "fc", "out_features": 8}, conv()]), r"layer 'c': convolution after a flatten"),
    (spec([{"name": "f", "type": "fc", "out_features": 8}, {"name": "p", "type": "maxpool", "kernel": 2}]),
     r"layer 'p': max pool after a flatten"),
    (spec([{"name": "r", "type": "relu"}]), r"no conv, fc or maxpool layer"),
    (spec([conv(rho=0)]), r"layer 'c': rho must be a number in \(0, 1\], got 0"),
    (spec([conv(rho=1.5)]), r"layer 'c': rho must be a number in \(0, 1\], got 1.5"),
    (spec([conv(rho=-0.5)]), r"layer 'c': rho must be a number in \(0, 1\]"),
    (spec([conv(rho="half")]), r"layer 'c': rho must be a number in \(0, 1\], got 'half'"),
    (spec([conv(rho=True)]), r"layer 'c': rho must be a number in \(0, 1\], got True"),
    (spec([conv(rho=float("nan"))]), r"layer 'c': rho must be a number in \(0, 1\], got nan"),
    (spec([{"name": "f", "type": "fc", "out_features": 4, "svd_energy": 1.5}]), r"layer 'f': svd_energy must be"),
    (spec([{"name": "f", "type": "fc", "out_features": 4, "svd_energy": "most"}]), r"layer 'f': svd_energy must be"),
    (spec([conv(), {"name": "b", "type": "batchnorm", "eps": -1e-5}]), r"layer 'b': eps must be a positive number"),
    (spec([conv(), {"name": "b", "type": "batchnorm", "eps": "small"}]), r"layer 'b': eps must be a positive number"),
    (spec([conv()], weights={"seed": "seven"}), r"weights seed must be a non-negative integer, got 'seven'"),
    (spec([conv()], weights={"seed": -1}), r"weights seed must be a non-negative integer, got -1"),
    (spec([conv()], weights=7), r"'weights' must be an \.npz path"),
]


@pytest.mark.parametrize("net_spec,msg", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_network_is_a_named_error(net_spec, msg):
    with pytest.raises(NetworkError, match=msg):
        # Some problems (BatchNorm placement, SVD rank) surface when the engine layers are built.
        to_engine_layers(load_network(net_spec))


def test_network_errors_are_user_errors():
    assert issubclass(NetworkError, UzError)


# ------------------------------------------------------------- files

def test_malformed_and_missing_json(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"input_shape": [3, 8, 8], "layers": [ {"type": "conv",, } ]}')
    with pytest.raises(NetworkError, match=r"bad\.json is not valid JSON"):
        load_network(str(p))
    with pytest.raises(NetworkError, match=r"missing\.json not found"):
        load_network(str(tmp_path / "missing.json"))


def _npz_net(tmp_path, **arrays):
    np.savez(tmp_path / "w.npz", **arrays)
    return spec([conv(out_channels=2), {"name": "b", "type": "batchnorm"}], shape=(1, 4, 4),
                weights=str(tmp_path / "w.npz"))


def _good_arrays():
    return {"c.weight": np.ones((2, 1, 3, 3)), "c.bias": np.zeros(2), "b.gamma": np.ones(2),
            "b.beta": np.zeros(2), "b.mean": np.zeros(2), "b.var": np.ones(2)}


def test_npz_weights_load(tmp_path):
    net = load_network(_npz_net(tmp_path, **_good_arrays()))
    assert np.array_equal(net.ops[0].weight, np.ones((2, 1, 3, 3)))


@pytest.mark.parametrize("change,msg", [
    ({"c.bias": None}, r"layer 'c': weights file has no 'c\.bias'"),
    ({"b.var": None}, r"layer 'b': weights file has no 'b\.var'"),
    ({"c.weight": np.full((2, 1, 3, 3), np.nan)}, r"layer 'c': c\.weight holds NaN or infinite values"),
    ({"b.mean": np.array([0.0, np.inf])}, r"layer 'b': b\.mean holds NaN or infinite"),
    ({"c.weight": np.ones((2, 1, 5, 5))}, r"layer 'c': c\.weight has shape \(2, 1, 5, 5\), expected \(2, 1, 3, 3\)"),
    ({"b.var": np.array([1.0, -0.5])}, r"layer 'b': BatchNorm variance has negative values"),
])
def test_bad_npz_weights(tmp_path, change, msg):
    arrays = _good_arrays()
    for k, v in change.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    with pytest.raises(NetworkError, match=msg):
        load_network(_npz_net(tmp_path, **arrays))


def test_unreadable_weights_files(tmp_path):
    (tmp_path / "text.npz").write_text("not an archive")
    np.save(tmp_path / "one.npy", np.ones(3))
    for name, msg in [("text.npz", r"text\.npz is not a readable \.npz archive"),
                      ("one.npy", r"one\.npy is not a readable \.npz archive"),
                      ("gone.npz", r"gone\.npz not found")]:
        with pytest.raises(NetworkError, match=msg):
            load_network(spec([conv()], weights=str(tmp_path / name)))


# --------------------------------------------- rho against the engine's L

@pytest.mark.parametrize("rho,L,ok", [(0.3, 16, False), (0.25, 16, True), (1 / 16, 16, True), (0.1, 8, False),
                                      (0.125, 4, False), (0.5, 4, True)])
def test_rho_times_L_must_be_whole(rho, L, ok):
    net = load_network(spec([conv(rho=rho, out_channels=4)], shape=(16, 6, 6)))
    cfg = EngineConfig(ovsf_len=L)
    x = _rng("rho").normal(size=(1, 16, 6, 6))
    if ok:
        prog = compiler.compile_network(net, cfg, x)
        assert prog.layers[0].ovsf.n_codes == round(rho * L)
    else:
        with pytest.raises(NetworkError, match=rf"layer 'c': rho={rho} gives rho\*L=.* with L={L}"):
            compiler.compile_network(net, cfg, x)


@pytest.mark.parametrize("rho", [0, 1.5, -1, float("nan"), 0.3])
def test_compile_rho_argument_checked(rho):
    net = load_network(spec([conv()]))
    with pytest.raises(NetworkError, match=r"layer 'c': rho="):
        compiler.compile_network(net, EngineConfig(), _rng("r").normal(size=(1, 3, 8, 8)), rho=rho)


# ------------------------------------------------------------------ graphs

def gspec(layers_, shape=(4, 8, 8), **kw):
    return spec(layers_, shape=shape, **kw)


def test_chain_json_reads_the_previous_layer():
    net = load_network(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "golden", "networks", "example5.json"))
    assert net.ops[0].inputs == ["input"]
    assert all(b.inputs == [a.name] for a, b in zip(net.ops, net.ops[1:]))
    assert net.output == "fc2" and net.is_chain()
    assert net.consumers("conv1") == [net.op("bn1")] and net.consumers("fc2") == []
    assert net.consumers("input") == [net.op("conv1")] and net.shape("input") == (3, 32, 32)
    with pytest.raises(NetworkError, match=r"has no layer 'nope'"):
        net.op("nope")


def test_python_chain_gets_its_inputs():
    """Ops built without inputs (as before graphs) read the op before them."""
    w = _rng("py").normal(size=(2, 3, 3, 3))
    ops = [Op("c", "conv", {"stride": 1, "pads": (1, 1, 1, 1), "out_shape": (2, 4, 4)}, w, None),
           Op("r", "relu", {"out_shape": (2, 4, 4)})]
    net = Network("n", (3, 4, 4), ops)
    assert [o.inputs for o in net.ops] == [["input"], ["c"]] and net.output == "r"
    x = _rng("pyx").normal(size=(3, 4, 4))
    assert_close(np.maximum(layers.conv_float(x, w, None, 1, (1, 1, 1, 1)), 0), forward_float(net, x))


def test_residual_graph():
    net = load_network(gspec([
        conv("c1", out_channels=4), {"name": "r1", "type": "relu"},
        conv("c2", out_channels=4), {"name": "b2", "type": "batchnorm"},
        {"name": "a", "type": "add", "inputs": ["b2", "r1"]}, {"name": "r2", "type": "relu"},
        {"name": "g", "type": "gap"}, {"name": "f", "type": "fc", "out_features": 3}]))
    assert net.op("a").inputs == ["b2", "r1"] and net.op("r2").inputs == ["a"]
    assert [o.name for o in net.consumers("r1")] == ["c2", "a"] and not net.is_chain()
    x = _rng("res").normal(size=(4, 8, 8))
    c1, _, c2, b2, _, _, _, f = net.ops
    r1 = np.maximum(layers.conv_float(x, c1.weight, c1.bias, 1, (1, 1, 1, 1)), 0)
    y = layers.conv_float(r1, c2.weight, c2.bias, 1, (1, 1, 1, 1))
    bn = b2.bn
    y = (y - bn["mean"][:, None, None]) / np.sqrt(bn["var"] + bn["eps"])[:, None, None] * bn["gamma"][:, None, None] \
        + bn["beta"][:, None, None]
    g = np.maximum(y + r1, 0).mean(axis=(1, 2))
    ref = f.weight @ g + f.bias
    assert_close(ref.reshape(-1, 1, 1), forward_float(net, x))
    outs = forward_float_all(net, x)
    assert set(outs) == {"input"} | {o.name for o in net.ops}
    assert_close(r1, outs["r1"]) and np.array_equal(outs["input"], x)
    assert all(outs[o.name].shape == o.attrs["out_shape"] for o in net.ops)


def test_concat():
    net = load_network(gspec([
        conv("a", out_channels=3), conv("b", out_channels=5, kernel=1, pad=0, inputs=["input"]),
        {"name": "cat", "type": "concat", "inputs": ["a", "b", "input"]}]))
    assert net.op("cat").attrs["out_shape"] == (12, 8, 8) and net.output == "cat"
    x = _rng("cat").normal(size=(4, 8, 8))
    outs = forward_float_all(net, x)
    assert_close(np.concatenate([outs["a"], outs["b"], x]), forward_float(net, x))


def test_network_output_need_not_be_last():
    """Network(..., output=...) names the op whose output is the network's."""
    net = load_network(gspec([conv("a"), {"name": "r", "type": "relu"}]))
    other = Network(net.name, net.input_shape, net.ops, output="a")
    x = _rng("out").normal(size=(4, 8, 8))
    assert_close(forward_float_all(net, x)["a"], forward_float(other, x))
    with pytest.raises(NetworkError, match=r"network output 'zz' is not a layer"):
        Network(net.name, net.input_shape, net.ops, output="zz").check()


def test_grouped_and_depthwise_conv():
    net = load_network(gspec([conv("g", out_channels=6, groups=2, stride=2),
                              conv("dw", out_channels=6, groups=6)], shape=(4, 9, 9), weights={"seed": 11}))
    g, dw = net.ops
    assert g.weight.shape == (6, 2, 3, 3) and dw.weight.shape == (6, 1, 3, 3)
    assert g.attrs["groups"] == 2 and dw.attrs["groups"] == 6 and g.attrs["out_shape"] == (6, 5, 5)
    x = _rng("grp").normal(size=(4, 9, 9))
    halves = [layers.conv_float(x[2 * i:2 * i + 2], g.weight[3 * i:3 * i + 3], g.bias[3 * i:3 * i + 3], 2,
                                (1, 1, 1, 1)) for i in range(2)]
    y = np.concatenate(halves)
    assert_close(y, forward_float_all(net, x)["g"])
    ref = np.stack([layers.conv_float(y[i:i + 1], dw.weight[i:i + 1], dw.bias[i:i + 1], 1, (1, 1, 1, 1))[0]
                    for i in range(6)])
    assert_close(ref, forward_float(net, x))
    # seeded weights are He-scaled on the fan-in of a group
    big = load_network(gspec([conv("dw", out_channels=64, groups=64, kernel=5, pad=2)], shape=(64, 8, 8)))
    assert abs(big.ops[0].weight.std() / np.sqrt(2 / 25) - 1) < 0.1


def test_avgpool_count_include_pad_at_borders():
    net = load_network(gspec([
        {"name": "a0", "type": "avgpool", "kernel": 3, "stride": 1, "pad": 1},
        {"name": "a1", "type": "avgpool", "kernel": 3, "stride": 1, "pad": 1, "count_include_pad": True,
         "inputs": ["input"]},
        {"name": "cat", "type": "concat", "inputs": ["a0", "a1"]}], shape=(2, 5, 5)))
    outs = forward_float_all(net, np.ones((2, 5, 5)))
    assert np.all(outs["a0"] == 1)                            # padding not counted: ones stay ones
    assert outs["a1"][0, 0, 0] == pytest.approx(4 / 9) and outs["a1"][0, 0, 1] == pytest.approx(6 / 9)
    assert outs["a1"][0, 2, 2] == pytest.approx(1)
    a2 = load_network(gspec([{"name": "a2", "type": "avgpool", "kernel": 2, "stride": 2, "pad": [0, 1, 1, 0]}],
                            shape=(2, 5, 5)))
    assert a2.ops[0].attrs["out_shape"] == (2, 3, 3) and np.all(forward_float(a2, np.ones((2, 5, 5))) == 1)
    x = _rng("avg").normal(size=(2, 5, 5))
    got = forward_float_all(net, x)["a0"]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=np.nan)
    ref = np.array([[[np.nanmean(xp[c, i:i + 3, j:j + 3]) for j in range(5)] for i in range(5)] for c in range(2)])
    assert_close(ref, got)


def test_gap_clip_relu6_shuffle_affine_ops(tmp_path):
    np.savez(tmp_path / "w.npz", **{"af.scale": np.arange(1, 7.0), "af.shift": -np.arange(6.0)})
    (tmp_path / "n.json").write_text(json.dumps(gspec([
        {"name": "af", "type": "affine"}, {"name": "r6", "type": "relu6"},
        {"name": "cl", "type": "clip", "min": -1.5, "max": 2, "inputs": ["af"]},
        {"name": "sh", "type": "shuffle", "groups": 3, "inputs": ["cl"]},
        {"name": "cat", "type": "concat", "inputs": ["sh", "r6"]},
        {"name": "g", "type": "gap"}, {"name": "a", "type": "add", "inputs": ["g", "g"]}],
        shape=(6, 4, 4), weights="w.npz")))
    net = load_network(str(tmp_path / "n.json"))
    assert net.op("r6").type == "clip" and (net.op("r6").attrs["lo"], net.op("r6").attrs["hi"]) == (0.0, 6.0)
    assert net.op("sh").attrs["perm"] == shuffle_perm(6, 3) == [0, 2, 4, 1, 3, 5]
    x = _rng("misc").normal(0, 4, size=(6, 4, 4))
    outs = forward_float_all(net, x)
    af = x * np.arange(1, 7.0)[:, None, None] - np.arange(6.0)[:, None, None]
    assert_close(af, outs["af"])
    assert_close(np.clip(af, 0, 6), outs["r6"])
    assert_close(np.clip(af, -1.5, 2), outs["cl"])
    # ONNX's Reshape [g, C/g] -> Transpose -> Reshape
    assert_close(np.clip(af, -1.5, 2).reshape(3, 2, 4, 4).transpose(1, 0, 2, 3).reshape(6, 4, 4), outs["sh"])
    assert_close(2 * outs["cat"].mean(axis=(1, 2), keepdims=True), forward_float(net, x))


def test_maxpool_asymmetric_pads_and_any_window():
    net = load_network(gspec([{"name": "p", "type": "maxpool", "kernel": 3, "stride": 2, "pad": [0, 1, 1, 0]},
                              {"name": "q", "type": "maxpool", "kernel": 4, "stride": 2, "pad": [1, 0, 1, 0],
                               "inputs": ["input"]},
                              {"name": "cat", "type": "concat", "inputs": ["p", "q"]}], shape=(2, 9, 9)))
    p = net.op("p")
    assert p.attrs["pads"] == (0, 1, 1, 0) and p.attrs["pad"] == [0, 1, 1, 0] and p.attrs["out_shape"] == (2, 4, 4)
    assert net.op("q").attrs["out_shape"] == (2, 4, 4)
    x = _rng("mp").normal(size=(2, 9, 9))
    xp = np.pad(x, ((0, 0), (0, 1), (1, 0)), constant_values=-np.inf)
    ref = np.array([[[xp[c, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max() for j in range(4)] for i in range(4)]
                    for c in range(2)])
    assert_close(ref, forward_float_all(net, x)["p"])
    # the engine's windows are checked when engine layers are built
    with pytest.raises(NetworkError, match=r"layer 'p': max pool padding \(top, bottom, left, right\) \(0, 1, 1, 0\) "
                                           r"not supported by the engine"):
        to_engine_layers(load_network(gspec([conv(), {"name": "p", "type": "maxpool", "kernel": 3, "stride": 2,
                                                       "pad": [0, 1, 1, 0]}])))


@pytest.mark.parametrize("layers_,msg", [
    ([conv("a"), conv("b", out_channels=3, inputs=["input"]), {"name": "s", "type": "add", "inputs": ["a", "b"]}],
     r"layer 's': add of 'a' 4x8x8 and 'b' 3x8x8: the shapes must be equal"),
    ([conv("a", stride=2), {"name": "s", "type": "add", "inputs": ["a", "input"]}],
     r"layer 's': add of 'a' 4x4x4 and 'input' 4x8x8"),
    ([conv("a"), {"name": "s", "type": "add", "inputs": ["a"]}], r"layer 's': add takes 2 inputs, got 1 \(a\)"),
    ([conv("a", stride=2), {"name": "k", "type": "concat", "inputs": ["a", "input"]}],
     r"layer 'k': concat of 'a' 4x4x4 and 'input' 4x8x8: H and W must be equal"),
    ([{"name": "fl", "type": "flatten"}, {"name": "k", "type": "concat", "inputs": ["fl", "input"]}],
     r"layer 'k': concat of 'fl' \[256\] and 'input' 4x8x8"),
    ([conv("a", groups=3)], r"layer 'a': groups=3 must divide both the input channels \(4\) and out_channels \(4\)"),
    ([conv("a", out_channels=6, groups=4)], r"layer 'a': groups=4 must divide"),
    ([conv("a", groups=0)], r"layer 'a': groups must be a positive integer, got 0"),
    ([{"name": "s", "type": "shuffle", "groups": 3}], r"layer 's': groups=3 must divide the 4 channels"),
    ([{"name": "s", "type": "shuffle"}], r"layer 's': missing 'groups'"),
    ([conv("a", inputs=["b"]), conv("b")], r"layer 'a': input 'b' is not an earlier layer \(or 'input'"),
    ([conv("a", inputs="input")], r"layer 'a': inputs must be a list of layer names, got 'input'"),
    ([conv("a", inputs=[])], r"layer 'a': inputs must be a list of layer names"),
    ([conv("a"), conv("b", inputs=["input"])], r"layer 'a': its output is read by no layer and is not the network "
                                               r"output 'b'"),
    ([conv("input")], r"layer name 'input' is reserved for the network input"),
    ([{"name": "p", "type": "avgpool", "kernel": 3, "pad": 3}], r"layer 'p': average pool padding 3 must be in 0\.\.2"),
    ([{"name": "p", "type": "avgpool", "kernel": 3, "pad": [0, 0, 1, 3]}],
     r"layer 'p': average pool padding \(0, 0, 1, 3\) must be in 0\.\.2"),
    ([{"name": "p", "type": "avgpool", "kernel": 9}], r"layer 'p': pool window 9 larger than its padded input 8x8"),
    ([{"name": "p", "type": "avgpool", "kernel": 2, "count_include_pad": 1}],
     r"layer 'p': count_include_pad must be true or false, got 1"),
    ([{"name": "p", "type": "maxpool", "kernel": 3, "pad": [0, 3, 0, 0]}],
     r"layer 'p': max pool padding \(0, 3, 0, 0\) must be in 0\.\.2"),
    ([{"name": "fl", "type": "flatten"}, {"name": "g", "type": "gap"}], r"layer 'g': global average pool after a "
                                                                        r"flatten"),
    ([{"name": "fl", "type": "flatten"}, {"name": "p", "type": "avgpool", "kernel": 2}],
     r"layer 'p': average pool after a flatten"),
    ([{"name": "fl", "type": "flatten"}, conv("c", inputs=["fl"])], r"layer 'c': convolution after a flatten"),
    ([{"name": "c", "type": "clip", "min": 2, "max": 1}, conv()], r"layer 'c': clip min 2 is above max 1"),
    ([{"name": "c", "type": "clip", "min": "low"}, conv()], r"layer 'c': min must be a number, got 'low'"),
    ([conv("a")], None),
])
def test_graph_shape_errors(layers_, msg):
    if msg is None:
        load_network(gspec(layers_))
        return
    with pytest.raises(NetworkError, match=msg):
        load_network(gspec(layers_))


def test_chain_seeded_weights_unchanged_by_the_graph_format():
    """Layers without the new keys draw the same seeded weights as before."""
    a = load_network(spec([conv("c"), {"name": "b", "type": "batchnorm"}, {"name": "f", "type": "fc",
                                                                           "out_features": 3}]))
    b = load_network(spec([conv("c", inputs=["input"], groups=1), {"name": "b", "type": "batchnorm"},
                           {"name": "f", "type": "fc", "out_features": 3, "inputs": ["b"]}]))
    for x, y in zip(a.ops, b.ops):
        for key in ("weight", "bias"):
            assert np.array_equal(getattr(x, key), getattr(y, key)) if getattr(x, key) is not None else True
    rng = np.random.default_rng(5)
    assert np.array_equal(a.ops[0].weight, rng.normal(0, np.sqrt(2.0 / 27), (4, 3, 3, 3)))


@pytest.mark.parametrize("layers_,msg", [
    ([conv("a"), conv("b", inputs=["input"]), {"name": "s", "type": "add", "inputs": ["a", "b"]}],
     r"layer 's': add layers are not supported by the engine yet"),
    ([conv("a", groups=2)], r"layer 'a': grouped convolutions \(groups=2\) are not supported by the engine yet"),
    ([conv("a"), {"name": "r", "type": "relu"}], None),
])
def test_to_engine_layers_takes_chains_only(layers_, msg):
    if msg is None:
        to_engine_layers(load_network(gspec(layers_)))
        return
    with pytest.raises(NetworkError, match=msg):
        to_engine_layers(load_network(gspec(layers_)))


def test_to_engine_layers_refuses_a_branch():
    net = load_network(gspec([conv("a"), {"name": "r", "type": "relu"}]))
    net.ops[1].inputs = ["input"]
    with pytest.raises(NetworkError, match=r"layer 'r' reads 'input', not the layer before it \('a'\): the engine "
                                           r"runs a single chain"):
        to_engine_layers(net)
    net = load_network(gspec([conv("a"), {"name": "r", "type": "relu"}]))
    with pytest.raises(NetworkError, match=r"the network output 'a' is not its last layer 'r'"):
        to_engine_layers(Network(net.name, net.input_shape, net.ops, output="a"))
