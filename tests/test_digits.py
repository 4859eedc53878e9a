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


# ------------------------------------------------- graph networks (--arch)
#
# The residual (ResNet-style) and dwsep (MobileNet-style) networks: the
# backward pass of every op against central differences, a short training
# run, the ONNX export through onnxruntime, golden and OVSF-aware training.

def _conv(name, cout, k, **kw):
    return dict({"name": name, "type": "conv", "out_channels": cout, "kernel": k}, **kw)


#: Tiny networks, one per op (or feature) whose backward pass is checked; the
#: first element scales the random input (ReLU6 needs values past 6).
GRAD_NETS = {
    "conv stride 2, uneven pads": (1, [3, 5, 5], [_conv("c", 4, 3, stride=2, pad=[1, 0, 0, 1])]),
    "grouped conv": (1, [4, 5, 5], [_conv("c", 6, 3, pad=1, groups=2)]),
    "depthwise conv stride 2": (1, [4, 5, 5], [_conv("c", 4, 3, stride=2, pad=1, groups=4)]),
    "pointwise conv": (1, [4, 3, 3], [_conv("c", 5, 1)]),
    "add, a tensor read twice": (1, [2, 4, 4], [
        _conv("a", 3, 1), _conv("b", 3, 3, pad=1, inputs=["input"]),
        {"name": "sum", "type": "add", "inputs": ["a", "b"]},
        {"name": "sum2", "type": "add", "inputs": ["sum", "a"]}]),
    "relu6": (4, [2, 4, 4], [_conv("c", 3, 3, pad=1), {"name": "r6", "type": "relu6"}]),
    "clip": (1, [2, 4, 4], [_conv("c", 3, 3, pad=1), {"name": "cl", "type": "clip", "min": -0.3, "max": 0.4}]),
    "gap": (1, [2, 4, 4], [_conv("c", 3, 3, pad=1), {"name": "g", "type": "gap"},
                           {"name": "fc", "type": "fc", "out_features": 4}]),
    "relu, maxpool, flatten, fc": (1, [2, 4, 4], [
        _conv("c", 3, 3, pad=1), {"name": "r", "type": "relu"},
        {"name": "p", "type": "maxpool", "kernel": 2}, {"name": "f", "type": "flatten"},
        {"name": "fc", "type": "fc", "out_features": 4}]),
}


def _grad_check(td, net, scale=1.0, n=2, per_array=None, seed=0):
    """Largest |analytic - numeric| / max(1, |numeric|) over the parameters and
    the input (all entries, or ``per_array`` random ones of each array), the
    loss sum(out * R) in float64, central differences with step 1e-6; and
    the forward pass's saved values (to see which branches ran)."""
    rng = np.random.default_rng(seed)
    params = {op.name: [op.weight.astype(np.float64), op.bias.astype(np.float64)]
              for op in net.ops if op.type in ("conv", "fc")}
    x = scale * rng.normal(size=(n,) + tuple(net.input_shape))
    out, saved = td.forward(net, params, x)
    r = rng.normal(size=out.shape)
    grads, tgrad = td.backward_all(net, params, saved, r)
    assert set(tgrad) == {"input"}

    def loss():
        return float(np.sum(td.forward(net, params, x, keep=False)[0] * r))

    checks = [(x, tgrad["input"])] + [(params[k][j], grads[k][j]) for k in params for j in range(2)]
    worst = 0.0
    for arr, ana in checks:
        assert ana.shape == arr.shape
        flat = arr.reshape(-1)   # a view: changing it changes the array forward reads
        idx = range(flat.size) if per_array is None else rng.choice(flat.size, min(per_array, flat.size), False)
        for i in idx:
            v = flat[i]
            flat[i] = v + 1e-6
            lp = loss()
            flat[i] = v - 1e-6
            lm = loss()
            flat[i] = v
            num = (lp - lm) / 2e-6
            worst = max(worst, abs(ana.reshape(-1)[i] - num) / max(1.0, abs(num)))
    return worst, saved


@pytest.mark.parametrize("what", list(GRAD_NETS))
def test_backward_matches_numerical_gradient(what):
    from golden.network import load_network
    scale, shape, layers_ = GRAD_NETS[what]
    net = load_network({"name": what, "input_shape": shape, "layers": layers_, "weights": {"seed": 3}})
    worst, saved = _grad_check(_script(), net, scale)
    assert worst < 1e-6, worst
    for op in net.ops:
        if op.type == "clip":   # both ends of the clip and the linear part ran
            x = saved[op.name]
            assert x.any() and not x.all(), op.name


@pytest.mark.parametrize("arch", ["residual", "dwsep"])
def test_backward_of_the_whole_network(arch):
    """Every parameter array and the input of the real networks, 12 random
    entries each, at the seeded initial weights (inputs scaled so ReLU6 clips)."""
    td = _script()
    worst, _ = _grad_check(td, td.build(arch, seed=0), scale=3.0, per_array=12)
    assert worst < 1e-6, worst


