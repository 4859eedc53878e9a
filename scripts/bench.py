#!/usr/bin/env python3
"""Cycle-accurate benchmark of the engine (`make bench`).

    python scripts/bench.py [--set full|quick|resnet|mobile] [--config NAME] [--bw BYTES_PER_CYCLE]
                            [--latency CYCLES]
                            [--clock-mhz F] [--only NAME] [--rho R] [--at BYTES_PER_CYCLE]
                            [--insel auto|dense|on|off] [--out build/bench]

Each benchmark layer is compiled by golden (seeded weights at He scale, a
seeded input), run in Verilator on uz_bench_top (the engine with a
SystemVerilog memory model of the given bandwidth and latency, so the
simulation runs at Verilator's speed), checked bit for bit against golden,
and compared with the analytical model (golden/perf.py).

The layer set: the VGG16 convolution layers at full size (one of each
shape), a VGG16 FC layer (fc7), and the 3-channel first layer, raw and with
OVSF-generated weights, and with and without input selection where it makes
a difference (input channels not a multiple of PN); and ResNet-50's
bottleneck shapes (`--set resnet`, also in `full`) on a 256-bit bus at 32
bytes/cycle: the 1x1 reduce, the 3x3, the 1x1 expand with the fused
residual add and the stride-2 1x1 projection (which carries the block's
residual add, as the compiler fuses it in ResNet-50), at their real size in
the 14x14 stage (conv4_x), and the 56x56 stage's expand shrunk to 14x14.
A residual layer is compiled inside a small graph that feeds it and cut out
alone (golden/cut.py). `--set mobile`: MobileNet-v2's depthwise 3x3 layers
(stride 1 and 2) with the engine's per-PE selection and, for comparison,
lowered to dense channel bands as an engine without it must run them, and
ShuffleNet's grouped 1x1 layers (lowered to dense channel bands: the row
sums the bands' cycles, its bound is the grouped layer's), at 8 bytes/cycle
and again at 32 on a 256-bit bus. Every row shows its roofline bound: the layer's MACs
at PM*PN per cycle or its compulsory bytes (the residual's included) at the
memory's rate, whichever is larger.

`--config` runs the set on a named engine configuration (tb/regressions.py:
default, small, bits8, ecp5, ...; rows with their own bus width keep it):
`make synth` reads the results of the configuration it synthesised for its
throughput table (GOP/s at the measured clock, MACs per DSP per cycle).

Writes build/bench/results.json, results.md (the table), roofline.png and
model.png (measured vs modelled cycles). Prints a line per run as it goes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from golden import compiler, cut, funcmodel, isa, perf  # noqa: E402
from golden.config import EngineConfig  # noqa: E402
from golden.network import load_network  # noqa: E402
from golden.passes import fuse, groups  # noqa: E402
from tb import regressions  # noqa: E402

CFG = EngineConfig()


def conv(name, cin, cout, hw, k=3, pad=1, rho=1.0):
    return {"name": name, "input_shape": [cin, hw, hw],
            "layers": [{"name": name, "type": "conv", "out_channels": cout, "kernel": k, "pad": pad, "rho": rho},
                       {"type": "relu"}]}


def fc(name, cin, cout, rho=1.0):
    return {"name": name, "input_shape": [cin, 1, 1],
            "layers": [{"name": name, "type": "fc", "out_features": cout, "rho": rho}, {"type": "relu"}]}


#: (name, builder(rho) -> spec, rhos, compute- or memory-bound expectation)
VGG16 = [
    ("conv1_1", lambda r: conv("conv1_1", 3, 64, 224, rho=r)),
    ("conv1_2", lambda r: conv("conv1_2", 64, 64, 224, rho=r)),
    ("conv2_1", lambda r: conv("conv2_1", 64, 128, 112, rho=r)),
    ("conv2_2", lambda r: conv("conv2_2", 128, 128, 112, rho=r)),
    ("conv3_1", lambda r: conv("conv3_1", 128, 256, 56, rho=r)),
    ("conv3_2", lambda r: conv("conv3_2", 256, 256, 56, rho=r)),
    ("conv4_1", lambda r: conv("conv4_1", 256, 512, 28, rho=r)),
    ("conv4_2", lambda r: conv("conv4_2", 512, 512, 28, rho=r)),
    ("conv5_1", lambda r: conv("conv5_1", 512, 512, 14, rho=r)),
    ("fc7", lambda r: fc("fc7", 4096, 4096, rho=r)),
]
#: How many times each VGG16 shape occurs in the network (for the whole-network estimate).
VGG16_COUNT = {"conv1_1": 1, "conv1_2": 1, "conv2_1": 1, "conv2_2": 1, "conv3_1": 1, "conv3_2": 2,
               "conv4_1": 1, "conv4_2": 2, "conv5_1": 3, "fc7": 1}
#: The 3-channel first layer again where the memory does not bound it: at
#: 8 bytes/cycle its 64-channel output alone needs more than its compute
#: time, so input selection shows only with a wider bus (256 bits, 32
#: bytes/cycle). (name, builder, engine config overrides, bytes per cycle)
WIDE = [("conv1_1_bus256", lambda r: conv("conv1_1", 3, 64, 224, rho=r), {"axi_data_bits": 256}, 32.0)]
QUICK = [
    ("first_3ch", lambda r: conv("first_3ch", 3, 32, 32, rho=r)),
    ("conv_32", lambda r: conv("conv_32", 32, 32, 16, rho=r)),
    ("fc_1k", lambda r: fc("fc_1k", 1024, 512, rho=r)),
]


def res_block(name, cin, cout, hw, k=1, stride=1, rho=1.0):
    """A layer with the fused residual add, compiled inside a small graph:
    a stand-in convolution gives the residual (cout channels on the layer's
    output plane), the layer ``name`` adds it, ReLU follows. bench_layer
    names the layer to cut out."""
    out_hw = (hw - 1) // stride + 1
    layers = [{"name": "side", "type": "conv", "out_channels": cout, "kernel": 1, "pad": 0, "stride": stride,
               "rho": rho, "inputs": ["input"]},
              {"name": name, "type": "conv", "out_channels": cout, "kernel": k, "pad": k // 2, "stride": stride,
               "rho": rho, "inputs": ["input"]},
              {"name": f"{name}_add", "type": "add", "inputs": [name, "side"]},
              {"name": f"{name}_relu", "type": "relu"}]
    assert out_hw >= 1
    return {"name": name, "input_shape": [cin, hw, hw], "layers": layers, "bench_layer": name}


#: ResNet-50's bottleneck (conv4_x at its real 14x14, conv2_x's expand shrunk
#: from 56x56 to 14x14), at 32 bytes/cycle on a 256-bit bus.
RESNET_CFG = {"axi_data_bits": 256}
RESNET = [
    ("rn50_reduce_1x1", lambda r: conv("rn50_reduce_1x1", 1024, 256, 14, k=1, pad=0, rho=r), RESNET_CFG, 32.0),
    ("rn50_3x3", lambda r: conv("rn50_3x3", 256, 256, 14, rho=r), RESNET_CFG, 32.0),
    ("rn50_expand_1x1_res", lambda r: res_block("rn50_expand_1x1_res", 256, 1024, 14, rho=r), RESNET_CFG, 32.0),
    ("rn50_proj_1x1s2_res", lambda r: res_block("rn50_proj_1x1s2_res", 512, 1024, 28, stride=2, rho=r),
     RESNET_CFG, 32.0),
    ("rn50_expand_1x1_res_56to14", lambda r: res_block("rn50_expand_1x1_res_56to14", 64, 256, 14, rho=r),
     RESNET_CFG, 32.0),
]


def dwconv(name, c, hw, stride=1, k=3, rho=1.0):
    """A MobileNet-v2 depthwise layer with its ReLU6."""
    return {"name": name, "input_shape": [c, hw, hw],
            "layers": [{"name": name, "type": "conv", "out_channels": c, "kernel": k, "pad": k // 2,
                        "stride": stride, "groups": c, "rho": rho}, {"type": "relu6"}]}


def gconv(name, cin, cout, hw, groups, rho=1.0):
    """A ShuffleNet grouped 1x1 layer with its ReLU (the compiler lowers it
    to dense channel-slice bands: the engine runs only depthwise groups)."""
    return {"name": name, "input_shape": [cin, hw, hw],
            "layers": [{"name": name, "type": "conv", "out_channels": cout, "kernel": 1, "groups": groups,
                        "rho": rho}, {"type": "relu"}]}


#: MobileNet-v2's depthwise 3x3 layers (stride 1 and 2, one of each block
#: stage's shapes at 224x224) and ShuffleNet's (groups 4) grouped 1x1 layers
#: at 8 bytes/cycle. Depthwise rows run with the engine's per-PE selection
#: and, as a conventional engine would map them, as dense channel bands
#: (selection "dense": PM x PN block-diagonal weights).
MOBILE = [
    ("mnv2_dw_32x112_s1", lambda r: dwconv("mnv2_dw_32x112_s1", 32, 112, rho=r)),
    ("mnv2_dw_96x112_s2", lambda r: dwconv("mnv2_dw_96x112_s2", 96, 112, stride=2, rho=r)),
    ("mnv2_dw_144x56_s1", lambda r: dwconv("mnv2_dw_144x56_s1", 144, 56, rho=r)),
    ("mnv2_dw_144x56_s2", lambda r: dwconv("mnv2_dw_144x56_s2", 144, 56, stride=2, rho=r)),
    ("mnv2_dw_192x28_s1", lambda r: dwconv("mnv2_dw_192x28_s1", 192, 28, rho=r)),
    ("mnv2_dw_384x14_s1", lambda r: dwconv("mnv2_dw_384x14_s1", 384, 14, rho=r)),
    ("mnv2_dw_576x14_s2", lambda r: dwconv("mnv2_dw_576x14_s2", 576, 14, stride=2, rho=r)),
    ("mnv2_dw_960x7_s1", lambda r: dwconv("mnv2_dw_960x7_s1", 960, 7, rho=r)),
    ("shuffle_g4_1x1_136x28", lambda r: gconv("shuffle_g4_1x1_136x28", 136, 136, 28, 4, rho=r)),
    ("shuffle_g4_1x1_272x14", lambda r: gconv("shuffle_g4_1x1_272x14", 272, 272, 14, 4, rho=r)),
    ("shuffle_g4_1x1_544x7", lambda r: gconv("shuffle_g4_1x1_544x7", 544, 544, 7, 4, rho=r)),
]
#: The same layers where the memory does not bound them (256-bit bus at a
#: beat per cycle, 32 bytes/cycle): what the PE array itself achieves.
MOBILE_WIDE = [(name, build, {"axi_data_bits": 256}, 32.0) for name, build in MOBILE]
CONV_RHOS = (1.0, 0.5)
FC_RHOS = (1.0, 0.5, 0.25, 0.125, 0.0625)


def runs_of(layer_set, bw: float, rhos=None, base: EngineConfig = CFG):
    """(name, spec, rho, insel, cfg, bytes per cycle) for every benchmark run,
    on ``base`` with the entry's own overrides (a wider bus, say)."""
    out = []
    for entry in layer_set:
        name, build = entry[:2]
        cfg = dataclasses.replace(base, **entry[2]) if len(entry) > 2 else base
        run_bw = entry[3] if len(entry) > 3 else bw
        is_fc = build(1.0)["layers"][0]["type"] == "fc"
        cin = build(1.0)["input_shape"][0]
        for rho in rhos or (FC_RHOS if is_fc else CONV_RHOS):
            if rho * cfg.ovsf_len < 1:
                continue
            first = build(1.0)["layers"][0]
            if first.get("groups", 1) == cin == first.get("out_channels"):
                insels = ("auto", "dense")        # depthwise: per-PE selection, or dense channel bands
            else:
                insels = ("on", "off") if cin % cfg.pn else ("auto",)
            for insel in insels:
                out.append((name, build(rho), rho, insel, cfg, run_bw))
    return out


