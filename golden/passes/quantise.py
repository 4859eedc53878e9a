"""The quantise pass: fractional lengths for every tensor and layer (after
Qiu et al., FPGA 2016) and the integer layers (golden.compiler.QLayer).

    quantise(graph, calib, cfg, static=False, force_ovsf=False) -> Quantised
    quantize_network(elayers, calib, cfg, static, force_ovsf)  the chain form
                                                               (network.EngineLayer list)
    fl_groups(graph)     tensors that must share one format

Rules, as the chain compiler always had them:

* Weights and biases: the fl minimising their own error (quant.best_fl).
* Layer outputs: greedy in program order. A layer takes its inputs already
  quantised and tries each candidate output fl; it keeps the one whose
  dequantised output is closest (sum of absolute errors) to the float
  reference on the calibration images. The reference is the engine layers
  run in real arithmetic (golden.passes.fuse.float_forward), which equals
  the folded network's ops (network.forward_float_all) up to float rounding.
* A POOL keeps its input's fl.

Graph additions:

* Tensors that share memory share a format: the parts of a concatenation
  and the concatenation (nested ones too), and the input and output of a
  POOL (a copy, a standalone ReLU, a pool). When such a group holds a
  concatenation, its fl is chosen once, from the float references of all
  its memory (quant.best_fl on the concatenated values), and every producer
  writes at that fl; the network input joins in when it is a part.
* A residual operand at ``fl_res`` joins the accumulator at ``fl_acc = fl_in
  + fl_w``: ``res_shift = fl_res - fl_acc`` (an exact left shift when
  fl_acc >= fl_res, else a rounding right shift). The shift must not make
  the alignment saturate (``-res_shift <= acc_bits - data_bits``), and the
  accumulator bound counts the largest aligned residual.
* A standalone add (an identity layer) uses the weight 2^m at fl_w = m with
  m = fl_res - fl_in when positive (at most data_bits - 2), so both operands
  meet on the finer grid by exact shifts; its bias is zero.
* A clip bound is quantised at the output's fl: ``clip_hi =
  arith.clip_bounds(0, hi, fl_out, bits)[1]``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .. import arith, isa, layers, memimage, ovsf, quant
from ..config import EngineConfig
from ..errors import NetworkError, UzError
from ..network import INPUT
from .fuse import GLayer, Graph, Tensor, densify, float_forward, pool_int, tensor_value, _shuffle_perm


# ---------------------------------------------------------------- helpers

def check_rho(rho: float, length: int, name: str) -> None:
    n = rho * length
    if not (0 < rho <= 1) or abs(n - round(n)) > 1e-9:
        raise NetworkError(f"layer {name!r}: rho={rho} gives rho*L={n:g} codes with L={length}; "
                           f"rho*L must be a whole number in 1..{length}")


def check_fits(max_abs: float, bits: int, what: str) -> None:
    """Refuse values so large that even the smallest legal fl saturates them:
    clipping the fl there would give garbage silently."""
    if max_abs > 0 and math.isfinite(max_abs) and quant.range_fl(max_abs, bits) < arith.FL_MIN:
        raise NetworkError(f"{what}: magnitudes up to {max_abs:.3g} need fractional length "
                           f"{quant.range_fl(max_abs, bits)} to fit {bits} bits, below the smallest "
                           f"legal fl {arith.FL_MIN}")


def fit_fl(values, bits: int, what: str) -> int:
    v = np.asarray(values, dtype=np.float64)
    check_fits(float(np.abs(v).max()) if v.size else 0.0, bits, what)
    return quant.best_fl(v, bits)


def fc_weight_to_layout(w: np.ndarray, fc_in_shape, g: int) -> np.ndarray:
    """Permute an FC weight (Cout, C*H*W) to the grouped input layout, zero
    columns for pad channels. Returns (Cout, Cin_eff, 1, 1)."""
    order = memimage.fc_input_order(fc_in_shape, g)
    w2 = w.reshape(w.shape[0], -1)
    out = np.zeros((w2.shape[0], order.size), dtype=w2.dtype)
    valid = order >= 0
    out[:, valid] = w2[:, order[valid]]
    return out.reshape(w2.shape[0], order.size, 1, 1)


def flatten_for_fc(x: np.ndarray, g: int) -> np.ndarray:
    """The vector an FC reads: the (C,H,W) tensor in grouped layout order."""
    return memimage.pack_act(x, g).reshape(-1, 1, 1)


def acc_bound(w_q: np.ndarray, b_aligned: np.ndarray, data_bits: int) -> int:
    """Worst-case |accumulator| over every partial sum of any input: the sum
    of |w| times the largest input magnitude, plus |bias| (which the engine
    adds first). Python ints: exact."""
    per_out = np.abs(w_q).reshape(w_q.shape[0], -1).sum(axis=1)
    worst = 0
    for o in range(w_q.shape[0]):
        worst = max(worst, int(per_out[o]) * (1 << (data_bits - 1)) + abs(int(b_aligned[o])))
    return worst


def residual_bound(res_shift: int, data_bits: int, acc_bits: int) -> int:
    """The largest magnitude a residual operand adds to the accumulator once aligned."""
    return abs(int(arith.align_to_acc(arith.qmin(data_bits), res_shift, acc_bits)))


def shuffled(x: np.ndarray, groups: int) -> np.ndarray:
    """The input a layer with in_shuffle = groups computes on."""
    x = x.copy()
    c = x.shape[0]
    x[:c] = x[_shuffle_perm(c, groups)]
    return x


def check_calib(calib) -> np.ndarray:
    calib = np.asarray(calib, dtype=np.float64)
    if calib.ndim != 4:
        raise UzError(f"calibration data must be (N, C, H, W), got shape {calib.shape}")
    if not np.all(np.isfinite(calib)):
        raise UzError("calibration data holds NaN or infinite values")
    if calib.shape[0] == 0:
        raise UzError("calibration data holds no images")
    return calib


# ----------------------------------------------------------- format groups

def fl_groups(graph: Graph) -> tuple:
    """(tensor -> group id, {group ids that hold a concatenation}). Tensors
    of one memory buffer and the input/output of each POOL share a group."""
    parent = {n: n for n in graph.tensors}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    for t in graph.tensors.values():
        union(t.name, t.buffer or t.name)
    for L in graph.layers:
        if L.kind == isa.Kind.POOL:
            union(L.input, L.output)
    group = {n: find(n) for n in graph.tensors}
    # a banded tensor (a lowered grouped layer's output) takes its layer's
    # format, chosen as for the grouped layer, unless a concat holds it
    shared = {group[t.name] for t in graph.tensors.values() if t.parts and not t.banded}
    return group, shared


@dataclass
class Quantised:
    fl_input: int
    layers: list                      # [QLayer]
    fl: dict = field(default_factory=dict)   # tensor -> fl


def quantise(graph: Graph, calib: np.ndarray, cfg: EngineConfig, static: bool = False,
             force_ovsf: bool = False) -> Quantised:
    """Choose every format and build the integer layers (QLayer, tiles not
    yet set). ``static``: one fl for all weights, one for all biases, one for
    all activations (for comparison)."""
    from ..compiler import QLayer
    bits = cfg.data_bits
    calib = check_calib(calib)
    floats = [float_forward(graph, x) for x in calib]        # [image]{tensor: physical float}
    tensors = graph.tensors
    g = cfg.pn

    if static:
        ws = [L.network_conv()[0].ravel() for L in graph.layers if L.weight is not None and not L.synthetic]
        all_w = np.concatenate(ws) if ws else np.zeros(1)
        bs = [L.bias.ravel() for L in graph.layers if L.bias is not None and not L.synthetic]
        all_b = np.concatenate(bs) if bs else np.zeros(1)
        acts = [calib.ravel()] + [fv[L.output].ravel() for fv in floats for L in graph.layers]
        s_fl_w = fit_fl(all_w, bits, "weights")
        s_fl_b = fit_fl(all_b, bits, "biases")
        s_fl_a = fit_fl(np.concatenate(acts), bits, "activations")
        fl_in0 = s_fl_a
    else:
        fl_in0 = fit_fl(calib, bits, "network input")

    group, shared = fl_groups(graph)
    fixed = {}
    for gid in sorted(shared):
        roots = sorted({t.buffer for t in tensors.values() if group[t.name] == gid})
        if static:
            fixed[gid] = s_fl_a
            continue
        vals = np.concatenate([tensor_value(tensors, fv, r).ravel() for fv in floats for r in roots])
        fixed[gid] = fit_fl(vals, bits, f"concatenation {', '.join(repr(r) for r in roots)}")
        arith.check_fl(fixed[gid], f"concatenation {roots[0]!r}: fractional length")
    if group[INPUT] in fixed:
        fl_in0 = fixed[group[INPUT]]

    fl = {INPUT: fl_in0}

    def fl_of(name):
        if name not in fl:
            fl[name] = fixed[group[name]]     # a concatenation, written at its group's fl
        return fl[name]

    qv = [{INPUT: arith.quantize(x, fl_in0, bits)} for x in calib]
    last_read = _last_reads(graph)
    out = []

    def one(L):
        """Formats and integer layer of L (its output values go to qv)."""
        fl_in = fl_of(L.input)
        xq = [tensor_value(tensors, v, L.input) for v in qv]
        if L.in_shuffle > 1:
            xq = [shuffled(x, L.in_shuffle) for x in xq]
        ref = np.stack([tensor_value(tensors, fv, L.output) for fv in floats])
        fixed_out = fixed.get(group[L.output])
        common = dict(groups=L.groups, in_shuffle=L.in_shuffle, in_tensor=L.input, out_tensor=L.output,
                      res_tensor=L.residual, synthetic=L.synthetic, notes=list(L.notes))
        if L.kind == isa.Kind.POOL:
            hi = None if L.clip is None else arith.clip_bounds(0.0, L.clip, fl_in, bits)[1]
            yq = [pool_int(L.pool, x, bits) for x in xq]
            if L.relu:
                yq = [arith.relu(y) for y in yq]
            if hi is not None:
                yq = [arith.clip(y, 0, hi) for y in yq]
            q = QLayer(L.name, L.kind, L.in_shape, L.out_shape, fl_in, fl_in, relu=L.relu, pool=L.pool,
                       source=L.source, clip_hi=hi, **common)
            fl[L.output] = fl_in
            for v, y in zip(qv, yq):
                v[L.output] = y
            return q

        if L.kind == isa.Kind.FC:
            w = fc_weight_to_layout(L.weight[:, :, 0, 0], L.fc_in_shape, g)
            in_shape = (w.shape[1], 1, 1)
            x_eng = [flatten_for_fc(x, g) for x in xq]
        else:
            w = L.weight
            in_shape = L.in_shape
            x_eng = xq
        cout = w.shape[0]
        k = w.shape[2]
        fl_res = fl_of(L.residual) if L.residual is not None else 0
        if L.identity:
            fl_w = min(max(0, fl_res - fl_in), bits - 2) if L.residual is not None else 0
        else:
            fl_w = s_fl_w if static else fit_fl(L.network_conv()[0], bits, f"layer {L.name!r}: weights")
        w_q = arith.quantize(w, fl_w, bits)
        bias = L.bias if L.bias is not None else np.zeros(cout)
        fl_acc = fl_in + fl_w
        if L.identity:
            fl_b = fl_acc
        else:
            fl_b = s_fl_b if static else fit_fl(bias, bits, f"layer {L.name!r}: bias")
        b_q = arith.quantize(bias, fl_b, bits)
        ov = None
        if (L.rho != 1 or force_ovsf) and not L.synthetic:
            check_rho(L.rho, cfg.ovsf_len, L.name)
            w_pad = memimage.pad_weights(w_q, cfg)
            cin_pad = w_pad.shape[1]
            # the blocks cut each channel's vector in the engine's order (a
            # decomposed kernel's differs from (ci, ky, kx))
            ov = ovsf.decompose(memimage.engine_order(w_pad), fl_w, L.rho, cfg.ovsf_len, cfg.alpha_bits, bits)
            arith.check_fl(ov.fl_alpha, f"layer {L.name!r}: OVSF coefficient fractional length")
            w_eff = memimage.from_engine_order(ovsf.reconstruct(ov, bits), cin_pad, k)[:cout, :w.shape[1]]
        else:
            w_eff = w_q
        bias_shift = fl_b - fl_acc
        if not isa.SHIFT_MIN <= bias_shift <= isa.SHIFT_MAX:
            raise NetworkError(f"layer {L.name!r}: bias shift {bias_shift} out of range")
        b_al = np.asarray(arith.shift_round_sat(b_q, bias_shift, cfg.acc_bits))
        # The engine saturates the aligned bias at acc_bits: that must never happen.
        if not np.array_equal(b_al, arith.shift_round_sat(b_q, bias_shift, arith.MAX_BITS)):
            raise NetworkError(
                f"layer {L.name!r}: the bias at fl_b={fl_b} shifted onto the accumulator's fl "
                f"{fl_acc} (fl_in {fl_in} + fl_w {fl_w}) overflows the {cfg.acc_bits}-bit accumulator")
        bound = acc_bound(w_eff, b_al, bits)
        res_shift = 0
        rq = None
        if L.residual is not None:
            res_shift = fl_res - fl_acc
            if not isa.SHIFT_MIN <= res_shift <= isa.SHIFT_MAX:
                raise NetworkError(f"layer {L.name!r}: residual shift {res_shift} out of range")
            if -res_shift > cfg.acc_bits - bits:
                raise NetworkError(
                    f"layer {L.name!r}: the residual {L.residual!r} at fl {fl_res} shifted left by {-res_shift} "
                    f"onto the accumulator's fl {fl_acc} could saturate the {cfg.acc_bits}-bit accumulator")
            bound += residual_bound(res_shift, bits, cfg.acc_bits)
            rq = [tensor_value(tensors, v, L.residual) for v in qv]
        if bound > arith.qmax(cfg.acc_bits):
            raise NetworkError(
                f"layer {L.name!r}: worst-case accumulator magnitude {bound} (2^{math.log2(bound):.1f}) "
                f"exceeds the {cfg.acc_bits}-bit accumulator; the layer cannot be proven overflow-free")
        accs = []
        for i, x in enumerate(x_eng):
            if L.groups > 1:
                a = layers.conv_acc(x, w_eff, L.stride, L.pads, L.groups) + b_al[:, None, None]
            else:
                a = layers.conv_acc(x, w_eff, L.stride, L.pads) + b_al[:, None, None]
            if rq is not None:
                a = arith.add_sat(a, arith.align_to_acc(rq[i], res_shift, cfg.acc_bits), cfg.acc_bits)
            accs.append(arith.relu(a) if L.relu else a)

        def clip_hi(fl_out, L=L):
            return None if L.clip is None else arith.clip_bounds(0.0, L.clip, fl_out, bits)[1]

        def make_q(fl_out, accs=accs, L=L, fl_acc=fl_acc):
            hi = clip_hi(fl_out)
            ys = []
            for a in accs:
                y = arith.shift_round_sat(a, fl_acc - fl_out, bits)
                if hi is not None:
                    y = arith.clip(y, 0, hi)
                if L.pool is not None:
                    y = pool_int(L.pool, y, bits)
                ys.append(y)
            return np.stack(ys)

        if fixed_out is not None:
            fl_out = fixed_out
        elif static:
            fl_out = s_fl_a
        else:
            check_fits(float(np.abs(ref).max()), bits, f"layer {L.name!r}: output")
            fl_out = quant.best_fl_against(ref, make_q, quant.candidate_fls(float(np.abs(ref).max()), bits))
        arith.check_fl(fl_out, f"layer {L.name!r}: output fractional length")
        if not isa.SHIFT_MIN <= fl_acc - fl_out <= isa.SHIFT_MAX:
            raise NetworkError(f"layer {L.name!r}: data shift {fl_acc - fl_out} out of range")
        yq = list(make_q(fl_out))
        q = QLayer(L.name, L.kind, in_shape, L.out_shape, fl_in, fl_out, relu=L.relu, pool=L.pool,
                   stride=L.stride, pads=tuple(L.pads), k=k, fl_w=fl_w, fl_b=fl_b, w_q=w_eff,
                   b_q=b_q, ovsf=ov, rho=L.rho if ov is not None else 1.0,
                   fc_in_shape=getattr(L, "fc_in_shape", None), source=L.source, fl_res=fl_res,
                   clip_hi=clip_hi(fl_out), **common)
        fl[L.output] = fl_out
        for v, y in zip(qv, yq):
            v[L.output] = y
        return q

    parents = {}
    for li, L in enumerate(graph.layers):
        if L.band_of is None:
            out.append(one(L))
        else:
            # a band of a lowered grouped layer: the grouped layer's formats
            # and integer weights, cut to the band (bit exact with it)
            P = L.band_of
            if id(P) not in parents:
                parents[id(P)] = one(P)
            out.append(_band_q(parents[id(P)], L))
            for name in (L.input, L.residual):
                if name is not None and name not in fl:
                    fl[name] = fl_of(tensors[name].view[0] if tensors[name].view else name)
            fl[L.output] = fl[P.output]
            for v in qv:
                v[L.output] = v[P.output][L.band.o0:L.band.o1]
        _release(qv, last_read, li, graph)
    for name in tensors:
        if name not in fl and tensors[name].parts:
            fl_of(name)
    return Quantised(fl_in0, out, fl)


def _band_q(qp, L: GLayer):
    """The QLayer of band L from its grouped layer's QLayer ``qp``."""
    b = L.band
    notes = list(L.notes)
    if qp.ovsf is not None:
        notes.append("weights stored as generated by the grouped layer's OVSF codes (no OVSF in the band)")
    return dataclasses.replace(
        qp, name=L.name, in_shape=tuple(L.in_shape), out_shape=tuple(L.out_shape),
        w_q=densify(qp.w_q, qp.groups)[b.o0:b.o1, b.i0:b.i1], b_q=np.asarray(qp.b_q)[b.o0:b.o1], ovsf=None,
        rho=1.0, tiles={}, groups=1, in_shuffle=0, in_tensor=L.input, out_tensor=L.output, res_tensor=L.residual,
        synthetic=L.synthetic, source=list(L.source), notes=notes)


