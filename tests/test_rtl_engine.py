"""Engine smoke tests: small networks end to end through uz_top under both
simulators, bit exact against the golden model on the compiler's image."""
import json
import os

import pytest

from tb import simenv
import engine_cases



def run_case(case, sim, cfg=engine_cases.SMALL, insel="auto", mutate=False, corrupt=None):
    report = simenv.BUILD / f"engine-{case}-{sim}-insel_{insel}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    env = {"UZ_CONFIG": json.dumps(cfg.to_dict()), "UZ_CASE": case, "UZ_REPORT": str(report),
           "UZ_INSEL": insel}
    if mutate:
        env["UZ_MUTATE"] = "1"
    if corrupt:
        env["UZ_CORRUPT"] = corrupt
    simenv.run("uz_top", simenv.rtl_sources(*simenv.ENGINE_RTL), "cocotb_engine",
               engine_cases.rtl_parameters(cfg), sim=sim, extra_env=env)
    return json.loads(report.read_text()) if report.exists() and not corrupt else None


#: The longest cases under Icarus (over 40 s each) run here under Verilator
#: only; the nightly regression (tb/regressions.py) runs every engine case
#: under both simulators on small and bits8, these included.
ICARUS_NIGHTLY_ONLY = {"res_block", "ovsf_rho"}


#: The next longest under Icarus (40 to 140 s each since the loader's alpha
#: queue became fixed slices, which Icarus re-evaluates every beat) run in
#: make test-slow, which CI runs after make test, and in the nightly.
# (make test's ten minutes: these run under Icarus in make test-slow, which
# CI runs too, and under Verilator in make test)
ICARUS_SLOW = {"dw_block", "avg_pools", "fire", "relu6", "two_layer_pool", "big_kernels", "copy_clip", "concat_gap",
               "conv_ovsf_groups"}


@pytest.mark.parametrize("case, sim", [pytest.param(c, s, marks=[pytest.mark.slow] if (s == "icarus" and c in ICARUS_SLOW)
                                                    else [])
                                       for c in engine_cases.SMOKE for s in simenv.SIMULATORS
                                       if not (s == "icarus" and c in ICARUS_NIGHTLY_ONLY)])
def test_engine(case, sim):
    run_case(case, sim)


def test_icarus_nightly_only_cases_run_in_the_nightly():
    """The cases left to the nightly under Icarus are in it, on both simulators."""
    from tb import regressions
    runs = {(e.name or "", sim) for e in regressions.REGRESSIONS["nightly"] for sim in e.sims}
    for case in ICARUS_NIGHTLY_ONLY:
        assert any(case in name and sim == "icarus" for name, sim in runs), case


@pytest.mark.parametrize("case", sorted(engine_cases.GRAPH_FEATURES))
def test_graph_case_uses_its_features(case):
    """The graph cases compile to descriptors that really use channel slices
    and the clip (else the engine runs above would test nothing new), the
    clip binds, and the engine accepts them."""
    from golden import isa
    prog, _, ref = engine_cases.build(case)
    descs = [isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
             for i in range(len(prog.layers))]
    for name in engine_cases.GRAPH_FEATURES[case]:
        assert any(getattr(d, name) for d in descs), f"{case}: no descriptor uses {name}"
    for d, y in zip(descs, ref):
        assert isa.validate(d, prog.cfg) == isa.Err.NONE
        if d.clip:
            assert (y == d.clip_hi).any(), f"{case}: the clip at {d.clip_hi} never binds"


@pytest.mark.slow
def test_engine_gen_lanes_not_dividing_pm_and_two_reads():
    """Three generator lanes on eight banks: groups of two blocks (the
    largest power of two of at most three lanes), one lane idle, and odd
    n_codes leave partial blocks in the alpha queue. The same build's column
    fetcher reads two input words a cycle (in_reads = 2, not the default
    four)."""
    import dataclasses
    run_case("ovsf_rho", "verilator", cfg=dataclasses.replace(engine_cases.SMALL, gen_lanes=3, in_reads=2))


