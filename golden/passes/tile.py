"""The tile pass: tile sizes (tr, tc, ti, to) for every layer that fit the
on-chip buffers, and the one structural change tiling forces.

    tiles(kind, conv_h, conv_w, cin, cout, k, stride, cfg, ovsf_on, pool) -> dict
    tile_layer(q, cfg) / tile_layers(qlayers, cfg)   set QLayer.tiles
    split_untileable_pools(graph, cfg)               a CONV whose fused max pool
                                                     cannot be tiled becomes
                                                     CONV + POOL (runs before
                                                     quantise: the new layer
                                                     gets its own format)
    unfuse_untileable_pools(elayers, cfg)            the same on a chain's
                                                     network.EngineLayer list

A pool needs whole windows in a tile: tiles shrink in steps of its stride,
and only a non-overlapping, unpadded pool (window = stride) may split the
plane; an overlapping or padded pool, an average pool with pads and a global
pool take the whole plane in one tile. ``ti`` counts one group's input
channels (a grouped layer's weights are (out_c, in_c / groups, K, K)).
A decomposed kernel (k' = 6, 9, 12: S*S sub-windows of 3x3) is tiled as
any k' x k' layer: ti * S*S*9 = ti * k'^2 weights per output channel, and
the input rows and columns of k'.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

from .. import isa, layers, perf
from ..config import EngineConfig
from ..errors import NetworkError
from ..memimage import round_up
from .fuse import GLayer, Graph, PoolSpec, pool_out_hw


class PoolTilingError(NetworkError):
    """A pool cannot be tiled within the buffers."""


def _pool_text(pool) -> str:
    if not isinstance(pool, PoolSpec):
        return f"max pool {pool[0]}x{pool[0]}/{pool[1]} pad {pool[2]}"
    if pool.glob:
        return "global average pool"
    return f"{'average' if pool.avg else 'max'} pool {pool.kh}x{pool.kw}/{pool.s} pads {pool.pads}"


def _pool_step(pool) -> tuple:
    """(tile step, may the plane be split) for a pool."""
    if pool is None:
        return 1, True
    if not isinstance(pool, PoolSpec):
        return pool[1], pool[0] == pool[1] and pool[2] == 0
    if pool.glob:
        return 1, False
    return pool.s, pool.kh == pool.kw == pool.s and not any(pool.pads)


def tiles(kind, conv_h, conv_w, cin, cout, k, stride, cfg: EngineConfig, ovsf_on: bool,
          pool=None, groups: int = 1) -> dict:
    """Tile sizes that fit the buffers: whole input channels and whole rows
    when they fit (longest bursts), else halve until they do. Always legal;
    the hardware-aware search may pick better ones. ``cin``: input channels
    of one group."""
    cin_pad = round_up(cin, cfg.pn)
    cout_pad = round_up(cout, cfg.pm)
    shape = {"kind": int(kind), "groups": groups, "in_c": cin * groups, "out_c": cout, "k": k}
    if isa.depthwise(shape):
        return _depthwise_tiles(conv_h, conv_w, cout, k, stride, cfg, pool)
    wvec = isa.wvec_len(shape, cfg.pn) if isa.packed_taps(shape, cfg.pn) else None

    def in_rows(tr):
        return tr if kind == isa.Kind.POOL else (tr - 1) * stride + k

    def fits(tr, tc, ti, to):
        ih, iw = in_rows(tr), in_rows(tc)
        ok = ti * ih * iw <= cfg.in_buf_elems and to * tr * tc <= cfg.out_buf_elems
        if kind != isa.Kind.POOL:
            ok = ok and to * (wvec or ti * k * k) <= cfg.wgt_buf_elems
        return ok

    unit_i = cfg.pn
    if ovsf_on:
        unit_i = max(cfg.pn, cfg.ovsf_len)
    if kind == isa.Kind.POOL:
        ti = to = cfg.pm        # the compute runs a POOL's channels in oc-groups of PM
    else:
        to = cfg.pm
        ti = cin_pad
        while ti > unit_i and not fits(1, 1, ti, to):
            ti = max(unit_i, (ti // 2) // unit_i * unit_i)
        if ti < cin_pad and ti % unit_i:
            ti = unit_i
    tc = conv_w
    tr = conv_h
    step, splittable = _pool_step(pool)
    if kind != isa.Kind.POOL:
        # Every to-tile reads the input again and refills the window at each
        # output row (K - 1 cycles); a tile with input selection issues few
        # steps per window, so those costs weigh on it unless the tile holds
        # enough oc-groups: K*ceil(K/2) issue cycles per window (the rule of
        # thumb that keeps the first layer at its lane-packing bound).
        steps = -(-min(cin, cfg.pn) * k * k // cfg.pn) if cin % cfg.pn else k * k
        # At least that many oc-groups per tile, in tiles of equal size:
        # a remainder tile with fewer groups would pay the same costs, and
        # every extra to-tile reads the input again.
        need = -(-(k * -(-k // 2)) // steps)
        groups = cout_pad // cfg.pm
        want = cfg.pm * -(-groups // max(1, groups // need))
        min_tr, min_tc = (step, step) if splittable else (conv_h, conv_w)
        while to < want and fits(min_tr, min_tc, ti, to + cfg.pm):
            to += cfg.pm
    while tr > step and not fits(tr, tc, ti, to) and splittable:
        tr = max(step, (-(-tr // 2)) // step * step)
    while tc > step and not fits(tr, tc, ti, to) and splittable:
        tc = max(step, (-(-tc // 2)) // step * step)
    if not fits(tr, tc, ti, to):
        if pool is not None:
            raise PoolTilingError(
                f"{_pool_text(pool)} on a {conv_h}x{conv_w} plane needs "
                f"the whole plane in one tile: input {ti * in_rows(tr) * in_rows(tc)} elements "
                f"(buffer {cfg.in_buf_elems}), output {to * tr * tc} (buffer {cfg.out_buf_elems})")
        raise NetworkError(f"no tiling fits the on-chip buffers: the smallest tile needs input "
                           f"{ti * in_rows(tr) * in_rows(tc)}, weights {to * ti * k * k if kind != isa.Kind.POOL else 0}, "
                           f"output {to * tr * tc} elements; the buffers hold {cfg.in_buf_elems}, "
                           f"{cfg.wgt_buf_elems}, {cfg.out_buf_elems}")
    if kind != isa.Kind.POOL:
        while to * 2 <= cout_pad and fits(tr, tc, ti, to * 2):
            to *= 2
        to = min(to, cout_pad)
    return {"tr": tr, "tc": tc, "ti": ti, "to": to}


def _depthwise_tiles(conv_h, conv_w, c, k, stride, cfg: EngineConfig, pool) -> dict:
    """A depthwise layer's tile holds its output channels' own inputs (ti = to)
    and no input is read twice, so the tile only has to fit: as many channels
    as fit with whole planes, then fewer rows and columns."""
    c_pad = round_up(c, cfg.pm)
    wvec = round_up(k * k, cfg.pn)

    def fits(tr, tc, to):
        ih, iw = (tr - 1) * stride + k, (tc - 1) * stride + k
        return (to * ih * iw <= cfg.in_buf_elems and to * tr * tc <= cfg.out_buf_elems
                and to * wvec <= cfg.wgt_buf_elems)

    step, splittable = _pool_step(pool)
    to = c_pad
    while to > cfg.pm and not fits(conv_h, conv_w, to):
        to = max(cfg.pm, (to // 2) // cfg.pm * cfg.pm)
    tr, tc = conv_h, conv_w
    while tr > step and not fits(tr, tc, to) and splittable:
        tr = max(step, (-(-tr // 2)) // step * step)
    while tc > step and not fits(tr, tc, to) and splittable:
        tc = max(step, (-(-tc // 2)) // step * step)
    if not fits(tr, tc, to):
        raise (PoolTilingError if pool is not None else NetworkError)(
            f"no tiling of the depthwise {k}x{k} layer on a {conv_h}x{conv_w} plane fits the on-chip buffers")
    return {"tr": tr, "tc": tc, "ti": to, "to": to}


def conv_dims(L) -> tuple:
    """(height, width) of a CONV/FC layer's convolution result (before any pool)."""
    return (layers.out_size(L.in_shape[1], L.k, L.stride, L.pads[0], L.pads[1]),
            layers.out_size(L.in_shape[2], L.k, L.stride, L.pads[2], L.pads[3]))


