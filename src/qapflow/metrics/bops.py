"""Bit operations of a pruned fully-connected network (Hawks et al. 2021, section 4.2):

  BOPs = m * n * ((1 - f_p) * b_a * b_w + b_a + b_w + log2(n))

per layer with n inputs, m outputs, weight bits b_w, input-activation bits b_a and f_p
the fraction of the layer's weights that are zero, counted in the weights the forward
pass uses (quantized weights for QAT layers), so a weight quantized to zero counts too.

A convolution is the same dense product at every output position: with weights
[C_out, C_in / groups, *kernel], n = C_in / groups x prod(kernel) inputs per output and m = C_out,
its BOPs are the formula's times the number of output positions.
"""

from __future__ import annotations

import math

import numpy as np

FLOAT_BITS = 32


def layer_bops(n_in: int, n_out: int, b_a: int, b_w: int, zero_fraction: float) -> float:
    return n_out * n_in * ((1 - zero_fraction) * b_a * b_w + b_a + b_w + math.log2(n_in))


def network_bops(weights: list[np.ndarray], weight_bits: list[int], act_bits_in: list[int],
                 positions: list[int] | None = None) -> float:
    """Sum over layers; `weights[i]` has shape [n_out, n_in] (dense) or [n_out, n_in / groups,
    *kernel] (conv), applied at `positions[i]` output positions (default 1: dense)."""
    positions = positions if positions is not None else [1] * len(weights)
    if len(positions) != len(weights):
        raise ValueError(f"{len(positions)} output-position counts for {len(weights)} layers")
    total = 0.0
    for w, b_w, b_a, p in zip(weights, weight_bits, act_bits_in, positions):
        n_out, n_in = w.shape[0], int(np.prod(w.shape[1:]))
        total += p * layer_bops(n_in, n_out, b_a, b_w, float((w == 0).mean()))
    return total


def sparsity(weights: list[np.ndarray]) -> dict:
    """Zero fraction per layer and overall, measured from the weights."""
    zeros = [int((w == 0).sum()) for w in weights]
    sizes = [w.size for w in weights]
    return {
        "overall": sum(zeros) / sum(sizes),
        "per_layer": [z / s for z, s in zip(zeros, sizes)],
        "zero_weights": sum(zeros),
        "total_weights": sum(sizes),
    }