def compile_layer(spec, rho, insel, cfg=CFG, seed=1, bandwidth=None):
    """(program of the benchmark layer alone, its expected output). insel
    "dense": a depthwise layer lowered to dense channel bands, as an engine
    without per-PE selection runs it. A grouped layer the engine does not
    run becomes several dense layers (golden.passes.groups): the program is
    all of them and the expected output the whole tensor. ``bandwidth``: the
    memory's bytes per cycle, which the compiler's tile choice is judged at."""
    spec = dict(spec, weights={"seed": seed})
    target = spec.pop("bench_layer", None)
    net = load_network(spec)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (1,) + tuple(net.input_shape))
    groups.LOWER_DEPTHWISE = insel == "dense"
    try:
        prog = compiler.compile_network(net, cfg, x, insel="auto" if insel == "dense" else insel,
                                        force_ovsf=rho < 1, bandwidth=bandwidth)
    finally:
        groups.LOWER_DEPTHWISE = False
    xq = compiler.load_input(prog, x[0])
    if target is None:
        return prog, compiler.network_output_q(prog, xq)
    outs, vals = compiler.run_graph(prog, xq)
    [i] = [n for n, q in enumerate(prog.layers) if q.res_tensor is not None]     # the add's layer
    lp = cut.layer_alone(prog, i, *cut.layer_operands(prog, xq, outs, vals, i))
    return lp, outs[i]


