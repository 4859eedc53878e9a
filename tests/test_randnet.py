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


# ------------------------------------ residual, add, average and global pools

def _golden_only(seed, cfg=SMALL):
    """A draw with every graph feature, checked against the functional model
    (what the RTL will run once it runs them all)."""
    spec = randnet.random_graph_network(seed, cfg, features=randnet.GRAPH_FEATURES, engine=False, tries=1)
    net = load_network(spec)
    calib = np.random.default_rng(seed).normal(0, 1, (2,) + tuple(net.input_shape))
    return spec, compiler.compile_network(net, cfg, calib), calib


@pytest.mark.parametrize("seed", range(0, 50, 2))
def test_graph_network_with_every_feature_runs_in_the_functional_model(seed):
    """Every feature drawn, the first draw legal for the functional model,
    the image run equal to the layer-by-layer model."""
    spec, prog, calib = _golden_only(seed)
    assert all(isa.validate(d, SMALL, engine=False) == isa.Err.NONE for d in descriptors(prog))
    xq = compiler.load_input(prog, calib[0])
    golden = compiler.run_network(prog, xq)
    image = compiler.run_image_observed(prog)
    for i, (g, m) in enumerate(zip(golden, image)):
        assert np.array_equal(np.asarray(g)[:prog.layers[i].out_shape[0]], m), prog.layers[i].name


def test_draws_use_the_new_graph_features():
    """Over the seeds: residuals from an identity and a projection shortcut
    (stride 2), with and without ReLU after, residual shifts left and zero,
    a standalone add, average pools with and without the padding counted,
    unequal pool pads and global pools (of non-square planes too)."""
    seen = set()
    for seed in range(30):
        spec, prog, _ = _golden_only(seed)
        names = {ly["name"]: ly for ly in spec["layers"]}
        for ly in spec["layers"]:
            if ly["type"] == "add" and ly["name"].startswith("b"):
                m = ly["name"][:-4]
                seen.add("projection" if f"{m}_sc" in names else "identity")
                if f"{m}_sc" in names and names[f"{m}_sc"]["stride"] == 2:
                    seen.add("projection_s2")
                seen.add("relu_after" if f"{m}_relu" in names else "no_relu_after")
            if ly["type"] == "add" and ly["name"].startswith("s"):
                seen.add("standalone")
        for d in descriptors(prog):
            if d.res:
                seen.add(("res_shift", int(np.sign(d.res_shift))))
                seen.add(("res", isa.Kind(d.kind).name, d.k))
            if d.pool_avg:
                seen.add("avg_incl_pad" if d.pool_incl_pad else "avg_excl_pad")
            if d.pool_global:
                seen.add("global_nonsquare" if d.in_h != d.in_w else "global")
            if d.pool_asym:
                seen.add("asym")
    assert seen >= {"identity", "projection", "projection_s2", "relu_after", "no_relu_after", "standalone",
                    ("res_shift", -1), ("res_shift", 0), ("res", "CONV", 1), ("res", "CONV", 3),
                    "avg_incl_pad", "avg_excl_pad", "global", "global_nonsquare", "asym"}, seen


def test_draws_use_grouped_convolution():
    """Over the seeds (with the features the engine runs): depthwise layers
    of K 1/3/5/7, strides 1, 2 and 3 or 4, unequal pads, OVSF, a residual
    fused into a depthwise layer, channels that are not multiples of PM, in
    an inverted residual; grouped convolutions lowered to channel-slice
    bands and to block-diagonal dense layers."""
    seen = set()
    for seed in range(40):
        spec, prog, _ = compiled(seed)
        seen |= {"inverted" for ly in spec["layers"] if ly["name"].endswith("_exp")}
        seen |= {("lowered", v["how"]) for v in prog.graph.lowered.values()}
        for d in descriptors(prog):
            if isa.depthwise(d):
                seen |= {("k", d.k), ("stride", min(d.stride, 3))}
                seen |= {"ovsf"} if d.ovsf else set()
                seen |= {"res"} if d.res and d.k > 1 else set()     # K 1 with res: the compiler's identity add
                seen |= {"unequal_pads"} if len({d.pad_t, d.pad_b, d.pad_l, d.pad_r}) > 1 else set()
                seen |= {"partial_pm"} if d.out_c % SMALL.pm else set()
    assert seen >= {("k", 1), ("k", 3), ("k", 5), ("k", 7), ("stride", 1), ("stride", 2), ("stride", 3), "ovsf",
                    "res", "unequal_pads", "partial_pm", "inverted", ("lowered", "bands"), ("lowered", "dense")}, seen


def test_features_are_only_what_is_asked():
    """features=(): fire modules only; the default: what the RTL runs; the
    new features draw from their own stream, so a seed's fire modules do
    not change with them."""
    for seed in range(10):
        plain = randnet.random_graph_network(seed, SMALL, features=())
        assert not {ly["type"] for ly in plain["layers"]} & {"add", "avgpool", "gap"}
        default = randnet.random_graph_network(seed, SMALL)
        types = {ly["type"] for ly in default["layers"]}
        assert ("add" in types) <= ("residual" in randnet.engine_features())
        assert ("avgpool" in types) <= ("avgpool" in randnet.engine_features())
        assert ("gap" in types) <= ("gap" in randnet.engine_features())
        grouped = [ly for ly in default["layers"] if ly.get("groups", 1) > 1]
        assert not grouped or {"depthwise", "grouped"} & set(randnet.engine_features())
        full = randnet.random_graph_network(seed, SMALL, features=randnet.GRAPH_FEATURES, engine=False)
        mods = lambda sp: [ly for ly in sp["layers"] if ly["name"].startswith("m0_")]  # noqa: E731
        assert mods(full) == mods(plain) and full["input_shape"] == plain["input_shape"]
    with pytest.raises(ValueError, match="unknown features"):
        randnet.random_graph_network(1, SMALL, features=("resnet",))


