"""One IntGraph operation from one graph node: weights, attributes, units and output grids.

Used by read_graph (the walk over the graph) and graph_reference (the same weights, read from
the graph, never from an IntGraph). Errors name the node, its op and the field.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from qapflow.intmodel.build import _weight_ints, pot_exponent
from qapflow.intmodel.chain import (QUANTIZERS, Stage, UnsupportedGraph, _dense_weight, _gemm_bias,
                                    annotated_integer_type, attr, describe, quant_params, quantized_constant)
from qapflow.intmodel.graph import Accumulator, Tensor
from qapflow.intmodel.model import NotBitExact
from qapflow.intmodel.ops import Add, Conv, Dense, SumPool, Units, add_coefficients
from qapflow.intmodel.ops.base import INT64_SAFE

FLOAT32_EXACT = 1 << 24


def units_of(t: Tensor, node) -> Units:
    """The units a linear op sums for tensor t; refuses what has no integer real zero."""
    g = t.grid
    if isinstance(g, Accumulator):
        if g.bias is not None:
            raise NotBitExact(f"{describe(node)}: its input {t.name} carries a float bias that is not on its "
                              "integer grid; a linear op can only sum it after a quantizer")
        return Units()
    offset = np.asarray(g.offset, np.float64)
    if np.any(offset != np.round(offset)):
        raise NotBitExact(f"{describe(node)}: input {t.name} has zero point / offset {offset.tolist()} that is "
                          "not a whole number of steps; its real zero has no integer code")
    off = np.round(offset).astype(np.int64)
    return Units(int(g.mult), off.tolist() if off.ndim else int(off))


def input_scales(t: Tensor) -> tuple[np.ndarray, int]:
    """(per-channel scale of one unit, the divisor it is under)."""
    g = t.grid
    if isinstance(g, Accumulator):
        return np.asarray(g.scale, np.float64), int(g.divisor)
    return np.full(t.channels, float(g.scale)), 1


def conv_weight_integers(model: ModelWrapper, node) -> tuple[np.ndarray, np.ndarray, int]:
    """A Conv's integer weights [out, in/groups, *k], per-output-channel scale, bit width."""
    name = node.input[1]
    producer = model.find_producer(name)
    raw = model.get_initializer(name)
    if producer is None and raw is not None and annotated_integer_type(model, name) is not None:
        w = np.asarray(raw, np.float64)
        if not np.array_equal(w, np.round(w)):
            raise NotBitExact(f"{describe(node)}: weights annotated as integers hold other values")
        return w.astype(np.int64), np.ones(w.shape[0]), int(annotated_integer_type(model, name).bitwidth())
    if producer is None or producer.op_type not in QUANTIZERS:
        raise UnsupportedGraph(f"{describe(node)}: its weights are not quantized (input W must be a Quant or "
                               "BipolarQuant node on a constant)")
    p = quant_params(model, producer)
    if np.any(p["zeropt"] != 0):
        raise NotBitExact(f"{describe(producer)}: weights with a non-zero zero point")
    w = quantized_constant(model, producer)
    scale = np.broadcast_to(p["scale"].astype(np.float32).astype(np.float64), w.shape).reshape(w.shape[0], -1)
    if np.any(scale != scale[:, :1]):
        raise NotBitExact(f"{describe(producer)}: weight scales vary within an output channel; qapflow takes "
                          "per-tensor or per-output-channel weight scales")
    s_w = scale[:, 0].copy()
    q = w / s_w.reshape((-1,) + (1,) * (w.ndim - 1))
    rounded = np.round(q)
    if np.any(np.abs(q - rounded) > 0.25) or np.any(np.abs(rounded) >= 2**22):
        raise NotBitExact(f"{describe(producer)}: weights are not integers at their scale")
    return rounded.astype(np.int64), s_w, int(p["bitwidth"].reshape(-1)[0])


def conv_bias(model: ModelWrapper, node) -> np.ndarray | None:
    if len(node.input) < 3 or not node.input[2]:
        return None
    producer = model.find_producer(node.input[2])
    if producer is not None and producer.op_type in QUANTIZERS:
        return quantized_constant(model, producer).reshape(-1)
    value = model.get_initializer(node.input[2])
    if value is None:
        raise UnsupportedGraph(f"{describe(node)}: its bias B must be a constant, quantized or not")
    return np.asarray(value, np.float64).reshape(-1)


def dense_weight_integers(model: ModelWrapper, node):
    """A Gemm/MatMul's integer weights [out, in], per-output scale, bits, float bias (or None)."""
    weight, wq = _dense_weight(model, node)
    stage = Stage(node, weight, wq, _gemm_bias(model, node))
    w_int, s_w, bits = _weight_ints(model, stage)
    return w_int, s_w, bits, stage.bias


def _group_scale(node, s_in: np.ndarray, groups: int) -> np.ndarray:
    """One input scale per group: a sum over channels needs one unit."""
    per_group = s_in.reshape(groups, -1)
    if np.any(per_group != per_group[:, :1]):
        raise NotBitExact(f"{describe(node)}: its input's channels have different scales within a group; "
                          "put a per-tensor quantizer before it")
    return per_group[:, 0]


