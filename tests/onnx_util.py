"""Build and run single-node ONNX models, to check golden operators against
onnxruntime.

Models are written at opset 13 and IR version 8: onnx writes a newer IR by
default than the onnxruntime in requirements.txt loads.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

OPSET = 13
IR_VERSION = 8


def onnx_pads(pads) -> list[int]:
    """Golden pads (top, bottom, left, right) -> ONNX [top, left, bottom, right]."""
    pt, pb, pl, pr = pads
    return [pt, pl, pb, pr]


def single_node_model(op_type: str, feeds: dict, initializers: dict | None = None, *,
                      node_inputs=None, outputs=("y",), **attrs) -> onnx.ModelProto:
    """A checked model holding one ``op_type`` node.

    ``feeds`` are graph inputs (name -> example array, giving dtype and shape);
    ``initializers`` are constant tensors (weights, bias). The node's inputs are
    ``node_inputs`` if given (use "" to skip an optional one), else the feeds then
    the initializers in insertion order. ``attrs`` become node attributes.
    Output shapes come from onnx shape inference.
    """
    initializers = initializers or {}
    if node_inputs is None:
        node_inputs = list(feeds) + list(initializers)
    graph_inputs = [
        helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype),
                                      list(np.shape(a)))
        for name, a in feeds.items()]
    graph_outputs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                     for name in outputs]
    inits = [numpy_helper.from_array(np.asarray(a), name) for name, a in initializers.items()]
    node = helper.make_node(op_type, list(node_inputs), list(outputs), **attrs)
    graph = helper.make_graph([node], f"single_{op_type}", graph_inputs, graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    # The checker wants output shapes: let shape inference supply them, which
    # also checks the node's attributes against its input shapes.
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def run_model(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    """Run ``model`` on the CPU provider and return every output."""
    opts = ort.SessionOptions()
    # One thread: these models are tiny and thread-pool start-up dominates.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def run_single(op_type: str, feeds: dict, initializers: dict | None = None, **kwargs) -> np.ndarray:
    """Build a one-node model, run it on ``feeds``, return its first output."""
    model = single_node_model(op_type, feeds, initializers, **kwargs)
    return run_model(model, feeds)[0]
