"""Read the dense-layer chain of a graph qapflow exported (Gemm form), for zero folding.

input -> [Quant] -> Gemm(x, Quant(W), Quant(b)) -> Relu -> Quant -> Gemm ... -> Gemm -> output
Analysis only: nothing here changes the graph. Any other graph is read by intmodel.chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper

from qapflow.intmodel.chain import UnsupportedGraph, quantized_constant
from qapflow.intmodel.chain import attr as _attr


@dataclass
class DenseLayer:
    gemm: NodeProto
    weight_quant: NodeProto | None  # None: float weights
    bias_quant: NodeProto | None  # None: float bias
    norm: NodeProto | None  # an unfolded BatchNormalization (scaled-int models keep theirs)
    relu: NodeProto | None  # None: the output layer
    act_quant: NodeProto | None
    act_prune: NodeProto | None = None  # ThresholdedRelu before the Relu (activation pruning)


@dataclass
class DenseChain:
    input_quant: NodeProto | None
    layers: list[DenseLayer]


def _only_consumer(model: ModelWrapper, tensor: str) -> NodeProto | None:
    consumers = model.find_consumers(tensor)
    if not consumers:
        return None
    if len(consumers) > 1:
        raise UnsupportedGraph(f"tensor {tensor} feeds {len(consumers)} nodes; expected a chain")
    return consumers[0]


def _producer_quant(model: ModelWrapper, tensor: str, role: str, gemm: NodeProto) -> NodeProto | None:
    producer = model.find_producer(tensor)
    if producer is None:
        if model.get_initializer(tensor) is None:
            raise UnsupportedGraph(f"layer {gemm.name}: {role} is neither a constant nor quantized")
        return None
    if producer.op_type != "Quant":
        raise UnsupportedGraph(f"layer {gemm.name}: {role} comes from {producer.op_type}, expected Quant")
    return producer


def dense_chain(model: ModelWrapper) -> DenseChain:
    """The graph as a chain of dense layers; UnsupportedGraph names the first node that is not."""
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise UnsupportedGraph("expected one graph input and one graph output")
    node = _only_consumer(model, model.graph.input[0].name)
    input_quant = None
    if node is not None and node.op_type == "Quant":
        input_quant = node
        node = _only_consumer(model, node.output[0])
    layers = []
    while node is not None:
        if node.op_type != "Gemm":
            raise UnsupportedGraph(f"unsupported layer {node.name} ({node.op_type}); qapflow handles "
                                   "dense layers (Gemm) with ReLU activations")
        if _attr(node, "transB", 0) != 1 or _attr(node, "transA", 0) != 0 or len(node.input) != 3:
            raise UnsupportedGraph(f"layer {node.name}: expected Gemm(x, W, b) with transB=1")
        gemm = node
        weight_quant = _producer_quant(model, gemm.input[1], "the weight", gemm)
        bias_quant = _producer_quant(model, gemm.input[2], "the bias", gemm)
        relu = act_quant = norm = act_prune = None
        node = _only_consumer(model, gemm.output[0])
        if node is not None and node.op_type == "BatchNormalization":
            norm = node
            node = _only_consumer(model, norm.output[0])
        if node is not None and node.op_type == "ThresholdedRelu":
            act_prune = node
            node = _only_consumer(model, act_prune.output[0])
        if node is not None:
            if node.op_type != "Relu":
                raise UnsupportedGraph(f"unsupported activation {node.name} ({node.op_type}) after {gemm.name}")
            relu = node
            node = _only_consumer(model, relu.output[0])
            if node is not None and node.op_type == "Quant":
                act_quant = node
                node = _only_consumer(model, act_quant.output[0])
        layers.append(DenseLayer(gemm, weight_quant, bias_quant, norm, relu, act_quant, act_prune))
    if not layers:
        raise UnsupportedGraph("the graph has no dense layer")
    return DenseChain(input_quant, layers)


def weight_matrix(model: ModelWrapper, layer: DenseLayer) -> np.ndarray:
    """The layer's weights as used ([out, in]), quantized if they pass through a Quant node."""
    if layer.weight_quant is not None:
        return quantized_constant(model, layer.weight_quant)
    return np.asarray(model.get_initializer(layer.gemm.input[1]), np.float64)


def bias_vector(model: ModelWrapper, layer: DenseLayer) -> np.ndarray:
    if layer.bias_quant is not None:
        return quantized_constant(model, layer.bias_quant)
    return np.asarray(model.get_initializer(layer.gemm.input[2]), np.float64)
