#!/usr/bin/env python3
"""A real topology end to end (`make vgg`): VGG19 as the onnx package ships
it, through onnxruntime (float), the golden model (the whole network) and
the RTL (its layers, one at a time).

    python scripts/vgg.py [--model vgg19] [--size 224] [--rtl distinct|all|none]
                          [--bits 16] [--bw 8] [--latency 40] [--out build/vgg]

The onnx package's copy holds the structure with placeholder weights, so
they are filled with seeded random values at He scale (conv and FC weights
N(0, 2/fan_in), biases N(0, 0.05)). --size below 224 rebuilds the same
layers on a smaller image (the first FC then takes the smaller flattened
input): a quick run of the same code.

- Float: the filled network, exported to ONNX, through onnxruntime.
- Golden: compiled for the engine (dynamic fixed point calibrated on two
  random images), run layer by layer on the integer model and from the memory
  image; output SQNR against onnxruntime, per-layer SQNR against the float
  network.
- RTL: each layer alone on uz_bench_top (tb/bench_sim.py, the memory model at
  --bw bytes per cycle), its input the golden model's input of that layer,
  checked bit for bit, cycles against golden/perf.py. `distinct` runs one
  layer of each shape (the 16 convolutions have 9), `all` every layer. The
  first FC layer's 25088 x 4096 weights take a 200 MB memory image at 224:
  `distinct` leaves it out (`all` runs it).

Writes DIR/report.json and DIR/report.md; exits 1 unless every RTL layer is
bit exact and the golden image run matches the layer-by-layer model.
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

from golden import arith, compiler, funcmodel, isa, layers, perf  # noqa: E402
from golden.config import EngineConfig  # noqa: E402
from golden.errors import UzError  # noqa: E402
from golden.network import Network, forward_engine_float  # noqa: E402
from golden.onnx_import import load_onnx, network_to_onnx  # noqa: E402
from golden.report import sqnr_db as sqnr  # noqa: E402

MODELS = ("vgg19",)


def light_model(name: str) -> str:
    import onnx
    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"
    if not path.exists():
        raise UzError(f"the onnx package has no {path.name}")
    return str(path)


def fill_weights(net: Network, seed: int) -> None:
    """Seeded He-scale weights in place of the placeholders."""
    rng = np.random.default_rng(seed)
    for op in net.ops:
        if op.weight is not None:
            fan_in = int(np.prod(op.weight.shape[1:]))
            op.weight = rng.normal(0, np.sqrt(2.0 / fan_in), op.weight.shape)
        if op.bias is not None:
            op.bias = rng.normal(0, 0.05, op.bias.shape)


def resized(net: Network, size: int) -> Network:
    """The same layers on a size x size image (only the input, the shapes
    that follow it and the first FC's input width change)."""
    if size == net.input_shape[1]:
        return net
    spec_net = network_to_onnx(net)
    import onnx
    dim = spec_net.graph.input[0].type.tensor_type.shape.dim
    dim[2].dim_value = dim[3].dim_value = size
    del spec_net.graph.value_info[:]         # shapes of the 224 model: inferred anew at import
    # the first FC layer's weight: keep its outputs, cut its inputs
    c_last = None
    for op in net.ops:
        if op.type == "conv":
            c_last = op.weight.shape[0]
    pools = sum(op.type == "maxpool" for op in net.ops)
    flat = c_last * (size >> pools) ** 2
    fc_seen = False
    for init in spec_net.graph.initializer:
        if init.name.endswith(".weight") and len(init.dims) == 2 and not fc_seen:
            fc_seen = True
            w = onnx.numpy_helper.to_array(init)[:, :flat]
            init.CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(w), init.name))
    return load_onnx(spec_net, name=f"{net.name}_{size}")


def layer_program(prog, i: int, x_in: np.ndarray):
    """Layer i of ``prog`` as a program of its own, its input written."""
    q = prog.layers[i]
    img, desc_addr, regions = compiler.build_image([q], prog.cfg, q.in_shape)
    funcmodel.write_act(img, img.region("input").addr, x_in, prog.cfg)
    return compiler.Program(prog.cfg, f"{prog.name}.{q.name}", tuple(q.in_shape), prog.fl_input, [q], img,
                            desc_addr, regions, prog.static, prog.elayers)


