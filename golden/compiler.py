"""Compiler: float network -> quantized integer network -> descriptor program
and external-memory image, plus the layer-by-layer golden run
(``run_network``, the quantized network on (C, H, W) tensors) that the
functional model (golden.funcmodel.run_image: the descriptors executed from
the memory image, as the engine does) is compared against. Both use
golden.layers for the arithmetic.

``compile_network`` is a pipeline of passes over the network graph
(golden/passes/):

    fold      BatchNorm/affine folded, SVD split, dropout removed
    fuse      engine layers naming the tensors they read and write (ReLU,
              clip, max pool, residual add fused; concats placed)
    kernels   dense kernels above max_k become decomposed 3x3 sub-window
              kernels (6, 9, 12); nothing changes when max_k covers them
    tile      (first the one structural change tiling forces: a fused pool
              that cannot be tiled becomes a POOL layer)
    quantise  every fractional length (Qiu et al.), the integer layers
    tile      tile sizes
    allocate  activation buffers, live ranges, slices (reuse=True packs them)
    emit      descriptors, weights and biases in the memory image

The old entry points stay importable from here (quantize_network,
build_image, descriptor_for, _tiles, unfuse_untileable_pools, ...).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import arith, funcmodel, isa, layers
from .config import EngineConfig
from .errors import UzError
from .funcmodel import read_act, slice_addr, write_act
from .network import INPUT, Network
from .passes import allocate, fold, fuse, kernels, quantise, tile
from .passes.emit import DESC_REGION, build_image, descriptor_for  # noqa: F401 (re-exported)
from .passes.fuse import PoolSpec, pool_int  # noqa: F401
from .passes.quantise import (acc_bound, check_calib, check_fits as _check_fits,  # noqa: F401
                              check_rho as _check_rho, fc_weight_to_layout, fit_fl as _fit_fl, flatten_for_fc,
                              quantize_network, shuffled)
from .passes.tile import PoolTilingError, unfuse_untileable_pools  # noqa: F401
from .passes.tile import tiles as _tiles  # noqa: F401


@dataclass
class QLayer:
    """A compiled layer: integer parameters, formats, shifts and tiling.

    Graph fields: the tensors it reads and writes (``in_tensor``,
    ``out_tensor``, ``res_tensor``; golden.passes.fuse names them), and where
    they lie in their buffers (``in_slice``/``out_slice``/``res_slice``:
    (channel offset, buffer channels) in descriptor units, None for a tensor
    that is its whole buffer)."""
    name: str
    kind: isa.Kind
    in_shape: tuple          # as the engine sees it (FC: (Cin_eff, 1, 1))
    out_shape: tuple
    fl_in: int
    fl_out: int
    relu: bool = False
    pool: Optional[tuple] = None          # (k, s, pad), or a passes.fuse.PoolSpec
    stride: int = 1
    pads: tuple = (0, 0, 0, 0)
    k: int = 1
    fl_w: int = 0
    fl_b: int = 0
    w_q: Optional[np.ndarray] = None      # effective integer weights (generated in OVSF mode)
    b_q: Optional[np.ndarray] = None
    ovsf: Optional[object] = None         # ovsf.OvsfLayer when weights are generated
    rho: float = 1.0
    tiles: dict = field(default_factory=dict)
    fc_in_shape: Optional[tuple] = None   # (C, H, W) an FC flattens
    source: list = field(default_factory=list)
    insel: bool = False                   # input selection (a hardware mode; same result)
    groups: int = 1
    in_shuffle: int = 0
    in_tensor: str = ""
    out_tensor: str = ""
    res_tensor: Optional[str] = None
    fl_res: int = 0
    clip_hi: Optional[int] = None         # clip to [0, clip_hi] after the data shift
    in_slice: Optional[tuple] = None
    out_slice: Optional[tuple] = None
    res_slice: Optional[tuple] = None
    synthetic: bool = False               # a layer the compiler inserted (copy, identity add)
    notes: list = field(default_factory=list)

    @property
    def bias_shift(self) -> int:
        return self.fl_b - (self.fl_in + self.fl_w)

    @property
    def data_shift(self) -> int:
        return 0 if self.kind == isa.Kind.POOL else self.fl_in + self.fl_w - self.fl_out

    @property
    def gen_shift(self) -> int:
        return self.ovsf.gen_shift if self.ovsf is not None else 0

    @property
    def res_shift(self) -> int:
        """Right shift of the residual onto the accumulator's fl (fl_res - fl_in - fl_w)."""
        return 0 if self.res_tensor is None else self.fl_res - (self.fl_in + self.fl_w)


