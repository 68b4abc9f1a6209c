"""Read a cleaned QONNX graph (export.ingest.ingest first) into an IntGraph.

The walk follows the data from the graph input in topological order. Before the input
quantizer: the software head (reshapes and float preprocessing, as chain.py allows). Then each
node either makes an integer op (Gemm/MatMul/Conv with quantized weights, MaxPool, AveragePool/
GlobalAveragePool/ReduceMean, Add of two integer tensors, Concat, reshapes and transposes), or
is a per-channel float op (chain.ELEMENTWISE) waiting for its quantizer, where the pending ops
and the quantizer become one requantization (graph_requant); float ops that reach the graph
output without a quantizer (and chain.OUTPUT_TAIL) are the software tail. Anything else: one
UnsupportedGraph naming node, op and what is supported there.
Own walk rather than qonnx passes: qonnx has no pass that maps quantized ops to integer ops;
its cleanup (ingest), SortGraph and shape inference are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import SortGraph

from qapflow.intmodel.build import Grid, quant_grid
from qapflow.intmodel.chain import (ACTIVATION_QUANTIZERS, ELEMENTWISE, HEAD_FLOAT_OPS, OUTPUT_TAIL, SHAPE_OPS,
                                    UnsupportedGraph, attr, describe)
from qapflow.intmodel.graph import Accumulator, GraphEnds, IntGraph, Tensor
from qapflow.intmodel.graph_requant import requantize
from qapflow.intmodel.model import NotBitExact
from qapflow.intmodel.ops import Concat, MaxPool, Reshape, Transpose
from qapflow.intmodel.ops.merge import common_unit
from qapflow.intmodel.read_ops import add_op, check_width, fold_bias, input_scales, linear_op, pool_op, units_of
from qapflow.intmodel.subgraph import subgraph

LINEAR = ("Gemm", "MatMul", "Conv")
SUM_POOLS = ("AveragePool", "GlobalAveragePool", "ReduceMean")
INTEGER_OPS = LINEAR + SUM_POOLS + ("MaxPool", "Add", "Concat") + SHAPE_OPS
SUPPORTED = ("Gemm/MatMul/Conv with quantized weights, MaxPool, AveragePool, GlobalAveragePool, ReduceMean over "
             "the spatial axes, Add of two quantized tensors, Concat along channels, "
             + "/".join(SHAPE_OPS) + ", per-channel " + "/".join(ELEMENTWISE) + " before a "
             + "/".join(ACTIVATION_QUANTIZERS) + " quantizer, and " + "/".join(OUTPUT_TAIL[:-1]) + " at the output")


@dataclass
class Pending:
    """Float ops on an integer tensor, not yet quantized."""

    source: Tensor
    nodes: list


def _head(model: ModelWrapper):
    """(head nodes incl. the input quantizer, the input quantizer)."""
    name = model.graph.input[0].name
    head = []
    while True:
        consumers = model.find_consumers(name) or []
        if len(consumers) != 1:
            raise UnsupportedGraph(f"tensor {name} before the input quantizer feeds {len(consumers)} nodes; the "
                                   "graph input needs one path to one input quantizer")
        node = consumers[0]
        head.append(node)
        if node.op_type in ACTIVATION_QUANTIZERS:
            return head, node
        if node.op_type not in SHAPE_OPS + HEAD_FLOAT_OPS:
            raise UnsupportedGraph(f"{describe(node)} before the input quantizer: only reshapes and float "
                                   f"{', '.join(HEAD_FLOAT_OPS)} by constants, then one input quantizer (Quant, "
                                   "BipolarQuant, MultiThreshold)")
        name = node.output[0]


class _Reader:
    def __init__(self, model: ModelWrapper, force_thresholds: bool):
        self.model, self.force = model, force_thresholds
        self.tensors, self.ops, self.bounds, self.env = {}, [], {}, {}
        self.absorbed = set()

    def per_sample(self, name: str) -> list[int]:
        shape = self.model.get_tensor_shape(name)
        if not shape:
            raise UnsupportedGraph(f"tensor {name} has no known shape (run qonnx shape inference)")
        return [int(d) for d in shape[1:]]

    def add(self, op, grid, node) -> Tensor:
        shape = op.output_shape(*(self.tensors[i].shape for i in op.inputs))
        if any(int(d) < 1 for d in shape):
            raise UnsupportedGraph(f"{describe(node)}: its output of per-sample shape {list(shape)} has no values "
                                   "(a kernel or window larger than its padded input)")
        bounds = op.bound(*(self.bounds[i] for i in op.inputs))
        check_width(node, bounds)
        t = Tensor(op.output, [int(d) for d in shape], grid)
        self.tensors[t.name], self.bounds[t.name], self.env[t.name] = t, bounds, t
        self.ops.append(op)
        return t

    def data_inputs(self, node) -> list:
        return [self.env[i] for i in node.input if i in self.env]

    def integer(self, node, state) -> Tensor:
        if isinstance(state, Pending):
            ops = ", ".join(describe(n) for n in state.nodes)
            raise UnsupportedGraph(f"{describe(node)}: its input has float ops ({ops}) after {state.source.name} "
                                   "and no quantizer; put a quantizer before it")
        return state

    def bias_add(self, node):
        """The Add of a constant right after a linear op (a MatMul's bias), if it is one."""
        consumers = self.model.find_consumers(node.output[0]) or []
        if len(consumers) != 1 or consumers[0].op_type != "Add":
            return None, None
        add = consumers[0]
        consts = [self.model.get_initializer(i) for i in add.input]
        if sum(c is not None for c in consts) != 1 or node.output[0] not in add.input:
            return None, None
        value = np.asarray(next(c for c in consts if c is not None), np.float64)
        rank = len(self.model.get_tensor_shape(node.output[0]))
        shape = [1] * (rank - value.ndim) + list(value.shape)
        if value.ndim > rank or any(d != 1 for i, d in enumerate(shape) if i != 1):
            return None, None
        return add, value.reshape(-1)

    def linear(self, node, t: Tensor) -> None:
        if node.op_type not in LINEAR:
            return self.add(*pool_op(self.model, node, t), node)
        op, grid, bias = linear_op(self.model, node, t)
        add, value = self.bias_add(node)
        if add is not None and bias is None:  # fl32(sum) + b in float32, as the op's own bias
            bias, op.output, op.name = value, add.output[0], f"{op.name}+{add.name}"
            self.absorbed.add(add.name)
        fold_bias(op, grid, bias, op.bound(self.bounds[t.name]))
        self.add(op, grid, node)

    def quantizer(self, node, state) -> None:
        source, pipeline = (state.source, state.nodes) if isinstance(state, Pending) else (state, [])
        shaped = [n for n in pipeline if n.op_type in SHAPE_OPS]
        if shaped:
            raise UnsupportedGraph(f"{describe(shaped[0])} between {source.name} and {describe(node)}: only "
                                   "per-channel float ops there; reshape after the quantizer")
        op, grid = requantize(self.model, source, self.bounds[source.name], pipeline, node, describe(node),
                              self.force)
        self.add(op, grid, node)

    def wiring(self, node, t: Tensor) -> None:
        out_shape = self.per_sample(node.output[0])
        g = t.grid
        uniform = (np.ndim(g.offset) == 0) if isinstance(g, Grid) else (
            len(set(g.scale)) == 1 and (g.bias is None or len(set(g.bias)) == 1))
        if not uniform:
            raise UnsupportedGraph(f"{describe(node)}: {t.name} has per-channel scales or zero points; moving "
                                   "them through a reshape is not supported yet (quantize per tensor first)")
        if node.op_type == "Transpose":
            perm = list(attr(node, "perm"))
            if perm[0] != 0:
                raise UnsupportedGraph(f"{describe(node)}: perm {perm} moves the batch axis")
            op = Transpose(node.name, [t.name], node.output[0], list(t.shape), [p - 1 for p in perm[1:]])
        else:
            op = Reshape(node.name, [t.name], node.output[0], list(t.shape), out_shape)
        if int(np.prod(out_shape)) != int(np.prod(t.shape)):
            raise UnsupportedGraph(f"{describe(node)}: changes the batch size")
        c = out_shape[0] if out_shape else 1
        grid = g if isinstance(g, Grid) else Accumulator([g.scale[0]] * c, g.divisor,
                                                          None if g.bias is None else [g.bias[0]] * c)
        self.add(op, grid, node)

    def concat(self, node, tensors: list[Tensor]) -> None:
        rank = len(tensors[0].shape) + 1
        if int(attr(node, "axis", 1)) % rank != 1:
            raise UnsupportedGraph(f"{describe(node)}: axis {attr(node, 'axis')}; Concat along channels only")
        grids = [t.grid for t in tensors]
        first = grids[0]
        if all(isinstance(g, Grid) and g.spec == first.spec and g.scale == first.scale and g.mult == first.mult
               and np.ndim(g.offset) == 0 and np.array_equal(np.asarray(g.offset), np.asarray(first.offset))
               for g in grids):
            return self.add(Concat(node.name, [t.name for t in tensors], node.output[0]), first, node)
        # different grids: aligned on the common unit of every channel's scale (ops/merge.py)
        scales = [input_scales(t) for t in tensors]
        if len({d for _, d in scales}) != 1:
            raise NotBitExact(f"{describe(node)}: joins averages (divided sums) with other divisors or with "
                              "quantized tensors; quantize the branches first")
        units = [units_of(t, node) for t in tensors]
        coeffs, unit = common_unit([s for scale, _ in scales for s in scale])
        ends = np.cumsum([0] + [len(scale) for scale, _ in scales])
        per_input = [coeffs[a:b] for a, b in zip(ends[:-1], ends[1:])]
        grid = Accumulator([unit] * int(ends[-1]), scales[0][1])
        if all(c == 1 for c in coeffs) and all(u.identity for u in units):
            units = per_input = None  # already on one unit: pure wiring
        self.add(Concat(node.name, [t.name for t in tensors], node.output[0], units, per_input), grid, node)

    def visit(self, node) -> None:
        states = self.data_inputs(node)
        if not states or node.name in self.absorbed:
            return
        op = node.op_type
        if op in ACTIVATION_QUANTIZERS:
            return self.quantizer(node, states[0])
        if op == "Add" and len(states) == 2:
            a, b = (self.integer(node, s) for s in states)
            return self.add(*add_op(node, a, b), node)
        if op == "Concat":
            return self.concat(node, [self.integer(node, s) for s in states])
        if len(states) != 1:
            raise UnsupportedGraph(f"{describe(node)}: {len(states)} data inputs; only Add and Concat join "
                                   "tensors (the others take one data tensor and constants)")
        state = states[0]
        if op == "Identity":
            self.env[node.output[0]] = state
        elif op in LINEAR + SUM_POOLS:
            self.linear(node, self.integer(node, state))
        elif op == "MaxPool":
            self.maxpool(node, self.integer(node, state))
        elif op in SHAPE_OPS and not isinstance(state, Pending):
            self.wiring(node, state)
        elif op in ELEMENTWISE + OUTPUT_TAIL + SHAPE_OPS:
            if op == "Div" and node.input[0] not in self.env:
                raise UnsupportedGraph(f"{describe(node)} divides a constant by the data: not monotone")
            source, nodes = (state.source, state.nodes) if isinstance(state, Pending) else (state, [])
            self.env[node.output[0]] = Pending(source, nodes + [node])
        else:
            raise UnsupportedGraph(f"unsupported {describe(node)}; qapflow supports {SUPPORTED}")

    def maxpool(self, node, t: Tensor) -> None:
        kernel = list(attr(node, "kernel_shape"))
        n = len(kernel)
        if attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID") or attr(node, "storage_order", 0):
            raise UnsupportedGraph(f"{describe(node)}: auto_pad / storage_order; explicit pads are supported")
        if len(node.output) > 1 and node.output[1]:
            raise UnsupportedGraph(f"{describe(node)}: its Indices output is not supported")
        op = MaxPool(node.name, [t.name], node.output[0], kernel, list(attr(node, "strides", [1] * n)),
                     list(attr(node, "pads", [0] * 2 * n)), list(attr(node, "dilations", [1] * n)),
                     bool(attr(node, "ceil_mode", 0)))
        self.add(op, t.grid, node)


def read_graph(model: ModelWrapper, force_thresholds: bool = False) -> IntGraph:
    """The IntGraph of an ingested QONNX graph; UnsupportedGraph / NotBitExact name the node."""
    model = model.transform(SortGraph())
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise UnsupportedGraph(f"expected one graph input and one output, found {len(model.graph.input)} and "
                               f"{len(model.graph.output)}")
    head, input_quant = _head(model)
    reader = _Reader(model, force_thresholds)
    name = input_quant.output[0]
    t = Tensor(name, reader.per_sample(name), quant_grid(model, input_quant, "input quantizer"))
    spec = t.grid.spec
    reader.tensors[name], reader.env[name] = t, t
    reader.bounds[name] = tuple(np.array([v] * t.channels, dtype=object) for v in (spec.lo, spec.hi))
    done = {n.name for n in head}
    for node in model.graph.node:
        if node.name not in done:
            reader.visit(node)
    out_name = model.graph.output[0].name
    state = reader.env.get(out_name)
    if state is None:
        raise UnsupportedGraph(f"the graph output {out_name} is not computed from the input quantizer's integers")
    source, tail = (state.source, state.nodes) if isinstance(state, Pending) else (state, [])
    if not any(op.kind in ("dense", "conv", "sumpool", "add") for op in reader.ops):
        raise UnsupportedGraph("the graph has no linear layer (Gemm, MatMul, Conv, pooling or Add)")
    graph_input = model.graph.input[0].name
    ends = GraphEnds([int(d) for d in model.get_tensor_shape(graph_input)[1:]],
                     subgraph(model, head, graph_input, name), subgraph(model, tail, source.name, out_name),
                     {"software_before_firmware": [f"{n.name} ({n.op_type})" for n in head],
                      "software_after_firmware": [f"{n.name} ({n.op_type})" for n in tail]})
    return IntGraph(reader.tensors, reader.ops, name, source.name, ends)
