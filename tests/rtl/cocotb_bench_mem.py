"""uz_tb_axi_mem (tb/hdl) alone, driven by a cocotbext-axi AxiMaster.

Settings come from the same plusargs the memory reads (+UZ_BW_NUM,
+UZ_BW_DEN, +UZ_LATENCY; the module's parameter defaults otherwise) and the
test compares what it measures against them:
- bandwidth: a long sequence of reads (UZ_MIX=1: reads and writes at once)
  moves the configured bytes per cycle within 2%;
- latency: AR handshake to the first R beat, last W handshake to B;
- functional: data round trip with strobes, SLVERR beyond MemBytes (and
  nothing written), the +UZ_MEM_IN contents (UZ_EXPECT_IN: the image as a
  hex file) and a dump clipped to the memory.
"""
import logging
import os

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiBus, AxiMaster, AxiResp

from tb import bench_sim

CLOCK_NS = 10
BEAT = 16


def settings():
    """The memory's run-time settings (plusargs; its parameter defaults otherwise)."""
    p = cocotb.plusargs
    return int(p.get("UZ_BW_NUM", 16)), int(p.get("UZ_BW_DEN", 1)), max(2, int(p.get("UZ_LATENCY", 16)))


async def setup(dut):
    dut.rst_ni.value = 0
    dut.dump_i.value = 0
    dut.dump_lo_i.value = 0
    dut.dump_hi_i.value = 0
    Clock(dut.clk_i, CLOCK_NS, unit="ns").start(start_high=False)
    axi = AxiMaster(AxiBus.from_prefix(dut, "s_axi"), dut.clk_i, dut.rst_ni, reset_active_level=False)
    for part in (axi.write_if, axi.read_if):
        part.log.setLevel(logging.WARNING)
    await ClockCycles(dut.clk_i, 3)
    dut.rst_ni.value = 1
    await ClockCycles(dut.clk_i, 3)
    return axi


def now_cycles() -> float:
    return get_sim_time("ns") / CLOCK_NS


