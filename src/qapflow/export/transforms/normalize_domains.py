"""Give quantizer nodes written by older tools qonnx's own domain, and declare it.

FINN writes `finn.custom_op.general`, old Brevitas `onnx.brevitas`, some exporters `qonnx` or
no domain at all (onnxruntime then rejects the graph as INVALID_GRAPH: no standard op has these
names); qonnx executes and infers shapes for its ops under `qonnx.custom_op.general`. The node's semantics are the
same; only the domain name changes, and the model's opset list gains the domain so that
ONNX tools do not reject the file.
"""

from __future__ import annotations

from onnx import helper
from qonnx.transformation.base import Transformation

QONNX_DOMAIN = "qonnx.custom_op.general"
OLD_DOMAINS = ("finn.custom_op.general", "onnx.brevitas", "finn", "qonnx", "", "ai.onnx")
QUANT_OPS = ("Quant", "BipolarQuant", "Trunc", "MultiThreshold")


class NormalizeQuantDomains(Transformation):
    def apply(self, model):
        changed = False
        for node in model.graph.node:
            if node.op_type in QUANT_OPS and node.domain in OLD_DOMAINS:
                node.domain = QONNX_DOMAIN
                changed = True
        used = {n.domain for n in model.graph.node if n.domain}
        declared = {o.domain for o in model.model.opset_import}
        for domain in sorted(used - declared):
            model.model.opset_import.append(helper.make_opsetid(domain, 1))
            changed = True
        return model, changed
