"""An IntGraph traced with da4ml's fixed-point operations: the fully unrolled RTL of a graph.

Every tensor is traced in integer units (the IntGraph's integers, fraction bits 0): dense
layers and every output position of a convolution are constant-matrix products (da4ml's adder
graphs, pruned zeros free), pooling sums are adder trees, max pooling da4ml's comparisons,
residual adds constant multiples, and requantization the shift-and-clip or comparator forms the
dense backend uses (rtl.backend), on integers. Nothing here decides a value: each op does what
its IntGraph op's `evaluate` does, so da4ml's own evaluation of the trace equals the IntGraph's.
Fully unrolled means logic grows with the input's size: MAX_ELEMENTS bounds what is traced.
"""

from __future__ import annotations

import itertools

import numpy as np

from qapflow.backends.rtl.backend import _tree_sum
from qapflow.common.errors import QapflowError
from qapflow.intmodel.graph import IntGraph
from qapflow.intmodel.ops.base import window_geometry

WIDE = 64
# per-sample values of the largest tensor a fully unrolled design takes (16 x 16 x 4 = 1,024
# inputs, 32 x 8 = 256): past it, logic and da4ml's solve time grow beyond use
MAX_ELEMENTS = 4096


def _array(values, like):
    from da4ml.trace import FixedVariableArray

    return FixedVariableArray(np.asarray(values, dtype=object), like.solver_options, hwconf=like.hwconf)


def _const(value: float, like):
    from da4ml.trace.fixed_variable import FixedVariable

    return FixedVariable.from_const(float(value), hwconf=like.hwconf, _factor=1)


def _units(x, units, like):
    """u = mult * q + offset[c] (channels on axis 0 of the per-sample shape)."""
    offset = np.asarray(units.offset, np.float64)
    if offset.ndim:
        offset = offset.reshape((-1,) + (1,) * (x.ndim - 1))
    if units.mult == 1 and not offset.any():
        return x
    return x * float(units.mult) + offset


def _pad(x, pads, fill, like):
    """x [C, *S] padded with a constant (pads in ONNX order: begins, then ends)."""
    n = x.ndim - 1
    if not any(pads):
        return x
    raw = np.asarray(x._vars)
    shape = [raw.shape[0]] + [raw.shape[1 + i] + pads[i] + pads[i + n] for i in range(n)]
    out = np.empty(shape, dtype=object)
    out[...] = _const(fill, like)
    out[(slice(None),) + tuple(slice(pads[i], pads[i] + raw.shape[1 + i]) for i in range(n))] = raw
    return _array(out, like)


def _windows(x, kernel, strides, pads, dilations, fill, like):
    """[out positions..., C, K]: every output position's window, kernel flattened last."""
    spatial = list(x.shape[1:])
    out, extra = window_geometry(spatial, kernel, strides, pads, dilations)
    n = len(spatial)
    raw = np.asarray(_pad(x, list(pads[:n]) + [pads[n + i] + extra[i] for i in range(n)], fill, like)._vars)
    cols = []
    for index in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(slice(index[i] * dilations[i], index[i] * dilations[i] + strides[i] * (out[i] - 1) + 1, strides[i])
                   for i in range(n))
        cols.append(raw[(slice(None),) + sl])  # [C, *out]
    stacked = np.stack(cols, axis=-1)  # [C, *out, K]
    return np.moveaxis(stacked, 0, -2), out  # [*out, C, K]


def _conv(x, op, like):
    u = _units(x, op.units, like)
    cols, out = _windows(u, op.kernel, op.strides, op.pads, op.dilations, 0.0, like)
    c_out, g_in = op.weight.shape[:2]
    g_out = c_out // op.groups
    result = np.empty((c_out, *out), dtype=object)
    for g in range(op.groups):
        w = op.weight[g * g_out:(g + 1) * g_out].reshape(g_out, -1).T.astype(np.float64)  # [g_in*K, g_out]
        for pos in itertools.product(*(range(o) for o in out)):
            patch = _array(cols[pos][g * g_in:(g + 1) * g_in].reshape(-1), like)
            result[(slice(g * g_out, (g + 1) * g_out),) + pos] = np.asarray((patch @ w)._vars)
    acc = _array(result, like)
    bias = op.bias.astype(np.float64).reshape((-1,) + (1,) * len(out))
    return acc + bias if op.bias.any() else acc


def _dense(x, op, like):
    u = _units(x, op.units, like).flatten()
    acc = u @ op.weight.T.astype(np.float64)
    return acc + op.bias.astype(np.float64) if op.bias.any() else acc


def _maxpool(x, op, like):
    low = -(2.0 ** (WIDE - 2))  # below every integer: padding never wins, as ONNX pads with -inf
    cols, out = _windows(x, op.kernel, op.strides, op.pads, op.dilations, low, like)
    result = np.empty((x.shape[0], *out), dtype=object)
    for pos in itertools.product(*(range(o) for o in out)):
        for c in range(x.shape[0]):
            values = list(cols[pos][c])
            best = values[0]
            for v in values[1:]:
                best = best.max_of(v)
            result[(c,) + pos] = best
    return _array(result, like)


