"""The analytical performance model (golden/perf.py). Its cycle estimates
are checked against the RTL by `make bench`; here: its exact parts (PE-array
steps, bytes moved) and how it must respond to the memory and the modes."""
import numpy as np
import pytest

from golden import compiler, isa, perf
from golden.config import EngineConfig
from golden.errors import DescriptorError, UzError
from golden.network import load_network

CFG = EngineConfig()


def compile_one(layer, input_shape, cfg=CFG, insel="auto", **kw):
    net = load_network({"name": "t", "input_shape": list(input_shape), "weights": {"seed": 1}, "layers": [layer]})
    calib = np.random.default_rng(0).normal(0, 1, (1,) + tuple(input_shape))
    return compiler.compile_network(net, cfg, calib, insel=insel, **kw)


def conv(cout, k, pad=0, stride=1, **kw):
    return dict({"name": "c", "type": "conv", "out_channels": cout, "kernel": k, "pad": pad, "stride": stride}, **kw)


def test_mac_steps_of_a_full_conv_are_exact():
    prog = compile_one(conv(64, 3, 1), (32, 20, 20))
    [lc] = perf.program_cycles(prog)
    # every output pixel, every (oc-group, ci-group), K*K steps
    assert lc.mac_busy == 20 * 20 * (64 // CFG.pm) * (32 // CFG.pn) * 9
    assert lc.cycles >= lc.mac_busy


def test_input_selection_takes_fewer_steps_on_three_channels():
    on = perf.program_cycles(compile_one(conv(32, 3, 1), (3, 32, 32), insel="on"))[0]
    off = perf.program_cycles(compile_one(conv(32, 3, 1), (3, 32, 32), insel="off"))[0]
    assert on.mac_busy == 32 * 32 * 2 * -(-3 * 9 // CFG.pn)
    assert off.mac_busy == 32 * 32 * 2 * 9
    assert on.cycles < off.cycles


def test_less_bandwidth_never_makes_a_layer_faster():
    prog = compile_one({"name": "f", "type": "fc", "out_features": 256}, (512, 1, 1))
    cycles = [perf.program_cycles(prog, perf.Memory(bw, 20))[0].cycles for bw in (16, 8, 4, 2, 1)]
    assert cycles == sorted(cycles)
    lc = perf.program_cycles(prog, perf.Memory(1, 20))[0]
    assert lc.cycles >= lc.bytes_read + lc.bytes_written     # one byte per cycle


def test_fc_weights_dominate_its_traffic():
    prog = compile_one({"name": "f", "type": "fc", "out_features": 256}, (512, 1, 1))
    lc = perf.program_cycles(prog)[0]
    assert lc.bytes_read >= 512 * 256 * CFG.elem_bytes


def test_ovsf_moves_fewer_weight_bytes_on_a_memory_bound_layer():
    raw = compile_one({"name": "f", "type": "fc", "out_features": 256}, (512, 1, 1))
    ovsf = compile_one({"name": "f", "type": "fc", "out_features": 256, "rho": 0.25}, (512, 1, 1))
    mem = perf.Memory(4, 20)
    r, o = perf.program_cycles(raw, mem)[0], perf.program_cycles(ovsf, mem)[0]
    assert o.bytes_read < 0.3 * r.bytes_read
    assert o.cycles < r.cycles


def test_generator_bound_fc_scales_with_gen_lanes():
    """At rho = 1/16 with a fast memory an FC layer is bound by the weights
    generator: a row of PM blocks takes ceil(PM / gen_lanes) cycles."""
    layer = {"name": "f", "type": "fc", "out_features": 512, "rho": 1 / 16}
    mem = perf.Memory(64, 20)
    out = {}
    for lanes in (1, 2, 8, 16):
        cfg = EngineConfig(gen_lanes=lanes)
        prog = compile_one(layer, (1024, 1, 1), cfg=cfg)
        d = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
        assert d.n_codes == 1
        out[lanes] = perf.program_cycles(prog, mem)[0]
        assert out[lanes].bytes_read == out[1].bytes_read   # the same traffic
    blocks = 512 * 1024 // CFG.ovsf_len
    # one block per cycle: the generator alone takes `blocks` cycles
    assert blocks <= out[1].cycles < 1.1 * blocks
    assert out[2].cycles < 0.55 * out[1].cycles
    # 8 lanes: a beat of 8 one-code blocks per cycle, the bus (16 bytes a
    # cycle here) bounds the layer, not the generator; 16 lanes gain nothing
    alpha_beats = blocks * CFG.alpha_bytes // CFG.bus_bytes
    assert alpha_beats <= out[8].cycles < 0.2 * out[1].cycles
    assert out[16].cycles == out[8].cycles
    assert EngineConfig().gen_blocks == 8 == EngineConfig(gen_lanes=8).gen_blocks


def test_illegal_descriptor_is_refused():
    prog = compile_one(conv(16, 3, 1), (16, 8, 8))
    d = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
    d.values["k"] = 4
    with pytest.raises(DescriptorError):
        perf.layer_cycles(d, CFG)


def test_layer_macs_counts_real_channels_only():
    prog = compile_one(conv(10, 3, 1), (3, 8, 8))
    d = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
    assert perf.layer_macs(d) == 10 * 3 * 9 * 8 * 8


# ------------------------------------------------------------ residual add

def residual_prog(c, hw, tiles=None, rho=None, cfg=CFG):
    """One 1x1 convolution of c channels with the input added back (ReLU
    after the add): a layer with res=1 whose residual is c x hw x hw."""
    spec = {"name": "r", "input_shape": [c, hw, hw], "weights": {"seed": 1}, "layers": [
        conv(c, 1, name="c", **({"rho": rho} if rho else {})), {"name": "a", "type": "add", "inputs": ["c", "input"]},
        {"name": "ar", "type": "relu"}]}
    net = load_network(spec)
    calib = np.random.default_rng(0).normal(0, 1, (1, c, hw, hw))
    prog = compiler.compile_network(net, cfg, calib, tiles={"c": tiles} if tiles else None,
                                    force_ovsf=bool(rho))
    d = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
    assert d.res == 1
    return d


def without_res(d):
    d2 = isa.Descriptor(dict(d.values))
    d2.set(res=0, res_addr=0, res_shift=0)
    return d2


@pytest.mark.parametrize("tiles, cmds, streams", [
    ({"tr": 12, "tc": 12, "to": 32}, 1, 1),      # the whole plane: one command for every group
    ({"tr": 4, "to": 32}, 2 * 3, 3),             # whole rows: one per group and row tile (12 = 4 + 4 + 4)
    ({"tr": 12, "tc": 6, "to": 16}, 2 * 2 * 12, 2 * 2),    # narrower than the plane: one per group and row
])
def test_residual_reads_its_tensor_once_in_the_commands_the_rtl_issues(tiles, cmds, streams):
    d = residual_prog(32, 12, tiles)
    mem_fast, mem_slow = perf.Memory(64, 10), perf.Memory(64, 1010)
    res, raw = perf.layer_cycles(d, CFG, mem_fast), perf.layer_cycles(without_res(d), CFG, mem_fast)
    # every residual pixel once: 32 channels x 12 x 12 in 16-bit words
    assert res.bytes_read - raw.bytes_read == 32 * 12 * 12 * CFG.elem_bytes
    assert res.bytes_written == raw.bytes_written and res.mac_busy == raw.mac_busy
    # (the residual's commands follow the input's, so on the fast memory its
    # data can arrive while the compute runs and cost no cycle)
    assert res.cycles >= raw.cycles
    if cmds == 1:
        # one tile: its residual command follows the input's once the bursts
        # in flight let it (uz_axi_rd keeps four), and the write-back waits
        # for its data: 1000 more cycles of latency show on the residual, at
        # most once per command (its latency overlaps the input's data)
        slow_res, slow_raw = perf.layer_cycles(d, CFG, mem_slow), perf.layer_cycles(without_res(d), CFG, mem_slow)
        extra = (slow_res.cycles - slow_raw.cycles) - (res.cycles - raw.cycles)
        assert 0 < extra <= 1000 * cmds
    else:
        # an output tile's residual commands go out back to back: its
        # residual pays the latency once when the bursts in flight cover it;
        # 1000 cycles more of latency cost each output tile at least 1000
        # more, the whole layer less than 1000 per command, and the
        # loader's work shows them
        slow_res = perf.layer_cycles(d, CFG, mem_slow)
        fast_load = res.load - raw.load
        extra = (slow_res.load - perf.layer_cycles(without_res(d), CFG, mem_slow).load) - fast_load
        assert 1000 * streams <= extra < 1000 * cmds
        assert slow_res.cycles > res.cycles


def test_residual_sits_in_the_loaders_sequence_as_the_rtl_runs_it():
    """Three output tiles of two ti-tiles each: each output tile's residual
    is read right after its last input tile, once the write-back has written
    the output tile two back; the next input tile waits for it, and the
    write-back waits for the residual. A fused 3x3/1 max pool makes the
    write-back the slow stage (9 reads a pixel), so the wait binds."""
    d = residual_prog(48, 8, {"tr": 8, "tc": 8, "to": 16, "ti": 32})
    d.set(pool=1, pool_k=3, pool_s=1, pool_pad=1)
    ev = []
    lc = perf.layer_cycles(d, CFG, perf.Memory(64, 10), events=ev)
    assert lc.tiles == 6
    order = [(s, t) for s, t, _, _ in ev if s in ("load", "residual")]
    assert order == [("load", 0), ("load", 1), ("residual", 0), ("load", 2), ("load", 3), ("residual", 1),
                     ("load", 4), ("load", 5), ("residual", 2)]
    by = {(s, t): (a, b) for s, t, a, b in ev}
    for o in range(3):
        rs, re_ = by[("residual", o)]
        assert rs >= by[("load", 2 * o + 1)][1]                      # after the last input tile
        if o >= 2:
            assert rs >= by[("writeback", o - 2)][1]                 # its half is free
        if o < 2:
            assert by[("load", 2 * o + 2)][0] >= re_                 # the loader goes on after it
        assert by[("writeback", o)][0] >= max(re_, by[("compute", 2 * o + 1)][1])
        # the compute of the last ti-tile does not wait for the residual:
        # it starts once the tile before is done and its input's first rows
        # are in, before the whole input tile is, and ends after it
        load, comp, before = by[("load", 2 * o + 1)], by[("compute", 2 * o + 1)], by[("compute", 2 * o)]
        assert comp[0] >= max(load[0], before[1]) and comp[1] > load[1]
        if before[1] < load[1]:
            assert comp[0] < load[1]
    # the tile-2 residual waited for the write-back of tile 0
    assert by[("residual", 2)][0] == by[("writeback", 0)][1]


def test_compulsory_bytes_and_the_roofline_count_the_residual():
    d = residual_prog(64, 14)
    with_res, without = perf.compulsory_bytes(d, CFG), perf.compulsory_bytes(without_res(d), CFG)
    assert with_res["residual"] == 64 * 14 * 14 * CFG.elem_bytes and without["residual"] == 0
    assert with_res["total"] - without["total"] == with_res["residual"]
    assert with_res["input"] == with_res["output"] == with_res["residual"]
    assert with_res["weights"] == 64 * 64 * CFG.elem_bytes
    mem = perf.Memory(8, 40)
    roof = perf.roofline_cycles(d, CFG, mem)
    assert roof["bound"] == "memory" and roof["cycles"] == with_res["total"] / 8
    assert perf.roofline_cycles(without_res(d), CFG, mem)["cycles"] < roof["cycles"]
    # the model never beats the roofline, nor moves fewer bytes than compulsory
    lc = perf.layer_cycles(d, CFG, mem)
    assert lc.cycles >= roof["cycles"]
    assert lc.bytes_read + lc.bytes_written >= with_res["total"]
    # a compute-bound layer: the MACs at PM * PN per cycle
    prog = compile_one(conv(64, 3, 1), (64, 28, 28))
    d3 = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
    r3 = perf.roofline_cycles(d3, CFG, perf.Memory(32, 40))
    assert r3["bound"] == "compute" and r3["cycles"] == 64 * 64 * 9 * 28 * 28 / (CFG.pm * CFG.pn)


def test_ovsf_residual_layer_reads_fewer_weight_bytes_same_residual():
    raw, ovsf = residual_prog(64, 8), residual_prog(64, 8, rho=0.25)
    assert ovsf.ovsf and ovsf.res
    cr, co = perf.compulsory_bytes(raw, CFG), perf.compulsory_bytes(ovsf, CFG)
    assert co["residual"] == cr["residual"] and co["weights"] == cr["weights"] // 4


def test_grouped_layers_are_not_modelled():
    d = residual_prog(32, 8)
    d2 = isa.Descriptor(dict(d.values))
    d2.set(groups=2, ti=16)
    with pytest.raises(DescriptorError, match="does not model"):
        perf.layer_cycles(d2, CFG)


# ------------------------------------------------------------ average pools

def pool_prog(spec_layer, shape):
    net = load_network({"name": "p", "input_shape": list(shape), "weights": {"seed": 1}, "layers": [spec_layer]})
    calib = np.random.default_rng(0).normal(0, 1, (1,) + tuple(shape))
    prog = compiler.compile_network(net, CFG, calib)
    return isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))


