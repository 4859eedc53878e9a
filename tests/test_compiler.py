"""Compiler end to end: the descriptor program executed from the memory image
(``run_image``, the functional model the RTL must match) against the
layer-by-layer quantized network (``run_network``), bit for bit; OVSF weight
generation; descriptor legality; the checks that must be able to fail."""
from __future__ import annotations

import json
import os
import zlib

import numpy as np
import pytest

from golden import compiler, funcmodel, isa, layers, memimage, ovsf, report
from golden.config import EngineConfig
from golden.errors import DescriptorError, NetworkError, UzError
from golden.network import load_network
from golden.randnet import random_network

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "golden", "networks", "example5.json")
RANDOM_SEEDS = range(10)


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def cfg_for(bits: int, **kw) -> EngineConfig:
    return EngineConfig(data_bits=bits, alpha_bits=kw.pop("alpha_bits", bits),
                        acc_bits=kw.pop("acc_bits", 48 if bits == 16 else 32), **kw)


#: Standalone POOL layers (input pool, pool after a fused pool, with ReLU and
#: padding) and an FC flattening a channel count that is not a multiple of PN.
HANDMADE = {"name": "handmade", "input_shape": [5, 15, 14], "weights": {"seed": 11}, "layers": [
    {"name": "p0", "type": "maxpool", "kernel": 3, "stride": 1, "pad": 1},
    {"name": "c1", "type": "conv", "out_channels": 19, "kernel": 3, "stride": 1, "pad": [1, 0, 2, 1]},
    {"name": "r1", "type": "relu"},
    {"name": "p1", "type": "maxpool", "kernel": 2, "stride": 2},
    {"name": "p2", "type": "maxpool", "kernel": 3, "stride": 1, "pad": 1},
    {"name": "r2", "type": "relu"},
    {"name": "c2", "type": "conv", "out_channels": 7, "kernel": 1, "bias": False},
    {"name": "fl", "type": "flatten"},
    {"name": "f1", "type": "fc", "out_features": 9}]}


def _net(name):
    if name == "handmade":
        return load_network(HANDMADE)
    return load_network(EXAMPLE if name == "example5" else random_network(int(name[6:])))


def run_both(prog, img):
    """(run_network outputs, run_image outputs read back from the image)."""
    xq = compiler.load_input(prog, img)
    ref = compiler.run_network(prog, xq)
    funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), prog.cfg)
    return ref, [compiler.layer_output(prog, i) for i in range(len(prog.layers))]


def assert_bit_exact(prog, x):
    for img in x:
        ref, got = run_both(prog, img)
        for q, r, g in zip(prog.layers, ref, got):
            assert g.shape == tuple(q.out_shape)
            first, n = layers.compare(r, g)
            assert n == 0, f"layer {q.name}: {n} mismatches, first {first}"


# ----------------------------------------------------------- end to end

@pytest.mark.parametrize("bits", [16, 8])
@pytest.mark.parametrize("name", ["example5", "handmade"] + [f"random{s}" for s in RANDOM_SEEDS])
def test_image_run_equals_network_run(name, bits):
    net = _net(name)
    x = _rng("e2e", name).normal(size=(2,) + tuple(net.input_shape))
    prog = compiler.compile_network(net, cfg_for(bits), x)
    assert_bit_exact(prog, x)
    # An image the calibration never saw: formats stay fixed, agreement must hold.
    assert_bit_exact(prog, 3.0 * _rng("unseen", name).normal(size=(1,) + tuple(net.input_shape)))