def _sumpool(x, op, like):
    u = _units(x, op.units, like)
    raw = np.asarray(u._vars)
    if op.kernel is None:
        sums = np.array([_tree_sum(list(raw[c].reshape(-1))) for c in range(raw.shape[0])], dtype=object)
        return _array(sums.reshape((raw.shape[0],) + ((1,) * (raw.ndim - 1) if op.keepdims else ())), like)
    cols, out = _windows(u, op.kernel, op.strides, op.pads, [1] * len(op.kernel), 0.0, like)
    result = np.empty((raw.shape[0], *out), dtype=object)
    for pos in itertools.product(*(range(o) for o in out)):
        for c in range(raw.shape[0]):
            result[(c,) + pos] = _tree_sum(list(cols[pos][c]))
    return _array(result, like)


def _scaled(u, coeff):
    """u times a constant per channel (axis 0) or one for all."""
    c = np.asarray(coeff, np.float64)
    return u * (c.reshape((-1,) + (1,) * (u.ndim - 1)) if c.ndim else float(c))


def _add(a, b, op, like):
    ua, ub = _units(a, op.units[0], like), _units(b, op.units[1], like)
    return _scaled(ua, op.coeff_a) + _scaled(ub, op.coeff_b)


def _shift(a, op, like):
    """clip(round_half_even(relu?(a) * 2**-s), lo, hi), s = out_exp - in_exp, on integers: the
    dense backend's construction (floor((y + 2**(s-1) - 1 + lsb) / 2**s) with lsb the bit of y at
    2**s) written for values whose unit is 1."""
    y = a.relu() if op.relu else a
    s = op.out_exp - op.in_exp
    if s > 0:
        trunc = lambda v, f: v.quantize(k=0 if op.relu else 1, i=WIDE, f=f, overflow_mode="WRAP", round_mode="TRN")  # noqa: E731
        lsb = trunc(y, -s) - trunc(y, -(s + 1))
        y = (y + (2.0 ** (s - 1) - 1.0) + lsb * 2.0 ** -s) * 2.0 ** -s
        y = y.quantize(k=1, i=WIDE, f=0, overflow_mode="WRAP", round_mode="TRN")
    elif s < 0:
        y = y * 2.0 ** (-s)
    return np.clip(y, float(op.lo), float(op.hi))


def _thresholds(a, op, like):
    """base[c] + #{k : sign[c] * a >= T[c, k]} per element, comparators as muxes on the sign of
    the difference (rtl.backend's form: a clean 1-bit value per comparator)."""
    t = op.thresholds
    raw = np.asarray(a._vars)
    out = np.empty(raw.shape, dtype=object)
    for index in itertools.product(*(range(s) for s in raw.shape)):
        c = index[0]
        v = raw[index] * float(op.signs[c])
        levels = [float(x) for x in t.values[c, : t.count[c]]]
        always = sum(1 for x in levels if x <= v.low)
        bits = [(v - x).msb_mux(0.0, 1.0) for x in levels if v.low < x <= v.high]
        base = float(t.base[c] + always)
        out[index] = _tree_sum(bits) + base if bits else _const(base, like)
    return _array(out, like)


def _apply(op, inputs, like):
    kind = op.kind
    if kind == "conv":
        return _conv(inputs[0], op, like)
    if kind == "dense":
        return _dense(inputs[0], op, like)
    if kind == "maxpool":
        return _maxpool(inputs[0], op, like)
    if kind == "sumpool":
        return _sumpool(inputs[0], op, like)
    if kind == "add":
        return _add(*inputs, op, like)
    if kind == "concat":
        if op.units:  # inputs on different grids: aligned on one unit (ops/merge.py)
            inputs = [_scaled(_units(x, u, like), c) for x, u, c in zip(inputs, op.units, op.coeffs)]
        return _array(np.concatenate([np.asarray(x._vars) for x in inputs], axis=0), like)
    if kind == "reshape":
        return _array(np.asarray(inputs[0]._vars).reshape(op.shape), like)
    if kind == "transpose":
        return _array(np.transpose(np.asarray(inputs[0]._vars), op.perm), like)
    if kind == "shift":
        return _shift(inputs[0], op, like)
    if kind == "thresholds":
        return _thresholds(inputs[0], op, like)
    raise QapflowError(f"the rtl backend cannot build {op.name} ({kind})")


def trace_graph(graph: IntGraph):
    """(da4ml input array, output array) of the whole IntGraph, per sample, integer units."""
    from da4ml.trace import FixedVariableArray

    biggest = max(int(np.prod(t.shape)) for t in graph.tensors.values())
    if biggest > MAX_ELEMENTS:
        raise QapflowError(f"a tensor of {biggest} values per sample: the rtl backend unrolls every position and "
                           f"takes at most {MAX_ELEMENTS}; use the hls4ml backend with --io stream, which streams "
                           "(FINN does not build integer graphs yet)")
    t = graph.tensors[graph.input]
    spec = t.grid.spec
    n = int(np.prod(t.shape))
    inp = FixedVariableArray.from_kif(np.full(n, int(spec.signed)), np.full(n, spec.bits - int(spec.signed)),
                                      np.zeros(n, np.int64))
    values = {graph.input: _array(np.asarray(inp._vars).reshape(t.shape), inp)}
    for op in graph.ops:
        values[op.output] = _apply(op, [values[name] for name in op.inputs], inp)
    return inp, values[graph.output].flatten()


def comb_logic(graph: IntGraph):
    """The IntGraph as da4ml combinational logic (CombLogic), ready for da4ml's RTLModel."""
    from da4ml.trace import comb_trace

    inp, out = trace_graph(graph)
    return comb_trace(inp, out)
