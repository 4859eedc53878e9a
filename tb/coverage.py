"""Functional coverage collector: samples every layer of every finished
program into the covergroups of tb/funcov.py and exports them per run."""
from __future__ import annotations

import os

import numpy as np
from pyuvm import uvm_subscriber

from golden import arith, isa, perf


def layer_stats(item, i) -> dict:
    """What a layer exercised, from its descriptor and golden trace."""
    prog = item.prog
    cfg = prog.cfg
    d = isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
    t = item.traces[i]
    kind = isa.Kind(d.kind)
    if kind == isa.Kind.POOL:
        conv_h, conv_w = d.in_h, d.in_w
    else:
        conv_h, conv_w = isa.conv_dims(d)
    acc = arith.relu(t.acc) if d.relu else t.acc
    wide = arith.shift_round_sat(acc, d.data_shift, 62)
    shifted = np.asarray(arith.shift_round_sat(acc, d.data_shift, cfg.data_bits))
    clip_binding = bool(d.clip) and kind != isa.Kind.POOL and bool(np.any(shifted > d.clip_hi))
    saturated = bool(np.any(np.asarray(wide) != np.asarray(arith.shift_round_sat(acc, d.data_shift, cfg.data_bits))))
    return {
        "partial_rows": conv_h % d.tr != 0,
        "partial_cols": conv_w % d.tc != 0,
        "partial_in": kind != isa.Kind.POOL and (-(-d.in_c // cfg.pn) * cfg.pn) % d.ti != 0,
        "partial_out": kind != isa.Kind.POOL and (-(-d.out_c // cfg.pm) * cfg.pm) % d.to != 0,
        "saturated": saturated,
        "clip_binding": clip_binding,
        # the pad channels of the layer's last word lie inside its tensor,
        # before another part of the concat: a gap
        "out_gap": d.out_c % cfg.pn != 0 and d.out_c_off + d.out_c < d.out_c_total,
        "stall": item.stall,
        # the residual add saturated: the operands' sum left the accumulator's range
        "res_saturated": t.res_al is not None and bool(np.any(t.acc_conv + t.res_al != t.acc)),
        # a grouped convolution the compiler lowered to dense layers (its descriptor is dense)
        "lowered_group": prog.layers[i].name in lowered_layers(prog),
        "write_back": "rows" if perf.rows_write_back(d, cfg) else "tile",
        # a column tile's rows end in a group of right padding only, which
        # the group before takes (uz_compute fold_q; it needs in_reads)
        "pad_group": perf.layer_padding_group(d, cfg),
        "fields": d.values,
    }


def lowered_layers(prog) -> set:
    """Names of the layers that run a lowered grouped convolution (its bands,
    or its one block-diagonal layer: golden.passes.fuse's Graph.lowered)."""
    lowered = getattr(getattr(prog, "graph", None), "lowered", None) or {}
    return {n for v in lowered.values() for n in v.get("layers", ())}


class FunctionalCoverage(uvm_subscriber):
    def build_phase(self):
        try:
            from . import funcov
            self.funcov = funcov
        except ImportError:   # covergroups not defined yet: nothing to sample
            self.funcov = None
        self.layers = 0

    def write(self, item):
        if self.funcov is None:
            return
        for i in range(len(item.traces)):
            st = layer_stats(item, i)
            self.funcov.sample_layer(st.pop("fields"), st)
            self.layers += 1

    def report_phase(self):
        if self.funcov is not None and self.layers:
            self.funcov.export(os.path.join(os.getcwd(), "funcov.xml"))
            self.logger.info(f"functional coverage: {self.layers} layers sampled")