@dataclass
class Program:
    cfg: EngineConfig
    name: str
    input_shape: tuple
    fl_input: int
    layers: list
    image: object                     # memimage.MemoryImage
    desc_addr: int
    regions: dict          # per layer: {"in", "out", "wgt", "bias"[, "res"]} region names
    static: bool = False
    elayers: list = field(default_factory=list)   # the float engine layers compiled
    graph: Optional[fuse.Graph] = None            # layers and tensors (None: a chain of self.layers)
    plan: Optional[allocate.Plan] = None          # buffers and slices
    memory: dict = field(default_factory=dict)    # activation memory figures (allocate.Plan.memory)
    notes: list = field(default_factory=list)     # what the compiler changed in the graph
    fl: dict = field(default_factory=dict)        # tensor -> fractional length

    @property
    def output(self) -> str:
        """The tensor holding the network output."""
        return self.graph.output if self.graph is not None else self.layers[-1].name

    def manifest(self) -> dict:
        out = {
            "name": self.name,
            "config": self.cfg.to_dict(),
            "input_shape": list(self.input_shape),
            "fl_input": self.fl_input,
            "desc_addr": self.desc_addr,
            "n_layers": len(self.layers),
            "static": self.static,
            "regions": self.image.manifest(),
            "layers": [layer_summary(q, self.regions[q.name]) for q in self.layers],
        }
        if self.memory:
            out["memory"] = self.memory
        if self.graph is not None:
            out["output"] = self.output
            out["tensors"] = {n: tensor_summary(self, n) for n in self.graph.tensors}
            out["notes"] = list(self.notes)
        return out


def layer_summary(q: QLayer, regions: dict) -> dict:
    d = {"name": q.name, "kind": q.kind.name, "in_shape": list(q.in_shape),
         "out_shape": list(q.out_shape), "fl_in": q.fl_in, "fl_out": q.fl_out,
         "relu": q.relu, "pool": list(q.pool) if q.pool else None, "source": q.source,
         "regions": regions, "tiles": q.tiles}
    if q.kind != isa.Kind.POOL:
        d.update(fl_w=q.fl_w, fl_b=q.fl_b, k=q.k, stride=q.stride, pads=list(q.pads),
                 bias_shift=q.bias_shift, data_shift=q.data_shift, rho=q.rho,
                 ovsf=q.ovsf is not None)
        if q.ovsf is not None:
            d.update(fl_alpha=q.ovsf.fl_alpha, codes=[int(c) for c in q.ovsf.codes],
                     n_codes=q.ovsf.n_codes, gen_shift=q.gen_shift)
    if q.in_tensor:
        d.update(input=q.in_tensor, output=q.out_tensor)
    for key in ("groups", "in_shuffle"):
        if getattr(q, key) > 1:
            d[key] = getattr(q, key)
    if q.res_tensor is not None:
        d.update(residual=q.res_tensor, fl_res=q.fl_res, res_shift=q.res_shift)
    if q.clip_hi is not None:
        d["clip_hi"] = q.clip_hi
    for key in ("in_slice", "out_slice", "res_slice"):
        if getattr(q, key) is not None:
            d[key] = list(getattr(q, key))
    if q.synthetic:
        d["synthetic"] = True
    return d


def tensor_summary(prog: Program, name: str) -> dict:
    t = prog.graph.tensors[name]
    d = {"shape": list(t.shape), "phys_c": t.phys_c, "buffer": t.buffer, "offset": t.offset,
         "region": prog.plan.buffers[t.buffer].region if prog.plan and t.buffer in prog.plan.buffers else None,
         "producer": t.producer, "fl": prog.fl.get(name)}
    if t.phys is not None:
        d["phys"] = list(t.phys)
    if t.parts:
        d["parts"] = [list(p) for p in t.parts]
    return d


INSEL_MODES = ("auto", "on", "off")