def test_end_to_end_set_covers_the_features():
    """The networks above exercise what the end-to-end test claims to cover."""
    kinds, n_codes, pools, strides, kernels = set(), set(), set(), set(), set()
    for name in ["handmade"] + [f"random{s}" for s in RANDOM_SEEDS]:
        net = _net(name)
        prog = compiler.compile_network(net, cfg_for(16), _rng("cov", name).normal(size=(1,) + tuple(net.input_shape)))
        for q in prog.layers:
            kinds.add((q.kind, q.relu))
            if q.ovsf is not None:
                n_codes.add(q.ovsf.n_codes)
            if q.pool:
                pools.add((q.kind, tuple(q.pool)))
            if q.kind == isa.Kind.CONV:
                strides.add(q.stride)
                kernels.add(q.k)
    assert {k for k, _ in kinds} == set(isa.Kind) and (isa.Kind.POOL, True) in kinds
    # the default 3x3 window: larger kernels arrive as sub-windows
    window = cfg_for(16).max_k
    assert kernels == {k for k in isa.KERNELS if k <= window} | set(isa.DECOMPOSED)
    assert strides == set(isa.STRIDES)
    assert len(n_codes) >= 3
    assert {p for _, p in pools} >= {(2, 2, 0), (3, 2, 0), (2, 2, 1), (3, 1, 1)}


@pytest.mark.parametrize("bits", [16, 8])
def test_static_precision_is_bit_exact(bits):
    net = _net("example5")
    x = _rng("static").normal(size=(2, 3, 32, 32))
    prog = compiler.compile_network(net, cfg_for(bits), x, static=True)
    assert prog.static
    assert_bit_exact(prog, x)


@pytest.mark.parametrize("force", [False, True])
def test_small_buffers_force_partial_tiles_and_stay_bit_exact(force):
    # a native 5x5 window: its smallest tile (25 x 16 x 16 weights) just fits 6400
    cfg = EngineConfig(in_buf_elems=6000, wgt_buf_elems=6400, out_buf_elems=4096, max_k=5)
    net = _net("example5")
    x = _rng("tiles").normal(size=(1, 3, 32, 32))
    prog = compiler.compile_network(net, cfg, x, rho=0.5 if force else None, force_ovsf=force)
    by = {q.name: q for q in prog.layers}
    assert by["conv1"].tiles["tr"] < 32                     # row tiles
    assert by["conv2"].tiles["to"] < 32                     # output-channel tiles
    assert 1568 % by["fc1_svd_a"].tiles["ti"] != 0          # a partial last input-channel tile
    assert all((q.ovsf is not None) == force for q in prog.layers if q.kind != isa.Kind.POOL)
    assert_bit_exact(prog, x)


# ------------------------------------------------------------------ OVSF

#: example5's 5x5 first layer on a native window, so its weights compare in
#: their own order (tests/test_decomposed.py takes the sub-window order)
OVSF_CFG = EngineConfig(data_bits=8, alpha_bits=16, acc_bits=32, ovsf_len=8, max_k=5)


@pytest.fixture(scope="module")
def ovsf_progs():
    net = _net("example5")
    x = _rng("ovsf").normal(size=(2, 3, 32, 32))
    raw = compiler.compile_network(net, OVSF_CFG, x)
    forced = {rho: compiler.compile_network(net, OVSF_CFG, x, rho=rho, force_ovsf=True)
              for rho in (1.0, 0.5, 0.25, 0.125)}
    return net, x, raw, forced


