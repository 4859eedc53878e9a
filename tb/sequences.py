"""Sequences: programs for the engine, directed and constrained-random.

Every random choice comes from Python's `random`, which cocotb seeds with the
run's seed (COCOTB_RANDOM_SEED), so `SEED=N` replays a run exactly.
"""
from __future__ import annotations

import dataclasses
import random

import numpy as np
from cocotb_coverage.crv import Randomized
from pyuvm import ConfigDB, uvm_sequence

from golden import compiler, isa, layers
from golden.network import load_network
from golden.randnet import engine_features, random_graph_network, random_network

from .env import ProgramItem

RHOS = (1.0, 0.5, 0.25, 0.125, 0.0625)


def make_program(spec: dict, cfg, label: str, insel: str = "auto", input_scale: float = 1.0,
                 stall: str = "none", corrupt=None, force_ovsf: bool = False, tiles=None,
                 shifts=None, calib_scale: float = 1.0, edits=None) -> ProgramItem:
    """Compile a network for ``cfg`` (calibrated on images of ``calib_scale``,
    unit by default) and write an input of ``input_scale`` times that into
    its image. A larger scale than the calibration drives outputs into
    saturation. ``tiles`` replaces the
    compiler's tiles ({layer name: {tr, tc, ti, to}}; a ``to`` that is not a
    multiple of cfg.pm is fitted to one, engine_cases.fit_tiles); ``shifts`` replaces
    shift amounts in layer 0's descriptor ({field: value}), which is what
    another choice of fractional lengths would give. ``edits`` ({layer name:
    {field: value}}) rewrites legal fields of named layers' descriptors:
    what the compiler does not choose (a residual shift of each sign, one
    that saturates the add, a global max pool)."""
    from .regressions import engine_cases
    tiles = engine_cases.fit_tiles(tiles, cfg)
    # "max_k" in a spec compiles it for a smaller window than cfg's: its
    # kernels above that run as 3x3 sub-windows (golden.isa.DECOMPOSED), which
    # any engine with a window of 3 or more runs
    spec = dict(spec)
    ccfg = dataclasses.replace(cfg, max_k=min(cfg.max_k, spec.pop("max_k", cfg.max_k)))
    net = load_network(spec)
    rng = np.random.default_rng(random.getrandbits(32))
    calib = calib_scale * rng.normal(0, 1, (2,) + tuple(net.input_shape))
    prog = compiler.compile_network(net, ccfg, calib, insel=insel, force_ovsf=force_ovsf, tiles=tiles)
    compiler.load_input(prog, calib[0] * input_scale)
    if shifts:
        d = isa.Descriptor.decode(prog.image.read(prog.desc_addr, isa.DESC_BYTES))
        d.values.update(shifts)
        isa.check(d, cfg)
        prog.image.write(prog.desc_addr, d.encode())
    for name, fields in (edits or {}).items():
        i = next(j for j, q in enumerate(prog.layers) if q.name == name)
        addr = prog.desc_addr + i * isa.DESC_BYTES
        d = isa.Descriptor.decode(prog.image.read(addr, isa.DESC_BYTES))
        d.values.update(fields)
        isa.check(d, cfg, engine=False)
        prog.image.write(addr, d.encode())
    item = ProgramItem(label, prog, label=label, stall=stall)
    if corrupt is not None:
        layer, field, value = corrupt
        addr = prog.desc_addr + layer * isa.DESC_BYTES
        d = isa.Descriptor.decode(prog.image.read(addr, isa.DESC_BYTES))
        d.values[field] = value
        prog.image.write(addr, d.encode())
        item.expect_err = int(isa.validate(d, cfg))
        item.expect_err_layer = layer
    return item


def _cfg():
    return ConfigDB().get(None, "", "CFG")


def _stall():
    try:
        return ConfigDB().get(None, "", "STALL")
    except Exception:
        return "none"


# ---------------------------------------------------------------- directed

def conv(name, cout, k, stride=1, pad=0, **kw):
    return dict({"name": name, "type": "conv", "out_channels": cout, "kernel": k, "stride": stride, "pad": pad}, **kw)


