#!/usr/bin/env python3
"""Regressions.

RTL (default): a named regression of tb/regressions.py, its runs spread over
the cores, each checked through its cocotb results file.

    python scripts/regress.py [--regression smoke|nightly] [--sim verilator|icarus]
                              [--test NAME] [--seed N] [--config NAME] [--jobs N] [--waves]

--test keeps the matching tests (a name or a glob); --sim, --seed and
--config replace the tests' own lists, so a combination the regression does
not list runs as a single run. Every failing run prints the command that
replays it. Results go to build/regress/<regression>/ (results.json,
report.html, one folder per run with its log).

Functional model (--golden): the example networks and seeded random networks,
compiled and run on the functional model from the memory image, checked bit
for bit against the layer-by-layer golden network.

    python scripts/regress.py --golden [--seeds N] [--seed S] [--bits 8|16]
"""
from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "build" / "regress"
#: Wall-clock limits in seconds: one run's simulation, and the extra time a
#: run may spend building (or waiting on another run's build of) its model.
RUN_TIMEOUT = 600
BUILD_TIMEOUT = 900


# ------------------------------------------------------------ functional model

def golden_case(spec, cfg, seed):
    import numpy as np

    from golden import compiler, funcmodel, layers
    from golden.network import load_network

    net = load_network(spec, str(ROOT))
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (2,) + tuple(net.input_shape))
    prog = compiler.compile_network(net, cfg, x)
    bad = []
    for img in x:
        xq = compiler.load_input(prog, img)
        ref = compiler.run_network(prog, xq)
        funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), cfg)
        for i, q in enumerate(prog.layers):
            first, n = layers.compare(ref[i], compiler.layer_output(prog, i))
            if n:
                bad.append(f"layer {q.name}: {n} mismatches, first (c,y,x), expected, actual: {first[:3]}")
    return len(prog.layers), bad


def golden_main(args) -> int:
    from golden.config import EngineConfig
    from golden.randnet import random_network

    cfg = EngineConfig(data_bits=args.bits, alpha_bits=args.bits, acc_bits=48 if args.bits == 16 else 32)
    cases = []
    if args.seed is None:
        cases.append(("example5", str(ROOT / "golden" / "networks" / "example5.json"), 0))
        seeds = range(args.seeds)
    else:
        seeds = [args.seed]
    cases += [(f"random{s}", random_network(s), s) for s in seeds]
    passed = failed = 0
    t0 = time.time()
    for i, (name, spec, seed) in enumerate(cases):
        try:
            n_layers, bad = golden_case(spec, cfg, seed)
        except Exception as e:  # a crash is a failure of this case, not of the run
            n_layers, bad = 0, [f"{type(e).__name__}: {e}"]
        status = "PASS" if not bad else "FAIL"
        print(f"[{i + 1}/{len(cases)}] {status} {name} ({n_layers} layers, {time.time() - t0:.1f} s)", flush=True)
        if bad:
            failed += 1
            for b in bad[:5]:
                print(f"    {b}")
            if name.startswith("random"):
                print(f"    replay: python scripts/regress.py --golden --seed {seed} --bits {args.bits}")
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


# ------------------------------------------------------------ process pool

@dataclass
class Job:
    """One command to run under a wall-clock limit. The command writes its
    verdict as JSON to ``result`` (status, message); no file means it crashed."""
    name: str
    argv: list
    log: Path
    result: Path
    limit: float
    #: Runs sharing a build: only the first run of a build gets ``build_limit``.
    build_key: object = None
    build_limit: float = 0.0
    info: dict = field(default_factory=dict)


