"""Keep the integer part of FINN's graph of a convolutional model: the hardware layers from
the first (padding, sliding window or MVAU) to the last MVAU or Thresholding.

In front, FINN's Transpose of the NCHW input to NHWC goes: the firmware's ports are channels
last and the project's manifest records the order (`ports`), as the hls4ml backend's. Behind,
the float tail (FINN's streamlined Mul/Add) is the software tail of the IntGraph. Anything else
between the hardware layers is named.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from qapflow.backends.finn.transforms.int_graph_parameters import BUILT_BY_OTHERS, WIRING_LAYERS
from qapflow.backends.finn.transforms.integer_partition import HW_DOMAIN, keep_nodes
from qapflow.common.errors import QapflowError

LAYERS = ("MVAU", "Thresholding", "GlobalAccPool") + WIRING_LAYERS


def drop_pool_divisor(model: ModelWrapper) -> None:
    """FINN's GlobalAveragePool becomes GlobalAccPool (a sum) and a Mul by 1 / (H * W) that its
    streamlining has already passed; the IntGraph's thresholds after the pool take the sum (its
    divisor folded in exactly) and replace FINN's, so the Mul goes."""
    for node in list(model.graph.node):
        if not node.op_type.startswith("GlobalAccPool"):
            continue
        mul = model.find_consumer(node.output[0])
        if mul is None or mul.op_type != "Mul":
            continue
        after = model.find_consumer(mul.output[0])
        if after is None or not after.op_type.startswith("Thresholding"):
            raise QapflowError(f"FINN put {after.op_type if after else 'nothing'} after {node.name}'s divisor "
                               f"{mul.name}; qapflow takes a global pool followed by its requantization")
        after.input[0] = node.output[0]
        model.graph.node.remove(mul)


class GraphPartition(Transformation):
    def apply(self, model: ModelWrapper):
        drop_pool_divisor(model)
        nodes = list(model.graph.node)
        hw = [i for i, n in enumerate(nodes) if n.op_type.startswith(LAYERS) and n.domain.startswith(HW_DOMAIN)]
        ends = [i for i in hw if nodes[i].op_type.startswith(("MVAU", "Thresholding"))]
        if not ends:
            raise QapflowError(f"FINN made no matrix-vector layer: {[n.op_type for n in nodes]}")
        first, last = hw[0], ends[-1]
        for node in nodes[:first]:
            if node.op_type != "Transpose":
                raise QapflowError(f"FINN left {node.name} ({node.op_type}) in front of its hardware layers; "
                                   f"{BUILT_BY_OTHERS}")
        for node in nodes[first : last + 1]:
            if not node.op_type.startswith(LAYERS):
                raise QapflowError(f"FINN left {node.name} ({node.op_type}) between its hardware layers; qapflow's "
                                   f"FINN path takes convolutions, dense layers and requantizations: {BUILT_BY_OTHERS}")
        if first == 0 and last == len(nodes) - 1:
            return model, False
        return keep_nodes(model, nodes, first, last), False
