"""Shorthand for the network descriptions (golden.network) the graph tests
write, and the small engine configuration they compile for."""
from __future__ import annotations

import zlib

import numpy as np

from golden import compiler, funcmodel, isa, layers
from golden.config import EngineConfig
from golden.network import INPUT, load_network
from golden.passes import fuse

#: PM = PN = 8: the small engine of the RTL tests (tests/rtl/engine_cases.py).
SMALL = EngineConfig(data_bits=16, acc_bits=48, pm=8, pn=8, ovsf_len=8, alpha_bits=16,
                     axi_data_bits=128, in_buf_elems=8192, wgt_buf_elems=8192, out_buf_elems=4096)
CFGS = {"default": EngineConfig(), "small": SMALL}


def rng(*key):
    """A generator seeded from a key (stable across runs and processes)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def seeded_network(nets: dict, name: str):
    """Network ``name`` of a test's descriptions, its weights seeded from the name."""
    return load_network(dict(nets[name], name=name, weights={"seed": zlib.crc32(name.encode()) % 1000}))


def conv(name, cout, k=3, inputs=None, **kw):
    """A conv layer with 'same' padding for odd k."""
    d = {"name": name, "type": "conv", "out_channels": cout, "kernel": k, "pad": k // 2}
    if inputs is not None:
        d["inputs"] = inputs
    d.update(kw)
    return d


def op(name, t, inputs=None, **kw):
    d = {"name": name, "type": t}
    if inputs is not None:
        d["inputs"] = inputs
    d.update(kw)
    return d


def descriptors(prog):
    """The program's descriptors, decoded from its image."""
    return [isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
            for i in range(len(prog.layers))]


def mismatches(prog, ref, img) -> list:
    """What differs, on one input, between a program's image run and a
    reference program of the same network (compiled another way): each
    layer against the program's own integer run; the network output and
    every tensor of the reference (logical channels) against the
    reference's integer run, which its own image run must match."""
    bad = []
    cfg = prog.cfg
    xq = compiler.load_input(prog, img)
    assert np.array_equal(xq, compiler.load_input(ref, img))
    own = compiler.run_network(prog, xq)
    funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), cfg)
    for i, q in enumerate(prog.layers):
        n = layers.compare(own[i], compiler.layer_output(prog, i))[1]
        if n:
            bad.append(f"layer {q.name}: {n} mismatches with its integer run")
    _, vals = compiler.run_graph(ref, xq)
    funcmodel.run_image(ref.image, ref.desc_addr, len(ref.layers), cfg)
    want = compiler.network_output_q(ref, xq)
    assert np.array_equal(compiler.network_output(ref), want)   # the grouped program's own image run
    if not np.array_equal(compiler.network_output(prog), want):
        bad.append("network output")
    for tname, t in ref.graph.tensors.items():
        if tname != INPUT and tname in prog.graph.tensors and (tname in vals or t.parts):
            v = fuse.logical(t, fuse.tensor_value(ref.graph.tensors, vals, tname))
            if not np.array_equal(compiler.tensor_output(prog, tname), v):
                bad.append(f"tensor {tname}")
    return bad
