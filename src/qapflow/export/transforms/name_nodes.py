"""Name the nodes that have no name (or a duplicate one), keeping every name the user gave.

qonnx's GiveUniqueNodeNames renames every node (Op_0, Op_1, ...); an error about a user's
model should name the node as the user's file names it, so only missing and repeated names
are replaced, in qonnx's style.
"""

from __future__ import annotations

from qonnx.transformation.base import Transformation


class NameUnnamedNodes(Transformation):
    def apply(self, model):
        seen, changed = set(), False
        for index, node in enumerate(model.graph.node):
            if not node.name or node.name in seen:
                node.name = f"{node.op_type}_n{index}"
                changed = True
            seen.add(node.name)
        return model, changed
