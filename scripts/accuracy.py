#!/usr/bin/env python3
"""Accuracy on real data (`make accuracy`): the digits CNN (scripts/train_digits.py)
in float (onnxruntime), in the 16- and 8-bit golden model, on the RTL, and
against rho (OVSF-generated weights) with the modelled cycles.

    python scripts/accuracy.py [--arch chain|residual|dwsep] [--model build/digits] [--rtl-images 100]
                               [--sim verilator]

Against rho, two models: the rho-1 model with its weights decomposed after
training ("post-training"), and for each rho < 1 a model trained for it
(scripts/train_digits.py --rho, seed 0, in <model>_rho<rho>/, e.g.
build/digits_rho0.25). Trains a model first when its folder has none.
--rtl-images 0 skips the RTL, as does a network with a layer the RTL does
not run yet (the graph archs: residual adds, grouped convolutions, ReLU6);
their modelled cycles and the rho search wait for it too. Writes
build/accuracy/ (build/accuracy_<arch>/): results.json, results.md (the
tables the README shows) and rho.png.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from golden import arith, compiler, perf, search  # noqa: E402
from golden.config import EngineConfig  # noqa: E402
from golden.errors import UzError  # noqa: E402
from golden.onnx_import import load_onnx  # noqa: E402

CONFIGS = {"16-bit": EngineConfig(), "8-bit": EngineConfig(data_bits=8, alpha_bits=8, acc_bits=32)}
RHOS = (1.0, 0.5, 0.25, 0.125, 0.0625)
MEM = perf.Memory(8, 40)


def golden_scores(prog, xs) -> np.ndarray:
    """The network output of the integer model per image, dequantized."""
    out = []
    for x in xs:
        y = compiler.network_output_q(prog, compiler.load_input(prog, x))
        out.append(arith.dequantize(y, prog.fl[prog.output]).ravel())
    return np.stack(out)


def rtl_unsupported(prog) -> str:
    """Why the RTL cannot run the program yet ('' if it can)."""
    from tb.rtl_run import refuse_unsupported
    try:
        refuse_unsupported(prog)
    except UzError as e:
        return str(e)
    return ""


def model_cycles(prog):
    """The analytical model's cycles, or None while the RTL (which the model
    describes) does not run every layer."""
    if rtl_unsupported(prog):
        return None
    return sum(lc.cycles for lc in perf.program_cycles(prog, MEM))


def train(folder: Path, arch: str, *args: str) -> None:
    cmd = ["--out", str(folder), "--arch", arch, "--no-golden", *args]
    print(f"no model in {folder}: training it (scripts/train_digits.py {' '.join(cmd)})", flush=True)
    sys.path.insert(0, str(ROOT / "scripts"))
    import train_digits
    train_digits.main(cmd)


def float_scores(path: Path, x) -> np.ndarray:
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def rtl_run(res, prog, x, y, n, sim, out: Path) -> None:
    """The RTL on the first ``n`` test images, 16-bit engine."""
    from tb.rtl_run import run_program_rtl
    xq = [compiler.load_input(prog, img) for img in x[:n].astype(np.float64)]
    t0 = time.time()
    print(f"RTL ({sim}): {n} images, simulator output in {out / 'sim.log'}", flush=True)
    rtl = run_program_rtl(prog, xq, sim=sim, log_file=str(out / "sim.log"))
    ref = [compiler.run_network(prog, q) for q in xq]
    mism = sum(int(np.count_nonzero(a != b)) for o, r in zip(rtl.outputs, ref) for a, b in zip(o, r))
    scores = np.stack([arith.dequantize(o[-1], prog.layers[-1].fl_out).ravel() for o in rtl.outputs])
    res["rtl 16-bit"] = float((scores.argmax(1) == y[:len(scores)]).mean())
    res["rtl_images"] = len(rtl.outputs)
    res["rtl_bit_exact"] = mism == 0 and len(rtl.outputs) == n
    res["rtl_cycles_per_image"] = rtl.runs[0]["cycles"] if rtl.runs else None
    res["golden 16-bit on the RTL images"] = float((golden_scores(prog, x[:n].astype(np.float64)).argmax(1) ==
                                                   y[:n]).mean())
    print(f"RTL 16-bit: {100 * res['rtl 16-bit']:.2f}% on {len(rtl.outputs)} images, "
          f"{'bit exact' if res['rtl_bit_exact'] else f'{mism} MISMATCHES'}, {time.time() - t0:.0f} s", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="chain", choices=("chain", "residual", "dwsep"),
                    help="which digits network (scripts/train_digits.py --arch; default chain)")
    ap.add_argument("--model", help="folder of digits.onnx and the split (default build/digits, or "
                                    "build/digits_<arch>)")
    ap.add_argument("--rtl-images", type=int, default=100, help="test images run on the RTL (default 100)")
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--out", help="output folder (default build/accuracy, or build/accuracy_<arch>)")
    args = ap.parse_args(argv)
    suffix = "" if args.arch == "chain" else f"_{args.arch}"
    model = Path(args.model or ROOT / "build" / f"digits{suffix}")
    args.out = args.out or str(ROOT / "build" / f"accuracy{suffix}")
    if not (model / "digits.onnx").exists():
        train(model, args.arch)

    x = np.load(model / "X_test.npy")
    y = np.load(model / "y_test.npy")
    calib = np.load(model / "X_calib.npy").astype(np.float64)
    net = load_onnx(str(model / "digits.onnx"))
    f_scores = float_scores(model / "digits.onnx", x)
    res = {"arch": args.arch, "images": int(len(y)), "float": float((f_scores.argmax(1) == y).mean())}
    print(f"float (onnxruntime): {100 * res['float']:.2f}% on {len(y)} test images", flush=True)
    progs = {}
    for label, cfg in CONFIGS.items():
        progs[label] = compiler.compile_network(net, cfg, calib)
        acc = float((golden_scores(progs[label], x.astype(np.float64)).argmax(1) == y).mean())
        res[f"golden {label}"] = acc
        print(f"golden {label}: {100 * acc:.2f}%", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = min(args.rtl_images, len(y))
    why = rtl_unsupported(progs["16-bit"])
    if n > 0 and why:
        res["rtl_skipped"] = why
        print(f"RTL skipped: {why}", flush=True)
    elif n > 0:
        rtl_run(res, progs["16-bit"], x, y, n, args.sim, out)
    # accuracy against rho: every weight layer at the same rho, then the search's choice
    rows = []
    for label, cfg in CONFIGS.items():
        for rho in RHOS:
            if rho * cfg.ovsf_len < 1:
                continue
            p = compiler.compile_network(net, cfg, calib, rho=rho, force_ovsf=rho < 1)
            acc = float((golden_scores(p, x.astype(np.float64)).argmax(1) == y).mean())
            cyc = model_cycles(p)
            rows.append({"config": label, "rho": rho, "accuracy": acc, "model_cycles": cyc})
            print(f"{label} rho {rho:g}: {100 * acc:.2f}%, {cyc} modelled cycles", flush=True)
    # the same against models trained for their rho (OVSF-aware training)
    res["rho_trained"] = []
    for rho in RHOS:
        folder = model if rho == 1 else model.parent / f"{model.name}_rho{rho:g}"
        if not (folder / "digits.onnx").exists():
            train(folder, args.arch, "--seed", "0", "--rho", f"{rho:g}")
        x_r, y_r = np.load(folder / "X_test.npy"), np.load(folder / "y_test.npy")
        net_r = load_onnx(str(folder / "digits.onnx"))
        f_acc = float((float_scores(folder / "digits.onnx", x_r).argmax(1) == y_r).mean())
        p = compiler.compile_network(net_r, CONFIGS["16-bit"], np.load(folder / "X_calib.npy").astype(np.float64),
                                     rho=rho, force_ovsf=rho < 1)
        acc = float((golden_scores(p, x_r.astype(np.float64)).argmax(1) == y_r).mean())
        cyc = model_cycles(p)
        res["rho_trained"].append({"rho": rho, "float": f_acc, "accuracy": acc, "model_cycles": cyc,
                                   "model": str(folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder)})
        print(f"trained for rho {rho:g}: float {100 * f_acc:.2f}%, 16-bit {100 * acc:.2f}%, "
              f"{cyc} modelled cycles", flush=True)
    if why:
        # the search weighs modelled cycles, which the graph layers do not have yet
        res["rho_auto"] = None
    else:
        points = search.search(net, calib[:100], labels=None, calib=calib, engines=[CONFIGS["16-bit"]], mem=MEM)
        best = search.choose(points, 0.01)
        p = compiler.compile_network(search.with_rhos(net, best.rhos), CONFIGS["16-bit"], calib)
        acc = float((golden_scores(p, x.astype(np.float64)).argmax(1) == y).mean())
        cyc = model_cycles(p)
        res["rho_auto"] = {"rhos": best.rhos, "accuracy": acc, "model_cycles": cyc}
        print(f"16-bit rho auto {best.rhos}: {100 * acc:.2f}%, {cyc} modelled cycles", flush=True)
    res["rho"] = rows
    (out / "results.json").write_text(json.dumps(res, indent=1))
    (out / "results.md").write_text(tables(res))
    plot(rows, res, out / "rho.png")
    print(tables(res))
    return 0 if res.get("rtl_bit_exact", True) else 1


def tables(res) -> str:
    row = f"| {100 * res['float']:.2f}% | {100 * res['golden 16-bit']:.2f}% | {100 * res['golden 8-bit']:.2f}% |"
    if "rtl_images" in res:
        exact = "bit exact" if res["rtl_bit_exact"] else "NOT bit exact"
        lines = [f"Digits test split ({res['images']} images; the RTL runs the first {res['rtl_images']}).", "",
                 "| float (onnxruntime) | golden 16-bit | golden 8-bit | RTL 16-bit "
                 "| golden 16-bit, same images as RTL |",
                 "|---|---|---|---|---|",
                 f"{row} {100 * res['rtl 16-bit']:.2f}% ({exact}) "
                 f"| {100 * res['golden 16-bit on the RTL images']:.2f}% |", ""]
    else:
        why = f" ({res['rtl_skipped']})" if res.get("rtl_skipped") else ""
        lines = [f"Digits test split ({res['images']} images; RTL not run{why}).", "",
                 "| float (onnxruntime) | golden 16-bit | golden 8-bit |", "|---|---|---|", row, ""]
    lines += ["Post-training: the rho-1 model's weights decomposed at rho.", "",
              "| rho (every layer) | 16-bit accuracy | 8-bit accuracy | modelled cycles (16-bit, 8 B/cycle) |",
              "|---|---|---|---|"]
    for rho in RHOS:
        r16 = [r for r in res["rho"] if r["rho"] == rho and r["config"] == "16-bit"]
        r8 = [r for r in res["rho"] if r["rho"] == rho and r["config"] == "8-bit"]
        if not r16:
            continue
        acc8 = f"{100 * r8[0]['accuracy']:.2f}%" if r8 else "-"
        lines.append(f"| {rho:g} | {100 * r16[0]['accuracy']:.2f}% | {acc8} | {_cyc(r16[0]['model_cycles'])} |")
    a = res["rho_auto"]
    if a:
        lines.append(f"| auto {a['rhos']} | {100 * a['accuracy']:.2f}% | - | {_cyc(a['model_cycles'])} |")
    lines += ["", "Trained for rho (scripts/train_digits.py --rho; rho 1 is the model above), 16-bit engine.", "",
              "| rho (every layer) | post-training 16-bit | trained for rho: float | trained for rho: golden 16-bit "
              "| modelled cycles (16-bit, 8 B/cycle) |",
              "|---|---|---|---|---|"]
    for t in res["rho_trained"]:
        post = [r for r in res["rho"] if r["rho"] == t["rho"] and r["config"] == "16-bit"]
        post = f"{100 * post[0]['accuracy']:.2f}%" if post else "-"
        lines.append(f"| {t['rho']:g} | {post} | {100 * t['float']:.2f}% | {100 * t['accuracy']:.2f}% "
                     f"| {_cyc(t['model_cycles'])} |")
    return "\n".join(lines) + "\n"


def _cyc(c) -> str:
    return "-" if c is None else str(c)


def plot(rows, res, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label in CONFIGS:
        rs = [r for r in rows if r["config"] == label]
        ax.plot([r["rho"] for r in rs], [100 * r["accuracy"] for r in rs], "o-", label=f"golden {label}, post-training")
    rs = res["rho_trained"]
    ax.plot([r["rho"] for r in rs], [100 * r["accuracy"] for r in rs], "s-", label="golden 16-bit, trained for rho")
    ax.plot([r["rho"] for r in rs], [100 * r["float"] for r in rs], "x:", color="gray", label="float, trained for rho")
    ax.axhline(100 * res["float"], color="k", lw=0.8, ls="--", label="float (rho-1 model)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rho (OVSF codes kept per block / block length)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Digits {res.get('arch', 'chain')} network: accuracy against rho")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
