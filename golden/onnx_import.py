"""ONNX import and export: an ONNX model <-> golden.network.Network.

``load_onnx`` turns an ONNX model into the same Network that
``golden.network.load_network`` builds from JSON: a graph of ops in
topological order, from one float32 [N, C, H, W] input to one output, built
from:

    Conv (dilation 1, square kernel, equal strides, any group)  -> conv
    Gemm (transA 0, alpha = beta = 1), MatMul (+ Add bias)      -> fc
    Relu -> relu, Clip -> clip, BatchNormalization -> batchnorm,
    MaxPool -> maxpool, AveragePool -> avgpool, GlobalAveragePool -> gap,
    Add / Sum of two computed tensors -> add, Concat on channels -> concat,
    Mul / Add / Sub by a constant per channel (or scalar) -> affine,
    Reshape [N, g, C/g, H, W] -> Transpose [0, 2, 1, 3, 4] -> Reshape [N, C, H, W] -> shuffle,
    Flatten / Reshape to [N, -1] -> flatten, Dropout -> dropout, Identity -> nothing,
    a final Softmax / LogSoftmax -> left out (by default; one line on stderr says so)

Weights come from initializers, or from nodes computed from constants only
(Constant, ConstantOfShape, ...), which are evaluated at import. Nodes that do
not lead to the graph output are left out. Anything else raises NetworkError
naming the node, its op type and what is not supported. The engine's own
limits (pool windows, which ops it runs) are checked by the compiler, not here.

``network_to_onnx`` writes a Network, with its weights, as an ONNX model.
``realistic_weights`` replaces a model's weights (the placeholders of the onnx
package's "light" models) with seeded He-scale values.
"""
from __future__ import annotations

import os
import sys
from collections import defaultdict
from typing import Optional

import numpy as np

from . import isa, layers
from .errors import NetworkError
from .network import INPUT, Network, Op, apply_op_float, pool_pads, shuffle_perm

try:
    import onnx
    from onnx import helper, numpy_helper
except ImportError:  # onnx is in requirements.txt; say so instead of a traceback
    onnx = None

# Models are written at opset 13 and IR version 8: onnx writes a newer IR by
# default than the onnxruntime in requirements.txt loads.
OPSET = 13
IR_VERSION = 8

SUPPORTED_OPS = ("Conv", "Gemm", "MatMul", "Add", "Sum", "Sub", "Mul", "Concat", "Relu", "Clip", "MaxPool",
                 "AveragePool", "GlobalAveragePool", "BatchNormalization", "Flatten", "Reshape", "Transpose",
                 "Dropout", "Identity")
#: Left out when last (unless ``drop_final_softmax=False``): they keep the
#: order of the class scores, so the argmax is unchanged.
FINAL_SOFTMAX_OPS = ("Softmax", "LogSoftmax")
#: Never folded as constants: each run draws new values.
RANDOM_OPS = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Bernoulli", "Multinomial")
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")
#: Element-wise ops supported only with a constant operand: named in their own
#: error when given two computed tensors.
CONST_OPERAND_OPS = ("Mul", "Sub")
#: The channel shuffle's Transpose.
SHUFFLE_PERM = [0, 2, 1, 3, 4]
SHUFFLE_PATTERN = "Reshape [N, g, C/g, H, W] -> Transpose perm [0, 2, 1, 3, 4] -> Reshape [N, C, H, W]"
POOLS = ("MaxPool", "AveragePool")


def _require_onnx():
    if onnx is None:
        raise NetworkError("ONNX import needs the 'onnx' package (pip install -r requirements.txt)")


def _node_label(node, index: int) -> str:
    if node.name:
        who = f"node {node.name!r}"
    elif node.output:
        who = f"node #{index} (output {node.output[0]!r})"
    else:
        who = f"node #{index}"
    return f"{who} ({node.op_type})"


def _first_lines(text: str, n: int = 3) -> str:
    """onnx's messages can run to pages of context; the first lines say what is wrong."""
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return " ".join(lines[:n]) if lines else type(text).__name__


# ------------------------------------------------------------------ reading

def _read_model(src):
    _require_onnx()
    if isinstance(src, onnx.ModelProto):
        model, what = src, "the ONNX model"
    elif isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        what = f"ONNX file {path}"
        if not os.path.exists(path):
            raise NetworkError(f"ONNX file {path} not found")
        if os.path.isdir(path):
            raise NetworkError(f"ONNX file {path} is a folder")
        try:
            model = onnx.load(path)
        except Exception as e:  # protobuf and onnx raise many types for a bad file
            raise NetworkError(f"ONNX file {path} is not a readable ONNX model (truncated or corrupt?): "
                               f"{_first_lines(e)}") from None
    else:
        raise NetworkError(f"load_onnx takes a file path or an onnx.ModelProto, not {type(src).__name__}")
    if not model.HasField("graph") or not model.graph.node:
        raise NetworkError(f"{what} holds no graph nodes (truncated or not an ONNX model?)")
    for i, node in enumerate(model.graph.node):
        # Before the checker, which knows no schema for them and says less.
        if node.domain not in ("", "ai.onnx"):
            raise NetworkError(f"{_node_label(node, i)}: operator domain {node.domain!r} is not supported "
                               f"(only the standard ONNX operators)")
    try:
        # The checker wants every graph output typed with a shape, which
        # runtimes infer themselves: let shape inference fill them in first.
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # a model it cannot handle is judged by the checker below
        pass
    try:
        # full_check adds strict shape inference: a node whose attributes do
        # not fit its input shapes is reported here by onnx itself.
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # ValidationError, InferenceError, and others for odd files
        raise NetworkError(f"{what} fails the ONNX checker: {_first_lines(e)}") from None
    return model, what


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fold_constants(graph, opset: int, consts: dict) -> list:
    """Evaluate every node computed from constants only (weights stored as
    Constant or ConstantOfShape nodes, shapes for Reshape); returns the other
    nodes as (index, node), in graph order."""
    from onnx.reference import ReferenceEvaluator

    live = []
    for i, node in enumerate(graph.node):
        label = _node_label(node, i)
        inputs = [n for n in node.input if n]
        foldable = node.op_type == "Constant" or (
            node.op_type not in RANDOM_OPS and inputs and all(n in consts for n in inputs))
        if not foldable:
            live.append((i, node))
            continue
        # A one-node model, so the node runs at the model's opset (a bare node
        # would run at the newest, where e.g. Unsqueeze's axes moved to an input).
        feeds = {n: consts[n] for n in dict.fromkeys(inputs)}
        single = helper.make_graph(
            [node], "fold",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), None)
             for n, v in feeds.items()],
            [helper.make_empty_tensor_value_info(n) for n in node.output if n])
        try:
            values = ReferenceEvaluator(helper.make_model(
                single, opset_imports=[helper.make_opsetid("", opset)])).run(None, feeds)
        except Exception as e:  # the reference runtime raises many types
            raise NetworkError(f"{label}: cannot evaluate this constant node: {_first_lines(e)}") from None
        for name, v in zip(node.output, values):
            if name:
                consts[name] = np.asarray(v)
    return live


