"""Decomposed kernels (k = 6, 9, 12 as S x S sub-windows of 3 x 3): the
descriptor check, the engine's weight order in memory (raw and OVSF), the
functional model against golden.layers, the compiler's lowering of kernels
above max_k, and the analytical model."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from golden import compiler, funcmodel, isa, layers, memimage, ovsf, perf
from golden.config import EngineConfig
from golden.errors import DescriptorError, NetworkError
from golden.isa import Err, Kind
from golden.network import load_network
from golden.passes import fuse, kernels

from netspec import SMALL, descriptors, rng

CFG = EngineConfig()
#: the small engine with a 3x3 window (the weight buffer holds a 12x12 kernel of 8x8 channels)
K3 = dataclasses.replace(SMALL, max_k=3, wgt_buf_elems=16384)


def _conv(k, **kw):
    """A 'same' dense CONV descriptor with kernel k (pads k-1 split low/high)."""
    lo, hi = (k - 1) // 2, k // 2
    d = dict(kind=Kind.CONV, k=k, stride=1, pad_t=lo, pad_b=hi, pad_l=lo, pad_r=hi,
             in_c=16, in_h=12, in_w=12, out_c=16, out_h=12, out_w=12,
             tr=12, tc=12, ti=16, to=16, bias=1, relu=1,
             in_addr=0x1000, out_addr=0x2000, wgt_addr=0x3000, bias_addr=0x4000)
    d.update(kw)
    return isa.Descriptor(d)


# ------------------------------------------------------------------ ISA

def test_helpers():
    assert isa.DECOMPOSED == (6, 9, 12) and isa.KERNELS == (1, 3, 5, 7, 11)
    assert [isa.sub_windows(k) for k in (6, 9, 12)] == [2, 3, 4]
    assert [isa.window_k(k) for k in (6, 9, 12)] == [3, 3, 3]
    for k in isa.KERNELS:
        assert isa.sub_windows(k) == 1 and isa.window_k(k) == k


@pytest.mark.parametrize("k", isa.DECOMPOSED)
def test_decomposed_kernel_legal_on_dense_conv_whatever_max_k(k):
    for max_k in (3, 5, 7, 11):
        assert isa.validate(_conv(k), EngineConfig(max_k=max_k)) == Err.NONE
    # still an ordinary k x k geometry: a pad must stay below k
    assert isa.validate(_conv(k, pad_b=k), CFG) == Err.BAD_PAD


@pytest.mark.parametrize("k", isa.DECOMPOSED)
def test_decomposed_kernel_refused(k):
    # a depthwise layer takes one (its window per sub-window); a grouped one not
    dw = _conv(k, groups=16)
    assert isa.validate(dw, CFG, engine=False) != Err.BAD_KERNEL
    grouped = _conv(k, groups=2, in_c=32, ti=16)
    assert isa.validate(grouped, CFG, engine=False) == Err.BAD_KERNEL
    with pytest.raises(DescriptorError, match="grouped") as e:
        isa.check(grouped, CFG, engine=False)
    assert e.value.field == "k"
    fc = _conv(k, kind=Kind.FC, in_h=1, in_w=1, out_h=1, out_w=1, pad_t=0, pad_b=0, pad_l=0, pad_r=0,
               tr=1, tc=1)
    assert isa.validate(fc, CFG) == Err.BAD_KERNEL
    with pytest.raises(DescriptorError, match="max_k=1"):
        isa.check(_conv(k), EngineConfig(max_k=1))
    # kernels between and beyond stay unknown; a plain kernel still meets max_k
    for bad in (2, 4, 8, 10, 13):
        assert isa.validate(_conv(bad), CFG) == Err.BAD_KERNEL
    assert isa.validate(_conv(5), EngineConfig(max_k=3)) == Err.BAD_KERNEL


# ------------------------------------------------------------ weight order

def _spec_vector(w_tile):
    """One tile's weights in the order the spec states, written as loops:
    for each o: for sub = a*S + b: for c: for ky, kx: w[o, c, 3a+ky, 3b+kx]."""
    no, nc, k, _ = w_tile.shape
    s = isa.sub_windows(k)
    out = []
    for o in range(no):
        for a in range(s):
            for b in range(s):
                for c in range(nc):
                    for ky in range(3):
                        for kx in range(3):
                            out.append(w_tile[o, c, 3 * a + ky, 3 * b + kx])
    return np.array(out, dtype=np.int64)


def _spec_pack(w_pad, to, ti):
    return np.concatenate([_spec_vector(w_pad[o0:o1, i0:i1])
                           for o0, o1 in memimage.tile_ranges(w_pad.shape[0], to)
                           for i0, i1 in memimage.tile_ranges(w_pad.shape[1], ti)])


TILINGS = [(8, 8), (8, 16), (16, 8), (24, 24), (32, 16)]


@pytest.mark.parametrize("k", isa.DECOMPOSED)
def test_weights_pack_in_engine_order_and_round_trip(k):
    r = rng("weights", k)
    w = r.integers(-100, 100, size=(32, 24, k, k))
    for to, ti in TILINGS:
        flat = memimage.pack_weights(w, to, ti)
        assert np.array_equal(flat, _spec_pack(w, to, ti)), (to, ti)
        assert np.array_equal(memimage.unpack_weights(flat, w.shape, to, ti), w)
    v = memimage.engine_order(w)
    assert v.shape == (32, 24 * k * k)
    assert np.array_equal(memimage.from_engine_order(v, 24, k), w)


def test_plain_kernels_keep_their_order():
    w = rng("plain").integers(-100, 100, size=(16, 16, 5, 5))
    assert np.array_equal(memimage.engine_order(w), w.reshape(16, -1))
    assert np.array_equal(memimage.pack_weights(w, 8, 8),
                          np.concatenate([w[o:o + 8, i:i + 8].reshape(-1) for o in (0, 8) for i in (0, 8)]))


def test_a_wrong_permutation_is_detected(monkeypatch):
    """The layout check above fails when the engine order is another
    permutation (sub-windows column-major: sub = b*S + a)."""
    w = rng("wrong").integers(-100, 100, size=(16, 16, 6, 6))
    good = memimage.pack_weights(w, 8, 8)
    real = memimage.engine_perm

    def swapped(cin, k):
        s = isa.sub_windows(k)
        if s == 1:
            return real(cin, k)
        return np.arange(cin * k * k).reshape(cin, s, 3, s, 3).transpose(3, 1, 0, 2, 4).reshape(-1)

    monkeypatch.setattr(memimage, "engine_perm", swapped)
    bad = memimage.pack_weights(w, 8, 8)
    assert not np.array_equal(bad, _spec_pack(w, 8, 8))
    assert np.array_equal(np.sort(bad), np.sort(good))          # the same values, misplaced
    monkeypatch.setattr(memimage, "engine_perm", real)
    assert not np.array_equal(memimage.unpack_weights(bad, w.shape, 8, 8), w)


@pytest.mark.parametrize("k", isa.DECOMPOSED)
def test_alphas_tile_ranges_layout_and_round_trip(k):
    L, pm, n_codes, cout, cin_pad = 8, 8, 3, 24, 32
    s = isa.sub_windows(k)
    nblocks = cin_pad * k * k // L
    alpha = rng("alpha", k).integers(-1000, 1000, size=(cout, nblocks, n_codes))
    # a tile covers one block range per sub-window, in sub order
    ranges = memimage.alpha_tile_ranges(8, 24, k, L, cin_pad)
    assert ranges == [((sub * cin_pad * 9 + 8 * 9) // L, (sub * cin_pad * 9 + 24 * 9) // L) for sub in range(s * s)]
    with pytest.raises(Exception, match="alpha_tile_ranges"):
        memimage.alpha_tile_blocks(8, 24, k, L)
    for to, ti in TILINGS:
        if to % pm or ti > cin_pad:
            continue
        flat = memimage.pack_alphas(alpha, cin_pad, k, L, to, ti, pm)
        # explicit: per tile, per oc-group q, the tile's blocks (ranges in sub
        # order), the pm channels interleaved, n_codes alphas each
        want = []
        for o0, o1 in memimage.tile_ranges(cout, to):
            for i0, i1 in memimage.tile_ranges(cin_pad, ti):
                blocks = [b for b0, b1 in memimage.alpha_tile_ranges(i0, i1, k, L, cin_pad) for b in range(b0, b1)]
                for q in range(o0, o1, pm):
                    for b in blocks:
                        for o in range(q, q + pm):
                            want.extend(alpha[o, b])
        assert np.array_equal(flat, np.array(want)), (to, ti)
        assert np.array_equal(memimage.unpack_alphas(flat, cout, cin_pad, k, L, n_codes, to, ti, pm), alpha)


def test_plain_alpha_ranges_are_todays():
    assert memimage.alpha_tile_ranges(16, 32, 3, 16, 64) == [memimage.alpha_tile_blocks(16, 32, 3, 16)] == [(9, 18)]


# --------------------------------------------------- funcmodel vs layers

def _single(k, stride=1, rho=1.0, cin=5, cout=12, hw=13, pad=None):
    pad = k // 2 if pad is None else pad
    spec = {"name": f"one{k}", "input_shape": [cin, hw, hw], "weights": {"seed": k * 7 + stride},
            "layers": [{"name": "c", "type": "conv", "out_channels": cout, "kernel": k, "stride": stride,
                        "pad": pad, "rho": rho}, {"name": "r", "type": "relu"}]}
    return load_network(spec)


def _calib(net, n=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + tuple(net.input_shape))


@pytest.mark.parametrize("k,kp", [(5, 6), (7, 9), (11, 12)])
def test_funcmodel_runs_decomposed_raw_layer_as_its_conv(k, kp):
    net = _single(k)
    calib = _calib(net)
    prog = compiler.compile_network(net, K3, calib)
    (d,) = descriptors(prog)
    assert d.k == kp and (d.pad_t, d.pad_b, d.pad_l, d.pad_r) == (k // 2, k // 2 + kp - k, k // 2, k // 2 + kp - k)
    q = prog.layers[0]
    assert q.k == kp and not q.w_q[:, :, k:, :].any() and not q.w_q[:, :, :, k:].any()
    xq = compiler.load_input(prog, calib[0])
    tr = funcmodel.trace_descriptor(prog.image, d, K3, engine=True)
    cout, cin = q.w_q.shape[:2]
    assert np.array_equal(tr.w[:cout, :cin], q.w_q)
    b = np.asarray(q.b_q)
    y = layers.layer_int(xq, q.w_q, b, stride=d.stride, pads=(d.pad_t, d.pad_b, d.pad_l, d.pad_r),
                         bias_shift=d.bias_shift, data_shift=d.data_shift, relu=True, data_bits=K3.data_bits,
                         acc_bits=K3.acc_bits)
    assert np.array_equal(tr.y, y)
    # the k' x k' conv is the network's K x K conv (the added taps are zero)
    y_k = layers.layer_int(xq, q.w_q[:, :, :k, :k], b, stride=1, pads=(k // 2,) * 4, bias_shift=d.bias_shift,
                           data_shift=d.data_shift, relu=True, data_bits=K3.data_bits, acc_bits=K3.acc_bits)
    assert np.array_equal(y, y_k)


@pytest.mark.parametrize("k,kp", [(5, 6), (7, 9), (11, 12)])
def test_funcmodel_runs_decomposed_ovsf_layer_as_reconstructed_conv(k, kp):
    net = _single(k, rho=0.5, cin=9)
    calib = _calib(net)
    prog = compiler.compile_network(net, K3, calib)
    (d,) = descriptors(prog)
    q = prog.layers[0]
    assert d.k == kp and d.ovsf and q.ovsf is not None
    cout, cin = q.w_q.shape[:2]
    cin_pad = memimage.round_up(cin, K3.pn)
    # the blocks cut the engine-order vector: reconstruct, then the inverse permutation
    w_gen = memimage.from_engine_order(ovsf.reconstruct(q.ovsf, K3.data_bits), cin_pad, kp)
    assert np.array_equal(w_gen[:cout, :cin], q.w_q)
    # read in (ci, ky, kx) order instead, the generated weights differ
    w_wrong = ovsf.reconstruct(q.ovsf, K3.data_bits).reshape(w_gen.shape)
    assert not np.array_equal(w_wrong[:cout, :cin], q.w_q)
    xq = compiler.load_input(prog, calib[1])
    tr = funcmodel.trace_descriptor(prog.image, d, K3, engine=True)
    assert np.array_equal(tr.w[:cout, :cin], q.w_q)
    y = layers.layer_int(xq, w_gen[:cout, :cin], np.asarray(q.b_q), stride=d.stride,
                         pads=(d.pad_t, d.pad_b, d.pad_l, d.pad_r), bias_shift=d.bias_shift,
                         data_shift=d.data_shift, relu=True, data_bits=K3.data_bits, acc_bits=K3.acc_bits)
    assert np.array_equal(tr.y, y)


# --------------------------------------------------------------- compiler

BIG = {"name": "bigk", "input_shape": [3, 40, 40], "weights": {"seed": 5},
       "layers": [{"name": "c5", "type": "conv", "out_channels": 8, "kernel": 5, "pad": 2},
                  {"name": "r5", "type": "relu"},
                  {"name": "c7", "type": "conv", "out_channels": 12, "kernel": 7, "stride": 2, "pad": 3},
                  {"name": "r7", "type": "relu"},
                  {"name": "c11", "type": "conv", "out_channels": 16, "kernel": 11, "stride": 4, "pad": 5},
                  {"name": "c3", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1}]}


def _run(prog, x):
    compiler.load_input(prog, x)
    funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), prog.cfg)
    return compiler.network_output(prog)


def test_compiler_lowers_large_kernels_bit_exact():
    net = load_network(BIG)
    calib = _calib(net, 3)
    wide = compiler.compile_network(net, dataclasses.replace(K3, max_k=11), calib)
    narrow = compiler.compile_network(net, K3, calib)
    assert [d.k for d in descriptors(wide)] == [5, 7, 11, 3]
    assert [d.k for d in descriptors(narrow)] == [6, 9, 12, 3]
    assert [(d.out_h, d.out_w) for d in descriptors(narrow)] == [(d.out_h, d.out_w) for d in descriptors(wide)]
    assert narrow.fl == wide.fl
    assert sum("decomposed kernel" in n for n in narrow.notes) == 3
    for d in descriptors(narrow):
        assert isa.validate(d, K3) == Err.NONE           # what the max_k = 3 engine accepts
    x = np.random.default_rng(9).standard_normal(net.input_shape)
    xq = compiler.load_input(narrow, x)
    got = _run(narrow, x)
    assert np.array_equal(got, _run(wide, x))
    assert np.array_equal(got, compiler.network_output_q(narrow, xq))
    for i in range(len(narrow.layers)):
        assert np.array_equal(compiler.layer_output(narrow, i), compiler.run_network(narrow, xq)[i])


def test_compiler_lowers_only_above_max_k():
    net = load_network(BIG)
    calib = _calib(net, 1)
    for max_k, ks in ((5, [5, 9, 12, 3]), (7, [5, 7, 12, 3])):
        prog = compiler.compile_network(net, dataclasses.replace(K3, max_k=max_k), calib)
        assert [d.k for d in descriptors(prog)] == ks


def test_compiler_lowers_ovsf_layers():
    """An OVSF layer lowered: its coefficients come from the k' x k' layer in
    engine order, and the image run equals the compiler's integer run."""
    spec = dict(BIG, layers=[dict(L, rho=0.5) if L["type"] == "conv" else L for L in BIG["layers"]])
    net = load_network(spec)
    calib = _calib(net, 2)
    prog = compiler.compile_network(net, K3, calib)
    assert [(d.k, d.ovsf) for d in descriptors(prog)] == [(6, 1), (9, 1), (12, 1), (3, 1)]
    x = calib[0]
    xq = compiler.load_input(prog, x)
    assert np.array_equal(_run(prog, x), compiler.network_output_q(prog, xq))


