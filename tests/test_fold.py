"""The fold pass (golden/passes/fold.py): each step alone and all of them,
exact against the unfolded float graph (1e-9 of the output's largest value),
on graphs where a step applies and where it must not."""
from __future__ import annotations

import copy
import zlib

import numpy as np
import pytest

from golden.errors import NetworkError
from golden.network import Network, Op, forward_float, forward_float_all, load_network
from golden.passes import fold as F


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def net_of(layers_, shape=(4, 8, 8), seed=5):
    return load_network({"name": "t", "input_shape": list(shape), "weights": {"seed": seed}, "layers": layers_})


def conv(name, **kw):
    d = {"name": name, "type": "conv", "out_channels": 4, "kernel": 3, "pad": 1}
    d.update(kw)
    return d


def bn(name, **kw):
    return {"name": name, "type": "batchnorm", **kw}


def close(ref, got, rel=1e-9):
    ref, got = np.asarray(ref), np.asarray(got)
    assert ref.shape == got.shape
    assert float(np.abs(ref - got).max()) <= rel * max(float(np.abs(ref).max()), 1e-300)


def same_function(a: Network, b: Network, n=3, rel=1e-9):
    for i in range(n):
        x = _rng("x", a.name, i).normal(size=a.input_shape)
        close(forward_float(a, x), forward_float(b, x), rel)


def types(net):
    return {op.name: op.type for op in net.ops}


def snapshot(net):
    """Everything a pass could modify by mistake."""
    return [(op.name, op.type, copy.deepcopy(op.attrs), list(op.inputs),
             None if op.weight is None else op.weight.copy(), None if op.bias is None else op.bias.copy(),
             None if op.bn is None else {k: np.copy(v) for k, v in op.bn.items()}) for op in net.ops], net.output


def assert_unchanged(before, net):
    after = snapshot(net)
    assert before[1] == after[1] and len(before[0]) == len(after[0])
    for a, b in zip(before[0], after[0]):
        assert a[:4] == b[:4]
        for x, y in zip(a[4:6], b[4:6]):
            assert (x is None and y is None) or np.array_equal(x, y)
        if a[6] is not None:
            assert all(np.array_equal(a[6][k], b[6][k]) for k in a[6])


# ------------------------------------------------------------- BatchNorm

def test_batchnorm_folds_into_conv_fc_and_grouped_conv():
    net = net_of([conv("c", bias=False), bn("b"), {"name": "r", "type": "relu"},
                  conv("g", groups=2, stride=2), bn("gb", eps=1e-3), bn("gb2"),
                  conv("dw", groups=4), bn("dwb"),
                  {"name": "f", "type": "fc", "out_features": 6}, bn("fb")])
    before = snapshot(net)
    out = F.fold_batchnorm(net)
    assert_unchanged(before, net)
    assert [o.name for o in out.ops] == ["c", "r", "g", "dw", "f"]
    assert out.op("g").attrs["folded"] == ["gb", "gb2"] and out.op("f").attrs["folded"] == ["fb"]
    assert out.op("c").bias is not None and "bias" not in out.op("c").attrs
    assert out.op("r").inputs == ["c"] and out.op("dw").inputs == ["g"] and out.output == "f"
    same_function(net, out)


@pytest.mark.parametrize("layers_,where", [
    ([bn("b"), conv("c")], "on the network input"),
    ([conv("a"), conv("c", inputs=["input"]), {"name": "k", "type": "concat", "inputs": ["a", "c"]}, bn("b")],
     "after a concat"),
    ([conv("a"), {"name": "s", "type": "add", "inputs": ["a", "input"]}, bn("b")], "after an add"),
    ([conv("a"), {"name": "p", "type": "maxpool", "kernel": 2}, bn("b")], "after a pool"),
    ([conv("a"), {"name": "r", "type": "relu"}, bn("b")], "after a relu"),
    ([conv("a"), bn("b"), {"name": "s", "type": "add", "inputs": ["b", "a"]}], "on a conv read elsewhere too"),
    ([{"name": "fl", "type": "flatten"}, bn("b"), {"name": "f", "type": "fc", "out_features": 3}],
     "on flattened features"),
])
def test_unfoldable_batchnorm_becomes_affine(layers_, where):
    net = net_of(layers_)
    out = F.fold_batchnorm(net)
    assert types(out)["b"] == "affine", where
    b = out.op("b")
    assert b.bn is None and b.weight.shape == b.bias.shape == (net.shape("b")[0],)
    same_function(net, out)
    with pytest.raises(NetworkError, match=r"layer 'b': BatchNorm must follow a conv or fc layer to be folded"):
        F.fold_batchnorm(net, strict=True)


def test_batchnorm_after_the_network_output():
    """A conv whose output is the network output cannot take a BatchNorm that
    reads it: the output would change."""
    net = net_of([conv("a"), bn("b"), {"name": "r", "type": "relu"}])
    net = Network(net.name, net.input_shape, net.ops, output="a")
    out = F.fold_batchnorm(net)
    assert types(out)["b"] == "affine" and out.output == "a"
    x = _rng("outbn").normal(size=net.input_shape)
    close(forward_float(net, x), forward_float(out, x))


