"""Write activation pruning, `Where(Greater(x, t), x, 0)` with constant t and zeros, as ONNX's
ThresholdedRelu(x, alpha=t): the same values (x where x > t, else 0), one monotone node that
the chain reader takes between a dense layer and its quantizer (torch.onnx writes the pair for
torch.where; nn/activation_prune.py)."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation


def _constant(model, name: str):
    value = model.get_initializer(name)
    return None if value is None else np.asarray(value)


def _drop_if_unused(model, name: str) -> None:
    """Remove a constant nothing reads any more, and its graph-input entry (torch.onnx lists
    initializers as inputs too; left there, it would become an input of the model)."""
    if model.find_consumers(name):
        return
    graph = model.graph
    for init in list(graph.initializer):
        if init.name == name:
            graph.initializer.remove(init)
    for inp in list(graph.input):
        if inp.name == name:
            graph.input.remove(inp)


class WhereGreaterToThresholdedRelu(Transformation):
    def apply(self, model):
        graph = model.graph
        for where in list(graph.node):
            if where.op_type != "Where" or len(where.input) != 3:
                continue
            greater = model.find_producer(where.input[0])
            if greater is None or greater.op_type != "Greater" or greater.input[0] != where.input[1]:
                continue
            threshold, zeros = _constant(model, greater.input[1]), _constant(model, where.input[2])
            if threshold is None or threshold.size != 1 or zeros is None or np.any(zeros != 0):
                continue
            if len(model.find_consumers(greater.output[0])) != 1:
                continue
            node = helper.make_node("ThresholdedRelu", [where.input[1]], [where.output[0]],
                                    name=where.name or f"ThresholdedRelu_{where.output[0]}",
                                    alpha=float(threshold.reshape(-1)[0]))
            index = list(graph.node).index(where)
            graph.node.remove(where)
            graph.node.remove(greater)
            graph.node.insert(index - 1 if index > 0 else 0, node)
            for name in (greater.input[1], where.input[2]):
                _drop_if_unused(model, name)
            return model, True  # one at a time: the node list changed
        return model, False
