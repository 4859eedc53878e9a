#!/usr/bin/env python3
"""Train a small CNN on scikit-learn's 8x8 digits with plain numpy and export it.

    .venv/bin/python scripts/train_digits.py [--arch chain|residual|dwsep] [--out build/digits]
        [--epochs 30] [--seed 0] [--rho 0.25 [--ovsf-epochs 45] [--ovsf-lr 0.01]]

The network is a golden.network description (so its He-scaled seeded weights
are the starting point), trained by Adam on a softmax cross-entropy with the
backward pass written here. --arch picks it (ARCHS):

    chain     conv-ReLU-maxpool twice and an FC (the default; build/digits)
    residual  ResNet-style: stem, identity block, stride-2 block with a 1x1
              projection shortcut, identity block, global average pool, FC
              (default --out build/digits_residual)
    dwsep     MobileNet-style: stem, depthwise-separable blocks with ReLU6
              (one of stride 2), an inverted residual (expand, depthwise,
              linear project, add), global average pool, FC
              (default --out build/digits_dwsep)

The forward and backward passes walk any graph of the ops these use (conv
with stride, padding and groups, fc, relu, clip, maxpool, gap, add, flatten),
summing the gradients of a tensor read by several ops.

With --rho below 1 the model is trained for OVSF-generated weights: after the
normal training it is fine-tuned with every conv/fc weight projected, after
each step, onto what golden/ovsf.py reproduces at that rho (same blocks, codes
chosen by the same energy rule; see OvsfProjection). The blocks depend on the
engine's PN and L: the default EngineConfig() (16, 16) is assumed.

Writes to --out:

    digits.onnx   the trained network (golden.onnx_import.network_to_onnx)
    X_test.npy    the test split, float32 [N, 1, 8, 8], pixels scaled to [0, 1]
    y_test.npy    its labels, int64 [N]
    X_calib.npy   training images for the quantizer's calibration (never test images)

and prints the loss and accuracy per epoch, the float test accuracy, then the
test accuracy of the exported model imported and compiled for the engine,
16-bit and 8-bit (at --rho), run on the integer golden model (--no-golden
skips it).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from typing import Optional

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from golden import isa  # noqa: E402
from golden.network import INPUT, Network, load_network  # noqa: E402

#: The digits are 8x8: two 3x3 convolutions with 2x2 pools leave 16 x 2 x 2.
SPEC = {"name": "digits", "input_shape": [1, 8, 8], "layers": [
    {"name": "conv1", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
    {"name": "relu1", "type": "relu"},
    {"name": "pool1", "type": "maxpool", "kernel": 2, "stride": 2},
    {"name": "conv2", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
    {"name": "relu2", "type": "relu"},
    {"name": "pool2", "type": "maxpool", "kernel": 2, "stride": 2},
    {"name": "flatten", "type": "flatten"},
    {"name": "fc", "type": "fc", "out_features": 10}]}

#: ResNet-style: a stem, an identity block at 16 x 8 x 8, a block down to
#: 32 x 4 x 4 (3x3 stride 2, its shortcut a 1x1 stride-2 projection), an
#: identity block at 32 x 4 x 4, global average pooling and the classifier.
#: Each block is conv3x3-ReLU-conv3x3, the shortcut added, then ReLU.
SPEC_RESIDUAL = {"name": "digits_residual", "input_shape": [1, 8, 8], "layers": [
    {"name": "stem", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
    {"name": "stem_relu", "type": "relu"},
    {"name": "b1_conv1", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
    {"name": "b1_relu1", "type": "relu"},
    {"name": "b1_conv2", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
    {"name": "b1_add", "type": "add", "inputs": ["b1_conv2", "stem_relu"]},
    {"name": "b1_relu2", "type": "relu"},
    {"name": "b2_conv1", "type": "conv", "out_channels": 32, "kernel": 3, "stride": 2, "pad": 1},
    {"name": "b2_relu1", "type": "relu"},
    {"name": "b2_conv2", "type": "conv", "out_channels": 32, "kernel": 3, "pad": 1},
    {"name": "b2_proj", "type": "conv", "out_channels": 32, "kernel": 1, "stride": 2, "inputs": ["b1_relu2"]},
    {"name": "b2_add", "type": "add", "inputs": ["b2_conv2", "b2_proj"]},
    {"name": "b2_relu2", "type": "relu"},
    {"name": "b3_conv1", "type": "conv", "out_channels": 32, "kernel": 3, "pad": 1},
    {"name": "b3_relu1", "type": "relu"},
    {"name": "b3_conv2", "type": "conv", "out_channels": 32, "kernel": 3, "pad": 1},
    {"name": "b3_add", "type": "add", "inputs": ["b3_conv2", "b2_relu2"]},
    {"name": "b3_relu2", "type": "relu"},
    {"name": "gap", "type": "gap"},
    {"name": "fc", "type": "fc", "out_features": 10}]}

#: MobileNet-style: a stem, two depthwise-separable blocks (depthwise 3x3 +
#: ReLU6, pointwise 1x1 + ReLU6; the second depthwise has stride 2), a
#: MobileNet-v2 inverted residual (expand 1x1 + ReLU6, depthwise 3x3 + ReLU6,
#: project 1x1 with no activation, the block input added), global average
#: pooling and the classifier. ReLU6 is a Clip to [0, 6].
SPEC_DWSEP = {"name": "digits_dwsep", "input_shape": [1, 8, 8], "layers": [
    {"name": "stem", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
    {"name": "stem_relu6", "type": "relu6"},
    {"name": "dw1", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1, "groups": 16},
    {"name": "dw1_relu6", "type": "relu6"},
    {"name": "pw1", "type": "conv", "out_channels": 32, "kernel": 1},
    {"name": "pw1_relu6", "type": "relu6"},
    {"name": "dw2", "type": "conv", "out_channels": 32, "kernel": 3, "stride": 2, "pad": 1, "groups": 32},
    {"name": "dw2_relu6", "type": "relu6"},
    {"name": "pw2", "type": "conv", "out_channels": 32, "kernel": 1},
    {"name": "pw2_relu6", "type": "relu6"},
    {"name": "ir_expand", "type": "conv", "out_channels": 96, "kernel": 1},
    {"name": "ir_expand_relu6", "type": "relu6"},
    {"name": "ir_dw", "type": "conv", "out_channels": 96, "kernel": 3, "pad": 1, "groups": 96},
    {"name": "ir_dw_relu6", "type": "relu6"},
    {"name": "ir_project", "type": "conv", "out_channels": 32, "kernel": 1},
    {"name": "ir_add", "type": "add", "inputs": ["ir_project", "pw2_relu6"]},
    {"name": "gap", "type": "gap"},
    {"name": "fc", "type": "fc", "out_features": 10}]}

#: --arch: the network description, default epochs and Adam learning rate.
ARCHS = {"chain": (SPEC, 30, 0.005), "residual": (SPEC_RESIDUAL, 30, 0.005), "dwsep": (SPEC_DWSEP, 30, 0.005)}
TEST_FRACTION = 0.25
N_CALIB = 200


def load_split(seed: int):
    """(X_train, y_train, X_test, y_test): a stratified split fixed by ``seed``."""
    from sklearn.datasets import load_digits   # ships its data: no download
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]   # pixels 0..16 -> [0, 1], NCHW
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    return x_tr, y_tr, x_te, y_te


# ------------------------------------------------------- layers, batched
#
# Batched NCHW tensors. The forward pass walks the ops in their (topological)
# order, keeping every tensor by its op's name; the backward pass walks them in
# reverse, each op turning the gradient of its output into gradients of its
# inputs, summed into a tensor read by several ops (a residual branch point).

def _conv_cols(x, k, pads, stride=1):
    """Patch matrix (N*OH*OW, C*K*K) of a convolution, columns in (c, ky, kx)
    order, the padded input's shape, OH and OW."""
    pt, pb, pl, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    v = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))   # N, C, OH', OW', K, K
    if stride != 1:
        v = v[:, :, ::stride, ::stride]
    n, c, oh, ow = v.shape[:4]
    return v.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * k * k), xp.shape, oh, ow