# ----------------------------------------------------------------- affine

def test_affine_folds_into_conv_fc_and_affine():
    net = net_of([conv("c"), {"name": "a1", "type": "affine"}, {"name": "a2", "type": "affine"},
                  {"name": "r", "type": "relu"}, {"name": "f", "type": "fc", "out_features": 5, "bias": False},
                  {"name": "a3", "type": "affine"}])
    before = snapshot(net)
    out = F.fold_affine(net)
    assert_unchanged(before, net)
    assert [o.name for o in out.ops] == ["c", "r", "f"]
    assert out.op("c").attrs["folded"] == ["a1", "a2"] and out.op("f").bias is not None
    same_function(net, out)


def test_affines_merge_where_no_conv_takes_them():
    net = net_of([{"name": "a1", "type": "affine"}, {"name": "a2", "type": "affine"}, conv("c")])
    out = F.fold_affine(net)
    assert [o.name for o in out.ops] == ["a1", "c"] and out.op("a1").attrs["folded"] == ["a2"]
    same_function(net, out)


def test_affine_on_a_shared_tensor_stays():
    net = net_of([conv("c"), {"name": "a", "type": "affine"}, {"name": "s", "type": "add", "inputs": ["a", "c"]}])
    out = F.fold_affine(net)
    assert types(out) == types(net)
    same_function(net, out)


def test_affine_to_depthwise_conv():
    net = net_of([conv("c"), {"name": "s", "type": "add", "inputs": ["c", "input"]}, {"name": "a", "type": "affine"},
                  {"name": "fl", "type": "flatten"}, {"name": "b", "type": "affine"},
                  {"name": "f", "type": "fc", "out_features": 3}])
    out = F.affine_to_conv(net)
    a, b = out.op("a"), out.op("b")
    assert a.type == b.type == "conv"
    assert a.weight.shape == (4, 1, 1, 1) and a.attrs["groups"] == 4 and a.attrs["kernel"] == 1
    assert a.attrs["pads"] == (0, 0, 0, 0) and a.attrs["stride"] == 1 and a.attrs["out_shape"] == (4, 8, 8)
    assert b.weight.shape == (256, 1, 1, 1) and b.attrs["groups"] == 256      # on the flattened features
    assert np.array_equal(a.weight[:, 0, 0, 0], net.op("a").weight) and np.array_equal(a.bias, net.op("a").bias)
    same_function(net, out)


# ---------------------------------------------------------------- dropout

def test_remove_dropout_rewires_readers_and_output():
    net = net_of([conv("c"), {"name": "d1", "type": "dropout"}, {"name": "r", "type": "relu"},
                  {"name": "s", "type": "add", "inputs": ["d1", "r"]}, {"name": "d2", "type": "dropout"}])
    out = F.remove_dropout(net)
    assert [o.name for o in out.ops] == ["c", "r", "s"]
    assert out.op("r").inputs == ["c"] and out.op("s").inputs == ["c", "r"] and out.output == "s"
    same_function(net, out, rel=0)


# -------------------------------------------------------------------- SVD

def test_svd_split_on_a_graph():
    net = net_of([{"name": "fl", "type": "flatten"}, {"name": "f", "type": "fc", "out_features": 10, "svd_rank": 10,
                                                      "rho": 0.5},
                  {"name": "r", "type": "relu"}, {"name": "s", "type": "add", "inputs": ["f", "r"]},
                  {"name": "g", "type": "fc", "out_features": 4, "svd_energy": 1.0}], shape=(3, 4, 4))
    out = F.svd_split(net)
    assert [o.name for o in out.ops] == ["fl", "f_svd_a", "f_svd_b", "r", "s", "g_svd_a", "g_svd_b"]
    assert out.op("r").inputs == ["f_svd_b"] and out.op("s").inputs == ["f_svd_b", "r"]
    assert out.output == "g_svd_b" and out.op("f_svd_a").attrs["rho"] == 0.5
    same_function(net, out)          # full rank: the same function


def test_network_wrappers_still_take_op_lists():
    from golden.network import fold_batchnorm, svd_rank_for, svd_split
    net = net_of([conv("c"), bn("b"), {"name": "f", "type": "fc", "out_features": 4, "svd_rank": 2}])
    ops = fold_batchnorm(net.ops)
    assert [o.name for o in ops] == ["c", "f"]
    assert [o.name for o in svd_split(ops)] == ["c", "f_svd_a", "f_svd_b"]
    assert svd_rank_for(np.diag([3.0, 1.0]), 0.8) == 1


# -------------------------------------------------------------- the whole

