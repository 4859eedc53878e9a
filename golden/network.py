"""Network description, float reference and the float-level transformations
(BatchNorm folding, SVD split of fully connected layers, fusion into engine
layers).

A network is a graph of ops, stored in topological order. Each op reads the
outputs of the ops named in its ``inputs`` (the string ``"input"`` is the
network input); its own output is named by the op's name, and
``Network.output`` names the op whose output is the network's. A chain is the
special case where every op reads the one before it. The JSON form::

    {"name": "example5", "input_shape": [3, 32, 32],
     "weights": {"seed": 7},            # or "weights": "file.npz"
     "layers": [
        {"name": "conv1", "type": "conv", "out_channels": 16, "kernel": 3,
         "stride": 1, "pad": 1, "rho": 1},
        {"name": "bn1", "type": "batchnorm"},
        {"type": "relu"},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"name": "fc1", "type": "fc", "out_features": 10, "svd_rank": 4}]}

A layer without ``"inputs"`` reads the layer before it (the first reads the
network input); ``"inputs": ["a", "b"]`` names what it reads (``"input"`` for
the network input). The last layer is the network output, and every other
layer must be read by a later one (a layer read by none is an error: a
forgotten ``"inputs"``, most likely). Layer types:

    conv       out_channels, kernel, stride (1), pad (0), groups (1), bias (true)
    fc         out_features, bias (true); svd_rank or svd_energy
    relu; relu6 (a clip to 0..6); clip      min, max (floats; missing = unbounded)
    maxpool    kernel, stride (= kernel), pad (0)
    avgpool    kernel, stride (= kernel), pad (0), count_include_pad (false)
    gap        global average pool
    batchnorm  eps (1e-5);  affine: per-channel y = x * scale + shift
    add        two inputs of the same shape;  concat: inputs along channels
    shuffle    groups: the channel shuffle of ShuffleNet
    flatten, dropout

``pad`` is an int or [top, bottom, left, right]. Weights in an .npz (path
relative to the JSON file) use keys ``<name>.weight``, ``<name>.bias``, for
BatchNorm ``<name>.gamma/.beta/.mean/.var`` and for affine
``<name>.scale/.shift``. With ``{"seed": N}`` they are drawn from a seeded
generator (He-scaled on the fan-in of a group for grouped convolutions), so a
network file alone is a complete, reproducible test case.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import isa, layers
from .errors import NetworkError

#: Layer types of the JSON description ("relu6" becomes a "clip" op).
OP_TYPES = ("conv", "fc", "relu", "relu6", "clip", "maxpool", "avgpool", "gap", "batchnorm", "affine",
            "add", "concat", "shuffle", "flatten", "dropout")
#: Op types of a Network.
NET_OP_TYPES = ("conv", "fc", "relu", "clip", "maxpool", "avgpool", "gap", "batchnorm", "affine",
                "add", "concat", "shuffle", "flatten", "dropout")
#: The name of the network input in ``Op.inputs``.
INPUT = "input"


@dataclass
class Op:
    """One op of the float network, weights resolved.

    ``inputs`` names the ops whose outputs it reads (``"input"``: the network
    input); ``attrs["out_shape"]`` is its output (C, H, W), (N, 1, 1) once
    flattened. For ``affine`` ops ``weight`` is the scale and ``bias`` the
    shift, one per channel."""
    name: str
    type: str
    attrs: dict = field(default_factory=dict)
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    bn: Optional[dict] = None     # gamma, beta, mean, var, eps
    inputs: list = field(default_factory=list)


@dataclass
class Network:
    """A graph of ops in topological order. Ops built without ``inputs`` read
    the op before them (the first reads the network input), so a list of ops
    is a chain network as before. ``output`` names the op whose output is the
    network's; it defaults to the last op."""
    name: str
    input_shape: tuple
    ops: list
    output: Optional[str] = None

    def __post_init__(self):
        prev = INPUT
        for op in self.ops:
            if not op.inputs:
                op.inputs = [prev]
            prev = op.name
        if self.output is None and self.ops:
            self.output = self.ops[-1].name

    def op(self, name: str) -> Op:
        """The op called ``name``."""
        for op in self.ops:
            if op.name == name:
                return op
        raise NetworkError(f"network {self.name!r} has no layer {name!r}")

    def consumers(self, name: str) -> list:
        """The ops that read the output of ``name`` (or of the network input,
        ``"input"``), in order; an op reading it twice is listed once."""
        return [op for op in self.ops if name in op.inputs]

    def shape(self, name: str) -> tuple:
        """The (C, H, W) of a tensor: an op's output or ``"input"``."""
        if name == INPUT:
            return tuple(self.input_shape)
        return tuple(self.op(name).attrs["out_shape"])

    def is_chain(self) -> bool:
        """Every op reads only the op before it and the last op is the output."""
        prev = INPUT
        for op in self.ops:
            if op.inputs != [prev]:
                return False
            prev = op.name
        return bool(self.ops) and self.output == self.ops[-1].name

    def check(self) -> "Network":
        """Structure: unique names, inputs that name earlier ops (topological
        order), an output that exists. Returns the network."""
        seen = {INPUT}
        for op in self.ops:
            if op.name in seen:
                raise NetworkError(f"layer name {op.name!r} used twice" if op.name != INPUT else
                                   f"layer name {INPUT!r} is reserved for the network input")
            if op.type not in NET_OP_TYPES:
                raise NetworkError(f"layer {op.name!r}: unsupported op type {op.type!r}")
            for src in op.inputs:
                if src not in seen:
                    raise NetworkError(f"layer {op.name!r}: input {src!r} is not an earlier layer "
                                       f"(or {INPUT!r}, the network input)")
            seen.add(op.name)
        if self.output not in seen or self.output == INPUT:
            raise NetworkError(f"network output {self.output!r} is not a layer")
        return self


