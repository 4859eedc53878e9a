"""The ``uz`` command line.

    uz compile NET.json --out DIR [options]
    uz golden  NET.json [--input X.npy] --out DIR [options]
    uz run     NET.json --input X.npy [--sim verilator|icarus] --out DIR [options]

``uz golden`` runs the golden model (cycles from the analytical model);
``uz run`` also runs the RTL simulation and checks every layer bit for bit.
``--rho auto`` picks rho per layer with the hardware-aware search
(golden/search.py) on the calibration images.

NET may also be an ONNX model (a file ending in .onnx; see docs/onnx.md).

User errors print one line naming the problem and exit with status 2; no
traceback. Outputs are written to a temporary folder first and moved into
place only when complete, so a failed run never leaves files that look valid.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

from . import arith, compiler, perf, report, search
from .config import EngineConfig
from .errors import UzError
from .network import load_network
from .onnx_import import load_onnx

CALIB_SEED = 12345


def _config(args) -> EngineConfig:
    d = {}
    if args.config:
        try:
            with open(args.config) as f:
                d = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise UzError(f"cannot read engine configuration {args.config}: {e}") from None
    if args.bits is not None:
        d["data_bits"] = args.bits
        d.setdefault("alpha_bits", args.bits)
        d.setdefault("acc_bits", 48 if args.bits == 16 else 32)
    return EngineConfig.from_dict(d)


def _load_array(path: str, what: str) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UzError(f"{what} file {path} not found") from None
    except Exception as e:  # numpy raises several types for a bad file
        raise UzError(f"{what} file {path} is not a readable .npy array: {e}") from None
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise UzError(f"{what} file {path} has dtype {a.dtype}; expected a float array")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise UzError(f"{what} file {path} holds NaN or infinite values")
    if a.ndim == 4 and a.shape[0] == 0:
        raise UzError(f"{what} file {path} holds no images (shape {a.shape})")
    return a


def _inputs(args, shape) -> np.ndarray:
    if args.input:
        x = _load_array(args.input, "input")
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape):
            raise UzError(f"input {args.input} has shape {x.shape}; the network takes (N, {', '.join(map(str, shape))})")
        return x
    if args.batch < 1:
        raise UzError(f"--batch {args.batch} must be at least 1")
    rng = np.random.default_rng(args.seed)
    return rng.normal(0.0, 1.0, (args.batch,) + tuple(shape))


def _calib(args, shape, fallback: np.ndarray) -> np.ndarray:
    if args.calib:
        c = _load_array(args.calib, "calibration")
        if c.ndim == 3:
            c = c[None]
        if c.ndim != 4 or tuple(c.shape[1:]) != tuple(shape):
            raise UzError(f"calibration {args.calib} has shape {c.shape}; the network takes (N, {', '.join(map(str, shape))})")
        return c
    return fallback


def _load_net(args):
    if args.net.lower().endswith(".onnx"):
        return load_onnx(args.net, drop_final_softmax=not args.keep_final_softmax)
    return load_network(args.net)


def _rho(text):
    """--rho: None, "auto" or a ratio in (0, 1]."""
    if text is None or text == "auto":
        return text
    try:
        v = float(text)
    except ValueError:
        raise UzError(f"--rho {text}: expected auto or a number in (0, 1]") from None
    if not 0 < v <= 1:
        raise UzError(f"--rho {text} must be in (0, 1]")
    return v


def _check_options(args) -> None:
    """Out-of-range numbers are named before any work (argparse checks only
    their type); the model options are checked even when unused, so a typo
    never passes silently."""
    import math

    if not (math.isfinite(args.bandwidth) and args.bandwidth > 0):
        raise UzError(f"--bandwidth {args.bandwidth:g} must be a positive number of bytes per cycle")
    if args.latency < 1:
        raise UzError(f"--latency {args.latency} must be at least 1 cycle")
    if not (math.isfinite(args.max_loss) and 0 <= args.max_loss <= 1):
        raise UzError(f"--max-loss {args.max_loss:g} must be in [0, 1]")
    if getattr(args, "seed", 0) < 0:
        raise UzError(f"--seed {args.seed} must not be negative")
    if getattr(args, "batch", 1) < 1:
        raise UzError(f"--batch {args.batch} must be at least 1")
    _rho(args.rho)


def _compile(args, calib, net=None):
    net = net or _load_net(args)
    cfg = _config(args)
    rho = _rho(args.rho)
    if rho == "auto":
        labels = _load_labels(args, len(calib))
        points = search.search(net, calib, labels=labels, calib=calib, engines=[cfg],
                               mem=perf.Memory(args.bandwidth, args.latency),
                               progress=lambda m: print(f"rho search: {m}", flush=True))
        best = search.choose(points, args.max_loss)
        print(f"rho search: chose {best.rhos} ({best.cycles} modelled cycles, accuracy "
              f"{100 * best.accuracy:.1f}% on {len(calib)} calibration images)", flush=True)
        net, rho = search.with_rhos(net, best.rhos), None
    return net, cfg, compiler.compile_network(net, cfg, calib, rho=rho, static=args.static,
                                              force_ovsf=args.ovsf)


def _load_labels(args, n: int):
    if not getattr(args, "labels", None):
        return None
    y = _load_array(args.labels, "labels").ravel()
    if len(y) != n:
        raise UzError(f"labels {args.labels} hold {len(y)} entries for {n} calibration images")
    return y.astype(np.int64)


def _publish(tmp: str, out: str) -> None:
    """Move the finished files into ``out`` (created if needed)."""
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(tmp):
        dst = os.path.join(out, name)
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        os.replace(os.path.join(tmp, name), dst)


def _write_outputs(out: str, write) -> None:
    """``write(folder)`` into a temporary folder beside ``out``, then publish;
    a folder that cannot be written is a user error, not a traceback."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UzError(f"--out {out} exists and is not a folder")
    try:
        parent = os.path.dirname(os.path.abspath(out))
        os.makedirs(parent, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=parent) as tmp:
            write(tmp)
            _publish(tmp, out)
    except OSError as e:
        raise UzError(f"cannot write output folder {out}: {e}") from None


