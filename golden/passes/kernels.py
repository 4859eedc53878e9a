"""The kernels pass: dense convolutions larger than the engine's window
(cfg.max_k) become decomposed kernels (isa.DECOMPOSED), which run as 3x3
sub-windows whatever max_k.

    lower_kernels(graph, cfg) -> [layer names lowered]

A dense or depthwise CONV with K in {5, 7, 11} and K > max_k takes
k' = 3 * ceil(K / 3) (6, 9, 12): its weights are zero-padded at the high
taps (ky >= K or kx >= K) and pad_b, pad_r grow by k' - K, so the output
plane and every value are those of the K x K layer. It runs before
quantise, so the formats, OVSF blocks, tiles and descriptors all see the
k' x k' layer (GLayer.k_net keeps K: formats and float references are
computed on the K x K taps, bit for bit as without the lowering).

A grouped layer the fuse pass lowered (golden.passes.groups) is lowered
here as the dense layers it became: its block-diagonal layer, or each of its
channel-slice bands together with the grouped layer they are cut from
(golden.passes.quantise quantises that one and cuts its integer weights, so
both take the k' x k' taps). Refused here with an error naming the layer and
max_k (the descriptor check would refuse it later, without the layer's
name): any layer when max_k < 3. With max_k >= every kernel nothing changes.
"""
from __future__ import annotations

import numpy as np

from .. import isa
from ..config import EngineConfig
from ..errors import NetworkError
from .fuse import GLayer, Graph


def decomposed_k(k: int) -> int:
    """The decomposed kernel a K x K layer runs as: 3 * ceil(K / 3) when that
    is one of isa.DECOMPOSED, else 0."""
    kp = isa.SUB_K * -(-k // isa.SUB_K)
    return kp if kp in isa.DECOMPOSED and kp != k else 0


def lowerable(L: GLayer, graph: Graph, cfg: EngineConfig) -> bool:
    """A dense (a band too) or depthwise CONV above max_k with a decomposed
    kernel to take."""
    return (L.kind == isa.Kind.CONV and (L.groups <= 1 or _depthwise(L)) and not L.k_net
            and L.k > cfg.max_k and cfg.max_k >= isa.SUB_K and decomposed_k(L.k) > 0)


def _pad_kernel(L: GLayer, kp: int) -> None:
    """L's K x K taps at the top left of a kp x kp kernel, the rest zero,
    with the bottom and right padding grown to keep the output plane."""
    k = L.k
    w = np.zeros(L.weight.shape[:2] + (kp, kp), dtype=L.weight.dtype)
    w[:, :, :k, :k] = L.weight
    pt, pb, pl, pr = L.pads
    L.weight, L.pads, L.k_net = w, (pt, pb + kp - k, pl, pr + kp - k), k


def _depthwise(L: GLayer) -> bool:
    """A depthwise CONV (isa.depthwise): one input channel per output channel."""
    return L.groups > 1 and L.groups == L.in_shape[0] == L.weight.shape[0]


def _why_not(L: GLayer, graph: Graph, cfg: EngineConfig) -> str:
    if cfg.max_k < isa.SUB_K:
        return f"decomposed kernels need a window of at least {isa.SUB_K} (max_k >= {isa.SUB_K})"
    if L.groups > 1:
        return "a grouped layer cannot run as decomposed 3x3 sub-windows (dense and depthwise layers only)"
    return f"no decomposed kernel {isa.DECOMPOSED} covers it"


def lower_kernels(graph: Graph, cfg: EngineConfig) -> list:
    """Lower, in place, every dense CONV of ``graph`` whose kernel exceeds
    cfg.max_k to its decomposed kernel; return the names lowered."""
    done = []
    for L in graph.layers:
        if not lowerable(L, graph, cfg):
            if L.kind != isa.Kind.POOL and L.k > cfg.max_k and not L.k_net:
                raise NetworkError(f"layer {L.name!r}: {L.k}x{L.k} kernel larger than the engine's window "
                                   f"(max_k={cfg.max_k}), and {_why_not(L, graph, cfg)}")
            continue
        k = L.k
        kp = decomposed_k(k)
        _pad_kernel(L, kp)
        if L.band_of is not None and not L.band_of.k_net:
            _pad_kernel(L.band_of, kp)          # the grouped layer the band's weights are cut from
        graph.notes.append(f"{L.name}: {k}x{k} kernel above the engine's window (max_k={cfg.max_k}) runs as "
                           f"a {kp}x{kp} decomposed kernel ({isa.sub_windows(kp)}x{isa.sub_windows(kp)} "
                           f"sub-windows of {isa.SUB_K}x{isa.SUB_K}; zero taps at the bottom/right)")
        done.append(L.name)
    return done