def _graph_input(graph, consts: dict):
    """The one image input: (name, (C, H, W), batch or None when symbolic)."""
    inputs = [v for v in graph.input if v.name not in consts]
    if len(inputs) != 1:
        names = ", ".join(repr(v.name) for v in inputs) or "none"
        raise NetworkError(f"the graph has {len(inputs)} inputs ({names}); the engine takes exactly one "
                           f"image input [N, C, H, W]")
    v = inputs[0]
    if not v.type.HasField("tensor_type"):
        raise NetworkError(f"graph input {v.name!r} is not a tensor")
    tt = v.type.tensor_type
    if tt.elem_type != onnx.TensorProto.FLOAT:
        dtype = onnx.TensorProto.DataType.Name(tt.elem_type)
        raise NetworkError(f"graph input {v.name!r} has element type {dtype}; only FLOAT (float32) is supported")
    if not tt.HasField("shape"):
        raise NetworkError(f"graph input {v.name!r} has no shape; it must be [N, C, H, W]")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    if len(dims) != 4:
        raise NetworkError(f"graph input {v.name!r} has shape {shown}; it must be [N, C, H, W]")
    if any(d is None or d <= 0 for d in dims[1:]):
        raise NetworkError(f"graph input {v.name!r} has shape {shown}; C, H and W must be fixed positive sizes")
    batch = dims[0] if dims[0] else None
    return v.name, tuple(dims[1:]), batch




def _check_node(node, label: str, a: dict, consts: dict, drop_final_softmax: bool) -> None:
    """Checks that need nothing but the node itself, run on every node before
    the graph is walked, so an unsupported op is reported as such wherever it
    is."""
    t = node.op_type
    if t in FINAL_SOFTMAX_OPS:
        if not drop_final_softmax:
            raise NetworkError(f"{label}: {t} is not supported by the engine; as the last node it is left out "
                               f"with load_onnx(..., drop_final_softmax=True) (the default), which keeps the "
                               f"order of the class scores")
        return
    if t in CONST_OPERAND_OPS and sum(n not in consts for n in node.input if n) > 1:
        raise NetworkError(f"{label}: a {t} of two computed tensors is not supported (only by a constant, "
                           f"one value per channel or a scalar)")
    if t not in SUPPORTED_OPS:
        raise NetworkError(f"{label}: {t} is not supported (supported: {', '.join(SUPPORTED_OPS)})")
    if t == "Conv" or t in POOLS:
        if any(d != 1 for d in a.get("dilations", [])):
            raise NetworkError(f"{label}: dilations={list(a['dilations'])} are not supported (only 1)")
        ks = list(a.get("kernel_shape", []))
        if ks and (len(ks) != 2 or ks[0] != ks[1]):
            raise NetworkError(f"{label}: kernel_shape={ks} is not supported (only square 2-D kernels)")
        st = list(a.get("strides", [1, 1]))
        if len(st) != 2 or st[0] != st[1]:
            raise NetworkError(f"{label}: strides={st} are not supported (only equal strides)")
        ap = a.get("auto_pad", b"NOTSET")
        ap = ap.decode() if isinstance(ap, bytes) else ap
        if ap not in AUTO_PADS:
            raise NetworkError(f"{label}: auto_pad={ap!r} is not supported ({', '.join(AUTO_PADS)})")
    if t == "Conv" and a.get("group", 1) < 1:
        raise NetworkError(f"{label}: group={a['group']} must be positive")
    if t == "Gemm":
        if a.get("transA", 0) != 0:
            raise NetworkError(f"{label}: transA={a['transA']} is not supported (only transA=0)")
        for key in ("alpha", "beta"):
            if a.get(key, 1.0) != 1.0:
                raise NetworkError(f"{label}: {key}={a[key]:g} is not supported (only {key}=1)")
    if t == "BatchNormalization":
        if a.get("training_mode", 0) != 0:
            raise NetworkError(f"{label}: training_mode=1 is not supported (inference only)")
        if a.get("spatial", 1) != 1:
            raise NetworkError(f"{label}: spatial={a['spatial']} is not supported (only per-channel statistics)")
    if t == "Dropout":
        if len(node.input) > 2 and node.input[2]:
            mode = consts.get(node.input[2])
            if mode is None or np.asarray(mode).size != 1 or bool(np.asarray(mode).reshape(-1)[0]):
                raise NetworkError(f"{label}: training_mode must be a constant false (inference only)")
        if a.get("is_test", 1) == 0:
            raise NetworkError(f"{label}: is_test=0 (training) is not supported (inference only)")


# ---------------------------------------------------------------- the graph

def _resolve_shape(target, dims, allowzero=False):
    """A Reshape target with its 0 (copy) and -1 (infer) entries resolved
    against the input ``dims``; an unresolvable -1 stays -1."""
    total = int(np.prod(dims))
    out = [dims[j] if v == 0 and not allowzero and j < len(dims) else v for j, v in enumerate(target)]
    if out.count(-1) == 1:
        known = int(np.prod([v for v in out if v != -1]))
        out[out.index(-1)] = total // known if known and total % known == 0 else -1
    return out