def cmd_compile(args) -> int:
    net = _load_net(args)
    rng = np.random.default_rng(CALIB_SEED)
    calib = _calib(args, net.input_shape, rng.normal(0.0, 1.0, (4,) + tuple(net.input_shape)))
    _, cfg, prog = _compile(args, calib)
    _write_outputs(args.out, lambda tmp: compiler.save_program(prog, tmp))
    print(f"compiled {prog.name}: {len(prog.layers)} engine layers, image {len(prog.image.data)} bytes -> {args.out}")
    print(report.format_layers(report.layer_rows(prog)))
    return 0


def cmd_golden(args) -> int:
    net = _load_net(args)
    x = _inputs(args, net.input_shape)
    calib = _calib(args, net.input_shape, x)
    net, cfg, prog = _compile(args, calib, net)
    rep = report.golden_report(net, prog, x)
    output = rep.pop("_output").astype(np.float32)

    def write(tmp):
        np.save(os.path.join(tmp, "output.npy"), output)
        compiler.save_program(prog, tmp)
        with open(os.path.join(tmp, "report.json"), "w") as f:
            json.dump(rep, f, indent=1)

    _write_outputs(args.out, write)
    print(report.format_report(rep))
    print(f"wrote {args.out}/output.npy, report.json, image.bin, manifest.json, program.txt")
    return 0 if rep["bit_exact"] else 1


