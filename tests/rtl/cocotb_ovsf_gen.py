"""cocotb tests of uz_ovsf_gen against golden.ovsf (generate, generate_layer).

A single-threaded driver works on the falling edge: it sets the inputs for the
next rising edge, waits for ReadOnly, and reads the handshakes that edge will
make. A transfer carries 1..Blocks blocks of one layer (random counts, junk in
the unused blocks). Every accepted block must come out once, in order, bit
exact, with its transfer's count on w_blocks_o; while w_valid_o is held back
by w_ready_i the output must not change.

UZ_MUTATE=1 corrupts the expected values so the pytest wrapper can prove the
checks fail when the RTL and the golden model disagree. UZ_SEED picks the seed.
"""
import os
from fractions import Fraction

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from golden import arith, ovsf

LATENCY = 3  # rtl/uz_ovsf_gen.sv Latency


def _is_icarus() -> bool:
    return cocotb.SIM_NAME.lower().startswith("icarus")


def _mutate() -> bool:
    return os.environ.get("UZ_MUTATE") == "1"


def _rng(salt: int) -> np.random.Generator:
    return np.random.default_rng([int(os.environ.get("UZ_SEED", "1")), salt])


class Params:
    def __init__(self, dut):
        self.L = int(dut.OvsfLen.value)
        self.A = int(dut.AlphaWidth.value)
        self.D = int(dut.DataWidth.value)
        self.B = int(dut.Blocks.value)
        self.lg = self.L.bit_length() - 1
        self.cnt_bits = len(dut.n_codes_i)
        # The shifts the generator covers (golden's rule, the RTL's defaults).
        self.smin, self.smax = ovsf.gen_shift_bounds(self.L, self.A, self.D)
        assert (_signed_param(dut.GenShiftMin), _signed_param(dut.GenShiftMax)) == (self.smin, self.smax)
        assert len(dut.alpha_i) == self.B * self.L * self.A
        assert len(dut.w_o) == self.B * self.L * self.D
        assert len(dut.alpha_blocks_i) == len(dut.w_blocks_o) == self.B.bit_length()
        assert len(dut.code_mask_i) == self.L
        assert self.cnt_bits == self.L.bit_length()  # clog2(L + 1)


def _signed_param(handle) -> int:
    v = handle.value
    return int(v.to_signed()) if hasattr(v, "to_signed") else int(v)


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


