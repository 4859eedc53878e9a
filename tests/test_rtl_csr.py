"""uz_csr (AXI4-Lite control and status registers): the default parameter
set under both simulators, and a second set with a shallow per-layer counter
store (MaxPerfLayers=4) and other CONFIG values under Icarus only: a second
Verilator build costs ~30 s of C++ compilation for no new code path."""
import pytest

from tb import simenv

SOURCES = simenv.rtl_sources("uz_csr")
DEFAULT = {"AddrWidth": 8, "PM": 16, "PN": 16, "DataWidth": 16, "OvsfLen": 16, "MaxPerfLayers": 64}
SMALL = {"AddrWidth": 8, "PM": 8, "PN": 32, "DataWidth": 8, "OvsfLen": 4, "MaxPerfLayers": 4}


@pytest.mark.parametrize("sim, params", [
    ("verilator", DEFAULT),
    ("icarus", DEFAULT),
    ("icarus", SMALL),
], ids=lambda v: v if isinstance(v, str) else
    "pm{PM}_pn{PN}_dw{DataWidth}_l{OvsfLen}_perf{MaxPerfLayers}".format(**v))
def test_csr(sim, params):
    simenv.run("uz_csr", SOURCES, "cocotb_csr", params, sim=sim)


@pytest.mark.parametrize("sim", simenv.SIMULATORS)
def test_csr_check_can_fail(sim):
    with pytest.raises(SystemExit):
        simenv.run("uz_csr", SOURCES, "cocotb_csr", DEFAULT, sim=sim, testcase="scoreboard_random",
                   extra_env={"UZ_MUTATE": "1"})
