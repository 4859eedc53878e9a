"""Chain networks whose compiled programs must not change when the compiler
changes (tests/test_graph_compiler.py::test_chain_programs_are_unchanged),
and the fingerprint of a compiled program the test compares.

``chain_images.json`` beside this file holds the fingerprints the compiler
gave before it became a pipeline of graph passes (commit 9f4c76f, run from a
``git archive`` of that commit), regenerated eight times on purpose since: when the
tile pass began to refine its tiles by the analytical model
(golden.passes.tile.refine), which changed the tiles (tr, to) of 21 of the
63 programs, their descriptors and weight layouts, and nothing else; and
when the compute's window began to reuse columns along a row (the cycle model
the refinement consults changed), which changed the tiles of 7 programs; and
when the refinement began to try fewer input and more output channels a
tile, which changed the tiles (ti, to, tr) of 2; and when the cycle model
began to count input selection's real channels per ti-tile (it had counted
the whole layer's in every ti-tile: the RTL's MAC steps differed), which
changed the first layer's tiles (ti, to, tr) of 3; and when the default
window became 3x3 (EngineConfig.max_k 3: a larger kernel is compiled as 3x3
sub-windows of a zero-padded k = 3*ceil(K/3)), which changed every program
on a default-derived configuration with a kernel above 3 (listed by the
commit that regenerated them); the two small-buffer cases keep a native
5x5 window, their buffers too small for the sub-windows; and when the
compiler began to cap an OVSF layer's fl_alpha at fl_w + log2 L (the
generator's shift range, golden.isa.gen_shift_range), which changed the
alphas' fl and gen_shift, not the generated weights, of the 2 programs with
8-bit data and 16-bit alphas at rho < 1 (example5/ovsf8_rho0.25,
svd_energy/8_ovsf); and when the cycle model began to send a tile's read
commands ahead of its half (the loader's command side: one memory latency a
tile where it had counted one a stream), which changed the tiles (tr, to)
of 27 programs, their descriptors and weight layouts, and nothing else (the
tile pass judging a layer at its own input selection, not the automatic one,
changed directed/conv_insel_off's further); and when the engine began to
hand tiles over by rows (the compute starts on a half while its input
arrives, the write-back sends rows as the compute finishes them, a row's
first K columns load at once) and the cycle model followed, which changed
the tiles (tr, ti, to) of 30 programs, their descriptors and weight layouts,
and nothing else (the tile pass's threshold falling from 1% to 0.5% of
predicted gain changed two of them further, engine/conv_compute_bound and
handmade/small).
Regenerate it only on purpose, when a change of the chain programs is
intended::

    python tests/data/chain_cases.py tests/data/chain_images.json

This module uses nothing but what every version of the compiler has
(golden.compiler.compile_network and the Program it returns), so it runs
against an old tree too (PYTHONPATH=<old tree>).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

if ROOT not in sys.path:                 # run as a script to regenerate the references
    sys.path.insert(0, ROOT)
from tests.test_compiler import HANDMADE  # noqa: E402  (the compiler tests' network, the same program)

#: An FC split by SVD by energy, with dropout and BatchNorm.
SVD_ENERGY = {"name": "svd_energy", "input_shape": [6, 8, 8], "weights": {"seed": 21}, "layers": [
    {"name": "c1", "type": "conv", "out_channels": 12, "kernel": 3, "pad": 1},
    {"name": "b1", "type": "batchnorm"}, {"type": "relu"},
    {"name": "p1", "type": "maxpool", "kernel": 2, "stride": 2},
    {"name": "d1", "type": "dropout"}, {"type": "flatten"},
    {"name": "f1", "type": "fc", "out_features": 40, "svd_energy": 0.9}, {"type": "relu"},
    {"name": "f2", "type": "fc", "out_features": 10, "svd_rank": 5}]}


def _cfg(**kw):
    from golden.config import EngineConfig
    bits = kw.pop("bits", 16)
    return EngineConfig(data_bits=bits, alpha_bits=kw.pop("alpha_bits", bits),
                        acc_bits=kw.pop("acc_bits", 48 if bits == 16 else 32), **kw)


def cases() -> list:
    """[(case id, network spec, EngineConfig, compile_network options, calibration images)]."""
    from golden.config import EngineConfig
    from golden.randnet import random_network
    sys.path.insert(0, os.path.join(ROOT, "tests", "rtl"))
    sys.path.insert(0, ROOT)
    from tests.rtl.engine_cases import CASES, SMALL
    from tb.sequences import DIRECTED

    example = json.load(open(os.path.join(ROOT, "golden", "networks", "example5.json")))
    out = []

    def add(cid, spec, cfg, n_calib=2, **opts):
        rng = np.random.default_rng(zlib.crc32(cid.encode()))
        calib = rng.normal(size=(n_calib,) + tuple(spec["input_shape"]))
        out.append((cid, spec, cfg, opts, calib))

    # the RTL engine tests' networks, compiled as tests/rtl/engine_cases.build does
    for name, spec in CASES.items():
        spec = dict(spec, name=name)
        opts = {"force_ovsf": spec.pop("force_ovsf")} if "force_ovsf" in spec else {}
        add(f"engine/{name}", spec, SMALL, n_calib=1, **opts)
    add("engine/conv_raw/insel_off", dict(CASES["conv_raw"], name="conv_raw"), SMALL, insel="off")
    add("engine/two_layer_pool/default", dict(CASES["two_layer_pool"], name="two_layer_pool"), EngineConfig())
    # the pyuvm directed programs (fixed weight seed)
    for name, (spec, insel) in DIRECTED.items():
        add(f"directed/{name}", dict(spec, name=name, weights={"seed": 5}), SMALL, insel=insel)
    # example5: BatchNorm, fused pools, an SVD-split FC
    add("example5/16", example, _cfg(bits=16))
    add("example5/8", example, _cfg(bits=8))
    add("example5/small", example, SMALL)
    add("example5/static16", example, _cfg(bits=16), static=True)
    add("example5/static8", example, _cfg(bits=8), static=True)
    add("example5/rho0.5", example, _cfg(bits=16), rho=0.5)
    add("example5/ovsf8_rho0.25", example, EngineConfig(data_bits=8, alpha_bits=16, acc_bits=32, ovsf_len=8),
        rho=0.25, force_ovsf=True)
    add("example5/ovsf8_rho1", example, EngineConfig(data_bits=8, alpha_bits=16, acc_bits=32, ovsf_len=8),
        rho=1.0, force_ovsf=True)
    # a native 5x5 window: conv1's smallest tile (25 x 16 x 16 weights) just
    # fits 6400 (its 6x6 sub-windows would need 9216); a tree older than
    # max_k has no other window
    native5 = {"max_k": 5} if "max_k" in EngineConfig.__dataclass_fields__ else {}
    add("example5/smallbuf_ovsf", example,
        EngineConfig(in_buf_elems=6000, wgt_buf_elems=6400, out_buf_elems=4096, **native5), rho=0.5, force_ovsf=True)
    add("example5/smallbuf", example,
        EngineConfig(in_buf_elems=6000, wgt_buf_elems=6400, out_buf_elems=4096, **native5))
    add("example5/insel_on", example, _cfg(bits=16), insel="on")
    add("example5/tiles", example, _cfg(bits=16), tiles={"conv3": {"tr": 4, "to": 16}, "fc2": {"ti": 16}})
    add("example5/base", example, _cfg(bits=16), base=0x10040)
    add("example5/placement", example, _cfg(bits=16), placement={"conv1.wgt": 0x200000, "fc2.out": 0x300000})
    add("example5/bus256_8", example, _cfg(bits=8, axi_data_bits=256))
    # standalone pools, SVD by energy, dropout
    add("handmade/16", HANDMADE, _cfg(bits=16))
    add("handmade/8", HANDMADE, _cfg(bits=8))
    add("handmade/small", HANDMADE, SMALL)
    add("svd_energy/16", SVD_ENERGY, _cfg(bits=16))
    add("svd_energy/8_ovsf", SVD_ENERGY, EngineConfig(data_bits=8, alpha_bits=16, acc_bits=32, ovsf_len=8),
        rho=0.5)
    # seeded random chains (every kernel, stride, pad, pool; some OVSF layers)
    for seed in range(12):
        spec = random_network(seed)
        add(f"random{seed}/16", spec, _cfg(bits=16))
        if seed % 3 == 0:
            add(f"random{seed}/8", spec, _cfg(bits=8))
        if seed % 4 == 1:
            add(f"random{seed}/small", random_network(seed, ovsf_len=8), SMALL)
    return out


def compile_case(spec, cfg, opts, calib):
    from golden import compiler
    from golden.network import load_network
    net = load_network(spec)
    return compiler.compile_network(net, cfg, calib, **opts)


def fingerprint(prog) -> dict:
    """What must stay the same: the image bytes (descriptors, weights, biases;
    activations are still zero after compiling), the regions and the per-layer
    formats and tiles."""
    from golden import isa
    data = bytes(prog.image.data)
    return {
        "image_sha256": hashlib.sha256(data).hexdigest(),
        "image_bytes": len(data),
        "desc_addr": prog.desc_addr,
        "fl_input": prog.fl_input,
        "descriptors": [prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES).hex()
                        for i in range(len(prog.layers))],
        "regions": [[r.name, r.addr, r.size] for r in prog.image.regions],
        "layer_regions": {name: dict(v) for name, v in prog.regions.items()},
        "layers": [{"name": q.name, "kind": q.kind.name, "fl_in": q.fl_in, "fl_out": q.fl_out,
                    "fl_w": q.fl_w, "fl_b": q.fl_b, "tiles": dict(q.tiles), "insel": bool(q.insel),
                    "rho": q.rho, "ovsf": q.ovsf is not None} for q in prog.layers],
    }


def main(path: str) -> None:
    out = {}
    for cid, spec, cfg, opts, calib in cases():
        out[cid] = fingerprint(compile_case(spec, cfg, opts, calib))
        print(cid, out[cid]["image_sha256"][:16], len(out[cid]["layers"]), "layers")
    with open(path, "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
