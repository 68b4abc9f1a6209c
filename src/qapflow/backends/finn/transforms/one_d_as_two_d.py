"""A 1D graph ([N, C, L]) as a 2D one ([N, C, L, 1]), its global pools with it.

FINN lowers and streams 2D convolutions and pools only; qonnx's Change3DTo4DTensors makes a 1D
graph 2D (kernels [k, 1]) but leaves any graph with a node outside its list unchanged, and a
GlobalAveragePool is outside it, although it needs no change of its own ([N, C, L, 1] -> [N, C,
1, 1]). So each global pool is taken out of the graph while qonnx's pass runs, its output a graph
input for that time (qonnx's shape change reaches it as it reaches every input), and put back;
the data layouts are inferred again for the 4D tensors.
"""

from __future__ import annotations

from onnx import TensorProto, ValueInfoProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.change_3d_tensors_to_4d import Change3DTo4DTensors
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_shapes import InferShapes

from qapflow.common.errors import QapflowError

POOLS = ("GlobalAveragePool",)


class OneDAsTwoD(Transformation):
    def apply(self, model: ModelWrapper):
        if len(model.get_tensor_shape(model.graph.input[0].name)) != 3:
            return model, False
        pools = [(i, n) for i, n in enumerate(model.graph.node) if n.op_type in POOLS]
        for _, node in pools:
            out = node.output[0]
            shape = model.get_tensor_shape(out)
            for vi in [v for v in model.graph.value_info if v.name == out]:
                model.graph.value_info.remove(vi)
            model.graph.input.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
            model.graph.node.remove(node)
        model = model.transform(Change3DTo4DTensors())
        for i, node in pools:
            model.graph.node.insert(i, node)
            held = next(x for x in model.graph.input if x.name == node.output[0])
            vi = ValueInfoProto()
            vi.CopyFrom(held)  # its 4D shape, as qonnx's pass left the input
            model.graph.input.remove(held)
            model.graph.value_info.append(vi)
        # the layouts qonnx's inference guessed for the 3D tensors (NWC, channels last) would steer
        # FINN's after the change (a Thresholding of one channel after a global pool): the 4D graph
        # is NCHW, as Change3DTo4DTensors takes it ([N, C, H] -> [N, C, H, 1]), and inferred anew
        for annotation in model.graph.quantization_annotation:
            for entry in [e for e in annotation.quant_parameter_tensor_names if e.key == "tensor_layout"]:
                annotation.quant_parameter_tensor_names.remove(entry)
        for node in model.get_nodes_by_op_type("MultiThreshold"):
            inst = getCustomOp(node)
            if len(inst.get_nodeattr("data_layout")) == 3:
                inst.set_nodeattr("data_layout", "NCHW")
        model = model.transform(InferShapes()).transform(InferDataLayouts())
        shape = model.get_tensor_shape(model.graph.input[0].name)
        if len(shape) != 4:
            raise QapflowError(f"qonnx's Change3DTo4DTensors left the 1D graph's input {shape}: nodes "
                               f"{sorted({n.op_type for n in model.graph.node})}")
        return model, False
