"""Program fuzzing: random programs, mostly illegal, with aborts, resets and
bus errors at random points, one after the other without a reset between
them.

Each round takes a valid random program (a random layer or a small random
network, the generators of tb/sequences.py), runs it as it is (for its cycle
and beat counts), then runs mutants of it: one layer's descriptor changed by
a random bit flip, a random field value, a boundary value, a recipe aimed at
one error code, or a region moved outside memory. The expected end comes from
golden: ``isa.validate`` gives the error code of the first illegal layer, the
functional model the result of the layers before it (the scoreboards of
tb/env.py check both bit for bit, and that nothing is written outside the
output regions). A mutation that leaves the descriptor legal is kept only if
it cannot move the program's regions (relu, bias, shifts, tiles, ...); the
program must then complete with the golden result of the changed descriptor.

Every program runs under a watchdog: a hang is reported as a HANG of that
program and the engine is reset for the next one.

The random choices come from Python's `random`, which cocotb seeds with the
run's seed: `make sim TEST=fuzz SEED=N` replays run N. The run's statistics
go to a JSON summary (UZ_FUZZ_SUMMARY, else next to UZ_REPORT, else
build/fuzz/summary.json) and a one-screen table in the log.
"""
from __future__ import annotations

import collections
import json
import os
import random
import time
from pathlib import Path

from pyuvm import ConfigDB, uvm_sequence

from golden import arith, compiler, funcmodel, isa, memimage
from golden.randnet import random_network

from .bfm import DONE, ERROR
from .sequences import ALL_DIRECTED, LayerParams, engine_runs, make_program

E = isa.Err
#: Descriptor error codes (the ones validate can give).
DESC_CODES = [c for c in E if E.NONE < c < E.AXI_READ]
#: Fields whose legal change leaves every region where it was: a mutant that
#: stays legal through them must run to the golden result of the change.
SAFE_FIELDS = {"relu", "bias", "insel", "data_shift", "bias_shift", "gen_shift", "tr", "tc", "ti", "to",
               "layer_id", "code_mask", "n_codes", "clip", "clip_hi", "res_shift", "pool_avg", "pool_incl_pad"}
ADDR_FIELDS = ("in_addr", "out_addr", "wgt_addr", "bias_addr", "res_addr")
MAX_MACS = 200_000
MUTATIONS = ("targeted", "targeted", "targeted", "bitflip", "field", "boundary")


