"""Deep Sets (Odagiu et al. 2024): input [N, F, P], the same dense layers on every particle
(kernel-1 QuantConv1d -> BN -> QuantReLU), a global pool over the P particles, a dense head.

Max pooling keeps the quantized values (and their grid); the mean leaves the grid (a sum / P),
so a QuantReLU re-quantizes it before the head.
"""

from __future__ import annotations

import torch
from torch import nn

from qapflow.nn.layers import QuantNet, value
from qapflow.nn.spec import ModelSpec


class DeepSets(QuantNet):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        c_in = spec.particle_features
        for c in spec.channels:
            self._add("conv1d", c_in, c, kernel_size=1)
            c_in = c
        self.pool = nn.MaxPool1d(spec.particles) if spec.pool == "max" else nn.AvgPool1d(spec.particles)
        self.pool_quant = (self.relu(spec.hidden_act_bits[len(spec.channels) - 1])
                           if spec.pool == "avg" and self.quantized else nn.Identity())
        self._add_head(c_in)

    def _forward(self, x):
        x = self.input_quant(x)
        for i in range(len(self.spec.channels)):
            x = self._stage(i, x)
        x = self.pool(x) if self.spec.pool == "max" else self.pool_quant(self.pool(value(x)))
        return self._head(torch.flatten(x, 1))
