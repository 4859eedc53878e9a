"""The hardware-aware rho search (golden/search.py)."""
import numpy as np
import pytest

from golden import perf, search
from golden.config import EngineConfig
from golden.errors import UzError
from golden.network import load_network

NET = {"name": "t", "input_shape": [1, 8, 8], "weights": {"seed": 3}, "layers": [
    {"name": "c1", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1}, {"type": "relu"},
    {"type": "maxpool", "kernel": 2, "stride": 2},
    {"name": "f1", "type": "fc", "out_features": 64}, {"type": "relu"},
    {"name": "f2", "type": "fc", "out_features": 10}]}


@pytest.fixture(scope="module")
def points():
    net = load_network(NET)
    x = np.random.default_rng(0).normal(0, 1, (8, 1, 8, 8))
    engines = [EngineConfig(pm=8, pn=8, ovsf_len=8)]
    return search.search(net, x, engines=engines, mem=perf.Memory(2, 20))


def test_trajectory_starts_from_raw_weights_and_gets_faster(points):
    assert all(r == 1.0 for r in points[0].rhos.values())
    assert points[0].accuracy == 1.0      # quantized 16-bit agrees with float on every image
    cycles = [p.cycles for p in points]
    assert cycles == sorted(cycles, reverse=True) and len(points) > 1


def test_pareto_front_is_not_dominated(points):
    front = search.pareto(points)
    for f in front:
        assert not any(p.cycles <= f.cycles and p.accuracy > f.accuracy for p in points)


def test_choose_keeps_the_accuracy_budget(points):
    strict = search.choose(points, 0.0)
    assert strict.accuracy == max(p.accuracy for p in points)
    loose = search.choose(points, 1.0)
    assert loose.cycles == min(p.cycles for p in points)


def test_rho_choices_stop_at_one_code():
    assert search.rho_choices(EngineConfig(pm=8, pn=8, ovsf_len=8)) == [1.0, 0.5, 0.25, 0.125]


def test_engines_respect_the_multiplier_budget():
    assert all(c.pm * c.pn <= 100 for c in search.engine_candidates(100))
    with pytest.raises(UzError, match="multipliers"):
        search.engine_candidates(8)


def test_with_rhos_leaves_the_network_alone():
    net = load_network(NET)
    other = search.with_rhos(net, {"f1": 0.25})
    assert [op.attrs.get("rho") for op in other.ops if op.name == "f1"] == [0.25]
    assert all("rho" not in op.attrs or op.attrs["rho"] == 1 for op in net.ops)


def test_plot_is_written(points, tmp_path):
    search.plot_pareto(points, str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").stat().st_size > 1000
