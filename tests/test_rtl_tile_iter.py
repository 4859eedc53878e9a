"""uz_tile_iter (the tile walk the loader, the compute and the write-back
share) under both simulators: the walk against Python's, with and without
OuterOnly, the can-fail check, and its registered-sizes assertion firing."""
import pytest

from tb import simenv

SOURCES = simenv.rtl_sources("uz_tile_iter")

# Under Verilator each build costs about 20 s, which make test's ten minutes
# cannot spare: make test runs the Icarus cases (a second each), make
# test-slow the Verilator ones (the block runs under Verilator in every
# engine test anyway, its assertion on).
SIMS = [pytest.param(s, marks=[pytest.mark.slow] if s == "verilator" else []) for s in simenv.SIMULATORS]


def _run(sim, outer_only=0, log_file=None, **env):
    return simenv.run("uz_tile_iter", SOURCES, "cocotb_tile_iter", {"OuterOnly": outer_only}, sim=sim,
                      extra_env={"UZ_OUTER_ONLY": str(outer_only), **env}, log_file=log_file)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("outer_only", [0, 1])
def test_tile_iter(sim, outer_only):
    _run(sim, outer_only)


@pytest.mark.parametrize("sim", SIMS)
def test_tile_iter_check_can_fail(sim):
    with pytest.raises(SystemExit):
        _run(sim, UZ_MUTATE="1")


@pytest.mark.parametrize("sim", SIMS)
def test_tile_iter_field_changing_fires_the_assertion(sim, tmp_path):
    log = tmp_path / "sim.log"
    with pytest.raises((SystemExit, RuntimeError)):
        _run(sim, log_file=log, UZ_VIOLATE="1")
    assert "TileSizesCurrent_A" in log.read_text(), "the failure is not the assertion's"
