"""Seeded random legal networks: the constrained-random source of whole
programs for the regression (the same seed always gives the same network)."""
from __future__ import annotations

import numpy as np

from . import isa, layers


def random_network(seed: int, max_layers: int = 4, max_hw: int = 20, max_c: int = 40,
                   allow_ovsf: bool = True, ovsf_len: int = 16) -> dict:
    """A network spec (see golden.network) of 1..max_layers conv layers with
    random K/stride/pad/pool, optionally followed by one or two FC layers."""
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, max_c + 1))
    h = int(rng.integers(6, max_hw + 1))
    w = int(rng.integers(6, max_hw + 1))
    spec = {"name": f"random{seed}", "input_shape": [c, h, w], "weights": {"seed": seed}, "layers": []}
    n_conv = int(rng.integers(1, max_layers + 1))
    for i in range(n_conv):
        ks = [k for k in isa.KERNELS if k <= min(h, w) + 2 * (k // 2)]
        k = int(rng.choice(ks))
        s = int(rng.integers(1, 5)) if k > 1 else int(rng.integers(1, 3))
        pads = [int(rng.integers(0, k)) for _ in range(4)] if rng.random() < 0.3 else [k // 2] * 4
        if k > h + pads[0] + pads[1] or k > w + pads[2] + pads[3]:
            pads = [k // 2] * 4
        oh = layers.out_size(h, k, s, pads[0], pads[1])
        ow = layers.out_size(w, k, s, pads[2], pads[3])
        if oh < 1 or ow < 1:
            s, pads = 1, [k // 2] * 4
            oh, ow = h, w
        cout = int(rng.integers(1, max_c + 1))
        layer = {"name": f"conv{i}", "type": "conv", "out_channels": cout, "kernel": k, "stride": s, "pad": pads}
        if allow_ovsf and rng.random() < 0.3:
            layer["rho"] = float(rng.choice([1 / ovsf_len * m for m in (1, 2, 4, 8, 16) if m <= ovsf_len]))
        spec["layers"].append(layer)
        if rng.random() < 0.3:
            spec["layers"].append({"name": f"bn{i}", "type": "batchnorm"})
        if rng.random() < 0.7:
            spec["layers"].append({"name": f"relu{i}", "type": "relu"})
        h, w = oh, ow
        if rng.random() < 0.4:
            pk = int(rng.choice([2, 3]))
            ps = 2 if rng.random() < 0.8 else int(rng.integers(1, 4))
            pp = int(rng.integers(0, pk)) if rng.random() < 0.3 else 0
            if pk <= min(h, w) + 2 * pp:
                spec["layers"].append({"name": f"pool{i}", "type": "maxpool", "kernel": pk, "stride": ps, "pad": pp})
                h, w = layers.out_size(h, pk, ps, pp, pp), layers.out_size(w, pk, ps, pp, pp)
        c = cout
    for j in range(int(rng.integers(0, 3))):
        layer = {"name": f"fc{j}", "type": "fc", "out_features": int(rng.integers(1, 50))}
        if allow_ovsf and rng.random() < 0.3:
            layer["rho"] = 0.5
        spec["layers"].append(layer)
        if rng.random() < 0.5:
            spec["layers"].append({"name": f"fcrelu{j}", "type": "relu"})
    return spec
