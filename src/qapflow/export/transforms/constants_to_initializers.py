"""Constant nodes as initializers, so that every pass reads them with get_initializer.

torch.onnx's TorchScript exporter (Brevitas' QCDQ export among them) writes weights, scales and
zero points as Constant nodes. onnxoptimizer's own pass moves them; wrapped here as a qonnx
Transformation so ingestion stays one list of passes.
"""

from __future__ import annotations

import onnxoptimizer
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation


class ConstantNodesToInitializers(Transformation):
    def apply(self, model):
        if not any(n.op_type == "Constant" and not n.domain for n in model.graph.node):
            return model, False
        optimized = onnxoptimizer.optimize(model.model, ["extract_constant_to_initializer"])
        # the pass lists the new initializers as graph inputs too (old IR style): they are not inputs
        inits = {i.name for i in optimized.graph.initializer}
        for inp in [i for i in optimized.graph.input if i.name in inits and i.name not in
                    {g.name for g in model.graph.input}]:
            optimized.graph.input.remove(inp)
        return ModelWrapper(optimized), False