def test_ovsf_at_rho_1_regenerates_the_raw_weights(ovsf_progs):
    """alpha_bits >= data_bits + log2(L) at rho = 1: generation is lossless,
    so the whole compile (formats included) equals the raw-weight one."""
    net, x, raw, forced = ovsf_progs
    prog = forced[1.0]
    for a, b in zip(raw.layers, prog.layers):
        assert (a.fl_in, a.fl_out) == (b.fl_in, b.fl_out)
        if a.kind == isa.Kind.POOL:
            continue
        assert a.ovsf is None and b.ovsf is not None and b.ovsf.n_codes == 8
        assert np.array_equal(a.w_q, b.w_q), a.name
        assert (a.fl_w, a.fl_b, a.data_shift, a.bias_shift) == (b.fl_w, b.fl_b, b.data_shift, b.bias_shift)
    # The weights the engine generates from the alphas in the image are the raw ones.
    q = prog.layers[0]
    d = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
    assert d.ovsf == 1 and d.n_codes == 8 and d.code_mask == 0xFF
    cin_pad = memimage.round_up(q.in_shape[0], OVSF_CFG.pn)
    cout_pad = memimage.round_up(q.out_shape[0], OVSF_CFG.pm)
    nblocks = -(-(cin_pad * q.k * q.k) // 8)
    flat = memimage.from_bytes(prog.image.read(d.wgt_addr, cout_pad * nblocks * 8 * 2), 16)
    alpha = memimage.unpack_alphas(flat, cout_pad, cin_pad, q.k, 8, 8, d.to, d.ti, OVSF_CFG.pm)
    w = ovsf.from_blocks(ovsf.generate(alpha, range(8), 8, d.gen_shift, 8), (cout_pad, cin_pad, q.k, q.k))
    assert np.array_equal(w, memimage.pad_weights(raw.layers[0].w_q, OVSF_CFG))
    assert_bit_exact(prog, x)


def test_ovsf_narrow_alphas_are_not_lossless():
    """The exactness condition matters: 8-bit alphas cannot carry 8-bit weights plus log2(L) bits."""
    cfg = EngineConfig(data_bits=8, alpha_bits=8, acc_bits=32, ovsf_len=8)
    net = _net("example5")
    x = _rng("ovsf8").normal(size=(1, 3, 32, 32))
    raw = compiler.compile_network(net, cfg, x)
    prog = compiler.compile_network(net, cfg, x, force_ovsf=True)
    assert not np.array_equal(raw.layers[0].w_q, prog.layers[0].w_q)
    assert_bit_exact(prog, x)


def test_lower_rho_increases_error(ovsf_progs):
    net, x, raw, forced = ovsf_progs
    rhos = sorted(forced, reverse=True)
    for i, q_raw in enumerate(raw.layers):
        if q_raw.kind == isa.Kind.POOL:
            continue
        errs = [ovsf.relative_error(q_raw.w_q, forced[r].layers[i].w_q) for r in rhos]
        assert errs[0] == 0.0
        assert all(a < b for a, b in zip(errs, errs[1:])), (q_raw.name, errs)
        assert [forced[r].layers[i].ovsf.n_codes for r in rhos] == [8, 4, 2, 1]
    sq = [report.golden_report(net, forced[r], x)["layers"][-1]["sqnr_db"] for r in (1.0, 0.5)]
    assert sq[0] > sq[1] + 10
    for r in rhos:
        assert_bit_exact(forced[r], x[:1])


# ----------------------------------------------------- the checks can fail

@pytest.fixture()
def example_prog():
    net = _net("example5")
    x = _rng("chk").normal(size=(1, 3, 32, 32))
    return compiler.compile_network(net, cfg_for(16), x), x[0]


def _elem_offset(shape, g, c, y, x):
    """Element index of (c, y, x) in the grouped activation layout, found
    through pack_act on a tensor of indices."""
    idx = np.arange(1, int(np.prod(shape)) + 1).reshape(shape)
    return int(np.flatnonzero(memimage.pack_act(idx, g) == idx[c, y, x])[0])


def test_corrupted_output_is_reported_with_its_coordinates(example_prog):
    prog, img = example_prog
    ref, got = run_both(prog, img)
    assert layers.compare(ref[1], got[1]) == ([], 0)
    li, (c, y, x) = 1, (21, 3, 2)   # conv2: 32 channels, two groups of 16
    q = prog.layers[li]
    region = prog.image.region(prog.regions[q.name]["out"])
    off = region.addr + _elem_offset(q.out_shape, prog.cfg.pn, c, y, x) * prog.cfg.elem_bytes
    prog.image.data[off] ^= 0x01   # low byte, bit 0: the value changes by one
    first, n = layers.compare(ref[li], compiler.layer_output(prog, li))
    assert n == 1
    assert first == [((c, y, x), int(ref[li][c, y, x]), int(ref[li][c, y, x]) ^ 1)]
    # Other layers are untouched.
    assert layers.compare(ref[0], compiler.layer_output(prog, 0)) == ([], 0)


def test_corrupted_weight_changes_the_result(example_prog):
    prog, img = example_prog
    q = prog.layers[0]
    wr = prog.image.region(prog.regions[q.name]["wgt"])
    # Element 0 of the first tile is w[o=0, ci=0, ky=0, kx=0]; flip a high bit.
    assert int(memimage.from_bytes(prog.image.read(wr.addr, 2), 16)[0]) == int(q.w_q[0, 0, 0, 0])
    prog.image.data[wr.addr + 1] ^= 0x40
    xq = compiler.load_input(prog, img)
    ref = compiler.run_network(prog, xq)
    funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), prog.cfg)
    bad, n = layers.compare(ref[0], compiler.layer_output(prog, 0), max_report=10 ** 6)
    assert n > 0
    assert {idx[0] for idx, _, _ in bad} == {0}   # only output channel 0 uses that weight
    assert layers.compare(ref[-1], compiler.layer_output(prog, len(prog.layers) - 1))[1] > 0


