#!/usr/bin/env python3
"""Train a small CNN on scikit-learn's 8x8 digits with plain numpy and export it.

    .venv/bin/python scripts/train_digits.py [--out build/digits] [--epochs 30] [--seed 0]
        [--rho 0.25 [--ovsf-epochs 45] [--ovsf-lr 0.01]]

The network is a golden.network description (so its He-scaled seeded weights
are the starting point), trained by Adam on a softmax cross-entropy with the
backward pass written here.

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

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from golden.network import Network, load_network  # noqa: E402

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

def _conv_cols(x, k, pads):
    """Patch matrix (N*OH*OW, C*K*K) of a stride-1 convolution, and OH, OW."""
    pt, pb, pl, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    v = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))   # N, C, OH, OW, K, K
    n, c, oh, ow = v.shape[:4]
    return v.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * k * k), xp.shape, oh, ow


def forward(ops, params, x):
    """Logits [N, 10] and what the backward pass needs per op."""
    saved = []
    for op in ops:
        if op.type == "conv":
            w, b = params[op.name]
            cols, xp_shape, oh, ow = _conv_cols(x, w.shape[2], op.attrs["pads"])
            y = cols @ w.reshape(w.shape[0], -1).T + b
            saved.append((cols, xp_shape, x.shape))
            x = y.reshape(x.shape[0], oh, ow, -1).transpose(0, 3, 1, 2)
        elif op.type == "relu":
            saved.append(x > 0)
            x = np.maximum(x, 0)
        elif op.type == "maxpool":
            n, c, h, w_ = x.shape
            k = op.attrs["kernel"]
            blocks = x.reshape(n, c, h // k, k, w_ // k, k)
            y = blocks.max(axis=(3, 5))
            saved.append((blocks == y[:, :, :, None, :, None], x.shape))
            x = y
        elif op.type == "flatten":
            saved.append(x.shape)
            x = x.reshape(x.shape[0], -1)
        elif op.type == "fc":
            w, b = params[op.name]
            saved.append(x)
            x = x @ w.T + b
        else:
            raise ValueError(f"the trainer has no {op.type} layer")
    return x, saved


def backward(ops, params, saved, dy):
    grads = {}
    for op, s in zip(reversed(ops), reversed(saved)):
        if op.type == "fc":
            w, _ = params[op.name]
            grads[op.name] = (dy.T @ s, dy.sum(axis=0))
            dy = dy @ w
        elif op.type == "flatten":
            dy = dy.reshape(s)
        elif op.type == "maxpool":
            mask, shape = s
            # Every tied maximum gets the gradient: ties are zeros after a ReLU, which drops it.
            dy = (mask * dy[:, :, :, None, :, None]).reshape(shape)
        elif op.type == "relu":
            dy = dy * s
        elif op.type == "conv":
            w, _ = params[op.name]
            cols, xp_shape, x_shape = s
            cout, cin, k, _ = w.shape
            dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, cout)
            grads[op.name] = ((dy2.T @ cols).reshape(w.shape), dy2.sum(axis=0))
            dcols = (dy2 @ w.reshape(cout, -1)).reshape(dy.shape[0], dy.shape[2], dy.shape[3], cin, k, k)
            dxp = np.zeros(xp_shape, dtype=dy.dtype)
            oh, ow = dy.shape[2], dy.shape[3]
            for i in range(k):
                for j in range(k):
                    dxp[:, :, i:i + oh, j:j + ow] += dcols[..., i, j].transpose(0, 3, 1, 2)
            pt, _, pl, _ = op.attrs["pads"]
            dy = dxp[:, :, pt:pt + x_shape[2], pl:pl + x_shape[3]]
    return grads


def _check_trainable(net: Network):
    for op in net.ops:
        if op.type == "conv" and op.attrs["stride"] != 1:
            raise ValueError(f"{op.name}: the trainer handles stride-1 convolutions only")
        if op.type == "maxpool" and (op.attrs["kernel"] != op.attrs["stride"] or op.attrs["pad"]):
            raise ValueError(f"{op.name}: the trainer handles non-overlapping unpadded pools only")


def accuracy(net_ops, params, x, y) -> float:
    logits, _ = forward(net_ops, params, x)
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
    """

    def __init__(self, net: Network, rho, cfg=None):
        from golden import compiler, memimage, ovsf
        from golden.config import EngineConfig
        from golden.network import to_engine_layers

        self.cfg = cfg or EngineConfig()
        self.L = self.cfg.ovsf_len
        self.n_codes = ovsf.n_codes_for(rho, self.L)
        self.codes = {}
        self.blocks = {}   # op name -> (Cout', nblocks, L) index into the op's flat weight, -1 = padding
        # Run an index tensor through the compiler's own layout steps, so the
        # blocks are exactly those decompose sees.
        ops = [replace(op, weight=np.arange(1, op.weight.size + 1, dtype=np.float64).reshape(op.weight.shape))
               if op.type in ("conv", "fc") else op for op in net.ops]
        for L in to_engine_layers(Network(net.name, net.input_shape, ops)):
            if L.weight is None:
                continue
            fc_in = getattr(L, "fc_in_shape", None)   # set on FC layers only
            w = L.weight if fc_in is None else compiler.fc_weight_to_layout(L.weight[:, :, 0, 0], fc_in, self.cfg.pn)
            w_pad = memimage.pad_weights(np.rint(w).astype(np.int64), self.cfg)
            self.blocks[L.source[0]] = ovsf.to_blocks(w_pad, self.L) - 1
        self._plan = {}

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
    _fit(net.ops, params, x_tr, y_tr, epochs, lr, batch, rng, log, project=lambda: proj.project(params),
         on_epoch=on_epoch)


