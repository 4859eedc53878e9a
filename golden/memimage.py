"""External-memory image: regions and the data layouts the engine reads.

Layouts (all elements little-endian two's complement, ``data_bits`` wide):

* Activations, channel-grouped: a (C, H, W) tensor is stored as
  ``[ceil(C/G)][H][W][G]`` with G = PN (one on-chip buffer word is one pixel
  of G channels). Channels past C are zero. A tile of G channels x rows
  r0..r1 x all columns is one contiguous burst. An FC layer reads the
  previous layer's region as a flat vector in exactly this order (the
  compiler permutes the FC weights to match), so a (N, 1, 1) tensor is
  simply N (padded to G) consecutive elements.
* Raw weights, tiled: the (Cout, Cin, K, K) tensor is zero-padded to
  Cout' = roundup(Cout, PM) and Cin' = roundup(Cin, PN) and stored tile by
  tile, ``for to-tile: for ti-tile: [o in tile][ci in tile][ky][kx]``, so each
  weight tile is one contiguous burst.
  A decomposed kernel (isa.DECOMPOSED, k = 3S) stores each output
  channel's weights of a tile in the engine order (engine_order):
  ``[sub = a*S + b][ci in tile][ky][kx]`` = w[o, ci, 3a+ky, 3b+kx], the
  order its 3x3 sub-windows consume them; every other kernel keeps
  ``[ci][ky][kx]``.
* OVSF coefficients: the same tile order; inside a tile, per oc-group of PM
  output channels, per block of the tile's segment of a channel's
  engine-order vector, the PM channels' blocks in channel order, and per
  block its n_codes alphas in increasing code index (``alpha_bits`` wide).
  Consecutive blocks thus belong to different channels, i.e. to different
  banks of the weight buffer (bank = o mod PM), so the engine can generate
  several in one cycle and write them at one address. The blocks cut the
  whole engine-order vector (over Cin'); a decomposed layer's ti-tile
  covers one block range per sub-window (alpha_tile_ranges), taken in sub
  order as the tile's blocks: [q][b over the ranges][o mod PM][code].
* Bias: Cout' elements (zero past Cout).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import isa
from .config import EngineConfig
from .errors import MemoryLayoutError

REGION_ALIGN = 64


def round_up(v: int, m: int) -> int:
    return -(-v // m) * m


@dataclass
class Region:
    name: str
    addr: int
    size: int

    @property
    def end(self) -> int:
        return self.addr + self.size


class MemoryImage:
    """A byte image with named, non-overlapping regions."""

    def __init__(self, size_limit: int = 1 << 32):
        self.regions: list[Region] = []
        self.data = bytearray()
        self.size_limit = size_limit
        self._next = 0

    def place(self, name: str, addr: int, size: int) -> Region:
        if addr < 0 or size < 0:
            raise MemoryLayoutError(f"region {name!r}: negative address or size")
        if addr % REGION_ALIGN:
            raise MemoryLayoutError(f"region {name!r} at 0x{addr:X} not aligned to {REGION_ALIGN} bytes")
        r = Region(name, addr, size)
        if r.end > self.size_limit:
            raise MemoryLayoutError(f"region {name!r} [0x{addr:X}, 0x{r.end:X}) exceeds the "
                                    f"0x{self.size_limit:X}-byte address space")
        for o in self.regions:
            if o.name == name:
                raise MemoryLayoutError(f"region {name!r} defined twice")
            if r.addr < o.end and o.addr < r.end and size and o.size:
                raise MemoryLayoutError(
                    f"region {name!r} [0x{r.addr:X}, 0x{r.end:X}) overlaps region "
                    f"{o.name!r} [0x{o.addr:X}, 0x{o.end:X})")
        self.regions.append(r)
        self._next = max(self._next, round_up(r.end, REGION_ALIGN))
        if len(self.data) < r.end:
            self.data.extend(bytes(r.end - len(self.data)))
        return r

    def alloc(self, name: str, size: int) -> Region:
        return self.place(name, self._next, size)

    def region(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    def write(self, addr: int, data: bytes) -> None:
        end = addr + len(data)
        if len(self.data) < end:
            self.data.extend(bytes(end - len(self.data)))
        self.data[addr:end] = data

    def read(self, addr: int, size: int) -> bytes:
        if addr + size > len(self.data):
            raise MemoryLayoutError(f"read [0x{addr:X}, 0x{addr + size:X}) beyond the image")
        return bytes(self.data[addr:addr + size])

    def manifest(self) -> list[dict]:
        return [{"name": r.name, "addr": r.addr, "size": r.size} for r in self.regions]


# ------------------------------------------------------------ element codec

def _dtype(bits: int):
    return {8: np.dtype("<i1"), 16: np.dtype("<i2"), 32: np.dtype("<i4")}[bits]


def to_bytes(values: np.ndarray, bits: int) -> bytes:
    v = np.asarray(values, dtype=np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"value outside the {bits}-bit range")
    return v.astype(_dtype(bits)).tobytes()


def from_bytes(data: bytes, bits: int) -> np.ndarray:
    return np.frombuffer(data, dtype=_dtype(bits)).astype(np.int64)


# ------------------------------------------------------ activation layout

def act_elems(shape, g: int) -> int:
    c, h, w = shape
    return round_up(c, g) * h * w


def pack_act(x: np.ndarray, g: int) -> np.ndarray:
    """(C, H, W) -> flat element vector in [C/G][H][W][G] order."""
    c, h, w = x.shape
    cp = round_up(c, g)
    xp = np.zeros((cp, h, w), dtype=np.int64)
    xp[:c] = x
    return xp.reshape(cp // g, g, h, w).transpose(0, 2, 3, 1).reshape(-1)


def unpack_act(flat: np.ndarray, shape, g: int) -> np.ndarray:
    """Flat grouped vector -> (C', H, W) with C' = roundup(C, G) (pads kept)."""
    c, h, w = shape
    cp = round_up(c, g)
    return np.asarray(flat, dtype=np.int64).reshape(cp // g, h, w, g).transpose(0, 3, 1, 2).reshape(cp, h, w)


def fc_input_order(shape, g: int) -> np.ndarray:
    """For a (C, H, W) tensor flattened by an FC: index into the (c, h, w)
    flatten of each element of the grouped layout, or -1 for a pad channel."""
    c, h, w = shape
    idx = np.arange(c * h * w).reshape(c, h, w)
    cp = round_up(c, g)
    full = np.full((cp, h, w), -1, dtype=np.int64)
    full[:c] = idx
    return full.reshape(cp // g, g, h, w).transpose(0, 2, 3, 1).reshape(-1)


# --------------------------------------------------------- tiled weights

def tile_ranges(total: int, tile: int):
    return [(s, min(total, s + tile)) for s in range(0, total, tile)]


def pad_weights(w: np.ndarray, cfg: EngineConfig) -> np.ndarray:
    cout, cin, k, _ = w.shape
    out = np.zeros((round_up(cout, cfg.pm), round_up(cin, cfg.pn), k, k), dtype=np.int64)
    out[:cout, :cin] = w
    return out


def engine_perm(cin: int, k: int) -> np.ndarray:
    """One output channel's weights in the engine's order, as indices into
    its (cin, k, k) row-major vector: for a decomposed k (S = k/3 sub-windows
    per side), [sub = a*S + b][c][ky][kx] reads w[c, 3a+ky, 3b+kx]; else the
    identity."""
    s = isa.sub_windows(k)
    idx = np.arange(cin * k * k)
    if s == 1:
        return idx
    w = isa.SUB_K
    return idx.reshape(cin, s, w, s, w).transpose(1, 3, 0, 2, 4).reshape(-1)


def engine_order(w: np.ndarray) -> np.ndarray:
    """(Cout, Cin, K, K) -> (Cout, Cin*K*K), each channel's vector in engine order."""
    cout, cin, k, _ = w.shape
    return np.asarray(w).reshape(cout, -1)[:, engine_perm(cin, k)]


def packed_index(cin_pad: int, cing: int, k: int, pn: int) -> np.ndarray:
    """Where a layer with packed taps (isa.packed_taps) takes its wvec_len
    weights a channel from in its engine-order vector (cin_pad*k*k long):
    the first round_up(cing*k*k, PN); a decomposed kernel's, the first
    round_up(cing*9, PN) of each sub-window's part (cin_pad*9 long), so
    every sub-window starts a buffer word."""
    s = isa.sub_windows(k)
    wk2 = isa.window_k(k) ** 2
    chunk = -(-cing * wk2 // pn) * pn
    return np.concatenate([sub * cin_pad * wk2 + np.arange(chunk) for sub in range(s * s)])


def from_engine_order(v: np.ndarray, cin: int, k: int) -> np.ndarray:
    """Inverse of engine_order: (Cout, Cin*K*K) engine-order vectors -> (Cout, Cin, K, K)."""
    v = np.asarray(v)
    if v.ndim != 2 or v.shape[1] != cin * k * k:
        raise MemoryLayoutError(f"engine-order weights of shape {v.shape} do not hold {cin}x{k}x{k} "
                                f"weights per output channel")
    out = np.zeros_like(v)
    out[:, engine_perm(cin, k)] = v
    return out.reshape(v.shape[0], cin, k, k)


def pack_weights(w_pad: np.ndarray, to: int, ti: int) -> np.ndarray:
    """Padded (Cout', Cin', K, K) -> flat vector in tile order (each channel's
    tile segment in engine order)."""
    cout, cin = w_pad.shape[:2]
    parts = [engine_order(w_pad[o0:o1, i0:i1]).reshape(-1)
             for o0, o1 in tile_ranges(cout, to) for i0, i1 in tile_ranges(cin, ti)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def unpack_weights(flat: np.ndarray, shape_pad, to: int, ti: int) -> np.ndarray:
    cout, cin, k, _ = shape_pad
    w = np.zeros(shape_pad, dtype=np.int64)
    pos = 0
    for o0, o1 in tile_ranges(cout, to):
        for i0, i1 in tile_ranges(cin, ti):
            n = (o1 - o0) * (i1 - i0) * k * k
            w[o0:o1, i0:i1] = from_engine_order(np.asarray(flat[pos:pos + n]).reshape(o1 - o0, -1), i1 - i0, k)
            pos += n
    return w


def alpha_tile_blocks(i0: int, i1: int, k: int, length: int):
    """Block indices (within a channel's vector) covered by input channels
    i0..i1 of a kernel that is not decomposed (see alpha_tile_ranges)."""
    if isa.sub_windows(k) > 1:
        raise MemoryLayoutError(f"a decomposed k={k} tile covers one block range per sub-window: "
                                f"use alpha_tile_ranges")
    b0 = (i0 * k * k) // length
    b1 = -(-(i1 * k * k) // length)
    return b0, b1


def alpha_tile_ranges(i0: int, i1: int, k: int, length: int, cin_pad: int) -> list:
    """The block ranges [(b0, b1), ...] of a channel's engine-order vector
    that input channels i0..i1 cover, in the order the tile stores them: one
    range for an ordinary kernel, one per sub-window (sub order) for a
    decomposed one, whose vector is [sub][c in 0..cin_pad-1][ky][kx]."""
    s = isa.sub_windows(k)
    if s == 1:
        return [alpha_tile_blocks(i0, i1, k, length)]
    w2 = isa.SUB_K * isa.SUB_K
    return [((sub * cin_pad * w2 + i0 * w2) // length, -(-(sub * cin_pad * w2 + i1 * w2) // length))
            for sub in range(s * s)]


def pack_alphas(alpha: np.ndarray, cin_pad: int, k: int, length: int, to: int, ti: int,
                pm: int) -> np.ndarray:
    """alpha (Cout', nblocks, n_codes) -> flat vector in tile order, blocks of
    the pm channels of an oc-group interleaved: [q][b][o mod pm][code], b
    the tile's blocks (alpha_tile_ranges, in order)."""
    cout = alpha.shape[0]
    parts = []
    for o0, o1 in tile_ranges(cout, to):
        for i0, i1 in tile_ranges(cin_pad, ti):
            a = np.concatenate([alpha[o0:o1, b0:b1] for b0, b1 in alpha_tile_ranges(i0, i1, k, length, cin_pad)],
                               axis=1)
            parts.append(a.reshape((o1 - o0) // pm, pm, a.shape[1], -1).transpose(0, 2, 1, 3).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def unpack_alphas(flat: np.ndarray, cout: int, cin_pad: int, k: int, length: int, n_codes: int,
                  to: int, ti: int, pm: int) -> np.ndarray:
    nblocks = -(-(cin_pad * k * k) // length)
    alpha = np.zeros((cout, nblocks, n_codes), dtype=np.int64)
    pos = 0
    for o0, o1 in tile_ranges(cout, to):
        for i0, i1 in tile_ranges(cin_pad, ti):
            ranges = alpha_tile_ranges(i0, i1, k, length, cin_pad)
            nb = sum(b1 - b0 for b0, b1 in ranges)
            n = (o1 - o0) * nb * n_codes
            a = np.asarray(flat[pos:pos + n]).reshape((o1 - o0) // pm, nb, pm, n_codes)
            a = a.transpose(0, 2, 1, 3).reshape(o1 - o0, nb, n_codes)
            at = 0
            for b0, b1 in ranges:
                alpha[o0:o1, b0:b1] = a[:, at:at + b1 - b0]
                at += b1 - b0
            pos += n
    return alpha