def _conv_forward(op, w, b, x):
    """Convolution (any stride, padding, groups) and what its backward needs."""
    cout, cin_g, k, _ = w.shape
    g = op.attrs.get("groups", 1)
    s = op.attrs["stride"]
    cols, xp_shape, oh, ow = _conv_cols(x, k, op.attrs["pads"], s)
    if g == 1:
        y = cols @ w.reshape(cout, -1).T + b
    else:
        # One batched product over the groups: group j's patch columns (its
        # Cin/g channels, channel-major) times its Cout/g rows of weights.
        kk = cin_g * k * k
        cg = cols.reshape(-1, g, kk).transpose(1, 0, 2)                       # G, P, kk
        y = np.matmul(cg, w.reshape(g, cout // g, kk).transpose(0, 2, 1))     # G, P, Cout/G
        y = y.transpose(1, 0, 2).reshape(-1, cout) + b
    return y.reshape(x.shape[0], oh, ow, cout).transpose(0, 3, 1, 2), (cols, xp_shape, x.shape)


def _conv_backward(op, w, saved, dy):
    """(dW, db, dx) of a convolution."""
    cols, xp_shape, x_shape = saved
    cout, cin_g, k, _ = w.shape
    g = op.attrs.get("groups", 1)
    s = op.attrs["stride"]
    n, _, oh, ow = dy.shape
    dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, cout)
    if g == 1:
        dw = (dy2.T @ cols).reshape(w.shape)
        dcols = dy2 @ w.reshape(cout, -1)
    else:
        kk = cin_g * k * k
        dyg = dy2.reshape(-1, g, cout // g).transpose(1, 0, 2)                # G, P, Cout/G
        cg = cols.reshape(-1, g, kk).transpose(1, 0, 2)                       # G, P, kk
        dw = np.matmul(dyg.transpose(0, 2, 1), cg).reshape(w.shape)
        dcols = np.matmul(dyg, w.reshape(g, cout // g, kk)).transpose(1, 0, 2)
    dcols = dcols.reshape(n, oh, ow, x_shape[1], k, k)
    dxp = np.zeros(xp_shape, dtype=dy.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + (oh - 1) * s + 1:s, j:j + (ow - 1) * s + 1:s] += dcols[..., i, j].transpose(0, 3, 1, 2)
    pt, _, pl, _ = op.attrs["pads"]
    return dw, dy2.sum(axis=0), dxp[:, :, pt:pt + x_shape[2], pl:pl + x_shape[3]]


def _output(ops) -> str:
    return ops.output if isinstance(ops, Network) else ops[-1].name


def _ops(ops) -> list:
    return ops.ops if isinstance(ops, Network) else ops


def forward(ops, params, x, keep: bool = True):
    """Logits [N, 10] of a Network (or its list of ops, the last one the
    output) on the batch ``x`` [N, C, H, W], and what the backward pass needs
    per op (``keep=False``: nothing, for evaluation)."""
    out = _output(ops)
    ops = _ops(ops)
    vals = {INPUT: x}
    saved = {}
    # Release a tensor after its last reader: evaluation of the whole split stays small.
    last = {src: i for i, op in enumerate(ops) for src in op.inputs}
    for i, op in enumerate(ops):
        xs = [vals[src] for src in op.inputs]
        x = xs[0]
        s = None
        if op.type == "conv":
            w, b = params[op.name]
            y, s = _conv_forward(op, w, b, x)
        elif op.type == "fc":
            w, b = params[op.name]
            x2 = x.reshape(x.shape[0], -1)        # the fc flattens its input (C, H, W)
            s = (x2, x.shape)
            y = x2 @ w.T + b
        elif op.type == "relu":
            s = x > 0
            y = np.maximum(x, 0)
        elif op.type == "clip":
            lo, hi = op.attrs["lo"], op.attrs["hi"]
            s = (x > lo) & (x < hi)
            y = np.clip(x, lo, hi).astype(x.dtype, copy=False)
        elif op.type == "maxpool":
            n, c, h, w_ = x.shape
            k = op.attrs["kernel"]
            blocks = x.reshape(n, c, h // k, k, w_ // k, k)
            y = blocks.max(axis=(3, 5))
            s = (blocks == y[:, :, :, None, :, None], x.shape)
        elif op.type == "gap":
            s = x.shape
            y = x.mean(axis=(2, 3), keepdims=True)
        elif op.type == "add":
            y = xs[0] + xs[1]
        elif op.type == "flatten":
            s = x.shape
            y = x.reshape(x.shape[0], -1)
        elif op.type == "dropout":
            y = x
        else:
            raise ValueError(f"the trainer has no {op.type} layer")
        if keep:
            saved[op.name] = s
        vals[op.name] = y
        for src in set(op.inputs):
            if last[src] == i and src != out:
                del vals[src]
    return vals[out], saved


def backward_all(ops, params, saved, dy):
    """(parameter gradients {op: (dW, db)}, tensor gradients) from the
    gradient ``dy`` of the network output: the ops in reverse order, each
    turning its output's gradient into its inputs', summed where a tensor has
    several readers. The tensor gradients left are the network input's
    (``"input"``)."""
    out = _output(ops)
    ops = _ops(ops)
    grads = {}
    tgrad = {out: dy}
    for op in reversed(ops):
        if op.name not in tgrad:
            continue    # nothing downstream of it reaches the output
        dy = tgrad.pop(op.name)
        s = saved[op.name]
        if op.type == "fc":
            w, _ = params[op.name]
            x2, x_shape = s
            grads[op.name] = (dy.T @ x2, dy.sum(axis=0))
            dxs = [(dy @ w).reshape(x_shape)]
        elif op.type == "flatten":
            dxs = [dy.reshape(s)]
        elif op.type == "maxpool":
            mask, shape = s
            # Every tied maximum gets the gradient: ties are zeros after a ReLU, which drops it.
            dxs = [(mask * dy[:, :, :, None, :, None]).reshape(shape)]
        elif op.type in ("relu", "clip"):
            dxs = [dy * s]
        elif op.type == "gap":
            n, c, h, w_ = s
            dxs = [np.broadcast_to(dy / (h * w_), s).copy()]
        elif op.type == "add":
            dxs = [dy, dy]
        elif op.type == "dropout":
            dxs = [dy]
        elif op.type == "conv":
            dw, db, dx = _conv_backward(op, params[op.name][0], s, dy)
            grads[op.name] = (dw, db)
            dxs = [dx]
        else:
            raise ValueError(f"the trainer has no {op.type} layer")
        for src, d in zip(op.inputs, dxs):
            tgrad[src] = tgrad[src] + d if src in tgrad else d
    return grads, tgrad


def backward(ops, params, saved, dy):
    """The parameter gradients {op: (dW, db)} (see backward_all)."""
    return backward_all(ops, params, saved, dy)[0]


#: The op types forward and backward run.
TRAINABLE_OPS = ("conv", "fc", "relu", "clip", "maxpool", "gap", "add", "flatten", "dropout")


def _check_trainable(net: Network):
    for op in net.ops:
        if op.type not in TRAINABLE_OPS:
            raise ValueError(f"{op.name}: the trainer has no {op.type} layer (it has {', '.join(TRAINABLE_OPS)})")
        if op.type in ("conv", "fc") and op.bias is None:
            raise ValueError(f"{op.name}: the trainer needs a bias on every conv and fc")
        if op.type == "maxpool":
            _, h, w = net.shape(op.inputs[0])
            k = op.attrs["kernel"]
            if k != op.attrs["stride"] or any(op.attrs["pads"]) or h % k or w % k:
                raise ValueError(f"{op.name}: the trainer handles non-overlapping unpadded pools that tile "
                                 f"their input only")


def accuracy(net_ops, params, x, y) -> float:
    logits, _ = forward(net_ops, params, x, keep=False)
    return float(np.mean(np.argmax(logits, axis=1) == y))


# ------------------------------------------------------- OVSF-aware training

#: Fine-tuning after the normal training when --rho < 1 (epochs, Adam learning rate).
OVSF_EPOCHS = 45
OVSF_LR = 0.01


class OvsfProjection:
    """Keeps every conv/fc weight where golden/ovsf.py reproduces it at a given rho.

    The engine blocks the weights as the compiler does: FC columns put in the
    grouped input order, input channels zero-padded to PN, each output
    channel's (ci, ky, kx) vector cut into blocks of L, and one code set per
    layer. The blocks depend on PN and L, taken from the default EngineConfig()
    (PN = L = 16); the trainer has no --config, so a model trained for rho here
    targets that engine.

    ``decompose`` projects each *zero-padded* block on the kept codes, so it
    returns the weights unchanged only when the padded block (zeros included)
    lies in their span. The projection is onto that subspace: per block, the
    real positions of the span's vectors that vanish on the padding. For a
    block with no padding it is the span itself; for conv1 (9 weights and 7
    padding zeros per block) it is much smaller.

    A chain is laid out by network.to_engine_layers, a graph network by the
    graph compiler's passes (golden.passes.fold and fuse, as compile_network
    runs them). Grouped and depthwise convolutions keep their
    (Cout, Cin/groups, K, K) weights, Cin/groups padded to PN; positions the
    layout fills with zeros (padding, or the off-diagonal blocks of a
    densified grouped weight) count as padding.
    """

    def __init__(self, net: Network, rho, cfg=None):
        from golden import compiler, memimage, ovsf
        from golden.config import EngineConfig

        self.cfg = cfg or EngineConfig()
        self.L = self.cfg.ovsf_len
        self.n_codes = ovsf.n_codes_for(rho, self.L)
        self.codes = {}
        self.blocks = {}   # op name -> (Cout', nblocks, L) index into the op's flat weight, -1 = padding
        # Run an index tensor through the compiler's own layout steps, so the
        # blocks are exactly those decompose sees. Indices are unique across
        # the network (op j's weight i is base[j] + i + 1), so each engine
        # layer's blocks name the op they come from.
        base, ops, n = {}, [], 0
        for op in net.ops:
            if op.type in ("conv", "fc"):
                base[op.name] = n
                op = replace(op, weight=np.arange(n + 1, n + op.weight.size + 1, dtype=np.float64)
                             .reshape(op.weight.shape))
                n += op.weight.size
            ops.append(op)
        index_net = Network(net.name, net.input_shape, ops, net.output)
        for w, fc_in in self._engine_weights(index_net):
            w = w if fc_in is None else compiler.fc_weight_to_layout(w[:, :, 0, 0], fc_in, self.cfg.pn)
            idx = ovsf.to_blocks(memimage.pad_weights(np.rint(w).astype(np.int64), self.cfg), self.L) - 1
            real = idx[idx >= 0]
            owner = [name for name, b in base.items() if real.size and b <= real.min() < b + net.op(name).weight.size]
            if len(owner) != 1 or not real.max() < base[owner[0]] + net.op(owner[0]).weight.size:
                raise ValueError("OVSF-aware training: an engine layer's weights do not come from one conv/fc")
            name = owner[0]
            size = net.op(name).weight.size
            if name in self.blocks or real.size != size or np.unique(real).size != size:
                raise ValueError(f"{name}: OVSF-aware training needs each of its weights in exactly one place "
                                 f"of one engine layer")
            self.blocks[name] = np.where(idx >= 0, idx - base[name], -1)
        self._plan = {}

    def _engine_weights(self, net: Network) -> list:
        """[(weight, fc_in_shape or None)] of the engine layers with weights,
        as the compiler lays them out before padding."""
        from golden.network import to_engine_layers

        if net.is_chain():
            return [(L.weight, getattr(L, "fc_in_shape", None))   # fc_in_shape: on FC layers only
                    for L in to_engine_layers(net) if L.weight is not None]
        from golden.passes import fold, fuse

        graph = fuse.fuse(fold.fold(net), self.cfg, 1.0)
        return [(L.weight, L.fc_in_shape if L.kind == isa.Kind.FC else None)
                for L in graph.layers if L.weight is not None and not L.synthetic]

    def stages(self, epochs: int) -> dict:
        """{first epoch: n_codes}: halve the codes from L down to the target,
        reselecting each time (a smaller set is chosen among the previous
        one's), in the first half of the epochs; the target's set is then
        fixed to the end, so the final projection is the one golden sees."""
        ns = []
        n = self.L // 2
        while n > self.n_codes:
            ns.append(n)
            n //= 2
        ns.append(self.n_codes)
        ns = ns[-max(1, min(len(ns), epochs // 2)):]   # too few epochs: skip the first stages, never the target
        per = max(1, epochs // (2 * len(ns)))
        return {1 + i * per: n for i, n in enumerate(ns)}

    def _layout(self, name, w: np.ndarray) -> np.ndarray:
        idx = self.blocks[name]
        return np.where(idx >= 0, w.ravel()[np.maximum(idx, 0)], 0.0)

    def select(self, params, n_codes: int) -> None:
        """The codes golden's decompose picks for the current weights (energy
        of the quantized blocks at the default data width)."""
        from golden import arith, ovsf, quant

        bits = self.cfg.data_bits
        for name in self.blocks:
            w = params[name][0].astype(np.float64)
            fl_w = quant.best_fl(w, bits)   # the compiler's weight format
            b_q = arith.quantize(self._layout(name, w), fl_w, bits)
            ov = ovsf.decompose(b_q.reshape(b_q.shape[0], -1), fl_w, n_codes / self.L, self.L,
                                self.cfg.alpha_bits, bits)
            self.codes[name] = ov.codes
        self._plan = {name: self._projectors(name) for name in self.blocks}

    def _projectors(self, name) -> list:
        """[(flat indices (m, r), (r, r) projector)], one per padding pattern."""
        from golden import ovsf

        a = ovsf.code_matrix(self.L)[list(self.codes[name])].T.astype(np.float64)   # L x n
        idx = self.blocks[name].reshape(-1, self.L)
        real = idx >= 0
        plan = []
        for pattern in np.unique(real, axis=0):
            if not pattern.any():
                continue
            rows = np.all(real == pattern, axis=1)
            if pattern.all():
                plan.append((idx[rows], a @ a.T / self.L))   # C C^T = L I: the span's projector
                continue
            # alphas whose block vanishes on the padding: null space of the padding rows
            _, s, vt = np.linalg.svd(a[~pattern], full_matrices=True)
            null = vt[int(np.sum(s > 1e-9 * self.L)):].T
            basis = a[pattern] @ null
            if basis.shape[1]:
                q, _ = np.linalg.qr(basis)
                proj = q @ q.T
            else:
                proj = np.zeros((int(pattern.sum()),) * 2)
            plan.append((idx[rows][:, pattern], proj))
        return plan

    def project(self, params) -> None:
        for name, plan in self._plan.items():
            w = params[name][0]
            flat = w.reshape(-1).astype(np.float64)
            for ix, proj in plan:
                flat[ix] = flat[ix] @ proj
            params[name][0] = flat.reshape(w.shape).astype(np.float32)

    def describe(self) -> str:
        return ", ".join(f"{name} {list(self.codes[name])}" for name in self.blocks)


def _fit(ops, params, x_tr, y_tr, epochs: int, lr: float, batch: int, rng, log, project=None, on_epoch=None):
    """Adam on the softmax cross-entropy, cosine learning-rate decay over ``epochs``.
    ``project()`` runs after every optimizer step (OVSF training keeps the
    weights in the engine's subspace with it), ``on_epoch(epoch)`` before each epoch."""
    adam = {name: [[np.zeros_like(p), np.zeros_like(p)] for p in ps] for name, ps in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    for epoch in range(1, epochs + 1):
        if on_epoch is not None:
            on_epoch(epoch)
        t0 = time.perf_counter()
        # Cosine decay: large steps early, small ones to settle at the end.
        lr_epoch = lr * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs))
        order = rng.permutation(len(x_tr))
        total_loss = 0.0
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            logits, saved = forward(ops, params, x_tr[idx])
            # softmax cross-entropy, averaged over the batch
            z = logits - logits.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            total_loss += float(-np.log(p[np.arange(len(idx)), y_tr[idx]] + 1e-12).sum())
            p[np.arange(len(idx)), y_tr[idx]] -= 1
            grads = backward(ops, params, saved, p / len(idx))
            step += 1
            for name, gs in grads.items():
                for j, g in enumerate(gs):
                    m, v = adam[name][j]
                    m *= beta1
                    m += (1 - beta1) * g
                    v *= beta2
                    v += (1 - beta2) * g * g
                    mhat = m / (1 - beta1 ** step)
                    vhat = v / (1 - beta2 ** step)
                    params[name][j] -= (lr_epoch * mhat / (np.sqrt(vhat) + eps)).astype(np.float32)
            if project is not None:
                project()
        log(f"epoch {epoch:3d}/{epochs}: loss {total_loss / len(x_tr):.4f}, "
            f"train accuracy {accuracy(ops, params, x_tr, y_tr):.4f} ({time.perf_counter() - t0:.2f} s)")


def _fit_ovsf(net, params, x_tr, y_tr, rho, epochs, lr, batch, rng, log):
    """Fine-tune with every conv/fc weight projected after each step, the code
    sets reselected by energy at the start of each stage (OvsfProjection.stages)."""
    proj = OvsfProjection(net, rho)
    stages = proj.stages(epochs)

    def on_epoch(epoch):
        if epoch in stages:
            proj.select(params, stages[epoch])
            proj.project(params)
            log(f"OVSF {stages[epoch]} codes of {proj.L}: {proj.describe()}")

    log(f"OVSF fine-tuning for rho {rho:g} ({epochs} epochs)")
    _fit(net, params, x_tr, y_tr, epochs, lr, batch, rng, log, project=lambda: proj.project(params),
         on_epoch=on_epoch)


def build(arch: str = "chain", seed: int = 0) -> Network:
    """The untrained network of ``arch`` (ARCHS): its description with seeded
    He-scale weights (golden.network.load_network)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r} (known: {', '.join(ARCHS)})")
    net = load_network(dict(ARCHS[arch][0], weights={"seed": seed}))
    _check_trainable(net)
    return net


def n_params(net: Network) -> int:
    return sum(op.weight.size + op.bias.size for op in net.ops if op.type in ("conv", "fc"))


def train(epochs: Optional[int] = None, seed: int = 0, lr: Optional[float] = None, batch: int = 32, log=print,
          rho=1, ovsf_epochs: int = OVSF_EPOCHS, ovsf_lr: float = OVSF_LR, arch: str = "chain",
          n_train: Optional[int] = None):
    """Returns (trained Network, X_test, y_test, float test accuracy, X_calib).

    ``arch`` picks the network (ARCHS: chain, residual, dwsep); ``epochs`` and
    ``lr`` default to its entry there (chain: 30 at 0.005). ``n_train`` keeps
    only the first that many training images (quick runs).

    With ``rho < 1`` the normally trained network (``epochs`` at ``lr``) is then
    fine-tuned for ``ovsf_epochs`` at ``ovsf_lr`` with every conv/fc weight
    projected after each step onto what golden/ovsf.py reproduces at ``rho``
    (see OvsfProjection)."""
    from threadpoolctl import threadpool_limits   # a scikit-learn dependency

    net = build(arch, seed)
    epochs = ARCHS[arch][1] if epochs is None else epochs
    lr = ARCHS[arch][2] if lr is None else lr
    x_tr, y_tr, x_te, y_te = load_split(seed)
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    params = {op.name: [op.weight.astype(np.float32), op.bias.astype(np.float32)]
              for op in net.ops if op.type in ("conv", "fc")}
    rng = np.random.default_rng(seed)
    # One BLAS thread: the matrices are small, so extra threads mostly wait (10x
    # slower on a busy machine), and the bits no longer depend on the core count.
    with threadpool_limits(1):
        _fit(net, params, x_tr, y_tr, epochs, lr, batch, rng, log)
        if rho != 1:
            _fit_ovsf(net, params, x_tr, y_tr, rho, ovsf_epochs, ovsf_lr, batch, rng, log)
    for op in net.ops:
        if op.name in params:
            op.weight = params[op.name][0].astype(np.float64)
            op.bias = params[op.name][1].astype(np.float64)
    acc = accuracy(net, params, x_te, y_te)
    calib = x_tr[np.random.default_rng(seed + 1).permutation(len(x_tr))[:N_CALIB]]
    return net, x_te, y_te, acc, calib


def export(net: Network, x_test, y_test, calib, out: str) -> str:
    from golden.onnx_import import network_to_onnx
    import onnx

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "digits.onnx")
    onnx.save(network_to_onnx(net), path)
    np.save(os.path.join(out, "X_test.npy"), x_test.astype(np.float32))
    np.save(os.path.join(out, "y_test.npy"), y_test.astype(np.int64))
    np.save(os.path.join(out, "X_calib.npy"), calib.astype(np.float32))
    return path


#: The golden runs reported: the default engine and the 8-bit one (as ``uz --bits 8``).
QUANT_CONFIGS = {"16-bit": {}, "8-bit": {"data_bits": 8, "alpha_bits": 8, "acc_bits": 32}}


def golden_scores(prog, x) -> np.ndarray:
    """The scores (network output in real units) the integer golden model
    gives one float (C, H, W) image: quantized at the input's fl, run through
    the compiled program's layers, the output tensor read at its fl."""
    from golden import arith, compiler

    xq = arith.quantize(x, prog.fl_input, prog.cfg.data_bits)
    out = compiler.network_output_q(prog, xq)
    fl = prog.fl.get(prog.output, prog.layers[-1].fl_out)
    return out.reshape(-1) * 2.0 ** -fl


def golden_accuracy(onnx_path: str, x_test, y_test, calib, cfg, rho=1) -> tuple[float, float]:
    """(float, quantized) test accuracy of the exported model as the engine
    runs it: load_onnx, compile with ``cfg`` (calibrated on training images)
    and every weight layer at ``rho`` (OVSF-generated weights when below 1),
    and the layer-by-layer integer golden model (chain or graph)."""
    from golden import compiler
    from golden.network import forward_float
    from golden.onnx_import import load_onnx

    net = load_onnx(onnx_path)
    prog = compiler.compile_network(net, cfg, calib, rho=rho, force_ovsf=rho != 1)
    right_float = right_q = 0
    for x, y in zip(x_test, y_test):
        right_float += int(np.argmax(forward_float(net, x)) == y)
        right_q += int(np.argmax(golden_scores(prog, x)) == y)
    return right_float / len(y_test), right_q / len(y_test)


def _rho(text: str) -> float:
    from fractions import Fraction
    try:
        v = float(Fraction(text))   # "0.25" or "1/4"
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"rho must be in (0, 1], not {text}")
    return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=tuple(ARCHS), default="chain",
                    help="the network: chain (default), residual (ResNet-style) or dwsep (MobileNet-style)")
    ap.add_argument("--out", help="output folder (default build/digits for the chain, build/digits_<arch> "
                                  "for the others)")
    ap.add_argument("--epochs", type=int, help="training epochs (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the batches")
    ap.add_argument("--lr", type=float, help="Adam learning rate (default 0.005)")
    ap.add_argument("--rho", type=_rho, default=1.0,
                    help="train for OVSF-generated weights at this rho (default 1: no OVSF); "
                         "rho * 16 codes must be a whole number (default engine, L = 16)")
    ap.add_argument("--ovsf-epochs", type=int, default=OVSF_EPOCHS,
                    help=f"with --rho < 1: fine-tuning epochs in the OVSF subspace after --epochs "
                         f"(default {OVSF_EPOCHS})")
    ap.add_argument("--ovsf-lr", type=float, default=OVSF_LR,
                    help=f"Adam learning rate of the OVSF fine-tuning (default {OVSF_LR})")
    ap.add_argument("--no-golden", action="store_true",
                    help="skip the 16- and 8-bit golden accuracy of the exported model")
    args = ap.parse_args(argv)
    _, def_epochs, def_lr = ARCHS[args.arch]
    args.epochs = def_epochs if args.epochs is None else args.epochs
    args.lr = def_lr if args.lr is None else args.lr
    if args.out is None:
        args.out = os.path.join("build", "digits" if args.arch == "chain" else f"digits_{args.arch}")
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    if args.rho < 1 and args.ovsf_epochs < 1:
        ap.error("--ovsf-epochs must be at least 1")
    from golden.config import EngineConfig
    from golden.errors import UzError
    from golden.ovsf import n_codes_for

    try:
        n_codes_for(args.rho, EngineConfig().ovsf_len)
    except UzError as e:
        ap.error(str(e))
    net = build(args.arch, args.seed)
    print(f"{args.arch}: {net.name}, {sum(op.type in ('conv', 'fc') for op in net.ops)} conv/fc layers, "
          f"{n_params(net)} parameters", flush=True)
    t0 = time.perf_counter()
    net, x_te, y_te, acc, calib = train(args.epochs, args.seed, args.lr, log=lambda s: print(s, flush=True),
                                        rho=args.rho, ovsf_epochs=args.ovsf_epochs, ovsf_lr=args.ovsf_lr,
                                        arch=args.arch)
    path = export(net, x_te, y_te, calib, args.out)
    print(f"float test accuracy {acc:.4f} on {len(y_te)} images; trained in {time.perf_counter() - t0:.1f} s")
    print(f"wrote {path}, X_test.npy, y_test.npy, X_calib.npy")
    if not args.no_golden:
        at = f" at rho {args.rho:g}" if args.rho < 1 else ""
        for label, fields in QUANT_CONFIGS.items():
            f_acc, q_acc = golden_accuracy(path, x_te, y_te, calib, EngineConfig(**fields), args.rho)
            print(f"golden {label} accuracy{at} {q_acc:.4f} (float {f_acc:.4f} after the ONNX round trip)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
