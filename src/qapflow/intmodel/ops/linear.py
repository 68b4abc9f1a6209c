"""Dense and convolution (1D/2D, stride, padding, dilation, groups): integer sums of units.

Both sum products of integer weights with the input's units u = mult * q + offset (ops.base.
Units), so a padded position (u = 0) contributes the real zero whatever the input's zero point
or bipolar mapping; the bias is an integer on the accumulator grid (0 where the graph's float
bias stays in the accumulator's grid, see graph.Accumulator). Exact: int64 throughout, with
the bounds checked below 2**62 when the graph is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qapflow.intmodel.model import interval_matvec
from qapflow.intmodel.ops.base import Op, Units, ints, window_geometry, windows


@dataclass
class Dense(Op):
    """acc[o] = sum_i weight[o, i] * u[i] + bias[o] over a flat per-sample input."""

    weight: np.ndarray = None  # int64 [out, in]
    bias: np.ndarray = None  # int64 [out]
    units: Units = None
    weight_bits: int = 0
    kind = "dense"
    ARRAYS = ("weight", "bias")
    UNITS = ("units",)

    def evaluate(self, q):
        u = self.units.apply(q).reshape(len(q), -1)
        return u @ self.weight.T + self.bias

    def bound(self, interval):
        lo, hi = self.units.interval(*interval)
        a, b = interval_matvec(self.weight, lo, hi)
        bias = self.bias.astype(object)
        return ints(a + bias), ints(b + bias)

    def output_shape(self, shape):
        return [int(self.weight.shape[0])]


@dataclass
class Conv(Op):
    """ONNX Conv on units: weight [out, in/groups, *kernel]; pads as ONNX writes them
    (begin of every spatial axis, then end), filled with u = 0."""

    weight: np.ndarray = None  # int64 [out, in/groups, *kernel]
    bias: np.ndarray = None  # int64 [out]
    units: Units = None
    strides: list[int] = None
    pads: list[int] = None
    dilations: list[int] = None
    groups: int = 1
    weight_bits: int = 0
    kind = "conv"
    ARRAYS = ("weight", "bias")
    UNITS = ("units",)

    @property
    def kernel(self) -> list[int]:
        return list(self.weight.shape[2:])

    def evaluate(self, q):
        u = self.units.apply(q)
        n, c_in = u.shape[:2]
        c_out = self.weight.shape[0]
        g_in, g_out = c_in // self.groups, c_out // self.groups
        out_spatial, _ = window_geometry(u.shape[2:], self.kernel, self.strides, self.pads, self.dilations)
        acc = np.zeros((n, c_out, *out_spatial), np.int64)
        for index, view in windows(u, self.kernel, self.strides, self.pads, self.dilations, 0):
            w = self.weight[(slice(None), slice(None)) + index]  # [out, in/groups]
            for g in range(self.groups):
                acc[:, g * g_out:(g + 1) * g_out] += np.einsum(
                    "nc...,oc->no...", view[:, g * g_in:(g + 1) * g_in], w[g * g_out:(g + 1) * g_out])
        return acc + self.bias.reshape((1, -1) + (1,) * len(out_spatial))

    def bound(self, interval):
        lo, hi = self.units.interval(*interval)
        if any(self.pads):  # a border window also sees padded zeros
            lo = ints([min(v, 0) for v in lo])
            hi = ints([max(v, 0) for v in hi])
        c_out = self.weight.shape[0]
        g_in, g_out = len(lo) // self.groups, c_out // self.groups
        k = int(np.prod(self.kernel))
        out_lo, out_hi = [], []
        for g in range(self.groups):
            w = self.weight[g * g_out:(g + 1) * g_out].reshape(g_out, -1)  # in-channel major, kernel minor
            a, b = interval_matvec(w, np.repeat(lo[g * g_in:(g + 1) * g_in], k),
                                   np.repeat(hi[g * g_in:(g + 1) * g_in], k))
            out_lo.extend(a)
            out_hi.extend(b)
        bias = self.bias.astype(object)
        return ints(np.array(out_lo, dtype=object) + bias), ints(np.array(out_hi, dtype=object) + bias)

    def output_shape(self, shape):
        out, _ = window_geometry(shape[1:], self.kernel, self.strides, self.pads, self.dilations)
        return [int(self.weight.shape[0]), *out]
