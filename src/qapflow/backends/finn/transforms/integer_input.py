"""Give FINN the firmware's input: integers, as every qapflow backend takes them.

qapflow quantizes inputs in software (the graph's own head, or --input-type for a float input)
and feeds the hardware integers. FINN builds an MVAU only from a MatMul whose input has an
integer datatype, so the head (preprocessing and input quantizer) is replaced by an integer
graph input times its scale; FINN's streamlining moves that scale into the thresholds.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from qapflow.intmodel.chain import read_chain
from qapflow.intmodel.model import QuantSpec

INPUT_NAME = "qapflow_input_int"


def integer_datatype(spec: QuantSpec) -> DataType:
    return DataType[f"{'INT' if spec.lo < 0 else 'UINT'}{spec.bits}"]


def integer_graph_input(model: ModelWrapper, head: list, shape: list[int], dtype: DataType, scale: float,
                        out: str) -> None:
    """The software head's nodes replaced by an integer graph input times `scale`, the Mul computing
    `out` (IntegerInput and GraphIntegerInput differ only in what they feed)."""
    for node in head:
        model.graph.node.remove(node)
    del model.graph.input[:]
    model.graph.input.append(helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, shape))
    model.set_tensor_datatype(INPUT_NAME, dtype)
    scale_name = f"{INPUT_NAME}_scale"
    model.set_initializer(scale_name, np.array(scale, np.float32))
    model.graph.node.insert(0, helper.make_node("Mul", [INPUT_NAME, scale_name], [out], name="qapflow_input_scale"))


class IntegerInput(Transformation):
    def __init__(self, spec: QuantSpec):
        super().__init__()
        self.spec = spec

    def apply(self, model: ModelWrapper):
        if model.graph.input[0].name == INPUT_NAME:
            return model, False
        chain = read_chain(model)
        first = chain.stages[0].dense
        head_out = chain.head_output if chain.head else model.graph.input[0].name
        n_in = int(np.prod(model.get_tensor_shape(head_out)[1:]))
        scaled = f"{INPUT_NAME}_scaled"
        integer_graph_input(model, chain.head, [1, n_in], integer_datatype(self.spec), 2.0 ** self.spec.exp, scaled)
        for i, name in enumerate(first.input):
            if name == head_out:
                first.input[i] = scaled
        return model, False
