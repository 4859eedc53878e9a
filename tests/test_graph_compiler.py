"""The compiler as a pipeline of graph passes (golden/passes/): chain programs
unchanged byte for byte, graph networks (residual, concat, grouped,
shuffle, average pools, ReLU6) bit exact between the image run and the
layer-by-layer run and close to the float network, and each pass alone."""
from __future__ import annotations

import json
import os
import sys
import zlib

import numpy as np
import pytest

from golden import arith, compiler, funcmodel, isa, layers, memimage, report
from golden.config import EngineConfig
from golden.errors import NetworkError
from golden.network import INPUT, forward_float, forward_float_all, load_network
from golden.passes import allocate, emit, fold, fuse, groups, quantise, tile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "data"))
import chain_cases  # noqa: E402
from netspec import conv, op

SMALL = EngineConfig(pm=8, pn=8, ovsf_len=8, in_buf_elems=8192, wgt_buf_elems=8192, out_buf_elems=4096)
CFGS = {
    "small16": SMALL,
    "small8": EngineConfig(data_bits=8, acc_bits=32, alpha_bits=8, pm=8, pn=8, ovsf_len=8, in_buf_elems=8192,
                           wgt_buf_elems=8192, out_buf_elems=4096),
    "default16": EngineConfig(),
    "default8": EngineConfig(data_bits=8, acc_bits=32, alpha_bits=8),
}
#: SQNR of the network output against the float network, random weights.
SQNR_MIN = {16: 60.0, 8: 20.0}


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# ------------------------------------------------------------ chains

with open(os.path.join(HERE, "data", "chain_images.json")) as _f:
    REFERENCE = json.load(_f)
CHAIN_CASES = chain_cases.cases()


def test_chain_reference_covers_the_cases():
    assert set(REFERENCE) == {c[0] for c in CHAIN_CASES} and len(CHAIN_CASES) >= 60


@pytest.mark.parametrize("case", CHAIN_CASES, ids=[c[0] for c in CHAIN_CASES])
def test_chain_programs_are_unchanged(case):
    """A chain compiles to the program the chain compiler gave (reference:
    tests/data/chain_images.json, produced by the compiler of commit 9f4c76f,
    tiles refined since: see tests/data/chain_cases.py): the same image bytes,
    descriptors, regions, formats and tiles."""
    cid, spec, cfg, opts, calib = case
    got = json.loads(json.dumps(chain_cases.fingerprint(chain_cases.compile_case(spec, cfg, opts, calib))))
    want = REFERENCE[cid]
    for key in ("descriptors", "regions", "layers", "layer_regions", "fl_input", "desc_addr"):
        assert got[key] == want[key], (cid, key)
    assert got == want


# ------------------------------------------------------------ graphs



