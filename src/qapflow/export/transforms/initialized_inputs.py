"""Drop graph inputs that have initializers: weights listed as inputs (older ONNX exporters).

Such a model has one data input and many "inputs" that are really constants; qapflow, like
qonnx's execution, treats them as the constants their initializers give.
"""

from __future__ import annotations

from qonnx.transformation.base import Transformation


class RemoveInitializedInputs(Transformation):
    def apply(self, model):
        initialized = {i.name for i in model.graph.initializer}
        constant_inputs = [i for i in model.graph.input if i.name in initialized]
        for inp in constant_inputs:
            model.graph.input.remove(inp)
        return model, bool(constant_inputs)
