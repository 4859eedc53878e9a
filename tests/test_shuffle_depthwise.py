"""A channel shuffle read by a depthwise layer moves behind it (the fuse pass,
golden/passes/fuse.py): the depthwise layer reads the unshuffled tensor with
its weights and bias permuted and writes its output in the shuffled channel
order, which its readers fold into their weight columns. The RTL does not run
``in_shuffle``; after the move no descriptor needs it, and the program is bit
for bit the network the golden model runs with the shuffle in place (the
same program compiled without the move and with the grouped layers kept)."""
from __future__ import annotations


import numpy as np
import pytest

from golden import compiler, isa
from golden.config import EngineConfig
from golden.network import forward_float_all, load_network
from golden.passes import fold, fuse, groups

from netspec import CFGS, SMALL, conv, mismatches, op, seeded_network
from netspec import rng as _rng
from netspec import descriptors as _descriptors




NETS = {
    # ShuffleNet's unit: 1x1, shuffle, depthwise 3x3 (+ReLU), grouped 1x1
    "unit": {"input_shape": [8, 6, 6], "layers": [
        conv("c", 32, 1), op("cr", "relu"), op("sh", "shuffle", groups=4),
        conv("dw", 32, 3, groups=32), op("r", "relu"), conv("g", 32, 1, groups=4)]},
    # the depthwise output read by two layers (a grouped 1x1 and a dense 3x3)
    # and an average pool, which keeps the layout, then concatenated
    "two_readers": {"input_shape": [8, 6, 6], "layers": [
        conv("c", 32, 1), op("sh", "shuffle", groups=4), conv("dw", 32, 3, groups=32), op("r", "relu"),
        conv("g", 32, 1, groups=4), conv("d", 16, 3, inputs=["r"]),
        op("ap", "avgpool", ["r"], kernel=3, stride=1, pad=1), op("cat", "concat", ["g", "d", "ap"]),
        conv("h", 8, 1)]},
    # stride 2, ReLU6 and a fused max pool, a second depthwise layer taking
    # the permutation on (through another shuffle), a grouped 1x1, an FC
    "chain": {"input_shape": [8, 10, 10], "layers": [
        conv("c", 24, 1), op("sh", "shuffle", groups=3), conv("dw", 24, 3, groups=24, stride=2),
        op("r6", "relu6"), op("mp", "maxpool", kernel=2, stride=1),
        op("sh2", "shuffle", groups=2), conv("dw2", 24, 3, groups=24), conv("g", 24, 1, groups=3),
        op("gp", "gap"), op("f", "flatten"), op("fc", "fc", out_features=5)]},
    # the depthwise output takes a residual: the shuffle stays (in_shuffle)
    "residual": {"input_shape": [8, 6, 6], "layers": [
        conv("c", 16, 1), op("sh", "shuffle", groups=4), conv("dw", 16, 3, groups=16),
        op("a", "add", ["dw", "c"]), conv("g", 16, 1, groups=4)]},
}

#: layer -> the shuffle moved behind it, per network ("residual": none)
MOVED = {"unit": {"dw": ["sh"]}, "two_readers": {"dw": ["sh"]}, "chain": {"dw": ["sh"], "dw2": ["sh2"]},
         "residual": {}}


def network(name):
    return seeded_network(NETS, name)


_CACHE = {}


def programs(name, cfg_name):
    """(net, calibration, the program, the reference: the same network
    compiled with the shuffle in place and the grouped layers kept, as the
    golden model runs them)."""
    key = (name, cfg_name)
    if key not in _CACHE:
        net = network(name)
        x = _rng("calib", name).normal(size=(2,) + tuple(net.input_shape))
        cfg = CFGS[cfg_name]
        prog = compiler.compile_network(net, cfg, x)
        saved = fuse.MOVE_SHUFFLE, groups.LOWER
        fuse.MOVE_SHUFFLE, groups.LOWER = False, False
        try:
            ref = compiler.compile_network(net, cfg, x)
        finally:
            fuse.MOVE_SHUFFLE, groups.LOWER = saved
        _CACHE[key] = (net, x, prog, ref)
    return _CACHE[key]




@pytest.mark.parametrize("cfg_name", list(CFGS))
@pytest.mark.parametrize("name", list(NETS))
def test_moved_shuffle_is_bit_exact(name, cfg_name):
    net, x, prog, ref = programs(name, cfg_name)
    assert {k: v["shuffles"] for k, v in prog.graph.moved.items()} == MOVED[name]
    assert not ref.graph.moved
    # per-layer formats: a permutation changes no range
    assert {k: v for k, v in prog.fl.items() if k in ref.fl} == ref.fl and prog.fl_input == ref.fl_input
    descs = dict(zip([q.name for q in prog.layers], _descriptors(prog)))
    for n, d in descs.items():
        if MOVED[name]:
            # nothing the RTL refuses is left: no in_shuffle, only depthwise groups
            assert isa.unsupported_features(d) == [], n
        isa.check(d, prog.cfg, engine=False)
    for n in MOVED[name]:
        assert descs[n].in_shuffle == 0 and descs[n].groups == descs[n].in_c == descs[n].out_c
    for img in (x[0], 3.0 * _rng("unseen", name).normal(size=net.input_shape)):
        assert mismatches(prog, ref, img) == []


