#!/usr/bin/env python3
"""Real graph networks in the golden model (`make models`): ResNet-50,
SqueezeNet, DenseNet-121, Inception-v2, ShuffleNet and VGG19 as the onnx
package ships them (golden/zoo.py), with seeded He-scale weights and
BatchNorm statistics (onnx_import.realistic_weights), through onnxruntime
(float) and the whole golden model.

    python scripts/models.py [--models resnet50,squeezenet,...] [--bits 16]
                             [--images 2] [--calib 2] [--out build/models]

For each model: the float output of onnxruntime on seeded random images;
the network imported (load_onnx), compiled for the engine (dynamic fixed
point calibrated on other seeded images), run from its memory image on the
functional model and layer by layer on the integer model (bit exact), its
output SQNR against onnxruntime, the top-1 class against onnxruntime's, and
each layer's SQNR against its float value (golden/report.py). Random weights
do not compress: the results measure numerics, not accuracy.

The engine configuration is the default one with on-chip buffers raised to
what the largest padded pool plane needs (ResNet-50's and ShuffleNet's 3x3/2
pad-1 max pool on 112x112 must fit one tile); the report states it.

Writes DIR/results.json and DIR/report.md; exits 1 unless every model is
bit exact.
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

from golden import arith, compiler, report, zoo  # noqa: E402
from golden.config import EngineConfig  # noqa: E402
from golden.onnx_import import load_onnx, realistic_weights  # noqa: E402

#: Buffers large enough for every layer of the six models in one piece where
#: a pool needs it (elements per half of each double buffer).
BIG_BUFFERS = {"in_buf_elems": 1 << 18, "wgt_buf_elems": 1 << 16, "out_buf_elems": 1 << 18}


def run_model(name: str, cfg: EngineConfig, n_images: int, n_calib: int, seed: int = 0) -> dict:
    import onnxruntime as ort

    t0 = time.time()
    size = zoo.LIGHT_SIZES[name]
    model = realistic_weights(zoo.light_model(name, size), seed=seed)
    ref_model = zoo.without_final_softmax(model)
    rng = np.random.default_rng([seed, 1])
    x = rng.uniform(-1, 1, (n_images, 3, size, size)).astype(np.float32)
    calib = rng.uniform(-1, 1, (n_calib, 3, size, size))
    sess = ort.InferenceSession(ref_model.SerializeToString(), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    ort_out = [sess.run(None, {in_name: x[i:i + 1]})[0].reshape(-1).astype(np.float64) for i in range(n_images)]
    net = load_onnx(model, name=name)
    prog = compiler.compile_network(net, cfg, calib)
    rep = report.golden_report(net, prog, x.astype(np.float64))
    outs = rep.pop("_output").reshape(n_images, -1)
    sqnr = [report.sqnr_db(ort_out[i], outs[i]) for i in range(n_images)]
    top1 = [int(np.argmax(ort_out[i]) == np.argmax(outs[i])) for i in range(n_images)]
    layers = rep["layers"]
    worst = min(layers, key=lambda r: r["sqnr_db"])
    return {"model": name, "size": size, "layers": len(layers), "images": n_images,
            "bit_exact": rep["bit_exact"], "output_sqnr_db": float(np.mean(sqnr)),
            "top1_same": f"{sum(top1)}/{n_images}", "min_layer_sqnr_db": worst["sqnr_db"],
            "min_layer": worst["name"], "memory": rep.get("memory"), "notes": list(getattr(prog, "notes", [])),
            "seconds": round(time.time() - t0, 1), "per_layer": [
                {"name": r["name"], "kind": r["kind"], "sqnr_db": r["sqnr_db"], "bit_exact": r["bit_exact"]}
                for r in layers]}


def markdown(results: list, cfg: EngineConfig) -> str:
    lines = [f"# Real networks in the golden model ({cfg.data_bits}-bit)", "",
             f"Engine: PM = {cfg.pm}, PN = {cfg.pn}, buffers {cfg.in_buf_elems}/{cfg.wgt_buf_elems}/"
             f"{cfg.out_buf_elems} elements (input/weights/output). Seeded He-scale weights and random "
             "images: numerics, not accuracy.", "",
             "| model | image | layers | bit exact | output SQNR vs onnxruntime | same top-1 | lowest layer SQNR | "
             "activation bytes: peak (reuse) / one region each |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        mem = r["memory"] or {}
        lines.append(f"| {r['model']} | {r['size']} | {r['layers']} | {'yes' if r['bit_exact'] else 'NO'} | "
                     f"{r['output_sqnr_db']:.1f} dB | {r['top1_same']} | {r['min_layer_sqnr_db']:.1f} dB "
                     f"({r['min_layer']}) | {mem.get('activation_bytes_peak', '-')} / "
                     f"{mem.get('activation_bytes_one_region', '-')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(zoo.LIGHT_SIZES), help="comma-separated (default: all six)")
    ap.add_argument("--bits", type=int, choices=(8, 16), default=16)
    ap.add_argument("--images", type=int, default=2, help="test images per model (default 2)")
    ap.add_argument("--calib", type=int, default=2, help="calibration images (default 2)")
    ap.add_argument("--out", default=str(ROOT / "build" / "models"))
    args = ap.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in zoo.LIGHT_SIZES]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(zoo.LIGHT_SIZES)}")
    bits = dict(data_bits=8, alpha_bits=8, acc_bits=32) if args.bits == 8 else {}
    cfg = EngineConfig(**BIG_BUFFERS, **bits)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, name in enumerate(names):
        print(f"[{i + 1}/{len(names)}] {name} ...", flush=True)
        r = run_model(name, cfg, args.images, args.calib)
        results.append(r)
        print(f"    bit exact {r['bit_exact']}, output SQNR {r['output_sqnr_db']:.1f} dB, top-1 same "
              f"{r['top1_same']}, lowest layer {r['min_layer_sqnr_db']:.1f} dB ({r['min_layer']}), "
              f"{r['seconds']} s", flush=True)
        (out / "results.json").write_text(json.dumps({"config": cfg.to_dict(), "models": results}, indent=1))
    (out / "report.md").write_text(markdown(results, cfg))
    print(markdown(results, cfg))
    print(f"wrote {out}/results.json, report.md")
    return 0 if all(r["bit_exact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
