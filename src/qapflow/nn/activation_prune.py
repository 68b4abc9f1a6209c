"""Unstructured activation pruning by magnitude: ReLU inputs at or below a per-layer threshold
become exact zeros.

The threshold of each hidden layer is calibrated on training data so that a target fraction of
that layer's activations is zero (ReLU's own zeros count), recalibrated every epoch as the
weights move, and kept as a buffer (saved, restored with the best epoch, exported). In the graph
it is `Where(Greater(x, t), x, 0)`, rewritten at export as ONNX's ThresholdedRelu, a monotone
map: the integer model turns it into thresholds exactly like any other activation (the
quantizer's zero code for every pruned value), so firmware and integer model agree.
"""

from __future__ import annotations

import torch
from torch import nn


class ActivationPrune(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("threshold", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > self.threshold, x, torch.zeros_like(x))

    @torch.no_grad()
    def calibrate(self, pre_activation: torch.Tensor, fraction: float) -> None:
        """Set the threshold so `fraction` of these values are pruned (never below 0: ReLU's)."""
        q = torch.quantile(pre_activation.flatten().double(), fraction).item()
        self.threshold.fill_(max(q, 0.0))