@pytest.mark.parametrize("groups, in_c, out_c, how", [(2, 16, 16, "bands"), (4, 12, 8, "dense")])
def test_grouped_large_kernels_lowered_bit_exact(groups, in_c, out_c, how):
    """A grouped 5x5 (AlexNet's conv2 is one) on a 3x3 window: the group
    lowering's dense layers (channel-slice bands cut from the grouped layer,
    or one block-diagonal layer) become 6x6 sub-window layers, bit exact with
    the same network on a native 5x5 window."""
    layer = {"name": "c", "type": "conv", "out_channels": out_c, "kernel": 5, "pad": 2, "groups": groups}
    net = load_network({"name": "g", "input_shape": [in_c, 10, 10], "weights": {"seed": 1},
                        "layers": [layer, {"type": "relu"}]})
    calib = _calib(net, 2)
    wide = compiler.compile_network(net, dataclasses.replace(K3, max_k=5), calib)
    narrow = compiler.compile_network(net, K3, calib)
    assert narrow.graph.lowered["c"]["how"] == how
    assert len(narrow.layers) == len(wide.layers) == (2 if how == "bands" else 1)
    assert [d.k for d in descriptors(narrow)] == [6] * len(narrow.layers)
    assert [d.k for d in descriptors(wide)] == [5] * len(wide.layers)
    assert narrow.fl == wide.fl
    for d in descriptors(narrow):
        assert isa.validate(d, K3) == Err.NONE
    x = calib[1]
    xq = compiler.load_input(narrow, x)
    got = _run(narrow, x)
    assert np.array_equal(got, _run(wide, x))
    assert np.array_equal(got, compiler.network_output_q(narrow, xq))


