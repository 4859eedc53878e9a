"""cocotb test of uz_shift_round_sat against golden.arith.shift_round_sat.

UZ_MUTATE=1 corrupts the expected values so the pytest wrapper can prove the
check fails when the two disagree. With PreDecoded = 1 the shift goes in
decoded, as uz_post and uz_compute register it: t = clamp(shift + OutWidth,
0, InWidth + OutWidth); the amounts are those of an 8-bit shift. Bounded
(TMin, TMax narrower than 0..InWidth + OutWidth, as uz_ovsf_gen's
generator shift): every amount whose t lies in TMin..TMax, PreDecoded as
t - TMin."""
import os

import cocotb
import numpy as np
from cocotb.triggers import Timer

from golden import arith


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


@cocotb.test()
async def shift_matches_golden(dut):
    in_w = int(dut.InWidth.value)
    out_w = int(dut.OutWidth.value)
    sh_w = int(dut.ShiftWidth.value)
    pre = int(dut.PreDecoded.value) == 1
    t_min, t_max = int(dut.TMin.value), int(dut.TMax.value)
    bounded = (t_min, t_max) != (0, in_w + out_w)
    if pre:
        sh_w = 8            # the amounts; shift_i carries their t
    mutate = os.environ.get("UZ_MUTATE") == "1"
    rng = np.random.default_rng(int(os.environ.get("UZ_SEED", "1")))
    lo, hi = -(1 << (in_w - 1)), (1 << (in_w - 1)) - 1
    smin, smax = -(1 << (sh_w - 1)), (1 << (sh_w - 1)) - 1
    cases = [(x, s) for x in (lo, hi, 0, -1, 1, 5, -5, 3, -3) for s in (smin, -out_w - 1, -1, 0, 1, 2, in_w, smax)]
    for _ in range(3000):
        width = int(rng.integers(1, in_w + 1))
        x = int(rng.integers(-(1 << (width - 1)), 1 << (width - 1)))
        s = int(rng.integers(max(smin, -out_w - 2), min(smax, in_w + 2) + 1))
        cases.append((x, s))
    if bounded:
        # the whole range the parameters cover, and nothing outside it
        shifts = range(max(smin, t_min - out_w), min(smax, t_max - out_w) + 1)
        cases = [(x, s) for x, s in cases if s in shifts]
        cases += [(x, s) for x in (lo, hi, 0, -1, 1, 5, -5, 3, -3, lo + 1, hi - 1) for s in shifts]
        cases += [(int(rng.integers(lo, hi + 1)), int(rng.choice(shifts))) for _ in range(2000)]
    errors = 0
    for x, s in cases:
        dut.data_i.value = x & ((1 << in_w) - 1)
        if pre:
            dut.shift_i.value = min(max(s + out_w, 0), in_w + out_w) - t_min
        else:
            dut.shift_i.value = s & ((1 << sh_w) - 1)
        await Timer(1, unit="ns")
        got = _signed(int(dut.data_o.value), out_w)
        exp = arith.shift_round_sat(x, s, out_w) + (1 if mutate and s == 1 else 0)
        if got != exp:
            errors += 1
            if errors <= 5:
                dut._log.error(f"x={x} shift={s}: expected {exp}, got {got}")
    assert errors == 0, f"{errors} of {len(cases)} vectors differ from golden.arith.shift_round_sat"
