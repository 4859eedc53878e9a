"""Lowering grouped convolutions the engine does not run (part of the fuse
pass, golden.passes.fuse).

The RTL runs a depthwise convolution (groups = in_c = out_c) and dense
layers; any other group count (ShuffleNet's grouped 1x1, ResNeXt, depthwise
with a channel multiplier) becomes dense layers computing the same sums:

* **Channel-slice bands.** The output channels are cut into bands of whole
  units of lcm(PM, PN) channels (a band's first output channel is then on a
  PN boundary, as ``out_c_off`` must be, and fills whole PE rows). A band is
  a dense CONV reading the PN-aligned hull of the input channels its outputs
  need (an ``in_c_off``/``in_c_total`` slice) and writing its channels as a
  slice of the one output tensor; its weights are the band's rows with zeros
  outside each output channel's group. Adjacent units share a band when that
  costs no MACs (band width x hull width), chosen by a shortest path over the
  units: the fewest MACs, then the fewest bands. Groups aligned to PN inputs
  and lcm(PM, PN) outputs give one band per run of groups at no MAC
  overhead.
* **Block-diagonal densification** (the fallback): one dense layer, the
  grouped weights on the diagonal, ``groups`` times the MACs.

The bands keep the grouped layer's formats (golden.passes.quantise
quantises the grouped layer and cuts its integer weights), so the program
computes bit for bit what the grouped layer computes.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import isa
from ..config import EngineConfig
from ..memimage import round_up


def _engine_runs_any_groups() -> bool:
    """Whether the RTL runs grouped convolution that is not depthwise (it
    does not; should it ever, nothing is lowered)."""
    d = {"kind": int(isa.Kind.CONV), "groups": 2, "in_c": 16, "out_c": 16}
    return not any(f == "groups" for f, _ in isa.unsupported_features(d))


#: Lower grouped convolutions the engine does not run (tests turn it off to
#: compile the grouped layers as they are, for the golden model).
LOWER = not _engine_runs_any_groups()


#: Lower depthwise convolutions too, as an engine without per-PE operand
#: selection must (the benchmark measures what the selection gains).
LOWER_DEPTHWISE = False


def needs_lowering(groups: int, in_c: int, out_c: int) -> bool:
    """A grouped convolution the engine does not run: all but depthwise."""
    return LOWER and groups > 1 and (LOWER_DEPTHWISE or not (groups == in_c == out_c))


class Band(NamedTuple):
    """Output channels [o0, o1) reading input channels [i0, i1)."""
    o0: int
    o1: int
    i0: int
    i1: int

    @property
    def macs(self) -> int:
        """MACs per output pixel and kernel tap."""
        return (self.o1 - self.o0) * (self.i1 - self.i0)


def hull(o0: int, o1: int, in_c: int, out_c: int, groups: int, pn: int) -> tuple:
    """The PN-aligned input channels output channels [o0, o1) need."""
    cin_g, cout_g = in_c // groups, out_c // groups
    g0, g1 = o0 // cout_g, (o1 - 1) // cout_g
    return (g0 * cin_g) // pn * pn, min(round_up((g1 + 1) * cin_g, pn), in_c)


def plan_bands(in_c: int, out_c: int, groups: int, cfg: EngineConfig) -> list:
    """The bands of a grouped layer: the fewest MACs, then the fewest bands."""
    unit = math.lcm(cfg.pm, cfg.pn)
    cuts = list(range(0, out_c, unit)) + [out_c]
    n = len(cuts) - 1
    best = [(0, 0, None)] + [None] * n           # (MACs, bands, previous cut) to reach cut j
    for j in range(1, n + 1):
        for i in range(j):
            b = Band(cuts[i], cuts[j], *hull(cuts[i], cuts[j], in_c, out_c, groups, cfg.pn))
            cand = (best[i][0] + b.macs, best[i][1] + 1, i)
            if best[j] is None or cand[:2] < best[j][:2]:
                best[j] = cand
    bands, j = [], n
    while j:
        i = best[j][2]
        bands.append(Band(cuts[i], cuts[j], *hull(cuts[i], cuts[j], in_c, out_c, groups, cfg.pn)))
        j = i
    return bands[::-1]


def grouped_macs(in_c: int, out_c: int, groups: int) -> int:
    """MACs per output pixel and kernel tap of the grouped layer."""
    return out_c * (in_c // groups)


def overhead(bands: list, in_c: int, out_c: int, groups: int) -> float:
    """Executed MACs over the grouped layer's."""
    return sum(b.macs for b in bands) / grouped_macs(in_c, out_c, groups)


def densify(w: np.ndarray, groups: int) -> np.ndarray:
    """Grouped weights (Cout, Cin/G, K, K) as dense block-diagonal (Cout, Cin, K, K)."""
    cout, cin_g = w.shape[:2]
    out = np.zeros((cout, cin_g * groups) + w.shape[2:], dtype=w.dtype)
    per = cout // groups
    for g in range(groups):
        out[g * per:(g + 1) * per, g * cin_g:(g + 1) * cin_g] = w[g * per:(g + 1) * per]
    return out


def band_weight(w: np.ndarray, groups: int, b: Band) -> np.ndarray:
    """The dense weights of a band (o1 - o0, i1 - i0, K, K) from grouped weights."""
    return densify(w, groups)[b.o0:b.o1, b.i0:b.i1]
