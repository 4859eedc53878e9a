"""Analytical performance model of the engine: cycles of a layer from its
descriptor, the configuration and the memory's bandwidth and latency.

The model follows the RTL's schedule (docs/architecture.md, "Dataflow" and
"Cycle model") tile by tile rather than a closed formula, because the three
stages overlap through double buffers and which one bounds a tile changes
within a layer (the first load, the last write-back, weight tiles fetched
only when the to/ti tile changes):

- loader:  per tile, bias and weights when the buffer half does not hold
           them yet, then the input tile unless the half holds it (same
           ti-tile, row and col tile): bias and weights one read command
           at a time, each paying the memory latency; the input's commands
           (one for all the tile's channel groups when it holds whole
           planes, else one per group, or per group and row when the tile
           is narrower than the plane) back to back, ahead of their data,
           so the latency is paid once unless the bursts in flight
           (READ_OUTSTANDING) cannot cover it;
- compute: per (channel group, output row) the longer of the column
           fetch (row_cycles: K cycles per in_reads input columns, none
           for a last group of right padding only) and the
           window side (K columns to fill, at once when K <= in_reads, then
           per pixel NQ * steps issues
           and the stride's new columns), steps = K*K, or
           ceil(Cg*K*K/PN) with input selection; a depthwise layer's window
           serves only its own oc-group (NQ = 1) in ceil(K*K/PN) steps, and
           its tile reads its own channels (one ti-tile, like a POOL), its
           weights wvec_len = ceil(K*K/PN)*PN elements per channel;
           a decomposed kernel (k = 6, 9, 12) runs its S*S sub-windows one
           after another, each as a K = 3 layer over the tile's groups (its
           load reads the input rows of k, its MACs count k*k);
- write-back: per output pixel and channel group max(pool reads, beats out),
           one write command per (group, row), or per group when the tile
           holds whole rows; an average pool's divider
           takes data_bits / 4 + 3 cycles a pixel, overlapped with the next
           window's reads, so a pixel takes at least that;
- residual (res=1): right after handing over an output tile's last
           ti-tile, the loader waits until the residual buffer half is free
           (the write-back has written output tile t-2), then reads the
           output tile's residual, nr x nc pixels of PM channels for each of
           its no/PM channel groups (one command per group and row when the
           tile is narrower than the plane, one per group when it holds
           whole rows, one for all groups when it holds the whole plane,
           issued back to back like the input's);
           only then does it load the next output tile. The write-back of a
           tile waits for its residual; the add itself costs no cycle.

A tile's load may start when the loader is free and the compute has
released the half it fills (two tiles back); the compute starts when the
input rows of its tile's first output row are in (the loader writes a
half's input in order and the compute reads behind it), the previous tile is
computed and, on an output tile's first ti-tile, the write-back has drained
the accumulator half; it ends no earlier than a row's compute after its
input is all in. Where each accumulator word is written once (a depthwise
layer at PM = PN, or one ci-group; no sub-windows, no pool) the write-back
follows the compute a row behind, else it starts once the output tile is
done. Memory traffic of
the loader and the write-back share the bandwidth: a layer never takes fewer
cycles than its bytes over the bandwidth.

``compulsory_bytes`` and ``roofline_cycles`` give the bound no schedule can
beat: every byte the layer must move once (the residual's included) at the
memory's rate, or its MACs at PM * PN a cycle.

The constants in ``Overheads`` are the RTL's fixed costs (state changes,
pipeline depths), measured on the RTL by ``make bench``, which reports the
model's error on every benchmark layer.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import isa
from .config import EngineConfig
from .errors import DescriptorError

#: Read bursts uz_axi_rd keeps in flight (its MaxOutstanding).
READ_OUTSTANDING = 4

#: Graph features (isa.unsupported_features) the model has no schedule for yet.
UNMODELLED = ("groups", "in_shuffle")   # groups: those the engine does not run (not depthwise)


@dataclass(frozen=True)
class Memory:
    """The memory the engine reads and writes: bytes per cycle (shared by
    reads and writes) and the latency from a read request to its first beat."""
    bytes_per_cycle: float = 16.0
    latency: int = 8

    def beat_cycles(self, beat_bytes: int) -> float:
        return max(1.0, beat_bytes / self.bytes_per_cycle)

    def transfer_cycles(self, read_bytes: float, write_bytes: float, beat_bytes: int) -> float:
        """The fewest cycles that move these bytes: reads and writes share
        the rate, unless it reaches a bus beat per cycle, where each AXI
        channel moves its own beat every cycle (the benchmark memory,
        tb/hdl/uz_tb_axi_mem.sv, works so)."""
        if self.bytes_per_cycle >= beat_bytes:
            return max(read_bytes, write_bytes) / beat_bytes
        return (read_bytes + write_bytes) / self.bytes_per_cycle


@dataclass(frozen=True)
class Overheads:
    """Fixed costs of the RTL, in cycles."""
    command: int = 3         # a read or write command: loader/post state change and DMA issue
    tile_start: int = 3      # compute: tile hand-off to the first window read
    tile_drain: int = 8      # compute: last issue to the last accumulator write
    gen_latency: int = 4     # OVSF generator pipeline
    # descriptor fetch, start and flush beyond the memory latency (30), the
    # sequential descriptor check (82), the layer's products on its shared
    # two-cycle multiplier (40) and the write-back's stages past the read
    # (3: a stage for the running max after the data shift, and the RAM's
    # words registered before the residual's alignment, which has a stage
    # of its own before the add; each puts a layer's last pixel a cycle
    # later, measured on the engine cases)
    layer: int = 155
    write_ack: int = 4       # last write beat to its response, beyond the memory latency
    avg_divide: int = 3      # average pool: a pixel's division takes data_bits / 4 + avg_divide cycles
    read_issue: int = 2      # cycles between back-to-back read commands of one stream


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


class _SharedMemory:
    """Below a bus beat per cycle the loader's reads and the write-back's
    writes share the memory's rate, and under contention the memory
    alternates their beats (tb/hdl/uz_tb_axi_mem.sv): each gets half. A
    transfer ready at some time takes the memory at the full rate where it
    is idle and at half the rate where one other transfer holds it (which
    is then marked shared). The other transfer's end, already placed, is
    left as it was, but the memory time it lost to sharing is placed after
    the shared stretch, so the memory never moves more than its rate. A
    stage ends no earlier than its transfer does."""

    def __init__(self, bytes_per_cycle: float):
        self.rate = bytes_per_cycle
        self.busy: list = []        # sorted, disjoint [begin, end, transfers) intervals

    def place(self, ready: float, nbytes: float) -> float:
        """End of a transfer of nbytes ready at ``ready``."""
        return self._place(ready, nbytes / self.rate)

    def _place(self, ready: float, left: float, share: bool = True) -> float:
        """``left``: cycles of memory time at the full rate; without
        ``share`` it takes idle time only (the lost time of a transfer that
        was shared)."""
        if left <= 0:
            return ready
        t, out, lost, lost_at = ready, [], 0.0, ready
        for b, e, n in self.busy:
            if e <= t or left <= 0:
                out.append((b, e, n))
                continue
            if b < t:                   # the part before the transfer is ready
                out.append((b, t, n))
                b = t
            if b > t:                   # idle until this interval: full rate
                use = min(left, b - t)
                out.append((t, t + use, 1))
                left -= use
                t += use
                if left <= 0:
                    out.append((b, e, n))
                    continue
            if n >= 2 or not share:     # both streams already: nothing left
                out.append((b, e, n))
                t = e
                continue
            use = min(2 * left, e - b)  # half the rate while sharing
            out.append((b, b + use, 2))
            if b + use < e:
                out.append((b + use, e, n))
            left -= use / 2
            lost += use / 2             # what the other transfer could not move
            t = b + use
            lost_at = t
        if left > 0:
            out.append((t, t + left, 1))
            t += left
        merged = []
        for b, e, n in sorted(out):
            if e - b <= 1e-12:
                continue
            if merged and merged[-1][2] == n and b <= merged[-1][1] + 1e-9:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e), n)
            else:
                merged.append((b, e, n))
        self.busy = merged
        self._place(lost_at, lost, share=False)
        return t

    def forget_before(self, t: float) -> None:
        """Drop the intervals no later transfer can use (all ready after t)."""
        self.busy = [iv for iv in self.busy if iv[1] > t]


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def row_cycles(k: int, stride: int, nc: int, issue: int, in_reads: int,
               pad_group: bool = False) -> tuple[int, int]:
    """(fetch, window) cycles of one row of ``nc`` output pixels, each
    issuing ``issue`` steps: the fetcher reads ceil(U/in_reads) column
    groups of K cycles (U = (nc-1)*s + K columns; K single columns a pixel when the
    stride passes K), less the last one where it is right padding only
    (``pad_group``, padding_group(): the group before it takes its zeros,
    uz_compute fold_q); the window side fills K columns at the row's start
    (one overlapping the previous pixel's last step; all K at once, in that
    cycle, when K fits a column group), then issues each pixel and shifts
    min(s, K) columns between pixels (again one overlapping)."""
    if stride > k:
        fetch = nc * k * k
    else:
        fetch = (_ceil((nc - 1) * stride + k, in_reads) - int(pad_group)) * k
    shifts = min(stride, k)
    # a row's first K columns load at once where its first column group
    # holds them (uz_compute row_k_load): no fill beyond the pixels
    fill = 0 if (1 < k <= in_reads and stride <= k) else k - 1
    window = fill + nc * issue + (nc - 1) * (shifts - 1)
    return fetch, window


@functools.lru_cache(maxsize=4096)
def slot_row_cycles(k: int, stride: int, nc: int, issue: int, in_reads: int, pad_group: bool = False,
                    rows: int = 4) -> int:
    """Cycles a row takes in steady state once the fetcher's two column
    slots are counted (uz_compute cp_q): a group's slot is the one two
    groups before it used, so its fetch waits until the window has taken
    that group's last column. ``rows`` rows are run cycle by cycle, as the
    RTL runs them: a group's K reads one a cycle, its slot full a cycle
    after its last read lands; the window takes a column a cycle (a row's
    first K at once when they fit a group), a pixel's first new column in
    the cycle the pixel before issues its last step, and issues a whole
    window's ``issue`` steps from the next cycle. The row_cycles() bounds
    leave this out; they are the same where the slots never wait. 0 when
    the stride passes K (columns go singly)."""
    if stride > k:
        return 0
    ucols = (nc - 1) * stride + k
    starts = list(range(0, ucols, in_reads))
    if pad_group:
        starts = starts[:-1]
    ends = starts[1:] + [ucols]                   # a folded group runs to the row's end
    k_load = 1 < k <= in_reads
    fetch_free = 0                               # the fetcher's next free cycle
    pops = []                                    # per group: the cycle its slot empties
    consumed = 0                                 # the last pixel's last step
    last = []
    for _ in range(rows):
        took = []                                # cycle each column of the row is taken
        for lo, hi in zip(starts, ends):
            n = len(pops)
            start = max(fetch_free, pops[n - 2] if n >= 2 else 0)
            fetch_free = start + k
            full = start + k + 1
            for j in range(lo, hi):
                if j == 0:
                    t = max(consumed, full)              # the row's first column(s)
                elif j < k:
                    t = took[0] if k_load else max(took[-1] + 1, full)
                else:
                    first_of_pixel = (j - k) % stride == 0
                    t = max(consumed if first_of_pixel else took[-1] + 1, full)
                took.append(t)
                if j >= k - 1 and (j - (k - 1)) % stride == 0:
                    consumed = t + issue                  # a pixel's window is whole
            pops.append(took[-1])
        last.append(consumed)
    return last[-1] - last[-2]


def padding_group(k: int, stride: int, nc: int, in_reads: int, x0: int, in_w: int) -> bool:
    """Whether the rows of a tile whose first window column is input column
    ``x0`` (negative in the left padding) end with a column group of right
    padding only, which the group before it takes (uz_compute fold_q): a
    row of at least two groups, not skipping columns, whose last group's
    first column lies past the plane's ``in_w``."""
    if stride > k:
        return False
    u_last = ((nc - 1) * stride + k - 1) // in_reads * in_reads
    return u_last >= in_reads and x0 + u_last >= in_w


