"""Fold a quantizer applied to a constant into the constant it produces, except for weights.

QKeras `quantized_bits` biases (through qonnx's converter) and Brevitas' bias quantizers write a
Quant or BipolarQuant node on each bias constant, so the bias Add sees two data inputs. Its
output is a constant: the values qonnx's own execution of the node gives (float32), written back
as an initializer, so the graph computes exactly what it computed before. Weight quantizers
(the weight input of Gemm, MatMul, Conv) are kept: the integer model reads its integers and
scales from them. qonnx's FoldConstants cannot be used for this: it folds every quantizer or
none (`exclude_op_types`), and the weights' must stay.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.onnx_exec import execute_node
from qonnx.transformation.base import Transformation

QUANTIZERS = ("Quant", "BipolarQuant")
WEIGHT_INPUT = {"Gemm": 1, "MatMul": 1, "Conv": 1, "ConvTranspose": 1}


def _feeds_a_weight(model, tensor: str) -> bool:
    for consumer in model.find_consumers(tensor) or []:
        index = WEIGHT_INPUT.get(consumer.op_type)
        if index is not None and len(consumer.input) > index and consumer.input[index] == tensor:
            return True
    return False


class FoldQuantizedConstants(Transformation):
    def apply(self, model):
        graph = model.graph
        for node in list(graph.node):
            if node.op_type not in QUANTIZERS or _feeds_a_weight(model, node.output[0]):
                continue
            if any(model.get_initializer(t) is None for t in node.input if t):
                continue
            if not (model.find_consumers(node.output[0]) or []):
                continue  # a graph output: left as it is
            context = {t: model.get_initializer(t) for t in node.input if t}
            context[node.output[0]] = None
            execute_node(node, context, graph, model.get_opset_imports().get("", 13))
            value = np.asarray(context[node.output[0]], np.float32)
            graph.node.remove(node)
            model.set_initializer(node.output[0], value)
            return model, True
        return model, False
