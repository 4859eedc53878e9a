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
from tb.bfm import DONE, BiasSample, GenSample, ShiftSample
from tb.regressions import CONFIGS
from tb.sequences import DIRECTED, make_program

CFG = CONFIGS["small"]


def _item(name="conv_ovsf_half"):
    random.seed(1)
    spec, insel = DIRECTED[name]
    item = make_program(dict(spec, name=name, weights={"seed": 3}), CFG, name, insel=insel)
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


def _observations(kind, item, img):
    """What a correct engine's monitor publishes for ``item``."""
    pm, pn, length = CFG.pm, CFG.pn, CFG.ovsf_len
    out = []
    for i, (d, t) in enumerate(zip(item.descs, item.traces)):
        if kind == "weights" and d.ovsf:
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
                        s = [int(v) for v in arith.shift_round_sat(a, d.data_shift, CFG.data_bits)]
                        out.append((item, ShiftSample(i, o0, y, x, acc, s)))
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


BOARDS = {"weights": env.WeightsScoreboard, "bias": env.BiasScoreboard, "shift": env.ShiftScoreboard,
          "layer": env.LayerScoreboard, "status": env.StatusScoreboard, "memory": env.MemoryScoreboard}


@pytest.mark.parametrize("kind", sorted(BOARDS))
def test_scoreboard_that_compared_nothing_fails(kind):
    item, _ = _item()
    sb = _board(BOARDS[kind])
    sb.programs.append(item)
    with pytest.raises(AssertionError, match=r"compared 0 of [1-9]\d* "):
        sb.check_phase()


@pytest.mark.parametrize("kind", sorted(BOARDS))
def test_scoreboard_that_compared_part_fails_and_all_passes(kind):
    item, img = _item()
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
        for o in obs[:-1]:
            part.write(o)
        with pytest.raises(AssertionError, match=r"compared \d+ of \d+ "):
            part.check_phase()


def test_status_scoreboard_fails_when_no_program_ran():
    sb = _board(env.StatusScoreboard)
    with pytest.raises(AssertionError, match="no program ran"):
        sb.check_phase()
