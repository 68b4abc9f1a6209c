"""Neural efficiency (Schaub and Hotaling 2020, as in Hawks et al. 2021 section 4.3).

Each neuron's state is binary (output > 0). A layer of N neurons has observed states s
with frequencies p_s; its entropy E = -sum p_s log2 p_s and efficiency E / N. The
network's efficiency is the geometric mean over layers.
"""

from __future__ import annotations

import numpy as np


def layer_entropy(activations: np.ndarray) -> float:
    """Entropy in bits of the binary firing patterns of one layer, rows = samples."""
    states = np.packbits(activations > 0, axis=1)
    _, counts = np.unique(states, axis=0, return_counts=True)
    p = counts / counts.sum()
    return max(0.0, float(-(p * np.log2(p)).sum()))


def layer_efficiency(activations: np.ndarray) -> float:
    return layer_entropy(activations) / activations.shape[1]


def network_efficiency(layers: list[np.ndarray]) -> dict:
    per_layer = [layer_efficiency(a) for a in layers]
    return {"network": float(np.prod(per_layer) ** (1.0 / len(per_layer))), "per_layer": per_layer}
