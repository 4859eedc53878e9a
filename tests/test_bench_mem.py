"""The benchmark infrastructure: the SystemVerilog memory model
(tb/hdl/uz_tb_axi_mem.sv) alone, and small programs end to end through
uz_bench_top with tb/bench_sim.run_job, bit exact against the golden model.
Verilator throughout; the memory's functional test also under Icarus."""
import json
import random

import numpy as np
import pytest

from golden import compiler, funcmodel, layers, memimage
from tb import bench_sim
import engine_cases

MEM_TOP = "uz_tb_axi_mem"
MEM_BYTES = 256 * 1024
MEM_PARAMS = {"MemBytes": MEM_BYTES}


@pytest.fixture(scope="module")
def mem_build():
    return bench_sim.build_sim(MEM_TOP, bench_sim.MEM_HDL, MEM_PARAMS)


def run_mem(bdir, testcase, name, plusargs=(), env=None, sim="verilator"):
    run_dir = bdir / "runs" / f"{testcase}-{name}"
    ok = bench_sim.run_sim(MEM_TOP, bdir, "cocotb_bench_mem", MEM_PARAMS, run_dir, plusargs,
                           dict(env or {}, UZ_MEM_BYTES=str(MEM_BYTES)), testcase=testcase, sim=sim)
    assert ok, f"{testcase} failed; see {run_dir}"


@pytest.mark.parametrize("num,den,mix", [(2, 1, False), (5, 2, False), (8, 1, False), (16, 1, False),
                                         (64, 1, False), (4, 1, True)],
                         ids=["2", "2.5", "8", "16", "64-full", "4-mixed"])
def test_mem_bandwidth(mem_build, num, den, mix):
    """A long read sequence (or reads and writes sharing the bucket) moves
    the configured bytes per cycle within 2% (at most a beat per cycle)."""
    run_mem(mem_build, "bandwidth", f"bw{num}_{den}{'-mix' if mix else ''}",
            [f"+UZ_BW_NUM={num}", f"+UZ_BW_DEN={den}", "+UZ_LATENCY=24"], {"UZ_MIX": "1" if mix else "0"})


@pytest.mark.parametrize("lat", [2, 16, 37])
def test_mem_latency(mem_build, lat):
    run_mem(mem_build, "latency", f"lat{lat}", [f"+UZ_LATENCY={lat}"])


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_mem_functional(mem_build, sim, tmp_path):
    """+UZ_MEM_IN contents, strobed writes, SLVERR beyond MemBytes with no
    wrap-around, and $writememh dumps (one clipped at the end)."""
    bdir = mem_build if sim == "verilator" else bench_sim.build_sim(MEM_TOP, bench_sim.MEM_HDL, MEM_PARAMS,
                                                                    sim="icarus")
    image = random.Random(5).randbytes(10_000)
    bench_sim.write_hex(image, tmp_path / "in.hex")
    run_mem(bdir, "functional", f"{sim}", [f"+UZ_MEM_IN={tmp_path / 'in.hex'}", f"+UZ_MEM_OUT={tmp_path / 'dump'}"],
            {"UZ_EXPECT_IN": str(tmp_path / "in.hex")}, sim=sim)


def test_hex_round_trip(tmp_path):
    data = bytes(range(256)) + b"\x01\x02"
    bench_sim.write_hex(data, tmp_path / "a.hex")
    lines = (tmp_path / "a.hex").read_text().split()
    assert len(lines) == 17 and lines[0] == "0f0e0d0c0b0a09080706050403020100"
    assert bench_sim.read_hex(tmp_path / "a.hex") == data + bytes(14)
    # Icarus' $writememh comment and an address line
    (tmp_path / "b.hex").write_text("// 0x00000010\n@10\n" + "\n".join(lines[:2]) + "\n@13\nff\n")
    assert bench_sim.read_hex(tmp_path / "b.hex") == data[:32] + bytes(16) + b"\xff" + bytes(15)


# ---------------------------------------------------------------- end to end

def bench_case(case, tmp_path, bw, latency=bench_sim.DEFAULT_LATENCY, cfg=engine_cases.SMALL):
    """Run an engine_cases network through run_job, dumping every layer's
    output region; return the result and the dumped outputs."""
    prog, _, ref = engine_cases.build(case, cfg)
    bench_sim.write_hex(bytes(prog.image.data), tmp_path / "image.hex")
    dumps = []
    for i, q in enumerate(prog.layers):
        r = prog.image.region(prog.regions[q.name]["out"])
        dumps.append({"lo": r.addr, "hi": r.end, "file": str(tmp_path / f"bw{bw[0]}_{bw[1]}-out{i}.hex")})
    job = {"mem_in": str(tmp_path / "image.hex"), "desc_addr": prog.desc_addr, "layers": len(prog.layers),
           "dumps": dumps, "result": str(tmp_path / f"result-{bw[0]}_{bw[1]}.json"), "max_cycles": 1_000_000}
    res = bench_sim.run_job(job, cfg, bw=bw, latency=latency)
    assert res["passed"] and res["done"] and not res["error"], json.dumps(res)
    assert json.loads((tmp_path / f"result-{bw[0]}_{bw[1]}.json").read_text())["total_cycles"] == res["total_cycles"]
    outs = []
    for i, (q, d) in enumerate(zip(prog.layers, res["dumps"])):
        raw = bench_sim.read_hex(d["file"])[d["lo"] - d["addr"]:d["hi"] - d["addr"]]
        img = memimage.MemoryImage()
        img.write(d["lo"], raw)
        got = funcmodel.read_act(img, d["lo"], q.out_shape, cfg)[:q.out_shape[0]]
        first, n = layers.compare(ref[i], got)
        assert n == 0, f"{case} layer {q.name} at {bw}: {n} mismatches, first {first}"
        outs.append(got)
    out_bytes = sum(memimage.round_up(prog.image.region(prog.regions[q.name]["out"]).size, cfg.bus_bytes)
                    for q in prog.layers)
    assert res["wr_bytes"] == out_bytes, "the engine wrote other than its output regions, once"
    assert len(res["layers"]) == len(prog.layers)
    assert sum(x["cycles"] for x in res["layers"]) <= res["total_cycles"]
    return res, outs