def test_a_window_below_the_sub_window_keeps_the_error():
    net = _single(5)
    with pytest.raises(NetworkError, match=r"layer 'c': 5x5 kernel .*max_k=1.*max_k >= 3"):
        compiler.compile_network(net, dataclasses.replace(K3, max_k=1), _calib(net, 1))


def test_lowering_pass_keeps_the_float_reference():
    net = load_network(BIG)
    from golden.passes import fold
    g0 = fuse.fuse(fold.fold(net), K3)
    g1 = fuse.fuse(fold.fold(net), K3)
    assert kernels.lower_kernels(g1, K3) == ["c5", "c7", "c11"]
    assert kernels.lower_kernels(g1, K3) == []           # idempotent
    x = _calib(net, 1)[0]
    f0, f1 = fuse.float_forward(g0, x), fuse.float_forward(g1, x)
    for L in g1.layers:
        assert np.array_equal(f0[L.output], f1[L.output])
    L = g1.layer("c7")
    assert (L.k, L.k_net, L.pads) == (9, 7, (3, 5, 3, 5))
    # the padded k' x k' conv itself gives the same plane (up to float rounding)
    L0, L1 = g0.layer("c5"), g1.layer("c5")
    y0 = layers.conv_float(x, L0.weight, L0.bias, 1, L0.pads)
    y1 = layers.conv_float(x, L1.weight, L1.bias, 1, L1.pads)
    assert y1.shape == y0.shape and np.allclose(y0, y1, atol=1e-9)