def test_other_configurations_and_generators():
    rng = np.random.default_rng(5)
    for _ in range(3):
        spec = randnet.random_graph_network(rng, CONFIGS["bits8"])
        assert randnet.graph_network_problem(spec, CONFIGS["bits8"]) is None
        spec = randnet.random_graph_network(rng, CONFIGS["bits8"], features=randnet.GRAPH_FEATURES, engine=False)
        assert randnet.graph_network_problem(spec, CONFIGS["bits8"], engine=False) is None


# ------------------------------------------------ the check can fail

def test_problem_names_an_unsupported_layer():
    """A channel shuffle compiles but the engine refuses it: the check says so;
    the functional model's check (engine=False) takes it. (A grouped conv
    the engine does not run is lowered to dense layers by the compiler:
    golden/passes/groups.py.)"""
    spec = {"input_shape": [8, 6, 6], "weights": {"seed": 1}, "layers": [
        {"name": "a", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
        {"name": "sh", "type": "shuffle", "groups": 2},
        {"name": "c", "type": "conv", "out_channels": 8, "kernel": 1}]}
    problem = randnet.graph_network_problem(spec, SMALL)
    assert problem and "UNSUPPORTED" in problem and "channel shuffle" in problem
    assert randnet.graph_network_problem(spec, SMALL, engine=False) is None
    grouped = dict(spec, layers=[spec["layers"][0], {"name": "g", "type": "conv", "out_channels": 8, "kernel": 3,
                                                     "pad": 1, "groups": 2}])
    assert randnet.graph_network_problem(grouped, SMALL) is None
    assert "does not compile" in randnet.graph_network_problem({"input_shape": [1, 1], "layers": []}, SMALL)


#: One network per graph feature of the generator, using it.
FEATURE_NETS = {
    "residual": [{"name": "a", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
                 {"name": "b", "type": "conv", "out_channels": 8, "kernel": 1},
                 {"name": "s", "type": "add", "inputs": ["b", "a"]}],
    "add": [{"name": "a", "type": "conv", "out_channels": 8, "kernel": 1}, {"name": "ar", "type": "relu"},
            {"name": "b", "type": "conv", "out_channels": 8, "kernel": 1, "inputs": ["input"]},
            {"name": "br", "type": "relu"}, {"name": "s", "type": "add", "inputs": ["ar", "br"]}],
    "avgpool": [{"name": "a", "type": "conv", "out_channels": 8, "kernel": 1},
                {"name": "p", "type": "avgpool", "kernel": 3, "stride": 1, "pad": 1}],
    "gap": [{"name": "a", "type": "conv", "out_channels": 8, "kernel": 1}, {"name": "p", "type": "gap"}],
    "depthwise": [{"name": "a", "type": "conv", "out_channels": 12, "kernel": 1},
                  {"name": "d", "type": "conv", "out_channels": 12, "kernel": 3, "pad": 1, "groups": 12}],
    # the compiler lowers it to dense layers the engine runs
    "grouped": [{"name": "a", "type": "conv", "out_channels": 16, "kernel": 1},
                {"name": "g", "type": "conv", "out_channels": 16, "kernel": 1, "groups": 4}],
}


@pytest.mark.parametrize("feature", randnet.GRAPH_FEATURES)
def test_engine_features_is_what_the_engine_accepts(feature):
    """The generator's flag per feature agrees with the check of a compiled
    network using it: accepted when the flag is set, UNSUPPORTED when not."""
    spec = {"input_shape": [8, 6, 6], "weights": {"seed": 1}, "layers": FEATURE_NETS[feature]}
    problem = randnet.graph_network_problem(spec, SMALL)
    if feature in randnet.engine_features():
        assert problem is None
    else:
        assert problem and "UNSUPPORTED" in problem
    assert randnet.graph_network_problem(spec, SMALL, engine=False) is None


def test_generator_raises_rather_than_emit_an_unsupported_program(monkeypatch):
    # a channel shuffle (a grouped conv would be lowered to dense layers the engine runs)
    bad = {"input_shape": [8, 6, 6], "weights": {"seed": 2}, "layers": [
        {"name": "a", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
        {"name": "sh", "type": "shuffle", "groups": 2},
        {"name": "c", "type": "conv", "out_channels": 8, "kernel": 1}]}
    calls = []
    monkeypatch.setattr(randnet, "_draw_graph", lambda *a: calls.append(1) or bad)
    with pytest.raises(ValueError, match="no network the engine accepts in 3 draws.*UNSUPPORTED"):
        randnet.random_graph_network(1, SMALL, tries=3)
    assert len(calls) == 3
