"""Inputs that exercise a model's edges: typical values, saturation, and rounding ties.

Used to check the IntModel against qonnx at compile time and by the tests: random values at
several magnitudes (some far beyond every quantizer's range, so each one saturates), and
values exactly halfway between two steps of the input quantizer (rounding ties).
"""

from __future__ import annotations

import numpy as np

from qapflow.intmodel.model import IntModel


def probe_inputs(im: IntModel, n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = im.software.input_shape if im.software is not None else [im.layers[0].weight.shape[1]]
    per_sample = int(np.prod(shape))
    step = _input_step(im)
    span = step * max(2.0 ** (im.input.bits - 1), 1.0)
    parts = [rng.normal(size=(n // 4, per_sample)) * span * s for s in (0.05, 0.3, 1.0)]
    saturating = rng.choice([-1.0, 1.0], size=(n // 8, per_sample)) * span * 4
    ties = (rng.integers(-(2 ** (im.input.bits - 1)), 2 ** (im.input.bits - 1), size=(n // 8, per_sample))
            + 0.5) * step
    x = np.concatenate(parts + [saturating, ties])
    x = np.concatenate([x, rng.normal(size=(n - len(x), per_sample)) * span * 0.3])
    return x.astype(np.float32).reshape(n, *shape)


def _input_step(im: IntModel) -> float:
    """The input quantizer's step where the head has no float preprocessing (else 1.0)."""
    if im.software is None:
        return 2.0**im.input.exp
    ops = {n.op_type for n in im.software.head.graph.node}
    if ops & {"Mul", "Div", "Add", "Sub"}:
        return 1.0
    return float(im.software.grid.scale * im.software.grid.mult)