def test_corrupted_bias_changes_one_channel(example_prog):
    prog, img = example_prog
    q = prog.layers[2]   # conv3: no pool, so every pixel of the channel moves
    br = prog.image.region(prog.regions[q.name]["bias"])
    prog.image.data[br.addr + 2 * 5 + 1] ^= 0x10   # bias of channel 5, high byte
    ref, got = run_both(prog, img)
    bad, n = layers.compare(ref[2], got[2], max_report=10 ** 6)
    assert n > 0 and {idx[0] for idx, _, _ in bad} == {5}
    assert layers.compare(ref[1], got[1]) == ([], 0)


def test_corrupted_descriptor_is_refused(example_prog):
    prog, img = example_prog
    compiler.load_input(prog, img)
    prog.image.data[prog.desc_addr + isa.DESC_BYTES] ^= 0xFF   # magic of descriptor 1
    with pytest.raises(DescriptorError) as e:
        funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), prog.cfg)
    assert e.value.code == isa.Err.BAD_MAGIC


def test_compare_reports_shape_mismatch():
    with pytest.raises(ValueError, match="shape mismatch"):
        layers.compare(np.zeros((2, 3, 3)), np.zeros((2, 3, 4)))


def test_pad_channels_of_every_output_are_zero(example_prog):
    """Channels past C in the grouped layout stay zero: the next layer (and an
    FC's flatten) reads them."""
    prog, img = example_prog
    compiler.load_input(prog, img)
    funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), prog.cfg)
    for q in prog.layers:
        r = prog.image.region(prog.regions[q.name]["out"])
        full = funcmodel.read_act(prog.image, r.addr, q.out_shape, prog.cfg)
        assert not full[q.out_shape[0]:].any(), q.name


# ------------------------------------------------------------ descriptors

@pytest.mark.parametrize("name,rho", [("example5", None), ("example5", 0.25), ("random1", None), ("random4", None)])
def test_descriptors_in_the_image_are_legal_and_match_the_layers(name, rho):
    net = _net(name)
    cfg = cfg_for(16)
    prog = compiler.compile_network(net, cfg, _rng("desc", name).normal(size=(1,) + tuple(net.input_shape)), rho=rho)
    fl = prog.fl_input
    for i, q in enumerate(prog.layers):
        raw = prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES)
        d = isa.Descriptor.decode(raw)
        assert isa.validate(d, cfg) == isa.Err.NONE, q.name
        assert d.encode() == raw
        assert (d.kind, d.layer_id, d.relu) == (q.kind, i, q.relu)
        assert (d.in_c, d.in_h, d.in_w) == tuple(q.in_shape)
        assert (d.out_c, d.out_h, d.out_w) == tuple(q.out_shape)
        assert {k: getattr(d, k) for k in ("tr", "tc", "ti", "to")} == q.tiles
        regions = prog.regions[q.name]
        assert d.in_addr == prog.image.region(regions["in"]).addr
        assert d.out_addr == prog.image.region(regions["out"]).addr
        # Formats chain from layer to layer and the shifts follow from them.
        assert q.fl_in == fl
        if q.kind == isa.Kind.POOL:
            assert q.fl_out == q.fl_in and d.data_shift == 0
        else:
            assert d.wgt_addr == prog.image.region(regions["wgt"]).addr
            assert d.bias_addr == prog.image.region(regions["bias"]).addr
            assert d.bias_shift == q.bias_shift == q.fl_b - q.fl_in - q.fl_w
            assert d.data_shift == q.data_shift == q.fl_in + q.fl_w - q.fl_out
            assert d.gen_shift == q.gen_shift
            assert d.ovsf == (q.ovsf is not None)
            if q.ovsf is not None:
                assert (d.n_codes, d.code_mask, 1 << d.log2_l) == (q.ovsf.n_codes, q.ovsf.mask, cfg.ovsf_len)
        assert (d.pool == 1) == (q.kind == isa.Kind.CONV and q.pool is not None)
        fl = q.fl_out
    if rho == 0.25:
        assert all(q.ovsf is not None and q.ovsf.n_codes == 4 for q in prog.layers if q.kind != isa.Kind.POOL)


