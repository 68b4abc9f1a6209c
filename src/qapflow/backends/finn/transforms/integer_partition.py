"""Keep the integer part of FINN's graph: first MVAU to last MVAU or Thresholding.

What follows (the float tail FINN streamlined into a final Mul/Add, a Softmax, an ArgMax) is
the model's software end in every qapflow backend: the graph's own nodes, run exactly by the
integer model's software tail. Anything left between the integer layers that is not a FINN
hardware layer is named, since it could not be simulated here.
"""

from __future__ import annotations

from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import RemoveUnusedTensors

from qapflow.common.errors import QapflowError

HW_DOMAIN = "finn.custom_op.fpgadataflow"
INTEGER_OPS = ("MVAU", "Thresholding")


def keep_nodes(model: ModelWrapper, nodes: list, first: int, last: int) -> ModelWrapper:
    """The graph cut to nodes[first..last], its new input and output keeping their shapes and
    datatypes (IntegerPartition and GraphPartition cut the same way)."""
    new_in, new_out = nodes[first].input[0], nodes[last].output[0]
    in_shape, out_shape = model.get_tensor_shape(new_in), model.get_tensor_shape(new_out)
    in_type, out_type = model.get_tensor_datatype(new_in), model.get_tensor_datatype(new_out)
    for node in nodes[:first] + nodes[last + 1 :]:
        model.graph.node.remove(node)
    for vi in [v for v in model.graph.value_info if v.name in (new_in, new_out)]:
        model.graph.value_info.remove(vi)
    del model.graph.input[:]
    del model.graph.output[:]
    model.graph.input.append(helper.make_tensor_value_info(new_in, TensorProto.FLOAT, in_shape))
    model.graph.output.append(helper.make_tensor_value_info(new_out, TensorProto.FLOAT, out_shape))
    model.set_tensor_datatype(new_in, in_type)
    model.set_tensor_datatype(new_out, out_type)
    return model.transform(RemoveUnusedTensors())


class IntegerPartition(Transformation):
    def apply(self, model: ModelWrapper):
        nodes = list(model.graph.node)
        integer = [i for i, n in enumerate(nodes) if n.op_type.startswith(INTEGER_OPS)]
        if not integer or not nodes[integer[0]].op_type.startswith("MVAU"):
            raise QapflowError(f"FINN made no matrix-vector layer first: {[n.op_type for n in nodes]}")
        first, last = integer[0], integer[-1]
        if first == 0 and last == len(nodes) - 1:
            return model, False
        for node in nodes[first : last + 1]:
            if not node.domain.startswith(HW_DOMAIN):
                raise QapflowError(f"FINN left {node.name} ({node.op_type}) between its hardware layers; "
                                   "qapflow's FINN path takes dense layers with thresholds")
        return keep_nodes(model, nodes, first, last), False