@cocotb.test()
async def bandwidth(dut):
    """Bytes per cycle in the steady state of a long traffic sequence
    (UZ_MIX=1: reads and writes alternate), from the memory's own byte
    counters sampled every 16 cycles: the window runs from the first sample
    past 4 KiB to the last one before the final 4 KiB."""
    axi = await setup(dut)
    num, den, _ = settings()
    rate = min(num / den, BEAT)
    mix = os.environ.get("UZ_MIX") == "1"
    total, chunk, margin = 64 * 1024, 4096, 4096
    window = {}

    async def sample():
        while True:
            await ClockCycles(dut.clk_i, 16)
            moved = int(dut.rd_bytes_o.value) + int(dut.wr_bytes_o.value)
            if moved >= margin and "t1" not in window:
                window["t1"], window["b1"] = now_cycles(), moved
            if moved <= total - margin:
                window["t2"], window["b2"] = now_cycles(), moved
                window["rd2"] = int(dut.rd_bytes_o.value)
            if "t1" in window and "rd1" not in window:
                window["rd1"] = int(dut.rd_bytes_o.value)

    sampler = cocotb.start_soon(sample())
    # Many commands at once: the master keeps several bursts in flight.
    tasks = []
    for k in range(total // chunk):
        if mix and k % 2:
            tasks.append(cocotb.start_soon(axi.write(k * chunk, bytes([k]) * chunk)))
        else:
            tasks.append(cocotb.start_soon(axi.read(k * chunk, chunk)))
    for t in tasks:
        await t
    sampler.cancel()
    await ClockCycles(dut.clk_i, 2)      # the last beat's count
    moved = int(dut.rd_bytes_o.value) + int(dut.wr_bytes_o.value)
    assert moved == total, f"moved {moved} bytes, expected {total}"
    cycles = window["t2"] - window["t1"]
    got = (window["b2"] - window["b1"]) / cycles
    dut._log.info(f"rate {num}/{den}: {window['b2'] - window['b1']} bytes in {cycles:.0f} cycles = {got:.3f} "
                  f"bytes/cycle (configured {rate:.3f}{', reads and writes' if mix else ''})")
    assert abs(got - rate) <= 0.02 * rate, f"{got:.3f} bytes/cycle, configured {rate:.3f}"
    if mix:
        # the bucket is shared fairly: neither direction starves the other
        reads = (window["rd2"] - window["rd1"]) / (window["b2"] - window["b1"])
        dut._log.info(f"reads took {100 * reads:.1f}% of the bytes")
        assert 0.4 <= reads <= 0.6, f"reads took {100 * reads:.1f}% of the shared bandwidth"


async def handshake_cycle(dut, valid, ready) -> float:
    """Cycle (sim time / period) of the next cycle with valid and ready high,
    sampled mid-cycle."""
    while True:
        await FallingEdge(dut.clk_i)
        if int(valid.value) and int(ready.value):
            return now_cycles()


@cocotb.test()
async def latency(dut):
    axi = await setup(dut)
    _, _, lat = settings()
    # read: AR handshake cycle -> first cycle with R valid
    ar = cocotb.start_soon(handshake_cycle(dut, dut.s_axi_arvalid, dut.s_axi_arready))
    rv = cocotb.start_soon(handshake_cycle(dut, dut.s_axi_rvalid, dut.s_axi_rvalid))
    await axi.read(0x100, 4 * BEAT)
    t_ar, t_r = await ar, await rv
    # write: cycle of the last W handshake -> first cycle with B valid
    wl = cocotb.start_soon(handshake_cycle(dut, dut.s_axi_wvalid, dut.s_axi_wready))
    bv = cocotb.start_soon(handshake_cycle(dut, dut.s_axi_bvalid, dut.s_axi_bvalid))
    await axi.write(0x200, bytes(range(BEAT)))
    t_w, t_b = await wl, await bv
    dut._log.info(f"latency {lat}: read {t_r - t_ar}, write {t_b - t_w} cycles")
    assert t_r - t_ar == lat, f"read latency {t_r - t_ar} cycles, configured {lat}"
    assert t_b - t_w == lat, f"write response latency {t_b - t_w} cycles, configured {lat}"


@cocotb.test()
async def functional(dut):
    axi = await setup(dut)
    mem_bytes = int(os.environ["UZ_MEM_BYTES"])
    image = b""
    if os.environ.get("UZ_EXPECT_IN"):
        image = bench_sim.read_hex(os.environ["UZ_EXPECT_IN"])
        got = await axi.read(0, len(image))
        assert got.resp == AxiResp.OKAY and got.data == image, "+UZ_MEM_IN contents differ"
    # round trip, unaligned with strobes, across a 4 KiB page
    base = 0x1FF0 + 3
    data = bytes((7 * i + 1) & 0xFF for i in range(300))
    w = await axi.write(base, data)
    assert w.resp == AxiResp.OKAY
    r = await axi.read(base - 3, len(data) + 6)
    expect_edges = (image[base - 3:base] if len(image) >= base else bytes(3))
    assert r.data[3:-3] == data, "data round trip"
    assert r.data[:3] == expect_edges.ljust(3, b"\0"), "bytes before a strobed write changed"
    # beyond the memory: SLVERR, nothing wraps around
    before = (await axi.read(0, BEAT)).data
    w = await axi.write(mem_bytes - BEAT, bytes([0xAB]) * (3 * BEAT))
    assert w.resp == AxiResp.SLVERR, f"write across the end answered {w.resp}"
    r = await axi.read(mem_bytes - BEAT, 3 * BEAT)
    assert r.resp == AxiResp.SLVERR, f"read across the end answered {r.resp}"
    assert r.data[:BEAT] == bytes([0xAB]) * BEAT and r.data[BEAT:] == bytes(2 * BEAT)
    r = await axi.read(0xFFFF_FF00, BEAT)
    assert r.resp == AxiResp.SLVERR
    assert (await axi.read(0, BEAT)).data == before, "an access beyond the end wrapped around"
    # dumps: a range inside, one clipped at the end
    out = cocotb.plusargs.get("UZ_MEM_OUT")
    if out:
        words = mem_bytes // BEAT
        for n, (lo, hi) in enumerate([((base - 3) // BEAT, (base + 400) // BEAT), (words - 2, words + 5)]):
            await FallingEdge(dut.clk_i)
            dut.dump_lo_i.value = lo
            dut.dump_hi_i.value = hi
            dut.dump_i.value = 1
            await FallingEdge(dut.clk_i)
            dut.dump_i.value = 0
            await RisingEdge(dut.clk_i)
            assert int(dut.dump_count_o.value) == n + 1
            dumped = bench_sim.read_hex(f"{out}.{n}")
            ref = (await axi.read(lo * BEAT, (min(hi, words) - lo) * BEAT)).data
            assert dumped == ref, f"dump {n} [{lo}, {hi}) differs from the memory"
