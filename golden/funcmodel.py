"""The functional model of the engine: descriptors executed on a memory image,
reading and writing the layouts exactly as the hardware does.

``trace_descriptor`` computes one layer from its descriptor and the image;
``run_image`` runs a whole program. The arithmetic is golden.layers and
golden.arith (the one definition); what this module adds is the descriptor
decode, the memory layouts (docs/isa.md) and the weight generation from
memory, which is what the RTL must match.

Activation tensors use the channel-grouped layout (memimage.pack_act): PN
channels per word, [C/PN][H][W][PN]. A channel slice starting at a multiple
of PN is therefore one contiguous run of words, at
``slice_addr(base, c_off, h, w)``: that is how a layer reads part of a tensor
or writes its part of a concatenation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import arith, isa, layers, memimage, ovsf
from .config import EngineConfig
from .memimage import round_up


def read_act(img: memimage.MemoryImage, addr: int, shape, cfg: EngineConfig) -> np.ndarray:
    """A (C, H, W) tensor from the grouped layout: (round_up(C, PN), H, W), pads kept."""
    n = memimage.act_elems(shape, cfg.pn)
    return memimage.unpack_act(memimage.from_bytes(img.read(addr, n * cfg.elem_bytes), cfg.data_bits),
                               shape, cfg.pn)


def write_act(img: memimage.MemoryImage, addr: int, x: np.ndarray, cfg: EngineConfig) -> None:
    """Write a (C, H, W) tensor in the grouped layout (pad channels as zeros)."""
    img.write(addr, memimage.to_bytes(memimage.pack_act(x, cfg.pn), cfg.data_bits))


def slice_addr(base: int, c_off: int, h: int, w: int, cfg: EngineConfig) -> int:
    """Address of the channel slice starting at ``c_off`` (a multiple of PN) of
    the h x w tensor at ``base``."""
    return base + (c_off // cfg.pn) * h * w * cfg.pn * cfg.elem_bytes


def shuffle_perm(c: int, g: int) -> np.ndarray:
    """ShuffleNet's channel shuffle of ``g`` groups: channel i reads input
    channel perm[i] = (i mod g) * (c / g) + i div g."""
    i = np.arange(c)
    return (i % g) * (c // g) + i // g


@dataclass
class LayerTrace:
    """Everything one descriptor computes, as the engine sees it: the input
    (channels padded to PN, after any channel shuffle), the weights (padded to
    PM x PN, generated in OVSF mode; a grouped layer's are per group), the bias
    aligned to the accumulator, the accumulators before ReLU and the data
    shift (per output channel, pixel of the convolution; a residual already
    added), and the output written (real channels). A layer with a residual
    (res=1) also keeps the two operands of its add, as the engine's post
    stage sees them: ``acc_conv`` (the convolution plus the aligned bias) and
    ``res_al`` (the residual aligned to the accumulator, pad channels zero);
    ``acc = add_sat(acc_conv, res_al)``. Both are None without a residual."""
    x: np.ndarray
    w: Optional[np.ndarray]
    bias_aligned: Optional[np.ndarray]
    acc: np.ndarray
    y: np.ndarray
    acc_conv: Optional[np.ndarray] = None
    res_al: Optional[np.ndarray] = None


def _weights(img, d, cfg: EngineConfig, cout_pad: int, cin_pad: int) -> np.ndarray:
    """The (cout_pad, cin_pad, K, K) weights of a layer, read raw or generated
    from its OVSF coefficients (a decomposed kernel's in engine order,
    memimage.engine_order). A layer with packed taps (isa.packed_taps)
    stores each channel's first wvec_len elements of that (c, ky, kx) vector;
    the rest read as zero."""
    if isa.packed_taps(d, cfg.pn):
        n = isa.wvec_len(d, cfg.pn)
        flat = _weights(img, _as_vector(d, n), cfg, cout_pad, n).reshape(cout_pad, n)
        w = np.zeros((cout_pad, cin_pad * d.k * d.k), dtype=np.int64)
        w[:, memimage.packed_index(cin_pad, d.in_c // max(1, d.groups), d.k, cfg.pn)] = flat
        return memimage.from_engine_order(w, cin_pad, d.k)
    if d.ovsf:
        length = 1 << d.log2_l
        nblocks = -(-(cin_pad * d.k * d.k) // length)
        n = cout_pad * nblocks * d.n_codes
        flat = memimage.from_bytes(img.read(d.wgt_addr, n * cfg.alpha_bytes), cfg.alpha_bits)
        alpha = memimage.unpack_alphas(flat, cout_pad, cin_pad, d.k, length, d.n_codes, d.to, d.ti, cfg.pm)
        codes = [j for j in range(length) if d.code_mask >> j & 1]
        blocks = ovsf.generate(alpha, codes, length, d.gen_shift, cfg.data_bits)
        # the blocks cut each channel's engine-order vector (memimage.engine_order)
        vec = ovsf.from_blocks(blocks, (cout_pad, cin_pad * d.k * d.k))
        return memimage.from_engine_order(vec, cin_pad, d.k)
    n = cout_pad * cin_pad * d.k * d.k
    flat = memimage.from_bytes(img.read(d.wgt_addr, n * cfg.elem_bytes), cfg.data_bits)
    return memimage.unpack_weights(flat, (cout_pad, cin_pad, d.k, d.k), d.to, d.ti)


def _as_vector(d, n: int):
    """The descriptor seen as a 1x1 layer of n input channels in one ti-tile:
    how packed taps are laid out (memimage.pack_weights, pack_alphas)."""
    return isa.Descriptor(dict(d.values)).set(k=1, ti=n, groups=0)


def _read_input(img, d, cfg: EngineConfig) -> np.ndarray:
    x = read_act(img, slice_addr(d.in_addr, d.in_c_off, d.in_h, d.in_w, cfg), (d.in_c, d.in_h, d.in_w), cfg)
    if d.in_shuffle > 1:
        x = x.copy()
        x[:d.in_c] = x[shuffle_perm(d.in_c, d.in_shuffle)]
    return x


def trace_descriptor(img: memimage.MemoryImage, d: isa.Descriptor, cfg: EngineConfig,
                     engine: bool = False) -> LayerTrace:
    """Compute one descriptor on the memory image as the engine does (without
    writing the result). ``engine``: check it as this engine's RTL does
    (graph features it does not run are an error); by default the model runs
    every feature of the instruction set."""
    isa.check(d, cfg, engine)
    kind = isa.Kind(d.kind)
    bits = cfg.data_bits
    x = _read_input(img, d, cfg)                                   # (C', H, W), pads zero
    clip_hi = d.clip_hi if d.clip else None
    if kind == isa.Kind.POOL:
        # the engine runs a POOL as a 1x1 identity convolution
        acc = x
        kh, kw, s, pads = isa.pool_window(d, d.in_h, d.in_w)
        if d.pool_avg:
            y = layers.avgpool_int(x, (kh, kw), s, pads, d.pool_incl_pad, data_bits=bits)
        else:
            y = layers.maxpool_int(x, (kh, kw), s, pads=pads)
        if d.relu:
            y = arith.relu(y)
        if clip_hi is not None:
            y = arith.clip(y, 0, clip_hi)
        return LayerTrace(x, None, None, acc, y[:d.out_c])
    groups = max(1, d.groups)
    cout_pad = round_up(d.out_c, cfg.pm)
    cin_pad = round_up(d.in_c // groups, cfg.pn)                  # per group
    w = _weights(img, d, cfg, cout_pad, cin_pad)
    b = memimage.from_bytes(img.read(d.bias_addr, cout_pad * cfg.elem_bytes), bits)
    if not d.bias:
        b = np.zeros_like(b)
    pads = (d.pad_t, d.pad_b, d.pad_l, d.pad_r)
    b_al = np.asarray(arith.shift_round_sat(b, d.bias_shift, cfg.acc_bits))
    ch, cw = isa.conv_dims(d)
    residual = None
    if d.res:
        r = read_act(img, d.res_addr, (d.out_c, ch, cw), cfg)[:d.out_c]
        residual = np.zeros((cout_pad, ch, cw), dtype=np.int64)
        residual[:d.out_c] = r
    pool = None
    if d.pool:
        kh, kw, s, ppads = isa.pool_window(d, ch, cw)
        pool = ((kh, kw), s, ppads)
    if groups == 1:
        conv = layers.conv_acc(x, w, d.stride, pads)
        y = layers.layer_int(x, w, b, stride=d.stride, pads=pads, bias_shift=d.bias_shift,
                             data_shift=d.data_shift, relu=bool(d.relu), pool=pool, data_bits=bits,
                             acc_bits=cfg.acc_bits, residual=residual, res_shift=d.res_shift, clip_hi=clip_hi)
    else:
        # per group: in_c/groups inputs (padded to PN in memory) per output
        xr, wr = x[:d.in_c], w[:d.out_c, :d.in_c // groups]
        conv = np.zeros((cout_pad, ch, cw), dtype=np.int64)
        conv[:d.out_c] = layers.conv_acc(xr, wr, d.stride, pads, groups)
        y = layers.layer_int(xr, wr, b[:d.out_c], stride=d.stride, pads=pads, bias_shift=d.bias_shift,
                             data_shift=d.data_shift, relu=bool(d.relu), pool=pool, data_bits=bits,
                             acc_bits=cfg.acc_bits, groups=groups,
                             residual=None if residual is None else residual[:d.out_c], res_shift=d.res_shift,
                             clip_hi=clip_hi)
    acc = conv + b_al[:, None, None]
    if residual is None:
        return LayerTrace(x, w, b_al, acc, y[:d.out_c])
    res_al = np.asarray(arith.align_to_acc(residual, d.res_shift, cfg.acc_bits), dtype=np.int64)
    return LayerTrace(x, w, b_al, arith.add_sat(acc, res_al, cfg.acc_bits), y[:d.out_c], acc_conv=acc, res_al=res_al)


def execute_descriptor(img: memimage.MemoryImage, d: isa.Descriptor, cfg: EngineConfig,
                       engine: bool = False) -> LayerTrace:
    """Run one descriptor on the memory image as the engine does."""
    t = trace_descriptor(img, d, cfg, engine)
    write_act(img, slice_addr(d.out_addr, d.out_c_off, d.out_h, d.out_w, cfg), t.y, cfg)
    return t


def run_image(img: memimage.MemoryImage, desc_addr: int, n_layers: int, cfg: EngineConfig,
              engine: bool = False) -> list:
    """Execute ``n_layers`` descriptors from ``desc_addr`` on the image;
    returns each layer's LayerTrace."""
    traces = []
    for i in range(n_layers):
        d = isa.Descriptor.decode(img.read(desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
        traces.append(execute_descriptor(img, d, cfg, engine))
    return traces
