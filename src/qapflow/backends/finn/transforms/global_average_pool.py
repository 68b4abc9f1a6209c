"""Every mean over all spatial axes as one GlobalAveragePool, the op FINN converts.

FINN's InferGlobalAccPoolLayer converts a GlobalAveragePool (a GlobalAccPool and a Mul by 1 /
(H * W)); a Deep Sets' mean over its particles comes out of PyTorch as an AveragePool whose
window is the whole sequence (nn.AvgPool1d(P)), and a ReduceMean over the spatial axes is the
same mean, which FINN takes only as the tail of its own lowered pools (InferPoolFromReduce: a
Reshape of an Im2Col). Neither FINN nor qonnx has a pass making them a GlobalAveragePool, so this
one does: an AveragePool whose one window is its whole unpadded input, a ReduceMean over every
spatial axis that keeps them (keepdims=1). Other AveragePools and ReduceMeans stay as they are.
"""

from __future__ import annotations

from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.basic import get_by_name


def _ints(node, name, default=None):
    attr = get_by_name(node.attribute, name)
    return list(attr.ints) if attr is not None else default


def is_global_mean(model: ModelWrapper, node) -> bool:
    """Whether `node` averages its input over every spatial axis, in one window, keeping them."""
    shape = model.get_tensor_shape(node.input[0])
    if shape is None or len(shape) < 3:
        return False
    spatial = list(shape[2:])
    if node.op_type == "GlobalAveragePool":
        return True
    if node.op_type == "AveragePool":
        pads = _ints(node, "pads", [0] * 2 * len(spatial))
        ceil = get_by_name(node.attribute, "ceil_mode")
        auto = get_by_name(node.attribute, "auto_pad")
        return (_ints(node, "kernel_shape") == spatial and not any(pads) and (ceil is None or ceil.i == 0)
                and (auto is None or auto.s.decode() in ("NOTSET", "VALID")))
    if node.op_type == "ReduceMean":
        axes = _ints(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            init = model.get_initializer(node.input[1])
            axes = None if init is None else [int(a) for a in init.reshape(-1)]
        keep = get_by_name(node.attribute, "keepdims")
        rank = len(shape)
        return (axes is not None and sorted(a % rank for a in axes) == list(range(2, rank))
                and (keep is None or keep.i == 1))
    return False


class GlobalAveragePools(Transformation):
    def apply(self, model: ModelWrapper):
        changed = False
        for i, node in enumerate(list(model.graph.node)):
            if node.op_type not in ("AveragePool", "ReduceMean") or not is_global_mean(model, node):
                continue
            pool = helper.make_node("GlobalAveragePool", [node.input[0]], [node.output[0]], name=node.name)
            model.graph.node.remove(node)
            model.graph.node.insert(i, pool)
            changed = True
        if changed:
            model = model.transform(InferShapes())
        return model, False
