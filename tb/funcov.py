"""Functional coverage of the engine, per layer (cocotb-coverage covergroups).

The testbench calls ``sample_layer(desc_fields, stats)`` once per layer it
runs, and ``export()`` at the end of a run; the export lands in the run
folder (the simulator's working directory), where ``scripts/coverage.py``
finds and merges every run's file.

``desc_fields`` holds the layer's descriptor fields by their golden.isa
names (a ``golden.isa.Descriptor`` or its ``values`` dict, e.g. from
``golden.isa.decode``). ``stats`` holds what only the run can tell:

- ``saturated`` (bool): some output of the layer was clipped by the data
  shift's saturation (the testbench knows it from the golden model);
- ``stall`` (str): the memory stall pattern the run applied, one of
  ``STALL_PATTERNS``;
- ``clip_binding`` (bool): some output of a clipping layer (ReLU6) lay
  above ``clip_hi`` after the data shift, so the clip changed it;
- ``out_gap`` (bool): the layer's pad channels (out_c not a multiple of
  PN) lie inside its output tensor, before another part: a concat's gap;
- ``lowered_group`` (bool): the layer is (a band of) a grouped
  convolution the compiler lowered to dense layers (golden/passes/groups.py:
  its descriptor is dense, so only the program can tell);
- ``res_saturated`` (bool): the residual add of a layer with res=1
  saturated somewhere (the sum of the two operands left the accumulator's
  range);
- ``write_back`` (str, optional): "rows" where the write-back sends each
  row as the compute finishes it, "tile" where it waits for the whole
  output tile (golden.perf.rows_write_back; it needs PM and PN);
- ``pad_group`` (bool, optional): some column tile's rows end in a column
  group of right padding only, which the fetcher folds into the group
  before it (golden.perf.layer_padding_group; it needs in_reads);
- ``partial_rows``, ``partial_cols``, ``partial_in``, ``partial_out``
  (bool, optional): whether the layer's last tile is partial. The channel
  flags need PN and PM, which a descriptor does not hold: without them the
  in/out flags fall back to ``in_c % ti`` and ``out_c % to`` (a channel
  group padded to PN then counts as partial too).

A missing key in ``stats`` leaves that coverpoint unsampled: no data is
better than invented data.

Coverage model (group ``uz.layer``):

- ``kind``, ``k``, ``stride``, ``pad`` and their cross ``kind_k_stride_pad``.
  POOL layers sample their pool window (``pool_k``, ``pool_s``,
  ``pool_pad``), since a POOL descriptor leaves k/stride/pads unused; the
  cross leaves out combinations ``golden.isa.check`` rejects.
- ``partial_rows``, ``partial_cols``, ``partial_in_ch``, ``partial_out_ch``:
  the layer's last tile in that dimension is partial (the size is not a
  multiple of the tile).
- ``bias_shift``, ``data_shift``, ``gen_shift``: sign (neg/zero/pos). Each is
  sampled only where the engine uses it: bias with bias=1, data shift off
  POOL, generator shift on OVSF layers.
- ``saturation``, ``insel`` (CONV and FC), ``stall``.
- ``weights`` (raw/ovsf, CONV and FC) and ``rho`` (OVSF layers only: rho is
  n_codes/L, bins 1 .. 1/16; an engine with L = 8 can never reach 1/16).
- ``fused_pool`` (CONV): a max pool fused after the data shift.
- ``clip`` (CONV and FC): off, on (no value reached the bound) or binding
  (stats ``clip_binding``; a clipping layer without it is not sampled);
  crossed with the kind (``clip_kind``; POOL never clips on this engine).
- ``in_slice`` and ``out_slice``: the layer reads / writes its whole tensor,
  a slice at channel 0 of a larger tensor (offset0) or a slice at a channel
  offset (offset); ``in_slice_kind`` crosses the input slice with the kind
  and ``out_slice_kind_k`` the output slice with the kind and K (pool
  window for POOL). Ignored bins: illegal shapes, and slices the random
  graphs do not make (FC in a slice, a POOL slice with a 2x2 window, a
  CONV slice of K 7 or 11: legal, never generated).
- ``out_gap`` (stats ``out_gap``): the layer writes a gap of a concat.
- ``res`` (CONV and FC): off / on (a residual added to the accumulator);
  ``res_shift`` (residual layers): left (negative), zero, right (positive);
  ``res_sat`` (residual layers, stats ``res_saturated``): the add saturated;
  crosses ``res_k`` (res x K; a residual on K 7 or 11 is legal and never
  generated) and ``res_kind``.
- ``group`` (CONV): dense, depthwise (groups = in_c = out_c, which the
  RTL runs with per-PE operand selection) or lowered (a grouped
  convolution the compiler lowered to dense layers; stats
  ``lowered_group``, without which a dense CONV is not sampled); crossed
  with K, stride and input selection (``group_k_stride_insel``) and with
  the weights, raw or OVSF (``group_weights``). The first cross leaves out
  dense layers (kind_k_stride_pad and insel cover them), K 2 (a pool
  window) and what is legal but never generated: depthwise K 11, lowered
  K 7/11 or stride 3/4.
- Pools (POOL layers that pool, not the one-cell copy): ``pool_op`` max,
  avg, global_avg, global_max; ``pool_pads`` none, equal, unequal (not for
  global pools); ``pool_nonsquare`` (the window's height and width differ:
  a global pool of a non-square plane, or pool_kh != pool_kw);
  ``pool_incl_pad`` (average pools with padding: the padded cells count in
  the divisor or not); crosses ``pool_op_pads`` and ``pool_op_nonsquare``
  (a non-square max window is legal and never generated: the network format
  has square windows and no global max).
- ``write_back`` (stats ``write_back``): the write-back took the layer's
  output tiles row by row behind the compute, or whole; ``whole_rows``: the
  layer's tiles hold whole output rows (the write-back's one command a
  channel group) or not; ``pad_group`` (stats ``pad_group``): the fetcher
  folded a column group of right padding only into the one before it.
"""
from __future__ import annotations

