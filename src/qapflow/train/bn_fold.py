"""Fold each BatchNorm into the linear or conv layer before it, keeping the pruning mask.

  W' = W * g / sqrt(var + eps)   (per output row / channel),   b' = (b - mean) * g / sqrt(var + eps) + beta

A pruned weight (0) stays 0. The result is a model of the same spec without BN; its
quantizer state (activation thresholds, input grid) is carried over.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from qapflow.nn.model import build_model


def fold_batch_norm(model: nn.Module) -> nn.Module:
    if not model.spec.batch_norm:
        raise ValueError("model has no batch norm to fold")
    model.eval()
    folded = build_model(dataclasses.replace(model.spec, batch_norm=False))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("norms.")}
    key = model.prunable_key  # "linears" (MLP) or "layers"
    with torch.no_grad():
        for i, norm in enumerate(model.norms):
            if not isinstance(norm, nn.modules.batchnorm._BatchNorm):
                continue
            gain = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            lin = model.prunable[i]
            state[f"{key}.{i}.weight"] = lin.weight * gain.view(-1, *[1] * (lin.weight.dim() - 1))
            state[f"{key}.{i}.bias"] = (lin.bias - norm.running_mean) * gain + norm.bias
    folded.load_state_dict(state)
    folded.eval()
    return folded