def _rel(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _kill(proc: subprocess.Popen) -> None:
    # Each job leads its own process group: the simulator dies with it.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _verdict(job: Job, proc: subprocess.Popen, seconds: float, killed_after: Optional[float]) -> dict:
    rec = dict(job.info, name=job.name, seconds=round(seconds, 1), log=_rel(job.log))
    if killed_after is not None:
        return dict(rec, status="FAIL", message=f"timeout: killed after {killed_after:g} s")
    try:
        got = json.loads(job.result.read_text())
    except (OSError, ValueError):
        return dict(rec, status="FAIL", message=f"crashed (exit status {proc.returncode}, no verdict)")
    status = "PASS" if got.get("status") == "PASS" and proc.returncode == 0 else "FAIL"
    msg = got.get("message", "") or ("" if status == "PASS" else f"exit status {proc.returncode}")
    return dict(rec, **{k: v for k, v in got.items() if k not in ("status", "message")}, status=status,
                message=msg)


def execute(jobs: list[Job], workers: int, on_done: Callable[[dict], None] = lambda r: None,
            poll: float = 0.1) -> list[dict]:
    """Run ``jobs`` at most ``workers`` at a time, in order; each gets
    ``limit`` seconds of wall clock (plus ``build_limit`` while no run of its
    build has finished) and is killed, with its children, when over.
    Returns one record per job, in order of completion."""
    pending = list(jobs)
    running: dict = {}
    built = set()
    done = []
    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                job.log.parent.mkdir(parents=True, exist_ok=True)
                job.result.unlink(missing_ok=True)
                limit = job.limit + (0 if job.build_key in built else job.build_limit)
                with open(job.log, "w") as log:
                    proc = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)
                running[proc] = (job, time.monotonic(), limit)
            time.sleep(poll)
            now = time.monotonic()
            for proc, (job, t0, limit) in list(running.items()):
                over = proc.poll() is None and now - t0 > limit
                if proc.poll() is None and not over:
                    continue
                if over:
                    _kill(proc)
                del running[proc]
                if not over:  # a run killed mid-build leaves the build to the next
                    built.add(job.build_key)
                rec = _verdict(job, proc, now - t0, limit if over else None)
                done.append(rec)
                on_done(rec)
    finally:
        for proc in running:  # interrupted: leave no simulator behind
            _kill(proc)
    return done


# ------------------------------------------------------------ RTL regression

def summary(results: list[dict]) -> tuple[str, int]:
    """The closing line and the exit status."""
    passed = sum(r["status"] == "PASS" for r in results)
    failed = len(results) - passed
    return f"{passed} passed, {failed} failed", 1 if failed else 0


def _build_key(run, waves: bool):
    return (run.toplevel, run.sim, tuple(sorted(run.parameters.items())), waves)


def order(runs: list, waves: bool) -> list:
    """Runs round-robin over their builds: the first runs started belong to
    different builds, so no worker waits on another's build while a build it
    could do is pending."""
    groups: dict = {}
    for r in runs:
        groups.setdefault(_build_key(r, waves), []).append(r)
    out = []
    queues = list(groups.values())
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def jobs_for(runs: list, regression: str, waves: bool, run_timeout: float, build_timeout: float) -> list[Job]:
    jobs = []
    for r in runs:
        d = OUT / regression / "runs" / r.name
        spec = {"name": r.name, "regression": regression, "test": r.test, "module": r.module,
                "testcase": r.testcase, "seed": r.seed, "config": r.config, "cfg": r.cfg.to_dict(),
                "sim": r.sim, "env": dict(r.env), "toplevel": r.toplevel, "waves": waves,
                "report": str(d / "report.json"), "result": str(d / "result.json")}
        d.mkdir(parents=True, exist_ok=True)
        (d / "spec.json").write_text(json.dumps(spec, indent=1))
        info = {k: spec[k] for k in ("test", "module", "testcase", "seed", "config", "sim")}
        info["replay"] = r.replay(waves)
        jobs.append(Job(r.name, [sys.executable, str(Path(__file__).resolve()), "--worker", str(d / "spec.json")],
                        d / "log.txt", d / "result.json", r.timeout or run_timeout, _build_key(r, waves),
                        build_timeout, info))
    return jobs