# ---------------------------------------------------------------- perf

def test_perf_model_runs_decomposed_layers():
    net = load_network(BIG)
    prog = compiler.compile_network(net, K3, _calib(net, 1))
    cyc = perf.program_cycles(prog)
    assert len(cyc) == 4 and all(c.cycles > 0 and c.compute > 0 for c in cyc)
    for d in descriptors(prog)[:3]:
        ch, cw = isa.conv_dims(d)
        assert perf.layer_macs(d) == d.out_c * d.in_c * d.k * d.k * ch * cw


@pytest.mark.parametrize("k", isa.DECOMPOSED)
def test_perf_compute_is_sub_windows_of_a_3x3_layer(k):
    """Each of the S*S sub-windows runs like a K = 3 layer: the compute of a
    tile is S*S times that of the 3x3 layer with the same output (beyond the
    tile's fixed start and drain)."""
    cfg = EngineConfig()
    ov = perf.Overheads()

    def compute(d):
        ev = []
        perf.layer_cycles(d, cfg, events=ev)
        return [e[3] - e[2] for e in ev if e[0] == "compute"]

    for insel, in_c in ((0, 32), (1, 20)):
        dec = compute(_conv(k, in_c=in_c, ti=16, insel=insel))
        plain = compute(_conv(3, in_c=in_c, ti=16, insel=insel))
        fixed = ov.tile_start + ov.tile_drain
        s2 = isa.sub_windows(k) ** 2
        assert len(dec) == len(plain) and dec
        for a, b in zip(dec, plain):
            assert a - fixed == pytest.approx(s2 * (b - fixed))