# ------------------------------------------------------------ accumulator

def test_accumulator_overflow_is_rejected():
    spec = {"name": "wide", "input_shape": [4096, 1, 1], "weights": {"seed": 2},
            "layers": [{"name": "fc_wide", "type": "fc", "out_features": 8}]}
    net = load_network(spec)
    x = _rng("acc").normal(size=(1, 4096, 1, 1))
    with pytest.raises(NetworkError, match=r"layer 'fc_wide': worst-case accumulator magnitude \d+ .* "
                                           r"exceeds the 32-bit accumulator"):
        compiler.compile_network(net, EngineConfig(data_bits=16, acc_bits=32), x)
    # The rejection is real: at 48 bits, an input exists whose accumulator needs more than 32 bits.
    prog = compiler.compile_network(net, EngineConfig(data_bits=16, acc_bits=48), x)
    q = prog.layers[0]
    w = q.w_q[:, :, 0, 0]
    o = int(np.argmax(np.abs(w).sum(axis=1)))
    worst = np.where(w[o] >= 0, (1 << 15) - 1, -(1 << 15))   # every product at its largest
    acc = sum(int(a) * int(b) for a, b in zip(w[o], worst))   # Python ints: exact
    assert acc > (1 << 31)
    assert acc <= compiler.acc_bound(q.w_q, np.zeros(q.w_q.shape[0], dtype=np.int64), 16)
    assert_bit_exact(prog, x)


# ------------------------------------------------------------ bad input

def test_bad_calibration_and_input():
    net = _net("example5")
    good = _rng("bad").normal(size=(1, 3, 32, 32))
    with pytest.raises(UzError, match=r"input shape \(3, 16, 16\) does not match the network input \(3, 32, 32\)"):
        compiler.compile_network(net, cfg_for(16), np.zeros((1, 3, 16, 16)))
    nan = good.copy()
    nan[0, 1, 2, 3] = np.nan
    with pytest.raises(UzError, match="calibration data holds NaN"):
        compiler.compile_network(net, cfg_for(16), nan)
    with pytest.raises(UzError, match="calibration data holds no images"):
        compiler.compile_network(net, cfg_for(16), np.zeros((0, 3, 32, 32)))
    prog = compiler.compile_network(net, cfg_for(16), good)
    with pytest.raises(UzError, match=r"input shape \(3, 32, 31\) does not match"):
        compiler.load_input(prog, np.zeros((3, 32, 31)))
    with pytest.raises(UzError, match="input holds NaN"):
        compiler.load_input(prog, nan[0])


# ------------------------------------------------------------ outputs

def test_save_program_files(tmp_path):
    net = _net("example5")
    prog = compiler.compile_network(net, cfg_for(8), _rng("save").normal(size=(1, 3, 32, 32)))
    compiler.save_program(prog, str(tmp_path))
    assert (tmp_path / "image.bin").read_bytes() == bytes(prog.image.data)
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["n_layers"] == len(prog.layers) and man["desc_addr"] == prog.desc_addr
    assert man["config"]["data_bits"] == 8 and man["fl_input"] == prog.fl_input
    assert [m["name"] for m in man["layers"]] == [q.name for q in prog.layers]
    assert {r["name"]: r["addr"] for r in man["regions"]} == {r.name: r.addr for r in prog.image.regions}
    text = (tmp_path / "program.txt").read_text()
    for i, q in enumerate(prog.layers):
        raw = prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES)
        assert f"# {i}: {q.name} ({q.kind.name})" in text and raw.hex() in text
    assert sorted(os.listdir(tmp_path)) == ["image.bin", "manifest.json", "program.txt"]