def linear_op(model: ModelWrapper, node, t: Tensor):
    """(Dense or Conv op without bias, its accumulator grid, the node's float bias or None)."""
    units = units_of(t, node)
    s_in, divisor = input_scales(t)
    if node.op_type in ("Gemm", "MatMul"):
        if len(t.shape) != 1:
            raise UnsupportedGraph(f"{describe(node)}: input {t.name} of per-sample shape {t.shape}; dense layers "
                                   "take flat inputs here (a Flatten before them)")
        w_int, s_w, bits, bias = dense_weight_integers(model, node)
        s_acc = _group_scale(node, s_in, 1)[0] * s_w
        op = Dense(node.name, [t.name], node.output[0], w_int, np.zeros(len(s_w), np.int64), units, bits)
    else:
        w_int, s_w, bits = conv_weight_integers(model, node)
        spatial = len(w_int.shape) - 2
        groups = int(attr(node, "group", 1))
        if attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise UnsupportedGraph(f"{describe(node)}: auto_pad {attr(node, 'auto_pad')!r}; explicit pads "
                                   "are supported (qonnx cleanup writes them)")
        if spatial not in (1, 2) or t.shape[0] != w_int.shape[1] * groups:
            raise UnsupportedGraph(f"{describe(node)}: weights {list(w_int.shape)} on input {t.shape}: 1D and 2D "
                                   "convolutions with groups dividing the channels are supported")
        g_scale = _group_scale(node, s_in, groups)
        s_acc = np.repeat(g_scale, len(s_w) // groups) * s_w
        op = Conv(node.name, [t.name], node.output[0], w_int, np.zeros(len(s_w), np.int64), units,
                  list(attr(node, "strides", [1] * spatial)), list(attr(node, "pads", [0] * 2 * spatial)),
                  list(attr(node, "dilations", [1] * spatial)), groups, bits)
        bias = conv_bias(model, node)
    return op, Accumulator([float(s) for s in s_acc], divisor), bias


def fold_bias(op, grid: Accumulator, bias, bounds) -> None:
    """Put the float bias on the op: as integers where both readings agree (power-of-two
    scales, the bias on the grid, sums exact in float32), else in the grid, added after the
    rounding as the graph adds it."""
    if bias is None:
        return
    bias32 = np.broadcast_to(np.asarray(bias, np.float32), (len(grid.scale),)).astype(np.float64)
    exps = [pot_exponent(s) for s in grid.scale]
    if grid.divisor == 1 and None not in exps:
        as_int = np.array([np.ldexp(b, -e) for b, e in zip(bias32, exps)])
        widest = max(max(abs(int(v)) for v in bounds[0]), max(abs(int(v)) for v in bounds[1]))
        if np.array_equal(as_int, np.round(as_int)) and widest + np.abs(as_int).max() < FLOAT32_EXACT:
            op.bias = as_int.astype(np.int64)
            return
    grid.bias = [float(b) for b in bias32]


def pool_op(model: ModelWrapper, node, t: Tensor):
    """(SumPool, its accumulator grid) for AveragePool / GlobalAveragePool / ReduceMean."""
    units = units_of(t, node)
    s_in, divisor = input_scales(t)
    spatial = t.shape[1:]
    if node.op_type == "AveragePool":
        kernel = list(attr(node, "kernel_shape"))
        pads = list(attr(node, "pads", [0] * 2 * len(kernel)))
        if attr(node, "ceil_mode", 0) or attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID") or (
                any(pads) and not attr(node, "count_include_pad", 0)):
            raise UnsupportedGraph(f"{describe(node)}: ceil_mode, auto_pad, or pads without count_include_pad=1 "
                                   "(a divisor that changes at the border); supported: one divisor everywhere")
        op = SumPool(node.name, [t.name], node.output[0], kernel, list(attr(node, "strides", [1] * len(kernel))),
                     pads, True, units, int(np.prod(kernel)))
    else:
        keepdims = True
        if node.op_type == "ReduceMean":
            axes = attr(node, "axes") or (list(model.get_initializer(node.input[1]))
                                          if len(node.input) > 1 and node.input[1] else None)
            rank = len(spatial) + 2
            if axes is None or sorted(a % rank for a in axes) != list(range(2, rank)):
                raise UnsupportedGraph(f"{describe(node)}: axes {axes}; only the mean over all spatial axes "
                                       "(global average pooling) is supported")
            keepdims = bool(attr(node, "keepdims", 1))
        op = SumPool(node.name, [t.name], node.output[0], None, None, None, keepdims, units,
                     int(np.prod(spatial)) if spatial else 1)
    return op, Accumulator([float(s) for s in s_in], divisor * op.divisor)


def add_op(node, a: Tensor, b: Tensor):
    """(Add, its accumulator grid) of two integer tensors of one shape."""
    if list(a.shape) != list(b.shape):
        raise UnsupportedGraph(f"{describe(node)}: inputs of shapes {a.shape} and {b.shape}; an Add of two "
                               "tensors needs one shape (no broadcasting)")
    ua, ub = units_of(a, node), units_of(b, node)
    (sa, da), (sb, db) = input_scales(a), input_scales(b)
    if da != 1 or db != 1:
        raise NotBitExact(f"{describe(node)}: an input is an average (divided sum); quantize it before the Add")
    coeffs = [add_coefficients(x, y) for x, y in zip(sa, sb)]
    ca, cb, unit = ([c[i] for c in coeffs] for i in range(3))
    same = len(set(zip(ca, cb))) == 1
    op = Add(node.name, [a.name, b.name], node.output[0], ca[0] if same else ca, cb[0] if same else cb, [ua, ub])
    return op, Accumulator([float(u) for u in unit])


def check_width(node, bounds) -> None:
    widest = max(max(abs(int(v)) for v in bounds[0]), max(abs(int(v)) for v in bounds[1]))
    if widest >= INT64_SAFE:
        raise NotBitExact(f"{describe(node)}: its integers reach {widest}, wider than 62 bits")
