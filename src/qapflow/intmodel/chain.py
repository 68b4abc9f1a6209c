"""Read any quantized MLP in a (cleaned) QONNX graph as a chain of dense stages.

input -> [head: reshapes, float preprocessing, the input quantizer]
      -> stage: dense (Gemm or MatMul with quantized constant weights)
                -> elementwise tail (bias Add, BatchNormalization, Mul/Div/Add/Sub by constants,
                   Relu, Clip, Identity) -> quantizer (Quant or BipolarQuant), or none at the end
      -> ... -> [output tail: Softmax, LogSoftmax, ArgMax, TopK, left to software]
Analysis only: nothing here changes the graph. Anything else is an UnsupportedGraph naming
the node, its op and what would make it supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.quant import quant

from qapflow.common.errors import QapflowError


class UnsupportedGraph(QapflowError):
    """The QONNX graph is not a chain of quantized dense layers qapflow can handle."""


DENSE = ("Gemm", "MatMul")
QUANTIZERS = ("Quant", "BipolarQuant")
# FINN's MultiThreshold: an activation (or input) quantizer whose integers are its counts
ACTIVATION_QUANTIZERS = QUANTIZERS + ("MultiThreshold",)
SHAPE_OPS = ("Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze")
PREPROCESSING = ("Mul", "Div", "Add", "Sub")
# float ops the software head may run before the input quantizer (a Relu: an unsigned input)
HEAD_FLOAT_OPS = PREPROCESSING + ("Relu", "Clip", "Identity", "BatchNormalization")
# elementwise ops allowed between a dense op and the next quantizer; all monotone per channel
ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "ThresholdedRelu", "Clip", "Identity",
               "Trunc")
OUTPUT_TAIL = ("Softmax", "LogSoftmax", "ArgMax", "TopK", "Identity")


@dataclass
class Stage:
    """One dense layer: the linear op, its integer weights, the ops after it, its quantizer."""

    dense: NodeProto
    weight: np.ndarray  # float64 [out, in]: the values the graph multiplies with
    weight_quant: NodeProto | None  # None: integer constants with a datatype annotation (FINN-ONNX)
    bias: np.ndarray | None = None  # a Gemm's own bias (C input); MatMul biases are Add nodes in tail
    tail: list[NodeProto] = field(default_factory=list)
    quant: NodeProto | None = None  # None: the output stage


@dataclass
class Chain:
    head: list[NodeProto]  # graph input .. first dense input (shape ops, preprocessing, quantizer)
    input_quant: NodeProto | None
    stages: list[Stage]
    output_tail: list[NodeProto]

    @property
    def head_output(self) -> str:
        return self.stages[0].dense.input[0]

    @property
    def preprocessing(self) -> list[str]:
        """The float ops before the input quantizer (kept in software)."""
        ops = []
        for node in self.head:
            if node is self.input_quant:
                break
            ops.append(f"{node.name} ({node.op_type})")
        return ops


def attr(node: NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            if a.type == a.STRING:
                return a.s.decode()
            if a.type == a.FLOAT:
                return a.f
            if a.type == a.INTS:
                return list(a.ints)
            return a.i
    return default


def describe(node: NodeProto) -> str:
    return f"node {node.name or '<unnamed>'} ({node.op_type})"


def quant_params(model: ModelWrapper, node: NodeProto) -> dict:
    """Constants of a Quant or BipolarQuant node (float64 arrays) and its attributes."""
    n_params = 1 if node.op_type == "BipolarQuant" else 3
    params = [model.get_initializer(name) for name in node.input[1 : 1 + n_params]]
    if any(p is None for p in params):
        raise UnsupportedGraph(f"{describe(node)}: scale, zero point and bit width must be constants "
                               "(run qonnx cleanup / constant folding first)")
    if node.op_type == "BipolarQuant":
        return {"scale": np.asarray(params[0], np.float64), "zeropt": np.zeros(1), "bitwidth": np.ones(1),
                "signed": True, "narrow": False, "rounding_mode": "BIPOLAR", "bipolar": True}
    scale, zeropt, bitwidth = (np.asarray(p, np.float64) for p in params)
    signed = bool(attr(node, "signed", 1))
    # qonnx executes a signed 1-bit Quant as bipolar (+-1, narrow or not), as old Brevitas/FINN
    # exports write binary weights and activations
    bipolar = signed and bitwidth.size == 1 and float(bitwidth.reshape(-1)[0]) == 1.0
    return {"scale": scale, "zeropt": zeropt, "bitwidth": bitwidth, "signed": signed,
            "narrow": bool(attr(node, "narrow", 0)),
            "rounding_mode": "BIPOLAR" if bipolar else attr(node, "rounding_mode", "ROUND"), "bipolar": bipolar}


def quantized_constant(model: ModelWrapper, node: NodeProto) -> np.ndarray:
    """The values a Quant/BipolarQuant node applied to a constant produces, computed in float32
    as qonnx executes the graph (float64 arithmetic can round a weight to another integer)."""
    value = model.get_initializer(node.input[0])
    if value is None:
        raise UnsupportedGraph(f"{describe(node)} quantizes a non-constant where weights were expected")
    p = quant_params(model, node)
    value = np.asarray(value, np.float32)
    scale = p["scale"].astype(np.float32)
    if node.op_type == "BipolarQuant":
        return (np.where(value >= 0, np.float32(1), np.float32(-1)) * scale).astype(np.float64)
    q = quant(value, scale, p["zeropt"].astype(np.float32), p["bitwidth"].astype(np.float32), p["signed"],
              p["narrow"], p["rounding_mode"])
    return np.asarray(q, np.float64)


def _consumer(model: ModelWrapper, tensor: str) -> NodeProto | None:
    consumers = model.find_consumers(tensor) or []
    if len(consumers) > 1:
        raise UnsupportedGraph(f"tensor {tensor} feeds {len(consumers)} nodes "
                               f"({', '.join(describe(c) for c in consumers)}); qapflow handles chains "
                               "of dense layers without branches")
    return consumers[0] if consumers else None


def _variable_input(model: ModelWrapper, node: NodeProto) -> str:
    """The one non-constant input of a node (its data input)."""
    variables = [t for t in node.input if t and model.get_initializer(t) is None]
    if len(variables) != 1:
        raise UnsupportedGraph(f"{describe(node)}: expected one data input and constants, found "
                               f"{len(variables)} data inputs")
    return variables[0]


def annotated_integer_type(model: ModelWrapper, tensor: str):
    """The tensor's qonnx DataType when it is annotated as integers (FINN-ONNX), else None."""
    dtype = model.get_tensor_datatype(tensor)
    return dtype if dtype.is_integer() else None


