"""An RTL assertion that fires must fail the cocotb test, under Icarus as
under Verilator. uz_axi_rd alone: after reset, an R beat arrives with an ID
the engine never issues and none outstanding (RIdMatches_A,
RBeatExpected_A). UZ_VIOLATE=0 runs the same test without the beat, so the
failure is shown to come from the assertion."""
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge


@cocotb.test()
async def stray_read_id(dut):
    violate = os.environ.get("UZ_VIOLATE", "1") == "1"
    for sig in (dut.cmd_valid_i, dut.cmd_addr_i, dut.cmd_beats_i, dut.data_ready_i, dut.abort_i,
                dut.err_clear_i, dut.m_axi_arready, dut.m_axi_rid, dut.m_axi_rdata, dut.m_axi_rresp,
                dut.m_axi_rlast, dut.m_axi_rvalid):
        sig.value = 0
    dut.rst_ni.value = 0
    Clock(dut.clk_i, 10, unit="ns").start(start_high=False)
    await ClockCycles(dut.clk_i, 3)
    dut.rst_ni.value = 1
    await ClockCycles(dut.clk_i, 3)
    await RisingEdge(dut.clk_i)
    dut.m_axi_rid.value = 1
    dut.m_axi_rvalid.value = 1 if violate else 0
    await ClockCycles(dut.clk_i, 5)
    dut.m_axi_rvalid.value = 0
    await ClockCycles(dut.clk_i, 5)