def tile_layer(q, cfg: EngineConfig, bandwidth: Optional[float] = None) -> dict:
    """Tiles of one quantised layer (golden.compiler.QLayer); sets and returns
    q.tiles. ``bandwidth``: the memory's bytes per cycle for refine()."""
    if q.kind == isa.Kind.POOL:
        try:
            q.tiles = tiles(q.kind, q.in_shape[1], q.in_shape[2], q.in_shape[0], q.out_shape[0], 1, 1, cfg, False,
                            q.pool)
        except PoolTilingError as e:
            raise PoolTilingError(f"layer {q.name!r}: {e}") from None
        return q.tiles
    conv_h, conv_w = conv_dims(q)
    try:
        q.tiles = tiles(q.kind, conv_h, conv_w, q.in_shape[0] // max(1, q.groups), q.out_shape[0], q.k, q.stride,
                        cfg, q.ovsf is not None, q.pool, max(1, q.groups))
    except NetworkError as e:
        raise NetworkError(f"layer {q.name!r}: {e}") from None
    q.tiles = refine(q, cfg, q.tiles, bandwidth)
    return q.tiles


#: The memory refine() schedules against: the bus's full rate, a typical latency.
REFINE_LATENCY = 40
#: A smaller tiling is taken only when the model predicts at least this gain.
#: Half a per cent: with the row hand-offs a tile's ends cost a row, not a
#: tile, and the model ranks tilings within about 1% of each other as the
#: RTL does (ResNet-50's expand at 14x14: 64-channel tiles of 7 rows, 1%
#: predicted, ran 1.1% faster than 128 channels of 14 rows; a 1% threshold
#: kept the slower).
REFINE_GAIN = 0.005