GRAPHS = {
    # ResNet basic block, ReLU after the add
    "residual_relu": {"input_shape": [3, 8, 8], "layers": [
        conv("s", 8), op("sr", "relu"), conv("c1", 8), op("r1", "relu"), conv("c2", 8),
        op("a", "add", ["c2", "sr"]), op("ar", "relu"), conv("h", 5, 1)]},
    # MobileNet-v2 inverted residual: ReLU6, depthwise, no ReLU after the add
    "inverted_residual": {"input_shape": [8, 8, 8], "layers": [
        conv("e", 24, 1), op("e6", "relu6"), conv("dw", 24, 3, groups=24), op("d6", "relu6"), conv("p", 8, 1),
        op("a", "add", ["p", "input"]), conv("h", 4, 1)]},
    # projection shortcut (strided 1x1 conv on the block input)
    "projection": {"input_shape": [6, 9, 9], "layers": [
        conv("ca", 12, 3, stride=2), op("ra", "relu"), conv("cb", 12),
        conv("cp", 12, 1, inputs=["input"], stride=2, pad=0), op("a", "add", ["cb", "cp"]), op("ar", "relu")]},
    # an add of two ReLU outputs: no layer can take it
    "standalone_add": {"input_shape": [5, 7, 7], "layers": [
        conv("c1", 10), op("r1", "relu"), conv("c2", 10, inputs=["input"]), op("r2", "relu"),
        op("a", "add", ["r1", "r2"]), conv("h", 6, 1)]},
    # SqueezeNet fire module (16 + 16 channels: no gap at PN 8 or 16)
    "fire": {"input_shape": [6, 8, 8], "layers": [
        conv("sq", 8, 1), op("sr", "relu"), conv("e1", 16, 1), op("e1r", "relu"),
        conv("e3", 16, 3, inputs=["sr"]), op("e3r", "relu"), op("cat", "concat", ["e1r", "e3r"]), conv("h", 10, 1)]},
    # 20 + 12 channels: a gap; a concat nested in another, a pool reading it
    "concat_gap": {"input_shape": [4, 6, 6], "layers": [
        conv("a", 20), op("ar", "relu"), conv("b", 12, inputs=["input"]), op("cat", "concat", ["ar", "b"]),
        conv("h", 7), op("p", "maxpool", ["cat"], kernel=3, stride=1, pad=1),
        op("cat2", "concat", ["h", "p", "cat"])]},
    # DenseNet block: nested concats share one buffer; BN-ReLU on a concat
    "dense": {"input_shape": [3, 8, 8], "layers": [
        conv("c0", 8), op("r0", "relu"), conv("c1", 4), op("cat1", "concat", ["r0", "c1"]),
        op("bn1", "batchnorm"), op("br1", "relu"), conv("c2", 4), op("cat2", "concat", ["cat1", "c2"]),
        conv("c3", 4), op("cat3", "concat", ["cat2", "c3"]), conv("t", 8, 1),
        op("ap", "avgpool", kernel=2, stride=2)]},
    # ShuffleNet unit: grouped 1x1, shuffle, depthwise, residual; a shuffle into a dense conv
    "shuffle": {"input_shape": [8, 6, 6], "layers": [
        conv("g1", 8, 1, groups=2), op("r1", "relu"), op("sh", "shuffle", groups=2),
        conv("dw", 8, 3, groups=8), conv("g2", 8, 1, groups=2), op("a", "add", ["g2", "input"]),
        op("ar", "relu"), op("sh2", "shuffle", groups=4), conv("h", 6, 1)]},
    # a shuffle of a gapped tensor: folded into dense weights, a grouped reader
    # densified, a pool reading it through a copy
    "shuffle_gap": {"input_shape": [4, 6, 6], "layers": [
        conv("a", 12), conv("b", 4, inputs=["input"]), op("cat", "concat", ["a", "b"]),
        op("sh", "shuffle", groups=4), conv("d", 8, 1), conv("g", 8, 3, inputs=["sh"], groups=2),
        op("mp", "maxpool", ["sh"], kernel=2, stride=2), op("r", "relu", ["sh"]),
        op("cat2", "concat", ["d", "g", "r"]), op("mp2", "maxpool", kernel=2, stride=2),
        op("c2", "concat", ["mp", "mp2"])]},
    # average pools (count_include_pad 0 and 1 at borders), an asymmetric
    # 5x5 max pool, global average pools, a concat of them and an FC
    "pools_gap_fc": {"input_shape": [5, 9, 9], "layers": [
        conv("c", 9), op("r", "relu"), op("ap0", "avgpool", kernel=3, stride=1, pad=1),
        op("ap1", "avgpool", ["r"], kernel=3, stride=2, pad=1, count_include_pad=True),
        op("mp", "maxpool", ["ap0"], kernel=5, stride=2, pad=[2, 1, 0, 2]), op("g", "gap", ["mp"]),
        op("g2", "gap", ["ap1"]), op("gc", "concat", ["g", "g2"]), op("f", "flatten"),
        op("fc", "fc", out_features=7)]},
    # ReLU6, a standalone clip and ReLU, the input in a concat, a tensor in two concats
    "relu6_copies": {"input_shape": [4, 6, 6], "layers": [
        op("ri", "relu"), conv("c", 8), op("c6", "relu6"), conv("d", 8, inputs=["ri"]),
        op("cat", "concat", ["c6", "d"]), op("cl", "clip", min=0, max=1.5), op("cat2", "concat", ["cl", "input"]),
        conv("h", 8, 3), op("cat3", "concat", ["c6", "h"])]},
    # residuals with gaps (a layer writing in the residual's layout), adds of
    # unlike layouts, add(x, x)
    "residual_gap": {"input_shape": [4, 6, 6], "layers": [
        conv("a", 12), conv("b", 4, inputs=["input"]), op("cat", "concat", ["a", "b"]),
        conv("c", 16, 1), op("add", "add", ["c", "cat"]), conv("d", 16, 1, inputs=["input"]), op("r", "relu"),
        op("add2", "add", ["r", "cat"]), op("add3", "add", ["add2", "add2"]), op("add4", "add", ["add3", "add"])]},
    # FCs reading a concat part (a slice), a fused residual of FC outputs
    "fc_slice": {"input_shape": [4, 5, 5], "layers": [
        conv("a", 12), op("ar", "relu"), conv("b", 5, inputs=["input"]), op("cat", "concat", ["ar", "b"]),
        conv("h", 6, inputs=["cat"]), op("f", "flatten", ["b"]), op("fc", "fc", out_features=9),
        op("f2", "flatten", ["h"]), op("fc2", "fc", out_features=9), op("ad", "add", ["fc", "fc2"]),
        op("rr", "relu"), op("fc3", "fc", out_features=4)]},
    # a residual in a slice off the bus at 8 bits, PN 8 (copied out)
    "residual_slice": {"input_shape": [3, 5, 5], "layers": [
        conv("a", 8), conv("b", 8, inputs=["input"]), op("cat", "concat", ["a", "b"]), conv("c", 8, 1),
        op("ad", "add", ["c", "b"]), op("r", "relu")]},
    # a fused pool that cannot be tiled (small buffers): CONV + POOL, then a residual
    "unfused_pool": {"input_shape": [16, 22, 22], "layers": [
        conv("c", 8, 3), op("r", "relu"), op("p", "maxpool", kernel=3, stride=2), conv("d", 8, 3, inputs=["p"]),
        op("a", "add", ["d", "p"])]},
    # the network output is a flattened, gapped concat
    "flat_output": {"input_shape": [3, 6, 6], "layers": [
        conv("c", 4), op("cat", "concat", ["c", "input"]), op("f", "flatten"), op("r", "relu")]},
}


