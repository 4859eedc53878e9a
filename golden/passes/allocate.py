"""The allocate pass: activation memory.

    plan(graph, qlayers, cfg, reuse=False) -> Plan
    chain_plan(qlayers, input_shape, cfg) -> Plan     (a list of layers as a chain)

Every tensor lives in a **buffer**: its own, or the buffer of the
concatenation holding it (golden.passes.fuse places concats). A buffer is
written first by ``first`` (-1: the network input, written before the run)
and read last by ``last`` (the number of layers for the network output, read
after the run). Each layer's input, output and residual become a buffer plus
a channel slice (``in_c_off``/``in_c_total`` etc. in the descriptor; none
for a tensor that is its whole buffer, so chain descriptors stay as they
were).

Two allocations (``reuse``):

* ``reuse=False`` (the default): one region per buffer, allocated in
  program order (the chain compiler's layout, byte for byte). Every layer's
  output stays in memory after the run, so the testbench and ``uz run`` can
  compare every layer at the end.
* ``reuse=True``: liveness-based packing in one ``activations`` arena. A
  buffer's space is free after its last reader; buffers are placed first
  fit, in program order, at REGION_ALIGN-aligned offsets. A layer's output
  then survives only until a later layer writes over it:
  ``Plan.observable[layer]`` is the last layer index after which it is still
  intact (read it right after the layer runs, e.g.
  golden.compiler.run_image_observed).

``Plan.memory`` reports both figures: ``activation_bytes_peak`` (the arena
reuse needs) and ``activation_bytes_one_region`` (one region per buffer),
whichever is in use.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .. import isa, memimage
from ..config import EngineConfig
from ..memimage import REGION_ALIGN, round_up
from ..network import INPUT
from .fuse import Graph

#: Region of the activation arena when buffers are reused.
ARENA_REGION = "activations"


@dataclass
class Buffer:
    name: str                 # the tensor owning the memory
    region: str               # its region in the image
    shape: tuple              # physical (C, H, W)
    nbytes: int
    first: int                # first layer writing it (-1: the network input)
    last: int                 # last layer reading it (n_layers: the network output)
    offset: Optional[int] = None   # in the arena (reuse)

    @property
    def size(self) -> int:
        """Region size: whole bus beats."""
        return self.nbytes


@dataclass
class LayerIO:
    """Where a layer reads and writes: buffer names and channel slices in
    descriptor units ((c_off, c_total), or None for a whole buffer)."""
    in_buf: str
    out_buf: str
    in_slice: Optional[tuple] = None
    out_slice: Optional[tuple] = None
    res_buf: Optional[str] = None
    res_c_off: int = 0
    res_hw: tuple = (1, 1)


@dataclass
class Plan:
    buffers: dict                               # name -> Buffer, in allocation order
    io: list                                    # LayerIO per layer
    reuse: bool = False
    arena_bytes: int = 0
    observable: dict = field(default_factory=dict)   # layer -> last layer index its output survives
    memory: dict = field(default_factory=dict)


def _nbytes(shape, cfg: EngineConfig) -> int:
    return round_up(max(memimage.act_elems(shape, cfg.pn) * cfg.elem_bytes, 1), cfg.bus_bytes)


def _slice(t_off: int, t_c: int, buf_c: int, hw: tuple, fc: bool, cfg: EngineConfig):
    """(c_off, c_total) of a tensor within its buffer, in the units the
    descriptor counts (an FC input counts elements of its flattened view)."""
    if t_off == 0 and t_c == buf_c:
        return None
    if fc:
        n = hw[0] * hw[1]
        return t_off * n, round_up(buf_c, cfg.pn) * n
    return t_off, buf_c


def plan(graph: Graph, qlayers: list, cfg: EngineConfig, reuse: bool = False) -> Plan:
    """Buffers, their live ranges and each layer's slices; with ``reuse``
    their arena offsets. Sets each QLayer's in_slice/out_slice/res_slice."""
    tensors = graph.tensors
    n = len(qlayers)
    writer_name = {t.name: t.producer for t in tensors.values()}
    bufs = {}

    def buffer(name):
        if name not in bufs:
            root = tensors[name]
            if name == INPUT:
                region = "input"
            elif root.parts:
                region = f"{name}.out"
            else:
                region = f"{writer_name[name]}.out"
            bufs[name] = Buffer(name, region, root.pshape, _nbytes(root.pshape, cfg),
                                -1 if name == INPUT else n, -1)
        return bufs[name]

    buffer(INPUT)
    io = []
    for i, q in enumerate(qlayers):
        tin, tout = tensors[q.in_tensor], tensors[q.out_tensor]
        bin_, bout = buffer(tin.buffer), buffer(tout.buffer)
        bin_.last = max(bin_.last, i)
        bout.first = min(bout.first, i)
        fc = q.kind == isa.Kind.FC
        e = LayerIO(bin_.name, bout.name,
                    _slice(tin.offset, tin.phys_c, bin_.shape[0], tin.shape[1:], fc, cfg),
                    _slice(tout.offset, tout.phys_c, bout.shape[0], tout.shape[1:], False, cfg))
        if q.res_tensor is not None:
            tr = tensors[q.res_tensor]
            br = buffer(tr.buffer)
            br.last = max(br.last, i)
            e.res_buf, e.res_c_off, e.res_hw = br.name, tr.offset, tuple(tr.shape[1:])
            q.res_slice = None if (tr.offset == 0 and tr.phys_c == br.shape[0]) else (tr.offset, br.shape[0])
        q.in_slice, q.out_slice = e.in_slice, e.out_slice
        io.append(e)
    buffer(tensors[graph.output].buffer).last = n
    # allocation order: the input, then each buffer at its first writer
    order = sorted(bufs.values(), key=lambda b: b.first)
    p = Plan({b.name: b for b in order}, io, reuse)
    _figures(p, qlayers, cfg)
    return p


