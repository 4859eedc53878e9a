"""Per-layer reports: shapes, fractional lengths, rho, float-vs-quantized
error, and the bit-exact agreement of the image run with the network run."""
from __future__ import annotations

import numpy as np

from . import arith, compiler, funcmodel, isa, layers, perf
from .passes import fuse
from .network import forward_engine_float, forward_float


def sqnr_db(ref: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when exact)."""
    ref = np.asarray(ref, dtype=np.float64)
    noise = float(np.sum((ref - approx) ** 2))
    sig = float(np.sum(ref ** 2))
    if noise == 0:
        return float("inf")
    if sig == 0:
        return float("-inf")
    return 10.0 * np.log10(sig / noise)


def layer_rows(prog: compiler.Program, mem: perf.Memory = perf.Memory()) -> list:
    """Each layer's formats, tiles and the analytical model's cycles (``fl``
    is the output's fractional length; ``cycles`` are the model's until a
    simulation replaces them)."""
    rows = []
    for i, q in enumerate(prog.layers):
        d = isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
        # The analytical model is the RTL's: a layer with a graph feature the
        # RTL does not run yet has no cycle count.
        unsupported = [w for _, w in isa.unsupported_features(d)]
        model = None if unsupported else perf.layer_cycles(d, prog.cfg, mem)
        cycles = None if model is None else model.cycles
        r = {"name": q.name, "kind": q.kind.name, "in_shape": list(q.in_shape), "out_shape": list(q.out_shape),
             "fl": q.fl_out, "fl_in": q.fl_in, "fl_out": q.fl_out, "rho": q.rho, "ovsf": q.ovsf is not None,
             "relu": q.relu, "pool": list(q.pool) if q.pool else None, "tiles": q.tiles,
             "macs": perf.layer_macs(d), "model_cycles": cycles, "cycles": cycles,
             "mac_util": None if cycles is None else
             perf.layer_macs(d) / (cycles * perf.peak_macs_per_cycle(prog.cfg)),
             "rtl_unsupported": unsupported}
        if q.kind != isa.Kind.POOL:
            r.update(fl_w=q.fl_w, fl_b=q.fl_b, bias_shift=q.bias_shift, data_shift=q.data_shift,
                     k=q.k, stride=q.stride)
            if q.ovsf is not None:
                r.update(fl_alpha=q.ovsf.fl_alpha, gen_shift=q.gen_shift, n_codes=q.ovsf.n_codes)
        rows.append(r)
    return rows


def golden_report(net, prog: compiler.Program, x: np.ndarray) -> dict:
    """Run every image through the image executor and the network model,
    check they agree bit for bit, and measure each layer's quantization error
    against the float engine layers (BatchNorm folded, FC split) and the final
    output against the network exactly as described."""
    cfg = prog.cfg
    elayers = prog.elayers
    rows = layer_rows(prog)
    for r in rows:
        r.update(sqnr_db=[], max_abs_err=0.0, mismatches=0)
    outs = []
    bit_exact = True
    desc_err = []
    for img in x:
        xq = compiler.load_input(prog, img)
        net_outs = compiler.run_network(prog, xq)
        funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), cfg)
        if prog.graph is None:
            f_outs = forward_engine_float(elayers, img)
        else:
            vals = fuse.float_forward(prog.graph, img)
            f_outs = [vals[q.out_tensor] for q in prog.layers]
        for i, q in enumerate(prog.layers):
            got = compiler.layer_output(prog, i)
            _, n_bad = layers.compare(net_outs[i], got)
            rows[i]["mismatches"] += n_bad
            bit_exact &= n_bad == 0
            deq = arith.dequantize(net_outs[i], q.fl_out)
            ref = f_outs[i]
            rows[i]["sqnr_db"].append(sqnr_db(ref, deq))
            rows[i]["max_abs_err"] = max(rows[i]["max_abs_err"], float(np.abs(ref - deq).max()))
        if prog.graph is None:
            final = arith.dequantize(compiler.layer_output(prog, len(prog.layers) - 1), prog.layers[-1].fl_out)
        else:
            final = arith.dequantize(compiler.network_output(prog), prog.fl[prog.output])
        outs.append(final)
        ref = forward_float(net, img)
        desc_err.append(sqnr_db(ref, final.reshape(ref.shape)))
    for r in rows:
        r["sqnr_db"] = float(np.mean(r["sqnr_db"]))
        r["bit_exact"] = r["mismatches"] == 0
    out = output_like_onnx(prog, np.stack(outs))
    modelled = [r["cycles"] for r in rows if r["cycles"] is not None]
    cycles_from = "analytical model"
    if len(modelled) < len(rows):
        cycles_from += f" (of {len(modelled)} of {len(rows)} layers: the others use graph features the RTL does not run yet)"
    return {"network": prog.name, "images": int(len(x)), "data_bits": cfg.data_bits,
            "static": prog.static, "fl_input": prog.fl_input, "layers": rows,
            "bit_exact": bool(bit_exact), "output_shape": list(out.shape[1:]),
            "cycles": int(sum(modelled)), "cycles_from": cycles_from,
            "memory": getattr(prog, "memory", None),
            "output_sqnr_db_vs_float_network": float(np.mean(desc_err)),
            "approximations": _approximations(net, prog), "_output": out}


def output_like_onnx(prog: compiler.Program, out: np.ndarray) -> np.ndarray:
    """(N, C) after a final FC layer, as Gemm/MatMul give it; (N, C, H, W) otherwise."""
    if prog.layers[-1].kind == isa.Kind.FC:
        return out.reshape(out.shape[0], -1)
    return out


def _approximations(net, prog) -> list:
    """What besides quantization makes the engine differ from the float network."""
    out = [f"{op.name} split by SVD" for op in net.ops if op.type == "fc" and
           ({"svd_rank", "svd_energy"} & set(op.attrs))]
    out += [f"{q.name} OVSF rho={q.rho:g}" for q in prog.layers if q.ovsf is not None and q.rho < 1]
    return out


def _fmt_db(v: float) -> str:
    return "exact" if v == float("inf") else f"{v:6.1f}"


def format_layers(rows: list) -> str:
    head = f"{'layer':<12} {'kind':<4} {'in':>14} {'out':>14} {'fl in/w/b/out':>14} {'rho':>6} {'shift b/d/g':>12} {'tiles tr,tc,ti,to':>18}"
    lines = [head, "-" * len(head)]
    for r in rows:
        fl = f"{r['fl_in']}/{r.get('fl_w', '-')}/{r.get('fl_b', '-')}/{r['fl_out']}"
        sh = f"{r.get('bias_shift', '-')}/{r.get('data_shift', '-')}/{r.get('gen_shift', '-')}"
        t = r["tiles"]
        tiles = f"{t['tr']},{t['tc']},{t['ti']},{t['to']}"
        rho = f"{r['rho']:g}" + ("*" if r["ovsf"] else "")
        lines.append(f"{r['name']:<12} {r['kind']:<4} {'x'.join(map(str, r['in_shape'])):>14} "
                     f"{'x'.join(map(str, r['out_shape'])):>14} {fl:>14} {rho:>6} {sh:>12} {tiles:>18}")
    lines.append("(* = weights generated from OVSF coefficients; shifts are signed right shifts)")
    return "\n".join(lines)


def format_report(rep: dict) -> str:
    lines = [f"{rep['network']}: {rep['images']} image(s), {rep['data_bits']}-bit "
             f"{'static' if rep['static'] else 'dynamic'} precision, input fl {rep['fl_input']}",
             format_layers(rep["layers"]), "",
             f"{'layer':<12} {'SQNR dB':>8} {'max |err|':>10} {'bit exact (image vs network)':>30}"]
    for r in rep["layers"]:
        lines.append(f"{r['name']:<12} {_fmt_db(r['sqnr_db']):>8} {r['max_abs_err']:>10.4g} "
                     f"{('yes' if r['bit_exact'] else 'NO: %d mismatches' % r['mismatches']):>30}")
    approx = rep.get("approximations") or ["none"]
    lines.append(f"output vs float network as described: SQNR {_fmt_db(rep['output_sqnr_db_vs_float_network'])} dB "
                 f"(approximations besides quantization: {', '.join(approx)})")
    lines.append("BIT EXACT" if rep["bit_exact"] else "NOT BIT EXACT")
    return "\n".join(lines)