@pytest.mark.slow   # about 45 s: make test-slow (CI)
def test_bench_end_to_end(tmp_path):
    """Two layers with pooling: bit exact at full bandwidth and at 2 bytes
    per cycle with a longer latency, which takes more cycles for the same
    traffic."""
    full, out_full = bench_case("two_layer_pool", tmp_path, (16, 1))
    slow, out_slow = bench_case("two_layer_pool", tmp_path, (2, 1), latency=40)
    assert all(np.array_equal(a, b) for a, b in zip(out_full, out_slow))
    assert (slow["rd_bytes"], slow["wr_bytes"]) == (full["rd_bytes"], full["wr_bytes"])
    # 2 bytes/cycle: the traffic alone needs (rd + wr) / 2 cycles
    assert slow["total_cycles"] >= (slow["rd_bytes"] + slow["wr_bytes"]) / 2
    assert slow["total_cycles"] > 1.5 * full["total_cycles"], (slow["total_cycles"], full["total_cycles"])
    assert sum(x["mem_stall"] for x in slow["layers"]) > sum(x["mem_stall"] for x in full["layers"])


@pytest.mark.slow   # with the next test, the only make-test users of the small bench build (about 80 s): make test-slow (CI)
def test_bench_ovsf(tmp_path):
    """Generated weights and a padded, strided convolution at 2.5 bytes per
    cycle, through run_program (a compiled Program, dumps as bytes)."""
    cfg = engine_cases.SMALL
    prog, _, ref = engine_cases.build("conv_ovsf", cfg)
    res = bench_sim.run_program(prog, bw=2.5, latency=30, work_dir=tmp_path)
    assert res["passed"], json.dumps({k: v for k, v in res.items() if k != "dump_bytes"})
    assert res["layers"][0]["gen_busy"] > 0
    q = prog.layers[0]
    r = prog.image.region(prog.regions[q.name]["out"])
    assert len(res["dump_bytes"][0]) == r.size
    img = memimage.MemoryImage()
    img.write(r.addr, res["dump_bytes"][0])
    got = funcmodel.read_act(img, r.addr, q.out_shape, cfg)[:q.out_shape[0]]
    assert layers.compare(ref[0], got)[1] == 0


@pytest.mark.slow   # shares test_bench_ovsf's build: make test-slow (CI)
def test_bench_failures_are_reported(tmp_path):
    """A program that stops with an error, and one that outlives its
    watchdog, both come back as results with passed False (no hang)."""
    prog, _, _ = engine_cases.build("fc", engine_cases.SMALL)
    bench_sim.write_hex(bytes(prog.image.data), tmp_path / "image.hex")
    job = {"mem_in": str(tmp_path / "image.hex"), "desc_addr": prog.desc_addr, "layers": len(prog.layers)}
    # descriptors read from beyond the image: zeros, a bad magic
    bad = bench_sim.run_job(dict(job, desc_addr=len(prog.image.data) + 4096), engine_cases.SMALL)
    assert not bad["passed"] and bad["error"] and not bad["done"] and bad["err"] != 0, bad
    slow = bench_sim.run_job(dict(job, max_cycles=50), engine_cases.SMALL)
    assert not slow["passed"] and slow["timeout"] and not slow["done"], slow


@pytest.mark.slow
def test_bench_script_writes_its_report(tmp_path, capsys):
    """scripts/bench.py on one quick layer: the table, the JSON, both plots;
    the run is bit exact and the model agrees with the RTL to within 10%."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench", bench_sim.ROOT / "scripts" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--set", "quick", "--only", "conv_32", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "[1/2] conv_32 rho 1" in text and "| conv_32 | 32x16x16 |" in text
    res = json.loads((tmp_path / "results.json").read_text())
    assert [r["rho"] for r in res["runs"]] == [1.0, 0.5]
    assert all(r["bit_exact"] and abs(r["model_error"]) < 0.1 for r in res["runs"])
    assert res["runs"][1]["speedup_vs_raw"] == res["runs"][0]["cycles"] / res["runs"][1]["cycles"]
    for png in ("roofline.png", "model.png"):
        assert (tmp_path / png).stat().st_size > 1000
