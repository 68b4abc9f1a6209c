"""Scalar Mul/Div/Add/Sub by constants after a MultiThreshold folded into its out_scale and
out_bias, as FINN's QONNX-to-FINN conversion writes a quantizer: MultiThreshold (the counts)
-> Add (the signed offset) -> Mul (the scale).

The result is one activation quantizer whose value is out_scale * count + out_bias, an affine
map of the integers; the integer model reads the integers, not the float32 rounding of the
intermediate products (as with Quant, whose value is scale * (q - zero point)). Per-channel
constants are left in place (the chain reader then names them).
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation

AFFINE = ("Mul", "Div", "Add", "Sub")


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _set_attr(node, name, value: float) -> None:
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, float(value)))


class FoldAffineIntoMultiThreshold(Transformation):
    def apply(self, model):
        for mt in model.graph.node:
            if mt.op_type != "MultiThreshold":
                continue
            consumers = model.find_consumers(mt.output[0]) or []
            if len(consumers) != 1 or consumers[0].op_type not in AFFINE:
                continue
            op = consumers[0]
            others = [t for t in op.input if t != mt.output[0]]
            const = model.get_initializer(others[0]) if len(others) == 1 else None
            if const is None or np.size(const) != 1 or (op.op_type in ("Div", "Sub") and op.input[0] != mt.output[0]):
                continue
            c = float(np.asarray(const, np.float64).reshape(-1)[0])
            if op.op_type in ("Mul", "Div") and (c == 0 or not np.isfinite(c)):
                continue
            scale, bias = float(_attr(mt, "out_scale", 1.0)), float(_attr(mt, "out_bias", 0.0))
            if op.op_type == "Mul":
                scale, bias = scale * c, bias * c
            elif op.op_type == "Div":
                scale, bias = scale / c, bias / c
            else:
                bias = bias + (c if op.op_type == "Add" else -c)
            if scale <= 0:
                continue  # a negative scale would make the quantizer falling: left to the chain reader
            _set_attr(mt, "out_scale", scale)
            _set_attr(mt, "out_bias", bias)
            mt.output[0] = op.output[0]  # op was its only reader: its readers now read the quantizer
            model.graph.node.remove(op)
            return model, True
        return model, False
