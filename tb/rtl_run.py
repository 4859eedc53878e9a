"""Run a compiled program on the RTL for a batch of quantized inputs and
return every layer's output per image (the `uz run` back end)."""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden import compiler, funcmodel, isa, memimage
from golden.errors import UzError

from . import simenv


@dataclass
class RtlRun:
    outputs: list = field(default_factory=list)    # [image][layer] integer tensors
    runs: list = field(default_factory=list)       # per image: status, err, err_layer, cycles, layers


def refuse_unsupported(prog: compiler.Program) -> None:
    """UzError naming the first layer that uses a feature the RTL does not run."""
    for i, q in enumerate(prog.layers):
        d = isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
        unsup = isa.unsupported_features(d)
        if unsup:
            raise UzError(f"layer {q.name!r} uses {', '.join(w for _, w in unsup)}, which the RTL does not run "
                          f"yet: uz golden runs it (the functional model)")


def run_program_rtl(prog: compiler.Program, inputs_q: list, sim: str = "verilator",
                    max_cycles: int | None = None, log_file=None) -> RtlRun:
    """Every input (quantized (C,H,W)) through the RTL, one simulation (its
    output goes to ``log_file`` when given). A program with a layer the RTL
    does not run yet (a graph feature: isa.unsupported_features) is refused
    before any simulation, naming the layer."""
    cfg = prog.cfg
    refuse_unsupported(prog)
    in_region = prog.image.region(prog.regions[prog.layers[0].name]["in"])
    outs = [prog.image.region(prog.regions[q.name]["out"]) for q in prog.layers]
    end = max(r.addr + r.size for r in prog.image.regions)
    mem_size = 1 << max(22, (end - 1).bit_length())
    if max_cycles is None:
        # far above any legal run: every MAC at one per cycle, every byte at one per cycle
        from golden import perf
        work = sum(lc.cycles for lc in perf.program_cycles(prog, perf.Memory(1, 64)))
        max_cycles = 10 * work + 100_000
    with tempfile.TemporaryDirectory(prefix="uz-run-") as tmp:
        tmp = Path(tmp)
        img = memimage.MemoryImage()
        img.data = bytearray(prog.image.data)
        (tmp / "image.bin").write_bytes(bytes(img.data))
        with open(tmp / "inputs.bin", "wb") as f:
            for xq in inputs_q:
                funcmodel.write_act(img, in_region.addr, xq, cfg)
                f.write(bytes(img.data[in_region.addr:in_region.addr + in_region.size]).ljust(in_region.size, b"\0"))
        job = {"config": cfg.to_dict(), "mem_size": mem_size, "image": str(tmp / "image.bin"),
               "desc_addr": prog.desc_addr, "layers": len(prog.layers),
               "input": {"addr": in_region.addr, "size": in_region.size}, "inputs": str(tmp / "inputs.bin"),
               "images": len(inputs_q), "outputs": [{"addr": r.addr, "size": r.size} for r in outs],
               "out_data": str(tmp / "outputs.bin"), "result": str(tmp / "result.json"),
               "max_cycles": int(max_cycles)}
        (tmp / "job.json").write_text(json.dumps(job))
        results = simenv.run("uz_top", simenv.rtl_sources(*simenv.ENGINE_RTL), "tb.run_program",
                             simenv.engine_parameters(cfg), sim=sim, extra_env={"UZ_RUN_JOB": str(tmp / "job.json")},
                             run_name=f"uz-run-{tmp.name}", log_file=log_file)
        from cocotb_tools.runner import get_results
        _, fails = get_results(results)
        if not (tmp / "result.json").exists():
            raise UzError(f"the {sim} simulation did not finish (see {log_file or 'its output'})")
        runs = json.loads((tmp / "result.json").read_text())["runs"]
        data = (tmp / "outputs.bin").read_bytes()
    res = RtlRun(runs=runs)
    per_image = sum(r.size for r in outs)
    for n in range(len(runs)):
        chunk = data[n * per_image:(n + 1) * per_image]
        img = memimage.MemoryImage()
        layers_out = []
        off = 0
        for q, r in zip(prog.layers, outs):
            img.write(r.addr, chunk[off:off + r.size])
            off += r.size
            # a layer writing a channel slice (a concat's part, a band of a
            # lowered grouped layer) has its output at the slice
            c_off = q.out_slice[0] if getattr(q, "out_slice", None) else 0
            addr = funcmodel.slice_addr(r.addr, c_off, q.out_shape[1], q.out_shape[2], cfg)
            layers_out.append(funcmodel.read_act(img, addr, q.out_shape, cfg)[:q.out_shape[0]])
        res.outputs.append(layers_out)
    if fails and len(runs) == len(inputs_q) and all(r["status"] & 2 and not r["status"] & 4 for r in runs):
        raise UzError(f"the {sim} simulation reported a failure (see {log_file or 'its output'})")
    return res
