"""Unit tests of RTL blocks, each against the golden model, under both
simulators and several parameter sets (one build folder per case)."""
import pytest

from tb import simenv

SIMS = simenv.SIMULATORS


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("params", [
    {"InWidth": 48, "OutWidth": 16, "ShiftWidth": 8},
    {"InWidth": 32, "OutWidth": 8, "ShiftWidth": 8},
    {"InWidth": 21, "OutWidth": 16, "ShiftWidth": 7},
    # the shift decoded (t = clamp(shift + OutWidth, 0, InWidth + OutWidth)),
    # as uz_post (data shift, residual alignment) and uz_compute (bias) use it
    {"InWidth": 48, "OutWidth": 16, "ShiftWidth": 7, "PreDecoded": 1},
    {"InWidth": 16, "OutWidth": 48, "ShiftWidth": 7, "PreDecoded": 1},
    # a bounded t, as uz_ovsf_gen's generator shift: L = 16 at 16-bit
    # alphas and data (shifts -2..4), L = 8 at 16-bit alphas and 8-bit data
    # (-2..3), a single amount; and clamped into the bounds, not PreDecoded
    {"InWidth": 21, "OutWidth": 16, "ShiftWidth": 3, "PreDecoded": 1, "TMin": 14, "TMax": 20},
    # (these two in make test-slow: a build each)
    pytest.param({"InWidth": 20, "OutWidth": 8, "ShiftWidth": 3, "PreDecoded": 1, "TMin": 6, "TMax": 11},
                 marks=pytest.mark.slow),
    pytest.param({"InWidth": 21, "OutWidth": 16, "ShiftWidth": 1, "PreDecoded": 1, "TMin": 17, "TMax": 17},
                 marks=pytest.mark.slow),
    {"InWidth": 14, "OutWidth": 16, "ShiftWidth": 8, "TMin": 6, "TMax": 19},
], ids=lambda p: "in{InWidth}_out{OutWidth}_sh{ShiftWidth}".format(**p) + ("_pre" if p.get("PreDecoded") else "")
   + ("_t{TMin}-{TMax}".format(**p) if "TMin" in p else ""))
def test_shift_round_sat(sim, params):
    simenv.run("uz_shift_round_sat", simenv.rtl_sources("uz_shift_round_sat"),
               "cocotb_shift_round_sat", params, sim=sim)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("params", [
    {"InWidth": 48, "OutWidth": 16, "ShiftWidth": 8},
    {"InWidth": 48, "OutWidth": 16, "ShiftWidth": 7, "PreDecoded": 1},
    {"InWidth": 21, "OutWidth": 16, "ShiftWidth": 3, "PreDecoded": 1, "TMin": 14, "TMax": 20},
], ids=["plain", "pre", "bounded"])
def test_shift_round_sat_check_can_fail(sim, params):
    with pytest.raises(SystemExit):
        simenv.run("uz_shift_round_sat", simenv.rtl_sources("uz_shift_round_sat"),
                   "cocotb_shift_round_sat", params, sim=sim, extra_env={"UZ_MUTATE": "1"})