def _round_up(v, m):
    return -(-v // m) * m


def _pick(*values):
    return random.choice(values)


# --------------------------------------------------------------- mutations

def bitflip(v: dict) -> str:
    """1-3 random bits of the descriptor's 16 words flipped (unused bits too:
    the engine must ignore them)."""
    raw = bytearray(isa.encode(v))
    bits = random.sample(range(isa.DESC_BYTES * 8), random.randint(1, 3))
    for b in bits:
        raw[b // 8] ^= 1 << (b % 8)
    v.clear()
    v.update(isa.decode(bytes(raw)))
    return "bitflip " + ",".join(f"w{b // 32}b{b % 32}" for b in sorted(bits))


def field_random(v: dict) -> str:
    f = random.choice(isa.FIELDS)
    v[f.name] = random.randint(f.lo, f.hi)
    return f"{f.name}={v[f.name]}"


def field_boundary(v: dict) -> str:
    f = random.choice(isa.FIELDS)
    cur = v[f.name]
    cands = [f.lo, f.hi, 0, 1, f.hi - 1, cur - 1, cur + 1, cur ^ (1 << (f.bits - 1)) if not f.signed else -cur]
    v[f.name] = min(f.hi, max(f.lo, random.choice(cands)))
    return f"{f.name}={v[f.name]} (boundary)"


def targeted(v: dict, code: E, cfg) -> str:
    """A change aimed at ``code`` (validate decides what it really is)."""
    kind = v["kind"]
    conv = kind in (isa.Kind.CONV, isa.Kind.FC)
    if code == E.BAD_MAGIC:
        v["magic"] = random.choice([m for m in range(256) if m != isa.MAGIC])
        return f"magic=0x{v['magic']:02X}"
    if code == E.BAD_KIND:
        v["kind"] = random.choice([0] + list(range(4, 16)))
        return f"kind={v['kind']}"
    if code == E.UNSUPPORTED or (code in (E.SHAPE_MISMATCH, E.BAD_TILE, E.TOO_LARGE) and random.random() < 0.3):
        return _group_recipe(v, code, cfg)
    if code == E.ZERO_DIM:
        f = random.choice(["in_c", "in_h", "in_w", "out_c", "out_h", "out_w"])
        v[f] = 0
        return f"{f}=0"
    if code == E.BAD_KERNEL:
        if not conv:
            v["kind"] = int(isa.Kind.CONV)
        v["k"] = random.choice([0, 2, 4, 6, 8, 9, 10, 12, 13, 14, 15] + ([3, 5] if kind == isa.Kind.FC else []))
        return f"k={v['k']}"
    if code == E.BAD_STRIDE:
        if not conv:
            v["kind"] = int(isa.Kind.CONV)
        v["stride"] = random.choice([0, 5, 6, 7] + ([2, 3, 4] if kind == isa.Kind.FC else []))
        return f"stride={v['stride']}"
    if code == E.BAD_PAD and conv and v["k"] < 16:
        f = random.choice(["pad_t", "pad_b", "pad_l", "pad_r"])
        v[f] = random.randint(v["k"], 15)
        return f"{f}={v[f]}"
    if code == E.KERNEL_TOO_LARGE:
        v.update(kind=int(isa.Kind.CONV), k=11, stride=1, pad_t=0, pad_b=0, pad_l=0, pad_r=0)
        f = random.choice(["in_h", "in_w"])
        v[f] = random.randint(1, 10)
        return f"conv k=11 unpadded, {f}={v[f]}"
    if code == E.BAD_POOL and random.random() < 0.5:
        return _pool_recipe(v, cfg)
    if code == E.BAD_POOL:
        if kind == isa.Kind.FC:
            v["pool"] = 1
            return "FC pool=1"
        if kind == isa.Kind.CONV:
            v["pool"] = 1
        choice = random.choice(["pool_k", "pool_s", "pool_pad"])
        if choice == "pool_k":
            v["pool_k"] = random.choice([0, 1])
        elif choice == "pool_s":
            v["pool_s"] = 0
        else:
            v["pool_k"], v["pool_pad"] = 2, random.choice([2, 3])
        return f"pool, {choice}={v[choice]}"
    if code == E.SHAPE_MISMATCH and kind == isa.Kind.POOL and random.random() < 0.3:
        # a residual add on a POOL layer (only CONV and FC add one)
        v["res"], v["res_addr"] = 1, v["in_addr"]
        return "POOL res=1"
    if code == E.SHAPE_MISMATCH:
        if random.random() < 0.3:
            # a channel slice reaching past the end of its tensor
            side = random.choice(["in", "out"])
            c, total = v[f"{side}_c"], v[f"{side}_c_total"]
            v[f"{side}_c_off"] = min(0xFFFF // cfg.pn * cfg.pn, _round_up(max(total, c) - c + 1, cfg.pn))
            return f"{side}_c_off={v[f'{side}_c_off']} ({side}_c={c}, {side}_c_total={total})"
        if kind == isa.Kind.POOL and random.random() < 0.5:
            v["out_c"] = min(0xFFFF, v["in_c"] + random.randint(1, 8))
            return f"pool out_c={v['out_c']}"
        f = random.choice(["out_h", "out_w"])
        v[f] = min(0xFFFF, v[f] + random.randint(1, 3))
        return f"{f}={v[f]}"
    if code == E.BAD_TILE:
        f = random.choice(["tr", "tc", "ti", "to"])
        v[f] = random.choice([0, v[f] + 1, v[f] + cfg.pm * 4])
        return f"{f}={v[f]}"
    if code == E.BAD_SHIFT and conv and random.random() < 0.25:
        # a residual shift outside [SHIFT_MIN, SHIFT_MAX] (on a layer that
        # adds its input as residual, when it had none)
        if not v["res"]:
            v["res"], v["res_addr"] = 1, v["in_addr"]
        v["res_shift"] = random.choice([isa.SHIFT_MIN - 1, isa.SHIFT_MAX + 1, -128, 127])
        return f"res_shift={v['res_shift']}"
    if code == E.BAD_SHIFT:
        if random.random() < 0.25:
            # a clip bound above the largest data value
            v["clip"], v["clip_hi"] = 1, random.randint(arith.qmax(cfg.data_bits) + 1, 0xFFFF)
            return f"clip_hi={v['clip_hi']}"
        f = random.choice(["bias_shift", "data_shift", "gen_shift"])
        if f == "gen_shift" and v["ovsf"]:
            # an OVSF layer's: just past the generator's range too
            lo, hi = isa.gen_shift_range(cfg)
            v[f] = random.choice([isa.SHIFT_MIN - 1, isa.SHIFT_MAX + 1, lo - 1, hi + 1])
        else:
            v[f] = random.choice([isa.SHIFT_MIN - 1, isa.SHIFT_MAX + 1, -128, 127])
        if kind == isa.Kind.POOL and random.random() < 0.5:
            f, v["data_shift"] = "data_shift", random.choice([-1, 1, 5])
        return f"{f}={v[f]}"
    if code == E.BAD_CODES:
        if kind == isa.Kind.POOL or not v["ovsf"]:
            v["ovsf"] = 1
            return "ovsf=1"
        length = 1 << v["log2_l"]
        choice = random.choice(["n_codes", "code_mask", "log2_l"])
        if choice == "n_codes":
            v["n_codes"] = random.choice([0, v["n_codes"] + 1, min(63, length + 1)])
        elif choice == "code_mask":
            v["code_mask"] |= 1 << random.randint(length, 31)
        else:
            v["log2_l"] = random.choice([x for x in range(8) if x != v["log2_l"]])
        return f"{choice}={v[choice]}"
    if code == E.BAD_ALIGN and conv and random.random() < 0.25:
        # a residual off the bus (res_addr has no channel offset to excuse it)
        if not v["res"]:
            v["res"], v["res_addr"], v["res_shift"] = 1, v["in_addr"], 0
        v["res_addr"] = (v["res_addr"] + random.randint(1, cfg.bus_bytes - 1)) & 0xFFFFFFFF
        return f"res_addr=0x{v['res_addr']:X}"
    if code == E.BAD_ALIGN:
        if cfg.pn > 1 and random.random() < 0.3:
            # a channel slice not starting on a word (inside its tensor)
            side = random.choice(["in", "out"])
            c = v[f"{side}_c"]
            v[f"{side}_c_total"] = min(0xFFFF, max(v[f"{side}_c_total"], c) + cfg.pn)
            v[f"{side}_c_off"] = random.randint(1, cfg.pn - 1)
            return f"{side}_c_off={v[f'{side}_c_off']} (not a multiple of PN={cfg.pn})"
        f = random.choice([a for a in ADDR_FIELDS if a != "res_addr" or v["res"]])   # res_addr only read with res
        v[f] = (v[f] + random.randint(1, cfg.bus_bytes - 1)) & 0xFFFFFFFF
        return f"{f}=0x{v[f]:X}"
    if code == E.TOO_LARGE:
        # every other check passes: only the tile outgrows its buffer
        ih, iw = isa.in_tile_dims(isa.Descriptor(dict(v)))
        ti = _round_up(cfg.in_buf_elems // max(1, ih * iw) + 1, cfg.pn)
        v["in_c"] = v["ti"] = ti
        if kind == isa.Kind.POOL:
            v["out_c"] = v["to"] = ti
        return f"in_c=ti={ti}"
    return field_random(v)


def _group_recipe(v: dict, code: E, cfg) -> str:
    """The groups field (issue 13): a grouped convolution that is not
    depthwise, or a channel shuffle (UNSUPPORTED: the compiler lowers them,
    the engine refuses them); depthwise groups on an FC or POOL
    (SHAPE_MISMATCH); a depthwise layer whose ti is not its to (BAD_TILE);
    a depthwise weight tile beyond the weight buffer, every other check
    passing (TOO_LARGE)."""
    kind = v["kind"]
    if code == E.UNSUPPORTED:
        if random.random() < 0.25:
            v["in_shuffle"] = random.randint(2, isa.FIELD["in_shuffle"].hi)
            return f"in_shuffle={v['in_shuffle']}"
        g = random.choice([2, 3, 4, v["in_c"], v["out_c"], v["in_c"] + 1, isa.FIELD["groups"].hi])
        if g == v["in_c"] == v["out_c"] or g < 2:
            g = v["in_c"] + 1 if v["in_c"] > 1 else 2      # depthwise would be legal: not that
        v["groups"] = g
        return f"groups={g} (in_c={v['in_c']}, out_c={v['out_c']}: not depthwise)"
    if code == E.SHAPE_MISMATCH:
        if kind == isa.Kind.CONV:
            v["kind"] = int(random.choice([isa.Kind.FC, isa.Kind.POOL]))
            if v["kind"] == isa.Kind.FC:
                v.update(k=1, stride=1, pad_t=0, pad_b=0, pad_l=0, pad_r=0, pool=0, in_h=1, in_w=1, out_h=1, out_w=1)
            else:
                v.update(out_h=v["in_h"], out_w=v["in_w"], pool_k=0, pool_kh=1, pool_kw=1, pool_s=1, pool_pad=0,
                         pool_asym=0, pool_avg=0, pool_global=0, data_shift=0, ovsf=0, res=0)
        c = max(2, v["in_c"])
        v.update(in_c=c, out_c=c, groups=c)
        return f"depthwise groups={c} on a {isa.Kind(v['kind']).name}"
    # BAD_TILE, TOO_LARGE: a depthwise CONV first (its input channels its outputs)
    c = max(2, v["in_c"])
    if kind != isa.Kind.CONV:
        return field_random(v)
    v.update(in_c=c, out_c=c, groups=c, in_c_off=0, in_c_total=0, out_c_off=0, out_c_total=0, in_shuffle=0)
    if code == E.BAD_TILE:
        to = min(_round_up(c, cfg.pm), max(cfg.pm, v["to"] // cfg.pm * cfg.pm))
        v["to"] = to
        v["ti"] = random.choice([t for t in (to - cfg.pn, to + cfg.pn, 2 * to) if t > 0 and t != to])
        return f"depthwise c={c} ti={v['ti']} != to={to}"
    # the weight tile alone outgrows its buffer: a K whose packed vector is
    # long against its input window, one output pixel per tile
    for k in (1, 3, 5, 7):
        wvec = _round_up(k * k, cfg.pn)
        to = _round_up(cfg.wgt_buf_elems // wvec + 1, cfg.pm)
        if to * k * k <= cfg.in_buf_elems and to <= cfg.out_buf_elems and to <= 0xFFFF:
            break
    else:
        return field_random(v)
    v.update(k=k, stride=1, pad_t=0, pad_b=0, pad_l=0, pad_r=0, in_h=k + 1, in_w=k + 1, out_h=2, out_w=2,
             pool=0, tr=1, tc=1, in_c=to, out_c=to, groups=to, ti=to, to=to)
    return f"depthwise k={k} to=ti={to}: weight tile {to}x{wvec} beyond {cfg.wgt_buf_elems}"


def _pool_recipe(v: dict, cfg) -> str:
    """BAD_POOL through the average and global pool fields: an average pool
    fused into a convolution, an average window of more than
    arith.AVG_N_MAX cells (the divider's bound), or a pool padding
    not below its window (unequal pads or a window given by pool_kh/kw)."""
    kind = v["kind"]
    choice = random.choice(["fused_avg", "big_avg", "pad"])
    if choice == "fused_avg" and kind == isa.Kind.CONV:
        v["pool"], v["pool_avg"] = 1, 1
        if v["pool_k"] not in (2, 3):
            v["pool_k"], v["pool_s"] = 2, 2
        return "CONV with a fused average pool"
    if choice == "big_avg" or kind != isa.Kind.POOL:
        # a global average of a plane above the bound (the shapes agree)
        side = int(arith.AVG_N_MAX ** 0.5) + 1
        v.update(kind=int(isa.Kind.POOL), pool=0, pool_avg=1, pool_global=1, pool_s=1, in_h=side, in_w=side,
                 out_h=1, out_w=1, out_c=v["in_c"], ti=_round_up(v["in_c"], cfg.pn), to=_round_up(v["in_c"], cfg.pn),
                 tr=side, tc=side, res=0, ovsf=0, data_shift=0, clip=0)
        return f"global average of {side}x{side} cells (above AVG_N_MAX={arith.AVG_N_MAX})"
    if v["pool_global"] or not (v["pool_kh"] or v["pool_k"]):
        v.update(pool_global=0, pool_k=2, pool_s=v["pool_s"] or 1)   # a window for the pads to outgrow
    kh = v["pool_kh"] or v["pool_k"] or 2
    kw = v["pool_kw"] or v["pool_k"] or 2
    side = random.choice(["pool_pad", "pool_pad_b", "pool_pad_l", "pool_pad_r"])
    v["pool_asym"] = 1
    limit = kh if side in ("pool_pad", "pool_pad_b") else kw
    v[side] = min(isa.FIELD[side].hi, limit + random.randint(0, 1))
    return f"pool_asym {side}={v[side]} (window {kh}x{kw})"


# ------------------------------------------------------------ the sequence

def _regions(d) -> dict:
    """The regions one layer's descriptor reads and writes (addr field -> used)."""
    kind = d["kind"]
    used = {"in_addr": True, "out_addr": True, "wgt_addr": kind != isa.Kind.POOL,
            "bias_addr": kind != isa.Kind.POOL and bool(d["bias"]), "res_addr": kind != isa.Kind.POOL and bool(d["res"])}
    return used


def fuzz_watchdog(descs, cfg) -> int:
    """A cycle bound for a program whose tiles may be far smaller than the
    compiler's: every tile pass re-reads its input, weights and bias, counted
    as if nothing overlapped, a few times over."""
    total = 20_000
    for v in descs:
        d = isa.Descriptor(dict(v))
        if isa.validate(d, cfg) != E.NONE:
            break
        ch, cw = (d.in_h, d.in_w) if d.kind == isa.Kind.POOL else isa.conv_dims(d)
        ih, iw = isa.in_tile_dims(d)
        tiles = (-(-ch // d.tr)) * (-(-cw // d.tc)) * (-(-_round_up(d.in_c, cfg.pn) // d.ti)) * \
            (-(-_round_up(d.out_c, cfg.pm) // max(1, d.to)))
        k2 = max(1, d.k) ** 2
        per_tile_elems = d.ti * ih * iw + d.to * d.ti * k2 + 2 * d.to * d.tr * d.tc
        beats = tiles * per_tile_elems * cfg.data_bits // cfg.axi_data_bits
        steps = tiles * d.tr * d.tc * (-(-d.ti // cfg.pn)) * (-(-d.to // cfg.pm) + 1) * k2
        total += 4 * (steps + 8 * beats) + 5_000 * tiles
    return total


class FuzzStats:
    """What the fuzz did and found (the JSON summary)."""

    def __init__(self):
        self.programs = 0
        self.valid_programs = 0          # expected to complete (no error, no disturbance)
        self.valid_done = 0
        self.errors = collections.Counter()          # Err name -> programs that ended with it
        self.expected = collections.Counter()        # expected end -> programs
        self.mutations = collections.Counter()
        self.hangs = 0
        self.stray_writes = 0
        self.mismatches = 0              # valid programs whose results differ from golden
        self.wrong_status = 0            # programs that ended other than expected
        self.resets = 0
        self.aborts = 0
        self.aborts_landed = 0
        self.bus_errors_planned = 0
        self.bus_errors_injected = 0
        self.decode_errors = 0           # accesses beyond memory answered with an error
        self.legal_mutants = 0
        self.rejected_bases = 0          # random bases the compiler refused (drawn again)
        self.failures = []
        self.cycles = 0

    def to_dict(self) -> dict:
        return {"programs": self.programs, "valid_programs": self.valid_programs, "valid_done": self.valid_done,
                "legal_mutants": self.legal_mutants,
                "errors_by_kind": dict(sorted(self.errors.items())),
                "expected_by_kind": dict(sorted(self.expected.items())),
                "mutations": dict(sorted(self.mutations.items())),
                "hangs": self.hangs, "stray_writes": self.stray_writes, "mismatches": self.mismatches,
                "wrong_status": self.wrong_status, "resets": self.resets, "aborts": self.aborts,
                "aborts_landed": self.aborts_landed, "bus_errors_planned": self.bus_errors_planned,
                "bus_errors_injected": self.bus_errors_injected, "decode_errors": self.decode_errors,
                "rejected_bases": self.rejected_bases, "cycles": self.cycles, "failures": self.failures[:50]}


def format_summary(s: dict, title: str = "fuzz") -> str:
    """The one-screen summary of a summary dict (one run or merged)."""
    lines = [f"== {title}: {s['programs']} programs fuzzed, {s['cycles']} cycles ==",
             f"valid programs run   {s['valid_programs']:6d}   completed bit exact {s['valid_done']:6d}"
             f"   (of them legal mutants {s['legal_mutants']})",
             f"hangs                {s['hangs']:6d}   stray writes {s['stray_writes']:6d}"
             f"   mismatches {s['mismatches']:6d}   wrong status {s['wrong_status']:6d}",
             f"resets tried         {s['resets']:6d}   aborts tried {s['aborts']:6d}"
             f"   (landed {s['aborts_landed']})",
             f"bus errors injected  {s['bus_errors_injected']:6d}   (planned {s['bus_errors_planned']},"
             f" out-of-memory accesses {s['decode_errors']})",
             "errors hit by kind:"]
    names = [c.name for c in E if c != E.NONE]
    width = max(len(n) for n in names)
    for n in names:
        lines.append(f"  {n:<{width}} {s['errors_by_kind'].get(n, 0):6d}   expected {s['expected_by_kind'].get(n, 0):6d}")
    missed = [n for n in names if not s["errors_by_kind"].get(n)]
    lines.append("error kinds not hit: " + (", ".join(missed) if missed else "none"))
    for f in s["failures"][:5]:
        lines.append(f"FAIL {f}")
    return "\n".join(lines)


def merge(summaries: list) -> dict:
    """Several runs' summaries as one."""
    out = None
    for s in summaries:
        if out is None:
            out = json.loads(json.dumps(s))
            continue
        for k, v in s.items():
            if isinstance(v, dict):
                for kk, vv in v.items():
                    out[k][kk] = out[k].get(kk, 0) + vv
            elif isinstance(v, list):
                out[k] = (out[k] + v)[:50]
            elif isinstance(v, (int, float)) and k != "seed":
                out[k] = out.get(k, 0) + v
    return out or FuzzStats().to_dict()


class FuzzSeq(uvm_sequence):
    """``count`` programs in rounds of one valid base program and its mutants."""

    def __init__(self, name="fuzz", count=20, env=None, watchdog=None):
        super().__init__(name)
        self.count = count
        self.env = env
        self.watchdog = watchdog       # a fixed cycle bound (the hang check's short one)
        self.stats = FuzzStats()
        self.code_turn = list(DESC_CODES)

    def scoreboards(self):
        e = self.env
        return {"status": e.status_sb, "memory": e.memory_sb, "layer": e.layer_sb, "weights": e.weights_sb,
                "bias": e.bias_sb, "shift": e.shift_sb, "residual": e.res_sb}

    # ------------------------------------------------------- the programs
    def base(self, cfg, i):
        """A valid random program: a random layer (3 of 4) or a small network
        (now and then a graph one: the fire module or ReLU6 of GRAPH_DIRECTED)."""
        if random.random() < 0.75:
            p = LayerParams(cfg)
            # small layers keep a round short (the mutants need variety, not
            # size): at most MAX_MACS multiply-accumulates
            while True:
                p.randomize()
                p.h, p.w = min(p.h, 12), min(p.w, 12)
                p.post_randomize()
                k2 = 1 if p.kind == "pool" else p.k * p.k
                if p.cin * p.cout * k2 * p.h * p.w // (p.stride * p.stride) <= MAX_MACS:
                    break
            spec = p.spec(random.getrandbits(16))
            force_ovsf = p.ovsf_at_1 and p.rho == 1.0 and p.kind != "pool"
            return spec, dict(insel=p.insel, input_scale=p.scale, force_ovsf=force_ovsf), \
                f"round {i}: {p.kind} cin {p.cin} cout {p.cout} k{p.k} s{p.stride} rho {p.rho}"
        if random.random() < 0.3:
            # a graph program: channel slices (a fire module), ReLU6, and the
            # residual and average-pool programs once the RTL runs them
            name = random.choice(self.graph_bases(cfg))
            spec, insel, *opts = ALL_DIRECTED[name]
            return dict(spec, name=name, weights={"seed": random.getrandbits(16)}), \
                dict(insel=insel, **(opts[0] if opts else {})), f"round {i}: {name}"
        seed = random.getrandbits(16)
        spec = random_network(seed, max_layers=3, max_hw=10, max_c=cfg.pn + 3, ovsf_len=cfg.ovsf_len)
        return spec, dict(insel=random.choice(["auto", "on", "off"])), f"round {i}: network {seed}"

    def graph_bases(self, cfg) -> list:
        if not hasattr(self, "_graph_bases"):
            self._graph_bases = ["fire", "relu6"] + [
                n for n in ("resnet_block", "standalone_add", "avg_pools", "mobile_shuffle", "dw_block")
                if engine_runs(ALL_DIRECTED[n], cfg)]
        return self._graph_bases

    def next_code(self) -> E:
        """Error codes in turn (shuffled per turn), so a short run hits all."""
        if not self.code_turn:
            self.code_turn = list(DESC_CODES)
        random.shuffle(self.code_turn)
        return self.code_turn.pop()

    def mutate(self, item, cfg):
        """Change one layer's descriptor in the image; set what golden expects.
        Returns a label, or None when no usable mutant came out."""
        prog = item.prog
        n = len(prog.layers)
        if random.random() < 0.05:
            # LAYER_COUNT beyond the program: the engine fetches what follows
            # the descriptors (inside the image, so golden knows it)
            extra = random.randint(1, 2)
            addr = prog.desc_addr + (n + extra - 1) * isa.DESC_BYTES
            if addr + isa.DESC_BYTES <= len(prog.image.data):
                for j in range(n, n + extra):
                    d = isa.Descriptor.decode(prog.image.read(prog.desc_addr + j * isa.DESC_BYTES, isa.DESC_BYTES))
                    code = isa.validate(d, cfg)
                    if code != E.NONE:
                        item.layer_count = n + extra
                        item.expect_err, item.expect_err_layer = int(code), j
                        return f"layer_count {n + extra} of {n}"
                    break
        j = random.randrange(n)
        addr = prog.desc_addr + j * isa.DESC_BYTES
        orig = isa.decode(prog.image.read(addr, isa.DESC_BYTES))
        if random.random() < 0.08:
            # a region outside memory: the bus answers with an error
            used = _regions(orig)
            f = random.choice([k for k in ADDR_FIELDS if used[k]])
            v = dict(orig)
            v[f] = random.randrange(self.mem_size, 1 << 31, cfg.bus_bytes)
            if isa.validate(isa.Descriptor(dict(v)), cfg) != E.NONE:
                return None
            prog.image.write(addr, isa.encode(v))
            item.golden_layers = j
            item.expect_err = int(E.AXI_WRITE if f == "out_addr" else E.AXI_READ)
            item.expect_err_layer = j
            return f"layer {j} {f}=0x{v[f]:X} (outside memory)"
        for _ in range(20):
            v = dict(orig)
            op = random.choice(MUTATIONS)
            if op == "targeted":
                what = targeted(v, self.next_code(), cfg)
            elif op == "bitflip":
                what = bitflip(v)
            elif op == "field":
                what = field_random(v)
            else:
                what = field_boundary(v)
            try:
                code = isa.validate(isa.Descriptor(dict(v)), cfg)
            except Exception as e:  # golden must judge every bit pattern
                self.stats.failures.append(f"golden validate raised {type(e).__name__}: {e} on {v}")
                continue
            changed = {k for k in v if v[k] != orig[k]}
            if code == E.NONE and not changed <= SAFE_FIELDS:
                continue           # a legal move of a region: not a defined outcome
            if code == E.NONE and not self.golden_runs(item, j, v, cfg):
                continue
            prog.image.write(addr, isa.encode(v))
            self.stats.mutations[op] += 1
            if code == E.NONE:
                self.stats.legal_mutants += 1
            else:
                item.expect_err, item.expect_err_layer = int(code), j
            return f"layer {j} {op} {what}"
        return None

    @staticmethod
    def golden_runs(item, j, v, cfg) -> bool:
        """The functional model runs the program with layer j changed (a
        legal change of tiles re-reads the weights in another layout, which
        must stay inside the image), and no accumulator leaves its width:
        the compiler proves that for the programs it makes
        (docs/arithmetic.md), a changed bias or generator shift can break it,
        and then the engine's result is not defined."""
        prog = item.prog
        img = memimage.MemoryImage()
        img.data = bytearray(prog.image.data)
        img.write(prog.desc_addr + j * isa.DESC_BYTES, isa.encode(v))
        try:
            for i in range(len(prog.layers)):
                d = isa.Descriptor.decode(img.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
                t = funcmodel.execute_descriptor(img, d, cfg)
                if t.acc.size and (t.acc.min() < arith.qmin(cfg.acc_bits) or t.acc.max() > arith.qmax(cfg.acc_bits)):
                    return False
        except Exception:
            return False
        return len(img.data) == len(prog.image.data)

    def disturb(self, item, base_cycles, base_beats, cfg):
        """Now and then an abort, a reset or a bus error at a random point."""
        r = random.random()
        end = max(1, base_cycles)
        if r < 0.15:
            item.abort_after = random.choice([random.randrange(0, 60), random.randrange(0, end + 20)])
            return f"abort at {item.abort_after}"
        if r < 0.25:
            item.reset_after = random.choice([random.randrange(0, 60), random.randrange(0, end + 20)])
            return f"reset at {item.reset_after}"
        if r < 0.40:
            kind = random.choice(["read", "write"])
            nth = random.randrange(1, max(1, base_beats[kind]) + 1)
            if kind == "read" and random.random() < 0.25:
                nth = random.randrange(1, 5)          # the descriptor fetch
            item.fault = (kind, nth)
            return f"SLVERR on {kind} beat {nth}"
        return ""

    async def run_item(self, item, valid_expected):
        sbs = self.scoreboards()
        before = {k: len(sb.mismatches) for k, sb in sbs.items()}
        await self.start_item(item)
        await self.finish_item(item)
        delta = {k: len(sb.mismatches) - before[k] for k, sb in sbs.items()}
        st = self.stats
        st.programs += 1
        status, err, layer, cycles = item.result
        st.cycles += cycles
        if item.reset_after is not None:
            st.resets += 1
        if item.abort_after is not None:
            st.aborts += 1
        if item.fault is not None:
            st.bus_errors_planned += 1
            if item.fault_plan is not None and item.fault_plan.fired_layer >= 0:
                st.bus_errors_injected += 1
        exp = E(item.expect_err).name if item.expect_err else "NONE"
        st.expected[exp] += 1
        if item.hung:
            st.hangs += 1
        elif item.reset_after is None and status & ERROR:
            name = E(err).name if err in tuple(E) else str(err)
            st.errors[name] += 1
            if item.abort_after is not None and err == E.ABORTED:
                st.aborts_landed += 1
        if valid_expected:
            st.valid_programs += 1
            if status & DONE and not status & ERROR and not item.hung:
                st.valid_done += 1
        if delta["memory"]:
            st.stray_writes += 1
        data_bad = sum(delta[k] for k in ("layer", "weights", "bias", "shift", "residual"))
        if data_bad and valid_expected:
            st.mismatches += 1
        if delta["status"] and not item.hung:
            st.wrong_status += 1
        bad = [k for k, v in delta.items() if v]
        if bad or item.hung:
            first = next((sbs[k].mismatches[-delta[k]] for k in bad), "hang")
            st.failures.append(f"program {st.programs - 1} ({item.label}): {', '.join(bad) or 'hang'}: {first}")

    async def body(self):
        cfg = ConfigDB().get(None, "", "CFG")
        bfm = ConfigDB().get(None, "", "BFM")
        self.mem_size = bfm.ram.size
        try:
            default_stall = ConfigDB().get(None, "", "STALL")
        except Exception:
            default_stall = "none"
        rnd = 0
        while self.stats.programs < self.count:
            spec, kw, label = self.base(cfg, rnd)
            rnd += 1
            # the run's stall pattern, or now and then another one for a round
            stall = random.choice([default_stall, default_stall, "none", "light", "heavy"])
            label += f" stall {stall}"
            try:
                make = lambda lab: make_program(spec, cfg, lab, stall=stall, **kw)  # noqa: E731
                whole = make(label + " (as compiled)")
            except Exception:  # the compiler rejects some random shapes: draw again
                self.stats.rejected_bases += 1
                continue
            whole.watchdog = self.watchdog
            reads0, writes0 = bfm.beats["read"], bfm.beats["write"]
            await self.run_item(whole, True)
            base_cycles = whole.result[3]
            base_beats = {"read": bfm.beats["read"] - reads0, "write": bfm.beats["write"] - writes0}
            for m in range(random.randint(2, 6)):
                if self.stats.programs >= self.count:
                    break
                item = make(f"{label} mutant {m}")
                what = self.mutate(item, cfg) if random.random() < 0.9 else "unchanged"
                if what is None:
                    continue
                item.label += f": {what}"
                oob = item.golden_layers is not None
                dist = "" if oob else self.disturb(item, base_cycles, base_beats, cfg)
                if dist:
                    item.label += f", {dist}"
                item.watchdog = self.watchdog
                if item.watchdog is None:
                    descs = [isa.decode(item.prog.image.read(item.prog.desc_addr + i * isa.DESC_BYTES,
                                                             isa.DESC_BYTES)) for i in range(len(item.prog.layers))]
                    item.watchdog = fuzz_watchdog(descs, cfg)
                valid = not item.expect_err and not item.disturbed
                await self.run_item(item, valid)
        return self.stats


def summary_path() -> Path:
    if os.environ.get("UZ_FUZZ_SUMMARY"):
        return Path(os.environ["UZ_FUZZ_SUMMARY"])
    if os.environ.get("UZ_REPORT"):
        return Path(os.environ["UZ_REPORT"]).with_name("fuzz_summary.json")
    return Path(__file__).resolve().parent.parent / "build" / "fuzz" / "summary.json"


def write_summary(stats: FuzzStats, extra: dict) -> Path:
    path = summary_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(extra, **stats.to_dict())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    return path
