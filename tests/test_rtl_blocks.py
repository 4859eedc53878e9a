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
], ids=lambda p: "in{InWidth}_out{OutWidth}_sh{ShiftWidth}".format(**p) + ("_pre" if p.get("PreDecoded") else ""))
def test_shift_round_sat(sim, params):
    simenv.run("uz_shift_round_sat", simenv.rtl_sources("uz_shift_round_sat"),
               "cocotb_shift_round_sat", params, sim=sim)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("params", [
    {"InWidth": 48, "OutWidth": 16, "ShiftWidth": 8},
    {"InWidth": 48, "OutWidth": 16, "ShiftWidth": 7, "PreDecoded": 1},
], ids=["plain", "pre"])
def test_shift_round_sat_check_can_fail(sim, params):
    with pytest.raises(SystemExit):
        simenv.run("uz_shift_round_sat", simenv.rtl_sources("uz_shift_round_sat"),
                   "cocotb_shift_round_sat", params, sim=sim, extra_env={"UZ_MUTATE": "1"})
