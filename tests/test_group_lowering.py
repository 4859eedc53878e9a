"""Grouped convolutions the engine does not run, lowered by the compiler
(golden/passes/groups.py, in the fuse pass) to dense channel-slice bands or
dense block-diagonal layers: every descriptor the engine runs (depthwise
aside, which the RTL runs itself), and the program bit exact with the same
network compiled with its grouped layers kept, as the golden model runs them."""
from __future__ import annotations

import re

import pytest

from golden import compiler, isa
from golden.config import EngineConfig
from golden.passes import fuse, groups

from netspec import CFGS, SMALL, conv, mismatches, op, seeded_network
from netspec import rng as _rng
from netspec import descriptors as _descriptors




NETS = {
    "grouped": {"input_shape": [136, 5, 5], "layers": [
        # ShuffleNet-like: grouped 1x1 (groups 4 on 136 channels) with ReLU,
        # then one with a residual and a ReLU after the add
        conv("g1", 136, 1, groups=4), op("r1", "relu"), conv("g2", 136, 1, groups=4),
        op("a", "add", ["g2", "input"]), op("ar", "relu"), conv("h", 64, 1),
        # aligned: 32 inputs and 32 outputs per group (PN = PM = 16 or 8)
        conv("al", 64, 1, groups=2), conv("rd", 32, 1),
        # ResNeXt-like: 8 groups of 4 channels, 3x3, ReLU6
        conv("rx", 32, 3, groups=8), op("rx6", "relu6"),
        # depthwise with channel multiplier 2, then a true depthwise (kept)
        conv("dm", 64, 3, groups=32), conv("dw", 64, 3, groups=64), op("dwr", "relu"),
        # a grouped layer writing a slice of a concat (ShuffleNet's stride-2 unit)
        conv("gc", 64, 1, inputs=["dwr"], groups=4), op("ap", "avgpool", ["dwr"], kernel=3, stride=1, pad=1),
        op("cat", "concat", ["ap", "gc"]),
        # a fused max pool: densified instead
        conv("gp", 32, 1, groups=4), op("mp", "maxpool", kernel=2, stride=2)]},
    # a channel shuffle into a grouped layer: densified, the shuffle folded
    # into the weight columns
    "shuffled": {"input_shape": [32, 4, 4], "layers": [
        conv("c", 32, 1), op("sh", "shuffle", groups=4), conv("g", 32, 3, groups=4), op("r", "relu")]},
    # a depthwise layer on a gapped concat (12 + 4 channels at PN 8 or 16)
    # taking a residual in the same layout: it keeps its groups and the gaps
    "dw_gap_residual": {"input_shape": [4, 5, 5], "layers": [
        conv("a", 12), conv("b", 4, inputs=["input"]), op("cat", "concat", ["a", "b"]),
        conv("dw", 16, 3, groups=16), op("ad", "add", ["dw", "cat"]), conv("g", 16, 1, groups=2)]},
}


def network(name):
    return seeded_network(NETS, name)


_CACHE = {}


def programs(name, cfg_name):
    """(net, calibration, the lowered program, the program with the grouped layers kept)."""
    key = (name, cfg_name)
    if key not in _CACHE:
        net = network(name)
        x = _rng("calib", name).normal(size=(2,) + tuple(net.input_shape))
        cfg = CFGS[cfg_name]
        prog = compiler.compile_network(net, cfg, x)
        saved = groups.LOWER
        groups.LOWER = False
        try:
            ref = compiler.compile_network(net, cfg, x)
        finally:
            groups.LOWER = saved
        _CACHE[key] = (net, x, prog, ref)
    return _CACHE[key]




@pytest.mark.parametrize("cfg_name", list(CFGS))
@pytest.mark.parametrize("name", list(NETS))
def test_lowered_program_runs_on_the_engine_and_is_bit_exact(name, cfg_name):
    net, x, prog, ref = programs(name, cfg_name)
    cfg = prog.cfg
    descs = _descriptors(prog)
    for q, d in zip(prog.layers, descs):
        # only depthwise keeps its groups: the RTL runs it
        assert d.groups <= 1 or d.groups == d.in_c == d.out_c, q.name
        isa.check(d, cfg, engine=True)
    # the same formats as the grouped layers'
    assert {k: v for k, v in prog.fl.items() if k in ref.fl} == ref.fl
    assert prog.fl_input == ref.fl_input
    for img in (x[0], 3.0 * _rng("unseen", name).normal(size=net.input_shape)):
        assert mismatches(prog, ref, img) == []


def test_the_network_lowers_what_it_should():
    _, _, prog, ref = programs("grouped", "default")
    low = prog.graph.lowered
    assert set(low) == {"g1", "g2", "al", "rx", "dm", "gc", "gp"}
    assert [low[n]["how"] for n in ("g1", "g2", "al", "rx", "dm", "gc")] == ["bands"] * 6
    assert low["gp"]["how"] == "dense"
    # the grouped layers kept in the reference: every one of them
    assert {q.name for q in ref.layers if q.groups > 1} == set(low) | {"dw"}
    by = {q.name: q for q in prog.layers}
    # bands carry the ReLU, clip and residual of their layer
    g2 = [by[n] for n in low["g2"]["layers"]]
    assert all(q.res_tensor is not None and q.relu for q in g2)
    assert all(by[n].clip_hi is not None for n in low["rx"]["layers"])
    assert all(by[n].relu for n in low["g1"]["layers"])
    # gc writes the concat's second part: its bands' slices start at 64
    d = dict(zip([q.name for q in prog.layers], _descriptors(prog)))
    offs = sorted(d[n].out_c_off for n in low["gc"]["layers"])
    assert offs[0] == 64 and all(d[n].out_c_total == 128 for n in low["gc"]["layers"])
    # the bands of one layer cover its outputs once, on PN boundaries
    for n in ("g1", "g2", "al", "rx", "dm", "gc"):
        bands = low[n]["bands"]
        assert bands[0][0] == 0 and all(a[1] == b[0] for a, b in zip(bands, bands[1:]))
        assert all(b[0] % 16 == 0 and b[2] % 16 == 0 for b in bands)
    assert by["dw"].groups == 64


