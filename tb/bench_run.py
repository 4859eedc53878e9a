"""cocotb test module for uz_bench_top: run one program at full simulation
speed (no per-cycle Python) and write its counters as JSON.

The job comes from env UZ_BENCH_JOB, a JSON object or the path of a JSON
file (tb/bench_sim.run_job writes one):
    {"mem_in": hex file, loaded by the memory model from +UZ_MEM_IN,
     "desc_addr": int, "layers": int,
     "dumps": [{"lo": byte addr, "hi": byte addr, "file": path}],
     "result": path, "max_cycles": int (watchdog),
     "word_bytes": bus bytes (default 16)}

Dumps: the memory model writes dump n (0, 1, ...) to "<+UZ_MEM_OUT>.<n>" in
$writememh form; this module then moves it to the dump's "file". A dump
holds the whole bus words covering [lo, hi): its first word is at byte
address floor(lo / bus bytes) (the result's "dumps" records that "addr").

Result JSON: status, err, err_layer, total_cycles, layers [{cycles,
mac_busy, mem_stall, gen_busy}] (the first 64 layers: the engine keeps no
counters beyond), rd_bytes, wr_bytes, sim_seconds (wall
time from START to the interrupt), cycles_per_second, plus cpu_seconds and
cycles_per_cpu_second (the simulator process's CPU time over the same span:
steadier than wall time on a busy machine), done, error, timeout and
dumps. The test fails unless the program ended DONE without ERROR within
max_cycles.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

# Registers (docs/architecture.md): the BFM holds the one register map.
from tb.bfm import (CTRL, DESC_ADDR, DONE, ERR, ERROR, IRQ_EN, LAYER_COUNT, PERF_BASE, PERF_SEL, START, STATUS,
                    TOTAL_LO)

MAX_PERF_LAYERS = 64     # uz_top MaxPerfLayers: later layers have no counters
CLOCK_NS = 10


def load_job() -> dict:
    raw = os.environ.get("UZ_BENCH_JOB", "")
    if not raw:
        raise RuntimeError("UZ_BENCH_JOB is not set (a JSON job or the path of one)")
    if raw.lstrip().startswith("{"):
        return json.loads(raw)
    with open(raw) as f:
        return json.load(f)


async def rd(csr, addr: int) -> int:
    return int.from_bytes((await csr.read(addr, 4)).data, "little")


async def wr(csr, addr: int, value: int) -> None:
    await csr.write(addr, int(value).to_bytes(4, "little"))


async def rd64(csr, lo_addr: int) -> int:
    return await rd(csr, lo_addr) | await rd(csr, lo_addr + 4) << 32


@cocotb.test()
async def bench(dut):
    job = load_job()
    max_cycles = int(job.get("max_cycles", 50_000_000))
    n_layers = int(job["layers"])
    word_bytes = int(job.get("word_bytes", 16))     # bus bytes (AxiDataWidth / 8)

    dut.rst_ni.value = 0
    dut.dump_i.value = 0
    dut.dump_lo_i.value = 0
    dut.dump_hi_i.value = 0
    # The simulator's own clock (no Python per edge).
    Clock(dut.clk_i, CLOCK_NS, unit="ns", impl="gpi").start(start_high=False)
    csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk_i, dut.rst_ni, reset_active_level=False)
    for part in (csr.write_if, csr.read_if):     # one log line per register access otherwise
        part.log.setLevel(logging.WARNING)
    await ClockCycles(dut.clk_i, 5)
    dut.rst_ni.value = 1
    await ClockCycles(dut.clk_i, 5)

    await wr(csr, DESC_ADDR, int(job["desc_addr"]))
    await wr(csr, LAYER_COUNT, n_layers)
    t0, c0 = time.perf_counter(), time.process_time()
    await wr(csr, CTRL, START | IRQ_EN)
    timeout = False
    if not int(dut.irq_o.value):
        try:
            await with_timeout(RisingEdge(dut.irq_o), max_cycles * CLOCK_NS, "ns")
        except SimTimeoutError:
            timeout = True
    sim_seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0     # this process: the simulator and Python
    rd_bytes, wr_bytes = int(dut.rd_bytes_o.value), int(dut.wr_bytes_o.value)

    status = await rd(csr, STATUS)
    err = await rd(csr, ERR)
    total = await rd64(csr, TOTAL_LO)
    layers = []
    for i in range(min(n_layers, MAX_PERF_LAYERS)):
        await wr(csr, PERF_SEL, i)
        w = [await rd(csr, PERF_BASE + 4 * k) for k in range(8)]
        c = [w[2 * k] | w[2 * k + 1] << 32 for k in range(4)]
        layers.append({"cycles": c[0], "mac_busy": c[1], "mem_stall": c[2], "gen_busy": c[3]})

    dumps = []
    base = cocotb.plusargs.get("UZ_MEM_OUT")
    if job.get("dumps") and not base:
        raise RuntimeError("dumps requested but the simulation has no +UZ_MEM_OUT plusarg")
    for d in job.get("dumps", []):
        lo, hi = int(d["lo"]), int(d["hi"])
        wlo, whi = lo // word_bytes, -(-hi // word_bytes)
        n = int(dut.dump_count_o.value)
        await RisingEdge(dut.clk_i)
        dut.dump_lo_i.value = wlo
        dut.dump_hi_i.value = whi
        dut.dump_i.value = 1
        await RisingEdge(dut.clk_i)          # this edge writes the file
        dut.dump_i.value = 0
        await RisingEdge(dut.clk_i)
        assert int(dut.dump_count_o.value) == n + 1, "the memory model did not take the dump request"
        src = f"{base}.{n}"
        os.makedirs(os.path.dirname(os.path.abspath(d["file"])) or ".", exist_ok=True)
        if os.path.exists(src):
            shutil.move(src, d["file"])
        else:                                # empty after clipping to the memory
            open(d["file"], "w").close()
        dumps.append({"file": d["file"], "lo": lo, "hi": hi, "addr": wlo * word_bytes})

    result = {
        "status": status, "err": err & 0xFF, "err_layer": err >> 16, "total_cycles": total,
        "layers": layers, "rd_bytes": rd_bytes, "wr_bytes": wr_bytes,
        "sim_seconds": round(sim_seconds, 4),
        "cycles_per_second": round(total / sim_seconds, 1) if sim_seconds > 0 else 0.0,
        "cpu_seconds": round(cpu_seconds, 4),
        "cycles_per_cpu_second": round(total / cpu_seconds, 1) if cpu_seconds > 0 else 0.0,
        "done": bool(status & DONE), "error": bool(status & ERROR), "timeout": timeout, "dumps": dumps,
    }
    if job.get("result"):
        with open(job["result"], "w") as f:
            json.dump(result, f, indent=1)
    dut._log.info(f"bench: status 0x{status:x}, {total} cycles in {sim_seconds:.2f} s "
                  f"({result['cycles_per_second']:.0f} cycles/s), read {rd_bytes} B, wrote {wr_bytes} B")
    assert not timeout, f"no interrupt within {max_cycles} cycles (status 0x{status:x})"
    assert status & DONE and not status & ERROR, \
        f"program stopped: status 0x{status:x}, error code {err & 0xFF} at layer {err >> 16}"
