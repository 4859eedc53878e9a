"""ONNX import (golden.onnx_import.load_onnx) and export (network_to_onnx).

The imported network's float forward is checked against onnxruntime on the
same model: float32 against float64, so a float tolerance is right here (the
bit-exact checks of the quantized network are in test_compiler.py). Every
unsupported construct must raise NetworkError naming the node and its op.
The real topologies come from the onnx package's "light" test models (the
model zoo's graphs with their weights replaced by ConstantOfShape nodes).
"""
from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from golden import arith, compiler, funcmodel, zoo
from golden.config import EngineConfig
from golden.errors import NetworkError
from golden.network import forward_float, load_network, to_engine_layers
from golden.onnx_import import IR_VERSION, OPSET, load_onnx, network_to_onnx
from onnx_util import run_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "golden", "networks", "example5.json")
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
RTOL = ATOL = 1e-5


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


class Chain:
    """A sequential ONNX graph, one node after another on the current tensor.
    Weights are He-scaled random: outputs stay near 1, where float32
    tolerances mean something."""

    def __init__(self, shape=(3, 12, 12), batch="N", seed=0, elem_type=TensorProto.FLOAT):
        self.elem_type = elem_type
        self.rng = _rng("chain", shape, seed)
        self.nodes, self.inits = [], []
        self.inputs = [helper.make_tensor_value_info("x", elem_type, [batch, *shape])]
        self.cur = "x"
        self.count = 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def shape(self):
        """The current tensor's shape, by onnx shape inference."""
        m = onnx.shape_inference.infer_shapes(self.model(check=False))
        for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
            if vi.name == self.cur:
                return [d.dim_value or d.dim_param for d in vi.type.tensor_type.shape.dim]
        raise AssertionError(f"no shape for {self.cur}")

    def node(self, op, *inputs, name=None, n_out=1, **attrs):
        self.count += 1
        name = name if name is not None else f"{op.lower()}{self.count}"
        tensor = name or f"t{self.count}"
        outs = [f"{tensor}_out"] + [f"{tensor}_out{i}" for i in range(1, n_out)]
        self.nodes.append(helper.make_node(op, [self.cur, *inputs], outs, name=name, **attrs))
        self.cur = outs[0]
        return self

    def _w(self, key, shape, fan_in):
        return self.const(key, (self.rng.normal(0, np.sqrt(2.0 / fan_in), shape)).astype(np.float32))

    def _b(self, key, n):
        return self.const(key, self.rng.normal(0, 0.1, n).astype(np.float32))

    def conv(self, cout, k, stride=1, pads=None, bias=True, kernel=None, group=1, **attrs):
        cin = self.shape()[1]
        kh, kw = kernel or (k, k)
        n = self.count + 1
        ins = [self._w(f"w{n}", (cout, cin // group, kh, kw), cin * kh * kw)]
        if bias:
            ins.append(self._b(f"b{n}", cout))
        if pads is not None:
            attrs["pads"] = pads
        if group != 1:
            attrs["group"] = group
        return self.node("Conv", *ins, kernel_shape=[kh, kw], strides=[stride, stride], **attrs)

    def bn(self, **attrs):
        c = self.shape()[1]
        n = self.count + 1
        r = self.rng
        ins = [self.const(f"g{n}", r.uniform(0.5, 1.5, c).astype(np.float32)),
               self.const(f"be{n}", r.normal(0, 0.1, c).astype(np.float32)),
               self.const(f"m{n}", r.normal(0, 0.1, c).astype(np.float32)),
               self.const(f"v{n}", r.uniform(0.5, 1.5, c).astype(np.float32))]
        return self.node("BatchNormalization", *ins, **attrs)

    def relu(self, **kw):
        return self.node("Relu", **kw)

    def maxpool(self, k, s, pads=None, **attrs):
        if pads is not None:
            attrs["pads"] = pads
        return self.node("MaxPool", kernel_shape=[k, k], strides=[s, s], **attrs)

    def flatten(self, **attrs):
        return self.node("Flatten", **attrs)

    def reshape(self, target):
        return self.node("Reshape", self.const(f"shape{self.count + 1}", np.array(target, np.int64)))

    def gemm(self, nout, trans_b=1, bias=True, **attrs):
        nin = self.shape()[1]
        n = self.count + 1
        ins = [self._w(f"w{n}", (nout, nin) if trans_b else (nin, nout), nin)]
        if bias:
            ins.append(self._b(f"b{n}", nout))
        return self.node("Gemm", *ins, transB=trans_b, **attrs)

    def matmul(self, nout, bias=True, bias_shape=None):
        nin = self.shape()[1]
        n = self.count + 1
        self.node("MatMul", self._w(f"w{n}", (nin, nout), nin))
        if bias:
            b = self.rng.normal(0, 0.1, bias_shape or (nout,)).astype(np.float32)
            self.node("Add", self.const(f"b{n}", b))
        return self

    def model(self, outputs=None, check=True) -> onnx.ModelProto:
        outs = [helper.make_tensor_value_info(o, self.elem_type, None) for o in (outputs or [self.cur])]
        graph = helper.make_graph(self.nodes, "chain", self.inputs, outs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
        if check:
            m = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
            onnx.checker.check_model(m)
        return m


def assert_same_as_onnxruntime(model, net, n_images=2, seed=0):
    c, h, w = net.input_shape
    x = _rng("x", seed, net.input_shape).uniform(-1, 1, (n_images, c, h, w)).astype(np.float32)
    (want,) = run_model(model, {model.graph.input[0].name: x})
    for i in range(n_images):
        got = forward_float(net, x[i]).reshape(-1)
        ref = np.asarray(want[i], dtype=np.float64).reshape(-1)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL * max(1.0, float(np.abs(ref).max())))


# ------------------------------------------------- float against onnxruntime

MODELS = {
    "conv_bn_relu_pool_gemm": lambda b: b.conv(8, 3, pads=[1, 1, 1, 1]).bn().relu().maxpool(2, 2)
    .flatten().gemm(10),
    "asym_pads_stride2_reshape_gemm_transB0": lambda b: b.conv(6, 5, stride=2, pads=[0, 1, 2, 3]).relu()
    .maxpool(3, 2, pads=[1, 1, 1, 1]).reshape([0, -1]).gemm(12, trans_b=0).relu().node("Dropout")
    .gemm(5, bias=False),
    "same_upper_matmul_add_bn": lambda b: b.conv(8, 3, stride=2, auto_pad="SAME_UPPER").relu()
    .conv(8, 1, bias=False).maxpool(3, 1, pads=[1, 1, 1, 1]).flatten().matmul(16).bn().relu()
    .matmul(7, bias_shape=(1, 7)),
    "same_lower_k7_valid_identity": lambda b: b.conv(4, 7, stride=3, auto_pad="SAME_LOWER").node("Identity")
    .conv(5, 3, auto_pad="VALID").relu().maxpool(2, 1).flatten().matmul(3, bias=False),
    "conv_bn_bn_dropout_bn": lambda b: b.conv(4, 3).bn().node("Dropout").bn().relu().flatten().gemm(3).bn(),
    "k11_stride4_ceil_exact": lambda b: b.conv(8, 11, stride=4, pads=[2, 2, 2, 2]).relu()
    .maxpool(3, 2, ceil_mode=1).flatten().gemm(10).node("Dropout", n_out=2),
}
SHAPES = {"k11_stride4_ceil_exact": (3, 39, 39)}  # 9x9 after the conv: 3x3/2 windows tile it


@pytest.mark.parametrize("kind", list(MODELS))
def test_forward_equals_onnxruntime(kind):
    b = Chain(SHAPES.get(kind, (3, 12, 12)), seed=kind)
    MODELS[kind](b)
    model = b.model()
    net = load_onnx(model)
    assert_same_as_onnxruntime(model, net)


def test_imported_ops_mirror_load_network():
    """The ops look as load_network builds them, so the compiler takes them unchanged."""
    model = MODELS["same_upper_matmul_add_bn"](Chain(seed=1)).model()
    net = load_onnx(model, name="m")
    assert net.name == "m" and net.input_shape == (3, 12, 12)
    assert [o.type for o in net.ops] == ["conv", "relu", "conv", "maxpool", "flatten", "fc", "batchnorm",
                                         "relu", "fc"]
    c1, _, c2, pool, _, fc1, bn, _, fc2 = net.ops
    assert c1.attrs["pads"] == (0, 1, 0, 1) and c1.attrs["stride"] == 2 and c1.attrs["kernel"] == 3
    assert c1.attrs["out_shape"] == (8, 6, 6) and c1.weight.dtype == np.float64
    assert c2.bias is None and c2.attrs["bias"] is False
    assert pool.attrs == {"name": pool.name, "type": "maxpool", "kernel": 3, "stride": 1, "pad": 1,
                          "pads": (1, 1, 1, 1), "out_shape": (8, 6, 6)}
    assert [o.inputs for o in net.ops] == [["input"]] + [[o.name] for o in net.ops[:-1]]
    assert net.output == fc2.name and net.is_chain()
    assert fc1.weight.shape == (16, 288) and fc1.attrs["out_shape"] == (16, 1, 1)
    assert fc1.name == "matmul" + fc1.name[6:] and fc1.bias.shape == (16,)
    assert bn.bn["eps"] == 1e-5 and set(bn.bn) == {"gamma", "beta", "mean", "var", "eps"}
    assert fc2.bias.shape == (7,)
    kinds = [L.kind.name for L in to_engine_layers(net)]
    assert kinds == ["CONV", "CONV", "FC", "FC"]


def test_weights_in_constant_nodes():
    """Weights held by Constant nodes (as some exporters write them) are evaluated at import."""
    b = Chain((2, 6, 6))
    w = b.rng.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32)
    b.nodes.append(helper.make_node("Constant", [], ["wc"], value=numpy_helper.from_array(w, "wc")))
    b.conv(3, 3, bias=False)
    b.nodes[-1].input[1] = "wc"
    b.relu().flatten().gemm(4)
    model = b.model()
    net = load_onnx(model)
    np.testing.assert_array_equal(net.ops[0].weight, w)
    assert_same_as_onnxruntime(model, net)


def test_fixed_batch_and_reshape_to_batch():
    b = Chain((1, 8, 8), batch=3)
    b.conv(2, 3, pads=[1, 1, 1, 1]).relu().reshape([3, 128]).gemm(4)
    model = b.model()
    net = load_onnx(model)
    assert [o.type for o in net.ops] == ["conv", "relu", "flatten", "fc"]
    assert_same_as_onnxruntime(model, net, n_images=3)


def test_drop_final_softmax(capsys):
    """A last Softmax is left out by default, with one line on stderr; the
    option refuses it (it used to be the default: changed as the graph
    import asked)."""
    b = Chain((1, 6, 6))
    b.conv(4, 3).relu().flatten().gemm(5).node("Softmax", name="prob")
    with pytest.raises(NetworkError, match=r"node 'prob' \(Softmax\): Softmax is not supported"):
        load_onnx(b.model(), drop_final_softmax=False)
    capsys.readouterr()
    net = load_onnx(b.model())
    assert net.ops[-1].type == "fc" and net.output == net.ops[-1].name
    err = capsys.readouterr().err
    assert err == ("uz: note: node 'prob' (Softmax): the final Softmax is left out (the class scores keep "
                   "their order; drop_final_softmax=False refuses it)\n")
    b.relu()  # a Softmax that is not last stays an error
    with pytest.raises(NetworkError, match=r"node 'prob' \(Softmax\): Softmax is only supported as the last"):
        load_onnx(b.model())


def test_final_softmax_over_4d_class_scores(capsys):
    """SqueezeNet ends GlobalAveragePool -> Softmax on [N, C, 1, 1]."""
    b = Chain((2, 6, 6)).conv(5, 3).relu()
    b.node("GlobalAveragePool")
    scores = b.cur
    b.node("Softmax", name="prob", axis=1)
    net = load_onnx(b.model())
    assert net.ops[-1].type == "gap" and "left out" in capsys.readouterr().err
    assert_same_as_onnxruntime(b.model(outputs=[scores]), net)
    b2 = Chain((2, 6, 6)).conv(5, 3).relu().node("Softmax", name="prob", axis=1)
    with pytest.raises(NetworkError, match=r"node 'prob' \(Softmax\): Softmax over a \[N, 5, 4, 4\] tensor is "
                                           r"not supported"):
        load_onnx(b2.model())
    b3 = Chain((2, 6, 6)).conv(5, 3).relu().node("GlobalAveragePool").node("Softmax", name="prob")
    with pytest.raises(NetworkError, match=r"node 'prob' \(Softmax\): axis=default is not supported"):
        load_onnx(b3.model())   # opset 13's default axis -1 is W here, not the classes


# --------------------------------------------------------------- round trip

def test_round_trip_of_a_golden_network(tmp_path):
    net = load_network(EXAMPLE)
    path = tmp_path / "example5.onnx"
    onnx.save(network_to_onnx(net), str(path))
    back = load_onnx(str(path))
    assert back.name == "example5" and back.input_shape == net.input_shape
    # The export adds a Flatten before the first FC (ONNX's Gemm needs 2-D input).
    ops = [o for o in back.ops if o.type != "flatten"]
    assert [(o.name, o.type) for o in ops] == [(o.name, o.type) for o in net.ops]
    for a, o in zip(ops, net.ops):
        for key in ("weight", "bias"):
            if getattr(o, key) is not None:
                np.testing.assert_array_equal(getattr(a, key), getattr(o, key).astype(np.float32))
        if o.bn is not None:
            for key in ("gamma", "beta", "mean", "var"):
                np.testing.assert_array_equal(a.bn[key], o.bn[key].astype(np.float32))
            assert a.bn["eps"] == pytest.approx(o.bn["eps"])
        assert (a.bias is None) == (o.bias is None)
        # the attributes load_network normalises (a JSON file may leave out "pad" and "bias")
        keys = ("stride", "pads", "kernel", "out_shape", "out_channels", "out_features")
        for key in keys + (("pad",) if o.type == "maxpool" else ()):
            assert a.attrs.get(key) == o.attrs.get(key), (o.name, key)
    x = _rng("rt").normal(size=net.input_shape)
    np.testing.assert_allclose(forward_float(back, x), forward_float(net, x), rtol=1e-5, atol=1e-5)
    assert_same_as_onnxruntime(onnx.load(str(path)), back)


def test_round_trip_of_an_imported_model():
    model = MODELS["asym_pads_stride2_reshape_gemm_transB0"](Chain(seed=2)).model()
    net = load_onnx(model)
    again = load_onnx(network_to_onnx(net))
    assert [(o.name, o.type) for o in again.ops] == [(o.name, o.type) for o in net.ops]
    x = _rng("rt2").uniform(-1, 1, net.input_shape)
    # equal up to the summation order of a transposed weight
    np.testing.assert_allclose(forward_float(again, x), forward_float(net, x), rtol=1e-12, atol=1e-12)


# -------------------------------------------------------------------- graphs

def _fork(b):
    """The current tensor, to come back to (``b.cur = t``)."""
    return b.cur


def _residual_block(b):
    b.conv(4, 3, pads=[1, 1, 1, 1]).relu()
    skip = _fork(b)
    b.conv(4, 3, pads=[1, 1, 1, 1]).bn().relu().conv(4, 1).bn()
    return b.node("Add", skip, name="res").relu()


def _sum_concat(b):
    b.conv(3, 1).relu()
    a = _fork(b)
    b.conv(3, 3, pads=[1, 1, 1, 1])
    b.node("Sum", a, name="sum")
    s_ = _fork(b)
    b.cur = a
    b.conv(2, 3, pads=[1, 1, 1, 1])
    b.node("Concat", s_, a, name="cat", axis=-3)             # 3 inputs, axis -3 = channels
    return b.maxpool(2, 2).flatten().gemm(6)


def _grouped(b):
    b.conv(8, 3, pads=[1, 1, 1, 1]).relu()
    b.conv(8, 3, pads=[1, 0, 2, 1], group=2).relu()          # grouped, asymmetric pads
    b.conv(8, 3, stride=2, pads=[1, 1, 1, 1], group=8)       # depthwise
    return b.conv(6, 1, group=2).node("GlobalAveragePool").flatten().gemm(4)


def _pools(b):
    b.conv(4, 3, pads=[1, 1, 1, 1])
    b.node("AveragePool", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 0, 0, 1])          # count_include_pad 0
    b.node("AveragePool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    b.node("AveragePool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)               # tiles 6x6 exactly
    return b.flatten().gemm(5)


def _maxpools(b):
    b.conv(4, 3, pads=[1, 1, 1, 1])
    b.maxpool(3, 2, pads=[0, 0, 1, 1])       # asymmetric: [top, left, bottom, right]
    b.maxpool(5, 1, pads=[2, 2, 2, 2])       # windows the engine does not have
    return b.maxpool(3, 3).flatten().gemm(3)


def _affines(b):
    c = 4
    b.conv(c, 3, pads=[1, 1, 1, 1])
    r = b.rng
    b.node("Mul", b.const("s1", r.uniform(0.5, 1.5, (c, 1, 1)).astype(np.float32)), name="scale1")
    b.node("Add", b.const("t1", r.normal(0, 0.1, (1, c, 1, 1)).astype(np.float32)), name="shift1")
    b.node("Sub", b.const("t2", np.float32(0.25)), name="sub1")
    b.nodes.append(helper.make_node("Sub", [b.const("t3", r.normal(0, 0.1, (c, 1, 1)).astype(np.float32)), b.cur],
                                    ["neg_out"], name="neg"))
    b.cur = "neg_out"
    b.node("Mul", b.const("s2", np.float32(-1.5)), name="scale2")
    b.node("Add", b.const("t4", np.float32(0.1)), name="shift2")
    b.relu().flatten().gemm(7)
    b.node("Add", b.const("t5", r.normal(0, 0.1, 7).astype(np.float32)), name="fshift")
    return b.node("Mul", b.const("s5", r.uniform(0.5, 1.5, (1, 7)).astype(np.float32)), name="fscale")


def _clips(b):
    b.conv(4, 3, pads=[1, 1, 1, 1])
    b.node("Clip", b.const("zero", np.float32(0)), b.const("six", np.float32(6)), name="relu6")
    b.conv(4, 3, pads=[1, 1, 1, 1]).node("Clip", b.const("lo", np.float32(-0.5)), name="lo_only")
    b.conv(4, 3, pads=[1, 1, 1, 1]).node("Clip", "", b.const("hi", np.float32(0.3)), name="hi_only")
    return b.flatten().gemm(3)


def _shuffles(b):
    b.conv(8, 1).relu()
    b.node("Reshape", b.const("split", np.array([0, 2, 4, 12, 12], np.int64)), name="sh_split")
    b.node("Transpose", name="shuffle", perm=[0, 2, 1, 3, 4])
    b.node("Reshape", b.const("back", np.array([0, 8, 12, 12], np.int64)), name="sh_back")
    b.conv(8, 3, pads=[1, 1, 1, 1], group=8)
    b.node("Reshape", b.const("split2", np.array([-1, 4, 2, 12, 12], np.int64)), name="sh2_split")
    b.node("Transpose", name="shuffle2", perm=[0, 2, 1, 3, 4])
    b.node("Reshape", b.const("back2", np.array([-1, 8, 12, 12], np.int64)), name="sh2_back")
    return b.node("GlobalAveragePool").flatten().gemm(3)


def _bn_anywhere(b):
    b.bn(name="bn_in").relu(name="r_in")                      # on the network input (pre-activation)
    b.conv(4, 3, pads=[1, 1, 1, 1])
    a = _fork(b)
    b.conv(4, 1)
    b.node("Concat", a, axis=1).bn(name="bn_cat").relu()     # after a concat: DenseNet's pattern
    return b.maxpool(2, 2).bn(name="bn_pool").flatten().gemm(5).bn(name="bn_fc")


def _input_read_twice(b):
    b.conv(2, 3, pads=[1, 1, 1, 1])                          # 2 channels, like the input
    b.node("Add", "x", name="plus_input")
    return b.node("Add", "x", name="again").flatten().gemm(3)


GRAPH_MODELS = {
    "residual": (_residual_block, {"add": 1, "batchnorm": 2}),
    "sum_concat": (_sum_concat, {"add": 1, "concat": 1}),
    "grouped_depthwise": (_grouped, {"conv": 4, "gap": 1}),
    "avgpools": (_pools, {"avgpool": 3}),
    "maxpools": (_maxpools, {"maxpool": 3}),
    "affine_constants": (_affines, {"affine": 6}),
    "clips": (_clips, {"clip": 3}),
    "shuffles": (_shuffles, {"shuffle": 2}),
    "batchnorm_anywhere": (_bn_anywhere, {"batchnorm": 4, "concat": 1}),
    "input_read_twice": (_input_read_twice, {"add": 2}),
}


@pytest.mark.parametrize("kind", list(GRAPH_MODELS))
def test_graph_equals_onnxruntime(kind):
    from golden.passes.fold import fold

    build, counts = GRAPH_MODELS[kind]
    b = Chain((2, 12, 12), seed=kind)
    build(b)
    model = b.model()
    net = load_onnx(model)
    assert {t: sum(o.type == t for o in net.ops) for t in counts} == counts
    assert_same_as_onnxruntime(model, net)
    x = _rng("fold", kind).uniform(-1, 1, net.input_shape)
    ref = forward_float(net, x)
    assert_float_close(forward_float(fold(net), x), ref, 1e-9)
    # and back: the exported graph runs the same in onnxruntime, and imports as the same ops
    exported = network_to_onnx(net)
    assert_same_as_onnxruntime(exported, net)
    again = load_onnx(exported)
    assert [(o.name, o.type, o.inputs) for o in again.ops] == [(o.name, o.type, o.inputs) for o in net.ops]
    assert_float_close(forward_float(again, x), ref, 1e-6)


def assert_float_close(got, ref, rel):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape
    assert float(np.abs(got - ref).max()) <= rel * max(float(np.abs(ref).max()), 1e-30)


def test_graph_ops_as_imported():
    """Inputs, shapes and attributes of the graph ops."""
    b = Chain((2, 12, 12), seed="ops")
    _residual_block(b)
    net = load_onnx(b.model())
    res = net.op("res")
    assert res.type == "add" and len(res.inputs) == 2 and res.attrs["out_shape"] == (4, 12, 12)
    assert net.consumers(res.inputs[1])[-1] is res and len(net.consumers(res.inputs[1])) == 2
    b = Chain((2, 12, 12), seed="ops")
    _shuffles(b)
    net = load_onnx(b.model())
    sh = net.op("shuffle")
    assert sh.attrs["groups"] == 2 and sh.attrs["perm"] == [0, 4, 1, 5, 2, 6, 3, 7]
    assert net.op("shuffle2").attrs["perm"] == [0, 2, 4, 6, 1, 3, 5, 7]
    b = Chain((2, 12, 12), seed="ops")
    _affines(b)
    net = load_onnx(b.model())
    aff = [o for o in net.ops if o.type == "affine"]
    # Mul then Add of constants is one affine; Sub x - c and c - x; on the flattened features too
    assert [o.name for o in aff] == ["scale1", "sub1", "neg", "scale2", "fshift", "fscale"]
    assert aff[0].weight.shape == (4,) and np.all(aff[0].bias != 0)          # shift1 merged in
    assert np.all(net.op("sub1").bias == -0.25) and np.all(net.op("scale2").bias == np.float32(0.1))
    assert net.op("fshift").weight.shape == (7,)
    neg = net.op("neg")
    assert np.all(neg.weight == -1)
    b = Chain((2, 12, 12), seed="ops")
    _pools(b)
    pools = [o for o in load_onnx(b.model()).ops if o.type == "avgpool"]
    assert [(p.attrs["kernel"], p.attrs["stride"], p.attrs["pads"], p.attrs["count_include_pad"]) for p in pools] \
        == [(3, 1, (1, 0, 0, 1), False), (3, 2, (1, 1, 1, 1), True), (2, 2, (0, 0, 0, 0), False)]


def test_dead_branch_is_left_out():
    """A node that does not lead to the output (formerly "branching graphs
    are not supported") is not imported."""
    model = _branch_model()
    net = load_onnx(model)
    assert "side_relu" not in [o.name for o in net.ops]
    assert_same_as_onnxruntime(model, net)


def test_former_join_errors_import():
    """The models of the former errors "an Add of two computed tensors (a
    residual connection) is not supported" and "Concat is not supported: it
    joins branches"."""
    for model, join in ((_residual_model(), "res_add"), (_concat_model(), "cat")):
        net = load_onnx(model)
        assert len(net.op(join).inputs) == 2
        assert_same_as_onnxruntime(model, net)


def test_clip_attributes_before_opset_11():
    b = Chain((2, 6, 6)).conv(3, 3)
    b.node("Clip", name="c6", min=0.0, max=6.0)
    b.flatten().gemm(2)
    graph = helper.make_graph(b.nodes, "clip9", b.inputs, [helper.make_tensor_value_info(b.cur, TensorProto.FLOAT,
                                                                                         None)], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=IR_VERSION)
    model = onnx.shape_inference.infer_shapes(model)
    net = load_onnx(model)
    assert (net.op("c6").attrs["lo"], net.op("c6").attrs["hi"]) == (0.0, 6.0)
    assert_same_as_onnxruntime(model, net)


def test_graph_network_round_trip(tmp_path):
    """A JSON graph network with every op type, exported and run by onnxruntime."""
    spec = {"name": "g", "input_shape": [4, 10, 10], "weights": {"seed": 3}, "layers": [
        {"name": "bn0", "type": "batchnorm"},
        {"name": "c1", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1},
        {"name": "r1", "type": "relu6"},
        {"name": "c2", "type": "conv", "out_channels": 8, "kernel": 3, "pad": [1, 1, 0, 2], "groups": 2,
         "inputs": ["r1"]},
        {"name": "p2", "type": "maxpool", "kernel": 2, "stride": 1, "pad": [0, 1, 1, 0]},
        {"name": "a", "type": "add", "inputs": ["p2", "r1"]},
        {"name": "sh", "type": "shuffle", "groups": 4},
        {"name": "dw", "type": "conv", "out_channels": 8, "kernel": 3, "pad": 1, "groups": 8},
        {"name": "af", "type": "affine"},
        {"name": "cat", "type": "concat", "inputs": ["af", "input", "a"]},
        {"name": "ap", "type": "avgpool", "kernel": 3, "stride": 2, "pad": 1, "count_include_pad": False},
        {"name": "cl", "type": "clip", "min": -1.0, "max": 2.5},
        {"name": "g", "type": "gap"},
        {"name": "f", "type": "fc", "out_features": 6},
        {"name": "fb", "type": "batchnorm"},
        {"name": "d", "type": "dropout"},
        {"name": "f2", "type": "fc", "out_features": 3}]}
    net = load_network(spec)
    model = network_to_onnx(net)
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    assert_same_as_onnxruntime(onnx.load(str(path)), net)
    back = load_onnx(str(path))
    names = [o.name for o in back.ops if o.type != "flatten"]
    assert names == [o.name for o in net.ops]
    x = _rng("grt").normal(size=net.input_shape)
    np.testing.assert_allclose(forward_float(back, x), forward_float(net, x), rtol=1e-5, atol=1e-5)
    # the folded network (depthwise 1x1 convs for the unfoldable BatchNorms, on features too) exports as well
    from golden.passes.fold import fold
    folded = fold(net)
    assert_same_as_onnxruntime(network_to_onnx(folded), net)


# ------------------------------------------------------------- unsupported

def _branch_model():
    b = Chain((2, 6, 6))
    b.conv(3, 3, name="conv1")
    b.nodes.append(helper.make_node("Relu", ["conv1_out"], ["side"], name="side_relu"))
    return b.relu(name="main_relu").flatten().gemm(2).model()


def _residual_model():
    b = Chain((2, 6, 6))
    b.conv(2, 3, pads=[1, 1, 1, 1], name="conv1").relu(name="r1").conv(2, 3, pads=[1, 1, 1, 1], name="conv2")
    return b.node("Add", "r1_out", name="res_add").flatten().gemm(2).model()


def _concat_model():
    b = Chain((2, 6, 6))
    b.conv(2, 1, name="a").relu(name="ra")
    b.nodes.append(helper.make_node("Conv", ["ra_out", "wb"], ["b_out"], name="b", kernel_shape=[1, 1]))
    b.const("wb", np.ones((2, 2, 1, 1), np.float32))
    return b.node("Concat", "b_out", name="cat", axis=1).flatten().gemm(2).model()


def _two_outputs_model():
    b = Chain((1, 6, 6)).conv(2, 3, name="c").relu(name="r")
    return b.model(outputs=["c_out", "r_out"])


def _two_inputs_model():
    b = Chain((1, 6, 6)).conv(2, 3, name="c")
    b.inputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 4, 4]))
    return b.node("Add", "y", name="add").flatten().gemm(2).model()


