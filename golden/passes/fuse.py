"""The fuse pass: a folded network graph (golden.passes.fold) -> the engine
layers that run it, in program order, each naming the tensors it reads and
writes.

    fuse(net, cfg, default_rho) -> Graph

Rules (docs/architecture.md, "Graph networks"):

* conv -> CONV, fc -> FC (the FC reads the tensor before any flatten, as the
  chain compiler always did).
* relu and clip(0, hi) fuse into the layer producing their input when they
  are its only reader (ReLU6 = ReLU + a clip at 6 in the output's format);
  otherwise they become a POOL 1x1 identity layer (pool_kh = pool_kw = 1,
  max) with ReLU/clip.
* maxpool fuses into an unshared CONV producer without a pool; otherwise a
  POOL layer. avgpool and gap are POOL layers (pool_avg; gap: pool_global).
* add(a, b) fuses as the residual of the producer of one operand: a CONV/FC
  read only by the add, with no ReLU, clip, pool or residual yet, and the
  other operand computed before it (the later such layer is chosen). Where no
  layer can take it, the add is a depthwise 1x1 identity CONV (groups = C,
  weight 1, no bias) reading one operand with the other as its residual. A
  ReLU/clip after the add fuses as usual (it then acts after the residual).
* shuffle is absorbed into its readers: a layer's ``in_shuffle`` when the
  tensor has no gaps, else folded into the weight columns of a CONV/FC (a
  grouped one densified); where neither works, a copy materialises it.
  A depthwise reader (one output per channel) commutes with the
  permutation, as do its fused ReLU/clip and pool: it reads the unshuffled
  tensor with its weights and bias permuted (dw(P x) = P dw'(x)) and writes
  its output in the permuted physical layout (``phys``), which its readers
  take as they take any channel map (a CONV/FC in its weight columns, a
  lowered grouped one densified, pools keeping it). The shuffle stays the
  depthwise layer's ``in_shuffle`` where that output would reach an add (a
  residual in another layout costs a densified layer or a copy), a grouped
  layer that is kept, or the network output (kept in channel order).
* flatten is an alias: an FC reads the tensor before it.
* concat writes no data: its parts' producers write into channel slices of
  one tensor. Part i starts at the physical end of part i-1 rounded up to PN
  (channel-grouped layout: a slice is then a contiguous run of words), so a
  part whose channel count is not a multiple of PN leaves a gap of zero
  channels. Every tensor therefore has a physical channel map (``phys``:
  the physical channel of each logical channel). A CONV/FC reading a gapped
  tensor gets zero weight columns in the gaps (a grouped one is densified to
  block-diagonal weights, with a note, except a depthwise one with one
  output per channel, which runs on the physical channels and keeps the
  gaps: DenseNet's BatchNorm on a concat); pools and identity adds work on
  the physical channels; a layer taking a gapped residual writes its output
  in the residual's layout (zero weight rows in the gaps).
* Concats are placed in reverse program order, so a concat nested in a later
  one (DenseNet) becomes a prefix/slice of the later one's buffer; a tensor
  that cannot be written into its slot (the network input, a tensor another
  concat already holds) gets a copy: a POOL 1x1 identity layer writing into
  the slot.

Nothing here chooses formats or addresses: golden.passes.quantise and
golden.passes.allocate do.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np

from .. import isa, layers
from ..config import EngineConfig
from ..errors import NetworkError
from ..memimage import round_up
from ..network import INPUT, Network
from .fold import _uses   # readers per tensor: one definition for both passes
from . import groups as _groups

#: Largest values of the pool fields (golden/isa.py): pool_s, pool_kh/kw,
#: pool_pad (the top pad when pool_asym), pool_pad_b/l/r.
POOL_S_MAX = 3
POOL_K_MAX = 255
POOL_PAD_TOP_MAX = 3
POOL_PAD_MAX = 15


class PoolSpec(NamedTuple):
    """A pool the legacy (k, s, pad) triple cannot state: a rectangular or
    large window, unequal pads, an average or a global pool."""
    kh: int
    kw: int
    s: int
    pads: tuple = (0, 0, 0, 0)
    avg: bool = False
    incl_pad: bool = False
    glob: bool = False


def pool_spec(pool) -> Optional[PoolSpec]:
    """Any pool value (legacy (k, s, pad) or PoolSpec) as a PoolSpec."""
    if pool is None or isinstance(pool, PoolSpec):
        return pool
    k, s, p = pool
    return PoolSpec(k, k, s, (p,) * 4)


def make_pool(kh, kw, s, pads, avg=False, incl_pad=False, glob=False):
    """The legacy triple when it states the pool (a max pool of 2x2 or 3x3,
    stride 1..3, one pad on every side), else a PoolSpec."""
    pads = tuple(int(p) for p in pads)
    if not avg and not glob and kh == kw and kh in (2, 3) and 1 <= s <= 3 and len(set(pads)) == 1:
        return (int(kh), int(s), pads[0])
    return PoolSpec(int(kh), int(kw), int(s), pads, bool(avg), bool(incl_pad), bool(glob))


def pool_out_hw(pool, h: int, w: int) -> tuple:
    p = pool_spec(pool)
    if p.glob:
        return 1, 1
    return (layers.out_size(h, p.kh, p.s, p.pads[0], p.pads[1]),
            layers.out_size(w, p.kw, p.s, p.pads[2], p.pads[3]))


@dataclass
class Tensor:
    """An activation tensor. ``shape`` is logical (C, H, W); in memory it has
    ``phys_c`` channels and logical channel j is physical channel
    ``phys[j]`` (``phys`` None: the identity, no gaps). ``producer`` is the
    layer writing it (None for the network input and for a concat, whose
    ``parts`` [[tensor, physical offset]] write it). ``buffer``/``offset``:
    the tensor whose memory holds it and its first physical channel there
    (a tensor with its own memory: itself, 0)."""
    name: str
    shape: tuple
    phys: Optional[tuple] = None
    phys_c: int = 0
    producer: Optional[str] = None
    parts: list = field(default_factory=list)
    buffer: Optional[str] = None
    offset: int = 0
    view: Optional[tuple] = None          # (tensor, physical channel): a channel slice of another tensor
    banded: bool = False                  # written in bands by a lowered grouped layer (not a concat)

    def __post_init__(self):
        self.shape = tuple(int(v) for v in self.shape)
        if not self.phys_c:
            self.phys_c = self.shape[0]

    @property
    def pshape(self) -> tuple:
        """Physical (channels, H, W)."""
        return (self.phys_c,) + self.shape[1:]

    @property
    def gapless(self) -> bool:
        return self.phys is None

    def phys_index(self) -> np.ndarray:
        return np.arange(self.shape[0]) if self.phys is None else np.asarray(self.phys)


@dataclass
class GLayer:
    """An engine layer of a graph: the fields of network.EngineLayer (so a
    chain's list still runs through network.forward_engine_float) plus the
    graph's. Shapes are physical; ``weight`` is (out_c, in_c / groups, K, K)
    over physical channels (FC: (out, C*H*W, 1, 1) over the physical
    (C, H, W) it flattens, ``fc_in_shape``)."""
    name: str
    kind: isa.Kind
    in_shape: tuple
    out_shape: tuple
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    stride: int = 1
    pads: tuple = (0, 0, 0, 0)
    relu: bool = False
    pool: Optional[tuple] = None          # legacy (k, s, pad) or PoolSpec
    rho: float = 1.0
    source: list = field(default_factory=list)
    groups: int = 1
    in_shuffle: int = 0
    clip: Optional[float] = None          # upper bound of a clip to [0, clip] (float, output units)
    input: str = INPUT
    output: str = ""
    residual: Optional[str] = None
    fc_in_shape: Optional[tuple] = None
    synthetic: bool = False               # inserted by the compiler (copy, identity add): never OVSF
    identity: bool = False                # weights are a 0/1 selection: quantised exactly at fl_w = m
    notes: list = field(default_factory=list)
    band_of: Optional["GLayer"] = None    # the grouped layer this is a band of (golden.passes.groups)
    band: Optional[tuple] = None          # its groups.Band
    k_net: int = 0                        # the network's K when lowered to a decomposed kernel (passes.kernels)

    @property
    def k(self) -> int:
        return 1 if self.weight is None else self.weight.shape[2]

    def network_conv(self) -> tuple:
        """(weight, pads) of the network's own convolution: for a layer
        lowered to a decomposed kernel its K x K taps and pads (the added
        taps are zero), so float references and formats are computed on
        exactly the values they were before the lowering."""
        if not self.k_net:
            return self.weight, tuple(self.pads)
        k, d = self.k_net, self.k - self.k_net
        pt, pb, pl, pr = self.pads
        return self.weight[:, :, :k, :k], (pt, pb - d, pl, pr - d)


@dataclass
class Graph:
    """The fuse pass's result: layers in program order, every tensor, the
    network output's tensor (``output_flat``: the network output is its
    flatten) and notes on what the compiler changed."""
    name: str
    input_shape: tuple
    layers: list
    tensors: dict
    output: str
    output_flat: bool = False
    notes: list = field(default_factory=list)
    lowered: dict = field(default_factory=dict)   # grouped layer -> how it was lowered (golden.passes.groups)
    moved: dict = field(default_factory=dict)     # depthwise layer -> the shuffle moved behind it (_Fuser.conv)

    def layer(self, name: str) -> GLayer:
        for L in self.layers:
            if L.name == name:
                return L
        raise KeyError(name)

    def index(self, name: str) -> int:
        for i, L in enumerate(self.layers):
            if L.name == name:
                return i
        raise KeyError(name)



def tensor_value(tensors: dict, values: dict, name: str) -> np.ndarray:
    """The physical (phys_c, H, W) value of a tensor from ``values`` (tensor
    -> array): its own entry, or a concat assembled from its parts (zeros in
    the gaps). Assembled values are cached in ``values``."""
    if name in values:
        return values[name]
    t = tensors[name]
    if t.view is not None:
        src, off = t.view
        return tensor_value(tensors, values, src)[off:off + t.phys_c]
    if not t.parts:
        raise KeyError(f"tensor {name!r} has no value yet")
    vals = [(tensor_value(tensors, values, p), off) for p, off in t.parts]
    out = np.zeros(t.pshape, dtype=vals[0][0].dtype)
    for v, off in vals:
        out[off:off + v.shape[0]] = v
    values[name] = out
    return out


def logical(t: Tensor, x: np.ndarray) -> np.ndarray:
    """The logical channels of a physical value of ``t``."""
    return x if t.phys is None else x[np.asarray(t.phys)]


# ----------------------------------------------------------------- helpers

@dataclass
class _View:
    """What an op name reads: a tensor, optionally with its channels permuted
    (logical channel i is the tensor's logical channel perm[i]; ``shuffle``
    is g when that is exactly one channel shuffle of g groups) and/or
    flattened. ``via``: the alias ops (flatten, shuffle) between."""
    tensor: str
    perm: Optional[np.ndarray] = None
    shuffle: int = 0
    flat: bool = False
    via: tuple = ()


#: Whether the engine's RTL runs depthwise convolution. While it does not, a
#: standalone add is a dense 1x1 identity layer instead of a depthwise one:
#: the same sums (the weights off the diagonal are zero), C/PN times the MACs,
#: and a program the RTL runs.
_ENGINE_RUNS_GROUPS = not any(f == "groups" for f, _ in isa.unsupported_features(
    {"kind": int(isa.Kind.CONV), "groups": 16, "in_c": 16, "out_c": 16}))

densify = _groups.densify

#: Move a channel shuffle read by a depthwise layer behind it (while the RTL
#: does not run ``in_shuffle``; tests turn it off for the reference program).
MOVE_SHUFFLE = any(f == "in_shuffle" for f, _ in isa.unsupported_features(
    {"kind": int(isa.Kind.CONV), "in_c": 16, "out_c": 16, "in_shuffle": 2}))




class _Fuser:
    def __init__(self, net: Network, cfg: EngineConfig, default_rho: float):
        self.net = net
        self.cfg = cfg
        self.pn = cfg.pn
        self.default_rho = default_rho
        self.layers: list[GLayer] = []
        self.tensors = {INPUT: Tensor(INPUT, tuple(net.input_shape))}
        self.views = {INPUT: _View(INPUT)}
        self.uses = _uses(net)
        self.notes = []
        self.materialised = {}
        self.n_synth = 0
        self.lowered = {}
        self.moved = {}
        self.readers = {}
        for op in net.ops:
            for s in dict.fromkeys(op.inputs):
                self.readers.setdefault(s, []).append(op)

    # -- bookkeeping
    def writer(self, tensor: str) -> Optional[GLayer]:
        t = self.tensors[tensor]
        if t.producer is None:
            return None
        return next(L for L in self.layers if L.name == t.producer)

    def index(self, layer: GLayer) -> int:
        return next(i for i, L in enumerate(self.layers) if L is layer)

    def exclusive(self, v: _View, reader: str) -> bool:
        """The tensor of ``v`` (and every alias on the way) is read by
        ``reader`` alone and is not the network output."""
        return all(self.uses.get(n, 0) == 1 for n in (v.tensor,) + v.via)

    def new_tensor(self, name, shape, phys=None, phys_c=0, producer=None) -> Tensor:
        if name in self.tensors:
            raise NetworkError(f"tensor name {name!r} used twice")
        t = Tensor(name, shape, phys, phys_c, producer)
        self.tensors[name] = t
        return t

    def rename(self, old: str, new: str) -> None:
        """The tensor ``old`` now holds the output of op ``new`` (a fused op)."""
        t = self.tensors.pop(old)
        t.name = new
        self.tensors[new] = t
        L = self.writer(new)
        L.output = new

    def synth_name(self, base: str, what: str) -> str:
        self.n_synth += 1
        return f"{base}#{what}{self.n_synth}"

    def add_layer(self, L: GLayer, out_shape_logical, phys=None, phys_c=0, at=None) -> GLayer:
        if at is None:
            self.layers.append(L)
        else:
            self.layers.insert(at, L)
        self.new_tensor(L.output, out_shape_logical, phys, phys_c, producer=L.name)
        return L

    def ready_index(self, tensor: str) -> int:
        """The index of the last layer writing ``tensor`` (-1: none, the input)."""
        t = self.tensors[tensor]
        if t.parts:
            return max([self.ready_index(p) for p, _ in t.parts], default=-1)
        if t.view is not None:
            return self.ready_index(t.view[0])
        if t.producer is None:
            return -1
        return self.index(self.writer(tensor))

    def resolve(self, name: str) -> _View:
        return self.views[name]

    # -- reads that need a real tensor
    def plain(self, v: _View, who: str) -> _View:
        """A view without a channel permutation (materialised by a copy)."""
        if v.perm is None:
            return v
        key = (v.tensor, tuple(int(i) for i in v.perm))
        if key not in self.materialised:
            t = self.tensors[v.tensor]
            name = self.synth_name(v.tensor, "shuffled")
            if v.shuffle and t.gapless:
                L = GLayer(name, isa.Kind.POOL, t.pshape, t.pshape, pool=make_pool(1, 1, 1, (0,) * 4),
                           in_shuffle=v.shuffle, input=t.name, output=name, synthetic=True, source=list(v.via))
                self.add_layer(L, t.shape)
            else:
                c = t.shape[0]
                w = np.zeros((c, t.phys_c, 1, 1))
                w[np.arange(c), t.phys_index()[np.asarray(v.perm)], 0, 0] = 1.0
                L = GLayer(name, isa.Kind.CONV, t.pshape, (c,) + t.shape[1:], weight=w, input=t.name,
                           output=name, synthetic=True, identity=True, source=list(v.via))
                self.add_layer(L, t.shape)
                self.notes.append(f"{who}: the channel permutation of {v.tensor!r} runs as a 1x1 copy "
                                  f"layer {name!r}")
            self.materialised[key] = name
        return _View(self.materialised[key], flat=v.flat)

    def spatial(self, v: _View, who: str, what: str) -> None:
        t = self.tensors[v.tensor]
        if v.flat and t.shape[1:] != (1, 1):
            raise NetworkError(f"layer {who!r}: {what} of a flattened {t.shape[0]}x{t.shape[1]}x{t.shape[2]} "
                               f"tensor is not supported (only an fc reads through a flatten)")

    # -- ops
    def conv(self, op) -> None:
        v = self.resolve(op.inputs[0])
        self.spatial(v, op.name, "a convolution")
        t = self.tensors[v.tensor]
        a = op.attrs
        w = np.asarray(op.weight, dtype=np.float64)
        g = int(a.get("groups", 1))
        perm, shuffle = v.perm, 0
        moved = g > 1 and g == t.shape[0] == w.shape[0] and perm is not None and self._move_shuffle(op, v)
        if perm is not None and v.shuffle and t.gapless and not moved:
            perm, shuffle = None, v.shuffle
        if g > 1 and g == t.shape[0] == w.shape[0] and (moved or (perm is None and not t.gapless)):
            # depthwise, one output per channel: it runs on the physical
            # channels (zero weights in the gaps) and writes the input's
            # layout; output o reads logical channel perm[o] (a moved shuffle),
            # so its weight and bias go to that channel's physical place
            idx = t.phys_index() if perm is None else t.phys_index()[np.asarray(perm)]
            w2 = np.zeros((t.phys_c,) + w.shape[1:])
            w2[idx] = w
            b2 = None
            if op.bias is not None:
                b2 = np.zeros(t.phys_c)
                b2[idx] = op.bias
            oh, ow = a["out_shape"][1:]
            L = GLayer(op.name, isa.Kind.CONV, t.pshape, (t.phys_c, oh, ow), w2, b2, a["stride"],
                       tuple(a["pads"]), rho=float(a.get("rho", self.default_rho)),
                       source=[op.name] + list(a.get("folded", [])), groups=t.phys_c, input=t.name,
                       output=op.name)
            phys = None if (t.phys_c == len(idx) and np.array_equal(idx, np.arange(len(idx)))) \
                else tuple(int(i) for i in idx)
            self.add_layer(L, a["out_shape"], phys, t.phys_c)
            self.views[op.name] = _View(op.name)
            return
        if g > 1 and (perm is not None or not t.gapless):
            r = t.phys_c * w.shape[0] / (w.shape[0] * w.shape[1])
            self.notes.append(f"{op.name}: grouped convolution (groups={g}) lowered to dense block-diagonal weights "
                              f"(its input {'has gaps' if t.phys_c > t.shape[0] else 'is permuted'}); MAC overhead {r:.3f}")
            self.lowered[op.name] = {"groups": g, "how": "dense", "bands": [(0, w.shape[0], 0, t.phys_c)],
                                     "layers": [op.name], "overhead": r}
            w = densify(w, g)
            g = 1
        if perm is not None:
            w2 = np.zeros_like(w)
            w2[:, np.asarray(perm)] = w
            w = w2
        if not t.gapless:
            w2 = np.zeros((w.shape[0], t.phys_c) + w.shape[2:])
            w2[:, t.phys_index()] = w
            w = w2
        L = GLayer(op.name, isa.Kind.CONV, t.pshape, tuple(a["out_shape"]), w, op.bias, a["stride"],
                   tuple(a["pads"]), rho=float(a.get("rho", self.default_rho)),
                   source=[op.name] + list(a.get("folded", [])), groups=g, in_shuffle=shuffle,
                   input=t.name, output=op.name)
        self.add_layer(L, a["out_shape"])
        self.views[op.name] = _View(op.name)

    def _move_shuffle(self, op, v: _View) -> bool:
        """Whether depthwise ``op``, reading the permuted view ``v``, takes
        the permutation behind it (a note says which, or why not)."""
        if not MOVE_SHUFFLE:
            return False
        shuffles = ", ".join(repr(n) for n in v.via if self.net.op(n).type == "shuffle")
        why = self._layout_stays(op.name, set())
        if why:
            if v.shuffle and self.tensors[v.tensor].gapless:
                self.notes.append(f"{op.name}: the channel shuffle {shuffles} stays its input shuffle ({why})")
            return False
        self.moved[op.name] = {"shuffles": [n for n in v.via if self.net.op(n).type == "shuffle"],
                               "perm": [int(i) for i in v.perm], "input": v.tensor}
        self.notes.append(f"{op.name}: the channel shuffle {shuffles} moved behind this depthwise layer (its "
                          f"weights and bias permuted); it writes its output in the shuffled channel order, "
                          f"which its readers take")
        return True

    def _layout_stays(self, name: str, seen: set) -> str:
        """Why the output of op ``name`` should not be written in a permuted
        channel layout ('' when it may): following ops that keep a layout
        (aliases, ReLU/clip, pools, concats, shuffles, depthwise convs) to
        those that fold it into weight columns (FC, dense or lowered grouped
        conv); an add would need its other operand in the same layout, a kept
        grouped conv would be densified, and the network output stays in
        channel order."""
        if name == self.net.output:
            return "it reaches the network output"
        if name in seen:
            return ""
        seen.add(name)
        for r in self.readers.get(name, []):
            if r.type == "add":
                return f"it reaches the add {r.name!r}"
            if r.type == "conv":
                g, cout = int(r.attrs.get("groups", 1)), r.weight.shape[0]
                cin = r.weight.shape[1] * g
                if g > 1 and not (g == cin == cout) and not _groups.needs_lowering(g, cin, cout):
                    return f"grouped conv {r.name!r} is kept"
                if not (g > 1 and g == cin == cout):
                    continue
            elif r.type == "fc":
                continue
            why = self._layout_stays(r.name, seen)
            if why:
                return why
        return ""

    def fc(self, op) -> None:
        v = self.resolve(op.inputs[0])
        t = self.tensors[v.tensor]
        c, h, wd = t.shape
        nout = op.weight.shape[0]
        w4 = np.asarray(op.weight, dtype=np.float64).reshape(nout, c, h, wd)
        if v.perm is not None:
            w2 = np.zeros_like(w4)
            w2[:, np.asarray(v.perm)] = w4
            w4 = w2
        if not t.gapless:
            w2 = np.zeros((nout, t.phys_c, h, wd))
            w2[:, t.phys_index()] = w4
            w4 = w2
        nin = t.phys_c * h * wd
        L = GLayer(op.name, isa.Kind.FC, (nin, 1, 1), (nout, 1, 1), w4.reshape(nout, nin, 1, 1), op.bias,
                   rho=float(op.attrs.get("rho", self.default_rho)),
                   source=[op.name] + list(op.attrs.get("folded", [])), input=t.name, output=op.name,
                   fc_in_shape=t.pshape)
        self.add_layer(L, (nout, 1, 1))
        self.views[op.name] = _View(op.name)

    def _fusable_producer(self, v: _View, reader: str, kinds) -> Optional[GLayer]:
        if v.perm is not None or v.tensor == INPUT:
            return None
        P = self.writer(v.tensor)
        if P is None or P.kind not in kinds or not self.exclusive(v, reader):
            return None
        return P

    def _identity_pool(self, op, v: _View, relu=False, clip=None) -> None:
        """A POOL 1x1 identity layer (max over one cell) reading ``v``, with ReLU/clip."""
        self.pooling(op, v, make_pool(1, 1, 1, (0,) * 4), relu=relu, clip=clip)

    def pooling(self, op, v: _View, pool, relu=False, clip=None) -> None:
        v = self.plain_or_shuffle(v, op.name)
        t = self.tensors[v.tensor]
        oh, ow = pool_out_hw(pool, t.shape[1], t.shape[2])
        L = GLayer(op.name, isa.Kind.POOL, t.pshape, (t.phys_c, oh, ow), pool=pool, relu=relu, clip=clip,
                   source=[op.name], in_shuffle=v.shuffle, input=t.name, output=op.name)
        self.add_layer(L, (t.shape[0], oh, ow), t.phys, t.phys_c)
        self.views[op.name] = _View(op.name)

    def plain_or_shuffle(self, v: _View, who: str) -> _View:
        """A view a POOL can read: no permutation, or one shuffle of a gapless tensor."""
        if v.perm is None or (v.shuffle and self.tensors[v.tensor].gapless):
            return v
        return self.plain(v, who)

    def activation(self, op, relu: bool, clip: Optional[float]) -> None:
        v = self.resolve(op.inputs[0])
        P = self._fusable_producer(v, op.name, (isa.Kind.CONV, isa.Kind.FC, isa.Kind.POOL))
        if P is not None:
            P.relu = P.relu or relu
            if clip is not None:
                P.clip = clip if P.clip is None else min(P.clip, clip)
            P.source.append(op.name)
            self.rename(v.tensor, op.name)
            self.views[op.name] = _View(op.name, flat=v.flat)
            return
        self._identity_pool(op, v, relu=relu, clip=clip)
        self.views[op.name] = _View(op.name, flat=v.flat)

    def clip(self, op) -> None:
        lo, hi = float(op.attrs["lo"]), float(op.attrs["hi"])
        if lo == -np.inf and hi == np.inf:                        # no-op: an alias
            v = self.resolve(op.inputs[0])
            self.views[op.name] = dataclasses.replace(v, via=v.via + (op.name,))
            return
        if lo != 0.0:
            raise NetworkError(f"layer {op.name!r}: clip to [{lo:g}, {hi:g}] is not supported: the engine clips "
                               f"to [0, max] (ReLU6 is clip 0..6)")
        self.activation(op, True, None if hi == np.inf else hi)

    def maxpool(self, op) -> None:
        v = self.resolve(op.inputs[0])
        self.spatial(v, op.name, "a max pool")
        a = op.attrs
        k, s = a["kernel"], a["stride"]
        pads = tuple(a.get("pads", (a.get("pad", 0),) * 4))
        _check_pool(op.name, k, k, s, pads)
        pool = make_pool(k, k, s, pads)
        P = self._fusable_producer(v, op.name, (isa.Kind.CONV,))
        if P is not None and P.pool is None:
            P.pool = pool
            c, h, w = P.out_shape
            P.out_shape = (c,) + pool_out_hw(pool, h, w)
            P.source.append(op.name)
            t = self.tensors[v.tensor]
            t.shape = (t.shape[0],) + P.out_shape[1:]
            self.rename(v.tensor, op.name)
            self.views[op.name] = _View(op.name)
            return
        self.pooling(op, v, pool)

    def avgpool(self, op) -> None:
        v = self.resolve(op.inputs[0])
        self.spatial(v, op.name, "an average pool")
        a = op.attrs
        k, s, pads = a["kernel"], a["stride"], tuple(a["pads"])
        _check_pool(op.name, k, k, s, pads)
        self.pooling(op, v, PoolSpec(k, k, s, pads, True, bool(a["count_include_pad"]), False))

    def gap(self, op) -> None:
        v = self.resolve(op.inputs[0])
        self.spatial(v, op.name, "a global average pool")
        _, h, w = self.tensors[v.tensor].shape
        self.pooling(op, v, PoolSpec(h, w, 1, (0, 0, 0, 0), True, False, True))

    def ready_before(self, tensor: str, idx: int) -> bool:
        return self.ready_index(tensor) < idx

    def add(self, op) -> None:
        va, vb = self.resolve(op.inputs[0]), self.resolve(op.inputs[1])
        for v in (va, vb):
            self.spatial(v, op.name, "an add")
        flat = va.flat or vb.flat
        cands = []
        for v, other in ((va, vb), (vb, va)):
            P = self._fusable_producer(v, op.name, (isa.Kind.CONV, isa.Kind.FC))
            if (P is None or other.tensor == v.tensor or P.relu or P.clip is not None or P.pool is not None
                    or P.residual is not None):
                continue
            if not self.ready_before(other.tensor, self.index(P)):
                continue
            cands.append((self.index(P), P, v, other))
        if cands:
            _, P, v, other = max(cands, key=lambda c: c[0])
            other = self.plain(other, op.name)
            r = self.tensors[other.tensor]
            if not self.ready_before(r.name, self.index(P)):
                # a copy materialising a permuted operand (its input is ready) runs right before P
                Lc = self.writer(r.name)
                self.layers.remove(Lc)
                self.layers.insert(self.index(P), Lc)
            t = self.tensors[v.tensor]
            if (t.phys, t.phys_c) != (r.phys, r.phys_c):
                self._scatter_rows(P, r, t)
                t.phys, t.phys_c = r.phys, r.phys_c
            P.residual = r.name
            P.source.append(op.name)
            self.rename(v.tensor, op.name)
            self.views[op.name] = _View(op.name, flat=flat)
            return
        # standalone: a 1x1 identity layer reading a, with b as its residual
        va, vb = self.plain(va, op.name), self.plain(vb, op.name)
        ta, tb = self.tensors[va.tensor], self.tensors[vb.tensor]
        if ta.phys == tb.phys and ta.phys_c == tb.phys_c and _ENGINE_RUNS_GROUPS:
            c = ta.phys_c
            w = np.zeros((c, 1, 1, 1))
            w[ta.phys_index(), 0, 0, 0] = 1.0
            groups = c
        else:
            w = np.zeros((tb.phys_c, ta.phys_c, 1, 1))
            w[tb.phys_index(), ta.phys_index(), 0, 0] = 1.0
            groups = 1
            why = ("the operands' channel layouts differ" if _ENGINE_RUNS_GROUPS
                   else "the engine does not run grouped convolution")
            self.notes.append(f"{op.name}: the add runs as a dense 1x1 identity layer ({why})")
        L = GLayer(op.name, isa.Kind.CONV, ta.pshape, tb.pshape, w, None, groups=groups, input=ta.name,
                   output=op.name, residual=tb.name, synthetic=True, identity=True, source=[op.name])
        self.add_layer(L, tb.shape, tb.phys, tb.phys_c)
        self.views[op.name] = _View(op.name, flat=flat)

    def _scatter_rows(self, P: GLayer, r: Tensor, t: Tensor) -> None:
        """P writes its output ``t`` in the residual's physical layout: zero
        weight rows (and bias) in the gaps."""
        w, b = P.weight, P.bias
        if P.groups > 1:
            cin, cout, g = P.in_shape[0], w.shape[0], P.groups
            ratio = r.phys_c * cin / (cout * w.shape[1])
            self.notes.append(f"{P.name}: grouped convolution (groups={g}) lowered to dense block-diagonal weights "
                              f"(its residual {r.name!r} has gaps); MAC overhead {ratio:.3f}")
            self.lowered[P.name] = {"groups": g, "how": "dense", "bands": [(0, r.phys_c, 0, cin)],
                                    "layers": [P.name], "overhead": ratio}
            w = densify(w, g)
            P.groups = 1
        if not t.gapless:
            # P wrote its input's gapped layout (a depthwise layer on a concat): its logical rows
            w, b = w[t.phys_index()], None if b is None else b[t.phys_index()]
        idx = r.phys_index()
        w2 = np.zeros((r.phys_c,) + w.shape[1:])
        w2[idx] = w
        P.weight = w2
        if b is not None:
            b2 = np.zeros(r.phys_c)
            b2[idx] = b
            P.bias = b2
        P.out_shape = (r.phys_c,) + tuple(P.out_shape[1:])

    def concat(self, op) -> None:
        views = []
        for i in op.inputs:
            v = self.plain(self.resolve(i), op.name)
            self.spatial(v, op.name, "a concat")
            views.append(v)
        parts, phys, off = [], [], 0
        total = 0
        for v in views:
            t = self.tensors[v.tensor]
            off = round_up(off, self.pn)
            parts.append([t.name, off])
            phys.extend(int(off + p) for p in t.phys_index())
            total += t.shape[0]
            off += t.phys_c
        h, w = self.tensors[views[0].tensor].shape[1:]
        phys_t = None if phys == list(range(total)) else tuple(phys)
        t = self.new_tensor(op.name, (total, h, w), phys_t, off)
        t.parts = parts
        if off > total:                                      # not for parts that are only permuted
            self.notes.append(f"{op.name}: concatenation with gaps (parts start at multiples of PN={self.pn}): "
                              f"{off} physical channels for {total}")
        self.views[op.name] = _View(op.name, flat=any(v.flat for v in views))

    def shuffle(self, op) -> None:
        v = self.resolve(op.inputs[0])
        self.spatial(v, op.name, "a channel shuffle")
        g = int(op.attrs["groups"])
        c = self.tensors[v.tensor].shape[0]
        p = np.asarray(op.attrs.get("perm", _shuffle_perm(c, g)), dtype=np.int64)
        if v.perm is None:
            self.views[op.name] = _View(v.tensor, p, g, v.flat, v.via + (op.name,))
        else:
            self.views[op.name] = _View(v.tensor, np.asarray(v.perm)[p], 0, v.flat, v.via + (op.name,))

    def flatten(self, op) -> None:
        v = self.resolve(op.inputs[0])
        self.views[op.name] = dataclasses.replace(v, flat=True, via=v.via + (op.name,))

    # -- concat placement
    def place(self) -> None:
        concats = [t for t in self.tensors.values() if t.parts]
        for C in reversed(concats):
            if C.buffer is None:
                C.buffer, C.offset = C.name, 0
            for i, (p, off) in enumerate(C.parts):
                T = self.tensors[p]
                if T.buffer is None and (T.producer is not None or T.parts):
                    T.buffer, T.offset = C.buffer, C.offset + off
                    continue
                name = self.synth_name(T.name, "copy")
                at = self.ready_index(T.name) + 1
                L = GLayer(name, isa.Kind.POOL, T.pshape, T.pshape, pool=make_pool(1, 1, 1, (0,) * 4),
                           input=T.name, output=name, synthetic=True, source=[C.name])
                self.add_layer(L, T.shape, T.phys, T.phys_c, at=at)
                cp = self.tensors[name]
                cp.buffer, cp.offset = C.buffer, C.offset + off
                C.parts[i] = [name, off]
                why = "the network input" if T.name == INPUT else f"already held by concat {T.buffer!r}"
                self.notes.append(f"{C.name}: part {T.name!r} ({why}) is copied into its slot by {name!r}")
        for t in self.tensors.values():
            if t.buffer is None:
                t.buffer, t.offset = t.name, 0

    def lower_groups(self) -> None:
        """Grouped CONVs the engine does not run become dense channel-slice
        bands writing slices of their output tensor, or one dense
        block-diagonal layer where bands do not apply (golden.passes.groups).
        Runs after every op is fused, so ReLU, clip and residual are known."""
        for L in list(self.layers):
            cin, cout = L.in_shape[0], L.out_shape[0]
            if L.kind != isa.Kind.CONV or not _groups.needs_lowering(L.groups, cin, cout):
                continue
            g = L.groups
            why = self._bands_refused(L)
            bands = None if why else _groups.plan_bands(cin, cout, g, self.cfg)
            if bands is not None and len(bands) == 1:
                why, bands = "one band would read every input channel", None
            shape = f"groups={g}, {cin}->{cout} channels, {L.k}x{L.k}"
            if bands is None:
                bands = [_groups.Band(0, cout, 0, cin)]
                self._densify_in_place(L)
                r = _groups.overhead(bands, cin, cout, g)
                self.notes.append(f"{L.name}: grouped convolution ({shape}) lowered to dense block-diagonal "
                                  f"weights ({why}); MAC overhead {r:.3f}")
                self.lowered[L.name] = {"groups": g, "how": "dense", "bands": [tuple(b) for b in bands],
                                        "layers": [L.name], "overhead": r}
                continue
            names = self._split_bands(L, bands)
            r = _groups.overhead(bands, cin, cout, g)
            spans = ", ".join(f"out {b.o0}:{b.o1} in {b.i0}:{b.i1}" for b in bands)
            self.notes.append(f"{L.name}: grouped convolution ({shape}) lowered to {len(bands)} dense "
                              f"channel-slice bands ({spans}); MAC overhead {r:.3f}")
            self.lowered[L.name] = {"groups": g, "how": "bands", "bands": [tuple(b) for b in bands],
                                    "layers": names, "overhead": r}

    def _bands_refused(self, L: GLayer) -> str:
        """Why a grouped layer cannot run as bands ('' when it can)."""
        tin, tout = self.tensors[L.input], self.tensors[L.output]
        if L.pool is not None:
            return "a fused pool: the tile pass may split it off the layer"
        if L.in_shuffle:
            return "its input is channel-shuffled: the shuffle is folded into the weight columns"
        if not tin.gapless or not tout.gapless or tout.phys_c != L.out_shape[0]:
            return "its input or output has gaps"
        if L.residual is not None:
            r = self.tensors[L.residual]
            if not r.gapless or r.phys_c != L.out_shape[0] or r.view is not None:
                return "its residual's channel layout differs from its output's"
        return ""

    def _densify_in_place(self, L: GLayer) -> None:
        w = densify(L.weight, L.groups)
        if L.in_shuffle > 1:
            # the shuffle as a column permutation: no in_shuffle for the engine
            w2 = np.zeros_like(w)
            w2[:, np.asarray(_shuffle_perm(L.in_shape[0], L.in_shuffle))] = w
            w, L.in_shuffle = w2, 0
        L.weight, L.groups = w, 1

    def _channel_view(self, src: str, c0: int, c1: int) -> str:
        """A tensor naming physical channels [c0, c1) of ``src`` (the tensor
        itself when that is all of it)."""
        t = self.tensors[src]
        if c0 == 0 and c1 == t.phys_c:
            return src
        name = f"{src}#ch{c0}-{c1}"
        if name not in self.tensors:
            v = self.new_tensor(name, (c1 - c0,) + t.shape[1:])
            v.view = (src, c0)
        return name

    def _split_bands(self, L: GLayer, bands: list) -> list:
        """Replace L by one dense layer per band; its output tensor becomes
        the bands' outputs at their channel offsets."""
        T = self.tensors[L.output]
        at = self.index(L)
        self.layers.remove(L)
        T.producer, T.banded, T.parts = None, True, []
        oh, ow = L.out_shape[1:]
        names = []
        for j, b in enumerate(bands):
            name = f"{L.name}#band{j}"
            B = GLayer(name, isa.Kind.CONV, (b.i1 - b.i0,) + tuple(L.in_shape[1:]), (b.o1 - b.o0, oh, ow),
                       _groups.band_weight(L.weight, L.groups, b), None if L.bias is None else L.bias[b.o0:b.o1],
                       L.stride, tuple(L.pads), L.relu, None, L.rho, list(L.source), clip=L.clip,
                       input=self._channel_view(L.input, b.i0, b.i1), output=name,
                       residual=None if L.residual is None else self._channel_view(L.residual, b.o0, b.o1),
                       synthetic=L.synthetic, notes=list(L.notes), band_of=L, band=b)
            self.layers.insert(at + j, B)
            self.new_tensor(name, B.out_shape, producer=name)
            T.parts.append([name, b.o0])
            names.append(name)
        return names

    def resolve_views(self) -> None:
        """A channel view lies in its tensor's buffer (known once concats are placed)."""
        for t in self.tensors.values():
            if t.view is not None:
                src = self.tensors[t.view[0]]
                t.buffer, t.offset = src.buffer, src.offset + t.view[1]

    def align_residuals(self) -> None:
        """A residual is read from ``res_addr``, which has no channel offset: a
        residual lying in a concatenation at a slice whose first byte is off
        the bus is copied into a tensor of its own first."""
        cfg = self.cfg
        copies = {}
        for L in list(self.layers):
            t = self.tensors.get(L.residual) if L.residual is not None else None
            if t is None or not t.offset:
                continue
            h, w = t.shape[1:]
            if (t.offset // self.pn) * h * w * self.pn * cfg.elem_bytes % cfg.bus_bytes == 0:
                continue
            if t.name not in copies:
                name = self.synth_name(t.name, "copy")
                C = GLayer(name, isa.Kind.POOL, t.pshape, t.pshape, pool=make_pool(1, 1, 1, (0,) * 4),
                           input=t.name, output=name, synthetic=True, source=[L.name])
                self.add_layer(C, t.shape, t.phys, t.phys_c, at=self.ready_index(t.name) + 1)
                cp = self.tensors[name]
                cp.buffer, cp.offset = name, 0
                copies[t.name] = name
                self.notes.append(f"{L.name}: its residual {t.name!r} lies at channel {t.offset} of {t.buffer!r}, "
                                  f"off the {cfg.bus_bytes}-byte bus; {name!r} copies it out")
            L.residual = copies[t.name]


def _shuffle_perm(c: int, g: int) -> list:
    return [(i % g) * (c // g) + i // g for i in range(c)]


def _check_pool(name, kh, kw, s, pads) -> None:
    if not 1 <= s <= POOL_S_MAX:
        raise NetworkError(f"layer {name!r}: pool stride {s} not supported (1..{POOL_S_MAX})")
    if max(kh, kw) > POOL_K_MAX:
        raise NetworkError(f"layer {name!r}: pool window {kh}x{kw} larger than {POOL_K_MAX}")
    pt, pb, pl, pr = pads
    if len(set(pads)) == 1 and pt <= POOL_PAD_TOP_MAX:
        return
    if pt > POOL_PAD_TOP_MAX or max(pb, pl, pr) > POOL_PAD_MAX:
        raise NetworkError(f"layer {name!r}: pool pads (top, bottom, left, right) {tuple(pads)} not supported "
                           f"(top at most {POOL_PAD_TOP_MAX}, the others at most {POOL_PAD_MAX})")


_OPS = {"conv": _Fuser.conv, "fc": _Fuser.fc, "maxpool": _Fuser.maxpool, "avgpool": _Fuser.avgpool,
        "gap": _Fuser.gap, "add": _Fuser.add, "concat": _Fuser.concat, "shuffle": _Fuser.shuffle,
        "flatten": _Fuser.flatten, "clip": _Fuser.clip}


def fuse(net: Network, cfg: EngineConfig, default_rho: float = 1.0) -> Graph:
    """Engine layers of a folded network (no batchnorm, affine or dropout
    left: run golden.passes.fold.fold first), with the tensors they read and
    write and the concats placed. The network is not modified."""
    f = _Fuser(net, cfg, default_rho)
    for op in net.ops:
        if op.type == "relu":
            f.activation(op, True, None)
        elif op.type in _OPS:
            _OPS[op.type](f, op)
        elif op.type == "dropout":
            v = f.resolve(op.inputs[0])
            f.views[op.name] = dataclasses.replace(v, via=v.via + (op.name,))
        else:
            raise NetworkError(f"layer {op.name!r}: {op.type} must be folded before fusing (golden.passes.fold)")
    if not f.layers:
        raise NetworkError(f"network {net.name!r} has no layer the engine runs")
    out = f.plain(f.resolve(net.output), "the network output")
    if out.tensor == INPUT:
        raise NetworkError(f"network {net.name!r}: the output is the network input")
    f.lower_groups()
    f.place()
    f.resolve_views()
    f.align_residuals()
    return Graph(net.name, tuple(net.input_shape), f.layers, f.tensors, out.tensor, out.flat, f.notes,
                 f.lowered, f.moved)


# ------------------------------------------------------------ float run

def float_forward(graph: Graph, x: np.ndarray) -> dict:
    """The float value of every tensor (physical layout, zero gaps) when the
    engine layers run in real arithmetic: the reference each layer's output
    format is chosen against (for a chain exactly network.forward_engine_float)."""
    vals = {INPUT: np.asarray(x, dtype=np.float64)}
    for L in graph.layers:
        xin = tensor_value(graph.tensors, vals, L.input)
        if L.in_shuffle > 1:
            xin = xin.copy()
            xin[:L.in_shape[0]] = xin[_shuffle_perm(L.in_shape[0], L.in_shuffle)]
        vals[L.output] = layer_float(L, xin, None if L.residual is None else
                                     tensor_value(graph.tensors, vals, L.residual))
    return vals


def layer_float(L: GLayer, x: np.ndarray, residual=None) -> np.ndarray:
    """One engine layer in float (input already shuffled)."""
    if L.kind == isa.Kind.POOL:
        y = pool_float(L.pool, x)
    else:
        if L.kind == isa.Kind.FC:
            y = layers.fc_float(x.reshape(-1), L.weight[:, :, 0, 0], L.bias).reshape(-1, 1, 1)
        elif L.groups > 1:
            y = layers.conv_float(x, L.weight, L.bias, L.stride, L.pads, groups=L.groups)
        else:
            w, pads = L.network_conv()
            y = layers.conv_float(x, w, L.bias, L.stride, pads)
        if residual is not None:
            y = y + residual
    if L.relu:
        y = layers.relu_float(y)
    if L.clip is not None:
        y = layers.clip_float(y, 0.0, L.clip)
    if L.kind != isa.Kind.POOL and L.pool is not None:
        y = pool_float(L.pool, y)
    return y


def pool_float(pool, x: np.ndarray) -> np.ndarray:
    if not isinstance(pool, PoolSpec):
        return layers.maxpool_float(x, *pool)
    if pool.glob:
        return layers.global_avgpool_float(x)
    if pool.avg:
        return layers.avgpool_float(x, (pool.kh, pool.kw), pool.s, pool.pads, int(pool.incl_pad))
    return layers.maxpool_float(x, (pool.kh, pool.kw), pool.s, pads=pool.pads)


def pool_int(pool, x: np.ndarray, data_bits: int) -> np.ndarray:
    """A pool on integers, as golden.funcmodel runs the descriptor."""
    if not isinstance(pool, PoolSpec):
        return layers.maxpool_int(x, *pool)
    if pool.glob:
        return layers.global_avgpool_int(x, data_bits=data_bits)
    if pool.avg:
        return layers.avgpool_int(x, (pool.kh, pool.kw), pool.s, pool.pads, int(pool.incl_pad), data_bits=data_bits)
    return layers.maxpool_int(x, (pool.kh, pool.kw), pool.s, pads=pool.pads)
