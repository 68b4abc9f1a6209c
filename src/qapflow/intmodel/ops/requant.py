"""Requantization: an integer tensor (accumulator or quantized) to the next quantizer's integers.

shift: where exact (a power-of-two input grid, no float bias or batch norm, at most a ReLU, a
       power-of-two output grid rounding half to even): q = clip(round_half_even(relu(a) *
       2**(in_exp - out_exp)), lo, hi), as intmodel.model.IntModel.forward_layers does.
thresholds: everything else: per channel c, a' = sign[c] * a, q = base[c] + #{k : a' >= T[c, k]}
       (FINN's MultiThreshold), derived exactly from the graph's own float ops
       (intmodel.graph_requant); the signs make every channel's map rising.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qapflow.intmodel.model import round_shift
from qapflow.intmodel.ops.base import Op, channel_array, ints
from qapflow.intmodel.thresholds import Thresholds


@dataclass
class ShiftRequant(Op):
    in_exp: int = 0
    out_exp: int = 0
    relu: bool = False
    lo: int = 0
    hi: int = 0
    kind = "shift"

    def _map(self, a):
        a = np.maximum(a, 0) if self.relu else a
        return np.clip(round_shift(a, self.out_exp - self.in_exp), self.lo, self.hi)

    def evaluate(self, a):
        return self._map(np.asarray(a, np.int64))

    def bound(self, interval):
        lo, hi = (np.array([int(v) for v in x], dtype=np.int64) for x in interval)
        return ints(self._map(lo)), ints(self._map(hi))  # monotone

    def output_shape(self, shape):
        return list(shape)


@dataclass
class ThresholdRequant(Op):
    signs: np.ndarray = None  # int64 [C], +1 or -1
    thresholds: Thresholds = None
    kind = "thresholds"
    ARRAYS = ("signs",)

    def evaluate(self, a):
        a = np.asarray(a, np.int64) * channel_array(self.signs, np.ndim(a))
        c = a.shape[1]
        flat = np.moveaxis(a, 1, -1).reshape(-1, c)
        out = self.thresholds.apply(flat).reshape(np.moveaxis(a, 1, -1).shape)
        return np.moveaxis(out, -1, 1)

    def bound(self, interval):
        t = self.thresholds
        return ints(t.base), ints(t.base + t.count)

    def output_shape(self, shape):
        return list(shape)

    @classmethod
    def from_dict(cls, data):
        return cls(data["name"], data["inputs"], data["output"], np.array(data["signs"], np.int64),
                   Thresholds.from_dict(data["thresholds"]))