def _last_reads(graph: Graph) -> dict:
    """tensor -> index of its last reader, for tensors that own their memory
    alone (their quantised values may be dropped after it)."""
    shared = {t.buffer for t in graph.tensors.values() if t.buffer != t.name} | \
             {t.name for t in graph.tensors.values() if t.parts}
    last = {}
    for i, L in enumerate(graph.layers):
        for n in (L.input, L.residual):
            if n is not None and n not in shared and graph.tensors[n].buffer == n:
                last[n] = i
    last.pop(graph.output, None)
    return last


def _release(qv, last_read, li, graph) -> None:
    for n, i in last_read.items():
        if i == li:
            for v in qv:
                v.pop(n, None)


# --------------------------------------------------------------- chains

def chain_graph(elayers: list, input_shape=None) -> Graph:
    """A chain of network.EngineLayer as a Graph (layer i reads layer i-1's
    output, named after the layer)."""
    if input_shape is None:
        L0 = elayers[0]
        input_shape = L0.fc_in_shape if L0.kind == isa.Kind.FC else L0.in_shape
    tensors = {INPUT: Tensor(INPUT, tuple(input_shape), buffer=INPUT)}
    glayers = []
    prev = INPUT
    for L in elayers:
        shape = tuple(L.out_shape)
        G = GLayer(L.name, L.kind, tuple(L.in_shape), shape, L.weight, L.bias, L.stride, tuple(L.pads), L.relu,
                   L.pool, L.rho, list(L.source), input=prev, output=L.name,
                   fc_in_shape=getattr(L, "fc_in_shape", None))
        glayers.append(G)
        tensors[L.name] = Tensor(L.name, shape, producer=L.name, buffer=L.name)
        prev = L.name
    return Graph("chain", tuple(input_shape), glayers, tensors, prev)


def quantize_network(elayers: list, calib: np.ndarray, cfg: EngineConfig, static: bool = False,
                     force_ovsf: bool = False) -> tuple:
    """The chain compiler's interface: choose formats layer by layer on
    calibration images for a list of network.EngineLayer. Returns (fl of the
    network input, [QLayer]) with tiles set."""
    from .kernels import lower_kernels
    from .tile import tile_layers
    calib = check_calib(calib)
    graph = chain_graph(elayers, calib.shape[1:])
    lower_kernels(graph, cfg)
    res = quantise(graph, calib, cfg, static, force_ovsf)
    tile_layers(res.layers, cfg)
    return res.fl_input, res.layers
