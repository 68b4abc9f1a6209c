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
        for node in chain.head:
            model.graph.node.remove(node)
        del model.graph.input[:]
        model.graph.input.append(helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, n_in]))
        model.set_tensor_datatype(INPUT_NAME, integer_datatype(self.spec))
        scale = f"{INPUT_NAME}_scale"
        model.set_initializer(scale, np.array(2.0 ** self.spec.exp, np.float32))
        scaled = f"{INPUT_NAME}_scaled"
        model.graph.node.insert(0, helper.make_node("Mul", [INPUT_NAME, scale], [scaled], name="qapflow_input_scale"))
        for i, name in enumerate(first.input):
            if name == head_out:
                first.input[i] = scaled
        return model, False