def _summed(models):
    """One LayerCycles-like total of a program's layers (run one after another)."""
    class Total:
        cycles = sum(m.cycles for m in models)
        bytes_read = sum(m.bytes_read for m in models)
        bytes_written = sum(m.bytes_written for m in models)
    return Total


def _grouped_descriptor(spec, band0):
    """The grouped layer's own descriptor fields (for its MACs and
    compulsory bytes), from the benchmark spec and its first band."""
    L = spec["layers"][0]
    c, h, w = spec["input_shape"]
    d = isa.Descriptor(dict(band0.values))
    return d.set(in_c=c, out_c=L["out_channels"], groups=L.get("groups", 1), in_c_off=0, in_c_total=0,
                 out_c_off=0, out_c_total=0)


def _selection(d, insel, n_desc) -> str:
    """How the engine maps the layer: per-PE (depthwise), dense bands, input
    selection on or off."""
    if isa.depthwise(d):
        return "per-PE"
    if n_desc > 1 or insel == "dense":
        return f"dense ({n_desc} band{'s' if n_desc > 1 else ''}{', insel' if d.insel else ''})"
    return "insel" if d.insel else "off"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("full", "quick", "resnet", "mobile"), default="full")
    ap.add_argument("--config", default="default", choices=sorted(regressions.CONFIGS),
                    help="engine configuration (tb/regressions.py; default: default)")
    ap.add_argument("--bw", type=float, help="memory bytes per cycle (default 8; --set resnet: 32). The ResNet-50 "
                    "rows run at 32 on a 256-bit bus in every set")
    ap.add_argument("--latency", type=int, default=40, help="memory latency in cycles (default 40)")
    ap.add_argument("--clock-mhz", type=float, default=200.0, help="nominal clock for GOP/s (default 200)")
    ap.add_argument("--only", help="run only benchmark layers whose name contains this")
    ap.add_argument("--rho", type=float, help="run only this rho (e.g. 1)")
    ap.add_argument("--at", type=float, help="run only the rows whose memory runs at this many bytes/cycle")
    ap.add_argument("--insel", choices=("auto", "dense", "on", "off"),
                    help="run only rows compiled with this input selection (depthwise: auto = per-PE, dense = bands)")
    ap.add_argument("--out", default=str(ROOT / "build" / "bench"))
    args = ap.parse_args(argv)
    from tb import bench_sim
    engine = args.cfg = regressions.CONFIGS[args.config]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.bw is None:
        args.bw = 32.0 if args.set == "resnet" else 8.0
    runs = {"full": lambda: (runs_of(VGG16, args.bw, base=engine) + runs_of(WIDE, args.bw, rhos=(1.0,), base=engine)
                             + runs_of(RESNET, args.bw, base=engine)),
            "quick": lambda: runs_of(QUICK, args.bw, base=engine),
            "resnet": lambda: runs_of(RESNET, args.bw, base=engine),
            "mobile": lambda: (runs_of(MOBILE, args.bw, base=engine)
                               + runs_of(MOBILE_WIDE, args.bw, rhos=(1.0,), base=engine))}[args.set]()
    if args.only:
        runs = [r for r in runs if args.only in r[0]]
    if args.rho is not None:
        runs = [r for r in runs if r[2] == args.rho]
    if args.at is not None:
        runs = [r for r in runs if r[5] == args.at]
    if args.insel is not None:
        runs = [r for r in runs if r[3] == args.insel]
    results = []
    t_all = time.time()
    print(f"bench: {len(runs)} runs, memory {args.bw:g} B/cycle, latency {args.latency}, "
          f"configuration {args.config}: PM={engine.pm} PN={engine.pn} L={engine.ovsf_len}", flush=True)
    for n, (name, spec, rho, insel, cfg, bw) in enumerate(runs, 1):
        t0 = time.time()
        mem = perf.Memory(bw, args.latency)
        bw_num, bw_den = float(bw).as_integer_ratio()
        prog, ref = compile_layer(spec, rho, insel, cfg, bandwidth=bw)
        models = perf.program_cycles(prog, mem)
        model = models[0] if len(models) == 1 else _summed(models)
        d = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
        selection = _selection(d, insel, len(prog.layers))
        if len(prog.layers) > 1:
            d = _grouped_descriptor(spec, d)     # the bound of the layer, not of its bands
        roof = perf.roofline_cycles(d, cfg, mem)
        q = prog.layers[0]
        out_q = prog.layers[-1]
        region = prog.image.region(prog.regions[out_q.name]["out"])
        t1 = time.time()
        macs = perf.layer_macs(d)
        peak = perf.peak_macs_per_cycle(cfg)
        base = {"layer": name, "kind": q.kind.name, "in_shape": list(prog.input_shape),
                "out_shape": list(ref.shape), "descriptors": len(prog.layers), "selection": selection,
                "rho": rho, "insel": bool(d.insel), "residual": bool(d.res), "tiles": q.tiles,
                "model_cycles": model.cycles, "roofline_cycles": roof["cycles"], "roofline_bound": roof["bound"],
                "compulsory_bytes": roof["bytes"], "macs": macs, "bus_bits": cfg.axi_data_bits,
                "bytes_per_cycle": bw, "model_bytes": model.bytes_read + model.bytes_written,
                "config": args.config if cfg == engine else None,
                "compile_seconds": t1 - t0}
        unsup = [u for i in range(len(prog.layers)) for u in isa.unsupported_features(
            isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES)))]
        if unsup:
            results.append(dict(base, rtl=False, cycles=None, bit_exact=None,
                                not_on_rtl=", ".join(dict.fromkeys(w for _, w in unsup))))
            print(f"[{n}/{len(runs)}] {name} rho {rho:g}: not yet on the RTL ({results[-1]['not_on_rtl']}); "
                  f"model {model.cycles} cycles, roofline bound {roof['cycles']:.0f}", flush=True)
            continue
        res = bench_sim.run_program(prog, bw=(bw_num, bw_den), latency=args.latency,
                                    dumps=[(region.addr, region.addr + region.size)])
        img = prog.image.__class__()
        img.write(region.addr, res["dump_bytes"][0])
        if prog.graph is None:
            got = funcmodel.read_act(img, region.addr, q.out_shape, cfg)[:q.out_shape[0]]
        else:
            t = prog.graph.tensors[prog.graph.output]
            got = fuse.logical(t, funcmodel.read_act(img, region.addr, (t.phys_c,) + tuple(t.shape[1:]), cfg))
            got = got[:ref.shape[0]]        # the pad channels of the last PN word
        mism = int(np.count_nonzero(got != ref))
        lay = {"cycles": sum(x["cycles"] for x in res["layers"]),
               "mac_busy": sum(x["mac_busy"] for x in res["layers"])}
        cycles = lay["cycles"]
        r = dict(base)
        r.update({"rtl": True, "cycles": cycles, "model_error": (model.cycles - cycles) / cycles,
             "of_roofline": roof["cycles"] / cycles,
             "mac_busy": lay["mac_busy"], "mac_util": macs / (cycles * peak),
             "array_busy": lay["mac_busy"] / cycles, "macs": macs,
             "gops": 2 * macs / cycles * args.clock_mhz * 1e6 / 1e9,
             "bytes_read": res["rd_bytes"], "bytes_written": res["wr_bytes"],
             "intensity": 2 * macs / max(1, res["rd_bytes"] + res["wr_bytes"]),
             "bit_exact": mism == 0, "mismatches": mism, "sim_seconds": res["sim_seconds"],
             "cycles_per_second": cycles / max(res["sim_seconds"], 1e-9)})
        # the best MAC utilisation this memory allows the traffic measured
        r["roof_util"] = min(1.0, r["intensity"] * min(bw, cfg.bus_bytes) / (2 * peak))
        results.append(r)
        print(f"[{n}/{len(runs)}] {name} rho {rho:g} {r['selection']}: {cycles} cycles "
              f"(model {model.cycles}, {100 * r['model_error']:+.1f}%), MAC util {100 * r['mac_util']:.1f}%, "
              f"roofline {100 * r['of_roofline']:.0f}%, {'bit exact' if mism == 0 else f'{mism} MISMATCHES'}, "
              f"{r['cycles_per_second'] / 1e3:.0f} kcycles/s, {time.time() - t0:.0f} s", flush=True)
    summary = summarize(results, args)
    (out / "results.json").write_text(json.dumps({"config": engine.to_dict(), "config_name": args.config, "memory": {"bytes_per_cycle": args.bw,
                                                   "latency": args.latency}, "clock_mhz": args.clock_mhz,
                                                   "runs": results, "summary": summary}, indent=1))
    (out / "results.md").write_text(table(results, summary, args))
    plots(results, args, out)
    print(table(results, summary, args))
    print(f"bench: {len(results)} runs in {time.time() - t_all:.0f} s; results in {out}")
    return 0 if all(r["bit_exact"] is not False for r in results) else 1