@dataclass
class EngineLayer:
    """A layer as the engine runs it: CONV/FC with fused ReLU and pool, or POOL."""
    name: str
    kind: isa.Kind
    in_shape: tuple
    out_shape: tuple
    weight: Optional[np.ndarray] = None   # (Cout, Cin, K, K) float
    bias: Optional[np.ndarray] = None
    stride: int = 1
    pads: tuple = (0, 0, 0, 0)
    relu: bool = False
    pool: Optional[tuple] = None          # (k, s, pad)
    rho: float = 1.0
    source: list = field(default_factory=list)   # op names fused into this layer

    @property
    def k(self) -> int:
        return 1 if self.weight is None else self.weight.shape[2]


def pool_pads(attrs: dict) -> tuple:
    """(top, bottom, left, right) of a pool op: ``pads``, else its ``pad``
    (an int or a list of four)."""
    if "pads" in attrs:
        return tuple(int(p) for p in attrs["pads"])
    p = attrs.get("pad", 0)
    return (int(p),) * 4 if isinstance(p, int) else tuple(int(v) for v in p)


def shuffle_perm(c: int, groups: int) -> list:
    """The channel shuffle of ShuffleNet (ONNX: Reshape [N, g, C/g, H, W] ->
    Transpose [0, 2, 1, 3, 4] -> Reshape [N, C, H, W]): output channel i is
    input channel perm[i] = (i % g) * (C // g) + i // g."""
    return [(i % groups) * (c // groups) + i // groups for i in range(c)]


# ------------------------------------------------------------------ loading

def _pads(v, name):
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v, v, v)
    if (isinstance(v, (list, tuple)) and len(v) == 4
            and all(isinstance(p, int) and not isinstance(p, bool) for p in v)):
        return tuple(v)
    raise NetworkError(f"layer {name!r}: pad must be an int or [top, bottom, left, right], got {v!r}")


def _pos_int(spec, key, name, default=None):
    v = spec.get(key, default)
    if v is None:
        raise NetworkError(f"layer {name!r}: missing {key!r}")
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise NetworkError(f"layer {name!r}: {key} must be a positive integer, got {v!r}")
    return v


def _number(spec, key, name, default):
    v = spec.get(key, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or np.isnan(v):
        raise NetworkError(f"layer {name!r}: {key} must be a number, got {v!r}")
    return float(v)


def _pool_geometry(name, what, k, s, pads, h, w):
    """The checks every pool shares: each pad smaller than the window, the
    window inside the padded input. Returns the output (H, W)."""
    if any(p < 0 for p in pads):
        raise NetworkError(f"layer {name!r}: negative padding {pads}")
    if any(p >= k for p in pads):
        shown = pads[0] if len(set(pads)) == 1 else pads
        raise NetworkError(f"layer {name!r}: {what} padding {shown!r} must be in 0..{k - 1}")
    if k > h + pads[0] + pads[1] or k > w + pads[2] + pads[3]:
        raise NetworkError(f"layer {name!r}: pool window {k} larger than its padded input "
                           f"{h + pads[0] + pads[1]}x{w + pads[2] + pads[3]}")
    return layers.out_size(h, k, s, pads[0], pads[1]), layers.out_size(w, k, s, pads[2], pads[3])


def _read_spec(path_or_dict, base_dir):
    if isinstance(path_or_dict, (str, os.PathLike)):
        path = os.fspath(path_or_dict)
        try:
            with open(path) as f:
                spec = json.load(f)
        except FileNotFoundError:
            raise NetworkError(f"network file {path} not found") from None
        except IsADirectoryError:
            raise NetworkError(f"network file {path} is a folder") from None
        except UnicodeDecodeError:
            raise NetworkError(f"network file {path} is not a text (JSON) file") from None
        except json.JSONDecodeError as e:
            raise NetworkError(f"network file {path} is not valid JSON: {e}") from None
        base_dir = os.path.dirname(os.path.abspath(path))
    else:
        spec = path_or_dict
    return spec, base_dir


def _weight_source(wsrc, base_dir):
    """(npz store, None) or (None, seeded generator)."""
    if isinstance(wsrc, str):
        wpath = wsrc if os.path.isabs(wsrc) else os.path.join(base_dir, wsrc)
        try:
            z = np.load(wpath, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not named arrays")
            return dict(z), None
        except FileNotFoundError:
            raise NetworkError(f"weights file {wsrc} not found") from None
        except Exception as e:  # numpy raises several types for a bad file
            raise NetworkError(f"weights file {wsrc} is not a readable .npz archive: {e}") from None
    if isinstance(wsrc, dict) and "seed" in wsrc:
        seed = wsrc["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise NetworkError(f"weights seed must be a non-negative integer, got {seed!r}")
        return None, np.random.default_rng(seed)
    raise NetworkError("'weights' must be an .npz path or {\"seed\": N}")


#: How many inputs each JSON layer type reads (None: one or more).
_N_INPUTS = {"add": 2, "concat": None}


def load_network(path_or_dict, base_dir: str = ".") -> Network:
    """Build a Network from a JSON file path or an already-parsed dict."""
    spec, base_dir = _read_spec(path_or_dict, base_dir)
    if not isinstance(spec, dict) or "layers" not in spec or "input_shape" not in spec:
        raise NetworkError("a network needs 'input_shape' and 'layers'")
    shape = spec["input_shape"]
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
        raise NetworkError(f"input_shape must be [C, H, W], got {shape!r}")
    if any(d <= 0 for d in shape):
        raise NetworkError(f"input_shape {list(shape)} has a zero or negative dimension")
    if not isinstance(spec["layers"], list):
        raise NetworkError("'layers' must be a list of layers")
    store, rng = _weight_source(spec.get("weights", {"seed": 0}), base_dir)

    ops = []
    shapes = {INPUT: tuple(shape)}    # tensor -> (C, H, W); (N, 1, 1) once flattened
    flat = {INPUT: False}             # tensor -> flattened (by a flatten or an fc)
    prev = INPUT
    for i, ls in enumerate(spec["layers"]):
        if not isinstance(ls, dict) or "type" not in ls:
            raise NetworkError(f"layer #{i} has no 'type'")
        t = ls["type"]
        name = ls.get("name", f"{t}{i}")
        if not isinstance(name, str) or not name:
            raise NetworkError(f"layer #{i}: name must be a non-empty string, got {name!r}")
        if name == INPUT:
            raise NetworkError(f"layer name {INPUT!r} is reserved for the network input")
        if name in shapes:
            raise NetworkError(f"layer name {name!r} used twice")
        if t not in OP_TYPES:
            raise NetworkError(f"layer {name!r}: unsupported layer type {t!r} (supported: {', '.join(OP_TYPES)})")
        inputs = ls.get("inputs", [prev])
        if (not isinstance(inputs, list) or not inputs
                or not all(isinstance(s, str) for s in inputs)):
            raise NetworkError(f"layer {name!r}: inputs must be a list of layer names, got {inputs!r}")
        for src in inputs:
            if src not in shapes:
                raise NetworkError(f"layer {name!r}: input {src!r} is not an earlier layer "
                                   f"(or {INPUT!r}, the network input)")
        want = _N_INPUTS.get(t, 1)
        if want is not None and len(inputs) != want:
            raise NetworkError(f"layer {name!r}: {t} takes {want} input{'s' if want > 1 else ''}, "
                               f"got {len(inputs)} ({', '.join(inputs)})")
        attrs = {k: v for k, v in ls.items() if k != "inputs"}
        op = Op(name, "clip" if t == "relu6" else t, attrs, inputs=list(inputs))
        # Checked here, not when used: a bad value must not pass silently as rho = 1.
        for key in ("rho", "svd_energy"):
            if key in ls and (not isinstance(ls[key], (int, float)) or isinstance(ls[key], bool)
                              or not 0 < ls[key] <= 1):
                raise NetworkError(f"layer {name!r}: {key} must be a number in (0, 1], got {ls[key]!r}")

        def tensor(key, shp, init):
            if store is not None:
                full = f"{name}.{key}"
                if full not in store:
                    raise NetworkError(f"layer {name!r}: weights file has no {full!r}")
                if not (np.issubdtype(store[full].dtype, np.floating) or np.issubdtype(store[full].dtype, np.integer)):
                    raise NetworkError(f"layer {name!r}: {full} has dtype {store[full].dtype}; expected numbers")
                a = np.asarray(store[full], dtype=np.float64)
                if a.shape != tuple(shp):
                    raise NetworkError(f"layer {name!r}: {full} has shape {a.shape}, expected {tuple(shp)}")
                if not np.all(np.isfinite(a)):
                    raise NetworkError(f"layer {name!r}: {full} holds NaN or infinite values")
                return a
            return init(shp)

        src = inputs[0]
        c, h, w = shapes[src]
        is_flat = flat[src]

        def spatial(what):
            if is_flat:
                raise NetworkError(f"layer {name!r}: {what} after a flatten")

        if t == "conv":
            spatial("convolution")
            cout = _pos_int(ls, "out_channels", name)
            k = _pos_int(ls, "kernel", name)
            s = _pos_int(ls, "stride", name, 1)
            g = _pos_int(ls, "groups", name, 1)
            pads = _pads(ls.get("pad", 0), name)
            if any(p < 0 for p in pads):
                raise NetworkError(f"layer {name!r}: negative padding {pads}")
            if k not in isa.KERNELS:
                raise NetworkError(f"layer {name!r}: kernel size {k} not supported (supported: {isa.KERNELS})")
            if s not in isa.STRIDES:
                raise NetworkError(f"layer {name!r}: stride {s} not supported (supported: 1..4)")
            if any(p >= k for p in pads):
                raise NetworkError(f"layer {name!r}: padding {pads} must be smaller than the kernel {k}")
            if k > h + pads[0] + pads[1] or k > w + pads[2] + pads[3]:
                raise NetworkError(f"layer {name!r}: kernel {k} larger than the padded input "
                                   f"{h + pads[0] + pads[1]}x{w + pads[2] + pads[3]}")
            if c % g or cout % g:
                raise NetworkError(f"layer {name!r}: groups={g} must divide both the input channels ({c}) "
                                   f"and out_channels ({cout})")
            fan_in = c // g * k * k
            op.weight = tensor("weight", (cout, c // g, k, k),
                               lambda s_: rng.normal(0, np.sqrt(2.0 / fan_in), s_))
            op.bias = tensor("bias", (cout,), lambda s_: rng.normal(0, 0.05, s_)) if ls.get("bias", True) else None
            op.attrs.update(stride=s, pads=pads, kernel=k, groups=g)
            c, h, w = cout, layers.out_size(h, k, s, pads[0], pads[1]), layers.out_size(w, k, s, pads[2], pads[3])
        elif t == "fc":
            nin = c * h * w
            nout = _pos_int(ls, "out_features", name)
            op.weight = tensor("weight", (nout, nin), lambda s_: rng.normal(0, np.sqrt(2.0 / nin), s_))
            op.bias = tensor("bias", (nout,), lambda s_: rng.normal(0, 0.05, s_)) if ls.get("bias", True) else None
            for key in ("svd_rank", "svd_energy"):
                if key in ls:
                    op.attrs[key] = ls[key]
            c, h, w, is_flat = nout, 1, 1, True
        elif t == "maxpool":
            spatial("max pool")
            k = _pos_int(ls, "kernel", name)
            s = _pos_int(ls, "stride", name, k)
            p = ls.get("pad", 0)
            if isinstance(p, int) and not isinstance(p, bool):
                if not 0 <= p < k:
                    raise NetworkError(f"layer {name!r}: max pool padding {p!r} must be in 0..{k - 1}")
            pads = _pads(p, name)
            h, w = _pool_geometry(name, "max pool", k, s, pads, h, w)
            op.attrs.update(kernel=k, stride=s, pad=pads[0] if len(set(pads)) == 1 else list(pads), pads=pads)
        elif t == "avgpool":
            spatial("average pool")
            k = _pos_int(ls, "kernel", name)
            s = _pos_int(ls, "stride", name, k)
            pads = _pads(ls.get("pad", 0), name)
            cip = ls.get("count_include_pad", False)
            if not isinstance(cip, bool):
                raise NetworkError(f"layer {name!r}: count_include_pad must be true or false, got {cip!r}")
            h, w = _pool_geometry(name, "average pool", k, s, pads, h, w)
            op.attrs.update(kernel=k, stride=s, pads=pads, count_include_pad=cip)
        elif t == "gap":
            spatial("global average pool")
            h, w = 1, 1
        elif t in ("clip", "relu6"):
            lo = _number(ls, "min", name, 0.0 if t == "relu6" else -np.inf)
            hi = _number(ls, "max", name, 6.0 if t == "relu6" else np.inf)
            if lo > hi:
                raise NetworkError(f"layer {name!r}: clip min {lo:g} is above max {hi:g}")
            op.attrs.update(lo=lo, hi=hi)
        elif t == "batchnorm":
            op.bn = {key: tensor(key, (c,), init) for key, init in (
                ("gamma", lambda s_: rng.uniform(0.5, 1.5, s_)),
                ("beta", lambda s_: rng.normal(0, 0.1, s_)),
                ("mean", lambda s_: rng.normal(0, 0.1, s_)),
                ("var", lambda s_: rng.uniform(0.5, 1.5, s_)))}
            eps = ls.get("eps", 1e-5)
            if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < np.inf:
                raise NetworkError(f"layer {name!r}: eps must be a positive number, got {eps!r}")
            if np.any(op.bn["var"] < 0):
                raise NetworkError(f"layer {name!r}: BatchNorm variance has negative values")
            op.bn["eps"] = float(eps)
        elif t == "affine":
            op.weight = tensor("scale", (c,), lambda s_: rng.uniform(0.5, 1.5, s_))
            op.bias = tensor("shift", (c,), lambda s_: rng.normal(0, 0.1, s_))
        elif t == "add":
            other = shapes[inputs[1]]
            if other != (c, h, w) or flat[inputs[1]] != is_flat:
                raise NetworkError(f"layer {name!r}: add of {inputs[0]!r} {_shape_text(c, h, w, is_flat)} and "
                                   f"{inputs[1]!r} {_shape_text(*other, flat[inputs[1]])}: the shapes must be equal")
        elif t == "concat":
            for src2 in inputs[1:]:
                c2, h2, w2 = shapes[src2]
                if (h2, w2) != (h, w) or flat[src2] != is_flat:
                    raise NetworkError(f"layer {name!r}: concat of {inputs[0]!r} {_shape_text(c, h, w, is_flat)} "
                                       f"and {src2!r} {_shape_text(c2, h2, w2, flat[src2])}: H and W must be equal")
                c += c2
        elif t == "shuffle":
            spatial("channel shuffle")
            g = _pos_int(ls, "groups", name)
            if c % g:
                raise NetworkError(f"layer {name!r}: groups={g} must divide the {c} channels")
            op.attrs.update(groups=g, perm=shuffle_perm(c, g))
        elif t == "flatten":
            c, h, w, is_flat = c * h * w, 1, 1, True
        ops.append(op)
        op.attrs["out_shape"] = (c, h, w)
        shapes[name], flat[name] = (c, h, w), is_flat
        prev = name
    if not any(o.type in ("conv", "fc", "maxpool", "avgpool", "gap") for o in ops):
        raise NetworkError("the network has no conv, fc or maxpool layer")
    net = Network(spec.get("name", "network"), tuple(shape), ops)
    _check_all_used(net)
    return net


def _shape_text(c, h, w, is_flat):
    return f"[{c}]" if is_flat else f"{c}x{h}x{w}"


def _check_all_used(net: Network) -> None:
    """A layer whose output nothing reads is a mistake in the description."""
    used = {src for op in net.ops for src in op.inputs} | {net.output}
    for op in net.ops:
        if op.name not in used:
            raise NetworkError(f"layer {op.name!r}: its output is read by no layer and is not the network "
                               f"output {net.output!r}")


# ---------------------------------------------------------------- float run

def forward_float_all(net: Network, x: np.ndarray) -> dict:
    """Every op's float output (and ``"input"``), by name. ``x`` is (C, H, W)."""
    outs = {INPUT: np.asarray(x, dtype=np.float64)}
    for op in net.ops:
        outs[op.name] = apply_op_float(op, [outs[s] for s in op.inputs])
    return outs


def forward_float(net: Network, x: np.ndarray) -> np.ndarray:
    """Float reference of the network as described (BatchNorm not folded, FC
    not split): the output of ``net.output``. ``x`` is (C, H, W). Tensors are
    released once their last reader has run."""
    left = {}
    for op in net.ops:
        for s in set(op.inputs):
            left[s] = left.get(s, 0) + 1
    outs = {INPUT: np.asarray(x, dtype=np.float64)}
    for op in net.ops:
        outs[op.name] = apply_op_float(op, [outs[s] for s in op.inputs])
        for s in set(op.inputs):
            left[s] -= 1
            if left[s] == 0 and s != net.output:
                del outs[s]
    return outs[net.output]


def _per_channel(v):
    return np.asarray(v, dtype=np.float64)[:, None, None]


def apply_op_float(op: Op, inputs):
    """One op on its input tensors (a list, in ``op.inputs`` order; a single
    array is taken as the only input)."""
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    x = inputs[0]
    a = op.attrs
    if op.type == "conv":
        g = a.get("groups", 1)
        if g == 1:
            return layers.conv_float(x, op.weight, op.bias, a["stride"], a["pads"])
        return layers.conv_float(x, op.weight, op.bias, a["stride"], a["pads"], groups=g)
    if op.type == "fc":
        return layers.fc_float(x, op.weight, op.bias).reshape(-1, 1, 1)
    if op.type == "relu":
        return layers.relu_float(x)
    if op.type == "clip":
        return layers.clip_float(x, a["lo"], a["hi"])
    if op.type == "maxpool":
        pads = pool_pads(a)
        if len(set(pads)) == 1:
            return layers.maxpool_float(x, a["kernel"], a["stride"], pads[0])
        return layers.maxpool_float(x, a["kernel"], a["stride"], pads[0], pads=pads)
    if op.type == "avgpool":
        return layers.avgpool_float(x, a["kernel"], a["stride"], tuple(a["pads"]), bool(a["count_include_pad"]))
    if op.type == "gap":
        return layers.global_avgpool_float(x)
    if op.type == "batchnorm":
        bn = op.bn
        scale = bn["gamma"] / np.sqrt(bn["var"] + bn["eps"])
        return (x - _per_channel(bn["mean"])) * _per_channel(scale) + _per_channel(bn["beta"])
    if op.type == "affine":
        return np.asarray(x, dtype=np.float64) * _per_channel(op.weight) + _per_channel(op.bias)
    if op.type == "add":
        return np.asarray(inputs[0], dtype=np.float64) + np.asarray(inputs[1], dtype=np.float64)
    if op.type == "concat":
        return np.concatenate([np.asarray(t, dtype=np.float64) for t in inputs], axis=0)
    if op.type == "shuffle":
        return np.asarray(x, dtype=np.float64)[np.asarray(a["perm"])]
    if op.type == "flatten":
        return np.asarray(x, dtype=np.float64).reshape(-1, 1, 1)
    if op.type == "dropout":
        return x
    raise NetworkError(f"unsupported op {op.type}")


# ------------------------------------------------------- transformations
#
# The passes live in golden/passes/fold.py; these wrappers keep the list-of-ops
# interface of the chain compiler.

def _ops_network(ops: list) -> Network:
    return Network("ops", (0, 0, 0), list(ops))


def fold_batchnorm(ops: list) -> list:
    """Fold every BatchNorm into the conv/fc right before it (exact in real
    arithmetic): w' = w * g/sqrt(v+eps), b' = (b - mean) * g/sqrt(v+eps) + beta.
    A BatchNorm that cannot be folded is an error here (the graph pass,
    ``golden.passes.fold.fold_batchnorm``, makes it an ``affine`` op)."""
    from .passes import fold
    return fold.fold_batchnorm(_ops_network(ops), strict=True).ops


def svd_rank_for(weight: np.ndarray, energy: float) -> int:
    """Smallest rank keeping at least ``energy`` of the squared singular values."""
    from .passes import fold
    return fold.svd_rank_for(weight, energy)


def svd_split(ops: list) -> list:
    """Split each FC with ``svd_rank`` or ``svd_energy`` into two FCs (see
    ``golden.passes.fold.svd_split``)."""
    from .passes import fold
    return fold.svd_split(_ops_network(ops)).ops


#: What to_engine_layers runs: the chain ops of the engine as it is.
ENGINE_CHAIN_OPS = ("conv", "fc", "relu", "maxpool", "batchnorm", "flatten", "dropout")


def _engine_maxpool(op: Op) -> tuple:
    """(k, s, pad) of a max pool the engine runs, or a NetworkError."""
    k, s = op.attrs["kernel"], op.attrs["stride"]
    pads = pool_pads(op.attrs)
    if (k, s) not in ((2, 2), (3, 2)) and not (k in (2, 3) and 1 <= s <= 3):
        raise NetworkError(f"layer {op.name!r}: max pool {k}x{k}/{s} not supported (2x2 or 3x3, stride 1..3)")
    if len(set(pads)) != 1:
        raise NetworkError(f"layer {op.name!r}: max pool padding (top, bottom, left, right) {pads} not supported "
                           f"by the engine (only the same padding on every side)")
    return k, s, pads[0]


def _check_engine_chain(net: Network) -> None:
    """to_engine_layers compiles chains of the engine's ops; say what else is there."""
    for op in net.ops:
        if op.type not in ENGINE_CHAIN_OPS:
            raise NetworkError(f"layer {op.name!r}: {op.type} layers are not supported by the engine yet "
                               f"(it runs {', '.join(ENGINE_CHAIN_OPS)})")
        if op.type == "conv" and op.attrs.get("groups", 1) != 1:
            raise NetworkError(f"layer {op.name!r}: grouped convolutions (groups={op.attrs['groups']}) are not "
                               f"supported by the engine yet")
    prev = INPUT
    for op in net.ops:
        if op.inputs != [prev]:
            raise NetworkError(f"layer {op.name!r} reads {', '.join(map(repr, op.inputs))}, not the layer before "
                               f"it ({prev!r}): the engine runs a single chain of layers")
        prev = op.name
    if net.ops and net.output != net.ops[-1].name:
        raise NetworkError(f"the network output {net.output!r} is not its last layer {net.ops[-1].name!r}: "
                           f"the engine runs a single chain of layers")


def to_engine_layers(net: Network, default_rho: float = 1.0) -> list:
    """Fold BatchNorm, split FCs, drop dropout/flatten and fuse ReLU and max
    pool into the engine layers that run them. Chains only."""
    from .passes import fold
    _check_engine_chain(net)
    ops = fold.svd_split(fold.fold_batchnorm(fold.remove_dropout(net), strict=True)).ops
    out: list[EngineLayer] = []
    shape = tuple(net.input_shape)
    for op in ops:
        if op.type == "flatten":
            continue
        last = out[-1] if out else None
        if op.type == "relu":
            if last is None:
                raise NetworkError(f"layer {op.name!r}: ReLU with no preceding layer to fuse into")
            last.relu = True
            last.source.append(op.name)
            continue
        if op.type == "maxpool":
            k, s, p = _engine_maxpool(op)
            if last is not None and last.kind == isa.Kind.CONV and last.pool is None:
                last.pool = (k, s, p)
                c, h, w = last.out_shape
                last.out_shape = (c, layers.out_size(h, k, s, p, p), layers.out_size(w, k, s, p, p))
                last.source.append(op.name)
            else:
                c, h, w = shape
                layer = EngineLayer(op.name, isa.Kind.POOL, shape,
                                    (c, layers.out_size(h, k, s, p, p), layers.out_size(w, k, s, p, p)),
                                    pool=(k, s, p), source=[op.name])
                out.append(layer)
            shape = out[-1].out_shape
            continue
        rho = float(op.attrs.get("rho", default_rho))
        if op.type == "conv":
            layer = EngineLayer(op.name, isa.Kind.CONV, shape, tuple(op.attrs["out_shape"]),
                                op.weight, op.bias, op.attrs["stride"], op.attrs["pads"], rho=rho,
                                source=[op.name] + op.attrs.get("folded", []))
        else:
            nin = shape[0] * shape[1] * shape[2]
            layer = EngineLayer(op.name, isa.Kind.FC, (nin, 1, 1), (op.weight.shape[0], 1, 1),
                                op.weight.reshape(op.weight.shape[0], nin, 1, 1), op.bias, rho=rho,
                                source=[op.name] + op.attrs.get("folded", []))
            layer.fc_in_shape = shape   # (C, H, W) the FC flattens
        out.append(layer)
        shape = layer.out_shape
    return out


def forward_engine_float(elayers: list, x: np.ndarray) -> list:
    """Float run of the engine layers (after folding/splitting/fusion).
    Returns every layer's output; the FC input is the (C,H,W) flatten."""
    outs = []
    x = np.asarray(x, dtype=np.float64)
    for L in elayers:
        if L.kind == isa.Kind.POOL:
            y = layers.maxpool_float(x, *L.pool)
        else:
            if L.kind == isa.Kind.FC:
                y = layers.fc_float(x.reshape(-1), L.weight[:, :, 0, 0], L.bias).reshape(-1, 1, 1)
            else:
                y = layers.conv_float(x, L.weight, L.bias, L.stride, L.pads)
            if L.relu:
                y = layers.relu_float(y)
            if L.pool is not None:
                y = layers.maxpool_float(y, *L.pool)
        if L.relu and L.kind == isa.Kind.POOL:
            y = layers.relu_float(y)
        outs.append(y)
        x = y
    return outs
