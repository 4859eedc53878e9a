"""External-memory image: the element layouts the engine reads and the region
bookkeeping that keeps buffers from overlapping."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from golden import compiler, funcmodel, isa, layers, memimage
from golden.config import EngineConfig
from golden.errors import MemoryLayoutError, UzError
from golden.memimage import MemoryImage
from golden.network import load_network


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# ------------------------------------------------------ activation layout

@pytest.mark.parametrize("shape,g", [((1, 3, 4), 16), ((5, 2, 3), 4), ((16, 3, 3), 16),
                                     ((17, 2, 5), 16), ((33, 1, 1), 16), ((7, 4, 1), 8)])
def test_pack_act_layout_and_round_trip(shape, g):
    c, h, w = shape
    x = _rng("act", shape, g).integers(-(1 << 15), 1 << 15, size=shape)
    flat = memimage.pack_act(x, g)
    assert flat.size == memimage.act_elems(shape, g) == memimage.round_up(c, g) * h * w
    # The documented order [C/G][H][W][G], element by element.
    for ci in range(memimage.round_up(c, g)):
        for y in range(h):
            for xx in range(w):
                idx = (((ci // g) * h + y) * w + xx) * g + ci % g
                assert flat[idx] == (x[ci, y, xx] if ci < c else 0)
    back = memimage.unpack_act(flat, shape, g)
    assert back.shape == (memimage.round_up(c, g), h, w)
    assert np.array_equal(back[:c], x)
    assert not back[c:].any()  # pad channels are zero


@pytest.mark.parametrize("shape,g", [((3, 4, 4), 16), ((20, 2, 3), 16), ((32, 1, 1), 16), ((6, 3, 2), 4)])
def test_fc_input_order_matches_pack_act(shape, g):
    x = _rng("fc", shape).integers(1, 1000, size=shape)  # no zeros: pads stand out
    order = memimage.fc_input_order(shape, g)
    flat = memimage.pack_act(x, g)
    assert order.size == flat.size
    valid = order >= 0
    assert np.array_equal(flat[valid], x.reshape(-1)[order[valid]])
    assert not flat[~valid].any()
    assert (~valid).sum() == (memimage.round_up(shape[0], g) - shape[0]) * shape[1] * shape[2]
    assert np.array_equal(np.sort(order[valid]), np.arange(x.size))  # a permutation


def test_fc_weight_permutation_gives_the_flatten_product():
    """The permuted FC weights on the grouped layout equal the plain FC on the (c,h,w) flatten."""
    rng = _rng("fcw")
    shape = (5, 3, 2)
    x = rng.integers(-50, 50, size=shape)
    w = rng.integers(-50, 50, size=(7, 30))
    wl = compiler.fc_weight_to_layout(w, shape, 4)
    got = wl[:, :, 0, 0] @ compiler.flatten_for_fc(x, 4).reshape(-1)
    assert np.array_equal(got, w @ x.reshape(-1))


# --------------------------------------------------------- tiled weights

@pytest.mark.parametrize("cout,cin,k,to,ti", [(48, 48, 3, 32, 32), (16, 16, 1, 16, 16), (32, 80, 1, 16, 48),
                                              (16, 32, 5, 16, 16)])
def test_weights_round_trip_with_partial_tiles(cout, cin, k, to, ti):
    w = _rng("w", cout, cin, k).integers(-(1 << 15), 1 << 15, size=(cout, cin, k, k))
    flat = memimage.pack_weights(w, to, ti)
    assert flat.size == w.size
    assert np.array_equal(memimage.unpack_weights(flat, w.shape, to, ti), w)
    # Tile order: the first tile is one contiguous burst of [o][ci][ky][kx].
    t0 = min(to, cout) * min(ti, cin) * k * k
    assert np.array_equal(flat[:t0], w[:to, :ti].reshape(-1))
    # The last tile is the (possibly partial) corner, at the end.
    o0 = (cout - 1) // to * to
    i0 = (cin - 1) // ti * ti
    tail = w[o0:, i0:].reshape(-1)
    assert np.array_equal(flat[-tail.size:], tail)


def test_pad_weights_pads_with_zeros():
    cfg = EngineConfig()
    w = _rng("pad").integers(-9, 10, size=(5, 3, 3, 3))
    p = memimage.pad_weights(w, cfg)
    assert p.shape == (16, 16, 3, 3)
    assert np.array_equal(p[:5, :3], w)
    assert not p[5:].any() and not p[:, 3:].any()


@pytest.mark.parametrize("cout,cin_pad,k,L,n_codes,to,ti,pm", [(48, 48, 3, 16, 4, 32, 32, 16),
                                                               (32, 16, 1, 16, 16, 16, 16, 16),
                                                               (16, 64, 1, 8, 2, 16, 32, 8),
                                                               (32, 32, 5, 16, 8, 32, 16, 16)])
def test_alphas_round_trip_with_partial_tiles(cout, cin_pad, k, L, n_codes, to, ti, pm):
    nblocks = -(-(cin_pad * k * k) // L)
    alpha = _rng("a", cout, cin_pad, k, L).integers(-(1 << 15), 1 << 15, size=(cout, nblocks, n_codes))
    flat = memimage.pack_alphas(alpha, cin_pad, k, L, to, ti, pm)
    assert flat.size == alpha.size  # tiles of whole blocks: nothing stored twice
    assert np.array_equal(memimage.unpack_alphas(flat, cout, cin_pad, k, L, n_codes, to, ti, pm), alpha)
    # First tile: per oc-group, block b of its pm channels one after the other
    # (consecutive blocks go to different weight-buffer banks).
    b1 = -(-(min(ti, cin_pad) * k * k) // L)
    pos = 0
    for q in range(min(to, cout) // pm):
        for b in range(b1):
            for m in range(pm):
                assert np.array_equal(flat[pos:pos + n_codes], alpha[q * pm + m, b]), (q, b, m)
                pos += n_codes


@pytest.mark.parametrize("bits", [8, 16, 32])
def test_element_codec_round_trip_and_range(bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    v = np.array([lo, -1, 0, 1, hi])
    data = memimage.to_bytes(v, bits)
    assert len(data) == v.size * bits // 8
    assert data[:bits // 8] == lo.to_bytes(bits // 8, "little", signed=True)
    assert np.array_equal(memimage.from_bytes(data, bits), v)
    for bad in (lo - 1, hi + 1):
        with pytest.raises(ValueError, match=f"{bits}-bit"):
            memimage.to_bytes(np.array([bad]), bits)


# ---------------------------------------------------------------- regions

def test_place_and_alloc():
    img = MemoryImage()
    a = img.alloc("a", 100)
    b = img.alloc("b", 10)
    assert (a.addr, b.addr) == (0, 128)  # next region aligned
    c = img.place("c", 0x1000, 64)
    d = img.alloc("d", 1)
    assert d.addr == 0x1040  # allocation continues after the highest region
    assert img.region("c") is c
    assert len(img.data) == d.end
    assert [r["name"] for r in img.manifest()] == ["a", "b", "c", "d"]
    with pytest.raises(KeyError):
        img.region("nope")


@pytest.mark.parametrize("addr,size", [(0, 0x41), (64, 64), (0x40, 1), (0x7C0, 0x100), (0, 0x1000)])
def test_overlap_names_both_regions(addr, size):
    img = MemoryImage()
    img.place("weights", 0x40, 0x7C0)   # [0x40, 0x800)
    with pytest.raises(MemoryLayoutError) as e:
        img.place("acts", addr, size)
    msg = str(e.value)
    assert "'acts'" in msg and "'weights'" in msg and "overlaps" in msg
    assert [r.name for r in img.regions] == ["weights"]  # nothing half-placed


def test_adjacent_regions_do_not_overlap():
    img = MemoryImage()
    img.place("a", 0x40, 0x40)
    img.place("b", 0x80, 0x40)
    img.place("c", 0x0, 0x40)
    assert len(img.regions) == 3


def test_misaligned_duplicate_negative_and_too_large_rejected():
    img = MemoryImage(size_limit=0x1000)
    with pytest.raises(MemoryLayoutError, match=r"'x' at 0x20 not aligned to 64"):
        img.place("x", 0x20, 16)
    img.place("x", 0x0, 16)
    with pytest.raises(MemoryLayoutError, match="'x' defined twice"):
        img.place("x", 0x400, 16)
    with pytest.raises(MemoryLayoutError, match="'y': negative"):
        img.place("y", -64, 16)
    with pytest.raises(MemoryLayoutError, match="'z'.*exceeds"):
        img.place("z", 0xFC0, 0x80)
    with pytest.raises(MemoryLayoutError, match="beyond the image"):
        img.read(0, 0x100)
    assert isinstance(MemoryLayoutError("m"), UzError)


# ----------------------------------------------- build_image and placement

@pytest.fixture(scope="module")
def small_prog():
    spec = {"name": "small", "input_shape": [3, 8, 8], "weights": {"seed": 3}, "layers": [
        {"name": "c1", "type": "conv", "out_channels": 20, "kernel": 3, "pad": 1},
        {"name": "r1", "type": "relu"},
        {"name": "f1", "type": "fc", "out_features": 5}]}
    net = load_network(spec)
    x = _rng("small").normal(size=(2, 3, 8, 8))
    cfg = EngineConfig()
    return net, cfg, x, compiler.compile_network(net, cfg, x)


def _run_both(prog, x):
    xq = compiler.load_input(prog, x)
    ref = compiler.run_network(prog, xq)
    funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), prog.cfg)
    return ref, [compiler.layer_output(prog, i) for i in range(len(prog.layers))]


def test_build_image_regions_are_disjoint_and_aligned(small_prog):
    _, cfg, _, prog = small_prog
    regs = sorted(prog.image.regions, key=lambda r: r.addr)
    for a, b in zip(regs, regs[1:]):
        assert a.end <= b.addr
    assert all(r.addr % memimage.REGION_ALIGN == 0 and r.size % cfg.bus_bytes == 0 for r in regs)
    names = {r.name for r in regs}
    assert names == {"program", "input", "c1.out", "c1.wgt", "c1.bias", "f1.out", "f1.wgt", "f1.bias"}
    assert prog.regions["f1"]["in"] == "c1.out"


@pytest.mark.parametrize("pin", ["program", "input", "c1.out"])
def test_placement_overlap_is_an_error_naming_both(small_prog, pin):
    net, cfg, x, prog = small_prog
    victim = prog.image.region(pin)
    with pytest.raises(MemoryLayoutError) as e:
        compiler.build_image(prog.layers, cfg, net.input_shape, placement={"f1.wgt": victim.addr})
    assert "'f1.wgt'" in str(e.value) and f"'{pin}'" in str(e.value)
    with pytest.raises(MemoryLayoutError, match="'f1.wgt'"):
        compiler.compile_network(net, cfg, x, placement={"f1.wgt": victim.addr})


def test_placement_of_an_unknown_region_is_an_error(small_prog):
    net, cfg, _, prog = small_prog
    with pytest.raises(MemoryLayoutError, match="c1.wgts"):
        compiler.build_image(prog.layers, cfg, net.input_shape, placement={"c1.wgts": 0x100000})


def test_placement_misaligned_is_an_error(small_prog):
    net, cfg, _, prog = small_prog
    with pytest.raises(MemoryLayoutError, match="'c1.wgt' at 0x100010 not aligned"):
        compiler.build_image(prog.layers, cfg, net.input_shape, placement={"c1.wgt": 0x100010})


def test_legal_placement_is_used_and_bit_exact(small_prog):
    net, cfg, x, _ = small_prog
    prog = compiler.compile_network(net, cfg, x, placement={"c1.wgt": 0x100000, "f1.out": 0x80000})
    assert prog.image.region("c1.wgt").addr == 0x100000
    d0 = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
    d1 = isa.Descriptor.decode(prog.image.read(prog.desc_addr + isa.DESC_BYTES, isa.DESC_BYTES))
    assert d0.wgt_addr == 0x100000 and d1.out_addr == 0x80000
    ref, got = _run_both(prog, x[0])
    for r, g in zip(ref, got):
        assert layers.compare(r, g) == ([], 0)


def test_base_address_moves_the_whole_image(small_prog):
    net, cfg, x, _ = small_prog
    prog = compiler.compile_network(net, cfg, x, base=0x10000)
    assert prog.desc_addr == 0x10000
    assert min(r.addr for r in prog.image.regions) == 0x10000
    ref, got = _run_both(prog, x[1])
    for r, g in zip(ref, got):
        assert layers.compare(r, g) == ([], 0)