def test_average_pool_pixel_waits_for_its_division():
    """A 2x2/2 average pool: the divider's data_bits / 4 + 3 cycles a pixel
    are longer than its 4 window reads, so each output pixel takes the
    division; a max pool of the same window takes its reads."""
    d = pool_prog({"name": "p", "type": "avgpool", "kernel": 2, "stride": 2}, (16, 8, 8))
    assert d.kind == isa.Kind.POOL and d.pool_avg
    mx = isa.Descriptor(dict(d.values))
    mx.set(pool_avg=0)
    mem = perf.Memory(64, 10)
    ov = perf.Overheads()
    period = CFG.data_bits // 4 + ov.avg_divide
    assert period > 4
    diff = perf.layer_cycles(d, CFG, mem).writeback - perf.layer_cycles(mx, CFG, mem).writeback
    assert diff == 4 * 4 * (period - 4)     # 4x4 output pixels, one channel group


def test_global_average_pool_reads_every_cell_once_per_output():
    d = pool_prog({"name": "g", "type": "gap"}, (32, 7, 7))
    assert d.pool_global and d.pool_avg
    lc = perf.layer_cycles(d, CFG, perf.Memory(64, 10))
    # two channel groups, one output pixel each: 49 window reads, which
    # hide the division
    assert lc.writeback == 2 * (perf.Overheads().command + 49)
    assert CFG.data_bits // 4 + perf.Overheads().avg_divide < 49