def compile_network(net: Network, cfg: EngineConfig, calib: np.ndarray, rho: Optional[float] = None,
                    static: bool = False, force_ovsf: bool = False, base: int = 0,
                    placement: Optional[dict] = None, insel: str = "auto",
                    tiles: Optional[dict] = None, reuse: bool = False,
                    bandwidth: Optional[float] = None) -> Program:
    """``insel``: input selection per layer; "auto" turns it on where a layer's
    input channels leave lanes idle (in_c not a multiple of PN). ``tiles``
    replaces the tile sizes the compiler picks, per layer name: {name: {"tr",
    "tc", "ti", "to"}} (any subset); illegal tiles are an error naming the
    layer. ``reuse``: activation buffers share memory once dead
    (golden.passes.allocate); by default every tensor keeps a region of its
    own, so every layer's output can be read after the run. ``bandwidth``:
    the memory's bytes per cycle, when known: the tile refine judges its
    candidates at it (golden.passes.tile.refine; by default at the bus's
    rate, half of it for a depthwise layer)."""
    if insel not in INSEL_MODES:
        raise UzError(f"insel must be one of {INSEL_MODES}, not {insel!r}")
    graph = fuse.fuse(fold.fold(net), cfg, 1.0 if rho is None else rho)
    kernels.lower_kernels(graph, cfg)       # before tiling and quantise: they see the k' x k' layer
    tile.split_untileable_pools(graph, cfg)
    for L in graph.layers:
        if (L.rho != 1 or force_ovsf) and not L.synthetic:
            _check_rho(L.rho, cfg.ovsf_len, L.name)
    calib = np.asarray(calib, dtype=np.float64)
    if calib.ndim == 3:
        calib = calib[None]
    if calib.ndim != 4 or tuple(calib.shape[1:]) != tuple(net.input_shape):
        raise UzError(f"input shape {tuple(calib.shape[1:]) if calib.ndim == 4 else calib.shape} "
                      f"does not match the network input {tuple(net.input_shape)}")
    res = quantise.quantise(graph, calib, cfg, static=static, force_ovsf=force_ovsf)
    # input selection first: the tile pass judges tiles by the cycles of the
    # layer as it will run
    for q in res.layers:
        if q.kind != isa.Kind.POOL:
            q.insel = insel == "on" or (insel == "auto" and (q.in_shape[0] // q.groups) % cfg.pn != 0)
    qlayers = tile.tile_layers(res.layers, cfg, bandwidth)
    for name, t in (tiles or {}).items():
        q = next((q for q in qlayers if q.name == name), None)
        if q is None:
            raise UzError(f"tiles given for layer {name!r}, which the network does not have "
                          f"(layers: {[q.name for q in qlayers]})")
        bad = set(t) - {"tr", "tc", "ti", "to"}
        if bad:
            raise UzError(f"layer {name!r}: unknown tile fields {sorted(bad)} (known: tr, tc, ti, to)")
        q.tiles = dict(q.tiles, **{k: int(v) for k, v in t.items()})
        if q.groups > 1 and q.groups == q.in_shape[0] == q.out_shape[0] and "ti" not in t:
            q.tiles["ti"] = q.tiles["to"]      # a depthwise tile's inputs are its outputs' channels
    plan = allocate.plan(graph, qlayers, cfg, reuse)
    img, desc_addr, regions = build_image(qlayers, cfg, net.input_shape, base, placement, plan)
    return Program(cfg, net.name, tuple(net.input_shape), res.fl_input, qlayers, img, desc_addr, regions, static,
                   graph.layers, graph=graph, plan=plan, memory=plan.memory, notes=list(graph.notes), fl=res.fl)


# ---------------------------------------------------------- golden runs

def layer_int(q: QLayer, x: np.ndarray, cfg: EngineConfig, residual=None) -> np.ndarray:
    """One compiled layer on integers: its input tensor (physical channels)
    and residual -> its output, as the engine computes it."""
    bits, accb = cfg.data_bits, cfg.acc_bits
    x = np.asarray(x, dtype=np.int64)
    if q.in_shuffle > 1:
        x = shuffled(x, q.in_shuffle)
    if q.kind == isa.Kind.POOL:
        y = pool_int(q.pool, x, bits)
        if q.relu:
            y = arith.relu(y)
        if q.clip_hi is not None:
            y = arith.clip(y, 0, q.clip_hi)
        return y
    xin = flatten_for_fc(x, cfg.pn) if q.kind == isa.Kind.FC else x
    pool = q.pool
    if isinstance(pool, PoolSpec):
        pool = ((pool.kh, pool.kw), pool.s, pool.pads)
    return layers.layer_int(xin, q.w_q, q.b_q, stride=q.stride, pads=q.pads, bias_shift=q.bias_shift,
                            data_shift=q.data_shift, relu=q.relu, pool=pool, data_bits=bits, acc_bits=accb,
                            groups=q.groups, residual=residual, res_shift=q.res_shift, clip_hi=q.clip_hi)


def run_graph(prog: Program, x_q: np.ndarray) -> tuple:
    """(every layer's output, every tensor's value) of the quantized network."""
    x = np.asarray(x_q, dtype=np.int64)
    outs = []
    if prog.graph is None:
        for q in prog.layers:
            x = layer_int(q, x, prog.cfg)
            outs.append(x)
        return outs, {}
    tensors = prog.graph.tensors
    vals = {INPUT: x}
    for q in prog.layers:
        xin = fuse.tensor_value(tensors, vals, q.in_tensor)
        res = None if q.res_tensor is None else fuse.tensor_value(tensors, vals, q.res_tensor)
        y = layer_int(q, xin, prog.cfg, res)
        vals[q.out_tensor] = y
        outs.append(y)
    return outs, vals


def run_network(prog: Program, x_q: np.ndarray) -> list:
    """Quantized network on (C,H,W) integer tensors; every layer's output
    (its own channels: out_c of the descriptor), following the graph."""
    return run_graph(prog, x_q)[0]


def network_output_q(prog: Program, x_q: np.ndarray) -> np.ndarray:
    """The network output (logical channels, integers at its fl) of the quantized network."""
    outs, vals = run_graph(prog, x_q)
    if prog.graph is None:
        return outs[-1][:prog.layers[-1].out_shape[0]]
    t = prog.graph.tensors[prog.graph.output]
    y = fuse.logical(t, fuse.tensor_value(prog.graph.tensors, vals, t.name))
    return y.reshape(-1, 1, 1) if prog.graph.output_flat else y


def load_input(prog: Program, x: np.ndarray) -> np.ndarray:
    """Quantize a float (C,H,W) image and write it to the input region."""
    x = np.asarray(x, dtype=np.float64)
    if tuple(x.shape) != tuple(prog.input_shape):
        raise UzError(f"input shape {tuple(x.shape)} does not match the network input {prog.input_shape}")
    if not np.all(np.isfinite(x)):
        raise UzError("input holds NaN or infinite values")
    xq = arith.quantize(x, prog.fl_input, prog.cfg.data_bits)
    write_act(prog.image, prog.image.region("input").addr, xq, prog.cfg)
    return xq


def layer_output(prog: Program, idx: int) -> np.ndarray:
    """Read layer ``idx``'s output (its own out_c channels, from its slice of
    the output tensor when it writes part of a concatenation) from the image."""
    q = prog.layers[idx]
    r = prog.image.region(prog.regions[q.name]["out"])
    c, h, w = q.out_shape
    addr = r.addr if q.out_slice is None else slice_addr(r.addr, q.out_slice[0], h, w, prog.cfg)
    return read_act(prog.image, addr, q.out_shape, prog.cfg)[:c]


def tensor_output(prog: Program, name: str) -> np.ndarray:
    """Read a tensor (its logical channels) from the image."""
    if prog.graph is None:
        idx = next(i for i, q in enumerate(prog.layers) if q.name == name)
        return layer_output(prog, idx)
    t = prog.graph.tensors[name]
    r = prog.image.region(prog.plan.buffers[t.buffer].region)
    _, h, w = t.shape
    x = read_act(prog.image, slice_addr(r.addr, t.offset, h, w, prog.cfg), t.pshape, prog.cfg)[:t.phys_c]
    return fuse.logical(t, x)


def network_output(prog: Program) -> np.ndarray:
    """The network output read from the image (logical channels; flattened
    when the network ends in a flatten)."""
    y = tensor_output(prog, prog.output)
    return y.reshape(-1, 1, 1) if prog.graph is not None and prog.graph.output_flat else y


def run_image_observed(prog: Program, engine: bool = False) -> list:
    """Run the program from its image on the functional model, one descriptor
    at a time, reading each layer's output right after it ran: every layer
    is observable even when buffers are reused (compile_network(reuse=True))."""
    outs = []
    for i in range(len(prog.layers)):
        d = isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
        funcmodel.execute_descriptor(prog.image, d, prog.cfg, engine)
        outs.append(layer_output(prog, i))
    return outs


def save_program(prog: Program, out_dir: str) -> None:
    import os
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "image.bin"), "wb") as f:
        f.write(bytes(prog.image.data))
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(prog.manifest(), f, indent=1)
    with open(os.path.join(out_dir, "program.txt"), "w") as f:
        f.write(disassemble(prog))


def disassemble(prog: Program) -> str:
    lines = []
    for i, q in enumerate(prog.layers):
        raw = prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES)
        d = isa.decode(raw)
        fields = " ".join(f"{k}={v:#x}" if k.endswith("addr") or k == "code_mask" else f"{k}={v}"
                          for k, v in d.items() if v)
        lines.append(f"# {i}: {q.name} ({q.kind.name})\n{raw.hex()}\n  {fields}")
    return "\n".join(lines) + "\n"
