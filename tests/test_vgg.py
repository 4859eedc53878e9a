"""A real topology end to end (scripts/vgg.py): VGG19 from the onnx package,
weights filled, on a 32x32 image so it runs in seconds: the golden model
against onnxruntime, the memory-image run against the layer-by-layer model,
and one of its layers alone on the RTL, bit exact."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from golden import compiler, funcmodel, layers
from golden.config import EngineConfig
from golden.onnx_import import load_onnx

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("vgg", ROOT / "scripts" / "vgg.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_vgg19_golden_end_to_end(tmp_path, capsys):
    vgg = _script()
    assert vgg.main(["--size", "32", "--rtl", "none", "--out", str(tmp_path)]) == 0
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["input_shape"] == [3, 32, 32] and rep["image_bit_exact"]
    kinds = [r["kind"] for r in rep["layers"]]
    assert kinds == ["CONV"] * 16 + ["FC"] * 3
    assert rep["output_sqnr_db"] > 40 and rep["top1_agrees"], rep["output_sqnr_db"]
    assert all(r["sqnr_db"] > 40 for r in rep["layers"]), [r["sqnr_db"] for r in rep["layers"]]
    assert "| n0 | CONV | 3x32x32 | 64x32x32 |" in capsys.readouterr().out


@pytest.mark.slow
def test_vgg19_layer_alone_on_the_rtl(tmp_path):
    """A layer cut out of the compiled network (layer_program) runs on the
    RTL from the golden model's input of that layer, bit exact."""
    from tb import bench_sim
    vgg = _script()
    net = load_onnx(vgg.light_model("vgg19"), name="vgg19", drop_final_softmax=True)
    vgg.fill_weights(net, 1)
    net = vgg.resized(net, 32)
    rng = np.random.default_rng(3)
    prog = compiler.compile_network(net, EngineConfig(), rng.uniform(-1, 1, (1,) + net.input_shape))
    outs = compiler.run_network(prog, compiler.load_input(prog, rng.uniform(-1, 1, net.input_shape)))
    i = 13                                    # 512x2x2 -> 512x2x2, K3 pad 1
    q = prog.layers[i]
    lp = vgg.layer_program(prog, i, outs[i - 1])
    res = bench_sim.run_program(lp, bw=16, work_dir=tmp_path)
    assert res["passed"]
    r = lp.image.region(lp.regions[q.name]["out"])
    img = lp.image.__class__()
    img.write(r.addr, res["dump_bytes"][0])
    got = funcmodel.read_act(img, r.addr, q.out_shape, prog.cfg)[:q.out_shape[0]]
    assert layers.compare(outs[i], got)[1] == 0


def test_size_must_halve_five_times():
    with pytest.raises(SystemExit):
        _script().main(["--size", "48", "--rtl", "none"])