import itertools
import os
from fractions import Fraction
from pathlib import Path

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db, coverage_section

from golden import isa

#: File name of a run's export, looked for in every run folder.
EXPORT_NAME = "funcov.xml"
GROUP = "uz.layer"
STALL_PATTERNS = ("none", "light", "heavy")
KINDS = ("CONV", "FC", "POOL")
K_BINS = (1, 2, 3, 5, 7, 11)        # 2 only from a pool window
STRIDE_BINS = (1, 2, 3, 4)
PAD_BINS = ("zero", "nonzero")
SIGN_BINS = ("neg", "zero", "pos")
RHO_BINS = ("1", "1/2", "1/4", "1/8", "1/16")
BOOL_BINS = (False, True)
CLIP_BINS = ("off", "on", "binding")
SLICE_BINS = ("whole", "offset0", "offset")
RES_BINS = ("off", "on")
RES_SHIFT_BINS = ("left", "zero", "right")
POOL_OP_BINS = ("max", "avg", "global_avg", "global_max")
POOL_PAD_BINS = ("none", "equal", "unequal")
GROUP_BINS = ("dense", "depthwise", "lowered")
INSEL_BINS = ("off", "on")
# A decomposed kernel's 3x3 sub-windows per side (k 6, 9): a 12x12 (4 a side)
# needs 144 weight words a group, more than any regression configuration's
# 128 (tests/test_rtl_engine.py runs one on ecp5)
SUB_WINDOW_BINS = (2, 3)
#: How the write-back takes an output tile from the compute: row by row as
#: the compute finishes them (golden.perf.rows_write_back), or once whole.
WRITE_BACK_BINS = ("rows", "tile")


def _illegal_shapes():
    """(kind, k, stride, pad) tuples golden.isa.check rejects: not coverage holes."""
    out = []
    for k, s, p in itertools.product(K_BINS, STRIDE_BINS, PAD_BINS):
        if (k, s, p) != (1, 1, "zero"):
            out.append(("FC", k, s, p))              # FC is k=1, stride 1, unpadded
        if k not in (2, 3) or s == 4:
            out.append(("POOL", k, s, p))            # pool window 2|3, stride 1..3
        if k == 2 or (k == 1 and p == "nonzero"):
            out.append(("CONV", k, s, p))            # kernels 1,3,5,7,11; pad < k
    return out


