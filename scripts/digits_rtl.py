#!/usr/bin/env python3
"""A digits network whole on the RTL through `uz run` (`make digits-rtl`,
ARCH=residual by default): the first N test images of the 8x8 digits
network (scripts/train_digits.py --arch ARCH, trained first when its folder
has none) through `uz run` (the compiled program on uz_top, every layer of
every image checked bit for bit against the golden model), and its
accuracy against the labels, next to the golden model's on the same images
(`uz golden` with the same calibration).

    python scripts/digits_rtl.py [--arch residual|dwsep|chain] [--images 100]
                                 [--sim verilator|icarus] [--out build/digits_rtl_<arch>]

Writes DIR/summary.json and DIR/summary.md, and `uz run`'s folder in
DIR/run (report.json: per layer bit exactness, RTL cycles and the model's).
Exits 1 unless every layer of every image is bit exact.
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

from golden import cli  # noqa: E402


def _rel(p: Path) -> str:
    """A path as the command line shows it: relative to the working folder when inside it."""
    try:
        return str(Path(p).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="residual", choices=("chain", "residual", "dwsep"))
    ap.add_argument("--images", type=int, default=100, help="test images on the RTL (default 100)")
    ap.add_argument("--sim", default="verilator", choices=("verilator", "icarus"))
    ap.add_argument("--model", help="folder of digits.onnx and the split (default build/digits_<arch>)")
    ap.add_argument("--out", help="default build/digits_rtl_<arch>")
    args = ap.parse_args(argv)
    suffix = "" if args.arch == "chain" else f"_{args.arch}"
    model = Path(args.model or ROOT / "build" / f"digits{suffix}")
    out = Path(args.out or ROOT / "build" / f"digits_rtl_{args.arch}")
    out.mkdir(parents=True, exist_ok=True)
    if not (model / "digits.onnx").exists():
        sys.path.insert(0, str(ROOT / "scripts"))
        import train_digits
        print(f"no model in {model}: training it (scripts/train_digits.py --arch {args.arch})", flush=True)
        train_digits.main(["--out", str(model), "--arch", args.arch, "--no-golden"])
    x = np.load(model / "X_test.npy")[:args.images]
    y = np.load(model / "y_test.npy")[:args.images]
    np.save(out / "X.npy", x)
    common = [_rel(model / "digits.onnx"), "--input", _rel(out / "X.npy"), "--calib", _rel(model / "X_calib.npy")]
    t0 = time.time()
    print(f"uz golden {' '.join(common)} --out {out / 'golden'}", flush=True)
    if cli.main(["golden", *common, "--out", str(out / "golden")]) != 0:
        print("digits_rtl: the golden model's two runs differ", file=sys.stderr)
        return 1
    g_acc = float((np.load(out / "golden" / "output.npy").reshape(len(x), -1).argmax(1) == y).mean())
    print(f"uz run {' '.join(common)} --sim {args.sim} --out {out / 'run'}", flush=True)
    t1 = time.time()
    status = cli.main(["run", *common, "--sim", args.sim, "--out", str(out / "run")])
    rtl_seconds = time.time() - t1
    if not (out / "run" / "report.json").exists():
        # uz run refused the program (a layer the RTL does not run yet) or failed: it said why
        print(f"digits_rtl: uz run did not run the {args.arch} network (exit status {status}; see above)",
              file=sys.stderr)
        return 1
    rep = json.loads((out / "run" / "report.json").read_text())
    r_acc = float((np.load(out / "run" / "output.npy").reshape(len(x), -1).argmax(1) == y).mean())
    layers = rep["layers"]
    summary = {"arch": args.arch, "images": int(len(x)), "sim": args.sim, "bit_exact": bool(rep["bit_exact"]),
               "rtl_accuracy": r_acc, "golden_accuracy": g_acc,
               "cycles_per_image": rep["rtl"]["cycles_per_image"][0] if rep.get("rtl") else None,
               # the analytical model at uz golden's default memory (8 B/cycle, latency 40), not uz run's
               "model_cycles_per_image_8B": sum(r["model_cycles"] or 0 for r in layers),
               "layers": len(layers), "rtl_mismatches": sum(r.get("rtl_mismatches", 0) for r in layers),
               "rtl_seconds": round(rtl_seconds), "seconds": round(time.time() - t0),
               "command": f"uz run {' '.join(common)} --sim {args.sim}"}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    md = (f"Digits {args.arch} network on the RTL ({args.sim}, `uz run`, {len(x)} test images, "
          f"{summary['layers']} engine layers): {100 * r_acc:.2f}% "
          f"({'bit exact' if summary['bit_exact'] else 'NOT bit exact'}; golden 16-bit on the same images "
          f"{100 * g_acc:.2f}%); {summary['cycles_per_image']} cycles per image on the RTL (uz run's "
          f"memory model).\n")
    (out / "summary.md").write_text(md)
    print(md, end="")
    return 0 if status == 0 and summary["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
