"""Analytical performance model of the engine: cycles of a layer from its
descriptor, the configuration and the memory's bandwidth and latency.

The model follows the RTL's schedule (docs/architecture.md, "Dataflow" and
"Cycle model") tile by tile rather than a closed formula, because the three
stages overlap through double buffers and which one bounds a tile changes
within a layer (the first load, the last write-back, weight tiles fetched
only when the to/ti tile changes):

- loader:  per tile, bias and weights when the buffer half does not hold
           them yet, then the input tile unless the half holds it (same
           ti-tile, row and col tile), one read command at a time (one
           for all the tile's channel groups when it holds whole planes,
           else one per group, or per group and row when the tile is
           narrower than the plane), each paying the memory latency;
- compute: per (pixel, channel group) max(window_cycles(K) = K*ceil(K/2)
           window reads, NQ * steps issues), steps = K*K, or
           ceil(Cg*K*K/PN) with input selection;
- write-back: per output pixel and channel group max(pool reads, beats out),
           one write command per (group, row).

A tile's load may start when the loader is free and the compute has
released the half it fills (two tiles back); the compute starts when its
tile is loaded, the previous tile is computed and, on an output tile's first
ti-tile, the write-back has drained the accumulator half. Memory traffic of
the loader and the write-back share the bandwidth: a layer never takes fewer
cycles than its bytes over the bandwidth.

The constants in ``Overheads`` are the RTL's fixed costs (state changes,
pipeline depths), measured on the RTL by ``make bench``, which reports the
model's error on every benchmark layer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from . import isa
from .config import EngineConfig


@dataclass(frozen=True)
class Memory:
    """The memory the engine reads and writes: bytes per cycle (shared by
    reads and writes) and the latency from a read request to its first beat."""
    bytes_per_cycle: float = 16.0
    latency: int = 8

    def beat_cycles(self, beat_bytes: int) -> float:
        return max(1.0, beat_bytes / self.bytes_per_cycle)


@dataclass(frozen=True)
class Overheads:
    """Fixed costs of the RTL, in cycles."""
    command: int = 3         # a read or write command: loader/post state change and DMA issue
    tile_start: int = 3      # compute: tile hand-off to the first window read
    tile_drain: int = 8      # compute: last issue to the last accumulator write
    gen_latency: int = 4     # OVSF generator pipeline
    layer: int = 30          # descriptor fetch, check, start and flush, beyond the memory latency
    write_ack: int = 4       # last write beat to its response, beyond the memory latency


@dataclass
class LayerCycles:
    cycles: int
    mac_busy: int            # PE-array steps (the RTL's PERF_MAC_BUSY)
    load: int                # cycles the loader worked, summed over tiles
    compute: int
    writeback: int
    bytes_read: int
    bytes_written: int
    tiles: int
    bound: str               # which stage took most of the time

    def to_dict(self) -> dict:
        return asdict(self)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def window_cycles(k: int) -> int:
    """Cycles the compute's window loader takes for one K x K window: two
    taps of a row per cycle (uz_in_buf reads two consecutive words)."""
    return k * _ceil(k, 2)


def layer_cycles(d, cfg: EngineConfig, mem: Memory = Memory(), ov: Overheads = Overheads()) -> LayerCycles:
    """Cycles of one layer (a legal isa.Descriptor)."""
    if not isinstance(d, isa.Descriptor):
        d = isa.Descriptor(dict(d))
    isa.check(d, cfg)
    kind = isa.Kind(d.kind)
    pool = kind == isa.Kind.POOL
    pm, pn = cfg.pm, cfg.pn
    beat = cfg.axi_data_bits // 8
    word_beats = pn * cfg.data_bits // cfg.axi_data_bits          # a pixel word of PN channels
    cpb = mem.beat_cycles(beat)
    cin_pad = _ceil(d.in_c, pn) * pn
    cout_pad = _ceil(d.out_c, pm) * pm
    if pool:
        k, stride, pads = 1, 1, (0, 0, 0, 0)
        conv_h, conv_w = d.in_h, d.in_w
    else:
        k, stride, pads = d.k, d.stride, (d.pad_t, d.pad_b, d.pad_l, d.pad_r)
        conv_h, conv_w = isa.conv_dims(d)
    k2 = k * k
    fused_pool = None
    if pool or d.pool:
        # the engine's pools are square with equal pads (a one-cell POOL included)
        pk, _, ps, ppads = isa.pool_window(d, conv_h, conv_w)
        fused_pool = (pk, ps, ppads[0])
    to, ti = d.to, (d.to if pool else d.ti)
    n_to = _ceil(cout_pad, to)
    n_ti = 1 if pool else _ceil(cin_pad, ti)
    row_tiles = [(r, min(d.tr, conv_h - r)) for r in range(0, conv_h, d.tr)]
    col_tiles = [(c, min(d.tc, conv_w - c)) for c in range(0, conv_w, d.tc)]

    def in_span(o0, n, size, pad_lo):
        lo = o0 * stride - pad_lo
        hi = lo + (n - 1) * stride + k - 1
        return max(lo, 0), min(hi, size - 1)

    # --- per-stage times of one tile
    def load_time(o0, no, i0, ni, r0, nr, c0, nc, weights_needed, input_needed):
        t = 0.0
        rd = 0
        if weights_needed and not pool:
            bias_beats = _ceil(no * cfg.data_bits, cfg.axi_data_bits)
            t += ov.command + mem.latency + bias_beats * cpb
            rd += bias_beats * beat
            if d.ovsf:
                blocks = no * ni * k2 // cfg.ovsf_len
                a_beats = _ceil(blocks * d.n_codes * cfg.alpha_bits, cfg.axi_data_bits)
                # The gatherer takes at most a beat per cycle; the generator
                # rebuilds up to gen_blocks blocks of one row (the PM
                # channels' blocks at one f, one buffer address) per cycle.
                gen = (blocks // pm) * _ceil(pm, cfg.gen_blocks)
                t += ov.command + mem.latency + max(gen, a_beats * cpb) + ov.gen_latency
                rd += a_beats * beat
            else:
                w_beats = no * ni * k2 * cfg.data_bits // cfg.axi_data_bits
                t += ov.command + mem.latency + w_beats * cpb
                rd += w_beats * beat
        if not input_needed:
            return t + 1, rd        # the half holds the input tile: one state
        y_lo, y_hi = in_span(r0, nr, d.in_h, pads[0])
        x_lo, x_hi = in_span(c0, nc, d.in_w, pads[2])
        groups = ni // pn
        rows, cols = y_hi - y_lo + 1, x_hi - x_lo + 1
        if x_lo == 0 and x_hi == d.in_w - 1 and y_lo == 0 and y_hi == d.in_h - 1:
            cmds, beats = 1, groups * rows * d.in_w * word_beats     # whole planes are contiguous
        elif x_lo == 0 and x_hi == d.in_w - 1:
            cmds, beats = groups, rows * d.in_w * word_beats
        else:
            cmds, beats = groups * rows, cols * word_beats
        t += cmds * (ov.command + mem.latency + beats * cpb)
        rd += cmds * beats * beat
        return t, rd

    def compute_time(no, ni, nr, nc):
        nq, ng = no // pm, ni // pn
        if pool:
            per_window, steps = max(1, nq), 1
        else:
            cg_last = min(pn, d.in_c - (ng - 1) * pn) if d.insel else pn
            steps = k2 if not d.insel else _ceil(cg_last * k2, pn)
            per_window = max(window_cycles(k), nq * steps)
        pixels = nr * nc
        # every group but the last of the input channels is full
        if not pool and d.insel and ng > 1:
            full_steps = k2
            t = pixels * ((ng - 1) * max(window_cycles(k), nq * full_steps) + per_window)
            mac = pixels * nq * ((ng - 1) * full_steps + steps)
        else:
            t = pixels * ng * per_window
            mac = pixels * ng * nq * (1 if pool else steps)
        return t + ov.tile_start + ov.tile_drain, mac

    def writeback_time(no, r0, nr, c0, nc):
        nq = no // pm
        if fused_pool:
            pk, ps, pp = fused_pool
            # a split plane has non-overlapping, unpadded windows on tile
            # edges that are multiples of the stride (isa BAD_TILE)
            oh, ow = _pool_out(conv_h, pk, ps, pp), _pool_out(conv_w, pk, ps, pp)
            prow = oh if nr == conv_h else max(0, min(nr // ps, oh - r0 // ps))
            pcol = ow if nc == conv_w else max(0, min(nc // ps, ow - c0 // ps))
            reads = pk * pk
        else:
            prow, pcol, reads = nr, nc, 1
        wbeats = pm * cfg.data_bits // cfg.axi_data_bits
        per_pix = max(reads, wbeats * cpb)
        t = nq * prow * (ov.command + pcol * per_pix)
        return t, nq * prow * pcol * wbeats * beat

    # --- the pipeline over tiles, in the RTL's order
    load_end = []
    comp_end = []
    wb_end = []
    tot = {"load": 0.0, "compute": 0.0, "writeback": 0.0}
    rd_bytes = wr_bytes = mac_total = 0
    half_tag = [None, None]
    half_in = [None, None]
    loader_free = 0.0
    out_tile = -1
    out_tile_last_comp = []
    wb_free = 0.0
    t_idx = 0
    for o0 in range(0, cout_pad, to):
        no = min(to, cout_pad - o0)
        for r0, nr in row_tiles:
            for c0, nc in col_tiles:
                out_tile += 1
                for ii in range(n_ti):
                    i0 = ii * ti
                    ni = min(ti, cin_pad - i0) if not pool else no
                    h = t_idx % 2
                    need_w = half_tag[h] != (o0, i0)
                    half_tag[h] = (o0, i0)
                    need_in = half_in[h] != (i0, r0, c0)
                    half_in[h] = (i0, r0, c0)
                    lt, rd = load_time(o0, no, i0, ni, r0, nr, c0, nc, need_w, need_in)
                    start = max(loader_free, comp_end[t_idx - 2] if t_idx >= 2 else 0.0)
                    loader_free = start + lt
                    load_end.append(loader_free)
                    ct, mac = compute_time(no, ni, nr, nc)
                    cstart = max(loader_free, comp_end[-1] if comp_end else 0.0)
                    if ii == 0 and out_tile >= 2:
                        cstart = max(cstart, wb_end[out_tile - 2])
                    comp_end.append(cstart + ct)
                    tot["load"] += lt
                    tot["compute"] += ct
                    rd_bytes += rd
                    mac_total += mac
                    t_idx += 1
                wt, wr = writeback_time(no, r0, nr, c0, nc)
                ws = max(comp_end[-1], wb_free)
                wb_free = ws + wt
                wb_end.append(wb_free)
                tot["writeback"] += wt
                wr_bytes += wr
    desc_beats = isa.DESC_BYTES // beat
    head = ov.command + mem.latency + desc_beats * cpb + ov.layer
    end = wb_free + mem.latency + ov.write_ack
    cycles = head + end
    cycles = max(cycles, (rd_bytes + wr_bytes) / mem.bytes_per_cycle)
    bound = max(tot, key=tot.get)
    return LayerCycles(int(math.ceil(cycles)), int(mac_total), int(tot["load"]), int(tot["compute"]),
                       int(tot["writeback"]), int(rd_bytes + desc_beats * beat), int(wr_bytes), t_idx, bound)


def _pool_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def program_cycles(prog, mem: Memory = Memory(), ov: Overheads = Overheads()) -> list:
    """Per-layer LayerCycles of a compiled program (golden.compiler.Program)."""
    out = []
    for i in range(len(prog.layers)):
        d = isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
        out.append(layer_cycles(d, prog.cfg, mem, ov))
    return out


def peak_macs_per_cycle(cfg: EngineConfig) -> int:
    return cfg.pm * cfg.pn


def layer_macs(d) -> int:
    """Useful multiply-accumulates of a layer (no padding lanes)."""
    if not isinstance(d, isa.Descriptor):
        d = isa.Descriptor(dict(d))
    if d.kind == isa.Kind.POOL:
        return 0
    ch, cw = isa.conv_dims(d)
    return d.out_c * d.in_c * d.k * d.k * ch * cw
