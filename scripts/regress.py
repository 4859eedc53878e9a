#!/usr/bin/env python3
"""Regression over whole programs: the example networks and seeded random
networks, compiled and run on the functional model from the memory image,
checked bit for bit against the layer-by-layer golden network.

    python scripts/regress.py [--seeds N] [--seed S] [--bits 8|16]

Each failure prints the one-line command that replays it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from golden import compiler, layers  # noqa: E402
from golden.config import EngineConfig  # noqa: E402
from golden.network import load_network  # noqa: E402
from golden.randnet import random_network  # noqa: E402


def run_case(spec, cfg, seed):
    net = load_network(spec, ROOT)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (2,) + tuple(net.input_shape))
    prog = compiler.compile_network(net, cfg, x)
    bad = []
    for img in x:
        xq = compiler.load_input(prog, img)
        ref = compiler.run_network(prog, xq)
        compiler.run_image(prog.image, prog.desc_addr, len(prog.layers), cfg)
        for i, q in enumerate(prog.layers):
            first, n = layers.compare(ref[i], compiler.layer_output(prog, i))
            if n:
                bad.append(f"layer {q.name}: {n} mismatches, first (c,y,x), expected, actual: {first[:3]}")
    return len(prog.layers), bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20, help="random networks to run (default 20)")
    ap.add_argument("--seed", type=int, help="run only this random seed")
    ap.add_argument("--bits", type=int, choices=(8, 16), default=16)
    args = ap.parse_args()
    cfg = EngineConfig(data_bits=args.bits, alpha_bits=args.bits, acc_bits=48 if args.bits == 16 else 32)
    cases = []
    if args.seed is None:
        cases.append(("example5", os.path.join(ROOT, "golden/networks/example5.json"), 0))
        seeds = range(args.seeds)
    else:
        seeds = [args.seed]
    cases += [(f"random{s}", random_network(s), s) for s in seeds]
    passed = failed = 0
    t0 = time.time()
    for i, (name, spec, seed) in enumerate(cases):
        try:
            n_layers, bad = run_case(spec, cfg, seed)
        except Exception as e:  # a crash is a failure of this case, not of the run
            n_layers, bad = 0, [f"{type(e).__name__}: {e}"]
        status = "PASS" if not bad else "FAIL"
        print(f"[{i + 1}/{len(cases)}] {status} {name} ({n_layers} layers, {time.time() - t0:.1f} s)", flush=True)
        if bad:
            failed += 1
            for b in bad[:5]:
                print(f"    {b}")
            if name.startswith("random"):
                print(f"    replay: python scripts/regress.py --seed {seed} --bits {args.bits}")
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
