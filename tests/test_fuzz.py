"""A short fuzz in the test suite (tb/fuzz.py, FuzzTest): random, mostly
illegal programs with aborts, resets and bus errors end as golden says,
without a hang, a stray write or a wrong result; and the fuzz's own hang
and stray-write detection fires when it must (FuzzCheckerFailsTest)."""
import json

import pytest

from golden import isa
from tb import regressions, simenv


def fuzz(tmp_path, test, sim, count, seed=1, stall="light"):
    [r] = regressions.expand("nightly", sim=sim, test=test, seed=seed)
    summary = tmp_path / "summary.json"
    env = dict(r.sim_env(), UZ_COUNT=str(count), UZ_STALL=stall, UZ_FUZZ_SUMMARY=str(summary))
    simenv.run(r.toplevel, simenv.rtl_sources(*simenv.ENGINE_RTL), r.module, r.parameters, sim=sim,
               testcase=r.testcase, seed=seed, extra_env=env)
    return json.loads(summary.read_text())


def check_clean(s, count):
    assert s["programs"] == count
    assert (s["hangs"], s["stray_writes"], s["mismatches"], s["wrong_status"]) == (0, 0, 0, 0), s["failures"]
    assert s["valid_programs"] > 0 and s["valid_done"] == s["valid_programs"]


def test_fuzz_verilator(tmp_path):
    count = 60
    s = fuzz(tmp_path, "fuzz", "verilator", count, seed=6)
    check_clean(s, count)
    hit = {k for k, v in s["errors_by_kind"].items() if v}
    # the descriptor codes come in turn, yet an abort, reset or bus error can
    # overtake a mutant: seed 6's 60 programs hit every error code the engine
    # has (seed 2 needs 150, at three times the run time; the long fuzz is
    # make fuzz)
    assert hit == {c.name for c in isa.Err if c != isa.Err.NONE}, hit
    assert s["resets"] and s["aborts"] and s["bus_errors_planned"] and s["legal_mutants"]


@pytest.mark.slow   # about 50 s: make test-slow (CI) and the nightly's fuzz run it
def test_fuzz_icarus(tmp_path):
    count = 8
    s = fuzz(tmp_path, "fuzz_icarus", "icarus", count, stall="none")
    check_clean(s, count)
    assert s["errors_by_kind"], "no program of the Icarus fuzz ended in an error"


def test_fuzz_detects_hangs_and_stray_writes(tmp_path):
    # FuzzCheckerFailsTest passes only if both are counted (see tb/tests.py)
    s = fuzz(tmp_path, "FuzzCheckerFailsTest", "verilator", 6)
    assert s["hangs"] > 0 and s["stray_writes"] > 0 and s["programs"] == 6


# ------------------------------------- the recipes of the graph fields
# Pure Python: each recipe of tb/fuzz.targeted for the residual and pool
# fields reaches its error code in the functional model's check
# (engine=False: whatever the RTL runs today), on descriptors the compiler
# made.

def _descs(name):
    import random as _r
    from tb.regressions import CONFIGS
    from tb.sequences import ALL_DIRECTED, make_program
    cfg = CONFIGS["small"]
    _r.seed(2)
    spec, insel, *opts = ALL_DIRECTED[name]
    prog = make_program(dict(spec, name=name, weights={"seed": 1}), cfg, name, insel=insel,
                        **(opts[0] if opts else {})).prog
    return cfg, [isa.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
                 for i in range(len(prog.layers))]


def _recipes(kind, code, want, contains, tries=400):
    """Apply targeted(code) to the compiler's descriptors of ``kind`` until
    a mutant's label contains ``contains``; every such mutant must be
    ``want`` for the functional model's check."""
    import random as _r
    from tb import fuzz as F
    cfg, descs = _descs("resnet_block")
    _, pools = _descs("avg_pools")
    pool_descs = [d for d in pools if d["kind"] == isa.Kind.POOL]
    base = pool_descs if kind == "pool" else [d for d in descs if d["kind"] == isa.Kind.CONV]
    _r.seed(5)
    hits = 0
    for _ in range(tries):
        v = dict(_r.choice(base))
        what = F.targeted(v, code, cfg)
        if contains in what:
            hits += 1
            got = isa.validate(isa.Descriptor(dict(v)), cfg, engine=False)
            assert got == want, f"{what}: {got.name}"
    assert hits, f"no {contains!r} mutant in {tries} tries"


E = isa.Err


