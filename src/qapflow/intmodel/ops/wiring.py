"""Pure wiring: Reshape (Flatten, Squeeze, Unsqueeze) and Transpose of integer tensors.

Nothing is computed; the integers move. Bounds go through the same wiring element by element
and are then taken per channel of the new layout (sound: a channel's interval covers every
element that lands in it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qapflow.intmodel.ops.base import Op, per_channel_bounds, per_element_bounds


@dataclass
class Reshape(Op):
    in_shape: list[int] = None  # per sample
    shape: list[int] = None  # per sample, the output's
    kind = "reshape"

    def evaluate(self, x):
        return np.asarray(x).reshape(len(x), *self.shape)

    def bound(self, interval):
        lo, hi = per_element_bounds(*interval, self.in_shape)
        return per_channel_bounds(lo.reshape(self.shape), hi.reshape(self.shape))

    def output_shape(self, shape):
        return list(self.shape)


@dataclass
class Transpose(Op):
    in_shape: list[int] = None
    perm: list[int] = None  # per-sample axes (the batch axis stays first)
    kind = "transpose"

    def evaluate(self, x):
        return np.transpose(np.asarray(x), [0] + [p + 1 for p in self.perm])

    def bound(self, interval):
        lo, hi = per_element_bounds(*interval, self.in_shape)
        return per_channel_bounds(np.transpose(lo, self.perm), np.transpose(hi, self.perm))

    def output_shape(self, shape):
        return [shape[p] for p in self.perm]