def _chain(shape=(2, 8, 8), **kw):
    return Chain(shape, **kw)


def _two_computed(op, **attrs):
    """[N, 2, 8, 8] -> Conv -> ``op`` of the conv output and the graph input."""
    b = _chain().conv(2, 3, pads=[1, 1, 1, 1], name="c0")
    return b.node(op, "x", **attrs).model()


def _add_broadcast_model():
    b = Chain((2, 6, 6)).conv(3, 3, pads=[1, 1, 1, 1], name="c")
    conv_out = b.cur
    b.node("GlobalAveragePool", name="g")
    b.cur = conv_out
    return b.node("Add", "g_out", name="res").model()


def _shuffle_model(split=(0, 2, 2, 6, 6), perm=(0, 2, 1, 3, 4), back=(0, 4, 6, 6), batch="N"):
    """[N, 3, 6, 6] -> Conv 4 -> Reshape ``split`` -> Transpose ``perm`` -> Reshape ``back`` -> Conv."""
    b = Chain((3, 6, 6), batch=batch).conv(4, 3, pads=[1, 1, 1, 1], name="c")
    b.node("Reshape", b.const("split", np.array(split, np.int64)), name="shuf_split")
    b.node("Transpose", name="shuf", perm=list(perm))
    b.node("Reshape", b.const("back", np.array(back, np.int64)), name="shuf_back")
    return b.relu(name="after").model()