def test_pool_layer_reads_each_channel_tile_input():
    """A POOL layer's tiles walk its channels (ti = to): each tile reads its
    own channels' input, none is taken for another tile's (the tile's input
    tag is its channel group, not ti-tile 0)."""
    d = pool_prog({"name": "p", "type": "maxpool", "kernel": 2, "stride": 2}, (64, 8, 8))
    assert d.kind == isa.Kind.POOL and d.to == d.ti < 64
    lc = perf.layer_cycles(d, CFG, perf.Memory(16, 10))
    assert lc.tiles == 64 // d.to
    assert lc.bytes_read - isa.DESC_BYTES == 64 * 8 * 8 * CFG.elem_bytes
    assert lc.bytes_written == 64 * 4 * 4 * CFG.elem_bytes


def test_row_fetch_takes_k_cycles_per_group_of_in_reads_columns():
    """A row of 16 pixels at K 3, stride 1: 18 columns, fetched in groups of
    in_reads (2: 9 groups, 4: 5, 8: 3) of K cycles each. The window side
    fills K - 1 columns beyond the pixels, unless a column group holds the
    row's first K columns (in_reads >= K), which then load at once."""
    for reads, groups in ((2, 9), (4, 5), (8, 3)):
        fetch, window = perf.row_cycles(3, 1, 16, 1, reads)
        assert fetch == groups * 3
        assert window == (2 if reads < 3 else 0) + 16
    # a stride past K takes its columns singly: no load at once
    assert perf.row_cycles(1, 2, 16, 1, 4)[1] == 16
    assert perf.row_cycles(3, 4, 16, 1, 4)[1] == 2 + 16 + 15 * 2
    with pytest.raises(UzError, match="in_reads"):
        EngineConfig(in_reads=3)