def layer_padding_group(d, cfg: EngineConfig) -> bool:
    """Whether some column tile of a legal descriptor ``d`` folds a padding
    group (padding_group(); not a POOL, not with sub-windows)."""
    if isa.Kind(d.kind) == isa.Kind.POOL or isa.sub_windows(d.k) > 1 or not d.tc:
        return False
    conv_w = isa.conv_dims(d)[1]
    return any(padding_group(isa.window_k(d.k), d.stride, min(d.tc, conv_w - c0), cfg.in_reads,
                             c0 * d.stride - d.pad_l, d.in_w)
               for c0 in range(0, conv_w, d.tc))


def rows_write_back(d, cfg: EngineConfig) -> bool:
    """Whether the write-back may send each row as soon as the compute has
    written it for good, before the output tile is done (uz_post early_q):
    where each accumulator word is written once, a depthwise layer with
    PM = PN or a CONV/FC layer of one ci-group, without sub-windows or a
    pool. Elsewhere it waits for the whole output tile."""
    kind = isa.Kind(d.kind)
    if kind == isa.Kind.POOL or d.pool or isa.sub_windows(d.k) > 1:
        return False
    if isa.depthwise(d):
        return cfg.pm == cfg.pn
    return _ceil(d.in_c, cfg.pn) == 1