def _clip_model(lo, hi):
    b = _chain()
    return b.node("Clip", b.const("lo", np.float32(lo)), b.const("hi", np.float32(hi)), name="cl").model()

UNSUPPORTED = [
    ("dilation", lambda: _chain().conv(4, 3, dilations=[2, 2], name="c").model(),
     "node 'c' (Conv): dilations=[2, 2] are not supported (only 1)"),
    ("nonsquare_kernel", lambda: _chain().conv(4, 3, kernel=(3, 1), name="c").model(),
     "node 'c' (Conv): kernel_shape=[3, 1] is not supported (only square 2-D kernels)"),
    ("unequal_strides", lambda: _with_const("Conv", np.ones((2, 2, 3, 3), np.float32), name="c", strides=[1, 2]),
     "node 'c' (Conv): strides=[1, 2] are not supported (only equal strides)"),
    ("kernel9", lambda: _chain((2, 12, 12)).conv(4, 9, name="c").model(),
     "node 'c' (Conv): kernel 9x9 is not supported (supported: (1, 3, 5, 7, 11))"),
    ("stride5", lambda: _chain((2, 12, 12)).conv(4, 3, stride=5, name="c").model(),
     "node 'c' (Conv): stride 5 is not supported"),
    ("conv_pad_not_below_k", lambda: _chain().conv(4, 3, pads=[3, 0, 0, 0], name="c").model(),
     "node 'c' (Conv): padding (top, bottom, left, right) (3, 0, 0, 0) is not supported: each side must be "
     "smaller than the kernel 3"),
    ("pool_ceil", lambda: _chain((2, 7, 7)).maxpool(2, 2, ceil_mode=1, name="p").model(),
     "node 'p' (MaxPool): ceil_mode=1 is not supported here"),
    ("pool_dilation", lambda: _chain().maxpool(2, 2, dilations=[2, 2], name="p").model(),
     "node 'p' (MaxPool): dilations=[2, 2] are not supported (only 1)"),
    ("gemm_transA", lambda: _chain((2, 1, 1), batch=2).flatten().gemm(3, transA=1, name="g").model(check=False),
     "node 'g' (Gemm): transA=1 is not supported (only transA=0)"),
    ("gemm_alpha", lambda: _chain().flatten().gemm(3, alpha=2.0, name="g").model(),
     "node 'g' (Gemm): alpha=2 is not supported (only alpha=1)"),
    ("gemm_beta", lambda: _chain().flatten().gemm(3, beta=0.5, name="g").model(),
     "node 'g' (Gemm): beta=0.5 is not supported (only beta=1)"),
    ("lrn", lambda: _chain().conv(2, 3).node("LRN", name="norm1", size=3).model(),
     "node 'norm1' (LRN): LRN is not supported (supported: Conv, Gemm, MatMul"),
    ("unnamed_node", lambda: _chain().conv(2, 3).node("LRN", name="", size=3).model(),
     "node #1 (output 't2_out') (LRN): LRN is not supported"),
    ("two_outputs", _two_outputs_model, "the graph has 2 outputs ('c_out', 'r_out'); only one is supported"),
    ("two_inputs", _two_inputs_model, "the graph has 2 inputs ('x', 'y')"),
    ("double_input", lambda: Chain((2, 4, 4), elem_type=TensorProto.DOUBLE).relu().model(),
     "graph input 'x' has element type DOUBLE; only FLOAT (float32) is supported"),
    ("rank3_input", lambda: _rank3_model(), "graph input 'x' has shape ['N', 8, 8]; it must be [N, C, H, W]"),
    ("symbolic_h", lambda: Chain((2, "H", 8)).relu().model(),
     "graph input 'x' has shape ['N', 2, 'H', 8]; C, H and W must be fixed positive sizes"),
    ("reshape_4d", lambda: _chain().reshape([0, -1, 1, 1]).model(),
     "(Reshape): reshape to [0, -1, 1, 1] is not supported (only flattening to [N, -1])"),
    ("flatten_axis2", lambda: _chain().flatten(axis=2, name="f").model(),
     "node 'f' (Flatten): axis=2 is not supported (only axis=1: [N, -1])"),
    ("dropout_training", lambda: _with_const("Dropout", np.array(True), "", name="d"),
     "node 'd' (Dropout): training_mode must be a constant false"),
    ("custom_domain", lambda: _custom_domain_model(),
     "node 'fused' (FusedConv): operator domain 'com.microsoft' is not supported"),
    # Lifted since the graph import: group, any pool window, asymmetric max pool pads, residual Add,
    # Add/Mul of a constant, Concat, branches, BatchNorm anywhere (tests under "graphs" below).
    ("mul_two_computed", lambda: _two_computed("Mul", name="gate"),
     "node 'gate' (Mul): a Mul of two computed tensors is not supported (only by a constant"),
    ("sub_two_computed", lambda: _two_computed("Sub", name="diff"),
     "node 'diff' (Sub): a Sub of two computed tensors is not supported"),
    ("max_two_computed", lambda: _two_computed("Max", name="mx"),
     "node 'mx' (Max): Max is not supported (supported: Conv, Gemm"),
    ("add_broadcast", _add_broadcast_model,
     "node 'res' (Add): Add of 'c_out' [N, 3, 6, 6] and 'g_out' [N, 3, 1, 1]: only tensors of the same shape "
     "are supported (no broadcasting)"),
    ("sum_of_three", lambda: _chain().conv(2, 3, pads=[1, 1, 1, 1], name="c").node("Sum", "x", "x", name="s")
     .model(), "node 's' (Sum): a Sum of 3 tensors is not supported (only 2)"),
    ("mul_per_row", lambda: _with_const("Mul", np.ones((1, 1, 8, 1), np.float32), name="m"),
     "node 'm' (Mul): constant 'k' has shape [1, 1, 8, 1]; only a scalar or one value per channel "
     "([2, 1, 1] or [1, 2, 1, 1]) is supported"),
    ("add_per_width", lambda: _with_const("Add", np.ones(8, np.float32), name="a"),
     "node 'a' (Add): constant 'k' has shape [8]; only a scalar or one value per channel"),
    ("concat_axis2", lambda: _chain().conv(2, 1, name="c").node("Concat", "x", name="cat", axis=2).model(),
     "node 'cat' (Concat): axis=2 is not supported (only the channel axis, 1)"),
    ("concat_const", lambda: _with_const("Concat", np.ones((1, 2, 8, 8), np.float32), name="cat", axis=1),
     "node 'cat' (Concat): a Concat with a constant input ('k') is not supported"),
    ("avgpool_ceil", lambda: _chain((2, 7, 7)).node("AveragePool", name="p", kernel_shape=[2, 2], strides=[2, 2],
                                                    ceil_mode=1).model(),
     "node 'p' (AveragePool): ceil_mode=1 is not supported here (it adds a partial window on a 7x7 input)"),
    ("avgpool_pad_not_below_k", lambda: _chain().node("AveragePool", name="p", kernel_shape=[2, 2],
                                                      pads=[2, 0, 0, 0]).model(),
     "node 'p' (AveragePool): padding (top, bottom, left, right) (2, 0, 0, 0) is not supported: each side must "
     "be smaller than the window 2"),
    ("avgpool_nonsquare", lambda: _chain().node("AveragePool", name="p", kernel_shape=[3, 2]).model(),
     "node 'p' (AveragePool): kernel_shape=[3, 2] is not supported (only square 2-D kernels)"),
    ("clip_computed_bound", lambda: _chain().conv(2, 3, name="c").node("Clip", "x", name="cl").model(check=False),
     "node 'cl' (Clip): its min 'x' must be a constant"),
    ("clip_reversed", lambda: _clip_model(6.0, 1.0),
     "node 'cl' (Clip): min 6 is above max 1"),
    ("transpose_alone", lambda: _chain().node("Transpose", name="t", perm=[0, 1, 3, 2]).model(),
     "node 't' (Transpose): a Transpose is only supported inside the channel shuffle Reshape [N, g, C/g, H, W] "
     "-> Transpose perm [0, 2, 1, 3, 4] -> Reshape [N, C, H, W]"),
    ("reshape_5d_alone", lambda: _chain().reshape([0, 2, 1, 8, 8]).model(),
     "(Reshape): reshape to [0, 2, 1, 8, 8] (5-D) is only supported as the channel shuffle Reshape [N, g, C/g, "
     "H, W] -> Transpose perm [0, 2, 1, 3, 4] -> Reshape [N, C, H, W]; it is not read by a Transpose alone"),
    ("shuffle_wrong_perm", lambda: _shuffle_model(perm=[0, 1, 2, 4, 3]),
     "(Reshape): reshape to [0, 2, 2, 6, 6] (5-D) is only supported as the channel shuffle Reshape [N, g, "
     "C/g, H, W] -> Transpose perm [0, 2, 1, 3, 4] -> Reshape [N, C, H, W]; the Transpose node 'shuf' "
     "(Transpose) has perm [0, 1, 2, 4, 3]"),
    ("shuffle_wrong_back", lambda: _shuffle_model(back=[0, 2, 2, 36]),
     "the last Reshape node 'shuf_back' (Reshape) reshapes to [0, 2, 2, 36], not [N, 4, 6, 6]"),
    ("shuffle_not_groups", lambda: _shuffle_model(split=[0, 4, 1, 3, 12]),
     "(Reshape): reshape to [0, 4, 1, 3, 12] (5-D) is only supported as the channel shuffle Reshape "
     "[N, g, C/g, H, W] -> Transpose perm [0, 2, 1, 3, 4] -> Reshape [N, C, H, W]; its input is [N, 4, 6, 6]"),
]


