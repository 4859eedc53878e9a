"""Hardware-aware search: the OVSF ratio rho of every layer (and the engine's
PE array and buffers) for a network, a memory bandwidth and a multiplier
budget, trading measured accuracy against modelled cycles (unZipFPGA's
per-layer rho).

For one engine configuration the search is greedy: it starts from raw
weights everywhere (rho = 1) and repeatedly halves the rho of the layer that
buys the most cycles (golden.perf) per unit of accuracy lost (measured: the
quantized network on evaluation images through the golden model), until no
move saves cycles. Every step is a point (cycles, accuracy); over all
configurations, the points no other point beats in both are the Pareto
front. ``choose`` takes the fastest point within an accuracy budget.

Accuracy is top-1 against labels when given, else top-1 agreement with the
float network (classification outputs), scored on the dequantized output of
the bit-exact golden model.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import arith, compiler, perf
from .config import EngineConfig
from .errors import NetworkError, UzError
from .network import Network, forward_float


@dataclass
class Point:
    cfg: EngineConfig
    rhos: dict                 # layer name -> rho
    cycles: int
    accuracy: float
    layer_cycles: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"pm": self.cfg.pm, "pn": self.cfg.pn, "ovsf_len": self.cfg.ovsf_len,
                "in_buf_elems": self.cfg.in_buf_elems, "wgt_buf_elems": self.cfg.wgt_buf_elems,
                "out_buf_elems": self.cfg.out_buf_elems, "rhos": self.rhos, "cycles": self.cycles,
                "accuracy": self.accuracy, "layer_cycles": self.layer_cycles}


def weight_layers(net: Network) -> list:
    """Names of the ops whose weights may be generated (conv and fc)."""
    return [op.name for op in net.ops if op.type in ("conv", "fc")]


def with_rhos(net: Network, rhos: dict) -> Network:
    out = copy.copy(net)
    out.ops = []
    for op in net.ops:
        if op.name in rhos:
            op = copy.copy(op)
            op.attrs = dict(op.attrs, rho=rhos[op.name])
        out.ops.append(op)
    return out


def rho_choices(cfg: EngineConfig) -> list:
    """1, 1/2, ... down to one code per block."""
    out, r = [], 1.0
    while r * cfg.ovsf_len >= 1:
        out.append(r)
        r /= 2
    return out


class Evaluator:
    """Accuracy and modelled cycles of one rho assignment on one engine."""

    def __init__(self, net: Network, images: np.ndarray, labels: Optional[np.ndarray], calib: np.ndarray,
                 mem: perf.Memory):
        self.net = net
        self.images = np.asarray(images, dtype=np.float64)
        self.calib = np.asarray(calib, dtype=np.float64)
        self.mem = mem
        if labels is None:
            ref = np.stack([forward_float(net, x).ravel() for x in self.images])
            labels = ref.argmax(axis=1)
        self.labels = np.asarray(labels).ravel()
        if len(self.labels) != len(self.images):
            raise UzError(f"{len(self.labels)} labels for {len(self.images)} evaluation images")
        self.cache = {}

    def __call__(self, cfg: EngineConfig, rhos: dict) -> Point:
        key = (cfg, tuple(sorted(rhos.items())))
        if key in self.cache:
            return self.cache[key]
        prog = compiler.compile_network(with_rhos(self.net, rhos), cfg, self.calib)
        lcs = perf.program_cycles(prog, self.mem)
        correct = 0
        for x, y in zip(self.images, self.labels):
            outs = compiler.run_network(prog, compiler.load_input(prog, x))
            score = arith.dequantize(outs[-1], prog.layers[-1].fl_out).ravel()
            correct += int(score.argmax() == y)
        p = Point(cfg, dict(rhos), int(sum(lc.cycles for lc in lcs)), correct / len(self.images),
                  {q.name: lc.cycles for q, lc in zip(prog.layers, lcs)})
        self.cache[key] = p
        return p


def greedy_rhos(evaluate: Callable, cfg: EngineConfig, names: list, progress=None) -> list:
    """The greedy trajectory for one engine: a list of Points, rho = 1 first."""
    rhos = {n: 1.0 for n in names}
    cur = evaluate(cfg, rhos)
    path = [cur]
    choices = rho_choices(cfg)
    while True:
        best, best_score = None, None
        for n in names:
            i = choices.index(rhos[n])
            if i + 1 >= len(choices):
                continue
            trial = dict(rhos, **{n: choices[i + 1]})
            try:
                p = evaluate(cfg, trial)
            except NetworkError:
                continue            # e.g. a coefficient format the layer cannot take
            saved = cur.cycles - p.cycles
            if saved <= 0:
                continue
            lost = max(cur.accuracy - p.accuracy, 0.0)
            score = saved / (lost + 1e-3)          # cycles bought per accuracy point lost
            if best_score is None or score > best_score:
                best, best_score = p, score
        if best is None:
            return path
        rhos, cur = dict(best.rhos), best
        path.append(cur)
        if progress:
            progress(f"  pm=pn={cfg.pm}: {cur.cycles} cycles, accuracy {cur.accuracy:.3f}, rho {cur.rhos}")


def engine_candidates(multipliers: int, base: EngineConfig = EngineConfig()) -> list:
    """Engines within a multiplier budget: PE arrays PM = PN (this RTL's
    rule) with PM*PN <= multipliers, and buffer sizes from a quarter of the
    default up."""
    out = []
    for p in (4, 8, 16, 32, 64):
        if p * p > multipliers:
            continue
        for scale in (0.25, 1.0):
            length = min(16, p)
            try:
                out.append(EngineConfig(**dict(base.to_dict(), pm=p, pn=p, ovsf_len=length,
                                               in_buf_elems=int(base.in_buf_elems * scale),
                                               wgt_buf_elems=int(base.wgt_buf_elems * scale),
                                               out_buf_elems=int(base.out_buf_elems * scale))))
            except (UzError, ValueError):
                continue
    if not out:
        raise UzError(f"no engine fits a budget of {multipliers} multipliers (the smallest PE array is 4x4)")
    return out


def pareto(points: list) -> list:
    """Points no other point beats in both cycles (fewer) and accuracy (higher)."""
    front = []
    for p in sorted(points, key=lambda p: (p.cycles, -p.accuracy)):
        if not front or p.accuracy > front[-1].accuracy:
            front.append(p)
    return front


def choose(points: list, max_loss: float) -> Point:
    """The fastest point whose accuracy is within ``max_loss`` of the best."""
    best = max(p.accuracy for p in points)
    ok = [p for p in points if p.accuracy >= best - max_loss]
    return min(ok, key=lambda p: (p.cycles, -p.accuracy))


def search(net: Network, images, labels=None, calib=None, engines=None, mem: perf.Memory = perf.Memory(),
           progress=None) -> list:
    """Every point of the greedy trajectory of every engine."""
    calib = images[:16] if calib is None else calib
    ev = Evaluator(net, images, labels, calib, mem)
    names = weight_layers(net)
    points = []
    for cfg in engines or [EngineConfig()]:
        if progress:
            progress(f"engine pm=pn={cfg.pm}, buffers {cfg.in_buf_elems}/{cfg.wgt_buf_elems}/{cfg.out_buf_elems}")
        try:
            points += greedy_rhos(ev, cfg, names, progress)
        except NetworkError as e:
            if progress:
                progress(f"  skipped: {e}")
    if not points:
        raise UzError("no engine configuration can run this network")
    return points


def plot_pareto(points: list, path: str, title: str = "") -> None:
    """Accuracy against modelled cycles, every point and the front (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups = {}
    for p in points:
        groups.setdefault((p.cfg.pm, p.cfg.in_buf_elems), []).append(p)
    for (pm, buf), ps in sorted(groups.items()):
        ax.scatter([p.cycles for p in ps], [100 * p.accuracy for p in ps], s=14,
                   label=f"PM=PN={pm}, in buffer {buf}")
    front = pareto(points)
    ax.plot([p.cycles for p in front], [100 * p.accuracy for p in front], "k--", lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("modelled cycles per image")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "rho per layer and engine: accuracy vs cycles")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