@pytest.mark.parametrize("k", isa.DECOMPOSED)
def test_networks_still_refuse_decomposed_kernel_sizes(k):
    """6, 9, 12 are engine kernels the compiler makes, not network kernels."""
    spec = {"name": "n", "input_shape": [3, 16, 16], "weights": {"seed": 1},
            "layers": [{"name": "c", "type": "conv", "out_channels": 4, "kernel": k, "pad": 1}]}
    with pytest.raises(NetworkError, match=f"kernel size {k} not supported"):
        load_network(spec)


#: like tb/regressions.CONFIGS["ecp5"]: PM = PN = L = 4, a 3x3 window, small buffers
ECP5 = EngineConfig(data_bits=16, acc_bits=48, pm=4, pn=4, ovsf_len=4, alpha_bits=16, axi_data_bits=64,
                    in_buf_elems=4096, wgt_buf_elems=4096, out_buf_elems=2048, max_k=3)


@pytest.mark.parametrize("rho", [1.0, 0.5])
def test_small_engine_runs_the_big_kernels_over_several_ti_tiles(rho):
    net = load_network(BIG)
    calib = _calib(net, 2)
    prog = compiler.compile_network(net, ECP5, calib, rho=rho)
    ds = descriptors(prog)
    assert [(d.k, d.ovsf) for d in ds] == [(k, int(rho != 1)) for k in (6, 9, 12, 3)]
    assert any(d.k in isa.DECOMPOSED and d.ti < memimage.round_up(d.in_c, ECP5.pn) for d in ds)
    xq = compiler.load_input(prog, calib[1])
    assert np.array_equal(_run(prog, calib[1]), compiler.network_output_q(prog, xq))