def test_tile_refine_judges_at_the_memory_bandwidth_given():
    """A depthwise 3x3 layer, 960 channels on 7x7, 256-bit bus: without a
    known memory the refine judges it at half the bus rate and keeps 480
    channels a tile; told the memory runs at the bus's 32 bytes a cycle it
    takes 48, which the model predicts faster there (golden.perf; on the RTL
    at 32 bytes a cycle 48 channels took 4548 cycles, 480 took 4997)."""
    from golden import perf
    cfg = EngineConfig(axi_data_bits=256)
    net = load_network({"name": "dw", "input_shape": [960, 7, 7], "weights": {"seed": 1}, "layers": [
        {"name": "dw", "type": "conv", "out_channels": 960, "kernel": 3, "pad": 1, "groups": 960}]})
    x = np.random.default_rng(1).normal(0, 1, (1, 960, 7, 7))
    default = compiler.compile_network(net, cfg, x)
    told = compiler.compile_network(net, cfg, x, bandwidth=32.0)
    assert default.layers[0].tiles["to"] == 480 and told.layers[0].tiles["to"] == 48
    mem = perf.Memory(32.0, 40)
    assert perf.program_cycles(told, mem)[0].cycles < perf.program_cycles(default, mem)[0].cycles


def test_tile_refine_judges_a_layer_at_its_own_input_selection():
    """A 3-channel first layer compiled with input selection off gets the
    tiles the model predicts fastest without it, not those chosen for it on
    (on the RTL at 8 bytes a cycle, the bench's first_3ch, before the row
    hand-offs: 21586 cycles against 26194 with the tiles for input selection
    on)."""
    from golden import perf
    cfg = EngineConfig()
    net = load_network({"name": "f", "input_shape": [3, 32, 32], "weights": {"seed": 1}, "layers": [
        {"name": "c", "type": "conv", "out_channels": 32, "kernel": 3, "pad": 1}, {"type": "relu"}]})
    x = np.random.default_rng(1).normal(0, 1, (1, 3, 32, 32))
    on = compiler.compile_network(net, cfg, x, insel="on", bandwidth=8.0)
    off = compiler.compile_network(net, cfg, x, insel="off", bandwidth=8.0)
    forced = compiler.compile_network(net, cfg, x, insel="off", bandwidth=8.0, tiles={"c": on.layers[0].tiles})
    assert off.layers[0].tiles != on.layers[0].tiles
    assert not off.layers[0].insel and on.layers[0].insel
    mem = perf.Memory(8.0, 40)
    assert perf.program_cycles(off, mem)[0].cycles < perf.program_cycles(forced, mem)[0].cycles


def test_tile_refine_tries_narrower_taller_depthwise_tiles():
    """MobileNet-v2's 32-channel depthwise 3x3 on 112x112 at 32 bytes a
    cycle: the output buffer holds 18 whole rows of 16 channels, so row
    tiles re-read 2 halo rows every 14; half the columns let 36 rows fit,
    fewer halo cells in all. The refine takes that tiling (on the RTL 27426
    cycles against 28881 with whole rows of 14: 91.6% of the roofline bound
    against 87.0%)."""
    from golden import perf
    cfg = EngineConfig(axi_data_bits=256)
    net = load_network({"name": "dw", "input_shape": [32, 112, 112], "weights": {"seed": 1}, "layers": [
        {"name": "dw", "type": "conv", "out_channels": 32, "kernel": 3, "pad": 1, "groups": 32}]})
    x = np.random.default_rng(1).normal(0, 1, (1, 32, 112, 112))
    prog = compiler.compile_network(net, cfg, x, bandwidth=32.0)
    t = prog.layers[0].tiles
    assert t["tc"] == 56 and t["tr"] > 18
    whole = compiler.compile_network(net, cfg, x, bandwidth=32.0, tiles={"dw": {"tr": 14, "tc": 112, "to": 16,
                                                                                "ti": 16}})
    mem = perf.Memory(32.0, 40)
    assert perf.program_cycles(prog, mem)[0].cycles < perf.program_cycles(whole, mem)[0].cycles
