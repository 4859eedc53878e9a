"""cocotb test of uz_tile_iter: the walk (o0, r0, c0, i0 and the sizes no, nr,
nc, ni, first/last flags) against a Python walk, for random layer and tile
sizes (tiles dividing the layer or not, one tile, chan_follow, OuterOnly from
the parameter), with next_i pulses spaced and back to back.

UZ_MUTATE=1 corrupts the expected nc of every third tile, so the pytest
wrapper proves the check fails when the two disagree.
UZ_VIOLATE=1 changes cols_i and tc_i while a layer runs, which the block's
TileSizesCurrent_A assertion must catch."""
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


def walk(cout, cin, rows, cols, to, ti, tr, tc, follow, outer_only):
    for o0 in range(0, cout, to):
        for r0 in range(0, rows, tr):
            for c0 in range(0, cols, tc):
                its = [o0] if (follow or outer_only) else list(range(0, cin, ti))
                for n, i0 in enumerate(its):
                    no = min(to, cout - o0)
                    # a POOL or depthwise tile reads its own channels, as
                    # many as the input has (16-bit, as the RTL subtracts)
                    ni = min(no, (cin - o0) & 0xFFFF) if follow else min(ti, cin - (0 if outer_only else i0))
                    yield dict(o0=o0, r0=r0, c0=c0, i0=i0 if not outer_only or follow else 0,
                               no=no, nr=min(tr, rows - r0), nc=min(tc, cols - c0), ni=ni,
                               first_ti=int(n == 0), last_ti=int(n == len(its) - 1))


async def _reset(dut):
    dut.rst_ni.value = 0
    dut.start_i.value = 0
    dut.next_i.value = 0
    dut.chan_follow_i.value = 0
    for p in ("cout_i", "cin_i", "rows_i", "cols_i", "to_i", "ti_i", "tr_i", "tc_i"):
        getattr(dut, p).value = 0
    for _ in range(2):
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1
    await FallingEdge(dut.clk_i)


@cocotb.test()
async def walk_matches(dut):
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    await _reset(dut)
    mutate = os.environ.get("UZ_MUTATE") == "1"
    violate = os.environ.get("UZ_VIOLATE") == "1"
    outer_only = int(os.environ.get("UZ_OUTER_ONLY", "0")) == 1
    rng = np.random.default_rng(int(os.environ.get("UZ_SEED", "1")))
    errors = tiles = 0
    for layer in range(40):
        cout, cin = 4 * int(rng.integers(1, 10)), 4 * int(rng.integers(1, 10))
        rows, cols = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        to, ti = 4 * int(rng.integers(1, 5)), 4 * int(rng.integers(1, 5))
        tr, tc = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        if layer == 0:                      # sizes near 16 bits: no wrap in the sums
            cols, tc = 0xFFF0, 0x7FFF
        follow = int(rng.integers(0, 3) == 0)
        vals = dict(cout_i=cout, cin_i=cin, rows_i=rows, cols_i=cols, to_i=to, ti_i=ti, tr_i=tr, tc_i=tc)
        for p, v in vals.items():
            getattr(dut, p).value = v
        dut.chan_follow_i.value = follow
        dut.start_i.value = 1
        await FallingEdge(dut.clk_i)
        dut.start_i.value = 0
        exp = list(walk(cout, cin, rows, cols, to, ti, tr, tc, follow, outer_only))
        for n, t in enumerate(exp):
            if layer == 0 and n == 3:       # the long layer: a few tiles are enough
                break
            assert int(dut.valid_o.value) == 1, f"layer {layer}: valid_o low at tile {n} of {len(exp)}"
            got = dict(o0=dut.o0_o, r0=dut.r0_o, c0=dut.c0_o, i0=dut.i0_o, no=dut.no_o, nr=dut.nr_o,
                       nc=dut.nc_o, ni=dut.ni_o, first_ti=dut.first_ti_o, last_ti=dut.last_ti_o)
            got = {k: int(v.value) for k, v in got.items()}
            want = dict(t)
            if mutate and tiles % 3 == 1:
                want["nc"] ^= 1
            tiles += 1
            if got != want:
                errors += 1
                if errors <= 5:
                    dut._log.error(f"layer {layer} tile {n}: expected {want}, got {got}")
            if int(dut.last_o.value) != int(n == len(exp) - 1):
                errors += 1
            if violate and layer == 1 and n == 0:
                dut.cols_i.value = 0            # layer fields changing under the walk
                dut.tc_i.value = 0
            for _ in range(int(rng.integers(0, 3))):
                await FallingEdge(dut.clk_i)
            dut.next_i.value = 1
            await FallingEdge(dut.clk_i)
            dut.next_i.value = 0
        else:
            assert int(dut.valid_o.value) == 0, f"layer {layer}: valid_o high after the last tile"
    assert errors == 0, f"{errors} of {tiles} tiles differ from the walk"
