"""cocotb module: run a compiled program on uz_top for a batch of inputs
(``uz run``). The job (JSON, path in UZ_RUN_JOB) names the memory image,
the input region, a file of inputs (one region's bytes per image) and the
layers' output regions; the module writes every layer's output bytes per
image and each run's status and counters. The engine is driven through the
BFM like every other test; a watchdog bounds every image."""
from __future__ import annotations

import json
import os

import cocotb

from golden.config import EngineConfig

from .bfm import DONE, ERROR, UzBfm


@cocotb.test()
async def run_program(dut):
    with open(os.environ["UZ_RUN_JOB"]) as f:
        job = json.load(f)
    cfg = EngineConfig.from_dict(job["config"])
    bfm = UzBfm(dut, cfg, mem_size=job["mem_size"], probes=False)
    await bfm.reset()
    with open(job["image"], "rb") as f:
        image = f.read()
    bfm.load(0, image)
    in_addr, in_size = job["input"]["addr"], job["input"]["size"]
    runs = []
    with open(job["inputs"], "rb") as fin, open(job["out_data"], "wb") as fout:
        for n in range(job["images"]):
            bfm.load(in_addr, fin.read(in_size))
            status, err, err_layer, cycles = await bfm.run_program(job["desc_addr"], job["layers"],
                                                                   job["max_cycles"])
            counters = [await bfm.layer_counters(i) for i in range(job["layers"])]
            for r in job["outputs"]:
                fout.write(bfm.read_mem(r["addr"], r["size"]))
            runs.append({"status": status, "err": err, "err_layer": err_layer, "cycles": cycles,
                         "layers": counters})
            dut._log.info(f"image {n + 1}/{job['images']}: status 0x{status:x}, {cycles} cycles")
            if not status & DONE or status & ERROR:
                break   # the caller reports the stop; later images would only repeat it
    with open(job["result"], "w") as f:
        json.dump({"runs": runs}, f, indent=1)
