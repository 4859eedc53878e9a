"""The emit pass: descriptors, weights and biases written into the memory
image, regions per buffer.

    descriptor_for(q, idx, addrs, io=None) -> isa.Descriptor
    weight_bytes(q, cfg) -> bytes
    build_image(layers_q, cfg, input_shape, base=0, placement=None, plan=None)
        -> (image, desc_addr, {layer: {"in", "out", "wgt", "bias"[, "res"]}})

Descriptor fields of the graph (groups, in_shuffle, channel slices,
residual, clip, the pool fields beyond pool_k/pool_s/pool_pad) are set only
where a layer uses them, so a chain layer's descriptor is what it always was
(``in_c_total``/``out_c_total`` stay 0 for whole tensors). Every descriptor
is checked with the functional model's rules (``isa.check(d, cfg,
engine=False)``): the RTL refuses the graph features it does not run yet
with UNSUPPORTED (``isa.unsupported_features``).

Weights: (round_up(out_c, PM), round_up(in_c / groups, PN), K, K), zero
padded, in the tiled layout of memimage.pack_weights (``ti`` counts one
group's input channels); OVSF coefficients likewise (memimage.pack_alphas).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import isa, memimage
from ..config import EngineConfig
from ..errors import DescriptorError, MemoryLayoutError, NetworkError
from ..funcmodel import slice_addr
from ..memimage import round_up
from ..network import INPUT
from . import allocate
from .fuse import PoolSpec

DESC_REGION = "program"


def _set_pool(d: isa.Descriptor, q) -> None:
    pool = q.pool
    conv = q.kind == isa.Kind.CONV
    if not isinstance(pool, PoolSpec):
        d.set(pool=conv, pool_k=pool[0], pool_s=pool[1], pool_pad=pool[2])
        return
    d.set(pool=conv, pool_avg=pool.avg, pool_incl_pad=pool.incl_pad)
    if pool.glob:
        d.set(pool_global=1, pool_s=1)
        return
    d.set(pool_s=pool.s)
    pt, pb, pl, pr = pool.pads
    if pool.kh == pool.kw and pool.kh in (2, 3):
        d.set(pool_k=pool.kh)
    else:
        d.set(pool_kh=pool.kh, pool_kw=pool.kw)
    if len(set(pool.pads)) == 1 and pt <= 3:
        d.set(pool_pad=pt)
    else:
        d.set(pool_asym=1, pool_pad=pt, pool_pad_b=pb, pool_pad_l=pl, pool_pad_r=pr)


def descriptor_for(q, idx: int, addrs: dict, io: Optional[allocate.LayerIO] = None) -> isa.Descriptor:
    d = isa.Descriptor({})
    d.set(kind=q.kind, relu=q.relu, layer_id=idx, insel=q.insel,
          in_c=q.in_shape[0], in_h=q.in_shape[1], in_w=q.in_shape[2],
          out_c=q.out_shape[0], out_h=q.out_shape[1], out_w=q.out_shape[2],
          in_addr=addrs["in"], out_addr=addrs["out"], **q.tiles)
    if q.pool is not None:
        _set_pool(d, q)
    if q.kind != isa.Kind.POOL:
        pt, pb, pl, pr = q.pads
        d.set(k=q.k, stride=q.stride, pad_t=pt, pad_b=pb, pad_l=pl, pad_r=pr, bias=1,
              wgt_addr=addrs["wgt"], bias_addr=addrs["bias"], bias_shift=q.bias_shift,
              data_shift=q.data_shift)
        if q.ovsf is not None:
            d.set(ovsf=1, gen_shift=q.gen_shift, log2_l=int(q.ovsf.L).bit_length() - 1,
                  n_codes=q.ovsf.n_codes, code_mask=q.ovsf.mask)
    groups = getattr(q, "groups", 1)
    if groups > 1:
        d.set(groups=groups)
    if getattr(q, "in_shuffle", 0) > 1:
        d.set(in_shuffle=q.in_shuffle)
    if io is not None and io.in_slice is not None:
        d.set(in_c_off=io.in_slice[0], in_c_total=io.in_slice[1])
    if io is not None and io.out_slice is not None:
        d.set(out_c_off=io.out_slice[0], out_c_total=io.out_slice[1])
    if getattr(q, "res_tensor", None) is not None:
        d.set(res=1, res_shift=q.res_shift, res_addr=addrs["res"])
    if getattr(q, "clip_hi", None) is not None:
        d.set(clip=1, clip_hi=q.clip_hi)
    return d


def weight_bytes(q, cfg: EngineConfig) -> bytes:
    """A CONV/FC layer's weights (or OVSF coefficients) in the tiled layout."""
    t = q.tiles
    shape = {"kind": int(q.kind), "groups": getattr(q, "groups", 1), "in_c": q.in_shape[0], "k": q.k}
    if isa.packed_taps(shape, cfg.pn):
        # each channel's wvec_len weights of its engine-order vector
        # (memimage.packed_index), one ti-tile
        n = isa.wvec_len(shape, cfg.pn)
        idx = memimage.packed_index(round_up(shape["in_c"] // shape["groups"], cfg.pn),
                                    shape["in_c"] // shape["groups"], q.k, cfg.pn)
        if q.ovsf is not None:
            # the blocks of those weights (runs of whole blocks of the engine-order vector)
            alpha = q.ovsf.alpha_q[:, idx[::q.ovsf.L] // q.ovsf.L]
            return memimage.to_bytes(memimage.pack_alphas(alpha, n, 1, q.ovsf.L, t["to"], n, cfg.pm), cfg.alpha_bits)
        w = memimage.engine_order(memimage.pad_weights(q.w_q, cfg))[:, idx]
        return memimage.to_bytes(memimage.pack_weights(w.reshape(-1, n, 1, 1), t["to"], n), cfg.data_bits)
    if q.ovsf is not None:
        cin_pad = round_up(q.in_shape[0] // max(1, getattr(q, "groups", 1)), cfg.pn)
        flat = memimage.pack_alphas(q.ovsf.alpha_q, cin_pad, q.k, q.ovsf.L, t["to"], t["ti"], cfg.pm)
        return memimage.to_bytes(flat, cfg.alpha_bits)
    flat = memimage.pack_weights(memimage.pad_weights(q.w_q, cfg), t["to"], t["ti"])
    return memimage.to_bytes(flat, cfg.data_bits)


def bias_bytes(q, cfg: EngineConfig) -> bytes:
    bpad = np.zeros(round_up(q.out_shape[0], cfg.pm), dtype=np.int64)
    bpad[:q.out_shape[0]] = q.b_q
    return memimage.to_bytes(bpad, cfg.data_bits)


def _view(img: memimage.MemoryImage, name: str, addr: int, size: int, arena) -> memimage.Region:
    """A region inside the activation arena; arena views may overlap each
    other (buffers whose lives do not), not anything else."""
    r = memimage.Region(name, addr, size)
    if r.addr < arena.addr or r.end > arena.end:
        raise MemoryLayoutError(f"region {name!r} lies outside the activation arena")
    if any(o.name == name for o in img.regions):
        raise MemoryLayoutError(f"region {name!r} defined twice")
    img.regions.append(r)
    return r


def build_image(layers_q: list, cfg: EngineConfig, input_shape, base: int = 0,
                placement: Optional[dict] = None, plan: Optional[allocate.Plan] = None) -> tuple:
    """Allocate regions and write descriptors, weights and biases. Returns
    (image, desc_addr, regions-per-layer). ``placement`` may pin regions to
    addresses ({region name: addr}); overlaps are errors. Without ``plan``
    the layers run as a chain (layer i reads layer i-1's output)."""
    if plan is None:
        plan = allocate.chain_plan(layers_q, input_shape, cfg)
    img = memimage.MemoryImage()
    placement = placement or {}

    def region(name, size):
        size = round_up(max(size, 1), cfg.bus_bytes)
        if name in placement:
            return img.place(name, placement[name], size)
        return img.alloc(name, size)

    if base:
        img._next = round_up(base, memimage.REGION_ALIGN)
    prog = region(DESC_REGION, len(layers_q) * isa.DESC_BYTES)
    where = {}
    if plan.reuse:
        pinned = [b.region for b in plan.buffers.values() if b.region in placement]
        if pinned:
            raise MemoryLayoutError(f"placement pins activation regions {pinned}, which share the "
                                    f"{allocate.ARENA_REGION!r} arena when buffers are reused (pin the arena)")
        arena = region(allocate.ARENA_REGION, plan.arena_bytes)
        for b in plan.buffers.values():
            where[b.name] = _view(img, b.region, arena.addr + b.offset, b.size, arena)
    else:
        b = plan.buffers[INPUT]
        where[INPUT] = region(b.region, b.size)
    regions = {}
    for idx, q in enumerate(layers_q):
        e = plan.io[idx]
        names = {"in": where[e.in_buf].name}
        if e.out_buf not in where:
            b = plan.buffers[e.out_buf]
            where[e.out_buf] = region(b.region, b.size)
        out = where[e.out_buf]
        names["out"] = out.name
        addrs = {"in": where[e.in_buf].addr, "out": out.addr}
        if q.kind != isa.Kind.POOL:
            wbytes = weight_bytes(q, cfg)
            wr = region(f"{q.name}.wgt", len(wbytes))
            img.write(wr.addr, wbytes)
            bb = bias_bytes(q, cfg)
            br = region(f"{q.name}.bias", len(bb))
            img.write(br.addr, bb)
            addrs.update(wgt=wr.addr, bias=br.addr)
            names.update(wgt=wr.name, bias=br.name)
        if e.res_buf is not None:
            rr = where[e.res_buf]
            addrs["res"] = slice_addr(rr.addr, e.res_c_off, e.res_hw[0], e.res_hw[1], cfg)
            names["res"] = rr.name
            if addrs["res"] % cfg.bus_bytes:
                raise NetworkError(f"layer {q.name!r}: its residual {q.res_tensor!r} starts at channel "
                                   f"{e.res_c_off} of {rr.name!r}, byte 0x{addrs['res']:X}, not aligned to the "
                                   f"{cfg.bus_bytes}-byte bus (res_addr has no channel offset)")
        d = descriptor_for(q, idx, addrs, e)
        try:
            isa.check(d, cfg, engine=False)
        except DescriptorError as err:
            raise NetworkError(f"layer {q.name!r}: illegal descriptor: {err}") from None
        img.write(prog.addr + idx * isa.DESC_BYTES, d.encode())
        regions[q.name] = names
    unknown = set(placement) - {r.name for r in img.regions}
    if unknown:
        raise MemoryLayoutError(f"placement names regions the program does not have: {sorted(unknown)}")
    return img, prog.addr, regions
