"""cocotb tests of uz_csr, the AXI4-Lite register block of
docs/architecture.md ("Control and status").

Directed tests cover each register and engine-side behaviour; a randomised
test compares every read against a Python model of the map while all five
AXI-Lite channels stall at random. A raw pin-level driver covers what
AxiLiteMaster cannot produce: AW and W apart by many cycles in either order,
non-contiguous wstrb, and cycle-exact checks that bvalid/rvalid and their
payloads hold until ready.

Engine-side inputs change on the falling clock edge, so every rising edge
samples a settled value and a process reading them after the edge knows
exactly what the DUT saw.

UZ_MUTATE=1 corrupts the model's expected DESC_ADDR value so the pytest
wrapper can prove the scoreboard check fails when the two disagree.
"""
import logging
import os
import random
import warnings

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

# cocotbext-axi 0.1.28 still uses Event data and Task.kill(), deprecated in cocotb 2.
warnings.filterwarnings("ignore", message="The data field will be removed")
warnings.filterwarnings("ignore", message=r"`task.kill\(\)` is deprecated")

MUTATE = os.environ.get("UZ_MUTATE") == "1"
SEED = int(os.environ.get("UZ_SEED", "1"))

CTRL, STATUS, ERR, DESC_ADDR, LAYER_COUNT, ID, CONFIG = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18
PERF_SEL = 0x20
PERF_BASE = 0x24  # cycles lo/hi, mac lo/hi, stall lo/hi, gen lo/hi
TOTAL_LO, TOTAL_HI = 0x44, 0x48
ID_VALUE = 0x757A_0001
MASK64 = (1 << 64) - 1

START, ABORT, IRQ_EN = 1, 2, 4
DONE, ERROR = 2, 4
TIMEOUT_US = 500  # simulated; a dropped valid would otherwise hang the master forever


def params(dut):
    return {n: int(getattr(dut, n).value)
            for n in ("AddrWidth", "PM", "PN", "DataWidth", "OvsfLen", "MaxPerfLayers")}


def config_value(p):
    return (p["PM"] | p["PN"] << 8 | p["DataWidth"] << 16
            | (p["OvsfLen"].bit_length() - 1) << 24)


def strb_ranges():
    """Every contiguous byte range of a word: the strobes AxiLiteMaster can make."""
    return [(lo, hi) for lo in range(4) for hi in range(lo + 1, 5)]


def strb_of(lo, hi):
    return ((1 << (hi - lo)) - 1) << lo


def merge(old, data, strb):
    m = sum(0xFF << (8 * i) for i in range(4) if strb >> i & 1)
    return (old & ~m) | (data & m)