def _with_const(op, value, *before, **attrs):
    """[N, 2, 8, 8] -> Conv -> ``op`` whose last input is the constant ``value``."""
    b = _chain().conv(2, 3, pads=[1, 1, 1, 1], name="c0")
    return b.node(op, *before, b.const("k", value), **attrs).model()


def _rank3_model():
    b = Chain((8, 8))
    return b.relu().model()


def _custom_domain_model():
    b = Chain((2, 6, 6))
    b.nodes.append(helper.make_node("FusedConv", ["x", "w"], ["y"], name="fused", domain="com.microsoft"))
    b.const("w", np.ones((2, 2, 3, 3), np.float32))
    b.cur = "y"
    m = b.model(check=False)
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return m


@pytest.mark.parametrize("build, message", [(b, m) for _, b, m in UNSUPPORTED],
                         ids=[k for k, _, _ in UNSUPPORTED])
def test_unsupported_is_a_clear_error(build, message):
    model = build()
    with pytest.raises(NetworkError) as e:
        load_onnx(model)
    assert message in str(e.value)


# ---------------------------------------------------------- malformed files

def test_malformed_files(tmp_path):
    good = network_to_onnx(load_network(EXAMPLE)).SerializeToString()
    cuts = [0, 10, len(good) // 3, len(good) // 2, len(good) - 3]
    for cut in cuts:
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(good[:cut])
        with pytest.raises(NetworkError) as e:
            load_onnx(str(path))
        msg = str(e.value)
        assert str(path) in msg and ("truncated" in msg or "checker" in msg), msg
    (tmp_path / "noise.onnx").write_bytes(_rng("noise").integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(NetworkError, match="noise.onnx"):
        load_onnx(str(tmp_path / "noise.onnx"))
    with pytest.raises(NetworkError, match="not found"):
        load_onnx(str(tmp_path / "missing.onnx"))
    with pytest.raises(NetworkError, match="takes a file path or an onnx.ModelProto"):
        load_onnx(42)


def test_checker_errors_are_network_errors():
    b = Chain((2, 6, 6)).conv(3, 3)
    m = b.model()
    m.graph.node[0].input[1] = "nowhere"   # an input no one defines
    with pytest.raises(NetworkError, match="fails the ONNX checker"):
        load_onnx(m)


# ---------------------------------------------------------- real topologies

def _light(name):
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    assert os.path.exists(path), f"the onnx package should ship {path}"
    return path


def _without(model, op_type):
    """The model with every ``op_type`` node bypassed (its consumers read its input)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = []
    for node in m.graph.node:
        if node.op_type == op_type:
            for other in m.graph.node:
                for j, name in enumerate(other.input):
                    if name == node.output[0]:
                        other.input[j] = node.input[0]
        else:
            keep.append(node)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m


#: What still fails (ResNet-50, SqueezeNet, Inception-v2, DenseNet-121 and
#: ShuffleNet import since the graph import: test_light_model_equals_onnxruntime).
REAL_ERRORS = [
    ("bvlc_alexnet", "node 'n2' (LRN): LRN is not supported"),
    ("zfnet512", "node 'n2' (LRN): LRN is not supported"),
    ("inception_v1", "node 'n3' (LRN): LRN is not supported"),
    ("vgg19", "node 'n45' (Softmax): Softmax is not supported by the engine"),
]


@pytest.mark.parametrize("name, message", REAL_ERRORS, ids=[n for n, _ in REAL_ERRORS])
def test_real_topology_errors(name, message):
    with pytest.raises(NetworkError) as e:
        load_onnx(_light(name), drop_final_softmax=name != "vgg19")
    assert message in str(e.value)


def test_vgg19_imports():
    net = load_onnx(_light("vgg19"), drop_final_softmax=True)
    assert net.input_shape == (3, 224, 224)
    convs = [o for o in net.ops if o.type == "conv"]
    fcs = [o for o in net.ops if o.type == "fc"]
    assert len(convs) == 16 and len([o for o in net.ops if o.type == "maxpool"]) == 5
    assert all(o.attrs["kernel"] == 3 and o.attrs["pads"] == (1, 1, 1, 1) for o in convs)
    assert [c.weight.shape[0] for c in convs] == [64] * 2 + [128] * 2 + [256] * 4 + [512] * 8
    assert [f.weight.shape for f in fcs] == [(4096, 25088), (4096, 4096), (1000, 4096)]
    elayers = to_engine_layers(net)
    assert len(elayers) == 19 and sum(L.pool is not None for L in elayers) == 5


def test_alexnet_and_zfnet_past_their_lrn():
    """Without LRN both import whole: AlexNet with its grouped convs and the
    asymmetric pads of its last pool."""
    alex = load_onnx(_without(onnx.load(_light("bvlc_alexnet")), "LRN"))
    assert [o.attrs["groups"] for o in alex.ops if o.type == "conv"] == [1, 2, 1, 2, 2]
    assert [o.attrs["pads"] for o in alex.ops if o.type == "maxpool"][-1] == (0, 1, 0, 1)
    zf = load_onnx(_without(onnx.load(_light("zfnet512")), "LRN"), drop_final_softmax=True)
    convs = [o for o in zf.ops if o.type == "conv"]
    assert [(c.attrs["kernel"], c.attrs["stride"]) for c in convs] == [(7, 2), (5, 2), (3, 1), (3, 1), (3, 1)]
    assert [o.attrs["out_shape"] for o in zf.ops if o.type == "maxpool"] == [(96, 54, 54), (256, 12, 12),
                                                                             (512, 6, 6)]
    assert [o.weight.shape for o in zf.ops if o.type == "fc"] == [(4096, 18432), (1024, 4096), (1000, 1024)]


LIGHT_SIZES = zoo.LIGHT_SIZES
#: Ops each imports (a check that the structure came through whole).
LIGHT_COUNTS = {
    "resnet50": {"conv": 53, "batchnorm": 53, "add": 16, "avgpool": 1, "fc": 1},
    "squeezenet": {"conv": 26, "concat": 8, "maxpool": 3, "gap": 1},
    "densenet121": {"conv": 121, "batchnorm": 121, "affine": 121, "concat": 58, "avgpool": 3, "gap": 1},
    "inception_v2": {"conv": 69, "batchnorm": 69, "affine": 69, "concat": 10, "avgpool": 8, "maxpool": 5,
                     "fc": 1},
    "shufflenet": {"conv": 49, "shuffle": 16, "add": 13, "concat": 3, "avgpool": 4, "fc": 1},
    "vgg19": {"conv": 16, "maxpool": 5, "fc": 3},
}
_light_at = zoo.light_model
_without_final_softmax = zoo.without_final_softmax


@pytest.mark.parametrize("name", list(LIGHT_SIZES))
def test_light_model_equals_onnxruntime(name):
    """The six graphs import, and their float forward with seeded He-scale
    weights (realistic_weights) matches onnxruntime to 1e-6 of the output
    range; the fold pass keeps it to 1e-9."""
    from golden.passes.fold import fold
    from golden.onnx_import import realistic_weights

    model = realistic_weights(_light_at(name, LIGHT_SIZES[name]), seed=1)
    net = load_onnx(model)
    size = LIGHT_SIZES[name]
    assert net.input_shape == (3, size, size)
    counts = {t: sum(o.type == t for o in net.ops) for t in LIGHT_COUNTS[name]}
    assert counts == LIGHT_COUNTS[name]
    ref_model = _without_final_softmax(model)
    x = _rng("light", name).uniform(-1, 1, (1,) + net.input_shape).astype(np.float32)
    (want,) = run_model(ref_model, {ref_model.graph.input[0].name: x})
    want = want.reshape(-1).astype(np.float64)
    got = forward_float(net, x[0]).reshape(-1)
    span = float(want.max() - want.min())
    assert span > 1e-3                                        # not a collapsed output
    assert float(np.abs(got - want).max()) < 1e-6 * span
    folded = forward_float(fold(net), x[0]).reshape(-1)
    assert float(np.abs(folded - got).max()) <= 1e-9 * float(np.abs(got).max())


def test_realistic_weights():
    from golden.onnx_import import realistic_weights

    src = onnx.load(_light("squeezenet"))
    before = src.SerializeToString()
    a, b, c = (realistic_weights(src, seed=s) for s in (3, 3, 4))
    assert src.SerializeToString() == before                  # the model given is not modified
    assert a.SerializeToString() == b.SerializeToString()
    assert a.SerializeToString() != c.SerializeToString()
    assert a.ir_version == IR_VERSION and not any(n.op_type == "ConstantOfShape" for n in a.graph.node)
    inits = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
    w = inits["fire9/expand3x3_w_0"]                           # 512 -> 256 3x3: He scale on 64 * 9 inputs
    assert w.shape == (256, 64, 3, 3) and abs(w.std() / np.sqrt(2 / (64 * 9)) - 1) < 0.02
    assert [v.name for v in a.graph.input] == ["data_0"]
    # BatchNorms are scaled to their input: activations stay near 1 in a deep residual net
    from golden.network import forward_float_all
    x = _rng("rw").uniform(-1, 1, (3, 224, 224))
    peak = {}
    for calibrate in (True, False):
        net = load_onnx(realistic_weights(_light("shufflenet"), seed=2, calibrate_bn=calibrate))
        peak[calibrate] = max(float(np.abs(v).max()) for v in forward_float_all(net, x).values())
    assert peak[True] < 100 and peak[False] > 1e4, peak


# ------------------------------------------------------- compiled end to end

def test_small_vgg_compiles_and_runs():
    b = Chain((3, 16, 16), seed="vgg")
    b.conv(16, 3, pads=[1, 1, 1, 1]).relu().conv(16, 3, pads=[1, 1, 1, 1]).relu().maxpool(2, 2)
    b.conv(32, 3, pads=[1, 1, 1, 1]).bn().relu().maxpool(2, 2)
    b.flatten().gemm(32).relu().node("Dropout").gemm(10)
    model = b.model()
    net = load_onnx(model, name="small_vgg")
    x = _rng("vgg-x").uniform(-1, 1, (4,) + net.input_shape)
    prog = compiler.compile_network(net, EngineConfig(), x)
    assert [q.kind.name for q in prog.layers] == ["CONV", "CONV", "CONV", "FC", "FC"]
    (want,) = run_model(model, {"x": x.astype(np.float32)})
    for i in range(len(x)):
        outs = compiler.run_network(prog, arith.quantize(x[i], prog.fl_input, prog.cfg.data_bits))
        got = outs[-1].reshape(-1) * 2.0 ** -prog.layers[-1].fl_out
        err = got - want[i]
        sqnr = 10 * np.log10(np.sum(want[i] ** 2) / max(np.sum(err ** 2), 1e-30))
        assert sqnr > 40, sqnr   # 16-bit dynamic fixed point against the float network
    # the descriptors from the memory image give the same integers
    xq = compiler.load_input(prog, x[0])
    traces = funcmodel.run_image(prog.image, prog.desc_addr, len(prog.layers), prog.cfg)
    np.testing.assert_array_equal(traces[-1].y, compiler.run_network(prog, xq)[-1])


# ------------------------------------------------------------------- CLI

def _uz(*args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "golden.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_takes_onnx(tmp_path):
    good = tmp_path / "good.onnx"
    onnx.save(MODELS["conv_bn_relu_pool_gemm"](Chain(seed=3)).model(), str(good))
    r = _uz("golden", good, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "BIT EXACT" in r.stdout and (tmp_path / "out" / "output.npy").exists()
    bad = tmp_path / "bad.onnx"
    onnx.save(_chain().conv(2, 3).node("LRN", name="norm1", size=3).model(), str(bad))
    r = _uz("compile", bad, "--out", tmp_path / "out2")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("uz: error: node 'norm1' (LRN): LRN is not supported (supported: Conv,")
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_leaves_out_a_final_softmax_unless_told_to_keep_it(tmp_path):
    model = tmp_path / "softmax.onnx"
    b = Chain((1, 6, 6))
    b.conv(4, 3).relu().flatten().gemm(5).node("Softmax", name="prob")
    onnx.save(b.model(), str(model))
    r = _uz("golden", model, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "node 'prob' (Softmax): the final Softmax is left out" in r.stderr
    r = _uz("golden", model, "--keep-final-softmax", "--out", tmp_path / "out2")
    assert r.returncode == 2 and "node 'prob' (Softmax): Softmax is not supported" in r.stderr
    r = _uz("golden", model, "--drop-final-softmax", "--out", tmp_path / "out3")   # older command lines
    assert r.returncode == 0, r.stderr
