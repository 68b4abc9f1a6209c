"""Read any QONNX file (qapflow's, Brevitas', QKeras via qonnx, FINN's) into a clean graph.

qonnx graph passes, each one Transformation: domains normalised, QCDQ (QuantizeLinear / Clip /
DequantizeLinear) turned into Quant nodes by qonnx's own conversion, then qonnx's cleanup steps
(shape inference, constant folding with quantizers kept, weights given as graph inputs made
constants), quantizers on constants other than weights (quantized biases) folded into the values
they give, except that node names the user gave are kept (errors name them). What cannot
be read gives one DataFormatError naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (
    GiveReadableTensorNames,
    GiveUniqueParameterTensors,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
)
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.qcdq_to_qonnx import QCDQToQuant
from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

from qapflow.common.errors import DataFormatError
from qapflow.export.transforms.constants_to_initializers import ConstantNodesToInitializers
from qapflow.export.transforms.fold_multithreshold_affine import FoldAffineIntoMultiThreshold
from qapflow.export.transforms.fold_quantized_constants import FoldQuantizedConstants
from qapflow.export.transforms.integer_weights_to_qcdq import IntegerWeightsToQuantizeLinear
from qapflow.export.transforms.name_nodes import NameUnnamedNodes
from qapflow.export.transforms.normalize_domains import NormalizeQuantDomains
from qapflow.export.transforms.thresholded_relu import WhereGreaterToThresholdedRelu
from qapflow.export.validate import validate_model

QUANTIZER_OPS = ("Quant", "BipolarQuant", "Trunc", "MultiThreshold")


def ingest(path, input_shape=None) -> ModelWrapper:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise DataFormatError(path, f"not an ONNX file: {exc}") from exc
    proto = validate_model(proto, path, input_shape)  # one clear error per broken file; --input-shape
    if not proto.graph.node:
        raise DataFormatError(path, "the ONNX graph has no nodes")
    model = ModelWrapper(proto)
    # QCDQToQuant reads the QuantizeLinear outputs' types (shape inference first) and must run
    # before constant folding, which would fold a weight's QuantizeLinear/DequantizeLinear away
    steps = [ConstantNodesToInitializers(), NormalizeQuantDomains(), IntegerWeightsToQuantizeLinear(), InferShapes(),
             QCDQToQuant(), WhereGreaterToThresholdedRelu(), InferShapes(),
             GiveUniqueParameterTensors(), FoldConstants(exclude_op_types=list(QUANTIZER_OPS)),
             FoldQuantizedConstants(), FoldAffineIntoMultiThreshold(), FoldTransposeIntoQuantInit(),
             RemoveUnusedTensors(), RemoveStaticGraphInputs(), NameUnnamedNodes(), GiveReadableTensorNames()]
    try:
        for step in steps:
            model = model.transform(step)
    except Exception as exc:  # qonnx raises plain exceptions for graphs it cannot infer
        raise DataFormatError(path, f"qonnx cannot clean up this graph: {exc}") from exc
    if not any(n.op_type in QUANTIZER_OPS for n in model.graph.node):
        raise DataFormatError(path, "no quantizer nodes (Quant, BipolarQuant): a float model is not a "
                                    "quantized network; quantize it first (Brevitas, QKeras + qonnx)")
    return model