def test_notes_name_the_layer_and_the_overhead():
    _, _, prog, _ = programs("grouped", "default")
    low = prog.graph.lowered
    for name, info in low.items():
        note = [n for n in prog.notes if n.startswith(f"{name}: grouped convolution")]
        assert len(note) == 1, name
        assert f"groups={info['groups']}" in note[0]
        m = re.search(r"MAC overhead (\d+\.\d+)", note[0])
        assert m and float(m.group(1)) == pytest.approx(info["overhead"], abs=5e-4)
        if info["how"] == "bands":
            assert f"{len(info['bands'])} dense channel-slice bands" in note[0]
        else:
            assert "dense block-diagonal" in note[0]
    # aligned groups: one band per group, no extra MACs
    for name, g in (("al", 2), ("gc", 4)):
        assert low[name]["overhead"] == 1.0 and len(low[name]["bands"]) == g and "overhead 1.000" in \
            next(n for n in prog.notes if n.startswith(name + ":"))
    assert low["gp"]["overhead"] == 4.0
    _, _, prog, _ = programs("shuffled", "small")
    assert prog.graph.lowered["g"]["how"] == "dense" and "shuffled" in \
        next(n for n in prog.notes if n.startswith("g:"))
    assert prog.layers[-1].in_shuffle == 0


def test_a_wrong_lowering_is_detected():
    """Weights leaking across a group boundary in one band, or a band's
    weight changed, make the check fail."""
    net, x, prog, ref = programs("grouped", "default")
    q = next(q for q in prog.layers if q.name == "g1#band1")
    b = prog.graph.lowered["g1"]["bands"][1]
    good = q.w_q
    try:
        # out 32:48 reads inputs 0:80; outputs 34.. are group 1 (inputs 34:68):
        # a weight on input 0 for output 40 belongs to no group
        assert b[0] <= 40 < b[1] and good[40 - b[0], 0 - b[2]].sum() == 0
        bad = good.copy()
        bad[40 - b[0], 0 - b[2]] = 1000
        q.w_q = bad
        img, desc_addr, _ = compiler.build_image(prog.layers, prog.cfg, net.input_shape, 0, None, prog.plan)
        prog.image, prog.desc_addr = img, desc_addr
        found = mismatches(prog, ref, x[0])
        assert "network output" in found and "tensor r1" in found
        # the band's own integer run agrees with its (wrong) image: only the
        # comparison with the grouped layer catches it
        assert not any(f.startswith("layer g1#band1") for f in found)
    finally:
        q.w_q = good
        img, desc_addr, _ = compiler.build_image(prog.layers, prog.cfg, net.input_shape, 0, None, prog.plan)
        prog.image, prog.desc_addr = img, desc_addr
    assert mismatches(prog, ref, x[0]) == []


@pytest.mark.parametrize("c", [136, 272, 544])
def test_shufflenet_grouped_1x1_bands(c):
    """ShuffleNet v1 (groups 4): c channels in and out. Bands cost far less
    than block-diagonal densification (4x) and cover every output once."""
    cfg = EngineConfig()
    bands = groups.plan_bands(c, c, 4, cfg)
    r = groups.overhead(bands, c, c, 4)
    assert 1.0 <= r < 2.0
    assert bands[0].o0 == 0 and bands[-1].o1 == c and all(a.o1 == b.o0 for a, b in zip(bands, bands[1:]))
    # each band's hull holds every input its outputs need
    for b in bands:
        lo, hi = groups.hull(b.o0, b.o1, c, c, 4, 1)
        assert b.i0 <= lo and hi <= b.i1 and b.i0 % 16 == 0


def test_plan_bands_aligned_and_merging():
    cfg = EngineConfig()
    # aligned groups: one band per run of groups, overhead 1
    bands = groups.plan_bands(128, 128, 4, cfg)
    assert bands == [groups.Band(32 * i, 32 * i + 32, 32 * i, 32 * i + 32) for i in range(4)]
    # merging never costs MACs; depthwise x2 at PN 16: 32 outputs read 16 inputs
    bands = groups.plan_bands(32, 64, 32, cfg)
    assert bands == [groups.Band(0, 32, 0, 16), groups.Band(32, 64, 16, 32)]
    assert groups.overhead(bands, 32, 64, 32) == 16.0


def test_only_non_depthwise_groups_are_lowered(monkeypatch):
    assert groups.needs_lowering(4, 136, 136) and groups.needs_lowering(32, 32, 64)
    assert not groups.needs_lowering(64, 64, 64) and not groups.needs_lowering(1, 8, 8)
    monkeypatch.setattr(groups, "LOWER", False)
    assert not groups.needs_lowering(4, 136, 136)
    # the standalone add's identity layer is depthwise exactly when the engine runs depthwise
    d = {"kind": int(isa.Kind.CONV), "groups": 16, "in_c": 16, "out_c": 16}
    assert fuse._ENGINE_RUNS_GROUPS == (not any(f == "groups" for f, _ in isa.unsupported_features(d)))
