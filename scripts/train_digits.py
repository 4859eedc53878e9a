#!/usr/bin/env python3
"""Train a small CNN on scikit-learn's 8x8 digits with plain numpy and export it.

    .venv/bin/python scripts/train_digits.py [--out build/digits] [--epochs 30] [--seed 0]

The network is a golden.network description (so its He-scaled seeded weights
are the starting point), trained by Adam on a softmax cross-entropy with the
backward pass written here. Writes to --out:

    digits.onnx   the trained network (golden.onnx_import.network_to_onnx)
    X_test.npy    the test split, float32 [N, 1, 8, 8], pixels scaled to [0, 1]
    y_test.npy    its labels, int64 [N]
    X_calib.npy   training images for the quantizer's calibration (never test images)

and prints the loss and accuracy per epoch, the float test accuracy, then the
test accuracy of the exported model imported and compiled for the engine,
16-bit and 8-bit, run on the integer golden model (--no-golden skips it).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

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


def train(epochs: int = 30, seed: int = 0, lr: float = 0.005, batch: int = 32, log=print):
    """Returns (trained Network, X_test, y_test, float test accuracy, X_calib)."""
    x_tr, y_tr, x_te, y_te = load_split(seed)
    net = load_network(dict(SPEC, weights={"seed": seed}))
    _check_trainable(net)
    params = {op.name: [op.weight.astype(np.float32), op.bias.astype(np.float32)]
              for op in net.ops if op.type in ("conv", "fc")}
    adam = {name: [[np.zeros_like(p), np.zeros_like(p)] for p in ps] for name, ps in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    rng = np.random.default_rng(seed)
    step = 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        # Cosine decay: large steps early, small ones to settle at the end.
        lr_epoch = lr * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs))
        order = rng.permutation(len(x_tr))
        total_loss = 0.0
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            logits, saved = forward(net.ops, params, x_tr[idx])
            # softmax cross-entropy, averaged over the batch
            z = logits - logits.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            total_loss += float(-np.log(p[np.arange(len(idx)), y_tr[idx]] + 1e-12).sum())
            p[np.arange(len(idx)), y_tr[idx]] -= 1
            grads = backward(net.ops, params, saved, p / len(idx))
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
        log(f"epoch {epoch:3d}/{epochs}: loss {total_loss / len(x_tr):.4f}, "
            f"train accuracy {accuracy(net.ops, params, x_tr, y_tr):.4f} ({time.perf_counter() - t0:.2f} s)")
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


def golden_accuracy(onnx_path: str, x_test, y_test, calib, cfg) -> tuple[float, float]:
    """(float, quantized) test accuracy of the exported model as the engine
    runs it: load_onnx, compile with ``cfg`` (calibrated on training images),
    and the layer-by-layer integer golden model."""
    from golden import arith, compiler
    from golden.network import forward_float
    from golden.onnx_import import load_onnx

    net = load_onnx(onnx_path)
    prog = compiler.compile_network(net, cfg, calib)
    scale = 2.0 ** -prog.layers[-1].fl_out   # the last layer's integers back to real scores
    right_float = right_q = 0
    for x, y in zip(x_test, y_test):
        right_float += int(np.argmax(forward_float(net, x)) == y)
        out = compiler.run_network(prog, arith.quantize(x, prog.fl_input, cfg.data_bits))[-1]
        right_q += int(np.argmax(out.reshape(-1) * scale) == y)
    return right_float / len(y_test), right_q / len(y_test)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join("build", "digits"), help="output folder (default build/digits)")
    ap.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the batches")
    ap.add_argument("--lr", type=float, default=0.005, help="Adam learning rate (default 0.005)")
    ap.add_argument("--no-golden", action="store_true",
                    help="skip the 16- and 8-bit golden accuracy of the exported model")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    t0 = time.perf_counter()
    net, x_te, y_te, acc, calib = train(args.epochs, args.seed, args.lr, log=lambda s: print(s, flush=True))
    path = export(net, x_te, y_te, calib, args.out)
    print(f"float test accuracy {acc:.4f} on {len(y_te)} images; trained in {time.perf_counter() - t0:.1f} s")
    print(f"wrote {path}, X_test.npy, y_test.npy, X_calib.npy")
    if not args.no_golden:
        from golden.config import EngineConfig

        for label, fields in QUANT_CONFIGS.items():
            f_acc, q_acc = golden_accuracy(path, x_te, y_te, calib, EngineConfig(**fields))
            print(f"golden {label} accuracy {q_acc:.4f} (float {f_acc:.4f} after the ONNX round trip)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
