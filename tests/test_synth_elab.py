"""The RTL as a synthesis tool reads it: yosys-slang (read_slang, SYNTHESIS
defined, declare before use) elaborates uz_top for every engine
configuration the tests build, with no error and no warning."""
import dataclasses

import pytest

from tb import regressions, simenv, synth

#: Every configuration an RTL test or regression builds uz_top with.
CONFIGS = dict(regressions.CONFIGS, small_gen3=dataclasses.replace(regressions.CONFIGS["small"], gen_lanes=3))


def _scratch(name):
    d = simenv.ROOT / "build" / "synth-check"
    d.mkdir(parents=True, exist_ok=True)
    return d / name


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_uz_top_elaborates_in_yosys(name):
    r = synth.elaborate(simenv.engine_parameters(CONFIGS[name]))
    assert r.ok, f"read_slang of uz_top ({name}) is not clean:\n{r}\ncommand: {r.command}"


@pytest.mark.parametrize("body, message", [
    ("assign y = x; logic x; assign x = a;", "used before its declaration"),
    ("assign y = a << -1;", "negative"),
], ids=["use_before_declare", "negative_shift"])
def test_elaboration_check_can_fail(body, message):
    src = _scratch(f"uz_bad_{len(body)}.sv")
    src.write_text(f"module uz_bad (input logic [3:0] a, output logic [3:0] y);\n  {body}\nendmodule\n")
    r = synth.elaborate({}, top="uz_bad", sources=[src])
    assert not r.ok and any(message in m for m in r.messages), str(r)


def test_checks_are_out_of_synthesis_only():
    """An always-false elaboration check (it stops a simulation at time 0)
    is left out of synthesis."""
    src = _scratch("uz_chk.sv")
    src.write_text('`include "uz_assert.svh"\nmodule uz_chk (input logic a, output logic y);\n'
                   "  assign y = a;\n  `ASSERT_INIT(NeverTrue_A, 1 == 0)\nendmodule\n")
    r = synth.elaborate({}, top="uz_chk", sources=[src])
    assert r.ok, str(r)
