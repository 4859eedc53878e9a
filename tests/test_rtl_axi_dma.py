"""uz_axi_rd and uz_axi_wr against a cocotbext-axi AxiRam (tests/rtl/
cocotb_axi_dma.py), under both simulators and two bus widths."""
import pytest

from tb import simenv

SIMS = simenv.SIMULATORS
TOP = "uz_axi_dma_tb"
PARAMS = [
    {"DataWidth": 128},
    # 64-bit: the 256-beat limit binds before the page; 3 bursts in flight
    # exercise the non-power-of-two FIFO pointers.
    {"DataWidth": 64, "MaxOutstanding": 3, "IdWidth": 2},
]


def _sources():
    return simenv.rtl_sources("uz_axi_rd", "uz_axi_wr") + [simenv.ROOT / "tests" / "rtl" / f"{TOP}.sv"]


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("params", PARAMS, ids=lambda p: "dw{DataWidth}".format(**p))
def test_axi_dma(sim, params):
    simenv.run(TOP, _sources(), "cocotb_axi_dma", params, sim=sim)


# The checkers are plain Python, the same under either simulator, so proving
# that they can fail needs one simulator only (saves run time).
@pytest.mark.parametrize("mutate", ["1", "2"], ids=["read", "write"])
def test_axi_dma_check_can_fail(mutate):
    with pytest.raises(SystemExit):
        simenv.run(TOP, _sources(), "cocotb_axi_dma", PARAMS[0], sim="verilator", testcase="random_traffic",
                   extra_env={"UZ_MUTATE": mutate})