def test_row_of_right_padding_group_is_folded():
    """A 7-pixel row at K 3, pad 1: columns -1 .. 7 in groups of 4, the last
    group column 7 alone, past the 7-wide plane: the group before takes it,
    so the row fetches two groups, not three. Not where the last group holds
    a real column, nor for a row of one group."""
    assert perf.padding_group(3, 1, 7, 4, -1, 7)
    assert perf.row_cycles(3, 1, 7, 1, 4, pad_group=True)[0] == 2 * 3
    assert not perf.padding_group(3, 1, 7, 4, -1, 8)       # column 7 is real
    assert not perf.padding_group(3, 1, 14, 4, -1, 14)     # columns -1 .. 14: the last group holds 11 .. 13
    assert not perf.padding_group(3, 1, 2, 4, -1, 2)       # one group
    assert not perf.padding_group(1, 2, 7, 4, 0, 7)        # columns skipped
    # an 11-wide 3x3/2, pad 1: 6 pixels read columns -1 .. 11, the last group column 11 alone
    assert perf.padding_group(3, 2, 6, 4, -1, 11)


def test_two_column_slots_bound_a_depthwise_row():
    """Rows per cycle as RTL traces of depthwise 3x3 rows (one step a pixel)
    showed them, the fetcher waiting for a slot the window still drains:
    7 pixels 10 cycles in three groups, 8 with the padding group folded
    (fetch 6, window 7), 14 pixels 15 (window 14), 28 pixels 30 (28)."""
    assert perf.slot_row_cycles(3, 1, 7, 1, 4) == 10
    assert perf.slot_row_cycles(3, 1, 7, 1, 4, pad_group=True) == 8
    assert perf.slot_row_cycles(3, 1, 14, 1, 4) == 15
    assert perf.slot_row_cycles(3, 1, 28, 1, 4) == 30
    # a dense row of many steps a pixel never waits for a slot: the window bound
    assert perf.slot_row_cycles(3, 1, 14, 9, 4) == perf.row_cycles(3, 1, 14, 9, 4)[1]
