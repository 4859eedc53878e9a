"""Compiler: float network -> quantized integer network -> descriptor program
and external-memory image, plus the layer-by-layer golden run
(``run_network``, the quantized network on (C, H, W) tensors) that the
functional model (golden.funcmodel.run_image: the descriptors executed from
the memory image, as the engine does) is compared against. Both use
golden.layers for the arithmetic.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import arith, isa, layers, memimage, ovsf, perf, quant
from .config import EngineConfig
from .errors import DescriptorError, MemoryLayoutError, NetworkError, UzError
from .memimage import round_up
from .funcmodel import read_act, write_act
from .network import EngineLayer, Network, forward_engine_float, to_engine_layers

DESC_REGION = "program"


@dataclass
class QLayer:
    """A compiled layer: integer parameters, formats, shifts and tiling."""
    name: str
    kind: isa.Kind
    in_shape: tuple          # as the engine sees it (FC: (Cin_eff, 1, 1))
    out_shape: tuple
    fl_in: int
    fl_out: int
    relu: bool = False
    pool: Optional[tuple] = None
    stride: int = 1
    pads: tuple = (0, 0, 0, 0)
    k: int = 1
    fl_w: int = 0
    fl_b: int = 0
    w_q: Optional[np.ndarray] = None      # effective integer weights (generated in OVSF mode)
    b_q: Optional[np.ndarray] = None
    ovsf: Optional[object] = None         # ovsf.OvsfLayer when weights are generated
    rho: float = 1.0
    tiles: dict = field(default_factory=dict)
    fc_in_shape: Optional[tuple] = None   # (C, H, W) an FC flattens
    source: list = field(default_factory=list)
    insel: bool = False                   # input selection (a hardware mode; same result)

    @property
    def bias_shift(self) -> int:
        return self.fl_b - (self.fl_in + self.fl_w)

    @property
    def data_shift(self) -> int:
        return 0 if self.kind == isa.Kind.POOL else self.fl_in + self.fl_w - self.fl_out

    @property
    def gen_shift(self) -> int:
        return self.ovsf.gen_shift if self.ovsf is not None else 0


@dataclass
class Program:
    cfg: EngineConfig
    name: str
    input_shape: tuple
    fl_input: int
    layers: list
    image: memimage.MemoryImage
    desc_addr: int
    regions: dict          # per layer: {"in", "out", "wgt", "bias"} region names
    static: bool = False
    elayers: list = field(default_factory=list)   # the float engine layers compiled

    def manifest(self) -> dict:
        return {
            "name": self.name,
            "config": self.cfg.to_dict(),
            "input_shape": list(self.input_shape),
            "fl_input": self.fl_input,
            "desc_addr": self.desc_addr,
            "n_layers": len(self.layers),
            "static": self.static,
            "regions": self.image.manifest(),
            "layers": [layer_summary(q, self.regions[q.name]) for q in self.layers],
        }


def layer_summary(q: QLayer, regions: dict) -> dict:
    d = {"name": q.name, "kind": q.kind.name, "in_shape": list(q.in_shape),
         "out_shape": list(q.out_shape), "fl_in": q.fl_in, "fl_out": q.fl_out,
         "relu": q.relu, "pool": list(q.pool) if q.pool else None, "source": q.source,
         "regions": regions, "tiles": q.tiles}
    if q.kind != isa.Kind.POOL:
        d.update(fl_w=q.fl_w, fl_b=q.fl_b, k=q.k, stride=q.stride, pads=list(q.pads),
                 bias_shift=q.bias_shift, data_shift=q.data_shift, rho=q.rho,
                 ovsf=q.ovsf is not None)
        if q.ovsf is not None:
            d.update(fl_alpha=q.ovsf.fl_alpha, codes=[int(c) for c in q.ovsf.codes],
                     n_codes=q.ovsf.n_codes, gen_shift=q.gen_shift)
    return d


# ---------------------------------------------------------------- helpers

def _check_rho(rho: float, length: int, name: str) -> None:
    n = rho * length
    if not (0 < rho <= 1) or abs(n - round(n)) > 1e-9:
        raise NetworkError(f"layer {name!r}: rho={rho} gives rho*L={n:g} codes with L={length}; "
                           f"rho*L must be a whole number in 1..{length}")


def _check_fits(max_abs: float, bits: int, what: str) -> None:
    """Refuse values so large that even the smallest legal fl saturates them:
    clipping the fl there would give garbage silently."""
    if max_abs > 0 and math.isfinite(max_abs) and quant.range_fl(max_abs, bits) < arith.FL_MIN:
        raise NetworkError(f"{what}: magnitudes up to {max_abs:.3g} need fractional length "
                           f"{quant.range_fl(max_abs, bits)} to fit {bits} bits, below the smallest "
                           f"legal fl {arith.FL_MIN}")


def _fit_fl(values, bits: int, what: str) -> int:
    v = np.asarray(values, dtype=np.float64)
    _check_fits(float(np.abs(v).max()) if v.size else 0.0, bits, what)
    return quant.best_fl(v, bits)


def fc_weight_to_layout(w: np.ndarray, fc_in_shape, g: int) -> np.ndarray:
    """Permute an FC weight (Cout, C*H*W) to the grouped input layout, zero
    columns for pad channels. Returns (Cout, Cin_eff, 1, 1)."""
    order = memimage.fc_input_order(fc_in_shape, g)
    w2 = w.reshape(w.shape[0], -1)
    out = np.zeros((w2.shape[0], order.size), dtype=w2.dtype)
    valid = order >= 0
    out[:, valid] = w2[:, order[valid]]
    return out.reshape(w2.shape[0], order.size, 1, 1)


def flatten_for_fc(x: np.ndarray, g: int) -> np.ndarray:
    """The vector an FC reads: the (C,H,W) tensor in grouped layout order."""
    return memimage.pack_act(x, g).reshape(-1, 1, 1)


def acc_bound(w_q: np.ndarray, b_aligned: np.ndarray, data_bits: int) -> int:
    """Worst-case |accumulator| over every partial sum of any input: the sum
    of |w| times the largest input magnitude, plus |bias| (which the engine
    adds first). Python ints: exact."""
    per_out = np.abs(w_q).reshape(w_q.shape[0], -1).sum(axis=1)
    worst = 0
    for o in range(w_q.shape[0]):
        worst = max(worst, int(per_out[o]) * (1 << (data_bits - 1)) + abs(int(b_aligned[o])))
    return worst


def _tiles(kind, conv_h, conv_w, cin, cout, k, stride, cfg: EngineConfig, ovsf_on: bool,
           pool=None) -> dict:
    """Tile sizes that fit the buffers: whole input channels and whole rows
    when they fit (longest bursts), else halve until they do. Always legal;
    the hardware-aware search may pick better ones."""
    cin_pad = round_up(cin, cfg.pn)
    cout_pad = round_up(cout, cfg.pm)

    def in_rows(tr):
        return tr if kind == isa.Kind.POOL else (tr - 1) * stride + k

    def fits(tr, tc, ti, to):
        ih, iw = in_rows(tr), in_rows(tc)
        ok = ti * ih * iw <= cfg.in_buf_elems and to * tr * tc <= cfg.out_buf_elems
        if kind != isa.Kind.POOL:
            ok = ok and to * ti * k * k <= cfg.wgt_buf_elems
        return ok

    unit_i = cfg.pn
    if ovsf_on:
        unit_i = max(cfg.pn, cfg.ovsf_len)
    if kind == isa.Kind.POOL:
        ti = to = cfg.pn
    else:
        to = cfg.pm
        ti = cin_pad
        while ti > unit_i and not fits(1, 1, ti, to):
            ti = max(unit_i, (ti // 2) // unit_i * unit_i)
        if ti < cin_pad and ti % unit_i:
            ti = unit_i
    tc = conv_w
    tr = conv_h
    # A pool needs whole windows in a tile: tiles shrink in steps of its
    # stride, and only non-overlapping unpadded pools may split the plane.
    step = pool[1] if pool is not None else 1
    splittable = pool is None or (pool[0] == pool[1] and pool[2] == 0)
    if kind != isa.Kind.POOL:
        # Each input window (perf.window_cycles buffer reads) serves every
        # oc-group of the tile. With input selection a window takes fewer
        # steps than that, so enough oc-groups keep the PE array busy while
        # the next one loads.
        steps = -(-min(cin, cfg.pn) * k * k // cfg.pn) if cin % cfg.pn else k * k
        # At least that many oc-groups per tile, in tiles of equal size:
        # a remainder tile with fewer groups would be window bound, and
        # every extra to-tile reads the input again.
        need = -(-perf.window_cycles(k) // steps)
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
                f"max pool {pool[0]}x{pool[0]}/{pool[1]} pad {pool[2]} on a {conv_h}x{conv_w} plane needs "
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


class PoolTilingError(NetworkError):
    """A pool cannot be tiled within the buffers."""


def unfuse_untileable_pools(elayers: list, cfg: EngineConfig) -> list:
    """A CONV whose fused pool cannot be tiled becomes CONV + standalone POOL
    (which may still fail, with the pool's own clear error)."""
    out = []
    for L in elayers:
        if L.kind == isa.Kind.CONV and L.pool is not None:
            ch = layers.out_size(L.in_shape[1], L.k, L.stride, L.pads[0], L.pads[1])
            cw = layers.out_size(L.in_shape[2], L.k, L.stride, L.pads[2], L.pads[3])
            try:
                _tiles(L.kind, ch, cw, L.in_shape[0], L.out_shape[0], L.k, L.stride, cfg, L.rho < 1, L.pool)
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


# ------------------------------------------------------------- quantize

def quantize_network(elayers: list, calib: np.ndarray, cfg: EngineConfig, static: bool = False,
                     force_ovsf: bool = False) -> tuple[int, list]:
    """Choose formats layer by layer (Qiu et al.) on calibration images.
    Returns (fl of the network input, [QLayer])."""
    bits = cfg.data_bits
    calib = np.asarray(calib, dtype=np.float64)
    if calib.ndim != 4:
        raise UzError(f"calibration data must be (N, C, H, W), got shape {calib.shape}")
    if not np.all(np.isfinite(calib)):
        raise UzError("calibration data holds NaN or infinite values")
    if calib.shape[0] == 0:
        raise UzError("calibration data holds no images")
    float_outs = [forward_engine_float(elayers, x) for x in calib]   # [image][layer]
    g = cfg.pn

    if static:
        all_w = np.concatenate([L.weight.ravel() for L in elayers if L.weight is not None])
        all_b = [L.bias.ravel() for L in elayers if L.bias is not None]
        all_b = np.concatenate(all_b) if all_b else np.zeros(1)
        acts = [calib.ravel()] + [o.ravel() for img in float_outs for o in img]
        s_fl_w = _fit_fl(all_w, bits, "weights")
        s_fl_b = _fit_fl(all_b, bits, "biases")
        s_fl_a = _fit_fl(np.concatenate(acts), bits, "activations")
        fl_in0 = s_fl_a
    else:
        fl_in0 = _fit_fl(calib, bits, "network input")

    xq = [arith.quantize(x, fl_in0, bits) for x in calib]
    fl_in = fl_in0
    out = []
    for li, L in enumerate(elayers):
        ref = np.stack([img[li] for img in float_outs])
        if L.kind == isa.Kind.POOL:
            yq = [layers.maxpool_int(x, *L.pool) for x in xq]
            if L.relu:
                yq = [arith.relu(y) for y in yq]
            tiles = _tiles(L.kind, L.in_shape[1], L.in_shape[2], L.in_shape[0], L.out_shape[0], 1, 1, cfg, False,
                           L.pool)
            q = QLayer(L.name, L.kind, L.in_shape, L.out_shape, fl_in, fl_in, relu=L.relu, pool=L.pool,
                       tiles=tiles, source=L.source)
            out.append(q)
            xq = yq
            continue

        if L.kind == isa.Kind.FC:
            w = fc_weight_to_layout(L.weight[:, :, 0, 0], L.fc_in_shape, g)
            in_shape = (w.shape[1], 1, 1)
            x_eng = [flatten_for_fc(x, g) for x in xq]
        else:
            w = L.weight
            in_shape = L.in_shape
            x_eng = xq
        cout = w.shape[0]
        k = w.shape[2]
        fl_w = s_fl_w if static else _fit_fl(L.weight, bits, f"layer {L.name!r}: weights")
        w_q = arith.quantize(w, fl_w, bits)
        bias = L.bias if L.bias is not None else np.zeros(cout)
        fl_b = s_fl_b if static else _fit_fl(bias, bits, f"layer {L.name!r}: bias")
        b_q = arith.quantize(bias, fl_b, bits)
        ov = None
        if L.rho != 1 or force_ovsf:
            _check_rho(L.rho, cfg.ovsf_len, L.name)
            w_pad = memimage.pad_weights(w_q, cfg)
            ov = ovsf.decompose(w_pad, fl_w, L.rho, cfg.ovsf_len, cfg.alpha_bits, bits)
            arith.check_fl(ov.fl_alpha, f"layer {L.name!r}: OVSF coefficient fractional length")
            w_eff = ovsf.reconstruct(ov, bits)[:cout, :w.shape[1]]
        else:
            w_eff = w_q
        fl_acc = fl_in + fl_w
        bias_shift = fl_b - fl_acc
        if not isa.SHIFT_MIN <= bias_shift <= isa.SHIFT_MAX:
            raise NetworkError(f"layer {L.name!r}: bias shift {bias_shift} out of range")
        b_al = np.asarray(arith.shift_round_sat(b_q, bias_shift, cfg.acc_bits))
        # The engine saturates the aligned bias at acc_bits: that must never happen.
        if not np.array_equal(b_al, arith.shift_round_sat(b_q, bias_shift, arith.MAX_BITS)):
            raise NetworkError(
                f"layer {L.name!r}: the bias at fl_b={fl_b} shifted onto the accumulator's fl "
                f"{fl_acc} (fl_in {fl_in} + fl_w {fl_w}) overflows the {cfg.acc_bits}-bit accumulator")
        bound = acc_bound(w_eff, b_al, bits)
        if bound > arith.qmax(cfg.acc_bits):
            raise NetworkError(
                f"layer {L.name!r}: worst-case accumulator magnitude {bound} (2^{math.log2(bound):.1f}) "
                f"exceeds the {cfg.acc_bits}-bit accumulator; the layer cannot be proven overflow-free")
        accs = []
        for x in x_eng:
            a = layers.conv_acc(x, w_eff, L.stride, L.pads) + b_al[:, None, None]
            accs.append(arith.relu(a) if L.relu else a)

        def make_q(fl_out, accs=accs, L=L, fl_acc=fl_acc):
            ys = []
            for a in accs:
                y = arith.shift_round_sat(a, fl_acc - fl_out, bits)
                if L.pool is not None:
                    y = layers.maxpool_int(y, *L.pool)
                ys.append(y)
            return np.stack(ys)

        if static:
            fl_out = s_fl_a
        else:
            _check_fits(float(np.abs(ref).max()), bits, f"layer {L.name!r}: output")
            fl_out = quant.best_fl_against(ref, make_q, quant.candidate_fls(float(np.abs(ref).max()), bits))
        arith.check_fl(fl_out, f"layer {L.name!r}: output fractional length")
        if not isa.SHIFT_MIN <= fl_acc - fl_out <= isa.SHIFT_MAX:
            raise NetworkError(f"layer {L.name!r}: data shift {fl_acc - fl_out} out of range")
        yq = list(make_q(fl_out))
        conv_h = layers.out_size(in_shape[1], k, L.stride, L.pads[0], L.pads[1])
        conv_w = layers.out_size(in_shape[2], k, L.stride, L.pads[2], L.pads[3])
        try:
            tiles = _tiles(L.kind, conv_h, conv_w, in_shape[0], cout, k, L.stride, cfg, ov is not None, L.pool)
        except NetworkError as e:
            raise NetworkError(f"layer {L.name!r}: {e}") from None
        q = QLayer(L.name, L.kind, in_shape, L.out_shape, fl_in, fl_out, relu=L.relu, pool=L.pool,
                   stride=L.stride, pads=tuple(L.pads), k=k, fl_w=fl_w, fl_b=fl_b, w_q=w_eff,
                   b_q=b_q, ovsf=ov, rho=L.rho if ov is not None else 1.0, tiles=tiles,
                   fc_in_shape=getattr(L, "fc_in_shape", None), source=L.source)
        out.append(q)
        xq = yq
        fl_in = fl_out
    return fl_in0, out


# ------------------------------------------------------------ emit image

def descriptor_for(q: QLayer, idx: int, addrs: dict) -> isa.Descriptor:
    d = isa.Descriptor({})
    d.set(kind=q.kind, relu=q.relu, layer_id=idx, insel=q.insel,
          in_c=q.in_shape[0], in_h=q.in_shape[1], in_w=q.in_shape[2],
          out_c=q.out_shape[0], out_h=q.out_shape[1], out_w=q.out_shape[2],
          in_addr=addrs["in"], out_addr=addrs["out"], **q.tiles)
    if q.pool is not None:
        d.set(pool=q.kind == isa.Kind.CONV, pool_k=q.pool[0], pool_s=q.pool[1], pool_pad=q.pool[2])
    if q.kind != isa.Kind.POOL:
        pt, pb, pl, pr = q.pads
        d.set(k=q.k, stride=q.stride, pad_t=pt, pad_b=pb, pad_l=pl, pad_r=pr, bias=1,
              wgt_addr=addrs["wgt"], bias_addr=addrs["bias"], bias_shift=q.bias_shift,
              data_shift=q.data_shift)
        if q.ovsf is not None:
            d.set(ovsf=1, gen_shift=q.gen_shift, log2_l=int(q.ovsf.L).bit_length() - 1,
                  n_codes=q.ovsf.n_codes, code_mask=q.ovsf.mask)
    return d


def build_image(layers_q: list, cfg: EngineConfig, input_shape, base: int = 0,
                placement: Optional[dict] = None) -> tuple:
    """Allocate regions and write descriptors, weights and biases. Returns
    (image, desc_addr, regions-per-layer). ``placement`` may pin regions to
    addresses ({region name: addr}); overlaps are errors."""
    img = memimage.MemoryImage()
    placement = placement or {}
    eb = cfg.elem_bytes

    def region(name, size):
        size = round_up(max(size, 1), cfg.bus_bytes)
        if name in placement:
            return img.place(name, placement[name], size)
        return img.alloc(name, size)

    if base:
        img._next = round_up(base, memimage.REGION_ALIGN)
    prog = region(DESC_REGION, len(layers_q) * isa.DESC_BYTES)
    act = region("input", memimage.act_elems(input_shape, cfg.pn) * eb)
    regions = {}
    prev_out = act
    for idx, q in enumerate(layers_q):
        names = {"in": prev_out.name}
        out = region(f"{q.name}.out", memimage.act_elems(q.out_shape, cfg.pn) * eb)
        names["out"] = out.name
        addrs = {"in": prev_out.addr, "out": out.addr}
        if q.kind != isa.Kind.POOL:
            t = q.tiles
            if q.ovsf is not None:
                flat = memimage.pack_alphas(q.ovsf.alpha_q, round_up(q.in_shape[0], cfg.pn), q.k,
                                            q.ovsf.L, t["to"], t["ti"], cfg.pm)
                wbytes = memimage.to_bytes(flat, cfg.alpha_bits)
            else:
                flat = memimage.pack_weights(memimage.pad_weights(q.w_q, cfg), t["to"], t["ti"])
                wbytes = memimage.to_bytes(flat, cfg.data_bits)
            wr = region(f"{q.name}.wgt", len(wbytes))
            img.write(wr.addr, wbytes)
            bpad = np.zeros(round_up(q.out_shape[0], cfg.pm), dtype=np.int64)
            bpad[:q.out_shape[0]] = q.b_q
            bb = memimage.to_bytes(bpad, cfg.data_bits)
            br = region(f"{q.name}.bias", len(bb))
            img.write(br.addr, bb)
            addrs.update(wgt=wr.addr, bias=br.addr)
            names.update(wgt=wr.name, bias=br.name)
        d = descriptor_for(q, idx, addrs)
        try:
            isa.check(d, cfg)
        except DescriptorError as e:
            raise NetworkError(f"layer {q.name!r}: illegal descriptor: {e}") from None
        img.write(prog.addr + idx * isa.DESC_BYTES, d.encode())
        regions[q.name] = names
        prev_out = out
    unknown = set(placement) - {r.name for r in img.regions}
    if unknown:
        raise MemoryLayoutError(f"placement names regions the program does not have: {sorted(unknown)}")
    return img, prog.addr, regions


INSEL_MODES = ("auto", "on", "off")


def compile_network(net: Network, cfg: EngineConfig, calib: np.ndarray, rho: Optional[float] = None,
                    static: bool = False, force_ovsf: bool = False, base: int = 0,
                    placement: Optional[dict] = None, insel: str = "auto",
                    tiles: Optional[dict] = None) -> Program:
    """``insel``: input selection per layer; "auto" turns it on where a layer's
    input channels leave lanes idle (in_c not a multiple of PN). ``tiles``
    replaces the tile sizes the compiler picks, per layer name: {name: {"tr",
    "tc", "ti", "to"}} (any subset); illegal tiles are an error naming the
    layer."""
    if insel not in INSEL_MODES:
        raise UzError(f"insel must be one of {INSEL_MODES}, not {insel!r}")
    elayers = unfuse_untileable_pools(to_engine_layers(net, 1.0 if rho is None else rho), cfg)
    for L in elayers:
        if L.rho != 1 or force_ovsf:
            _check_rho(L.rho, cfg.ovsf_len, L.name)
    calib = np.asarray(calib, dtype=np.float64)
    if calib.ndim == 3:
        calib = calib[None]
    if calib.ndim != 4 or tuple(calib.shape[1:]) != tuple(net.input_shape):
        raise UzError(f"input shape {tuple(calib.shape[1:]) if calib.ndim == 4 else calib.shape} "
                      f"does not match the network input {tuple(net.input_shape)}")
    fl0, qlayers = quantize_network(elayers, calib, cfg, static=static, force_ovsf=force_ovsf)
    for q in qlayers:
        if q.kind != isa.Kind.POOL:
            q.insel = insel == "on" or (insel == "auto" and q.in_shape[0] % cfg.pn != 0)
    for name, t in (tiles or {}).items():
        q = next((q for q in qlayers if q.name == name), None)
        if q is None:
            raise UzError(f"tiles given for layer {name!r}, which the network does not have "
                          f"(layers: {[q.name for q in qlayers]})")
        bad = set(t) - {"tr", "tc", "ti", "to"}
        if bad:
            raise UzError(f"layer {name!r}: unknown tile fields {sorted(bad)} (known: tr, tc, ti, to)")
        q.tiles = dict(q.tiles, **{k: int(v) for k, v in t.items()})
    img, desc_addr, regions = build_image(qlayers, cfg, net.input_shape, base, placement)
    return Program(cfg, net.name, tuple(net.input_shape), fl0, qlayers, img, desc_addr, regions, static, elayers)


# ---------------------------------------------------------- golden runs

def run_network(prog: Program, x_q: np.ndarray) -> list:
    """Quantized network on (C,H,W) integer tensors; every layer's output."""
    g = prog.cfg.pn
    bits, accb = prog.cfg.data_bits, prog.cfg.acc_bits
    outs = []
    x = np.asarray(x_q, dtype=np.int64)
    for q in prog.layers:
        if q.kind == isa.Kind.POOL:
            y = layers.maxpool_int(x, *q.pool)
            if q.relu:
                y = arith.relu(y)
        else:
            xin = flatten_for_fc(x, g) if q.kind == isa.Kind.FC else x
            y = layers.layer_int(xin, q.w_q, q.b_q, stride=q.stride, pads=q.pads, bias_shift=q.bias_shift,
                                 data_shift=q.data_shift, relu=q.relu, pool=q.pool, data_bits=bits,
                                 acc_bits=accb)
        outs.append(y)
        x = y
    return outs


def load_input(prog: Program, x: np.ndarray) -> np.ndarray:
    """Quantize a float (C,H,W) image and write it to the input region."""
    x = np.asarray(x, dtype=np.float64)
    if tuple(x.shape) != tuple(prog.input_shape):
        raise UzError(f"input shape {tuple(x.shape)} does not match the network input {prog.input_shape}")
    if not np.all(np.isfinite(x)):
        raise UzError("input holds NaN or infinite values")
    xq = arith.quantize(x, prog.fl_input, prog.cfg.data_bits)
    write_act(prog.image, prog.image.region("input").addr, xq, prog.cfg)
    return xq


def layer_output(prog: Program, idx: int) -> np.ndarray:
    """Read layer ``idx``'s output tensor (real channels only) from the image."""
    q = prog.layers[idx]
    r = prog.image.region(prog.regions[q.name]["out"])
    return read_act(prog.image, r.addr, q.out_shape, prog.cfg)[:q.out_shape[0]]


def save_program(prog: Program, out_dir: str) -> None:
    import os
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "image.bin"), "wb") as f:
        f.write(bytes(prog.image.data))
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(prog.manifest(), f, indent=1)
    with open(os.path.join(out_dir, "program.txt"), "w") as f:
        f.write(disassemble(prog))


def disassemble(prog: Program) -> str:
    lines = []
    for i, q in enumerate(prog.layers):
        raw = prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES)
        d = isa.decode(raw)
        fields = " ".join(f"{k}={v:#x}" if k.endswith("addr") or k == "code_mask" else f"{k}={v}"
                          for k, v in d.items() if v)
        lines.append(f"# {i}: {q.name} ({q.kind.name})\n{raw.hex()}\n  {fields}")
    return "\n".join(lines) + "\n"
