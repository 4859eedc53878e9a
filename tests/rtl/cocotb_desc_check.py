"""cocotb test of uz_desc_check against golden.isa.validate.

The check is sequential: each vector is driven on desc_i with check_i high
until done_o, then check_i drops for a cycle. Now and then a check is
abandoned part way (check_i falls early, as on an abort) before the real one,
and done_o and err_o are watched for a few cycles after done_o to hold.

The DUT's parameters give the EngineConfig. The vectors, each compared with
validate(desc, cfg):
  * bases: every descriptor the compiler emits for example5, a handmade
    network with standalone pools and 20 random networks (all must be legal),
    a few crafted ones at exact limits (buffers exactly full, 16-bit
    extremes) and random legal-looking ones over the whole field ranges;
  * single-field mutations of the bases: every value of a field of up to 4
    bits; boundaries, neighbours, values around the derived limits (conv
    dims, rounded channel counts, shift range) and random values of the
    wider ones;
  * two-field mutations: pairs of single mutations of one base that fail
    different checks (the order between them), and random ones; geometry
    changes with the output dims recomputed (the checks after
    SHAPE_MISMATCH), random tile sizes, and fully random descriptors.
UZ_DESC_VECTORS is the number simulated (default 20000): all the bases, then
fixed shares of each family (the single mutations a random subset, the same
number per field). UZ_SEED picks the random vectors (default 1). UZ_MUTATE=1
corrupts the expected codes so the pytest wrapper can prove the check can
fail.
"""
import hashlib
import json
import math
import os
import zlib
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout
from cocotb.utils import get_sim_time

from golden import compiler, isa
from golden.config import EngineConfig
from golden.errors import UzError
from golden.isa import FIELD, FIELDS, Err, Kind
from golden.network import load_network
from golden.randnet import random_network
from tb import simenv

GOLDEN = Path(isa.__file__).resolve().parent
EXAMPLE = str(GOLDEN / "networks" / "example5.json")
N_RANDOM_NETS = 20

#: Standalone pools (padded, after a fused pool), an asymmetric pad, a channel
#: count that is not a multiple of the lane count, then an FC.
HANDMADE = {"name": "handmade", "input_shape": [5, 15, 14], "weights": {"seed": 11}, "layers": [
    {"name": "p0", "type": "maxpool", "kernel": 3, "stride": 1, "pad": 1},
    {"name": "c1", "type": "conv", "out_channels": 19, "kernel": 3, "stride": 1, "pad": [1, 0, 2, 1]},
    {"name": "r1", "type": "relu"},
    {"name": "p1", "type": "maxpool", "kernel": 2, "stride": 2},
    {"name": "p2", "type": "maxpool", "kernel": 3, "stride": 1, "pad": 1},
    {"name": "c2", "type": "conv", "out_channels": 7, "kernel": 1, "bias": False},
    {"name": "f1", "type": "fc", "out_features": 9}]}

