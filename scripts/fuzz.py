#!/usr/bin/env python3
"""The program fuzz (tb/fuzz.py) at length: N programs split over runs of the
nightly regression's `fuzz` entry, FUZZ_CHUNK programs per seed, run on the
cores by scripts/regress.py's runner, with a progress line per run. The
runs' summaries are merged into build/fuzz/summary.json and printed.

    python scripts/fuzz.py [--programs N] [--seed FIRST] [--jobs J] [--sim S] [--config C]

A failing run prints its replay line (`make sim TEST=fuzz SEED=n`: the run's
first programs are the same whatever its count). Exit status 1 if any run
failed or any hang, stray write, mismatch or wrong status was counted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import regress  # noqa: E402

OUT = ROOT / "build" / "fuzz"
BAD = ("hangs", "stray_writes", "mismatches", "wrong_status")


def main(argv=None) -> int:
    from tb import fuzz, regressions

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", type=int, default=1000, help="programs to fuzz (default 1000)")
    ap.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at a time (default: cores)")
    ap.add_argument("--sim", help="simulator (default: the entry's, Verilator)")
    ap.add_argument("--config", help="engine configuration (default: the entry's)")
    ap.add_argument("--timeout", type=float, default=regress.RUN_TIMEOUT, help="wall-clock limit of one run (s)")
    args = ap.parse_args(argv)
    if args.programs < 1 or args.jobs < 1:
        ap.error("--programs and --jobs must be at least 1")
    chunk = regressions.FUZZ_CHUNK
    n_runs = -(-args.programs // chunk)
    runs = []
    try:
        for i in range(n_runs):
            [r] = regressions.expand("nightly", test="fuzz", seed=args.seed + i, sim=args.sim, config=args.config)
            count = min(chunk, args.programs - i * chunk)
            runs.append(dataclasses.replace(r, env=dict(r.env, UZ_COUNT=str(count))))
    except regressions.RegressionError as e:
        print(f"fuzz: error: {e}", file=sys.stderr)
        return 2
    jobs = regress.jobs_for(runs, "fuzz", False, args.timeout, regress.BUILD_TIMEOUT)
    print(f"fuzz: {args.programs} programs in {len(jobs)} runs of up to {chunk} (seeds {args.seed}.."
          f"{args.seed + n_runs - 1}), {args.jobs} at a time", flush=True)
    summaries, records = [], []
    t0 = time.time()

    def on_done(rec):
        path = regress.OUT / "fuzz" / "runs" / rec["name"] / "fuzz_summary.json"
        s = json.loads(path.read_text()) if path.exists() else None
        if s is None and rec["status"] == "PASS":
            rec = dict(rec, status="FAIL", message="no fuzz summary written")
        records.append(dict(rec, programs=s["programs"] if s else 0))
        if s:
            summaries.append(s)
        tot = fuzz.merge(summaries)
        kinds = sum(1 for v in tot["errors_by_kind"].values() if v)
        print(f"[{len(records)}/{len(jobs)}] {rec['status']} {rec['name']} ({rec['seconds']:.0f} s): "
              f"{s['programs'] if s else 0} programs; so far {tot['programs']} programs, {kinds} error kinds, "
              + ", ".join(f"{tot[k]} {k.replace('_', ' ')}" for k in BAD), flush=True)
        if rec["status"] != "PASS":
            print(f"    {rec['message']}\n    log: {rec['log']}\n    replay: {rec['replay']}", flush=True)

    try:
        regress.execute(jobs, args.jobs, on_done)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    total = fuzz.merge(summaries)
    total.update(seeds=[args.seed, args.seed + n_runs - 1], seconds=round(time.time() - t0, 1),
                 runs=[{k: r.get(k) for k in ("name", "status", "message", "programs", "seconds", "replay")}
                       for r in sorted(records, key=lambda r: r["name"])])
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "summary.json"
    path.write_text(json.dumps(total, indent=1))
    print(fuzz.format_summary(total, f"fuzz, {len(jobs)} runs, {total['seconds']:.0f} s"))
    failed = [r for r in records if r["status"] != "PASS"]
    print(f"summary: {regress._rel(path)}")
    print(f"{len(records) - len(failed)} runs passed, {len(failed)} failed")
    return 1 if failed or any(total[k] for k in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
