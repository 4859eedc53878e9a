"""Graph features the RTL does not run yet (residual adds, groups, shuffles,
the graph pools): the engine's descriptor check
refuses them (UNSUPPORTED, before any other check), the functional model runs
them, and `uz run` refuses the program before simulating, naming the layer."""
import pytest

from golden import compiler, isa
from golden.errors import UzError
from golden.network import load_network
from tb.regressions import CONFIGS
from tb.rtl_run import refuse_unsupported

import numpy as np

CFG = CONFIGS["small"]


def _prog():
    net = load_network({"input_shape": [8, 6, 6], "weights": {"seed": 1}, "layers": [
        {"name": "c1", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
        {"name": "c2", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1}]})
    return compiler.compile_network(net, CFG, np.random.default_rng(0).normal(size=(1, 8, 6, 6)))


def _patch(prog, idx, **fields):
    addr = prog.desc_addr + idx * isa.DESC_BYTES
    d = isa.Descriptor.decode(prog.image.read(addr, isa.DESC_BYTES))
    d.set(**fields)
    prog.image.write(addr, d.encode())
    return d


def test_chain_program_is_supported():
    refuse_unsupported(_prog())


@pytest.mark.parametrize("fields, what", [
    ({"groups": 2}, "grouped convolution"),
    ({"in_shuffle": 2}, "channel shuffle"),
])
def test_uz_run_refuses_a_graph_feature_naming_the_layer(fields, what):
    prog = _prog()
    d = _patch(prog, 1, **fields)
    assert isa.validate(d, CFG) == isa.Err.UNSUPPORTED
    assert isa.validate(d, CFG, engine=False) == isa.Err.NONE
    with pytest.raises(UzError, match=rf"layer 'c2' uses .*{what}.*RTL does not run"):
        refuse_unsupported(prog)


@pytest.mark.parametrize("fields", [
    {"clip": 1, "clip_hi": 100},
    {"out_c_off": 8, "out_c_total": 16},
    {"out_c_total": 24},
    {"in_c_off": 8, "in_c_total": 16},
])
def test_clip_and_channel_slices_run_on_the_rtl(fields):
    """Channel slices and the clip (ReLU6) run on the RTL: the engine accepts
    them (its legality rules apply instead) and uz run does not refuse them."""
    prog = _prog()
    d = _patch(prog, 1, **fields)
    assert not isa.unsupported_features(d)
    assert isa.validate(d, CFG) == isa.Err.NONE
    refuse_unsupported(prog)


@pytest.mark.parametrize("fields, code", [
    ({"out_c_off": 4, "out_c_total": 16}, isa.Err.BAD_ALIGN),
    ({"in_c_off": 1, "in_c_total": 16}, isa.Err.BAD_ALIGN),
    ({"out_c_off": 16, "out_c_total": 16}, isa.Err.SHAPE_MISMATCH),
    ({"in_c_off": 8}, isa.Err.SHAPE_MISMATCH),
    ({"clip": 1, "clip_hi": 1 << 15}, isa.Err.BAD_SHIFT),
])
def test_clip_and_slice_legality_in_engine_mode(fields, code):
    """The legality rules of the two features hold for the engine as for the
    functional model."""
    prog = _prog()
    d = _patch(prog, 1, **fields)
    assert isa.validate(d, CFG) == code
    assert isa.validate(d, CFG, engine=False) == code


def test_every_pool_runs_on_the_rtl():
    """The RTL runs every pool the instruction set has: the one-cell POOL
    (isa.identity_pool), other windows, averages and global pools; only
    grouped convolution and the channel shuffle are still refused."""
    base = dict(magic=isa.MAGIC, kind=int(isa.Kind.POOL), in_c=8, in_h=6, in_w=6, out_c=8, out_h=6, out_w=6,
                tr=6, tc=6, ti=8, to=8, pool_kh=1, pool_kw=1, pool_s=1)
    d = isa.Descriptor(dict(base))
    assert isa.identity_pool(d) and isa.validate(d, CFG) == isa.Err.NONE
    for change in ({"pool_kh": 2, "pool_kw": 2, "out_h": 5, "out_w": 5}, {"pool_s": 2, "out_h": 3, "out_w": 3},
                   {"pool_avg": 1, "pool_global": 1, "out_h": 1, "out_w": 1},
                   {"pool_kh": 3, "pool_kw": 3, "pool_asym": 1, "pool_pad_r": 2, "out_h": 4, "out_w": 6}):
        d = isa.Descriptor(dict(base, **change))
        assert not isa.identity_pool(d) and not isa.unsupported_features(d), change
        assert isa.validate(d, CFG) == isa.Err.NONE, change