def _not_generated_slices():
    """(slice, kind, k) of out_slice_kind_k that are illegal shapes, or legal
    slices no test generates (FC in a slice, a 2x2 POOL in a slice, K 7/11)."""
    illegal = {(kind, k) for kind, k, _, _ in _illegal_shapes()
               if all((kind, k, s, p) in _illegal_shapes() for s in STRIDE_BINS for p in PAD_BINS)}
    out = []
    for sl, kind, k in itertools.product(SLICE_BINS, KINDS, K_BINS):
        if (kind, k) in illegal:
            out.append((sl, kind, k))
        elif sl != "whole" and (kind == "FC" or (kind, k) in (("POOL", 2), ("CONV", 7), ("CONV", 11))):
            out.append((sl, kind, k))
    return out


def _not_generated_groups():
    """(group, k, stride, insel) of group_k_stride_insel outside the model:
    dense layers (other crosses cover them), the pool window K 2, and legal
    shapes no test generates (depthwise K 11; lowered K 7/11, stride 3/4)."""
    out = []
    for g, k, s, i in itertools.product(GROUP_BINS, K_BINS, STRIDE_BINS, INSEL_BINS):
        if (g == "dense" or k == 2 or (g == "depthwise" and k == 11)
                or (g == "lowered" and (k in (7, 11) or s > 2))):
            out.append((g, k, s, i))
    return out


def _slice(off, c, total):
    if off:
        return "offset"
    return "offset0" if total > c else "whole"


def _sign(v):
    return None if v is None else SIGN_BINS[(v > 0) - (v < 0) + 1]


def _flag(stats, key, size, tile):
    if key in stats:
        return None if stats[key] is None else bool(stats[key])
    return bool(size % tile) if tile else None


def _point(name, bins, **kw):
    return CoverPoint(f"{GROUP}.{name}", xf=lambda s, _n=name: s.get(_n), bins=list(bins), **kw)


