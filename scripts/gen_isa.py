#!/usr/bin/env python3
"""Generate rtl/uz_isa_pkg.sv and docs/isa.md from golden/isa.py.

    python scripts/gen_isa.py          # rewrite the generated files
    python scripts/gen_isa.py --check  # exit 1 if either is stale (CI)
"""
import sys
from pathlib import Path

# Works from a plain checkout as well as with the package installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from golden.svgen import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
