"""uz_desc_check against golden.isa.validate, under both simulators and two
engine configurations (tests/rtl/cocotb_desc_check.py holds the vectors)."""
import pytest

from golden.config import EngineConfig
from tb import simenv

SIMS = simenv.SIMULATORS
#: Descriptors simulated per run (Icarus is the slower). Against deliberately
#: broken copies of the combinational check, 6000 caught every break that some
#: descriptor can show; the sequential check takes about 85 cycles a
#: descriptor, so the suite runs 3000 and 1500 (the fuzz adds more: every
#: program's descriptors go through the same check against golden).
VECTORS = {"verilator": 3000, "icarus": 1500}

CONFIGS = {
    "default": EngineConfig(),
    # PM != PN != OvsfLen, so that a check using the wrong one shows; 8-bit
    # data, so that the clip bound's limit differs; a window of 7, so that
    # kernels of 11 are refused.
    "pm16_pn8_l4_bus64_k7": EngineConfig(pm=16, pn=8, ovsf_len=4, axi_data_bits=64, in_buf_elems=16384,
                                         wgt_buf_elems=16384, out_buf_elems=4096, data_bits=8, max_k=7),
    # alphas narrower than the data: the generator shift's range starts
    # lower (-10), so AlphaWidth must reach the check
    "alpha8": EngineConfig(alpha_bits=8),
}


def params_for(cfg: EngineConfig) -> dict:
    return {"PM": cfg.pm, "PN": cfg.pn, "DataWidth": cfg.data_bits, "OvsfLen": cfg.ovsf_len,
            "AlphaWidth": cfg.alpha_bits, "AxiDataWidth": cfg.axi_data_bits,
            "InBufElems": cfg.in_buf_elems, "WgtBufElems": cfg.wgt_buf_elems, "OutBufElems": cfg.out_buf_elems,
            "MaxK": cfg.max_k}


def _run(sim, cfg, **env):
    env.setdefault("UZ_DESC_VECTORS", str(VECTORS[sim]))
    return simenv.run("uz_desc_check", simenv.rtl_sources("uz_desc_check"), "cocotb_desc_check",
                      params_for(cfg), sim=sim, extra_env=env)


# alpha8 in make test-slow (a build per simulator for one rule's plumbing;
# golden's tests check the rule itself)
@pytest.mark.parametrize("sim, name", [pytest.param(s, n, id=f"{n}-{s}", marks=[pytest.mark.slow] if n == "alpha8" else [])
                                       for n in CONFIGS for s in SIMS])
def test_desc_check(sim, name):
    _run(sim, CONFIGS[name])


@pytest.mark.parametrize("sim", SIMS)
def test_desc_check_can_fail(sim):
    with pytest.raises(SystemExit):
        _run(sim, CONFIGS["default"], UZ_MUTATE="1", UZ_DESC_VECTORS="300")
