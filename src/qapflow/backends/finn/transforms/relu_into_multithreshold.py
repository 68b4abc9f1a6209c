"""Relu -> MultiThreshold as one MultiThreshold, for FINN's streamlining.

FINN's own conversion never writes a Relu in front of a MultiThreshold (it folds Relu + Quant
into the thresholds), and its streamlining cannot move the scale and bias before such a Relu into
the thresholds. The Relu changes nothing a threshold t > 0 sees (relu(x) >= t iff x >= t); a
threshold t <= 0 is met by every relu(x), so it becomes one below any input. Same counts for
every x; the thresholds are replaced by the integer model's after FINN's HW conversion anyway.
"""

from __future__ import annotations

import numpy as np
from qonnx.transformation.base import Transformation

ALWAYS_MET = np.float32(-(2.0**30))


class AbsorbReluIntoMultiThreshold(Transformation):
    def apply(self, model):
        for mt in model.graph.node:
            if mt.op_type != "MultiThreshold":
                continue
            relu = model.find_producer(mt.input[0])
            if relu is None or relu.op_type != "Relu" or len(model.find_consumers(relu.output[0]) or []) != 1:
                continue
            thresholds = np.asarray(model.get_initializer(mt.input[1]), np.float32)
            model.set_initializer(mt.input[1], np.where(thresholds <= 0, ALWAYS_MET, thresholds))
            mt.input[0] = relu.input[0]
            model.graph.node.remove(relu)
            return model, True
        return model, False