@pytest.mark.parametrize("kind, code, want, contains", [
    ("pool", E.SHAPE_MISMATCH, E.SHAPE_MISMATCH, "POOL res=1"),
    ("conv", E.BAD_SHIFT, E.BAD_SHIFT, "res_shift="),
    ("conv", E.BAD_ALIGN, E.BAD_ALIGN, "res_addr="),
    ("conv", E.BAD_POOL, E.BAD_POOL, "fused average"),
    ("pool", E.BAD_POOL, E.BAD_POOL, "pool_asym"),
])
def test_graph_field_recipes_reach_their_code(kind, code, want, contains):
    _recipes(kind, code, want, contains)


def test_average_window_recipe_is_judged_by_golden():
    """A global average of more cells than arith.AVG_N_MAX: whatever
    golden.isa.validate says (BAD_POOL once the check bounds the window;
    the fuzz takes its code from there), never NONE for the engine, and a
    descriptor whose shapes agree (no SHAPE_MISMATCH or ZERO_DIM first)."""
    import random as _r
    from golden import arith
    from tb import fuzz as F
    cfg, descs = _descs("avg_pools")
    _r.seed(1)
    for d in descs:
        v = dict(d)
        what = ""
        while "AVG_N_MAX" not in what:
            v = dict(d)
            what = F._pool_recipe(v, cfg)
        assert v["in_h"] * v["in_w"] > arith.AVG_N_MAX
        code = isa.validate(isa.Descriptor(dict(v)), cfg)
        assert code not in (E.NONE, E.SHAPE_MISMATCH, E.ZERO_DIM), code.name


# ------------------------------------------------ the groups field recipes

@pytest.mark.parametrize("code, contains", [
    (E.UNSUPPORTED, "not depthwise"), (E.UNSUPPORTED, "in_shuffle="),
    (E.SHAPE_MISMATCH, "depthwise groups="), (E.BAD_TILE, "!= to="), (E.TOO_LARGE, "weight tile")])
@pytest.mark.parametrize("cfg_name", ["small", "bits8"])
def test_group_recipes_reach_their_code(code, contains, cfg_name):
    """tb/fuzz._group_recipe on the compiler's descriptors of the depthwise
    and grouped programs (and a pool program): each mutant is the recipe's
    code for the engine; the depthwise TOO_LARGE is the weight tile's alone."""
    import random as _r
    from tb import fuzz as F
    from tb.regressions import CONFIGS
    from tb.sequences import ALL_DIRECTED, make_program
    cfg = CONFIGS[cfg_name]
    descs = []
    for name in ("mobile_shuffle", "dw_block", "avg_pools"):
        _r.seed(2)
        spec, insel, *opts = ALL_DIRECTED[name]
        prog = make_program(dict(spec, name=name, weights={"seed": 1}), cfg, name, insel=insel,
                            **(opts[0] if opts else {})).prog
        descs += [isa.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
                  for i in range(len(prog.layers))]
    _r.seed(5)
    hits = 0
    for _ in range(300):
        v = dict(_r.choice(descs))
        what = F._group_recipe(v, code, cfg)
        if contains not in what:
            continue
        hits += 1
        d = isa.Descriptor(dict(v))
        assert isa.validate(d, cfg) == code, f"{what}: {isa.validate(d, cfg).name}"
        if code == E.TOO_LARGE:
            over = [why for why, need, have in isa.tile_footprint(d, cfg) if need > have]
            assert over == ["weight tile"] and isa.depthwise(d), (what, over)
        if code in (E.BAD_TILE, E.TOO_LARGE):
            assert isa.depthwise(d)
        if code == E.SHAPE_MISMATCH:
            assert isa.depthwise(d) and d.kind != isa.Kind.CONV
    assert hits, f"no {contains!r} mutant"


def test_directed_bases_compile_on_every_pm_configuration():
    """The fuzz and GraphDirectedTest compile the directed programs, forced
    tiles included, on the PM = r PN configurations of the nightly (a forced
    to of 16 once stopped fuzz_pm12_pn4 at compile time)."""
    from tb.regressions import CONFIGS, PM_CONFIGS
    from tb.sequences import ALL_DIRECTED, engine_runs
    for name in PM_CONFIGS:
        for case in ("fire", "relu6", "resnet_block", "standalone_add", "avg_pools", "mobile_shuffle", "dw_block"):
            engine_runs(ALL_DIRECTED[case], CONFIGS[name])