def cmd_run(args) -> int:
    from tb.rtl_run import refuse_unsupported, run_program_rtl   # the simulation side is only needed here

    net = _load_net(args)
    x = _inputs(args, net.input_shape)
    calib = _calib(args, net.input_shape, x)
    net, cfg, prog = _compile(args, calib, net)
    refuse_unsupported(prog)
    rep = report.golden_report(net, prog, x)
    output = rep.pop("_output").astype(np.float32)
    inputs_q = [compiler.load_input(prog, img) for img in x]
    golden_outs = [compiler.run_network(prog, xq) for xq in inputs_q]

    def write(tmp):
        log = os.path.join(tmp, "sim.log")
        print(f"running {len(x)} image(s) on the RTL ({args.sim}); simulator output in {args.out}/sim.log",
              flush=True)
        rtl = run_program_rtl(prog, inputs_q, sim=args.sim, log_file=log)
        peak = cfg.pm * cfg.pn
        for i, row in enumerate(rep["layers"]):
            mism = 0
            for n, outs in enumerate(rtl.outputs):
                mism += int(np.count_nonzero(outs[i] != golden_outs[n][i]))
            mism += sum(int(np.prod(golden_outs[n][i].shape)) for n in range(len(rtl.outputs), len(x)))
            row["rtl_mismatches"] = mism
            row["mismatches"] = row["mismatches"] + mism
            row["bit_exact"] = row["mismatches"] == 0
            if rtl.runs and i < len(rtl.runs[0]["layers"]):
                row["cycles"] = int(rtl.runs[0]["layers"][i]["cycles"])
                row["mac_util"] = row["macs"] / max(1, row["cycles"] * peak)
        stopped = [r for r in rtl.runs if not r["status"] & 2 or r["status"] & 4]
        rep["rtl"] = {"sim": args.sim, "images": len(rtl.runs), "stopped": [
            {"err": r["err"], "err_layer": r["err_layer"]} for r in stopped],
            "cycles_per_image": [r["cycles"] for r in rtl.runs]}
        rep["cycles"] = int(sum(r["cycles"] for r in rep["layers"]))
        rep["cycles_from"] = f"RTL ({args.sim})"
        rep["bit_exact"] = bool(all(r["bit_exact"] for r in rep["layers"]) and not stopped
                                and len(rtl.runs) == len(x))
        # the RTL's own output (golden's where the simulation stopped early)
        finals = [arith.dequantize(o[-1], prog.layers[-1].fl_out) for o in rtl.outputs]
        finals += [arith.dequantize(golden_outs[n][-1], prog.layers[-1].fl_out) for n in range(len(finals), len(x))]
        output = report.output_like_onnx(prog, np.stack(finals)).astype(np.float32)
        np.save(os.path.join(tmp, "output.npy"), output)
        compiler.save_program(prog, tmp)
        with open(os.path.join(tmp, "report.json"), "w") as f:
            json.dump(rep, f, indent=1)

    _write_outputs(args.out, write)
    print(report.format_report(rep))
    print(f"{'layer':<12} {'cycles':>10} {'model':>10} {'MAC util':>9} {'RTL mismatches':>15}")
    for r in rep["layers"]:
        print(f"{r['name']:<12} {r['cycles']:>10} {r['model_cycles']:>10} {100 * r['mac_util']:>8.1f}% "
              f"{r['rtl_mismatches']:>15}")
    print(f"RTL ({args.sim}): {'BIT EXACT' if rep['bit_exact'] else 'NOT BIT EXACT'}, {rep['cycles']} cycles per image")
    print(f"wrote {args.out}/output.npy, report.json, sim.log, image.bin, manifest.json, program.txt")
    return 0 if rep["bit_exact"] else 1


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line like every other user error (argparse
    prints the whole usage first), exit status 2."""

    def error(self, message):
        print(f"uz: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="uz", description="uz CNN engine: compiler and golden model")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    def common(sp):
        sp.add_argument("net", help="network description (JSON) or ONNX model (.onnx)")
        sp.add_argument("--out", required=True, help="output folder")
        sp.add_argument("--bits", type=int, choices=(8, 16), help="data width (default 16)")
        sp.add_argument("--rho", help="OVSF ratio for every layer without its own (default 1: raw "
                        "weights), or auto: chosen per layer by the hardware-aware search")
        sp.add_argument("--labels", help="labels of the calibration images (.npy) for --rho auto "
                        "(default: agreement with the float network)")
        sp.add_argument("--max-loss", type=float, default=0.01,
                        help="--rho auto: accuracy the search may give up (default 0.01)")
        sp.add_argument("--bandwidth", type=float, default=8.0, help="memory bytes per cycle for the model (default 8)")
        sp.add_argument("--latency", type=int, default=40, help="memory latency in cycles for the model (default 40)")
        sp.add_argument("--ovsf", action="store_true", help="generate weights with OVSF even at rho = 1")
        sp.add_argument("--static", action="store_true", help="one fractional length for all layers (comparison mode)")
        sp.add_argument("--calib", help="calibration images (N,C,H,W) .npy for the fl search")
        sp.add_argument("--config", help="engine configuration JSON (golden.config.EngineConfig fields)")
        sp.add_argument("--keep-final-softmax", action="store_true",
                        help="ONNX: refuse a last Softmax/LogSoftmax instead of leaving it out (the default: "
                             "the engine has none, and the class order is the same without it)")
        sp.add_argument("--drop-final-softmax", action="store_true",
                        help=argparse.SUPPRESS)   # the default now; accepted so older command lines still run

    c = sub.add_parser("compile", help="compile a network to a descriptor program and memory image")
    common(c)
    c.set_defaults(func=cmd_compile)
    g = sub.add_parser("golden", help="compile and run the golden model, write output and report")
    common(g)
    g.add_argument("--input", help="input images, float32 (N,C,H,W) or (C,H,W) .npy; default: seeded random")
    g.add_argument("--batch", type=int, default=1, help="random images when no --input (default 1)")
    g.add_argument("--seed", type=int, default=1, help="seed of the random input (default 1)")
    g.set_defaults(func=cmd_golden)
    r = sub.add_parser("run", help="compile, run golden and the RTL simulation, compare every layer")
    common(r)
    r.add_argument("--input", help="input images, float32 (N,C,H,W) or (C,H,W) .npy; default: seeded random")
    r.add_argument("--batch", type=int, default=1, help="random images when no --input (default 1)")
    r.add_argument("--seed", type=int, default=1, help="seed of the random input (default 1)")
    r.add_argument("--sim", choices=("verilator", "icarus"), default="verilator", help="simulator (default verilator)")
    r.set_defaults(func=cmd_run)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_options(args)
        return args.func(args)
    except UzError as e:
        print(f"uz: error: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:  # e.g. --batch beyond the machine's memory
        print(f"uz: error: not enough memory: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
