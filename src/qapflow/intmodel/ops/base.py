"""What every integer operation of the IntGraph shares: its record, units and intervals.

An operation reads integer arrays (batch axis first, then the per-sample shape, channels
first) and writes one. Each knows three things: evaluate (numpy, exact), bound (per output
channel [lo, hi] as Python ints, from its inputs' per-channel intervals) and its parameters
(to_dict / from_dict, for the backends). Per-channel quantities live on per-sample axis 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# the widest accumulator the numpy evaluation takes in int64 (bounds are checked against it)
INT64_SAFE = 1 << 62


@dataclass
class Units:
    """How an input's integers q become the units a linear op sums: u = mult * q + offset[c].
    The real value is scale * u, so u = 0 is the real zero (the padded value of a convolution)."""

    mult: int = 1
    offset: list[int] | int = 0  # per channel (per-sample axis 0) or one for all

    def apply(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, np.int64)
        return self.mult * q + channel_array(self.offset, q.ndim)

    def interval(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        off = np.broadcast_to(np.asarray(self.offset, dtype=object), lo.shape)
        return self.mult * lo + off, self.mult * hi + off

    @property
    def identity(self) -> bool:
        return self.mult == 1 and not np.any(np.asarray(self.offset) != 0)


def channel_array(values, ndim: int) -> np.ndarray:
    """values per channel shaped to broadcast over [N, C, ...] (a scalar stays a scalar)."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        return arr
    return arr.reshape((1, -1) + (1,) * (ndim - 2))


def ints(values) -> np.ndarray:
    return np.array([int(v) for v in np.asarray(values, dtype=object).reshape(-1)], dtype=object)


def per_channel_bounds(lo_elem: np.ndarray, hi_elem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-element bounds (per-sample shape) reduced to per-channel (axis 0) bounds."""
    c = lo_elem.shape[0] if lo_elem.ndim else 1
    lo = lo_elem.reshape(c, -1)
    hi = hi_elem.reshape(c, -1)
    return ints([min(r) for r in lo]), ints([max(r) for r in hi])


def per_element_bounds(lo: np.ndarray, hi: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel bounds broadcast over a per-sample shape (channels on axis 0)."""
    shape = tuple(shape)
    tail = (1,) * (len(shape) - 1)
    return (np.broadcast_to(np.asarray(lo, dtype=object).reshape((-1,) + tail), shape).copy(),
            np.broadcast_to(np.asarray(hi, dtype=object).reshape((-1,) + tail), shape).copy())


@dataclass
class Op:
    """name: the graph node (or nodes, joined by '+') it stands for; inputs/output: tensor names."""

    name: str
    inputs: list[str]
    output: str
    kind = ""
    ARRAYS = ()  # fields stored as int64 arrays
    UNITS = ()  # fields that are Units

    def evaluate(self, *xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def bound(self, *intervals) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def output_shape(self, *shapes) -> list[int]:
        raise NotImplementedError

    def to_dict(self) -> dict:
        out = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, Units):
                value = dataclasses.asdict(value)
            elif isinstance(value, list) and value and isinstance(value[0], Units):
                value = [dataclasses.asdict(v) for v in value]
            elif hasattr(value, "to_dict"):
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Op":
        values = {}
        for f in dataclasses.fields(cls):
            value = data[f.name]
            if f.name in cls.ARRAYS:
                value = np.array(value, dtype=np.int64)
            elif f.name in cls.UNITS and value is not None:  # Concat of one grid has none
                value = [Units(**v) for v in value] if isinstance(value, list) else Units(**value)
            values[f.name] = value
        return cls(**values)


def window_geometry(spatial, kernel, strides, pads, dilations, ceil_mode=False):
    """Output size per spatial axis (ONNX's rule) and the padding needed on each side."""
    n = len(spatial)
    out, extra = [], []
    for i in range(n):
        span = dilations[i] * (kernel[i] - 1) + 1
        total = spatial[i] + pads[i] + pads[i + n] - span
        size = (-(-total // strides[i]) if ceil_mode else total // strides[i]) + 1
        if ceil_mode and (size - 1) * strides[i] >= spatial[i] + pads[i]:
            size -= 1  # the last window must start inside the input or its left padding
        out.append(size)
        extra.append(max(0, (size - 1) * strides[i] + span - (spatial[i] + pads[i] + pads[i + n])))
    return out, extra


def windows(x: np.ndarray, kernel, strides, pads, dilations, fill, ceil_mode=False):
    """Yield (kernel index, the input values every output position sees there): x [N, C, *S]
    padded with `fill` (the real zero's units for sums, below every value for max)."""
    import itertools

    spatial = x.shape[2:]
    n = len(spatial)
    out, extra = window_geometry(spatial, kernel, strides, pads, dilations, ceil_mode)
    width = [(0, 0), (0, 0)] + [(pads[i], pads[i + n] + extra[i]) for i in range(n)]
    padded = np.pad(x, width, constant_values=fill) if any(sum(w) for w in width) else x
    for index in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(slice(index[i] * dilations[i], index[i] * dilations[i] + strides[i] * (out[i] - 1) + 1,
                         strides[i]) for i in range(n))
        yield index, padded[(slice(None), slice(None)) + sl]


__all__ = ["Op", "Units", "INT64_SAFE", "channel_array", "ints", "per_channel_bounds", "per_element_bounds",
           "window_geometry", "windows"]
