#!/usr/bin/env python3
"""ResNet-50 end to end (`make resnet`): the onnx package's ResNet-50
(golden/zoo.py, seeded He-scale weights and BatchNorm statistics), through
onnxruntime (float), the whole golden model, and every distinct layer shape
alone on the RTL.

    python scripts/resnet.py [--rtl distinct|none] [--only NAME] [--max-layers N]
                             [--bw 32] [--latency 40] [--bus 256] [--bits 16] [--max-k 3]
                             [--seed 0] [--out build/resnet] [--model squeezenet --size 224]

- Float: the model through onnxruntime on a seeded random image.
- Golden: compiled for the engine (dynamic fixed point calibrated on two
  other random images), run layer by layer on the integer model and from the
  memory image (the functional model), bit exact against each other; output
  SQNR and top-1 against onnxruntime, each layer's SQNR against its float
  value.
- RTL: one layer of each distinct shape (kind, input and output shapes,
  kernel, stride, pads, pool, ReLU, residual) alone on uz_bench_top
  (tb/bench_sim.py: a SystemVerilog memory model of --bw bytes per cycle and
  --latency cycles), its input and residual the golden model's values
  (golden/cut.py), checked bit for bit, its cycles against the analytical
  model (golden/perf.py) and its roofline bound (compulsory bytes, the
  residual's included). A layer whose descriptor uses a feature the RTL does
  not run yet (golden.isa.unsupported_features) is listed with the reason,
  not run.

The engine: PM = PN = 16 with the on-chip buffers of `make models` (large
enough for the 3x3/2 pool on 112x112 in one tile) and a --bus-bit memory bus;
the report states it. Writes DIR/report.json, report.md, report.html and
cycles.png (RTL and model cycles per layer). Exits 1 if the golden model's two
runs differ or a layer the RTL runs is not bit exact (2 on a usage error).
"""
from __future__ import annotations

import argparse
import html
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from golden import compiler, cut, funcmodel, isa, layers, perf, report, zoo  # noqa: E402
from golden.config import EngineConfig  # noqa: E402
from golden.errors import UzError  # noqa: E402
from golden.onnx_import import load_onnx, realistic_weights  # noqa: E402

#: Elements per half of each on-chip double buffer (scripts/models.py's
#: choice: the 3x3/2 pad-1 max pool on 112x112 must fit one tile).
BIG_BUFFERS = {"in_buf_elems": 1 << 18, "wgt_buf_elems": 1 << 16, "out_buf_elems": 1 << 18}


def engine_config(bits: int = 16, bus: int = 256, **over) -> EngineConfig:
    kw = dict(BIG_BUFFERS, axi_data_bits=bus)
    if bits == 8:
        kw.update(data_bits=8, alpha_bits=8, acc_bits=32)
    kw.update(over)
    return EngineConfig(**kw)


def shape_key(q) -> tuple:
    return (q.kind.name, tuple(q.in_shape), tuple(q.out_shape), q.k, q.stride, tuple(q.pads), str(q.pool),
            q.relu, q.res_tensor is not None, q.clip_hi, q.groups)


def descriptor(prog, i: int) -> isa.Descriptor:
    return isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))


def label(q) -> str:
    s = f"{q.kind.name.lower()}"
    if q.kind != isa.Kind.POOL:
        s += f" {q.k}x{q.k}" + (f"/{q.stride}" if q.stride > 1 else "")
    if q.pool is not None:
        p = q.pool
        s += " pool" if q.kind != isa.Kind.POOL else ""
        s += (f" {'avg' if getattr(p, 'avg', False) else 'max'} "
              f"{p.kh}x{p.kw}/{p.s}" if hasattr(p, "kh") else f" max {p[0]}x{p[0]}/{p[1]}")
    if q.res_tensor is not None:
        s += " + residual"
    if q.relu:
        s += " relu"
    return s


def distinct_layers(prog) -> list:
    """[(first layer index, [indices of every layer of that shape])] in network order."""
    seen = {}
    for i, q in enumerate(prog.layers):
        seen.setdefault(shape_key(q), []).append(i)
    return [(v[0], v) for v in seen.values()]