def graph_net(name):
    return load_network(dict(GRAPHS[name], name=name, weights={"seed": zlib.crc32(name.encode()) % 1000}))


_PROGS = {}


def compiled(name, cfg_name, reuse=False):
    key = (name, cfg_name, reuse)
    if key not in _PROGS:
        net = graph_net(name)
        x = _rng("graph", name).normal(size=(2,) + tuple(net.input_shape))
        _PROGS[key] = (net, x, compiler.compile_network(net, CFGS[cfg_name], x, reuse=reuse))
    return _PROGS[key]


def _descriptors(prog):
    return [isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
            for i in range(len(prog.layers))]


@pytest.mark.parametrize("cfg_name", list(CFGS))
@pytest.mark.parametrize("name", list(GRAPHS))
def test_graph_network(name, cfg_name):
    net, x, prog = compiled(name, cfg_name)
    cfg = prog.cfg
    sqnr = []
    for img in [x[0], 3.0 * _rng("unseen", name).normal(size=net.input_shape)]:
        xq = compiler.load_input(prog, img)
        ref = compiler.run_network(prog, xq)
        funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), cfg)
        # every layer observable after the run (one region per buffer)
        for i, (q, r) in enumerate(zip(prog.layers, ref)):
            got = compiler.layer_output(prog, i)
            assert got.shape == tuple(q.out_shape) == r.shape, q.name
            first, n = layers.compare(r, got)
            assert n == 0, f"{name}/{cfg_name} layer {q.name}: {n} mismatches, first {first}"
        out = compiler.network_output(prog)
        assert np.array_equal(out, compiler.network_output_q(prog, xq))
        # every tensor as the image holds it equals the layer-by-layer run's
        _, vals = compiler.run_graph(prog, xq)
        for tname, t in prog.graph.tensors.items():
            if tname != INPUT and (tname in vals or t.parts):
                want = fuse.logical(t, fuse.tensor_value(prog.graph.tensors, vals, tname))
                assert np.array_equal(compiler.tensor_output(prog, tname), want), tname
        y = arith.dequantize(out, prog.fl[prog.output])
        sqnr.append(report.sqnr_db(forward_float(net, img).reshape(y.shape), y))
    # close to the float network (on a calibration image)
    assert sqnr[0] > SQNR_MIN[cfg.data_bits], f"{name}/{cfg_name}: SQNR {sqnr[0]:.1f} dB"
    # the engine refuses exactly the descriptors using graph features
    for q, d in zip(prog.layers, _descriptors(prog)):
        assert isa.validate(d, cfg, engine=False) == isa.Err.NONE, q.name
        want = isa.Err.UNSUPPORTED if isa.unsupported_features(d) else isa.Err.NONE
        assert isa.validate(d, cfg) == want, q.name
    # every graph network uses a graph feature: one the RTL runs (channel
    # slices, the clip, the residual add) or one it refuses
    assert any(isa.unsupported_features(d) or d.clip or d.res or d.in_c_off or d.out_c_off
               or d.in_c_total not in (0, d.in_c) or d.out_c_total not in (0, d.out_c)
               for d in _descriptors(prog))
    m = prog.memory
    assert m["activation_bytes_peak"] <= m["activation_bytes_one_region"] == m["activation_bytes"]
    assert prog.manifest()["memory"] == m


