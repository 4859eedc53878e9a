"""cocotb tests of uz_axi_rd and uz_axi_wr, side by side in uz_axi_dma_tb on
one AXI4 port served by a cocotbext-axi AxiRam with random stalls on every
channel (AR, R, AW, W, B) and random stalls on both data streams.

A bus monitor checks every burst: INCR, full width, aligned, at most
min(256, MaxBurstBeats) beats, inside one 4 KiB page, at most
MaxOutstanding bursts in flight, W beat count = awlen+1, wstrb all ones or
(after an abort) all zeros, one B per AW. Read data must equal the RAM in
command order with data_last on each command's last beat; written memory
must equal a mirror image, guard bytes around the commands included.

UZ_MUTATE=1 corrupts one expected read beat and UZ_MUTATE=2 one expected
written beat, so the pytest wrapper can prove each check fails when wrong."""
import logging
import os
import random

import cocotb
import cocotb.utils
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiBus, AxiRam

PAGE = 4096
MEM_SIZE = 1 << 20
RD_BASE, WR_BASE, REGION = 0x00000, 0x80000, 0x40000  # read and write regions
MUTATE = os.environ.get("UZ_MUTATE", "0")


def _seed(name: str) -> int:
    return int(os.environ.get("UZ_SEED", "1")) * 1000 + sum(map(ord, name))


def _stalls(rng: random.Random):
    """Pause pattern: phases of 10..80 cycles, each with its own stall rate,
    so runs at full throughput alternate with heavy back-pressure."""
    while True:
        p = rng.choice((0.0, 0.0, 0.3, 0.6, 0.9))
        for _ in range(rng.randint(10, 80)):
            yield rng.random() < p