def layer_cycles(d, cfg: EngineConfig, mem: Memory = Memory(), ov: Overheads = Overheads(),
                 events: list | None = None) -> LayerCycles:
    """Cycles of one layer (a legal isa.Descriptor). ``events``, when given,
    receives the schedule: (stage, tile, start, end) with stage "load" (per
    input tile), "residual", "compute" (per input tile) or "writeback" (per
    output tile), in the loader's order."""
    log = events.append if events is not None else (lambda e: None)
    if not isinstance(d, isa.Descriptor):
        d = isa.Descriptor(dict(d))
    isa.check(d, cfg, engine=False)
    unmodelled = [(f, w) for f, w in isa.unsupported_features(d) if f in UNMODELLED]
    if unmodelled:
        raise DescriptorError("the analytical model does not model " + ", ".join(w for _, w in unmodelled),
                              code=int(isa.Err.UNSUPPORTED), field=unmodelled[0][0])
    kind = isa.Kind(d.kind)
    pool = kind == isa.Kind.POOL
    dw = isa.depthwise(d)
    follow = pool or dw             # each output channel reads its own input channel
    pm, pn = cfg.pm, cfg.pn
    beat = cfg.axi_data_bits // 8
    word_beats = pn * cfg.data_bits // cfg.axi_data_bits          # a pixel word of PN channels
    cpb = mem.beat_cycles(beat)
    cin_pad = _ceil(d.in_c, pn) * pn
    cout_pad = _ceil(d.out_c, pm) * pm       # oc-groups of PM computed
    cout_wr = _ceil(d.out_c, pn) * pn        # channel groups of PN written (the layout's)
    if pool:
        k, stride, pads = 1, 1, (0, 0, 0, 0)
        conv_h, conv_w = d.in_h, d.in_w
    else:
        k, stride, pads = d.k, d.stride, (d.pad_t, d.pad_b, d.pad_l, d.pad_r)
        conv_h, conv_w = isa.conv_dims(d)
    k2 = k * k
    # the window the compute slides: 3 for a decomposed kernel (S*S sub-windows), else k
    wk, subs = isa.window_k(k), isa.sub_windows(k) ** 2
    wk2 = wk * wk
    fused_pool = None
    if pool or d.pool:
        # (kh, kw, stride, (top, bottom, left, right)); a one-cell POOL included
        fused_pool = isa.pool_window(d, conv_h, conv_w)
    # uz_post's divider: two radix-4 digits a cycle, then the pixel queue
    avg_period = cfg.data_bits // 4 + ov.avg_divide if fused_pool and d.pool_avg else 0
    to, ti = d.to, (d.to if follow else d.ti)
    n_to = _ceil(cout_pad, to)
    n_ti = 1 if follow else _ceil(cin_pad, ti)
    wvec = isa.wvec_len(d, pn) if dw else None
    row_tiles = [(r, min(d.tr, conv_h - r)) for r in range(0, conv_h, d.tr)]
    col_tiles = [(c, min(d.tc, conv_w - c)) for c in range(0, conv_w, d.tc)]

    def in_span(o0, n, size, pad_lo):
        lo = o0 * stride - pad_lo
        hi = lo + (n - 1) * stride + k - 1
        return max(lo, 0), min(hi, size - 1)

    def stream_time(cmds, beats):
        """Cycles of ``cmds`` read commands of ``beats`` beats each, issued
        back to back (the input and residual commands run ahead of their
        data): one latency, then the beats, unless the bursts the read DMA
        keeps in flight (uz_axi_rd MaxOutstanding) cannot cover the latency."""
        per = beats * cpb
        period = max(per, ov.read_issue, (mem.latency + ov.command + per) / READ_OUTSTANDING)
        return ov.command + mem.latency + per + (cmds - 1) * period

    # --- per-stage times of one tile
    page_beats = min(256, 4096 // beat)     # uz_axi_rd: bursts within a 4 KiB page

    def tail(cmds, beats):
        """Data cycles of a stream's last bursts in flight: its last command
        goes out about this long before its data ends."""
        return min(cmds * beats, READ_OUTSTANDING * min(beats, page_beats)) * cpb

    def load_time(o0, no, i0, ni, r0, nr, c0, nc, weights_needed, input_needed):
        """(cycles, bytes read, the part of those cycles that is the
        streams' memory latencies, the data cycles of the last bursts in
        flight, the input's data cycles, the share of the input the
        compute's first row needs). The cycles count each stream's latency;
        the caller overlaps them."""
        t = 0.0
        rd = 0
        waits = 0
        last = 0.0
        if weights_needed and not pool:
            bias_beats = _ceil(no * cfg.data_bits, cfg.axi_data_bits)
            t += ov.command + mem.latency + bias_beats * cpb
            waits += 1
            rd += bias_beats * beat
            w_elems = no * (wvec if dw else ni * k2)
            if d.ovsf:
                blocks = w_elems // cfg.ovsf_len
                a_beats = _ceil(blocks * d.n_codes * cfg.alpha_bits, cfg.axi_data_bits)
                # The gatherer takes at most a beat per cycle; the generator
                # rebuilds a group of gen_group blocks of one row (the PM
                # channels' blocks at one f, one buffer address) per cycle.
                gen = (blocks // pm) * (pm // cfg.gen_group(d.n_codes))
                t += ov.command + mem.latency + max(gen, a_beats * cpb) + ov.gen_latency
                waits += 1
                rd += a_beats * beat
                last = tail(1, a_beats)
            else:
                w_beats = w_elems * cfg.data_bits // cfg.axi_data_bits
                t += ov.command + mem.latency + w_beats * cpb
                waits += 1
                rd += w_beats * beat
                last = tail(1, w_beats)
        if not input_needed:
            return t + 1, rd, waits * (ov.command + mem.latency), last, 0.0, 1.0  # the half holds the input tile
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
        t += stream_time(cmds, beats)
        rd += cmds * beats * beat
        # the first output row reads the first K rows of the first group
        first = min(k, rows) / (groups * rows)
        return t, rd, (waits + 1) * (ov.command + mem.latency), tail(cmds, beats), cmds * beats * cpb, first

    def compute_time(no, i0, ni, nr, c0, nc):
        """Rows of pixels stream through the window (fetcher and window
        side overlap through two column-pair slots): a tile takes the longer
        of its fetch and its window side."""
        nq, ng = no // pm, ni // pn
        if pool:
            steps_of = [1] * ng
            issue_of = [max(1, nq)] * ng
        elif dw:
            # one window per oc-group: nq windows per pixel, one issue each
            # (a decomposed kernel: a window per sub-window, one after another)
            steps_of = [_ceil(wk2, pn)] * ng * subs
            issue_of = steps_of
        else:
            # a decomposed kernel: each of its S*S sub-windows runs like a
            # K = 3 layer over the tile's ci-groups (wk = 3), one after another
            # Input selection packs each group's real channels: those of
            # the tile's (from channel i0) up to in_c, at most PN a group.
            steps_of = [_ceil(max(0, min(pn, d.in_c - i0 - g * pn)) * wk2, pn) if d.insel else wk2
                        for g in range(ng)] * subs
            issue_of = [nq * s for s in steps_of]
        fetch = window = 0
        # not with sub-windows (each reads its own columns of the footprint)
        pad_group = subs == 1 and padding_group(wk, stride, nc, cfg.in_reads, c0 * stride - pads[2],
                                                d.in_w)
        slots = 0
        for issue in issue_of:
            f, w = row_cycles(wk, stride, nc, issue, cfg.in_reads, pad_group)
            fetch += nr * f
            window += nr * w
            slots += nr * slot_row_cycles(wk, stride, nc, issue, cfg.in_reads, pad_group)
        t = max(fetch, window, slots)
        mac = nr * nc * sum(issue_of)
        return t + ov.tile_start + ov.tile_drain, mac, t / (nr * len(issue_of))

    def writeback_time(no, r0, nr, c0, nc):
        """(cycles, bytes) of an output tile's write-back: PN-channel pixel
        words, group by group, of the channels the layout holds."""
        nq = no // pn
        if fused_pool:
            kh, kw, ps, _ = fused_pool
            # a split plane has non-overlapping, unpadded windows on tile
            # edges that are multiples of the stride (isa BAD_TILE)
            oh, ow = isa.pool_dims(d, conv_h, conv_w)
            prow = oh if nr == conv_h else max(0, min(nr // ps, oh - r0 // ps))
            pcol = ow if nc == conv_w else max(0, min(nc // ps, ow - c0 // ps))
            reads = kh * kw
        else:
            prow, pcol, reads = nr, nc, 1
        wbeats = word_beats
        # the next window's reads run while the divider works, all but the
        # last (it takes one pixel at a time)
        per_pix = max(reads, wbeats * cpb, avg_period)
        if nc == conv_w:
            # whole rows: one command a group (uz_post merged_q)
            t = nq * (ov.command + prow * pcol * per_pix)
        else:
            t = nq * prow * (ov.command + pcol * per_pix)
        return t, nq * prow * pcol * wbeats * beat

    def residual_time(no, nr, nc):
        """(cycles, bytes) of an output tile's residual: PN-channel pixels."""
        nq = no // pn
        rbeats = word_beats
        if nr == conv_h and nc == conv_w:
            cmds, beats = 1, nq * nr * nc * rbeats          # the groups' whole planes are contiguous
        elif nc == conv_w:
            cmds, beats = nq, nr * nc * rbeats
        else:
            cmds, beats = nq * nr, nc * rbeats
        return stream_time(cmds, beats), cmds * beats * beat, tail(cmds, beats)

    early_wb = rows_write_back(d, cfg)

    # --- the pipeline over tiles, in the RTL's order
    load_end = []
    comp_end = []
    wb_end = []
    tot = {"load": 0.0, "compute": 0.0, "writeback": 0.0}
    rd_bytes = wr_bytes = mac_total = 0
    half_tag = [None, None]
    half_in = [None, None]
    loader_free = 0.0
    cmd_free = 0.0
    shared = _SharedMemory(mem.bytes_per_cycle) if mem.bytes_per_cycle < beat else None
    out_tile = -1
    wb_free = 0.0
    res_end = []                # per output tile: its residual loaded
    tot["residual"] = 0.0
    t_idx = 0
    for o0 in range(0, cout_pad, to):
        no = min(to, cout_pad - o0)
        for r0, nr in row_tiles:
            for c0, nc in col_tiles:
                out_tile += 1
                for ii in range(n_ti):
                    i0 = ii * ti if not follow else o0   # a POOL/depthwise tile reads its own channels
                    ni = min(ti if not follow else no, cin_pad - i0)
                    h = t_idx % 2
                    need_w = half_tag[h] != (o0, i0)
                    half_tag[h] = (o0, i0)
                    need_in = half_in[h] != (i0, r0, c0)
                    half_in[h] = (i0, r0, c0)
                    lt, rd, idle, ahead, in_data, in_first = load_time(o0, no, i0, ni, r0, nr, c0, nc, need_w,
                                                                       need_in)
                    # The command side sends a tile's read commands once the
                    # tile two before is filled (at most two planned and
                    # unfilled) and the tile before has sent its own, up to
                    # READ_OUTSTANDING bursts ahead of their data: the first
                    # data comes a latency after that, however busy the half.
                    # The data side fills the half once it is free and the
                    # tile before is in; the streams' other latencies overlap
                    # the data before them (commands back to back).
                    cmd_at = max(load_end[t_idx - 2] if t_idx >= 2 else 0.0, cmd_free)
                    start = max(loader_free, comp_end[t_idx - 2] if t_idx >= 2 else 0.0)
                    lat = ov.command + mem.latency
                    first_data = cmd_at + lat if lt > 1 else start
                    begin = max(start, first_data)
                    loader_free = begin + (lt - idle)
                    if shared is not None:
                        # the memory is free for others while the loader waits for latency
                        loader_free = max(loader_free, shared.place(begin, rd))
                    cmd_free = max(cmd_at + ov.command, loader_free - ahead)
                    load_end.append(loader_free)
                    in_end = loader_free
                    # The compute may start once the input of its first row
                    # is in (uz_compute in_ready) and ends no earlier than a
                    # row after the half is full.
                    handed = loader_free - in_data * (1.0 - in_first) if need_in else loader_free
                    log(("load", t_idx, start, loader_free))
                    if d.res and ii == n_ti - 1:
                        # the residual half of this output tile is free once
                        # output tile t-2 is written
                        # Its commands follow the tile's own once those are
                        # all out (cmd_free); its data follows the tile's.
                        rs = max(loader_free, wb_end[out_tile - 2] if out_tile >= 2 else 0.0)
                        rt, rrd, r_ahead = residual_time(min(no, cout_wr - o0), nr, nc)
                        r_cmd = max(cmd_free, cmd_at + ov.command)
                        r_begin = max(rs, r_cmd + lat)
                        loader_free = r_begin + (rt - lat)
                        if shared is not None:
                            loader_free = max(loader_free, shared.place(r_begin, rrd))
                        cmd_free = max(r_cmd + ov.command, loader_free - r_ahead)
                        res_end.append(loader_free)
                        log(("residual", out_tile, rs, loader_free))
                        tot["residual"] += rt
                        rd += rrd
                    ct, mac, row_ct = compute_time(no, i0, ni, nr, c0, nc)
                    cstart = max(handed, comp_end[-1] if comp_end else 0.0)
                    if ii == 0 and out_tile >= 2:
                        cstart = max(cstart, wb_end[out_tile - 2])
                    comp_end.append(max(cstart + ct, in_end + row_ct + ov.tile_drain))
                    log(("compute", t_idx, cstart, comp_end[-1]))
                    tot["load"] += lt
                    tot["compute"] += ct
                    rd_bytes += rd
                    mac_total += mac
                    t_idx += 1
                wt, wr = writeback_time(min(no, cout_wr - o0), r0, nr, c0, nc)
                if early_wb:
                    # rows as the compute finishes them: the first a row
                    # after its start; the last after the compute's end (a
                    # one-group layer's rows finish every channel group at
                    # once, and the write-back sends group by group)
                    nq_wr = max(1, min(no, cout_wr - o0) // pn)
                    row_wt = wt / (nq_wr * nr)
                    after = row_wt if dw else wt - (wt / nq_wr) + row_wt
                    ws = max(cstart + row_ct + ov.tile_drain, wb_free, res_end[-1] if d.res else 0.0)
                    wb_free = max(ws + wt, comp_end[-1] + after)
                else:
                    ws = max(comp_end[-1], wb_free, res_end[-1] if d.res else 0.0)
                    wb_free = ws + wt
                if shared is not None:
                    wb_free = max(wb_free, shared.place(ws, wr))
                    shared.forget_before(min(ws, loader_free))
                wb_end.append(wb_free)
                log(("writeback", out_tile, ws, wb_free))
                tot["writeback"] += wt
                wr_bytes += wr
    desc_beats = isa.DESC_BYTES // beat
    head = ov.command + mem.latency + desc_beats * cpb + ov.layer
    end = wb_free + mem.latency + ov.write_ack
    cycles = head + end
    cycles = max(cycles, mem.transfer_cycles(rd_bytes + desc_beats * beat, wr_bytes, beat))
    tot["load"] += tot.pop("residual")          # the loader's work includes the residual
    bound = max(tot, key=tot.get)
    return LayerCycles(int(math.ceil(cycles)), int(mac_total), int(tot["load"]), int(tot["compute"]),
                       int(tot["writeback"]), int(rd_bytes + desc_beats * beat), int(wr_bytes), t_idx, bound)


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
    return d.out_c * (d.in_c // max(1, d.groups)) * d.k * d.k * ch * cw


def compulsory_bytes(d, cfg: EngineConfig) -> dict:
    """Bytes a layer must move at least, each once: the descriptor, the
    input, the weights (raw, or the OVSF coefficients) and the bias, the
    residual (res=1: out_c channels of the convolution's plane, PN-channel
    words) and the output. Padding channels count as the engine stores them
    (whole PN/PM words)."""
    if not isinstance(d, isa.Descriptor):
        d = isa.Descriptor(dict(d))
    eb = cfg.elem_bytes
    pool = d.kind == isa.Kind.POOL
    cin_pad = _ceil(d.in_c, cfg.pn) * cfg.pn
    cout_pad = _ceil(d.out_c, cfg.pm) * cfg.pm
    out = {"descriptor": isa.DESC_BYTES,
           "input": cin_pad * d.in_h * d.in_w * eb,
           "weights": 0, "bias": 0, "residual": 0,
           "output": _ceil(d.out_c, cfg.pn) * cfg.pn * d.out_h * d.out_w * eb}
    if not pool:
        weights = cout_pad * isa.wvec_len(d, cfg.pn)      # as stored: whole PN words per channel
        if d.ovsf:
            out["weights"] = _ceil(weights // cfg.ovsf_len * d.n_codes * cfg.alpha_bits, 8)
        else:
            out["weights"] = weights * eb
        out["bias"] = cout_pad * eb
        if d.res:
            ch, cw = isa.conv_dims(d)
            out["residual"] = _ceil(d.out_c, cfg.pn) * cfg.pn * ch * cw * eb
    out["total"] = sum(out.values())
    return out


def roofline_cycles(d, cfg: EngineConfig, mem: Memory = Memory()) -> dict:
    """The roofline bound of a layer: its useful MACs at the PE array's peak
    (PM * PN per cycle) or its compulsory bytes (compulsory_bytes, residual
    included) at the memory's rate (Memory.transfer_cycles: reads and writes
    share it below a bus beat per cycle, each channel has its own beat a
    cycle at that rate), whichever is larger. Returns {"cycles", "compute",
    "memory", "bytes", "bound"}."""
    if not isinstance(d, isa.Descriptor):
        d = isa.Descriptor(dict(d))
    cb = compulsory_bytes(d, cfg)
    nbytes = cb["total"]
    comp = layer_macs(d) / peak_macs_per_cycle(cfg)
    memc = mem.transfer_cycles(nbytes - cb["output"], cb["output"], cfg.bus_bytes)
    return {"cycles": max(comp, memc), "compute": comp, "memory": memc, "bytes": nbytes,
            "bound": "compute" if comp >= memc else "memory"}