@pytest.mark.parametrize("k, kp, rho", [(5, 6, 1.0), (7, 9, 0.5), (11, 12, 1.0)])
def test_depthwise_large_kernel_lowers_bit_exact(k, kp, rho):
    """A depthwise K x K above max_k runs as k' sub-windows, each sub-window's
    taps packed into whole words (isa.wvec_len, memimage.packed_index): raw
    weights give the K x K layer's output bit for bit (OVSF: the program
    runs in the functional model as compiled), and the stored vector holds
    every real tap."""
    layer = {"name": "c", "type": "conv", "out_channels": 20, "kernel": k, "pad": k // 2, "groups": 20,
             "rho": rho}
    spec = {"name": "dw", "input_shape": [20, 13, 14], "weights": {"seed": 4}, "layers": [layer]}
    net = load_network(spec)
    x = _calib(net, 1)
    prog = compiler.compile_network(net, K3, x, force_ovsf=rho < 1)
    d = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
    assert d.k == kp and isa.depthwise(d)
    assert isa.wvec_len(d, K3.pn) == isa.sub_windows(kp) ** 2 * -(-9 // K3.pn) * K3.pn
    idx = memimage.packed_index(K3.pn, 1, kp, K3.pn)
    assert len(idx) == isa.wvec_len(d, K3.pn)
    # every real tap of channel 0 (engine order [sub][c][3x3]) is stored
    real = {sub * K3.pn * 9 + t for sub in range(isa.sub_windows(kp) ** 2) for t in range(9)}
    assert real <= set(idx.tolist())
    xq = compiler.load_input(prog, x[0])
    assert np.array_equal(_run(prog, x[0]), compiler.network_output_q(prog, xq))
    if rho == 1.0:
        ref = compiler.compile_network(net, dataclasses.replace(K3, max_k=11), x)
        xr = compiler.load_input(ref, x[0])
        assert np.array_equal(compiler.network_output_q(prog, xq), compiler.network_output_q(ref, xr))
