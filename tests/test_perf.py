"""The analytical performance model (golden/perf.py). Its cycle estimates
are checked against the RTL by `make bench`; here: its exact parts (PE-array
steps, bytes moved) and how it must respond to the memory and the modes."""
import numpy as np
import pytest

from golden import compiler, isa, perf
from golden.config import EngineConfig
from golden.errors import DescriptorError
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
