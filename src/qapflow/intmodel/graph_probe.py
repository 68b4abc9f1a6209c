"""Probe inputs for an IntGraph: typical values, saturation and rounding ties (intmodel.probe's
idea for any input shape): random values at several magnitudes of the input quantizer's range,
values far beyond it (every element saturates), whole samples at one saturating value (deep
quantizers reach their ends), and values halfway between two input steps."""

from __future__ import annotations

import numpy as np

from qapflow.intmodel.graph import IntGraph

HEAD_SCALING_OPS = {"Mul", "Div", "Add", "Sub", "BatchNormalization"}


def graph_probe_inputs(ig: IntGraph, n: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = list(ig.ends.input_shape)
    size = int(np.prod(shape))
    grid = ig.tensors[ig.input].grid
    step = 1.0 if {nd.op_type for nd in ig.ends.head.graph.node} & HEAD_SCALING_OPS else float(grid.scale * grid.mult)
    span = step * max(2.0 ** (grid.spec.bits - 1), 1.0)
    parts = [rng.normal(size=(n // 5, size)) * span * s for s in (0.1, 0.5, 1.5)]
    saturating = rng.choice([-1.0, 1.0], size=(n // 10, size)) * span * 4
    constant = rng.choice([-1.0, 1.0], size=(n // 10, 1)) * rng.uniform(0.5, 4, size=(n // 10, 1)) * span
    ties = (rng.integers(-(2 ** (grid.spec.bits - 1)), 2 ** (grid.spec.bits - 1), size=(n // 10, size)) + 0.5) * step
    x = np.concatenate(parts + [saturating, np.repeat(constant, size, axis=1), ties])
    x = np.concatenate([x, rng.normal(size=(n - len(x), size)) * span])
    return x.astype(np.float32).reshape(n, *shape)