# The cross reads the hits its points made in the same call, so the points
# come first (coverage_section applies its items in order).
_coverage = coverage_section(
    _point("kind", KINDS),
    _point("k", K_BINS),
    _point("stride", STRIDE_BINS),
    _point("pad", PAD_BINS),
    CoverCross(f"{GROUP}.kind_k_stride_pad", items=[f"{GROUP}.{n}" for n in ("kind", "k", "stride", "pad")],
               ign_bins=_illegal_shapes()),
    _point("partial_rows", BOOL_BINS),
    _point("partial_cols", BOOL_BINS),
    _point("partial_in_ch", BOOL_BINS),
    _point("partial_out_ch", BOOL_BINS),
    _point("bias_shift", SIGN_BINS),
    _point("data_shift", SIGN_BINS),
    _point("gen_shift", SIGN_BINS),
    _point("saturation", BOOL_BINS),
    _point("rho", RHO_BINS),
    _point("weights", ("raw", "ovsf")),
    _point("insel", INSEL_BINS),
    _point("stall", STALL_PATTERNS),
    _point("fused_pool", BOOL_BINS),
    _point("clip", CLIP_BINS),
    _point("in_slice", SLICE_BINS),
    _point("out_slice", SLICE_BINS),
    _point("out_gap", BOOL_BINS),
    CoverCross(f"{GROUP}.clip_kind", items=[f"{GROUP}.clip", f"{GROUP}.kind"],
               ign_bins=[(c, "POOL") for c in CLIP_BINS]),
    CoverCross(f"{GROUP}.in_slice_kind", items=[f"{GROUP}.in_slice", f"{GROUP}.kind"],
               ign_bins=[("offset0", "FC"), ("offset", "FC")]),
    CoverCross(f"{GROUP}.out_slice_kind_k", items=[f"{GROUP}.{n}" for n in ("out_slice", "kind", "k")],
               ign_bins=_not_generated_slices()),
    _point("res", RES_BINS),
    _point("res_shift", RES_SHIFT_BINS),
    _point("res_sat", BOOL_BINS),
    CoverCross(f"{GROUP}.res_k", items=[f"{GROUP}.res", f"{GROUP}.k"],
               ign_bins=[(r, 2) for r in RES_BINS] + [("on", 7), ("on", 11)]),
    CoverCross(f"{GROUP}.res_kind", items=[f"{GROUP}.res", f"{GROUP}.kind"],
               ign_bins=[(r, "POOL") for r in RES_BINS]),
    _point("pool_op", POOL_OP_BINS),
    _point("pool_pads", POOL_PAD_BINS),
    _point("pool_nonsquare", BOOL_BINS),
    _point("pool_incl_pad", BOOL_BINS),
    CoverCross(f"{GROUP}.pool_op_pads", items=[f"{GROUP}.pool_op", f"{GROUP}.pool_pads"],
               ign_bins=[(g, p) for g in ("global_avg", "global_max") for p in POOL_PAD_BINS]),
    CoverCross(f"{GROUP}.pool_op_nonsquare", items=[f"{GROUP}.pool_op", f"{GROUP}.pool_nonsquare"],
               ign_bins=[("max", True)]),
    _point("group", GROUP_BINS),
    CoverCross(f"{GROUP}.group_k_stride_insel", items=[f"{GROUP}.{n}" for n in ("group", "k", "stride", "insel")],
               ign_bins=_not_generated_groups()),
    CoverCross(f"{GROUP}.group_weights", items=[f"{GROUP}.group", f"{GROUP}.weights"]),
    _point("sub_windows", SUB_WINDOW_BINS),
    _point("write_back", WRITE_BACK_BINS),
    _point("whole_rows", BOOL_BINS),
    _point("pad_group", BOOL_BINS),
)


_NAMES = ("kind", "k", "stride", "pad", "partial_rows", "partial_cols", "partial_in_ch", "partial_out_ch",
          "bias_shift", "data_shift", "gen_shift", "saturation", "rho", "weights", "insel", "stall", "fused_pool",
          "clip", "in_slice", "out_slice", "out_gap", "res", "res_shift", "res_sat", "pool_op", "pool_pads",
          "pool_nonsquare", "pool_incl_pad", "group", "sub_windows", "write_back", "whole_rows",
          "pad_group")


@_coverage
def _sample(s: dict):
    """The values of one layer, by coverpoint name (None: not sampled)."""


