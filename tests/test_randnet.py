"""The constrained-random graph networks (golden.randnet.random_graph_network):
every draw is a program the engine accepts, the functional model run from
the memory image equals the layer-by-layer integer model, the draws use the
features they are for, and the generator's own check refuses what the
engine does not run."""
import numpy as np
import pytest

from golden import compiler, isa, randnet
from golden.network import load_network
from tb.regressions import CONFIGS

SMALL = CONFIGS["small"]

SEEDS = range(50)


def compiled(seed, cfg=SMALL):
    spec = randnet.random_graph_network(seed, cfg)
    net = load_network(spec)
    calib = np.random.default_rng(seed).normal(0, 1, (2,) + tuple(net.input_shape))
    prog = compiler.compile_network(net, cfg, calib)
    return spec, prog, calib


def descriptors(prog):
    return [isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
            for i in range(len(prog.layers))]


@pytest.mark.parametrize("seed", SEEDS)
def test_graph_network_runs_on_the_engine(seed):
    spec, prog, calib = compiled(seed)
    assert randnet.random_graph_network(seed, SMALL) == spec            # a seed replays its network
    assert all(isa.validate(d, SMALL) == isa.Err.NONE for d in descriptors(prog))
    xq = compiler.load_input(prog, calib[0])
    golden = compiler.run_network(prog, xq)
    image = compiler.run_image_observed(prog, engine=True)
    assert len(golden) == len(image)
    for i, (g, m) in enumerate(zip(golden, image)):
        assert np.array_equal(np.asarray(g)[:prog.layers[i].out_shape[0]], m), prog.layers[i].name


def test_first_draw_is_legal():
    """The generator makes only what runs: no seed needs a second draw."""
    for seed in SEEDS:
        randnet.random_graph_network(seed, SMALL, tries=1)


def test_draws_use_the_graph_features():
    """Over the seeds: slices in and out at channel 0 and beyond, gaps,
    clips, nested concats, pools fused and standalone, FC and OVSF."""
    seen = set()
    for seed in range(20):
        spec, prog, _ = compiled(seed)
        seen |= {"nested" for ly in spec["layers"] if ly["name"].endswith("_cat_in")}
        for d in descriptors(prog):
            kind = isa.Kind(d.kind)
            seen.add(("kind", kind.name))
            seen |= {"out_off"} if d.out_c_off else ({"out_off0"} if d.out_c_total > d.out_c else set())
            seen |= {"in_off"} if d.in_c_off else ({"in_off0"} if d.in_c_total > d.in_c else set())
            seen |= {"gap"} if d.out_c % SMALL.pn and d.out_c_off + d.out_c < d.out_c_total else set()
            seen |= {"clip"} if d.clip else set()
            seen |= {"fused_pool"} if d.pool else set()
            seen |= {"ovsf"} if d.ovsf else set()
    assert seen >= {"nested", "out_off", "out_off0", "in_off", "in_off0", "gap", "clip", "fused_pool", "ovsf",
                    ("kind", "CONV"), ("kind", "FC"), ("kind", "POOL")}


def test_other_configurations_and_generators():
    rng = np.random.default_rng(5)
    for _ in range(3):
        spec = randnet.random_graph_network(rng, CONFIGS["bits8"])
        assert randnet.graph_network_problem(spec, CONFIGS["bits8"]) is None


# ------------------------------------------------ the check can fail

def test_problem_names_an_unsupported_layer():
    """A residual add compiles but the engine refuses it: the check says so."""
    spec = {"input_shape": [8, 6, 6], "weights": {"seed": 1}, "layers": [
        {"name": "a", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
        {"name": "b", "type": "conv", "out_channels": 8, "kernel": 1},
        {"name": "s", "type": "add", "inputs": ["b", "a"]},
        {"name": "c", "type": "conv", "out_channels": 8, "kernel": 1}]}
    problem = randnet.graph_network_problem(spec, SMALL)
    assert problem and "UNSUPPORTED" in problem and "residual" in problem
    # an average pool
    spec2 = {"input_shape": [8, 6, 6], "layers": [
        {"name": "a", "type": "conv", "out_channels": 8, "kernel": 1},
        {"name": "p", "type": "avgpool", "kernel": 2, "stride": 2}]}
    assert "average pooling" in randnet.graph_network_problem(spec2, SMALL)
    assert "does not compile" in randnet.graph_network_problem({"input_shape": [1, 1], "layers": []}, SMALL)


def test_generator_raises_rather_than_emit_an_unsupported_program(monkeypatch):
    bad = {"input_shape": [8, 6, 6], "weights": {"seed": 2}, "layers": [
        {"name": "a", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
        {"name": "g", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1, "groups": 2},
        {"name": "c", "type": "conv", "out_channels": 8, "kernel": 1}]}
    calls = []
    monkeypatch.setattr(randnet, "_draw_graph", lambda *a: calls.append(1) or bad)
    with pytest.raises(ValueError, match="no network the engine accepts in 3 draws.*UNSUPPORTED"):
        randnet.random_graph_network(1, SMALL, tries=3)
    assert len(calls) == 3