def shape_key(q) -> tuple:
    return (q.kind, tuple(q.in_shape), tuple(q.out_shape), q.k, q.stride, tuple(q.pads), q.pool, q.relu)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=MODELS, default="vgg19")
    ap.add_argument("--size", type=int, default=224, help="input image size (default 224; a multiple of 32)")
    ap.add_argument("--rtl", choices=("distinct", "all", "none"), default="distinct")
    ap.add_argument("--bits", type=int, choices=(8, 16), default=16)
    ap.add_argument("--bw", type=float, default=8.0, help="memory bytes per cycle for the RTL (default 8)")
    ap.add_argument("--latency", type=int, default=40, help="memory latency in cycles (default 40)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "build" / "vgg"))
    args = ap.parse_args(argv)
    if args.size < 32 or args.size % 32:
        ap.error(f"--size {args.size}: VGG halves the image five times; give a multiple of 32")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.time()

    def say(text):
        print(f"[{time.time() - t_all:6.0f} s] {text}", flush=True)

    net = load_onnx(light_model(args.model), name=args.model, drop_final_softmax=True)
    fill_weights(net, args.seed)
    net = resized(net, args.size)
    say(f"{args.model}: input {net.input_shape}, {sum(o.type == 'conv' for o in net.ops)} conv, "
        f"{sum(o.type == 'fc' for o in net.ops)} fc, {sum(o.type == 'maxpool' for o in net.ops)} pool")
    rng = np.random.default_rng(args.seed)
    calib = rng.uniform(-1, 1, (2,) + tuple(net.input_shape))
    x = rng.uniform(-1, 1, tuple(net.input_shape))

    import onnxruntime as ort
    model = network_to_onnx(net)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,) = sess.run(None, {sess.get_inputs()[0].name: x[None].astype(np.float32)})
    say("onnxruntime: float output")

    cfg = EngineConfig(data_bits=args.bits, alpha_bits=args.bits) if args.bits != 16 else EngineConfig()
    prog = compiler.compile_network(net, cfg, calib)
    say(f"compiled: {len(prog.layers)} engine layers, image {len(prog.image.data) / 2**20:.0f} MiB")
    xq = compiler.load_input(prog, x)
    outs = compiler.run_network(prog, xq)
    got = arith.dequantize(outs[-1], prog.layers[-1].fl_out).reshape(-1)
    out_sqnr = sqnr(want.reshape(-1), got)
    top1 = int(np.argmax(want)) == int(np.argmax(got))
    say(f"golden: output SQNR {out_sqnr:.1f} dB against onnxruntime, top-1 {'agrees' if top1 else 'DIFFERS'}")
    traces = funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), cfg)
    image_exact = all(np.array_equal(t.y, o) for t, o in zip(traces, outs))
    say(f"golden: memory-image run {'bit exact' if image_exact else 'DIFFERS'} against the layer-by-layer model")

    # float reference of every engine layer's output (ReLU and pool fused as the engine runs them)
    fl_outs = forward_engine_float(prog.elayers, x)
    rows = []
    for i, q in enumerate(prog.layers):
        rows.append({"name": q.name, "kind": q.kind.name, "in_shape": list(q.in_shape),
                     "out_shape": list(q.out_shape), "fl_out": q.fl_out, "tiles": q.tiles,
                     "sqnr_db": sqnr(fl_outs[i], arith.dequantize(outs[i], q.fl_out))})

    mem = perf.Memory(args.bw, args.latency)
    if args.rtl != "none":
        from tb import bench_sim
        seen = set()
        todo = []
        for i, q in enumerate(prog.layers):
            key = shape_key(q)
            if args.rtl == "distinct" and (key in seen or (q.kind == isa.Kind.FC and q.w_q.size > 50_000_000)):
                continue
            seen.add(key)
            todo.append(i)
        bw_num, bw_den = float(args.bw).as_integer_ratio()
        for n, i in enumerate(todo, 1):
            q = prog.layers[i]
            t0 = time.time()
            x_in = xq if i == 0 else outs[i - 1]
            lp = layer_program(prog, i, x_in)
            [model_c] = perf.program_cycles(lp, mem)
            r = lp.image.region(lp.regions[q.name]["out"])
            res = bench_sim.run_program(lp, bw=(bw_num, bw_den), latency=args.latency,
                                        dumps=[(r.addr, r.end)], mem_bytes=max(bench_sim.DEFAULT_MEM_BYTES,
                                                                               1 << (len(lp.image.data) - 1).bit_length()))
            img = lp.image.__class__()
            img.write(r.addr, res["dump_bytes"][0])
            y = funcmodel.read_act(img, r.addr, q.out_shape, cfg)[:q.out_shape[0]]
            first, mism = layers.compare(outs[i], y)
            cyc = res["layers"][0]["cycles"]
            d = isa.Descriptor.decode(lp.image.read(lp.desc_addr, isa.DESC_BYTES))
            util = perf.layer_macs(d) / (cyc * perf.peak_macs_per_cycle(cfg))
            rows[i].update(rtl=True, bit_exact=mism == 0 and res["passed"], mismatches=int(mism), cycles=cyc,
                           model_cycles=model_c.cycles, model_error=(model_c.cycles - cyc) / cyc, mac_util=util)
            say(f"RTL [{n}/{len(todo)}] {q.name} {q.kind.name} {'x'.join(map(str, q.in_shape))} -> "
                f"{'x'.join(map(str, q.out_shape))}: {cyc} cycles (model {model_c.cycles}), MAC util "
                f"{100 * util:.1f}%, {'bit exact' if mism == 0 else f'{mism} MISMATCHES, first {first}'} "
                f"({time.time() - t0:.0f} s)")
    rtl_rows = [r for r in rows if r.get("rtl")]
    ok = image_exact and all(r["bit_exact"] for r in rtl_rows)
    report = {"model": args.model, "input_shape": list(net.input_shape), "bits": args.bits,
              "memory": {"bytes_per_cycle": args.bw, "latency": args.latency},
              "output_sqnr_db": out_sqnr, "top1_agrees": top1, "image_bit_exact": image_exact,
              "rtl_layers": len(rtl_rows), "rtl_bit_exact": all(r["bit_exact"] for r in rtl_rows),
              "layers": rows, "seconds": time.time() - t_all}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(markdown(report))
    print(markdown(report))
    say(f"{'PASS' if ok else 'FAIL'}: report in {out}")
    return 0 if ok else 1


