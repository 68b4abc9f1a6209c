"""Pooling on integers: max pooling, and sum pooling for AveragePool / GlobalAveragePool /
ReduceMean over the spatial axes.

Max pooling picks integers: the dequantization (scale > 0, mult > 0) is monotone, so the max
of the integers is the integer of the max. Sum pooling adds units (u = mult * q + offset, the
padded value u = 0 counted in the divisor as count_include_pad does); the division by the
window size is not done here: the output accumulator's grid carries it (graph.Accumulator.
divisor), and the next requantization folds it into its thresholds, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qapflow.intmodel.ops.base import Op, Units, ints, window_geometry, windows


@dataclass
class MaxPool(Op):
    kernel: list[int] = None
    strides: list[int] = None
    pads: list[int] = None
    dilations: list[int] = None
    ceil_mode: bool = False
    kind = "maxpool"

    def evaluate(self, q):
        q = np.asarray(q, np.int64)
        low = np.iinfo(np.int64).min  # padding never wins (ONNX pads with -inf)
        out = None
        for _, view in windows(q, self.kernel, self.strides, self.pads, self.dilations, low, self.ceil_mode):
            out = view.copy() if out is None else np.maximum(out, view)
        return out

    def bound(self, interval):
        return interval

    def output_shape(self, shape):
        out, _ = window_geometry(shape[1:], self.kernel, self.strides, self.pads, self.dilations, self.ceil_mode)
        return [shape[0], *out]


@dataclass
class SumPool(Op):
    """Window sums of units; kernel None: the whole spatial extent (global), keepdims as the
    graph has it. divisor: what the average divides by (kept in the output's grid)."""

    kernel: list[int] | None = None
    strides: list[int] | None = None
    pads: list[int] | None = None
    keepdims: bool = True
    units: Units = None
    divisor: int = 1
    kind = "sumpool"
    UNITS = ("units",)

    def evaluate(self, q):
        u = self.units.apply(q)
        if self.kernel is None:
            axes = tuple(range(2, u.ndim))
            return u.sum(axis=axes, keepdims=self.keepdims)
        ones = [1] * len(self.kernel)
        out = None
        for _, view in windows(u, self.kernel, self.strides, self.pads, ones, 0):
            out = view.copy() if out is None else out + view
        return out

    def bound(self, interval):
        lo, hi = self.units.interval(*interval)
        if self.pads is not None and any(self.pads):
            lo, hi = ints([min(v, 0) for v in lo]), ints([max(v, 0) for v in hi])
        k = self.divisor
        return ints(lo * k), ints(hi * k)

    def output_shape(self, shape):
        if self.kernel is None:
            return [shape[0]] + ([1] * (len(shape) - 1) if self.keepdims else [])
        out, _ = window_geometry(shape[1:], self.kernel, self.strides, self.pads, [1] * len(self.kernel))
        return [shape[0], *out]
