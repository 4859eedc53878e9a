"""The bus functional model: the only code that touches the engine's pins and
internal probe points. Everything above it works with transactions.

- control port: AXI4-Lite master (cocotbext-axi)
- memory port: AXI RAM (cocotbext-axi) with idle/back-pressure generators
- probes, sampled once per clock by one coroutine:
    generator output  (uz_ovsf_gen blocks, with the loader's position)
    bias alignment    (compute: aligned bias entering the accumulators)
    shift stage       (write-back: accumulator after any residual add, value after
                       the data shift and clip)
    residual add      (write-back, layers with res=1: the accumulator before the
                       add, the residual as read and aligned, the sum), into
                       ``res_queue``, which ResidualMonitor's run_phase drains
    layer completion  (controller: a layer's counters are pushed)
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

# Registers (docs/architecture.md)
CTRL, STATUS, ERR, DESC_ADDR, LAYER_COUNT = 0x00, 0x04, 0x08, 0x0C, 0x10
ID, CONFIG, PERF_SEL, PERF_BASE, TOTAL_LO = 0x14, 0x18, 0x20, 0x24, 0x44
START, ABORT, IRQ_EN = 1, 2, 4
BUSY, DONE, ERROR = 1, 2, 4

#: Stall patterns of the memory model: probability that a channel pauses a cycle.
STALL_PATTERNS = {"none": 0.0, "light": 0.2, "heavy": 0.6}


class BusFault(Exception):
    """Raised inside the memory model: it answers the beat with SLVERR."""


@dataclass
class FaultPlan:
    """One injected bus error: the nth beat (1-based) of reads or writes from
    now on gets SLVERR. ``fired`` records the layer the engine was running."""
    kind: str                 # "read" | "write"
    nth: int
    seen: int = 0
    fired_layer: int = -1
    fired_addr: int = -1


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def _lanes(v: int, n: int, bits: int) -> list:
    mask = (1 << bits) - 1
    return [_signed((v >> (i * bits)) & mask, bits) for i in range(n)]


@dataclass
class GenSample:
    layer: int
    o: int            # output channel
    group: int        # ci-group (PN channels) within the layer
    f0: int           # first flat index (c*K*K + tap) within the group
    weights: list
    # the tile's first ci-group: a decomposed kernel's (golden.isa.DECOMPOSED)
    # groups count (sub-window, ci-group) from it, sub-window outer
    tile_group: int = 0


@dataclass
class BiasSample:
    layer: int
    o0: int           # first of the PM output channels
    aligned: list


@dataclass
class ShiftSample:
    layer: int
    o0: int           # first of the PN output channels of a write-back group
    y: int
    x: int
    acc: list         # accumulators before ReLU and the data shift (after any residual add)
    out: list         # after ReLU, the data shift and any clip


@dataclass
class ResidualSample:
    layer: int
    o0: int           # first of the PN output channels of a write-back group
    y: int
    x: int
    acc: list         # the accumulator read, before the add (convolution + bias)
    res: list         # the residual as read from the residual buffer (data width)
    res_al: list      # the residual aligned to the accumulator (res_shift)
    sum: list         # the accumulator after the add (what ReLU and the data shift take)


@dataclass
class Probes:
    gen: list = field(default_factory=list)
    bias: list = field(default_factory=list)
    shift: list = field(default_factory=list)
    layer_done: list = field(default_factory=list)


class UzBfm:
    def __init__(self, dut, cfg, stall: str = "none", seed: int = 1, mem_size: int = 1 << 22,
                 probes: bool = True):
        self.dut = dut
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.stall = stall
        # Reset from time 0: the bus models sample it (Icarus starts at X).
        dut.rst_ni.value = 0
        Clock(dut.clk_i, 10, unit="ns").start(start_high=False)  # first edge after reset is applied
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk_i, dut.rst_ni, reset_active_level=False,
                          size=mem_size)
        self.csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk_i, dut.rst_ni,
                                 reset_active_level=False)
        self.set_stall(stall)
        self.probes = Probes()
        # residual adds, as sampled: the monitor's run_phase takes them
        self.res_queue = Queue()
        self._probe_task = None
        # Sampling the probes costs Python work every cycle: runs that only
        # need the memory and the registers (uz run) leave it off.
        self._sample_probes = probes
        self._cycles = 0
        self.fault = None
        self.beats = {"read": 0, "write": 0}    # memory accesses so far
        self.decode_errors = {"read": 0, "write": 0}   # accesses beyond the memory
        # Bus errors come from the memory model's own path: an exception in
        # its access function turns into SLVERR on that beat.
        self._ram_read, self._ram_write = self.ram.read_if._read, self.ram.write_if._write
        self.ram.read_if._read = self._faulty_read
        self.ram.write_if._write = self._faulty_write

    # ----------------------------------------------------------- memory
    def set_stall(self, pattern: str) -> None:
        if pattern not in STALL_PATTERNS:
            raise ValueError(f"unknown stall pattern {pattern!r}; known: {sorted(STALL_PATTERNS)}")
        p = STALL_PATTERNS[pattern]
        self.stall = pattern
        for ch in ("aw", "w", "b", "ar", "r"):
            gen = None
            if p:
                rng = random.Random(self.rng.random())
                gen = (rng.random() < p for _ in itertools.count())
            obj = self.ram.write_if if ch in ("aw", "w", "b") else self.ram.read_if
            chan = getattr(obj, f"{ch}_channel")
            chan.set_pause_generator(gen)
            if gen is None:
                # cocotbext-axi stops the generator but keeps its last value:
                # a channel paused at that moment would stay paused for good
                chan.pause = False

    def set_ctrl_stall(self, pattern: str) -> None:
        """Idle cycles on the control port's channels: AW and W then arrive
        apart, and B and R wait for ready."""
        if pattern not in STALL_PATTERNS:
            raise ValueError(f"unknown stall pattern {pattern!r}; known: {sorted(STALL_PATTERNS)}")
        p = STALL_PATTERNS[pattern]
        for obj, chans in ((self.csr.write_if, ("aw", "w", "b")), (self.csr.read_if, ("ar", "r"))):
            for ch in chans:
                gen = None
                if p:
                    rng = random.Random(self.rng.random())
                    gen = (rng.random() < p for _ in itertools.count())
                chan = getattr(obj, f"{ch}_channel")
                chan.set_pause_generator(gen)
                if gen is None:
                    chan.pause = False        # as in set_stall

    def inject_fault(self, kind: str, nth: int) -> FaultPlan:
        """SLVERR on the nth read or write beat from now (once)."""
        if kind not in ("read", "write") or nth < 1:
            raise ValueError(f"fault {kind!r} at beat {nth}: kind is read|write, beat >= 1")
        self.fault = FaultPlan(kind, nth)
        return self.fault

    def _fire(self, kind: str, addr: int) -> None:
        self.beats[kind] += 1
        if addr >= self.ram.size:
            # Nothing is mapped there: the interconnect answers with an error
            # (the RAM model alone would wrap the address round its size).
            self.decode_errors[kind] += 1
            raise BusFault(f"{kind} at 0x{addr:x}: no memory there")
        f = self.fault
        if f is None or f.kind != kind or f.fired_layer >= 0:
            return
        f.seen += 1
        if f.seen == f.nth:
            f.fired_layer = int(self.dut.u_ctrl.layer_q.value)
            f.fired_addr = addr
            raise BusFault(f"injected {kind} error at 0x{addr:x}")

    async def _faulty_read(self, address, length):
        self._fire("read", address)
        return await self._ram_read(address, length)

    async def _faulty_write(self, address, data):
        self._fire("write", address)
        return await self._ram_write(address, data)

    def load(self, addr: int, data: bytes) -> None:
        self.ram.write(addr, data)

    def read_mem(self, addr: int, size: int) -> bytes:
        return self.ram.read(addr, size)

    # ---------------------------------------------------------- control
    async def reset(self) -> None:
        self.dut.rst_ni.value = 0
        await ClockCycles(self.dut.clk_i, 5)
        self.dut.rst_ni.value = 1
        await ClockCycles(self.dut.clk_i, 5)
        if self._probe_task is None and self._sample_probes:
            self._probe_task = cocotb.start_soon(self._sample())

    async def csr_read(self, addr: int) -> int:
        return int.from_bytes((await self.csr.read(addr, 4)).data, "little")

    async def csr_write(self, addr: int, value: int) -> None:
        await self.csr.write(addr, int(value).to_bytes(4, "little"))

    async def start_program(self, desc_addr: int, n_layers: int) -> int:
        """Program and start; returns the cycle count at START."""
        await self.csr_write(DESC_ADDR, desc_addr)
        await self.csr_write(LAYER_COUNT, n_layers)
        start = self.cycles
        await self.csr_write(CTRL, START | IRQ_EN)
        return start

    async def wait_end(self, start: int, max_cycles: int, clear: bool = True):
        """Wait for the end of the program (interrupt) under a watchdog.
        Returns (status, error code, error layer, cycles since START)."""
        if not int(self.dut.irq_o.value):
            await with_timeout(RisingEdge(self.dut.irq_o), max_cycles * 10, "ns")
        status = await self.csr_read(STATUS)
        err = await self.csr_read(ERR)
        if clear:
            await self.csr_write(STATUS, DONE | ERROR)    # clear for the next program
        return status, err & 0xFF, err >> 16, self.cycles - start

    async def run_program(self, desc_addr: int, n_layers: int, max_cycles: int, pokes=(), reset_after=None):
        """Start a program and wait for its end under a watchdog. ``pokes``:
        register writes during the run, (cycles after START, address, value)
        in order (an ABORT, a second START, ...). ``reset_after``: pull
        rst_ni that many cycles after START instead of waiting for the end;
        returns the status and error registers read after the reset."""
        start = await self.start_program(desc_addr, n_layers)
        for at, addr, value in pokes:
            if self.cycles - start < at:
                await ClockCycles(self.dut.clk_i, at - (self.cycles - start))
            await self.csr_write(addr, value)
        if reset_after is not None:
            if self.cycles - start < reset_after:
                await ClockCycles(self.dut.clk_i, reset_after - (self.cycles - start))
            cycles = self.cycles - start
            await self.reset()
            return await self.csr_read(STATUS), await self.csr_read(ERR), 0, cycles
        return await self.wait_end(start, max_cycles)

    async def wait_idle(self, max_cycles: int) -> int:
        """Cycles until STATUS.BUSY falls (polling the register)."""
        start = self.cycles
        while await self.csr_read(STATUS) & BUSY:
            if self.cycles - start > max_cycles:
                raise TimeoutError(f"engine still busy {max_cycles} cycles after the request")
        return self.cycles - start

    async def layer_counters(self, layer: int) -> dict:
        await self.csr_write(PERF_SEL, layer)
        w = [await self.csr_read(PERF_BASE + 4 * k) for k in range(8)]
        c = [w[2 * k] | w[2 * k + 1] << 32 for k in range(4)]
        return {"cycles": c[0], "mac_busy": c[1], "mem_stall": c[2], "gen_busy": c[3]}

    @property
    def cycles(self) -> int:
        """Clock cycles so far."""
        if self._sample_probes:
            return self._cycles
        return int(get_sim_time(unit="ns")) // 10

    # ----------------------------------------------------------- probes
    async def _sample(self) -> None:
        dut = self.dut
        cfg = self.cfg
        pm, pn, db, ab = cfg.pm, cfg.pn, cfg.data_bits, cfg.acc_bits
        length = cfg.ovsf_len
        loader = dut.u_layer.u_loader
        compute = dut.u_layer.u_compute
        post = dut.u_layer.u_post
        ctrl = dut.u_ctrl
        bias_o0 = {}            # (half, word) -> first output channel the loader put there
        pending_bias = None     # identity of a bias read, resolved next cycle
        # A write-back read walks post's stages: its words arrive in stage 2
        # (the residual as read), the aligned residual and the sum are in
        # stage 2b two cycles later, the clipped value in stage 3 after that.
        pending_shift = None    # the read, its words in stage 2 next cycle
        pending_2a = None       # its words in stage 2a
        pending_2b = None       # its aligned residual and sum in stage 2b
        pending_clip = None     # the shift sample's clipped value: post's stage 3, a cycle later
        bias_half_shift = (2 * (cfg.out_buf_elems // pm) - 1).bit_length() - 1
        while True:
            # Mid-cycle: every register and wire holds this cycle's value in
            # both simulators (the design only uses rising edges).
            await FallingEdge(dut.clk_i)
            self._cycles += 1
            layer = int(ctrl.layer_q.value)
            # values the previous cycle's reads returned
            if pending_bias is not None:
                half, word = pending_bias
                o0 = bias_o0.get((half, word), -1)
                self.probes.bias.append(BiasSample(layer, o0, _lanes(int(compute.bias_aligned.value), pm, ab)))
                pending_bias = None
            if pending_clip is not None:
                self.probes.shift.append(ShiftSample(*pending_clip, _lanes(int(post.s3_clip.value), pn, db)))
                pending_clip = None
            if pending_2b is not None:
                o0, y, x, res = pending_2b
                acc = _lanes(int(post.s2b_acc.value), pn, ab)
                pending_clip = (layer, o0, y, x, acc)
                if int(post.res_i.value):
                    self.res_queue.put_nowait(ResidualSample(
                        layer, o0, y, x, _lanes(int(post.s2b_conv_q.value), pn, ab),
                        res, _lanes(int(post.s2b_res_al_q.value), pn, ab), acc))
                pending_2b = None
            if pending_2a is not None:
                pending_2b, pending_2a = pending_2a, None
            if pending_shift is not None:
                # (the residual buffer is read only for a layer with a residual)
                res = _lanes(int(post.s2_res.value), pn, db) if int(post.res_i.value) else None
                pending_2a = (*pending_shift, res)
                pending_shift = None
            if int(loader.gen_w_valid.value):
                # up to GenLanes blocks a cycle, for consecutive channels at one f
                o = int(loader.o0.value) + int(loader.wo_base_q.value) + int(loader.wo_m_q.value)
                g0 = int(loader.i0.value) // pn
                g = g0 + int(loader.wg_q.value)
                w = int(loader.gen_w.value)
                for j in range(int(loader.gen_w_blocks.value)):
                    self.probes.gen.append(GenSample(layer, o + j, g, int(loader.wf_q.value),
                                                     _lanes(w >> (j * length * db), length, db), g0))
            if int(loader.bias_wr_en_o.value):
                addr = int(loader.bias_wr_addr_o.value)
                half, word = addr >> bias_half_shift, addr & ((1 << bias_half_shift) - 1)
                bias_o0[(half, word)] = int(loader.o0.value) + word * pm
            # only biases the compute uses (POOL layers and bias=0 ignore it)
            if int(compute.bias_rd_en_o.value) and int(compute.bias_en_i.value):
                addr = int(compute.bias_rd_addr_o.value)
                pending_bias = (addr >> bias_half_shift, addr & ((1 << bias_half_shift) - 1))
            if int(post.acc_rd_en_o.value):
                q = int(post.q_q.value)
                pending_shift = (int(post.o0.value) + q * pn, _signed(int(post.cy.value), 20),
                                 _signed(int(post.cx.value), 20))
            if int(ctrl.perf_valid_o.value):
                self.probes.layer_done.append(int(ctrl.perf_layer_o.value))
