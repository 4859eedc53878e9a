"""A short fuzz in the test suite (tb/fuzz.py, FuzzTest): random, mostly
illegal programs with aborts, resets and bus errors end as golden says,
without a hang, a stray write or a wrong result; and the fuzz's own hang
and stray-write detection fires when it must (FuzzCheckerFailsTest)."""
import json

import pytest

from golden import isa
from tb import regressions, simenv


def fuzz(tmp_path, test, sim, count, seed=1, stall="light"):
    [r] = regressions.expand("nightly", sim=sim, test=test, seed=seed)
    summary = tmp_path / "summary.json"
    env = dict(r.sim_env(), UZ_COUNT=str(count), UZ_STALL=stall, UZ_FUZZ_SUMMARY=str(summary))
    simenv.run(r.toplevel, simenv.rtl_sources(*simenv.ENGINE_RTL), r.module, r.parameters, sim=sim,
               testcase=r.testcase, seed=seed, extra_env=env)
    return json.loads(summary.read_text())


def check_clean(s, count):
    assert s["programs"] == count
    assert (s["hangs"], s["stray_writes"], s["mismatches"], s["wrong_status"]) == (0, 0, 0, 0), s["failures"]
    assert s["valid_programs"] > 0 and s["valid_done"] == s["valid_programs"]


def test_fuzz_verilator(tmp_path):
    count = 150
    s = fuzz(tmp_path, "fuzz", "verilator", count)
    check_clean(s, count)
    hit = {k for k, v in s["errors_by_kind"].items() if v}
    # the descriptor codes come in turn, so seed 1's 150 programs hit every
    # error code the engine has
    assert hit == {c.name for c in isa.Err if c != isa.Err.NONE}, hit
    assert s["resets"] and s["aborts"] and s["bus_errors_planned"] and s["legal_mutants"]


def test_fuzz_icarus(tmp_path):
    count = 8
    s = fuzz(tmp_path, "fuzz_icarus", "icarus", count, stall="none")
    check_clean(s, count)
    assert s["errors_by_kind"], "no program of the Icarus fuzz ended in an error"


def test_fuzz_detects_hangs_and_stray_writes(tmp_path):
    # FuzzCheckerFailsTest passes only if both are counted (see tb/tests.py)
    s = fuzz(tmp_path, "FuzzCheckerFailsTest", "verilator", 6)
    assert s["hangs"] > 0 and s["stray_writes"] > 0 and s["programs"] == 6
