"""ONNX import and export: an ONNX model <-> golden.network.Network.

``load_onnx`` turns an ONNX model into the same Network that
``golden.network.load_network`` builds from JSON, so ``to_engine_layers`` and
``golden.compiler.compile_network`` take it unchanged. The engine runs one
chain of layers on one image, so the graph must be a single chain from one
float32 [N, C, H, W] input to one output, built from:

    Conv (group 1, dilation 1, square kernel, equal strides)  -> conv
    Gemm (transA 0, alpha = beta = 1), MatMul (+ Add bias)    -> fc
    Relu -> relu, MaxPool -> maxpool, BatchNormalization -> batchnorm,
    Flatten / Reshape to [N, -1] -> flatten, Dropout -> dropout, Identity -> nothing

Weights come from initializers, or from nodes computed from constants only
(Constant, ConstantOfShape, ...), which are evaluated at import. Anything else
raises NetworkError naming the node, its op type and what is not supported.

``network_to_onnx`` writes a Network, with its weights, as an ONNX model.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Optional

import numpy as np

from . import isa, layers
from .errors import NetworkError
from .network import Network, Op

try:
    import onnx
    from onnx import helper, numpy_helper
except ImportError:  # onnx is in requirements.txt; say so instead of a traceback
    onnx = None

# Models are written at opset 13 and IR version 8: onnx writes a newer IR by
# default than the onnxruntime in requirements.txt loads.
OPSET = 13
IR_VERSION = 8

SUPPORTED_OPS = ("Conv", "Gemm", "MatMul", "Add", "Relu", "MaxPool", "BatchNormalization",
                 "Flatten", "Reshape", "Dropout", "Identity")
#: Dropped when last and ``drop_final_softmax`` is set: they keep the order of
#: the class scores, so the argmax is unchanged.
FINAL_SOFTMAX_OPS = ("Softmax", "LogSoftmax")
#: Never folded as constants: each run draws new values.
RANDOM_OPS = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Bernoulli", "Multinomial")
AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")
POOL_KERNELS = (2, 3)        # the engine's pool windows (golden/isa.py pool_k)
POOL_STRIDES = (1, 2, 3)     # pool_s
#: Ops that join branches when given two computed tensors: named in their own
#: error, since then the graph is not a chain, whatever ops it uses.
JOIN_OPS = ("Sum", "Concat", "Mul", "Sub", "Max", "Min", "Mean")


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


def _check_node(node, label: str, a: dict, consts: dict, producers: dict, drop_final_softmax: bool) -> None:
    """Checks that need nothing but the node itself, run on every node before
    the chain is walked, so an unsupported op is reported as such even where
    the graph also branches."""
    t = node.op_type
    if t in FINAL_SOFTMAX_OPS:
        if not drop_final_softmax:
            raise NetworkError(f"{label}: {t} is not supported by the engine; as the last node it can be "
                               f"dropped with load_onnx(..., drop_final_softmax=True), which keeps the order "
                               f"of the class scores")
        return
    if t in JOIN_OPS and sum(n not in consts for n in node.input if n) > 1:
        raise NetworkError(f"{label}: {t} is not supported: it joins branches, and the engine runs a single "
                           f"chain of layers")
    if t not in SUPPORTED_OPS:
        raise NetworkError(f"{label}: {t} is not supported (supported: {', '.join(SUPPORTED_OPS)})")
    if t == "Conv":
        if a.get("group", 1) != 1:
            raise NetworkError(f"{label}: group={a['group']} is not supported (only group=1)")
        if any(d != 1 for d in a.get("dilations", [])):
            raise NetworkError(f"{label}: dilations={list(a['dilations'])} are not supported (only 1)")
    if t == "MaxPool":
        if any(d != 1 for d in a.get("dilations", [])):
            raise NetworkError(f"{label}: dilations={list(a['dilations'])} are not supported (only 1)")
    if t in ("Conv", "MaxPool"):
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
    if t == "Add":
        data = [n for n in node.input if n not in consts]
        if len(data) == 2:
            raise NetworkError(f"{label}: an Add of two computed tensors (a residual connection) is not "
                               f"supported: the engine runs a single chain of layers")
        src = producers.get(data[0]) if data else None
        if src is None or src.op_type != "MatMul":
            raise NetworkError(f"{label}: an Add is only supported as the bias of the MatMul right before it")


# ---------------------------------------------------------------- the chain

class _Importer:
    def __init__(self, graph, opset: int, consts: dict, live: list, batch, shape):
        self.opset = opset
        self.consts = consts
        self.live = live
        self.batch = batch
        self.c, self.h, self.w = shape
        self.flat = None                  # feature count once flattened (as in load_network)
        self.ops: list[Op] = []
        self.names: set = set()
        self.done: set = set()
        self.output = graph.output[0].name
        self.consumers = defaultdict(list)
        for i, node in live:
            for name in dict.fromkeys(n for n in node.input if n and n not in consts):
                self.consumers[name].append((i, node))

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

    def emit(self, node, type_, attrs=None, **kw) -> Op:
        name = self.op_name(node)
        op = Op(name, type_, {"name": name, "type": type_, **(attrs or {})}, **kw)
        op.attrs["out_shape"] = (self.flat, 1, 1) if self.flat is not None else (self.c, self.h, self.w)
        self.ops.append(op)
        return op

    def unused_extra_outputs(self, node, label):
        for name in node.output[1:]:
            if name and (self.consumers.get(name) or name == self.output):
                raise NetworkError(f"{label}: its output {name!r} is used; only the first output "
                                   f"({node.output[0]!r}) is supported")

    def need_4d(self, label):
        if self.flat is not None:
            raise NetworkError(f"{label}: its input is already flattened to [N, {self.flat}]")

    def need_flat(self, label):
        if self.flat is None:
            raise NetworkError(f"{label}: its input is [N, {self.c}, {self.h}, {self.w}]; "
                               f"flatten it to [N, -1] first")

    def pads_of(self, label, a, k, s):
        """(top, bottom, left, right) from pads or auto_pad."""
        ap = a.get("auto_pad", b"NOTSET")
        ap = ap.decode() if isinstance(ap, bytes) else ap
        if ap == "VALID":
            return (0, 0, 0, 0)
        if ap in ("SAME_UPPER", "SAME_LOWER"):
            out = []
            for size in (self.h, self.w):
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
        return (p[0], p[2], p[1], p[3])

    # -- the walk
    def run(self, input_name: str) -> list:
        t = input_name
        source = f"the graph input {t!r}"    # what produced t, for the messages
        while True:
            users = self.consumers.get(t, [])
            if t == self.output:
                if users:
                    raise NetworkError(f"{source} is the graph output and also feeds {_labels(users)}; "
                                       f"branching graphs are not supported")
                break
            if not users:
                raise NetworkError(f"{source} feeds no node and is not the graph output {self.output!r}")
            if len(users) > 1:
                raise NetworkError(f"{source} feeds {len(users)} nodes ({_labels(users)}); branching graphs "
                                   f"are not supported (the engine runs a single chain of layers)")
            i, node = users[0]
            label = _node_label(node, i)
            if node.input[0] != t and node.op_type != "Add":
                raise NetworkError(f"{label}: the computed tensor {t!r} must be its first (data) input")
            self.done.add(i)
            self.unused_extra_outputs(node, label)
            t = getattr(self, "op_" + node.op_type)(node, label, _attrs(node))
            source = f"{label}: its output {t!r}"
        for i, node in self.live:
            if i not in self.done:
                raise NetworkError(f"{_node_label(node, i)}: not on the path from the graph input to its "
                                   f"output; the graph must be a single chain of layers")
        if not any(o.type in ("conv", "fc", "maxpool") for o in self.ops):
            raise NetworkError("the network has no conv, fc or maxpool layer")
        return self.ops

    def op_Conv(self, node, label, a):
        self.need_4d(label)
        w = self.const(node, label, 1, "weight")
        if w.ndim != 4:
            raise NetworkError(f"{label}: weight has shape {list(w.shape)}; only 2-D convolutions are supported")
        cout, cin, kh, kw = w.shape
        if cin != self.c:
            raise NetworkError(f"{label}: weight has {cin} input channels, its input has {self.c}")
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
        pads = self.pads_of(label, a, k, s)
        if any(p >= k for p in pads):
            raise NetworkError(f"{label}: padding (top, bottom, left, right) {pads} is not supported: each "
                               f"side must be smaller than the kernel {k}")
        if k > self.h + pads[0] + pads[1] or k > self.w + pads[2] + pads[3]:
            raise NetworkError(f"{label}: kernel {k} larger than the padded input "
                               f"{self.h + pads[0] + pads[1]}x{self.w + pads[2] + pads[3]}")
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self.const(node, label, 2, "bias")
            if bias.shape != (cout,):
                raise NetworkError(f"{label}: bias has shape {list(bias.shape)}, expected [{cout}]")
        self.c = cout
        self.h = layers.out_size(self.h, k, s, pads[0], pads[1])
        self.w = layers.out_size(self.w, k, s, pads[2], pads[3])
        pads = tuple(int(p) for p in pads)
        # "pad" as a JSON description would give it; "pads" is what the compiler reads.
        attrs = {"out_channels": int(cout), "kernel": int(k), "stride": int(s),
                 "pad": pads[0] if len(set(pads)) == 1 else list(pads), "pads": pads}
        if bias is None:
            attrs["bias"] = False
        self.emit(node, "conv", attrs, weight=w, bias=bias)
        return node.output[0]

    def _fc(self, node, label, weight, bias):
        nout, nin = weight.shape
        if nin != self.flat:
            raise NetworkError(f"{label}: weight takes {nin} features, its input has {self.flat}")
        self.flat = int(nout)
        attrs = {"out_features": int(nout)}
        if bias is None:
            attrs["bias"] = False
        return self.emit(node, "fc", attrs, weight=weight, bias=bias)

    def _bias_vector(self, label, v, n, what):
        """A bias broadcast along the features: shape [], [1], [n] or [1, n]."""
        if v.ndim > 2 or (v.ndim == 2 and v.shape[0] != 1) or v.size not in (1, n):
            raise NetworkError(f"{label}: {what} has shape {list(v.shape)}; expected [{n}] or [1, {n}]")
        return np.broadcast_to(v.reshape(-1), (n,)).copy()

    def op_Gemm(self, node, label, a):
        self.need_flat(label)
        b = self.const(node, label, 1, "weight B")
        if b.ndim != 2:
            raise NetworkError(f"{label}: weight B has shape {list(b.shape)}; expected 2-D")
        weight = b if a.get("transB", 0) else b.T
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self._bias_vector(label, self.const(node, label, 2, "bias C"), weight.shape[0], "bias C")
        self._fc(node, label, weight, bias)
        return node.output[0]

    def op_MatMul(self, node, label, a):
        self.need_flat(label)
        w = self.const(node, label, 1, "weight")
        if w.ndim != 2:
            raise NetworkError(f"{label}: weight has shape {list(w.shape)}; expected 2-D [in, out]")
        out = node.output[0]
        bias = None
        users = self.consumers.get(out, [])
        # A following Add of a constant is this MatMul's bias (how MatMul-based
        # exporters write a fully connected layer).
        if len(users) == 1 and users[0][1].op_type == "Add" and out != self.output:
            j, add = users[0]
            other = [n for n in add.input if n != out]
            if len(other) == 1 and other[0] in self.consts:
                add_label = _node_label(add, j)
                bias = self._bias_vector(add_label, self.const(add, add_label, list(add.input).index(other[0]),
                                                               "bias"), w.shape[1], "bias")
                self.done.add(j)
                self.unused_extra_outputs(add, add_label)
                out = add.output[0]
        self._fc(node, label, w.T, bias)
        return out

    def op_Add(self, node, label, a):
        # A bias Add is consumed with its MatMul; any Add reached here is another kind.
        raise NetworkError(f"{label}: an Add is only supported as the bias of the MatMul right before it")

    def op_Relu(self, node, label, a):
        if not any(o.type in ("conv", "fc", "maxpool") for o in self.ops):
            raise NetworkError(f"{label}: a Relu needs a Conv, Gemm, MatMul or MaxPool before it (it is fused "
                               f"into that layer); here it comes first")
        self.emit(node, "relu")
        return node.output[0]

    def op_MaxPool(self, node, label, a):
        self.need_4d(label)
        if "kernel_shape" not in a:
            raise NetworkError(f"{label}: kernel_shape is missing")
        k = a["kernel_shape"][0]
        s = a.get("strides", [1, 1])[0]
        if k not in POOL_KERNELS or s not in POOL_STRIDES:
            raise NetworkError(f"{label}: max pool {k}x{k} stride {s} is not supported (windows "
                               f"{' or '.join(f'{p}x{p}' for p in POOL_KERNELS)}, stride "
                               f"{POOL_STRIDES[0]}..{POOL_STRIDES[-1]})")
        pads = self.pads_of(label, a, k, s)
        if len(set(pads)) != 1:
            raise NetworkError(f"{label}: padding (top, bottom, left, right) {pads} is not supported "
                               f"(only the same padding on every side)")
        p = pads[0]
        if p >= k:
            raise NetworkError(f"{label}: padding {p} is not supported (it must be smaller than the window {k})")
        if k > self.h + 2 * p or k > self.w + 2 * p:
            raise NetworkError(f"{label}: pool window {k} larger than its padded input "
                               f"{self.h + 2 * p}x{self.w + 2 * p}")
        if a.get("ceil_mode", 0) and ((self.h + 2 * p - k) % s or (self.w + 2 * p - k) % s):
            # ceil_mode changes nothing when the windows tile the input exactly.
            raise NetworkError(f"{label}: ceil_mode=1 is not supported here (it adds a partial window on a "
                               f"{self.h}x{self.w} input); only ceil_mode=0")
        self.h = layers.out_size(self.h, k, s, p, p)
        self.w = layers.out_size(self.w, k, s, p, p)
        self.emit(node, "maxpool", {"kernel": int(k), "stride": int(s), "pad": int(p)})
        return node.output[0]

    def _flatten(self, node):
        if self.flat is None:
            self.flat = self.c * self.h * self.w
        self.emit(node, "flatten")
        return node.output[0]

    def op_Flatten(self, node, label, a):
        rank = 2 if self.flat is not None else 4
        axis = a.get("axis", 1)
        if (axis + rank if axis < 0 else axis) != 1:
            raise NetworkError(f"{label}: axis={axis} is not supported (only axis=1: [N, -1])")
        return self._flatten(node)

    def op_Reshape(self, node, label, a):
        if len(node.input) > 1 and node.input[1]:
            shape = self.const(node, label, 1, "shape", float_=False)
        elif "shape" in a:          # opset < 5 kept the shape as an attribute
            shape = np.asarray(a["shape"])
        else:
            raise NetworkError(f"{label}: no target shape")
        target = [int(v) for v in np.asarray(shape).reshape(-1)]
        batch = self.batch or 1
        dims = [batch, self.flat] if self.flat is not None else [batch, self.c, self.h, self.w]
        total = int(np.prod(dims))
        resolved = [dims[j] if v == 0 and not a.get("allowzero", 0) and j < len(dims) else v
                    for j, v in enumerate(target)]
        if resolved.count(-1) == 1:
            known = int(np.prod([v for v in resolved if v != -1]))
            resolved[resolved.index(-1)] = total // known if known and total % known == 0 else -1
        if resolved != [batch, total // batch]:
            raise NetworkError(f"{label}: reshape to {target} is not supported (only flattening to [N, -1])")
        return self._flatten(node)

    def op_BatchNormalization(self, node, label, a):
        nch = self.flat if self.flat is not None else self.c
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
        # Folding goes through dropouts and earlier BatchNorms folded into the same layer.
        prev = next((o for o in reversed(self.ops) if o.type not in ("dropout", "batchnorm")), None)
        if prev is None or prev.type not in ("conv", "fc"):
            after = f"{prev.type} {prev.name!r}" if prev else "the graph input"
            raise NetworkError(f"{label}: a BatchNormalization must directly follow a Conv, Gemm or MatMul "
                               f"(it is folded into it); here it follows {after}")
        bn["eps"] = eps
        self.emit(node, "batchnorm", {"eps": eps}, bn=bn)
        return node.output[0]

    def op_Dropout(self, node, label, a):
        self.emit(node, "dropout")
        return node.output[0]

    def op_Identity(self, node, label, a):
        return node.output[0]

    def _final_softmax(self, node, label, a):
        if node.output[0] != self.output:
            raise NetworkError(f"{label}: {node.op_type} is only supported as the last node "
                               f"(dropped with drop_final_softmax=True)")
        self.need_flat(label)
        axis = a.get("axis", 1 if self.opset < 13 else -1)
        if (axis + 2 if axis < 0 else axis) != 1:
            raise NetworkError(f"{label}: axis={axis} is not supported (only the class axis, 1)")
        return node.output[0]

    op_Softmax = op_LogSoftmax = _final_softmax


def _labels(users) -> str:
    return ", ".join(_node_label(n, i) for i, n in users)


def load_onnx(src, name: Optional[str] = None, *, drop_final_softmax: bool = False) -> Network:
    """Build a Network from an ONNX file path or an onnx.ModelProto.

    ``drop_final_softmax``: a last Softmax/LogSoftmax is left out (the network
    then outputs the class scores before it, in the same order)."""
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
    producers = {out: node for _, node in live for out in node.output if out}
    for i, node in live:
        _check_node(node, _node_label(node, i), _attrs(node), consts, producers, drop_final_softmax)
    ops = _Importer(graph, opset, consts, live, batch, shape).run(input_name)
    if name is None:
        # The file name says more than exporters' generic graph names ("main_graph").
        if isinstance(src, (str, os.PathLike)):
            name = os.path.splitext(os.path.basename(os.fspath(src)))[0]
        else:
            name = graph.name or "onnx"
    return Network(name, tuple(int(d) for d in shape), ops)


# ------------------------------------------------------------------ export

def network_to_onnx(net: Network) -> "onnx.ModelProto":
    """The Network as a checked ONNX model (opset 13), weights as float32
    initializers named like the .npz keys (``<layer>.weight`` ...). The input is
    [N, C, H, W] with a symbolic N. Engine options (rho, svd_*) are not ONNX
    concepts and are not written."""
    _require_onnx()
    names = {op.name for op in net.ops}
    input_name = "input"
    while input_name in names:
        input_name += "_"
    nodes, inits = [], []

    def init(key, array):
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), key))
        return key

    cur = input_name
    flat = False
    for op in net.ops:
        out = op.name
        if op.type == "conv":
            pt, pb, pl, pr = op.attrs["pads"]
            ins = [cur, init(f"{op.name}.weight", op.weight)]
            if op.bias is not None:
                ins.append(init(f"{op.name}.bias", op.bias))
            k = op.weight.shape[2]
            nodes.append(helper.make_node("Conv", ins, [out], name=op.name, kernel_shape=[k, k],
                                          strides=[op.attrs["stride"]] * 2, pads=[pt, pl, pb, pr]))
        elif op.type == "fc":
            if not flat:   # the Network's fc flattens its input itself; ONNX needs it said
                nodes.append(helper.make_node("Flatten", [cur], [op.name + "_flatten"],
                                              name=op.name + "_flatten", axis=1))
                cur, flat = op.name + "_flatten", True
            ins = [cur, init(f"{op.name}.weight", op.weight)]
            if op.bias is not None:
                ins.append(init(f"{op.name}.bias", op.bias))
            nodes.append(helper.make_node("Gemm", ins, [out], name=op.name, transB=1))
        elif op.type == "relu":
            nodes.append(helper.make_node("Relu", [cur], [out], name=op.name))
        elif op.type == "maxpool":
            k, s, p = op.attrs["kernel"], op.attrs["stride"], op.attrs["pad"]
            nodes.append(helper.make_node("MaxPool", [cur], [out], name=op.name, kernel_shape=[k, k],
                                          strides=[s, s], pads=[p] * 4))
        elif op.type == "batchnorm":
            ins = [cur] + [init(f"{op.name}.{key}", op.bn[key]) for key in ("gamma", "beta", "mean", "var")]
            nodes.append(helper.make_node("BatchNormalization", ins, [out], name=op.name,
                                          epsilon=float(op.bn["eps"])))
        elif op.type == "flatten":
            nodes.append(helper.make_node("Flatten", [cur], [out], name=op.name, axis=1))
            flat = True
        elif op.type == "dropout":
            nodes.append(helper.make_node("Dropout", [cur], [out], name=op.name))
        else:
            raise NetworkError(f"layer {op.name!r}: op type {op.type!r} cannot be exported to ONNX")
        cur = out
    c, h, w = net.input_shape
    graph = helper.make_graph(
        nodes, net.name,
        [helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, ["N", c, h, w])],
        [helper.make_tensor_value_info(cur, onnx.TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="uz")
    # Shape inference fills in the output shape, and checks every node.
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model)
    return model
