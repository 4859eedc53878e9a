"""The scoreboards outside a simulation: each fails when it compared nothing
(or part) of what it was meant to, naming the count, and passes once every
expected observation was compared and matched. The programs are real
compiled programs with their golden traces; the observations are built from
the same traces, as a correct engine would produce them."""
import itertools
import random

import numpy as np
import pytest

from golden import compiler, funcmodel, isa, memimage
from tb import env
from tb.bfm import DONE, BiasSample, GenSample, ResidualSample, ShiftSample
from tb.regressions import CONFIGS
from tb.sequences import ALL_DIRECTED, make_program

CFG = CONFIGS["small"]


def _item(name="conv_ovsf_half"):
    random.seed(1)
    spec, insel, *opts = ALL_DIRECTED[name]
    item = make_program(dict(spec, name=name, weights={"seed": 3}), CFG, name, insel=insel,
                        **(opts[0] if opts else {}))
    prog = item.prog
    img = memimage.MemoryImage()
    img.data = bytearray(prog.image.data)
    for i in range(len(prog.layers)):
        d = isa.Descriptor.decode(img.read(prog.desc_addr + i * isa.DESC_BYTES, isa.DESC_BYTES))
        item.descs.append(d)
        item.traces.append(funcmodel.execute_descriptor(img, d, CFG))
    item.result = (DONE, 0, 0, 100)
    return item, img


_NAMES = itertools.count()


def _board(cls):
    sb = cls(f"{cls.__name__.lower()}_{next(_NAMES)}", None)   # names are unique under the root
    sb.build_phase()
    return sb