def run_layer_rtl(prog, i: int, xq, outs, vals, mem: perf.Memory, work_dir=None) -> dict:
    """Layer i alone on the RTL: bit exactness, cycles, the model's cycles and the roofline bound."""
    from tb import bench_sim
    cfg = prog.cfg
    q = prog.layers[i]
    x_in, res = cut.layer_operands(prog, xq, outs, vals, i)
    lp = cut.layer_alone(prog, i, x_in, res)
    d = descriptor(lp, 0)
    model = perf.layer_cycles(d, cfg, mem)
    roof = perf.roofline_cycles(d, cfg, mem)
    r = lp.image.region(lp.regions[q.name]["out"])
    bw_num, bw_den = float(mem.bytes_per_cycle).as_integer_ratio()
    t0 = time.time()
    sim = bench_sim.run_program(lp, bw=(bw_num, bw_den), latency=mem.latency, dumps=[(r.addr, r.end)],
                                max_cycles=max(1_000_000, 20 * model.cycles), work_dir=work_dir)
    img = lp.image.__class__()
    img.write(r.addr, sim["dump_bytes"][0])
    y = funcmodel.read_act(img, r.addr, q.out_shape, cfg)[:q.out_shape[0]]
    first, mism = layers.compare(outs[i], y)
    lay = sim["layers"][0] if sim["layers"] else {"cycles": sim.get("total_cycles", 0), "mac_busy": 0}
    cyc = lay["cycles"]
    macs = perf.layer_macs(d)
    return {"rtl": True, "passed": bool(sim["passed"]), "bit_exact": bool(sim["passed"]) and mism == 0,
            "mismatches": int(mism), "first_mismatch": None if mism == 0 else str(first),
            "cycles": cyc, "model_cycles": model.cycles, "model_error": (model.cycles - cyc) / max(cyc, 1),
            "roofline_cycles": round(roof["cycles"]), "roofline_bound": roof["bound"],
            "of_roofline": roof["cycles"] / max(cyc, 1),
            "mac_util": macs / (max(cyc, 1) * perf.peak_macs_per_cycle(cfg)),
            "bytes_read": sim["rd_bytes"], "bytes_written": sim["wr_bytes"],
            "compulsory_bytes": roof["bytes"], "sim_seconds": round(time.time() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rtl", choices=("distinct", "none"), default="distinct")
    ap.add_argument("--only", help="run on the RTL only distinct layers whose name or label contains this")
    ap.add_argument("--max-layers", type=int, default=0, help="run at most this many distinct layers on the RTL")
    ap.add_argument("--bits", type=int, choices=(8, 16), default=16)
    ap.add_argument("--bus", type=int, choices=(128, 256), default=256, help="memory bus bits (default 256)")
    ap.add_argument("--max-k", type=int, choices=(3, 5, 7, 11), default=None,
                    help="the compute's window (default the configuration's, 3); larger kernels run as "
                         "3x3 sub-windows")
    ap.add_argument("--bw", type=float, default=32.0, help="memory bytes per cycle for the RTL (default 32)")
    ap.add_argument("--latency", type=int, default=40, help="memory latency in cycles (default 40)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="resnet50",
                    help="a light model of the onnx package (golden/zoo.py; make squeezenet: squeezenet, "
                    "make shufflenet: shufflenet), or mobilenetv2 (built by golden/zoo.py)")
    ap.add_argument("--size", type=int, default=0, help="input size (default: golden.zoo.LIGHT_SIZES)")
    ap.add_argument("--out", default=str(ROOT / "build" / "resnet"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.time()

    def say(text):
        print(f"[{time.time() - t_all:6.0f} s] {text}", flush=True)

    import onnxruntime as ort
    size = args.size or zoo.LIGHT_SIZES.get(args.model, 224)
    if args.model in zoo.BUILT:
        model = zoo.built_model(args.model, size, seed=args.seed)
    else:
        model = realistic_weights(zoo.light_model(args.model, size), seed=args.seed)
    ref_model = zoo.without_final_softmax(model)
    rng = np.random.default_rng([args.seed, 1])
    x = rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    calib = rng.uniform(-1, 1, (2, 3, size, size))
    sess = ort.InferenceSession(ref_model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1).astype(np.float64)
    say(f"onnxruntime: {args.model} float output on a {size}x{size} image")
    net = load_onnx(model, name=args.model)
    cfg = engine_config(args.bits, args.bus, **({"max_k": args.max_k} if args.max_k else {}))
    prog = compiler.compile_network(net, cfg, calib)
    say(f"compiled: {len(prog.layers)} engine layers, image {len(prog.image.data) / 2**20:.0f} MiB")
    rep = report.golden_report(net, prog, x.astype(np.float64))
    got = rep.pop("_output").reshape(-1)
    out_sqnr = report.sqnr_db(want, got)
    top1 = int(np.argmax(want)) == int(np.argmax(got))
    say(f"golden: output SQNR {out_sqnr:.1f} dB against onnxruntime, top-1 {'agrees' if top1 else 'DIFFERS'}; "
        f"memory-image run {'bit exact' if rep['bit_exact'] else 'DIFFERS'} against the layer-by-layer model")

    xq = compiler.load_input(prog, x[0].astype(np.float64))
    outs, vals = compiler.run_graph(prog, xq)
    mem = perf.Memory(args.bw, args.latency)
    groups = distinct_layers(prog)
    rows = []
    for first, members in groups:
        q = prog.layers[first]
        d = descriptor(prog, first)
        unsup = isa.unsupported_features(d)
        lr = rep["layers"][first]
        row = {"name": q.name, "label": label(q), "kind": q.kind.name, "in_shape": list(q.in_shape),
               "out_shape": list(q.out_shape), "tiles": q.tiles, "residual": q.res_tensor is not None,
               "count": len(members), "layers": [prog.layers[j].name for j in members],
               "macs": perf.layer_macs(d), "sqnr_db": min(rep["layers"][j]["sqnr_db"] for j in members),
               "golden_bit_exact": all(rep["layers"][j]["bit_exact"] for j in members), "fl_out": lr["fl_out"],
               "rtl": False, "unsupported": list(dict.fromkeys(w for _, w in unsup))}
        try:
            lc = perf.layer_cycles(d, cfg, mem)
            roof = perf.roofline_cycles(d, cfg, mem)
            row.update(model_cycles=lc.cycles, roofline_cycles=round(roof["cycles"]), roofline_bound=roof["bound"])
        except UzError as e:                    # a feature the model does not model
            row["model_note"] = str(e)
        rows.append(row)
    todo = [n for n, r in enumerate(rows) if not r["unsupported"]
            and (not args.only or args.only in r["name"] or args.only in r["label"])]
    if args.max_layers:
        todo = todo[:args.max_layers]
    skipped = [r for r in rows if r["unsupported"]]
    say(f"{len(rows)} distinct layer shapes; {len(todo)} to run on the RTL"
        + (f", {len(skipped)} not yet on the RTL" if skipped else ""))
    if args.rtl != "none":
        for n, k in enumerate(todo, 1):
            r = rows[k]
            say(f"RTL [{n}/{len(todo)}] {r['name']} {r['label']} {'x'.join(map(str, r['in_shape']))} -> "
                f"{'x'.join(map(str, r['out_shape']))}: running (model {r.get('model_cycles')} cycles) ...")
            r.update(run_layer_rtl(prog, groups[k][0], xq, outs, vals, mem))
            say(f"RTL [{n}/{len(todo)}] {r['name']}: {r['cycles']} cycles (model {r['model_cycles']}, "
                f"{100 * r['model_error']:+.1f}%), MAC util {100 * r['mac_util']:.1f}%, roofline "
                f"{100 * r['of_roofline']:.0f}%, "
                f"{'bit exact' if r['bit_exact'] else str(r['mismatches']) + ' MISMATCHES'} ({r['sim_seconds']:.0f} s)")
            write(out, args, cfg, rows, rep, out_sqnr, top1, t_all, partial=True)
    ok = rep["bit_exact"] and all(r["bit_exact"] for r in rows if r.get("rtl"))
    summary = write(out, args, cfg, rows, rep, out_sqnr, top1, t_all)
    print(markdown(summary))
    say(f"{'PASS' if ok else 'FAIL'}: report in {out}")
    return 0 if ok else 1


def write(out: Path, args, cfg, rows, rep, out_sqnr, top1, t_all, partial=False) -> dict:
    ran = [r for r in rows if r.get("rtl")]
    size = args.size or zoo.LIGHT_SIZES.get(args.model, 224)
    summary = {"model": args.model, "input_shape": [3, size, size],
               "config": cfg.to_dict(), "memory": {"bytes_per_cycle": args.bw, "latency": args.latency},
               "engine_layers": len(rep["layers"]), "distinct": len(rows), "rtl_layers": len(ran),
               "rtl_bit_exact": all(r["bit_exact"] for r in ran), "not_on_rtl": sum(bool(r["unsupported"]) for r in rows),
               "golden_bit_exact": rep["bit_exact"], "output_sqnr_db": out_sqnr, "top1_agrees": top1,
               "max_model_error": max((abs(r["model_error"]) for r in ran), default=None),
               "partial": partial, "seconds": round(time.time() - t_all), "layers": rows}
    (out / "report.json").write_text(json.dumps(summary, indent=1))
    md = markdown(summary)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(to_html(summary))
    if not partial:
        plot(summary, out)
    return summary


def _row_cells(r) -> list:
    shape = f"{'x'.join(map(str, r['in_shape']))} → {'x'.join(map(str, r['out_shape']))}"
    cells = [r["name"], r["label"], shape, str(r["count"]), f"{r['sqnr_db']:.1f} dB"]
    if r.get("rtl"):
        cells += [str(r["cycles"]), f"{r['model_cycles']} ({100 * r['model_error']:+.1f}%)",
                  f"{r['roofline_cycles']} ({r['roofline_bound']}, {100 * r['of_roofline']:.0f}%)",
                  f"{100 * r['mac_util']:.1f}%" if r["macs"] else "—",
                  "yes" if r["bit_exact"] else f"NO ({r['mismatches']})"]
    else:
        why = ("not yet on the RTL (" + ", ".join(r["unsupported"]) + ")") if r["unsupported"] else "not run"
        cells += ["—", str(r.get("model_cycles", "—")),
                  f"{r['roofline_cycles']} ({r['roofline_bound']})" if "roofline_cycles" in r else "—", "—", why]
    return cells


HEAD = ["layer", "what", "shape", "×", "SQNR vs float", "RTL cycles", "model (error)",
        "roofline bound (of it)", "MAC util", "bit exact on the RTL"]


def _intro(s) -> str:
    c = s["config"]
    return (f"{s['model']} ({s['engine_layers']} engine layers, {s['distinct']} distinct shapes), "
            f"{c['data_bits']}-bit: golden output SQNR {s['output_sqnr_db']:.1f} dB against onnxruntime, top-1 "
            f"{'agrees' if s['top1_agrees'] else 'differs'}; memory-image run "
            f"{'bit exact' if s['golden_bit_exact'] else 'DIFFERS'}. Engine PM = {c['pm']}, PN = {c['pn']}, "
            f"L = {c['ovsf_len']}, buffers {c['in_buf_elems']}/{c['wgt_buf_elems']}/{c['out_buf_elems']} elements "
            f"(input/weights/output, per half), {c['axi_data_bits']}-bit bus; memory "
            f"{s['memory']['bytes_per_cycle']:g} B/cycle, latency {s['memory']['latency']}. "
            f"On the RTL: {s['rtl_layers']} of {s['distinct']} shapes, "
            f"{'all bit exact' if s['rtl_bit_exact'] else 'NOT ALL BIT EXACT'}"
            + (f"; {s['not_on_rtl']} not yet on the RTL" if s["not_on_rtl"] else "")
            + (f"; largest model error {100 * s['max_model_error']:.1f}%" if s["max_model_error"] is not None else "")
            + (" (partial: still running)" if s["partial"] else "") + ".")


def markdown(s) -> str:
    lines = [_intro(s), "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(_row_cells(r)) + " |" for r in s["layers"]]
    lines += ["", "×: layers of that shape in the network. Roofline bound: the layer's MACs at PM·PN per cycle or "
              "its compulsory bytes (input, weights, bias, residual and output once) at the memory's rate, "
              "whichever is larger; (of it): bound / RTL cycles."]
    return "\n".join(lines) + "\n"


def to_html(s) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _row_cells(r)) + "</tr>\n"
                   for r in s["layers"])
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEAD)
    return (f"<!doctype html><meta charset='utf-8'><title>{s['model']} on uz</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}"
            "table{border-collapse:collapse}</style>"
            f"<h1>{s['model']} on uz</h1><p>{html.escape(_intro(s))}</p>"
            f"<table><tr>{head}</tr>\n{rows}</table>"
            + ("<p><img src='cycles.png'></p>" if not s["partial"] else ""))


def plot(s, out: Path) -> None:
    ran = [r for r in s["layers"] if r.get("rtl")]
    if not ran:
        return
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(ran)), 4))
    xs = np.arange(len(ran))
    ax.bar(xs - 0.27, [r["cycles"] for r in ran], 0.27, label="RTL")
    ax.bar(xs, [r["model_cycles"] for r in ran], 0.27, label="model")
    ax.bar(xs + 0.27, [r["roofline_cycles"] for r in ran], 0.27, label="roofline bound")
    ax.set_xticks(xs, [r["name"] for r in ran], rotation=90, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("cycles")
    ax.set_title(f"{s['model']}: distinct layers on the RTL")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "cycles.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UzError as e:
        print(f"resnet: error: {e}", file=sys.stderr)
        sys.exit(2)
