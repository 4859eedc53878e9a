"""Sequences: programs for the engine, directed and constrained-random.

Every random choice comes from Python's `random`, which cocotb seeds with the
run's seed (COCOTB_RANDOM_SEED), so `SEED=N` replays a run exactly.
"""
from __future__ import annotations

import random

import numpy as np
from cocotb_coverage.crv import Randomized
from pyuvm import ConfigDB, uvm_sequence

from golden import compiler, isa, layers
from golden.network import load_network
from golden.randnet import random_network

from .env import ProgramItem

RHOS = (1.0, 0.5, 0.25, 0.125, 0.0625)


def make_program(spec: dict, cfg, label: str, insel: str = "auto", input_scale: float = 1.0,
                 stall: str = "none", corrupt=None) -> ProgramItem:
    """Compile a network for ``cfg`` (calibrated on unit-scale images) and
    write an input of ``input_scale`` into its image. A larger scale than the
    calibration drives outputs into saturation."""
    net = load_network(spec)
    rng = np.random.default_rng(random.getrandbits(32))
    calib = rng.normal(0, 1, (2,) + tuple(net.input_shape))
    prog = compiler.compile_network(net, cfg, calib, insel=insel)
    compiler.load_input(prog, calib[0] * input_scale)
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
SMOKE = ("conv_k3_s1_pad", "conv_ovsf_half", "fc_raw", "conv_pool2")


class DirectedSeq(uvm_sequence):
    """The directed programs (all, or the names given)."""

    def __init__(self, name="directed", names=None):
        super().__init__(name)
        self.names = list(names or DIRECTED)

    async def body(self):
        cfg = _cfg()
        for n in self.names:
            spec, insel = DIRECTED[n]
            spec = dict(spec, name=n, weights={"seed": random.getrandbits(16)})
            item = make_program(spec, cfg, n, insel=insel, stall=_stall())
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
        self.insel = "auto"
        self.scale = 1.0
        self.add_rand("kind", ["conv", "conv", "conv", "fc"])
        self.add_rand("cin", list(range(1, 3 * cfg.pn + 3)))
        self.add_rand("cout", list(range(1, 3 * cfg.pm + 3)))
        self.add_rand("h", list(range(1, 21)))
        self.add_rand("w", list(range(1, 21)))
        self.add_rand("k", list(isa.KERNELS))
        self.add_rand("stride", list(isa.STRIDES))
        self.add_rand("pad_mode", ["none", "same", "asym"])
        self.add_rand("pool", ["none", "none", "2x2s2", "3x3s2", "3x3s2p1"])
        self.add_rand("rho", list(RHOS))
        self.add_rand("insel", ["auto", "on", "off"])
        self.add_rand("scale", [1.0, 1.0, 8.0, 1e-3])
        # the kernel fits the padded input; FC is 1x1 without pool
        # Constraints over single variables keep the solver fast; the
        # dependent rules (an FC is 1x1 without pool; the kernel fits the
        # padded input, stride at most K) are applied in post_randomize.
        self.add_constraint(lambda rho: rho * self.cfg.ovsf_len >= 1)

    def post_randomize(self):
        if self.kind == "fc":
            self.k, self.stride, self.pool = 1, 1, "none"
        if self.k > 1 and self.stride > self.k:
            self.stride = self.k
        reach = 2 * (self.k // 2) if self.pad_mode != "none" else 0
        self.h = max(self.h, self.k - reach)
        self.w = max(self.w, self.k - reach)

    def spec(self, seed: int) -> dict:
        k, s = self.k, self.stride
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
        if random.random() < 0.6:
            lay.append({"type": "relu"})
        pk, ps, pp = {"2x2s2": (2, 2, 0), "3x3s2": (3, 2, 0), "3x3s2p1": (3, 2, 1)}.get(self.pool, (0, 0, 0))
        if pk and pk <= min(oh, ow) + 2 * pp:
            lay.append({"name": "pool", "type": "maxpool", "kernel": pk, "stride": ps, "pad": pp})
        return {"name": "rand_conv", "input_shape": [self.cin, h, w], "weights": {"seed": seed}, "layers": lay}


class RandomLayerSeq(uvm_sequence):
    def __init__(self, name="random_layers", count=3):
        super().__init__(name)
        self.count = count

    async def body(self):
        cfg = _cfg()
        p = LayerParams(cfg)
        for i in range(self.count):
            p.randomize()
            seed = random.getrandbits(16)
            label = (f"layer{i}: {p.kind} cin {p.cin} cout {p.cout} {p.h}x{p.w} k{p.k} s{p.stride} "
                     f"pad {p.pad_mode} pool {p.pool} rho {p.rho} insel {p.insel} scale {p.scale}")
            item = make_program(p.spec(seed), cfg, label, insel=p.insel, input_scale=p.scale, stall=_stall())
            await self.start_item(item)
            await self.finish_item(item)


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


class IllegalDescriptorSeq(uvm_sequence):
    """Programs with one illegal field: the engine must stop with golden's code."""
    CASES = [(1, "k", 4), (0, "magic", 0x5A), (1, "out_h", 9), (0, "tr", 0), (1, "in_addr", 0x1004),
             (1, "stride", 0), (0, "n_codes", 3)]

    async def body(self):
        cfg = _cfg()
        spec, insel = DIRECTED["conv_then_fc"]
        for layer, field, value in self.CASES:
            spec = dict(spec, name="illegal", weights={"seed": 3})
            item = make_program(spec, cfg, f"illegal {field}={value} at layer {layer}", insel=insel,
                                corrupt=(layer, field, value))
            if item.expect_err == 0:
                continue   # this field is legal for this layer
            await self.start_item(item)
            await self.finish_item(item)
