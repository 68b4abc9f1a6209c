"""Run a piece of the original graph (its own nodes and constants) on arrays, with qonnx.

The integer model never re-implements the graph's float ops: thresholds, the software head
and the software tail are evaluated by executing the graph's own nodes, in float32, through
qonnx's `execute_onnx` (onnxruntime for standard ops, qonnx's own Quant/BipolarQuant/Trunc).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

QONNX_DOMAIN = "qonnx.custom_op.general"


def subgraph(model: ModelWrapper, nodes: list, input_name: str, output_name: str) -> onnx.ModelProto:
    """A model of `nodes` (in order) from `input_name` to `output_name`, with their constants.

    Shapes are left free (only the rank of the input is kept), so any batch size runs.
    """
    names = {t for n in nodes for t in n.input if t}
    initializers = [i for i in model.graph.initializer if i.name in names and i.name != input_name]
    rank = len(model.get_tensor_shape(input_name) or [0, 0])
    graph = helper.make_graph(
        [onnx.NodeProto.FromString(n.SerializeToString()) for n in nodes], "qapflow_subgraph",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None] * rank)],
        [helper.make_tensor_value_info(output_name, _elem_type(model, output_name), None)],
        initializer=initializers)
    opsets = [helper.make_opsetid("", max(13, _onnx_opset(model))), helper.make_opsetid(QONNX_DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets, producer_name="qapflow")


def _elem_type(model: ModelWrapper, name: str) -> int:
    """The tensor's element type in the graph (ArgMax gives int64), float32 where unknown."""
    info = model.get_tensor_valueinfo(name)
    elem = info.type.tensor_type.elem_type if info is not None else 0
    return elem or TensorProto.FLOAT


def _onnx_opset(model: ModelWrapper) -> int:
    return next((o.version for o in model.model.opset_import if o.domain in ("", "ai.onnx")), 13)


def run(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """Execute a subgraph on float32 `x` (any batch size); its single output. A float64 `x`
    (software.dense_output's wide sums) runs the subgraph's float64 twin (as_double)."""
    double = np.asarray(x).dtype == np.float64
    dtype = np.float64 if double else np.float32
    if not proto.graph.node:
        return np.asarray(x, dtype)
    wrapper = ModelWrapper(as_double(proto) if double else proto)
    inp, out = proto.graph.input[0].name, proto.graph.output[0].name
    wrapper.set_tensor_shape(inp, list(np.shape(x)))
    wrapper = wrapper.transform(InferShapes())
    result = execute_onnx(wrapper, {inp: np.asarray(x, dtype)})
    return np.asarray(result[out])


def as_double(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `proto` computing in float64: every float32 constant widened (exactly) and every
    float32 tensor declared float64. onnxruntime and qonnx's own ops run the same nodes on it."""
    out = onnx.ModelProto.FromString(proto.SerializeToString())
    graph = out.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            wide = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float64), init.name)
            graph.initializer[i].CopyFrom(wide)
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        if info.type.tensor_type.elem_type == TensorProto.FLOAT:
            info.type.tensor_type.elem_type = TensorProto.DOUBLE
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float64)))
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.DOUBLE
    return out