#: The graph features the engine runs: a fire module whose expands write
#: channel slices of one tensor (one leaving a gap), a layer reading a slice
#: alone, ReLU6 (a clip) fused into a conv and into a conv with a pool, and
#: one-cell POOL layers (isa.identity_pool): the input copied into a concat
#: and a ReLU6 on a concat; residual adds fused into a conv and an FC;
#: depthwise layers (3x3, an OVSF 5x5 of stride 2 with unequal pads) and a
#: grouped 1x1 the compiler lowers to dense layers.
GRAPH = {"name": "graph", "input_shape": [6, 9, 8], "weights": {"seed": 12}, "layers": [
    {"name": "cp", "type": "concat", "inputs": ["input", "input"]},
    {"name": "cp_r", "type": "relu6"},
    {"name": "sq", "type": "conv", "out_channels": 8, "kernel": 1},
    {"name": "sq_r", "type": "relu6"},
    {"name": "e1", "type": "conv", "out_channels": 5, "kernel": 1, "inputs": ["sq_r"]},
    {"name": "e3", "type": "conv", "out_channels": 20, "kernel": 3, "pad": 1, "inputs": ["sq_r"]},
    {"name": "cat", "type": "concat", "inputs": ["e1", "e3"]},
    {"name": "side", "type": "conv", "out_channels": 7, "kernel": 1, "inputs": ["e3"]},
    {"name": "c2", "type": "conv", "out_channels": 12, "kernel": 3, "pad": 1, "inputs": ["cat"]},
    {"name": "c2_r", "type": "relu6"},
    {"name": "cat2", "type": "concat", "inputs": ["side", "c2_r"]},
    {"name": "c3", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
    {"name": "c3_r", "type": "relu6"},
    {"name": "p3", "type": "maxpool", "kernel": 2, "stride": 2},
    {"name": "c4", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
    {"name": "a4", "type": "add", "inputs": ["c4", "p3"]},
    {"name": "dw", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1, "groups": 8},
    {"name": "dw_r", "type": "relu6"},
    {"name": "dw5", "type": "conv", "out_channels": 8, "kernel": 5, "stride": 2, "pad": [2, 1, 2, 1], "groups": 8,
     "rho": 0.5},
    {"name": "g", "type": "conv", "out_channels": 12, "kernel": 1, "groups": 4},
    {"name": "f1", "type": "fc", "out_features": 9},
    {"name": "f2", "type": "fc", "out_features": 9},
    {"name": "a5", "type": "add", "inputs": ["f2", "f1"]}]}


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def cfg_of(dut) -> EngineConfig:
    return EngineConfig(pm=int(dut.PM.value), pn=int(dut.PN.value), data_bits=int(dut.DataWidth.value),
                        ovsf_len=int(dut.OvsfLen.value), alpha_bits=int(dut.AlphaWidth.value),
                        axi_data_bits=int(dut.AxiDataWidth.value), in_buf_elems=int(dut.InBufElems.value),
                        wgt_buf_elems=int(dut.WgtBufElems.value), out_buf_elems=int(dut.OutBufElems.value),
                        max_k=int(dut.MaxK.value))


def _round_up(v, m):
    return -(-v // m) * m


# ------------------------------------------------------------ the bases

def _compile_all(cfg: EngineConfig) -> list:
    specs = [EXAMPLE, HANDMADE, GRAPH] + [random_network(s, ovsf_len=cfg.ovsf_len) for s in range(N_RANDOM_NETS)]
    out = []
    for spec in specs:
        net = load_network(spec)
        x = _rng("calib", net.name).normal(size=(1,) + tuple(net.input_shape))
        try:
            prog = compiler.compile_network(net, cfg, x)
        except UzError:
            continue   # a layer too big for this engine's buffers: nothing emitted
        for i in range(len(prog.layers)):
            out.append(isa.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES)))
    return out


def compiled_descriptors(cfg: EngineConfig) -> list:
    """Every descriptor the compiler emits for the test networks. Compiling
    takes seconds on a loaded machine, so the result is kept in the build
    folder, keyed by the golden model's sources and the configuration."""
    key = hashlib.sha1(repr((cfg, N_RANDOM_NETS, HANDMADE, GRAPH)).encode())
    for path in sorted(GOLDEN.rglob("*.py")) + sorted(GOLDEN.rglob("*.json")):
        key.update(path.read_bytes())
    cache = simenv.BUILD / "desc_check_cache" / f"{key.hexdigest()[:16]}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    out = _compile_all(cfg)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, cache)
    return out


def _log_uniform(rng, lo, hi) -> int:
    return int(min(hi, max(lo, round(np.exp(rng.uniform(np.log(lo), np.log(hi + 1)))))))


def random_legal(rng, cfg: EngineConfig):
    """A descriptor consistent in its geometry, tiles, shifts, codes and
    alignment, over the whole 16-bit range; it may still exceed a buffer."""
    while True:
        kind = Kind(int(rng.choice([1, 1, 1, 2, 3])))
        v = {"kind": int(kind), "relu": int(rng.integers(2)), "insel": int(rng.integers(2)),
             "bias": int(rng.integers(2)), "layer_id": int(rng.integers(1 << 16))}
        big = rng.random() < 0.3
        dim = (lambda: _log_uniform(rng, 1, 65535)) if big else (lambda: int(rng.integers(1, 40)))
        in_c = _log_uniform(rng, 1, 65535) if big else int(rng.integers(1, 80))
        if rng.random() < 0.3:      # whole lane groups, as real networks mostly have
            in_c = min(_round_up(in_c, cfg.pn), 65535 // cfg.pn * cfg.pn)
        out_c = _log_uniform(rng, 1, 65535) if big else int(rng.integers(1, 80))
        if kind == Kind.FC:
            k, s, pads, in_h, in_w = 1, 1, [0] * 4, 1, 1
        else:
            k = int(rng.choice(isa.KERNELS))
            s = int(rng.integers(1, 5))
            pads = [int(rng.integers(0, k)) for _ in range(4)] if rng.random() < 0.5 else [k - 1] * 4
            in_h, in_w = dim(), dim()
        if kind == Kind.POOL:
            out_c = in_c
            ch, cw = in_h, in_w
        else:
            if k > in_h + pads[0] + pads[1] or k > in_w + pads[2] + pads[3]:
                continue
            ch = isa.conv_out(in_h, k, s, pads[0], pads[1])
            cw = isa.conv_out(in_w, k, s, pads[2], pads[3])
        pooled = kind == Kind.POOL or (kind == Kind.CONV and rng.random() < 0.4)
        pk = ps = pp = 0
        graph_pool = {}
        if pooled and rng.random() < 0.4:
            # the graph pool fields: any window, unequal pads, global, average
            if rng.random() < 0.25:
                graph_pool = dict(pool_global=1, pool_s=int(rng.integers(4)))
            else:
                kh, kw = int(rng.integers(1, 9)), int(rng.integers(1, 9))
                gp = [int(rng.integers(0, kh)), int(rng.integers(0, kh)), int(rng.integers(0, kw)),
                      int(rng.integers(0, kw))]
                graph_pool = dict(pool_kh=kh, pool_kw=kw, pool_s=int(rng.integers(1, 4)), pool_pad=min(gp[0], 3),
                                  pool_asym=int(rng.random() < 0.7), pool_pad_b=gp[1], pool_pad_l=gp[2],
                                  pool_pad_r=gp[3])
            if kind == Kind.POOL and rng.random() < 0.6:
                graph_pool.update(pool_avg=1, pool_incl_pad=int(rng.integers(2)))
            g = isa.Descriptor(dict(graph_pool))
            wkh, wkw, _, (gt, gb, gl, gr) = isa.pool_window(g, ch, cw)
            if wkh > ch + gt + gb or wkw > cw + gl + gr:
                continue
            oh, ow = isa.pool_dims(g, ch, cw)
            ps = graph_pool.get("pool_s", 1)
            splittable = not graph_pool.get("pool_global") and wkh == wkw == ps and not (gt or gb or gl or gr)
        elif pooled:
            pk = int(rng.integers(2, 4))
            ps = pk if rng.random() < 0.5 else int(rng.integers(1, 4))
            pp = 0 if rng.random() < 0.6 else int(rng.integers(0, pk))
            if pk > ch + 2 * pp or pk > cw + 2 * pp:
                continue
            oh, ow = isa.pool_out(ch, pk, ps, pp), isa.pool_out(cw, pk, ps, pp)
        else:
            oh, ow = ch, cw
        if max(oh, ow) > 65535:
            continue
        if graph_pool and not splittable:
            tr, tc = ch, cw
        elif pooled and not graph_pool and (pk != ps or pp):
            tr, tc = ch, cw      # the whole plane in one tile
        else:
            m = ps if pooled else 1
            tr = ch if rng.random() < 0.3 else m * int(rng.integers(1, max(1, ch // m) + 1))
            tc = cw if rng.random() < 0.3 else m * int(rng.integers(1, max(1, cw // m) + 1))
        if max(tr, tc) > 65535:
            continue
        ti_max = min(_round_up(in_c, cfg.pn), 65535 // cfg.pn * cfg.pn)
        ti = ti_max if rng.random() < 0.3 else cfg.pn * int(rng.integers(1, ti_max // cfg.pn + 1))
        if kind == Kind.POOL:
            to = ti
        else:
            to_max = min(_round_up(out_c, cfg.pm), 65535 // cfg.pm * cfg.pm)
            to = to_max if rng.random() < 0.3 else cfg.pm * int(rng.integers(1, to_max // cfg.pm + 1))
        v.update(k=k, stride=s, pad_t=pads[0], pad_b=pads[1], pad_l=pads[2], pad_r=pads[3],
                 pool=int(kind == Kind.CONV and pooled), pool_k=pk, pool_s=ps, pool_pad=pp,
                 in_c=in_c, in_h=in_h, in_w=in_w, out_c=out_c, out_h=oh, out_w=ow,
                 tr=tr, tc=tc, ti=ti, to=to)
        v.update(graph_pool)
        if kind == Kind.CONV and in_c > 1 and rng.random() < 0.15:
            # depthwise: one group per channel, the tile's inputs its outputs'
            unit = math.lcm(cfg.pm, cfg.pn)      # ti = to: a multiple of both
            t = min(_round_up(to, unit), _round_up(in_c, unit))
            v.update(out_c=in_c, groups=in_c, ti=t, to=t)
        elif kind == Kind.CONV and rng.random() < 0.05:
            v["groups"] = int(rng.integers(2, 9))       # grouped, not depthwise: UNSUPPORTED
        if kind == Kind.POOL:     # fields a POOL layer ignores: anything
            v.update(k=int(rng.integers(16)), stride=int(rng.integers(8)),
                     **{p: int(rng.integers(16)) for p in ("pad_t", "pad_b", "pad_l", "pad_r")})
        for name in ("bias_shift", "data_shift", "gen_shift"):
            v[name] = int(rng.integers(isa.SHIFT_MIN, isa.SHIFT_MAX + 1))
        if kind == Kind.POOL:
            v["data_shift"] = 0
        if kind != Kind.POOL and rng.random() < 0.4:
            L = cfg.ovsf_len
            n = int(rng.integers(1, L + 1))
            v.update(ovsf=1, log2_l=L.bit_length() - 1, n_codes=n,
                     code_mask=sum(1 << int(j) for j in rng.choice(L, n, replace=False)))
            if rng.random() < 0.9:
                # mostly within the generator's range and one past it, so
                # the OVSF checks after BAD_SHIFT run
                lo, hi = isa.gen_shift_range(cfg)
                v["gen_shift"] = int(rng.integers(lo - 1, hi + 2))
        for name in ("in_addr", "out_addr", "wgt_addr", "bias_addr"):
            v[name] = int(rng.integers(0, (1 << 32) // cfg.bus_bytes)) * cfg.bus_bytes
        # channel slices of larger tensors (offsets on PN), and the clip
        for side, c in (("in", in_c), ("out", out_c)):
            if rng.random() < 0.3:
                total = int(min(65535, c + rng.integers(0, 4 * cfg.pn + 1)))
                off = cfg.pn * int(rng.integers(0, (total - c) // cfg.pn + 1))
                v.update({f"{side}_c_off": off, f"{side}_c_total": total})
            elif rng.random() < 0.1:
                v[f"{side}_c_total"] = int(rng.integers(0, c + 1))   # 0 or at most c: the whole tensor
        if rng.random() < 0.3:
            v.update(clip=1, clip_hi=int(rng.integers(0, 1 << (cfg.data_bits - 1))))
        if kind != Kind.POOL and rng.random() < 0.3:
            v.update(res=1, res_shift=int(rng.integers(isa.SHIFT_MIN, isa.SHIFT_MAX + 1)),
                     res_addr=int(rng.integers(0, (1 << 32) // cfg.bus_bytes)) * cfg.bus_bytes)
        return isa.Descriptor(v).values


def crafted(cfg: EngineConfig) -> list:
    """Descriptors at exact limits; their +-1 mutations cross them."""
    base = dict(kind=int(Kind.CONV), k=1, stride=1, in_c=cfg.pn, in_h=1, in_w=1, out_c=cfg.pm, out_h=1,
                out_w=1, tr=1, tc=1, ti=cfg.pn, to=cfg.pm)
    out = []

    def add(**kw):
        v = dict(base)
        v.update(kw)
        out.append(isa.Descriptor(v).values)

    def plane(n):   # an h x w plane of exactly n cells, near square (n a power of two)
        h = 1 << ((n.bit_length() - 1) // 2)
        return h, n // h

    # Output buffer exactly full (1x1 conv: to * tr * tc), the input as full
    # as ti allows; a plane twice the tile and in_c twice ti leave room to
    # grow tr, tc and ti by one step.
    h, w = plane(cfg.out_buf_elems // cfg.pm)
    ti = max(cfg.pn, cfg.in_buf_elems // (h * w) // cfg.pn * cfg.pn)
    if 2 * max(h, w, ti) <= 65535:
        add(in_c=2 * ti, ti=ti, in_h=2 * h, in_w=2 * w, out_h=2 * h, out_w=2 * w, tr=h, tc=w)
    # Weight buffer exactly full (to * ti * k * k) with k = 1, and with k = 3.
    to = cfg.wgt_buf_elems // cfg.pn
    if 2 * to <= 65535:
        add(out_c=2 * to, to=to)
    to = cfg.pm * max(1, cfg.wgt_buf_elems // (9 * cfg.pn * cfg.pm))
    add(k=3, pad_t=1, pad_b=1, pad_l=1, pad_r=1, out_c=2 * to, to=to)
    # 16-bit extremes: a conv result of 65545 rows that a pool brings back to
    # 16 bits (TOO_LARGE: the layer counts conv rows in 16 bits).
    add(k=11, pad_t=10, pad_b=10, pad_l=10, pad_r=10, in_h=65535, in_w=65535, pool=1, pool_k=2, pool_s=2,
        out_h=32772, out_w=32772, tr=2, tc=2)
    add(k=11, pad_t=10, pad_b=10, pad_l=10, pad_r=10, in_h=65535, out_h=65535, out_w=11, tr=1)  # 65545 rows
    add(in_c=65535, ti=65535 // cfg.pn * cfg.pn, out_c=65535, to=65535 // cfg.pm * cfg.pm,
        in_h=65535, in_w=65535, out_h=65535, out_w=65535, tr=65535, tc=65535)
    # Slices at the 16-bit limit: offset + channels is 17 bits wide; the
    # last slice that fits, and the clip at the largest data value.
    top = 65535 // cfg.pn * cfg.pn
    add(in_c_off=top, in_c_total=65535, out_c_off=65535 - cfg.pm - (65535 - cfg.pm) % cfg.pn, out_c_total=65535,
        in_c=65535 - top, ti=cfg.pn, clip=1, clip_hi=(1 << (cfg.data_bits - 1)) - 1)
    add(in_c_off=top, in_c_total=65535, in_c=65535 - top, ti=cfg.pn, out_c_off=cfg.pn, out_c_total=cfg.pn + cfg.pm)
    # FC with OVSF weights, partial ti-tiles that are block multiples.
    L = cfg.ovsf_len
    ovsf = dict(ovsf=1, log2_l=L.bit_length() - 1, n_codes=L, code_mask=(1 << L) - 1)
    add(kind=int(Kind.FC), in_c=4 * max(L, cfg.pn) + 1, ti=max(L, cfg.pn), out_c=3, to=cfg.pm, **ovsf)
    # ti = in_c: ti then need not be a multiple of the block length (which
    # the log2_l mutations raise above PN).
    add(in_c=cfg.pn, ti=cfg.pn, k=3, pad_t=1, pad_b=1, pad_l=1, pad_r=1, in_h=5, in_w=5, out_h=5, out_w=5,
        **ovsf)
    # Depthwise: the weight buffer exactly full with packed taps
    # (to * round_up(K*K, PN)), K 3 and 7, and an OVSF one; ti = to, the
    # channels twice the tile; on an FC (SHAPE_MISMATCH) and with ti != to.
    unit = math.lcm(cfg.pm, cfg.pn)
    for k in (3, 7):
        wvec = _round_up(k * k, cfg.pn)
        to = cfg.wgt_buf_elems // wvec // unit * unit
        if to and to * k * (k + 1) <= cfg.in_buf_elems and 2 * to <= 65535:
            add(k=k, in_c=2 * to, out_c=2 * to, groups=2 * to, ti=to, to=to, in_h=k, in_w=k + 1, out_w=2, tc=2)
    c = unit + 3
    dw = dict(k=3, pad_t=1, pad_b=1, pad_l=1, pad_r=1, in_h=5, in_w=5, out_h=5, out_w=5, in_c=c, out_c=c, groups=c,
              ti=unit, to=unit)
    add(**dw)
    add(**dict(dw, **ovsf))
    add(**dict(dw, ti=2 * unit))
    add(kind=int(Kind.FC), in_c=cfg.pn + 1, out_c=cfg.pn + 1, groups=cfg.pn + 1, ti=2 * cfg.pn, to=2 * cfg.pm)
    # Decomposed kernels (6, 9, 12 as 3x3 sub-windows): in_c at the most
    # channels times sub-windows the loader counts (in_c + 1 crosses it), and
    # a depthwise one (its packed taps whole words a sub-window).
    for k in isa.DECOMPOSED:
        cin = isa.DECOMPOSED_CHANNELS_MAX // isa.sub_windows(k) ** 2 // cfg.pn * cfg.pn
        add(k=k, pad_t=k - 1, pad_b=k - 1, pad_l=k - 1, pad_r=k - 1, in_c=cin, ti=cfg.pn, out_h=k, out_w=k,
            tr=1, tc=1)
    add(**dict(dw, k=6, pad_t=2, pad_b=3, pad_l=2, pad_r=3))
    # An OVSF layer's generator shift at either end of its range and one past.
    out += [v for v, _ in gen_shift_ends(cfg)]
    return out


def gen_shift_ends(cfg: EngineConfig) -> list:
    """An OVSF conv with gen_shift at lo - 1, lo, hi, hi + 1 of
    isa.gen_shift_range, and the code each must give (the shift check alone)."""
    L = cfg.ovsf_len
    lo, hi = isa.gen_shift_range(cfg)
    base = dict(kind=int(Kind.CONV), k=1, stride=1, in_c=cfg.pn, in_h=1, in_w=1, out_c=cfg.pm, out_h=1,
                out_w=1, tr=1, tc=1, ti=cfg.pn, to=cfg.pm, ovsf=1, log2_l=L.bit_length() - 1, n_codes=1,
                code_mask=1 << (L - 1))
    return [(isa.Descriptor(dict(base, gen_shift=g)).values, code)
            for g, code in ((lo - 1, Err.BAD_SHIFT), (lo, Err.NONE), (hi, Err.NONE), (hi + 1, Err.BAD_SHIFT))]


# ------------------------------------------------------------ mutations

def _derived(v: dict, cfg: EngineConfig) -> dict:
    """Values near the limits a field is checked against."""
    d = isa.Descriptor(dict(v))
    ch = cw = None
    if d.kind == Kind.POOL:
        ch, cw = d.in_h, d.in_w
    elif 1 <= d.stride:
        ch, cw = isa.conv_dims(d)
    extra = {}
    if ch is not None:
        extra["tr"] = [ch - 1, ch, ch + 1, ch - d.pool_s, ch + d.pool_s] if d.pool_s else [ch - 1, ch, ch + 1]
        extra["tc"] = [cw - 1, cw, cw + 1, cw - d.pool_s, cw + d.pool_s] if d.pool_s else [cw - 1, cw, cw + 1]
        extra["out_h"] = [ch, ch + 1, ch // 2]
        extra["out_w"] = [cw, cw + 1, cw // 2]
    ru_i, ru_o = _round_up(d.in_c, cfg.pn), _round_up(d.out_c, cfg.pm)
    extra["ti"] = [ru_i - cfg.pn, ru_i, ru_i + cfg.pn, d.ti + cfg.pn, d.ti - cfg.pn, d.to,
                   cfg.ovsf_len, 3 * cfg.ovsf_len, d.in_c, d.in_c - 1]
    extra["to"] = [ru_o - cfg.pm, ru_o, ru_o + cfg.pm, d.to + cfg.pm, d.to - cfg.pm, d.ti]
    extra["in_c"] = [d.ti, d.ti - 1, d.ti + 1, d.out_c, ru_i - cfg.pn]
    extra["out_c"] = [d.to, d.to - cfg.pm, d.in_c, d.out_c + cfg.pm]
    extra["in_h"] = [d.k - d.pad_t - d.pad_b, d.k - d.pad_t - d.pad_b - 1, 1, d.in_h * 2]
    extra["in_w"] = [d.k - d.pad_l - d.pad_r, d.k - d.pad_l - d.pad_r - 1, 1, d.in_w * 2]
    extra["n_codes"] = [bin(d.code_mask).count("1") + j for j in (-1, 0, 1)] + [cfg.ovsf_len, cfg.ovsf_len + 1]
    # Moving the lowest kept code keeps the count, so only the mask check sees it.
    low = d.code_mask & -d.code_mask
    L = cfg.ovsf_len
    extra["code_mask"] = [d.code_mask | 1 << L, (1 << L) - 1, (1 << L) >> 1, d.code_mask | 1 << (L - 1),
                          d.code_mask ^ low | 1 << L, d.code_mask ^ low | 1 << 31, d.code_mask ^ low | 1 << (L - 1)]
    for name in ("bias_shift", "data_shift", "gen_shift"):
        extra[name] = [isa.SHIFT_MIN - 1, isa.SHIFT_MIN, isa.SHIFT_MAX, isa.SHIFT_MAX + 1]
    for name in ("in_addr", "out_addr", "wgt_addr", "bias_addr"):
        a = getattr(d, name)
        extra[name] = [a + 1, a + cfg.bus_bytes // 2, a + cfg.bus_bytes, a - cfg.bus_bytes, a ^ 0x80000000]
    # Slices: offsets on and off PN, the last that fits and the first that
    # does not; totals around offset + channels.
    for side, c in (("in", d.in_c), ("out", d.out_c)):
        off, total = getattr(d, f"{side}_c_off"), getattr(d, f"{side}_c_total")
        room = max(total, c) - c
        extra[f"{side}_c_off"] = [cfg.pn, cfg.pn - 1, cfg.pn + 1, cfg.pn // 2, off + cfg.pn, off - cfg.pn,
                                  room, room // cfg.pn * cfg.pn, room // cfg.pn * cfg.pn + cfg.pn, room + 1]
        extra[f"{side}_c_total"] = [c, c - 1, c + 1, off + c, off + c - 1, off + c + cfg.pn, 2 * c]
    # groups: depthwise (in_c, out_c), and near it or not dividing
    extra["groups"] = [d.in_c, d.out_c, d.in_c - 1, d.in_c + 1, 2, d.in_c // 2, 65535]
    extra["in_shuffle"] = [2, d.in_c, d.in_c + 1]
    extra["res_shift"] = [isa.SHIFT_MIN - 1, isa.SHIFT_MIN, isa.SHIFT_MAX, isa.SHIFT_MAX + 1, -(cfg.acc_bits + 1)]
    extra["res_addr"] = [d.res_addr + 1, d.res_addr + cfg.bus_bytes // 2, d.res_addr + cfg.bus_bytes]
    if ch is not None:
        # pool windows at the plane's size and past it, and at the average's bound
        extra["pool_kh"] = [ch, ch + 1, 64, 65, 1, 2]
        extra["pool_kw"] = [cw, cw + 1, 64, 65, 1, 2]
    for name in ("pool_pad_b", "pool_pad_l", "pool_pad_r"):
        extra[name] = [max(d.pool_kh, d.pool_k) - 1, max(d.pool_kh, d.pool_k), max(d.pool_kw, d.pool_k)]
    qmax = (1 << (cfg.data_bits - 1)) - 1
    extra["clip_hi"] = [qmax, qmax + 1, 0, 1 << 15, 0xFFFF, 6 << (cfg.data_bits - 4)]
    return extra


def candidates(v: dict, cfg: EngineConfig, rng, n_random: int = 2) -> dict:
    """Per field, values to put in place of v's: every value of a field of up
    to 4 bits; boundaries, neighbours, derived limits and random values of the
    wider ones."""
    extra = _derived(v, cfg)
    out = {}
    for f in FIELDS:
        cur = v.get(f.name, 0)
        if f.bits <= 4:
            vals = set(range(f.lo, f.hi + 1))
        else:
            vals = {f.lo, f.lo + 1, f.hi - 1, f.hi, 0, 1, cur - 1, cur + 1, cur * 2, cur // 2,
                    cur ^ (1 << int(rng.integers(f.bits)))}
            vals |= {int(rng.integers(f.lo, f.hi + 1)) for _ in range(n_random)}
            vals |= set(extra.get(f.name, []))
        out[f.name] = sorted(int(x) for x in vals if x != cur and f.lo <= x <= f.hi)
    return out


def single_mutations(bases: list, cands: list, n: int, rng) -> list:
    """n single-field mutations of the bases, the same number per field (a
    4-bit field and a 32-bit one get the same attention)."""
    per_field = {f.name: [(i, x) for i in range(len(bases)) for x in cands[i][f.name]] for f in FIELDS}
    out = []
    # Smallest pools first: what a 1-bit field cannot use goes to the others.
    names = sorted(per_field, key=lambda name: len(per_field[name]))
    for j, name in enumerate(names):
        pool = per_field[name]
        k = min(len(pool), (n - len(out)) // (len(names) - j))
        for p in sorted(rng.choice(len(pool), k, replace=False)):
            i, x = pool[p]
            out.append({**bases[i], name: x})
    return out


def pair_mutation(v: dict, cands: dict, rng) -> dict:
    """Two fields mutated at once: two checks fail, the order between them shows."""
    a, b = rng.choice(len(FIELDS), 2, replace=False)
    m = dict(v)
    for i in (a, b):
        vals = cands[FIELDS[i].name]
        m[FIELDS[i].name] = vals[int(rng.integers(len(vals)))]
    return m


def code_pairs(bases: list, cands: list, cfg: EngineConfig, rng, n: int, per_kind: int = 6) -> list:
    """Two single mutations of one base that fail different checks, applied
    together, the same number for every pair of codes: whichever check runs
    first must win. The singles of a few bases of each sort are classified
    for this (a few thousand golden calls)."""
    sorts = {}
    for i, v in enumerate(bases):
        d = isa.Descriptor(dict(v))
        sort = (d.kind, d.pool, d.ovsf)
        sorts.setdefault(sort, []).append(i)
    picks = [int(i) for idx in sorts.values() for i in rng.choice(idx, min(per_kind, len(idx)), replace=False)]
    groups = {}
    for i in picks:
        by_code = {}
        for name, vals in cands[i].items():
            for x in vals:
                c = isa.validate({**bases[i], name: x}, cfg)
                if c != Err.NONE:
                    by_code.setdefault(c, []).append((name, x))
        for a in by_code:
            for b in by_code:
                if a < b:
                    for _ in range(2):
                        (f1, x1), (f2, x2) = (by_code[c][int(rng.integers(len(by_code[c])))] for c in (a, b))
                        if f1 != f2:
                            groups.setdefault((a, b), []).append({**bases[i], f1: x1, f2: x2})
    out, keys = [], sorted(groups)
    for lst in groups.values():
        rng.shuffle(lst)
    while len(out) < n and keys:
        keys = [k for k in keys if groups[k]]
        out += [groups[k].pop() for k in keys[:n - len(out)]]
    return out


GEOMETRY = ("in_h", "in_w", "k", "stride", "pad_t", "pad_b", "pad_l", "pad_r", "pool", "pool_k", "pool_s",
            "pool_pad")


def reshape(v: dict, cands: dict, rng) -> dict:
    """One or two geometry fields changed, the output dims (and sometimes the
    tiles) recomputed to match, so the checks after SHAPE_MISMATCH run."""
    m = dict(v)
    for name in rng.choice(GEOMETRY, int(rng.integers(1, 3)), replace=False):
        vals = cands[name]
        m[name] = vals[int(rng.integers(len(vals)))]
    d = isa.Descriptor(dict(m))
    if d.kind == Kind.POOL:
        ch, cw = d.in_h, d.in_w
    elif d.stride >= 1:
        ch, cw = isa.conv_dims(d)
    else:
        return m
    if d.kind == Kind.POOL or (d.kind == Kind.CONV and d.pool):
        if d.pool_s == 0:
            return m
        eh, ew = isa.pool_out(ch, d.pool_k, d.pool_s, d.pool_pad), isa.pool_out(cw, d.pool_k, d.pool_s, d.pool_pad)
    else:
        eh, ew = ch, cw
    if 1 <= min(eh, ew) and max(eh, ew) <= 65535:
        m.update(out_h=eh, out_w=ew)
    if rng.random() < 0.5 and 1 <= min(ch, cw):
        m.update(tr=min(d.tr, ch), tc=min(d.tc, cw))
    return m


def tile_sweep(v: dict, rng) -> dict:
    """Random (tr, tc, ti, to) together: buffer fits near their limits."""
    m = dict(v)
    for name in ("tr", "tc", "ti", "to"):
        cur = max(1, v.get(name, 0))
        m[name] = int(min(65535, rng.integers(0, 2 * cur + 2)))
    return m


def random_desc(rng) -> int:
    """A fully random descriptor, magic and kind right in most."""
    raw = int.from_bytes(rng.bytes(isa.DESC_BYTES), "little")

    def put(name, value):
        f = FIELD[name]
        pos = 32 * f.word + f.lsb
        return raw & ~(((1 << f.bits) - 1) << pos) | value << pos

    if rng.random() < 0.9:
        raw = put("magic", isa.MAGIC)
    if rng.random() < 0.8:
        raw = put("kind", int(rng.integers(1, 4)))
    return raw


def random_fields(rng) -> dict:
    """Random field values, small ones likely, so that deeper checks run."""
    v = {}
    for f in FIELDS:
        r = rng.random()
        if f.name == "magic":
            v[f.name] = isa.MAGIC if r < 0.95 else int(rng.integers(256))
        elif f.name == "kind":
            v[f.name] = int(rng.integers(1, 4)) if r < 0.9 else int(rng.integers(16))
        elif r < 0.6:
            v[f.name] = int(rng.integers(max(f.lo, -2), min(f.hi, 12) + 1))
        else:
            v[f.name] = int(rng.integers(f.lo, f.hi + 1))
    return v


def _raw(values: dict) -> int:
    return int.from_bytes(isa.encode(values), "little")


def _fields_str(raw: int) -> str:
    d = isa.decode(raw.to_bytes(isa.DESC_BYTES, "little"))
    return " ".join(f"{k}={v}" for k, v in d.items())


# ------------------------------------------------------------ the test

#: The check's latency in cycles is bounded by this (a hang fails the test).
MAX_CYCLES = 200
PERIOD_NS = 10


async def check(dut, raw: int) -> tuple:
    """One check of raw: (the error code, or None if err_o is unknown;
    cycles from check_i to done_o). check_i stays high at return."""
    dut.desc_i.value = raw
    dut.check_i.value = 1
    t0 = get_sim_time("ns")
    await with_timeout(RisingEdge(dut.done_o), MAX_CYCLES * PERIOD_NS, "ns")
    await FallingEdge(dut.clk_i)
    cycles = round((get_sim_time("ns") - t0) / PERIOD_NS)
    val = dut.err_o.value
    return (int(val) if val.is_resolvable else None), cycles


async def release(dut):
    """check_i low for one rising edge: the checker returns to idle."""
    dut.check_i.value = 0
    await RisingEdge(dut.clk_i)

@cocotb.test()
async def desc_check_matches_golden(dut):
    cfg = cfg_of(dut)
    mutate = os.environ.get("UZ_MUTATE") == "1"
    budget = int(os.environ.get("UZ_DESC_VECTORS", "20000"))
    rng = np.random.default_rng(int(os.environ.get("UZ_SEED", "1")))

    compiled = compiled_descriptors(cfg)
    assert len(compiled) >= 60, f"only {len(compiled)} compiled descriptors"
    bases = compiled + crafted(cfg) + [random_legal(rng, cfg) for _ in range(120)]
    cands = [candidates(v, cfg, rng) for v in bases]
    # The budget left after the bases, shared out between the families.
    rest = max(0, budget - len(bases))
    share = {"single": 0.45, "code pair": 0.15, "pair": 0.1, "reshape": 0.15, "tile sweep": 0.05,
             "random bits": 0.05, "random fields": 0.05}
    count = {k: int(rest * f) for k, f in share.items()}
    count["single"] += rest - sum(count.values())

    def some_base():
        i = int(rng.integers(len(bases)))
        return bases[i], cands[i]

    vectors = [(v, "compiled") for v in compiled] + [(v, "base") for v in bases[len(compiled):]]
    vectors += [(m, "single") for m in single_mutations(bases, cands, count["single"], rng)]
    pairs = code_pairs(bases, cands, cfg, rng, count["code pair"])
    count["pair"] += count["code pair"] - len(pairs)
    count["code pair"] = len(pairs)
    vectors += [(m, "code pair") for m in pairs]
    vectors += [(pair_mutation(*some_base(), rng), "pair") for _ in range(count["pair"])]
    vectors += [(reshape(*some_base(), rng), "reshape") for _ in range(count["reshape"])]
    vectors += [(tile_sweep(some_base()[0], rng), "tile sweep") for _ in range(count["tile sweep"])]
    vectors += [(random_desc(rng), "random bits") for _ in range(count["random bits"])]
    vectors += [(random_fields(rng), "random fields") for _ in range(count["random fields"])]
    vectors = [(v if isinstance(v, int) else _raw(v), origin) for v, origin in vectors]

    Clock(dut.clk_i, PERIOD_NS, unit="ns").start()
    dut.check_i.value = 0
    dut.desc_i.value = 0
    dut.rst_ni.value = 0
    await ClockCycles(dut.clk_i, 3)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)

    # The generator shift's range: golden must reject past either end, and the RTL with it.
    ends = {_raw(v): code for v, code in gen_shift_ends(cfg)}
    vectors += [(raw, "gen_shift end") for raw in ends]

    errors, hist, latency, abandoned, held = 0, {}, set(), 0, 0
    for n, (raw, origin) in enumerate(vectors):
        if n % 37 == 5:
            # a check abandoned part way (an abort), on another descriptor
            dut.desc_i.value = vectors[int(rng.integers(len(vectors)))][0]
            dut.check_i.value = 1
            await ClockCycles(dut.clk_i, int(rng.integers(1, 60)))
            await release(dut)
            abandoned += 1
        got, cycles = await check(dut, raw)
        latency.add(cycles)
        if n % 53 == 7:
            # done_o and err_o hold while check_i stays high
            await ClockCycles(dut.clk_i, 3, rising=False)
            val = dut.err_o.value
            assert int(dut.done_o.value) == 1 and val.is_resolvable and int(val) == got, \
                f"done_o/err_o did not hold after done: {_fields_str(raw)}"
            held += 1
        await release(dut)
        exp = isa.validate(isa.decode(raw.to_bytes(isa.DESC_BYTES, "little")), cfg)
        if origin == "compiled":
            assert exp == Err.NONE, f"the compiler emitted an illegal descriptor ({exp.name}): {_fields_str(raw)}"
        if origin == "gen_shift end":
            assert exp == ends[raw], f"golden gives {exp.name}, not {ends[raw].name}: {_fields_str(raw)}"
        hist[exp.name] = hist.get(exp.name, 0) + 1
        if mutate and exp == Err.NONE:
            exp = Err.BAD_TILE
        if got != exp:
            errors += 1
            if errors <= 5:
                gname = Err(got).name if got in set(Err) else got
                dut._log.error(f"{origin}: expected {exp.name}, got {gname}: {_fields_str(raw)}")
    dut._log.info(f"{cfg}: {len(vectors)} vectors ({len(compiled)} compiled, {len(bases)} bases, "
                  f"{count}), expected codes {hist}; latency {min(latency)}..{max(latency)} cycles, "
                  f"{abandoned} checks abandoned, {held} held after done")
    missing = [e.name for e in Err if e < Err.AXI_READ and e.name not in hist]
    assert errors == 0, f"{errors} of {len(vectors)} descriptors differ from golden.isa.validate"
    assert not missing, f"no vector expects {missing}"
