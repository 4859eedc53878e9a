"""One layer of a compiled program as a program of its own, to run it alone
(on the RTL or the functional model) from the golden model's values of its
operands: `make vgg`, `make resnet` and the benchmark's residual rows.

    layer_alone(prog, i, x_in, residual=None) -> compiler.Program
    layer_operands(prog, xq, outs, vals, i) -> (x_in, residual or None)

The layer keeps its descriptor but reads and writes whole tensors of its
own: its input region ("input"), its output region, and for a residual add
(res=1) a "residual" region holding the residual's channels in the
convolution's plane, laid out as activations are (PN-channel words).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from . import compiler, funcmodel, isa, memimage
from .errors import UzError
from .passes import fuse, quantise

RES_REGION = "residual"


def layer_operands(prog: compiler.Program, xq: np.ndarray, outs: list, vals: dict, i: int) -> tuple:
    """(input, residual) of layer ``i``, given the network input ``xq`` and
    ``outs, vals = compiler.run_graph(prog, xq)`` (a chain program: the
    previous layer's output, no residual)."""
    q = prog.layers[i]
    if prog.graph is None:
        return (outs[i - 1] if i else xq), None
    tensors = prog.graph.tensors
    x = fuse.tensor_value(tensors, vals, q.in_tensor)
    res = None if q.res_tensor is None else fuse.tensor_value(tensors, vals, q.res_tensor)
    return x, res


def layer_alone(prog: compiler.Program, i: int, x_in: np.ndarray, residual=None) -> compiler.Program:
    """Layer ``i`` of ``prog`` alone, its input (and residual) written."""
    cfg = prog.cfg
    q = prog.layers[i]
    if (q.res_tensor is not None) != (residual is not None):
        raise UzError(f"layer {q.name!r}: {'a residual is needed' if residual is None else 'it has no residual'}")
    q0 = dataclasses.replace(q, res_tensor=None, in_slice=None, out_slice=None, res_slice=None)
    img, desc_addr, regions = compiler.build_image([q0], cfg, q.in_shape)
    x_in = np.asarray(x_in, dtype=np.int64)
    if q.kind == isa.Kind.FC:
        # an FC reads its input tensor flattened in the grouped layout, pad
        # channels included (552 channels are a vector of 560 at PN = 16)
        x_in = quantise.flatten_for_fc(x_in, cfg.pn)
    if x_in.shape[1:] != tuple(q.in_shape[1:]) or x_in.shape[0] < q.in_shape[0]:
        raise UzError(f"layer {q.name!r}: input of shape {x_in.shape} for a {tuple(q.in_shape)} layer")
    funcmodel.write_act(img, img.region("input").addr, x_in[:q.in_shape[0]], cfg)
    regions = {k: dict(v) for k, v in regions.items()}
    if residual is not None:
        d = isa.Descriptor.decode(img.read(desc_addr, isa.DESC_BYTES))
        ch, cw = isa.conv_dims(d)
        residual = np.asarray(residual, dtype=np.int64)[:d.out_c]
        if residual.shape != (d.out_c, ch, cw):
            raise UzError(f"layer {q.name!r}: residual of shape {residual.shape}, the layer adds "
                          f"{(d.out_c, ch, cw)}")
        size = memimage.act_elems(residual.shape, cfg.pn) * cfg.elem_bytes
        r = img.alloc(RES_REGION, memimage.round_up(size, cfg.bus_bytes))
        funcmodel.write_act(img, r.addr, residual, cfg)
        d.set(res=1, res_shift=q.res_shift, res_addr=r.addr)
        isa.check(d, cfg, engine=False)
        img.write(desc_addr, d.encode())
        regions[q.name]["res"] = RES_REGION
    return compiler.Program(cfg, f"{prog.name}.{q.name}", tuple(q.in_shape), prog.fl_input, [q], img,
                            desc_addr, regions, prog.static, prog.elayers)


def run_alone(lp: compiler.Program) -> np.ndarray:
    """The functional model's output of a layer_alone program (its out_c channels)."""
    [t] = funcmodel.run_image(lp.image, lp.desc_addr, 1, lp.cfg)
    return t.y