def refine(q, cfg: EngineConfig, t: dict, bandwidth: Optional[float] = None) -> dict:
    """The largest tiles fill the buffers with one tile per plane, which
    leaves the layer's first load and its last write-back exposed: with few
    tiles, loader, compute and write-back run one after another. Among the
    tilings with 1/2 .. 1/16 of the rows and half the output channels, and
    (whole rows or half) with half, a quarter, ... of the input channels and
    as many times the output channels, take the one the analytical model
    (golden.perf, which follows the RTL within a few per cent) predicts
    fastest, when it gains at least REFINE_GAIN. A depthwise layer (ti = to; no input is read twice,
    so fewer channels per tile cost nothing) also tries 1/4 .. 1/16 of its
    channels, and half or a quarter of its columns with as many rows as then
    fit (fewer halo rows re-read). The model's memory runs at ``bandwidth`` bytes per cycle when
    the caller knows it, else at the bus's rate (half of it for a depthwise
    layer). Layers with a pool (whose windows must not straddle tiles) or
    other grouped layers (the compiler lowers them) keep their tiles."""
    groups = max(1, q.groups)
    dw = groups > 1 and groups == q.in_shape[0] == q.out_shape[0]
    if q.kind != isa.Kind.CONV or q.pool is not None or (groups > 1 and not dw):
        return t
    conv_h, conv_w = conv_dims(q)
    # Without a known memory: a depthwise layer reads each input once and has
    # K*K/4 MACs a byte, so it is memory-bound below the bus rate, where a
    # split's halo re-reads show. Judge it at half the rate.
    rate = bandwidth if bandwidth else cfg.axi_data_bits / 8 / (2 if dw else 1)
    mem = perf.Memory(rate, REFINE_LATENCY)

    def desc(c):
        d = isa.Descriptor(dict(
            kind=int(q.kind), k=q.k, stride=q.stride, pad_t=q.pads[0], pad_b=q.pads[1], pad_l=q.pads[2],
            pad_r=q.pads[3], in_c=q.in_shape[0], in_h=q.in_shape[1], in_w=q.in_shape[2], out_c=q.out_shape[0],
            out_h=q.out_shape[1], out_w=q.out_shape[2], insel=int(q.insel), res=int(q.res_tensor is not None),
            groups=groups if groups > 1 else 0, **c))
        if q.ovsf is not None:
            d.set(ovsf=1, log2_l=int(q.ovsf.L).bit_length() - 1, n_codes=q.ovsf.n_codes, code_mask=q.ovsf.mask)
        return d

    def fits(c):
        return not any(need > have for _, need, have in isa.tile_footprint(desc(c), cfg))

    def cycles(c):
        if not fits(c):
            return math.inf
        return perf.layer_cycles(desc(c), cfg, mem).cycles

    cands = []
    # Fewer input channels and more output channels a tile: a pixel's window
    # then serves more oc-groups, which spreads the window's per-row fill
    # (and each input load) over more steps; it must still fit (cycles()
    # refuses a tiling the buffers cannot hold).
    if not dw:
        ti, to = t["ti"], t["to"]
        while ti // 2 >= cfg.pn and ti // 2 % cfg.pn == 0:
            ti, to = ti // 2, to * 2
            if to > round_up(q.out_shape[0], cfg.pm):
                break
            for split in (1, 2):
                c = dict(t, ti=ti, to=to, tr=-(-t["tr"] // split))
                if c not in cands:
                    cands.append(c)
    tos = (t["to"], t["to"] // 2)
    if dw:      # whole oc-groups: 240 channels split into 128 + 112, not 120 + 120
        tos += tuple(max(cfg.pm, t["to"] // f // cfg.pm * cfg.pm) for f in (2, 4, 8, 16))
    for to in dict.fromkeys(tos):
        if to < cfg.pm or to % cfg.pm:
            continue
        for split in (1, 2, 4, 8, 16):
            tr = -(-t["tr"] // split)
            c = dict(t, tr=tr, to=to, **({"ti": to} if dw else {}))
            if c not in cands and (split == 1 or tr < t["tr"]):
                cands.append(c)
    if dw:
        # Half or a quarter of the columns with as many rows as then fit:
        # where the output buffer holds few whole rows, each row tile
        # re-reads K - 1 halo rows, and a taller, narrower tile re-reads
        # fewer halo cells in all.
        for split in (2, 4):
            tc = -(-conv_w // split)
            if tc >= conv_w or tc < q.k:
                continue
            for to in dict.fromkeys(tos):
                if to < cfg.pm or to % cfg.pm:
                    continue
                tr = next((r for r in range(conv_h, 0, -1) if fits(dict(t, tr=r, tc=tc, to=to, ti=to))), None)
                if tr is not None and tr > t["tr"]:
                    c = dict(t, tr=tr, tc=tc, to=to, ti=to)
                    if c not in cands:
                        cands.append(c)
    base = cycles(t)
    best, best_cycles = t, base
    for c in cands:
        if c == t:
            continue
        n = cycles(c)
        if n < best_cycles:
            best, best_cycles = c, n
    return best if best_cycles <= base * (1 - REFINE_GAIN) else t


def tile_layers(qlayers: list, cfg: EngineConfig, bandwidth: Optional[float] = None) -> list:
    for q in qlayers:
        tile_layer(q, cfg, bandwidth)
    return qlayers


def split_untileable_pools(graph: Graph, cfg: EngineConfig) -> Graph:
    """A CONV whose fused max pool cannot be tiled becomes CONV + standalone
    POOL (``<name>_pool``, which may still fail, with the pool's own clear
    error). The CONV then writes a new tensor ``<name>#prepool`` and the POOL
    the tensor the CONV wrote. Modifies and returns ``graph``."""
    out = []
    for L in graph.layers:
        if L.kind == isa.Kind.CONV and L.pool is not None:
            ch, cw = conv_dims(L)
            try:
                tiles(L.kind, ch, cw, L.in_shape[0] // max(1, L.groups), L.out_shape[0], L.k, L.stride, cfg,
                      L.rho < 1, L.pool, max(1, L.groups))
            except PoolTilingError:
                pool, L.pool = L.pool, None
                L.out_shape = (L.out_shape[0], ch, cw)
                t = graph.tensors[L.output]
                pre = dataclasses.replace(t, name=L.output + "#prepool", shape=(t.shape[0], ch, cw),
                                          producer=L.name, parts=[], buffer=None, offset=0)
                pre.buffer = pre.name
                graph.tensors[pre.name] = pre
                P = GLayer(L.name + "_pool", isa.Kind.POOL, L.out_shape,
                           (L.out_shape[0],) + pool_out_hw(pool, ch, cw), pool=pool, source=[L.source[-1]],
                           input=pre.name, output=L.output)
                t.producer = P.name
                L.output = pre.name
                out.append(L)
                out.append(P)
                continue
        out.append(L)
    graph.layers = out
    return graph


def unfuse_untileable_pools(elayers: list, cfg: EngineConfig) -> list:
    """The chain form of split_untileable_pools on network.EngineLayer
    lists (kept for callers of the chain compiler)."""
    from ..network import EngineLayer
    out = []
    for L in elayers:
        if L.kind == isa.Kind.CONV and L.pool is not None:
            ch = layers.out_size(L.in_shape[1], L.k, L.stride, L.pads[0], L.pads[1])
            cw = layers.out_size(L.in_shape[2], L.k, L.stride, L.pads[2], L.pads[3])
            try:
                tiles(L.kind, ch, cw, L.in_shape[0], L.out_shape[0], L.k, L.stride, cfg, L.rho < 1, L.pool)
            except PoolTilingError:
                pool, L.pool = L.pool, None
                L.out_shape = (L.out_shape[0], ch, cw)
                k, s, p = pool
                out.append(L)
                out.append(EngineLayer(L.name + "_pool", isa.Kind.POOL, L.out_shape,
                                       (L.out_shape[0], layers.out_size(ch, k, s, p, p), layers.out_size(cw, k, s, p, p)),
                                       pool=pool, source=[L.source[-1]]))
                continue
        out.append(L)
    return out


__all__ = ["PoolTilingError", "tiles", "tile_layer", "tile_layers", "split_untileable_pools",
           "unfuse_untileable_pools", "conv_dims"]