class Model:
    """The register map as a dict-like Python model."""

    def __init__(self, p):
        self.p = p
        self.max_layers = p["MaxPerfLayers"]
        self.regs = {DESC_ADDR: 0, LAYER_COUNT: 0, PERF_SEL: 0}
        self.irq_en = self.done = self.error = 0
        self.err_code = self.err_layer = 0
        self.perf = {}        # layer -> (cycles, mac, stall, gen), since the last START
        self.busy = 0         # busy_i as driven
        self.cur_layer = 0
        self.starts = self.aborts = self.ignored_starts = self.clears = 0

    @property
    def irq(self):
        return int(bool(self.irq_en and (self.done or self.error)))

    def write(self, addr, data, strb):
        if addr == CTRL and strb & 1:
            self.irq_en = data >> 2 & 1
            if data & ABORT:
                self.aborts += 1
            elif data & START and not self.busy:
                self.starts += 1
                self.done = self.error = 0
                self.perf = {}
            elif data & START:
                self.ignored_starts += 1
        elif addr == STATUS and strb & 1:
            self.clears += bool(self.done and data & DONE) + bool(self.error and data & ERROR)
            if data & DONE:
                self.done = 0
            if data & ERROR:
                self.error = 0
        elif addr in self.regs:
            width = 32 if addr == DESC_ADDR else 16
            self.regs[addr] = merge(self.regs[addr], data, strb) & ((1 << width) - 1)

    def done_pulse(self):
        self.done = 1

    def err_pulse(self, code, layer):
        if not self.error:
            self.err_code, self.err_layer = code, layer
        self.error = 1

    def perf_push(self, layer, vals):
        if layer < self.max_layers:
            self.perf[layer] = vals

    def read(self, addr, total):
        if addr == CTRL:
            v = self.irq_en << 2
        elif addr == STATUS:
            v = self.busy | self.done << 1 | self.error << 2 | self.cur_layer << 16
        elif addr == ERR:
            v = self.err_code | self.err_layer << 16
        elif addr in self.regs:
            v = self.regs[addr]
            if MUTATE and addr == DESC_ADDR:
                v ^= 1
        elif addr == ID:
            v = ID_VALUE
        elif addr == CONFIG:
            v = config_value(self.p)
        elif PERF_BASE <= addr < PERF_BASE + 32:
            vals = self.perf.get(self.regs[PERF_SEL], (0, 0, 0, 0))
            k = (addr - PERF_BASE) // 4
            v = vals[k // 2] >> (32 * (k % 2)) & 0xFFFF_FFFF
        elif addr in (TOTAL_LO, TOTAL_HI):
            v = total >> (32 * (addr == TOTAL_HI)) & 0xFFFF_FFFF
        else:
            v = 0
        return v


class Tb:
    def __init__(self, dut, master=True):
        self.dut = dut
        self.p = params(dut)
        self.words = 1 << (self.p["AddrWidth"] - 2)
        self.master = None
        self.use_master = master
        self.start_cycles = []   # cycle numbers with start_o high
        self.abort_cycles = []
        self.total_ref = 0       # TOTAL_CYCLES as the map defines it, from start_o and busy_i
        self.cycle = 0

    async def init(self):
        dut = self.dut
        Clock(dut.clk_i, 10, unit="ns").start()
        dut.rst_ni.value = 0
        for name in ("busy_i", "done_i", "err_i", "err_code_i", "err_layer_i", "cur_layer_i",
                     "perf_valid_i", "perf_layer_i", "perf_cycles_i", "perf_mac_busy_i",
                     "perf_mem_stall_i", "perf_gen_busy_i"):
            getattr(dut, name).value = 0
        if self.use_master:
            # cocotbext-axi logs every transfer at INFO.
            logging.getLogger(f"cocotb.{dut._name}.s_axil").setLevel(logging.WARNING)
            self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk_i, dut.rst_ni,
                                        reset_active_level=False)
        else:
            for name in ("awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready",
                         "araddr", "arprot", "arvalid", "rready"):
                getattr(dut, f"s_axil_{name}").value = 0
        await ClockCycles(dut.clk_i, 4)
        await FallingEdge(dut.clk_i)
        dut.rst_ni.value = 1
        cocotb.start_soon(self._monitor())
        await ClockCycles(dut.clk_i, 2)

    async def _monitor(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.clk_i)
            await ReadOnly()
            self.cycle += 1
            # start_o high after an edge means the START was taken at that edge:
            # the same edge TOTAL_CYCLES restarts from 0.
            if int(dut.start_o.value):
                self.start_cycles.append(self.cycle)
                self.total_ref = 0
            elif int(dut.busy_i.value):
                self.total_ref = (self.total_ref + 1) & MASK64
            if int(dut.abort_o.value):
                self.abort_cycles.append(self.cycle)

    # --- AXI-Lite through cocotbext-axi -------------------------------------------------------
    async def read(self, addr):
        r = await self.master.read(addr, 4)
        assert r.resp == AxiResp.OKAY, f"read 0x{addr:02x}: resp {r.resp}"
        return int.from_bytes(r.data, "little")

    async def write(self, addr, value, lo=0, hi=4):
        """Write bytes lo..hi-1 of value (wstrb = those lanes)."""
        data = (value & 0xFFFF_FFFF).to_bytes(4, "little")[lo:hi]
        r = await self.master.write(addr + lo, data)
        assert r.resp == AxiResp.OKAY, f"write 0x{addr:02x}: resp {r.resp}"

    def set_pauses(self, rng, p=0.4):
        def gen():
            while True:
                yield rng.random() < p
        m = self.master
        for ch in (m.write_if.aw_channel, m.write_if.w_channel, m.write_if.b_channel,
                   m.read_if.ar_channel, m.read_if.r_channel):
            ch.set_pause_generator(gen())

    # --- engine side (driven on the falling edge) ---------------------------------------------
    async def set_inputs(self, **values):
        await FallingEdge(self.dut.clk_i)
        for k, v in values.items():
            getattr(self.dut, k).value = v

    async def pulse(self, **values):
        """Drive values for exactly one rising edge, then return the 1-bit ones to 0."""
        await self.set_inputs(**values)
        await FallingEdge(self.dut.clk_i)
        for k in values:
            if len(getattr(self.dut, k)) == 1:
                getattr(self.dut, k).value = 0

    async def done(self):
        await self.pulse(done_i=1)

    async def err(self, code, layer):
        await self.pulse(err_i=1, err_code_i=code, err_layer_i=layer)

    async def perf_push(self, layer, vals):
        await self.pulse(perf_valid_i=1, perf_layer_i=layer, perf_cycles_i=vals[0],
                         perf_mac_busy_i=vals[1], perf_mem_stall_i=vals[2], perf_gen_busy_i=vals[3])

    async def read_perf(self, layer):
        await self.write(PERF_SEL, layer)
        words = [await self.read(PERF_BASE + 4 * k) for k in range(8)]
        return tuple(words[2 * i] | words[2 * i + 1] << 32 for i in range(4))

    async def read_total(self):
        return await self.read(TOTAL_LO) | await self.read(TOTAL_HI) << 32


