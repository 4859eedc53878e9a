"""pyuvm tests of the uz engine (the cocotb test module `tb.tests`).

Options come from the environment (set by scripts/regress.py or pytest):
    UZ_CONFIG  engine configuration (golden.config.EngineConfig as JSON)
    UZ_STALL   memory stall pattern: none | light | heavy
    UZ_COUNT   programs per random sequence
The seed is cocotb's (COCOTB_RANDOM_SEED), so a run replays from its seed.
"""
from __future__ import annotations

import json
import os

import cocotb
import pyuvm
from pyuvm import ConfigDB, uvm_factory, uvm_test

from golden.config import EngineConfig

from golden import isa

from . import bfm as regs
from .bfm import UzBfm
from .fuzz import FuzzSeq, format_summary, write_summary
from .env import BiasMonitor, GenMonitor, LayerMonitor, MemoryMonitor, ResidualMonitor, ShiftMonitor, UzEnv
from .sequences import (ALL_DIRECTED, DIRECTED, SMOKE, AbortSeq, BusErrorSeq, CoverageSweepSeq, DirectedSeq,
                        IllegalDescriptorSeq, RandomGraphSeq, RandomLayerSeq, RandomNetworkSeq, engine_runs,
                        make_program)


class UzBaseTest(uvm_test):
    """Builds the BFM and the environment; subclasses choose the sequence."""

    def build_phase(self):
        self.cfg = EngineConfig.from_dict(json.loads(os.environ["UZ_CONFIG"]))
        stall = os.environ.get("UZ_STALL", "none")
        self.bfm = UzBfm(cocotb.top, self.cfg, stall=stall, seed=cocotb.RANDOM_SEED)
        ConfigDB().set(None, "*", "BFM", self.bfm)
        ConfigDB().set(None, "*", "CFG", self.cfg)
        ConfigDB().set(None, "*", "STALL", stall)
        self.count = int(os.environ.get("UZ_COUNT", "3"))
        self.env = UzEnv("env", self)

    def sequences(self):
        return [DirectedSeq(names=SMOKE)]

    async def run_phase(self):
        self.raise_objection()
        await self.bfm.reset()
        for seq in self.sequences():
            await seq.start(self.env.ctrl.seqr)
        self.drop_objection()


@pyuvm.test()
class SmokeTest(UzBaseTest):
    """A conv, an OVSF conv, an FC and a conv with pooling."""


@pyuvm.test()
class DirectedTest(UzBaseTest):
    """Every layer kind and mode once."""

    def sequences(self):
        return [DirectedSeq()]


@pyuvm.test()
class RandomLayerTest(UzBaseTest):
    """Constrained-random single layers."""

    def sequences(self):
        return [RandomLayerSeq(count=self.count)]


@pyuvm.test()
class CoverageSweepTest(UzBaseTest):
    """One random layer per legal kind x K x stride x pad, with every rho,
    both input selection modes, retuned shifts, saturation and split tiles
    in a round robin (tb/sequences.CoverageSweepSeq)."""

    def sequences(self):
        return [CoverageSweepSeq()]


