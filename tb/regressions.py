"""The regressions, in one place: named engine configurations and named lists
of test entries. Each entry expands into runs (test x seed x config x
simulator); scripts/regress.py runs them and `make sim` / `make regress`
call it.

Adding a pyuvm test to a regression is one line, e.g.

    Entry("RandomLayerTest", seeds=range(1, 201), configs=["small"])

(module defaults to tb.tests; the test is selected by name, knobs go in env,
the seed reaches the test as cocotb's random seed).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
import sys
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from golden import isa
from golden.config import EngineConfig
from tb import simenv

# The engine's case lists and RTL parameter mapping live next to its cocotb
# module; the simulator's Python gets this path too (simenv.run).
if str(simenv.ROOT / "tests" / "rtl") not in sys.path:
    sys.path.insert(0, str(simenv.ROOT / "tests" / "rtl"))
import engine_cases  # noqa: E402


class RegressionError(ValueError):
    """A regression, test, configuration or simulator name that does not exist."""


#: Engine configurations by name; one name selects the golden model's, the
#: compiler's and the RTL's parameters together.
CONFIGS: dict[str, EngineConfig] = {
    "small": engine_cases.SMALL,
    "default": EngineConfig(),
    # 8-bit data and coefficients: PN * 8 and PM * 8 must fill whole 128-bit
    # beats (uz_top's elaboration checks), hence 16 x 16.
    # weight buffer large enough for a K=11 tile of 16 x 16 channels
    "bits8": EngineConfig(data_bits=8, acc_bits=32, pm=16, pn=16, ovsf_len=16, alpha_bits=8,
                          axi_data_bits=128, in_buf_elems=16384, wgt_buf_elems=32768, out_buf_elems=8192, max_k=11),
    # The configuration `make synth` places and routes on the ECP5 (LFE5UM-85F),
    # which small does not fit: 4 x 4 MACs, L = 4, a 64-bit bus, half of
    # small's buffers and MaxK = 3 (the compute's window grows most with MaxK).
    "ecp5": dataclasses.replace(engine_cases.SMALL, pm=4, pn=4, ovsf_len=4, axi_data_bits=64, in_buf_elems=4096,
                                wgt_buf_elems=4096, out_buf_elems=2048, max_k=3),
    # PM = 2 PN: twice the PEs of the lanes (Qiu's and unzipFPGA's DSP budgets
    # need PM != PN). An accumulator word is two channel groups of the layout:
    # the write-back, the residual and the bias take them a group at a time,
    # and a depthwise or POOL oc-group reads two windows.
    "pm8_pn4": dataclasses.replace(engine_cases.SMALL, pm=8, pn=4, ovsf_len=4, axi_data_bits=64,
                                   in_buf_elems=4096, wgt_buf_elems=4096, out_buf_elems=2048),
    # PM = 3 PN: a PM that is not a power of two (48 x 16 fills Qiu's ZC706,
    # 108 x 16 unzipFPGA's ZCU104). Buffers of a power of two words a half
    # (3072 / 12 accumulator words, 6144 / 48 weight words).
    "pm12_pn4": dataclasses.replace(engine_cases.SMALL, pm=12, pn=4, ovsf_len=4, axi_data_bits=64,
                                    in_buf_elems=4096, wgt_buf_elems=6144, out_buf_elems=3072),
}

#: The configurations with more PEs than lanes the nightly runs everything on.
PM_CONFIGS = ("pm8_pn4", "pm12_pn4")


@dataclass(frozen=True)
class Entry:
    """One test of a regression and the seeds, configs and simulators it runs on.

    ``test`` is the test's name in ``module`` (None: every test the module
    has); ``name`` is what selects the entry (TEST=) and names its runs, and
    defaults to ``test``. Entries of the same name in different regressions
    must be the same test (only seeds, configs and sims may differ), so a
    replay line names a run unambiguously."""
    test: Optional[str]
    module: str = "tb.tests"
    seeds: Sequence[int] = (1,)
    configs: Sequence[str] = ("small",)
    sims: Sequence[str] = ("verilator",)
    env: Mapping[str, str] = field(default_factory=dict)
    name: Optional[str] = None
    toplevel: str = "uz_top"
    #: Wall-clock limit of one run in seconds (None: the runner's default).
    timeout: Optional[float] = None

    @property
    def label(self) -> str:
        return self.name or self.test

    def identity(self):
        return (self.module, self.test, tuple(sorted(self.env.items())), self.toplevel)


@dataclass(frozen=True)
class Run:
    name: str
    test: str            # the entry's name
    module: str
    testcase: Optional[str]
    seed: int
    config: str
    cfg: EngineConfig
    sim: str
    env: Mapping[str, str]
    toplevel: str = "uz_top"
    timeout: Optional[float] = None

    @property
    def parameters(self) -> dict:
        return engine_cases.rtl_parameters(self.cfg)

    def sim_env(self) -> dict:
        """The test's environment: the entry's knobs plus the configuration."""
        return dict(self.env, UZ_CONFIG=json.dumps(self.cfg.to_dict()))

    def replay_vars(self, waves: bool = False) -> dict:
        v = {"TEST": self.test, "SEED": str(self.seed), "CONFIG": self.config, "SIM": self.sim}
        if waves:
            v["WAVES"] = "1"
        return v

    def replay(self, waves: bool = False) -> str:
        """The one-line command that runs this run alone."""
        return "make sim " + " ".join(f"{k}={v}" for k, v in self.replay_vars(waves).items())


def engine(case: str, insel: str = "auto", **kw) -> Entry:
    """The engine end-to-end test (tests/rtl/cocotb_engine.py) on one network."""
    suffix = "" if insel == "auto" else f"_insel_{insel}"
    return Entry(None, module="cocotb_engine", name=f"engine_{case}{suffix}",
                 env={"UZ_CASE": case, "UZ_INSEL": insel}, **kw)


# The engine test compiles a fixed input image today, so its seeds repeat one
# run; they pay off once the test draws its image from cocotb's seed.
# The engine test draws nothing at random: one seed covers it.
ENGINE_SEEDS = (1,)

#: The pyuvm tests that prove each scoreboard fails on a corrupted observation
#: (the residual one once the RTL runs residual adds: it needs a program with one).
CHECKER_TESTS = (("WeightsCheckerFailsTest", "BiasCheckerFailsTest", "ShiftCheckerFailsTest")
                 + (() if isa.unsupported_features({"kind": int(isa.Kind.CONV), "res": 1})
                    else ("ResidualCheckerFailsTest",))
                 + ("LayerCheckerFailsTest", "MemoryCheckerFailsTest", "SilentMonitorsTest"))

#: The random graph networks' knobs (smoke and nightly run the same entry).
GRAPH_ENV = {"UZ_COUNT": "6", "UZ_STALL": "light"}

#: Programs per run of the fuzz entry (tb/fuzz.py).
FUZZ_CHUNK = 100

REGRESSIONS: dict[str, list[Entry]] = {
    "smoke": (
        [Entry("SmokeTest"), Entry("IllegalDescriptorTest")]
        + [Entry(t) for t in CHECKER_TESTS]
        + [Entry("RandomLayerTest", seeds=(1, 2), env={"UZ_COUNT": "3", "UZ_STALL": "light"}),
           Entry("CoverageSweepTest"),
           # seed 14: with the other smoke tests, every graph coverage bin
           # (tests/testplan.md)
           Entry("RandomGraphTest", seeds=(14,), env=GRAPH_ENV),
           # residual shifts of each sign, a saturating add, global max pools
           Entry("GraphDirectedTest"),
           Entry("CsrTest"),
           Entry("AbortTest", env={"UZ_COUNT": "3"}),
           Entry("ResetTest", env={"UZ_COUNT": "3"}),
           Entry("BusErrorTest", env={"UZ_COUNT": "3", "UZ_STALL": "light"})]
    ),
    "nightly": (
        [Entry("SmokeTest", sims=simenv.SIMULATORS), Entry("IllegalDescriptorTest", sims=simenv.SIMULATORS)]
        + [Entry(t, sims=simenv.SIMULATORS) for t in CHECKER_TESTS]
        + [Entry("DirectedTest", seeds=range(1, 4), configs=("small", "bits8"))]
        + [Entry("RandomLayerTest", seeds=range(1, 201), env={"UZ_COUNT": "3", "UZ_STALL": "light"}),
           Entry("RandomLayerTest", name="RandomLayerTest_heavy_stall", seeds=range(1, 41),
                 env={"UZ_COUNT": "3", "UZ_STALL": "heavy"}),
           Entry("RandomLayerTest", name="RandomLayerTest_bits8", seeds=range(1, 21), configs=("bits8",),
                 env={"UZ_COUNT": "3", "UZ_STALL": "light"}),
           Entry("RandomNetworkTest", seeds=range(1, 41), env={"UZ_COUNT": "3", "UZ_STALL": "light"}),
           Entry("CoverageSweepTest"),
           Entry("GraphDirectedTest", sims=simenv.SIMULATORS, configs=("small", "bits8")),
           Entry("RandomGraphTest", seeds=range(1, 21), env=GRAPH_ENV),
           Entry("RandomGraphTest", name="RandomGraphTest_heavy_stall", seeds=range(1, 6),
                 env={"UZ_COUNT": "3", "UZ_STALL": "heavy"}),
           Entry("RandomGraphTest", name="RandomGraphTest_bits8", seeds=range(1, 4), configs=("bits8",),
                 env={"UZ_COUNT": "3", "UZ_STALL": "light"}),
           Entry("RandomGraphTest", name="RandomGraphTest_icarus", seeds=range(1, 3), sims=("icarus",),
                 env={"UZ_COUNT": "2", "UZ_STALL": "light"}),
           Entry("CoverageSweepTest", name="CoverageSweepTest_stall", seeds=range(1, 6), configs=("small", "bits8"),
                 env={"UZ_STALL": "heavy"}),
           Entry("CsrTest", sims=simenv.SIMULATORS),
           Entry("AbortTest", seeds=range(1, 21), env={"UZ_COUNT": "3"}),
           Entry("ResetTest", seeds=range(1, 11), env={"UZ_COUNT": "3"}),
           Entry("AbortTest", name="AbortTest_heavy_stall", seeds=range(1, 11),
                 env={"UZ_COUNT": "4", "UZ_STALL": "heavy"}),
           Entry("BusErrorTest", seeds=range(1, 21), env={"UZ_COUNT": "3", "UZ_STALL": "light"}),
           Entry("BusErrorTest", name="BusErrorTest_icarus", seeds=range(1, 3), sims=("icarus",),
                 env={"UZ_COUNT": "2"}),
           # FUZZ_CHUNK programs per seed: `make fuzz` splits its N over seeds
           # of this entry, so its replay lines name runs of it
           Entry("FuzzTest", name="fuzz", seeds=range(1, 21), env={"UZ_COUNT": str(FUZZ_CHUNK), "UZ_STALL": "light"}),
           Entry("FuzzTest", name="fuzz_bits8", seeds=range(1, 6), configs=("bits8",),
                 env={"UZ_COUNT": "50", "UZ_STALL": "light"}),
           Entry("FuzzTest", name="fuzz_icarus", seeds=range(1, 3), sims=("icarus",), env={"UZ_COUNT": "6"}),
           Entry("FuzzCheckerFailsTest", env={"UZ_COUNT": "6"})]
        + [engine(c, seeds=ENGINE_SEEDS, configs=("small", "bits8") + (() if c == "ovsf_rho" else PM_CONFIGS),
                  sims=simenv.SIMULATORS)
           for c in engine_cases.SMOKE]
        + [engine(c, seeds=ENGINE_SEEDS, configs=PM_CONFIGS, sims=simenv.SIMULATORS)
           for c in engine_cases.PM_CASES]
        # random layers, graphs and fuzzed programs on PM = 2 PN and 3 PN
        + [Entry(test, name=f"{name}_{cfg}", seeds=seeds, configs=(cfg,),
                 env={"UZ_COUNT": count, "UZ_STALL": "light"})
           for cfg in PM_CONFIGS
           for test, name, seeds, count in (("RandomLayerTest", "RandomLayerTest", range(1, 21), "3"),
                                            ("RandomGraphTest", "RandomGraphTest", range(1, 6), "3"),
                                            ("FuzzTest", "fuzz", range(1, 4), "50"))]
        + [engine(c, insel, seeds=ENGINE_SEEDS, configs=("small",))
           for c in engine_cases.SMOKE for insel in ("on", "off")]
        + [engine(c, insel, seeds=ENGINE_SEEDS, configs=("small",), timeout=1200)
           for c in engine_cases.PERF_CASES for insel in ("auto", "on", "off")]
    ),
}


def run_name(label: str, config: str, sim: str, seed: int) -> str:
    return f"{label}.{config}.{sim}.s{seed}"


def _find_entries(name: str, test: Optional[str]) -> list[Entry]:
    """Entries of regression ``name`` whose name matches ``test`` (a name or
    a glob); a test only another regression lists is taken from there, so a
    replay line works from any regression."""
    entries = REGRESSIONS[name]
    if test is None:
        return list(entries)
    hits = [e for e in entries if fnmatch.fnmatchcase(e.label, test)]
    if hits:
        return hits
    seen = {}
    for other in REGRESSIONS.values():
        for e in other:
            if fnmatch.fnmatchcase(e.label, test):
                seen.setdefault(e.label, e)
    if not seen:
        known = sorted({e.label for es in REGRESSIONS.values() for e in es})
        raise RegressionError(f"unknown test {test!r}; tests in tb/regressions.py: {', '.join(known)}")
    return list(seen.values())


def expand(name: str, sim: Optional[str] = None, test: Optional[str] = None, seed: Optional[int] = None,
           config: Optional[str] = None) -> list[Run]:
    """The runs of regression ``name``. ``test`` keeps the matching entries;
    ``sim``, ``seed`` and ``config`` replace the entries' own lists, so a
    combination the regression does not list becomes a single run."""
    if name not in REGRESSIONS:
        raise RegressionError(f"unknown regression {name!r}; regressions: {', '.join(REGRESSIONS)}")
    if sim is not None and sim not in simenv.SIMULATORS:
        raise RegressionError(f"unknown simulator {sim!r}; simulators: {', '.join(simenv.SIMULATORS)}")
    if config is not None and config not in CONFIGS:
        raise RegressionError(f"unknown config {config!r}; configs: {', '.join(CONFIGS)}")
    if config is not None and CONFIGS[config].max_k < max(isa.KERNELS):
        # the directed and random tests draw kernels up to the largest the ISA has
        raise RegressionError(f"config {config!r} has MaxK {CONFIGS[config].max_k}, below the kernels the "
                              f"regression's tests draw (up to {max(isa.KERNELS)}): it is for synthesis and "
                              "the benchmark (scripts/bench.py --config)")
    check()
    runs = []
    for e in _find_entries(name, test):
        for c in e.configs:
            if c not in CONFIGS:
                raise RegressionError(f"test {e.label}: unknown config {c!r}; configs: {', '.join(CONFIGS)}")
        for s in e.sims:
            if s not in simenv.SIMULATORS:
                raise RegressionError(f"test {e.label}: unknown simulator {s!r}")
        for c in [config] if config is not None else e.configs:
            for s in [sim] if sim is not None else e.sims:
                for sd in [seed] if seed is not None else e.seeds:
                    runs.append(Run(run_name(e.label, c, s, int(sd)), e.label, e.module, e.test, int(sd), c,
                                    CONFIGS[c], s, dict(e.env), e.toplevel, e.timeout))
    names = [r.name for r in runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RegressionError(f"regression {name}: runs named twice: {', '.join(dup[:5])}")
    return runs


def check() -> None:
    """Entries of one name are one test in every regression (see Entry)."""
    first: dict[str, Entry] = {}
    for reg, entries in REGRESSIONS.items():
        for e in entries:
            if e.label is None:
                raise RegressionError(f"regression {reg}: an entry needs a test or a name")
            prev = first.setdefault(e.label, e)
            if prev.identity() != e.identity():
                raise RegressionError(f"test {e.label} means two different runs in the regressions")
