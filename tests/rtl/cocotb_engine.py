"""Engine smoke test: the compiler's memory image in an AXI RAM, the program
started through the registers, every layer's output region compared bit for
bit with the golden model. UZ_CASE names the network (engine_cases.CASES);
UZ_MUTATE=1 corrupts one expected value to prove the comparison can fail."""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

import engine_cases
from golden import compiler, isa, layers, perf
from golden.config import EngineConfig

from tb.bfm import (CTRL, DESC_ADDR, DONE, ERR, ERROR, IRQ_EN, LAYER_COUNT, PERF_BASE, PERF_SEL,  # noqa: E402
                    START, STATUS)


async def rd(csr, addr):
    return int.from_bytes((await csr.read(addr, 4)).data, "little")


async def wr(csr, addr, value):
    await csr.write(addr, int(value).to_bytes(4, "little"))


@cocotb.test()
async def engine_matches_golden(dut):
    cfg = EngineConfig.from_dict(json.loads(os.environ["UZ_CONFIG"]))
    case = os.environ["UZ_CASE"]
    insel = os.environ.get("UZ_INSEL", "auto")
    prog, _, ref = engine_cases.build(case, cfg, insel=insel)
    # UZ_CORRUPT="layer:field=value" makes that descriptor illegal: the engine
    # must stop with the error code golden.isa.validate gives, not hang.
    expect_err = None
    if os.environ.get("UZ_CORRUPT"):
        where, assignment = os.environ["UZ_CORRUPT"].split(":")
        name, value = assignment.split("=")
        addr = prog.desc_addr + int(where) * isa.DESC_BYTES
        d = isa.Descriptor.decode(prog.image.read(addr, isa.DESC_BYTES))
        d.values[name] = int(value, 0)
        prog.image.write(addr, d.encode())
        expect_err = (int(isa.validate(d, cfg)), int(where))
        assert expect_err[0] != 0, "the corruption must make the descriptor illegal"
    image = bytes(prog.image.data)

    Clock(dut.clk_i, 10, unit="ns").start()
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk_i, dut.rst_ni, reset_active_level=False,
                 size=1 << 20)
    ram.write(0, image)
    csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk_i, dut.rst_ni,
                        reset_active_level=False)
    dut.rst_ni.value = 0
    await ClockCycles(dut.clk_i, 5)
    dut.rst_ni.value = 1
    await ClockCycles(dut.clk_i, 5)

    await wr(csr, DESC_ADDR, prog.desc_addr)
    await wr(csr, LAYER_COUNT, len(prog.layers))
    await wr(csr, CTRL, START | IRQ_EN)
    # The watchdog: far above any legal run of these small networks.
    await with_timeout(RisingEdge(dut.irq_o), 2_000_000, "ns")
    status = await rd(csr, STATUS)
    err = await rd(csr, ERR)
    if expect_err is not None:
        got = (err & 0xFF, err >> 16)
        assert status & ERROR and not status & DONE, f"status 0x{status:x}: expected an error stop"
        assert got == expect_err, f"error (code, layer) {got}, expected {expect_err}"
        # Nothing may have been written for the stopped layer and after it.
        for q in prog.layers[expect_err[1]:]:
            region = prog.image.region(prog.regions[q.name]["out"])
            assert ram.read(region.addr, region.size) == bytes(region.size), f"layer {q.name} output written"
        return
    assert status & DONE and not status & ERROR, f"engine stopped: status 0x{status:x}, error code {err & 0xFF}, layer {err >> 16}"

    failures = []
    report = []
    for i, q in enumerate(prog.layers):
        region = prog.image.region(prog.regions[q.name]["out"])
        prog.image.write(region.addr, ram.read(region.addr, region.size))
        got = compiler.layer_output(prog, i)
        exp = ref[i].copy()
        if os.environ.get("UZ_MUTATE") == "1" and i == len(prog.layers) - 1:
            exp.flat[0] += 1
        first, n = layers.compare(exp, got)
        await wr(csr, PERF_SEL, i)
        words = [await rd(csr, PERF_BASE + 4 * k) for k in range(8)]
        cycles, mac, stall, gen = (words[2 * k] | words[2 * k + 1] << 32 for k in range(4))
        model = perf.program_cycles(prog)[i]
        report.append({"layer": q.name, "kind": q.kind.name, "cycles": cycles, "mac_busy": mac,
                       "mac_busy_fraction": round(mac / cycles, 4) if cycles else 0.0,
                       "mem_stall": stall, "gen_busy": gen, "mismatches": n,
                       "model_cycles": model.cycles, "model_mac_busy": model.mac_busy})
        # The PE-array step count is exact in the model (the cycles are not).
        if model.mac_busy != mac:
            failures.append(f"layer {q.name}: {mac} PE-array steps, the performance model counts {model.mac_busy}")
        dut._log.info(f"layer {q.name}: {cycles} cycles, MAC busy {mac} ({100 * mac / max(cycles, 1):.1f}%), "
                      f"stall {stall}, generator {gen}, mismatches {n}")
        if n:
            failures.append(f"layer {q.name} ({q.kind.name}): {n} mismatches; first (c, y, x), expected, actual: {first}")
    out = os.environ.get("UZ_REPORT")
    if out:
        with open(out, "w") as f:
            json.dump({"case": case, "insel": insel, "layers": report}, f, indent=1)
    assert not failures, "\n".join(failures)