@pyuvm.test()
class RandomNetworkTest(UzBaseTest):
    """A constrained-random multi-layer network."""

    def sequences(self):
        return [RandomNetworkSeq(count=max(1, self.count // 3))]


@pyuvm.test()
class RandomGraphTest(UzBaseTest):
    """UZ_COUNT constrained-random graph networks (channel slices with gaps,
    nested concats, ReLU6, max pools; tb/sequences.RandomGraphSeq)."""

    def sequences(self):
        return [RandomGraphSeq(count=self.count)]


@pyuvm.test()
class GraphDirectedTest(UzBaseTest):
    """The directed graph programs (tb/sequences.GRAPH_DIRECTED and
    RESIDUAL_DIRECTED: fire module, ReLU6, ResNet blocks, residual shifts of
    each sign and a saturating add, a standalone add, average, asymmetric
    and global pools), those the RTL runs; the smoke's source of the bins
    random graphs leave to chance."""

    def sequences(self):
        from .sequences import GRAPH_DIRECTED, RESIDUAL_DIRECTED
        runs = [n for n in RESIDUAL_DIRECTED if engine_runs(ALL_DIRECTED[n], self.cfg)]
        left = [n for n in RESIDUAL_DIRECTED if n not in runs]
        if left:
            self.logger.warning(f"directed programs the RTL does not run yet: {', '.join(left)}")
        return [DirectedSeq(names=list(GRAPH_DIRECTED) + runs)]


@pyuvm.test()
class IllegalDescriptorTest(UzBaseTest):
    """Illegal descriptors stop the program with golden's error code."""

    def sequences(self):
        return [IllegalDescriptorSeq(), DirectedSeq(names=["fc_raw"])]   # and the next program runs


@pyuvm.test()
class AbortTest(UzBaseTest):
    """ABORT at random points (and in the descriptor fetch and check): the
    engine stops with ABORTED, writes nothing outside the output regions,
    and the next program runs right."""

    def sequences(self):
        return [AbortSeq(count=self.count), DirectedSeq(names=["fc_raw"])]


@pyuvm.test()
class ResetTest(UzBaseTest):
    """rst_ni pulled at random points of a program: the registers read their
    reset values, nothing was written outside the output regions, and the
    next program runs right."""

    def sequences(self):
        return [AbortSeq(count=self.count, reset=True), DirectedSeq(names=["fc_raw"])]


@pyuvm.test()
class BusErrorTest(UzBaseTest):
    """SLVERR on a random read or write beat: the engine stops with AXI_READ
    or AXI_WRITE at the layer it hit, writes nothing outside the output
    regions, and the next program runs right."""

    def sequences(self):
        return [BusErrorSeq(count=self.count), DirectedSeq(names=["fc_raw"])]


class _StartWhileBusySeq(DirectedSeq):
    """A program with a second START written while it runs (ignored) and an
    ABORT written after its end (no effect)."""

    async def body(self):
        cfg = ConfigDB().get(None, "", "CFG")
        spec, insel = DIRECTED["conv_k3_s1_pad"]
        item = make_program(dict(spec, name="restart", weights={"seed": 5}), cfg, "START while busy", insel=insel)
        item.pokes = [(30, regs.CTRL, regs.START | regs.IRQ_EN)]
        await self.start_item(item)
        await self.finish_item(item)


@pyuvm.test()
class CsrTest(UzBaseTest):
    """The register map with idle cycles on every control channel (AW and W
    apart, B and R held): reset values, read-back widths, read-only and
    unmapped addresses, the empty program, ERR cleared by START only (kept
    after W1C), and a START while busy that must be ignored."""

    def check(self, what, got, exp):
        if got != exp:
            self.failures.append(f"{what}: expected 0x{exp:x}, got 0x{got:x}")

    async def run_phase(self):
        self.raise_objection()
        self.failures = []
        bfm, cfg = self.bfm, self.cfg
        bfm.set_ctrl_stall("heavy")
        await bfm.reset()
        config = (cfg.ovsf_len.bit_length() - 1) << 24 | cfg.data_bits << 16 | cfg.pn << 8 | cfg.pm
        for name, addr, exp in (("CTRL", regs.CTRL, 0), ("STATUS", regs.STATUS, 0), ("ERR", regs.ERR, 0),
                                ("DESC_ADDR", regs.DESC_ADDR, 0), ("LAYER_COUNT", regs.LAYER_COUNT, 0),
                                ("ID", regs.ID, 0x757A0001), ("CONFIG", regs.CONFIG, config),
                                ("PERF_SEL", regs.PERF_SEL, 0), ("TOTAL_LO", regs.TOTAL_LO, 0),
                                ("TOTAL_HI", regs.TOTAL_LO + 4, 0), ("unmapped 0x1C", 0x1C, 0),
                                ("unmapped 0x4C", 0x4C, 0)):
            self.check(f"{name} after reset", await bfm.csr_read(addr), exp)
        for name, addr, value, exp in (("DESC_ADDR", regs.DESC_ADDR, 0xDEADBEE0, 0xDEADBEE0),
                                       ("LAYER_COUNT", regs.LAYER_COUNT, 0x12345, 0x2345),
                                       ("PERF_SEL", regs.PERF_SEL, 0xABCDE, 0xBCDE),
                                       ("CTRL", regs.CTRL, regs.IRQ_EN, regs.IRQ_EN),
                                       ("ID (read only)", regs.ID, 0, 0x757A0001),
                                       ("CONFIG (read only)", regs.CONFIG, 0, config),
                                       ("unmapped 0x1C", 0x1C, 0xFFFFFFFF, 0)):
            await bfm.csr_write(addr, value)
            self.check(f"{name} read back", await bfm.csr_read(addr), exp)
        await bfm.csr_write(regs.PERF_SEL, 0)
        # the empty program is done at once
        start = await bfm.start_program(0, 0)
        status, err, layer, _ = await bfm.wait_end(start, 1000)
        self.check("STATUS flags after an empty program", status & 0xFFFF, regs.DONE)
        # each START clears ERROR and records the new error; W1C clears the
        # status but ERR keeps the last error for software to read
        spec, insel = DIRECTED["conv_then_fc"]
        bad_magic = make_program(dict(spec, name="a", weights={"seed": 1}), cfg, "a", corrupt=(0, "magic", 0))
        bad_align = make_program(dict(spec, name="b", weights={"seed": 1}), cfg, "b",
                                 corrupt=(1, "in_addr", 0x1004))
        for item in (bad_magic, bad_align):
            bfm.load(0, bytes(item.prog.image.data))
            start = await bfm.start_program(item.prog.desc_addr, len(item.prog.layers))
            status, err, layer, _ = await bfm.wait_end(start, 200_000, clear=False)
            self.check(f"STATUS flags after {item.label}", status & 0xFFFF, regs.ERROR)
            self.check(f"ERR after {item.label}", err | layer << 16, item.expect_err | item.expect_err_layer << 16)
        await bfm.csr_write(regs.STATUS, regs.DONE | regs.ERROR)
        self.check("STATUS flags after W1C", await bfm.csr_read(regs.STATUS) & 0xFFFF, 0)
        self.check("ERR after W1C (kept)", await bfm.csr_read(regs.ERR), int(isa.Err.BAD_ALIGN) | 1 << 16)
        # a run with the per-layer counters and TOTAL_CYCLES read back
        await _StartWhileBusySeq().start(self.env.ctrl.seqr)
        total = await bfm.csr_read(regs.TOTAL_LO) | await bfm.csr_read(regs.TOTAL_LO + 4) << 32
        if total == 0:
            self.failures.append("TOTAL_CYCLES is 0 after a program ran")
        self.drop_objection()

    def check_phase(self):
        assert not self.failures, "register checks failed: " + "; ".join(self.failures)


# ------------------------------------------- every checker can fail
# Each of these corrupts what one monitor observes (factory override) and
# passes only if the matching scoreboard reports it.

class CorruptGenMonitor(GenMonitor):
    def transform(self, s):
        s.weights = [s.weights[0] ^ 1] + list(s.weights[1:])
        return s


class CorruptBiasMonitor(BiasMonitor):
    def transform(self, s):
        s.aligned = [s.aligned[0] + 1] + list(s.aligned[1:])
        return s


class CorruptShiftMonitor(ShiftMonitor):
    def transform(self, s):
        s.out = [s.out[0] ^ 1] + list(s.out[1:])
        return s


class CorruptResidualMonitor(ResidualMonitor):
    """The aligned residual of lane 0 off by one."""

    def transform(self, tr):
        tr.res_al = [tr.res_al[0] + 1] + list(tr.res_al[1:])
        return tr


class CorruptLayerMonitor(LayerMonitor):
    def transform(self, t):
        t = t.copy()
        t.flat[-1] += 1
        return t


class CorruptMemoryMonitor(MemoryMonitor):
    """A stray write into the weights of the program's first layer."""

    def transform(self, after):
        item_regions = [r for r in self._item.prog.image.regions if r.name.endswith(".wgt")]
        b = bytearray(after)
        b[item_regions[0].addr] ^= 0xFF
        return bytes(b)

    def on_finished(self, item):
        self._item = item
        super().on_finished(item)


class CheckerFailsTest(UzBaseTest):
    monitor = None
    corrupt = None
    scoreboard = ""

    def build_phase(self):
        uvm_factory().set_type_override_by_type(self.monitor, self.corrupt)
        super().build_phase()
        ConfigDB().set(self, f"env.{self.scoreboard}", "EXPECT_MISMATCH", True)

    def sequences(self):
        return [DirectedSeq(names=["conv_ovsf_half"])]


@pyuvm.test()
class WeightsCheckerFailsTest(CheckerFailsTest):
    monitor, corrupt, scoreboard = GenMonitor, CorruptGenMonitor, "weights_sb"


@pyuvm.test()
class BiasCheckerFailsTest(CheckerFailsTest):
    monitor, corrupt, scoreboard = BiasMonitor, CorruptBiasMonitor, "bias_sb"


@pyuvm.test()
class ShiftCheckerFailsTest(CheckerFailsTest):
    monitor, corrupt, scoreboard = ShiftMonitor, CorruptShiftMonitor, "shift_sb"


@pyuvm.test()
class ResidualCheckerFailsTest(CheckerFailsTest):
    monitor, corrupt, scoreboard = ResidualMonitor, CorruptResidualMonitor, "res_sb"

    def sequences(self):
        return [DirectedSeq(names=["resnet_block"])]


@pyuvm.test()
class LayerCheckerFailsTest(CheckerFailsTest):
    monitor, corrupt, scoreboard = LayerMonitor, CorruptLayerMonitor, "layer_sb"


@pyuvm.test()
class MemoryCheckerFailsTest(CheckerFailsTest):
    monitor, corrupt, scoreboard = MemoryMonitor, CorruptMemoryMonitor, "memory_sb"


# ------------------------------------- every scoreboard notices silence
# Monitors that publish nothing: each scoreboard must report what it was
# meant to compare and never saw (EXPECT_MISSING), instead of passing empty.

class SilentGenMonitor(GenMonitor):
    def on_finished(self, item):
        pass


class SilentBiasMonitor(BiasMonitor):
    def on_finished(self, item):
        pass


class SilentShiftMonitor(ShiftMonitor):
    def on_finished(self, item):
        pass


class SilentResidualMonitor(ResidualMonitor):
    async def run_phase(self):
        pass


class SilentLayerMonitor(LayerMonitor):
    def on_finished(self, item):
        pass


class SilentMemoryMonitor(MemoryMonitor):
    def on_finished(self, item):
        pass


@pyuvm.test()
class SilentMonitorsTest(UzBaseTest):
    """Every probe and memory monitor silenced on an OVSF layer with a bias
    (and a ResNet block, once the RTL adds residuals): passes only if each
    of their scoreboards reports, with its count, what it never compared (a
    scoreboard that compared nothing fails)."""
    silenced = ((GenMonitor, SilentGenMonitor, "weights_sb"), (BiasMonitor, SilentBiasMonitor, "bias_sb"),
                (ShiftMonitor, SilentShiftMonitor, "shift_sb"), (LayerMonitor, SilentLayerMonitor, "layer_sb"),
                (MemoryMonitor, SilentMemoryMonitor, "memory_sb"))
    residual = (ResidualMonitor, SilentResidualMonitor, "res_sb")

    def build_phase(self):
        cfg = EngineConfig.from_dict(json.loads(os.environ["UZ_CONFIG"]))
        self.res = engine_runs(ALL_DIRECTED["resnet_block"], cfg)
        silenced = self.silenced + ((self.residual,) if self.res else ())
        for monitor, silent, _ in silenced:
            uvm_factory().set_type_override_by_type(monitor, silent)
        super().build_phase()
        for _, _, sb in silenced:
            ConfigDB().set(self, f"env.{sb}", "EXPECT_MISSING", True)

    def sequences(self):
        return [DirectedSeq(names=["conv_ovsf_half"] + (["resnet_block"] if self.res else []))]


# ------------------------------------------------------------------- fuzz

@pyuvm.test()
class FuzzTest(UzBaseTest):
    """UZ_COUNT random programs, mostly illegal (tb/fuzz.py), with aborts,
    resets and bus errors, never a reset between them: each ends with
    golden's error or result, within its watchdog, writing nothing outside
    its output regions. Writes the JSON summary and prints it."""
    watchdog = None
    expect = ()              # the scoreboards that must report (the checker test)

    def build_phase(self):
        super().build_phase()
        self.count = int(os.environ.get("UZ_COUNT", "20"))
        for sb in self.expect:
            ConfigDB().set(self, f"env.{sb}", "EXPECT_MISMATCH", True)

    async def run_phase(self):
        self.raise_objection()
        import time
        t0 = time.time()
        await self.bfm.reset()
        seq = FuzzSeq(count=self.count, env=self.env, watchdog=self.watchdog)
        await seq.start(self.env.ctrl.seqr)
        self.stats = seq.stats
        self.stats.decode_errors = sum(self.bfm.decode_errors.values())
        path = write_summary(self.stats, {"seed": cocotb.RANDOM_SEED, "test": type(self).__name__,
                                          "seconds": round(time.time() - t0, 1)})
        self.logger.info("fuzz summary: " + str(path) + "\n" + format_summary(self.stats.to_dict()))
        self.drop_objection()

    def check_phase(self):
        s = self.stats
        assert s.programs > 0, "the fuzz ran no program"
        assert not [f for f in s.failures if "golden validate raised" in f], s.failures[:3]


class ShortWatchdogMemoryMonitor(CorruptMemoryMonitor):
    """A stray write in every program's first weight region (when it has one)."""

    def transform(self, after):
        if not any(r.name.endswith(".wgt") for r in self._item.prog.image.regions):
            return after
        return super().transform(after)


@pyuvm.test()
class FuzzCheckerFailsTest(FuzzTest):
    """The fuzz's own failure detection: a watchdog too short for any program
    (8 cycles: not even a descriptor fetch ends that soon; 300 cycles let
    every program of a seed end in time once the engine got faster) must
    report hangs (and the fuzz go on after them), a corrupted memory
    observation stray writes; passes only if both are counted."""
    watchdog = 8
    expect = ("status_sb", "memory_sb")

    def build_phase(self):
        uvm_factory().set_type_override_by_type(MemoryMonitor, ShortWatchdogMemoryMonitor)
        super().build_phase()

    def check_phase(self):
        s = self.stats
        assert s.hangs > 0, f"a {self.watchdog}-cycle watchdog reported no hang"
        assert s.stray_writes > 0, "a corrupted memory observation reported no stray write"
        assert s.programs == self.count, f"the fuzz stopped after {s.programs} of {self.count} programs"
