"""`make resnet` (scripts/resnet.py): ResNet-50's distinct layer shapes, the
report and the exit status (on SqueezeNet, with the RTL runs replaced by a
stub), the machinery that runs one layer alone on the RTL (golden/cut.py,
run_layer_rtl) on two small layers, one with a residual add, and the
benchmark's ResNet-50 rows."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from golden import compiler, cut, isa, layers
from golden.config import EngineConfig
from golden.network import load_network

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("resnet_script", ROOT / "scripts" / "resnet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_resnet50_distinct_shapes():
    """ResNet-50 compiled for make resnet's engine: 56 layers, 30 distinct
    shapes in network order, 7 of them with the fused residual add."""
    rs = _script()
    from golden import zoo
    from golden.onnx_import import load_onnx, realistic_weights
    net = load_onnx(realistic_weights(zoo.light_model("resnet50", 224), seed=0), name="resnet50")
    prog = compiler.compile_network(net, rs.engine_config(), np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)))
    groups = rs.distinct_layers(prog)
    assert len(prog.layers) == 56 and len(groups) == 30
    assert sorted(i for _, members in groups for i in members) == list(range(56))
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)
    res = [prog.layers[f] for f, _ in groups if prog.layers[f].res_tensor is not None]
    assert len(res) == 7                                              # 4 expands + 3 projections
    assert sum(q.stride == 2 for q in res) == 3
    # the default 3x3 window runs the 7x7 stem as 3x3 sub-windows of a 9x9 (zero taps)
    assert rs.label(prog.layers[0]) == "conv 9x9/2 relu"
    assert rs.label(res[0]) == "conv 1x1 + residual relu"
    assert rs.engine_config().axi_data_bits == 256 and rs.engine_config().in_buf_elems == 1 << 18


def test_report_and_exit_status(tmp_path, monkeypatch, capsys):
    """The script's machinery on SqueezeNet (quicker than ResNet-50), the RTL
    runs stubbed: a mismatch on a layer the RTL runs fails the script and the
    report names it; a layer the RTL does not run is listed with the reason
    and never run, and does not fail the script."""
    rs = _script()
    calls = []

    def fake_rtl(prog, i, xq, outs, vals, mem, **kw):
        calls.append(prog.layers[i].name)
        bad = len(calls) == 1
        return {"rtl": True, "passed": True, "bit_exact": not bad, "mismatches": 3 if bad else 0,
                "cycles": 1000, "model_cycles": 1010, "model_error": 0.01, "roofline_cycles": 900,
                "roofline_bound": "compute", "of_roofline": 0.9, "mac_util": 0.9, "sim_seconds": 0.0}

    real = isa.unsupported_features
    monkeypatch.setattr(rs, "run_layer_rtl", fake_rtl)
    monkeypatch.setattr(rs.isa, "unsupported_features",
                        lambda d: [("pool_global", "global pooling")] if d.pool_global else real(d))
    argv = ["--model", "squeezenet", "--out", str(tmp_path)]
    assert rs.main(argv + ["--max-layers", "2"]) == 1
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["golden_bit_exact"] and rep["output_sqnr_db"] > 40
    assert rep["rtl_layers"] == 2 and not rep["rtl_bit_exact"] and rep["not_on_rtl"] == 1
    assert sum(r["count"] for r in rep["layers"]) == rep["engine_layers"]
    [gap] = [r for r in rep["layers"] if r["unsupported"]]
    assert gap["name"] not in calls and gap["unsupported"] == ["global pooling"]
    md = (tmp_path / "report.md").read_text()
    assert f"| {calls[0]} |" in md and "NO (3)" in md and "not yet on the RTL (global pooling)" in md
    assert (tmp_path / "report.html").exists()
    assert "FAIL" in capsys.readouterr().out
    # every layer the RTL runs bit exact: success, the unsupported one still listed
    calls.clear()
    monkeypatch.setattr(rs, "run_layer_rtl", lambda *a, **k: dict(fake_rtl(*a, **k), bit_exact=True, mismatches=0))
    assert rs.main(argv) == 0
    rep = json.loads((tmp_path / "report.json").read_text())
    assert len(calls) == rep["distinct"] - 1 and rep["rtl_bit_exact"] and rep["not_on_rtl"] == 1


def _small_graph(residual: bool):
    c = 32
    layers_ = [{"name": "a", "type": "conv", "out_channels": c, "kernel": 1, "pad": 0}, {"name": "ar", "type": "relu"},
               {"name": "b", "type": "conv", "out_channels": c, "kernel": 3, "pad": 1}]
    if residual:
        layers_ += [{"name": "s", "type": "add", "inputs": ["b", "ar"]}]
    layers_ += [{"name": "sr", "type": "relu"}]
    net = load_network({"name": "small", "input_shape": [16, 8, 8], "weights": {"seed": 2}, "layers": layers_})
    rng = np.random.default_rng(5)
    prog = compiler.compile_network(net, EngineConfig(), rng.normal(0, 1, (2, 16, 8, 8)))
    xq = compiler.load_input(prog, rng.normal(0, 1, (16, 8, 8)))
    return prog, xq


@pytest.mark.parametrize("residual", [pytest.param(False, marks=pytest.mark.slow), pytest.param(True, marks=pytest.mark.slow)], ids=["plain", "residual"])
def test_a_layer_alone_on_the_rtl_is_bit_exact_and_mismatches_are_caught(residual, tmp_path):
    rs = _script()
    from golden import perf
    prog, xq = _small_graph(residual)
    outs, vals = compiler.run_graph(prog, xq)
    i = len(prog.layers) - 1
    q = prog.layers[i]
    assert (q.res_tensor is not None) == residual
    x_in, res = cut.layer_operands(prog, xq, outs, vals, i)
    lp = cut.layer_alone(prog, i, x_in, res)
    assert layers.compare(outs[i], cut.run_alone(lp))[1] == 0          # the functional model agrees
    d = rs.descriptor(lp, 0)
    assert d.res == int(residual)
    if isa.unsupported_features(d):
        pytest.skip(f"the RTL does not run {isa.unsupported_features(d)} yet")
    mem = perf.Memory(16, 20)
    r = rs.run_layer_rtl(prog, i, xq, outs, vals, mem, work_dir=tmp_path / "ok")
    assert r["bit_exact"] and r["mismatches"] == 0, r
    assert abs(r["model_error"]) < 0.05, r
    assert r["roofline_cycles"] <= r["cycles"]
    # a wrong expectation is reported, not passed
    bad = [o.copy() for o in outs]
    bad[i][0, 0, 0] += 1
    r2 = rs.run_layer_rtl(prog, i, xq, bad, vals, mem, work_dir=tmp_path / "bad")
    assert not r2["bit_exact"] and r2["mismatches"] == 1


def test_bench_resnet_rows_cut_the_residual_layer():
    """`make bench`'s ResNet-50 rows: the expand and projection layers are
    cut from a small graph with their fused residual add; the functional
    model of the cut layer agrees with the graph's; the roofline bound
    counts the residual's bytes."""
    import sys
    from golden import perf
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench
    names = [e[0] for e in bench.RESNET]
    assert names == ["rn50_reduce_1x1", "rn50_3x3", "rn50_expand_1x1_res", "rn50_proj_1x1s2_res",
                     "rn50_expand_1x1_res_56to14"]
    runs = [r for r in bench.runs_of(bench.RESNET, 8.0) if r[0] == "rn50_expand_1x1_res_56to14"]
    assert [r[2] for r in runs] == [1.0, 0.5] and all(r[5] == 32.0 and r[4].axi_data_bits == 256 for r in runs)
    name, spec, rho, insel, cfg, bw = runs[0]
    lp, ref = bench.compile_layer(spec, rho, insel, cfg)
    d = isa.Descriptor.decode(lp.image.read(lp.desc_addr, isa.DESC_BYTES))
    assert d.res == 1 and lp.layers[0].name == name and tuple(lp.layers[0].out_shape) == (256, 14, 14)
    assert layers.compare(ref, cut.run_alone(lp))[1] == 0
    cb = perf.compulsory_bytes(d, cfg)
    assert cb["residual"] == 256 * 14 * 14 * cfg.elem_bytes


