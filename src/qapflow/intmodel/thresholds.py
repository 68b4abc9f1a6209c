"""Integer thresholds from a layer's float pipeline, derived exactly (MultiThreshold semantics).

For each output channel j the hardware accumulator a (an integer) maps to the next integer
q = g_j(a): the original graph's ops from the accumulator to the next quantizer, evaluated
in float32 by the graph's own nodes. g_j is monotone; a channel where it falls is flipped
(the hardware negates that row of weights). Then
    q = base_j + #{k : a >= T[j, k]}
where T_v = min{a : g_j(a) >= v} for every level v, found by bisection over the integers of
a's reachable range, and then checked at the boundary: g(T) >= v and g(T - 1) < v for every
threshold. No float formula is trusted at the boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from qapflow.common.errors import QapflowError

# g(a, channels) -> integer levels; `a` is int64 [M, C] where column j is channel j
Transfer = Callable[[np.ndarray], np.ndarray]


class ThresholdError(QapflowError):
    """The layer's pipeline is not a monotone map from accumulator to integers."""


@dataclass
class Thresholds:
    base: np.ndarray  # int64 [C]: the output below every threshold
    values: np.ndarray  # int64 [C, K]: non-decreasing per row, padded with `never` (unreachable)
    count: np.ndarray  # int64 [C]: the real thresholds of each channel

    def apply(self, acc: np.ndarray) -> np.ndarray:
        out = np.empty(acc.shape, dtype=np.int64)
        for j in range(acc.shape[1]):
            out[:, j] = self.base[j] + np.searchsorted(self.values[j, : self.count[j]], acc[:, j], side="right")
        return out

    @property
    def comparators(self) -> int:
        return int(self.count.sum())

    def to_dict(self) -> dict:
        return {"base": self.base.tolist(), "count": self.count.tolist(),
                "values": [row[:n].tolist() for row, n in zip(self.values, self.count)]}

    @classmethod
    def from_dict(cls, data: dict) -> "Thresholds":
        count = np.array(data["count"], dtype=np.int64)
        width = max(1, int(count.max()) if len(count) else 1)
        values = np.zeros((len(count), width), dtype=np.int64)
        for j, row in enumerate(data["values"]):
            values[j, : len(row)] = row
            values[j, len(row):] = row[-1] if row else 0
        return cls(np.array(data["base"], dtype=np.int64), values, count)


def _bisect(g: Transfer, lo: np.ndarray, hi: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """T[v, j] = min{a in [lo_j, hi_j + 1] : g(a)[j] >= levels[v]}, hi_j + 1 meaning never."""
    left = np.broadcast_to(lo, (len(levels), len(lo))).astype(np.int64).copy()
    right = np.broadcast_to(hi + 1, (len(levels), len(lo))).astype(np.int64).copy()
    want = levels[:, None]
    while True:
        open_ = left < right
        if not open_.any():
            return left
        mid = (left + right) // 2
        reached = g(mid) >= want
        right = np.where(open_ & reached, mid, right)
        left = np.where(open_ & ~reached, mid + 1, left)


def derive_thresholds(g: Transfer, lo: np.ndarray, hi: np.ndarray, q_min: int, q_max: int,
                      where: str) -> Thresholds:
    """Thresholds of a non-decreasing g over the accumulator range [lo, hi] (per channel)."""
    lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    levels = np.arange(q_min + 1, q_max + 1, dtype=np.int64)
    ends = g(np.stack([lo, hi]))
    if (ends < q_min).any() or (ends > q_max).any():
        raise ThresholdError(f"{where}: the pipeline gives integers outside [{q_min}, {q_max}]")
    if len(levels) == 0:
        return Thresholds(np.full(len(lo), q_min, np.int64), np.zeros((len(lo), 1), np.int64),
                          np.zeros(len(lo), np.int64))
    t = _bisect(g, lo, hi, levels)  # [L, C]
    _check_boundaries(g, t, lo, hi, levels, where)
    below = t <= lo  # reached by every accumulator value
    real = (t > lo) & (t <= hi)
    base = q_min + below.sum(axis=0)
    count = real.sum(axis=0)
    width = max(1, int(count.max()))
    values = np.empty((len(lo), width), dtype=np.int64)
    for j in range(len(lo)):
        row = t[real[:, j], j]
        values[j, : len(row)] = row
        values[j, len(row):] = hi[j] + 1
    thresholds = Thresholds(base.astype(np.int64), values, count.astype(np.int64))
    _check_samples(g, thresholds, lo, hi, where)
    return thresholds


def _check_samples(g: Transfer, t: Thresholds, lo: np.ndarray, hi: np.ndarray, where: str,
                   points: int = 4096) -> None:
    """The thresholds equal g on the range's ends and on evenly spaced and random accumulators
    (every accumulator, where the range is small): a map that is not monotone shows here."""
    span = hi - lo
    steps = np.linspace(0.0, 1.0, points)[:, None]
    rng = np.random.default_rng(0)
    acc = np.concatenate([np.round(lo + steps * span), lo + np.floor(rng.random((points, len(lo))) * (span + 1))])
    acc = np.clip(acc, lo, hi).astype(np.int64)
    bad = t.apply(acc) != g(acc)
    if bad.any():
        m, j = np.argwhere(bad)[0]
        raise ThresholdError(f"{where}: channel {j} is not monotone (at accumulator {int(acc[m, j])} the "
                             "thresholds and the layer's float ops disagree); qapflow needs a monotone map "
                             "from the accumulator to the next quantizer")


def _check_boundaries(g: Transfer, t: np.ndarray, lo: np.ndarray, hi: np.ndarray, levels: np.ndarray,
                      where: str) -> None:
    """Every threshold reaches its level and the integer below it does not (within range)."""
    at = g(np.minimum(t, hi))
    before = g(np.maximum(t - 1, lo))
    want = levels[:, None]
    inside = t <= hi
    ok_at = ~inside | (at >= want)
    ok_before = (t <= lo) | (before < want)
    bad = ~(ok_at & ok_before)
    if bad.any():
        v, j = np.argwhere(bad)[0]
        raise ThresholdError(f"{where}: channel {j} is not monotone near accumulator {int(t[v, j])} "
                             f"(level {int(levels[v])}); qapflow needs a monotone map from the "
                             "accumulator to the next quantizer")


def channel_directions(g: Transfer, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """+1 where g rises (or is flat) from lo to hi, -1 where it falls, per channel."""
    ends = g(np.stack([np.asarray(lo, np.int64), np.asarray(hi, np.int64)]))
    return np.where(ends[1] < ends[0], -1, 1).astype(np.int64)
