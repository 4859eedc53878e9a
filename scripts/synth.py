#!/usr/bin/env python3
"""Synthesis, place and route and resource report of the engine (`make synth`).

    python scripts/synth.py [--configs default,small] [--sweep] [--families xc7,xcup]
                            [--ecp5 ecp5|small|none] [--ecp5-ooc ecp5|none] [--netlist-sim] [--timeout S]
                            [--jobs N]

Per configuration, build/synth/<config>/report.json and report.md:
Xilinx 7-series and UltraScale+ resources (synth_xilinx, per block and
total), block RAM against the buffers' bits, and for the --ecp5
configuration Lattice ECP5 place and route (LFE5UM-85F, speed 8, CABGA381)
with Fmax, critical path and utilisation. build/synth/summary.json and
summary.md gather every configuration reported so far (also those of
earlier runs), the linear resource model fitted to them
(build/synth/resource_model.json) and the throughput table from the
benchmark results (build/bench/results.json, `make bench`).

--ecp5-ooc places and routes each block of a configuration alone on the ECP5
(nextpnr-ecp5 --out-of-context): per-block Fmax and worst path in report.json
("ecp5_ooc") and report.md; the glue blocks (top, layer) are skipped, their
sub-blocks being black boxes there. Logs: blocks/<block>.ecp5.log, .nextpnr.log.

--sweep adds the sweep configurations (SWEEP below) on 7-series only.
--netlist-sim synthesises the small configuration to a gate netlist and runs
the engine smoke cases on it under Verilator (also `make synth-sim`).
Logs: build/synth/<config>/*.log, blocks/*.log, ecp5/*.log, netlist/*.log.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "rtl"))

from golden.config import DEFAULT  # noqa: E402
from tb import regressions, simenv  # noqa: E402
from tb import synth_flow as sf  # noqa: E402

import engine_cases  # noqa: E402

SMALL = engine_cases.SMALL
#: Points for the resource model: PM·PN, PM, the buffers and the bus vary
#: apart from each other (sweep_pm8_pn4: PM away from PM·PN's square root).
SWEEP = {
    "sweep_pm8_pn4": regressions.CONFIGS["pm8_pn4"],
    "sweep_pm12_pn4": regressions.CONFIGS["pm12_pn4"],   # PM not a power of two
    "sweep_p4": dataclasses.replace(SMALL, pm=4, pn=4, ovsf_len=4, axi_data_bits=64, in_buf_elems=4096,
                                    wgt_buf_elems=4096, out_buf_elems=2048),
    # small's bus halved: a pixel (PN * 16 bits) must be whole beats, so a
    # wider bus than small's 128 bits would need PN = 16
    "sweep_p8_bus64": dataclasses.replace(SMALL, axi_data_bits=64),
    "sweep_p8_bigbuf": dataclasses.replace(SMALL, in_buf_elems=32768, wgt_buf_elems=32768, out_buf_elems=16384),
    "sweep_p16_smallbuf": dataclasses.replace(SMALL, pm=16, pn=16, ovsf_len=16, in_buf_elems=16384,
                                              wgt_buf_elems=16384, out_buf_elems=8192),
}
#: The configuration placed and routed on the ECP5 (LFE5UM-85F): small does
#: not fit it (its compute window at MaxK = 11 and its 8x8 array take 164%
#: of the LUTs). Defined with the other named configurations, so that the
#: benchmark (`scripts/bench.py --config ecp5`) and the regressions run it too.
ECP5 = regressions.CONFIGS["ecp5"]
CONFIGS = {"default": DEFAULT, "small": SMALL, "ecp5": ECP5, **SWEEP}


def load_reports(out: Path) -> dict:
    reps = {}
    for f in sorted(out.glob("*/report.json")):
        try:
            reps[f.parent.name] = json.loads(f.read_text())
        except json.JSONDecodeError:
            print(f"synth: ignoring unreadable {f}", file=sys.stderr)
    return reps


def summary(out: Path, args) -> dict:
    reps = load_reports(out)
    s = {"configs": {}, "model": None, "throughput": None}
    points = []
    for n, r in reps.items():
        s["configs"][n] = {"parameters": r["parameters"], "buffer_bits": r["buffer_bits_total"],
                           "xilinx": {f: {"total": x["total"], "complete": x["complete"],
                                          "bram_data_over_buffers": x["bram_data_over_buffers"],
                                          "lut_per_mac": x["lut_per_mac"]} for f, x in r["xilinx"].items()}}
        x = r["xilinx"].get("xc7")
        if x and x["complete"]:
            points.append({"name": n, "features": sf.model_features(r["parameters"], r["buffer_bits_total"]),
                           "resources": x["total"]})
    if len(points) >= 2:
        s["model"] = sf.fit_resource_model(points)
        s["model"]["flow"] = "synth_xilinx -family xc7"
        (out / "resource_model.json").write_text(json.dumps(s["model"], indent=1))
    bench_file = Path(args.bench)
    if bench_file.exists():
        bench = json.loads(bench_file.read_text())
        bcfg = bench.get("config", {})
        name = next((n for n, c in CONFIGS.items() if c.to_dict() == bcfg), None)
        rep = reps.get(name) if name else None
        ecp5 = (rep or {}).get("ecp5") or {}
        x7 = (rep or {}).get("xilinx", {}).get("xc7", {})
        dsps = x7.get("total", {}).get("dsp") if x7.get("complete") else None
        if ecp5.get("fmax"):
            clock, kind = min(f["mhz"] for f in ecp5["fmax"].values()), "measured (ECP5, nextpnr)"
            # the multipliers of the device that clock was measured on
            dsps = (ecp5.get("synth_cells") or {}).get("mult18", dsps)
            dsp_kind = "ECP5 MULT18X18D"
        else:
            clock, kind = args.clock_mhz, "assumed"
            dsp_kind = "7-series DSP48E1"
        s["throughput"] = {"bench": str(bench_file.relative_to(ROOT)) if bench_file.is_relative_to(ROOT) else
                           bench_file.name, "config": name or "a configuration not reported here",
                           "clock_mhz": clock, "clock": kind, "dsps": dsps, "dsp_kind": dsp_kind,
                           "rows": sf.throughput_rows(bench, clock, kind, dsps)}
    (out / "summary.json").write_text(json.dumps(s, indent=1))
    (out / "summary.md").write_text(summary_markdown(s))
    return s


def summary_markdown(s: dict) -> str:
    out = ["# Synthesis summary", "", "## Resources per configuration (totals of the blocks)", ""]
    rows = []
    for n, c in s["configs"].items():
        p = c["parameters"]
        for f, x in c["xilinx"].items():
            t = x["total"]
            rows.append([n, f"{p['PM']}x{p['PN']}", p["OvsfLen"], p["AxiDataWidth"], c["buffer_bits"] // 1024, f,
                         t["lut"], t["ff"], t["dsp"], t["bram36_eq"], x["bram_data_over_buffers"], x["lut_per_mac"],
                         "yes" if x["complete"] else "NO"])
    out += sf._table(["config", "PMxPN", "L", "bus", "buffer kbit", "flow", "LUT", "FF", "DSP", "BRAM36 eq",
                      "BRAM data / buffers", "LUT/MAC", "complete"], rows)
    m = s["model"]
    out += ["", "## Linear resource model (7-series)", ""]
    if m:
        out += [f"Least squares over {', '.join(m['points'])}; features {', '.join(m['features'])} "
                "(buffer in kbit; const = 1).", ""]
        out += sf._table(["resource"] + m["features"] + ["rank", "max |residual|"],
                         [[t] + [v["coefficients"][f] for f in m["features"]] + [v["rank"], v["max_abs_residual"]]
                          for t, v in m["targets"].items()])
    else:
        out.append("Fewer than two complete 7-series configurations: no fit (run with --sweep).")
    out += ["", "## Throughput", ""]
    th = s["throughput"]
    if not th:
        out.append("No benchmark results (build/bench/results.json): run `make bench` first; no numbers are given "
                   "without them.")
    else:
        out += [f"Benchmark {th['bench']} on configuration {th['config']}; clock {th['clock_mhz']:g} MHz "
                f"({th['clock']}); DSPs ({th.get('dsp_kind', 'DSP')}, counted as used): {_or(th['dsps'])}.", ""]
        out += sf._table(["layer", "rho", "selection", "bus", "MACs", "cycles", "clock MHz", "clock", "GOP/s",
                          "MACs/DSP/cycle"],
                         [[r["layer"], r["rho"], r["selection"], r["bus_bits"], r["macs"], r["cycles"], r["clock_mhz"],
                           r["clock"], r["gops"], r["macs_per_dsp_cycle"]] for r in th["rows"]])
    return "\n".join(out) + "\n"


def _or(v):
    return "unknown (7-series synthesis incomplete)" if v is None else v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="default,small", help=f"comma-separated, of {', '.join(CONFIGS)}")
    ap.add_argument("--sweep", action="store_true", help="add the sweep configurations (7-series only)")
    ap.add_argument("--families", default="xc7,xcup", help="Xilinx families (xc7, xcup)")
    ap.add_argument("--ecp5", default="ecp5", help="configuration to place and route on ECP5 (default: ecp5, the "
                    "one that fits the LFE5UM-85F), or none")
    ap.add_argument("--ecp5-ooc", default="none", help="configuration whose blocks are each placed and routed on "
                    "ECP5 out of context (nextpnr-ecp5 --out-of-context): per-block Fmax and worst path; none (default)")
    ap.add_argument("--ooc-timeout", type=float, default=1200,
                    help="seconds per block step of --ecp5-ooc (default 1200); a block over it is reported as skipped")
    ap.add_argument("--reuse", action="store_true",
                    help="read the results of steps already in the output folder instead of rerunning them")
    ap.add_argument("--report-only", action="store_true",
                    help="--reuse and run nothing: the reports from the results already there")
    ap.add_argument("--skip", default="", help="blocks not to synthesise, comma-separated (e.g. compute)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr seed (default 1)")
    ap.add_argument("--freq", type=float, default=125.0, help="nextpnr target clock in MHz (default 125)")
    # router1 (nextpnr's default) had not resolved the ecp5 configuration's
    # congestion after 28 minutes of routing.
    ap.add_argument("--router", default="router2", choices=["router1", "router2"], help="nextpnr router (default router2)")
    ap.add_argument("--netlist-sim", action="store_true",
                    help="only the netlist regression: small's gate netlist through the engine smoke cases")
    ap.add_argument("--rtl-blocks", default="", help="--netlist-sim: blocks kept behavioural (e.g. compute)")
    ap.add_argument("--cases", default=",".join(engine_cases.SMOKE), help="engine cases of --netlist-sim")
    ap.add_argument("--netlist-level", default="word", choices=list(sf.NETLIST_LEVELS),
                    help="--netlist-sim: word (Yosys's coarse cells, default) or gate (single-bit gates)")
    ap.add_argument("--verilator-args", default="", help="--netlist-sim: extra Verilator build options")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per Yosys/nextpnr step (default 1800)")
    ap.add_argument("--jobs", type=int, default=2, help="Yosys processes at once (default 2)")
    ap.add_argument("--bench", default=str(ROOT / "build" / "bench" / "results.json"))
    ap.add_argument("--clock-mhz", type=float, default=200.0, help="assumed clock when none is measured")
    ap.add_argument("--out", default=str(ROOT / "build" / "synth"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.reuse or args.report_only:
        sf.REUSE.append(True)
    if args.report_only:
        sf.REUSE.append(True)        # two entries: run nothing
    progress = sf.Progress()
    t0 = time.monotonic()

    if args.netlist_sim:
        return netlist_sim(out, args, progress)

    names = [n for n in args.configs.split(",") if n]
    if args.sweep:
        names += [n for n in SWEEP if n not in names]
    for n in names + [c for c in (args.ecp5, args.ecp5_ooc) if c != "none"]:
        if n not in CONFIGS:
            ap.error(f"unknown configuration {n!r} (known: {', '.join(CONFIGS)})")
    fams = [f for f in args.families.split(",") if f]
    for f in fams:
        if f not in sf.XILINX_FAMILIES:
            ap.error(f"unknown family {f!r} (known: {', '.join(sf.XILINX_FAMILIES)})")
    for c in (args.ecp5, args.ecp5_ooc):
        if c != "none" and c not in names:
            names.append(c)
    jobs, elab = [], {}
    for n in names:
        params = simenv.engine_parameters(CONFIGS[n])
        cfams = ["xc7"] if n in SWEEP else fams
        ecp5 = {"seed": args.seed, "freq": args.freq, "router": args.router} if n == args.ecp5 else None
        ooc = ({"seed": args.seed, "freq": args.freq, "router": args.router, "timeout": args.ooc_timeout}
               if n == args.ecp5_ooc else None)
        try:
            mods, blks, js = sf.config_jobs(n, params, out / n, cfams, args.timeout, progress, ecp5=ecp5, ooc=ooc)
        except sf.SynthError as e:
            print(f"synth: {e}", file=sys.stderr)
            return 1
        elab[n] = (params, mods, blks, cfams)
        skip = {b for b in args.skip.split(",") if b}
        # With --reuse a skipped block still reports the result it has.
        jobs += [j for j in js if j.name not in skip or
                 (sf.REUSE and (out / n / "blocks" / f"{j.name}.{'ooc' if j.kind == 'ecp5-ooc' else j.kind}.stat.json").exists())]
    progress(f"{len(jobs)} steps on {args.jobs} processes")
    results = sf.run_jobs(jobs, args.jobs, progress)
    failed = 0
    for n, (params, mods, blks, cfams) in elab.items():
        rep = sf.config_report(n, params, mods, blks, cfams, results)
        (out / n / "report.json").write_text(json.dumps(rep, indent=1))
        (out / n / "report.md").write_text(sf.config_markdown(rep))
        failed += sum(not s["ok"] for s in rep["steps"].values())
        progress(f"{n}: {out / n / 'report.md'}")
    summary(out, args)
    progress(f"summary: {out / 'summary.md'}; {len(jobs)} steps, {failed} failed, "
             f"{time.monotonic() - t0:.0f} s")
    return 1 if failed else 0


def netlist_sim(out: Path, args, progress) -> int:
    n = "small"
    d = out / n
    params = simenv.engine_parameters(SMALL)
    t0 = time.monotonic()
    try:
        mods, _, _ = sf.config_jobs(n, params, d, [], args.timeout, progress)   # the elaboration only
        rtl_blocks = [b for b in args.rtl_blocks.split(",") if b]
        job = sf.netlist_job(n, d, args.timeout, mods, rtl_blocks, level=args.netlist_level)
        res = sf.run_jobs([job], 1, progress)[(n, "netlist", "generic synth")]
        if not res["ok"]:
            raise sf.SynthError(res["error"])
        cases = [c for c in args.cases.split(",") if c]
        extra = [simenv.ROOT / res["result"]["rtl_part"]] if rtl_blocks else []
        tests, build = sf.run_netlist_tests(simenv.ROOT / res["result"]["netlist"], cases, SMALL, d, progress, extra,
                                            args.verilator_args.split())
    except sf.SynthError as e:
        print(f"synth: {e}", file=sys.stderr)
        return 1
    rep = dict(res["result"], tests=tests, verilator_build=build, wall_seconds=round(time.monotonic() - t0, 1))
    (d / "netlist.json").write_text(json.dumps(rep, indent=1))
    # The configuration's report takes the result when it exists.
    rf = d / "report.json"
    if rf.exists():
        r = json.loads(rf.read_text())
        r["netlist"] = rep
        rf.write_text(json.dumps(r, indent=1))
        (d / "report.md").write_text(sf.config_markdown(r))
    bad = [c for c, t in tests.items() if t["result"] != "pass"]
    progress(f"netlist regression ({args.netlist_level} level): {len(tests) - len(bad)}/{len(tests)} cases pass"
             + (f"; failing: {', '.join(bad)}" if bad else "") + f"; {rep['wall_seconds']:.0f} s")
    return 1 if bad else 0


def _stop(signum, frame):
    sf.stop_all()
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, _stop)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sf.stop_all()
        sys.exit(130)