class BusMonitor:
    """Watches the AXI port every cycle and records protocol violations."""

    def __init__(self, tb):
        self.tb = tb
        self.errors: list[str] = []
        self.reset()

    def reset(self):
        self.ar: list[tuple[int, int]] = []    # (address, beats) per AR burst
        self.aw: list[tuple[int, int]] = []
        self.rd_inflight = self.wr_inflight = 0
        self.max_rd_inflight = self.max_wr_inflight = 0
        self.r_beats = 0
        self.r_err = 0
        self.w_burst_beats: list[int] = []     # W beats counted at each wlast
        self.w_cur = 0
        self.w_strobes: list[int] = []         # 1 all ones, 0 all zeros, per W beat
        self.b_count = 0
        self.b_err = 0

    def error(self, msg: str):
        if len(self.errors) < 20:
            self.tb.dut._log.error(msg)
        self.errors.append(msg)

    def _burst(self, ch: str, addr: int, beats: int, size: int, burst: int):
        tb = self.tb
        if burst != 1:
            self.error(f"{ch} burst type {burst}, expected INCR")
        if size != tb.size_log2:
            self.error(f"{ch} size {size}, expected {tb.size_log2}")
        if addr % tb.nb:
            self.error(f"{ch} address {addr:#x} not aligned to {tb.nb} bytes")
        if beats > min(256, tb.max_burst):
            self.error(f"{ch} burst of {beats} beats at {addr:#x} exceeds {min(256, tb.max_burst)}")
        if addr % PAGE + beats * tb.nb > PAGE:
            self.error(f"{ch} burst {addr:#x}+{beats} beats crosses a 4 KiB boundary")

    async def run(self):
        d = self.tb.dut
        full = (1 << self.tb.nb) - 1
        max_out = self.tb.max_out
        while True:
            await RisingEdge(d.clk_i)   # values read now are those sampled at this edge
            if d.m_axi_arvalid.value == 1 and d.m_axi_arready.value == 1:
                addr, beats = int(d.m_axi_araddr.value), int(d.m_axi_arlen.value) + 1
                self._burst("AR", addr, beats, int(d.m_axi_arsize.value), int(d.m_axi_arburst.value))
                self.ar.append((addr, beats))
                self.rd_inflight += 1
                self.max_rd_inflight = max(self.max_rd_inflight, self.rd_inflight)
                if self.rd_inflight > max_out:
                    self.error(f"{self.rd_inflight} read bursts in flight > MaxOutstanding {max_out}")
            if d.m_axi_rvalid.value == 1 and d.m_axi_rready.value == 1:
                self.r_beats += 1
                if int(d.m_axi_rresp.value):
                    self.r_err += 1
                if d.m_axi_rlast.value == 1:
                    self.rd_inflight -= 1
            if d.m_axi_awvalid.value == 1 and d.m_axi_awready.value == 1:
                addr, beats = int(d.m_axi_awaddr.value), int(d.m_axi_awlen.value) + 1
                self._burst("AW", addr, beats, int(d.m_axi_awsize.value), int(d.m_axi_awburst.value))
                self.aw.append((addr, beats))
                self.wr_inflight += 1
                self.max_wr_inflight = max(self.max_wr_inflight, self.wr_inflight)
                if self.wr_inflight > max_out:
                    self.error(f"{self.wr_inflight} write bursts in flight > MaxOutstanding {max_out}")
            if d.m_axi_wvalid.value == 1 and d.m_axi_wready.value == 1:
                strb = int(d.m_axi_wstrb.value)
                if strb not in (0, full):
                    self.error(f"wstrb {strb:#x} is neither all ones nor all zeros")
                self.w_strobes.append(1 if strb else 0)
                self.w_cur += 1
                if d.m_axi_wlast.value == 1:
                    self.w_burst_beats.append(self.w_cur)
                    self.w_cur = 0
            if d.m_axi_bvalid.value == 1 and d.m_axi_bready.value == 1:
                self.b_count += 1
                self.wr_inflight -= 1
                if int(d.m_axi_bresp.value):
                    self.b_err += 1

    def check_idle(self, what: str):
        """At the edge where idle_o is seen high, nothing may be in flight:
        the engine reports a layer done on wr idle_o, so every B must be in."""
        if self.rd_inflight:
            self.error(f"{what}: idle with {self.rd_inflight} read bursts in flight")
        if self.wr_inflight or self.b_count != len(self.aw):
            self.error(f"{what}: idle with {len(self.aw) - self.b_count} B responses outstanding")

    def check_write_bursts(self):
        """Every announced burst got exactly its beats and one B response."""
        want = [b for _, b in self.aw]
        if self.w_burst_beats != want:
            self.error(f"W beats per burst {self.w_burst_beats[:8]}... differ from awlen+1 {want[:8]}...")
        if self.w_cur:
            self.error(f"{self.w_cur} W beats after the last wlast")
        if self.b_count != len(self.aw):
            self.error(f"{self.b_count} B responses for {len(self.aw)} AW bursts")

    def check_tiling(self, ch: str, cmds, bursts, partial_tail: bool = False):
        """The bursts cover the commands exactly, in order (after an abort,
        the last commands may be covered only partly or not at all)."""
        nb = self.tb.nb
        i = 0
        for addr, beats in cmds:
            cur, end = addr, addr + beats * nb
            while cur < end and i < len(bursts):
                baddr, bbeats = bursts[i]
                if baddr != cur or baddr + bbeats * nb > end:
                    self.error(f"{ch} burst {baddr:#x}+{bbeats} does not continue command "
                               f"{addr:#x}+{beats} at {cur:#x}")
                    return
                cur += bbeats * nb
                i += 1
            if cur != end and not partial_tail:
                self.error(f"{ch} command {addr:#x}+{beats} covered only up to {cur:#x}")
                return
        if i != len(bursts):
            self.error(f"{ch}: {len(bursts) - i} bursts beyond the commands")


def _no_stalls():
    while True:
        yield False


