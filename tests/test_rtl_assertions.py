"""A firing RTL assertion fails the cocotb test under both simulators (the
ASSERT macros of rtl/uz_assert.svh), and the same stimulus without the
violation passes."""
import pytest

from tb import simenv

SOURCES = simenv.rtl_sources("uz_axi_rd")


def _run(sim, violate, log):
    return simenv.run("uz_axi_rd", SOURCES, "cocotb_assert_fires", {}, sim=sim,
                      extra_env={"UZ_VIOLATE": violate}, log_file=log)


@pytest.mark.parametrize("sim", simenv.SIMULATORS)
def test_firing_assertion_fails_the_test(sim, tmp_path):
    log = tmp_path / "sim.log"
    # The simulator stops at the failure: the runner raises RuntimeError
    # for its non-zero exit (SystemExit when it ends cleanly with a failed test).
    with pytest.raises((SystemExit, RuntimeError)):
        _run(sim, "1", log)
    text = log.read_text()
    assert "RIdMatches_A" in text or "RBeatExpected_A" in text, "the failure is not the assertion's"


@pytest.mark.parametrize("sim", simenv.SIMULATORS)
def test_same_stimulus_without_violation_passes(sim, tmp_path):
    _run(sim, "0", tmp_path / "sim.log")
