"""The fold pass: float-level rewrites of a network graph, each exact in real
arithmetic, each a function of its own.

    remove_dropout   dropout ops go (their readers read their input)
    fold_batchnorm   a BatchNorm whose input is a conv/fc output read by
                     nothing else is folded into that conv/fc; any other
                     BatchNorm becomes an ``affine`` op
    fold_affine      an affine (per-channel x * scale + shift, from a BatchNorm
                     or from constant Mul/Add/Sub in ONNX) whose input is a
                     conv/fc/affine output read by nothing else is folded into
                     that op
    affine_to_conv   every affine left becomes a depthwise 1x1 conv
                     (groups = C, weight = scale, bias = shift), which the
                     engine runs as a layer
    svd_split        an fc with ``svd_rank`` or ``svd_energy`` becomes two fcs

``fold`` runs them in that order. Flatten stays (the compiler needs it before
an fc), and so does ``shuffle`` (the compiler absorbs it into its reader).

An op folded into another disappears: its readers (and the network output,
if it was that) read the op it was folded into, which keeps its name and lists
the folded names in ``attrs["folded"]``. Every pass copies the ops it keeps
(attrs and inputs; arrays are never modified in place), so the network given
is left as it was.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import NetworkError
from ..network import INPUT, Network, Op


def _copy(op: Op) -> Op:
    return dataclasses.replace(op, attrs=dict(op.attrs), inputs=list(op.inputs),
                               bn=dict(op.bn) if op.bn is not None else None)


def _uses(net: Network) -> dict:
    """Tensor name -> number of readers (an op reading it twice counts once),
    plus one for the network output."""
    n = {}
    for op in net.ops:
        for s in set(op.inputs):
            n[s] = n.get(s, 0) + 1
    n[net.output] = n.get(net.output, 0) + 1
    return n


class _Rewriter:
    """Builds the new op list in order, renaming the readers of removed ops."""

    def __init__(self, net: Network):
        self.net = net
        self.uses = _uses(net)
        self.alias = {}          # removed op name -> the name its readers read now
        self.ops = []
        self.by_name = {}

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def take(self, op: Op) -> Op:
        """A copy of ``op`` with its inputs renamed."""
        new = _copy(op)
        new.inputs = [self.resolve(s) for s in new.inputs]
        return new

    def keep(self, op: Op) -> Op:
        self.ops.append(op)
        self.by_name[op.name] = op
        return op

    def replace(self, name: str, op: Op) -> None:
        """``op`` takes the place of the kept op ``name`` (same position)."""
        i = next(j for j, o in enumerate(self.ops) if o.name == name)
        self.ops[i] = op
        self.by_name[name] = op

    def only_reader(self, original_input: str) -> bool:
        """The tensor an op read in the original network is read by that op
        alone and is not the network output."""
        return self.uses.get(original_input, 0) == 1

    def network(self) -> Network:
        out = Network(self.net.name, tuple(self.net.input_shape), self.ops, self.resolve(self.net.output))
        return out.check()


def _mark_folded(target: Op, op: Op) -> None:
    target.attrs["folded"] = target.attrs.get("folded", []) + [op.name] + op.attrs.get("folded", [])


def _scale_rows(weight: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))


def bn_scale_shift(bn: dict):
    """A BatchNorm as per-channel y = x * scale + shift."""
    scale = bn["gamma"] / np.sqrt(bn["var"] + bn["eps"])
    return scale, bn["beta"] - bn["mean"] * scale


def _fold_into(prev: Op, op: Op, scale: np.ndarray, shift: np.ndarray) -> Op:
    """conv/fc/affine ``prev`` followed by y = x * scale + shift, as one op."""
    new = _copy(prev)
    if prev.type == "affine":
        new.weight = prev.weight * scale
        new.bias = prev.bias * scale + shift
    else:
        new.weight = _scale_rows(prev.weight, scale)
        b = prev.bias if prev.bias is not None else np.zeros_like(scale)
        new.bias = b * scale + shift
        new.attrs.pop("bias", None)       # "bias": false of the description no longer holds
    _mark_folded(new, op)
    return new


# ------------------------------------------------------------------ passes

def remove_dropout(net: Network) -> Network:
    """Dropout is the identity at inference: its readers read its input."""
    rw = _Rewriter(net)
    for op in net.ops:
        if op.type == "dropout":
            rw.alias[op.name] = rw.resolve(op.inputs[0])
            continue
        rw.keep(rw.take(op))
    if rw.resolve(net.output) == INPUT:
        raise NetworkError(f"network {net.name!r}: nothing but dropout between its input and its output")
    return rw.network()


def fold_batchnorm(net: Network, *, strict: bool = False) -> Network:
    """Fold each BatchNorm into the conv/fc that produces its input when
    nothing else reads that output (grouped convs too): w' = w * s,
    b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps). Any other
    BatchNorm (on the network input, a concat, an add, a pool, a tensor read
    elsewhere: the pre-activation BatchNorm of DenseNet and Inception-v2)
    becomes an ``affine`` op (scale s, shift beta - mean * s); with ``strict``
    it is an error instead."""
    rw = _Rewriter(net)
    for op in net.ops:
        if op.type != "batchnorm":
            rw.keep(rw.take(op))
            continue
        scale, shift = bn_scale_shift(op.bn)
        src = rw.resolve(op.inputs[0])
        prev = rw.by_name.get(src)
        if prev is not None and prev.type in ("conv", "fc") and rw.only_reader(op.inputs[0]):
            rw.replace(src, _fold_into(prev, op, scale, shift))
            rw.alias[op.name] = src
            continue
        if strict:
            raise NetworkError(f"layer {op.name!r}: BatchNorm must follow a conv or fc layer to be folded")
        new = rw.take(op)
        new.type, new.bn, new.weight, new.bias = "affine", None, scale, shift
        new.attrs["from"] = "batchnorm"
        rw.keep(new)
    return rw.network()


def fold_affine(net: Network) -> Network:
    """Fold each affine into the conv, fc or affine that produces its input
    when nothing else reads that output; the others stay."""
    rw = _Rewriter(net)
    for op in net.ops:
        if op.type != "affine":
            rw.keep(rw.take(op))
            continue
        src = rw.resolve(op.inputs[0])
        prev = rw.by_name.get(src)
        if prev is not None and prev.type in ("conv", "fc", "affine") and rw.only_reader(op.inputs[0]):
            rw.replace(src, _fold_into(prev, op, op.weight, op.bias))
            rw.alias[op.name] = src
            continue
        rw.keep(rw.take(op))
    return rw.network()


def affine_to_conv(net: Network) -> Network:
    """Each affine becomes a depthwise 1x1 conv: groups = C, weight = scale
    (C, 1, 1, 1), bias = shift; same name, same output."""
    rw = _Rewriter(net)
    for op in net.ops:
        new = rw.keep(rw.take(op))
        if op.type != "affine":
            continue
        c = len(op.weight)
        new.type = "conv"
        new.weight = np.asarray(op.weight, dtype=np.float64).reshape(c, 1, 1, 1)
        new.bias = np.asarray(op.bias, dtype=np.float64).copy()
        new.attrs.update(out_channels=c, kernel=1, stride=1, pad=0, pads=(0, 0, 0, 0), groups=c)
        new.attrs["from"] = new.attrs.get("from", "affine")
    return rw.network()


def svd_rank_for(weight: np.ndarray, energy: float) -> int:
    """Smallest rank keeping at least ``energy`` of the squared singular values."""
    if not 0 < energy <= 1:
        raise NetworkError(f"svd_energy must be in (0, 1], got {energy}")
    s = np.linalg.svd(weight, compute_uv=False)
    cum = np.cumsum(s ** 2) / max(float(np.sum(s ** 2)), 1e-300)
    return int(np.searchsorted(cum, energy - 1e-12) + 1)


def svd_split(net: Network) -> Network:
    """Split each fc with ``svd_rank`` or ``svd_energy`` into two fcs
    ``<name>_svd_a`` and ``<name>_svd_b``: W (out x in) ~ (U_r sqrt(S_r))
    (sqrt(S_r) V_r^T); the bias stays on the second, and the readers of the fc
    read the second. Splitting sqrt(S) to both sides keeps both factors in
    similar ranges, which suits their separate fixed-point formats."""
    rw = _Rewriter(net)
    for op in net.ops:
        if op.type != "fc" or not ({"svd_rank", "svd_energy"} & set(op.attrs)):
            rw.keep(rw.take(op))
            continue
        nout, nin = op.weight.shape
        if "svd_rank" in op.attrs:
            r = op.attrs["svd_rank"]
            if not isinstance(r, int) or isinstance(r, bool) or not 1 <= r <= min(nout, nin):
                raise NetworkError(f"layer {op.name!r}: svd_rank {r!r} must be an integer in 1..{min(nout, nin)}")
        else:
            r = svd_rank_for(op.weight, float(op.attrs["svd_energy"]))
        u, s, vt = np.linalg.svd(op.weight, full_matrices=False)
        root = np.sqrt(s[:r])
        src = [rw.resolve(i) for i in op.inputs]
        a = Op(op.name + "_svd_a", "fc", {"svd_of": op.name, "rank": r, "out_shape": (r, 1, 1)},
               root[:, None] * vt[:r], None, inputs=src)
        b = Op(op.name + "_svd_b", "fc", {"svd_of": op.name, "rank": r, "out_shape": op.attrs["out_shape"]},
               u[:, :r] * root[None, :], op.bias, inputs=[a.name])
        for key in ("rho",):
            if key in op.attrs:
                a.attrs[key] = b.attrs[key] = op.attrs[key]
        rw.keep(a)
        rw.keep(b)
        rw.alias[op.name] = b.name
    return rw.network()


def fold(net: Network) -> Network:
    """All of the above, in order: remove_dropout, fold_batchnorm, fold_affine,
    affine_to_conv, svd_split. Returns a new Network computing the same
    function (up to float rounding, and the SVD's truncation where asked)."""
    return svd_split(affine_to_conv(fold_affine(fold_batchnorm(remove_dropout(net)))))