def test_preactivation_batchnorm_becomes_a_depthwise_conv():
    """DenseNet's block: concat -> BatchNorm -> ReLU -> conv. The BatchNorm
    reads a concat (read by the next concat too), so it cannot be folded: it
    becomes a depthwise 1x1 conv (groups = C). The BatchNorm after each conv
    folds into it."""
    net = net_of([
        conv("c0", out_channels=6), bn("b0"), {"name": "r0", "type": "relu"},
        bn("pre1"), {"name": "a1", "type": "relu"}, conv("c1", kernel=1, pad=0), bn("b1"),
        {"name": "q1", "type": "relu"}, conv("c1b", out_channels=2),
        {"name": "cat1", "type": "concat", "inputs": ["r0", "c1b"]},
        bn("pre2"), {"name": "a2", "type": "relu"}, conv("c2", out_channels=2),
        {"name": "cat2", "type": "concat", "inputs": ["cat1", "c2"]},
        bn("post"), {"name": "d", "type": "dropout"}, {"name": "g", "type": "gap"},
        {"name": "f", "type": "fc", "out_features": 3}, {"name": "fa", "type": "affine"}], shape=(3, 8, 8))
    before = snapshot(net)
    out = F.fold(net)
    assert_unchanged(before, net)
    t = types(out)
    assert "b0" not in t and "b1" not in t and "d" not in t and "fa" not in t
    for name, c in (("pre1", 6), ("pre2", 8), ("post", 10)):
        op = out.op(name)
        assert op.type == "conv" and op.attrs["groups"] == c and op.weight.shape == (c, 1, 1, 1), name
        assert op.attrs["from"] == "batchnorm"
    assert out.op("c0").attrs["folded"] == ["b0"] and out.op("f").attrs["folded"] == ["fa"]
    assert out.op("pre1").inputs == ["r0"] and out.op("cat2").inputs == ["cat1", "c2"]
    same_function(net, out)
    # each step alone keeps the function too
    step = net
    for p in (F.remove_dropout, F.fold_batchnorm, F.fold_affine, F.affine_to_conv, F.svd_split):
        nxt = p(step)
        same_function(step, nxt)
        step = nxt


def test_fold_keeps_shuffle_and_flatten():
    net = net_of([conv("c", out_channels=6), {"name": "sh", "type": "shuffle", "groups": 3}, bn("b"),
                  {"name": "fl", "type": "flatten"}, {"name": "f", "type": "fc", "out_features": 2}])
    out = F.fold(net)
    assert [o.type for o in out.ops] == ["conv", "shuffle", "conv", "flatten", "fc"]
    same_function(net, out)


def test_fold_every_op_type_against_the_float_graph():
    net = net_of([
        bn("bn_in"), conv("c1", out_channels=8), bn("b1"), {"name": "r1", "type": "relu6"},
        conv("g", out_channels=8, groups=4), {"name": "ga", "type": "affine"},
        {"name": "s", "type": "add", "inputs": ["ga", "r1"]}, bn("bs"),
        {"name": "sh", "type": "shuffle", "groups": 2},
        {"name": "p", "type": "avgpool", "kernel": 3, "stride": 2, "pad": 1},
        {"name": "m", "type": "maxpool", "kernel": 3, "stride": 1, "pad": [1, 1, 0, 2], "inputs": ["sh"]},
        {"name": "mp", "type": "maxpool", "kernel": 2, "stride": 2},
        {"name": "k", "type": "concat", "inputs": ["p", "mp"]}, {"name": "cl", "type": "clip", "min": -1, "max": 1},
        {"name": "gp", "type": "gap"}, {"name": "f", "type": "fc", "out_features": 5, "svd_rank": 5},
        {"name": "d", "type": "dropout"}, bn("fb")], shape=(4, 10, 10))
    out = F.fold(net)
    assert {o.type for o in out.ops} == {"conv", "clip", "add", "shuffle", "avgpool", "maxpool", "concat", "gap",
                                         "fc"}
    assert out.op("bn_in").attrs["groups"] == 4 and out.op("bs").attrs["groups"] == 8
    assert out.op("g").attrs["folded"] == ["ga"]
    same_function(net, out)
    outs_a = forward_float_all(net, np.ones(net.input_shape))
    outs_b = forward_float_all(out, np.ones(net.input_shape))
    for name in ("k", "cl", "gp"):
        close(outs_a[name], outs_b[name])


def test_ops_built_in_python():
    """fold works on a Network built by hand (chain ops without inputs)."""
    rng = _rng("py")
    w = rng.normal(size=(3, 2, 3, 3))
    ops = [Op("c", "conv", {"stride": 1, "pads": (1, 1, 1, 1), "kernel": 3, "out_shape": (3, 5, 5)}, w, None),
           Op("b", "batchnorm", {"out_shape": (3, 5, 5)},
              bn={"gamma": rng.uniform(0.5, 2, 3), "beta": rng.normal(size=3), "mean": rng.normal(size=3),
                  "var": rng.uniform(0.5, 2, 3), "eps": 1e-5})]
    net = Network("py", (2, 5, 5), ops)
    out = F.fold(net)
    assert [o.name for o in out.ops] == ["c"] and out.output == "c"
    same_function(net, out)
