"""Brevitas' QCDQ weights, `Clip(integer constant) -> DequantizeLinear`, as the full QCDQ
pattern `QuantizeLinear(float constant) -> Clip -> DequantizeLinear` that qonnx's QCDQToQuant
fuses into a Quant node with the Clip's range as its bit width.

qonnx converts a lone DequantizeLinear of an integer constant (bits from the storage type: 8
for int8 even when the Clip keeps 4) but not a Clip in front of it. The float constant is the
dequantized value, (q - zero point) * scale in float32, so QuantizeLinear gives q back exactly.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation


def _axis_shaped(value: np.ndarray, axis: int | None, rank: int) -> np.ndarray:
    value = np.asarray(value, np.float64)
    if value.ndim == 0 or axis is None:
        return value
    shape = [1] * rank
    shape[axis] = value.shape[0]
    return value.reshape(shape)


class IntegerWeightsToQuantizeLinear(Transformation):
    def apply(self, model):
        graph = model.graph
        for dq in graph.node:
            if dq.op_type != "DequantizeLinear" or len(dq.input) < 2:
                continue
            clip = model.find_producer(dq.input[0])
            if clip is None or clip.op_type != "Clip":
                continue
            q = model.get_initializer(clip.input[0])
            if q is None or not np.issubdtype(np.asarray(q).dtype, np.integer):
                continue
            scale = model.get_initializer(dq.input[1])
            zeropt = model.get_initializer(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
            if scale is None or (len(dq.input) > 2 and dq.input[2] and zeropt is None):
                continue
            axis = next((a.i for a in dq.attribute if a.name == "axis"), None)
            rank = np.ndim(q)
            zp = _axis_shaped(0 if zeropt is None else zeropt, axis, rank)
            value = ((np.asarray(q, np.float64) - zp) * _axis_shaped(scale, axis, rank)).astype(np.float32)
            float_name = clip.input[0] + "_dequantized"
            model.set_initializer(float_name, value)
            q_out = clip.input[0] + "_requantized"
            quantize = helper.make_node("QuantizeLinear", [float_name, *dq.input[1:]], [q_out],
                                        name=(dq.name or q_out) + "_quantize", axis=axis if axis is not None else 1)
            clip.input[0] = q_out
            graph.node.insert(list(graph.node).index(clip), quantize)
            return model, True
        return model, False
