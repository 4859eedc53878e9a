"""Graph features the RTL does not run yet: the engine's descriptor check
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
    ({"res": 1, "res_addr": 0}, "residual add"),
    ({"groups": 2}, "grouped convolution"),
    ({"clip": 1, "clip_hi": 100}, "clip"),
    ({"out_c_off": 8, "out_c_total": 16}, "channel slice"),
])
def test_uz_run_refuses_a_graph_feature_naming_the_layer(fields, what):
    prog = _prog()
    d = _patch(prog, 1, **fields)
    assert isa.validate(d, CFG) == isa.Err.UNSUPPORTED
    assert isa.validate(d, CFG, engine=False) == isa.Err.NONE
    with pytest.raises(UzError, match=rf"layer 'c2' uses .*{what}.*RTL does not run"):
        refuse_unsupported(prog)