def _dense_weight(model: ModelWrapper, node: NodeProto) -> tuple[np.ndarray, NodeProto | None]:
    """The dense op's weights as [out, in] and their quantizer (None: annotated integers)."""
    weight_name = node.input[1]
    producer = model.find_producer(weight_name)
    constant = model.get_initializer(weight_name)
    if producer is None and constant is not None and annotated_integer_type(model, weight_name) is not None:
        weight = np.asarray(constant, np.float64)  # FINN-ONNX: the integers themselves, scale 1
    elif producer is None or producer.op_type not in QUANTIZERS:
        what = "float constants" if producer is None else f"the output of {describe(producer)}"
        raise UnsupportedGraph(f"{describe(node)}: its weights are {what}; qapflow needs quantized "
                               "weights (a Quant or BipolarQuant node on a constant, or constants "
                               "annotated with an integer datatype as FINN writes them)")
    else:
        weight = quantized_constant(model, producer)
    if weight.ndim != 2:
        raise UnsupportedGraph(f"{describe(node)}: weights of shape {list(weight.shape)}; expected 2-D")
    if node.op_type == "Gemm":
        if attr(node, "transA", 0) != 0 or attr(node, "alpha", 1.0) != 1.0:
            raise UnsupportedGraph(f"{describe(node)}: transA=1 or alpha != 1 is not supported")
        if attr(node, "transB", 0) != 1:
            weight = weight.T
    else:
        weight = weight.T  # MatMul: x [N, in] @ W [in, out]
    return weight, producer


