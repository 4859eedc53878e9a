"""cocotb test of uz_seq_mul: a_i * b_i modulo 2^32, done_o one cycle after
req_i, for random and extreme operands, back-to-back and spaced requests,
and a clear_i that drops a product under way.

UZ_MUTATE=1 corrupts the expected product of every odd request, so the
pytest wrapper proves the check fails when the two disagree.
UZ_VIOLATE=1 changes a_i while a product is under way, which the block's
SeqMulOperandsHeld_A assertion must catch."""
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

MASK32 = (1 << 32) - 1


async def _reset(dut):
    dut.rst_ni.value = 0
    dut.clear_i.value = 0
    dut.req_i.value = 0
    dut.a_i.value = 0
    dut.b_i.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1
    await FallingEdge(dut.clk_i)


async def _product(dut, a: int, b: int, gap: int) -> int:
    """Request a*b at a falling edge, hold the operands until done_o; return
    p_o. done_o must rise exactly one cycle after the request."""
    dut.a_i.value = a
    dut.b_i.value = b
    dut.req_i.value = 1
    await FallingEdge(dut.clk_i)
    assert int(dut.done_o.value) == 1, f"{a}*{b}: done_o is not high one cycle after req_i"
    got = int(dut.p_o.value)
    if os.environ.get("UZ_VIOLATE") == "1":
        dut.a_i.value = a ^ 1          # operands must hold through done_o
    dut.req_i.value = 0
    await FallingEdge(dut.clk_i)
    assert int(dut.done_o.value) == 0, f"{a}*{b}: done_o stays high after the product"
    for _ in range(gap):
        await FallingEdge(dut.clk_i)
    return got


@cocotb.test()
async def products_match(dut):
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    await _reset(dut)
    mutate = os.environ.get("UZ_MUTATE") == "1"
    rng = np.random.default_rng(int(os.environ.get("UZ_SEED", "1")))
    ends_a = (0, 1, 0xFFFF, 0x10000, 0xFFFF_FFFF, 0x8000_0000, 0x1234_5678)
    ends_b = (0, 1, 0xFFFF, 0x8000, 3)
    cases = [(a, b) for a in ends_a for b in ends_b]
    cases += [(int(rng.integers(0, 1 << 32)), int(rng.integers(0, 1 << 16))) for _ in range(500)]
    errors = 0
    for n, (a, b) in enumerate(cases):
        # back to back (the next request in the cycle after done_o) or spaced
        got = await _product(dut, a, b, gap=int(rng.integers(0, 3)))
        exp = (a * b) & MASK32
        if mutate and n % 2:
            exp ^= 1
        if got != exp:
            errors += 1
            if errors <= 5:
                dut._log.error(f"{a:#x} * {b:#x}: expected {exp:#x}, got {got:#x}")
    # clear_i in the first cycle drops the product: no done_o follows
    dut.a_i.value, dut.b_i.value, dut.req_i.value, dut.clear_i.value = 7, 9, 1, 1
    await FallingEdge(dut.clk_i)
    dut.req_i.value, dut.clear_i.value = 0, 0
    assert int(dut.done_o.value) == 0, "done_o after a request that clear_i dropped"
    await FallingEdge(dut.clk_i)
    assert int(dut.done_o.value) == 0, "done_o after a request that clear_i dropped"
    # and the next product is right
    got = await _product(dut, 0xDEAD_BEEF, 0xCAFE, gap=0)
    if got != (0xDEAD_BEEF * 0xCAFE) & MASK32:
        errors += 1
    assert errors == 0, f"{errors} of {len(cases) + 1} products differ from a * b mod 2^32"