def summarize(results, args) -> dict:
    ran = [r for r in results if r["rtl"]]
    s = {"all_bit_exact": all(r["bit_exact"] for r in ran),
         "not_on_rtl": len(results) - len(ran),
         "max_model_error": max((abs(r["model_error"]) for r in ran), default=0.0),
         "cycles_per_second": (sum(r["cycles"] for r in ran) / max(1e-9, sum(r["sim_seconds"] for r in ran)))}
    # OVSF speed-up on each layer against its raw run with the same input selection
    for r in ran:
        base = [b for b in ran if b["layer"] == r["layer"] and b["rho"] == 1.0 and b["insel"] == r["insel"]
                and b.get("selection") == r.get("selection")]
        if base:
            r["speedup_vs_raw"] = base[0]["cycles"] / r["cycles"]
    total = 0
    for name, count in VGG16_COUNT.items():
        raw = [r for r in ran if r["layer"] == name and r["rho"] == 1.0]
        if raw:
            total += count * min(r["cycles"] for r in raw)
    if total:
        s["vgg16_conv_fc7_cycles"] = total
        s["vgg16_sim_minutes_estimate"] = total / s["cycles_per_second"] / 60
    return s


def table(results, summary, args) -> str:
    lines = [f"Memory {args.bw:g} bytes/cycle unless the memory column says otherwise, latency {args.latency} "
             f"cycles; configuration {args.config}: PM={args.cfg.pm}, PN={args.cfg.pn}, L={args.cfg.ovsf_len}; GOP/s at {args.clock_mhz:g} MHz. "
             "Roof: the MAC utilisation the memory allows the layer's measured traffic. Bound: the roofline "
             "bound in cycles, the layer's MACs at PM*PN per cycle or its compulsory bytes (input, weights, "
             "bias, residual and output once) at the memory's rate, whichever is larger (compute or memory); "
             "of it: bound / RTL cycles. +res: the layer adds a residual (fused).", "",
             "| layer | in | out | rho | selection | memory | cycles | model | model err | MAC util | roof | "
             "bound | of it | GOP/s | bytes moved | speed-up vs raw | bit exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        head = (f"| {r['layer']}{' +res' if r.get('residual') else ''} | {'x'.join(map(str, r['in_shape']))} | "
                f"{'x'.join(map(str, r['out_shape']))} | "
                f"{r['rho']:g} | {r.get('selection', 'insel' if r['insel'] else 'off')} | "
                f"{r['bus_bits']}-bit, {r['bytes_per_cycle']:g} B/c | ")
        bound = f"{r['roofline_cycles']:.0f} ({r['roofline_bound']})"
        if not r["rtl"]:
            lines.append(head + f"— | {r['model_cycles']} | — | — | — | {bound} | — | — | — | — | "
                         f"not yet on the RTL ({r['not_on_rtl']}) |")
            continue
        lines.append(head + f"{r['cycles']} | {r['model_cycles']} | "
                     f"{100 * r['model_error']:+.1f}% | {100 * r['mac_util']:.1f}% | {100 * r['roof_util']:.0f}% | "
                     f"{bound} | {100 * r['of_roofline']:.0f}% | {r['gops']:.1f} | "
                     f"{r['bytes_read'] + r['bytes_written']} | {r.get('speedup_vs_raw', 1.0):.2f} | "
                     f"{'yes' if r['bit_exact'] else 'NO'} |")
    lines += ["", f"Largest model error: {100 * summary['max_model_error']:.1f}%. Simulation speed: "
              f"{summary['cycles_per_second'] / 1e3:.0f} k cycles per second."]
    if "vgg16_conv_fc7_cycles" in summary:
        lines.append(f"VGG16 (13 conv layers and fc7, raw weights): {summary['vgg16_conv_fc7_cycles']} cycles, "
                     f"about {summary['vgg16_sim_minutes_estimate']:.1f} minutes of simulation.")
    return "\n".join(lines) + "\n"


