"""A small 2D CNN on jet images: input [N, 1, H, W]; per stage QuantConv2d ("same" padding,
stride 1 or 2) -> BN -> QuantReLU -> 2x2 max or average pool; optionally one residual block;
flattened into a dense head.

The residual block is conv_a -> BN -> ReLU -> conv_b -> BN, added to its input. Both addends
pass through ONE signed QuantIdentity (`shared`), so they lie on the same grid and the add is
exact in integers; the sum is re-quantized by the block's QuantReLU. An average pool leaves the
grid (a sum / 4), so a QuantReLU re-quantizes it; a max pool keeps it.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantIdentity
from torch import nn

from qapflow.nn.layers import QuantNet, value
from qapflow.nn.quantizers import signed_kwargs
from qapflow.nn.spec import ModelSpec


class JetCnn(QuantNet):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        c_in, n = 1, len(spec.channels)
        for c, k, s in zip(spec.channels, spec.conv_kernels, spec.conv_strides):
            self._add("conv2d", c_in, c, kernel_size=k, stride=s, padding=k // 2)
            c_in = c
        self.pool = nn.MaxPool2d(2) if spec.pool == "max" else nn.AvgPool2d(2)
        self.pool_quants = (nn.ModuleList(self.relu(spec.hidden_act_bits[i]) for i in range(n))
                            if spec.pool == "avg" and self.quantized else None)
        if spec.residual:
            self.shared = (QuantIdentity(**signed_kwargs(spec.scheme, spec.hidden_act_bits[n - 1]),
                                         return_quant_tensor=True) if self.quantized else nn.Identity())
            self._add("conv2d", c_in, c_in, kernel_size=3, padding=1)
            self._add("conv2d", c_in, c_in, kernel_size=3, padding=1)
        h, w = spec.feature_map
        self._add_head(c_in * h * w)

    def _forward(self, x):
        x = self.input_quant(x)
        n = len(self.spec.channels)
        for i in range(n):
            x = self._stage(i, x)
            x = self.pool(x) if self.pool_quants is None else self.pool_quants[i](self.pool(value(x)))
        if self.spec.residual:
            y = self.shared(x)
            z = self.shared(self.norms[n + 1](value(self.layers[n + 1](self._stage(n, y)))))
            x = self._activate(n + 1, value(z) + value(y))
        return self._head(torch.flatten(x, 1))