def test_moved_layers_and_notes():
    _, _, prog, _ = programs("unit", "small")
    g = prog.graph
    dw = g.layer("dw")
    # reads the unshuffled tensor, writes the shuffled order: logical channel o
    # of its output is physical channel perm[o]
    assert dw.in_shuffle == 0 and dw.input == "cr" and dw.groups == 32
    perm = g.moved["dw"]["perm"]
    assert perm == [(i % 4) * 8 + i // 4 for i in range(32)] and g.tensors["r"].phys == tuple(perm)
    assert dw.relu and dw.output == "r"
    # the grouped reader: one dense layer, the shuffle in its weight columns
    assert g.lowered["g"]["how"] == "dense" and g.layer("g").groups == 1 and g.layer("g").in_shuffle == 0
    note = [n for n in prog.notes if n.startswith("dw:")]
    assert len(note) == 1 and "channel shuffle 'sh' moved behind this depthwise layer" in note[0]
    _, _, prog, _ = programs("residual", "small")
    assert prog.graph.layer("dw").in_shuffle == 4 and prog.graph.layer("dw").residual == "c"
    note = [n for n in prog.notes if n.startswith("dw:")]
    assert note == ["dw: the channel shuffle 'sh' stays its input shuffle (it reaches the add 'a')"]


def test_residual_keeps_the_shuffle():
    _, _, prog, _ = programs("residual", "default")
    d = dict(zip([q.name for q in prog.layers], _descriptors(prog)))
    assert d["dw"].in_shuffle == 4 and d["dw"].res == 1
    assert [f for f, _ in isa.unsupported_features(d["dw"])] == ["in_shuffle"]


def test_network_output_keeps_the_shuffle():
    net = load_network({"name": "out", "input_shape": [8, 6, 6], "weights": {"seed": 1}, "layers": [
        conv("pw", 8, 1), op("sh", "shuffle", groups=2), conv("dw", 8, 3, groups=8)]})
    g = fuse.fuse(fold.fold(net), SMALL)
    assert g.layer("dw").in_shuffle == 2 and not g.moved
    assert any("stays its input shuffle (it reaches the network output)" in n for n in g.notes)


@pytest.mark.parametrize("name", list(NETS))
def test_float_forward_equals_the_network(name):
    """The fused layers in real arithmetic: every tensor (logical channels)
    is the network op's value."""
    net = network(name)
    g = fuse.fuse(fold.fold(net), SMALL)
    x = _rng("ff", name).normal(size=net.input_shape)
    want = forward_float_all(fold.fold(net), x)
    got = fuse.float_forward(g, x)
    for tname, t in g.tensors.items():
        if tname in want:
            v = fuse.logical(t, fuse.tensor_value(g.tensors, got, tname))
            np.testing.assert_allclose(v.ravel(), want[tname].ravel(), rtol=1e-9, atol=1e-9, err_msg=tname)


def _rebuild(prog, net):
    img, desc_addr, _ = compiler.build_image(prog.layers, prog.cfg, net.input_shape, 0, None, prog.plan)
    prog.image, prog.desc_addr = img, desc_addr


@pytest.mark.parametrize("what", ["weights", "bias"])
def test_a_wrong_permutation_is_caught(what):
    """The depthwise layer's weights (or bias) left in the network's order,
    not permuted: the same check finds the network output and the depthwise
    output wrong (the layer agrees with its own integer run: only the
    comparison with the reference catches it)."""
    net, x, prog, ref = programs("unit", "default")
    q = next(q for q in prog.layers if q.name == "dw")
    perm = np.asarray(prog.graph.moved["dw"]["perm"])
    attr = "w_q" if what == "weights" else "b_q"
    good = getattr(q, attr)
    assert good is not None and not np.array_equal(good[perm], good)
    try:
        setattr(q, attr, good[perm])                  # back in the order the network has them
        _rebuild(prog, net)
        found = mismatches(prog, ref, x[0])
        assert "network output" in found and "tensor r" in found
        assert not any(f.startswith("layer ") for f in found)
    finally:
        setattr(q, attr, good)
        _rebuild(prog, net)
    assert mismatches(prog, ref, x[0]) == []


def test_shufflenet_has_no_channel_shuffle_left():
    """ShuffleNet v1 (the onnx package's light model): every depthwise 3x3
    reads a shuffle; each takes it behind it, and no layer keeps an
    ``in_shuffle``."""
    from golden import zoo
    from golden.onnx_import import load_onnx, realistic_weights

    net = load_onnx(realistic_weights(zoo.light_model("shufflenet", 224), seed=0), name="shufflenet",
                    drop_final_softmax=True)
    g = fuse.fuse(fold.fold(net), EngineConfig())
    dws = [L.name for L in g.layers if L.groups > 1 and L.groups == L.in_shape[0] == L.out_shape[0]]
    assert len(dws) == 16 and set(g.moved) == set(dws)
    assert not any(L.in_shuffle > 1 for L in g.layers)
