"""Real data end to end: scripts/train_digits.py trains a small CNN on the 8x8
digits, exports it to ONNX, and the imported, compiled 16-bit network keeps
its float accuracy on the test split; trained for OVSF at rho = 1/4 (--rho), it
keeps it with a quarter of the codes too."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from golden import arith, compiler
from golden.config import EngineConfig
from golden.network import forward_float
from golden.onnx_import import load_onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Fewer than the script's default 30: enough for > 90 % in a few seconds.
EPOCHS = 8


def _script():
    spec = importlib.util.spec_from_file_location("train_digits", os.path.join(ROOT, "scripts", "train_digits.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    td = _script()
    net, x_te, y_te, acc, calib = td.train(epochs=EPOCHS, seed=0, log=lambda s: None)
    out = tmp_path_factory.mktemp("digits")
    path = td.export(net, x_te, y_te, calib, str(out))
    return path, out, acc


def test_trains_above_90_percent(trained):
    _, _, acc = trained
    assert acc > 0.90


def test_exported_files(trained):
    path, out, acc = trained
    x = np.load(out / "X_test.npy")
    y = np.load(out / "y_test.npy")
    calib = np.load(out / "X_calib.npy")
    assert x.dtype == np.float32 and x.shape == (len(y), 1, 8, 8) and y.dtype == np.int64
    assert 0 <= x.min() and x.max() <= 1 and set(np.unique(y)) == set(range(10))
    assert calib.shape[1:] == (1, 8, 8)
    net = load_onnx(path)
    float_acc = np.mean([np.argmax(forward_float(net, xi)) == yi for xi, yi in zip(x, y)])
    assert float_acc == pytest.approx(acc, abs=1 / len(y))   # float32 export may flip a tie at most


def test_quantized_16bit_keeps_the_accuracy(trained):
    path, out, _ = trained
    x, y, calib = (np.load(out / f) for f in ("X_test.npy", "y_test.npy", "X_calib.npy"))
    net = load_onnx(path)
    float_acc = np.mean([np.argmax(forward_float(net, xi)) == yi for xi, yi in zip(x, y)])
    prog = compiler.compile_network(net, EngineConfig(), calib)
    last = prog.layers[-1]
    correct = 0
    for xi, yi in zip(x, y):
        out_q = compiler.run_network(prog, arith.quantize(xi, prog.fl_input, prog.cfg.data_bits))[-1]
        scores = out_q.reshape(-1) * 2.0 ** -last.fl_out
        correct += int(np.argmax(scores) == yi)
    q_acc = correct / len(y)
    assert abs(q_acc - float_acc) <= 0.02, (q_acc, float_acc)


def test_script_rejects_a_rho_the_engine_cannot_use(capsys):
    with pytest.raises(SystemExit):
        _script().main(["--rho", "0.3", "--no-golden"])   # 0.3 * 16 codes is not a whole number
    assert "rho*L=4.8" in capsys.readouterr().err


def test_script_shows_progress_and_writes(tmp_path, capsys):
    assert _script().main(["--out", str(tmp_path / "d"), "--epochs", "1", "--no-golden"]) == 0
    text = capsys.readouterr().out
    assert "epoch   1/1: loss" in text and "float test accuracy" in text
    assert sorted(os.listdir(tmp_path / "d")) == ["X_calib.npy", "X_test.npy", "digits.onnx", "y_test.npy"]


#: OVSF-aware training: a quarter of the codes, few fine-tuning epochs.
RHO = 0.25
OVSF_EPOCHS = 12


def _golden_accuracy(net, x, y, calib, rho) -> float:
    prog = compiler.compile_network(net, EngineConfig(), calib, rho=rho, force_ovsf=True)
    scale = 2.0 ** -prog.layers[-1].fl_out
    outs = [compiler.run_network(prog, arith.quantize(xi, prog.fl_input, prog.cfg.data_bits))[-1] for xi in x]
    return float(np.mean([np.argmax(o.reshape(-1) * scale) == yi for o, yi in zip(outs, y)]))


@pytest.fixture(scope="module")
def trained_for_rho(tmp_path_factory):
    td = _script()
    # The same seed and warm-up epochs as `trained`: it is the model fine-tuned here.
    net, x_te, y_te, acc, calib = td.train(epochs=EPOCHS, seed=0, rho=RHO, ovsf_epochs=OVSF_EPOCHS,
                                           log=lambda s: None)
    path = td.export(net, x_te, y_te, calib, str(tmp_path_factory.mktemp("digits_rho")))
    return load_onnx(path), x_te, y_te, calib, acc


def test_ovsf_training_weights_are_what_golden_generates(trained_for_rho):
    """The final projection and golden's decompose agree: the weights the
    engine generates at rho are the trained ones, up to quantization."""
    net, _, _, calib, _ = trained_for_rho
    exact = compiler.compile_network(net, EngineConfig(), calib)
    gen = compiler.compile_network(net, EngineConfig(), calib, rho=RHO, force_ovsf=True)
    for a, b in zip(exact.layers, gen.layers):
        assert b.ovsf is not None and b.ovsf.n_codes == RHO * EngineConfig().ovsf_len
        err = np.linalg.norm(a.w_q - b.w_q) / np.linalg.norm(a.w_q)
        assert err < 1e-3, (a.name, err)


def test_ovsf_training_keeps_float_accuracy_at_rho(trained, trained_for_rho):
    net, x, y, calib, acc = trained_for_rho
    q_acc = _golden_accuracy(net, x, y, calib, RHO)
    assert acc > 0.8 and abs(q_acc - acc) <= 0.02, (q_acc, acc)
    # The rho-1 model it started from, decomposed after training, is near chance.
    path, out, _ = trained
    post = _golden_accuracy(load_onnx(path), x, y, np.load(out / "X_calib.npy"), RHO)
    assert q_acc > post + 0.4, (q_acc, post)