def _observations(kind, item, img, clip=True):
    """What a correct engine's monitor publishes for ``item`` (clip=False:
    an engine that forgets the clip)."""
    pm, pn, length = CFG.pm, CFG.pn, CFG.ovsf_len
    out = []
    for i, (d, t) in enumerate(zip(item.descs, item.traces)):
        if kind == "weights" and d.ovsf and isa.packed_taps(d, pn):
            # one packed vector per output channel (depthwise): group is the
            # tile's channel base, which the vector does not depend on; a
            # decomposed kernel's holds each sub-window's taps in whole words
            idx = memimage.packed_index(t.w.shape[1], d.in_c // d.groups, d.k, pn)
            flat = memimage.engine_order(t.w)[:, idx]
            for o in range(t.w.shape[0]):
                for f0 in range(0, isa.wvec_len(d, pn), length):
                    out.append((item, GenSample(i, o, o // pn, f0, [int(v) for v in flat[o, f0:f0 + length]])))
        elif kind == "weights" and d.ovsf and isa.sub_windows(d.k) > 1:
            # a decomposed kernel: per ti-tile, the (sub-window, ci-group)
            # vectors of 3x3 taps in the engine's order, counted from the
            # tile's first ci-group
            flat, cin_pad, wk2 = memimage.engine_order(t.w), t.w.shape[1], isa.SUB_K ** 2
            for o in range(t.w.shape[0]):
                for i0 in range(0, cin_pad, d.ti):
                    ng = min(d.ti, cin_pad - i0) // pn
                    for wg in range(isa.sub_windows(d.k) ** 2 * ng):
                        sub, gl = divmod(wg, ng)
                        base = sub * cin_pad * wk2 + (i0 // pn + gl) * pn * wk2
                        for f0 in range(0, pn * wk2, length):
                            w = [int(v) for v in flat[o, base + f0:base + f0 + length]]
                            out.append((item, GenSample(i, o, i0 // pn + wg, f0, w, i0 // pn)))
        elif kind == "weights" and d.ovsf:
            k2 = d.k * d.k
            for o in range(t.w.shape[0]):
                for g in range(t.w.shape[1] // pn):
                    for f0 in range(0, pn * k2, length):
                        w = [int(t.w[o, g * pn + f // k2, (f % k2) // d.k, (f % k2) % d.k])
                             for f in range(f0, f0 + length)]
                        out.append((item, GenSample(i, o, g, f0, w)))
        elif kind == "bias" and d.bias:
            for o0 in range(0, t.acc.shape[0], pm):
                out.append((item, BiasSample(i, o0, [int(v) for v in t.bias_aligned[o0:o0 + pm]])))
        elif kind == "shift":
            from golden import arith
            c, h, w = t.acc.shape
            for o0 in range(0, c, pm):
                for y in range(h):
                    for x in range(w):
                        acc = [int(v) for v in t.acc[o0:o0 + pm, y, x]]
                        a = np.asarray(acc, dtype=np.int64)
                        if d.relu:
                            a = arith.relu(a)
                        s = arith.shift_round_sat(a, d.data_shift, CFG.data_bits)
                        if d.clip and clip:
                            s = arith.clip(s, 0, d.clip_hi)
                        s = [int(v) for v in s]
                        out.append((item, ShiftSample(i, o0, y, x, acc, s)))
        elif kind == "residual" and d.res:
            c, h, w = t.acc.shape
            for o0 in range(0, c, pm):
                for y in range(h):
                    for x in range(w):
                        sl = (slice(o0, o0 + pm), y, x)
                        raw = _raw_residual(img, d, o0, y, x)
                        out.append(env.ResidualAdd("res", item, ResidualSample(
                            i, o0, y, x, [int(v) for v in t.acc_conv[sl]], raw, [int(v) for v in t.res_al[sl]],
                            [int(v) for v in t.acc[sl]])))
        elif kind == "layer":
            out.append(env.ObservedLayer("layer", item, i, t.y))
    if kind == "status":
        out.append(item)
    if kind == "memory":
        data = bytes(img.data)
        before = bytes(item.prog.image.data)
        span = env.guarded_span(item.prog)
        out.append(env.MemorySnapshot("mem", item, before.ljust(span, b"\0")[:span],
                                      data.ljust(span, b"\0")[:span]))
    return out


def _raw_residual(img, d, o0, y, x):
    """The residual word the engine reads for channels o0.. at (y, x), from
    the image after the program ran (no layer overwrites a residual it still
    needs; the pad channels read as zeros)."""
    ch, cw = isa.conv_dims(d)
    r = funcmodel.read_act(img, d.res_addr, (d.out_c, ch, cw), CFG)
    return [int(v) for v in r[o0:o0 + CFG.pm, y, x]]


BOARDS = {"weights": env.WeightsScoreboard, "bias": env.BiasScoreboard, "shift": env.ShiftScoreboard,
          "residual": env.ResidualScoreboard, "layer": env.LayerScoreboard, "status": env.StatusScoreboard,
          "memory": env.MemoryScoreboard}
#: The programs each scoreboard is tried on: what it sees (the residual one
#: needs a residual add, which the others do not have).
PROGRAMS = {k: ("conv_ovsf_half", "fire", "relu6") for k in BOARDS}
PROGRAMS["weights"] = ("conv_ovsf_half", "mobile_shuffle", "dw_block")
PROGRAMS["residual"] = ("resnet_block", "standalone_add", "res_shift_signs", "res_saturate", "dw_block")
for _k in ("shift", "layer", "status", "memory"):
    PROGRAMS[_k] += ("resnet_block", "mobile_shuffle")
PROGRAMS["bias"] += ("mobile_shuffle",)


@pytest.mark.parametrize("kind", sorted(BOARDS))
def test_scoreboard_that_compared_nothing_fails(kind):
    item, _ = _item(PROGRAMS[kind][0])
    sb = _board(BOARDS[kind])
    sb.programs.append(item)
    with pytest.raises(AssertionError, match=r"compared 0 of [1-9]\d* "):
        sb.check_phase()


# the graph programs (channel slices, the clip, residual adds) too; they have no OVSF weights
@pytest.mark.parametrize("kind, name", [(k, n) for k in sorted(BOARDS) for n in PROGRAMS[k]])
def test_scoreboard_that_compared_part_fails_and_all_passes(kind, name):
    item, img = _item(name)
    obs = _observations(kind, item, img)
    assert obs
    sb = _board(BOARDS[kind])
    sb.programs.append(item)
    for o in obs:
        sb.write(o)
    sb.check_phase()                                  # everything compared and right
    assert sb.checked == len(obs)
    if len(obs) > 1:
        part = _board(BOARDS[kind])
        part.programs.append(item)
        for o in obs[1:]:                          # the first (a real channel's) left out
            part.write(o)
        with pytest.raises(AssertionError, match=r"compared \d+ of \d+ "):
            part.check_phase()


def test_status_scoreboard_fails_when_no_program_ran():
    sb = _board(env.StatusScoreboard)
    with pytest.raises(AssertionError, match="no program ran"):
        sb.check_phase()


def test_shift_scoreboard_expects_the_clip():
    """A ReLU6 layer: the value after the shift stage is clipped at clip_hi;
    an engine that forgot the clip is caught."""
    item, img = _item("relu6")
    assert any(d.clip for d in item.descs)
    obs = _observations("shift", item, img, clip=False)
    sb = _board(env.ShiftScoreboard)
    sb.programs.append(item)
    for o in obs:
        sb.write(o)
    with pytest.raises(AssertionError, match="clip at"):
        sb.check_phase()


def test_layer_monitor_span_is_the_slice():
    """A layer writing a concatenation part: the monitor reads, and the memory
    scoreboard allows, its own slice only, inside the tensor's region."""
    item, _ = _item("fire")
    prog = item.prog
    sliced = [i for i, q in enumerate(prog.layers) if q.out_slice is not None]
    assert sliced
    for i in sliced:
        q = prog.layers[i]
        r = prog.image.region(prog.regions[q.name]["out"])
        addr, size = env.layer_out_span(prog, i)
        assert r.addr <= addr and addr + size <= r.addr + r.size and size < r.size
        assert addr == funcmodel.slice_addr(r.addr, q.out_slice[0], *q.out_shape[1:], CFG)


@pytest.mark.parametrize("where, caught", [("own", False), ("neighbour", True)])
def test_memory_scoreboard_catches_a_write_into_a_neighbouring_part(where, caught):
    """The fire module stops after its first expand (e1, part 0 of the
    concat): a write into e1's slice is allowed, one into the slice of the
    3x3 expand (which did not run) is caught, though both lie in the same
    tensor's region."""
    from tb.bfm import ERROR
    item, _ = _item("fire")
    prog = item.prog
    names = [q.name for q in prog.layers]
    e1, e3 = names.index("e1"), names.index("e3")
    assert prog.regions["e1"]["out"] == prog.regions["e3"]["out"]
    item.result = (ERROR, int(isa.Err.BAD_TILE), e1, 100)    # the engine stopped at e1
    before = bytearray(prog.image.data)
    span = env.guarded_span(prog)
    before = bytes(before.ljust(span, b"\0")[:span])
    after = bytearray(before)
    addr, size = env.layer_out_span(prog, e1 if where == "own" else e3)
    after[addr + size // 2] ^= 0x5A
    sb = _board(env.MemoryScoreboard)
    sb.programs.append(item)
    sb.write(env.MemorySnapshot("mem", item, before, bytes(after)))
    if caught:
        with pytest.raises(AssertionError, match="outside the output regions"):
            sb.check_phase()
    else:
        sb.check_phase()


# ------------------------------------------------------ the residual add

def test_trace_keeps_both_operands_of_the_residual_add():
    """golden's trace of a residual layer: acc_conv is the layer without its
    residual (the same descriptor with res=0), res_al the aligned residual,
    acc their saturating sum; layers without a residual keep neither."""
    from golden import arith
    item, _ = _item("resnet_block")
    prog = item.prog
    img = memimage.MemoryImage()
    img.data = bytearray(prog.image.data)
    n_res = 0
    for i, d in enumerate(item.descs):
        t = funcmodel.execute_descriptor(img, d, CFG)
        if not d.res:
            assert t.acc_conv is None and t.res_al is None
            continue
        n_res += 1
        plain = funcmodel.trace_descriptor(img, isa.Descriptor(dict(d.values, res=0)), CFG)
        assert np.array_equal(t.acc_conv, plain.acc)
        ch, cw = isa.conv_dims(d)
        r = funcmodel.read_act(img, d.res_addr, (d.out_c, ch, cw), CFG)[:d.out_c]
        assert np.array_equal(t.res_al[:d.out_c], arith.align_to_acc(r, d.res_shift, CFG.acc_bits))
        assert not t.res_al[d.out_c:].any()
        assert np.array_equal(t.acc, arith.add_sat(t.acc_conv, t.res_al, CFG.acc_bits))
    assert n_res == 2


def test_directed_residual_programs_reach_what_they_are_for():
    """res_shift of each sign, and an add that saturates."""
    from golden import arith
    shifts, saturates = set(), False
    for name in ("resnet_block", "res_shift_signs", "res_saturate"):
        item, _ = _item(name)
        for d, t in zip(item.descs, item.traces):
            if d.res:
                shifts.add(np.sign(d.res_shift))
                wide = t.acc_conv.astype(object) + t.res_al.astype(object)
                saturates |= bool(np.any(wide != t.acc))
    assert shifts == {-1, 0, 1} and saturates
    assert arith.qmax(CFG.acc_bits) > 0


@pytest.mark.parametrize("what", ["acc", "res", "res_al", "sum"])
def test_residual_scoreboard_catches_each_operand(what):
    """One lane of one operand wrong: the accumulator before the add, the
    residual as read (the aligner's rule), the aligned residual, the sum."""
    item, img = _item("resnet_block")
    obs = _observations("residual", item, img)
    tr = obs[len(obs) // 2]
    v = getattr(tr, what)
    setattr(tr, what, [v[0] + 1] + v[1:])
    sb = _board(env.ResidualScoreboard)
    sb.programs.append(item)
    for o in obs:
        sb.write(o)
    with pytest.raises(AssertionError, match="mismatches"):
        sb.check_phase()


def test_residual_scoreboard_compares_after_the_program_ended():
    """Transactions published while the program runs wait for its end; the
    layers that did not complete (the engine stopped in them) are not
    compared and not expected."""
    item, img = _item("resnet_block")
    obs = _observations("residual", item, img)
    sb = _board(env.ResidualScoreboard)
    for o in obs:
        sb.write(o)
    assert sb.checked == 0 and sb.pending
    first = next(i for i, d in enumerate(item.descs) if d.res)
    item.traces = item.traces[:first + 1]            # stopped in the layer after the first residual
    sb.program_ended(item)
    assert sb.checked == sum(1 for o in obs if o.layer <= first) and not sb.pending
    sb.check_phase()


# ------------------------------------------------ depthwise (packed) weights

def _depthwise_layers(item):
    return [i for i, d in enumerate(item.descs) if isa.depthwise(d) and d.ovsf]


def test_weights_scoreboard_expects_every_real_depthwise_tap():
    """A depthwise OVSF layer's channel reads one input channel: the
    scoreboard expects its out_c * K*K real weights (not in_c * K*K, nor the
    padding of the packed vector), and passes once they are all compared."""
    item, img = _item("mobile_shuffle")
    layers = _depthwise_layers(item)
    assert layers, "mobile_shuffle has no OVSF depthwise layer"
    sb = _board(env.WeightsScoreboard)
    sb.programs.append(item)
    exp = sb.expected(item)
    for i in layers:
        d = item.descs[i]
        mine = {k for k in exp if k[1] == i}
        assert mine == {(id(item), i, o, 0, tap) for o in range(d.out_c) for tap in range(d.k * d.k)}
    # only the depthwise layers' samples: the dense OVSF layers are missing
    obs = [o for o in _observations("weights", item, img) if o[1].layer in layers]
    for o in obs:
        sb.write(o)
    n_exp, missing = sb.missing()
    assert not sb.mismatches and all(k[1] not in layers for k in missing)


@pytest.mark.parametrize("where", ["real", "padding", "channel"])
def test_weights_scoreboard_catches_a_wrong_depthwise_weight(where):
    """One generated depthwise weight wrong: a real tap, a tap of the packed
    vector's padding (the engine generates it too), or a block for an output
    channel the layer does not have."""
    item, img = _item("mobile_shuffle")
    i = _depthwise_layers(item)[0]
    d = item.descs[i]
    obs = _observations("weights", item, img)
    mine = [n for n, o in enumerate(obs) if o[1].layer == i]
    k2, length = d.k * d.k, CFG.ovsf_len
    s = obs[mine[0]][1]
    if where == "real":
        s.weights = [s.weights[0] + 1] + s.weights[1:]
    elif where == "padding":
        s = next(obs[n][1] for n in mine if obs[n][1].f0 + length > k2 and obs[n][1].f0 <= k2)
        j = k2 - s.f0 if k2 - s.f0 < length else length - 1
        s.weights = s.weights[:j] + [s.weights[j] ^ 4] + s.weights[j + 1:]
    else:
        obs.append((item, GenSample(i, t_rows := item.traces[i].w.shape[0], 0, 0, [0] * length)))
        assert t_rows >= d.out_c
    sb = _board(env.WeightsScoreboard)
    sb.programs.append(item)
    for o in obs:
        sb.write(o)
    with pytest.raises(AssertionError, match="mismatches"):
        sb.check_phase()


# ------------------------------------------------ decomposed kernels' weights

def _decomposed_item():
    """A 7x7 OVSF conv of 12 channels compiled for a 3x3 window (k 9: 3x3
    sub-windows) in ti-tiles of one ci-group."""
    random.seed(1)
    spec = {"name": "dec", "input_shape": [12, 9, 9], "weights": {"seed": 5}, "max_k": 3, "layers": [
        {"name": "c", "type": "conv", "out_channels": 8, "kernel": 7, "pad": 3, "rho": 0.5}]}
    item = make_program(spec, CFG, "dec", tiles={"c": {"ti": CFG.pn}})
    img = memimage.MemoryImage()
    img.data = bytearray(item.prog.image.data)
    d = isa.Descriptor.decode(img.read(item.prog.desc_addr, isa.DESC_BYTES))
    assert d.k == 9 and d.ovsf and d.ti < d.in_c
    item.descs.append(d)
    item.traces.append(funcmodel.execute_descriptor(img, d, CFG))
    item.result = (DONE, 0, 0, 100)
    return item, img


def test_weights_scoreboard_sees_every_decomposed_tap():
    """Blocks of a decomposed kernel, (sub-window, ci-group) counted from the
    tile's first ci-group, compare equal and cover every (channel, tap)."""
    item, img = _decomposed_item()
    sb = _board(env.WeightsScoreboard)
    sb.programs.append(item)
    for o in _observations("weights", item, img):
        sb.write(o)
    n_exp, missing = sb.missing()
    assert not sb.mismatches and not missing and n_exp


@pytest.mark.parametrize("wrong", ["weight", "natural_order", "sub_window"])
def test_weights_scoreboard_catches_a_wrong_decomposed_block(wrong):
    """A wrong weight; blocks in the kernel's natural (c, ky, kx) order
    instead of the sub-windows'; a block reported one sub-window off."""
    item, img = _decomposed_item()
    obs = _observations("weights", item, img)
    if wrong == "weight":
        s = obs[len(obs) // 2][1]
        s.weights = [s.weights[0] + 1] + s.weights[1:]
    elif wrong == "natural_order":
        t, pn, length = item.traces[0], CFG.pn, CFG.ovsf_len
        nat = t.w.reshape(t.w.shape[0], -1)
        for _, s in obs:
            ng = min(item.descs[0].ti, t.w.shape[1] - s.tile_group * pn) // pn
            sub, gl = divmod(s.group - s.tile_group, ng)
            base = sub * t.w.shape[1] * 9 + (s.tile_group + gl) * pn * 9
            s.weights = [int(v) for v in nat[s.o, base + s.f0:base + s.f0 + length]]
    else:
        s = next(s for _, s in obs if s.group - s.tile_group == 0)
        s.group += 1
    sb = _board(env.WeightsScoreboard)
    sb.programs.append(item)
    for o in obs:
        sb.write(o)
    with pytest.raises(AssertionError, match="mismatches"):
        sb.check_phase()


def test_weights_scoreboard_follows_a_decomposed_depthwise_vector():
    """A depthwise 7x7 OVSF layer on a 3x3 window (k 9): its packed vector
    holds each sub-window's 9 taps in whole words; blocks read in that order
    pass and see every tap, blocks in the plain packed order fail."""
    random.seed(1)
    spec = {"name": "dwdec", "input_shape": [12, 9, 9], "weights": {"seed": 6}, "max_k": 3, "layers": [
        {"name": "c", "type": "conv", "out_channels": 12, "kernel": 7, "pad": 3, "groups": 12, "rho": 0.5}]}
    item = make_program(spec, CFG, "dwdec")
    img = memimage.MemoryImage()
    img.data = bytearray(item.prog.image.data)
    d = isa.Descriptor.decode(img.read(item.prog.desc_addr, isa.DESC_BYTES))
    assert d.k == 9 and isa.depthwise(d) and d.ovsf
    item.descs.append(d)
    item.traces.append(funcmodel.execute_descriptor(img, d, CFG))
    item.result = (DONE, 0, 0, 100)
    sb = _board(env.WeightsScoreboard)
    sb.programs.append(item)
    obs = _observations("weights", item, img)
    for o in obs:
        sb.write(o)
    n_exp, missing = sb.missing()
    assert not sb.mismatches and not missing and n_exp
    # the plain packed order (each channel's first wvec_len of its (c, ky, kx) vector)
    t, length = item.traces[0], CFG.ovsf_len
    plain = t.w.reshape(t.w.shape[0], -1)
    for _, s in obs:
        s.weights = [int(v) for v in plain[s.o, s.f0:s.f0 + length]]
    sb = _board(env.WeightsScoreboard)
    sb.programs.append(item)
    for o in obs:
        sb.write(o)
    with pytest.raises(AssertionError, match="mismatches"):
        sb.check_phase()
