"""Merging two branches: Add of two integer tensors (residual) and Concat along channels.

Add: the real sum s_a * u_a + s_b * u_b is c_a * u_a + c_b * u_b at the unit s_a / c_a, with
the smallest positive integer coefficients (add_coefficients): float scales are m * 2**e with
integer mantissas, so such integers always exist; with power-of-two scales they are shifts.
The sum is an accumulator like any other, requantized by the next quantizer.
Concat: the inputs' integers side by side. Inputs on one grid are joined as they are; inputs on
different grids are aligned as Add aligns its two: each channel's units (mult * q + offset)
times the integer coefficient that puts it on the common unit of every input's scale
(common_unit), so the result is one accumulator a linear op, a reshape or a quantizer takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd

import numpy as np

from qapflow.intmodel.ops.base import Op, Units, channel_array, ints


def common_unit(scales) -> tuple[list[int], float]:
    """(coefficients, unit) with scales[i] = coefficients[i] * unit exactly, the coefficients the
    smallest positive integers; unit exact in float64 (float scales are m * 2**e)."""
    fractions = [Fraction(float(s)) for s in scales]
    if any(f <= 0 for f in fractions):
        raise ValueError(f"scales {list(scales)} must be positive")
    # gcd of fractions p/q in lowest terms: gcd of the numerators over lcm of the denominators
    num, den = 0, 1
    for f in fractions:
        num, den = gcd(num, f.numerator), den * f.denominator // gcd(den, f.denominator)
    unit = Fraction(num, den)
    coeffs = [f / unit for f in fractions]
    assert all(c.denominator == 1 for c in coeffs) and Fraction(float(unit)) == unit
    return [int(c) for c in coeffs], float(unit)


def add_coefficients(scale_a: float, scale_b: float) -> tuple[int, int, float]:
    """(c_a, c_b, unit) with scale_a = c_a * unit and scale_b = c_b * unit exactly, c_a and
    c_b the smallest positive integers; unit exact in float64."""
    (c_a, c_b), unit = common_unit([scale_a, scale_b])
    return c_a, c_b, unit


@dataclass
class Add(Op):
    """acc = coeff_a[c] * u_a + coeff_b[c] * u_b (per channel, or one coefficient each)."""

    coeff_a: list[int] | int = 1
    coeff_b: list[int] | int = 1
    units: list[Units] = None  # of input a, of input b
    kind = "add"
    UNITS = ("units",)

    def evaluate(self, qa, qb):
        ua, ub = self.units[0].apply(qa), self.units[1].apply(qb)
        return channel_array(self.coeff_a, ua.ndim) * ua + channel_array(self.coeff_b, ub.ndim) * ub

    def bound(self, ia, ib):
        (la, ha), (lb, hb) = self.units[0].interval(*ia), self.units[1].interval(*ib)
        ca = np.broadcast_to(np.asarray(self.coeff_a, dtype=object), la.shape)
        cb = np.broadcast_to(np.asarray(self.coeff_b, dtype=object), lb.shape)
        return ints(ca * la + cb * lb), ints(ca * ha + cb * hb)  # coefficients are positive

    def output_shape(self, sa, sb):
        return list(sa)


@dataclass
class Concat(Op):
    """The inputs' integers joined along the channel axis (per-sample axis 0); inputs on
    different grids first aligned: coeffs[i][c] * units[i](q), all on one unit."""

    units: list[Units] | None = None  # one per input when the grids differ
    coeffs: list[list[int]] | None = None  # per input, per channel
    kind = "concat"
    UNITS = ("units",)

    def _aligned(self, i: int, x, lo_hi=False):
        if not self.units:
            return x
        c = np.asarray(self.coeffs[i], dtype=object if lo_hi else np.int64)
        if lo_hi:  # an interval: coefficients are positive, so the ends stay ends
            lo, hi = self.units[i].interval(*x)
            return ints(c * lo), ints(c * hi)
        return channel_array(c, np.ndim(x)) * self.units[i].apply(x)

    def evaluate(self, *xs):
        return np.concatenate([self._aligned(i, x) for i, x in enumerate(xs)], axis=1)

    def bound(self, *intervals):
        ends = [self._aligned(i, iv, lo_hi=True) for i, iv in enumerate(intervals)]
        return ints(np.concatenate([e[0] for e in ends])), ints(np.concatenate([e[1] for e in ends]))

    def output_shape(self, *shapes):
        return [sum(s[0] for s in shapes), *shapes[0][1:]]