#: One program per layer kind and mode (name -> (network spec, insel mode)).
DIRECTED = {
    "conv_k1": ({"input_shape": [12, 6, 7], "layers": [conv("c", 10, 1), {"type": "relu"}]}, "auto"),
    "conv_k3_s1_pad": ({"input_shape": [9, 8, 9], "layers": [conv("c", 12, 3, 1, 1)]}, "auto"),
    "conv_k5_s2_asym": ({"input_shape": [4, 11, 10], "layers": [conv("c", 8, 5, 2, [2, 1, 0, 3])]}, "auto"),
    "conv_k7_s3": ({"input_shape": [3, 15, 14], "layers": [conv("c", 8, 7, 3, 3), {"type": "relu"}]}, "auto"),
    "conv_k11_s4": ({"input_shape": [3, 23, 23], "layers": [conv("c", 8, 11, 4, 2)]}, "auto"),
    "conv_insel_off": ({"input_shape": [3, 8, 8], "layers": [conv("c", 8, 3, 1, 1)]}, "off"),
    "conv_ovsf_half": ({"input_shape": [8, 6, 6], "layers": [conv("c", 8, 3, 1, 1, rho=0.5)]}, "auto"),
    "conv_ovsf_eighth": ({"input_shape": [16, 5, 5], "layers": [conv("c", 8, 3, 1, 1, rho=0.125)]}, "auto"),
    "fc_raw": ({"input_shape": [24, 1, 1], "layers": [{"name": "f", "type": "fc", "out_features": 10}]}, "auto"),
    "fc_ovsf": ({"input_shape": [32, 1, 1], "layers": [{"name": "f", "type": "fc", "out_features": 12, "rho": 0.25}]},
                "auto"),
    "conv_pool2": ({"input_shape": [5, 8, 8], "layers": [conv("c", 8, 3, 1, 1), {"type": "relu"},
                                                       {"name": "p", "type": "maxpool", "kernel": 2, "stride": 2}]},
                   "auto"),
    "conv_pool3_pad": ({"input_shape": [4, 9, 9], "layers": [conv("c", 8, 3, 1, 1),
                                                           {"name": "p", "type": "maxpool", "kernel": 3, "stride": 2,
                                                            "pad": 1}]}, "auto"),
    "pool_standalone": ({"input_shape": [10, 7, 7], "layers": [conv("c", 10, 1), {"name": "p1", "type": "maxpool", "kernel": 2,
                                                                                "stride": 1},
                                                             {"name": "p2", "type": "maxpool", "kernel": 3, "stride": 2}]},
                        "auto"),
    "conv_then_fc": ({"input_shape": [3, 6, 6], "layers": [conv("c", 9, 3, 1, 1), {"type": "relu"},
                                                         {"name": "f", "type": "fc", "out_features": 7}]}, "auto"),
}
#: The directed programs of the graph features the RTL runs (name -> (network
#: spec, insel mode, make_program options)); DirectedSeq runs them after
#: DIRECTED. Kept apart from DIRECTED, whose chains tests/data/chain_cases.py
#: compiles against reference images.
GRAPH_DIRECTED = {
    # Graph features. A SqueezeNet fire module: the expands write channel
    # slices of one tensor (out_c_off), the consumer reads it whole, a side
    # conv reads the 3x3 expand's slice alone (in_c_off); the 1x1 expand's 5
    # channels leave a gap of 3 at PN = 8.
    "fire": ({"input_shape": [6, 6, 7], "layers": [
        conv("sq", 8, 1), {"name": "sq_r", "type": "relu"},
        conv("e1", 5, 1, inputs=["sq_r"]), {"name": "e1_r", "type": "relu"},
        conv("e3", 16, 3, 1, 1, inputs=["sq_r"]), {"name": "e3_r", "type": "relu"},
        {"name": "cat", "type": "concat", "inputs": ["e1_r", "e3_r"]},
        conv("side", 8, 1, inputs=["e3_r"]),
        conv("cons", 10, 3, 1, 1, inputs=["cat"]),
        {"name": "cat2", "type": "concat", "inputs": ["side", "cons"]},
        conv("last", 8, 1)]}, "auto"),
    # ReLU6 at saturation: calibrated on images of scale 8, so the clip at 6
    # lies inside the output's format and binds; fused into a conv, and into
    # a conv with a fused max pool.
    "relu6": ({"input_shape": [5, 8, 8], "layers": [
        conv("c1", 12, 3, 1, 1), {"name": "r1", "type": "relu6"},
        conv("c2", 8, 3, 1, 1), {"name": "r2", "type": "relu6"},
        {"name": "p2", "type": "maxpool", "kernel": 2, "stride": 2}]}, "auto", {"calib_scale": 8.0}),
}
def _add(name, a, b):
    return {"name": name, "type": "add", "inputs": [a, b]}


def _pool(name, kind, src, **kw):
    return dict({"name": name, "type": kind, "inputs": [src]}, **kw)


# A ResNet basic block (conv-ReLU-conv, identity shortcut, ReLU after the
# add), then a projection block (stride-2 3x3 and a stride-2 1x1 shortcut,
# no ReLU after the add); the compiler fuses each add into the later conv.
_RESNET = {"input_shape": [8, 8, 8], "layers": [
    conv("s", 8, 3, 1, 1), {"name": "sr", "type": "relu"},
    conv("c1", 8, 3, 1, 1), {"name": "r1", "type": "relu"}, conv("c2", 8, 3, 1, 1),
    _add("a1", "c2", "sr"), {"name": "a1r", "type": "relu"},
    conv("p1", 12, 3, 2, 1), {"name": "pr", "type": "relu"}, conv("p2", 12, 3, 1, 1),
    conv("sc", 12, 1, 2, 0, inputs=["a1r"]), _add("a2", "p2", "sc")]}
# Average pools excluding and including the padding, an asymmetric max pool,
# global average pools of a non-square plane, their concat, a 1x1 conv.
_POOLS = {"input_shape": [5, 9, 7], "layers": [
    conv("c", 9, 3, 1, 1), {"name": "r", "type": "relu"},
    _pool("ap0", "avgpool", "r", kernel=3, stride=1, pad=1),
    _pool("ap1", "avgpool", "r", kernel=3, stride=2, pad=1, count_include_pad=True),
    _pool("mp", "maxpool", "ap0", kernel=3, stride=2, pad=[2, 1, 0, 2]),
    _pool("g", "gap", "mp"), _pool("g2", "gap", "ap1"),
    {"name": "cat", "type": "concat", "inputs": ["g", "g2"]}, conv("h", 4, 1)]}

# A 3x3/1 pad 1 average pool (an edit of its window that keeps its output
# shape keeps the program consistent) and a global average pool of a
# square plane, then an FC.
_SQUARE = {"input_shape": [6, 6, 6], "layers": [
    conv("c", 8, 3, 1, 1), {"name": "r", "type": "relu"}, _pool("ap", "avgpool", "r", kernel=3, stride=1, pad=1),
    _pool("g", "gap", "ap"), {"name": "f", "type": "fc", "out_features": 5}]}

