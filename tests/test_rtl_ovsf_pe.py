"""RTL tests of the OVSF weights generator and the PE array against the golden
model, under both simulators and several parameter sets (one build folder per
case). Icarus runs fewer vectors than Verilator (the cocotb tests check
cocotb.SIM_NAME)."""
import pytest

from tb import simenv

SIMS = simenv.SIMULATORS

OVSF_SRC = simenv.rtl_sources("uz_shift_round_sat", "uz_ovsf_gen")
PE_SRC = simenv.rtl_sources("uz_pe_array")

# Blocks: the default engine's 8 blocks per transfer, one, and a count that
# is not a power of two.
OVSF_PARAMS = [
    {"OvsfLen": 16, "AlphaWidth": 16, "DataWidth": 16, "Blocks": 8},
    {"OvsfLen": 8, "AlphaWidth": 16, "DataWidth": 8, "Blocks": 1},
    {"OvsfLen": 4, "AlphaWidth": 8, "DataWidth": 8, "Blocks": 3},
]
OVSF_ID = "L{OvsfLen}_a{AlphaWidth}_d{DataWidth}_b{Blocks}"
PE_PARAMS = [
    {"PM": 4, "PN": 4, "DataWidth": 16, "TagWidth": 8},
    {"PM": 16, "PN": 16, "DataWidth": 16, "TagWidth": 8},
    {"PM": 2, "PN": 8, "DataWidth": 8, "TagWidth": 8},
]


# The default's 8 blocks under Verilator (its longest build) in make test-slow.
@pytest.mark.parametrize("sim, params", [pytest.param(s, p, id=f"{OVSF_ID.format(**p)}-{s}",
                                                      marks=[pytest.mark.slow] if (s == "verilator" and p["Blocks"] == 8)
                                                      else [])
                                         for p in OVSF_PARAMS for s in SIMS])
def test_ovsf_gen(sim, params):
    simenv.run("uz_ovsf_gen", OVSF_SRC, "cocotb_ovsf_gen", params, sim=sim)


# The ends of the legal ranges, Icarus only (it builds in seconds).
@pytest.mark.parametrize("params", [
    {"OvsfLen": 2, "AlphaWidth": 8, "DataWidth": 16, "Blocks": 2},
    {"OvsfLen": 32, "AlphaWidth": 16, "DataWidth": 16, "Blocks": 1},
], ids=lambda p: OVSF_ID.format(**p))
def test_ovsf_gen_range_ends(params):
    simenv.run("uz_ovsf_gen", OVSF_SRC, "cocotb_ovsf_gen", params, sim="icarus")


@pytest.mark.parametrize("sim", SIMS)
def test_ovsf_gen_check_can_fail(sim):
    # Same parameters as a case above: the build is reused.
    with pytest.raises(SystemExit):
        simenv.run("uz_ovsf_gen", OVSF_SRC, "cocotb_ovsf_gen", OVSF_PARAMS[2], sim=sim,
                   extra_env={"UZ_MUTATE": "1"})


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("end", ["lo", "hi"])
def test_ovsf_gen_shift_outside_range_asserts(sim, end, tmp_path):
    # GenShiftInRange_A: the shifters cover GenShiftMin..GenShiftMax only
    log = tmp_path / "sim.log"
    with pytest.raises((SystemExit, RuntimeError)):
        simenv.run("uz_ovsf_gen", OVSF_SRC, "cocotb_ovsf_gen", OVSF_PARAMS[2], sim=sim,
                   testcase="shift_outside_range_is_caught", extra_env={"UZ_GEN_SHIFT_OUT": end},
                   run_name=f"shift_out_{end}", log_file=log)
    assert "GenShiftInRange_A" in log.read_text(), "the failure is not the assertion's"


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("params", PE_PARAMS, ids=lambda p: "m{PM}_n{PN}_d{DataWidth}".format(**p))
def test_pe_array(sim, params):
    simenv.run("uz_pe_array", PE_SRC, "cocotb_pe_array", params, sim=sim)


# One lane, and a lane count that is not a power of two (zero-padded tree),
# Icarus only.
@pytest.mark.parametrize("params", [
    {"PM": 3, "PN": 1, "DataWidth": 8, "TagWidth": 1},
    {"PM": 3, "PN": 5, "DataWidth": 16, "TagWidth": 4},
], ids=lambda p: "m{PM}_n{PN}_d{DataWidth}".format(**p))
def test_pe_array_odd_shapes(params):
    simenv.run("uz_pe_array", PE_SRC, "cocotb_pe_array", params, sim="icarus")


@pytest.mark.parametrize("sim", SIMS)
def test_pe_array_check_can_fail(sim):
    with pytest.raises(SystemExit):
        simenv.run("uz_pe_array", PE_SRC, "cocotb_pe_array", PE_PARAMS[0], sim=sim,
                   extra_env={"UZ_MUTATE": "1"})
