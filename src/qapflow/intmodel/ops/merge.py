"""Merging two branches: Add of two integer tensors (residual) and Concat along channels.

Add: the real sum s_a * u_a + s_b * u_b is c_a * u_a + c_b * u_b at the unit s_a / c_a, with
the smallest positive integer coefficients (add_coefficients): float scales are m * 2**e with
integer mantissas, so such integers always exist; with power-of-two scales they are shifts.
The sum is an accumulator like any other, requantized by the next quantizer.
Concat: the inputs' integers side by side; the reader only joins tensors of one grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd

import numpy as np

from qapflow.intmodel.ops.base import Op, Units, channel_array, ints


def add_coefficients(scale_a: float, scale_b: float) -> tuple[int, int, float]:
    """(c_a, c_b, unit) with scale_a = c_a * unit and scale_b = c_b * unit exactly, c_a and
    c_b the smallest positive integers; unit exact in float64."""
    a, b = Fraction(float(scale_a)), Fraction(float(scale_b))
    if a <= 0 or b <= 0:
        raise ValueError(f"scales {scale_a}, {scale_b} must be positive")
    # gcd of two fractions p/q, r/s (in lowest terms): gcd(p, r) / lcm(q, s)
    unit = Fraction(gcd(a.numerator, b.numerator), a.denominator * b.denominator // gcd(a.denominator, b.denominator))
    c_a, c_b = a / unit, b / unit
    assert c_a.denominator == 1 and c_b.denominator == 1 and Fraction(float(unit)) == unit
    return int(c_a), int(c_b), float(unit)


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
    """The inputs' integers joined along the channel axis (per-sample axis 0)."""

    kind = "concat"

    def evaluate(self, *xs):
        return np.concatenate([np.asarray(x, np.int64) for x in xs], axis=1)

    def bound(self, *intervals):
        return (ints(np.concatenate([i[0] for i in intervals])), ints(np.concatenate([i[1] for i in intervals])))

    def output_shape(self, *shapes):
        return [sum(s[0] for s in shapes), *shapes[0][1:]]