def worker_main(spec_path: str) -> int:
    """One run, in its own process: build (shared, locked) and simulate, then
    judge it from the results file. Outside pytest the cocotb runner neither
    raises nor exits non-zero on a failing test, so the file decides."""
    spec = json.loads(Path(spec_path).read_text())
    verdict = {"status": "FAIL", "message": ""}
    bdir = run_dir = None
    try:
        os.environ["WAVES"] = "1" if spec["waves"] else "0"  # the runner lets WAVES override its argument
        from golden.config import EngineConfig
        from tb import simenv
        from tb.regressions import engine_cases

        cfg = EngineConfig.from_dict(spec["cfg"])
        params = engine_cases.rtl_parameters(cfg)
        env = dict(spec["env"], UZ_CONFIG=json.dumps(cfg.to_dict()), UZ_REPORT=spec["report"],
                   # one BLAS thread: the other workers already fill the cores
                   OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
        name = f"{spec['regression']}.{spec['name']}"
        # simenv makes the run folder once the build is done: its absence
        # after an error says the build failed.
        bdir = simenv.build_dir_for(spec["toplevel"], spec["sim"], params, (bool(spec["waves"]), False))
        run_dir = bdir / "runs" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        t0 = time.time()
        xml = simenv.run(spec["toplevel"], simenv.rtl_sources(*simenv.ENGINE_RTL), spec["module"], params,
                         sim=spec["sim"], testcase=spec["testcase"], seed=spec["seed"], waves=spec["waves"],
                         extra_env=env, run_name=name)
        verdict.update(judge(Path(xml)), results_xml=_rel(xml))
        if spec["waves"]:
            waves = [p for d in (run_dir, bdir) for p in d.glob("*") if p.suffix in (".fst", ".vcd")
                     and p.stat().st_mtime >= t0]
            verdict["waves"] = _rel(waves[0]) if waves else ""
    except SystemExit as e:  # the runner exits when the simulator does not finish cleanly
        verdict["message"] = f"simulator exited with status {e.code}"
    except Exception as e:
        traceback.print_exc()
        verdict["message"] = f"{type(e).__name__}: {e}".splitlines()[0]
        if run_dir is not None and not run_dir.exists() and (bdir / "build.log").exists():
            verdict["message"] = f"build failed: {_first_error(bdir / 'build.log')} (log: {_rel(bdir / 'build.log')})"
    sys.stdout.flush()
    tmp = Path(spec["result"] + ".tmp")
    tmp.write_text(json.dumps(verdict))
    tmp.replace(spec["result"])
    return 0


def _first_error(log: Path) -> str:
    for line in log.read_text(errors="replace").splitlines():
        if "error" in line.lower():
            return line.strip()[:200]
    return "see the build log"


def judge(xml: Path) -> dict:
    """A run's verdict from its cocotb results file: it passes only if at
    least one test ran and none failed."""
    from xml.etree import ElementTree

    from cocotb_tools.runner import get_results

    try:
        tests, failed = get_results(xml)
    except RuntimeError:  # no results file: the simulation ended abnormally
        return {"status": "FAIL", "message": "no results file: the simulation ended abnormally"}
    out = {"tests": tests, "failed": failed}
    if tests == 0:
        return dict(out, status="FAIL", message="no test ran (is the test name right?)")
    if not failed:
        return dict(out, status="PASS", message="")
    for el in ElementTree.parse(xml).getroot().iter():
        if el.tag in ("failure", "error"):
            msg = (el.get("message") or el.tag).strip().splitlines()
            return dict(out, status="FAIL", message=msg[0] if msg else el.tag)
    return dict(out, status="FAIL", message=f"{failed} of {tests} tests failed")


def write_reports(directory: Path, meta: dict, results: list[dict]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    line, _ = summary(results)
    (directory / "results.json").write_text(json.dumps(dict(meta, summary=line, runs=results), indent=1))
    rows = []
    for r in sorted(results, key=lambda r: (r["status"] == "PASS", r["name"])):
        cls = "pass" if r["status"] == "PASS" else "fail"
        log = os.path.relpath(ROOT / r["log"], directory) if r.get("log") else ""
        rows.append(
            f"<tr class={cls}><td>{html.escape(r['name'])}</td><td>{r['status']}</td><td>{r.get('seed', '')}</td>"
            f"<td>{html.escape(str(r.get('config', '')))}</td><td>{html.escape(str(r.get('sim', '')))}</td>"
            f"<td>{r['seconds']:.1f}</td><td>{html.escape(r.get('message', ''))}</td>"
            f"<td><code>{html.escape(r.get('replay', ''))}</code></td>"
            f"<td><a href=\"{html.escape(log)}\">log</a></td></tr>")
    title = f"uz regression {html.escape(meta['regression'])}: {line}"
    (directory / "report.html").write_text(
        f"<!doctype html><meta charset=utf-8><title>{title}</title>\n<style>"
        "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
        "tr.pass td:nth-child(2){color:#070}tr.fail td:nth-child(2){color:#b00;font-weight:bold}</style>\n"
        f"<h1>{title}</h1><p>{html.escape(meta.get('started', ''))}, {meta.get('seconds', 0):.0f} s wall, "
        f"{meta.get('jobs', '')} jobs</p>\n<table><tr><th>run</th><th>status</th><th>seed</th><th>config</th>"
        "<th>sim</th><th>seconds</th><th>message</th><th>replay</th><th>log</th></tr>\n"
        + "\n".join(rows) + "\n</table>\n")


def rtl_main(args) -> int:
    from tb import regressions

    try:
        runs = regressions.expand(args.regression, sim=args.sim, test=args.test, seed=args.seed,
                                  config=args.config)
    except regressions.RegressionError as e:
        print(f"regress: error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for r in runs:
            print(r.name)
        return 0
    runs = order(runs, args.waves)
    jobs = jobs_for(runs, args.regression, args.waves, args.timeout, args.build_timeout)
    print(f"regression {args.regression}: {len(jobs)} run{'s' if len(jobs) != 1 else ''}, "
          f"{args.jobs} at a time", flush=True)
    t0 = time.time()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    count = [0]

    def report(rec):
        count[0] += 1
        print(f"[{count[0]}/{len(jobs)}] {rec['status']} {rec['name']} ({rec['seconds']:.1f} s)", flush=True)
        if rec["status"] != "PASS":
            print(f"    {rec['message']}")
            print(f"    log: {rec['log']}")
            print(f"    replay: {rec['replay']}", flush=True)
        if rec.get("waves"):
            print(f"    waves: {rec['waves']}", flush=True)

    def stop(signum, frame):  # a killed regression must not leave simulators running
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        results = execute(jobs, args.jobs, report)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    meta = {"regression": args.regression, "started": started, "seconds": round(time.time() - t0, 1),
            "jobs": args.jobs, "filters": {k: getattr(args, k) for k in ("sim", "test", "seed", "config")},
            "waves": args.waves}
    write_reports(OUT / args.regression, meta, results)
    line, status = summary(results)
    print(f"report: {_rel(OUT / args.regression / 'report.html')}")
    print(line)
    return status


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regression", default="smoke", help="regression name (tb/regressions.py; default smoke)")
    ap.add_argument("--sim", help="simulator for every run (default: each test's own)")
    ap.add_argument("--test", help="only this test (name or glob)")
    ap.add_argument("--seed", type=int, help="only this seed (RTL), or only this random network (--golden)")
    ap.add_argument("--config", help="only this engine configuration")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at a time (default: cores)")
    ap.add_argument("--waves", action="store_true", help="record waveforms (a separate build)")
    ap.add_argument("--timeout", type=float, default=RUN_TIMEOUT,
                    help=f"wall-clock limit of one run in seconds, beyond building (default {RUN_TIMEOUT})")
    ap.add_argument("--build-timeout", type=float, default=BUILD_TIMEOUT,
                    help=f"extra limit for a run that builds its model (default {BUILD_TIMEOUT})")
    ap.add_argument("--list", action="store_true", help="print the runs and stop")
    g = ap.add_argument_group("functional model")
    g.add_argument("--golden", action="store_true", help="the whole-program regression on the functional model")
    g.add_argument("--seeds", type=int, help="random networks to run (default 20)")
    g.add_argument("--bits", type=int, choices=(8, 16), help="data width (default 16)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    if args.golden:
        args.seeds = 20 if args.seeds is None else args.seeds
        args.bits = 16 if args.bits is None else args.bits
        return golden_main(args)
    if args.seeds is not None or args.bits is not None:
        ap.error("--seeds and --bits belong to --golden")
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")
    return rtl_main(args)


if __name__ == "__main__":
    sys.exit(main())
