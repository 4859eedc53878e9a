"""uz_seq_mul (the shared two-cycle multiplier of the address paths) under
both simulators: products against Python's (one multiplier and TwoMul), the can-fail check, and its
operands-held assertion firing."""
import pytest

from tb import simenv

SOURCES = simenv.rtl_sources("uz_seq_mul")


def _run(sim, two_mul=0, **env):
    return simenv.run("uz_seq_mul", SOURCES, "cocotb_seq_mul", {"TwoMul": two_mul}, sim=sim, extra_env=env)


# TwoMul under Verilator is a second Verilator build (about 15 s): make
# test-slow runs it (the loader's, TwoMul, runs in every engine test).
@pytest.mark.parametrize("sim, two_mul", [
    pytest.param(s, t, marks=[pytest.mark.slow] if (s, t) == ("verilator", 1) else [])
    for t in (0, 1) for s in simenv.SIMULATORS])
def test_seq_mul(sim, two_mul):
    _run(sim, two_mul)


@pytest.mark.parametrize("sim", simenv.SIMULATORS)
def test_seq_mul_check_can_fail(sim):
    with pytest.raises(SystemExit):
        _run(sim, UZ_MUTATE="1")


@pytest.mark.parametrize("sim", simenv.SIMULATORS)
def test_seq_mul_operands_changing_fire_the_assertion(sim, tmp_path):
    log = tmp_path / "sim.log"
    with pytest.raises((SystemExit, RuntimeError)):
        simenv.run("uz_seq_mul", SOURCES, "cocotb_seq_mul", {}, sim=sim, extra_env={"UZ_VIOLATE": "1"},
                   log_file=log)
    assert "SeqMulOperandsHeld_A" in log.read_text(), "the failure is not the assertion's"
