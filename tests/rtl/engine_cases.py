"""Networks the engine smoke tests run, and the engine configuration they are
built for (the RTL parameters come from the same EngineConfig)."""
from __future__ import annotations

import dataclasses

import numpy as np

from golden import compiler
from golden.config import EngineConfig
from golden.network import load_network
from tb import simenv

#: A small engine: fast to build and simulate under both simulators.
SMALL = EngineConfig(data_bits=16, acc_bits=48, pm=8, pn=8, ovsf_len=8, alpha_bits=16,
                     axi_data_bits=128, in_buf_elems=8192, wgt_buf_elems=8192, out_buf_elems=4096, max_k=11)


def rtl_parameters(cfg: EngineConfig) -> dict:
    return simenv.engine_parameters(cfg)


CASES = {
    # one conv layer, raw weights, channels not a multiple of the lanes
    "conv_raw": {"input_shape": [5, 9, 11], "weights": {"seed": 1}, "layers": [
        {"name": "conv", "type": "conv", "out_channels": 12, "kernel": 3, "stride": 1, "pad": 1},
        {"type": "relu"}]},
    # the same shape with weights generated from OVSF coefficients
    "conv_ovsf": {"input_shape": [5, 9, 11], "weights": {"seed": 2}, "layers": [
        {"name": "conv", "type": "conv", "out_channels": 12, "kernel": 3, "stride": 2, "pad": [1, 0, 2, 1],
         "rho": 0.5}]},
    # fully connected
    "fc": {"input_shape": [20, 1, 1], "weights": {"seed": 3}, "layers": [
        {"name": "fc", "type": "fc", "out_features": 10}]},
    # two layers with pooling (fused 2x2/2 and a 3x3/2 pool)
    "two_layer_pool": {"input_shape": [3, 12, 12], "weights": {"seed": 4}, "layers": [
        {"name": "conv1", "type": "conv", "out_channels": 8, "kernel": 5, "pad": 2},
        {"type": "relu"}, {"name": "pool1", "type": "maxpool", "kernel": 2, "stride": 2},
        {"name": "conv2", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
        {"type": "relu"}, {"name": "pool2", "type": "maxpool", "kernel": 3, "stride": 2}]},
    # OVSF with four channel groups, one read command per (group, row): the
    # input tag must not cut the load short after the first group
    "conv_ovsf_groups": {"input_shape": [26, 7, 8], "weights": {"seed": 8}, "layers": [
        {"name": "conv", "type": "conv", "out_channels": 15, "kernel": 3, "stride": 2, "pad": 0, "rho": 0.5},
        {"type": "relu"}]},
    # OVSF at every rho of L = 8 (n_codes 1..8; rho 1 through force_ovsf):
    # odd n_codes put blocks across beats, several oc-groups per tile, and
    # fc1 is split into ti-tiles (1200 inputs do not fit one weight half)
    "ovsf_rho": {"input_shape": [6, 6, 6], "weights": {"seed": 7}, "force_ovsf": True, "layers": [
        {"name": "conv", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1, "rho": 0.375},
        {"type": "relu"}, {"type": "maxpool", "kernel": 2, "stride": 2}, {"type": "flatten"},
        {"name": "fc0", "type": "fc", "out_features": 1200, "rho": 0.125},
        {"name": "fc1", "type": "fc", "out_features": 24, "rho": 0.125},
        {"name": "fc2", "type": "fc", "out_features": 20, "rho": 0.25},
        {"name": "fc4", "type": "fc", "out_features": 16, "rho": 0.5},
        {"name": "fc5", "type": "fc", "out_features": 12, "rho": 0.625},
        {"name": "fc6", "type": "fc", "out_features": 12, "rho": 0.75},
        {"name": "fc7", "type": "fc", "out_features": 9, "rho": 0.875},
        {"name": "fc8", "type": "fc", "out_features": 10, "rho": 1}]},
}

#: Networks using the graph features the RTL runs. Kept apart from CASES,
#: whose chains tests/data/chain_cases.py compiles against reference images.
GRAPH_CASES = {
    # Graph features (docs/architecture.md, "Graph networks"). A SqueezeNet
    # fire module: squeeze 1x1, the expands 1x1 and 3x3 written into channel
    # slices of one tensor (out_c_off), a consumer reading the concat and one
    # reading the second expand's slice alone (in_c_off).
    "fire": {"input_shape": [6, 7, 9], "weights": {"seed": 9}, "layers": [
        {"name": "sq", "type": "conv", "out_channels": 8, "kernel": 1},
        {"name": "sq_relu", "type": "relu"},
        {"name": "e1", "type": "conv", "out_channels": 8, "kernel": 1, "inputs": ["sq_relu"]},
        {"name": "e1_relu", "type": "relu"},
        {"name": "e3", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1, "inputs": ["sq_relu"]},
        {"name": "e3_relu", "type": "relu"},
        {"name": "cat", "type": "concat", "inputs": ["e1_relu", "e3_relu"]},
        {"name": "side", "type": "conv", "out_channels": 8, "kernel": 1, "inputs": ["e3_relu"]},
        {"name": "cons", "type": "conv", "out_channels": 12, "kernel": 3, "pad": 1, "inputs": ["cat"]},
        {"name": "cat2", "type": "concat", "inputs": ["side", "cons"]},
        {"name": "last", "type": "conv", "out_channels": 8, "kernel": 1}]},
    # A concat with a gap: 5 + 8 channels at PN = 8 put the second part at
    # channel 8, the first part's producer writing zeros into 5..7.
    "concat_gap": {"input_shape": [4, 6, 6], "weights": {"seed": 10}, "layers": [
        {"name": "a", "type": "conv", "out_channels": 5, "kernel": 3, "pad": 1, "inputs": ["input"]},
        {"name": "b", "type": "conv", "out_channels": 8, "kernel": 1, "inputs": ["input"]},
        {"name": "cat", "type": "concat", "inputs": ["a", "b"]},
        {"name": "cons", "type": "conv", "out_channels": 6, "kernel": 3, "pad": 1}]},
    # ReLU6 at saturation: an input scaled up so that the clip at 6 binds,
    # fused into a conv, and into a conv with a fused 3x3/3 max pool whose
    # tiles split the plane into row bands and column tiles (the write-back
    # steps each tile's pooled bounds from the last's, by tr/3 and tc/3).
    "relu6": {"input_shape": [5, 9, 12], "weights": {"seed": 11}, "input_scale": 8.0,
              "tiles": {"c2": {"tr": 3, "tc": 6}}, "layers": [
        {"name": "c1", "type": "conv", "out_channels": 12, "kernel": 3, "pad": 1},
        {"name": "r1", "type": "relu6"},
        {"name": "c2", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
        {"name": "r2", "type": "relu6"},
        {"name": "p2", "type": "maxpool", "kernel": 3, "stride": 3}]},
    # One-cell POOL layers (isa.identity_pool): the network input copied into
    # its concat slot (the input region is not a slice of anything), and a
    # ReLU6 on a concat, which no single producer can take.
    "copy_clip": {"input_shape": [8, 6, 6], "weights": {"seed": 12}, "input_scale": 8.0, "layers": [
        {"name": "a", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1, "inputs": ["input"]},
        {"name": "cat", "type": "concat", "inputs": ["input", "a"]},
        {"name": "r6", "type": "relu6"},
        {"name": "cons", "type": "conv", "out_channels": 8, "kernel": 1}]},
    # ResNet blocks: the residual add fused into the second conv of a basic
    # block (identity shortcut, on a plane the output tiles split by rows and
    # columns), a projection block (3x3 stride 2 and a stride-2 1x1 shortcut
    # the add reads), and an add neither operand's producer can take (its
    # operand is ReLU'd first), which the compiler runs as a 1x1 identity
    # conv with the residual. Tiles forced so that the residual is read per
    # (group, row) (b1c2: columns split, partial last tiles), per group over
    # whole rows (proj) and once for whole planes (add3, two to-tiles of 24
    # channels at PM 8 and 16 alike: the tiles must be legal in every
    # configuration the regressions build).
    "res_block": {"input_shape": [3, 12, 14], "weights": {"seed": 13},
                  "tiles": {"b1c2": {"tr": 5, "tc": 5}, "proj": {"tr": 4}, "add3": {"tr": 6, "tc": 7, "to": 16}}, "layers": [
        {"name": "stem", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
        {"name": "stem_relu", "type": "relu"},
        {"name": "b1c1", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
        {"name": "b1r1", "type": "relu"},
        {"name": "b1c2", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
        {"name": "b1add", "type": "add", "inputs": ["b1c2", "stem_relu"]},
        {"name": "b1r2", "type": "relu"},
        {"name": "b2c1", "type": "conv", "out_channels": 24, "kernel": 3, "stride": 2, "pad": 1},
        {"name": "b2r1", "type": "relu"},
        {"name": "b2c2", "type": "conv", "out_channels": 24, "kernel": 3, "pad": 1},
        {"name": "proj", "type": "conv", "out_channels": 24, "kernel": 1, "stride": 2, "inputs": ["b1r2"]},
        {"name": "b2add", "type": "add", "inputs": ["b2c2", "proj"]},
        {"name": "b2r2", "type": "relu"},
        {"name": "c3", "type": "conv", "out_channels": 24, "kernel": 1},
        {"name": "c3r", "type": "relu"},
        {"name": "add3", "type": "add", "inputs": ["c3r", "b2r2"]}]},
    # Pools beyond the 2x2/3x3 max: averages with the border divisor shrinking
    # (count_include_pad 0: n = 6 at the edges, where an average of signed
    # values can fall exactly on -k.5 and only the constant K_n of
    # arith.avg_divide rounds it right) and fixed (1), a clip and a ReLU after
    # averages of signed values, a max pool with unequal pads, a 5x5 max
    # window fused into a conv, a tiled 2x2 average, and a global average.
    "avg_pools": {"input_shape": [6, 15, 13], "weights": {"seed": 14}, "tiles": {"ap3": {"tr": 2}}, "layers": [
        {"name": "c1", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
        {"name": "ap1", "type": "avgpool", "kernel": 3, "stride": 2, "pad": 1, "count_include_pad": False},
        {"name": "c2", "type": "conv", "out_channels": 16, "kernel": 3, "pad": 1},
        {"name": "ap2", "type": "avgpool", "kernel": 3, "stride": 1, "pad": 1, "count_include_pad": True},
        {"name": "r2", "type": "clip", "min": 0.0, "max": 0.25},
        {"name": "mp", "type": "maxpool", "kernel": 3, "stride": 2, "pad": [1, 0, 0, 1]},
        {"name": "c3", "type": "conv", "out_channels": 16, "kernel": 1},
        {"name": "mp5", "type": "maxpool", "kernel": 5, "stride": 1, "pad": 2},
        {"name": "ap3", "type": "avgpool", "kernel": 2, "stride": 2},
        {"name": "r3", "type": "relu"},
        {"name": "gap", "type": "gap"},
        {"name": "flat", "type": "flatten"},
        {"name": "fc", "type": "fc", "out_features": 10}]},
    # Depthwise convolutions (MobileNet-v2 blocks): per-PE operand selection
    # with 3x3 (stride 1 and 2), 5x5 and 7x7 taps, channels not a multiple
    # of PM (pad PEs), OVSF-generated depthwise weights, a residual add fused
    # into a depthwise layer, a ReLU6 after each, and an add no producer can
    # take (the compiler's depthwise 1x1 identity layer). dw1's tiles split
    # rows and columns, with two to-tiles at PM 8.
    "dw_block": {"input_shape": [5, 11, 13], "weights": {"seed": 15}, "input_scale": 4.0,   # the ReLU6 clips bind
                 "tiles": {"dw1": {"tr": 4, "tc": 6, "to": 16, "ti": 16}}, "layers": [
        {"name": "exp", "type": "conv", "out_channels": 20, "kernel": 1},
        {"name": "exp_r", "type": "relu6"},
        {"name": "dw1", "type": "conv", "out_channels": 20, "kernel": 3, "pad": 1, "groups": 20},
        {"name": "dw1_r", "type": "relu6"},
        {"name": "proj", "type": "conv", "out_channels": 12, "kernel": 1},
        {"name": "dw2", "type": "conv", "out_channels": 12, "kernel": 3, "stride": 2, "pad": 1, "groups": 12,
         "rho": 0.5},
        {"name": "dw2_r", "type": "relu"},
        {"name": "dw5", "type": "conv", "out_channels": 12, "kernel": 5, "pad": 2, "groups": 12},
        {"name": "add5", "type": "add", "inputs": ["dw5", "dw2_r"]},
        {"name": "dw7", "type": "conv", "out_channels": 12, "kernel": 7, "pad": 3, "groups": 12},
        {"name": "dw7_r", "type": "relu"},
        {"name": "add7", "type": "add", "inputs": ["dw7_r", "add5"]},
        {"name": "head", "type": "conv", "out_channels": 10, "kernel": 1}]},
}
#: Networks for engines with more PEs than lanes (PM = 2 PN and up: an
#: accumulator word holds several channel groups of the layout). Legal on
#: every configuration; at PM = 8, PN = 4 each layer's channels stop inside
#: the last oc-group of PM, so the engine computes channels the output does
#: not hold and must not write: a standalone max pool of the 12-channel
#: input (its last oc-group reads one window, not two), a 4-channel conv
#: whose concat neighbour starts right after it (writing its whole oc-group
#: would overwrite the neighbour's first group), a residual add of 12
#: channels (the residual read group by group) and a 12-channel depthwise
#: layer with its residual. Then a 24-channel conv and depthwise layer, two
#: or three oc-groups in one tile (at PM = 12, r = 3: the weight banks and the
#: depthwise windows' oc-group wrap where PM is not a power of two).
PM_CASES = {
    "pm_groups": {"input_shape": [12, 8, 10], "weights": {"seed": 16},
                  "tiles": {"wide_dw": {"to": 24, "ti": 24}}, "layers": [
        {"name": "p0", "type": "maxpool", "kernel": 2, "stride": 2, "inputs": ["input"]},
        {"name": "b", "type": "conv", "out_channels": 12, "kernel": 1, "inputs": ["p0"]},
        {"name": "b_r", "type": "relu"},
        {"name": "a", "type": "conv", "out_channels": 4, "kernel": 3, "pad": 1, "inputs": ["p0"]},
        {"name": "cat", "type": "concat", "inputs": ["a", "b_r"]},
        {"name": "c", "type": "conv", "out_channels": 12, "kernel": 3, "pad": 1},
        {"name": "add", "type": "add", "inputs": ["c", "p0"]},
        {"name": "dw", "type": "conv", "out_channels": 12, "kernel": 3, "pad": 1, "groups": 12},
        {"name": "dw_add", "type": "add", "inputs": ["dw", "add"]},
        {"name": "wide", "type": "conv", "out_channels": 24, "kernel": 1},
        {"name": "wide_dw", "type": "conv", "out_channels": 24, "kernel": 3, "pad": 1, "groups": 24},
        {"name": "head", "type": "conv", "out_channels": 10, "kernel": 1}]},
}

#: Kernels above 3 compiled for a 3x3 window (max_k 3 at compile time,
#: whatever the configuration's MaxK): the compiler pads 5, 7 and 11 to 6, 9
#: and 12, which the engine runs as 2x2, 3x3 and 4x4 sub-windows of 3x3
#: (golden.isa.DECOMPOSED). big_kernels: a 3-channel 7x7/2 first layer
#: (input selection), an OVSF 5x5 of two ci-groups (the last one's real
#: channels packed) in row tiles, a depthwise 5x5 (a window per sub-window,
#: each sub-window's taps in whole words), a grouped 5x5 (lowered to three
#: channel-slice bands, each a dense 6x6), a 5x5/3 split into ti-tiles
#: (sub-windows, ci-groups and tiles all nest).
#: kernel_11: an 11x11/4, an OVSF 7x7, an OVSF depthwise 11x11/2 and a grouped 5x5 (two bands); the first two's 144 and 81 weight words an
#: oc-group need a weight buffer of 256 words a half (ecp5, default), twice
#: small's.
DECOMP_CASES = {
    "big_kernels": {"input_shape": [3, 15, 17], "weights": {"seed": 17}, "max_k": 3,
                    "tiles": {"c2": {"tr": 3}, "dw": {"to": 24, "ti": 24}, "c3": {"ti": 8}}, "layers": [
        {"name": "c1", "type": "conv", "out_channels": 12, "kernel": 7, "stride": 2, "pad": 3},
        {"type": "relu"},
        {"name": "c2", "type": "conv", "out_channels": 24, "kernel": 5, "pad": 2, "rho": 0.5},
        {"type": "relu"},
        {"name": "dw", "type": "conv", "out_channels": 24, "kernel": 5, "pad": 2, "groups": 24},
        {"name": "g5", "type": "conv", "out_channels": 24, "kernel": 5, "pad": 2, "groups": 3},
        {"name": "c3", "type": "conv", "out_channels": 4, "kernel": 5, "stride": 3, "pad": 1}]},
    "kernel_11": {"input_shape": [5, 21, 23], "weights": {"seed": 18}, "max_k": 3, "layers": [
        {"name": "c1", "type": "conv", "out_channels": 6, "kernel": 11, "stride": 4, "pad": 5},
        {"type": "relu"},
        {"name": "c2", "type": "conv", "out_channels": 8, "kernel": 7, "pad": 3, "rho": 0.5},
        {"name": "dw", "type": "conv", "out_channels": 8, "kernel": 11, "stride": 2, "pad": 5, "groups": 8,
         "rho": 0.5},
        {"name": "g5", "type": "conv", "out_channels": 8, "kernel": 5, "pad": 2, "groups": 2}]},
}

#: The cases using graph features, and the descriptor fields each must use
#: (test_rtl_engine checks the compiled program really does).
GRAPH_FEATURES = {"fire": ("out_c_off", "in_c_off"), "concat_gap": ("out_c_off",), "relu6": ("clip",),
                  "copy_clip": ("pool_kh", "clip", "out_c_off"),
                  "res_block": ("res",), "dw_block": ("groups", "res"), "avg_pools": ("pool_avg", "pool_incl_pad", "pool_global", "pool_asym",
                                                       "pool_kh")}


#: Larger layers for measuring the engine's efficiency (Verilator; not in make test).
PERF_CASES = {
    "conv_compute_bound": {"input_shape": [32, 16, 16], "weights": {"seed": 5}, "layers": [
        {"name": "conv", "type": "conv", "out_channels": 32, "kernel": 3, "pad": 1}]},
    "first_layer_3ch": {"input_shape": [3, 32, 32], "weights": {"seed": 6}, "layers": [
        {"name": "conv", "type": "conv", "out_channels": 32, "kernel": 3, "pad": 1}]},
}
SMOKE = list(CASES) + list(GRAPH_CASES) + ["big_kernels"]
ALL_CASES = {**CASES, **GRAPH_CASES, **PM_CASES, **DECOMP_CASES, **PERF_CASES}
CASES.update(PERF_CASES)


def fit_tiles(tiles, cfg: EngineConfig):
    """A forced ``ti`` that is not a multiple of PN becomes the next one. A
    forced ``to`` that is not a multiple of PM (16 at PM = 12) becomes
    the largest multiple of PM not above it, at least PM, and a depthwise
    tile's equal ``ti`` with it: the case keeps several to-tiles on every
    configuration it runs on."""
    if not tiles:
        return tiles
    fitted = {}
    for name, t in tiles.items():
        t = dict(t)
        tied = "to" in t and t.get("ti") == t["to"]      # a depthwise tile: ti = to
        if "to" in t and t["to"] % cfg.pm:
            t["to"] = max(cfg.pm, t["to"] // cfg.pm * cfg.pm)
        if tied:
            t["ti"] = t["to"]
        elif "ti" in t and t["ti"] % cfg.pn:
            t["ti"] = -(-t["ti"] // cfg.pn) * cfg.pn     # a forced ti: whole channel groups
        fitted[name] = t
    return fitted


def build(case: str, cfg: EngineConfig = SMALL, seed: int = 0, insel: str = "auto"):
    """Compile a case; return (program, quantized input, golden outputs per layer)."""
    spec = dict(ALL_CASES[case], name=case)
    force_ovsf = spec.pop("force_ovsf", False)
    scale = spec.pop("input_scale", 1.0)
    tiles = fit_tiles(spec.pop("tiles", None), cfg)
    # compiled for a smaller window than the engine's: the program is the
    # engine's all the same (the window bounds only which kernels it takes)
    ccfg = dataclasses.replace(cfg, max_k=min(cfg.max_k, spec.pop("max_k", cfg.max_k)))
    net = load_network(spec)
    x = scale * np.random.default_rng(seed).normal(0, 1, (1,) + tuple(net.input_shape))
    prog = compiler.compile_network(net, ccfg, x, insel=insel, force_ovsf=force_ovsf, tiles=tiles)
    xq = compiler.load_input(prog, x[0])
    return prog, xq, compiler.run_network(prog, xq)
