"""Network description, float reference and the float-level transformations
(BatchNorm folding, SVD split of fully connected layers, fusion into engine
layers).

A network is described in JSON (or built in Python) as a list of ops::

    {"name": "example5", "input_shape": [3, 32, 32],
     "weights": {"seed": 7},            # or "weights": "file.npz"
     "layers": [
        {"name": "conv1", "type": "conv", "out_channels": 16, "kernel": 3,
         "stride": 1, "pad": 1, "rho": 1},
        {"name": "bn1", "type": "batchnorm"},
        {"type": "relu"},
        {"type": "maxpool", "kernel": 2, "stride": 2},
        {"name": "fc1", "type": "fc", "out_features": 10, "svd_rank": 4}]}

``pad`` is an int or [top, bottom, left, right]. Weights in an .npz (path
relative to the JSON file) use keys ``<name>.weight``, ``<name>.bias`` and for
BatchNorm ``<name>.gamma/.beta/.mean/.var``. With ``{"seed": N}`` they are
drawn from a seeded generator (He-scaled), so a network file alone is a
complete, reproducible test case.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import isa, layers
from .errors import NetworkError

OP_TYPES = ("conv", "fc", "relu", "maxpool", "batchnorm", "flatten", "dropout")


@dataclass
class Op:
    """One op of the float network, weights resolved."""
    name: str
    type: str
    attrs: dict = field(default_factory=dict)
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    bn: Optional[dict] = None     # gamma, beta, mean, var, eps


@dataclass
class Network:
    name: str
    input_shape: tuple
    ops: list


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


# ------------------------------------------------------------------ loading

def _pads(v, name):
    if isinstance(v, int):
        return (v, v, v, v)
    if isinstance(v, (list, tuple)) and len(v) == 4 and all(isinstance(p, int) for p in v):
        return tuple(v)
    raise NetworkError(f"layer {name!r}: pad must be an int or [top, bottom, left, right], got {v!r}")


def _pos_int(spec, key, name, default=None):
    v = spec.get(key, default)
    if v is None:
        raise NetworkError(f"layer {name!r}: missing {key!r}")
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise NetworkError(f"layer {name!r}: {key} must be a positive integer, got {v!r}")
    return v


def load_network(path_or_dict, base_dir: str = ".") -> Network:
    """Build a Network from a JSON file path or an already-parsed dict."""
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
    if not isinstance(spec, dict) or "layers" not in spec or "input_shape" not in spec:
        raise NetworkError("a network needs 'input_shape' and 'layers'")
    shape = spec["input_shape"]
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
        raise NetworkError(f"input_shape must be [C, H, W], got {shape!r}")
    if any(d <= 0 for d in shape):
        raise NetworkError(f"input_shape {list(shape)} has a zero or negative dimension")
    wsrc = spec.get("weights", {"seed": 0})
    store = None
    rng = None
    if isinstance(wsrc, str):
        wpath = wsrc if os.path.isabs(wsrc) else os.path.join(base_dir, wsrc)
        try:
            z = np.load(wpath, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not named arrays")
            store = dict(z)
        except FileNotFoundError:
            raise NetworkError(f"weights file {wsrc} not found") from None
        except Exception as e:  # numpy raises several types for a bad file
            raise NetworkError(f"weights file {wsrc} is not a readable .npz archive: {e}") from None
    elif isinstance(wsrc, dict) and "seed" in wsrc:
        seed = wsrc["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise NetworkError(f"weights seed must be a non-negative integer, got {seed!r}")
        rng = np.random.default_rng(seed)
    else:
        raise NetworkError("'weights' must be an .npz path or {\"seed\": N}")

    ops = []
    c, h, w = shape
    flat = None   # feature count once flattened
    names = set()
    for i, ls in enumerate(spec["layers"]):
        if not isinstance(ls, dict) or "type" not in ls:
            raise NetworkError(f"layer #{i} has no 'type'")
        t = ls["type"]
        name = ls.get("name", f"{t}{i}")
        if name in names:
            raise NetworkError(f"layer name {name!r} used twice")
        names.add(name)
        if t not in OP_TYPES:
            raise NetworkError(f"layer {name!r}: unsupported layer type {t!r} (supported: {', '.join(OP_TYPES)})")
        op = Op(name, t, dict(ls))
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

        if t == "conv":
            if flat is not None:
                raise NetworkError(f"layer {name!r}: convolution after a flatten")
            cout = _pos_int(ls, "out_channels", name)
            k = _pos_int(ls, "kernel", name)
            s = _pos_int(ls, "stride", name, 1)
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
            fan_in = c * k * k
            op.weight = tensor("weight", (cout, c, k, k),
                               lambda s_: rng.normal(0, np.sqrt(2.0 / fan_in), s_))
            op.bias = tensor("bias", (cout,), lambda s_: rng.normal(0, 0.05, s_)) if ls.get("bias", True) else None
            op.attrs.update(stride=s, pads=pads, kernel=k)
            c, h, w = cout, layers.out_size(h, k, s, pads[0], pads[1]), layers.out_size(w, k, s, pads[2], pads[3])
        elif t == "fc":
            nin = flat if flat is not None else c * h * w
            nout = _pos_int(ls, "out_features", name)
            op.weight = tensor("weight", (nout, nin), lambda s_: rng.normal(0, np.sqrt(2.0 / nin), s_))
            op.bias = tensor("bias", (nout,), lambda s_: rng.normal(0, 0.05, s_)) if ls.get("bias", True) else None
            for key in ("svd_rank", "svd_energy"):
                if key in ls:
                    op.attrs[key] = ls[key]
            flat = nout
        elif t == "maxpool":
            if flat is not None:
                raise NetworkError(f"layer {name!r}: max pool after a flatten")
            k = _pos_int(ls, "kernel", name)
            s = _pos_int(ls, "stride", name, k)
            p = ls.get("pad", 0)
            if (k, s) not in ((2, 2), (3, 2)) and not (k in (2, 3) and 1 <= s <= 3):
                raise NetworkError(f"layer {name!r}: max pool {k}x{k}/{s} not supported (2x2 or 3x3, stride 1..3)")
            if not isinstance(p, int) or not 0 <= p < k:
                raise NetworkError(f"layer {name!r}: max pool padding {p!r} must be in 0..{k - 1}")
            if k > h + 2 * p or k > w + 2 * p:
                raise NetworkError(f"layer {name!r}: pool window {k} larger than its padded input {h}x{w}")
            op.attrs.update(kernel=k, stride=s, pad=p)
            h, w = layers.out_size(h, k, s, p, p), layers.out_size(w, k, s, p, p)
        elif t == "batchnorm":
            nch = flat if flat is not None else c
            op.bn = {key: tensor(key, (nch,), init) for key, init in (
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
        elif t == "flatten":
            if flat is None:
                flat = c * h * w
        ops.append(op)
        op.attrs["out_shape"] = (flat, 1, 1) if flat is not None else (c, h, w)
    if not any(o.type in ("conv", "fc", "maxpool") for o in ops):
        raise NetworkError("the network has no conv, fc or maxpool layer")
    return Network(spec.get("name", "network"), tuple(shape), ops)


# ---------------------------------------------------------------- float run

def forward_float(net: Network, x: np.ndarray) -> np.ndarray:
    """Float reference of the network as described (BatchNorm not folded, FC
    not split). ``x`` is (C, H, W)."""
    x = np.asarray(x, dtype=np.float64)
    for op in net.ops:
        x = apply_op_float(op, x)
    return x


def apply_op_float(op: Op, x):
    if op.type == "conv":
        return layers.conv_float(x, op.weight, op.bias, op.attrs["stride"], op.attrs["pads"])
    if op.type == "fc":
        return layers.fc_float(x, op.weight, op.bias).reshape(-1, 1, 1)
    if op.type == "relu":
        return layers.relu_float(x)
    if op.type == "maxpool":
        return layers.maxpool_float(x, op.attrs["kernel"], op.attrs["stride"], op.attrs["pad"])
    if op.type == "batchnorm":
        bn = op.bn
        scale = bn["gamma"] / np.sqrt(bn["var"] + bn["eps"])
        return (x - bn["mean"][:, None, None]) * scale[:, None, None] + bn["beta"][:, None, None]
    if op.type == "flatten":
        return x.reshape(-1, 1, 1)
    if op.type == "dropout":
        return x
    raise NetworkError(f"unsupported op {op.type}")


# ------------------------------------------------------- transformations

def fold_batchnorm(ops: list) -> list:
    """Fold every BatchNorm into the conv/fc right before it (exact in real
    arithmetic): w' = w * g/sqrt(v+eps), b' = (b - mean) * g/sqrt(v+eps) + beta."""
    out = []
    for op in ops:
        if op.type != "batchnorm":
            out.append(op)
            continue
        prev = out[-1] if out else None
        if prev is None or prev.type not in ("conv", "fc"):
            raise NetworkError(f"layer {op.name!r}: BatchNorm must follow a conv or fc layer to be folded")
        bn = op.bn
        scale = bn["gamma"] / np.sqrt(bn["var"] + bn["eps"])
        w = prev.weight * scale.reshape((-1,) + (1,) * (prev.weight.ndim - 1))
        b = prev.bias if prev.bias is not None else np.zeros_like(scale)
        b = (b - bn["mean"]) * scale + bn["beta"]
        folded = Op(prev.name, prev.type, dict(prev.attrs), w, b)
        folded.attrs["folded"] = prev.attrs.get("folded", []) + [op.name]
        out[-1] = folded
    return out


def svd_rank_for(weight: np.ndarray, energy: float) -> int:
    """Smallest rank keeping at least ``energy`` of the squared singular values."""
    if not 0 < energy <= 1:
        raise NetworkError(f"svd_energy must be in (0, 1], got {energy}")
    s = np.linalg.svd(weight, compute_uv=False)
    cum = np.cumsum(s ** 2) / max(float(np.sum(s ** 2)), 1e-300)
    return int(np.searchsorted(cum, energy - 1e-12) + 1)


def svd_split(ops: list) -> list:
    """Split each FC with ``svd_rank`` or ``svd_energy`` into two FCs:
    W (out x in) ~ (U_r sqrt(S_r)) (sqrt(S_r) V_r^T); the bias stays on the
    second. Splitting sqrt(S) to both sides keeps both factors in similar
    ranges, which suits their separate fixed-point formats."""
    out = []
    for op in ops:
        if op.type != "fc" or not ({"svd_rank", "svd_energy"} & set(op.attrs)):
            out.append(op)
            continue
        nout, nin = op.weight.shape
        if "svd_rank" in op.attrs:
            r = op.attrs["svd_rank"]
            if not isinstance(r, int) or not 1 <= r <= min(nout, nin):
                raise NetworkError(f"layer {op.name!r}: svd_rank {r!r} must be an integer in 1..{min(nout, nin)}")
        else:
            r = svd_rank_for(op.weight, float(op.attrs["svd_energy"]))
        u, s, vt = np.linalg.svd(op.weight, full_matrices=False)
        root = np.sqrt(s[:r])
        a = Op(op.name + "_svd_a", "fc", {"svd_of": op.name, "rank": r, "out_shape": (r, 1, 1)},
               root[:, None] * vt[:r], None)
        b = Op(op.name + "_svd_b", "fc", {"svd_of": op.name, "rank": r, "out_shape": op.attrs["out_shape"]},
               u[:, :r] * root[None, :], op.bias)
        for key in ("rho",):
            if key in op.attrs:
                a.attrs[key] = b.attrs[key] = op.attrs[key]
        out.extend([a, b])
    return out


def to_engine_layers(net: Network, default_rho: float = 1.0) -> list:
    """Fold BatchNorm, split FCs, drop dropout/flatten and fuse ReLU and max
    pool into the engine layers that run them."""
    ops = svd_split(fold_batchnorm([o for o in net.ops if o.type != "dropout"]))
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
            k, s, p = op.attrs["kernel"], op.attrs["stride"], op.attrs["pad"]
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