class Tb:
    def __init__(self, dut, name: str, stalls: bool = True):
        self.dut = dut
        self.rng = random.Random(_seed(name))
        self.dw = int(dut.DataWidth.value)
        self.nb = self.dw // 8
        self.size_log2 = self.nb.bit_length() - 1
        self.max_burst = int(dut.MaxBurstBeats.value)
        self.max_out = int(dut.MaxOutstanding.value)
        cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
        logging.getLogger(f"cocotb.{dut._name}.m_axi").setLevel(logging.WARNING)   # a line per burst
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk_i, dut.rst_ni,
                          reset_active_level=False, size=MEM_SIZE)
        gen = (lambda: _stalls(random.Random(self.rng.random()))) if stalls else _no_stalls
        for ch in (self.ram.read_if.ar_channel, self.ram.read_if.r_channel, self.ram.write_if.aw_channel,
                   self.ram.write_if.w_channel, self.ram.write_if.b_channel):
            ch.set_pause_generator(gen())
        self.mon = BusMonitor(self)
        self.rd_got: list[tuple[int, int]] = []
        self.rd_ready_gen = gen()
        self.wr_valid_gen = gen()
        self.wr_sent = 0
        self.rd_overlap = 0   # read commands accepted while earlier data was still due

    async def reset(self):
        d = self.dut
        for s in (d.rd_cmd_valid_i, d.rd_cmd_addr_i, d.rd_cmd_beats_i, d.rd_data_ready_i, d.rd_abort_i,
                  d.rd_err_clear_i, d.wr_cmd_valid_i, d.wr_cmd_addr_i, d.wr_cmd_beats_i, d.wr_data_valid_i,
                  d.wr_data_i, d.wr_abort_i, d.wr_err_clear_i):
            s.value = 0
        d.rst_ni.value = 0
        for _ in range(4):
            await RisingEdge(d.clk_i)
        d.rst_ni.value = 1
        await RisingEdge(d.clk_i)
        cocotb.start_soon(self.mon.run())
        cocotb.start_soon(self.rd_sink())

    # -- stimulus ---------------------------------------------------------------

    def random_beats(self) -> int:
        r = self.rng.random()
        if r < 0.15:
            return self.rng.choice((1, 2, 255, 256, 257, 511, 512, 513, 1000))
        if r < 0.5:
            return self.rng.randint(1, 64)
        return self.rng.randint(1, 1000)

    def random_offset(self) -> int:
        """A beat-aligned page offset, mostly just below a 4 KiB boundary."""
        nb, r = self.nb, self.rng.random()
        if r < 0.5:
            return PAGE - nb * self.rng.randint(1, 8)
        if r < 0.65:
            return 0
        return nb * self.rng.randrange(PAGE // nb)

    def read_cmds(self, n: int, min_beats: int = 1, max_beats: int = 1000):
        cmds = []
        for _ in range(n):
            beats = min(max(self.random_beats(), min_beats), max_beats)
            span = -(-beats * self.nb // PAGE) + 1
            page = self.rng.randrange(REGION // PAGE - span)
            cmds.append((RD_BASE + page * PAGE + self.random_offset(), beats))
        return cmds

    def write_cmds(self, n: int, min_beats: int = 1, max_beats: int = 1000):
        """Disjoint commands with a few untouched guard beats between them."""
        cmds, cur = [], WR_BASE + PAGE
        for _ in range(n):
            beats = min(max(self.random_beats(), min_beats), max_beats)
            addr = (cur // PAGE) * PAGE + self.random_offset()
            if addr < cur:
                addr += PAGE
            assert addr + beats * self.nb < WR_BASE + REGION - PAGE, "write region too small"
            cmds.append((addr, beats))
            cur = addr + (beats + self.rng.randint(1, 4)) * self.nb
        return cmds

    async def drive_cmds(self, prefix: str, cmds, gap: float = 0.3):
        """Offer the commands in order; valid holds until accepted."""
        d = self.dut
        valid, addr_s, beats_s = (getattr(d, f"{prefix}_cmd_{s}") for s in ("valid_i", "addr_i", "beats_i"))
        ready = getattr(d, f"{prefix}_cmd_ready_o")
        due = 0
        for addr, beats in cmds:
            while self.rng.random() < gap:
                await RisingEdge(d.clk_i)
            valid.value, addr_s.value, beats_s.value = 1, addr, beats
            while True:
                await RisingEdge(d.clk_i)
                if ready.value == 1:
                    break
            valid.value = 0
            if prefix == "rd" and len(self.rd_got) < due:
                self.rd_overlap += 1
            due += beats

    async def rd_sink(self):
        """Collects read beats under random back-pressure, forever."""
        d = self.dut
        ready = False
        while True:
            await RisingEdge(d.clk_i)
            if ready and d.rd_data_valid_o.value == 1:
                self.rd_got.append((int(d.rd_data_o.value), int(d.rd_data_last_o.value)))
            ready = not next(self.rd_ready_gen)
            d.rd_data_ready_i.value = int(ready)

    async def wr_source(self, beats: list[int]):
        """Offers the beats in order at random; valid holds until accepted."""
        d = self.dut
        self.wr_sent = 0
        valid = False
        while self.wr_sent < len(beats):
            await RisingEdge(d.clk_i)
            if valid and d.wr_data_ready_o.value == 1:
                self.wr_sent += 1
                valid = False
            if self.wr_sent == len(beats):
                break
            if not valid:
                valid = not next(self.wr_valid_gen)
            d.wr_data_valid_i.value = int(valid)
            d.wr_data_i.value = beats[self.wr_sent]
        d.wr_data_valid_i.value = 0

    async def until(self, cond, cycles: int, what: str):
        """Wait for cond(), failing after a bounded number of cycles (no hang)."""
        for _ in range(cycles):
            if cond():
                return
            await RisingEdge(self.dut.clk_i)
        assert cond(), f"timeout after {cycles} cycles waiting for {what}"

    async def cycles(self, n: int):
        for _ in range(n):
            await RisingEdge(self.dut.clk_i)

    # -- memory -----------------------------------------------------------------

    def fill(self, base: int) -> bytearray:
        img = bytearray(self.rng.randbytes(REGION))
        self.ram.write(base, bytes(img))
        return img

    def beats_of(self, img: bytearray, base: int, addr: int, beats: int) -> list[int]:
        off, nb = addr - base, self.nb
        return [int.from_bytes(img[off + k * nb:off + (k + 1) * nb], "little") for k in range(beats)]

    def expected_reads(self, img, cmds) -> list[tuple[int, int]]:
        exp = []
        for addr, beats in cmds:
            words = self.beats_of(img, RD_BASE, addr, beats)
            exp += [(w, int(k == beats - 1)) for k, w in enumerate(words)]
        return exp

    def check_reads(self, exp, got, what: str) -> int:
        if MUTATE == "1" and exp:
            k = len(exp) // 2
            exp = exp[:k] + [(exp[k][0] ^ 1, exp[k][1])] + exp[k + 1:]
        errors = 0
        if len(got) != len(exp):
            self.dut._log.error(f"{what}: {len(got)} beats read, expected {len(exp)}")
            errors += 1
        for k, (e, g) in enumerate(zip(exp, got)):
            if e != g:
                errors += 1
                if errors <= 5:
                    self.dut._log.error(f"{what}: beat {k}: expected data {e[0]:#x} last {e[1]}, "
                                        f"got {g[0]:#x} last {g[1]}")
        return errors

    def check_memory(self, img: bytearray, base: int, what: str) -> int:
        got = self.ram.read(base, REGION)
        bad = [k for k in range(0, REGION, self.nb) if got[k:k + self.nb] != img[k:k + self.nb]]
        for k in bad[:5]:
            self.dut._log.error(f"{what}: beat at {base + k:#x}: expected {bytes(img[k:k + self.nb]).hex()}, "
                                f"memory holds {bytes(got[k:k + self.nb]).hex()}")
        return len(bad)

    def apply_writes(self, img: bytearray, cmds, data: list[int], count: int | None = None):
        """The image after the first `count` beats of the stream were written."""
        nb, k = self.nb, 0
        count = len(data) if count is None else count
        for addr, beats in cmds:
            for j in range(beats):
                if k >= count:
                    return
                off = addr - WR_BASE + j * nb
                img[off:off + nb] = data[k].to_bytes(nb, "little")
                k += 1

    def random_data(self, cmds) -> list[int]:
        return [self.rng.getrandbits(self.dw) for _ in range(sum(b for _, b in cmds))]

    async def pulse_abort(self, prefix: str, t_cmd, mode: str) -> dict:
        """Withdraw the command driver and abort: one cycle, or held until
        idle_o (which must rise while abort_i is still high). Returns what
        had crossed the interfaces one cycle after the DMA saw abort_i."""
        d = self.dut
        t_cmd.cancel()
        getattr(d, f"{prefix}_cmd_valid_i").value = 0
        abort = getattr(d, f"{prefix}_abort_i")
        abort.value = 1
        await RisingEdge(d.clk_i)              # the DMA samples abort_i here
        if mode != "hold":
            abort.value = 0
        await RisingEdge(d.clk_i)              # every task has seen the edge before
        seen = {"data": len(self.rd_got), "ar": len(self.mon.ar), "aw": len(self.mon.aw),
                "w_full": self.mon.w_strobes.count(1)}
        if mode == "hold":
            idle = getattr(d, f"{prefix}_idle_o")
            await self.until(lambda: idle.value == 1, self.drain_bound(), f"{prefix} idle with abort_i held")
            await self.cycles(10)
            if getattr(d, f"{prefix}_cmd_ready_o").value != 0:
                self.mon.error(f"{prefix} accepts commands while abort_i is high")
            abort.value = 0
        return seen

    async def fresh_read(self, img, what: str) -> int:
        """One short command after an abort must read exactly."""
        self.mon.reset()
        self.rd_got.clear()
        cmds = self.read_cmds(1, max_beats=40)
        exp = self.expected_reads(img, cmds)
        await self.drive_cmds("rd", cmds, gap=0.0)
        await self.until(lambda: len(self.rd_got) >= len(exp) and self.dut.rd_idle_o.value == 1,
                         40 * len(exp) + self.drain_bound(), what)
        self.mon.check_tiling("AR", cmds, self.mon.ar)
        return self.check_reads(exp, self.rd_got, what)

    async def fresh_write(self, what: str) -> int:
        """One short command after an abort must write exactly."""
        self.mon.reset()
        img = bytearray(self.ram.read(WR_BASE, REGION))
        cmds = self.write_cmds(1, max_beats=40)
        data = self.random_data(cmds)
        await self.drive_cmds("wr", cmds, gap=0.0)   # drop mode ends with this command
        await self.wr_source(data)
        await self.until(lambda: self.dut.wr_idle_o.value == 1, self.drain_bound(), what)
        self.mon.check_idle(what)
        self.mon.check_tiling("AW", cmds, self.mon.aw)
        self.mon.check_write_bursts()
        self.apply_writes(img, cmds, data)
        return self.check_memory(img, WR_BASE, what)

    def drain_bound(self) -> int:
        """Cycles the DMA may need to finish what is in flight, under the
        heaviest stall phase (90 %): every outstanding burst at full length."""
        return 400 + 12 * self.max_out * min(256, self.max_burst)


async def _start(dut, name: str, stalls: bool = True) -> Tb:
    tb = Tb(dut, name, stalls)
    await tb.reset()
    return tb


@cocotb.test()
async def random_traffic(dut):
    """Reads and writes at once: random commands near page boundaries,
    back to back, under random stalls everywhere."""
    tb = await _start(dut, "random_traffic")
    d = dut
    rd_img = tb.fill(RD_BASE)
    wr_img = tb.fill(WR_BASE)
    rd_cmds = tb.read_cmds(10)
    wr_cmds = tb.write_cmds(10)
    rd_exp = tb.expected_reads(rd_img, rd_cmds)
    wr_data = tb.random_data(wr_cmds)
    total = len(rd_exp) + len(wr_data)
    dut._log.info(f"{len(rd_cmds)} read commands ({len(rd_exp)} beats), "
                  f"{len(wr_cmds)} write commands ({len(wr_data)} beats)")

    t_rd = cocotb.start_soon(tb.drive_cmds("rd", rd_cmds))
    t_wr = cocotb.start_soon(tb.drive_cmds("wr", wr_cmds))
    t_src = cocotb.start_soon(tb.wr_source(wr_data))
    bound = 10 * total + 2000
    await tb.until(lambda: t_rd.done() and t_wr.done() and t_src.done() and len(tb.rd_got) >= len(rd_exp),
                   bound, "all commands, write data and read data")
    await tb.until(lambda: d.rd_idle_o.value == 1 and d.wr_idle_o.value == 1, tb.drain_bound(), "idle")
    tb.mon.check_idle("idle")
    # idle_o promises every B has arrived: the memory must already be final.
    tb.apply_writes(wr_img, wr_cmds, wr_data)
    if MUTATE == "2":
        k = wr_cmds[0][0] - WR_BASE
        wr_img[k] ^= 1
    errors = tb.check_memory(wr_img, WR_BASE, "write")
    await tb.cycles(20)                # nothing more may arrive once idle
    errors += tb.check_reads(rd_exp, tb.rd_got, "read")
    tb.mon.check_tiling("AR", rd_cmds, tb.mon.ar)
    tb.mon.check_tiling("AW", wr_cmds, tb.mon.aw)
    tb.mon.check_write_bursts()
    if 0 in tb.mon.w_strobes:
        tb.mon.error("zero-strobe beat without an abort")
    assert tb.mon.r_beats == len(rd_exp), f"{tb.mon.r_beats} R beats for {len(rd_exp)} requested"
    assert d.rd_err_o.value == 0 and d.wr_err_o.value == 0, "err_o set without an error response"
    dut._log.info(f"bursts AR {len(tb.mon.ar)} AW {len(tb.mon.aw)}, most in flight: "
                  f"read {tb.mon.max_rd_inflight} write {tb.mon.max_wr_inflight}")
    if tb.max_out > 1:
        assert tb.mon.max_rd_inflight > 1 and tb.mon.max_wr_inflight > 1, "bursts never overlapped"
    assert tb.rd_overlap > 0, "no read command was accepted while earlier data was still returning"
    assert not tb.mon.errors, f"{len(tb.mon.errors)} bus errors, first: {tb.mon.errors[0]}"
    assert errors == 0, f"{errors} beats differ"


@cocotb.test()
async def throughput(dut):
    """Without stalls, long reads and writes (one at a time, then both at
    once) move about a beat per cycle: the skid stages and burst splitting
    cost no bandwidth."""
    tb = await _start(dut, "throughput", stalls=False)
    d = dut
    rd_img = tb.fill(RD_BASE)
    wr_img = tb.fill(WR_BASE)
    beats = 1000
    rd_cmds = [(RD_BASE + 3 * PAGE - 4 * tb.nb, beats)]
    wr_cmds = [(WR_BASE + 3 * PAGE - 4 * tb.nb, beats)]
    rd_exp = tb.expected_reads(rd_img, rd_cmds)
    wr_data = tb.random_data(wr_cmds)
    # Bus latency and a bubble per burst at most. With one burst in flight
    # each burst waits for the previous one's data, so only report then.
    limit = beats + beats // 16 + 40 if tb.max_out > 1 else 4 * beats
    for what in ("read", "write", "both"):
        tb.rd_got.clear()
        start = cocotb.utils.get_sim_time("ns")
        tasks = []
        if what != "write":
            tasks.append(cocotb.start_soon(tb.drive_cmds("rd", rd_cmds, gap=0.0)))
        if what != "read":
            tasks.append(cocotb.start_soon(tb.drive_cmds("wr", wr_cmds, gap=0.0)))
            tasks.append(cocotb.start_soon(tb.wr_source(wr_data)))
        await tb.until(lambda: all(t.done() for t in tasks) and
                       (what == "write" or len(tb.rd_got) >= beats), 4 * limit, f"{what} data")
        await tb.until(lambda: d.rd_idle_o.value == 1 and d.wr_idle_o.value == 1, 4 * limit, f"{what} idle")
        tb.mon.check_idle(what)
        cycles = int(cocotb.utils.get_sim_time("ns") - start) // 10
        dut._log.info(f"{what}: {beats} beats in {cycles} cycles")
        assert cycles <= limit, f"{what}: {beats} beats took {cycles} cycles (limit {limit})"
        if what != "write":
            assert tb.check_reads(rd_exp, tb.rd_got, f"{what} read") == 0
    tb.apply_writes(wr_img, wr_cmds, wr_data)
    assert tb.check_memory(wr_img, WR_BASE, "throughput write") == 0
    assert not tb.mon.errors, f"{len(tb.mon.errors)} bus errors, first: {tb.mon.errors[0]}"


@cocotb.test()
async def error_response(dut):
    """SLVERR on one page: err_o sets and stays set, every beat still moves,
    both DMAs return to idle, err_clear_i clears."""
    tb = await _start(dut, "error_response")
    d = dut
    rd_img = tb.fill(RD_BASE)
    wr_img = tb.fill(WR_BASE)
    rd_bad = RD_BASE + 8 * PAGE
    wr_bad = WR_BASE + 8 * PAGE

    async def bad_read(address, length):
        if rd_bad <= address < rd_bad + PAGE:
            raise ValueError("injected read error")   # AxiRam answers SLVERR
        return tb.ram.read(address, length)

    async def bad_write(address, data):
        if wr_bad <= address < wr_bad + PAGE:
            raise ValueError("injected write error")  # AxiRam answers SLVERR
        tb.ram.write(address, data)

    tb.ram.read_if._read = bad_read
    tb.ram.write_if._write = bad_write
    logging.getLogger(f"cocotb.{dut._name}.m_axi").setLevel(logging.ERROR)

    n = 3 * PAGE // tb.nb    # three pages around the bad one
    rd_cmds = [(rd_bad - PAGE, n), (rd_bad + 2 * PAGE, 5)]
    wr_cmds = [(wr_bad - PAGE, n), (wr_bad + 2 * PAGE, 5)]
    rd_exp = tb.expected_reads(rd_img, rd_cmds)
    bad_lo = (rd_bad - rd_cmds[0][0]) // tb.nb
    for k in range(bad_lo, bad_lo + PAGE // tb.nb):
        rd_exp[k] = (0, rd_exp[k][1])              # AxiRam returns zeros with SLVERR
    wr_data = tb.random_data(wr_cmds)

    # The first command of each brings the error, the second must not clear it.
    t_rd = cocotb.start_soon(tb.drive_cmds("rd", rd_cmds))
    t_wr = cocotb.start_soon(tb.drive_cmds("wr", wr_cmds))
    t_src = cocotb.start_soon(tb.wr_source(wr_data))
    bound = 10 * (len(rd_exp) + len(wr_data)) + 2000
    await tb.until(lambda: t_rd.done() and t_wr.done() and t_src.done() and len(tb.rd_got) >= len(rd_exp),
                   bound, "all commands and data despite errors")
    await tb.until(lambda: d.rd_idle_o.value == 1 and d.wr_idle_o.value == 1, tb.drain_bound(), "idle")
    tb.mon.check_idle("idle")
    errors = tb.check_reads(rd_exp, tb.rd_got, "read with error")
    wr_orig = bytes(wr_img)
    tb.apply_writes(wr_img, wr_cmds, wr_data)
    k = wr_bad - WR_BASE
    wr_img[k:k + PAGE] = wr_orig[k:k + PAGE]      # the failing writes left the page alone
    errors += tb.check_memory(wr_img, WR_BASE, "write with error")
    bad_bursts = -(-(PAGE // tb.nb) // min(256, tb.max_burst))   # the bad page starts a burst
    assert tb.mon.r_err == PAGE // tb.nb, f"{tb.mon.r_err} R beats with an error response"
    assert tb.mon.b_err == bad_bursts, f"{tb.mon.b_err} B error responses, expected {bad_bursts}"
    assert d.rd_err_o.value == 1, "rd err_o not set (or not sticky) after SLVERR"
    assert d.wr_err_o.value == 1, "wr err_o not set (or not sticky) after SLVERR"
    d.rd_err_clear_i.value = 1
    d.wr_err_clear_i.value = 1
    await RisingEdge(d.clk_i)
    d.rd_err_clear_i.value = 0
    d.wr_err_clear_i.value = 0
    await tb.cycles(2)
    assert d.rd_err_o.value == 0 and d.wr_err_o.value == 0, "err_clear_i did not clear err_o"
    tb.mon.check_tiling("AR", rd_cmds, tb.mon.ar)
    tb.mon.check_tiling("AW", wr_cmds, tb.mon.aw)
    tb.mon.check_write_bursts()
    assert not tb.mon.errors, f"{len(tb.mon.errors)} bus errors, first: {tb.mon.errors[0]}"
    assert errors == 0, f"{errors} beats differ"


@cocotb.test()
async def abort(dut):
    """Abort mid-stream (one-cycle pulse, held level, and with nothing to
    do): idle within a bounded number of cycles, the bus left consistent,
    delivered data a correct prefix, and the DMA usable afterwards."""
    tb = await _start(dut, "abort")
    d = dut
    rd_img = tb.fill(RD_BASE)
    tb.fill(WR_BASE)
    for mode in ("pulse", "hold", "idle"):
        # ---- read ----
        tb.mon.reset()
        tb.rd_got.clear()
        cmds = [] if mode == "idle" else tb.read_cmds(3, min_beats=300)
        exp = tb.expected_reads(rd_img, cmds)
        t_cmd = cocotb.start_soon(tb.drive_cmds("rd", cmds, gap=0.0))
        await tb.cycles(tb.rng.randint(5, max(6, len(exp))))
        seen = await tb.pulse_abort("rd", t_cmd, mode)
        await tb.until(lambda: d.rd_idle_o.value == 1, tb.drain_bound(), f"rd idle after {mode} abort")
        tb.mon.check_idle(f"rd {mode} abort")
        await tb.cycles(20)
        n = len(tb.rd_got)
        errors = tb.check_reads(exp[:n], tb.rd_got, f"rd before {mode} abort")
        # Abort stops delivery at once and lets only an AR already on the bus go.
        if n != seen["data"]:
            tb.mon.error(f"rd delivered {n - seen['data']} beats after the abort")
        if len(tb.mon.ar) > seen["ar"] + 1:
            tb.mon.error(f"rd issued {len(tb.mon.ar) - seen['ar']} bursts after the abort")
        if tb.mon.rd_inflight:
            tb.mon.error(f"rd idle with {tb.mon.rd_inflight} bursts still in flight")
        if tb.mon.r_beats != sum(b for _, b in tb.mon.ar):
            tb.mon.error(f"{tb.mon.r_beats} R beats for {sum(b for _, b in tb.mon.ar)} requested")
        tb.mon.check_tiling("AR", cmds, tb.mon.ar, partial_tail=True)
        dut._log.info(f"rd {mode} abort: {n} of {len(exp)} beats delivered, {len(tb.mon.ar)} bursts")
        errors += await tb.fresh_read(rd_img, f"rd after {mode} abort")
        assert errors == 0, f"{errors} read beats differ ({mode} abort)"

        # ---- write ----
        tb.mon.reset()
        img = bytearray(tb.ram.read(WR_BASE, REGION))
        cmds = [] if mode == "idle" else tb.write_cmds(3, min_beats=300)
        data = tb.random_data(cmds)
        t_cmd = cocotb.start_soon(tb.drive_cmds("wr", cmds, gap=0.0))
        t_src = cocotb.start_soon(tb.wr_source(data))
        await tb.cycles(tb.rng.randint(5, max(6, len(data))))
        seen = await tb.pulse_abort("wr", t_cmd, mode)
        await tb.until(lambda: d.wr_idle_o.value == 1, tb.drain_bound(), f"wr idle after {mode} abort")
        tb.mon.check_idle(f"wr {mode} abort")
        # The producer never saw the abort: its remaining beats are dropped.
        await tb.until(t_src.done, 40 * len(data) + 100, "the producer to get rid of its beats")
        await tb.cycles(20)
        tb.mon.check_write_bursts()
        if tb.mon.wr_inflight:
            tb.mon.error(f"wr idle with {tb.mon.wr_inflight} bursts without B")
        strobes = tb.mon.w_strobes
        k = strobes.count(1)
        if strobes != [1] * k + [0] * (len(strobes) - k):
            tb.mon.error("a full-strobe beat after a zero-strobe one")
        # Only an AW and a W beat already on the bus may still carry data.
        if len(tb.mon.aw) > seen["aw"] + 1:
            tb.mon.error(f"wr issued {len(tb.mon.aw) - seen['aw']} bursts after the abort")
        if k > seen["w_full"] + 1:
            tb.mon.error(f"wr wrote {k - seen['w_full']} data beats after the abort")
        tb.mon.check_tiling("AW", cmds, tb.mon.aw, partial_tail=True)
        tb.apply_writes(img, cmds, data, k)
        errors = tb.check_memory(img, WR_BASE, f"wr {mode} abort")
        dut._log.info(f"wr {mode} abort: {k} of {len(data)} beats written, "
                      f"{len(strobes) - k} zero-strobe beats, {len(tb.mon.aw)} bursts")
        errors += await tb.fresh_write(f"wr after {mode} abort")
        assert not tb.mon.errors, f"{len(tb.mon.errors)} bus errors, first: {tb.mon.errors[0]}"
        assert errors == 0, f"{errors} written beats differ ({mode} abort)"
