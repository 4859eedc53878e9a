"""The pyuvm environment in the test suite: the smoke test, illegal
programs, registers, aborts and bus errors, and the tests that prove every
scoreboard fails on a corrupted observation (each passes only if its
scoreboard reports the corruption)."""
import pytest

from tb import regressions, simenv

TESTS = ("SmokeTest", "IllegalDescriptorTest", "CsrTest", "AbortTest", "BusErrorTest") + regressions.CHECKER_TESTS


def run(test, sim, seed=1):
    [r] = regressions.expand("smoke", sim=sim, test=test, seed=seed)
    simenv.run(r.toplevel, simenv.rtl_sources(*simenv.ENGINE_RTL), r.module, r.parameters, sim=sim,
               testcase=r.testcase, seed=seed, extra_env=r.sim_env())


@pytest.mark.parametrize("test", TESTS)
def test_uvm_verilator(test):
    run(test, "verilator")


@pytest.mark.slow      # make test-slow (CI): the env under Icarus; make test runs it under Verilator
def test_uvm_smoke_icarus():
    run("SmokeTest", "icarus")


def test_uvm_random_layers():
    run("RandomLayerTest", "verilator", seed=3)


def test_uvm_random_graphs():
    """Six random graph networks (channel slices, gaps, ReLU6): seconds."""
    run("RandomGraphTest", "verilator", seed=3)


@pytest.mark.slow   # 90 s under Icarus: make test-slow (CI) and the nightly run it
def test_uvm_bus_error_icarus():
    run("BusErrorTest", "icarus")