def test_arch_specs():
    """Each network is what its --arch promises, and the chain is unchanged."""
    td = _script()
    types = {a: [op.type for op in td.build(a).ops] for a in td.ARCHS}
    assert types["chain"] == ["conv", "relu", "maxpool", "conv", "relu", "maxpool", "flatten", "fc"]
    res = td.build("residual")
    assert types["residual"].count("add") == 3 and "gap" in types["residual"]
    assert any(op.type == "conv" and op.attrs["stride"] == 2 and op.weight.shape[2] == 1 for op in res.ops)
    assert not res.is_chain()
    dw = td.build("dwsep")
    depthwise = [op for op in dw.ops if op.type == "conv" and op.attrs["groups"] > 1]
    assert len(depthwise) == 3 and all(op.weight.shape[1] == 1 for op in depthwise)
    assert any(op.attrs["stride"] == 2 for op in depthwise)
    add = dw.op("ir_add")
    assert dw.op(add.inputs[0]).type == "conv"   # the linear projection: no activation before the add
    assert types["dwsep"].count("clip") == 7 and "gap" in types["dwsep"]


#: Short runs of the graph networks: a subset of the training images, 2 epochs.
SMOKE_TRAIN = 800
SMOKE_EPOCHS = 2


@pytest.fixture(scope="module", params=["residual", "dwsep"])
def trained_graph(request, tmp_path_factory):
    td = _script()
    net, x_te, y_te, acc, calib = td.train(epochs=SMOKE_EPOCHS, seed=0, arch=request.param, n_train=SMOKE_TRAIN,
                                           log=lambda s: None)
    out = tmp_path_factory.mktemp(f"digits_{request.param}")
    path = td.export(net, x_te, y_te, calib, str(out))
    return request.param, net, path, x_te, y_te, calib, acc


def test_graph_arch_learns_in_two_epochs(trained_graph):
    _, _, _, _, _, _, acc = trained_graph
    assert acc > 0.3, acc   # chance is 0.1 (seed 0: 0.82 residual, 0.63 dwsep)


def test_graph_export_runs_in_onnxruntime(trained_graph):
    """The ONNX file has the graph ops, and onnxruntime's logits are the numpy
    model's (the trainer's float32 forward, and golden's float reference)."""
    import onnx
    import onnxruntime as ort
    arch, net, path, x, y, _, acc = trained_graph
    model = onnx.load(path)
    kinds = {n.op_type for n in model.graph.node}
    assert {"Conv", "Add", "GlobalAveragePool", "Gemm"} <= kinds
    if arch == "dwsep":
        assert "Clip" in kinds
        groups = [a.i for n in model.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
        assert sorted(groups) == [16, 32, 96]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ort_logits = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    params = {op.name: [op.weight.astype(np.float32), op.bias.astype(np.float32)]
              for op in net.ops if op.type in ("conv", "fc")}
    td = _script()
    np_logits, _ = td.forward(net, params, x.astype(np.float32), keep=False)
    np.testing.assert_allclose(ort_logits, np_logits, rtol=1e-5, atol=1e-5)
    ref = np.stack([forward_float(net, xi).reshape(-1) for xi in x])
    np.testing.assert_allclose(ort_logits, ref, rtol=1e-5, atol=1e-5)
    back = np.stack([forward_float(load_onnx(path), xi).reshape(-1) for xi in x[:20]])
    np.testing.assert_allclose(back, ref[:20], rtol=1e-5, atol=1e-5)
    assert np.mean(ort_logits.argmax(1) == y) == acc


def test_graph_arch_golden_16bit_keeps_the_accuracy(trained_graph):
    """Through the graph compiler (compile_network) and the integer golden model."""
    td = _script()
    _, _, path, x, y, calib, _ = trained_graph
    f_acc, q_acc = td.golden_accuracy(path, x, y, calib, EngineConfig())
    assert abs(q_acc - f_acc) <= 0.02, (q_acc, f_acc)


def test_graph_arch_ovsf_training_weights_are_what_golden_generates():
    """OvsfProjection lays out graph networks (grouped and depthwise weights
    included) as the graph compiler does: after fine-tuning at rho the
    weights golden generates are the trained ones, up to quantization."""
    td = _script()
    net, x, y, acc, calib = td.train(epochs=1, seed=0, arch="dwsep", n_train=SMOKE_TRAIN, rho=0.5, ovsf_epochs=2,
                                     log=lambda s: None)
    exact = compiler.compile_network(net, EngineConfig(), calib)
    gen = compiler.compile_network(net, EngineConfig(), calib, rho=0.5, force_ovsf=True)
    weighted = [(a, b) for a, b in zip(exact.layers, gen.layers) if a.w_q is not None]
    assert len(weighted) == 9
    for a, b in weighted:
        assert b.ovsf is not None and b.ovsf.n_codes == 0.5 * EngineConfig().ovsf_len
        err = np.linalg.norm(a.w_q - b.w_q) / max(np.linalg.norm(a.w_q), 1.0)
        assert err < 1e-3, (a.name, err)


def test_script_trains_a_graph_arch(tmp_path, capsys):
    assert _script().main(["--arch", "residual", "--out", str(tmp_path / "r"), "--epochs", "1", "--no-golden"]) == 0
    text = capsys.readouterr().out
    assert "residual: digits_residual" in text and "38058 parameters" in text and "float test accuracy" in text
    assert sorted(os.listdir(tmp_path / "r")) == ["X_calib.npy", "X_test.npy", "digits.onnx", "y_test.npy"]