def chain_plan(qlayers: list, input_shape, cfg: EngineConfig) -> Plan:
    """A list of layers run as a chain: layer i reads layer i-1's output
    (layer 0 the network input), each output in a region of its own."""
    bufs = {INPUT: Buffer(INPUT, "input", tuple(input_shape), _nbytes(input_shape, cfg), -1, 0)}
    io = []
    prev = INPUT
    for i, q in enumerate(qlayers):
        bufs[prev].last = i
        bufs[q.name] = Buffer(q.name, f"{q.name}.out", tuple(q.out_shape), _nbytes(q.out_shape, cfg), i, i)
        io.append(LayerIO(prev, q.name))
        prev = q.name
    bufs[prev].last = len(qlayers)
    p = Plan(bufs, io, False)
    _figures(p, qlayers, cfg)
    return p


def _footprint(b: Buffer) -> int:
    return round_up(b.size, REGION_ALIGN)


def first_fit(buffers: list) -> int:
    """Arena offsets (REGION_ALIGN aligned) for buffers with live ranges
    [first, last], in order of first use; a buffer's space is free once its
    last reader has run. Sets each ``offset``; returns the arena size."""
    live = []
    peak = 0
    steps = sorted({b.first for b in buffers})
    for step in steps:
        live = [b for b in live if b.last >= step]
        for b in sorted((b for b in buffers if b.first == step), key=lambda b: b.first):
            size = _footprint(b)
            addr = 0
            for o in sorted(live, key=lambda o: o.offset):
                if addr + size <= o.offset:
                    break
                addr = max(addr, o.offset + _footprint(o))
            b.offset = addr
            live.append(b)
            peak = max(peak, addr + size)
    return peak


def _figures(p: Plan, qlayers: list, cfg: EngineConfig) -> None:
    one = sum(_footprint(b) for b in p.buffers.values())
    peak = first_fit(list(p.buffers.values()))
    if not p.reuse:
        for b in p.buffers.values():
            b.offset = None
    p.arena_bytes = peak if p.reuse else 0
    n = len(qlayers)
    p.observable = {}
    for i, q in enumerate(qlayers):
        mine = p.buffers[p.io[i].out_buf]
        until = n - 1
        if p.reuse:
            for j in range(i + 1, n):
                other = p.buffers[p.io[j].out_buf]
                if other is not mine and _overlap(other, mine):
                    until = j - 1
                    break
        p.observable[q.name] = until
    p.memory = {
        "reuse": p.reuse,
        "activation_bytes": peak if p.reuse else one,
        "activation_bytes_peak": peak,
        "activation_bytes_one_region": one,
        "buffers": {b.name: {"region": b.region, "bytes": b.size, "live": [b.first, b.last],
                             **({"arena_offset": b.offset} if p.reuse else {})}
                    for b in p.buffers.values()},
    }
    if p.reuse:
        p.memory["observable_until"] = dict(p.observable)


def _overlap(a: Buffer, b: Buffer) -> bool:
    return a.offset < b.offset + _footprint(b) and b.offset < a.offset + _footprint(a)
