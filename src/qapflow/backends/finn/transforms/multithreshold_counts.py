"""MultiThreshold activations as FINN's own conversion writes them: the counts (out_scale 1,
out_bias 0), then Add (out_bias / out_scale) and Mul (out_scale).

Ingestion folds that Add and Mul into the MultiThreshold (one quantizer, its integers read by the
integer model); FINN's HW conversion takes only thresholds with out_scale 1 and leaves the Add and
Mul to its streamlining, so the FINN backend writes them out again. The values are the same:
out_scale * count + out_bias. The thresholds themselves are replaced by the integer model's later.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation


def _attr(node, name, default):
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


class MultiThresholdCounts(Transformation):
    def apply(self, model):
        for index, mt in enumerate(model.graph.node):
            if mt.op_type != "MultiThreshold":
                continue
            scale, bias = float(_attr(mt, "out_scale", 1.0)), float(_attr(mt, "out_bias", 0.0))
            if scale == 1.0 and bias == 0.0:
                continue
            steps = int(model.get_initializer(mt.input[1]).shape[1])
            for a in list(mt.attribute):
                if a.name in ("out_scale", "out_bias", "out_dtype"):
                    mt.attribute.remove(a)
            mt.attribute.append(helper.make_attribute("out_dtype", f"UINT{max(1, steps.bit_length())}"))
            out, counts, shifted = mt.output[0], mt.output[0] + "_counts", mt.output[0] + "_shifted"
            mt.output[0] = counts
            model.set_initializer(counts + "_bias", np.array(bias / scale, np.float32))
            model.set_initializer(counts + "_scale", np.array(scale, np.float32))
            add = helper.make_node("Add", [counts, counts + "_bias"], [shifted], name=mt.name + "_bias")
            mul = helper.make_node("Mul", [shifted, counts + "_scale"], [out], name=mt.name + "_scale")
            model.graph.node.insert(index + 1, add)
            model.graph.node.insert(index + 2, mul)
            model.set_tensor_datatype(counts, DataType[f"UINT{max(1, steps.bit_length())}"])
            return model, True
        return model, False
