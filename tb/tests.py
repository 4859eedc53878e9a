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

from .bfm import UzBfm
from .env import BiasMonitor, GenMonitor, LayerMonitor, ShiftMonitor, UzEnv
from .sequences import SMOKE, DirectedSeq, IllegalDescriptorSeq, RandomLayerSeq, RandomNetworkSeq


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
class RandomNetworkTest(UzBaseTest):
    """A constrained-random multi-layer network."""

    def sequences(self):
        return [RandomNetworkSeq(count=max(1, self.count // 3))]


@pyuvm.test()
class IllegalDescriptorTest(UzBaseTest):
    """Illegal descriptors stop the program with golden's error code."""

    def sequences(self):
        return [IllegalDescriptorSeq(), DirectedSeq(names=["fc_raw"])]   # and the next program runs


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


class CorruptLayerMonitor(LayerMonitor):
    def transform(self, t):
        t = t.copy()
        t.flat[-1] += 1
        return t


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
class LayerCheckerFailsTest(CheckerFailsTest):
    monitor, corrupt, scoreboard = LayerMonitor, CorruptLayerMonitor, "layer_sb"