def plots(results, args, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    peak = perf.peak_macs_per_cycle(args.cfg) * 2          # ops per cycle
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = np.logspace(-1, 4, 200)
    ax.plot(xs, np.minimum(peak, xs * args.bw), "k-", lw=1, label=f"roof: {peak} ops/cycle, {args.bw:g} B/cycle")
    results = [r for r in results if r["rtl"]]
    if not results:
        plt.close(fig)
        return
    for r in results:
        ops = 2 * r["macs"] / r["cycles"]
        marker = ("o" if r["rho"] == 1.0 else "^") if r["bytes_per_cycle"] == args.bw else "s"
        ax.scatter(r["intensity"], ops, marker=marker, s=24)
        ax.annotate(f"{r['layer']} {'' if r['rho'] == 1 else 'ρ=' + format(r['rho'], 'g')}",
                    (r["intensity"], ops), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (ops per byte moved)")
    ax.set_ylabel("ops per cycle")
    ax.set_title("Roofline: measured layers (o raw, ^ OVSF; s other memory)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "roofline.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    meas = [r["cycles"] for r in results]
    mod = [r["model_cycles"] for r in results]
    ax.scatter(meas, mod, s=16)
    lo, hi = min(meas + mod) * 0.8, max(meas + mod) * 1.2
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.plot([lo, hi], [lo * 1.1, hi * 1.1], "k:", lw=0.8)
    ax.plot([lo, hi], [lo * 0.9, hi * 0.9], "k:", lw=0.8, label="±10%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("RTL cycles")
    ax.set_ylabel("model cycles")
    ax.set_title("Analytical model against the RTL")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "model.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