def rand64(rng):
    return rng.getrandbits(64)


# ----------------------------------------------------------------------------------------------
# Directed tests
# ----------------------------------------------------------------------------------------------
@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def reset_values(dut):
    tb = Tb(dut)
    await tb.init()
    for out in ("start_o", "abort_o", "desc_addr_o", "layer_count_o", "irq_o"):
        assert int(getattr(dut, out).value) == 0, f"{out} not 0 after reset"
    for w in range(tb.words):
        addr = 4 * w
        exp = {ID: ID_VALUE, CONFIG: config_value(tb.p)}.get(addr, 0)
        got = await tb.read(addr)
        assert got == exp, f"0x{addr:02x}: reset value 0x{got:08x}, expected 0x{exp:08x}"


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def id_and_config(dut):
    tb = Tb(dut)
    await tb.init()
    p = tb.p
    assert await tb.read(ID) == ID_VALUE
    cfg = await tb.read(CONFIG)
    assert cfg & 0xFF == p["PM"]
    assert cfg >> 8 & 0xFF == p["PN"]
    assert cfg >> 16 & 0xFF == p["DataWidth"]
    assert 1 << (cfg >> 24) == p["OvsfLen"]


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def rw_registers_and_strobes(dut):
    tb = Tb(dut)
    await tb.init()
    rng = random.Random(SEED)
    widths = {DESC_ADDR: 32, LAYER_COUNT: 16, PERF_SEL: 16}
    outs = {DESC_ADDR: "desc_addr_o", LAYER_COUNT: "layer_count_o"}
    for addr, width in widths.items():
        mask = (1 << width) - 1
        cur = 0
        for v in (0xFFFF_FFFF, 0, 0xA5A5_5A5A, rng.getrandbits(32)):
            await tb.write(addr, v)
            cur = v & mask
            assert await tb.read(addr) == cur, f"0x{addr:02x} full write"
        for lo, hi in strb_ranges():
            v = rng.getrandbits(32)
            await tb.write(addr, v, lo, hi)
            cur = merge(cur, v, strb_of(lo, hi)) & mask
            assert await tb.read(addr) == cur, f"0x{addr:02x} write bytes {lo}..{hi - 1}"
            if addr in outs:
                assert int(getattr(dut, outs[addr]).value) == cur, outs[addr]
    # IRQ_EN is held and reads back; START/ABORT read as 0; a write without byte 0 does nothing.
    await tb.write(CTRL, IRQ_EN)
    assert await tb.read(CTRL) == IRQ_EN
    await tb.write(CTRL, 0xFFFF_FF00, 1, 4)
    assert await tb.read(CTRL) == IRQ_EN
    await tb.write(CTRL, 0)
    assert await tb.read(CTRL) == 0
    assert tb.start_cycles == [] and tb.abort_cycles == []
    # Read-only and unmapped addresses: writes ignored with OKAY, reads of unmapped give 0.
    before = {4 * w: await tb.read(4 * w) for w in range(tb.words)}
    for w in range(tb.words):
        addr = 4 * w
        if addr in (CTRL, STATUS, DESC_ADDR, LAYER_COUNT, PERF_SEL):
            continue
        await tb.write(addr, 0xFFFF_FFFF)
    after = {4 * w: await tb.read(4 * w) for w in range(tb.words)}
    assert after == before, "a write to a read-only or unmapped address changed the map"
    for addr, v in after.items():
        if addr > TOTAL_HI or addr == 0x1C:
            assert v == 0, f"unmapped 0x{addr:02x} reads 0x{v:08x}"


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def start_abort_pulses(dut):
    tb = Tb(dut)
    await tb.init()

    async def settle():
        await ClockCycles(dut.clk_i, 3)

    await tb.write(CTRL, START)
    await settle()
    assert len(tb.start_cycles) == 1 and tb.abort_cycles == []
    await tb.write(CTRL, ABORT)
    await settle()
    assert len(tb.start_cycles) == 1 and len(tb.abort_cycles) == 1
    # Both at once: ABORT wins.
    await tb.write(CTRL, START | ABORT)
    await settle()
    assert len(tb.start_cycles) == 1 and len(tb.abort_cycles) == 2
    # START while busy is ignored; ABORT still pulses.
    await tb.set_inputs(busy_i=1)
    await tb.write(CTRL, START)
    await tb.write(CTRL, ABORT)
    await settle()
    assert len(tb.start_cycles) == 1 and len(tb.abort_cycles) == 3
    assert await tb.read(STATUS) & 1 == 1
    await tb.set_inputs(busy_i=0)
    # START with byte 0 not strobed does nothing.
    await tb.write(CTRL, 0xFFFF_FFFF, 1, 4)
    await settle()
    assert len(tb.start_cycles) == 1 and len(tb.abort_cycles) == 3
    # Five STARTs back to back while idle: five single-cycle pulses.
    for _ in range(5):
        await tb.write(CTRL, START)
    await settle()
    assert len(tb.start_cycles) == 6 and len(tb.abort_cycles) == 3
    for cycles in (tb.start_cycles, tb.abort_cycles):
        assert all(b - a > 1 for a, b in zip(cycles, cycles[1:])), f"pulse longer than a cycle: {cycles}"


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def sticky_flags_w1c_irq(dut):
    tb = Tb(dut)
    await tb.init()

    async def status():
        return await tb.read(STATUS)

    await tb.done()
    assert await status() & 0x7 == DONE
    assert int(dut.irq_o.value) == 0, "irq_o without IRQ_EN"
    await tb.write(CTRL, IRQ_EN)
    assert int(dut.irq_o.value) == 1
    await tb.write(STATUS, 0xFFFF_FFF9)  # every bit but DONE and ERROR: nothing clears
    assert await status() & 0x7 == DONE and int(dut.irq_o.value) == 1
    await tb.write(STATUS, DONE, 1, 4)   # byte 0 not strobed: nothing clears
    assert await status() & 0x7 == DONE
    await tb.write(STATUS, DONE)
    assert await status() & 0x7 == 0 and int(dut.irq_o.value) == 0

    # ERROR and the ERR latch: the first error since ERROR was clear is kept.
    await tb.err(13, 0x1234)
    assert await status() & 0x7 == ERROR and int(dut.irq_o.value) == 1
    assert await tb.read(ERR) == 13 | 0x1234 << 16
    await tb.err(18, 0x0007)
    assert await tb.read(ERR) == 13 | 0x1234 << 16, "a second error overwrote ERR"
    await tb.write(STATUS, ERROR)
    assert await status() & 0x7 == 0 and int(dut.irq_o.value) == 0
    assert await tb.read(ERR) == 13 | 0x1234 << 16, "ERR is kept after W1C"
    await tb.err(16, 0xBEEF)
    assert await tb.read(ERR) == 16 | 0xBEEF << 16
    await tb.done()
    assert await status() & 0x7 == DONE | ERROR
    await tb.write(CTRL, 0)  # IRQ_EN off: irq_o drops, flags stay
    assert int(dut.irq_o.value) == 0 and await status() & 0x7 == DONE | ERROR
    await tb.write(CTRL, IRQ_EN)
    assert int(dut.irq_o.value) == 1

    # done_i/err_i held across a W1C write: the flags end set, and ERR holds the error of the
    # clear cycle (the exact same-cycle race is in raw_channel_order_and_backpressure).
    await tb.set_inputs(done_i=1, err_i=1, err_code_i=9, err_layer_i=3)
    await tb.write(STATUS, DONE | ERROR)
    await tb.set_inputs(done_i=0, err_i=0)
    assert await status() & 0x7 == DONE | ERROR
    assert await tb.read(ERR) == 9 | 3 << 16, "error set during its clear not latched"

    # START (idle) clears both and keeps IRQ_EN as written.
    await tb.write(CTRL, START | IRQ_EN)
    assert await status() & 0x7 == 0 and int(dut.irq_o.value) == 0
    # START while busy clears nothing.
    await tb.done()
    await tb.set_inputs(busy_i=1, cur_layer_i=0xABCD)
    await tb.write(CTRL, START | IRQ_EN)
    assert await status() == 0xABCD << 16 | DONE | 1
    await tb.set_inputs(busy_i=0)
    assert int(dut.irq_o.value) == 1


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def perf_counters(dut):
    tb = Tb(dut)
    await tb.init()
    rng = random.Random(SEED + 1)
    n = tb.p["MaxPerfLayers"]
    layers = sorted({0, 1, 2, n - 1, min(5, n - 1)})
    pushed = {}
    for layer in layers + [n, n + 3, 0xFFFF]:  # the last three are beyond storage
        vals = tuple(rand64(rng) for _ in range(4))
        await tb.perf_push(layer, vals)
        if layer < n:
            pushed[layer] = vals
    vals = (MASK64, 1 << 32, (1 << 32) - 1, 0x8000_0000_0000_0001)  # overwrite, half boundaries
    await tb.perf_push(layers[0], vals)
    pushed[layers[0]] = vals
    for layer in sorted(set(layers) | {3, n - 2, n, n + 3, 0xFFFF}):
        got = await tb.read_perf(layer)
        exp = pushed.get(layer, (0, 0, 0, 0))
        assert got == exp, f"layer {layer}: read {[hex(x) for x in got]}, expected {[hex(x) for x in exp]}"
    # An accepted START forgets them.
    await tb.write(CTRL, START)
    for layer in layers:
        assert await tb.read_perf(layer) == (0, 0, 0, 0), f"layer {layer} kept across START"


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def total_cycles(dut):
    tb = Tb(dut)
    await tb.init()

    async def run(cycles, start=True):
        """A fake engine: START, busy for exactly `cycles` rising edges, done."""
        if start:
            await tb.write(CTRL, START)
        await tb.set_inputs(busy_i=1)
        for _ in range(cycles - 1):
            await FallingEdge(dut.clk_i)
        await tb.set_inputs(busy_i=0, done_i=1)
        await tb.set_inputs(done_i=0)

    await run(37)
    assert await tb.read_total() == 37
    await ClockCycles(dut.clk_i, 20)  # idle cycles do not count
    assert await tb.read_total() == 37
    await run(5, start=False)  # busy without a START adds up
    assert await tb.read_total() == 42
    await run(11)  # START restarts from 0
    assert await tb.read_total() == 11
    # While busy it counts up, and agrees with the reference.
    await tb.write(CTRL, START)
    await tb.set_inputs(busy_i=1)
    a = await tb.read_total()
    await ClockCycles(dut.clk_i, 10)
    b = await tb.read_total()
    assert 0 < a < b, (a, b)
    await tb.set_inputs(busy_i=0)
    assert await tb.read_total() == tb.total_ref


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def scoreboard_random(dut):
    """Random accesses and engine events, every read compared with the model, all five AXI-Lite
    channels stalled at random; then the whole map compared."""
    tb = Tb(dut)
    await tb.init()
    rng = random.Random(SEED + 2)
    tb.set_pauses(rng)
    m = Model(tb.p)
    n = tb.p["MaxPerfLayers"]
    rw = [CTRL, STATUS, DESC_ADDR, LAYER_COUNT, PERF_SEL]
    errors = []

    def rand_addr():
        r = rng.random()
        if r < 0.6:
            return rng.choice(rw + [CTRL, STATUS])
        if r < 0.9:
            return 4 * rng.randrange(0x4C // 4)
        return 4 * rng.randrange(tb.words)

    def rand_write(allow_start=True):
        addr = rand_addr()
        lo, hi = rng.choice(strb_ranges()) if rng.random() < 0.4 else (0, 4)
        if addr == PERF_SEL and rng.random() < 0.7:
            data = rng.randrange(n + 3)
        elif addr == CTRL:
            cmd = rng.choices([0, START, ABORT, START | ABORT], [8, 8, 2, 1])[0]
            if not allow_start:
                cmd &= ~START
            data = rng.getrandbits(32) & ~(START | ABORT) | cmd
        else:
            data = rng.getrandbits(32)
        return addr, data, lo, hi

    def check_read(addr, got):
        exp = m.read(addr, tb.total_ref)
        if got != exp:
            errors.append(f"0x{addr:02x}: read 0x{got:08x}, expected 0x{exp:08x}")

    def known(addr):
        # While busy_i is high TOTAL_CYCLES moves between the read and the comparison.
        return addr not in (TOTAL_LO, TOTAL_HI) or not m.busy

    reads = 0
    for step in range(500):
        op = rng.random()
        if op < 0.30:
            addr, data, lo, hi = rand_write()
            await tb.write(addr, data, lo, hi)
            m.write(addr, data, strb_of(lo, hi))
        elif op < 0.55:
            addr = rand_addr()
            if not known(addr):
                continue
            check_read(addr, await tb.read(addr))
            reads += 1
        elif op < 0.62:
            # A burst of writes in flight together (the master keeps their order). At most the
            # first may START: a second one could land while start_o is still high, when the
            # DUT counts the engine as busy and the model cannot know the timing.
            batch = [rand_write(allow_start=(i == 0)) for i in range(rng.randint(2, 5))]
            tasks = [cocotb.start_soon(tb.write(*b)) for b in batch]
            for t in tasks:
                await t
            for addr, data, lo, hi in batch:
                m.write(addr, data, strb_of(lo, hi))
        elif op < 0.69:
            # A burst of reads in flight together.
            addrs = [a for a in (rand_addr() for _ in range(rng.randint(2, 5))) if known(a)]
            tasks = [cocotb.start_soon(tb.read(a)) for a in addrs]
            for a, t in zip(addrs, tasks):
                check_read(a, await t)
            reads += len(addrs)
        elif op < 0.75:
            m.busy = int(rng.random() < 0.3)
            m.cur_layer = rng.getrandbits(16)
            await tb.set_inputs(busy_i=m.busy, cur_layer_i=m.cur_layer)
        elif op < 0.80:
            await tb.done()
            m.done_pulse()
        elif op < 0.85:
            code, layer = rng.getrandbits(8), rng.getrandbits(16)
            await tb.err(code, layer)
            m.err_pulse(code, layer)
        elif op < 0.95:
            layer = rng.randrange(n + 3) if rng.random() < 0.9 else rng.getrandbits(16)
            vals = tuple(rand64(rng) for _ in range(4))
            await tb.perf_push(layer, vals)
            m.perf_push(layer, vals)
        else:
            await ClockCycles(dut.clk_i, rng.randint(1, 8))
        if int(dut.irq_o.value) != m.irq:
            errors.append(f"step {step}: irq_o {int(dut.irq_o.value)}, expected {m.irq}")
        if len(errors) > 5:
            break

    await tb.set_inputs(busy_i=0)
    m.busy = 0
    for w in range(tb.words):
        check_read(4 * w, await tb.read(4 * w))
    for layer in range(min(n, 8)):
        await tb.write(PERF_SEL, layer)
        m.write(PERF_SEL, layer, 0xF)
        for k in range(8):
            addr = PERF_BASE + 4 * k
            check_read(addr, await tb.read(addr))
    await ClockCycles(dut.clk_i, 3)
    if len(tb.start_cycles) != m.starts or len(tb.abort_cycles) != m.aborts:
        errors.append(f"pulses: {len(tb.start_cycles)} START, {len(tb.abort_cycles)} ABORT; "
                      f"expected {m.starts}, {m.aborts}")
    for e in errors[:10]:
        dut._log.error(e)
    assert not errors, f"{len(errors)} mismatches against the register model"
    dut._log.info(f"{reads} reads compared; {m.starts} STARTs ({m.ignored_starts} ignored while "
                  f"busy), {m.aborts} ABORTs, {m.clears} flags cleared by W1C, "
                  f"{len(m.perf)} layers with counters at the end")


# ----------------------------------------------------------------------------------------------
# Pin-level driver
# ----------------------------------------------------------------------------------------------
class RawAxil:
    """One AXI-Lite transaction at a time, cycle by cycle: signals change on the falling edge,
    handshakes are decided from the values seen there (the DUT's outputs only move on the
    rising edge)."""

    def __init__(self, dut):
        self.dut = dut

    def s(self, name):
        return getattr(self.dut, f"s_axil_{name}")

    async def write(self, addr, data, strb, aw_delay=0, w_delay=0, b_delay=0, limit=60, side=None):
        """side: {cycle: {signal: value}} driven alongside (engine inputs in a chosen cycle)."""
        aw_done = w_done = False
        b_seen = None  # cycle bvalid first seen
        for cyc in range(limit):
            await FallingEdge(self.dut.clk_i)
            for k, v in (side or {}).get(cyc, {}).items():
                getattr(self.dut, k).value = v
            awv = not aw_done and cyc >= aw_delay
            wv = not w_done and cyc >= w_delay
            br = cyc >= b_delay
            # Payloads are only meaningful with valid: drive something else otherwise.
            self.s("awvalid").value = int(awv)
            self.s("awaddr").value = addr if awv else addr ^ 0x3C
            self.s("wvalid").value = int(wv)
            self.s("wdata").value = data if wv else ~data & 0xFFFF_FFFF
            self.s("wstrb").value = strb if wv else ~strb & 0xF
            self.s("bready").value = int(br)
            bvalid = int(self.s("bvalid").value)
            if bvalid:
                assert aw_done and w_done, "bvalid before both AW and W were taken"
                assert int(self.s("bresp").value) == 0
                if b_seen is None:
                    b_seen = cyc
            elif b_seen is not None:
                raise AssertionError("bvalid dropped before bready")
            aw_hs = awv and int(self.s("awready").value)
            w_hs = wv and int(self.s("wready").value)
            await RisingEdge(self.dut.clk_i)
            aw_done |= bool(aw_hs)
            w_done |= bool(w_hs)
            if bvalid and br:
                await FallingEdge(self.dut.clk_i)
                self.s("awvalid").value = 0
                self.s("wvalid").value = 0
                self.s("bready").value = 0
                return cyc - b_seen  # cycles bvalid waited
        raise AssertionError(f"write 0x{addr:02x} did not complete")

    async def read(self, addr, ar_delay=0, r_delay=0, limit=60):
        ar_done = False
        held = None
        for cyc in range(limit):
            await FallingEdge(self.dut.clk_i)
            arv = not ar_done and cyc >= ar_delay
            rr = cyc >= r_delay
            self.s("arvalid").value = int(arv)
            self.s("araddr").value = addr if arv else addr ^ 0x3C
            self.s("rready").value = int(rr)
            rvalid = int(self.s("rvalid").value)
            if rvalid:
                data = int(self.s("rdata").value)
                assert int(self.s("rresp").value) == 0
                assert held is None or held == data, "rdata changed while rvalid waited"
                held = data
            elif held is not None:
                raise AssertionError("rvalid dropped before rready")
            ar_hs = arv and int(self.s("arready").value)
            await RisingEdge(self.dut.clk_i)
            ar_done |= bool(ar_hs)
            if rvalid and rr:
                await FallingEdge(self.dut.clk_i)
                self.s("arvalid").value = 0
                self.s("rready").value = 0
                return data
        raise AssertionError(f"read 0x{addr:02x} did not complete")


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def raw_channel_order_and_backpressure(dut):
    tb = Tb(dut, master=False)
    await tb.init()
    axi = RawAxil(dut)
    cur = 0
    cases = [  # (aw_delay, w_delay, b_delay, strb)
        (0, 0, 0, 0xF), (6, 0, 0, 0xF), (0, 6, 0, 0x5), (3, 3, 9, 0xA),
        (0, 9, 12, 0x9), (8, 1, 3, 0x6), (0, 0, 7, 0x1), (5, 5, 5, 0x0),
    ]
    rng = random.Random(SEED + 3)
    for aw_d, w_d, b_d, strb in cases:
        v = rng.getrandbits(32)
        waited = await axi.write(DESC_ADDR, v, strb, aw_d, w_d, b_d)
        if b_d > max(aw_d, w_d) + 2:
            assert waited > 0, "B back-pressure not exercised"
        cur = merge(cur, v, strb)
        assert int(dut.desc_addr_o.value) == cur, f"strb {strb:04b}: desc_addr_o"
        for r_d in (0, 4):
            got = await axi.read(DESC_ADDR, ar_delay=r_d // 2, r_delay=r_d)
            assert got == cur, f"strb {strb:04b} delays {aw_d},{w_d},{b_d}: 0x{got:08x} != 0x{cur:08x}"
    # With AW and W together and B free, a write takes effect at the first edge. An event in
    # that very cycle beats the clear: a W1C or START never loses a done_i/err_i.
    async def status():
        return await axi.read(STATUS) & 0x7

    await tb.pulse(done_i=1)
    await tb.pulse(err_i=1, err_code_i=1, err_layer_i=1)
    assert await status() == DONE | ERROR
    await axi.write(STATUS, DONE | ERROR, 0x1, side={0: {"done_i": 1}, 1: {"done_i": 0}})
    assert await status() == DONE, "done_i in the W1C cycle lost"
    await axi.write(STATUS, DONE, 0x1, side={0: {"err_i": 1, "err_code_i": 7, "err_layer_i": 70},
                                             1: {"err_i": 0}})
    assert await status() == ERROR, "W1C of DONE"
    await axi.write(STATUS, ERROR, 0x1, side={0: {"err_i": 1, "err_code_i": 5, "err_layer_i": 50},
                                              1: {"err_i": 0}})
    assert await status() == ERROR, "err_i in the W1C cycle lost"
    assert await axi.read(ERR) == 5 | 50 << 16, "ERR of an error in the W1C cycle not latched"
    await axi.write(CTRL, START, 0x1, side={0: {"done_i": 1}, 1: {"done_i": 0}})
    assert await status() == DONE, "done_i in the START cycle lost"
    assert len(tb.start_cycles) == 1
    # In the cycle start_o is high the engine has not raised busy_i yet: a START landing
    # then is ignored too. AW and W held valid for two edges with bready high make two
    # back-to-back writes, the second taking effect exactly in that cycle.
    await FallingEdge(dut.clk_i)
    for k, v in (("awaddr", CTRL), ("wdata", START), ("wstrb", 1), ("awvalid", 1), ("wvalid", 1),
                 ("bready", 1)):
        axi.s(k).value = v
    await FallingEdge(dut.clk_i)
    await FallingEdge(dut.clk_i)
    axi.s("awvalid").value = 0
    axi.s("wvalid").value = 0
    await ClockCycles(dut.clk_i, 3)
    axi.s("bready").value = 0
    assert len(tb.start_cycles) == 2, f"START during start_o: start_o in cycles {tb.start_cycles}"
    # Low address bits are ignored (the byte lanes come from wstrb alone).
    await axi.write(LAYER_COUNT + 2, 0x1234_5678, 0xC)
    assert await axi.read(LAYER_COUNT + 3) == 0
    await axi.write(LAYER_COUNT + 1, 0x1234_5678, 0x3)
    assert await axi.read(LAYER_COUNT + 1) == 0x5678
    assert await axi.read(ID, r_delay=10) == ID_VALUE
