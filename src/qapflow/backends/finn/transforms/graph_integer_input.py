"""Give FINN an integer graph's firmware input: the IntGraph's input integers.

As IntegerInput does for dense chains: the software head (the graph's nodes up to the input
quantizer) is removed and the graph starts from an integer input times its scale, which FINN's
streamlining moves into the thresholds. A 1D graph ([N, C, L]) is made 2D ([N, C, L, 1]) by
qonnx's Change3DTo4DTensors, since FINN lowers and streams 2D convolutions only.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import RemoveUnusedTensors
from qonnx.transformation.infer_shapes import InferShapes

from qapflow.backends.finn.transforms.integer_input import INPUT_NAME, integer_datatype, integer_graph_input
from qapflow.common.errors import QapflowError
from qapflow.intmodel.graph import IntGraph


def _head_nodes(model: ModelWrapper, tensor: str) -> list:
    """The nodes that compute `tensor` from the graph input (the software head)."""
    inits = {i.name for i in model.graph.initializer}
    out, todo = [], [tensor]
    while todo:
        node = model.find_producer(todo.pop())
        if node is None or node in out:
            continue
        out.append(node)
        todo.extend(name for name in node.input if name and name not in inits)
    return out


class GraphIntegerInput(Transformation):
    def __init__(self, graph: IntGraph):
        super().__init__()
        self.graph = graph

    def apply(self, model: ModelWrapper):
        if model.graph.input[0].name == INPUT_NAME:
            return model, False
        t = self.graph.tensors[self.graph.input]
        grid = t.grid
        if np.any(np.asarray(grid.offset) != 0):
            raise QapflowError(f"{self.graph.input}: the input quantizer has a zero point (offset {grid.offset}); "
                               "FINN's layers sum the integers as they are: the hls4ml and rtl backends build it")
        integer_graph_input(model, _head_nodes(model, self.graph.input), [1, *t.shape], integer_datatype(grid.spec),
                            float(grid.scale) * grid.mult, self.graph.input)
        model = model.transform(RemoveUnusedTensors()).transform(InferShapes())
        return model, False