#: The directed programs of the residual add and the average and global pools
#: (issue 12), as GRAPH_DIRECTED. The compiler makes every residual shift a
#: left shift and never lets the add saturate: ``edits`` set the other signs
#: and a saturating shift; no network makes a global max pool, an edited
#: global average pool is one.
RESIDUAL_DIRECTED = {
    "resnet_block": (_RESNET, "auto"),
    # res_shift 0 and right (3); the right-shifted operand rounds
    "res_shift_signs": (_RESNET, "auto", {"edits": {"c2": {"res_shift": 0}, "sc": {"res_shift": 3}}}),
    # a left shift far beyond the data width: the aligned residual saturates
    # to the accumulator's range, and so does the add
    "res_saturate": (_RESNET, "auto", {"edits": {"c2": {"res_shift": -60}, "sc": {"res_shift": -60}}}),
    # an add no conv can take (both operands are ReLU outputs): a 1x1
    # identity layer with the residual; then a residual on an FC (two FCs
    # of one input added)
    "standalone_add": ({"input_shape": [5, 7, 7], "layers": [
        conv("c1", 10, 3, 1, 1), {"name": "r1", "type": "relu"},
        conv("c2", 10, 3, 1, 1, inputs=["input"]), {"name": "r2", "type": "relu"},
        _add("a", "r1", "r2"), conv("h", 6, 1),
        {"name": "f1", "type": "fc", "out_features": 7}, {"name": "f2", "type": "fc", "out_features": 7, "inputs": ["h"]},
        _add("fa", "f1", "f2")]}, "auto"),
    "avg_pools": (_POOLS, "auto"),
    "global_max": (_POOLS, "auto", {"edits": {"g": {"pool_avg": 0}}}),
    # a non-square average window with unequal pads: 3x2, pads (1, 1, 1, 0),
    # the output as large as the 3x3 pad 1 pool's it replaces (the network
    # format has square windows only; ONNX imports make such windows)
    "avg_nonsquare": (_SQUARE, "auto", {"edits": {"ap": {"pool_kh": 3, "pool_kw": 2, "pool_asym": 1, "pool_pad": 1,
                                                         "pool_pad_b": 1, "pool_pad_l": 1, "pool_pad_r": 0}}}),
    # global pools of a square plane, average and (edited) max
    "gap_square": (_SQUARE, "auto"),
    "gap_square_max": (_SQUARE, "auto", {"edits": {"g": {"pool_avg": 0}}}),
}


def _engine_case(name):
    """A network of the engine smoke cases (tests/rtl/engine_cases.py) as a
    directed program: its spec, and its forced tiles as make_program's."""
    from .regressions import engine_cases
    spec = dict(engine_cases.GRAPH_CASES[name])
    opts = {"tiles": spec.pop("tiles")} if "tiles" in spec else {}
    if "input_scale" in spec:
        opts["input_scale"] = spec.pop("input_scale")
    spec.pop("weights", None)
    return spec, "auto", opts


#: The directed programs of grouped convolution (issue 13), as
#: GRAPH_DIRECTED (GraphDirectedTest runs them), each left out while the RTL
#: does not run it (engine_runs). dw_block is the engine smoke case: 3x3
#: (stride 1 and 2), 5x5 and 7x7 depthwise, OVSF, residuals fused into
#: depthwise layers, ReLU6, a depthwise 1x1 identity add, split tiles.
DEPTHWISE_DIRECTED = {
    "dw_block": _engine_case("dw_block"),
    # A MobileNet-v2 inverted residual on 6 channels (not a multiple of PM),
    # its depthwise 3x3 layer OVSF-generated, the add fused into the
    # projection; an OVSF depthwise 5x5 stride 2 with unequal pads; then what
    # the compiler lowers: ShuffleNet's grouped 1x1 (channel-slice bands),
    # a depthwise channel multiplier (block-diagonal dense).
    "mobile_shuffle": ({"input_shape": [6, 9, 9], "layers": [
        conv("exp", 12, 1), {"name": "exp_r", "type": "relu6"},
        conv("dw3", 12, 3, 1, 1, groups=12, rho=0.5), {"name": "dw3_r", "type": "relu6"},
        conv("proj", 6, 1), _add("add", "proj", "input"),
        conv("dw5", 6, 5, 2, [2, 1, 1, 2], groups=6, rho=0.25), {"name": "dw5_r", "type": "relu"},
        conv("pre", 16, 1), {"name": "pre_r", "type": "relu"},
        conv("g1", 16, 1, groups=4), {"name": "g1_r", "type": "relu"},
        conv("mult", 32, 3, 1, 1, groups=16), conv("head", 5, 1)]}, "auto"),
}
GRAPH_DIRECTED.update(DEPTHWISE_DIRECTED)
#: Programs left out (and named in the log) while the RTL does not run them.
GATED = set(RESIDUAL_DIRECTED) | set(DEPTHWISE_DIRECTED)
ALL_DIRECTED = {**DIRECTED, **GRAPH_DIRECTED, **RESIDUAL_DIRECTED}