class _Importer:
    """Walks the live nodes in graph (topological) order, one op per node (a
    few patterns take more than one node), tracking each tensor's shape."""

    def __init__(self, graph, opset: int, consts: dict, live: list, batch, shape, quiet=False):
        self.quiet = quiet                  # no note for a final Softmax left out
        self.opset = opset
        self.consts = consts
        self.live = live
        self.batch = batch
        self.input_shape = tuple(shape)
        self.ops: list[Op] = []
        self.names: set = {INPUT}
        self.done: set = set()
        self.output = graph.output[0].name
        self.tensor = {}                    # ONNX tensor -> op name (or INPUT)
        self.dims = {INPUT: (*shape, False)}   # op name -> (C, H, W, flattened)
        self.consumers = defaultdict(list)
        self.producer = {}
        for i, node in live:
            for name in dict.fromkeys(n for n in node.input if n and n not in consts):
                self.consumers[name].append((i, node))
            for name in node.output:
                if name:
                    self.producer[name] = i

    # -- helpers
    def const(self, node, label, idx, what, float_=True):
        name = node.input[idx] if idx < len(node.input) else ""
        if not name:
            raise NetworkError(f"{label}: missing its {what} input")
        if name not in self.consts:
            raise NetworkError(f"{label}: its {what} {name!r} must be a constant (an initializer), "
                               f"not a computed tensor")
        v = self.consts[name]
        if float_:
            if not np.issubdtype(v.dtype, np.floating):
                raise NetworkError(f"{label}: its {what} {name!r} has dtype {v.dtype}; expected float")
            v = np.asarray(v, dtype=np.float64)
            if not np.all(np.isfinite(v)):
                raise NetworkError(f"{label}: its {what} {name!r} holds NaN or infinite values")
        return v

    def op_name(self, node) -> str:
        base = node.name or node.output[0]
        name, n = base, 1
        while name in self.names:   # ONNX does not require unique node names; layers need them
            name, n = f"{base}_{n}", n + 1
        self.names.add(name)
        return name

    def emit(self, node, type_, inputs, dims, attrs=None, out=None, **kw) -> Op:
        """A new op named after ``node``, reading the ops ``inputs``, with
        output ``dims`` (C, H, W, flattened); ONNX tensor ``out`` (default:
        the node's first output) is its output."""
        name = self.op_name(node)
        op = Op(name, type_, {"name": name, "type": type_, **(attrs or {})}, inputs=list(inputs), **kw)
        c, h, w, flat = dims
        op.attrs["out_shape"] = (int(c), int(h), int(w))
        self.ops.append(op)
        self.dims[name] = (int(c), int(h), int(w), bool(flat))
        self.tensor[out or node.output[0]] = name
        return op

    def alias(self, node, src):
        """The node passes its input through: its output is ``src``'s."""
        self.tensor[node.output[0]] = src

    def unused_extra_outputs(self, node, label):
        for name in node.output[1:]:
            if name and (self.consumers.get(name) or name == self.output):
                raise NetworkError(f"{label}: its output {name!r} is used; only the first output "
                                   f"({node.output[0]!r}) is supported")

    def data(self, node, label):
        """The op read by a one-input node: its first input must be computed."""
        t = node.input[0] if node.input else ""
        if t not in self.tensor:
            computed = [n for n in node.input if n in self.tensor]
            raise NetworkError(f"{label}: the computed tensor {computed[0] if computed else t!r} must be its "
                               f"first (data) input")
        return self.tensor[t]

    def need_4d(self, label, src):
        c, h, w, flat = self.dims[src]
        if flat:
            raise NetworkError(f"{label}: its input is already flattened to [N, {c}]")
        return c, h, w

    def need_flat(self, label, src):
        c, h, w, flat = self.dims[src]
        if not flat:
            raise NetworkError(f"{label}: its input is [N, {c}, {h}, {w}]; flatten it to [N, -1] first")
        return c

    def only_user(self, tensor, op_type):
        """The single live node reading ``tensor`` if it is an ``op_type`` and
        ``tensor`` is not the graph output, else None."""
        users = self.consumers.get(tensor, [])
        if tensor == self.output or len(users) != 1 or users[0][1].op_type != op_type:
            return None
        return users[0]

    def pads_of(self, label, a, k, s, h, w):
        """(top, bottom, left, right) from pads or auto_pad."""
        ap = a.get("auto_pad", b"NOTSET")
        ap = ap.decode() if isinstance(ap, bytes) else ap
        if ap == "VALID":
            return (0, 0, 0, 0)
        if ap in ("SAME_UPPER", "SAME_LOWER"):
            out = []
            for size in (h, w):
                total = max((-(-size // s) - 1) * s + k - size, 0)
                small, big = total // 2, total - total // 2
                out.append((small, big) if ap == "SAME_UPPER" else (big, small))
            return (out[0][0], out[0][1], out[1][0], out[1][1])
        p = list(a.get("pads", [0, 0, 0, 0]))
        if len(p) != 4:
            raise NetworkError(f"{label}: pads={p} must have 4 values for a 2-D input")
        if any(v < 0 for v in p):
            raise NetworkError(f"{label}: negative pads={p} are not supported")
        # ONNX orders pads [top, left, bottom, right]
        return (int(p[0]), int(p[2]), int(p[1]), int(p[3]))

    def channel_vector(self, label, v, name, src):
        """A constant operand broadcast per channel: a scalar, [C, 1, 1] or
        [1, C, 1, 1] on [N, C, H, W]; a scalar, [F] or [1, F] on [N, F]."""
        c, h, w, flat = self.dims[src]
        shape = list(v.shape)
        if v.size == 1 and v.ndim <= (2 if flat else 4):
            return np.full(c, float(v.reshape(-1)[0]))
        ok = (shape in ([c], [1, c])) if flat else (shape in ([c, 1, 1], [1, c, 1, 1]))
        if not ok:
            want = f"[{c}] or [1, {c}]" if flat else f"[{c}, 1, 1] or [1, {c}, 1, 1]"
            raise NetworkError(f"{label}: constant {name!r} has shape {shape}; only a scalar or one value per "
                               f"channel ({want}) is supported")
        return v.reshape(-1).copy()

    # -- the walk
    def run(self, input_name: str):
        self.tensor[input_name] = INPUT
        needed = self.leading_to_output()
        for i, node in self.live:
            if i in self.done or i not in needed:
                continue
            label = _node_label(node, i)
            self.done.add(i)
            self.unused_extra_outputs(node, label)
            getattr(self, "op_" + node.op_type)(node, label, _attrs(node))
        if self.output in self.consts:
            raise NetworkError(f"the graph output {self.output!r} is a constant")
        out = self.tensor.get(self.output)
        if out is None:
            raise NetworkError(f"the graph output {self.output!r} does not depend on the graph input")
        if out == INPUT:
            raise NetworkError(f"the graph output {self.output!r} is its input: there is no layer")
        if not any(o.type in ("conv", "fc", "maxpool", "avgpool", "gap") for o in self.ops):
            raise NetworkError("the network has no conv, fc or maxpool layer")
        return self.ops, out

    def leading_to_output(self) -> set:
        """Indices of the live nodes the graph output depends on."""
        nodes = dict(self.live)
        need, todo = set(), [self.output]
        while todo:
            i = self.producer.get(todo.pop())
            if i is None or i in need:
                continue
            need.add(i)
            todo.extend(n for n in nodes[i].input if n and n not in self.consts)
        return need

    # -- layers
    def op_Conv(self, node, label, a):
        src = self.data(node, label)
        c, h, wd = self.need_4d(label, src)
        w = self.const(node, label, 1, "weight")
        if w.ndim != 4:
            raise NetworkError(f"{label}: weight has shape {list(w.shape)}; only 2-D convolutions are supported")
        cout, cin, kh, kw = w.shape
        g = int(a.get("group", 1))
        if g == 1 and cin != c:
            raise NetworkError(f"{label}: weight has {cin} input channels, its input has {c}")
        if g != 1 and (c % g or cout % g or cin != c // g):
            raise NetworkError(f"{label}: group={g} with a weight of {cin} input channels per group and {cout} "
                               f"outputs does not fit its input's {c} channels")
        if kh != kw:
            raise NetworkError(f"{label}: kernel {kh}x{kw} is not supported (only square kernels)")
        if "kernel_shape" in a and list(a["kernel_shape"]) != [kh, kw]:
            raise NetworkError(f"{label}: kernel_shape={list(a['kernel_shape'])} does not match the weight's "
                               f"{kh}x{kw}")
        k = kh
        if k not in isa.KERNELS:
            raise NetworkError(f"{label}: kernel {k}x{k} is not supported (supported: {isa.KERNELS})")
        s = a.get("strides", [1, 1])[0]
        if s not in isa.STRIDES:
            raise NetworkError(f"{label}: stride {s} is not supported (supported: {isa.STRIDES})")
        pads = self.pads_of(label, a, k, s, h, wd)
        if any(p >= k for p in pads):
            raise NetworkError(f"{label}: padding (top, bottom, left, right) {pads} is not supported: each "
                               f"side must be smaller than the kernel {k}")
        if k > h + pads[0] + pads[1] or k > wd + pads[2] + pads[3]:
            raise NetworkError(f"{label}: kernel {k} larger than the padded input "
                               f"{h + pads[0] + pads[1]}x{wd + pads[2] + pads[3]}")
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self.const(node, label, 2, "bias")
            if bias.shape != (cout,):
                raise NetworkError(f"{label}: bias has shape {list(bias.shape)}, expected [{cout}]")
        oh = layers.out_size(h, k, s, pads[0], pads[1])
        ow = layers.out_size(wd, k, s, pads[2], pads[3])
        # "pad" as a JSON description would give it; "pads" is what the compiler reads.
        attrs = {"out_channels": int(cout), "kernel": int(k), "stride": int(s),
                 "pad": pads[0] if len(set(pads)) == 1 else list(pads), "pads": pads, "groups": g}
        if bias is None:
            attrs["bias"] = False
        self.emit(node, "conv", [src], (cout, oh, ow, False), attrs, weight=w, bias=bias)

    def _fc(self, node, label, src, weight, bias, out=None):
        nout, nin = weight.shape
        flat = self.need_flat(label, src)
        if nin != flat:
            raise NetworkError(f"{label}: weight takes {nin} features, its input has {flat}")
        attrs = {"out_features": int(nout)}
        if bias is None:
            attrs["bias"] = False
        return self.emit(node, "fc", [src], (nout, 1, 1, True), attrs, out=out, weight=weight, bias=bias)

    def _bias_vector(self, label, v, n, what):
        """A bias broadcast along the features: shape [], [1], [n] or [1, n]."""
        if v.ndim > 2 or (v.ndim == 2 and v.shape[0] != 1) or v.size not in (1, n):
            raise NetworkError(f"{label}: {what} has shape {list(v.shape)}; expected [{n}] or [1, {n}]")
        return np.broadcast_to(v.reshape(-1), (n,)).copy()

    def op_Gemm(self, node, label, a):
        src = self.data(node, label)
        self.need_flat(label, src)
        b = self.const(node, label, 1, "weight B")
        if b.ndim != 2:
            raise NetworkError(f"{label}: weight B has shape {list(b.shape)}; expected 2-D")
        weight = b if a.get("transB", 0) else b.T
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self._bias_vector(label, self.const(node, label, 2, "bias C"), weight.shape[0], "bias C")
        self._fc(node, label, src, weight, bias)

    def op_MatMul(self, node, label, a):
        src = self.data(node, label)
        self.need_flat(label, src)
        w = self.const(node, label, 1, "weight")
        if w.ndim != 2:
            raise NetworkError(f"{label}: weight has shape {list(w.shape)}; expected 2-D [in, out]")
        out = node.output[0]
        bias = None
        # A following Add of a constant is this MatMul's bias (how MatMul-based
        # exporters write a fully connected layer).
        user = self.only_user(out, "Add")
        if user is not None:
            j, add = user
            other = [n for n in add.input if n != out]
            if len(other) == 1 and other[0] in self.consts:
                add_label = _node_label(add, j)
                bias = self._bias_vector(add_label, self.const(add, add_label, list(add.input).index(other[0]),
                                                               "bias"), w.shape[1], "bias")
                self.done.add(j)
                self.unused_extra_outputs(add, add_label)
                out = add.output[0]
        self._fc(node, label, src, w.T, bias, out=out)

    # -- element-wise
    def _computed_and_consts(self, node, label):
        data = [n for n in node.input if n and n not in self.consts]
        consts = [(j, n) for j, n in enumerate(node.input) if n and n in self.consts]
        return data, consts

    def _affine(self, node, label, src, scale, shift, out=None):
        c, h, w, flat = self.dims[src]
        return self.emit(node, "affine", [src], (c, h, w, flat), out=out, weight=scale, bias=shift)

    def _join_add(self, node, label, data):
        srcs = [self.tensor[n] for n in data]
        da, db = self.dims[srcs[0]], self.dims[srcs[1]]
        if da != db:
            show = [f"[N, {d[0]}]" if d[3] else f"[N, {d[0]}, {d[1]}, {d[2]}]" for d in (da, db)]
            raise NetworkError(f"{label}: {node.op_type} of {data[0]!r} {show[0]} and {data[1]!r} {show[1]}: "
                               f"only tensors of the same shape are supported (no broadcasting)")
        self.emit(node, "add", srcs, da)

    def op_Add(self, node, label, a):
        data, consts = self._computed_and_consts(node, label)
        if len(data) == 2 and not consts:
            return self._join_add(node, label, data)
        if len(data) != 1 or len(consts) != 1:
            raise NetworkError(f"{label}: {node.op_type} of {len(data)} computed tensors and {len(consts)} "
                               f"constants is not supported (two computed tensors, or one and a constant)")
        src = self.tensor[data[0]]
        j, name = consts[0]
        shift = self.channel_vector(label, self.const(node, label, j, "constant"), name, src)
        self._affine(node, label, src, np.ones_like(shift), shift)

    def op_Sum(self, node, label, a):
        inputs = [n for n in node.input if n]
        if len(inputs) == 1:
            return self.alias(node, self.data(node, label))
        if len(inputs) > 2:
            raise NetworkError(f"{label}: a Sum of {len(inputs)} tensors is not supported (only 2)")
        return self.op_Add(node, label, a)

    def op_Sub(self, node, label, a):
        data, consts = self._computed_and_consts(node, label)
        if len(data) != 1 or len(consts) != 1:
            raise NetworkError(f"{label}: a Sub is only supported with one computed tensor and a constant")
        src = self.tensor[data[0]]
        j, name = consts[0]
        v = self.channel_vector(label, self.const(node, label, j, "constant"), name, src)
        if j == 1:       # x - v
            self._affine(node, label, src, np.ones_like(v), -v)
        else:            # v - x
            self._affine(node, label, src, -np.ones_like(v), v)

    def op_Mul(self, node, label, a):
        data, consts = self._computed_and_consts(node, label)
        if len(data) != 1 or len(consts) != 1:
            raise NetworkError(f"{label}: a Mul is only supported with one computed tensor and a constant")
        src = self.tensor[data[0]]
        j, name = consts[0]
        scale = self.channel_vector(label, self.const(node, label, j, "constant"), name, src)
        shift = np.zeros_like(scale)
        out = node.output[0]
        # A following Add of a constant (a Caffe scale layer: Mul then Add)
        # makes one affine with it.
        user = self.only_user(out, "Add")
        if user is not None:
            k, add = user
            other = [(m, n) for m, n in enumerate(add.input) if n != out]
            if len(other) == 1 and other[0][1] in self.consts:
                add_label = _node_label(add, k)
                shift = self.channel_vector(add_label, self.const(add, add_label, other[0][0], "constant"),
                                            other[0][1], src)
                self.done.add(k)
                self.unused_extra_outputs(add, add_label)
                out = add.output[0]
        self._affine(node, label, src, scale, shift, out=out)

    def op_Concat(self, node, label, a):
        data, consts = self._computed_and_consts(node, label)
        if consts:
            raise NetworkError(f"{label}: a Concat with a constant input ({consts[0][1]!r}) is not supported")
        srcs = [self.tensor[n] for n in data]
        dims = [self.dims[s] for s in srcs]
        flat = dims[0][3]
        rank = 2 if flat else 4
        axis = a.get("axis", 1)
        if (axis + rank if axis < 0 else axis) != 1:
            raise NetworkError(f"{label}: axis={axis} is not supported (only the channel axis, 1)")
        for n, d in zip(data[1:], dims[1:]):
            if d[3] != flat or d[1:3] != dims[0][1:3]:
                show = [f"[N, {x[0]}]" if x[3] else f"[N, {x[0]}, {x[1]}, {x[2]}]" for x in (dims[0], d)]
                raise NetworkError(f"{label}: Concat of {data[0]!r} {show[0]} and {n!r} {show[1]}: the shapes "
                                   f"must differ in channels only")
        self.emit(node, "concat", srcs, (sum(d[0] for d in dims), dims[0][1], dims[0][2], flat))

    # -- activations
    def op_Relu(self, node, label, a):
        src = self.data(node, label)
        self.emit(node, "relu", [src], self.dims[src])

    def op_Clip(self, node, label, a):
        src = self.data(node, label)
        bounds = []
        for idx, key, default in ((1, "min", -np.inf), (2, "max", np.inf)):
            if self.opset < 11:
                v = float(a.get(key, default))
            elif idx < len(node.input) and node.input[idx]:
                c = self.const(node, label, idx, key)
                if c.size != 1:
                    raise NetworkError(f"{label}: its {key} has shape {list(c.shape)}; expected a scalar")
                v = float(c.reshape(-1)[0])
            else:
                v = default
            bounds.append(v)
        lo, hi = bounds
        if lo > hi:
            raise NetworkError(f"{label}: min {lo:g} is above max {hi:g}")
        self.emit(node, "clip", [src], self.dims[src], {"lo": lo, "hi": hi})

    def op_BatchNormalization(self, node, label, a):
        src = self.data(node, label)
        nch = self.dims[src][0]
        bn = {}
        for idx, key in enumerate(("gamma", "beta", "mean", "var"), start=1):
            v = self.const(node, label, idx, {"gamma": "scale", "beta": "bias", "mean": "mean",
                                              "var": "variance"}[key])
            if v.size != nch or v.ndim != 1:
                raise NetworkError(f"{label}: {key} has shape {list(v.shape)}, expected [{nch}]")
            bn[key] = v
        if np.any(bn["var"] < 0):
            raise NetworkError(f"{label}: variance has negative values")
        eps = float(a.get("epsilon", 1e-5))
        if not 0 < eps < np.inf:
            raise NetworkError(f"{label}: epsilon={eps} must be positive")
        bn["eps"] = eps
        self.emit(node, "batchnorm", [src], self.dims[src], {"eps": eps}, bn=bn)

    # -- pools
    def _pool_window(self, node, label, a, src):
        c, h, w = self.need_4d(label, src)
        if "kernel_shape" not in a:
            raise NetworkError(f"{label}: kernel_shape is missing")
        k = int(a["kernel_shape"][0])
        s = int(a.get("strides", [1, 1])[0])
        pads = self.pads_of(label, a, k, s, h, w)
        if any(p >= k for p in pads):
            raise NetworkError(f"{label}: padding (top, bottom, left, right) {pads} is not supported: each side "
                               f"must be smaller than the window {k}")
        if k > h + pads[0] + pads[1] or k > w + pads[2] + pads[3]:
            raise NetworkError(f"{label}: pool window {k} larger than its padded input "
                               f"{h + pads[0] + pads[1]}x{w + pads[2] + pads[3]}")
        if a.get("ceil_mode", 0) and ((h + pads[0] + pads[1] - k) % s or (w + pads[2] + pads[3] - k) % s):
            # ceil_mode changes nothing when the windows tile the input exactly.
            raise NetworkError(f"{label}: ceil_mode=1 is not supported here (it adds a partial window on a "
                               f"{h}x{w} input); only ceil_mode=0")
        oh = layers.out_size(h, k, s, pads[0], pads[1])
        ow = layers.out_size(w, k, s, pads[2], pads[3])
        return k, s, pads, (c, oh, ow, False)

    def op_MaxPool(self, node, label, a):
        src = self.data(node, label)
        if a.get("storage_order", 0):
            raise NetworkError(f"{label}: storage_order=1 is not supported")
        k, s, pads, dims = self._pool_window(node, label, a, src)
        self.emit(node, "maxpool", [src], dims, {"kernel": k, "stride": s,
                                                 "pad": pads[0] if len(set(pads)) == 1 else list(pads),
                                                 "pads": pads})

    def op_AveragePool(self, node, label, a):
        src = self.data(node, label)
        k, s, pads, dims = self._pool_window(node, label, a, src)
        cip = a.get("count_include_pad", 0)
        if cip not in (0, 1):
            raise NetworkError(f"{label}: count_include_pad={cip} must be 0 or 1")
        self.emit(node, "avgpool", [src], dims, {"kernel": k, "stride": s, "pads": pads,
                                                 "count_include_pad": bool(cip)})

    def op_GlobalAveragePool(self, node, label, a):
        src = self.data(node, label)
        c, _, _ = self.need_4d(label, src)
        self.emit(node, "gap", [src], (c, 1, 1, False))

    # -- shapes
    def _flatten(self, node, src):
        c, h, w, _ = self.dims[src]
        self.emit(node, "flatten", [src], (c * h * w, 1, 1, True))

    def op_Flatten(self, node, label, a):
        src = self.data(node, label)
        rank = 2 if self.dims[src][3] else 4
        axis = a.get("axis", 1)
        if (axis + rank if axis < 0 else axis) != 1:
            raise NetworkError(f"{label}: axis={axis} is not supported (only axis=1: [N, -1])")
        self._flatten(node, src)

    def _target(self, node, label, a):
        if len(node.input) > 1 and node.input[1]:
            shape = self.const(node, label, 1, "shape", float_=False)
        elif "shape" in a:          # opset < 5 kept the shape as an attribute
            shape = np.asarray(a["shape"])
        else:
            raise NetworkError(f"{label}: no target shape")
        return [int(v) for v in np.asarray(shape).reshape(-1)]

    def op_Reshape(self, node, label, a):
        src = self.data(node, label)
        c, h, w, flat = self.dims[src]
        target = self._target(node, label, a)
        batch = self.batch or 1
        dims = [batch, c] if flat else [batch, c, h, w]
        resolved = _resolve_shape(target, dims, a.get("allowzero", 0))
        if len(target) == 5:
            return self._shuffle(node, label, a, src, target, resolved)
        if resolved != [batch, int(np.prod(dims)) // batch]:
            raise NetworkError(f"{label}: reshape to {target} is not supported (only flattening to [N, -1])")
        self._flatten(node, src)

    def _shuffle(self, node, label, a, src, target, resolved):
        """Reshape [N, g, C/g, H, W] -> Transpose [0, 2, 1, 3, 4] -> Reshape
        [N, C, H, W]: exactly this, else an error naming the first Reshape."""
        c, h, w, flat = self.dims[src]
        batch = self.batch or 1

        def refuse(why):
            raise NetworkError(f"{label}: reshape to {target} (5-D) is only supported as the channel shuffle "
                               f"{SHUFFLE_PATTERN}; {why}")

        if flat:
            refuse(f"its input is flattened to [N, {c}]")
        g = resolved[1]
        if g < 1 or resolved != [batch, g, c // g, h, w] or c % g:
            refuse(f"its input is [N, {c}, {h}, {w}]")
        user = self.only_user(node.output[0], "Transpose")
        if user is None:
            refuse("it is not read by a Transpose alone")
        it, tr = user
        perm = list(_attrs(tr).get("perm", []))
        if perm != SHUFFLE_PERM:
            refuse(f"the Transpose {_node_label(tr, it)} has perm {perm}")
        user2 = self.only_user(tr.output[0], "Reshape")
        if user2 is None:
            refuse(f"the Transpose {_node_label(tr, it)} is not read by a Reshape alone")
        ir, back = user2
        back_label = _node_label(back, ir)
        back_target = self._target(back, back_label, _attrs(back))
        if _resolve_shape(back_target, [batch, c // g, g, h, w], _attrs(back).get("allowzero", 0)) != \
                [batch, c, h, w]:
            refuse(f"the last Reshape {back_label} reshapes to {back_target}, not [N, {c}, {h}, {w}]")
        for j, n in ((it, tr), (ir, back)):
            self.done.add(j)
            self.unused_extra_outputs(n, _node_label(n, j))
        self.emit(tr, "shuffle", [src], (c, h, w, False), {"groups": int(g), "perm": shuffle_perm(c, g)},
                  out=back.output[0])

    def op_Transpose(self, node, label, a):
        raise NetworkError(f"{label}: a Transpose is only supported inside the channel shuffle {SHUFFLE_PATTERN}")

    def op_Dropout(self, node, label, a):
        src = self.data(node, label)
        self.emit(node, "dropout", [src], self.dims[src])

    def op_Identity(self, node, label, a):
        self.alias(node, self.data(node, label))

    def _final_softmax(self, node, label, a):
        src = self.data(node, label)
        t = node.op_type
        if node.output[0] != self.output:
            raise NetworkError(f"{label}: {t} is only supported as the last node (where it is left out)")
        c, h, w, flat = self.dims[src]
        if not flat and (h, w) != (1, 1):
            raise NetworkError(f"{label}: {t} over a [N, {c}, {h}, {w}] tensor is not supported (only over class "
                               f"scores [N, C] or [N, C, 1, 1])")
        rank = 2 if flat else 4
        axis = a.get("axis", 1 if self.opset < 13 else -1)
        # Before opset 13 the axis splits [N, rest]: axis 1 covers C*1*1.
        if (axis + rank if axis < 0 else axis) != 1:
            raise NetworkError(f"{label}: axis={a.get('axis', 'default')} is not supported (only the class axis, 1)")
        if not self.quiet:
            print(f"uz: note: {label}: the final {t} is left out (the class scores keep their order; "
                  f"drop_final_softmax=False refuses it)", file=sys.stderr)
        self.alias(node, src)

    op_Softmax = op_LogSoftmax = _final_softmax


def _import(src, name, drop_final_softmax, quiet=False):
    """(Network, the _Importer that built it)."""
    model, what = _read_model(src)
    graph = model.graph
    opsets = {imp.domain or "": imp.version for imp in model.opset_import}
    opset = opsets.get("", opsets.get("ai.onnx"))
    if opset is None:
        raise NetworkError(f"{what} imports no standard ONNX opset")
    if len(graph.sparse_initializer):
        raise NetworkError(f"{what}: sparse initializers are not supported")
    consts = {}
    for t in graph.initializer:
        try:
            consts[t.name] = numpy_helper.to_array(t)
        except Exception as e:  # e.g. external data that is missing
            raise NetworkError(f"{what}: initializer {t.name!r} cannot be read: {_first_lines(e)}") from None
    input_name, shape, batch = _graph_input(graph, consts)
    if len(graph.output) != 1:
        names = ", ".join(repr(o.name) for o in graph.output)
        raise NetworkError(f"the graph has {len(graph.output)} outputs ({names}); only one is supported")
    live = _fold_constants(graph, opset, consts)
    for i, node in live:
        _check_node(node, _node_label(node, i), _attrs(node), consts, drop_final_softmax)
    importer = _Importer(graph, opset, consts, live, batch, shape, quiet)
    ops, output = importer.run(input_name)
    if name is None:
        # The file name says more than exporters' generic graph names ("main_graph").
        if isinstance(src, (str, os.PathLike)):
            name = os.path.splitext(os.path.basename(os.fspath(src)))[0]
        else:
            name = graph.name or "onnx"
    return Network(name, tuple(int(d) for d in shape), ops, output).check(), importer


def load_onnx(src, name: Optional[str] = None, *, drop_final_softmax: bool = True) -> Network:
    """Build a Network from an ONNX file path or an onnx.ModelProto.

    ``drop_final_softmax`` (default True): a last Softmax/LogSoftmax is left
    out, and one line on stderr says so (the network then outputs the class
    scores before it, in the same order); False makes it an error."""
    return _import(src, name, drop_final_softmax)[0]


# ------------------------------------------------------------- placeholders

def _weight_roles(live, consts) -> dict:
    """Constant tensor -> (role, fan_in) for every float constant a node reads
    as a weight: "weight" (He scale), "bias", "gamma", "beta", "mean", "var",
    "scale" (Mul), "shift" (Add/Sub). Other constants (shapes, bounds) have
    no role."""
    producers = {out: node for _, node in live for out in node.output if out}
    roles = {}
    for _, node in live:
        a = _attrs(node)
        for j, name in enumerate(node.input):
            if not name or name not in consts or name in roles:
                continue
            v = consts[name]
            if not np.issubdtype(v.dtype, np.floating) or v.size == 0:
                continue
            t = node.op_type
            role = None
            if t == "Conv":
                role = ("weight", int(np.prod(v.shape[1:]))) if j == 1 else ("bias", 0) if j == 2 else None
            elif t == "Gemm" and v.ndim == 2 and j == 1:
                role = ("weight", v.shape[1] if a.get("transB", 0) else v.shape[0])
            elif t == "Gemm" and j == 2:
                role = ("bias", 0)
            elif t == "MatMul" and v.ndim == 2:
                role = ("weight", v.shape[0] if j == 1 else v.shape[1])
            elif t == "BatchNormalization" and 1 <= j <= 4:
                role = (("gamma", "beta", "mean", "var")[j - 1], 0)
            elif t == "Mul":
                role = ("scale", 0)
            elif t in ("Add", "Sum", "Sub"):
                other = [n for n in node.input if n != name]
                after_matmul = any(producers.get(n) is not None and producers[n].op_type == "MatMul" for n in other)
                role = ("bias" if after_matmul else "shift", 0)
            if role is not None:
                roles[name] = role
    return roles


def realistic_weights(model, seed: int = 0, *, calibrate_bn: bool = True) -> "onnx.ModelProto":
    """The model with every weight replaced by seeded values at a realistic
    scale: conv and fc weights N(0, 2 / fan_in) (He; the fan-in of a group
    for grouped convs), biases N(0, 0.05), BatchNorm scale U(0.5, 1.5), bias
    and mean N(0, 0.1), variance U(0.5, 1.5), constant multipliers U(0.5,
    1.5) and constant addends N(0, 0.1). Made for the onnx package's "light"
    models, whose weights are ConstantOfShape placeholders (all 0.02), which
    let activations vanish or explode.

    ``calibrate_bn``: each BatchNorm's mean and variance are then set to the
    statistics of its input on a seeded random image (see
    ``_calibrate_batchnorm``), so activations stay in a trained network's
    range; this needs the model to import (``load_onnx``).

    Constant subgraphs are evaluated and stored as initializers (so the
    ConstantOfShape nodes go); the model is written at IR version 8 with its
    own opset. ``model`` is a path or an onnx.ModelProto (not modified)."""
    m, what = _read_model(model)
    graph = m.graph
    opsets = {imp.domain or "": imp.version for imp in m.opset_import}
    opset = opsets.get("", opsets.get("ai.onnx"))
    consts = {}
    for t in graph.initializer:
        consts[t.name] = numpy_helper.to_array(t)
    live = _fold_constants(graph, opset, consts)
    roles = _weight_roles(live, consts)
    rng = np.random.default_rng(seed)
    draw = {
        "weight": lambda shp, fan: rng.normal(0, np.sqrt(2.0 / max(fan, 1)), shp),
        "bias": lambda shp, fan: rng.normal(0, 0.05, shp),
        "gamma": lambda shp, fan: rng.uniform(0.5, 1.5, shp),
        "beta": lambda shp, fan: rng.normal(0, 0.1, shp),
        "mean": lambda shp, fan: rng.normal(0, 0.1, shp),
        "var": lambda shp, fan: rng.uniform(0.5, 1.5, shp),
        "scale": lambda shp, fan: rng.uniform(0.5, 1.5, shp),
        "shift": lambda shp, fan: rng.normal(0, 0.1, shp),
    }
    inits, seen = [], set()
    for _, node in live:     # in graph order, so the values depend on the seed alone
        for name in node.input:
            if not name or name not in consts or name in seen:
                continue
            seen.add(name)
            v = consts[name]
            if name in roles:
                role, fan = roles[name]
                v = draw[role](v.shape, fan).astype(v.dtype)
            inits.append(numpy_helper.from_array(np.asarray(v), name))
    inputs = [v for v in graph.input if v.name not in consts]
    new = helper.make_graph([node for _, node in live], graph.name, inputs, list(graph.output), inits)
    out = helper.make_model(new, opset_imports=list(m.opset_import), ir_version=IR_VERSION,
                            producer_name="uz realistic_weights")
    onnx.checker.check_model(out)
    if calibrate_bn and any(node.op_type == "BatchNormalization" for _, node in live):
        _calibrate_batchnorm(out, np.random.default_rng([seed, 1]))
    return out


def _calibrate_batchnorm(model, rng) -> None:
    """Scale each BatchNorm (in place) to its input on one seeded random
    image, in graph order, as a trained network's running statistics would:
    with r the RMS of its whole input, var = r**2 * U(0.5, 1.5) and mean =
    r * N(0, 0.1) per channel. Its output is then about gamma * x / r + beta,
    and activations stay near 1 however deep the network (residual sums grow
    as the square root of their count, not exponentially). Not per-channel
    statistics: a channel that is nearly dead on one image would be blown
    up; and not the input's own mean: subtracting that from inputs far from
    zero cancels digits, and float32 runtimes would then differ from the
    float64 golden model by more than their rounding. BatchNorms on a
    flattened or 1x1 input keep their drawn statistics."""
    net, imp = _import(model, None, True, quiet=True)
    bn_nodes = {imp.tensor[node.output[0]]: node for _, node in imp.live
                if node.op_type == "BatchNormalization" and node.output[0] in imp.tensor}
    x = rng.uniform(-1, 1, net.input_shape)
    left = {}
    for op in net.ops:
        for src in set(op.inputs):
            left[src] = left.get(src, 0) + 1
    outs = {INPUT: x}
    stats = {}
    for op in net.ops:
        ins = [outs[src] for src in op.inputs]
        c, h, w = net.shape(op.inputs[0])
        if op.type == "batchnorm" and op.name in bn_nodes and not imp.dims[op.inputs[0]][3] and h * w > 1:
            rms = max(float(np.sqrt(np.mean(ins[0] ** 2))), 1e-3)
            mean = rms * rng.normal(0, 0.1, c)
            var = rms ** 2 * rng.uniform(0.5, 1.5, c)
            node = bn_nodes[op.name]
            # as float32, what the model holds and onnxruntime computes with
            op.bn["mean"] = stats[node.input[3]] = mean.astype(np.float32).astype(np.float64)
            op.bn["var"] = stats[node.input[4]] = var.astype(np.float32).astype(np.float64)
        outs[op.name] = apply_op_float(op, ins)
        for src in set(op.inputs):
            left[src] -= 1
            if left[src] == 0:
                del outs[src]
    for t in model.graph.initializer:
        if t.name in stats:
            t.CopyFrom(numpy_helper.from_array(stats[t.name].astype(numpy_helper.to_array(t).dtype), t.name))


# ------------------------------------------------------------------ export

def network_to_onnx(net: Network) -> "onnx.ModelProto":
    """The Network as a checked ONNX model (opset 13), weights as float32
    initializers named like the .npz keys (``<layer>.weight`` ...). The input is
    [N, C, H, W] with a symbolic N. Engine options (rho, svd_*) are not ONNX
    concepts and are not written. An fc reading a 4-D tensor gets a Flatten
    before it, a conv reading a flattened one an Unsqueeze; an affine is a Mul
    and an Add, a shuffle Reshape -> Transpose -> Reshape."""
    _require_onnx()
    names = {op.name for op in net.ops}
    input_name = "input"
    while input_name in names:
        input_name += "_"
    nodes, inits = [], []

    def init(key, array, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=dtype), key))
        return key

    tensor = {INPUT: input_name}     # op name -> ONNX tensor
    flat = {INPUT: False}            # ONNX tensor is [N, F] rather than [N, C, H, W]
    for op in net.ops:
        ins = [tensor[s] for s in op.inputs]
        cur, is_flat = ins[0], flat[op.inputs[0]]
        out = op.name
        out_flat = is_flat
        a = op.attrs

        def per_channel(v):
            v = np.asarray(v)
            return v if is_flat else v.reshape(-1, 1, 1)

        if op.type == "conv":
            if is_flat:    # a depthwise conv of fold.affine_to_conv on features
                nodes.append(helper.make_node("Unsqueeze", [cur, init(f"{op.name}.axes", [2, 3], np.int64)],
                                              [op.name + "_4d"], name=op.name + "_4d"))
                cur = op.name + "_4d"
            pt, pb, pl, pr = a["pads"]
            cins = [cur, init(f"{op.name}.weight", op.weight)]
            if op.bias is not None:
                cins.append(init(f"{op.name}.bias", op.bias))
            k = op.weight.shape[2]
            extra = {"group": int(a["groups"])} if a.get("groups", 1) != 1 else {}
            nodes.append(helper.make_node("Conv", cins, [out], name=op.name, kernel_shape=[k, k],
                                          strides=[a["stride"]] * 2, pads=[pt, pl, pb, pr], **extra))
            out_flat = False
        elif op.type == "fc":
            if not is_flat:   # the Network's fc flattens its input itself; ONNX needs it said
                nodes.append(helper.make_node("Flatten", [cur], [op.name + "_flatten"],
                                              name=op.name + "_flatten", axis=1))
                cur = op.name + "_flatten"
            fins = [cur, init(f"{op.name}.weight", op.weight)]
            if op.bias is not None:
                fins.append(init(f"{op.name}.bias", op.bias))
            nodes.append(helper.make_node("Gemm", fins, [out], name=op.name, transB=1))
            out_flat = True
        elif op.type == "relu":
            nodes.append(helper.make_node("Relu", [cur], [out], name=op.name))
        elif op.type == "clip":
            cins = [cur, init(f"{op.name}.min", a["lo"]) if np.isfinite(a["lo"]) else "",
                    init(f"{op.name}.max", a["hi"]) if np.isfinite(a["hi"]) else ""]
            while cins[-1] == "":
                cins.pop()
            nodes.append(helper.make_node("Clip", cins, [out], name=op.name))
        elif op.type in ("maxpool", "avgpool"):
            k, s = a["kernel"], a["stride"]
            pt, pb, pl, pr = pool_pads(a)
            if op.type == "maxpool":
                nodes.append(helper.make_node("MaxPool", [cur], [out], name=op.name, kernel_shape=[k, k],
                                              strides=[s, s], pads=[pt, pl, pb, pr]))
            else:
                nodes.append(helper.make_node("AveragePool", [cur], [out], name=op.name, kernel_shape=[k, k],
                                              strides=[s, s], pads=[pt, pl, pb, pr],
                                              count_include_pad=int(bool(a["count_include_pad"]))))
        elif op.type == "gap":
            nodes.append(helper.make_node("GlobalAveragePool", [cur], [out], name=op.name))
        elif op.type == "batchnorm":
            bins = [cur] + [init(f"{op.name}.{key}", op.bn[key]) for key in ("gamma", "beta", "mean", "var")]
            nodes.append(helper.make_node("BatchNormalization", bins, [out], name=op.name,
                                          epsilon=float(op.bn["eps"])))
        elif op.type == "affine":
            nodes.append(helper.make_node("Mul", [cur, init(f"{op.name}.scale", per_channel(op.weight))],
                                          [op.name + "_scaled"], name=op.name))
            nodes.append(helper.make_node("Add", [op.name + "_scaled",
                                                  init(f"{op.name}.shift", per_channel(op.bias))],
                                          [out], name=op.name + "_shift"))
        elif op.type == "add":
            nodes.append(helper.make_node("Add", ins, [out], name=op.name))
        elif op.type == "concat":
            nodes.append(helper.make_node("Concat", ins, [out], name=op.name, axis=1))
        elif op.type == "shuffle":
            c, h, w = op.attrs["out_shape"]
            g = int(a["groups"])
            if list(a.get("perm", [])) != shuffle_perm(c, g):
                raise NetworkError(f"layer {op.name!r}: shuffle perm is not the channel shuffle of {g} groups")
            nodes.append(helper.make_node("Reshape", [cur, init(f"{op.name}.split", [0, g, c // g, h, w],
                                                                np.int64)],
                                          [op.name + "_split"], name=op.name + "_split"))
            nodes.append(helper.make_node("Transpose", [op.name + "_split"], [op.name + "_t"], name=op.name,
                                          perm=SHUFFLE_PERM))
            nodes.append(helper.make_node("Reshape", [op.name + "_t", init(f"{op.name}.merge", [0, c, h, w],
                                                                           np.int64)],
                                          [out], name=op.name + "_merge"))
        elif op.type == "flatten":
            nodes.append(helper.make_node("Flatten", [cur], [out], name=op.name, axis=1))
            out_flat = True
        elif op.type == "dropout":
            nodes.append(helper.make_node("Dropout", [cur], [out], name=op.name))
        else:
            raise NetworkError(f"layer {op.name!r}: op type {op.type!r} cannot be exported to ONNX")
        tensor[op.name], flat[op.name] = out, out_flat
    c, h, w = net.input_shape
    graph = helper.make_graph(
        nodes, net.name,
        [helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, ["N", c, h, w])],
        [helper.make_tensor_value_info(tensor[net.output], onnx.TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="uz")
    # Shape inference fills in the output shape, and checks every node.
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model)
    return model