def test_an_fc_alone_reads_its_padded_vector():
    """An FC on a tensor whose channels are not a multiple of PN reads the
    flattened, padded vector (ShuffleNet's 552 channels as 560): cut out
    alone it computes what it computes in the network."""
    net = load_network({"name": "fc_pad", "input_shape": [3, 4, 4], "weights": {"seed": 3}, "layers": [
        {"name": "c", "type": "conv", "out_channels": 12, "kernel": 1}, {"name": "g", "type": "gap"},
        {"name": "f", "type": "flatten"}, {"name": "fc", "type": "fc", "out_features": 5}]})
    cfg = EngineConfig(pm=8, pn=8, ovsf_len=8, in_buf_elems=8192, wgt_buf_elems=8192, out_buf_elems=4096)
    x = np.random.default_rng(0).normal(size=(1, 3, 4, 4))
    prog = compiler.compile_network(net, cfg, x)
    xq = compiler.load_input(prog, x[0])
    outs, vals = compiler.run_graph(prog, xq)
    i = len(prog.layers) - 1
    assert prog.layers[i].kind == isa.Kind.FC and prog.layers[i].in_shape[0] == 16
    x_in, _ = cut.layer_operands(prog, xq, outs, vals, i)
    assert x_in.shape[0] == 12
    assert layers.compare(outs[i], cut.run_alone(cut.layer_alone(prog, i, x_in)))[1] == 0
