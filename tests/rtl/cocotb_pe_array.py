"""cocotb test of uz_pe_array against exact numpy integer sums.

Inputs change on the falling edge. An input driven in cycle n must appear on
the outputs in cycle n + Latency (sums and tag), and out_valid_o must be low
in every other cycle. Latency and SumWidth are checked against the formulas
documented in rtl/uz_pe_array.sv.

UZ_MUTATE=1 corrupts the expected values so the pytest wrapper can prove the
check fails when the RTL and the model disagree. UZ_SEED picks the seed.
"""
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from golden import arith


def _clog2(n: int) -> int:
    return (n - 1).bit_length()


def _random_word(rng, bits: int) -> int:
    return int.from_bytes(rng.bytes((bits + 7) // 8), "little") & ((1 << bits) - 1)


def _pack(values, width: int) -> int:
    m = (1 << width) - 1
    out = 0
    for k, v in enumerate(values):
        out |= (int(v) & m) << (k * width)
    return out


def _unpack_signed(word: int, n: int, width: int) -> list:
    m = (1 << width) - 1
    vals = [(word >> (k * width)) & m for k in range(n)]
    return [v - (1 << width) if v >> (width - 1) else v for v in vals]


def _vector(rng, pm: int, pn: int, d: int):
    """One input: activations (PM, PN), weights (PM, PN), lane enables (PN).
    Half the inputs broadcast one activation vector to every PE (a dense
    layer), the rest give each PE its own (a depthwise layer)."""
    lo, hi = arith.qmin(d), arith.qmax(d)
    mode = rng.choice(["rand", "rand", "rand", "min", "max", "minmax", "mix", "zero"])
    if mode == "rand":
        x = rng.integers(lo, hi + 1, size=pn)
        w = rng.integers(lo, hi + 1, size=(pm, pn))
    elif mode == "min":  # the largest positive sum
        x, w = np.full(pn, lo), np.full((pm, pn), lo)
    elif mode == "max":
        x, w = np.full(pn, hi), np.full((pm, pn), hi)
    elif mode == "minmax":  # the most negative sum
        x, w = np.full(pn, lo), np.full((pm, pn), hi)
    elif mode == "mix":
        x = rng.choice([lo, hi, 0, -1, 1], size=pn)
        w = rng.choice([lo, hi, 0, -1, 1], size=(pm, pn))
    else:
        x, w = np.zeros(pn, dtype=np.int64), rng.integers(lo, hi + 1, size=(pm, pn))
    if rng.random() < 0.5:
        x = np.tile(x, (pm, 1))
    else:
        x = rng.permuted(np.tile(x, (pm, 1)), axis=1) if mode != "rand" else rng.integers(lo, hi + 1, size=(pm, pn))
    r = rng.random()
    if r < 0.5:
        en = np.ones(pn, dtype=np.int64)
    elif r < 0.6:
        en = np.zeros(pn, dtype=np.int64)
    elif r < 0.8:  # input selection: the first lanes busy, the rest idle
        en = (np.arange(pn) < rng.integers(1, pn + 1)).astype(np.int64)
    else:
        en = rng.integers(0, 2, size=pn)
    return x.astype(np.int64), w.astype(np.int64), en


@cocotb.test()
async def sums_tags_and_latency(dut):
    pm, pn, d = int(dut.PM.value), int(dut.PN.value), int(dut.DataWidth.value)
    tw = int(dut.TagWidth.value)
    levels = _clog2(pn)
    latency = 1 + (levels + 1) // 2  # documented in rtl/uz_pe_array.sv
    sum_w = 2 * d + levels
    assert len(dut.out_sum_o) == pm * sum_w, f"out_sum_o is {len(dut.out_sum_o)} bits, expected PM*SumWidth"
    assert len(dut.in_w_i) == pm * pn * d and len(dut.in_x_i) == pm * pn * d and len(dut.in_lane_en_i) == pn
    # The RTL's own localparams, where the simulator exposes them.
    for name, want in (("Latency", latency), ("SumWidth", sum_w)):
        try:
            got = int(getattr(dut, name).value)
        except AttributeError:
            dut._log.info(f"localparam {name} not visible to this simulator")
            continue
        assert got == want, f"{name} = {got}, documented {want}"

    mutate = os.environ.get("UZ_MUTATE") == "1"
    rng = np.random.default_rng([int(os.environ.get("UZ_SEED", "1")), 3])
    icarus = cocotb.SIM_NAME.lower().startswith("icarus")
    n_cycles = (250 if pm * pn > 64 else 700) if icarus else 2500

    Clock(dut.clk_i, 10, unit="ns").start()
    dut.rst_ni.value = 0
    dut.in_valid_i.value = 0
    dut.in_x_i.value = 0
    dut.in_w_i.value = 0
    dut.in_lane_en_i.value = 0
    dut.in_tag_i.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk_i)
    dut.rst_ni.value = 1

    pending = {}  # cycle -> (sums, tag) expected in that cycle
    errors = checked = n_inputs = 0
    for cyc in range(n_cycles + latency + 2):
        await FallingEdge(dut.clk_i)
        # Phases: back-to-back inputs, then random gaps, then sparse inputs.
        p_valid = 1.0 if cyc < n_cycles // 3 else (0.6 if cyc < 2 * n_cycles // 3 else 0.2)
        if cyc < n_cycles and rng.random() < p_valid:
            x, w, en = _vector(rng, pm, pn, d)
            tag = int(rng.integers(0, 1 << tw))
            dut.in_x_i.value = _pack(x.reshape(-1), d)  # PE p lane j at p*PN + j
            dut.in_w_i.value = _pack(w.reshape(-1), d)  # PE p lane j at p*PN + j
            dut.in_lane_en_i.value = _pack(en, 1)
            dut.in_tag_i.value = tag
            dut.in_valid_i.value = 1
            sums = [int(s) for s in (w * x * en[None, :]).sum(axis=1)]
            if mutate and n_inputs == 0:
                sums[0] ^= 1
            n_inputs += 1
            pending[cyc + latency] = (sums, tag)
        else:
            # Idle cycles carry garbage that must not show up anywhere.
            dut.in_valid_i.value = 0
            dut.in_x_i.value = _random_word(rng, pm * pn * d)
            dut.in_w_i.value = _random_word(rng, pm * pn * d)
            dut.in_lane_en_i.value = _random_word(rng, pn)
            dut.in_tag_i.value = _random_word(rng, tw)
        await ReadOnly()
        valid = int(dut.out_valid_o.value)
        want = pending.pop(cyc, None)
        if want is None:
            if valid:
                errors += 1
                dut._log.error(f"cycle {cyc}: out_valid_o high with no input {latency} cycles before")
            continue
        checked += 1
        if not valid:
            errors += 1
            dut._log.error(f"cycle {cyc}: out_valid_o low, an input was due (latency {latency})")
            continue
        got = _unpack_signed(int(dut.out_sum_o.value), pm, sum_w)
        tag = int(dut.out_tag_o.value)
        if got != want[0] or tag != want[1]:
            errors += 1
            if errors <= 5:
                dut._log.error(f"cycle {cyc}: expected sums {want[0]} tag {want[1]}, got {got} tag {tag}")
    assert not pending, f"{len(pending)} inputs never checked"
    assert errors == 0, f"{errors} of {checked} outputs wrong"
    dut._log.info(f"{checked} vectors, latency {latency}, SumWidth {sum_w}")
