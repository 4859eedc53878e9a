"""The ``uz`` command line, run as a user runs it (a subprocess): outputs,
report, and one-line errors with exit status 2 for bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from golden import arith, compiler
from golden.config import EngineConfig
from golden.network import load_network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "golden", "networks", "example5.json")
LAYERS = ["conv1", "conv2", "conv3", "fc1_svd_a", "fc1_svd_b", "fc2"]
UZ = os.path.join(os.path.dirname(sys.executable), "uz")
# One BLAS thread per run: the test workers already fill the cores, and
# spinning BLAS threads on a busy machine cost far more than they give.
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def uz(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "golden.cli", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def assert_user_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("uz: error:"), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(2024)
    good = rng.normal(size=(2, 3, 32, 32)).astype(np.float32)
    np.save(d / "good.npy", good)
    np.save(d / "wrong.npy", np.zeros((1, 3, 16, 16), np.float32))
    np.save(d / "empty.npy", np.zeros((0, 3, 32, 32), np.float32))
    np.save(d / "strings.npy", np.array(["a", "b"]))
    nan = good.copy()
    nan[1, 2, 3, 4] = np.nan
    np.save(d / "nan.npy", nan)
    (d / "text.npy").write_text("this is not an array\n")
    (d / "bad.json").write_text('{"input_shape": [3, 8, 8], "layers": [')
    (d / "cfg_bad.json").write_text('{"data_bits": 16, "lanes": 3}')
    return d


# ------------------------------------------------------------- compile

def test_compile_writes_the_program(tmp_path):
    out = tmp_path / "prog"
    r = uz("compile", EXAMPLE, "--out", out)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["image.bin", "manifest.json", "program.txt"]
    man = json.loads((out / "manifest.json").read_text())
    assert man["n_layers"] == 6 and [m["name"] for m in man["layers"]] == LAYERS
    image = (out / "image.bin").read_bytes()
    assert len(image) == max(reg["addr"] + reg["size"] for reg in man["regions"])
    text = (out / "program.txt").read_text()
    for name in LAYERS:
        assert name in text and name in r.stdout
    # Compiling again over the same folder replaces the files.
    r = uz("compile", EXAMPLE, "--out", out, "--bits", "8")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "manifest.json").read_text())["config"]["data_bits"] == 8


def test_console_script_is_installed(tmp_path):
    assert os.access(UZ, os.X_OK)
    r = subprocess.run([UZ, "compile", EXAMPLE, "--out", tmp_path / "o", "--rho", "0.25"],
                       env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert all(m["ovsf"] and m["n_codes"] == 4 for m in man["layers"])


# -------------------------------------------------------------- golden

@pytest.mark.parametrize("bits", [16, 8])
def test_golden_writes_output_and_report(tmp_path, inputs, bits):
    out = tmp_path / "g"
    r = uz("golden", EXAMPLE, "--input", inputs / "good.npy", "--out", out, "--bits", bits)
    assert r.returncode == 0, r.stderr
    assert {"output.npy", "report.json", "image.bin", "manifest.json", "program.txt"} <= set(os.listdir(out))
    y = np.load(out / "output.npy")
    assert y.dtype == np.float32 and y.shape == (2, 10)   # as onnxruntime gives a final Gemm
    rep = json.loads((out / "report.json").read_text())
    assert rep["bit_exact"] is True and rep["data_bits"] == bits and rep["images"] == 2
    assert [e["name"] for e in rep["layers"]] == LAYERS
    for e in rep["layers"]:
        for key in ("name", "kind", "out_shape", "fl_in", "fl_out", "rho", "sqnr_db", "bit_exact"):
            assert key in e, key
        assert e["bit_exact"] is True and e["sqnr_db"] > (60 if bits == 16 else 20)
    for name in LAYERS:
        assert name in r.stdout
    assert "BIT EXACT" in r.stdout and "NOT BIT EXACT" not in r.stdout
    # The output is the quantized network's answer, recomputed here in-process.
    cfg = EngineConfig(data_bits=bits, alpha_bits=bits, acc_bits=48 if bits == 16 else 32)
    x = np.load(inputs / "good.npy").astype(np.float64)
    prog = compiler.compile_network(load_network(EXAMPLE), cfg, x)
    for i, img in enumerate(x):
        outs = compiler.run_network(prog, compiler.load_input(prog, img))
        assert np.array_equal(y[i], arith.dequantize(outs[-1], prog.layers[-1].fl_out).astype(np.float32).ravel())


def test_golden_default_input_is_one_seeded_image(tmp_path):
    out = tmp_path / "g"
    r = uz("golden", EXAMPLE, "--out", out, "--seed", 3)
    assert r.returncode == 0, r.stderr
    assert np.load(out / "output.npy").shape == (1, 10)
    r2 = uz("golden", EXAMPLE, "--out", tmp_path / "g2", "--seed", 3)
    assert r2.returncode == 0
    assert np.array_equal(np.load(out / "output.npy"), np.load(tmp_path / "g2" / "output.npy"))


# ------------------------------------------------------------ bad input

BAD = [
    (["--input", "{d}/wrong.npy"], ["wrong.npy", "(1, 3, 16, 16)", "(N, 3, 32, 32)"]),
    (["--input", "{d}/missing.npy"], ["missing.npy", "not found"]),
    (["--input", "{d}/text.npy"], ["text.npy", "not a readable .npy"]),
    (["--input", "{d}/strings.npy"], ["strings.npy", "dtype"]),
    (["--input", "{d}/nan.npy"], ["nan.npy", "NaN"]),
    (["--input", "{d}/empty.npy"], ["empty.npy", "no images"]),
    (["--calib", "{d}/nan.npy"], ["nan.npy", "NaN"]),
    (["--rho", "0"], ["--rho 0", "(0, 1]"]),
    (["--rho", "1.5"], ["--rho 1.5", "(0, 1]"]),
    (["--rho", "0.3"], ["conv1", "rho=0.3", "rho*L"]),
    (["--batch", "0"], ["--batch 0"]),
    (["--config", "{d}/cfg_bad.json"], ["lanes"]),
    (["--config", "{d}/nothere.json"], ["nothere.json"]),
]


@pytest.mark.parametrize("extra,words", BAD, ids=[" ".join(e).replace("{d}/", "") for e, _ in BAD])
def test_golden_bad_input_is_one_line_error(tmp_path, inputs, extra, words):
    out = tmp_path / "out"
    r = uz("golden", EXAMPLE, "--out", out, *[a.format(d=inputs) for a in extra])
    assert_user_error(r, *words)
    assert not out.exists()


def test_bad_network_files(tmp_path, inputs):
    out = tmp_path / "out"
    for cmd in ("compile", "golden"):
        assert_user_error(uz(cmd, inputs / "bad.json", "--out", out), "bad.json", "not valid JSON")
        assert_user_error(uz(cmd, tmp_path / "none.json", "--out", out), "none.json", "not found")
    assert not out.exists()


def test_failed_run_leaves_earlier_outputs_alone(tmp_path, inputs):
    out = tmp_path / "out"
    assert uz("golden", EXAMPLE, "--out", out).returncode == 0
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    assert_user_error(uz("golden", EXAMPLE, "--out", out, "--input", inputs / "nan.npy"), "NaN")
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before


def test_out_that_is_a_file_is_an_error(tmp_path):
    f = tmp_path / "taken"
    f.write_text("keep me")
    assert_user_error(uz("compile", EXAMPLE, "--out", f), "taken", "not a folder")
    assert f.read_text() == "keep me"


def test_out_in_new_folders_is_created(tmp_path):
    out = tmp_path / "a" / "b" / "c"
    r = uz("compile", EXAMPLE, "--out", out)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["image.bin", "manifest.json", "program.txt"]
    assert os.listdir(tmp_path / "a" / "b") == ["c"]   # no temporary folder left behind


# ----------------------------------------------------------------- run

TINY = {"name": "tiny", "input_shape": [3, 6, 6], "weights": {"seed": 4}, "layers": [
    {"name": "c", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1}, {"type": "relu"},
    {"type": "maxpool", "kernel": 2, "stride": 2},
    {"name": "f", "type": "fc", "out_features": 5}]}
TINY_CFG = {"pm": 8, "pn": 8, "ovsf_len": 8, "in_buf_elems": 8192, "wgt_buf_elems": 8192, "out_buf_elems": 4096}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    (d / "net.json").write_text(json.dumps(TINY))
    (d / "cfg.json").write_text(json.dumps(TINY_CFG))
    np.save(d / "x.npy", np.random.default_rng(3).normal(size=(2, 3, 6, 6)).astype(np.float32))
    return d


def test_run_checks_the_rtl_against_golden(tmp_path, tiny):
    out = tmp_path / "r"
    r = subprocess.run([sys.executable, "-m", "golden.cli", "run", str(tiny / "net.json"), "--input",
                        str(tiny / "x.npy"), "--config", str(tiny / "cfg.json"), "--out", str(out)],
                       env=ENV, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["bit_exact"] is True and rep["cycles_from"] == "RTL (verilator)"
    assert rep["rtl"]["images"] == 2 and rep["cycles"] == sum(e["cycles"] for e in rep["layers"])
    for e in rep["layers"]:
        for key in ("name", "kind", "out_shape", "fl", "rho", "bit_exact", "cycles", "mac_util", "mismatches"):
            assert key in e, key
        assert e["bit_exact"] and e["mismatches"] == 0 and e["cycles"] > 0 and 0 < e["mac_util"] <= 1
    assert np.load(out / "output.npy").shape == (2, 5)
    assert (out / "sim.log").stat().st_size > 0 and "BIT EXACT" in r.stdout


def test_run_reports_an_rtl_mismatch(tmp_path, tiny, monkeypatch):
    """The comparison can fail: one corrupted element of the RTL's output
    makes the run not bit exact, with exit status 1."""
    from golden import cli
    from tb import rtl_run
    real = rtl_run.run_program_rtl

    def corrupted(*a, **kw):
        res = real(*a, **kw)
        res.outputs[1][0].flat[3] += 1
        return res

    monkeypatch.setattr(rtl_run, "run_program_rtl", corrupted)
    out = tmp_path / "r"
    code = cli.main(["run", str(tiny / "net.json"), "--input", str(tiny / "x.npy"), "--config",
                     str(tiny / "cfg.json"), "--out", str(out)])
    assert code == 1
    rep = json.loads((out / "report.json").read_text())
    assert rep["bit_exact"] is False
    assert [e["rtl_mismatches"] for e in rep["layers"]] == [1, 0]


def test_rho_auto_picks_rho_per_layer(tmp_path, tiny):
    out = tmp_path / "g"
    r = uz("golden", tiny / "net.json", "--input", tiny / "x.npy", "--config", tiny / "cfg.json",
           "--rho", "auto", "--max-loss", "1.0", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "rho search: chose" in r.stdout
    rep = json.loads((out / "report.json").read_text())
    # with the whole accuracy to give, the search takes the fastest point: OVSF somewhere
    assert any(e["rho"] < 1 for e in rep["layers"])


@pytest.mark.parametrize("value", ["2", "fast"])
def test_bad_rho_is_one_clear_error(tmp_path, tiny, value):
    assert_user_error(uz("golden", tiny / "net.json", "--rho", value, "--out", tmp_path / "g"), "--rho", value)


# ------------------------------------------------- robustness (bad input)
# Each case: one bad file or option; the command must print one line naming
# the problem, exit with status 2, print no traceback, and leave no output
# folder behind.

@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    import onnx
    from onnx import numpy_helper

    from golden.onnx_import import network_to_onnx

    d = tmp_path_factory.mktemp("bad")
    (d / "tiny.json").write_text(json.dumps(TINY))
    good = network_to_onnx(load_network(TINY))
    data = good.SerializeToString()
    (d / "good.onnx").write_bytes(data)
    (d / "truncated.onnx").write_bytes(data[:len(data) // 2])
    (d / "empty.onnx").write_bytes(b"")
    (d / "noise.onnx").write_bytes(np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    for value, name in ((np.nan, "nan_weight"), (np.inf, "inf_bias")):
        m = onnx.ModelProto()
        m.CopyFrom(good)
        init = m.graph.initializer[0 if name == "nan_weight" else 1]
        a = numpy_helper.to_array(init).copy()
        a.flat[0] = value
        init.CopyFrom(numpy_helper.from_array(a, init.name))
        (d / f"{name}.onnx").write_bytes(m.SerializeToString())
    m = onnx.ModelProto()
    m.CopyFrom(good)
    m.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.INT64
    (d / "int_input.onnx").write_bytes(m.SerializeToString())
    np.save(d / "x_shape.npy", np.zeros((1, 3, 5, 6), np.float32))
    np.save(d / "x_5d.npy", np.zeros((1, 1, 3, 6, 6), np.float32))
    np.save(d / "x_bool.npy", np.zeros((1, 3, 6, 6), bool))
    np.save(d / "x_complex.npy", np.zeros((1, 3, 6, 6), np.complex64))
    np.save(d / "x_object.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    x = np.zeros((1, 3, 6, 6), np.float32)
    x[0, 1, 2, 3] = np.inf
    np.save(d / "x_inf.npy", x)
    np.save(d / "x_huge.npy", np.full((1, 3, 6, 6), 1e300))
    weights = {"c.weight": np.zeros((8, 3, 3, 3)), "c.bias": np.zeros(8), "f.weight": np.zeros((5, 72)),
               "f.bias": np.zeros(5)}
    for name, key, value in (("w_nan", "c.weight", np.full((8, 3, 3, 3), np.nan)),
                             ("w_inf", "f.bias", np.array([np.inf, 0, 0, 0, 0])),
                             ("w_text", "c.bias", np.array(["a"] * 8))):
        np.savez(d / f"{name}.npz", **dict(weights, **{key: value}))
        (d / f"net_{name}.json").write_text(json.dumps(dict(TINY, weights=f"{name}.npz")))
    for name, cfg in {"cfg_list": [8, 8], "cfg_null": None, "cfg_text": {"pm": "8"}, "cfg_float": {"pm": 8.5},
                      "cfg_bool": {"pn": True}, "cfg_negative": {"in_buf_elems": -5},
                      "cfg_zero": {"out_buf_elems": 0}, "cfg_pn3": {"pm": 3, "pn": 3},
                      "cfg_bits12": {"data_bits": 12}}.items():
        (d / f"{name}.json").write_text(json.dumps(cfg))
    (d / "cfg_truncated.json").write_text('{"pm": 8,')
    (d / "net_truncated.json").write_text(json.dumps(TINY)[:40])
    (d / "net_binary.json").write_bytes(b"\xff\xfe\x00\x81" * 10)
    (d / "folder.json").mkdir()
    return d


ROBUST = [
    # malformed or truncated ONNX
    (["compile", "truncated.onnx"], ["truncated.onnx", "truncated or corrupt"]),
    (["compile", "empty.onnx"], ["empty.onnx", "no graph nodes"]),
    (["compile", "noise.onnx"], ["noise.onnx", "not a readable ONNX model"]),
    (["compile", "int_input.onnx"], ["int_input.onnx", "int64"]),
    # NaN/Inf in weights: ONNX initializers and a JSON network's weights file
    (["compile", "nan_weight.onnx"], ["c.weight", "NaN or infinite"]),
    (["compile", "inf_bias.onnx"], ["c.bias", "NaN or infinite"]),
    (["compile", "net_w_nan.json"], ["c.weight", "NaN or infinite"]),
    (["compile", "net_w_inf.json"], ["f.bias", "NaN or infinite"]),
    (["compile", "net_w_text.json"], ["c.bias", "dtype"]),
    # network files
    (["compile", "net_truncated.json"], ["net_truncated.json", "not valid JSON"]),
    (["compile", "net_binary.json"], ["net_binary.json", "not a text"]),
    (["compile", "folder.json"], ["folder.json", "is a folder"]),
    # inputs: shape, dtype, NaN/Inf, range
    (["golden", "good.onnx", "--input", "x_shape.npy"], ["x_shape.npy", "(1, 3, 5, 6)", "(N, 3, 6, 6)"]),
    (["golden", "tiny.json", "--input", "x_5d.npy"], ["x_5d.npy", "(1, 1, 3, 6, 6)"]),
    (["golden", "tiny.json", "--input", "x_bool.npy"], ["x_bool.npy", "dtype bool"]),
    (["golden", "tiny.json", "--input", "x_complex.npy"], ["x_complex.npy", "dtype complex64"]),
    (["golden", "tiny.json", "--input", "x_object.npy"], ["x_object.npy", "not a readable .npy"]),
    (["golden", "good.onnx", "--input", "x_inf.npy"], ["x_inf.npy", "NaN or infinite"]),
    (["golden", "tiny.json", "--calib", "x_inf.npy"], ["x_inf.npy", "NaN or infinite"]),
    (["golden", "tiny.json", "--input", "x_huge.npy"], ["1e+300", "fractional length"]),
    # options out of range
    (["compile", "tiny.json", "--bits", "7"], ["--bits", "invalid choice: 7"]),
    (["compile", "tiny.json", "--bits", "x"], ["--bits", "invalid int value"]),
    (["compile", "tiny.json", "--rho", "nan"], ["--rho nan", "(0, 1]"]),
    (["compile", "tiny.json", "--rho", "-0.5"], ["--rho -0.5", "(0, 1]"]),
    (["compile", "tiny.json", "--bandwidth", "0"], ["--bandwidth 0", "positive"]),
    (["compile", "tiny.json", "--rho", "auto", "--bandwidth", "-1"], ["--bandwidth -1", "positive"]),
    (["compile", "tiny.json", "--bandwidth", "nan"], ["--bandwidth nan"]),
    (["compile", "tiny.json", "--latency", "0"], ["--latency 0", "at least 1"]),
    (["compile", "tiny.json", "--rho", "auto", "--latency", "-3"], ["--latency -3"]),
    (["compile", "tiny.json", "--rho", "auto", "--max-loss", "-1"], ["--max-loss -1", "[0, 1]"]),
    (["compile", "tiny.json", "--max-loss", "nan"], ["--max-loss nan"]),
    (["golden", "tiny.json", "--batch", "-2"], ["--batch -2", "at least 1"]),
    (["golden", "tiny.json", "--seed", "-1"], ["--seed -1", "negative"]),
    (["golden", "tiny.json", "--batch", "1000000000000"], ["not enough memory"]),
    (["compile", "tiny.json", "--frobnicate"], ["unrecognized arguments: --frobnicate"]),
    # --config values
    (["compile", "tiny.json", "--config", "cfg_list.json"], ["JSON object", "list"]),
    (["compile", "tiny.json", "--config", "cfg_null.json"], ["JSON object", "NoneType"]),
    (["compile", "tiny.json", "--config", "cfg_text.json"], ["pm must be an integer", "'8'"]),
    (["compile", "tiny.json", "--config", "cfg_float.json"], ["pm must be an integer", "8.5"]),
    (["compile", "tiny.json", "--config", "cfg_bool.json"], ["pn must be an integer", "True"]),
    (["compile", "tiny.json", "--config", "cfg_negative.json"], ["in_buf_elems must be positive", "-5"]),
    (["compile", "tiny.json", "--config", "cfg_zero.json"], ["out_buf_elems must be positive", "0"]),
    (["compile", "tiny.json", "--config", "cfg_pn3.json"], ["pn must be a power of two", "3"]),
    (["compile", "tiny.json", "--config", "cfg_bits12.json"], ["data_bits must be 8 or 16", "12"]),
    (["compile", "tiny.json", "--config", "cfg_truncated.json"], ["cfg_truncated.json", "cannot read"]),
]


def uz_here(*args):
    """``uz`` in this process (the console script's main, the same path as
    the subprocess runs above, without an interpreter start per case)."""
    import contextlib
    import io
    import types

    from golden import cli

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as e:  # argparse's usage errors
            code = e.code
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.mark.parametrize("argv,words", ROBUST, ids=[" ".join(a) for a, _ in ROBUST])
def test_bad_input_is_one_clear_error(tmp_path, bad, argv, words):
    out = tmp_path / "out"
    args = [str(bad / a) if (bad / a).exists() and not a.startswith("-") and a not in ("compile", "golden")
            else a for a in argv]
    r = uz_here(*args[:2], "--out", out, *args[2:])
    assert_user_error(r, *words)
    assert not out.exists(), "a failed command left an output folder"
    assert not [p for p in tmp_path.iterdir() if p.name != "out"], "a temporary folder was left behind"


GRAPH = os.path.join(ROOT, "golden", "networks", "graph_mini.json")


def test_graph_network_runs_in_the_golden_model(tmp_path):
    """A residual block, a fire-module concat with a gap, a depthwise conv,
    ReLU6, an average pool with count_include_pad 0, a global average pool:
    compiled, run from the image bit exact, close to the float network."""
    r = uz("golden", GRAPH, "--out", tmp_path / "g")
    assert r.returncode == 0, r.stderr
    assert "BIT EXACT" in r.stdout
    rep = json.loads((tmp_path / "g" / "report.json").read_text())
    assert rep["bit_exact"] and rep["output_sqnr_db_vs_float_network"] > 60
    assert rep["cycles_from"] == "analytical model"
    mem = json.loads((tmp_path / "g" / "manifest.json").read_text())["memory"]
    assert mem["activation_bytes_peak"] < mem["activation_bytes_one_region"]


def test_run_graph_network_on_the_rtl(tmp_path, tiny):
    """The same network whole on the RTL: every layer bit exact, the concat's
    second part (a channel slice) and the depthwise layer included."""
    # the first run builds the engine in Verilator: minutes on a loaded machine
    r = uz("run", GRAPH, "--config", tiny / "cfg.json", "--out", tmp_path / "r", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rep["bit_exact"] is True and rep["cycles_from"] == "RTL (verilator)"
    layers = {e["name"]: e for e in rep["layers"]}
    assert layers["e3"]["mismatches"] == 0 and layers["dw"]["mismatches"] == 0


def test_uz_run_refuses_a_channel_shuffle_naming_the_layer(tmp_path):
    """A shuffle feeding a depthwise layer stays its in_shuffle, which the RTL
    does not run: refused before any simulation, naming the layer."""
    net = {"name": "shuffled", "input_shape": [8, 6, 6], "weights": {"seed": 1}, "layers": [
        {"name": "pw", "type": "conv", "out_channels": 8, "kernel": 1},
        {"name": "sh", "type": "shuffle", "groups": 2},
        {"name": "dw", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1, "groups": 8}]}
    (tmp_path / "net.json").write_text(json.dumps(net))
    r = uz("run", tmp_path / "net.json", "--out", tmp_path / "r")
    assert r.returncode == 2
    assert r.stderr.strip() == ("uz: error: layer 'dw' uses channel shuffle (in_shuffle=2), which the RTL does not "
                                "run yet: uz golden runs it (the functional model)")
    assert not (tmp_path / "r").exists()