def test_engine_input_selection_off():
    run_case("two_layer_pool", "verilator", insel="off")


def test_engine_check_can_fail():
    with pytest.raises(SystemExit):
        run_case("fc", "verilator", mutate=True)


#: make test runs every corruption under Verilator and one under Icarus; the
#: other four Icarus runs (20-50 s each) are in make test-slow, which CI runs.
CORRUPTIONS = ["1:k=4", "0:magic=0x5a", "1:out_h=9", "0:tr=0", "1:in_addr=0x1004"]


@pytest.mark.parametrize("corrupt, sim", [pytest.param(c, s, marks=[pytest.mark.slow]
                                                       if (s == "icarus" and c != "0:magic=0x5a") else [])
                                          for c in CORRUPTIONS for s in simenv.SIMULATORS])
def test_engine_illegal_descriptor_stops(corrupt, sim):
    """An illegal descriptor stops the program with its error code; the layer
    and those after it write nothing."""
    run_case("two_layer_pool", sim, corrupt=corrupt)


@pytest.mark.parametrize("case", engine_cases.SMOKE + list(engine_cases.PM_CASES))
def test_engine_case_compiles_for_every_regression_config(case):
    """The nightly runs the engine cases on several configurations: a case's
    forced tiles must be legal on each it runs on (a tile of 8 output
    channels is not at PM = 16), and every smoke case runs on small, bits8
    and the PM = 2 PN and 3 PN engines (but ovsf_rho, whose rho of 3/8
    needs L = 8)."""
    from tb.regressions import CONFIGS, REGRESSIONS
    configs = {c for e in REGRESSIONS["nightly"] if e.module == "cocotb_engine" and e.env["UZ_CASE"] == case
               for c in e.configs}
    pm = {"pm8_pn4", "pm12_pn4"}
    want = ({"small", "bits8"} | pm) if case in engine_cases.SMOKE else pm
    assert want - (pm if case == "ovsf_rho" else set()) <= configs
    for name in configs:
        engine_cases.build(case, CONFIGS[name])


#: Engine cases with more PEs than lanes (PM = r PN): the write-back,
#: residual and bias a channel group at a time, POOL and depthwise
#: oc-groups over r windows, channels past the output's groups computed and
#: not written. make test runs pm_groups at PM = 3 PN (pm12_pn4: r not a
#: power of two, so every division by PM or r is the general one) under
#: Verilator; make test-slow adds more cases on both configurations and
#: pm_groups under Icarus; the nightly runs every case on both simulators.
PM_NE_PN = ([("pm_groups", "pm12_pn4", "verilator", False)]
            + [(c, "pm8_pn4", "verilator", True) for c in ("pm_groups", "dw_block", "res_block", "avg_pools")]
            + [(c, "pm12_pn4", "verilator", True) for c in ("dw_block", "res_block", "avg_pools")]
            + [("pm_groups", cfg, "icarus", True) for cfg in ("pm8_pn4", "pm12_pn4")])


@pytest.mark.parametrize("case, config, sim", [pytest.param(c, cfg, s, marks=[pytest.mark.slow] if slow else [])
                                               for c, cfg, s, slow in PM_NE_PN])
def test_engine_pm_multiple_of_pn(case, config, sim):
    from tb.regressions import CONFIGS
    cfg = CONFIGS[config]
    assert cfg.pm % cfg.pn == 0 and cfg.pm > cfg.pn
    run_case(case, sim, cfg=cfg)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(engine_cases.DECOMP_CASES))
def test_engine_decomposed_kernels_on_a_3x3_window(case):
    """The engine built with a 3x3 window (MaxK = 3, the ECP5 configuration)
    runs 5x5, 7x7 and 11x11 convolutions as 2x2, 3x3 and 4x4 sub-windows
    (golden.isa.DECOMPOSED), bit exact; make test runs big_kernels on small
    (MaxK = 11), whose window takes the same 3x3 sub-windows."""
    from tb.regressions import CONFIGS
    cfg = CONFIGS["ecp5"]
    assert cfg.max_k == 3
    run_case(case, "verilator", cfg=cfg)