def markdown(rep) -> str:
    lines = [f"{rep['model']} on {'x'.join(map(str, rep['input_shape']))}, {rep['bits']}-bit: output SQNR "
             f"{rep['output_sqnr_db']:.1f} dB against onnxruntime, top-1 "
             f"{'agrees' if rep['top1_agrees'] else 'differs'}; memory-image run "
             f"{'bit exact' if rep['image_bit_exact'] else 'DIFFERS'}. RTL at "
             f"{rep['memory']['bytes_per_cycle']:g} B/cycle, latency {rep['memory']['latency']}.", "",
             "| layer | kind | in | out | fl out | SQNR vs float | RTL cycles | model | MAC util | bit exact |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rep["layers"]:
        rtl = (f"{r['cycles']} | {r['model_cycles']} | {100 * r['mac_util']:.1f}% | "
               f"{'yes' if r['bit_exact'] else 'NO'}") if r.get("rtl") else "— | — | — | —"
        lines.append(f"| {r['name']} | {r['kind']} | {'x'.join(map(str, r['in_shape']))} | "
                     f"{'x'.join(map(str, r['out_shape']))} | {r['fl_out']} | {r['sqnr_db']:.1f} dB | {rtl} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UzError as e:
        print(f"vgg: error: {e}", file=sys.stderr)
        sys.exit(2)