def layer_values(desc_fields, stats: dict | None = None) -> dict:
    """What one layer contributes to each coverpoint (None leaves it unsampled)."""
    d = desc_fields if isinstance(desc_fields, isa.Descriptor) else isa.Descriptor(dict(desc_fields))
    stats = dict(stats or {})
    if d.kind not in tuple(isa.Kind):
        # A corrupted descriptor stops the engine before the layer runs:
        # nothing of it is covered.
        return dict.fromkeys(_NAMES)
    kind = isa.Kind(d.kind).name
    pool = kind == "POOL"
    if pool:
        k, stride, pad = d.pool_k, d.pool_s, d.pool_pad
        rows, cols = d.in_h, d.in_w
    else:
        k, stride = d.k, d.stride
        pad = d.pad_t or d.pad_b or d.pad_l or d.pad_r
        rows, cols = isa.conv_dims(d)
    stall = stats.get("stall")
    if stall is not None and stall not in STALL_PATTERNS:
        raise ValueError(f"stall pattern {stall!r}: expected one of {STALL_PATTERNS}")
    sat = stats.get("saturated")
    clip = None
    if not pool:
        if not d.clip:
            clip = "off"
        elif stats.get("clip_binding") is not None:
            clip = "binding" if stats["clip_binding"] else "on"
    gap = stats.get("out_gap")
    rho = None
    if d.ovsf and not pool:
        rho = str(Fraction(d.n_codes, 1 << d.log2_l))
    res = None if pool else ("on" if d.res else "off")
    res_sat = stats.get("res_saturated") if d.res and not pool else None
    # a POOL that pools (the one-cell copy does not); fused pools are 2x2/3x3 max
    pool_op = pool_pads = nonsquare = incl_pad = None
    if pool and not isa.identity_pool(d):
        kh, kw, _, pads = isa.pool_window(d, d.in_h, d.in_w)
        pool_op = ("global_" if d.pool_global else "") + ("avg" if d.pool_avg else "max")
        nonsquare = kh != kw
        if not d.pool_global:
            pool_pads = "none" if not any(pads) else ("equal" if len(set(pads)) == 1 else "unequal")
            if d.pool_avg and any(pads):
                incl_pad = bool(d.pool_incl_pad)
    group = None
    if kind == "CONV":
        if isa.depthwise(d):
            group = "depthwise"
        elif stats.get("lowered_group") is not None:
            group = "lowered" if stats["lowered_group"] else "dense"
    if pool and pool_op != "max":
        # the legacy k (pool_k) means nothing for a global or large window
        k = k if d.pool_k and not (d.pool_kh or d.pool_kw or d.pool_global) else None
    return {
        "kind": kind, "k": k, "stride": stride, "pad": "nonzero" if pad else "zero",
        # A zero tile is an illegal descriptor: the layer never ran its tiles.
        "partial_rows": _flag(stats, "partial_rows", rows, d.tr),
        "partial_cols": _flag(stats, "partial_cols", cols, d.tc),
        "partial_in_ch": _flag(stats, "partial_in", d.in_c, d.ti),
        "partial_out_ch": _flag(stats, "partial_out", d.out_c, d.to),
        "bias_shift": _sign(d.bias_shift) if d.bias and not pool else None,
        "data_shift": _sign(d.data_shift) if not pool else None,
        "gen_shift": _sign(d.gen_shift) if d.ovsf and not pool else None,
        "saturation": None if sat is None else bool(sat),
        "rho": rho,
        "weights": None if pool else ("ovsf" if d.ovsf else "raw"),
        "insel": None if pool else ("on" if d.insel else "off"),
        "stall": stall,
        "fused_pool": bool(d.pool) if kind == "CONV" else None,
        "clip": clip,
        "in_slice": _slice(d.in_c_off, d.in_c, d.in_c_total),
        "out_slice": _slice(d.out_c_off, d.out_c, d.out_c_total),
        "out_gap": None if gap is None else bool(gap),
        "res": res,
        "res_shift": RES_SHIFT_BINS[(d.res_shift > 0) - (d.res_shift < 0) + 1] if d.res and not pool else None,
        "res_sat": None if res_sat is None else bool(res_sat),
        "pool_op": pool_op,
        "pool_pads": pool_pads,
        "pool_nonsquare": nonsquare,
        "pool_incl_pad": incl_pad,
        "group": group,
        # sampled from the descriptor the engine ran: a kernel the compiler
        # decomposed (golden.isa.DECOMPOSED)
        "sub_windows": isa.sub_windows(d.k) if kind == "CONV" and d.k in isa.DECOMPOSED else None,
        "write_back": stats.get("write_back"),
        # the tile holds whole output rows: one write command a channel group
        "whole_rows": d.tc >= cols if d.tc else None,
        "pad_group": stats.get("pad_group"),
    }


def sample_layer(desc_fields, stats: dict | None = None) -> dict:
    """Sample one layer the engine ran; returns the values sampled."""
    values = layer_values(desc_fields, stats)
    _sample(values)
    return values


def export(path=None) -> Path:
    """Write the coverage database (cocotb-coverage XML) of this process.

    By default into the working directory, which under the simulator is the
    run folder; UZ_FUNCOV overrides the file."""
    path = Path(path or os.environ.get("UZ_FUNCOV") or EXPORT_NAME).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    coverage_db.export_to_xml(filename=str(path))
    return path


def item_names() -> list[str]:
    """Every coverpoint and cross of the model."""
    return [n for n in coverage_db if n.startswith(GROUP + ".")]