@pytest.mark.parametrize("cfg_name", ["small16", "default8"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_graph_network_with_reused_buffers(name, cfg_name):
    """reuse=True packs the buffers; each layer read right after it runs
    matches, and so do the outputs, formats and weights of reuse=False."""
    net, x, prog = compiled(name, cfg_name, reuse=True)
    _, _, plain = compiled(name, cfg_name)
    assert [q.fl_out for q in prog.layers] == [q.fl_out for q in plain.layers]
    m = prog.memory
    assert m["reuse"] and m["activation_bytes"] == m["activation_bytes_peak"] <= m["activation_bytes_one_region"]
    arena = prog.image.region(allocate.ARENA_REGION)
    assert arena.size >= m["activation_bytes_peak"] - memimage.REGION_ALIGN
    xq = compiler.load_input(prog, x[1])
    ref = compiler.run_network(prog, xq)
    got = compiler.run_image_observed(prog)
    for q, r, g in zip(prog.layers, ref, got):
        assert layers.compare(r, g)[1] == 0, q.name
    assert np.array_equal(compiler.network_output(prog), compiler.network_output_q(prog, xq))
    # observable_until is right: outputs still intact at the end are exactly those it says
    n = len(prog.layers)
    for i, q in enumerate(prog.layers):
        if m["observable_until"][q.name] == n - 1:
            assert np.array_equal(compiler.layer_output(prog, i), ref[i]), q.name


def test_reuse_saves_memory_on_a_long_chain():
    spec = {"name": "long", "input_shape": [8, 16, 16], "weights": {"seed": 3},
            "layers": [conv(f"c{i}", 16) for i in range(6)]}
    net = load_network(spec)
    x = _rng("long").normal(size=(1, 8, 16, 16))
    prog = compiler.compile_network(net, SMALL, x, reuse=True)
    m = prog.memory
    one = 16 * 16 * 16 * 2
    assert m["activation_bytes_one_region"] == 8 * 16 * 16 * 2 + 6 * one
    # two live buffers at a time; first fit leaves the input's space as a hole
    assert m["activation_bytes_peak"] == 2 * one + 8 * 16 * 16 * 2
    xq = compiler.load_input(prog, x[0])
    assert np.array_equal(compiler.run_image_observed(prog)[-1], compiler.run_network(prog, xq)[-1])
    plain = compiler.compile_network(net, SMALL, x)
    assert plain.memory["activation_bytes_peak"] == m["activation_bytes_peak"]
    assert len(plain.image.data) - len(prog.image.data) == (m["activation_bytes_one_region"]
                                                            - m["activation_bytes_peak"])


# ------------------------------------------------------------ fuse

def _fused(spec, cfg=SMALL, name="t"):
    net = load_network(dict(spec, name=name, weights={"seed": 1}))
    return net, fuse.fuse(fold.fold(net), cfg)


def test_fuse_residual_goes_to_the_later_layer_and_relu_after_it():
    _, g = _fused(GRAPHS["projection"])
    by = {L.name: L for L in g.layers}
    assert list(by) == ["ca", "cb", "cp"]
    assert by["cp"].residual == "cb" and by["cp"].relu and by["cp"].output == "ar"
    assert by["cp"].source == ["cp", "a", "ar"]
    _, g = _fused(GRAPHS["inverted_residual"])
    p = g.layer("p")
    assert p.residual == INPUT and not p.relu and p.clip is None
    assert g.layer("e").relu and g.layer("e").clip == 6.0 and g.layer("dw").groups == 24


def test_fuse_standalone_add_is_an_identity_layer():
    _, g = _fused(GRAPHS["standalone_add"])
    a = g.layer("a")
    assert a.kind == isa.Kind.CONV and a.synthetic and a.identity
    assert a.input == "r1" and a.residual == "r2" and a.bias is None
    if fuse._ENGINE_RUNS_GROUPS:
        # depthwise: one weight per channel
        assert a.groups == 10 and np.array_equal(a.weight, np.ones((10, 1, 1, 1)))
    else:
        # dense, the same sums: the engine runs it
        assert a.groups == 1 and np.array_equal(a.weight, np.eye(10).reshape(10, 10, 1, 1))
        assert any("dense 1x1 identity" in n for n in g.notes)


def test_fuse_concat_offsets_and_gaps():
    _, g = _fused(GRAPHS["concat_gap"])
    cat, cat2 = g.tensors["cat"], g.tensors["cat2"]
    assert cat.parts == [["ar", 0], ["b", 24]] and cat.phys_c == 36
    assert cat.phys == tuple(range(20)) + tuple(range(24, 36))
    # cat2 = (h: 7, p: 36 physical, cat: 36 physical) at PN 8
    assert cat2.parts == [["h", 0], ["p", 8], ["cat", 48]] and cat2.phys_c == 84
    assert (cat.buffer, cat.offset) == ("cat2", 48)
    assert (g.tensors["ar"].buffer, g.tensors["ar"].offset) == ("cat2", 48)
    assert (g.tensors["b"].buffer, g.tensors["b"].offset) == ("cat2", 72)
    assert g.layer("h").in_shape == (36, 6, 6)
    assert not g.layer("h").weight[:, 20:24].any()      # zero weight columns in the gap
    # aligned parts leave no gap
    _, g = _fused(GRAPHS["fire"])
    assert g.tensors["cat"].phys is None and g.tensors["cat"].parts == [["e1r", 0], ["e3r", 16]]


def test_fuse_nested_concats_share_one_buffer():
    _, g = _fused(GRAPHS["dense"])
    for t in ("r0", "c1", "cat1", "c2", "cat2", "c3", "cat3"):
        assert g.tensors[t].buffer == "cat3", t
    assert [g.tensors[t].offset for t in ("r0", "c1", "c2", "c3")] == [0, 8, 16, 24]
    assert not any(L.synthetic for L in g.layers)          # no copies
    assert g.layer("bn1").groups == 12                        # cat1 (8 + 4) has no gap at PN 8
    _, g = _fused(GRAPHS["dense"], EngineConfig())
    assert [g.tensors[t].offset for t in ("r0", "c1", "c2", "c3")] == [0, 16, 32, 48]
    # BatchNorm on a gapped concat: a depthwise conv on its 20 physical channels, gaps kept
    bn1 = g.layer("bn1")
    assert bn1.groups == 20 and bn1.in_shape == bn1.out_shape == (20, 8, 8) and not bn1.weight[8:16].any()
    assert g.tensors["br1"].phys == g.tensors["cat1"].phys
    assert not g.layer("c2").weight[:, 8:16].any()            # zero columns in the gap


def test_fuse_copies_the_input_and_a_tensor_of_two_concats():
    _, g = _fused(GRAPHS["relu6_copies"])
    copies = [L for L in g.layers if L.synthetic]
    assert [(L.input, L.kind) for L in copies] == [(INPUT, isa.Kind.POOL), ("c6", isa.Kind.POOL)]
    assert all(L.pool == fuse.PoolSpec(1, 1, 1) for L in copies)
    assert g.layers[0] is copies[0]                          # the input copy runs first
    assert g.tensors["c6"].buffer == "cat3" and g.tensors[copies[1].output].buffer == "cat"
    ri = g.layer("ri")                                       # a ReLU on the input: POOL identity
    assert ri.kind == isa.Kind.POOL and ri.relu and ri.pool == fuse.PoolSpec(1, 1, 1)
    cl = g.layer("cl")
    assert cl.kind == isa.Kind.POOL and cl.relu and cl.clip == 1.5


def test_fuse_shuffle():
    _, g = _fused(GRAPHS["shuffle"])
    # the shuffle moves behind the depthwise dw (tests/test_shuffle_depthwise.py)
    # into g2's weight columns; h, dense, keeps its in_shuffle
    assert g.layer("dw").in_shuffle == 0 and g.moved["dw"]["shuffles"] == ["sh"]
    assert g.layer("g2").in_shuffle == 0 and g.layer("g2").groups == 1 and g.layer("h").in_shuffle == 4
    _, g = _fused(GRAPHS["shuffle_gap"])
    # gapped: folded into dense weights, a grouped reader densified, a pool through a copy
    assert g.layer("d").in_shuffle == 0 and g.layer("g").groups == 1
    cp = [L for L in g.layers if L.name.startswith("cat#shuffled")]
    assert len(cp) == 1 and cp[0].kind == isa.Kind.CONV and g.layer("mp").input == cp[0].output


def test_fuse_float_forward_equals_the_folded_network():
    """The engine layers in real arithmetic compute the folded graph's ops."""
    for name in GRAPHS:
        net, g = _fused(GRAPHS[name], name=name)
        x = _rng("ff", name).normal(size=net.input_shape)
        want = forward_float_all(fold.fold(net), x)
        got = fuse.float_forward(g, x)
        for tname, t in g.tensors.items():
            if tname in want:
                v = fuse.logical(t, fuse.tensor_value(g.tensors, got, tname))
                np.testing.assert_allclose(v.ravel(), want[tname].ravel(), rtol=1e-9, atol=1e-9,
                                           err_msg=f"{name}: {tname}")


def test_fuse_refuses_clips_the_engine_cannot_run():
    spec = {"input_shape": [3, 4, 4], "layers": [conv("c", 4), op("cl", "clip", min=-1, max=1)]}
    with pytest.raises(NetworkError, match=r"layer 'cl': clip to \[-1, 1\] is not supported"):
        _fused(spec)
    spec = {"input_shape": [3, 9, 9], "layers": [conv("c", 4), op("p", "maxpool", kernel=3, stride=4)]}
    with pytest.raises(NetworkError, match="pool stride 4 not supported"):
        _fused(spec)


# ------------------------------------------------------------ quantise

def test_quantise_concat_parts_share_one_format():
    net, x, prog = compiled("dense", "small16")
    fls = {prog.fl[t] for t in ("r0", "c1", "cat1", "c2", "cat2", "c3", "cat3")}
    assert len(fls) == 1
    by = {q.name: q for q in prog.layers}
    assert by["c0"].fl_out == by["c1"].fl_out == by["c2"].fl_out == by["c3"].fl_out
    net, x, prog = compiled("relu6_copies", "small16")
    assert prog.fl_input == prog.fl["cat2"]                   # the input is a part of cat2


def test_quantise_residual_and_clip_formats():
    net, x, prog = compiled("inverted_residual", "small16")
    q = next(q for q in prog.layers if q.name == "p")
    assert q.res_tensor == INPUT and q.fl_res == prog.fl_input
    assert q.res_shift == q.fl_res - (q.fl_in + q.fl_w)
    e = prog.layers[0]
    assert e.clip_hi == arith.quantize(6.0, e.fl_out, 16) and e.relu
    net, x, prog = compiled("standalone_add", "small16")
    a = next(q for q in prog.layers if q.name == "a")
    m = max(0, a.fl_res - a.fl_in)
    diag = a.w_q[:, 0, 0, 0] if a.w_q.shape[1] == 1 else np.diagonal(a.w_q[:, :, 0, 0])
    assert a.fl_w == m and np.array_equal(diag, np.full(10, 1 << m))
    assert np.count_nonzero(a.w_q) == 10
    assert a.res_shift == min(0, a.fl_res - a.fl_in) <= 0 and a.bias_shift == 0 and not a.b_q.any()


def test_quantise_accumulator_bound_counts_the_residual(monkeypatch):
    net = graph_net("residual_relu")
    x = _rng("acc").normal(size=(1, 3, 8, 8))
    compiler.compile_network(net, SMALL, x)
    assert quantise.residual_bound(-3, 16, 48) == (1 << 15) << 3
    monkeypatch.setattr(quantise, "residual_bound", lambda *a: 1 << 48)
    with pytest.raises(NetworkError, match=r"layer 'c2': worst-case accumulator magnitude"):
        compiler.compile_network(net, SMALL, x)


def test_quantise_static_and_force_ovsf_on_a_graph():
    net = graph_net("residual_gap")
    x = _rng("st").normal(size=(2,) + tuple(net.input_shape))
    for kw in ({"static": True}, {"force_ovsf": True, "rho": 0.5}):
        prog = compiler.compile_network(net, SMALL, x, **kw)
        xq = compiler.load_input(prog, x[0])
        ref = compiler.run_network(prog, xq)
        got = compiler.run_image_observed(prog)
        assert all(np.array_equal(r, g) for r, g in zip(ref, got))
        if "static" in kw:
            assert len({q.fl_out for q in prog.layers}) == 1
        else:
            assert all((q.ovsf is not None) == (q.kind != isa.Kind.POOL and not q.synthetic) for q in prog.layers)


# ------------------------------------------------------------ allocate

def test_allocate_first_fit():
    B = allocate.Buffer
    bufs = [B("in", "input", (1,), 100, -1, 0), B("a", "a.out", (1,), 64, 0, 1), B("b", "b.out", (1,), 64, 1, 2),
            B("c", "c.out", (1,), 200, 2, 3), B("d", "d.out", (1,), 64, 3, 4)]
    peak = allocate.first_fit(bufs)
    assert [b.offset for b in bufs] == [0, 128, 0, 64, 0]
    assert peak == 64 + 256


def test_allocate_plan_slices_and_regions():
    net, x, prog = compiled("fire", "small16")
    p = prog.plan
    assert set(p.buffers) == {INPUT, "sr", "cat", "h"}
    assert p.buffers["cat"].region == "cat.out" and p.buffers["sr"].region == "sq.out"
    by = {q.name: q for q in prog.layers}
    assert by["e1"].out_slice == (0, 32) and by["e3"].out_slice == (16, 32) and by["h"].in_slice is None
    assert prog.regions["e3"]["out"] == prog.regions["h"]["in"] == "cat.out"
    assert p.buffers["cat"].first == 1 and p.buffers["cat"].last == 3 and p.buffers["h"].last == 4


# ------------------------------------------------------------ tile

def test_tile_grouped_and_pools():
    # ti counts one group's inputs
    t = tile.tiles(isa.Kind.CONV, 8, 8, 64 // 32, 64, 3, 1, SMALL, False)
    assert t["ti"] == 8
    # a global pool or a padded average pool takes the whole plane
    gap = fuse.PoolSpec(12, 12, 1, (0, 0, 0, 0), True, False, True)
    assert tile.tiles(isa.Kind.POOL, 12, 12, 8, 8, 1, 1, SMALL, False, gap) == {"tr": 12, "tc": 12, "ti": 8, "to": 8}
    with pytest.raises(tile.PoolTilingError, match="global average pool on a 40x40 plane"):
        tile.tiles(isa.Kind.POOL, 40, 40, 8, 8, 1, 1, SMALL, False, gap)
    padded = fuse.PoolSpec(3, 3, 1, (1, 1, 1, 1), True, False, False)
    with pytest.raises(tile.PoolTilingError, match="average pool 3x3/1"):
        tile.tiles(isa.Kind.POOL, 40, 40, 8, 8, 1, 1, SMALL, False, padded)
    # an unpadded 2x2/2 average pool splits the plane on its stride
    t = tile.tiles(isa.Kind.POOL, 40, 40, 8, 8, 1, 1, SMALL, False, fuse.PoolSpec(2, 2, 2, (0,) * 4, True))
    assert t["tr"] < 40 and t["tr"] % 2 == 0


def test_tile_splits_an_untileable_fused_pool():
    net, x, prog = compiled("unfused_pool", "small16")
    assert [(q.name, q.kind, q.in_tensor, q.out_tensor) for q in prog.layers] == [
        ("c", isa.Kind.CONV, INPUT, "p#prepool"), ("c_pool", isa.Kind.POOL, "p#prepool", "p"),
        ("d", isa.Kind.CONV, "p", "a")]
    assert prog.layers[2].res_tensor == "p"
    net, x, prog = compiled("unfused_pool", "default16")
    assert [q.name for q in prog.layers] == ["c", "d"] and prog.layers[0].pool == (3, 2, 0)


# ------------------------------------------------------------ emit

def test_emit_sets_the_graph_fields():
    d = {q.name: dsc for q, dsc in zip(compiled("shuffle", "small16")[2].layers,
                                      _descriptors(compiled("shuffle", "small16")[2]))}
    # g1 (8 -> 8, groups 2) is lowered to a dense layer (golden.passes.groups,
    # tests/test_group_lowering.py); the depthwise dw keeps its groups
    assert d["g1"].groups <= 1 and d["dw"].groups == 8 and d["dw"].in_shuffle == 0 and d["h"].in_shuffle == 4
    assert d["g2"].res == 1 and d["g2"].relu == 1
    assert isa.validate(d["g1"], SMALL) == isa.Err.NONE
    prog = compiled("fire", "small16")[2]
    d = dict(zip([q.name for q in prog.layers], _descriptors(prog)))
    cat = prog.image.region("cat.out")
    assert (d["e3"].out_addr, d["e3"].out_c_off, d["e3"].out_c_total) == (cat.addr, 16, 32)
    assert (d["e1"].out_c_off, d["e1"].out_c_total) == (0, 32)
    assert (d["h"].in_c_off, d["h"].in_c_total) == (0, 0)
    prog = compiled("pools_gap_fc", "small16")[2]
    d = dict(zip([q.name for q in prog.layers], _descriptors(prog)))
    assert (d["ap0"].pool_avg, d["ap0"].pool_incl_pad, d["ap0"].pool_k, d["ap0"].pool_pad) == (1, 0, 3, 1)
    assert d["ap1"].pool_incl_pad == 1
    assert (d["mp"].pool_kh, d["mp"].pool_kw, d["mp"].pool_asym, d["mp"].pool_pad, d["mp"].pool_pad_b,
            d["mp"].pool_pad_l, d["mp"].pool_pad_r) == (5, 5, 1, 2, 1, 0, 2)
    assert d["g"].pool_global == 1 and d["g"].pool_avg == 1 and (d["g"].out_h, d["g"].out_w) == (1, 1)
    assert (d["g2"].out_c_off, d["g2"].out_c_total) == (16, 25)
    prog = compiled("inverted_residual", "small16")[2]
    e = _descriptors(prog)[0]
    assert e.clip == 1 and e.clip_hi == prog.layers[0].clip_hi and e.relu == 1
    p = _descriptors(prog)[2]
    assert p.res_addr == prog.image.region("input").addr and p.res_shift == prog.layers[2].res_shift


def test_emit_grouped_weights_layout(monkeypatch):
    # grouped layers as the golden model runs them: the compiler lowers them otherwise
    monkeypatch.setattr(groups, "LOWER", False)
    net = graph_net("shuffle")
    prog = compiler.compile_network(net, SMALL, _rng("graph", "shuffle").normal(size=(2,) + tuple(net.input_shape)))
    assert prog.layers[0].groups == 2
    q = prog.layers[0]                                        # g1: 8 -> 8, groups 2
    d = _descriptors(prog)[0]
    cout_pad, cin_pad = 8, 8                                   # per group: 4 inputs padded to PN
    flat = memimage.from_bytes(prog.image.read(d.wgt_addr, cout_pad * cin_pad * 2), 16)
    w = memimage.unpack_weights(flat, (cout_pad, cin_pad, 1, 1), d.to, d.ti)
    assert np.array_equal(w[:, :4], q.w_q) and not w[:, 4:].any()


def test_emit_chain_build_image_still_takes_a_layer_list():
    net, x, prog = compiled("residual_relu", "small16")
    img, desc_addr, regions = emit.build_image(prog.layers[:1], SMALL, net.input_shape)
    assert regions["s"] == {"in": "input", "out": "s.out", "wgt": "s.wgt", "bias": "s.bias"}
    assert compiler.build_image is emit.build_image and compiler._tiles is tile.tiles


def test_fuse_copies_a_residual_off_the_bus():
    """res_addr has no channel offset: at 8 bits and PN 8 the residual's slice
    of a 5x5 concat starts 200 bytes in, off the 16-byte bus, and is copied out."""
    _, g = _fused(GRAPHS["residual_slice"], CFGS["small8"])
    c = g.layer("c")
    assert c.residual.startswith("b#copy") and g.tensors[c.residual].buffer == c.residual
    assert g.layer(c.residual).kind == isa.Kind.POOL and g.layer(c.residual).input == "b"
    _, g = _fused(GRAPHS["residual_slice"], SMALL)                 # 16 bits: 400 bytes, aligned
    assert g.layer("c").residual == "b" and g.tensors["b"].offset == 8


def test_old_entry_points_still_work():
    """compiler.quantize_network / unfuse_untileable_pools on network.EngineLayer
    lists give what compile_network gives for the chain."""
    from golden.network import to_engine_layers
    cid, spec, cfg, opts, calib = next(c for c in CHAIN_CASES if c[0] == "random9/small")
    net = load_network(spec)
    prog = chain_cases.compile_case(spec, cfg, opts, calib)
    el = compiler.unfuse_untileable_pools(to_engine_layers(net), cfg)
    assert [L.name for L in el] == [q.name for q in prog.layers] and any(L.name.endswith("_pool") for L in el)
    fl0, qls = compiler.quantize_network(el, calib, cfg)
    assert fl0 == prog.fl_input
    for a, b in zip(qls, prog.layers):
        assert (a.fl_in, a.fl_out, a.fl_w, a.fl_b, a.tiles) == (b.fl_in, b.fl_out, b.fl_w, b.fl_b, b.tiles)
        assert a.w_q is None and b.w_q is None or np.array_equal(a.w_q, b.w_q)


def test_tile_error_names_the_pool_layer():
    spec = {"name": "bigpool", "input_shape": [8, 48, 48], "weights": {"seed": 1},
            "layers": [conv("c", 8), op("r", "relu"), op("g", "gap")]}
    net = load_network(spec)
    with pytest.raises(tile.PoolTilingError, match=r"layer 'g': global average pool on a 48x48 plane"):
        compiler.compile_network(net, SMALL, _rng("big").normal(size=(1, 8, 48, 48)))