def _random_word(rng, bits: int) -> int:
    return int.from_bytes(rng.bytes((bits + 7) // 8), "little") & ((1 << bits) - 1)


async def _reset(dut):
    Clock(dut.clk_i, 10, unit="ns").start()
    dut.rst_ni.value = 0
    dut.alpha_valid_i.value = 0
    dut.w_ready_i.value = 0
    dut.alpha_i.value = 0
    dut.alpha_blocks_i.value = 1
    dut.code_mask_i.value = 1
    dut.n_codes_i.value = 1
    dut.gen_shift_i.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk_i)
    dut.rst_ni.value = 1
    await FallingEdge(dut.clk_i)


async def _stream(dut, p: Params, items, rng, p_gap: float, p_stall: float, full: bool = False):
    """Drive ``items`` (mask, n_codes, gen_shift, alpha lanes) through the
    generator, in transfers of 1..Blocks consecutive items of one layer
    (``full``: as many as possible). Returns the output blocks, and per
    transfer the cycle it was accepted and the cycle it was taken."""
    outs, acc_cycle, out_cycle = [], [], []
    sent = []  # block count of every accepted transfer, in order
    nxt = 0
    offering = 0  # blocks in the transfer offered, 0 when none
    held = None  # (w_o, w_blocks_o) of a transfer shown but not taken in the previous cycle
    limit = 40 * len(items) + 200
    for cyc in range(limit):
        if len(outs) == len(items):
            break
        await FallingEdge(dut.clk_i)
        if not offering:
            if nxt < len(items) and rng.random() >= p_gap:
                mask, n, shift, _ = items[nxt]
                cnt = 1
                while (cnt < p.B and nxt + cnt < len(items) and items[nxt + cnt][:3] == (mask, n, shift)):
                    cnt += 1
                if not full:
                    cnt = int(rng.integers(1, cnt + 1))
                lanes = []
                for b in range(p.B):
                    lanes += items[nxt + b][3] if b < cnt else _random_alphas(rng, p, 0)
                dut.code_mask_i.value = mask
                dut.n_codes_i.value = n
                dut.gen_shift_i.value = shift & 0xFF
                dut.alpha_i.value = _pack(lanes, p.A)
                dut.alpha_blocks_i.value = cnt
                dut.alpha_valid_i.value = 1
                offering = cnt
            else:
                # Not offering: every other input is free to change.
                dut.alpha_valid_i.value = 0
                dut.alpha_i.value = _random_word(rng, p.B * p.L * p.A)
                dut.alpha_blocks_i.value = int(rng.integers(0, 1 << len(dut.alpha_blocks_i)))
                dut.code_mask_i.value = int(rng.integers(0, 1 << p.L))
                dut.n_codes_i.value = int(rng.integers(0, 1 << p.cnt_bits))
                dut.gen_shift_i.value = int(rng.integers(0, 256))
        ready_out = rng.random() >= p_stall
        dut.w_ready_i.value = int(ready_out)
        await ReadOnly()
        w_valid = int(dut.w_valid_o.value)
        if held is not None:
            assert w_valid == 1, f"cycle {cyc}: w_valid_o dropped while back-pressured"
            assert (int(dut.w_o.value), int(dut.w_blocks_o.value)) == held, \
                f"cycle {cyc}: w_o or w_blocks_o changed while back-pressured"
            held = None
        if w_valid:
            word, nb = int(dut.w_o.value), int(dut.w_blocks_o.value)
            if ready_out:
                assert sent, f"cycle {cyc}: a transfer came out that was never accepted"
                assert nb == sent[0], f"cycle {cyc}: w_blocks_o {nb}, transfer had {sent[0]} blocks"
                sent.pop(0)
                outs += [_unpack_signed(word >> (b * p.L * p.D), p.L, p.D) for b in range(nb)]
                out_cycle.append(cyc)
            else:
                held = (word, nb)
        if offering and int(dut.alpha_ready_o.value):
            sent.append(offering)
            nxt += offering
            offering = 0
            acc_cycle.append(cyc)
    assert len(outs) == len(items), f"{len(items)} blocks in, {len(outs)} out after {limit} cycles"
    # Nothing more may come out (no duplicates).
    await FallingEdge(dut.clk_i)
    dut.alpha_valid_i.value = 0
    dut.w_ready_i.value = 1
    for _ in range(2 * LATENCY + 2):
        await ReadOnly()
        assert int(dut.w_valid_o.value) == 0, "more blocks came out than went in"
        await FallingEdge(dut.clk_i)
    return outs, acc_cycle, out_cycle


def _compare(dut, got, expected, what: str):
    if _mutate() and expected:
        expected[0][0] ^= 1
    errors = 0
    for b, (g, e) in enumerate(zip(got, expected)):
        if list(g) != [int(v) for v in e]:
            errors += 1
            if errors <= 5:
                dut._log.error(f"{what} block {b}: expected {list(map(int, e))}, got {g}")
    assert errors == 0, f"{what}: {errors} of {len(expected)} blocks differ from golden.ovsf"


def _random_alphas(rng, p: Params, n: int) -> list:
    lo, hi = arith.qmin(p.A), arith.qmax(p.A)
    mode = rng.choice(["rand", "rand", "min", "max", "minmax", "zero", "small"])
    if mode == "rand":
        a = rng.integers(lo, hi + 1, size=n)
    elif mode == "min":
        a = np.full(n, lo)
    elif mode == "max":
        a = np.full(n, hi)
    elif mode == "minmax":
        a = rng.choice([lo, hi], size=n)
    elif mode == "zero":
        a = np.zeros(n, dtype=np.int64)
    else:  # small values: rounding ties at small shifts
        a = rng.integers(-4, 5, size=n)
    # Lanes past n_codes carry garbage that must not matter.
    junk = rng.integers(lo, hi + 1, size=p.L - n)
    return [int(v) for v in a] + [int(v) for v in junk]


def _random_layer_constants(rng, p: Params):
    n = int(rng.integers(1, p.L + 1))
    special = rng.random()
    if special < 0.1:
        codes = list(range(p.L - n, p.L))  # the top codes
    elif special < 0.2:
        codes = list(range(n))  # the bottom codes
    else:
        codes = sorted(int(j) for j in rng.choice(p.L, size=n, replace=False))
    shift = int(rng.integers(p.smin, p.smax + 1))
    return codes, shift


@cocotb.test()
async def random_blocks_match_generate(dut):
    """Random masks, n_codes 1..L, extreme and random alphas, gen_shift over
    the generator's range (GenShiftMin..GenShiftMax); constants change
    between back-to-back layers."""
    p = Params(dut)
    rng = _rng(1)
    await _reset(dut)
    n_blocks = (160 if p.L <= 16 else 60) if _is_icarus() else 700

    items, expected = [], []
    while len(items) < n_blocks:
        codes, shift = _random_layer_constants(rng, p)
        mask, n = ovsf.codes_mask(codes), len(codes)
        for _ in range(int(rng.integers(1, 9))):
            lanes = _random_alphas(rng, p, n)
            items.append((mask, n, shift, lanes))
            expected.append(ovsf.generate(np.array(lanes[:n]), codes, p.L, shift, p.D))
    # Every n_codes and both ends of the shift range at least once, with
    # all-min alphas (the largest sums).
    lo = arith.qmin(p.A)
    for n in range(1, p.L + 1):
        for shift in (p.smin, p.smax, p.lg):
            codes = list(range(p.L - n, p.L))
            items.append((ovsf.codes_mask(codes), n, shift, [lo] * p.L))
            expected.append(ovsf.generate(np.full(n, lo), codes, p.L, shift, p.D))

    # Full speed first: one transfer per cycle and the documented latency.
    burst = 3 * LATENCY + 8
    got, acc, out = await _stream(dut, p, items[:burst], rng, 0.0, 0.0, full=True)
    assert acc == list(range(acc[0], acc[0] + len(acc))), "not one transfer per cycle without back-pressure"
    lat = {o - a for a, o in zip(acc, out)}
    assert lat == {LATENCY}, f"latency {sorted(lat)}, documented {LATENCY}"
    _compare(dut, got, expected[:burst], "burst")

    # Then random gaps and back-pressure, light and heavy.
    rest = items[burst:]
    half = len(rest) // 2
    got1, _, _ = await _stream(dut, p, rest[:half], rng, 0.3, 0.3)
    got2, _, _ = await _stream(dut, p, rest[half:], rng, 0.1, 0.8)
    _compare(dut, got1 + got2, expected[burst:], "random")
    # A spot check that generate agrees with its scalar reference.
    m, n, s, lanes = items[-1]
    codes = [j for j in range(p.L) if m >> j & 1]
    assert np.array_equal(ovsf.generate(np.array(lanes[:n]), codes, p.L, s, p.D),
                          ovsf.generate_reference(np.array(lanes[:n]), codes, p.L, s, p.D))


@cocotb.test()
async def whole_layers_match_generate_layer(dut):
    """Layers decomposed by golden.ovsf.decompose, fed block by block, back to
    back, against golden.ovsf.generate_layer."""
    p = Params(dut)
    rng = _rng(2)
    await _reset(dut)
    shapes = [(3, 2, 3, 3), (2, 5, 1, 1)] if _is_icarus() else [(6, 5, 3, 3), (4, 3, 3, 3), (3, 7, 1, 1)]
    items, expected, exact = [], [], []
    for shape in shapes:
        for n in sorted({1, max(1, p.L // 4), p.L // 2, p.L}):
            if rng.random() < 0.5:
                w_q = rng.integers(arith.qmin(p.D), arith.qmax(p.D) + 1, size=shape)
            else:  # smaller, smoother weights, closer to a trained filter
                real = np.cumsum(rng.normal(size=int(np.prod(shape)))).reshape(shape)
                w_q = arith.quantize(real / np.max(np.abs(real)) / 4, p.D - 1, p.D).astype(np.int64)
            fl_w = int(rng.integers(p.D - 4, p.D))
            layer = ovsf.decompose(w_q, fl_w, Fraction(n, p.L), p.L, p.A, p.D)
            assert p.smin <= layer.gen_shift <= p.smax
            blocks = ovsf.generate_layer(layer, p.D).reshape(-1, p.L)
            alphas = layer.alpha_q.reshape(-1, layer.n_codes)
            for a, w in zip(alphas, blocks):
                junk = rng.integers(arith.qmin(p.A), arith.qmax(p.A) + 1, size=p.L - layer.n_codes)
                items.append((layer.mask, layer.n_codes, layer.gen_shift, [int(v) for v in a] + [int(v) for v in junk]))
                expected.append(w)
            if n == p.L and p.A >= p.D + p.lg:
                exact.append((len(expected) - len(blocks), ovsf.to_blocks(w_q, p.L).reshape(-1, p.L)))
    got, _, _ = await _stream(dut, p, items, rng, 0.2, 0.4)
    _compare(dut, got, expected, "layer")
    # rho = 1 with wide enough alphas: the weights come back bit for bit.
    for start, w_blocks in exact:
        assert np.array_equal(np.array(got[start:start + len(w_blocks)]), w_blocks), "rho = 1 not exact"
    dut._log.info(f"{len(items)} layer blocks, {len(exact)} exact layers")


@cocotb.test(skip=os.environ.get("UZ_GEN_SHIFT_OUT") not in ("lo", "hi"))
async def shift_outside_range_is_caught(dut):
    """A block accepted with gen_shift one past the range (UZ_GEN_SHIFT_OUT =
    lo or hi) must trip GenShiftInRange_A: the simulation, not this test, ends
    the run (the pytest wrapper expects the failure)."""
    p = Params(dut)
    await _reset(dut)
    shift = p.smin - 1 if os.environ["UZ_GEN_SHIFT_OUT"] == "lo" else p.smax + 1
    dut.gen_shift_i.value = shift & 0xFF
    dut.alpha_valid_i.value = 1
    dut.w_ready_i.value = 1
    await FallingEdge(dut.clk_i)
    dut.alpha_valid_i.value = 0
    for _ in range(LATENCY + 3):
        await FallingEdge(dut.clk_i)