def engine_runs(spec_entry, cfg) -> bool:
    """Whether this engine's RTL runs every layer of a directed program
    (golden.isa.unsupported_features of each compiled descriptor is empty):
    the residual and average-pool programs wait for the RTL that runs them."""
    spec, insel, *opts = spec_entry
    item = make_program(dict(spec, name="probe", weights={"seed": 1}), cfg, "probe", insel=insel,
                        **(opts[0] if opts else {}))
    prog = item.prog
    return all(not isa.unsupported_features(isa.Descriptor.decode(
        prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))) for i in range(len(prog.layers)))
SMOKE = ("conv_k3_s1_pad", "conv_ovsf_half", "fc_raw", "conv_pool2")


class DirectedSeq(uvm_sequence):
    """The directed programs (all, the graph ones included, or the names given)."""

    def __init__(self, name="directed", names=None):
        super().__init__(name)
        self.names = names

    async def body(self):
        cfg = _cfg()
        asked = list(ALL_DIRECTED) if self.names is None else list(self.names)
        # less those whose features the RTL does not run yet (named in the
        # log, so the gap shows)
        names = [n for n in asked if n not in GATED or engine_runs(ALL_DIRECTED[n], cfg)]
        left = [n for n in asked if n not in names]
        if left:
            self.logger.warning(f"directed programs the RTL does not run yet: {', '.join(left)}")
        for n in names:
            spec, insel, *opts = ALL_DIRECTED[n]
            spec = dict(spec, name=n, weights={"seed": random.getrandbits(16)})
            item = make_program(spec, cfg, n, insel=insel, stall=_stall(), **(opts[0] if opts else {}))
            await self.start_item(item)
            await self.finish_item(item)


# ---------------------------------------------------------- constrained random