def _gemm_bias(model: ModelWrapper, node: NodeProto) -> np.ndarray | None:
    if node.op_type != "Gemm" or len(node.input) < 3 or not node.input[2]:
        return None
    producer = model.find_producer(node.input[2])
    if producer is not None and producer.op_type in QUANTIZERS:
        bias = quantized_constant(model, producer)
    elif producer is None and model.get_initializer(node.input[2]) is not None:
        bias = np.asarray(model.get_initializer(node.input[2]), np.float64)
    else:
        raise UnsupportedGraph(f"{describe(node)}: its bias must be a constant, quantized or not")
    return bias.reshape(-1) * attr(node, "beta", 1.0)


def _hint(model: ModelWrapper, node: NodeProto, stages: list) -> str:
    """What would make `node` supported where it stands."""
    if not stages:
        return "dense layers as Gemm or MatMul with quantized weights"
    downstream, seen = [], [node]
    while seen:
        current = seen.pop()
        downstream.append(current.op_type)
        for out in current.output:
            seen.extend(model.find_consumers(out) or [])
    if any(op in DENSE for op in downstream):
        return ("between dense layers only " + ", ".join(ELEMENTWISE) + " (by constants), then a Quant, "
                "BipolarQuant or MultiThreshold activation quantizer")
    return "after the last dense layer only " + ", ".join(OUTPUT_TAIL[:-1]) + " (left to software)"


def read_chain(model: ModelWrapper) -> Chain:
    """The graph as head, dense stages and output tail; UnsupportedGraph names the first misfit."""
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise UnsupportedGraph(f"expected one graph input and one output, found {len(model.graph.input)} "
                               f"inputs and {len(model.graph.output)} outputs (weights given as inputs "
                               "need initializers)")
    head, input_quant = [], None
    node = _consumer(model, model.graph.input[0].name)
    while node is not None and node.op_type not in DENSE:
        if node.op_type in ACTIVATION_QUANTIZERS and input_quant is None:
            input_quant = node
        elif node.op_type not in SHAPE_OPS + HEAD_FLOAT_OPS or (input_quant is not None and
                                                                  node.op_type in HEAD_FLOAT_OPS):
            raise UnsupportedGraph(f"{describe(node)} before the first dense layer: only reshapes, float "
                                   f"{', '.join(HEAD_FLOAT_OPS)} by constants before one input quantizer "
                                   "(Quant, BipolarQuant, MultiThreshold), and reshapes after it")
        head.append(node)
        node = _consumer(model, node.output[0])
    stages = []
    while node is not None and node.op_type in DENSE:
        weight, weight_quant = _dense_weight(model, node)
        stage = Stage(node, weight, weight_quant, _gemm_bias(model, node))
        nxt = _consumer(model, node.output[0])
        while nxt is not None and nxt.op_type in ELEMENTWISE:
            if nxt.op_type != "Identity" and _variable_input(model, nxt) != nxt.input[0] and nxt.op_type == "Div":
                raise UnsupportedGraph(f"{describe(nxt)} divides a constant by the data: not monotone; "
                                       "only division by a constant is supported")
            stage.tail.append(nxt)
            nxt = _consumer(model, nxt.output[0])
        if nxt is not None and nxt.op_type in ACTIVATION_QUANTIZERS:
            stage.quant = nxt
            nxt = _consumer(model, nxt.output[0])
        stages.append(stage)
        node = nxt
        if stage.quant is None and node is not None and node.op_type in DENSE:
            raise UnsupportedGraph(f"{describe(node)}: its input is not quantized (no Quant after "
                                   f"{describe(stage.dense)}); hidden activations must be quantized")
    output_tail = []
    while node is not None:
        if node.op_type not in OUTPUT_TAIL:
            raise UnsupportedGraph(f"unsupported {describe(node)}; qapflow supports {_hint(model, node, stages)}")
        output_tail.append(node)
        node = _consumer(model, node.output[0])
    if not stages:
        raise UnsupportedGraph("the graph has no dense layer (Gemm or MatMul)")
    return Chain(head, input_quant, stages, output_tail)


__all__ = ["Chain", "Stage", "UnsupportedGraph", "read_chain", "quant_params", "quantized_constant", "ACTIVATION_QUANTIZERS",
           "attr", "describe"]
