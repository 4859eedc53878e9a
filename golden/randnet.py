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


# ------------------------------------------------------------ graph networks

#: Kernels of the fire-module branches.
GRAPH_KERNELS = (1, 3, 5)


#: The graph features random_graph_network adds to the fire modules (issue
#: 12), each drawn only where the engine's RTL runs it (engine_features):
#:   residual  ResNet blocks: a conv pair added to the block input (identity)
#:             or to a 1x1 projection of it (stride 1 or 2), ReLU after or not;
#:             a final FC with a second FC of its input added
#:   add       a standalone add of two tensors no conv can take
#:   avgpool   average pools (3x3 or 2x2, padding counted or not, sometimes
#:             unequal pads) and max pools with unequal pads
#:   gap       a global average pool before the last layer
#: and (issue 13) grouped convolution:
#:   depthwise  depthwise convolutions (groups = in_c = out_c): K 1/3/5/7,
#:              stride 1-2 (now and then 3 or 4), same or unequal pads, ReLU,
#:              ReLU6 or nothing after, OVSF now and then; a MobileNet-v2
#:              inverted residual (1x1 expand, depthwise, 1x1 project, the
#:              add when the shapes allow) or a depthwise layer alone, with
#:              its input added now and then
#:   grouped    grouped convolutions that are not depthwise (ShuffleNet's
#:              grouped 1x1, ResNeXt's 3x3, a depthwise channel multiplier):
#:              the compiler lowers them to dense layers (golden/passes/groups.py)
GRAPH_FEATURES = ("residual", "add", "avgpool", "gap", "depthwise", "grouped")

#: A descriptor that uses each feature (what isa.unsupported_features is asked).
_FEATURE_PROBES = {
    "residual": [{"kind": int(isa.Kind.CONV), "res": 1}],
    "add": [{"kind": int(isa.Kind.CONV), "res": 1}],
    "avgpool": [{"kind": int(isa.Kind.POOL), "pool_avg": 1, "pool_k": 3, "pool_pad": 1},
                {"kind": int(isa.Kind.POOL), "pool_asym": 1, "pool_k": 3, "pool_pad": 1}],
    "gap": [{"kind": int(isa.Kind.POOL), "pool_avg": 1, "pool_global": 1}],
    "depthwise": [{"kind": int(isa.Kind.CONV), "groups": 12, "in_c": 12, "out_c": 12}],
    "grouped": [{"kind": int(isa.Kind.CONV), "groups": 4, "in_c": 16, "out_c": 16},
                {"kind": int(isa.Kind.CONV), "groups": 6, "in_c": 6, "out_c": 12}],
}


def _compiler_lowers_groups() -> bool:
    from .passes import groups
    return groups.LOWER


def engine_features() -> tuple:
    """The GRAPH_FEATURES this engine's RTL runs now (none of their probe
    descriptors has an isa.unsupported_features entry): the flag that keeps
    what the RTL cannot run yet out of the random graphs. Grouped
    convolutions the RTL refuses run as long as the compiler lowers them to
    dense layers."""
    def runs(f):
        if f == "grouped" and _compiler_lowers_groups():
            return True
        return not any(isa.unsupported_features(p) for p in _FEATURE_PROBES[f])
    return tuple(f for f in GRAPH_FEATURES if runs(f))