class LayerParams(Randomized):
    """One random layer: legal shapes, channels that need not fill the lanes,
    every K/stride/pad combination, fused pools, OVSF at each rho, input
    selection on and off, and input scales that push outputs to saturation."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.kind = "conv"
        self.cin = self.cout = self.h = self.w = 1
        self.k = 1
        self.stride = 1
        self.pad_mode = "same"
        self.pool = "none"
        self.rho = 1.0
        self.ovsf_at_1 = False
        self.insel = "auto"
        self.scale = 1.0
        self.tiling = "auto"
        self.shifts = "fit"
        self.pool_win = (2, 2, 0)
        self.group = "dense"
        self.residual = False
        # compile a dense K > 3 conv for a 3x3 window (sub-windows): None
        # decides by the weights' seed (one in four), True and False force it
        self.decompose = None
        self.add_rand("kind", ["conv", "conv", "conv", "conv", "fc", "pool"])
        self.add_rand("cin", list(range(1, 3 * cfg.pn + 3)))
        self.add_rand("cout", list(range(1, 3 * cfg.pm + 3)))
        self.add_rand("h", list(range(1, 21)))
        self.add_rand("w", list(range(1, 21)))
        self.add_rand("k", list(isa.KERNELS))
        self.add_rand("stride", list(isa.STRIDES))
        self.add_rand("pad_mode", ["none", "same", "asym"])
        self.add_rand("pool", ["none", "none", "2x2s2", "3x3s2", "3x3s2p1"])
        self.add_rand("rho", list(RHOS))
        self.add_rand("ovsf_at_1", [False, True])       # rho = 1 as generated weights
        self.add_rand("insel", ["auto", "on", "off"])
        self.add_rand("scale", [1.0, 1.0, 8.0, 1e-3])
        # tiles smaller than the compiler's: partial tiles in every dimension
        self.add_rand("tiling", ["auto", "auto", "split"])
        # shift amounts another choice of fractional lengths gives
        self.add_rand("shifts", ["fit", "fit", "fit", "retune"])
        self.add_rand("pool_win", [(k, s, p) for k in (2, 3) for s in (1, 2, 3) for p in (0, 1)])
        # a CONV's groups: dense, depthwise (groups = in_c = out_c, which the
        # RTL runs) or grouped otherwise (the compiler lowers it to dense
        # layers), each only where the engine runs it (layer_groups)
        self.add_rand("group", ["dense"] * 6 + ["depthwise", "depthwise", "grouped"])
        self.add_rand("residual", [False, False, True])   # a depthwise layer's input added
        # the kernel fits the padded input; FC is 1x1 without pool
        # Constraints over single variables keep the solver fast; the
        # dependent rules (an FC is 1x1 without pool; the kernel fits the
        # padded input, stride at most K) are applied in post_randomize.
        self.add_constraint(lambda rho: rho * self.cfg.ovsf_len >= 1)

    def post_randomize(self):
        if self.kind == "fc":
            self.k, self.stride, self.pool = 1, 1, "none"
        if self.kind != "conv" or self.group not in layer_groups():
            self.group = "dense"
        self.fit(remap=True)

    def fit(self, remap: bool = False):
        """The group's rules (``remap``: pull drawn K and stride into the
        group's usual ranges) and a plane the kernel fits."""
        if remap and self.group == "depthwise":
            # K 1/3/5/7, stride 1 or 2 mostly (3 and 4 now and then)
            if self.k == 11:
                self.k = random.choice([3, 5, 7])
            if self.stride > 2 and random.random() < 0.7:
                self.stride = random.choice([1, 2])
        elif remap and self.group == "grouped":
            self.k = min(self.k, 5)
            self.stride = min(self.stride, 2)
        if self.group == "depthwise":
            self.cin = self.cout = max(2, self.cin)     # one channel is a dense layer
        elif self.group == "grouped":
            self.cin = max(2, self.cin)
        reach = 2 * (self.k // 2) if self.pad_mode != "none" else 0
        self.h = max(self.h, self.k - reach)
        self.w = max(self.w, self.k - reach)

    def spec(self, seed: int) -> dict:
        k, s = self.k, self.stride
        if self.kind == "pool":
            pk, ps, pp = self.pool_win
            h, w = max(self.h, pk), max(self.w, pk)
            return {"name": "rand_pool", "input_shape": [self.cin, h, w],
                    "layers": [{"name": "pool", "type": "maxpool", "kernel": pk, "stride": ps, "pad": pp}]}
        if self.kind == "fc":
            return {"name": "rand_fc", "input_shape": [self.cin, 1, 1], "weights": {"seed": seed},
                    "layers": [{"name": "fc", "type": "fc", "out_features": self.cout, "rho": self.rho},
                               {"type": "relu"}]}
        if self.pad_mode == "none":
            pads = [0, 0, 0, 0]
        elif self.pad_mode == "same":
            pads = [k // 2] * 4
        else:
            pads = [random.randrange(k) for _ in range(4)]
        h = max(self.h, k - pads[0] - pads[1])
        w = max(self.w, k - pads[2] - pads[3])
        oh = layers.out_size(h, k, s, pads[0], pads[1])
        ow = layers.out_size(w, k, s, pads[2], pads[3])
        lay = [{"name": "conv", "type": "conv", "out_channels": self.cout, "kernel": k, "stride": s, "pad": pads,
                "rho": self.rho}]
        if self.group != "dense":
            lay[0]["out_channels"], lay[0]["groups"] = self.grouped_shape()
        if self.group == "depthwise" and self.residual and s == 1 and (oh, ow) == (h, w):
            # the compiler fuses the add into the depthwise layer (res)
            lay.append({"name": "add", "type": "add", "inputs": ["conv", "input"]})
        if random.random() < 0.6:
            lay.append({"type": "relu6" if self.group == "depthwise" and random.random() < 0.5 else "relu"})
        pk, ps, pp = {"2x2s2": (2, 2, 0), "3x3s2": (3, 2, 0), "3x3s2p1": (3, 2, 1)}.get(self.pool, (0, 0, 0))
        if pk and pk <= min(oh, ow) + 2 * pp:
            lay.append({"name": "pool", "type": "maxpool", "kernel": pk, "stride": ps, "pad": pp})
        spec = {"name": "rand_conv", "input_shape": [self.cin, h, w], "weights": {"seed": seed}, "layers": lay}
        decompose = seed % 4 == 0 if self.decompose is None else self.decompose
        if self.group in ("dense", "depthwise") and k > 3 and decompose and decomposable(k, self.cfg, self.group):
            # one dense or depthwise K > 3 conv in four on a 3x3 window: sub-windows. From
            # the weights' seed, not a draw, so the other draws stay as they were
            spec["max_k"] = 3
        return spec


    def grouped_shape(self) -> tuple:
        """(out_channels, groups) of a depthwise or grouped CONV on cin
        channels: groups = cin = cout for depthwise; else groups dividing
        cin and cout that do not make it depthwise (a channel multiplier
        when every channel is its own group)."""
        if self.group == "depthwise":
            return self.cin, self.cin
        g = random.choice([x for x in range(2, self.cin + 1) if self.cin % x == 0] or [1])
        per = random.randint(1, max(1, (3 * self.cfg.pm + 2) // g))
        if g == self.cin and per == 1:
            per = 2
        return g * per, g


def decomposable(k: int, cfg, group: str = "dense") -> bool:
    """A K x K conv compiled for a 3x3 window fits cfg's weight buffer: a
    dense one's ci-group of (ceil(K/3))^2 sub-windows of 9 words each, per
    oc-group (an 11x11, 144 words, does not fit the regression
    configurations' 128); a depthwise one's oc-group of packed channels,
    each sub-window's 9 taps in whole PN words."""
    s = -(-k // 3)
    if group == "depthwise":
        return cfg.pm * s * s * (-(-9 // cfg.pn) * cfg.pn) <= cfg.wgt_buf_elems
    return 9 * s * s <= cfg.wgt_buf_elems // (cfg.pm * cfg.pn)


def layer_groups() -> tuple:
    """The group kinds LayerParams draws: dense, and depthwise and grouped
    where the engine runs them (randnet.engine_features: the RTL's check,
    and for grouped convolutions the compiler's lowering)."""
    feats = engine_features()
    return ("dense",) + tuple(g for g in ("depthwise", "grouped") if g in feats)


def split_tiles(q, cfg) -> dict:
    """Random tiles no larger than the compiler's (so they fit the buffers),
    legal for the layer: lane multiples, pool windows whole."""
    t = q.tiles
    out = {}
    step = 1
    if q.pool is not None:
        if q.pool[0] != q.pool[1] or q.pool[2]:
            step = 0                      # the whole plane in one tile
        else:
            step = q.pool[1]
    if step:
        out["tr"] = t["tr"] if t["tr"] < step else random.randrange(step, t["tr"] + 1, step)
        out["tc"] = t["tc"] if t["tc"] < step else random.randrange(step, t["tc"] + 1, step)
    if q.kind != isa.Kind.POOL and isa.depthwise({"kind": int(q.kind), "groups": q.groups,
                                                  "in_c": q.in_shape[0], "out_c": q.out_shape[0]}):
        # a depthwise tile's inputs are its outputs' channels
        out["to"] = random.randrange(cfg.pm, t["to"] + 1, cfg.pm)
        out["ti"] = out["to"]
    elif q.kind != isa.Kind.POOL:
        unit_i = max(cfg.pn, cfg.ovsf_len) if q.ovsf is not None else cfg.pn
        out["ti"] = random.randrange(unit_i, t["ti"] + 1, unit_i) if t["ti"] >= unit_i else t["ti"]
        out["to"] = random.randrange(cfg.pm, t["to"] + 1, cfg.pm)
    return out


def retuned_shifts(q, cfg) -> dict:
    """Shift amounts of other fractional lengths: a data shift <= 0 (output
    finer than the accumulator: left shift, saturation), a bias shift >= 0 (a
    finer bias than the accumulator) and a generator shift <= 0; now and then
    beyond the data width, where every value rounds to 0 or saturates."""
    if q.kind == isa.Kind.POOL:
        return {}
    wide = cfg.data_bits + random.randrange(1, 5)
    out = {"data_shift": random.choice([0, -1, -random.randrange(1, cfg.data_bits), -wide]),
           "bias_shift": random.choice([0, 1, random.randrange(1, cfg.data_bits), wide])}
    if q.ovsf is not None:
        out["gen_shift"] = random.choice([0, -1, -2])
    return out


class RandomLayerSeq(uvm_sequence):
    def __init__(self, name="random_layers", count=3):
        super().__init__(name)
        self.count = count

    async def body(self):
        cfg = _cfg()
        p = LayerParams(cfg)
        for i in range(self.count):
            p.randomize()
            await self.run_layer(p, cfg, i)

    async def run_layer(self, p: LayerParams, cfg, i: int):
        """Compile and send the layer ``p`` describes (its tiling and shift
        choices applied)."""
        seed = random.getrandbits(16)
        spec = p.spec(seed)
        force_ovsf = p.ovsf_at_1 and p.rho == 1.0 and p.kind != "pool"
        group = f" {p.group}{' +input' if p.residual and p.group == 'depthwise' else ''}" if p.group != "dense" else ""
        label = (f"layer{i}: {p.kind}{group} cin {p.cin} cout {p.cout} {p.h}x{p.w} k{p.k} s{p.stride} "
                 f"pad {p.pad_mode} pool {p.pool if p.kind != 'pool' else p.pool_win} rho {p.rho}"
                 f"{' (ovsf)' if force_ovsf else ''} insel {p.insel} scale {p.scale} tiling {p.tiling} "
                 f"shifts {p.shifts}{' on a 3x3 window (sub-windows)' if 'max_k' in spec else ''}")
        item = make_program(spec, cfg, label, insel=p.insel, input_scale=p.scale, stall=_stall(),
                            force_ovsf=force_ovsf)
        q = item.prog.layers[0]
        tiles = {q.name: split_tiles(q, cfg)} if p.tiling == "split" else None
        shifts = retuned_shifts(q, cfg) if p.shifts == "retune" else None
        if tiles or shifts:
            item = make_program(spec, cfg, label, insel=p.insel, input_scale=p.scale, stall=_stall(),
                                force_ovsf=force_ovsf, tiles=tiles, shifts=shifts)
        # the tiles the layer runs with (a failure report needs them)
        item.label += " tiles " + ",".join(str(item.prog.layers[0].tiles[k]) for k in ("tr", "tc", "ti", "to"))
        await self.start_item(item)
        await self.finish_item(item)


def cross_bins(cfg) -> list[tuple]:
    """Every legal (kind, k, stride, pad) of the functional coverage cross
    (tb/funcov.py): the shapes golden.isa.check accepts."""
    from .funcov import K_BINS, PAD_BINS, STRIDE_BINS, _illegal_shapes
    illegal = set(_illegal_shapes())
    out = [("FC", 1, 1, "zero")]
    for kind in ("CONV", "POOL"):
        out += [(kind, k, s, p) for k in K_BINS for s in STRIDE_BINS for p in PAD_BINS
                if (kind, k, s, p) not in illegal]
    return out


def group_bins() -> list[tuple]:
    """Every (group, k, stride, insel) of the functional coverage cross
    group_k_stride_insel (tb/funcov.py) whose group the engine runs."""
    from .funcov import GROUP_BINS, INSEL_BINS, K_BINS, STRIDE_BINS, _not_generated_groups
    ignored = set(_not_generated_groups())
    runs = {"depthwise": "depthwise", "lowered": "grouped"}
    return [(g, k, s, i) for g in GROUP_BINS for k in K_BINS for s in STRIDE_BINS for i in INSEL_BINS
            if (g, k, s, i) not in ignored and runs.get(g) in layer_groups()]


class CoverageSweepSeq(RandomLayerSeq):
    """One random layer per bin of the kind x K x stride x pad cross, every
    other choice random except for a round robin that visits every rho the
    configuration has, both input selection modes, retuned shifts (negative
    data shift, positive bias shift, non-positive generator shift), a
    saturating input scale and split tiling. Closes the functional coverage
    by construction instead of by the luck of random draws; the layers are
    kept small so the sweep runs in about a minute."""

    def __init__(self, name="coverage_sweep"):
        super().__init__(name, count=0)

    async def body(self):
        cfg = _cfg()
        p = LayerParams(cfg)
        p.decompose = False               # the K bins are the network's kernels
        rhos = [r for r in RHOS if r * cfg.ovsf_len >= 1]
        for i, (kind, k, stride, pad) in enumerate(cross_bins(cfg)):
            p.randomize()
            p.cin = min(p.cin, cfg.pn + 3)
            p.cout = min(p.cout, cfg.pm + 3)
            p.h, p.w = min(p.h, 12), min(p.w, 12)
            p.kind = kind.lower()
            if kind == "POOL":
                p.pool_win = (k, stride, 1 if pad == "nonzero" else 0)
            elif kind == "CONV":
                p.k, p.stride = k, stride
                p.pad_mode = "none" if pad == "zero" else "same"   # asym may draw no pad at all
            p.rho = rhos[i % len(rhos)]
            p.ovsf_at_1 = i % 2 == 0
            p.insel = ("on", "off", "auto")[i % 3]
            p.shifts = "retune" if i % 3 == 1 else "fit"
            p.scale = 8.0 if i % 4 == 2 else 1.0
            p.tiling = "split" if i % 2 else "auto"
            p.group = "dense"             # the group sweep below pins K and stride itself
            p.post_randomize()
            await self.run_layer(p, cfg, i)
        # then one small depthwise or lowered grouped CONV per bin of
        # group x K x stride x insel, raw and OVSF in turn
        n = len(cross_bins(cfg))
        for j, (group, k, stride, insel) in enumerate(group_bins()):
            p.randomize()
            p.kind, p.group, p.pool, p.scale, p.shifts = "conv", {"lowered": "grouped"}.get(group, group), "none", 1.0, "fit"
            p.cin, p.cout = min(p.cin, cfg.pn + 3), min(p.cout, cfg.pm + 3)
            p.h, p.w = min(p.h, 8), min(p.w, 8)
            p.k, p.stride, p.insel = k, stride, insel
            p.pad_mode = "same" if j % 3 else "asym"
            p.rho = rhos[j % len(rhos)]
            p.ovsf_at_1 = (j // len(rhos)) % 2 == 0
            p.tiling = "split" if j % 4 == 1 else "auto"
            p.fit()
            await self.run_layer(p, cfg, n + j)
        # then a dense 5x5, 7x7 and (where the weight buffer holds it) 11x11
        # on a 3x3 window: the sub_windows bins (golden.isa.DECOMPOSED),
        # input selection and OVSF in turn
        n += len(group_bins())
        p.decompose = True
        for j, k in enumerate(k for k in (5, 7, 11) if decomposable(k, cfg)):
            p.randomize()
            p.kind, p.group, p.pool, p.scale, p.shifts, p.residual = "conv", "dense", "none", 1.0, "fit", False
            p.cin, p.cout = min(p.cin, cfg.pn + 3), min(p.cout, cfg.pm + 3)
            p.h, p.w = min(p.h, 12), min(p.w, 12)
            p.k, p.stride, p.insel, p.pad_mode = k, 1 + j, ("on", "off", "auto")[j], "same"
            p.rho, p.ovsf_at_1 = rhos[j % len(rhos)], j == 2
            p.tiling = "auto"
            p.fit()
            await self.run_layer(p, cfg, n + j)


class RandomNetworkSeq(uvm_sequence):
    def __init__(self, name="random_networks", count=1):
        super().__init__(name)
        self.count = count

    async def body(self):
        cfg = _cfg()
        for _ in range(self.count):
            seed = random.getrandbits(16)
            spec = random_network(seed, max_layers=3, max_hw=14, max_c=2 * cfg.pn + 3, ovsf_len=cfg.ovsf_len)
            item = make_program(spec, cfg, f"network {seed}", insel=random.choice(["auto", "on", "off"]),
                                stall=_stall())
            await self.start_item(item)
            await self.finish_item(item)


class RandomGraphSeq(uvm_sequence):
    """Constrained-random graph networks (golden.randnet.random_graph_network):
    fire-module-like blocks whose branches write channel slices of one
    tensor (with gaps where a part is not a multiple of PN), nested concats,
    readers of one part alone, ReLU6, fused and standalone max pools, a
    final conv or FC. Every program is one the engine accepts (the generator
    compiles and validates it). Every other program is calibrated on
    images of scale 8, where the ReLU6 clip at 6 lies inside the output's format and binds."""

    def __init__(self, name="random_graphs", count=1):
        super().__init__(name)
        self.count = count

    async def body(self):
        cfg = _cfg()
        first = random.randrange(2)
        for i in range(self.count):
            seed = random.getrandbits(16)
            spec = random_graph_network(seed, cfg)
            calib = (1.0, 8.0)[(first + i) % 2]      # unit, and large enough for the clip to bind
            insel = random.choice(["auto", "on", "off"])
            item = make_program(spec, cfg, f"graph network {seed} (calibration scale {calib:g}, insel {insel})",
                                insel=insel, stall=_stall(), calib_scale=calib)
            for i in range(len(item.prog.layers)):
                d = isa.Descriptor.decode(item.prog.image.read(item.prog.desc_addr + i * isa.DESC_BYTES,
                                                               isa.DESC_BYTES))
                err = isa.validate(d, cfg)
                if err != isa.Err.NONE:   # the generator promised a legal program
                    raise AssertionError(f"{item.label}: layer {i} is refused with {err.name}")
            await self.start_item(item)
            await self.finish_item(item)


def _too_large_spec(cfg) -> dict:
    """A K=11 conv whose weights need several tiles in this configuration:
    asking for all of them in one tile is TOO_LARGE."""
    c = cfg.pn * (int((cfg.wgt_buf_elems / 121) ** 0.5) // cfg.pn + 2)
    return {"input_shape": [c, 11, 11], "layers": [conv("c", c, 11)]}


def _illegal_programs(cfg) -> dict:
    spec_ct, _ = DIRECTED["conv_then_fc"]     # layer 0 conv k3 pad 1 on 3x6x6, layer 1 FC
    spec_pool, _ = DIRECTED["pool_standalone"]  # layer 1: standalone pool
    spec_ovsf, _ = DIRECTED["conv_ovsf_half"]
    return {"conv_then_fc": spec_ct, "pool": spec_pool, "ovsf": spec_ovsf, "too_large": _too_large_spec(cfg)}


class IllegalDescriptorSeq(uvm_sequence):
    """One program per descriptor error code, each with one illegal field;
    the engine must stop with golden's code at that layer (and the next
    program runs). (program, layer, field, value, expected code)."""
    E = isa.Err
    CASES = [("conv_then_fc", 0, "magic", 0x5A, E.BAD_MAGIC),
             ("conv_then_fc", 1, "kind", 0, E.BAD_KIND),
             ("conv_then_fc", 1, "in_c", 0, E.ZERO_DIM),
             ("conv_then_fc", 1, "k", 4, E.BAD_KERNEL),
             ("conv_then_fc", 0, "stride", 5, E.BAD_STRIDE),
             ("conv_then_fc", 1, "stride", 2, E.BAD_STRIDE),
             ("conv_then_fc", 0, "pad_t", 3, E.BAD_PAD),
             ("conv_then_fc", 0, "k", 11, E.KERNEL_TOO_LARGE),
             ("conv_then_fc", 1, "pool", 1, E.BAD_POOL),
             ("pool", 1, "pool_s", 0, E.BAD_POOL),
             ("conv_then_fc", 1, "out_h", 9, E.SHAPE_MISMATCH),
             ("conv_then_fc", 0, "tr", 0, E.BAD_TILE),
             ("pool", 1, "data_shift", 1, E.BAD_SHIFT),
             ("ovsf", 0, "n_codes", 3, E.BAD_CODES),
             ("conv_then_fc", 0, "ovsf", 1, E.BAD_CODES),
             ("conv_then_fc", 1, "in_addr", 0x1004, E.BAD_ALIGN),
             ("too_large", 0, "to", -1, E.TOO_LARGE)]

    async def body(self):
        cfg = _cfg()
        specs = _illegal_programs(cfg)
        for prog_name, layer, field, value, code in self.CASES:
            spec = dict(specs[prog_name], name="illegal", weights={"seed": 3})
            if value == -1:       # every output channel in one tile
                value = -(-spec["layers"][0]["out_channels"] // cfg.pm) * cfg.pm
            label = f"illegal {field}={value} at layer {layer} of {prog_name}"
            item = make_program(spec, cfg, label, corrupt=(layer, field, value))
            if item.expect_err != int(code):
                # the case list is wrong for this configuration: say so
                raise AssertionError(f"{label}: golden gives {isa.Err(item.expect_err).name}, "
                                     f"the case expects {code.name}")
            await self.start_item(item)
            await self.finish_item(item)


class AbortSeq(uvm_sequence):
    """ABORT at a random point of a program (first run whole, for its length),
    and early aborts that land in the descriptor fetch and check. Each abort
    is followed by a run of the next program, which must be right. With
    ``reset`` a hard reset takes the abort's place."""

    def __init__(self, name="aborts", count=3, reset=False):
        super().__init__(name)
        self.count = count
        self.reset = reset

    async def body(self):
        cfg = _cfg()
        p = LayerParams(cfg)
        for i in range(self.count):
            p.randomize()
            spec = p.spec(random.getrandbits(16))
            what = "reset" if self.reset else "abort"
            whole = make_program(spec, cfg, f"{what}{i} whole run", stall=_stall())
            await self.start_item(whole)
            await self.finish_item(whole)
            cycles = whole.result[3]
            # early (fetch, check: uz_desc_check takes 82 cycles) or anywhere,
            # up to just after the end
            at = random.choice([random.randrange(0, 130), random.randrange(0, cycles + 20)])
            item = make_program(spec, cfg, f"{what}{i} at cycle {at}", stall=_stall())
            if self.reset:
                item.reset_after = at
            else:
                item.abort_after = at
            await self.start_item(item)
            await self.finish_item(item)


class BusErrorSeq(uvm_sequence):
    """SLVERR on a random read or write beat of a program (first run whole, to
    count its beats); the next program must run right."""

    def __init__(self, name="bus_errors", count=3):
        super().__init__(name)
        self.count = count

    async def body(self):
        cfg = _cfg()
        p = LayerParams(cfg)
        bfm = ConfigDB().get(None, "", "BFM")
        for i in range(self.count):
            p.randomize()
            spec = p.spec(random.getrandbits(16))
            whole = make_program(spec, cfg, f"bus error {i} whole run", stall=_stall())
            reads0, writes0 = bfm.beats["read"], bfm.beats["write"]
            await self.start_item(whole)
            await self.finish_item(whole)
            beats = {"read": bfm.beats["read"] - reads0, "write": bfm.beats["write"] - writes0}
            kind = random.choice(["read", "write"])
            nth = random.randrange(1, max(1, beats[kind]) + 1)
            if kind == "read" and random.random() < 0.25:
                nth = random.randrange(1, 5)      # the descriptor fetch
            item = make_program(spec, cfg, f"bus error {i}: {kind} beat {nth} of {beats[kind]}", stall=_stall())
            item.fault = (kind, nth)
            await self.start_item(item)
            await self.finish_item(item)