def train(epochs: int = 30, seed: int = 0, lr: float = 0.005, batch: int = 32, log=print,
          rho=1, ovsf_epochs: int = OVSF_EPOCHS, ovsf_lr: float = OVSF_LR):
    """Returns (trained Network, X_test, y_test, float test accuracy, X_calib).

    With ``rho < 1`` the normally trained network (``epochs`` at ``lr``) is then
    fine-tuned for ``ovsf_epochs`` at ``ovsf_lr`` with every conv/fc weight
    projected after each step onto what golden/ovsf.py reproduces at ``rho``
    (see OvsfProjection)."""
    from threadpoolctl import threadpool_limits   # a scikit-learn dependency

    x_tr, y_tr, x_te, y_te = load_split(seed)
    net = load_network(dict(SPEC, weights={"seed": seed}))
    _check_trainable(net)
    params = {op.name: [op.weight.astype(np.float32), op.bias.astype(np.float32)]
              for op in net.ops if op.type in ("conv", "fc")}
    rng = np.random.default_rng(seed)
    # One BLAS thread: the matrices are small, so extra threads mostly wait (10x
    # slower on a busy machine), and the bits no longer depend on the core count.
    with threadpool_limits(1):
        _fit(net.ops, params, x_tr, y_tr, epochs, lr, batch, rng, log)
        if rho != 1:
            _fit_ovsf(net, params, x_tr, y_tr, rho, ovsf_epochs, ovsf_lr, batch, rng, log)
    for op in net.ops:
        if op.name in params:
            op.weight = params[op.name][0].astype(np.float64)
            op.bias = params[op.name][1].astype(np.float64)
    acc = accuracy(net.ops, params, x_te, y_te)
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


def golden_accuracy(onnx_path: str, x_test, y_test, calib, cfg, rho=1) -> tuple[float, float]:
    """(float, quantized) test accuracy of the exported model as the engine
    runs it: load_onnx, compile with ``cfg`` (calibrated on training images)
    and every weight layer at ``rho`` (OVSF-generated weights when below 1),
    and the layer-by-layer integer golden model."""
    from golden import arith, compiler
    from golden.network import forward_float
    from golden.onnx_import import load_onnx

    net = load_onnx(onnx_path)
    prog = compiler.compile_network(net, cfg, calib, rho=rho, force_ovsf=rho != 1)
    scale = 2.0 ** -prog.layers[-1].fl_out   # the last layer's integers back to real scores
    right_float = right_q = 0
    for x, y in zip(x_test, y_test):
        right_float += int(np.argmax(forward_float(net, x)) == y)
        out = compiler.run_network(prog, arith.quantize(x, prog.fl_input, cfg.data_bits))[-1]
        right_q += int(np.argmax(out.reshape(-1) * scale) == y)
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
    ap.add_argument("--out", default=os.path.join("build", "digits"), help="output folder (default build/digits)")
    ap.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the batches")
    ap.add_argument("--lr", type=float, default=0.005, help="Adam learning rate (default 0.005)")
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
    t0 = time.perf_counter()
    net, x_te, y_te, acc, calib = train(args.epochs, args.seed, args.lr, log=lambda s: print(s, flush=True),
                                        rho=args.rho, ovsf_epochs=args.ovsf_epochs, ovsf_lr=args.ovsf_lr)
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