def graph_network_problem(spec: dict, cfg, calib_seed: int = 0, engine: bool = True) -> str | None:
    """Why ``spec`` is not a program this engine's RTL runs (None: it is):
    it does not load or compile, or a descriptor is not accepted
    (``isa.validate(d, cfg) != Err.NONE``, e.g. UNSUPPORTED for a group or
    whatever the RTL does not run yet). ``engine=False``: what the
    functional model runs (every feature of the instruction set)."""
    from . import compiler
    from .errors import UzError
    from .network import load_network
    try:
        net = load_network(spec)
        calib = np.random.default_rng(calib_seed).normal(0, 1, (2,) + tuple(net.input_shape))
        prog = compiler.compile_network(net, cfg, calib)
    except UzError as e:
        return f"does not compile: {e}"
    for i, q in enumerate(prog.layers):
        d = isa.Descriptor.decode(prog.image.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
        err = isa.validate(d, cfg, engine)
        if err != isa.Err.NONE:
            what = "; ".join(w for _, w in isa.unsupported_features(d)) if err == isa.Err.UNSUPPORTED else ""
            return f"layer {i} ({q.name}) is refused with {err.name}{f' ({what})' if what else ''}"
    return None


def random_graph_network(rng, cfg, max_modules: int = 2, max_hw: int = 10, max_c: int | None = None,
                         allow_ovsf: bool = True, tries: int = 10, features=None, engine: bool = True) -> dict:
    """A network spec (graph form, see golden.network) of 1..max_modules
    fire-module-like blocks that this engine runs (channel slices and ReLU6
    only), for ``cfg``. ``rng``: a numpy Generator, or an int seed (the same
    seed always gives the same network).

    Each module: a squeeze conv (K 1 or 3, sometimes a fused max pool), 2-3
    parallel convs of K in GRAPH_KERNELS (same padding, so their planes
    agree) concatenated, sometimes two of them in a nested concat first,
    sometimes every branch with the same fused 2x2/2 pool; sometimes a side
    reader (a conv, or half the time a 3x3/1 pad 1 max pool) of one part alone, which with
    a consumer of the concat makes a second concat, fire style; sometimes a
    standalone max pool on the module's output. Channel counts are
    multiples of PN or not (then a concat has gaps); every conv and FC is
    followed by ReLU (about 45%), ReLU6 (35%) or nothing; OVSF now and
    then. The network ends in a 1x1 conv or an FC (ReLU6 after it half
    the time).

    ``features``: which of GRAPH_FEATURES to add (residual blocks and
    standalone adds after a module, average pools, a global average pool
    before the last layer); by default engine_features(), what the RTL runs
    now. Their choices come from a second generator seeded from the same
    seed, so without them a seed gives the network it gave before they
    existed. ``engine=False`` checks the draws against the functional model
    instead of the RTL (any feature, for golden-only tests).

    Constraints that keep every descriptor legal for the RTL: a concat's
    parts are computed layers (never the network input) and each is part of
    one concat (a nested concat's parts through it); ReLU/ReLU6 follow their
    conv directly as its only reader (so they fuse; else they would be a
    POOL 1x1 copy); no add, group, shuffle or average pool. The network is
    compiled and every descriptor validated here: a draw that is not
    accepted is drawn again (``tries`` times), then a ValueError names the
    refused layer. Nothing unsupported is ever returned."""
    if isinstance(rng, np.random.Generator):
        tag = int(rng.integers(1 << 30))
    else:
        tag = int(rng)
        rng = np.random.default_rng(tag)
    name = f"graph{tag}"
    feats = engine_features() if features is None else tuple(features)
    unknown = sorted(set(feats) - set(GRAPH_FEATURES))
    if unknown:
        raise ValueError(f"random_graph_network: unknown features {unknown}; known: {GRAPH_FEATURES}")
    # the new features' own streams: the fire modules' draws stay as they
    # were, and so do issue 12's when no grouped feature is asked for
    side = np.random.default_rng([tag, 12])
    gside = np.random.default_rng([tag, 13])
    problem = None
    for _ in range(tries):
        spec = _draw_graph(rng, cfg, name, max_modules, max_hw, max_c or 2 * cfg.pn + 3, allow_ovsf,
                           feats, side, gside)
        problem = graph_network_problem(spec, cfg, engine=engine)
        if problem is None:
            return spec
    raise ValueError(f"random_graph_network: no network the engine accepts in {tries} draws; "
                     f"the last: {problem}")


def _draw_graph(rng, cfg, name, max_modules, max_hw, max_c, allow_ovsf, feats=(), xrng=None, grng=None) -> dict:
    pn = cfg.pn
    rint = lambda lo, hi: int(rng.integers(lo, hi + 1))     # noqa: E731
    c, h, w = rint(1, max_c), rint(5, max_hw), rint(5, max_hw)
    spec = {"name": name, "input_shape": [c, h, w], "weights": {"seed": rint(0, 1 << 16)}, "layers": []}
    lay = spec["layers"]
    rhos = [r for r in (0.5, 0.25) if r * cfg.ovsf_len >= 1]

    def chans():
        # a multiple of PN (no gap) or any count (a gap unless it is one)
        return int(rng.choice([pn, 2 * pn])) if rng.random() < 0.4 else rint(1, max_c)

    def act(src, relu6=0.35):
        """ReLU, ReLU6 or nothing right after ``src``; the tensor's name."""
        r = rng.random()
        if r < 0.8 - relu6:
            lay.append({"name": f"{src}_relu", "type": "relu", "inputs": [src]})
        elif r < 0.8:
            lay.append({"name": f"{src}_relu6", "type": "relu6", "inputs": [src]})
        else:
            return src
        return lay[-1]["name"]

    def conv(nm, src, k, pool=None):
        layer = {"name": nm, "type": "conv", "out_channels": chans(), "kernel": k, "pad": k // 2, "inputs": [src]}
        if allow_ovsf and rhos and rng.random() < 0.2:
            layer["rho"] = float(rng.choice(rhos))
        lay.append(layer)
        out = act(nm)
        if pool is not None:
            pk, ps, pp = pool
            lay.append({"name": f"{nm}_pool", "type": "maxpool", "kernel": pk, "stride": ps, "pad": pp,
                        "inputs": [out]})
            out = f"{nm}_pool"
        return out

    def pool_draw():
        """A max pool the engine runs, or None if the plane is too small."""
        if min(h, w) < 4:
            return None
        return [(2, 2, 0), (3, 2, 0), (3, 2, 1)][rint(0, 2)]

    def after_pool(p):
        return layers.out_size(h, p[0], p[1], p[2], p[2]), layers.out_size(w, p[0], p[1], p[2], p[2])

    cur = "input"
    for m in range(rint(1, max_modules)):
        sq_pool = pool_draw() if rng.random() < 0.3 else None
        t = conv(f"m{m}_sq", cur, int(rng.choice([1, 1, 3])), sq_pool)
        if sq_pool:
            h, w = after_pool(sq_pool)
        br_pool = (2, 2, 0) if rng.random() < 0.2 and min(h, w) >= 4 else None
        branches = [conv(f"m{m}_e{b}", t, int(rng.choice(GRAPH_KERNELS)), br_pool) for b in range(rint(2, 3))]
        if br_pool:
            h, w = after_pool(br_pool)
        parts, inner = list(branches), None
        if len(branches) == 3 and rng.random() < 0.4:
            inner = f"m{m}_cat_in"
            lay.append({"name": inner, "type": "concat", "inputs": branches[:2]})
            parts = [inner, branches[2]] if rng.random() < 0.5 else [branches[2], inner]
        cat = f"m{m}_cat"
        lay.append({"name": cat, "type": "concat", "inputs": parts})
        out = cat
        if rng.random() < 0.5:
            # fire style: a reader of one part alone (an input slice) and a
            # consumer of the concat, concatenated
            src = str(rng.choice(branches + ([inner] if inner else [])))
            if rng.random() < 0.5:
                side = f"m{m}_side"
                lay.append({"name": side, "type": "maxpool", "kernel": 3, "stride": 1, "pad": 1, "inputs": [src]})
            else:
                side = conv(f"m{m}_side", src, int(rng.choice([1, 3])))
            cons = conv(f"m{m}_cons", cat, int(rng.choice([1, 3])))
            out = f"m{m}_cat2"
            lay.append({"name": out, "type": "concat", "inputs": [side, cons] if rng.random() < 0.5 else [cons, side]})
        p = pool_draw() if rng.random() < 0.25 else None
        if p:
            lay.append({"name": f"m{m}_pool", "type": "maxpool", "kernel": p[0], "stride": p[1], "pad": p[2],
                        "inputs": [out]})
            out = f"m{m}_pool"
            h, w = after_pool(p)
        cur = out
        if feats:
            cur, h, w = _graph_extras(xrng, spec, cur, m, h, w, pn, max_c, feats)
        if {"depthwise", "grouped"} & set(feats):
            cur, h, w = _group_extras(grng, spec, cur, m, h, w, pn, max_c, feats, rhos if allow_ovsf else [])
    if "gap" in feats and xrng.random() < 0.35:
        lay.append({"name": "gap", "type": "gap", "inputs": [cur]})
        cur, h, w = "gap", 1, 1
    if rng.random() < 0.5:
        layer = {"name": "fc", "type": "fc", "out_features": rint(1, 20), "inputs": [cur]}
        if allow_ovsf and rng.random() < 0.2:
            layer["rho"] = 0.5
        lay.append(layer)
        out = act("fc", relu6=0.5)
        if "residual" in feats and xrng.random() < 0.3:
            # a second FC of the same input added to the first: a residual on an FC
            lay.append({"name": "fc2", "type": "fc", "out_features": layer["out_features"], "inputs": [cur]})
            lay.append({"name": "fc_add", "type": "add", "inputs": [out, "fc2"]})
    else:
        conv("last", cur, 1)
    return spec


def _graph_extras(side, spec, cur, m, h, w, pn, max_c, feats):
    """After module ``m`` (output ``cur``, h x w): now and then a residual
    block, a standalone add and an average (or unequal-pad max) pool, drawn
    from ``side``. Returns the new output tensor and its plane."""
    from .network import load_network
    lay = spec["layers"]
    rint = lambda lo, hi: int(side.integers(lo, hi + 1))     # noqa: E731

    def channels_of(t):
        # the tensor's logical channels (a concat's: the sum of its parts)
        return load_network(dict(spec, layers=lay + [{"name": "_probe", "type": "relu", "inputs": [t]}])) \
            .shape(t)[0]

    def conv(nm, src, c, k, stride=1, act=True):
        pad = k // 2
        lay.append({"name": nm, "type": "conv", "out_channels": c, "kernel": k, "stride": stride, "pad": pad,
                    "inputs": [src]})
        if act:
            r = side.random()
            if r < 0.6:
                lay.append({"name": f"{nm}_relu", "type": "relu", "inputs": [nm]})
                return f"{nm}_relu"
            if r < 0.8:
                lay.append({"name": f"{nm}_relu6", "type": "relu6", "inputs": [nm]})
                return f"{nm}_relu6"
        return nm

    if "residual" in feats and side.random() < 0.6:
        c = channels_of(cur)
        proj = side.random() < 0.4
        stride = 2 if proj and min(h, w) >= 4 and side.random() < 0.6 else 1
        cout = (int(side.choice([pn, 2 * pn])) if side.random() < 0.5 else rint(1, max_c)) if proj else c
        a = conv(f"b{m}_a", cur, cout, int(side.choice([1, 3, 3])), stride)
        b = conv(f"b{m}_b", a, cout, int(side.choice([1, 3, 3, 5])), act=False)
        short = conv(f"b{m}_sc", cur, cout, 1, stride, act=False) if proj else cur
        # the add's operands in either order: the compiler fuses it into the later conv
        ops = [b, short] if side.random() < 0.5 else [short, b]
        lay.append({"name": f"b{m}_add", "type": "add", "inputs": ops})
        cur = f"b{m}_add"
        r = side.random()
        if r < 0.55:
            lay.append({"name": f"b{m}_relu", "type": "relu", "inputs": [cur]})
            cur = f"b{m}_relu"
        elif r < 0.7:
            lay.append({"name": f"b{m}_relu6", "type": "relu6", "inputs": [cur]})
            cur = f"b{m}_relu6"
        if stride == 2:
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    if "add" in feats and side.random() < 0.3:
        # two activated convs of one input: neither can take the add
        c = rint(1, max_c)
        p = conv(f"s{m}_p", cur, c, int(side.choice([1, 3])), act=False)
        q = conv(f"s{m}_q", cur, c, int(side.choice([1, 3])), act=False)
        for t in (p, q):
            lay.append({"name": f"{t}_relu", "type": "relu", "inputs": [t]})
        lay.append({"name": f"s{m}_add", "type": "add", "inputs": [f"{p}_relu", f"{q}_relu"]})
        cur = f"s{m}_add"
    if "avgpool" in feats and side.random() < 0.4 and min(h, w) >= 3:
        k = int(side.choice([2, 3, 3]))
        s = rint(1, 2)
        if side.random() < 0.3:
            pads = [rint(0, k - 1) for _ in range(4)]         # unequal pads
        else:
            pads = [rint(0, k - 1)] * 4
        kind = "avgpool" if side.random() < 0.75 else "maxpool"
        if kind == "maxpool" and len(set(pads)) == 1:
            pads = [pads[0], pads[0], 0, k - 1]               # a max pool here is for unequal pads
        layer = {"name": f"p{m}_pool", "type": kind, "kernel": k, "stride": s, "pad": pads, "inputs": [cur]}
        if kind == "avgpool":
            layer["count_include_pad"] = bool(side.random() < 0.5)
        lay.append(layer)
        cur = layer["name"]
        h = (h + pads[0] + pads[1] - k) // s + 1
        w = (w + pads[2] + pads[3] - k) // s + 1
    return cur, h, w


def _channels_of(spec, t):
    """A tensor's logical channels (a concat's: the sum of its parts)."""
    from .network import load_network
    probe = {"name": "_probe", "type": "relu", "inputs": [t]}
    return load_network(dict(spec, layers=spec["layers"] + [probe])).shape(t)[0]


def _group_extras(rng, spec, cur, m, h, w, pn, max_c, feats, rhos):
    """After module ``m`` (output ``cur``, h x w): now and then depthwise
    layers (a MobileNet-v2 inverted residual, or a depthwise layer alone,
    its input added now and then) and a grouped convolution that is not
    depthwise, drawn from ``rng``. Returns the new output and its plane."""
    lay = spec["layers"]
    rint = lambda lo, hi: int(rng.integers(lo, hi + 1))     # noqa: E731

    def act(src, none=0.25):
        r = rng.random()
        if r < none:
            return src
        kind = "relu6" if r < none + (1 - none) / 2 else "relu"
        lay.append({"name": f"{src}_{kind}", "type": kind, "inputs": [src]})
        return f"{src}_{kind}"

    def geometry(k_choices, allow_stride=True):
        """A kernel that fits, a stride, pads (same, or unequal per side)
        and the output plane; same pads and stride 1 keep the plane."""
        k = int(rng.choice([x for x in k_choices if x <= min(h, w) + 2 * (x // 2)] or [1]))
        r = rng.random()
        s = 1
        if allow_stride and r < 0.35 and min(h, w) >= 3:
            s = 2
        elif allow_stride and r < 0.42 and min(h, w) >= 5:
            s = rint(3, 4)
        pads = [k // 2] * 4
        if k > 1 and rng.random() < 0.25:
            pads = [rint(0, k - 1) for _ in range(4)]
            if k > h + pads[0] + pads[1] or k > w + pads[2] + pads[3]:
                pads = [k // 2] * 4
        return k, s, pads, layers.out_size(h, k, s, pads[0], pads[1]), layers.out_size(w, k, s, pads[2], pads[3])

    def conv(nm, src, cout, k=1, s=1, pads=0, groups=1):
        layer = {"name": nm, "type": "conv", "out_channels": cout, "kernel": k, "stride": s, "pad": pads,
                 "inputs": [src]}
        if groups > 1:
            layer["groups"] = groups
        if rhos and rng.random() < 0.25:
            layer["rho"] = float(rng.choice(rhos))
        lay.append(layer)
        return nm

    if "depthwise" in feats and rng.random() < 0.6:
        c = _channels_of(spec, cur)
        k, s, pads, oh, ow = geometry((1, 3, 3, 3, 5, 7))
        keeps = s == 1 and (oh, ow) == (h, w)
        if rng.random() < 0.5:
            # inverted residual: expand, depthwise, project (and the add)
            ce = int(rng.choice([pn, 2 * pn])) if rng.random() < 0.3 else rint(2, max_c)
            e = act(conv(f"d{m}_exp", cur, ce), none=0.1)
            d = act(conv(f"d{m}_dw", e, ce, k, s, pads, groups=ce), none=0.2)
            res = keeps and rng.random() < 0.7
            p = conv(f"d{m}_proj", d, c if res else rint(1, max_c))
            if res:
                lay.append({"name": f"d{m}_add", "type": "add", "inputs": [p, cur] if rng.random() < 0.5 else [cur, p]})
                p = f"d{m}_add"
            cur = p
        else:
            d = conv(f"d{m}_dw", cur, c, k, s, pads, groups=c)
            if keeps and rng.random() < 0.4:
                # the compiler fuses the add into the depthwise layer (res)
                lay.append({"name": f"d{m}_add", "type": "add", "inputs": [d, cur]})
                d = f"d{m}_add"
            cur = act(d)
        h, w = oh, ow
    if "grouped" in feats and rng.random() < 0.35:
        c = _channels_of(spec, cur)
        g = rint(2, 4)
        if rng.random() < 0.5:
            # a 1x1 conv to a channel count the groups divide (ShuffleNet style)
            c = g * int(rng.choice([1, 2, 3, pn // g or 1]))
            cur = act(conv(f"g{m}_pre", cur, c), none=0.3)
        divisors = [x for x in range(2, c + 1) if c % x == 0]
        if not divisors:
            return cur, h, w
        g = int(rng.choice(divisors)) if g not in divisors else g
        cout = g * rint(1, 3)
        if g == c and cout == c:
            cout = 2 * c                # a channel multiplier: grouped, not depthwise
        k, s, pads, oh, ow = geometry((1, 1, 3, 3, 5), allow_stride=rng.random() < 0.3)
        cur = act(conv(f"g{m}_conv", cur, cout, k, s, pads, groups=g))
        h, w = oh, ow
    return cur, h, w
